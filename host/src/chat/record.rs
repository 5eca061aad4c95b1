//! What is kept of each handled event, beside handling it: one audit entry
//! (queued, never awaited) and the message metrics. The dispatcher routes
//! and calls; it hands each finished call here.

use std::time::Duration;

use super::event::Incoming;
use crate::infra::audit::AuditWriter;
use crate::infra::metrics::{MessageLabels, label, metrics};
use crate::infra::store::AuditEntry;
use crate::runtime::{Action, Event, EventKind, Happening, HappeningKind, PluginFailure};

type Outcome = Result<Vec<Action>, PluginFailure>;

/// The audit action of an event's kind: `command`, `text` or `button`.
pub fn kind_name(kind: &EventKind) -> &'static str {
    match kind {
        EventKind::Command(_) => "command",
        EventKind::Text(_) => "text",
        EventKind::Button(_) => "button",
    }
}

/// A user the access policy turned away.
pub fn refused(audit: Option<&AuditWriter>, incoming: &Incoming, correlation_id: &str) {
    let Some(writer) = audit else {
        return;
    };
    writer.record(AuditEntry {
        correlation_id: Some(correlation_id.to_string()),
        user_id: Some(incoming.user_id()),
        chat_id: Some(incoming.chat_id()),
        error: Some("user is not in TELEGRAM_ALLOWED_USERS".into()),
        metadata: sqlx::types::Json(serde_json::json!({ "username": incoming.username() })),
        ..AuditEntry::new("access", "denied")
    });
}

/// A command, text or press handled by `plugin`.
pub fn call_finished(
    audit: Option<&AuditWriter>,
    event: &Event,
    plugin: &str,
    outcome: &Outcome,
    elapsed: Duration,
) {
    let metadata = || match &event.kind {
        EventKind::Command(command) => serde_json::json!({ "command": command.name }),
        _ => serde_json::json!({ "answers_question": event.prompt.is_some() }),
    };
    let about = About {
        action: kind_name(&event.kind),
        correlation_id: &event.correlation_id,
        user_id: Some(event.user_id),
        chat_id: event.chat_id,
    };
    finished(audit, about, plugin, outcome, elapsed, metadata);
}

/// A due job or webhook delivery (`kind`: `job`, `webhook`) handled by
/// `plugin` for `user_id` (0: nobody in particular).
pub fn happening_finished(
    audit: Option<&AuditWriter>,
    happening: &Happening,
    (kind, user_id): (&str, i64),
    plugin: &str,
    outcome: &Outcome,
    elapsed: Duration,
) {
    let metadata = || match &happening.kind {
        HappeningKind::Job(job) => serde_json::json!({
            "job_id": job.id, "late": job.late, "attempt": job.attempt, "repeats": job.repeats,
        }),
        HappeningKind::Webhook(hook) => serde_json::json!({
            "hook": hook.name, "bytes": hook.body.len(),
        }),
    };
    let about = About {
        action: kind,
        correlation_id: &happening.correlation_id,
        user_id: (user_id != 0).then_some(user_id),
        chat_id: happening.chat_id,
    };
    finished(audit, about, plugin, outcome, elapsed, metadata);
}

/// What a finished call's audit entry is about.
struct About<'a> {
    action: &'a str,
    correlation_id: &'a str,
    user_id: Option<i64>,
    chat_id: i64,
}

/// Counts the call and queues its audit entry (`metadata` is built only
/// when there is a trail to write it to).
fn finished(
    audit: Option<&AuditWriter>,
    about: About<'_>,
    plugin: &str,
    outcome: &Outcome,
    elapsed: Duration,
    metadata: impl FnOnce() -> serde_json::Value,
) {
    count_message(plugin, outcome, elapsed);
    let Some(writer) = audit else {
        return;
    };
    writer.record(AuditEntry {
        correlation_id: Some(about.correlation_id.to_string()),
        user_id: about.user_id,
        chat_id: Some(about.chat_id),
        ..outcome_entry(about.action, plugin, outcome, elapsed, metadata())
    });
}

/// The audit entry of a plugin call: its action, outcome and duration.
fn outcome_entry(
    action: &str,
    plugin: &str,
    outcome: &Outcome,
    elapsed: Duration,
    metadata: serde_json::Value,
) -> AuditEntry {
    let (status, error) = match outcome {
        Ok(_) => ("ok", None),
        Err(failure) => (failure.status(), Some(failure.to_string())),
    };
    AuditEntry {
        plugin: Some(plugin.to_string()),
        error,
        duration_ms: Some(elapsed.as_secs_f64() * 1000.0),
        metadata: sqlx::types::Json(metadata),
        ..AuditEntry::new(action, status)
    }
}

/// The event, its latency and (for a call the host ended) the failure, in the metrics.
fn count_message(plugin: &str, outcome: &Outcome, elapsed: Duration) {
    let status = match outcome {
        Ok(_) => "ok",
        Err(failure) => failure.status(),
    };
    let m = metrics();
    m.messages
        .get_or_create(&MessageLabels {
            plugin: plugin.to_string(),
            status: status.to_string(),
        })
        .inc();
    m.handler_seconds.observe(elapsed.as_secs_f64());
    if let Err(failure) = outcome
        && !matches!(failure, PluginFailure::Declined(_))
    {
        m.plugin_failures.get_or_create(&label(status)).inc();
    }
}
