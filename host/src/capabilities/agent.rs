//! `wasmbot:plugin/agent` (0.3.0): the assistant hands a turn to the host's
//! agent, which lets Claude call the tools of every plugin the chat's user
//! may use, each in its own sandbox. The loop itself is the chat layer's
//! ([`crate::runtime::AgentLink`]); here the turn is checked like any
//! `llm` request and counted against the caller's `llm_requests` budget.
//! A call with no chat behind it gets a plain streamed answer.

use crate::runtime::CallState;
use crate::runtime::bindings::agent as wit;
use crate::runtime::bindings::llm::{Host as _, LlmError, RichRequest, Streamed};

use super::llm::{LLM_REQUESTS, rich_request};

impl wit::Host for CallState {
    async fn run(&mut self, turn: wit::Turn) -> Result<Streamed, LlmError> {
        let request = RichRequest {
            system: turn.system,
            messages: turn.messages,
            max_tokens: turn.max_tokens,
        };
        let Some(agent) = self.context().agent.clone() else {
            return self.stream_reply(request).await;
        };
        self.spend(&LLM_REQUESTS)?;
        let request = rich_request(request)?;
        let caller = self.plugin().to_string();
        let reply = agent.run(&caller, request).await?;
        Ok(Streamed {
            completion: reply.completion.into(),
            shown: reply.shown,
            interrupted: reply.interrupted.map(Into::into),
        })
    }
}
