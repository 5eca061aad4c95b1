//! `wasmbot worker`: the scheduled jobs. The daily audit retention cleanup
//! (at `AUDIT_CLEANUP_AT`, UTC), the hourly inbox cleanup, a heartbeat line
//! and the periodic health checks. Several workers may be started; exactly one is active (see
//! `lock`), the others stand by and take over when it goes away.

mod jobs;
mod serve;

pub use jobs::{
    HEARTBEAT, INBOX_DONE_RETENTION_HOURS, Job, next_run, run, run_job, sync_audit_retention,
};
pub use serve::serve;
