//! Jobs that wake this plugin later (needs `capabilities = ["schedule"]` and
//! `handler!(handle, on_event)`): once after a delay or at a time, or on a
//! cron expression. Each carries a payload of yours (up to 16 KiB, e.g.
//! JSON) and belongs to the chat of the event being handled (or the admin
//! chat, [`add`] with [`Recipient::Admin`]); when it comes due, `on_event`
//! receives a [`crate::HappeningKind::Job`] with it, and its actions go to
//! that chat. Jobs survive restarts; a plugin keeps at most
//! `limits.schedule_jobs` (100 unless raised) at once.
//!
//! ```ignore
//! let id = schedule::after(Duration::from_secs(600), "take the pizza out")?;
//! schedule::cron("0 9 * * mon-fri", Some("Europe/Berlin"), "standup")?;
//! ```

use std::time::Duration;

use crate::bindings::wasmbot::plugin0_2_0::schedule as wit;
pub use crate::bindings::wasmbot::plugin0_2_0::schedule::{
    Cron, Job, Recipient, ScheduleError, When,
};

impl ScheduleError {
    /// A sentence for a user or a log line.
    pub fn message(&self) -> String {
        match self {
            ScheduleError::Invalid(why) => why.clone(),
            ScheduleError::QuotaExceeded(max) => {
                format!("there are {max} scheduled jobs already, the most allowed")
            }
            ScheduleError::OverBudget(why) => why.clone(),
            ScheduleError::Unavailable(why) => format!("scheduling unavailable: {why}"),
        }
    }
}

impl From<ScheduleError> for String {
    fn from(error: ScheduleError) -> Self {
        error.message()
    }
}

/// Once, `delay` from now, in this chat; returns the job's id.
pub fn after(delay: Duration, payload: &str) -> Result<u64, ScheduleError> {
    let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
    wit::add(&When::After(ms), payload, Recipient::ThisChat)
}

/// Once, at `unix_ms` (milliseconds since the Unix epoch, UTC), in this chat.
pub fn at(unix_ms: i64, payload: &str) -> Result<u64, ScheduleError> {
    wit::add(&When::At(unix_ms), payload, Recipient::ThisChat)
}

/// Every time `expression` matches (5 fields, or 6 with seconds first), read
/// in `time_zone` (IANA, e.g. `Europe/Berlin`; UTC when none), in this chat.
pub fn cron(
    expression: &str,
    time_zone: Option<&str>,
    payload: &str,
) -> Result<u64, ScheduleError> {
    let when = When::Cron(Cron {
        expression: expression.to_string(),
        time_zone: time_zone.map(str::to_string),
    });
    wit::add(&when, payload, Recipient::ThisChat)
}

/// Any job, for any recipient.
pub fn add(when: &When, payload: &str, to: Recipient) -> Result<u64, ScheduleError> {
    wit::add(when, payload, to)
}

/// Cancels a job of this plugin; false when there is none by that id.
pub fn cancel(id: u64) -> Result<bool, ScheduleError> {
    wit::cancel(id)
}

/// This plugin's jobs in every chat, soonest first.
pub fn list() -> Result<Vec<Job>, ScheduleError> {
    wit::list()
}
