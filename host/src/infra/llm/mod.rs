//! Claude over the Anthropic Messages API: the host's client, used by the
//! `llm` capability and by the health checks.

mod client;
mod settings;
mod stream;

pub use client::{Completion, CompletionRequest, LlmClient, LlmFailure, Role};
pub use settings::{LlmAuth, LlmSettings};
pub use stream::{EventStream, StreamBroken};
