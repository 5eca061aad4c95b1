//! Claude over the Anthropic Messages API: the host's client, used by the
//! `llm` capability and by the health checks.

mod client;
mod completion;
mod settings;
mod stream;

pub use client::{CompletionRequest, LlmClient, LlmFile, Role, Turn, message_json};
pub use completion::{Completion, LlmFailure, ToolUse};
pub use settings::{LlmAuth, LlmSettings};
pub use stream::{EventStream, StreamBroken};
