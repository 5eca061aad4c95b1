//! The Calendar API's event list, and one day of it as text. Pure, so it
//! is tested natively.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct Listing {
    #[serde(default)]
    pub items: Vec<Event>,
}

#[derive(Debug, Deserialize)]
pub struct Event {
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    pub start: When,
    #[serde(default)]
    pub end: Option<When>,
}

/// `dateTime` (RFC 3339) for timed events, `date` for all-day ones.
#[derive(Debug, Deserialize)]
pub struct When {
    #[serde(rename = "dateTime", default)]
    pub date_time: Option<String>,
    #[serde(default)]
    pub date: Option<String>,
}

/// The day's first and last instant in `zone`, as UTC.
pub fn day_bounds(day: NaiveDate, zone: Tz) -> Result<(DateTime<Utc>, DateTime<Utc>), String> {
    let midnight = |date: NaiveDate| {
        date.and_hms_opt(0, 0, 0)
            .and_then(|naive| zone.from_local_datetime(&naive).earliest())
            .map(|local| local.with_timezone(&Utc))
            .ok_or_else(|| format!("{date} has no midnight in {zone}"))
    };
    let next = day.succ_opt().ok_or("the calendar ends here")?;
    Ok((midnight(day)?, midnight(next)?))
}

fn local_time(text: &str, zone: Tz) -> Option<String> {
    let at = DateTime::parse_from_rfc3339(text).ok()?;
    Some(at.with_timezone(&zone).format("%H:%M").to_string())
}

/// One line per event: `09:00–09:30  Standup — Room 4`, all-day first.
pub fn describe_day(listing: &Listing, day: NaiveDate, today: bool, zone: Tz) -> String {
    let title = if today { "Today" } else { "Tomorrow" };
    let mut lines = vec![format!("📅 {title}, {}", day.format("%A %-d %B"))];
    let mut all_day = Vec::new();
    let mut timed = Vec::new();
    for event in &listing.items {
        if event.status.as_deref() == Some("cancelled") {
            continue;
        }
        let what = event
            .summary
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .unwrap_or("(no title)");
        let place = event
            .location
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|place| format!(" — {place}"))
            .unwrap_or_default();
        match (&event.start.date_time, &event.start.date) {
            (Some(start), _) => {
                let from = local_time(start, zone).unwrap_or_else(|| "?".into());
                let to = event
                    .end
                    .as_ref()
                    .and_then(|end| end.date_time.as_deref())
                    .and_then(|end| local_time(end, zone));
                let span = match to {
                    Some(to) => format!("{from}–{to}"),
                    None => from,
                };
                timed.push(format!("{span}  {what}{place}"));
            }
            (None, Some(_)) => all_day.push(format!("All day  {what}{place}")),
            (None, None) => {}
        }
    }
    if all_day.is_empty() && timed.is_empty() {
        lines.push("Nothing on your calendar.".into());
    }
    lines.extend(all_day);
    lines.extend(timed);
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_in_the_owners_zone() {
        let zone: Tz = "Europe/Berlin".parse().unwrap();
        let day = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        let (start, end) = day_bounds(day, zone).unwrap();
        assert_eq!(start.to_rfc3339(), "2026-11-25T23:00:00+00:00");
        assert_eq!(end.to_rfc3339(), "2026-11-26T23:00:00+00:00");
        let listing: Listing = serde_json::from_str(
            r#"{"items":[
              {"summary":"Standup","location":"Room 4","start":{"dateTime":"2026-11-26T08:00:00Z"},"end":{"dateTime":"2026-11-26T08:30:00Z"}},
              {"summary":"Gone","status":"cancelled","start":{"dateTime":"2026-11-26T10:00:00Z"}},
              {"summary":"Holiday","start":{"date":"2026-11-26"},"end":{"date":"2026-11-27"}},
              {"start":{"dateTime":"2026-11-26T15:00:00+01:00"}}
            ]}"#,
        )
        .unwrap();
        assert_eq!(
            describe_day(&listing, day, true, zone),
            "📅 Today, Thursday 26 November\nAll day  Holiday\n09:00–09:30  Standup — Room 4\n15:00  (no title)"
        );
        let empty = Listing { items: Vec::new() };
        assert!(describe_day(&empty, day, false, zone).ends_with("Nothing on your calendar."));
    }
}
