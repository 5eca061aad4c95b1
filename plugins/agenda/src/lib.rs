//! `/agenda` (or `/agenda tomorrow`): the day's events on the owner's
//! Google Calendar, in the owner's time zone. The `google` OAuth credential
//! is the operator's (`wasmbot oauth add google`); the host injects and
//! refreshes its token, so this plugin never holds one.

mod events;

use chrono::{Days, Utc};
use chrono_tz::Tz;
use wasmbot_sdk::http::ErrorKind;
use wasmbot_sdk::prelude::*;

fn handle(msg: Message) -> HandlerResult {
    agenda(&msg.args).map(Reply::text)
}

/// The assistant's tool `agenda`: `day` is "today" or "tomorrow".
fn tool(call: ToolCall) -> ToolResult {
    Ok(agenda(call.text("day").unwrap_or("today"))?.into())
}

/// The day's events as text (`day`: "", "today" or "tomorrow").
fn agenda(day: &str) -> Result<String, String> {
    let zone_name = config::require("time_zone")?;
    let zone = zone_name.trim().parse::<Tz>().map_err(|_| {
        format!("`time_zone` is {zone_name:?}, not an IANA time zone like Europe/Berlin")
    })?;
    let offset = match day.trim().to_lowercase().as_str() {
        "" | "today" => 0,
        "tomorrow" => 1,
        other => {
            return Ok(format!(
                "I know /agenda and /agenda tomorrow, not {other:?}."
            ));
        }
    };
    let day = Utc::now().with_timezone(&zone).date_naive() + Days::new(offset);
    let (start, end) = events::day_bounds(day, zone)?;
    let api_url = config::require("api_url")?;
    let calendar = config::require("calendar")?;
    let sent = http::Request::get(format!(
        "{}/calendar/v3/calendars/{}/events",
        api_url.trim().trim_end_matches('/'),
        http::percent_encode(calendar.trim())
    ))
    .query("timeMin", start.to_rfc3339())
    .query("timeMax", end.to_rfc3339())
    .query("singleEvents", "true")
    .query("orderBy", "startTime")
    .query("maxResults", 50)
    .bearer_oauth("google")
    .header("Accept", "application/json")
    .send();
    let response = match sent {
        Ok(response) => response,
        Err(error) if error.kind() == ErrorKind::Authorization => {
            return Ok(format!("I cannot read your calendar: {}", error.message()));
        }
        Err(error) => return Err(error.into()),
    };
    if response.status == 401 || response.status == 403 {
        return Ok(format!(
            "Google refused access to the calendar ({}). The operator may need to run `wasmbot oauth add google` with the calendar scope.",
            response.status
        ));
    }
    let listing: events::Listing = response.json()?;
    Ok(events::describe_day(&listing, day, offset == 0, zone))
}

wasmbot_sdk::handler!(handle, tools = tool);
