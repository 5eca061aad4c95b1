//! Long polling: `getUpdates` in a loop. The offset (which tells Telegram
//! the updates before it were received) moves past updates only once they
//! are kept in the inbox; 429s are waited out, network and database errors
//! retried with exponential backoff.

use std::sync::Arc;
use std::time::Duration;

use teloxide::RequestError;
use teloxide::payloads::GetUpdatesSetters as _;
use teloxide::prelude::Requester as _;
use teloxide::types::AllowedUpdate;
use tokio::sync::watch;

use super::adapter::{TelegramAdapter, stopped};

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
    loop {
        let request = adapter
            .bot
            .get_updates()
            .offset(offset)
            .timeout(POLL_TIMEOUT_SECS)
            .allowed_updates([AllowedUpdate::Message, AllowedUpdate::CallbackQuery]);
        let result = tokio::select! {
            result = request => result,
            _ = stopped(&mut stop) => break,
        };
        let wait = match result {
            Ok(updates) => {
                let Some(last) = updates.last() else {
                    continue;
                };
                let next = last.id.as_offset();
                match adapter.inbox.keep(&updates).await {
                    Ok(()) => {
                        backoff = MIN_BACKOFF;
                        offset = next;
                        continue;
                    }
                    Err(error) => {
                        // The offset stays: Telegram hands the same updates over again.
                        tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "could not keep updates in the inbox; retrying");
                        let wait = backoff;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        wait
                    }
                }
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
    // Confirm what was kept, so the next start does not receive it again.
    if offset != 0 {
        let confirm = adapter.bot.get_updates().offset(offset).limit(1).timeout(0);
        if let Err(error) = confirm.await {
            tracing::warn!(%error, "could not confirm the last handled update");
        }
    }
}
