//! What is said about one plugin request once it ends: a log line, the
//! `wasmbot_plugin_http_requests_total` counter and an `http_request`
//! audit entry — method, host, status, bytes, duration and the secrets
//! injected, never headers, queries or bodies.

use std::sync::Arc;
use std::time::Instant;

use wasmtime_wasi_http::Error;

use crate::infra::metrics::{HttpLabels, metrics};
use crate::infra::services::HostServices;
use crate::infra::store::AuditEntry;

/// What the audit and the log say about one request.
pub struct RequestRecord {
    pub plugin: Arc<str>,
    pub method: String,
    pub host: String,
    pub secrets: Vec<String>,
    pub audit: AuditEntry,
    pub services: Arc<HostServices>,
    pub started: Instant,
}

impl RequestRecord {
    /// Logs, counts and audits the request's end. `outcome` is the metric's
    /// label; `status` the HTTP status when one came back.
    pub fn finish(&self, outcome: &str, status: Option<u16>, bytes: u64, error: Option<String>) {
        let duration = self.started.elapsed();
        self.count(outcome);
        // One line either way; a refusal or a failure is a warning.
        macro_rules! line {
            ($level:ident, $message:literal) => {
                tracing::$level!(
                    target: "plugin",
                    plugin = %self.plugin,
                    method = %self.method,
                    host = %self.host,
                    status,
                    bytes,
                    duration_ms = duration.as_millis() as u64,
                    error = error.as_deref(),
                    $message
                )
            };
        }
        if error.is_none() {
            line!(info, "plugin HTTP request");
        } else {
            line!(warn, "plugin HTTP request refused or failed");
        }
        if let Some(writer) = &self.services.audit {
            let mut entry = self.audit.clone();
            entry.created_at = chrono::Utc::now();
            entry.status = outcome.to_string();
            entry.error = error;
            entry.duration_ms = Some(duration.as_secs_f64() * 1000.0);
            entry.metadata = sqlx::types::Json(serde_json::json!({
                "method": self.method,
                "host": self.host,
                "status": status,
                "bytes": bytes,
                "secrets": self.secrets,
            }));
            // The plugin caused it: it takes the plugin's share of the queue.
            writer.record_from_plugin(entry);
        }
    }

    /// Counts the request in `wasmbot_plugin_http_requests_total` only.
    pub fn count(&self, outcome: &str) {
        metrics()
            .plugin_http_requests
            .get_or_create(&HttpLabels {
                plugin: self.plugin.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }
}

pub fn outcome_of(error: &Error) -> &'static str {
    match error {
        Error::DestinationIpProhibited => "prohibited",
        Error::HttpResponseBodySize(_) => "too_large",
        Error::ConnectionTimeout
        | Error::ConnectionReadTimeout
        | Error::HttpResponseTimeout
        | Error::DnsTimeout => "timeout",
        _ => "failed",
    }
}

/// The log's and the audit's words for a failure (never a header).
pub fn describe(error: &Error, host: &str, max_body: u64) -> String {
    match error {
        Error::DestinationIpProhibited => format!(
            "{host} resolves only to private addresses (allow host:port, or plugin=host:port, in HTTP_ALLOW_PRIVATE)"
        ),
        Error::HttpResponseBodySize(_) => format!("the response is over {max_body} bytes"),
        other => other.to_string(),
    }
}
