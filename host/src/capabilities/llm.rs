//! `wasmbot:plugin/llm`: Claude, owned by the host. A plugin sends a
//! conversation and gets text and token usage, or a typed error; it never
//! sees the API key. Every request is logged (`llm_response`) and audited
//! (`llm_request`) under the message's correlation id, and failures follow
//! one policy: overloaded/down -> friendly error + admin alert (and one
//! recovery notice later); rate limited -> warning only; key refused ->
//! critical log + admin alert. `stream-reply` shows the answer in the
//! event's chat while Claude writes it (through the adapter's
//! [`crate::runtime::ChatLink`]); user messages may carry images and PDFs.

use std::time::Instant;

use crate::infra::alert::Alerter;
use crate::infra::services::HostServices;
use crate::infra::store::AuditEntry;
use tokio::sync::watch;

use crate::infra::llm::{
    Completion, CompletionRequest, LlmClient, LlmFailure, LlmFile, Role, Turn,
};
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
        let request = CompletionRequest {
            system: request.system,
            messages: request
                .messages
                .into_iter()
                .map(|m| Turn::text(role(m.role), m.content))
                .collect(),
            max_tokens: request.max_tokens,
            tools: Vec::new(),
        };
        self.completion(request).await
    }

    async fn complete_rich(
        &mut self,
        request: wit::RichRequest,
    ) -> Result<wit::Completion, LlmError> {
        self.spend(&LLM_REQUESTS)?;
        let request = rich_request(request)?;
        self.completion(request).await
    }

    async fn stream_reply(&mut self, request: wit::RichRequest) -> Result<wit::Streamed, LlmError> {
        self.spend(&LLM_REQUESTS)?;
        let request = rich_request(request)?;
        let services = self.services().clone();
        let (Some(link), Some(client)) = (self.context().link.clone(), services.llm.clone()) else {
            // No chat to show it in (or no LLM): a completion the plugin sends itself.
            let completion = self.completion(request).await?;
            return Ok(wit::Streamed {
                completion,
                shown: false,
                interrupted: None,
            });
        };
        let started = Instant::now();
        let (shown_text, receiver) = watch::channel(String::new());
        let secrets = self.revealed();
        // Nothing can be revealed while this host call runs: without
        // secrets each piece is appended, with them the whole is masked anew
        // (a secret split across pieces is masked once whole).
        let masking = !secrets.is_empty();
        let streaming_client = client.clone();
        let streaming = async move {
            let mut first_text_ms = None;
            let mut raw = String::new();
            let outcome = streaming_client
                .complete_streaming(&request, &mut |piece| {
                    first_text_ms.get_or_insert_with(|| started.elapsed().as_secs_f64() * 1000.0);
                    if masking {
                        raw.push_str(piece);
                        shown_text.send_replace(secrets.mask(&raw));
                    } else {
                        shown_text.send_modify(|shown| shown.push_str(piece));
                    }
                })
                .await;
            if let Err(broken) = &outcome
                && !broken.partial.text.is_empty()
            {
                shown_text.send_replace(format!(
                    "{}\n\n⚠️ {}",
                    secrets.mask(&broken.partial.text),
                    cut_notice(&broken.failure)
                ));
            }
            (outcome, first_text_ms)
        };
        let ((outcome, first_text_ms), shown) =
            tokio::join!(streaming, link.show_growing(receiver));
        let accounted = outcome
            .as_ref()
            .cloned()
            .map_err(|broken| broken.failure.clone());
        apply_error_policy(&client, &services.alerter, &accounted);
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        self.account(client.model(), &accounted, latency_ms);
        let shown = match shown {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(plugin = self.plugin(), error = %format!("{error:#}"), "a streamed answer could not be shown in full; the plugin is told to send it");
                false
            }
        };
        tracing::info!(
            plugin = self.plugin(),
            first_text_ms,
            latency_ms,
            shown,
            "llm_stream"
        );
        match outcome {
            Ok(completion) => Ok(wit::Streamed {
                completion: completion.into(),
                shown,
                interrupted: None,
            }),
            // What the user saw is kept for the plugin: an interrupted answer.
            Err(broken) if !broken.partial.text.is_empty() => Ok(wit::Streamed {
                completion: (*broken.partial).into(),
                shown,
                interrupted: Some(broken.failure.into()),
            }),
            Err(broken) => Err(broken.failure.into()),
        }
    }
}

impl From<Completion> for wit::Completion {
    fn from(completion: Completion) -> Self {
        Self {
            text: completion.text,
            stop_reason: completion.stop_reason,
            model: completion.model,
            usage: wit::Usage {
                input_tokens: completion.input_tokens,
                output_tokens: completion.output_tokens,
            },
        }
    }
}

impl From<LlmFailure> for LlmError {
    fn from(failure: LlmFailure) -> Self {
        match failure {
            LlmFailure::NotConfigured => LlmError::NotConfigured,
            LlmFailure::Unavailable(detail) => LlmError::Unavailable(detail),
            LlmFailure::RateLimited(after) => LlmError::RateLimited(after),
            LlmFailure::Unauthorized => LlmError::Unauthorized,
            LlmFailure::Timeout => LlmError::Timeout,
            LlmFailure::BadRequest(detail) => LlmError::BadRequest(detail),
        }
    }
}

fn role(role: wit::Role) -> Role {
    match role {
        wit::Role::User => Role::User,
        wit::Role::Assistant => Role::Assistant,
    }
}

/// The request with its files, or why Claude would refuse one.
pub(super) fn rich_request(request: wit::RichRequest) -> Result<CompletionRequest, LlmError> {
    let mut messages = Vec::with_capacity(request.messages.len());
    for (index, message) in request.messages.into_iter().enumerate() {
        let files: Vec<LlmFile> = message
            .attachments
            .into_iter()
            .map(|file| LlmFile {
                media_type: file.media_type.trim().to_ascii_lowercase(),
                data: file.data,
            })
            .collect();
        if !files.is_empty() && message.role == wit::Role::Assistant {
            return Err(LlmError::BadRequest(format!(
                "message {index}: only user messages may carry attachments"
            )));
        }
        if let Some(problem) = files.iter().find_map(LlmFile::problem) {
            return Err(LlmError::BadRequest(format!("message {index}: {problem}")));
        }
        messages.push(Turn {
            role: role(message.role),
            text: message.content,
            files,
            blocks: Vec::new(),
        });
    }
    Ok(CompletionRequest {
        system: request.system,
        messages,
        max_tokens: request.max_tokens,
        tools: Vec::new(),
    })
}

/// What the user reads under an answer that broke off.
pub fn cut_notice(failure: &LlmFailure) -> &'static str {
    match failure {
        LlmFailure::Timeout => "The answer was cut off: Claude took too long.",
        LlmFailure::RateLimited(_) => "The answer was cut off: too many requests right now.",
        LlmFailure::Unavailable(_) => {
            "The answer was cut off: Claude became unavailable. Please try again later."
        }
        _ => "The answer was cut off by an error.",
    }
}

impl CallState {
    /// One completion, accounted and under the error policy.
    async fn completion(
        &mut self,
        request: CompletionRequest,
    ) -> Result<wit::Completion, LlmError> {
        let services = self.services().clone();
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
        outcome.map(Into::into).map_err(Into::into)
    }
}

impl CallState {
    /// One `llm_response` log event and one `llm_request` audit entry.
    fn account(&self, model: &str, outcome: &Result<Completion, LlmFailure>, latency_ms: f64) {
        let entry = self.audit_entry("llm_request", "");
        account(
            self.services(),
            self.plugin(),
            entry,
            model,
            outcome,
            latency_ms,
        );
    }
}

/// One request to Claude accounted: the `llm_response` log event, the
/// token metrics and one `llm_request` audit entry (`entry` says whose);
/// for the capability's calls and for each step of an agent turn.
pub fn account(
    services: &HostServices,
    plugin: &str,
    entry: AuditEntry,
    model: &str,
    outcome: &Result<Completion, LlmFailure>,
    latency_ms: f64,
) {
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
    let mut entry = AuditEntry {
        action: "llm_request".into(),
        status: status.into(),
        ..entry
    };
    entry.duration_ms = Some(latency_ms);
    match outcome {
        Ok(completion) => {
            tracing::info!(
                plugin,
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
            tracing::info!(plugin, model, status, latency_ms, error = %failure, "llm_response");
            entry.model = Some(model.to_string()).filter(|m| !m.is_empty());
            entry.error = Some(failure.to_string());
        }
    }
    if let Some(audit) = &services.audit {
        audit.record(entry);
    }
}

/// Logs and alerts as the error policy says; the caller's reply is the plugin's business.
pub fn apply_error_policy(
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
