//! Inbound webhooks: `POST /hooks/PLUGIN/NAME` on `HTTP_ADDR`, signed the way
//! GitHub signs (`X-Hub-Signature-256: sha256=HMAC-SHA256(secret, body)`)
//! with the secret `wasmbot hooks add` created (a vault credential named
//! `hook:PLUGIN/NAME`, a name no manifest can list). A delivery is kept as a
//! job due now before the sender hears 202, then fired like any job to the
//! plugin's `on-event`. An unknown hook or plugin is 404, a missing or wrong
//! signature 401, both without reaching the plugin; bodies are capped and
//! each hook is rate limited.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::chat::Dispatcher;
use crate::infra::cache::{CacheStore, host_key};
use crate::infra::schedule::now_ms;
use crate::infra::store::NewJob;
use crate::runtime::World;

/// The largest body a hook accepts (413 past it).
pub const HOOK_BODY_LIMIT: usize = 256 * 1024;

/// GitHub's header: `sha256=` and the hex HMAC of the body.
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// Deliveries one hook accepts per clock minute (429 past it).
const HOOK_RATE_PER_MINUTE: u32 = 60;

/// Headers handed to the plugin (besides `x-*` ones), and how many at most.
const PASSED_HEADERS: &[&str] = &["content-type", "user-agent"];
const MAX_HEADERS: usize = 32;
const MAX_HEADER_BYTES: usize = 1024;

/// The vault credential holding a hook's signing secret.
pub fn hook_secret_name(plugin: &str, name: &str) -> String {
    format!("hook:{plugin}/{name}")
}

/// A kept delivery (`scheduled_jobs.payload` of a `webhook` row).
#[derive(Debug, Serialize, Deserialize)]
pub struct WebhookDelivery {
    pub name: String,
    pub headers: Vec<(String, String)>,
    /// The body, base64.
    pub body: String,
}

impl WebhookDelivery {
    pub fn body(&self) -> Result<Vec<u8>, String> {
        base64::engine::general_purpose::STANDARD
            .decode(&self.body)
            .map_err(|error| format!("the kept body is not base64: {error}"))
    }
}

#[derive(Clone)]
struct Hooks {
    dispatcher: Arc<Dispatcher>,
}

/// The hook endpoint, served beside the ops endpoints.
pub fn hooks_router(dispatcher: Arc<Dispatcher>) -> axum::Router {
    axum::Router::new()
        .route("/hooks/{plugin}/{name}", post(receive))
        .layer(DefaultBodyLimit::max(HOOK_BODY_LIMIT))
        .with_state(Hooks { dispatcher })
}

async fn receive(
    State(hooks): State<Hooks>,
    Path((plugin, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    match accept(&hooks, &plugin, &name, &headers, &body).await {
        Ok(id) => (StatusCode::ACCEPTED, format!("accepted: delivery {id}\n")),
        Err((status, text)) => {
            tracing::warn!(plugin = %crate::infra::store::clean_text(&plugin), hook = %crate::infra::store::clean_text(&name), status = status.as_u16(), reason = text, "webhook refused");
            (status, format!("{text}\n"))
        }
    }
}

type Refusal = (StatusCode, &'static str);

async fn accept(
    hooks: &Hooks,
    plugin: &str,
    name: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<i64, Refusal> {
    const NOT_FOUND: Refusal = (StatusCode::NOT_FOUND, "no such hook");
    const UNAVAILABLE: Refusal = (StatusCode::SERVICE_UNAVAILABLE, "try again later");
    let services = hooks.dispatcher.services();
    let (Some(store), Some(vault)) = (&services.store, &services.vault) else {
        return Err(NOT_FOUND);
    };
    if !is_name(plugin) || !is_name(name) {
        return Err(NOT_FOUND);
    }
    if !within_rate(&services.cache, plugin, name).await {
        return Err((
            StatusCode::TOO_MANY_REQUESTS,
            "too many deliveries; slow down",
        ));
    }
    let Some(hook) = store.webhook_get(plugin, name).await.map_err(|error| {
        tracing::warn!(%error, "webhook: cannot read the hooks");
        UNAVAILABLE
    })?
    else {
        return Err(NOT_FOUND);
    };
    let secret = match store.get_credential(&hook_secret_name(plugin, name)).await {
        Ok(Some(stored)) => vault.decrypt(&stored).map_err(|_| {
            tracing::error!(
                plugin,
                hook = name,
                "webhook: its secret does not decrypt with ENCRYPTION_KEY"
            );
            UNAVAILABLE
        })?,
        Ok(None) => return Err(NOT_FOUND),
        Err(error) => {
            tracing::warn!(%error, "webhook: cannot read its secret");
            return Err(UNAVAILABLE);
        }
    };
    let signature = headers
        .get(SIGNATURE_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("sha256="))
        .and_then(|hex_mac| hex::decode(hex_mac.trim()).ok())
        .ok_or((
            StatusCode::UNAUTHORIZED,
            "missing or malformed X-Hub-Signature-256",
        ))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret).map_err(|_| UNAVAILABLE)?;
    mac.update(body);
    mac.verify_slice(&signature)
        .map_err(|_| (StatusCode::UNAUTHORIZED, "the signature does not match"))?;
    let proactive = hooks
        .dispatcher
        .registry()
        .snapshot()
        .plugin(plugin)
        .is_some_and(|loaded| loaded.world() == World::Proactive);
    if !proactive {
        return Err((
            StatusCode::NOT_FOUND,
            "the hook's plugin is not loaded, or takes no events",
        ));
    }
    let delivery = WebhookDelivery {
        name: name.to_string(),
        headers: passed_headers(headers),
        body: base64::engine::general_purpose::STANDARD.encode(body),
    };
    let payload = serde_json::to_string(&delivery).map_err(|_| UNAVAILABLE)?;
    let job = NewJob {
        plugin,
        channel: hooks.dispatcher.channel(),
        chat_id: hook.chat_id,
        user_id: None,
        kind: "webhook",
        spec: None,
        payload: &payload,
        due_ms: now_ms(),
    };
    let id = store
        .jobs_add(&job, u64::MAX)
        .await
        .map_err(|error| {
            tracing::warn!(%error, "webhook: cannot keep the delivery");
            UNAVAILABLE
        })?
        .map_err(|_| UNAVAILABLE)?;
    services.jobs_added.notify_one();
    tracing::info!(
        plugin,
        hook = name,
        delivery = id,
        bytes = body.len(),
        "webhook delivery kept"
    );
    Ok(id)
}

/// What `wasmbot hooks add` accepts: anything else is no hook, and is
/// refused before it costs a lookup or a rate-limit key.
fn is_name(segment: &str) -> bool {
    (1..=64).contains(&segment.len())
        && segment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
}

/// At most [`HOOK_RATE_PER_MINUTE`] per hook per clock minute, counted in
/// the cache: shared by every replica on Redis, per process otherwise. A
/// cache that fails lets the delivery through (the signature still guards it).
async fn within_rate(cache: &CacheStore, plugin: &str, name: &str) -> bool {
    let minute = now_ms().div_euclid(60_000);
    let key = host_key("hook-rate", &format!("{plugin}/{name}/{minute}"));
    match cache.incr(&key, 1, Some(Duration::from_secs(120))).await {
        Ok(count) => count <= i64::from(HOOK_RATE_PER_MINUTE),
        Err(error) => {
            tracing::warn!(%error, "webhook: cannot count deliveries; letting this one through");
            true
        }
    }
}

/// `content-type`, `user-agent` and `x-*` headers, the signature excluded.
fn passed_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| {
            let name = name.as_str();
            (PASSED_HEADERS.contains(&name) || name.starts_with("x-"))
                && !name.starts_with("x-hub-signature")
        })
        .filter_map(|(name, value)| {
            let value = value.to_str().ok()?;
            (value.len() <= MAX_HEADER_BYTES)
                .then(|| (name.as_str().to_string(), value.to_string()))
        })
        .take(MAX_HEADERS)
        .collect()
}
