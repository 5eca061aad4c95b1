//! `wasmbot:plugin/schedule`: jobs that wake the plugin later, kept in the
//! database (`scheduled_jobs`) and fired by the one process running jobs for
//! the channel (`chat::jobs`). A job belongs to the chat of the call that
//! adds it, or to the admin chat; the plugin cannot name another chat, so a
//! job can message only those. Granted only to a plugin exporting
//! `on-event`, the one place its jobs can arrive.

use std::sync::Arc;

use crate::infra::schedule::{CronSpec, now_ms};
use crate::infra::store::{NewJob, Store, StoredJob};
use crate::runtime::bindings::schedule::{self as wit, Job, Recipient, ScheduleError, When};
use crate::runtime::{Budget, CallState, Grant, GrantInput, HOST_CALLS};

/// Counted per call (adds and cancels); `limits.schedule_writes`, `PLUGIN_SCHEDULE_WRITES`.
pub static SCHEDULE_WRITES: Budget = Budget::new("schedule_writes", "schedule changes", 20, 1_000);

/// Jobs one plugin keeps at once; `limits.schedule_jobs`, `PLUGIN_SCHEDULE_JOBS`.
pub static SCHEDULE_JOBS: Budget = Budget::new("schedule_jobs", "scheduled jobs", 100, 100_000);

/// The largest payload a job carries.
pub const MAX_PAYLOAD_BYTES: usize = 16 * 1024;

/// How far ahead a one-shot job may be set: ten years.
const MAX_AHEAD_MS: i64 = 10 * 366 * 24 * 60 * 60 * 1000;

/// `schedule.list` returns at most this many jobs.
const MAX_LIST: u32 = 1_000;

/// Refuses the grant to a plugin its jobs could never reach.
pub fn configure(input: &GrantInput<'_>) -> Result<Grant, String> {
    if !input.events {
        return Err(
            "the component does not export `on-event` (the `proactive` world), so its jobs could never fire; \
             in Rust write `wasmbot_sdk::handler!(handle, on_event)`"
                .into(),
        );
    }
    Ok(Arc::new(()))
}

fn unavailable(error: impl std::fmt::Display) -> ScheduleError {
    tracing::warn!(%error, "schedule capability: database error");
    ScheduleError::Unavailable("the database is not available".into())
}

fn database(state: &CallState) -> Result<Store, ScheduleError> {
    state
        .services()
        .store
        .clone()
        .ok_or_else(|| unavailable("no database"))
}

/// When a new job is first due, with its kind and kept schedule.
fn first_run(when: &When, now: i64) -> Result<(i64, &'static str, Option<String>), ScheduleError> {
    match when {
        When::At(at) if *at <= now => Err(ScheduleError::Invalid(format!(
            "{at} is in the past (it is {now} ms since the epoch now)"
        ))),
        When::At(at) if *at - now > MAX_AHEAD_MS => {
            Err(ScheduleError::Invalid("at most ten years ahead".into()))
        }
        When::At(at) => Ok((*at, "at", None)),
        When::After(delay) => match i64::try_from(*delay) {
            Ok(delay) if delay <= MAX_AHEAD_MS => Ok((now + delay, "at", None)),
            _ => Err(ScheduleError::Invalid("at most ten years ahead".into())),
        },
        When::Cron(cron) => {
            let spec = CronSpec {
                expression: cron.expression.clone(),
                time_zone: cron.time_zone.clone(),
            };
            let next = spec
                .next_after(now)
                .map_err(ScheduleError::Invalid)?
                .ok_or_else(|| {
                    ScheduleError::Invalid(format!(
                        "cron expression {:?} never matches again",
                        cron.expression
                    ))
                })?;
            let kept = serde_json::to_string(&spec).map_err(unavailable)?;
            Ok((next, "cron", Some(kept)))
        }
    }
}

/// A kept job as the plugin sees it.
fn job(stored: StoredJob) -> Job {
    let when = stored
        .spec
        .as_deref()
        .and_then(|spec| serde_json::from_str::<CronSpec>(spec).ok())
        .map(|spec| {
            When::Cron(wit::Cron {
                expression: spec.expression,
                time_zone: spec.time_zone,
            })
        })
        .unwrap_or(When::At(stored.due_ms));
    Job {
        id: u64::try_from(stored.id).unwrap_or_default(),
        when,
        next_run: stored.due_ms,
        payload: stored.payload,
        chat_id: stored.chat_id,
    }
}

impl wit::Host for CallState {
    async fn add(
        &mut self,
        when: When,
        payload: String,
        to: Recipient,
    ) -> Result<u64, ScheduleError> {
        self.spend(&SCHEDULE_WRITES)?;
        if payload.len() > MAX_PAYLOAD_BYTES {
            return Err(ScheduleError::Invalid(format!(
                "the payload is {} bytes; at most {MAX_PAYLOAD_BYTES}",
                payload.len()
            )));
        }
        let (due_ms, kind, spec) = first_run(&when, now_ms())?;
        // Kept in the database and handed back later: never a secret.
        let payload = self.mask(&payload);
        let store = database(self)?;
        let context = self.context();
        let new = NewJob {
            plugin: self.plugin(),
            channel: context.channel,
            chat_id: match to {
                Recipient::ThisChat => Some(context.chat_id),
                Recipient::Admin => None,
            },
            user_id: Some(context.user_id),
            kind,
            spec: spec.as_deref(),
            payload: &payload,
            due_ms,
        };
        let max = u64::from(self.quota(&SCHEDULE_JOBS));
        match store.jobs_add(&new, max).await.map_err(unavailable)? {
            Ok(id) => {
                self.services().jobs_added.notify_one();
                Ok(u64::try_from(id).unwrap_or_default())
            }
            Err(full) => {
                self.over_quota("schedule");
                Err(ScheduleError::QuotaExceeded(
                    u32::try_from(full.0).unwrap_or(u32::MAX),
                ))
            }
        }
    }

    async fn cancel(&mut self, id: u64) -> Result<bool, ScheduleError> {
        self.spend(&SCHEDULE_WRITES)?;
        let Ok(id) = i64::try_from(id) else {
            return Ok(false);
        };
        let store = database(self)?;
        store
            .jobs_cancel(self.plugin(), id)
            .await
            .map_err(unavailable)
    }

    async fn list(&mut self) -> Result<Vec<Job>, ScheduleError> {
        self.spend(&HOST_CALLS)?;
        let store = database(self)?;
        let jobs = store
            .jobs_list(self.plugin(), MAX_LIST)
            .await
            .map_err(unavailable)?;
        Ok(jobs.into_iter().map(job).collect())
    }
}

over_budget_is!(ScheduleError);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_starts_at_its_time_after_its_delay_or_at_its_next_match() {
        let now = 1_800_000_000_000;
        assert_eq!(first_run(&When::At(now + 5), now).unwrap().0, now + 5);
        assert_eq!(first_run(&When::After(5_000), now).unwrap().0, now + 5_000);
        let every_minute = When::Cron(wit::Cron {
            expression: "* * * * *".into(),
            time_zone: None,
        });
        let (next, kind, spec) = first_run(&every_minute, now).unwrap();
        assert_eq!((next % 60_000, kind), (0, "cron"));
        assert!(next > now && next - now <= 60_000);
        assert!(spec.unwrap().contains("* * * * *"));
    }

    #[test]
    fn the_past_and_the_far_future_are_refused() {
        let now = 1_800_000_000_000;
        assert!(matches!(
            first_run(&When::At(now), now),
            Err(ScheduleError::Invalid(_))
        ));
        assert!(matches!(
            first_run(&When::After(u64::MAX), now),
            Err(ScheduleError::Invalid(_))
        ));
    }
}
