//! Reading when a reminder is for, in the owner's time zone: a delay
//! (`10m`, `2h30m`, `5s`, `in 1 hour`), or a time of day (`at 18:30`,
//! `tomorrow 9:00`, `today 7pm`). Pure: `now` is given, so it is tested
//! with a clock of its own.

use chrono::{DateTime, Days, Duration, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// When, and what is left of the text: the reminder itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub due: DateTime<Utc>,
    pub text: String,
}

/// What the user reads when the time is not understood.
pub const EXAMPLES: &str = "Try /remind 10m tea, /remind 2h30m call back, /remind tomorrow 9:00 dentist or /remind at 18:30 train.";

/// The longest delay a reminder may have.
const MAX_DELAY: Duration = Duration::days(366);

pub fn parse(input: &str, now: DateTime<Utc>, zone: Tz) -> Result<Parsed, String> {
    let words: Vec<&str> = input.split_whitespace().collect();
    let Some(&first) = words.first() else {
        return Err(format!("When, and what should I remind you of? {EXAMPLES}"));
    };
    let first_lower = first.to_lowercase();
    let (due, rest) = match first_lower.as_str() {
        "tomorrow" | "today" => {
            let days = u64::from(first_lower == "tomorrow");
            let (time, used) = time_of_day(&words[1..]).ok_or_else(|| {
                format!(
                    "At what time {first_lower}? Write e.g. /remind {first_lower} 9:00 dentist."
                )
            })?;
            let date = now.with_timezone(&zone).date_naive() + Days::new(days);
            let due = local(zone, date.and_time(time))?;
            if due <= now {
                return Err(format!(
                    "{} today has passed; did you mean tomorrow?",
                    time.format("%H:%M")
                ));
            }
            (due, &words[1 + used..])
        }
        "at" => {
            let (time, used) = time_of_day(&words[1..])
                .ok_or_else(|| "At what time? Write e.g. /remind at 18:30 train.".to_string())?;
            (next_time_of_day(now, zone, time)?, &words[1 + used..])
        }
        "in" => {
            let (delay, used) =
                delay(&words[1..]).ok_or_else(|| format!("In how long? {EXAMPLES}"))?;
            (after(now, delay)?, &words[1 + used..])
        }
        _ => {
            if let Some((delay, used)) = delay(&words) {
                (after(now, delay)?, &words[used..])
            } else if let Some((time, used)) = time_of_day(&words) {
                (next_time_of_day(now, zone, time)?, &words[used..])
            } else {
                return Err(format!("I could not read a time in {first:?}. {EXAMPLES}"));
            }
        }
    };
    let text = rest.join(" ");
    if text.trim().is_empty() {
        return Err(
            "What should I remind you of? Add it after the time, e.g. /remind 10m tea.".into(),
        );
    }
    Ok(Parsed { due, text })
}

fn after(now: DateTime<Utc>, delay: Duration) -> Result<DateTime<Utc>, String> {
    if delay <= Duration::zero() {
        return Err("The delay must be more than nothing.".into());
    }
    if delay > MAX_DELAY {
        return Err("That is more than a year away; I can remind you within a year.".into());
    }
    Ok(now + delay)
}

/// A delay from the first words: `10m`, `2h30m`, `1d`, `90s`, `10 min`,
/// `1 hour 20 minutes`; with how many words it took.
fn delay(words: &[&str]) -> Option<(Duration, usize)> {
    let mut total = Duration::zero();
    let mut used = 0;
    let mut index = 0;
    while index < words.len() {
        let word = words[index].to_lowercase();
        // "10 min": a number, then a unit as the next word.
        if word.chars().all(|c| c.is_ascii_digit())
            && let Some(next) = words.get(index + 1)
            && let Some(unit) = unit(&next.to_lowercase())
        {
            total += unit * word.parse::<i32>().ok()?;
            index += 2;
            used = index;
            continue;
        }
        match compact(&word) {
            Some(duration) => {
                total += duration;
                index += 1;
                used = index;
            }
            None => break,
        }
    }
    (used > 0).then_some((total, used))
}

/// `2h30m`, `10m`, `45s`, `1d`: number-unit pairs without spaces.
fn compact(word: &str) -> Option<Duration> {
    let mut total = Duration::zero();
    let mut rest = word;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 {
            return None;
        }
        let number: i32 = rest[..digits].parse().ok()?;
        let after = &rest[digits..];
        let unit_len = after
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(after.len());
        total += unit(&after[..unit_len])? * number;
        rest = &after[unit_len..];
    }
    Some(total)
}

fn unit(word: &str) -> Option<Duration> {
    Some(match word {
        "s" | "sec" | "secs" | "second" | "seconds" => Duration::seconds(1),
        "m" | "min" | "mins" | "minute" | "minutes" => Duration::minutes(1),
        "h" | "hr" | "hrs" | "hour" | "hours" => Duration::hours(1),
        "d" | "day" | "days" => Duration::days(1),
        _ => return None,
    })
}

/// A time of day from the first words: `18:30`, `9:00`, `7pm`, `7:15am`,
/// `7 pm`, optionally after `at`; with how many words it took.
fn time_of_day(words: &[&str]) -> Option<(NaiveTime, usize)> {
    let (words, skipped) = match words.first() {
        Some(word) if word.eq_ignore_ascii_case("at") => (&words[1..], 1),
        _ => (words, 0),
    };
    let first = words.first()?.to_lowercase();
    let (clock, suffix, used) = if let Some(clock) = first.strip_suffix("am") {
        (clock.to_string(), Some(false), 1)
    } else if let Some(clock) = first.strip_suffix("pm") {
        (clock.to_string(), Some(true), 1)
    } else {
        match words.get(1).map(|w| w.to_lowercase()) {
            Some(next) if next == "am" || next == "pm" => (first.clone(), Some(next == "pm"), 2),
            _ => (first.clone(), None, 1),
        }
    };
    let (hour, minute) = match clock.split_once(':').or_else(|| clock.split_once('.')) {
        Some((hour, minute)) if minute.len() == 2 => {
            (hour.parse::<u32>().ok()?, minute.parse::<u32>().ok()?)
        }
        Some(_) => return None,
        // A bare number is an hour only with am/pm ("10" alone is ambiguous).
        None if suffix.is_some() => (clock.parse::<u32>().ok()?, 0),
        None => return None,
    };
    let hour = match suffix {
        Some(pm) if (1..=12).contains(&hour) => hour % 12 + if pm { 12 } else { 0 },
        Some(_) => return None,
        None => hour,
    };
    let time = NaiveTime::from_hms_opt(hour, minute, 0)?;
    Some((time, skipped + used))
}

/// The next time the clock in `zone` shows `time`: today, or tomorrow if it has passed.
fn next_time_of_day(
    now: DateTime<Utc>,
    zone: Tz,
    time: NaiveTime,
) -> Result<DateTime<Utc>, String> {
    let today = now.with_timezone(&zone).date_naive();
    let due = local(zone, today.and_time(time))?;
    if due > now {
        return Ok(due);
    }
    local(zone, (today + Days::new(1)).and_time(time))
}

/// A wall-clock time in `zone` as an instant; in a daylight-saving gap,
/// the first instant after it.
fn local(zone: Tz, naive: chrono::NaiveDateTime) -> Result<DateTime<Utc>, String> {
    zone.from_local_datetime(&naive)
        .earliest()
        .or_else(|| {
            zone.from_local_datetime(&(naive + Duration::hours(1)))
                .earliest()
        })
        .map(|time| time.with_timezone(&Utc))
        .ok_or_else(|| format!("{naive} does not exist in {zone}"))
}

/// How a due time reads in the owner's zone, from `now`: "today 18:30",
/// "tomorrow 09:00", "Fri 27 Nov 09:00".
pub fn describe(due: DateTime<Utc>, now: DateTime<Utc>, zone: Tz) -> String {
    let due_local = due.with_timezone(&zone);
    let today = now.with_timezone(&zone).date_naive();
    let clock = if due_local.format("%S").to_string() == "00" {
        due_local.format("%H:%M").to_string()
    } else {
        due_local.format("%H:%M:%S").to_string()
    };
    if due_local.date_naive() == today {
        format!("today {clock}")
    } else if due_local.date_naive() == today + Days::new(1) {
        format!("tomorrow {clock}")
    } else {
        format!("{} {clock}", due_local.format("%a %-d %b"))
    }
}

/// Milliseconds since the epoch as a time.
pub fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        // Thursday 26 Nov 2026, 17:00 UTC = 18:00 in Berlin.
        "2026-11-26T17:00:00Z".parse().unwrap()
    }

    fn berlin() -> Tz {
        "Europe/Berlin".parse().unwrap()
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    /// Each input reads as its due time and reminder text.
    fn check(cases: &[(&str, DateTime<Utc>, &str)]) {
        for (input, due, text) in cases {
            let parsed = parse(input, now(), berlin()).unwrap_or_else(|e| panic!("{input}: {e}"));
            let expected = Parsed {
                due: *due,
                text: text.to_string(),
            };
            assert_eq!(parsed, expected, "{input}");
        }
    }

    #[test]
    fn delays_compact_and_spelled_out() {
        let cases = [
            (
                "10m take the pizza out",
                at("2026-11-26T17:10:00Z"),
                "take the pizza out",
            ),
            ("2h30m call back", at("2026-11-26T19:30:00Z"), "call back"),
            ("5s stretch", at("2026-11-26T17:00:05Z"), "stretch"),
            ("in 1 hour 20 min tea", at("2026-11-26T18:20:00Z"), "tea"),
            (
                "1d water plants",
                at("2026-11-27T17:00:00Z"),
                "water plants",
            ),
            ("90 seconds eggs", at("2026-11-26T17:01:30Z"), "eggs"),
        ];
        check(&cases);
    }

    #[test]
    fn times_of_day_in_the_owners_zone() {
        let cases = [
            // 09:00 Berlin = 08:00 UTC.
            (
                "tomorrow 9:00 dentist",
                at("2026-11-27T08:00:00Z"),
                "dentist",
            ),
            (
                "tomorrow at 7pm dinner",
                at("2026-11-27T18:00:00Z"),
                "dinner",
            ),
            // 18:30 Berlin today is still ahead (it is 18:00 there).
            ("at 18:30 train", at("2026-11-26T17:30:00Z"), "train"),
            // 17:30 has passed in Berlin: tomorrow.
            ("at 17:30 gym", at("2026-11-27T16:30:00Z"), "gym"),
            (
                "today 8 pm call mum",
                at("2026-11-26T19:00:00Z"),
                "call mum",
            ),
            ("22:15 lights", at("2026-11-26T21:15:00Z"), "lights"),
        ];
        check(&cases);
    }

    #[test]
    fn what_cannot_be_read_says_how_to_write_it() {
        for (input, expected) in [
            ("", "When, and what"),
            ("soon tea", "could not read a time in \"soon\""),
            ("10m", "What should I remind you of"),
            ("tomorrow dentist", "At what time tomorrow"),
            ("at noon", "At what time?"),
            ("today 9:00 late", "has passed"),
            ("400d far", "within a year"),
            ("25:00 x", "could not read"),
        ] {
            let error = parse(input, now(), berlin()).unwrap_err();
            assert!(error.contains(expected), "{input}: {error}");
        }
    }

    #[test]
    fn due_times_read_relative_to_today() {
        assert_eq!(
            describe(at("2026-11-26T17:30:00Z"), now(), berlin()),
            "today 18:30"
        );
        assert_eq!(
            describe(at("2026-11-27T08:00:00Z"), now(), berlin()),
            "tomorrow 09:00"
        );
        assert_eq!(
            describe(at("2026-11-28T08:00:05Z"), now(), berlin()),
            "Sat 28 Nov 09:00:05"
        );
    }
}
