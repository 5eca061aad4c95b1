//! Inbound webhooks: `POST /hooks/PLUGIN/NAME` on `HOOKS_ADDR` (else beside
//! the ops endpoints on `HTTP_ADDR`), signed the way GitHub signs
//! (`X-Hub-Signature-256: sha256=HMAC-SHA256(secret, body)`) with the
//! secret `wasmbot hooks add` created (a vault credential named
//! `hook:PLUGIN/NAME`, a name no manifest can list). A delivery is kept as a
//! job due now before the sender hears 202, then fired like any job to the
//! plugin's `on-event`. An unknown hook or plugin is 404, a missing or wrong
//! signature 401, a replay 409, all without reaching the plugin.
//!
//! Abuse is held off in layers: an address that keeps posting what proves
//! nothing is cut off (`sources`), the hooks take a bounded number of turns
//! and are refused at once past it (so they never starve the listener they
//! share), a body must arrive whole within [`HOOK_BODY_TIMEOUT`], and only
//! signed deliveries count against a hook's rate (`accept`).

mod accept;
mod delivery;
mod sources;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use tokio::sync::Semaphore;

use crate::chat::Dispatcher;
use crate::infra::schedule::now_ms;
use crate::infra::store::clean_text;
pub use accept::DELIVERY_HEADER;
use accept::Refusal;
pub use delivery::{SIGNATURE_HEADER, WebhookDelivery, hook_secret_name};
use sources::{Source, Sources, TurnedAway};

/// The largest body a hook accepts (413 past it).
pub const HOOK_BODY_LIMIT: usize = 256 * 1024;

/// How long a body may take to arrive whole (408 past it): a sender posts
/// at once, and a slow one holds a turn of the hooks meanwhile.
pub const HOOK_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Posts to the hooks handled at once, all addresses together; past it the
/// sender is answered 503 at once rather than waiting, so the hooks never
/// hold more than this many turns of a listener they share.
pub const HOOK_CONCURRENCY: usize = 16;

#[derive(Clone)]
struct Hooks {
    dispatcher: Arc<Dispatcher>,
    sources: Arc<Sources>,
    turns: Arc<Semaphore>,
}

/// The hook endpoint, served alone on `HOOKS_ADDR` or beside the ops
/// endpoints. The source limits need the peer address: serve it with
/// `ConnectInfo<SocketAddr>` (without it every post shares one address).
pub fn hooks_router(dispatcher: Arc<Dispatcher>) -> axum::Router {
    axum::Router::new()
        .route("/hooks/{plugin}/{name}", post(receive))
        .with_state(Hooks {
            dispatcher,
            sources: Arc::default(),
            turns: Arc::new(Semaphore::new(HOOK_CONCURRENCY)),
        })
}

async fn receive(
    State(hooks): State<Hooks>,
    Path((plugin, name)): Path<(String, String)>,
    request: Request,
) -> Response {
    let source = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(Source::SHARED, |ConnectInfo(peer)| Source::of(peer.ip()));
    match handle(&hooks, source, &plugin, &name, request).await {
        Ok(id) => (StatusCode::ACCEPTED, format!("accepted: delivery {id}\n")).into_response(),
        Err(refusal) => {
            tracing::warn!(
                plugin = %clean_text(&plugin),
                hook = %clean_text(&name),
                status = refusal.status.as_u16(),
                reason = refusal.reason,
                "webhook refused"
            );
            let mut response = (refusal.status, format!("{}\n", refusal.reason)).into_response();
            if matches!(
                refusal.status,
                StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
            ) {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from_static("60"));
            }
            response
        }
    }
}

async fn handle(
    hooks: &Hooks,
    source: Source,
    plugin: &str,
    name: &str,
    request: Request,
) -> Result<i64, Refusal> {
    let turn = hooks
        .sources
        .enter(source, now_ms().div_euclid(60_000))
        .map_err(|turned_away| match turned_away {
            TurnedAway::TooManyRefusals => Refusal::unauthenticated(
                StatusCode::TOO_MANY_REQUESTS,
                "too many refused posts from this address; slow down",
            ),
            TurnedAway::TooManyInFlight => Refusal::unauthenticated(
                StatusCode::TOO_MANY_REQUESTS,
                "too many posts at once from this address",
            ),
        })?;
    let _permit = hooks.turns.try_acquire().map_err(|_| {
        Refusal::unauthenticated(
            StatusCode::SERVICE_UNAVAILABLE,
            "hooks busy; try again later",
        )
    })?;
    let result = async {
        // Anything else is no hook: refused before it costs a lookup.
        if !is_name(plugin) || !is_name(name) {
            return Err(Refusal::unauthenticated(
                StatusCode::NOT_FOUND,
                "no such hook",
            ));
        }
        let (parts, body) = request.into_parts();
        let body = read_body(&parts.headers, body).await?;
        accept::accept(&hooks.dispatcher, plugin, name, &parts.headers, &body).await
    }
    .await;
    if let Err(refusal) = &result
        && refusal.unauthenticated
    {
        turn.refused();
    }
    result
}

/// The whole body, at most [`HOOK_BODY_LIMIT`] bytes within [`HOOK_BODY_TIMEOUT`].
async fn read_body(headers: &HeaderMap, body: Body) -> Result<Vec<u8>, Refusal> {
    const TOO_BIG: Refusal =
        Refusal::unauthenticated(StatusCode::PAYLOAD_TOO_LARGE, "the body is over 256 KiB");
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > HOOK_BODY_LIMIT as u64) {
        return Err(TOO_BIG);
    }
    let collected = tokio::time::timeout(
        HOOK_BODY_TIMEOUT,
        Limited::new(body, HOOK_BODY_LIMIT).collect(),
    )
    .await
    .map_err(|_| {
        Refusal::unauthenticated(
            StatusCode::REQUEST_TIMEOUT,
            "the body did not arrive within 10 s",
        )
    })?;
    match collected {
        Ok(collected) => Ok(collected.to_bytes().to_vec()),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => Err(TOO_BIG),
        Err(_) => Err(Refusal::unauthenticated(
            StatusCode::BAD_REQUEST,
            "the body could not be read",
        )),
    }
}

/// What `wasmbot hooks add` accepts.
fn is_name(segment: &str) -> bool {
    (1..=64).contains(&segment.len())
        && segment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
}
