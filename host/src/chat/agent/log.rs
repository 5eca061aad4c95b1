//! Running one tool call with its two rows in `tool_calls`: the started
//! row before the tool runs (never updated), the completion row after it
//! (pointing to the first). A call of a turn that is handled again (a
//! redelivered update) reuses the result recorded the first time.

use std::time::Instant;

use serde_json::Value;

use super::context::TurnContext;
use crate::infra::store::{AuditEntry, StartedToolCall, clean_text};
use crate::runtime::{Action, CallContext, PluginFailure};

/// What Claude is told of one tool call, and what the chat is shown.
pub struct ToolOutcome {
    /// ok, error, denied or timeout.
    pub status: &'static str,
    pub text: String,
    /// The tool's plugin and the actions it asked the chat to show.
    pub actions: Option<(String, Vec<Action>)>,
}

impl ToolOutcome {
    /// An error result for Claude (an input the schema refuses, say).
    pub fn error(text: String) -> Self {
        Self {
            status: "error",
            text,
            actions: None,
        }
    }

    /// The user pressed Deny.
    pub fn denied() -> Self {
        Self {
            status: "denied",
            text: "The user refused to let this tool run. Do not try it again in this turn."
                .to_string(),
            actions: None,
        }
    }
}

/// The console's line for a tool call: `🔧 remind(when: "in 5 seconds") → ok`.
pub fn line(tool: &str, input: &Value, outcome: &ToolOutcome) -> String {
    format!("🔧 {tool}({}) → {}", summary(input), outcome.status)
}

/// A tool's input in a few words: `key: value` pairs, long values cut.
pub fn summary(input: &Value) -> String {
    let Some(fields) = input.as_object() else {
        return input.to_string();
    };
    let parts: Vec<String> = fields
        .iter()
        .map(|(key, value)| {
            let value = value.to_string();
            let value = if value.chars().count() > 40 {
                format!("{}…", value.chars().take(40).collect::<String>())
            } else {
                value
            };
            format!("{key}: {value}")
        })
        .collect();
    clean_text(&parts.join(", ")).into_owned()
}

/// Runs the tool `name` with `input` in its plugin's sandbox, logged in two
/// rows; an unknown tool, a refused input, a trap or a timeout is an error
/// result for Claude, never a call to another plugin.
pub async fn run_logged(cx: &TurnContext, name: &str, input: &Value) -> ToolOutcome {
    let Some(plugin) = cx.plugins.tool_owner(name).cloned() else {
        return ToolOutcome::error(format!(
            "There is no tool called {name:?}. Use only the tools you were given."
        ));
    };
    // The log keeps no secret the tool's plugin was handed (masked as everywhere).
    let logged_input = plugin.mask(&input.to_string());
    if let Some(reused) = reuse(cx, name, &logged_input).await {
        tracing::info!(
            tool = name,
            plugin = plugin.name(),
            "tool result reused: this message was handled before"
        );
        return reused;
    }
    let id = uuid::Uuid::new_v4().simple().to_string();
    let started = started_row(cx, &id, plugin.name(), name, &logged_input);
    if let Some(store) = &cx.services.store
        && let Err(error) = store.tool_call_started(&started).await
    {
        // Without its started row the call would leave no trace: not run.
        tracing::error!(tool = name, %error, "could not log a tool call; it is not run");
        return ToolOutcome::error(
            "The host could not record this tool call, so it did not run it. Try again later."
                .into(),
        );
    }
    let clock = Instant::now();
    let ctx = CallContext {
        correlation_id: cx.correlation_id.clone(),
        user_id: cx.user_id,
        chat_id: cx.chat_id,
        channel: cx.channel,
        services: cx.services.clone(),
        link: None,
        agent: None,
        attachments: Vec::new(),
    };
    let outcome = match plugin.call_tool(name, input, &ctx).await {
        Ok(answer) => ToolOutcome {
            status: "ok",
            text: answer.text,
            actions: (!answer.actions.is_empty())
                .then(|| (plugin.name().to_string(), answer.actions)),
        },
        Err(PluginFailure::Timeout(limit)) => ToolOutcome {
            status: "timeout",
            text: format!("The tool did not finish within its {} s.", limit.as_secs()),
            actions: None,
        },
        Err(PluginFailure::Declined(text)) => ToolOutcome::error(text),
        Err(failure) => ToolOutcome::error(format!("The tool failed: {failure}")),
    };
    let duration_ms = clock.elapsed().as_secs_f64() * 1000.0;
    finish(cx, &started, &outcome, duration_ms).await;
    outcome
}

/// Logs a call the user denied (both rows at once: it never ran).
pub async fn denied(cx: &TurnContext, plugin: &str, name: &str, input: &Value) -> ToolOutcome {
    let outcome = ToolOutcome::denied();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let input_json = input.to_string();
    let started = started_row(cx, &id, plugin, name, &input_json);
    if let Some(store) = &cx.services.store
        && let Err(error) = store.tool_call_started(&started).await
    {
        tracing::error!(tool = name, %error, "could not log a denied tool call");
        return outcome;
    }
    finish(cx, &started, &outcome, 0.0).await;
    outcome
}

/// The started row of a call in this turn.
fn started_row<'a>(
    cx: &'a TurnContext,
    id: &'a str,
    plugin: &'a str,
    tool: &'a str,
    input: &'a str,
) -> StartedToolCall<'a> {
    StartedToolCall {
        id,
        correlation_id: &cx.correlation_id,
        turn_key: cx.turn_key.as_deref(),
        chat_id: cx.chat_id,
        user_id: cx.user_id,
        plugin,
        tool,
        input,
    }
}

/// The completion row, an audit entry and a log line.
async fn finish(
    cx: &TurnContext,
    started: &StartedToolCall<'_>,
    outcome: &ToolOutcome,
    duration_ms: f64,
) {
    let output = serde_json::json!({"text": outcome.text}).to_string();
    if let Some(store) = &cx.services.store
        && let Err(error) = store
            .tool_call_finished(started, outcome.status, &output, duration_ms)
            .await
    {
        tracing::error!(tool = started.tool, %error, "could not log a tool call's completion");
    }
    tracing::info!(
        plugin = started.plugin,
        tool = started.tool,
        status = outcome.status,
        duration_ms,
        "tool call"
    );
    if let Some(audit) = &cx.services.audit {
        let mut entry = AuditEntry::new("tool_call", outcome.status);
        entry.correlation_id = Some(cx.correlation_id.to_string());
        entry.chat_id = Some(cx.chat_id);
        entry.user_id = Some(cx.user_id);
        entry.plugin = Some(started.plugin.to_string());
        entry.duration_ms = Some(duration_ms);
        entry.metadata = sqlx::types::Json(serde_json::json!({"tool": started.tool}));
        audit.record(entry);
    }
}

/// The result a first handling of this message recorded for the same call
/// (same tool, same input; each recorded result is reused once).
async fn reuse(cx: &TurnContext, name: &str, input: &str) -> Option<ToolOutcome> {
    let key = cx.turn_key.as_deref()?;
    let store = cx.services.store.as_ref()?;
    let mut recorded = cx.recorded.lock().await;
    if recorded.is_none() {
        *recorded = Some(store.tool_calls_completed(key).await.ok()?);
    }
    let calls = recorded.as_mut()?;
    let at = calls
        .iter()
        .position(|call| call.tool == name && call.input == input)?;
    let call = calls.remove(at);
    let text = serde_json::from_str::<Value>(&call.output)
        .ok()
        .and_then(|output| output["text"].as_str().map(str::to_string))
        .unwrap_or(call.output);
    let status = match call.status.as_str() {
        "ok" => "ok",
        "denied" => "denied",
        "timeout" => "timeout",
        _ => "error",
    };
    Some(ToolOutcome {
        status,
        text,
        actions: None,
    })
}
