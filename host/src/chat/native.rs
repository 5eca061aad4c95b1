//! Commands the host answers itself instead of a plugin: benchmarks compare
//! the two through the same dispatcher path.

use std::sync::Arc;

use crate::runtime::{Action, Event, Message, PluginFailure, Reply, legacy_message, legacy_send};

/// A command handled by host code instead of a plugin.
pub type NativeHandler = Arc<dyn Fn(&Message) -> Reply + Send + Sync>;

/// The plugin name native commands are logged, audited and counted under.
pub const NATIVE: &str = "native";

/// Calls `handler` as a plugin would be: the event as a 0.1.0 message, its reply sent.
pub fn native_call(handler: &NativeHandler, event: &Event) -> Result<Vec<Action>, PluginFailure> {
    Ok(legacy_message(event)
        .map(|message| vec![legacy_send(handler(&message))])
        .unwrap_or_default())
}
