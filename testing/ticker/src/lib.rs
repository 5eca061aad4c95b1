//! Test plugin for schedules and webhooks: adds cron and one-shot jobs (for
//! this chat or the admin chat), one whose handler always traps, lists and
//! cancels them; `on_event` says what came: `⏰ payload` (with `(late)`),
//! or `🪝 name: body (content-type)` for a webhook delivery.

use std::time::Duration;

use wasmbot_sdk::prelude::*;
use wasmbot_sdk::schedule::{Recipient, When};

fn handle(msg: Message) -> HandlerResult {
    let (first, rest) = msg.args.split_once(' ').unwrap_or((msg.args.as_str(), ""));
    let text = match msg.command.as_str() {
        "tick" => format!("ticking #{}", schedule::cron(&msg.args, None, "tick")?),
        "later" => format!("later #{}", schedule::after(millis(first)?, rest)?),
        "tell_admin" => {
            let when = When::After(first.parse().map_err(|_| "ms?".to_string())?);
            format!("admin #{}", schedule::add(&when, rest, Recipient::Admin)?)
        }
        "fail" => format!("failing #{}", schedule::after(millis(first)?, "fail")?),
        "jobs" => format!("jobs: {}", schedule::list()?.len()),
        "unschedule" => {
            let id = first.parse().map_err(|_| "id?".to_string())?;
            format!("cancelled: {}", schedule::cancel(id)?)
        }
        other => return Err(format!("unknown command {other}")),
    };
    Ok(Reply::text(text))
}

fn millis(text: &str) -> Result<Duration, String> {
    text.parse()
        .map(Duration::from_millis)
        .map_err(|_| format!("{text:?} is not a number of milliseconds"))
}

fn on_event(event: Happening) -> EventResult {
    match event.kind {
        HappeningKind::Job(job) if job.payload == "fail" => {
            panic!("failing on purpose (attempt {})", job.attempt)
        }
        HappeningKind::Job(job) => {
            let late = if job.late { " (late)" } else { "" };
            Ok(Reply::text(format!("⏰ {}{late}", job.payload)).into())
        }
        HappeningKind::Webhook(hook) => {
            let content_type = hook
                .headers
                .iter()
                .find(|(name, _)| name == "content-type")
                .map_or("none", |(_, value)| value.as_str());
            Ok(Reply::text(format!(
                "🪝 {}: {} ({content_type})",
                hook.name,
                String::from_utf8_lossy(&hook.body)
            ))
            .into())
        }
    }
}

wasmbot_sdk::handler!(handle, on_event);
