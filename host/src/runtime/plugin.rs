//! One loaded plugin: its manifest and a pre-linked component, ready to be
//! instantiated afresh for every call.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{Component, Linker};
use wasmtime::{PoolConcurrencyLimitError, Store, Trap};

use crate::infra::metrics::{CutLabels, metrics};
use crate::infra::store::clean_capped;

use super::bindings::HandlerPre;
use super::bindings::types::{Message, Reply};
use super::budget::{self, Budget, CallBudgets, HOST_CALLS};
use super::cache::content_hash;
use super::call::{CallContext, CallState};
use super::capability::{Capability, CapabilityTable};
use super::engine::EPOCH_TICK;
use super::engine::PluginEngine;
use super::manifest::{Manifest, PluginLimits, manifest_path_for};

/// Prefix of every interface this package defines, e.g. `wasmbot:plugin/log@0.1.0`.
const PLUGIN_PACKAGE: &str = "wasmbot:plugin/";
/// WASI is linked for every plugin (with an empty context): Rust's std imports it.
const WASI_PACKAGES: &[&str] = &["wasi:"];

/// Why a plugin could not be loaded. The message names the plugin and, for
/// grant problems, the interface.
#[derive(Debug, Clone, thiserror::Error)]
#[error("plugin `{plugin}`: {reason}")]
pub struct LoadError {
    pub plugin: String,
    pub reason: String,
}

impl LoadError {
    fn new(plugin: &str, reason: impl Into<String>) -> Self {
        Self {
            plugin: plugin.to_string(),
            reason: reason.into(),
        }
    }
}

/// How a call ended when it did not return a reply.
#[derive(Debug, thiserror::Error)]
pub enum PluginFailure {
    /// The handler returned `Err(text)`: the plugin's own message for the user.
    #[error("the plugin returned an error: {0}")]
    Declined(String),
    #[error("the call exceeded its {0:?} deadline")]
    Timeout(Duration),
    #[error("the plugin exceeded its memory limit of {0} MiB")]
    OutOfMemory(u64),
    /// A trap or panic inside the guest, or a failure to instantiate it.
    #[error("the plugin crashed: {0}")]
    Crashed(String),
    /// Every instance slot of the pool was in use: load, not the plugin's fault.
    #[error("no instance slot was free (the pool is exhausted)")]
    Busy,
}

impl PluginFailure {
    /// Short status for logs and audit (`error`, `timeout`, ...).
    pub fn status(&self) -> &'static str {
        match self {
            PluginFailure::Declined(_) => "declined",
            PluginFailure::Timeout(_) => "timeout",
            PluginFailure::OutOfMemory(_) => "out_of_memory",
            PluginFailure::Crashed(_) => "error",
            PluginFailure::Busy => "busy",
        }
    }
}

pub struct LoadedPlugin {
    name: Arc<str>,
    manifest: Manifest,
    content_hash: String,
    secrets: Arc<[String]>,
    /// Per-call budgets of what the manifest grants.
    allowances: Arc<[(&'static Budget, u32)]>,
    /// Per-plugin quotas of what the manifest grants.
    quotas: Arc<[(&'static Budget, u32)]>,
    pre: HandlerPre<CallState>,
}

impl LoadedPlugin {
    /// Loads `NAME.wasm` with its manifest `NAME.toml`: compiles the
    /// component, checks its imports against the grants and links only
    /// those. Compilation is CPU-bound: call this off the message path.
    pub fn load(
        engine: &PluginEngine,
        wasm_path: &Path,
        defaults: PluginLimits,
    ) -> Result<Self, LoadError> {
        let stem = wasm_path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("?")
            .to_string();
        let manifest = Manifest::load(
            &manifest_path_for(wasm_path),
            defaults,
            engine.capabilities(),
        )
        .map_err(|error| LoadError::new(&stem, error.to_string()))?;
        if manifest.name != stem {
            return Err(LoadError::new(
                &stem,
                format!(
                    "the manifest says name = {:?}, but files must be named after the plugin ({}.wasm, {}.toml)",
                    manifest.name, manifest.name, manifest.name
                ),
            ));
        }
        let bytes = std::fs::read(wasm_path).map_err(|error| {
            LoadError::new(
                &stem,
                format!("cannot read {}: {error}", wasm_path.display()),
            )
        })?;
        Self::from_parts(engine, manifest, &bytes)
    }

    /// Builds a plugin from a validated manifest and component bytes.
    pub fn from_parts(
        plugin_engine: &PluginEngine,
        manifest: Manifest,
        bytes: &[u8],
    ) -> Result<Self, LoadError> {
        let name = manifest.name.clone();
        let engine = plugin_engine.engine();
        let content_hash = content_hash(bytes);
        let component = plugin_engine
            .component(bytes, &content_hash)
            .map_err(|error| {
                LoadError::new(
                    &name,
                    format!("not a valid WebAssembly component for this host: {error:#}"),
                )
            })?;
        check_imports(engine, plugin_engine.capabilities(), &component, &manifest)?;
        let mut linker = Linker::<CallState>::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|error| LoadError::new(&name, format!("linking WASI: {error:#}")))?;
        for capability in &manifest.capabilities {
            (capability.link)(&mut linker).map_err(|error| {
                LoadError::new(
                    &name,
                    format!("linking capability `{}`: {error:#}", capability.name),
                )
            })?;
        }
        let instance_pre = linker
            .instantiate_pre(&component)
            .map_err(|error| LoadError::new(&name, format!("cannot be linked: {error:#}")))?;
        let pre = HandlerPre::new(instance_pre).map_err(|error| {
            LoadError::new(
                &name,
                format!("does not export the `handler` world's `handle` function: {error:#}"),
            )
        })?;
        let granted = manifest
            .capabilities
            .iter()
            .flat_map(|capability| capability.budgets.iter().copied());
        let allowances = budget::resolve(
            std::iter::once(&HOST_CALLS).chain(granted),
            &manifest.budgets,
            plugin_engine.budget_defaults(),
        )
        .map_err(|problem| LoadError::new(&name, problem))?;
        let quotas = budget::resolve(
            manifest
                .capabilities
                .iter()
                .flat_map(|capability| capability.quotas.iter().copied()),
            &manifest.budgets,
            plugin_engine.budget_defaults(),
        )
        .map_err(|problem| LoadError::new(&name, problem))?;
        Ok(Self {
            name: Arc::from(name.as_str()),
            secrets: manifest.secrets.clone().into(),
            allowances: allowances.into(),
            quotas: quotas.into(),
            manifest,
            content_hash,
            pre,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// What this plugin may keep, by quota.
    pub fn quotas(&self) -> &[(&'static Budget, u32)] {
        &self.quotas
    }

    /// SHA-256 of the component file, hex.
    pub fn content_hash(&self) -> &str {
        &self.content_hash
    }

    /// Runs `handle(message)` in a fresh instance under the plugin's limits.
    /// Whatever happens inside the guest ends here: the host goes on.
    pub async fn invoke(
        &self,
        message: &Message,
        ctx: &CallContext,
    ) -> Result<Reply, PluginFailure> {
        let limits = self.manifest.limits;
        let state = CallState::new(
            self.name.clone(),
            self.secrets.clone(),
            ctx.clone(),
            limits.memory_bytes,
            CallBudgets::new(&self.allowances),
            self.quotas.clone(),
        );
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|state| state.limiter());
        store.set_epoch_deadline(deadline_ticks(limits.timeout));
        store.epoch_deadline_trap();

        // The epoch deadline stops guest code; this outer timeout also stops a
        // call stuck awaiting a host function.
        let outcome = tokio::time::timeout(limits.timeout + EPOCH_TICK * 5, async {
            let handler = self.pre.instantiate_async(&mut store).await?;
            handler.call_handle(&mut store, message).await
        })
        .await;
        store.data().forward_output();
        store.data().report_budgets();

        match outcome {
            Err(_elapsed) => Err(PluginFailure::Timeout(limits.timeout)),
            Ok(Ok(Ok(reply))) => {
                if reply.text.len() > limits.reply_bytes {
                    report_cut(&self.name, "reply", reply.text.len(), limits.reply_bytes);
                }
                Ok(Reply {
                    text: cap_reply(store.data().mask(&reply.text), limits.reply_bytes),
                    format: reply.format,
                })
            }
            Ok(Ok(Err(text))) => {
                if text.len() > MAX_ERROR_BYTES {
                    report_cut(&self.name, "error", text.len(), MAX_ERROR_BYTES);
                }
                let text = store.data().mask(&text);
                Err(PluginFailure::Declined(
                    clean_capped(&text, MAX_ERROR_BYTES).into_owned(),
                ))
            }
            Ok(Err(error)) => {
                if error.downcast_ref::<PoolConcurrencyLimitError>().is_some() {
                    Err(PluginFailure::Busy)
                } else if store.data().memory_exceeded() {
                    Err(PluginFailure::OutOfMemory(limits.memory_bytes >> 20))
                } else if error.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
                    Err(PluginFailure::Timeout(limits.timeout))
                } else {
                    // A panic message may quote a secret the call was given.
                    Err(PluginFailure::Crashed(
                        store.data().mask(&format!("{error:#}")),
                    ))
                }
            }
        }
    }
}

/// The longest error text (`Err(text)`) kept; it reaches the user, the log
/// and the audit trail.
pub const MAX_ERROR_BYTES: usize = 1024;

/// One warning and `wasmbot_plugin_cuts_total{plugin, what}` for a reply or
/// an error text cut to its limit.
fn report_cut(plugin: &str, what: &'static str, bytes: usize, limit: usize) {
    metrics()
        .plugin_cuts
        .get_or_create(&CutLabels {
            plugin: plugin.to_string(),
            what: what.to_string(),
        })
        .inc();
    tracing::warn!(
        target: "plugin",
        plugin,
        what,
        bytes,
        limit,
        "the plugin's text was cut to its limit"
    );
}

/// A reply past the limit is cut, and says so.
fn cap_reply(text: String, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text;
    }
    let total_kib = text.len().div_ceil(1024);
    let mut cut = clean_capped(&text, max_bytes).into_owned();
    cut.push_str(&format!(
        "\n(cut: the reply was {total_kib} KiB; this plugin may send {} KiB)",
        max_bytes >> 10
    ));
    cut
}

fn deadline_ticks(timeout: Duration) -> u64 {
    let tick = EPOCH_TICK.as_millis().max(1);
    // Round up, plus one: the current tick may be about to end.
    (timeout.as_millis().div_ceil(tick) + 1) as u64
}

/// Refuses a component that imports anything the manifest does not grant,
/// with an error naming the interface — clearer than the linker's message.
fn check_imports(
    engine: &wasmtime::Engine,
    known: CapabilityTable,
    component: &Component,
    manifest: &Manifest,
) -> Result<(), LoadError> {
    let component_type = component.component_type();
    for (import, _) in component_type.imports(engine) {
        if WASI_PACKAGES
            .iter()
            .any(|prefix| import.starts_with(prefix))
        {
            continue;
        }
        let interface = import
            .strip_prefix(PLUGIN_PACKAGE)
            .map(|rest| rest.split('@').next().unwrap_or(rest));
        let reason = match interface {
            // `types` holds only type definitions; nothing to grant.
            Some("types") => continue,
            Some(name) => match Capability::find(known, name) {
                Some(capability) if manifest.grants(capability.name) => continue,
                Some(_) => format!(
                    "imports {PLUGIN_PACKAGE}{name} but the manifest does not grant `{name}` (add it to `capabilities`)"
                ),
                None => format!("imports `{import}`, which this host does not provide"),
            },
            None => format!("imports `{import}`, which this host does not provide"),
        };
        return Err(LoadError::new(&manifest.name, reason));
    }
    Ok(())
}
