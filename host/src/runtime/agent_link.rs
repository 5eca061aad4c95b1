//! What a call may hand the host's agent: a turn in which Claude may use
//! the tools of the plugins this chat's user may use. The chat layer
//! implements it (it knows the plugins, the chat and the tool log); a call
//! with no chat behind it has none, and its turn is a plain streamed answer.

use crate::infra::llm::{Completion, CompletionRequest, LlmFailure};

use super::chat_link::LinkFuture;

/// How a turn ended, as `agent.run` tells the plugin.
#[derive(Debug, Clone)]
pub struct AgentReply {
    /// Every step's text, as the user saw it; `stop_reason` is
    /// "awaiting_confirmation" when a tool waits for the user's Allow.
    pub completion: Completion,
    /// Whether the text was shown in the chat.
    pub shown: bool,
    /// Set when the turn broke off after some of it was shown.
    pub interrupted: Option<LlmFailure>,
}

/// The stop reason of a turn that waits for the user to allow a tool.
pub const AWAITING_CONFIRMATION: &str = "awaiting_confirmation";

pub trait AgentLink: Send + Sync {
    /// Runs the turn `request` (its `tools` are filled in by the agent)
    /// for the plugin `caller`, until Claude ends it.
    fn run<'a>(
        &'a self,
        caller: &'a str,
        request: CompletionRequest,
    ) -> LinkFuture<'a, Result<AgentReply, LlmFailure>>;
}
