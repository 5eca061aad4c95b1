//! The WebAssembly side: engine, manifests, loading, the per-call store and
//! the registry of loaded plugins.

mod bindings;
mod call;
mod engine;
mod manifest;
mod plugin;
mod registry;

/// The generated `log` interface, for `capabilities::log`.
pub use bindings::wasmbot::plugin::log as bindings_log;
pub use bindings::wasmbot::plugin::types::{Message, Reply, ReplyFormat};
pub use call::CallState;
pub use engine::{MAX_PLUGIN_MEMORY_MB, PluginEngine};
pub use manifest::{CommandSpec, Manifest, ManifestError, PluginLimits};
pub use plugin::{CallContext, LoadError, LoadedPlugin, PluginFailure};
pub use registry::{PluginRegistry, PluginSet};
