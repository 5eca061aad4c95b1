//! `/remind`: reminders in this chat. `/remind 10m take the pizza out`,
//! `/remind 2h30m call back`, `/remind tomorrow 9:00 dentist`, `/remind at
//! 18:30 train` (times in the owner's time zone, the `time_zone` setting),
//! `/remind list`, `/remind cancel N`. Each reminder is a job (`schedule`);
//! when it comes due, `on_event` sends it with a "snooze" button, whose press
//! sets it again a few minutes later.

mod when;

use chrono::{Duration, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use wasmbot_sdk::prelude::*;

/// A job's payload, and a snooze button's data.
#[derive(Debug, Serialize, Deserialize)]
struct Reminder {
    text: String,
}

/// Button data holds the reminder's text, cut to stay under the host's 1 KiB.
const MAX_BUTTON_DATA: usize = 1000;

const USAGE: &str = "Reminders in this chat:\n\
    /remind 10m take the pizza out\n\
    /remind 2h30m call back\n\
    /remind tomorrow 9:00 dentist\n\
    /remind at 18:30 train\n\
    /remind list — what is coming\n\
    /remind cancel N — forget reminder N";

struct Settings {
    zone: Tz,
    snooze: Duration,
}

fn settings() -> Result<Settings, String> {
    let zone_name = config::get("time_zone").unwrap_or_else(|| "UTC".into());
    let zone = zone_name.parse::<Tz>().map_err(|_| {
        format!(
            "The remind plugin's time zone {zone_name:?} is not a time zone name like Europe/Berlin (setting PLUGIN_REMIND_TIME_ZONE)."
        )
    })?;
    let minutes = config::get("snooze_minutes")
        .and_then(|value| value.trim().parse::<i64>().ok())
        .filter(|minutes| (1..=24 * 60).contains(minutes))
        .unwrap_or(10);
    Ok(Settings {
        zone,
        snooze: Duration::minutes(minutes),
    })
}

fn handle(event: Event) -> EventResult {
    let settings = settings()?;
    if let Some(press) = event.press() {
        return snooze(press, &settings);
    }
    let args = event.args().trim();
    let (first, rest) = args.split_once(char::is_whitespace).unwrap_or((args, ""));
    match first.to_lowercase().as_str() {
        "" | "help" => Ok(Reply::text(USAGE).into()),
        "list" => list(&event, &settings),
        "cancel" => cancel(&event, rest.trim()),
        _ => set(&event, args, &settings),
    }
}

fn set(event: &Event, args: &str, settings: &Settings) -> EventResult {
    Ok(Reply::text(remind(args, settings)?)
        .reply_to(event.message_ref())
        .into())
}

/// Sets the reminder `args` reads as (a time, then the text); what was set.
fn remind(args: &str, settings: &Settings) -> Result<String, String> {
    let now = Utc::now();
    let parsed = when::parse(args, now, settings.zone)?;
    let payload = payload(&parsed.text)?;
    let id = schedule::at(parsed.due.timestamp_millis(), &payload)?;
    let at = when::describe(parsed.due, now, settings.zone);
    Ok(format!("👍 I'll remind you {at}: {} (#{id})", parsed.text))
}

/// The assistant's tool `remind`: `when` as /remind reads it, and `text`.
fn tool(call: ToolCall) -> ToolResult {
    let when = call.text("when").unwrap_or_default().trim();
    let text = call.text("text").unwrap_or_default().trim();
    Ok(remind(&format!("{when} {text}"), &settings()?)?.into())
}

fn list(event: &Event, settings: &Settings) -> EventResult {
    let now = Utc::now();
    let lines: Vec<String> = schedule::list()?
        .into_iter()
        .filter(|job| job.chat_id == Some(event.chat_id))
        .map(|job| {
            let text = serde_json::from_str::<Reminder>(&job.payload)
                .map(|reminder| reminder.text)
                .unwrap_or(job.payload);
            let at = when::describe(when::from_ms(job.next_run), now, settings.zone);
            format!("#{} {at} — {text}", job.id)
        })
        .collect();
    if lines.is_empty() {
        return Ok(Reply::text("No reminders in this chat. /remind 10m tea sets one.").into());
    }
    Ok(Reply::text(format!(
        "⏰ Coming up:\n{}\n\n/remind cancel N forgets one.",
        lines.join("\n")
    ))
    .into())
}

fn cancel(event: &Event, which: &str) -> EventResult {
    let Ok(id) = which.trim_start_matches('#').parse::<u64>() else {
        return Err("Which one? Write /remind cancel N with the number /remind list shows.".into());
    };
    // Only this chat's: another chat's reminder is not the user's to cancel.
    let mine = schedule::list()?
        .iter()
        .any(|job| job.id == id && job.chat_id == Some(event.chat_id));
    if mine && schedule::cancel(id)? {
        Ok(Reply::text(format!("🗑 Reminder #{id} cancelled.")).into())
    } else {
        Err(format!(
            "There is no reminder #{id} in this chat (see /remind list)."
        ))
    }
}

/// A press on "snooze": the same reminder again in a few minutes.
fn snooze(press: &ButtonPress, settings: &Settings) -> EventResult {
    let reminder: Reminder = serde_json::from_str(&press.data)
        .map_err(|_| "This button is from an older version of the reminder plugin.".to_string())?;
    let now = Utc::now();
    let due = now + settings.snooze;
    schedule::at(due.timestamp_millis(), &payload(&reminder.text)?)?;
    let minutes = settings.snooze.num_minutes();
    Ok(actions![
        edit(
            press.message(),
            Reply::text(format!(
                "⏰ {}\n💤 Snoozed until {}",
                reminder.text,
                when::describe(due, now, settings.zone)
            )),
        ),
        notice(format!("Snoozed for {minutes} min")),
    ])
}

/// The snooze button's data: the reminder, cut until its JSON (escapes
/// included) fits the host's limit.
fn button_data(mut text: String) -> Result<String, String> {
    loop {
        let data = payload(&text)?;
        if data.len() <= MAX_BUTTON_DATA || text.is_empty() {
            return Ok(data);
        }
        let keep = text.chars().count() * MAX_BUTTON_DATA / data.len();
        text = text.chars().take(keep.saturating_sub(1)).collect();
    }
}

fn payload(text: &str) -> Result<String, String> {
    serde_json::to_string(&Reminder {
        text: text.to_string(),
    })
    .map_err(|error| error.to_string())
}

/// A due reminder: sent with its snooze button.
fn on_event(event: Happening) -> EventResult {
    let HappeningKind::Job(job) = event.kind else {
        return Err("The reminder plugin takes no webhooks.".into());
    };
    let settings = settings()?;
    let reminder: Reminder =
        serde_json::from_str(&job.payload).unwrap_or(Reminder { text: job.payload });
    let mut text = format!("⏰ {}", reminder.text);
    if job.late {
        let due = when::from_ms(job.due_at);
        text.push_str(&format!(
            "\n(late: this was due {})",
            when::describe(due, Utc::now(), settings.zone)
        ));
    }
    let data = button_data(reminder.text)?;
    let minutes = settings.snooze.num_minutes();
    Ok(Reply::text(text)
        .button(format!("💤 Snooze {minutes} min"), data)
        .into())
}

wasmbot_sdk::handler!(handle, on_event, tools = tool);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_reminder_still_fits_its_button() {
        let long = "\"quoted\"\n".repeat(500);
        let data = button_data(long.clone()).unwrap();
        assert!(data.len() <= MAX_BUTTON_DATA, "{}", data.len());
        let kept: Reminder = serde_json::from_str(&data).unwrap();
        assert!(long.starts_with(&kept.text) && !kept.text.is_empty());
        assert_eq!(button_data("tea".into()).unwrap(), r#"{"text":"tea"}"#);
    }
}
