//! `wasmbot:plugin/audit`: a plugin records an action in the append-only
//! trail; the host adds time, plugin, user, chat and correlation id.

use crate::runtime::Budget;
use crate::runtime::CallState;
use crate::runtime::bindings::audit::{self as wit, Status};

/// Counted per call; `limits.audit_entries` in the manifest, `PLUGIN_AUDIT_ENTRIES` for the operator.
pub static AUDIT_ENTRIES: Budget = Budget::new("audit_entries", "audit entries", 50, 1000);

const MAX_ACTION_BYTES: usize = 128;
const MAX_METADATA_BYTES: usize = 16 * 1024;

impl wit::Host for CallState {
    async fn record_action(
        &mut self,
        action: String,
        status: Status,
        metadata: String,
    ) -> Result<(), String> {
        self.spend(&AUDIT_ENTRIES)
            .map_err(|over| over.to_string())?;
        // A secret handed out in this call is masked here too.
        let (action, metadata) = (self.mask(&action), self.mask(&metadata));
        if action.is_empty() || action.len() > MAX_ACTION_BYTES {
            return Err(format!("action must be 1-{MAX_ACTION_BYTES} bytes"));
        }
        if metadata.len() > MAX_METADATA_BYTES {
            return Err(format!(
                "metadata must be at most {MAX_METADATA_BYTES} bytes"
            ));
        }
        let metadata: serde_json::Value = if metadata.trim().is_empty() {
            serde_json::json!({})
        } else {
            serde_json::from_str(&metadata)
                .map_err(|error| format!("metadata is not valid JSON: {error}"))?
        };
        if !metadata.is_object() {
            return Err("metadata must be a JSON object".into());
        }
        let status = match status {
            Status::Ok => "ok",
            Status::Error => "error",
            Status::Denied => "denied",
        };
        if self.audit_plugin_action(&action, status, metadata) {
            Ok(())
        } else {
            self.over_quota("audit_queue");
            Err("the audit trail is busy: this entry was not recorded; try again later".into())
        }
    }
}
