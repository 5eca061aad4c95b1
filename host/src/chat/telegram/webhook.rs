//! Webhook mode: Telegram POSTs updates to `WEBHOOK_URL`, which reaches this
//! host's HTTP server on `HTTP_ADDR`. A request without the secret token we
//! registered is refused before its body is read; a body over [`MAX_BODY`]
//! is refused; an update is answered 200 only once it is kept in the inbox,
//! so a crash after that loses nothing and a database error makes Telegram
//! deliver it again.

use std::sync::Arc;

use anyhow::Context as _;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::routing::post;
use teloxide::payloads::SetWebhookSetters as _;
use teloxide::prelude::Requester as _;
use teloxide::types::{AllowedUpdate, Update};
use url::Url;

use super::adapter::TelegramAdapter;

pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

/// Telegram updates are a few KiB; nothing legitimate comes near this.
pub const MAX_BODY: usize = 1024 * 1024;

#[derive(Clone)]
struct WebhookState {
    adapter: Arc<TelegramAdapter>,
    secret: Arc<str>,
}

/// Registers `url` with Telegram, with the secret token it must send back.
pub async fn register(bot: &teloxide::Bot, url: &Url, secret: &str) -> anyhow::Result<()> {
    bot.set_webhook(url.clone())
        .secret_token(secret.to_string())
        .allowed_updates([AllowedUpdate::Message, AllowedUpdate::CallbackQuery])
        .await
        .context("registering WEBHOOK_URL with Telegram (setWebhook)")?;
    tracing::info!(path = url.path(), "receiving Telegram updates by webhook");
    Ok(())
}

/// The route Telegram posts to: `WEBHOOK_URL`'s path.
pub fn router(adapter: Arc<TelegramAdapter>, path: &str, secret: String) -> axum::Router {
    axum::Router::new()
        .route(path, post(receive))
        .with_state(WebhookState {
            adapter,
            secret: Arc::from(secret),
        })
}

async fn receive(State(state): State<WebhookState>, request: Request<Body>) -> StatusCode {
    let signed = request
        .headers()
        .get(SECRET_HEADER)
        .is_some_and(|token| same_secret(token.as_bytes(), state.secret.as_bytes()));
    if !signed {
        tracing::warn!("webhook request without the right secret token refused");
        return StatusCode::UNAUTHORIZED;
    }
    let body = match axum::body::to_bytes(request.into_body(), MAX_BODY).await {
        Ok(body) => body,
        Err(error) => {
            tracing::warn!(%error, limit = MAX_BODY, "webhook body refused: too large or cut off");
            return StatusCode::PAYLOAD_TOO_LARGE;
        }
    };
    let update: Update = match serde_json::from_slice(&body) {
        Ok(update) => update,
        Err(error) => {
            tracing::warn!(%error, "webhook body is not a Telegram update");
            return StatusCode::BAD_REQUEST;
        }
    };
    match state
        .adapter
        .inbox
        .keep(std::slice::from_ref(&update))
        .await
    {
        Ok(()) => StatusCode::OK,
        Err(error) => {
            // Not 200: Telegram delivers the update again later.
            tracing::error!(%error, update_id = update.id.0, "could not keep a webhook update in the inbox");
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
}

/// Compares without stopping at the first difference, so timing says nothing.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_compare_by_value() {
        assert!(super::same_secret(b"abc", b"abc"));
        assert!(!super::same_secret(b"abd", b"abc"));
        assert!(!super::same_secret(b"ab", b"abc"));
    }
}
