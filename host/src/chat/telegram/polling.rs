//! Long polling: `getUpdates` in a loop, the offset advanced only past
//! updates that were accepted, 429s waited out and network errors retried
//! with exponential backoff.

use std::sync::Arc;
use std::time::Duration;

use teloxide::RequestError;
use teloxide::payloads::GetUpdatesSetters as _;
use teloxide::prelude::Requester as _;
use teloxide::types::AllowedUpdate;
use tokio::sync::watch;

use super::{TelegramAdapter, stopped};

/// How long one `getUpdates` waits on the server for news.
pub const POLL_TIMEOUT_SECS: u32 = 25;
const MIN_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

pub async fn run(adapter: Arc<TelegramAdapter>, mut stop: watch::Receiver<bool>) {
    // Going back to polling: Telegram refuses getUpdates while a webhook is set.
    if let Err(error) = adapter.bot.delete_webhook().await {
        tracing::warn!(%error, "could not delete a previous webhook");
    }
    tracing::info!("polling Telegram for updates");
    let mut offset = 0;
    let mut backoff = MIN_BACKOFF;
    'polling: loop {
        let request = adapter
            .bot
            .get_updates()
            .offset(offset)
            .timeout(POLL_TIMEOUT_SECS)
            .allowed_updates([AllowedUpdate::Message]);
        let result = tokio::select! {
            result = request => result,
            _ = stopped(&mut stop) => break,
        };
        let wait = match result {
            Ok(updates) => {
                backoff = MIN_BACKOFF;
                for update in updates {
                    let next = update.id.as_offset();
                    tokio::select! {
                        _ = adapter.accept(update) => offset = next,
                        _ = stopped(&mut stop) => break 'polling,
                    }
                }
                continue;
            }
            Err(RequestError::RetryAfter(wait)) => {
                tracing::warn!(
                    retry_after_s = wait.seconds(),
                    "Telegram asked us to slow down polling"
                );
                wait.duration()
            }
            Err(error) => {
                tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "getUpdates failed; retrying");
                let wait = backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                wait
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stopped(&mut stop) => break,
        }
    }
    // Confirm what was handled, so the next start does not receive it again.
    if offset != 0 {
        let confirm = adapter.bot.get_updates().offset(offset).limit(1).timeout(0);
        if let Err(error) = confirm.await {
            tracing::warn!(%error, "could not confirm the last handled update");
        }
    }
}
