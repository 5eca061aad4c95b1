//! The audit trail (needs `capabilities = ["audit"]`). The host adds time,
//! plugin, user, chat and correlation id.

use crate::bindings::wasmbot::plugin0_1_0::audit as wit;
pub use crate::bindings::wasmbot::plugin0_1_0::audit::Status;

/// Records `action` with `status` and a JSON object of details.
pub fn record(action: &str, status: Status, metadata: &serde_json::Value) -> Result<(), String> {
    wit::record_action(action, status, &metadata.to_string())
}
