//! The jobs and the loop that runs them while this worker holds the lock.

use std::time::Duration;

use chrono::{DateTime, NaiveTime, Utc};
use tokio::sync::watch;

use crate::app::config::Config;
use crate::infra::schedule::{LeaderLock, Leadership};
use crate::infra::services::HostServices;
use crate::infra::store::Store;

/// How often the active worker says it is alive (and checks its lock).
pub const HEARTBEAT: Duration = Duration::from_secs(60);

/// A job `wasmbot worker --once JOB` can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Job {
    /// Delete audit entries older than AUDIT_RETENTION_DAYS.
    AuditCleanup,
    /// Delete handled Telegram updates older than a day (dead ones after
    /// AUDIT_RETENTION_DAYS) and jobs set aside that were added before then.
    InboxCleanup,
}

/// How long a handled update stays in the inbox, in hours.
pub const INBOX_DONE_RETENTION_HOURS: i64 = 24;

/// How often the active worker cleans the inbox.
const INBOX_CLEANUP_EVERY: Duration = Duration::from_secs(60 * 60);

/// Runs one job now.
pub async fn run_job(job: Job, store: &Store, config: &Config) -> anyhow::Result<u64> {
    match job {
        Job::AuditCleanup => {
            let cutoff =
                Utc::now() - chrono::Duration::days(i64::from(config.audit_retention_days));
            let deleted = store.cleanup_audit(cutoff).await?;
            tracing::info!(deleted, retention_days = config.audit_retention_days, %cutoff, "audit retention cleanup done");
            Ok(deleted)
        }
        Job::InboxCleanup => {
            let now = Utc::now();
            let done_before = now - chrono::Duration::hours(INBOX_DONE_RETENTION_HOURS);
            let dead_before = now - chrono::Duration::days(i64::from(config.audit_retention_days));
            let deleted = store.inbox_cleanup(done_before, dead_before).await?;
            let expired = store
                .jobs_expire_dead(dead_before.timestamp_millis())
                .await?;
            tracing::info!(deleted, expired_jobs = expired, "inbox cleanup done");
            Ok(deleted + expired)
        }
    }
}

/// Stands by until this worker holds the lock, then runs the jobs until
/// `stop` turns true.
pub async fn run(
    config: &Config,
    services: &HostServices,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let Some(store) = services.store.clone() else {
        anyhow::bail!("the worker needs the database");
    };
    let mut said_standby = false;
    loop {
        let lock = match LeaderLock::try_acquire(&store, Leadership::Worker).await {
            Ok(lock) => lock,
            Err(error) => {
                tracing::warn!(error = %format!("{error:#}"), "cannot take the worker lock; retrying");
                None
            }
        };
        let Some(lock) = lock else {
            if !said_standby {
                tracing::info!("another worker is active; standing by");
                said_standby = true;
            }
            tokio::select! {
                _ = tokio::time::sleep(config.worker_standby) => continue,
                _ = stop.wait_for(|s| *s) => return Ok(()),
            }
        };
        said_standby = false;
        tracing::info!("this worker is active: running the scheduled jobs");
        if active(config, services, &store, lock, &mut stop).await {
            return Ok(());
        }
        tracing::warn!("the worker lock was lost; standing by");
    }
}

/// Runs the jobs while the lock holds. True when stopped, false when the lock was lost.
async fn active(
    config: &Config,
    services: &HostServices,
    store: &Store,
    mut lock: LeaderLock,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    let mut health = tokio::time::interval(config.health.interval);
    let mut inbox = tokio::time::interval(INBOX_CLEANUP_EVERY);
    loop {
        let until_cleanup = (next_run(Utc::now(), config.audit_cleanup_at) - Utc::now())
            .to_std()
            .unwrap_or_default();
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return true,
            _ = heartbeat.tick() => {
                if !lock.still_held().await {
                    return false;
                }
                tracing::info!(next_cleanup_in_s = until_cleanup.as_secs(), "worker heartbeat");
            }
            _ = inbox.tick() => {
                if let Err(error) = run_job(Job::InboxCleanup, store, config).await {
                    tracing::error!(error = %format!("{error:#}"), "inbox cleanup failed; it runs again in an hour");
                }
            }
            _ = health.tick() => {
                if let Some(monitor) = &services.health {
                    monitor.check_now().await;
                }
            }
            _ = tokio::time::sleep(until_cleanup) => {
                if let Err(error) = run_job(Job::AuditCleanup, store, config).await {
                    tracing::error!(error = %format!("{error:#}"), "audit retention cleanup failed; it runs again tomorrow");
                }
                // Past the minute, so the same slot is not taken twice.
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// The database holds every delete to its own copy of the retention
/// (`audit_retention`); the worker sets it from `AUDIT_RETENTION_DAYS`. On
/// PostgreSQL only the owner may change it (docs/operations.md): under a
/// role without UPDATE on the table the database keeps its value, and a
/// cleanup shorter than that is refused.
pub async fn sync_audit_retention(store: &Store, days: u32) {
    match store.set_audit_retention_days(days).await {
        Ok(None) => {}
        Ok(Some(previous)) => {
            tracing::info!(
                previous,
                days,
                "audit retention in the database set from AUDIT_RETENTION_DAYS"
            )
        }
        Err(error) => tracing::warn!(
            %error,
            days,
            "cannot set the audit retention in the database; it keeps its own value, and a cleanup past it is refused"
        ),
    }
}

/// The next time `at` (UTC) comes after `now`.
pub fn next_run(now: DateTime<Utc>, at: NaiveTime) -> DateTime<Utc> {
    let today = now.date_naive().and_time(at).and_utc();
    if today > now {
        today
    } else {
        today + chrono::Duration::days(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_run_is_today_or_tomorrow() {
        let at = NaiveTime::from_hms_opt(3, 0, 0).unwrap();
        let before: DateTime<Utc> = "2026-11-25T02:59:00Z".parse().unwrap();
        assert_eq!(
            next_run(before, at).to_rfc3339(),
            "2026-11-25T03:00:00+00:00"
        );
        let after: DateTime<Utc> = "2026-11-25T03:00:00Z".parse().unwrap();
        assert_eq!(
            next_run(after, at).to_rfc3339(),
            "2026-11-26T03:00:00+00:00"
        );
    }
}
