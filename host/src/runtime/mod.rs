//! The WebAssembly side: engine, manifests, loading, the per-call store and
//! the registry of loaded plugins.

mod bindings;
mod cache;
mod call;
mod engine;
mod manifest;
mod plugin;
mod registry;
mod watcher;

// The generated interfaces, for their modules under `capabilities`.
pub use bindings::wasmbot::plugin::audit as bindings_audit;
pub use bindings::wasmbot::plugin::cache as bindings_cache;
pub use bindings::wasmbot::plugin::health as bindings_health;
pub use bindings::wasmbot::plugin::llm as bindings_llm;
pub use bindings::wasmbot::plugin::log as bindings_log;
pub use bindings::wasmbot::plugin::secrets as bindings_secrets;
pub use bindings::wasmbot::plugin::state as bindings_state;
pub use bindings::wasmbot::plugin::types::{Message, Reply, ReplyFormat};
pub use bindings::wasmbot::plugin::vectors as bindings_vectors;
pub use cache::{CompileStats, content_hash};
pub use call::{CallState, MASK};
pub use engine::{Allocation, MAX_PLUGIN_MEMORY_MB, PluginEngine};
pub use manifest::{CommandSpec, Manifest, ManifestError, PluginLimits};
pub use plugin::{CallContext, LoadError, LoadedPlugin, PluginFailure};
pub use registry::{PluginRegistry, PluginSet, ReloadOutcome};
pub use watcher::{DEBOUNCE, PluginWatcher, watch};
