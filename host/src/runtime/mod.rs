//! The WebAssembly side: engine, manifests, loading, the per-call store and
//! the registry of loaded plugins. It links whatever capability table it is
//! handed and names no capability itself.

mod actions;
mod agent_link;
pub mod bindings;
mod budget;
mod cache;
mod call;
mod capability;
mod chat_link;
mod engine;
mod grant;
mod guest_threads;
mod language;
mod manifest;
mod plugin;
mod registry;
mod settings;
mod tools;
mod warm;
mod watcher;

pub use actions::{
    DEFAULT_PROMPT_WAIT, MAX_ACTIONS, MAX_BUTTON_DATA_BYTES, MAX_BUTTON_LABEL_CHARS, MAX_BUTTONS,
    MAX_BUTTONS_PER_ROW, MAX_PROMPT_STATE_BYTES, MAX_PROMPT_WAIT,
};
pub use agent_link::{AWAITING_CONFIRMATION, AgentLink, AgentReply};
pub use bindings::conversation::events::{
    Action, Attachment, AttachmentKind, Button, ButtonPress, ChatType, Command, Edit, Event,
    EventKind, FileKind, Format, MessageRef, Notice, Outgoing, OutgoingFile, Question, Quoted,
    Reaction,
};
pub use bindings::proactive::happenings::{DueJob, Happening, HappeningKind, Webhook};
pub use bindings::types::{Message, Reply, ReplyFormat};
pub use budget::{Budget, BudgetDefaults, HOST_CALLS, OverBudget, RefusalTally, count_refusals};
pub use cache::{CompileStats, content_hash};
pub use call::{CallContext, CallGrants, CallState, Extension, MASK, RevealedSecrets};
pub use capability::{Capability, CapabilityTable};
pub use chat_link::{ChatLink, FetchFailure, LinkFuture};
pub use engine::{Allocation, DEFAULT_POOL_INSTANCES, MAX_PLUGIN_MEMORY_MB, PluginEngine};
pub use grant::{CallSetup, Configure, Grant, GrantInput, Prepare};
pub use language::Language;
pub use manifest::{
    CANCEL_COMMAND, CommandSpec, HELP_COMMAND, MAX_DESCRIPTION_CHARS, MAX_REPLY_KB, MAX_TIMEOUT_MS,
    Manifest, ManifestError, PluginLimits,
};
pub use plugin::{
    LoadError, LoadedPlugin, PluginFailure, ToolAnswer, World, legacy_message, legacy_send,
};
pub use registry::{PluginRegistry, PluginSet, ReloadOutcome};
pub use settings::{SettingOverrides, Settings, variable_part};
pub use tools::{MAX_TOOLS_PER_PLUGIN, Tool, ToolSpec, valid_name as valid_tool_name};
pub use warm::{DEFAULT_WARM_MEMORY_MB, DEFAULT_WARM_PER_PLUGIN, WarmBudget, WarmLimits};
pub use watcher::{DEBOUNCE, PluginWatcher, watch};
