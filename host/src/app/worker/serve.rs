//! `wasmbot worker`: the scheduled jobs, until SIGINT/SIGTERM; or one job with `--once`.

use super::jobs::{INBOX_DONE_RETENTION_HOURS, Job, run, run_job, sync_audit_retention};
use crate::app::config::Config;
use crate::app::ops::{OpsServer, OpsState};
use crate::app::root::{Host, open_store, shutdown_signal, worker_services};
use crate::app::serving::Audience;
use crate::chat::jobs::RunnerRole;
use crate::chat::telegram;

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
    // With the bot's token the worker also runs the plugins' jobs (the bot
    // processes leave them to it); without it they run in the bot.
    let (stop_jobs, jobs_stopping) = tokio::sync::watch::channel(false);
    let plugin_jobs = match telegram::job_output(&config.telegram, &store)? {
        Some(output) if config.check_plugins_dir().is_ok() => {
            let host = Host::start(config, false).await?;
            if let Some(sink) = telegram::admin_alert_sink(&config.telegram)? {
                host.services.alerter.attach(sink);
            }
            let dispatcher = host.dispatcher(
                config,
                Audience {
                    channel: "telegram",
                    bot_username: None,
                    access: None,
                },
            );
            let runner =
                host.spawn_plugin_jobs(RunnerRole::Worker, dispatcher, output, jobs_stopping);
            // Rebuilt plugins reach the worker's jobs as they reach the bot.
            let watcher = host.watch_plugins(|_| {})?;
            Some((runner, host, watcher))
        }
        _ => {
            tracing::info!(
                "the plugins' jobs run in the bot (this worker has no TELEGRAM_BOT_TOKEN or PLUGINS_DIR)"
            );
            None
        }
    };
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
    let _ = stop_jobs.send(true);
    if let Some((jobs, host, _watcher)) = plugin_jobs {
        if let Some(jobs) = jobs {
            let _ = jobs.await;
        }
        host.shutdown().await;
    }
    ops.stop().await;
    store.close().await;
    result?;
    tracing::info!("stopped");
    Ok(())
}
