//! One loaded plugin: its manifest and a pre-linked component, ready to be
//! instantiated afresh for every call.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, Linker};
use wasmtime::{PoolConcurrencyLimitError, Store, Trap, UpdateDeadline};

use crate::infra::metrics::{CutLabels, metrics};
use crate::infra::store::clean_capped;

use super::actions::{self, ActionLimits};
use super::bindings::conversation::events::{
    Action, Event, EventKind, Format, MessageRef, Outgoing,
};
use super::bindings::conversation::{Conversation, ConversationPre};
use super::bindings::proactive::happenings::Happening;
use super::bindings::proactive::{Proactive, ProactivePre};
use super::bindings::toolbox::{ToolCall, Toolbox, ToolboxPre};
use super::bindings::types::{Message, Reply, ReplyFormat};
use super::bindings::{Handler, HandlerPre};
use super::budget::{self, Budget, CallBudgets, HOST_CALLS};
use super::cache::content_hash;
use super::call::{CallContext, CallGrants, CallState, RevealedSecrets};
use super::capability::{Capability, CapabilityTable};
use super::engine::EPOCH_TICK;
use super::engine::PluginEngine;
use super::grant::{CallSetup, Grant, GrantInput, Prepare};
use super::guest_threads::{Computing, run_guest};
use super::language::Language;
use super::manifest::{Manifest, PluginLimits, manifest_path_for};
use super::settings::Settings;
use super::tools::{self, Tool};
use super::warm::{MakeInstance, WarmBudget, WarmInstances};

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
    /// The handler returned actions the host cannot carry out (too many,
    /// a button too large, a reference to no message).
    #[error("the plugin's actions were refused: {0}")]
    Unsendable(String),
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
            PluginFailure::Unsendable(_) => "unsendable",
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
    /// Every secret value the plugin was handed in this process, masked
    /// in whatever any of its calls writes.
    handed: RevealedSecrets,
    /// Per-plugin quotas of what the manifest grants.
    quotas: Arc<[(&'static Budget, u32)]>,
    settings: Arc<Settings>,
    /// What granted capabilities set up before each call, with what they
    /// kept of the manifest at load.
    preparations: Vec<(Prepare, Option<Grant>)>,
    entry: Entry,
    /// The tools the manifest declares, their schemas compiled.
    tools: Arc<[Tool]>,
    /// How a tool call reaches the component (`tools@0.3.0`), when it declares tools.
    toolbox: Option<ToolboxPre<CallState>>,
    /// Never-used instances made ahead of the calls that will take them.
    warm: WarmInstances<Ready>,
    language: Language,
    size_bytes: u64,
    /// Compiling (or loading from the compile cache) and linking.
    load_time: Duration,
}

/// A pre-warmed instance with the store it lives in.
struct Ready {
    store: Store<CallState>,
    instance: Instance,
}

/// An instance of the component, by world.
enum Instance {
    Handler(Handler),
    Conversation(Conversation),
    Proactive(Proactive),
    Toolbox(Toolbox),
}

/// The world a plugin was built for, found from what its component exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum World {
    /// `wasmbot:plugin/handler@0.1.0`: one command in, one reply out.
    Handler,
    /// `wasmbot:plugin/conversation@0.2.0`: events in, actions out.
    Conversation,
    /// `wasmbot:plugin/proactive@0.2.0`: a conversation plugin that also
    /// receives due jobs and webhooks (`on-event`).
    Proactive,
}

impl World {
    /// As `plugins list` shows it.
    pub fn label(self) -> &'static str {
        match self {
            World::Handler => "handler@0.1.0",
            World::Conversation => "conversation@0.2.0",
            World::Proactive => "proactive@0.2.0",
        }
    }
}

#[derive(Clone)]
enum Entry {
    Handler(HandlerPre<CallState>),
    Conversation(ConversationPre<CallState>),
    Proactive(ProactivePre<CallState>),
    Toolbox(ToolboxPre<CallState>),
}

/// What one call hands the plugin (owned: the call runs on the guest threads).
enum Input {
    /// A message, a button press, an answer: `handle`.
    Event(Event),
    /// A due job or a webhook: `on-event`.
    Happening(Happening),
    /// One of the plugin's tools: `tools.call`.
    Tool(ToolCall),
}

/// What a call of the plugin answered: actions, and for a tool call the
/// text Claude reads.
struct Output {
    actions: Vec<Action>,
    text: Option<String>,
}

/// What a tool call answered: the text Claude reads (masked and capped)
/// and the actions for the chat (checked and capped like any call's).
#[derive(Debug, Clone, PartialEq)]
pub struct ToolAnswer {
    pub text: String,
    pub actions: Vec<Action>,
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
        Self::load_among(engine, wasm_path, defaults, &plugin_names_beside(wasm_path))
    }

    /// [`Self::load`] when the caller already knows the other plugins'
    /// names (`siblings`), as a whole folder's load does.
    pub fn load_among(
        engine: &PluginEngine,
        wasm_path: &Path,
        defaults: PluginLimits,
        siblings: &[String],
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
        Self::build(engine, manifest, &bytes, siblings)
    }

    /// Builds a plugin from a validated manifest and component bytes.
    pub fn from_parts(
        plugin_engine: &PluginEngine,
        manifest: Manifest,
        bytes: &[u8],
    ) -> Result<Self, LoadError> {
        Self::build(plugin_engine, manifest, bytes, &[])
    }

    /// `siblings`: the other plugins' names, whose settings variables
    /// (`PLUGIN_GIT_HUB_*` for `git-hub` beside `git`) are not this one's.
    fn build(
        plugin_engine: &PluginEngine,
        manifest: Manifest,
        bytes: &[u8],
        siblings: &[String],
    ) -> Result<Self, LoadError> {
        let name = manifest.name.clone();
        let engine = plugin_engine.engine();
        let started = Instant::now();
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
        let tools: Arc<[Tool]> = tools::compile_all(&manifest.tools)
            .map_err(|problem| LoadError::new(&name, problem))?
            .into();
        let toolbox = if tools.is_empty() {
            None
        } else {
            Some(ToolboxPre::new(instance_pre.clone()).map_err(|error| {
                LoadError::new(
                    &name,
                    format!(
                        "the manifest declares tools, but the component does not export `wasmbot:plugin/tools@0.3.0` (rebuild it with this SDK: `handler!(handle, tools = tool)` in Rust, `def tool(call)` in Python, `export function tool(call)` in JavaScript): {error:#}"
                    ),
                )
            })?)
        };
        let entry = match ProactivePre::new(instance_pre.clone()) {
            Ok(pre) => Entry::Proactive(pre),
            Err(_) => match ConversationPre::new(instance_pre.clone()) {
                Ok(pre) => Entry::Conversation(pre),
                Err(conversation) => match HandlerPre::new(instance_pre) {
                    Ok(pre) => Entry::Handler(pre),
                    Err(handler) => {
                        // A `handle` of another shape: most likely built
                        // with an SDK from before the types last grew.
                        let hint = if format!("{conversation:#}").contains("type-checking") {
                            " (built against an older wasmbot:plugin@0.2.0? rebuild it with this SDK: `just build-plugins`)"
                        } else {
                            ""
                        };
                        return Err(LoadError::new(
                            &name,
                            format!(
                                "exports neither the `conversation` world's (0.2.0) nor the `handler` world's (0.1.0) `handle` function{hint}: {conversation:#}; {handler:#}"
                            ),
                        ));
                    }
                },
            },
        };
        if manifest.free_text && matches!(entry, Entry::Handler(_)) {
            return Err(LoadError::new(
                &name,
                "`free_text = true` needs the `conversation` world (wasmbot:plugin@0.2.0); this component is built for `handler` (0.1.0)",
            ));
        }
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
        let settings = Settings::resolve(
            &name,
            &manifest.settings,
            plugin_engine.setting_overrides(),
            siblings,
        )
        .map_err(|problem| LoadError::new(&name, problem))?;
        let mut preparations = Vec::new();
        for capability in &manifest.capabilities {
            let grant = match capability.configure {
                Some(configure) => Some(
                    configure(&GrantInput {
                        plugin: &name,
                        http: &manifest.http,
                        secrets: &manifest.secrets,
                        oauth: &manifest.oauth,
                        credential_hosts: &manifest.credential_hosts,
                        settings: &settings,
                        events: matches!(entry, Entry::Proactive(_)),
                    })
                    .map_err(|problem| {
                        LoadError::new(&name, format!("`{}`: {problem}", capability.name))
                    })?,
                ),
                None => None,
            };
            if let Some(prepare) = capability.prepare {
                preparations.push((prepare, grant));
            }
        }
        let name: Arc<str> = Arc::from(name.as_str());
        let secrets: Arc<[String]> = manifest.secrets.clone().into();
        let quotas: Arc<[(&'static Budget, u32)]> = quotas.into();
        let warm = WarmInstances::new(
            plugin_engine.warm_budget().clone(),
            instance_maker(&entry, &name, &secrets, &quotas, manifest.limits),
        );
        Ok(Self {
            handed: RevealedSecrets::handed_to(&name),
            settings: Arc::new(settings),
            preparations,
            name,
            secrets,
            allowances: allowances.into(),
            quotas,
            manifest,
            content_hash,
            entry,
            tools,
            toolbox,
            warm,
            language: Language::of(bytes),
            size_bytes: bytes.len() as u64,
            load_time: started.elapsed(),
        })
    }

    /// The world the component was built for.
    pub fn world(&self) -> World {
        match self.entry {
            Entry::Handler(_) => World::Handler,
            Entry::Conversation(_) => World::Conversation,
            Entry::Proactive(_) => World::Proactive,
            // Never a plugin's entry: only how its tools are reached.
            Entry::Toolbox(_) => World::Conversation,
        }
    }

    /// The world as `plugins list` shows it: a component that exports
    /// `tools` was built against 0.3.0 (whose worlds include 0.2.0's).
    pub fn world_label(&self) -> &'static str {
        match (self.world(), self.toolbox.is_some()) {
            (World::Proactive, true) => "proactive@0.3.0",
            (World::Conversation, true) => "conversation@0.3.0",
            (world, _) => world.label(),
        }
    }

    /// `text` with every secret value this plugin was handed replaced (what
    /// the host writes about its calls, a tool's input say).
    pub fn mask(&self, text: &str) -> String {
        self.handed.mask(text)
    }

    /// The tools the manifest declares, checked at load.
    pub fn tools(&self) -> &[Tool] {
        &self.tools
    }

    /// The tool called `name`, if this plugin declares it.
    pub fn tool(&self, name: &str) -> Option<&Tool> {
        self.tools.iter().find(|tool| tool.name() == name)
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

    /// The toolchain that made the component.
    pub fn language(&self) -> Language {
        self.language
    }

    /// The component file's size.
    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    /// How long compiling (or loading from the compile cache) and linking took.
    pub fn load_time(&self) -> Duration {
        self.load_time
    }

    /// Pre-warmed instances ready now.
    pub fn ready_instances(&self) -> usize {
        self.warm.ready()
    }

    /// Calls that found a pre-warmed instance.
    pub fn warm_hits(&self) -> u64 {
        self.warm.hits()
    }

    /// Drops the pre-warmed instances and makes no more: a reload replaced
    /// or removed this version.
    pub fn discard_ready(&self) {
        self.warm.discard();
    }

    /// Runs `handle(event)` in a fresh instance under the plugin's limits
    /// and returns the actions to carry out, checked and capped. Whatever
    /// happens inside the guest ends here: the host goes on.
    pub async fn invoke(
        &self,
        event: &Event,
        ctx: &CallContext,
    ) -> Result<Vec<Action>, PluginFailure> {
        self.call(
            Input::Event(event.clone()),
            ctx,
            self.manifest.limits.timeout,
        )
        .await
        .map(|output| output.actions)
    }

    /// Runs `tools.call` for one of the plugin's tools in a fresh instance
    /// under the plugin's own limits, budgets and grants. The input must
    /// fit the tool's schema; an unknown tool or a refused input fails
    /// here, before any instance is made.
    pub async fn call_tool(
        &self,
        name: &str,
        input: &serde_json::Value,
        ctx: &CallContext,
    ) -> Result<ToolAnswer, PluginFailure> {
        let tool = self.tool(name).ok_or_else(|| {
            PluginFailure::Declined(format!("`{}` has no tool called {name:?}", self.name))
        })?;
        if let Some(problem) = tool.refuses(input) {
            return Err(PluginFailure::Declined(problem));
        }
        let call = ToolCall {
            name: name.to_string(),
            input: input.to_string(),
            correlation_id: ctx.correlation_id.to_string(),
            chat_id: ctx.chat_id,
            user_id: ctx.user_id,
        };
        let output = self
            .call(Input::Tool(call), ctx, self.manifest.limits.timeout)
            .await?;
        Ok(ToolAnswer {
            text: output.text.unwrap_or_default(),
            actions: output.actions,
        })
    }

    /// Runs `on-event(happening)` (a due job, a webhook) like [`Self::invoke`];
    /// a plugin without the export fails the call.
    pub async fn invoke_happening(
        &self,
        happening: &Happening,
        ctx: &CallContext,
    ) -> Result<Vec<Action>, PluginFailure> {
        if !matches!(self.entry, Entry::Proactive(_)) {
            return Err(PluginFailure::Crashed(format!(
                "`{}` does not export `on-event` (the proactive world), so it cannot take a due job or a webhook",
                self.name
            )));
        }
        let timeout = self.manifest.limits.timeout.min(MAX_HAPPENING_TIMEOUT);
        self.call(Input::Happening(happening.clone()), ctx, timeout)
            .await
            .map(|output| output.actions)
    }

    async fn call(
        &self,
        input: Input,
        ctx: &CallContext,
        timeout: Duration,
    ) -> Result<Output, PluginFailure> {
        let limits = PluginLimits {
            timeout,
            ..self.manifest.limits
        };
        self.handed.learn_stored(&self.secrets, &ctx.services).await;
        let grants = self.prepare(ctx)?;
        let budgets = CallBudgets::new(&self.allowances);
        // Ready instances are made for `handle`; a tool call makes its own.
        let (entry, warm_instance) = match (&input, &self.toolbox) {
            (Input::Tool(_), Some(toolbox)) => (Entry::Toolbox(toolbox.clone()), None),
            (Input::Tool(call), None) => {
                return Err(PluginFailure::Declined(format!(
                    "`{}` has no tool called {:?}",
                    self.name, call.name
                )));
            }
            _ => (self.entry.clone(), self.warm.take()),
        };
        let (mut store, ready) = match warm_instance {
            Some(mut ready) => {
                ready.store.data_mut().begin(ctx.clone(), budgets, grants);
                (ready.store, Some(ready.instance))
            }
            None => {
                let state = CallState::new(
                    self.name.clone(),
                    self.secrets.clone(),
                    ctx.clone(),
                    limits.memory_bytes,
                    budgets,
                    self.quotas.clone(),
                    grants,
                );
                (new_store(self.entry.engine(), state), None)
            }
        };
        let computing = Computing::default();
        yield_until(
            &mut store,
            Instant::now() + limits.timeout,
            computing.clone(),
        );

        let warm = self.warm.budget().clone();
        let guest = async move {
            // The epoch deadline stops guest code; this outer timeout also
            // stops a call stuck awaiting a host function.
            let outcome = tokio::time::timeout(limits.timeout + EPOCH_TICK * 5, async {
                let instance = match ready {
                    Some(instance) => instance,
                    None => instantiate_evicting(&entry, &warm, &mut store).await?,
                };
                run(instance, input, &mut store).await
            })
            .await;
            (store, outcome)
        };
        let (mut store, outcome) = run_guest(guest, computing)
            .await
            .map_err(|error| PluginFailure::Crashed(error.to_string()))?;
        store.data().forward_output();
        store.data().report_budgets();

        let result = self.outcome(outcome, &store, ctx, limits);
        store.data_mut().end();
        // Dropping an instance resets its memory: done by the warm task, not here.
        self.warm.retire(store);
        result
    }

    fn outcome(
        &self,
        outcome: Result<wasmtime::Result<Result<Output, String>>, tokio::time::error::Elapsed>,
        store: &Store<CallState>,
        ctx: &CallContext,
        limits: PluginLimits,
    ) -> Result<Output, PluginFailure> {
        match outcome {
            Err(_elapsed) => Err(PluginFailure::Timeout(limits.timeout)),
            Ok(Ok(Ok(Output { actions, text }))) => {
                let limits = ActionLimits {
                    text_bytes: limits.reply_bytes,
                    file_bytes: usize::try_from(ctx.services.media.max_bytes).unwrap_or(usize::MAX),
                };
                let bounded = actions::bound(actions, limits, |text| store.data().mask(text))
                    .map_err(PluginFailure::Unsendable)?;
                if let Some(total) = bounded.cut_from {
                    report_cut(&self.name, "reply", total, limits.text_bytes);
                }
                let text = text.map(|text| {
                    if text.len() > limits.text_bytes {
                        report_cut(&self.name, "tool result", text.len(), limits.text_bytes);
                    }
                    let text = store.data().mask(&text);
                    clean_capped(&text, limits.text_bytes).into_owned()
                });
                Ok(Output {
                    actions: bounded.actions,
                    text,
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

/// Calls the instance's export for `input`: `handle` or `on-event`.
async fn run(
    instance: Instance,
    input: Input,
    store: &mut Store<CallState>,
) -> wasmtime::Result<Result<Output, String>> {
    if let (Instance::Toolbox(toolbox), Input::Tool(call)) = (&instance, &input) {
        let answer = toolbox
            .wasmbot_plugin0_3_0_tools()
            .call_call(&mut *store, call)
            .await?;
        return Ok(answer.map(|output| Output {
            actions: output.actions,
            text: Some(output.text),
        }));
    }
    let actions = match (instance, input) {
        (Instance::Proactive(plugin), Input::Event(event)) => {
            plugin.call_handle(store, &event).await
        }
        (Instance::Proactive(plugin), Input::Happening(happening)) => {
            plugin.call_on_event(store, &happening).await
        }
        (Instance::Conversation(plugin), Input::Event(event)) => {
            plugin.call_handle(store, &event).await
        }
        (Instance::Handler(handler), Input::Event(event)) => {
            let Some(message) = legacy_message(&event) else {
                // Only commands are routed to a 0.1.0 plugin.
                return Ok(Ok(Output {
                    actions: Vec::new(),
                    text: None,
                }));
            };
            let reply = handler.call_handle(store, &message).await?;
            Ok(reply.map(|reply| vec![legacy_send(reply)]))
        }
        // Refused by `invoke_happening` and `call_tool` before any instance is made.
        _ => Ok(Ok(Vec::new())),
    }?;
    Ok(actions.map(|actions| Output {
        actions,
        text: None,
    }))
}

/// A fresh instance for a call. Instances made ahead (or used ones not
/// dropped yet) must never make a message "busy": when the pool is full
/// they are dropped, and the call waits for those still being made.
async fn instantiate_evicting(
    entry: &Entry,
    warm: &WarmBudget,
    store: &mut Store<CallState>,
) -> wasmtime::Result<Instance> {
    let mut tries = 0;
    loop {
        match entry.instantiate(store).await {
            Err(error)
                if error.downcast_ref::<PoolConcurrencyLimitError>().is_some()
                    && tries < EVICTION_TRIES
                    && warm.evict_all() =>
            {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            other => return other,
        }
    }
}

/// The call's deadline, with guest code handing its thread back at every
/// epoch tick until then: a guest that computes moves to the guest threads
/// (`computing`) and lets the other calls there move (and never holds a
/// thread past `deadline`).
fn yield_until(store: &mut Store<CallState>, deadline: Instant, computing: Computing) {
    store.epoch_deadline_callback(move |_| {
        if Instant::now() >= deadline {
            Ok(UpdateDeadline::Interrupt)
        } else {
            computing.note();
            Ok(UpdateDeadline::YieldCustom(
                1,
                Box::pin(tokio::task::yield_now()),
            ))
        }
    });
    store.set_epoch_deadline(1);
}

impl LoadedPlugin {
    /// What the granted capabilities add to one call (a folder, per-call
    /// state); a failure (the folder cannot be opened) fails the call.
    fn prepare(&self, ctx: &CallContext) -> Result<CallGrants, PluginFailure> {
        let mut grants = CallGrants {
            settings: self.settings.clone(),
            revealed: self.handed.clone(),
            ..CallGrants::default()
        };
        for (prepare, grant) in &self.preparations {
            let setup = CallSetup {
                plugin: &self.name,
                context: ctx,
                grant: grant.as_ref(),
                settings: &self.settings,
                timeout: self.manifest.limits.timeout,
                revealed: &grants.revealed,
                allowances: &self.allowances,
                quotas: &self.quotas,
            };
            let extension = prepare(&setup, &mut grants.wasi).map_err(|error| {
                PluginFailure::Crashed(format!("preparing the call: {error:#}"))
            })?;
            grants.extensions.extend(extension);
        }
        Ok(grants)
    }

    /// The plugin's settings, resolved at load.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }
}

/// The names of the other plugins in `wasm`'s folder (their manifests).
fn plugin_names_beside(wasm: &Path) -> Vec<String> {
    let Some(dir) = wasm.parent() else {
        return Vec::new();
    };
    let own = wasm.file_stem();
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
                .filter(|path| path.file_stem() != own)
                .filter_map(|path| path.file_stem()?.to_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// What a 0.1.0 handler (or a native command) receives for a command event.
pub fn legacy_message(event: &Event) -> Option<Message> {
    let EventKind::Command(command) = &event.kind else {
        return None;
    };
    Some(Message {
        correlation_id: event.correlation_id.clone(),
        chat_id: event.chat_id,
        user_id: event.user_id,
        username: event.username.clone(),
        command: command.name.clone(),
        args: command.args.clone(),
        text: event.text.clone(),
    })
}

/// A 0.1.0 reply is one message sent.
pub fn legacy_send(reply: Reply) -> Action {
    Action::Send(Outgoing {
        text: reply.text,
        format: match reply.format {
            ReplyFormat::Plain => Format::Plain,
            ReplyFormat::Markdown => Format::Markdown,
            ReplyFormat::Html => Format::Html,
        },
        keyboard: Vec::new(),
        reply_to: None::<MessageRef>,
        name: None,
    })
}

/// The longest a due job or a webhook delivery may run, whatever the
/// manifest's `timeout_ms` (up to 600 s for a chat's command): a job holds
/// one of its plugin's few job slots for that long.
pub const MAX_HAPPENING_TIMEOUT: Duration = Duration::from_secs(60);

/// How often a call waits 1 ms for instances made ahead to give their
/// pool slots back before it is answered "busy".
const EVICTION_TRIES: u32 = 100;

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

impl Entry {
    fn engine(&self) -> &wasmtime::Engine {
        match self {
            Entry::Handler(pre) => pre.engine(),
            Entry::Conversation(pre) => pre.engine(),
            Entry::Proactive(pre) => pre.engine(),
            Entry::Toolbox(pre) => pre.engine(),
        }
    }

    async fn instantiate(&self, store: &mut Store<CallState>) -> wasmtime::Result<Instance> {
        Ok(match self {
            Entry::Handler(pre) => Instance::Handler(pre.instantiate_async(store).await?),
            Entry::Conversation(pre) => Instance::Conversation(pre.instantiate_async(store).await?),
            Entry::Proactive(pre) => Instance::Proactive(pre.instantiate_async(store).await?),
            Entry::Toolbox(pre) => Instance::Toolbox(pre.instantiate_async(store).await?),
        })
    }
}

/// A store for one instance: the plugin's memory cap, interrupted at its deadline.
fn new_store(engine: &wasmtime::Engine, state: CallState) -> Store<CallState> {
    let mut store = Store::new(engine, state);
    store.limiter(|state| state.limiter());
    store.epoch_deadline_trap();
    store
}

/// How the warm task makes an instance of this plugin ahead of its call.
fn instance_maker(
    entry: &Entry,
    name: &Arc<str>,
    secrets: &Arc<[String]>,
    quotas: &Arc<[(&'static Budget, u32)]>,
    limits: PluginLimits,
) -> MakeInstance<Ready> {
    let (entry, name, secrets, quotas) =
        (entry.clone(), name.clone(), secrets.clone(), quotas.clone());
    Arc::new(move || {
        let (entry, name, secrets, quotas) =
            (entry.clone(), name.clone(), secrets.clone(), quotas.clone());
        Box::pin(async move {
            let state = CallState::idle(name, secrets, limits.memory_bytes, quotas);
            let mut store = new_store(entry.engine(), state);
            store.set_epoch_deadline(deadline_ticks(limits.timeout));
            // A failure here (the pool full) is the call's to meet and report.
            let instance = entry.instantiate(&mut store).await.ok()?;
            let bytes = store.data().memory_bytes();
            Some((Ready { store, instance }, bytes))
        })
    })
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
        if let Some(capability) = Capability::providing(known, import) {
            if manifest.grants(capability.name) {
                continue;
            }
            return Err(LoadError::new(
                &manifest.name,
                format!(
                    "imports `{import}` but the manifest does not grant `{}` (add it to `capabilities`)",
                    capability.name
                ),
            ));
        }
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
            // `types` (0.1.0), `events` and `happenings` (0.2.0) hold only
            // type definitions; nothing to grant.
            Some("types" | "events" | "happenings") => continue,
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
