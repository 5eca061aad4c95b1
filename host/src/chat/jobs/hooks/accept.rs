//! One delivery, its body read: is it signed with its hook's secret, is it
//! new, is its hook within its rate; then it is kept as a job due now.
//! Only a delivery that proved itself (a valid signature, not a replay)
//! counts against its hook's rate, so unsigned floods cannot use it up.

use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest as _, Sha256};

use super::delivery::{SIGNATURE_HEADER, WebhookDelivery, hook_secret_name};
use crate::chat::Dispatcher;
use crate::infra::cache::{CacheStore, host_key};
use crate::infra::schedule::now_ms;
use crate::infra::store::{NewJob, Store, StoredWebhook};
use crate::runtime::World;

/// GitHub's unique id of a delivery, the same when it is redelivered.
pub const DELIVERY_HEADER: &str = "x-github-delivery";

/// Deliveries one hook accepts per clock minute (429 past it).
const HOOK_RATE_PER_MINUTE: u32 = 60;

/// The longest delivery id remembered (GitHub's are 36-character GUIDs).
const MAX_DELIVERY_ID: usize = 128;

/// Headers handed to the plugin (besides `x-*` ones), and how many at most.
const PASSED_HEADERS: &[&str] = &["content-type", "user-agent"];
const MAX_HEADERS: usize = 32;
const MAX_HEADER_BYTES: usize = 1024;

/// Why a delivery was not kept, as the sender is told.
#[derive(Debug, Clone, Copy)]
pub struct Refusal {
    pub status: StatusCode,
    pub reason: &'static str,
    /// The post proved nothing (or replayed what did): charged to its
    /// source address, not its hook.
    pub unauthenticated: bool,
}

impl Refusal {
    /// Refused before the post proved anything.
    pub const fn unauthenticated(status: StatusCode, reason: &'static str) -> Self {
        Self {
            status,
            reason,
            unauthenticated: true,
        }
    }

    /// Not charged to the source: the post proved itself, or the fault is ours.
    const fn uncharged(status: StatusCode, reason: &'static str) -> Self {
        Self {
            status,
            reason,
            unauthenticated: false,
        }
    }
}

const NOT_FOUND: Refusal = Refusal::unauthenticated(StatusCode::NOT_FOUND, "no such hook");
const UNAVAILABLE: Refusal = Refusal::uncharged(StatusCode::SERVICE_UNAVAILABLE, "try again later");
const REPLAYED: Refusal = Refusal::unauthenticated(
    StatusCode::CONFLICT,
    "this delivery was already received (same X-GitHub-Delivery or same body within a day)",
);

/// Keeps the delivery `body` to hook `plugin/name`; its job id.
pub async fn accept(
    dispatcher: &Dispatcher,
    plugin: &str,
    name: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<i64, Refusal> {
    let services = dispatcher.services();
    let (Some(store), Some(vault)) = (&services.store, &services.vault) else {
        return Err(NOT_FOUND);
    };
    let hook = store.webhook_get(plugin, name).await.map_err(|error| {
        tracing::warn!(%error, "webhook: cannot read the hooks");
        UNAVAILABLE
    })?;
    let Some(hook) = hook else {
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
    verify_signature(&secret, headers, body)?;
    let proactive = dispatcher
        .registry()
        .snapshot()
        .plugin(plugin)
        .is_some_and(|loaded| loaded.world() == World::Proactive);
    if !proactive {
        return Err(Refusal::uncharged(
            StatusCode::NOT_FOUND,
            "the hook's plugin is not loaded, or takes no events",
        ));
    }
    let keys = delivery_keys(headers, body)?;
    // A replay is refused before it is counted: replaying a captured
    // delivery must not use up the hook's rate either.
    let seen = store
        .webhook_delivery_seen(plugin, name, &keys)
        .await
        .map_err(|error| {
            tracing::warn!(%error, "webhook: cannot read the deliveries received");
            UNAVAILABLE
        })?;
    if seen {
        return Err(REPLAYED);
    }
    if !within_rate(&services.cache, plugin, name).await {
        return Err(Refusal::uncharged(
            StatusCode::TOO_MANY_REQUESTS,
            "too many deliveries; slow down",
        ));
    }
    let id = keep(store, dispatcher, &hook, &keys, headers, body).await?;
    services.jobs_added.notify_one();
    Ok(id)
}

/// `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`.
fn verify_signature(secret: &[u8], headers: &HeaderMap, body: &[u8]) -> Result<(), Refusal> {
    let signature = headers
        .get(SIGNATURE_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("sha256="))
        .and_then(|hex_mac| hex::decode(hex_mac.trim()).ok())
        .ok_or(Refusal::unauthenticated(
            StatusCode::UNAUTHORIZED,
            "missing or malformed X-Hub-Signature-256",
        ))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| UNAVAILABLE)?;
    mac.update(body);
    mac.verify_slice(&signature).map_err(|_| {
        Refusal::unauthenticated(StatusCode::UNAUTHORIZED, "the signature does not match")
    })
}

/// What identifies a delivery: its `X-GitHub-Delivery` id when sent, and
/// always its body's digest, since the signature covers only the body and
/// a replay may come with any id.
fn delivery_keys(headers: &HeaderMap, body: &[u8]) -> Result<Vec<String>, Refusal> {
    let mut keys = vec![format!("sha256:{}", hex::encode(Sha256::digest(body)))];
    if let Some(id) = headers.get(DELIVERY_HEADER) {
        let id = id
            .to_str()
            .ok()
            .map(str::trim)
            .filter(|id| {
                (1..=MAX_DELIVERY_ID).contains(&id.len())
                    && id.bytes().all(|b| b.is_ascii_graphic())
            })
            .ok_or(Refusal::uncharged(
                StatusCode::BAD_REQUEST,
                "X-GitHub-Delivery must be 1-128 visible ASCII characters",
            ))?;
        keys.push(format!("id:{id}"));
    }
    Ok(keys)
}

async fn keep(
    store: &Store,
    dispatcher: &Dispatcher,
    hook: &StoredWebhook,
    keys: &[String],
    headers: &HeaderMap,
    body: &[u8],
) -> Result<i64, Refusal> {
    let delivery = WebhookDelivery {
        name: hook.name.clone(),
        headers: passed_headers(headers),
        body: base64::engine::general_purpose::STANDARD.encode(body),
    };
    let payload = serde_json::to_string(&delivery).map_err(|_| UNAVAILABLE)?;
    let job = NewJob {
        plugin: &hook.plugin,
        channel: dispatcher.channel(),
        chat_id: hook.chat_id,
        user_id: None,
        kind: "webhook",
        spec: None,
        payload: &payload,
        due_ms: now_ms(),
    };
    let id = store
        .webhook_delivery_keep(&hook.name, keys, &job)
        .await
        .map_err(|error| {
            tracing::warn!(%error, "webhook: cannot keep the delivery");
            UNAVAILABLE
        })?
        // Another replica kept the same delivery a moment ago.
        .map_err(|_| REPLAYED)?;
    tracing::info!(
        plugin = hook.plugin,
        hook = hook.name,
        delivery = id,
        bytes = body.len(),
        "webhook delivery kept"
    );
    Ok(id)
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
