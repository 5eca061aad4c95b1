//! Serving HTTP (axum) the same way everywhere: the ops endpoints and the
//! Telegram webhook are served under one request deadline and one
//! concurrency limit per listener.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use axum::http::StatusCode;
use tokio::net::TcpListener;

/// Where `run` and `worker` serve when `HTTP_ADDR` is unset (every serving
/// process binds it, so its port also tells replicas on one host apart).
pub const DEFAULT_HTTP_PORT: u16 = 8080;

/// A request that takes longer than this (a slow client included) is answered 408.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Requests handled at once per listener; more wait for a turn. Telegram
/// opens at most 40 webhook connections; the ops endpoints need a few; the
/// hooks take at most their own limit and refuse past it, never waiting.
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
    // The peer address is what the hooks limit unauthenticated posts by.
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(stop)
    .await
    .context("serving HTTP")
}
