//! The Anthropic Messages API over reqwest: one request, one answer or one
//! typed failure. No silent retries and no fallback provider: what happens
//! is what the caller (and the user) is told.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use serde::Deserialize;
use tokio::sync::Semaphore;

use super::completion::{Completion, LlmFailure};
use super::settings::{DEFAULT_MAX_TOKENS, LlmAuth, LlmSettings};
use super::stream::{EventStream, StreamBroken};

pub const ANTHROPIC_VERSION: &str = "2023-06-01";
pub const OAUTH_BETA: &str = "oauth-2025-04-20";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

#[derive(Debug, Clone)]
pub struct CompletionRequest {
    pub system: Option<String>,
    pub messages: Vec<Turn>,
    pub max_tokens: Option<u32>,
    /// Tool definitions offered to Claude (`name`, `description`,
    /// `input_schema`); none for a plain completion.
    pub tools: Vec<serde_json::Value>,
}

/// One message of the conversation, with the files it shows the model.
#[derive(Debug, Clone)]
pub struct Turn {
    pub role: Role,
    pub text: String,
    pub files: Vec<LlmFile>,
    /// Content blocks sent as they are (`tool_use` in an assistant turn,
    /// `tool_result` in a user turn); when any, `text` and `files` are not sent.
    pub blocks: Vec<serde_json::Value>,
}

impl Turn {
    pub fn text(role: Role, text: impl Into<String>) -> Self {
        Self {
            role,
            text: text.into(),
            files: Vec::new(),
            blocks: Vec::new(),
        }
    }

    /// A turn of raw content blocks (tool use and tool results).
    pub fn blocks(role: Role, blocks: Vec<serde_json::Value>) -> Self {
        Self {
            role,
            text: String::new(),
            files: Vec::new(),
            blocks,
        }
    }
}

/// An image or a PDF shown to the model (base64 in the request).
#[derive(Debug, Clone)]
pub struct LlmFile {
    pub media_type: String,
    pub data: Vec<u8>,
}

/// The image types the Messages API reads, and its limits on one image and one PDF.
pub const IMAGE_TYPES: [&str; 4] = ["image/jpeg", "image/png", "image/gif", "image/webp"];
pub const PDF_TYPE: &str = "application/pdf";
pub const MAX_IMAGE_BYTES: usize = 5 << 20;
pub const MAX_PDF_BYTES: usize = 32 << 20;

impl LlmFile {
    /// Why the Messages API would refuse this file, if it would.
    pub fn problem(&self) -> Option<String> {
        let cap = if IMAGE_TYPES.contains(&self.media_type.as_str()) {
            MAX_IMAGE_BYTES
        } else if self.media_type == PDF_TYPE {
            MAX_PDF_BYTES
        } else {
            return Some(format!(
                "Claude reads images (JPEG, PNG, GIF, WebP) and PDF documents, not {:?}",
                self.media_type
            ));
        };
        if self.data.is_empty() {
            return Some(format!("an empty {} file", self.media_type));
        }
        (self.data.len() > cap).then(|| {
            format!(
                "a {} file of {} bytes; Claude takes at most {cap}",
                self.media_type,
                self.data.len()
            )
        })
    }

    /// The content block: `image` or `document`, base64 inline.
    fn block(&self) -> serde_json::Value {
        use base64::Engine as _;
        let kind = if self.media_type == PDF_TYPE {
            "document"
        } else {
            "image"
        };
        serde_json::json!({"type": kind, "source": {
            "type": "base64",
            "media_type": self.media_type,
            "data": base64::engine::general_purpose::STANDARD.encode(&self.data),
        }})
    }
}

pub struct LlmClient {
    http: reqwest::Client,
    /// For streamed answers: `LLM_TIMEOUT_SECS` bounds each wait for the
    /// next piece, not the whole answer (a long one takes minutes to write;
    /// the plugin's own deadline still ends it).
    streaming: reqwest::Client,
    settings: LlmSettings,
    in_flight: Semaphore,
    /// Set by an `unavailable`, cleared (once, with a recovery notice) by the next success.
    degraded: AtomicBool,
}

impl LlmClient {
    /// None when no credential is configured.
    pub fn from_settings(settings: &LlmSettings) -> anyhow::Result<Option<Self>> {
        if settings.auth.is_none() {
            return Ok(None);
        }
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .context("building the HTTP client for the LLM")?;
        let streaming = reqwest::Client::builder()
            .read_timeout(settings.timeout)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .context("building the HTTP client for the LLM")?;
        Ok(Some(Self {
            http,
            streaming,
            settings: settings.clone(),
            in_flight: Semaphore::new(settings.max_concurrent as usize),
            degraded: AtomicBool::new(false),
        }))
    }

    pub fn model(&self) -> &str {
        &self.settings.model
    }

    /// Marks the service as down; returns true when it was up until now.
    pub fn mark_unavailable(&self) -> bool {
        !self.degraded.swap(true, Ordering::SeqCst)
    }

    /// Marks the service as up; returns true when it was down until now.
    pub fn mark_available(&self) -> bool {
        self.degraded.swap(false, Ordering::SeqCst)
    }

    /// `POST {base}/v1/messages`, waiting for a free slot first.
    pub async fn complete(&self, request: &CompletionRequest) -> Result<Completion, LlmFailure> {
        let body = request_body(&self.settings.model, request);
        let (_slot, response) = self.post(&self.http, body).await?;
        let bytes = response.bytes().await.map_err(transport_failure)?;
        parse_completion(&bytes)
    }

    /// The same request with `"stream": true`: `on_text` is handed each
    /// piece of the answer as it arrives. A stream that breaks (an `error`
    /// event, a cut connection, no `message_stop`) fails with the text that
    /// had arrived.
    pub async fn complete_streaming(
        &self,
        request: &CompletionRequest,
        on_text: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Completion, StreamBroken> {
        let mut body = request_body(&self.settings.model, request);
        body["stream"] = serde_json::json!(true);
        let (_slot, mut response) =
            self.post(&self.streaming, body)
                .await
                .map_err(|failure| StreamBroken {
                    failure,
                    partial: Box::default(),
                })?;
        let mut stream = EventStream::default();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => stream.feed(&chunk, on_text)?,
                Ok(None) => return stream.finish(),
                Err(error) => return Err(stream.broken(transport_failure(error))),
            }
        }
    }

    /// Sends one Messages request under the concurrency limit; the 200
    /// response (its body unread) with the slot, or the typed failure.
    async fn post(
        &self,
        http: &reqwest::Client,
        body: serde_json::Value,
    ) -> Result<(tokio::sync::SemaphorePermit<'_>, reqwest::Response), LlmFailure> {
        let Some(auth) = &self.settings.auth else {
            return Err(LlmFailure::NotConfigured);
        };
        let slot = self
            .in_flight
            .acquire()
            .await
            .map_err(|_| LlmFailure::Unavailable("the host is shutting down".into()))?;
        let url = self
            .settings
            .base_url
            .join("v1/messages")
            .map_err(|error| LlmFailure::BadRequest(format!("ANTHROPIC_BASE_URL: {error}")))?;
        let http = authorized(http.post(url), auth).header("content-type", "application/json");
        let response = http
            .body(body.to_string())
            .send()
            .await
            .map_err(transport_failure)?;
        let status = response.status().as_u16();
        if status == 200 {
            return Ok((slot, response));
        }
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u32>().ok());
        let bytes = response.bytes().await.map_err(transport_failure)?;
        Err(failure_for(status, retry_after, &bytes))
    }

    /// A lightweight authenticated request (`GET /v1/models?limit=1`), for
    /// health checks: no tokens spent.
    pub async fn ping(&self) -> Result<(), LlmFailure> {
        let Some(auth) = &self.settings.auth else {
            return Err(LlmFailure::NotConfigured);
        };
        let url = self
            .settings
            .base_url
            .join("v1/models?limit=1")
            .map_err(|error| LlmFailure::BadRequest(format!("ANTHROPIC_BASE_URL: {error}")))?;
        let response = authorized(self.http.get(url), auth)
            .send()
            .await
            .map_err(transport_failure)?;
        let status = response.status().as_u16();
        if status == 200 {
            return Ok(());
        }
        let bytes = response.bytes().await.map_err(transport_failure)?;
        Err(failure_for(status, None, &bytes))
    }
}

/// The version header and the credential, as the Messages API expects them.
fn authorized(request: reqwest::RequestBuilder, auth: &LlmAuth) -> reqwest::RequestBuilder {
    let request = request.header("anthropic-version", ANTHROPIC_VERSION);
    match auth {
        LlmAuth::ApiKey(key) => request.header("x-api-key", key.expose()),
        LlmAuth::OAuthToken(token) => request
            .bearer_auth(token.expose())
            .header("anthropic-beta", OAUTH_BETA),
    }
}

/// The typed failure for a non-200 answer.
fn failure_for(status: u16, retry_after: Option<u32>, body: &[u8]) -> LlmFailure {
    let detail = error_detail(body).unwrap_or_else(|| format!("HTTP {status}"));
    {
        match status {
            401 | 403 => LlmFailure::Unauthorized,
            429 => LlmFailure::RateLimited(retry_after),
            408 => LlmFailure::Timeout,
            400..=499 => LlmFailure::BadRequest(detail),
            _ => LlmFailure::Unavailable(format!("HTTP {status}: {detail}")),
        }
    }
}

/// One message of a request as the Messages API reads it (a paused
/// agent turn is kept in this form, and read back with [`Turn::from_json`]).
pub fn message_json(turn: &Turn) -> serde_json::Value {
    let role = match turn.role {
        Role::User => "user",
        Role::Assistant => "assistant",
    };
    if !turn.blocks.is_empty() {
        return serde_json::json!({ "role": role, "content": turn.blocks });
    }
    if turn.files.is_empty() {
        return serde_json::json!({ "role": role, "content": turn.text });
    }
    // Files first: the API reads a question about an image best after it.
    let mut blocks: Vec<serde_json::Value> = turn.files.iter().map(LlmFile::block).collect();
    if !turn.text.is_empty() {
        blocks.push(serde_json::json!({"type": "text", "text": turn.text}));
    }
    serde_json::json!({ "role": role, "content": blocks })
}

impl Turn {
    /// A message as [`message_json`] wrote it.
    pub fn from_json(message: &serde_json::Value) -> Option<Self> {
        let role = match message["role"].as_str()? {
            "user" => Role::User,
            "assistant" => Role::Assistant,
            _ => return None,
        };
        Some(match &message["content"] {
            serde_json::Value::String(text) => Turn::text(role, text.clone()),
            serde_json::Value::Array(blocks) => Turn::blocks(role, blocks.clone()),
            _ => return None,
        })
    }
}

/// The JSON body of a Messages API request.
pub fn request_body(model: &str, request: &CompletionRequest) -> serde_json::Value {
    let messages: Vec<serde_json::Value> = request.messages.iter().map(message_json).collect();
    let mut body = serde_json::json!({
        "model": model,
        "max_tokens": request.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        "messages": messages,
    });
    if let Some(system) = request.system.as_ref().filter(|s| !s.is_empty()) {
        body["system"] = serde_json::json!(system);
    }
    if !request.tools.is_empty() {
        body["tools"] = serde_json::json!(request.tools);
    }
    body
}

fn transport_failure(error: reqwest::Error) -> LlmFailure {
    if error.is_timeout() {
        LlmFailure::Timeout
    } else {
        // Without the URL: it is the operator's, and the reason is what matters.
        LlmFailure::Unavailable(format!("cannot reach the service: {}", error.without_url()))
    }
}

#[derive(Deserialize)]
struct MessagesResponse {
    content: Vec<serde_json::Value>,
    model: String,
    stop_reason: Option<String>,
    usage: Usage,
}

#[derive(Deserialize)]
struct Usage {
    input_tokens: u32,
    output_tokens: u32,
}

fn parse_completion(bytes: &[u8]) -> Result<Completion, LlmFailure> {
    let response: MessagesResponse = serde_json::from_slice(bytes).map_err(|error| {
        LlmFailure::Unavailable(format!(
            "the service answered something that is not a Messages response: {error}"
        ))
    })?;
    let text = response
        .content
        .iter()
        .filter(|block| block["type"] == "text")
        .filter_map(|block| block["text"].as_str())
        .collect::<Vec<_>>()
        .join("");
    let tool_uses = response
        .content
        .iter()
        .filter_map(super::completion::tool_use)
        .collect();
    Ok(Completion {
        text,
        stop_reason: response.stop_reason.unwrap_or_else(|| "unknown".into()),
        model: response.model,
        input_tokens: response.usage.input_tokens,
        output_tokens: response.usage.output_tokens,
        tool_uses,
        content: response.content,
    })
}

/// `error.message` of an Anthropic error body.
fn error_detail(bytes: &[u8]) -> Option<String> {
    let body: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    body["error"]["message"].as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_carries_model_limit_system_and_messages() {
        let request = CompletionRequest {
            system: Some("Be brief.".into()),
            messages: vec![
                Turn::text(Role::User, "Hi"),
                Turn::text(Role::Assistant, "Hello"),
                Turn::text(Role::User, "Why?"),
            ],
            max_tokens: None,
            tools: Vec::new(),
        };
        let body = request_body("claude-x", &request);
        assert_eq!(
            body,
            serde_json::json!({"model": "claude-x", "max_tokens": 4096, "system": "Be brief.", "messages": [
                {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Why?"}]})
        );
    }

    #[test]
    fn files_go_before_the_text_as_base64_blocks() {
        let request = CompletionRequest {
            system: None,
            messages: vec![Turn {
                role: Role::User,
                text: "What is this?".into(),
                files: vec![
                    LlmFile {
                        media_type: "image/png".into(),
                        data: b"PNG".to_vec(),
                    },
                    LlmFile {
                        media_type: PDF_TYPE.into(),
                        data: b"%PDF".to_vec(),
                    },
                ],
                blocks: Vec::new(),
            }],
            max_tokens: Some(10),
            tools: Vec::new(),
        };
        let body = request_body("claude-x", &request);
        assert_eq!(
            body["messages"][0]["content"],
            serde_json::json!([
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "UE5H"}},
                {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERg=="}},
                {"type": "text", "text": "What is this?"}])
        );
        let file = |media_type: &str, len: usize| LlmFile {
            media_type: media_type.into(),
            data: vec![0; len],
        };
        assert!(file("image/jpeg", 10).problem().is_none());
        assert!(
            file("image/jpeg", MAX_IMAGE_BYTES + 1)
                .problem()
                .unwrap()
                .contains("at most")
        );
        assert!(
            file("audio/ogg", 10)
                .problem()
                .unwrap()
                .contains("not \"audio/ogg\"")
        );
        assert!(file(PDF_TYPE, 0).problem().is_some());
    }

    #[test]
    fn a_response_joins_text_blocks_and_reads_usage() {
        let completion = parse_completion(br#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-x",
            "content":[{"type":"text","text":"Hello"},{"type":"text","text":" there"}],
            "stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":3}}"#)
        .unwrap();
        assert_eq!(
            (
                completion.text.as_str(),
                completion.input_tokens,
                completion.output_tokens
            ),
            ("Hello there", 12, 3)
        );
        assert!(matches!(
            parse_completion(b"<html>"),
            Err(LlmFailure::Unavailable(_))
        ));
    }
}
