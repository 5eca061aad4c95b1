//! The state of one plugin call: what the store knows while `handle` runs.

use std::sync::Arc;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use zeroize::Zeroizing;

use super::agent_link::AgentLink;
use super::bindings::conversation::events::Attachment;
use super::budget::{Budget, CallBudgets, OverBudget};
use super::chat_link::ChatLink;
use super::settings::Settings;
use crate::infra::services::HostServices;
use crate::infra::store::AuditEntry;
use crate::infra::sync::lock;

/// Who a call is for and what the host lends it, beyond the message itself.
#[derive(Clone)]
pub struct CallContext {
    pub correlation_id: Arc<str>,
    pub user_id: i64,
    pub chat_id: i64,
    /// Where the call's messages go (`telegram`, `console`): a job the call
    /// adds is fired by a process serving the same.
    pub channel: &'static str,
    /// Built once by the host and shared by every call.
    pub services: Arc<HostServices>,
    /// The chat the event came from, for what a call asks of it while it
    /// runs (a streamed answer, the event's files); none for a job.
    pub link: Option<Arc<dyn ChatLink>>,
    /// The host's agent, for a call that may hand it a turn with tools
    /// (the assistant's, from a chat); none elsewhere.
    pub agent: Option<Arc<dyn AgentLink>>,
    /// The files that came with the event (what `media.fetch` may hand over).
    pub attachments: Vec<Attachment>,
}

/// What replaces a secret value a plugin tries to log or reply with.
pub const MASK: &str = "[redacted]";

/// What the guest may write to stdout/stderr in one call before writes fail.
const OUTPUT_CAPACITY: usize = 64 * 1024;
/// Table elements a plugin may grow to; Rust guests need a few hundred.
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// What one call's component may instantiate. A Rust component uses about
/// five core instances, one memory and a few tables; dynamically linked
/// guests (Python, JavaScript) a few dozen instances sharing one or two
/// memories. The pool refuses a component past these at load
/// (`engine.rs`); these hold them per call as well.
pub const MAX_CORE_INSTANCES: usize = 64;
pub const MAX_MEMORIES: usize = 4;
pub const MAX_TABLES: usize = 32;
/// Host resources (WASI streams, pollables, ...) one call may hold at once;
/// a plugin needs a handful, wasmtime's default is a million.
const MAX_RESOURCES: usize = 10_000;

pub struct CallState {
    plugin: Arc<str>,
    ctx: CallContext,
    /// Names the manifest lets this plugin read.
    allowed_secrets: Arc<[String]>,
    /// Secret values handed out in this call, masked wherever the plugin writes them.
    revealed: RevealedSecrets,
    wasi: WasiCtx,
    table: ResourceTable,
    memory: MemoryCap,
    budgets: CallBudgets,
    quotas: Arc<[(&'static Budget, u32)]>,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
    settings: Arc<Settings>,
    /// Per-call state of the granted capabilities (`Capability::prepare`).
    extensions: Vec<Extension>,
}

/// Per-call state a capability adds to the call (`Capability::prepare`).
pub type Extension = Box<dyn std::any::Any + Send>;

/// What the plugin's grants add to a call: its settings, the WASI context
/// its capabilities prepared (a preopened folder) and their per-call state.
#[derive(Default)]
pub struct CallGrants {
    pub settings: Arc<Settings>,
    pub wasi: WasiCtxBuilder,
    pub extensions: Vec<Extension>,
    /// Shared with the capabilities that prepared the call, so a value they
    /// use later (a secret injected into a request) is masked too.
    pub revealed: RevealedSecrets,
}

/// Secret values a plugin has been handed (or that went out on its behalf)
/// in this process, by any of its calls: whatever it logs, replies or
/// schedules has them replaced by [`MASK`] — a value a server echoed back,
/// kept in `state` or a file and replied with calls later, too. The stored
/// secrets the manifest lists are learnt at the plugin's first call.
#[derive(Clone, Default)]
pub struct RevealedSecrets(Arc<Revealed>);

#[derive(Default)]
struct Revealed {
    values: std::sync::Mutex<std::collections::VecDeque<Zeroizing<String>>>,
    /// The stored secrets were read (or tried) once.
    learnt: std::sync::atomic::AtomicBool,
}

/// Values one plugin's mask keeps; the oldest go first (rotated tokens).
const MAX_REVEALED: usize = 64;

impl RevealedSecrets {
    /// The values handed to `plugin` (every version of it) in this process.
    pub fn handed_to(plugin: &str) -> Self {
        static HANDED: std::sync::OnceLock<
            std::sync::Mutex<std::collections::HashMap<String, RevealedSecrets>>,
        > = std::sync::OnceLock::new();
        lock(HANDED.get_or_init(Default::default))
            .entry(plugin.to_string())
            .or_default()
            .clone()
    }

    fn values(&self) -> std::sync::MutexGuard<'_, std::collections::VecDeque<Zeroizing<String>>> {
        lock(&self.0.values)
    }

    pub fn remember(&self, value: &str) {
        if value.is_empty() {
            return;
        }
        let mut values = self.values();
        if !values.iter().any(|known| known.as_str() == value) {
            if values.len() >= MAX_REVEALED {
                values.pop_front();
            }
            values.push_back(Zeroizing::new(value.to_string()));
        }
    }

    /// Reads the stored secrets `names` once per process, so a value kept
    /// before a restart is masked too. A secret not stored (yet) is learnt
    /// when it is handed out.
    pub async fn learn_stored(&self, names: &[String], services: &HostServices) {
        use std::sync::atomic::Ordering;
        if names.is_empty() || self.0.learnt.swap(true, Ordering::AcqRel) {
            return;
        }
        let (Some(store), Some(vault)) = (&services.store, &services.vault) else {
            return;
        };
        for name in names {
            let Ok(Some(stored)) = store.get_credential(name).await else {
                continue;
            };
            if let Ok(plaintext) = vault.decrypt(&stored)
                && let Ok(value) = std::str::from_utf8(&plaintext)
            {
                self.remember(value);
            }
        }
    }

    /// Whether no secret was handed out (there is nothing to mask).
    pub fn is_empty(&self) -> bool {
        self.values().is_empty()
    }

    /// `text` with every remembered value replaced.
    pub fn mask(&self, text: &str) -> String {
        let values = self.values();
        let mut masked = text.to_string();
        for secret in values.iter() {
            if masked.contains(secret.as_str()) {
                masked = masked.replace(secret.as_str(), MASK);
            }
        }
        masked
    }
}

impl CallState {
    /// A WASI context with nothing ambient: no environment, arguments,
    /// directories or network beyond what `grants` prepared; stdout and
    /// stderr are captured for the log.
    pub fn new(
        plugin: Arc<str>,
        allowed_secrets: Arc<[String]>,
        ctx: CallContext,
        memory_bytes: u64,
        budgets: CallBudgets,
        quotas: Arc<[(&'static Budget, u32)]>,
        grants: CallGrants,
    ) -> Self {
        let CallGrants {
            settings,
            wasi,
            extensions,
            revealed,
        } = grants;
        let (wasi, stdout, stderr) = capture_output(wasi);
        Self {
            plugin,
            ctx,
            allowed_secrets,
            revealed,
            wasi,
            table: {
                let mut table = ResourceTable::new();
                table.set_max_capacity(MAX_RESOURCES);
                table
            },
            memory: MemoryCap {
                max_bytes: usize::try_from(memory_bytes).unwrap_or(usize::MAX),
                total_bytes: 0,
                exceeded: false,
            },
            budgets,
            quotas,
            stdout,
            stderr,
            settings,
            extensions,
        }
    }

    /// The state of an instance made before its call is known (pre-warmed):
    /// no context, no grants, nothing to spend until [`Self::begin`].
    pub fn idle(
        plugin: Arc<str>,
        allowed_secrets: Arc<[String]>,
        memory_bytes: u64,
        quotas: Arc<[(&'static Budget, u32)]>,
    ) -> Self {
        Self::new(
            plugin,
            allowed_secrets,
            idle_context(),
            memory_bytes,
            CallBudgets::new(&[]),
            quotas,
            CallGrants::default(),
        )
    }

    /// Hands the instance its call: who it is for, its budgets, and what
    /// the grants prepared (a fresh WASI context: a folder, captured output).
    pub fn begin(&mut self, ctx: CallContext, budgets: CallBudgets, grants: CallGrants) {
        let CallGrants {
            settings,
            wasi,
            extensions,
            revealed,
        } = grants;
        (self.wasi, self.stdout, self.stderr) = capture_output(wasi);
        self.ctx = ctx;
        self.budgets = budgets;
        self.settings = settings;
        self.extensions = extensions;
        self.revealed = revealed;
    }

    /// Ends the call now, though the store is dropped later (off the
    /// message path): what the grants set up for it (a folder's charges, a
    /// request budget) settles and reports itself when dropped, and the
    /// call's resources go with it.
    pub(crate) fn end(&mut self) {
        self.extensions.clear();
        // The chat link and the event's files belong to the call.
        self.ctx = idle_context();
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCES);
        drop(std::mem::replace(&mut self.table, table));
    }

    /// Linear memory the instance holds now (all its memories).
    pub(crate) fn memory_bytes(&self) -> u64 {
        self.memory.total_bytes as u64
    }

    pub fn plugin(&self) -> &str {
        &self.plugin
    }

    /// The plugin's settings, resolved at load.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The resource table and a capability's per-call state at once, for
    /// interfaces (WASI proposals) whose view borrows both; `missing` makes
    /// the state if the capability prepared none (it always does when linked).
    pub fn table_and_extension_or<T: std::any::Any + Send>(
        &mut self,
        missing: impl FnOnce() -> T,
    ) -> (&mut ResourceTable, &mut T) {
        let index = match self
            .extensions
            .iter()
            .position(|extension| extension.is::<T>())
        {
            Some(index) => index,
            None => {
                self.extensions.push(Box::new(missing()));
                self.extensions.len() - 1
            }
        };
        let extension = self.extensions[index]
            .downcast_mut::<T>()
            .map(|extension| extension as &mut T);
        match extension {
            Some(extension) => (&mut self.table, extension),
            // `index` was found (or pushed) as a `T` just above.
            None => unreachable!("extension {index} is a {}", std::any::type_name::<T>()),
        }
    }

    /// WASI's filesystem view and a capability's per-call state at once.
    pub fn filesystem_and_extension<T: std::any::Any>(
        &mut self,
    ) -> (
        wasmtime_wasi::filesystem::WasiFilesystemCtxView<'_>,
        Option<&mut T>,
    ) {
        let extension = self
            .extensions
            .iter_mut()
            .find_map(|extension| extension.downcast_mut::<T>());
        let view = wasmtime_wasi::filesystem::WasiFilesystemCtxView {
            ctx: self.wasi.filesystem(),
            table: &mut self.table,
        };
        (view, extension)
    }

    /// Who the call is for: user, chat, channel.
    pub fn context(&self) -> &CallContext {
        &self.ctx
    }

    pub fn correlation_id(&self) -> &str {
        &self.ctx.correlation_id
    }

    /// What the host lends this call; cloning it is cloning an `Arc`.
    pub fn services(&self) -> &Arc<HostServices> {
        &self.ctx.services
    }

    /// Counts one host call against `budget` (and the call's host calls in
    /// all); past either, the capability refuses the call with its typed error.
    pub fn spend(&mut self, budget: &'static Budget) -> Result<(), OverBudget> {
        self.budgets.spend(budget)
    }

    /// Counts a write refused over `storage`'s quota: one warning per call
    /// and `wasmbot_plugin_quota_refusals_total{plugin, quota}`.
    pub fn over_quota(&mut self, storage: &'static str) {
        self.budgets.over_quota(storage);
    }

    /// See [`CallBudgets::first_refusal`].
    pub fn first_refusal(&mut self, what: &'static str) -> bool {
        self.budgets.first_refusal(what)
    }

    /// This plugin's allowance for `quota` (its default when not granted).
    pub fn quota(&self, quota: &'static Budget) -> u32 {
        self.quotas
            .iter()
            .find(|(known, _)| std::ptr::eq(*known, quota))
            .map_or(quota.default, |&(_, limit)| limit)
    }

    /// One warning and the refusal counts, when a budget was hit.
    pub(crate) fn report_budgets(&self) {
        self.budgets.report(&self.plugin);
    }

    pub fn may_read_secret(&self, name: &str) -> bool {
        self.allowed_secrets.iter().any(|allowed| allowed == name)
    }

    /// Remembers a secret value so it is masked in this call's output.
    pub fn remember_secret(&mut self, value: &str) {
        self.revealed.remember(value);
    }

    /// `text` with every secret value handed out in this call replaced.
    pub fn mask(&self, text: &str) -> String {
        self.revealed.mask(text)
    }

    /// The secrets handed out in this call, for text shown while it runs.
    pub fn revealed(&self) -> RevealedSecrets {
        self.revealed.clone()
    }

    /// An audit entry written by the host about this call (e.g. a denied secret).
    pub fn audit_host_action(&self, action: &str, status: &str, metadata: serde_json::Value) {
        self.audit(action, "host", status, metadata);
    }

    /// An audit entry the plugin asked for; false when the trail had no
    /// room for a plugin's entry (the host's keep theirs).
    pub fn audit_plugin_action(
        &self,
        action: &str,
        status: &str,
        metadata: serde_json::Value,
    ) -> bool {
        let entry = self.sourced_entry(action, "plugin", status, metadata);
        match &self.ctx.services.audit {
            Some(writer) => writer.record_from_plugin(entry),
            None => true,
        }
    }

    fn audit(&self, action: &str, source: &str, status: &str, metadata: serde_json::Value) {
        self.record_audit(self.sourced_entry(action, source, status, metadata));
    }

    fn sourced_entry(
        &self,
        action: &str,
        source: &str,
        status: &str,
        metadata: serde_json::Value,
    ) -> AuditEntry {
        let mut entry = self.audit_entry(action, status);
        entry.source = source.to_string();
        entry.metadata = sqlx::types::Json(metadata);
        entry
    }

    /// An entry about this call (time, plugin, user, chat, correlation id
    /// filled in) for a capability to complete and record.
    pub fn audit_entry(&self, action: &str, status: &str) -> AuditEntry {
        AuditEntry {
            correlation_id: Some(self.ctx.correlation_id.to_string()),
            user_id: Some(self.ctx.user_id),
            chat_id: Some(self.ctx.chat_id),
            plugin: Some(self.plugin.to_string()),
            ..AuditEntry::new(action, status)
        }
    }

    /// Queues `entry`; never waits on the database.
    pub fn record_audit(&self, entry: AuditEntry) {
        if let Some(writer) = &self.ctx.services.audit {
            writer.record(entry);
        }
    }

    pub(crate) fn limiter(&mut self) -> &mut dyn ResourceLimiter {
        &mut self.memory
    }

    pub(crate) fn memory_exceeded(&self) -> bool {
        self.memory.exceeded
    }

    /// What the guest printed, as log lines tagged with the plugin.
    pub(crate) fn forward_output(&self) {
        for (stream, pipe) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            let bytes = pipe.contents();
            let text = self.mask(&String::from_utf8_lossy(&bytes));
            for line in text.lines() {
                if line.trim().is_empty() {
                    continue;
                }
                if stream == "stderr" {
                    tracing::warn!(target: "plugin", plugin = %self.plugin, stream, "{line}");
                } else {
                    tracing::info!(target: "plugin", plugin = %self.plugin, stream, "{line}");
                }
            }
        }
    }
}

/// The call's WASI context, with stdout and stderr captured for the log.
/// `wasi:sockets` is linked (WASI 0.2 comes whole) but a plugin opens no
/// socket and resolves no name: its network is the `http` grant, checked by
/// the host. Said here, after every grant prepared the context, rather than
/// left to the defaults of the wasmtime release of the day.
fn capture_output(mut wasi: WasiCtxBuilder) -> (WasiCtx, MemoryOutputPipe, MemoryOutputPipe) {
    let stdout = MemoryOutputPipe::new(OUTPUT_CAPACITY);
    let stderr = MemoryOutputPipe::new(OUTPUT_CAPACITY);
    let wasi = wasi
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .build();
    (wasi, stdout, stderr)
}

/// The context of an instance not yet given a call: it can reach nothing.
fn idle_context() -> CallContext {
    static NOTHING: std::sync::LazyLock<Arc<HostServices>> = std::sync::LazyLock::new(Arc::default);
    CallContext {
        correlation_id: Arc::from(""),
        user_id: 0,
        chat_id: 0,
        channel: "",
        services: NOTHING.clone(),
        link: None,
        agent: None,
        attachments: Vec::new(),
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Enforces the manifest's `memory_mb` over the whole call: the sum of every
/// linear memory the component creates (a component instantiating one core
/// module N times does not get N times the cap), and remembers that it was
/// hit, so the resulting trap is reported as "out of memory", not a crash.
struct MemoryCap {
    max_bytes: usize,
    /// What the call's memories hold now, together.
    total_bytes: usize,
    exceeded: bool,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Called for a new memory too (current 0), so the sum covers them all.
        let total = self.total_bytes - current.min(self.total_bytes) + desired;
        if total > self.max_bytes {
            self.exceeded = true;
            wasmtime::bail!(
                "plugin memory limit of {} MiB exceeded (all of the call's memories together)",
                self.max_bytes >> 20
            );
        }
        self.total_bytes = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        MAX_CORE_INSTANCES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    /// A call for user 1 in chat 1 with no services, for tests of the call's state.
    pub(crate) fn test_context() -> CallContext {
        CallContext {
            correlation_id: "c".into(),
            user_id: 1,
            chat_id: 1,
            channel: "test",
            services: Arc::default(),
            link: None,
            agent: None,
            attachments: Vec::new(),
        }
    }

    #[test]
    fn a_call_holds_at_most_its_share_of_host_resources() {
        let mut state = CallState::new(
            "p".into(),
            Arc::from([]),
            test_context(),
            64 * MIB as u64,
            CallBudgets::new(&[]),
            Arc::from([]),
            CallGrants::default(),
        );
        let table = state.ctx().table;
        for _ in 0..MAX_RESOURCES {
            table.push(()).expect("within the cap");
        }
        assert!(table.push(()).is_err(), "the 10,001st resource is refused");
    }

    #[test]
    fn no_grant_opens_a_raw_socket() {
        use wasmtime_wasi::p2::bindings::sockets::{network, tcp_create_socket};
        use wasmtime_wasi::p2::bindings::sync::sockets::{udp, udp_create_socket};
        use wasmtime_wasi::sockets::WasiSocketsView as _;
        // A capability that turned sockets on while preparing its call.
        let mut grants = CallGrants::default();
        grants
            .wasi
            .allow_tcp(true)
            .allow_udp(true)
            .socket_addr_check(|_, _| Box::pin(async { true }));
        let mut state = CallState::new(
            "p".into(),
            Arc::from([]),
            test_context(),
            64 * MIB as u64,
            CallBudgets::new(&[]),
            Arc::from([]),
            grants,
        );
        let mut sockets = state.sockets();
        let tcp = tcp_create_socket::Host::create_tcp_socket(
            &mut sockets,
            network::IpAddressFamily::Ipv4,
        );
        assert!(tcp.is_err(), "a TCP socket was opened");
        let udp =
            udp_create_socket::Host::create_udp_socket(&mut sockets, udp::IpAddressFamily::Ipv4);
        assert!(udp.is_err(), "a UDP socket was opened");
    }

    #[test]
    fn the_memory_cap_is_the_sum_of_every_memory_of_the_call() {
        let mut cap = MemoryCap {
            max_bytes: 64 * MIB,
            total_bytes: 0,
            exceeded: false,
        };
        // Two memories of 30 MiB fit; a third memory of 5 MiB does not.
        assert!(cap.memory_growing(0, 30 * MIB, None).unwrap());
        assert!(cap.memory_growing(0, 30 * MIB, None).unwrap());
        assert!(cap.memory_growing(0, 5 * MIB, None).is_err());
        assert!(cap.exceeded);
        // Growing one of them counts only the growth.
        let mut cap = MemoryCap {
            max_bytes: 64 * MIB,
            total_bytes: 0,
            exceeded: false,
        };
        assert!(cap.memory_growing(0, 10 * MIB, None).unwrap());
        assert!(cap.memory_growing(10 * MIB, 60 * MIB, None).unwrap());
        assert_eq!(cap.total_bytes, 60 * MIB);
        assert!(cap.memory_growing(60 * MIB, 65 * MIB, None).is_err());
    }
}
