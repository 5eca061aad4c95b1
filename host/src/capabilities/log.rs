//! `wasmbot:plugin/log`: a plugin's structured log lines, tagged by the host
//! with the plugin name; the correlation id comes from the message's span.

use crate::runtime::Budget;
use crate::runtime::CallState;
use crate::runtime::bindings::log::{self as wit, Field, Level};

/// Counted per call; `limits.log_lines` in the manifest, `PLUGIN_LOG_LINES` for the operator.
pub static LOG_LINES: Budget = Budget::new("log_lines", "log lines", 100, 10000);

/// A plugin can write at most this much per line; the rest is cut.
const MAX_MESSAGE_CHARS: usize = 4096;
const MAX_FIELDS: usize = 32;

impl wit::Host for CallState {
    async fn log(&mut self, level: Level, message: String, fields: Vec<Field>) {
        if self.spend(&LOG_LINES).is_err() {
            return;
        }
        let message = self.mask(truncate(&message, MAX_MESSAGE_CHARS));
        let fields = self.mask(&fields_json(&fields).to_string());
        let plugin = self.plugin();
        match level {
            Level::Trace => tracing::trace!(target: "plugin", plugin, %fields, "{message}"),
            Level::Debug => tracing::debug!(target: "plugin", plugin, %fields, "{message}"),
            Level::Info => tracing::info!(target: "plugin", plugin, %fields, "{message}"),
            Level::Warn => tracing::warn!(target: "plugin", plugin, %fields, "{message}"),
            Level::Error => tracing::error!(target: "plugin", plugin, %fields, "{message}"),
        }
    }
}

fn fields_json(fields: &[Field]) -> serde_json::Value {
    let map = fields
        .iter()
        .take(MAX_FIELDS)
        .map(|field| {
            (
                truncate(&field.key, 64).to_string(),
                serde_json::Value::String(if crate::infra::logging::is_sensitive(&field.key) {
                    crate::runtime::MASK.to_string()
                } else {
                    truncate(&field.value, MAX_MESSAGE_CHARS).to_string()
                }),
            )
        })
        .collect();
    serde_json::Value::Object(map)
}

fn truncate(text: &str, max_chars: usize) -> &str {
    match text.char_indices().nth(max_chars) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "hé");
        assert_eq!(truncate("hi", 10), "hi");
    }

    #[test]
    fn fields_become_a_json_object() {
        let fields = vec![Field {
            key: "chars".into(),
            value: "5".into(),
        }];
        assert_eq!(fields_json(&fields).to_string(), r#"{"chars":"5"}"#);
        let secret = vec![
            Field {
                key: "api_key".into(),
                value: "sk-123".into(),
            },
            Field {
                key: "Password".into(),
                value: "hunter2".into(),
            },
        ];
        assert_eq!(
            fields_json(&secret),
            serde_json::json!({"Password": "[redacted]", "api_key": "[redacted]"})
        );
    }
}
