//! The operator's HTTP endpoints, served by `run` and `worker` on
//! `HTTP_ADDR`, and by `chat` when `HTTP_ADDR` is set: `/healthz` (the
//! process answers), `/readyz` (database reachable, plugins loaded, the
//! audit trail neither stalled nor overflowing), `/metrics` (Prometheus
//! text) and `/plugins` (each plugin's pre-warmed instances, for
//! `wasmbot plugins list`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::infra::metrics::metrics;
use crate::infra::services::HostServices;
use crate::runtime::PluginRegistry;

/// How long `/readyz` waits for the database.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct OpsState {
    pub services: Arc<HostServices>,
    /// None in the worker, which loads no plugins.
    pub registry: Option<Arc<PluginRegistry>>,
}

pub fn ops_router(state: OpsState) -> axum::Router {
    axum::Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .route("/plugins", get(plugins))
        .with_state(state)
}

/// The ops endpoints served on `addr` (the `HTTP_ADDR` setting) in the
/// background until [`OpsServer::stop`].
pub struct OpsServer {
    stop: watch::Sender<bool>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl OpsServer {
    pub fn start(addr: SocketAddr, state: OpsState) -> Self {
        Self::start_with("HTTP_ADDR", addr, ops_router(state))
    }

    /// Serves `router` (the ops endpoints and what was merged into them,
    /// such as the webhooks, or the webhooks alone) on `addr`, the setting
    /// `variable`.
    pub fn start_with(variable: &'static str, addr: SocketAddr, router: axum::Router) -> Self {
        let (stop, mut stopping) = watch::channel(false);
        let task = tokio::spawn(crate::infra::http::serve(
            variable,
            addr,
            router,
            async move {
                let _ = stopping.wait_for(|stopped| *stopped).await;
            },
        ));
        Self { stop, task }
    }

    /// Stops serving and reports how serving ended.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        match self.task.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::error!(error = %format!("{error:#}"), "the HTTP server failed")
            }
            Err(error) => tracing::error!(%error, "the HTTP server task failed"),
        }
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// One line per plugin: `name<TAB>ready instances<TAB>calls that found one ready`.
async fn plugins(State(state): State<OpsState>) -> String {
    let Some(registry) = &state.registry else {
        return String::new();
    };
    registry
        .snapshot()
        .plugins()
        .iter()
        .map(|plugin| {
            format!(
                "{}\t{}\t{}\n",
                plugin.name(),
                plugin.ready_instances(),
                plugin.warm_hits()
            )
        })
        .collect()
}

async fn readyz(State(state): State<OpsState>) -> (StatusCode, String) {
    let mut problems = Vec::new();
    match &state.services.store {
        Some(store) => match tokio::time::timeout(READY_TIMEOUT, store.ping()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => problems.push(format!("database: {error}")),
            Err(_) => problems.push("database: no answer within 2 s".to_string()),
        },
        None => problems.push("database: not opened".to_string()),
    }
    if let Some(registry) = &state.registry
        && registry.snapshot().plugins().is_empty()
    {
        problems.push("plugins: none loaded".to_string());
    }
    // A stalled or overflowing trail loses or delays what must be kept.
    if let Some(audit) = &state.services.audit {
        let health = audit.health();
        if !health.is_ok() {
            problems.push(format!("audit: {health}"));
        }
    }
    if problems.is_empty() {
        (StatusCode::OK, "ready\n".into())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", problems.join("; ")),
        )
    }
}

async fn render_metrics(State(state): State<OpsState>) -> impl IntoResponse {
    let m = metrics();
    if let Some(audit) = &state.services.audit {
        m.audit_queue_depth.set(audit.queued() as i64);
        m.audit_overflow.set(audit.overflow() as i64);
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        m.render(),
    )
}
