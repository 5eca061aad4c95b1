//! Time as the host keeps it for plugins: cron schedules (`cron`), and which
//! process is the one running scheduled work (`leader`).

mod cron;
mod leader;

pub use cron::{CronSpec, now_ms};
pub use leader::{LeaderLock, Leadership};

/// Rung when a job is added or a webhook delivery kept in this process, so
/// the runner looks again at once instead of at its next poll.
pub type JobsAdded = std::sync::Arc<tokio::sync::Notify>;
