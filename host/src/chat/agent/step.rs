//! One agent turn, step by step: a request to Claude with the tools, its
//! text streamed, each `tool_use` run (concurrently, each in its own
//! plugin's sandbox), the results sent back, until Claude ends its turn,
//! a limit is reached, or a tool waits for the user's Allow.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::context::TurnContext;
use super::log::{self, ToolOutcome};
use super::pause::{self, WaitingUse};
use crate::capabilities::{account_llm_request, apply_llm_error_policy, llm_cut_notice};
use crate::infra::llm::{
    Completion, CompletionRequest, LlmClient, LlmFailure, Role, StreamBroken, ToolUse,
    Turn as Message, message_json,
};
use crate::infra::store::AuditEntry;
use crate::runtime::Action;

/// A few lines the host adds to the caller's system prompt when tools are offered.
const TOOLS_NOTE: &str = "You can act for the user with the tools you are given: \
    use one whenever it does what the user asks (set a reminder, look up the weather, \
    read or change their notes, convert units...), then say briefly what you did. \
    A tool may need the user's approval; if they refuse, accept it and do not try again.";

/// How a turn stopped.
pub enum Ended {
    /// Claude ended it, or a limit did (the stop reason says which).
    Done(String),
    /// A tool waits for the user's Allow; the turn is kept in the store.
    Paused,
    /// Claude could not be reached (or broke off).
    Failed(LlmFailure),
}

/// A turn as it goes, and as it is kept while it waits for the user.
#[derive(Serialize, Deserialize)]
pub struct Turn {
    /// The plugin that handed the turn over (its messages are the turn's).
    pub caller: String,
    /// The user's message the turn answers, where it can be handled again:
    /// kept so that a tool allowed after a redelivery is not run twice.
    #[serde(default)]
    pub turn_key: Option<String>,
    system: Option<String>,
    max_tokens: Option<u32>,
    /// The conversation in the API's form (tool use and results included).
    messages: Vec<Value>,
    /// Claude's requests so far, and the tokens they cost.
    pub steps: u32,
    pub input_tokens: u32,
    pub output_tokens: u32,
    /// What Claude said in this turn, every step's text.
    pub said: String,
    /// What the chat shows: `said`, with the tool lines where the chat shows them.
    shown: String,
    pub model: String,
    /// The results of this step's tools so far (`tool_result` blocks).
    results: Vec<Value>,
    /// Tool uses of this step that wait for the user, first one asked.
    pub waiting: Vec<WaitingUse>,
}

impl Turn {
    pub fn begin(caller: &str, request: CompletionRequest, cx: &TurnContext) -> Self {
        Self {
            caller: caller.to_string(),
            turn_key: cx.turn_key.clone(),
            system: request.system,
            max_tokens: request.max_tokens,
            messages: request.messages.iter().map(message_json).collect(),
            steps: 0,
            input_tokens: 0,
            output_tokens: 0,
            said: String::new(),
            shown: String::new(),
            model: String::new(),
            results: Vec::new(),
            waiting: Vec::new(),
        }
    }

    /// Steps until the turn ends or pauses. `text` shows what the chat sees.
    pub async fn run(
        &mut self,
        cx: &TurnContext,
        text: &watch::Sender<String>,
        actions: &Mutex<Vec<(String, Vec<Action>)>>,
    ) -> Ended {
        text.send_replace(self.shown.clone());
        let Some(client) = cx.services.llm.clone() else {
            return Ended::Failed(LlmFailure::NotConfigured);
        };
        loop {
            if !self.waiting.is_empty() {
                let kept = serde_json::to_string(&*self)
                    .map_err(|error| format!("the turn could not be kept: {error}"));
                return match pause::ask(cx, &self.waiting, kept, actions).await {
                    Ok(()) => Ended::Paused,
                    Err(why) => {
                        self.note(text, &format!("⚠️ {why}"));
                        Ended::Done("error".into())
                    }
                };
            }
            if !self.results.is_empty() {
                let results = std::mem::take(&mut self.results);
                self.messages
                    .push(message_json(&Message::blocks(Role::User, results)));
            }
            if self.steps >= cx.settings.max_steps {
                self.note(
                    text,
                    &format!(
                        "⚠️ I stopped after {} steps (AGENT_MAX_STEPS) before finishing. Ask me to go on if you want.",
                        self.steps
                    ),
                );
                return Ended::Done("max_steps".into());
            }
            if self.input_tokens + self.output_tokens >= cx.settings.turn_tokens {
                self.note(
                    text,
                    &format!(
                        "⚠️ I stopped: this answer used its {} tokens (AGENT_TURN_TOKENS). Ask me to go on if you want.",
                        cx.settings.turn_tokens
                    ),
                );
                return Ended::Done("token_budget".into());
            }
            self.steps += 1;
            let request = self.request(cx);
            if !self.shown.is_empty() {
                // One blank line between steps, however the last one ended.
                self.shown.truncate(self.shown.trim_end().len());
                self.shown.push_str("\n\n");
            }
            let base = self.shown.clone();
            let mut step_text = String::new();
            let clock = std::time::Instant::now();
            let outcome = client
                .complete_streaming(&request, &mut |piece| {
                    step_text.push_str(piece);
                    text.send_replace(format!("{base}{step_text}"));
                })
                .await;
            self.account(
                cx,
                &client,
                &outcome,
                clock.elapsed().as_secs_f64() * 1000.0,
            );
            let completion = match outcome {
                Ok(completion) => completion,
                Err(broken) => {
                    self.said.push_str(&broken.partial.text);
                    self.shown = format!("{base}{}", broken.partial.text);
                    if !self.shown.trim().is_empty() {
                        // What the user saw stays, with why it stopped.
                        self.shown = format!(
                            "{}\n\n⚠️ {}",
                            self.shown.trim_end(),
                            llm_cut_notice(&broken.failure)
                        );
                        text.send_replace(self.shown.clone());
                    }
                    return Ended::Failed(broken.failure);
                }
            };
            self.input_tokens += completion.input_tokens;
            self.output_tokens += completion.output_tokens;
            self.model = completion.model.clone();
            if !completion.text.is_empty() {
                if !self.said.is_empty() {
                    self.said.push_str("\n\n");
                }
                self.said.push_str(&completion.text);
            }
            self.shown = format!("{base}{}", completion.text);
            if completion.tool_uses.is_empty() || completion.stop_reason != "tool_use" {
                text.send_replace(self.shown.clone());
                return Ended::Done(completion.stop_reason);
            }
            self.messages.push(message_json(&Message::blocks(
                Role::Assistant,
                completion.content.clone(),
            )));
            self.use_tools(cx, completion.tool_uses, text, actions)
                .await;
        }
    }

    /// Runs the step's tool uses that need no approval, all at once; the
    /// others wait for the user.
    async fn use_tools(
        &mut self,
        cx: &TurnContext,
        uses: Vec<ToolUse>,
        text: &watch::Sender<String>,
        actions: &Mutex<Vec<(String, Vec<Action>)>>,
    ) {
        let mut now = Vec::new();
        for tool_use in uses {
            match cx.plugins.tool_owner(&tool_use.name) {
                Some(owner) if owner.tool(&tool_use.name).is_some_and(|t| t.spec.confirm) => {
                    // A refused input is told to Claude at once, not asked about.
                    match owner
                        .tool(&tool_use.name)
                        .and_then(|tool| tool.refuses(&tool_use.input))
                    {
                        Some(problem) => now.push((tool_use, Some(problem))),
                        None => self.waiting.push(WaitingUse {
                            id: tool_use.id,
                            plugin: owner.name().to_string(),
                            tool: tool_use.name,
                            input: tool_use.input,
                        }),
                    }
                }
                _ => now.push((tool_use, None)),
            }
        }
        let runs = now.iter().map(|(tool_use, refused)| async move {
            match refused {
                Some(problem) => ToolOutcome::error(problem.clone()),
                None => log::run_logged(cx, &tool_use.name, &tool_use.input).await,
            }
        });
        let outcomes = futures_util::future::join_all(runs).await;
        for ((tool_use, _), outcome) in now.iter().zip(outcomes) {
            self.finish_use(
                cx,
                &tool_use.id,
                &tool_use.name,
                &tool_use.input,
                outcome,
                text,
                actions,
            );
        }
    }

    /// Records one finished tool use: its result for Claude, its line in
    /// the chat (where tool lines are shown), its actions for the chat.
    #[allow(clippy::too_many_arguments)]
    pub fn finish_use(
        &mut self,
        cx: &TurnContext,
        id: &str,
        tool: &str,
        input: &Value,
        outcome: ToolOutcome,
        text: &watch::Sender<String>,
        actions: &Mutex<Vec<(String, Vec<Action>)>>,
    ) {
        if cx.link.as_ref().is_some_and(|link| link.shows_tool_calls()) {
            self.note(text, &log::line(tool, input, &outcome));
        }
        self.results.push(json!({
            "type": "tool_result",
            "tool_use_id": id,
            "content": outcome.text,
            "is_error": outcome.status != "ok",
        }));
        if let Some((plugin, chat_actions)) = outcome.actions {
            crate::infra::sync::lock(actions).push((plugin, chat_actions));
        }
    }

    /// One step's request accounted as the `llm` capability accounts its
    /// own: log line, metrics, audit entry, error policy (alerts).
    fn account(
        &self,
        cx: &TurnContext,
        client: &LlmClient,
        outcome: &Result<Completion, StreamBroken>,
        latency_ms: f64,
    ) {
        let outcome = outcome.clone().map_err(|broken| broken.failure);
        apply_llm_error_policy(client, &cx.services.alerter, &outcome);
        let entry = AuditEntry {
            correlation_id: Some(cx.correlation_id.to_string()),
            user_id: Some(cx.user_id),
            chat_id: Some(cx.chat_id),
            plugin: Some(self.caller.clone()),
            ..AuditEntry::new("llm_request", "")
        };
        account_llm_request(
            &cx.services,
            &self.caller,
            entry,
            client.model(),
            &outcome,
            latency_ms,
        );
    }

    /// What a resumed turn shows starts afresh (in a new message).
    pub fn restart_shown(&mut self) {
        self.shown.clear();
    }

    /// A line of the host's own under the text so far.
    fn note(&mut self, text: &watch::Sender<String>, line: &str) {
        if !self.shown.is_empty() && !self.shown.ends_with('\n') {
            self.shown.push('\n');
        }
        self.shown.push_str(line);
        self.shown.push('\n');
        text.send_replace(self.shown.clone());
    }

    /// The next request: the caller's system prompt with the tools note,
    /// the conversation so far, every tool the plugins offer.
    fn request(&self, cx: &TurnContext) -> CompletionRequest {
        let tools: Vec<Value> = cx
            .plugins
            .plugins()
            .iter()
            .flat_map(|plugin| plugin.tools())
            .map(|tool| {
                json!({
                    "name": tool.spec.name,
                    "description": tool.spec.description,
                    "input_schema": tool.spec.input_schema,
                })
            })
            .collect();
        let system = match (&self.system, tools.is_empty()) {
            (system, true) => system.clone(),
            (Some(system), false) => Some(format!("{system}\n\n{TOOLS_NOTE}")),
            (None, false) => Some(TOOLS_NOTE.to_string()),
        };
        CompletionRequest {
            system,
            messages: self
                .messages
                .iter()
                .filter_map(Message::from_json)
                .collect(),
            max_tokens: self.max_tokens,
            tools,
        }
    }
}
