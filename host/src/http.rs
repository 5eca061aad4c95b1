//! The operator's HTTP endpoints (axum), served by `run` and `worker` on
//! `HTTP_ADDR`, and by `chat` when `HTTP_ADDR` is set: `/healthz` (the
//! process answers), `/readyz` (database reachable, plugins loaded, the
//! audit trail neither stalled nor overflowing) and `/metrics` (Prometheus
//! text).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;

use crate::metrics::metrics;
use crate::runtime::PluginRegistry;
use crate::services::HostServices;

/// How long `/readyz` waits for the database.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct OpsState {
    pub services: HostServices,
    /// None in the worker, which loads no plugins.
    pub registry: Option<Arc<PluginRegistry>>,
}

pub fn ops_router(state: OpsState) -> axum::Router {
    axum::Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .with_state(state)
}

/// A request that takes longer than this (a slow client included) is answered 408.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Requests handled at once per listener; more wait for a turn. Telegram
/// opens at most 40 webhook connections; the ops endpoints need a few.
const MAX_CONCURRENT_REQUESTS: usize = 64;

/// Serves `router` on `addr` (named by the setting `variable`) until `stop`
/// resolves, every request under a deadline and a concurrency limit.
pub async fn serve(
    variable: &str,
    addr: SocketAddr,
    router: axum::Router,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_on(bind(variable, addr).await?, router, stop).await
}

/// Listens on `addr`, named by its setting in the error. Binding before
/// serving lets a caller tell others (Telegram) about it only once it listens.
pub async fn bind(variable: &str, addr: SocketAddr) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {variable} {addr}"))?;
    tracing::info!(addr = %listener.local_addr().unwrap_or(addr), variable, "serving HTTP");
    Ok(listener)
}

/// [`serve`] on a listener already bound.
pub async fn serve_on(
    listener: TcpListener,
    router: axum::Router,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let router = router
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            MAX_CONCURRENT_REQUESTS,
        ));
    axum::serve(listener, router)
        .with_graceful_shutdown(stop)
        .await
        .context("serving HTTP")
}

async fn healthz() -> &'static str {
    "ok\n"
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
