//! Cron expressions: five fields (`min hour day month weekday`) or six with
//! seconds first, read in an IANA time zone (UTC when none is given).

use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// A repeating job's schedule as it is kept (`scheduled_jobs.spec`, JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CronSpec {
    pub expression: String,
    pub time_zone: Option<String>,
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

impl CronSpec {
    /// Checks the expression and the time zone; the error says which is wrong.
    pub fn check(&self) -> Result<(), String> {
        self.schedule()?;
        self.zone()?;
        Ok(())
    }

    /// The first time after `after_ms` the expression matches, in ms; None
    /// when it never does again (a year field in the past).
    pub fn next_after(&self, after_ms: i64) -> Result<Option<i64>, String> {
        let schedule = self.schedule()?;
        let zone = self.zone()?;
        let after = Utc
            .timestamp_millis_opt(after_ms)
            .single()
            .ok_or_else(|| format!("{after_ms} is not a time"))?;
        let next = schedule
            .after(&after.with_timezone(&zone))
            .next()
            .map(|time: DateTime<chrono_tz::Tz>| time.timestamp_millis());
        Ok(next)
    }

    fn schedule(&self) -> Result<cron::Schedule, String> {
        let fields = self.expression.split_whitespace().count();
        // The crate wants seconds first; a five-field expression fires at :00.
        let expression = match fields {
            5 => format!("0 {}", self.expression.trim()),
            6 | 7 => self.expression.trim().to_string(),
            _ => {
                return Err(format!(
                    "cron expression {:?} has {fields} fields; expected 5 (min hour day month weekday) or 6 (seconds first)",
                    self.expression
                ));
            }
        };
        cron::Schedule::from_str(&expression)
            .map_err(|error| format!("cron expression {:?}: {error}", self.expression))
    }

    fn zone(&self) -> Result<chrono_tz::Tz, String> {
        match &self.time_zone {
            None => Ok(chrono_tz::UTC),
            Some(name) => name.parse().map_err(|_| {
                format!("time zone {name:?} is not an IANA name (like Europe/Berlin)")
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(expression: &str, zone: Option<&str>) -> CronSpec {
        CronSpec {
            expression: expression.into(),
            time_zone: zone.map(str::to_string),
        }
    }

    fn ms(text: &str) -> i64 {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn five_fields_fire_on_the_minute_six_on_the_second() {
        let start = ms("2026-11-26T10:00:30Z");
        assert_eq!(
            spec("* * * * *", None).next_after(start).unwrap(),
            Some(ms("2026-11-26T10:01:00Z"))
        );
        assert_eq!(
            spec("*/10 * * * * *", None).next_after(start).unwrap(),
            Some(ms("2026-11-26T10:00:40Z"))
        );
    }

    #[test]
    fn the_time_zone_moves_the_hour() {
        // 09:00 in Berlin is 08:00 UTC in winter.
        let next = spec("0 9 * * *", Some("Europe/Berlin"))
            .next_after(ms("2026-11-26T07:00:00Z"))
            .unwrap();
        assert_eq!(next, Some(ms("2026-11-26T08:00:00Z")));
    }

    #[test]
    fn bad_expressions_and_zones_say_what_is_wrong() {
        let error = spec("* *", None).check().unwrap_err();
        assert!(error.contains("2 fields"), "{error}");
        let error = spec("99 * * * *", None).check().unwrap_err();
        assert!(error.contains("cron expression"), "{error}");
        let error = spec("* * * * *", Some("Mars/Olympus")).check().unwrap_err();
        assert!(error.contains("IANA"), "{error}");
    }
}
