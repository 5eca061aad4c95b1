//! The host's language model, Claude (needs `capabilities = ["llm"]`). The
//! API key stays in the host; errors are typed and each has a reply a user
//! can read (`?` in a handler turns one into that reply).
//!
//! [`complete`] and [`ask`] answer text; a [`Conversation`] also shows
//! Claude images and PDFs (vision) and can stream the answer into the chat
//! as it is written:
//!
//! ```ignore
//! let streamed = llm::Conversation::new(&history)
//!     .system("Be brief.")
//!     .attach("image/jpeg", media::fetch(photo)?)
//!     .stream()?;
//! history.push(ChatMessage::assistant(streamed.completion.text.as_str()));
//! Ok(streamed.into_actions()) // nothing more to send unless it could not be shown
//! ```

use crate::bindings::wasmbot::plugin0_1_0::llm as wit;
pub use crate::bindings::wasmbot::plugin0_1_0::llm::{
    Attachment, ChatMessage, Completion, CompletionRequest, LlmError, RichMessage, RichRequest,
    Role, Streamed, Usage,
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

/// A conversation for Claude whose user messages may carry files: what
/// [`Conversation::complete`] and [`Conversation::stream`] send.
#[derive(Debug, Clone)]
pub struct Conversation(RichRequest);

impl Conversation {
    /// The turns so far, oldest first, ending with the user's.
    pub fn new(messages: &[ChatMessage]) -> Self {
        Self(RichRequest {
            system: None,
            messages: messages
                .iter()
                .map(|message| RichMessage {
                    role: message.role,
                    content: message.content.clone(),
                    attachments: Vec::new(),
                })
                .collect(),
            max_tokens: None,
        })
    }

    pub fn system(mut self, system: impl Into<String>) -> Self {
        self.0.system = Some(system.into());
        self
    }

    pub fn max_tokens(mut self, max_tokens: u32) -> Self {
        self.0.max_tokens = Some(max_tokens);
        self
    }

    /// Shows Claude a file with the last user message: an image
    /// (`image/jpeg`, `image/png`, `image/gif`, `image/webp`, at most 5 MB)
    /// or a PDF (`application/pdf`).
    pub fn attach(mut self, media_type: impl Into<String>, data: Vec<u8>) -> Self {
        let file = Attachment {
            media_type: media_type.into(),
            data,
        };
        match self
            .0
            .messages
            .iter_mut()
            .rev()
            .find(|message| message.role == Role::User)
        {
            Some(message) => message.attachments.push(file),
            None => self.0.messages.push(RichMessage {
                role: Role::User,
                content: String::new(),
                attachments: vec![file],
            }),
        }
        self
    }

    /// The request as it will be sent.
    pub fn request(&self) -> &RichRequest {
        &self.0
    }

    /// The whole answer at once.
    pub fn complete(&self) -> Result<Completion, LlmError> {
        wit::complete_rich(&self.0)
    }

    /// The answer streamed into the event's chat while Claude writes it;
    /// returns once it is shown in full. See [`Streamed`].
    pub fn stream(&self) -> Result<Streamed, LlmError> {
        wit::stream_reply(&self.0)
    }

    /// As [`Conversation::stream`], with hands: Claude may call the tools of
    /// every plugin this chat's user may use, each in its own sandbox,
    /// until it ends its turn (the `agent` grant). When a tool waits for the
    /// user's Allow, `completion.stop_reason` is
    /// [`AWAITING_CONFIRMATION`] and the host finishes the turn itself.
    pub fn stream_with_tools(&self) -> Result<Streamed, LlmError> {
        let turn = crate::bindings::wasmbot::plugin0_3_0::agent::Turn {
            system: self.0.system.clone(),
            messages: self.0.messages.clone(),
            max_tokens: self.0.max_tokens,
        };
        crate::bindings::wasmbot::plugin0_3_0::agent::run(&turn)
    }
}

/// The stop reason of a turn that waits for the user to allow a tool.
pub const AWAITING_CONFIRMATION: &str = "awaiting_confirmation";

impl Streamed {
    /// What is left to send: nothing when the host showed the answer, the
    /// answer as a reply when it could not (a job, a webhook).
    pub fn into_actions(self) -> crate::Actions {
        if self.shown {
            crate::Actions::new()
        } else {
            crate::Reply::text(self.completion.text).into()
        }
    }
}
