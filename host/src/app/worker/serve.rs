//! `wasmbot worker`: the scheduled jobs, until SIGINT/SIGTERM; or one job with `--once`.

use super::jobs::{INBOX_DONE_RETENTION_HOURS, Job, run, run_job, sync_audit_retention};
use crate::app::config::Config;
use crate::app::ops::{OpsServer, OpsState};
use crate::app::root::{open_store, shutdown_signal, worker_services};

/// The worker process: `once`, one job now (its result on stdout); otherwise
/// the jobs and the ops endpoints until SIGINT/SIGTERM.
pub async fn serve(config: &Config, once: Option<Job>, migrate: bool) -> anyhow::Result<()> {
    let store = open_store(config, migrate).await?;
    sync_audit_retention(&store, config.audit_retention_days).await;
    if let Some(job) = once {
        let deleted = run_job(job, &store, config).await;
        store.close().await;
        let deleted = deleted?;
        match job {
            Job::AuditCleanup => println!(
                "audit-cleanup: deleted {deleted} entries older than {} days",
                config.audit_retention_days
            ),
            Job::InboxCleanup => println!(
                "inbox-cleanup: deleted {deleted} handled updates (done for over {} hours, dead for over {} days)",
                INBOX_DONE_RETENTION_HOURS, config.audit_retention_days
            ),
        }
        return Ok(());
    }

    let services = worker_services(config, &store)?;
    let ops = OpsServer::start(
        config.http_addr_or_default(),
        OpsState {
            services: services.clone(),
            registry: None,
        },
    );
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let jobs = run(config, &services, stopping);
    tokio::pin!(jobs);
    let result = tokio::select! {
        result = &mut jobs => result,
        _ = shutdown_signal() => {
            let _ = stop.send(true);
            jobs.await
        }
    };
    ops.stop().await;
    store.close().await;
    result?;
    tracing::info!("stopped");
    Ok(())
}
