//! The host's language model, Claude (needs `capabilities = ["llm"]`). The
//! API key stays in the host; errors are typed and each has a reply a user
//! can read (`?` in a handler turns one into that reply).

use crate::bindings::wasmbot::plugin0_1_0::llm as wit;
pub use crate::bindings::wasmbot::plugin0_1_0::llm::{
    ChatMessage, Completion, CompletionRequest, LlmError, Role, Usage,
};

impl ChatMessage {
    pub fn user(text: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: text.into(),
        }
    }

    pub fn assistant(text: impl Into<String>) -> Self {
        Self {
            role: Role::Assistant,
            content: text.into(),
        }
    }
}

impl LlmError {
    /// What to tell the user.
    pub fn user_message(&self) -> String {
        match self {
            LlmError::NotConfigured => {
                "I can't answer that: no language model is configured on this bot. \
                 The operator can enable it by setting ANTHROPIC_API_KEY."
                    .into()
            }
            LlmError::Unavailable(_) => {
                "Claude is temporarily unavailable. Please try again in a few minutes; \
                 I've let the operator know."
                    .into()
            }
            LlmError::RateLimited(Some(seconds)) => format!(
                "I'm getting too many requests right now. Please try again in {seconds} seconds."
            ),
            LlmError::RateLimited(None) => {
                "I'm getting too many requests right now. Please try again in a moment.".into()
            }
            LlmError::Unauthorized => "I can't reach Claude because of an API key problem. \
                 I've let the operator know."
                .into(),
            LlmError::Timeout => {
                "Claude took too long to answer. Please try again, perhaps with a shorter question."
                    .into()
            }
            LlmError::BadRequest(detail) => {
                format!("Claude couldn't process that request: {detail}")
            }
            LlmError::OverBudget(_) => {
                "That needed more questions to Claude than one message may ask.".into()
            }
        }
    }
}

impl From<LlmError> for String {
    fn from(error: LlmError) -> Self {
        error.user_message()
    }
}

/// Completes a conversation (oldest message first, ending with the user's).
pub fn complete(
    system: Option<&str>,
    messages: &[ChatMessage],
    max_tokens: Option<u32>,
) -> Result<Completion, LlmError> {
    wit::complete(&CompletionRequest {
        system: system.map(str::to_string),
        messages: messages.to_vec(),
        max_tokens,
    })
}

/// One question, one answer.
pub fn ask(question: &str) -> Result<String, LlmError> {
    complete(None, &[ChatMessage::user(question)], None).map(|completion| completion.text)
}
