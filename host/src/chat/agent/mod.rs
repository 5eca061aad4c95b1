//! The assistant's hands: a turn in which Claude may call the tools of the
//! plugins, each `tool_use` run in its own plugin's sandbox (that plugin's
//! grants, budgets, deadline and quotas), its result sent back to Claude,
//! until Claude ends the turn, `AGENT_MAX_STEPS` requests were made or the
//! turn's token budget is spent. A `confirm` tool waits for the user's
//! Allow: the turn is kept in the store (`agent_pauses`) and goes on when
//! the user presses a button ([`resume`]). Every call leaves two rows in
//! `tool_calls` ([`log`]).

mod context;
mod log;
mod pause;
mod resume;
mod settings;
mod shown;
mod step;

use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use shown::{Shown, grow_while};

use crate::infra::llm::{Completion, CompletionRequest, LlmFailure};
use crate::runtime::{AWAITING_CONFIRMATION, Action, AgentLink, AgentReply, LinkFuture};

pub use context::TurnContext;
pub use log::{ToolOutcome, run_logged as run_tool};
pub use pause::AGENT_BUTTONS;
pub use resume::resume;
pub use settings::AgentSettings;

/// The agent a call hands its turn to; collects what the tools asked to
/// show in the chat, which the dispatcher carries out after the call.
pub struct AgentLoop {
    cx: TurnContext,
    shown: Mutex<Vec<(String, Vec<Action>)>>,
}

impl AgentLoop {
    pub fn new(cx: TurnContext) -> Arc<Self> {
        Arc::new(Self {
            cx,
            shown: Mutex::new(Vec::new()),
        })
    }

    /// The tools' actions (and the agent's own questions), by plugin, in order.
    pub fn take_actions(&self) -> Vec<(String, Vec<Action>)> {
        std::mem::take(&mut *crate::infra::sync::lock(&self.shown))
    }
}

impl AgentLink for AgentLoop {
    fn run<'a>(
        &'a self,
        caller: &'a str,
        request: CompletionRequest,
    ) -> LinkFuture<'a, Result<AgentReply, LlmFailure>> {
        Box::pin(async move {
            let turn = step::Turn::begin(caller, request, &self.cx);
            let outcome = run_shown(&self.cx, turn, &self.shown).await;
            outcome.map(|(completion, shown, interrupted)| AgentReply {
                completion,
                shown,
                interrupted,
            })
        })
    }
}

/// Runs `turn` with its text growing in the chat (when there is one);
/// what Claude said in all, whether it was shown, and why it broke off.
async fn run_shown(
    cx: &TurnContext,
    mut turn: step::Turn,
    actions: &Mutex<Vec<(String, Vec<Action>)>>,
) -> Result<(Completion, bool, Option<LlmFailure>), LlmFailure> {
    let (text, receiver) = watch::channel(String::new());
    let running = async {
        let ended = turn.run(cx, &text, actions).await;
        drop(text);
        ended
    };
    let (ended, shown) = grow_while(&cx.link, receiver, running).await;
    let shown = matches!(shown, Shown::InChat);
    let mut completion = Completion {
        text: turn.said.clone(),
        model: turn.model.clone(),
        input_tokens: turn.input_tokens,
        output_tokens: turn.output_tokens,
        ..Completion::default()
    };
    match ended {
        step::Ended::Done(stop_reason) => {
            completion.stop_reason = stop_reason;
            Ok((completion, shown, None))
        }
        step::Ended::Paused => {
            completion.stop_reason = AWAITING_CONFIRMATION.to_string();
            Ok((completion, shown, None))
        }
        step::Ended::Failed(failure) if turn.said.is_empty() && turn.steps <= 1 => Err(failure),
        step::Ended::Failed(failure) => {
            completion.stop_reason = "interrupted".to_string();
            Ok((completion, shown, Some(failure)))
        }
    }
}
