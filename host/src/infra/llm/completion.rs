//! What a Messages API request ends in, streamed or not: the answer, or
//! the typed failure the plugin (and the user) is told.

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Completion {
    pub text: String,
    pub stop_reason: String,
    pub model: String,
    pub input_tokens: u32,
    pub output_tokens: u32,
    /// The tools Claude asks to run (`stop_reason` "tool_use"), in order.
    pub tool_uses: Vec<ToolUse>,
    /// The answer's content blocks as the API sent them (text and
    /// `tool_use`): what goes back as the assistant's turn after tool use.
    pub content: Vec<serde_json::Value>,
}

/// A `tool_use` content block: Claude asks the host to run a tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolUse {
    pub id: String,
    pub name: String,
    pub input: serde_json::Value,
}

/// Why a completion failed, as the plugin will see it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmFailure {
    #[error("the LLM is not configured (set ANTHROPIC_API_KEY or ANTHROPIC_AUTH_TOKEN)")]
    NotConfigured,
    #[error("the LLM service is unavailable: {0}")]
    Unavailable(String),
    #[error("rate limited by the LLM service (retry after {0:?} s)")]
    RateLimited(Option<u32>),
    #[error("the LLM service refused the API key")]
    Unauthorized,
    #[error("the LLM service did not answer in time")]
    Timeout,
    #[error("the LLM service refused the request: {0}")]
    BadRequest(String),
}

impl LlmFailure {
    /// The audit status and log word for this failure.
    pub fn status(&self) -> &'static str {
        match self {
            LlmFailure::NotConfigured => "not_configured",
            LlmFailure::Unavailable(_) => "unavailable",
            LlmFailure::RateLimited(_) => "rate_limited",
            LlmFailure::Unauthorized => "unauthorized",
            LlmFailure::Timeout => "timeout",
            LlmFailure::BadRequest(_) => "bad_request",
        }
    }
}

/// The tool use a `tool_use` content block asks for.
pub(super) fn tool_use(block: &serde_json::Value) -> Option<ToolUse> {
    (block["type"] == "tool_use").then(|| ToolUse {
        id: block["id"].as_str().unwrap_or_default().to_string(),
        name: block["name"].as_str().unwrap_or_default().to_string(),
        input: block
            .get("input")
            .cloned()
            .unwrap_or_else(|| serde_json::json!({})),
    })
}
