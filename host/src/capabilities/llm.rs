//! `wasmbot:plugin/llm`: Claude, owned by the host. A plugin sends a
//! conversation and gets text and token usage, or a typed error; it never
//! sees the API key. Every request is logged (`llm_response`) and audited
//! (`llm_request`) under the message's correlation id, and failures follow
//! one policy: overloaded/down -> friendly error + admin alert (and one
//! recovery notice later); rate limited -> warning only; key refused ->
//! critical log + admin alert.

use std::time::Instant;

use crate::infra::alert::Alerter;
use crate::infra::llm::{Completion, CompletionRequest, LlmClient, LlmFailure, Role};
use crate::infra::metrics::{TokenLabels, label, metrics};
use crate::runtime::Budget;
use crate::runtime::CallState;
use crate::runtime::bindings::llm::{self as wit, LlmError};

/// Counted per call; `limits.llm_requests` in the manifest, `PLUGIN_LLM_REQUESTS` for the operator.
pub static LLM_REQUESTS: Budget = Budget::new("llm_requests", "LLM requests", 5, 100);

/// Alert keys: one outage alert and one key alert per 5 minutes at most.
const ALERT_KEY_UNAVAILABLE: &str = "llm";
const ALERT_KEY_UNAUTHORIZED: &str = "llm-auth";

impl wit::Host for CallState {
    async fn complete(
        &mut self,
        request: wit::CompletionRequest,
    ) -> Result<wit::Completion, LlmError> {
        self.spend(&LLM_REQUESTS)?;
        let services = self.services().clone();
        let request = CompletionRequest {
            system: request.system,
            messages: request
                .messages
                .into_iter()
                .map(|m| {
                    let role = match m.role {
                        wit::Role::User => Role::User,
                        wit::Role::Assistant => Role::Assistant,
                    };
                    (role, m.content)
                })
                .collect(),
            max_tokens: request.max_tokens,
        };
        let started = Instant::now();
        let (model, outcome) = match &services.llm {
            Some(client) => {
                let outcome = client.complete(&request).await;
                apply_error_policy(client, &services.alerter, &outcome);
                (client.model().to_string(), outcome)
            }
            None => (String::new(), Err(LlmFailure::NotConfigured)),
        };
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        self.account(&model, &outcome, latency_ms);
        match outcome {
            Ok(completion) => Ok(wit::Completion {
                text: completion.text,
                stop_reason: completion.stop_reason,
                model: completion.model,
                usage: wit::Usage {
                    input_tokens: completion.input_tokens,
                    output_tokens: completion.output_tokens,
                },
            }),
            Err(failure) => Err(match failure {
                LlmFailure::NotConfigured => LlmError::NotConfigured,
                LlmFailure::Unavailable(detail) => LlmError::Unavailable(detail),
                LlmFailure::RateLimited(after) => LlmError::RateLimited(after),
                LlmFailure::Unauthorized => LlmError::Unauthorized,
                LlmFailure::Timeout => LlmError::Timeout,
                LlmFailure::BadRequest(detail) => LlmError::BadRequest(detail),
            }),
        }
    }
}

impl CallState {
    /// One `llm_response` log event and one `llm_request` audit entry.
    fn account(&self, model: &str, outcome: &Result<Completion, LlmFailure>, latency_ms: f64) {
        let status = match outcome {
            Ok(_) => "ok",
            Err(failure) => failure.status(),
        };
        let m = metrics();
        m.llm_requests.get_or_create(&label(status)).inc();
        if let Ok(completion) = outcome {
            for (direction, count) in [
                ("input", completion.input_tokens),
                ("output", completion.output_tokens),
            ] {
                m.llm_tokens
                    .get_or_create(&TokenLabels {
                        direction: direction.into(),
                    })
                    .inc_by(u64::from(count));
            }
        }
        let mut entry = self.audit_entry("llm_request", status);
        entry.duration_ms = Some(latency_ms);
        match outcome {
            Ok(completion) => {
                tracing::info!(
                    plugin = self.plugin(),
                    model = %completion.model,
                    input_tokens = completion.input_tokens,
                    output_tokens = completion.output_tokens,
                    stop_reason = %completion.stop_reason,
                    latency_ms,
                    "llm_response"
                );
                entry.model = Some(completion.model.clone());
                entry.metadata = sqlx::types::Json(serde_json::json!({
                    "input_tokens": completion.input_tokens,
                    "output_tokens": completion.output_tokens,
                    "stop_reason": completion.stop_reason,
                }));
            }
            Err(failure) => {
                tracing::info!(plugin = self.plugin(), model, status, latency_ms, error = %failure, "llm_response");
                entry.model = Some(model.to_string()).filter(|m| !m.is_empty());
                entry.error = Some(failure.to_string());
            }
        }
        self.record_audit(entry);
    }
}

/// Logs and alerts as the error policy says; the caller's reply is the plugin's business.
fn apply_error_policy(
    client: &LlmClient,
    alerter: &Alerter,
    outcome: &Result<Completion, LlmFailure>,
) {
    match outcome {
        Ok(_) => {
            if client.mark_available() {
                tracing::info!("the LLM service is available again");
                alerter.notify(ALERT_KEY_UNAVAILABLE, "✅ Claude is available again.");
            }
        }
        Err(LlmFailure::Unavailable(detail)) => {
            client.mark_unavailable();
            tracing::error!(%detail, "the LLM service is unavailable");
            alerter.alert(
                ALERT_KEY_UNAVAILABLE,
                format!("⚠️ Claude is temporarily unavailable ({detail}). Users are told to try again later; you will get a notice when it is back."),
            );
        }
        Err(LlmFailure::RateLimited(after)) => {
            tracing::warn!(retry_after_s = ?after, "the LLM service rate-limited a request");
        }
        Err(LlmFailure::Unauthorized) => {
            tracing::error!(critical = true, "the LLM service refused the API key");
            alerter.alert(
                ALERT_KEY_UNAUTHORIZED,
                "🔑 API key issue detected: Anthropic refused the configured key (HTTP 401/403). Check ANTHROPIC_API_KEY / ANTHROPIC_AUTH_TOKEN.",
            );
        }
        Err(LlmFailure::Timeout) => tracing::warn!("the LLM request timed out"),
        Err(LlmFailure::BadRequest(detail)) => {
            tracing::warn!(%detail, "the LLM service refused the request")
        }
        Err(LlmFailure::NotConfigured) => {}
    }
}

over_budget_is!(LlmError);
