//! `wasmbot worker`: the scheduled jobs, until SIGINT/SIGTERM; or one job with `--once`.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;

use crate::alert::Alerter;
use crate::app::{open_store, shutdown_signal};
use crate::capabilities::cache::CacheStore;
use crate::capabilities::llm::LlmClient;
use crate::config::Config;
use crate::health::{HealthChecker, HealthMonitor};
use crate::http::{OpsState, ops_router};
use crate::services::HostServices;
use crate::worker::{self, Job};

pub async fn run(config: &Config, once: Option<Job>, migrate: bool) -> anyhow::Result<ExitCode> {
    let store = open_store(config, migrate).await?;
    sync_audit_retention(&store, config.audit_retention_days).await;
    if let Some(job) = once {
        let deleted = worker::run_job(job, &store, config).await;
        store.close().await;
        let deleted = deleted?;
        match job {
            Job::AuditCleanup => println!(
                "audit-cleanup: deleted {deleted} entries older than {} days",
                config.audit_retention_days
            ),
            Job::InboxCleanup => println!(
                "inbox-cleanup: deleted {deleted} handled updates (done for over {} hours, dead for over {} days)",
                worker::INBOX_DONE_RETENTION_HOURS,
                config.audit_retention_days
            ),
        }
        return Ok(ExitCode::SUCCESS);
    }

    let alerter = Alerter::log_only();
    let cache = CacheStore::from_settings(&config.cache).context("REDIS_URL")?;
    if cache.is_shared() {
        // The bot's replicas alert about the same services: one alert between them all.
        alerter.share_limits(cache.clone());
    }
    if let Some(sink) = crate::chat::telegram::admin_alert_sink(config)? {
        alerter.attach(sink);
    }
    let llm = LlmClient::from_settings(&config.llm)?.map(Arc::new);
    let checker = HealthChecker::new(config, Some(store.clone()), llm.clone(), None);
    let services = HostServices {
        store: Some(store.clone()),
        vault: None,
        audit: None,
        llm,
        cache,
        vectors: None,
        embeddings: None,
        health: Some(Arc::new(HealthMonitor::new(checker, alerter.clone()))),
        alerter,
    };
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let http = {
        let mut stopping = stopping.clone();
        let router = ops_router(OpsState {
            services: services.clone(),
            registry: None,
        });
        tokio::spawn(crate::http::serve(
            "HTTP_ADDR",
            config.http_addr_or_default(),
            router,
            async move {
                let _ = stopping.wait_for(|s| *s).await;
            },
        ))
    };
    let jobs = worker::run(config, &services, stopping);
    tokio::pin!(jobs);
    let result = tokio::select! {
        result = &mut jobs => result,
        _ = shutdown_signal() => {
            let _ = stop.send(true);
            jobs.await
        }
    };
    let _ = stop.send(true);
    if let Ok(Err(error)) = http.await {
        tracing::error!(error = %format!("{error:#}"), "the HTTP server failed");
    }
    store.close().await;
    result?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// The database holds every delete to its own copy of the retention
/// (`audit_retention`); the worker sets it from `AUDIT_RETENTION_DAYS`. On
/// PostgreSQL only the owner may change it (docs/operations.md): under a
/// role without UPDATE on the table the database keeps its value, and a
/// cleanup shorter than that is refused.
async fn sync_audit_retention(store: &crate::store::Store, days: u32) {
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
