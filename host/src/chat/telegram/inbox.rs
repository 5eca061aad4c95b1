//! At-least-once handling. Polling and the webhook only *keep* an update
//! (a row in the `inbox` table) before Telegram is told it was received;
//! the runner (`runner.rs`) claims kept updates and marks each done only
//! after the reply was sent.

use std::time::Duration;

use teloxide::types::Update;
use tokio::sync::Notify;

use crate::chat::lanes::ChatLanes;
use crate::infra::store::{Claimant, InboxUpdate, Store, StoreError};

/// Claims that never completed before an update is set aside as dead.
pub const MAX_ATTEMPTS: i32 = 3;

/// Updates queued or running at once in this process, across all chats.
pub const MAX_IN_FLIGHT: usize = 256;

/// One bot's inbox as this process sees it.
pub struct Inbox {
    pub(super) store: Store,
    pub(super) bot_id: i64,
    /// This process's names on the leases it takes: its run owns them, its
    /// instance takes them back after a crash.
    pub(super) claimant: Claimant,
    pub(super) lease: Duration,
    /// Rung when an update is kept or finished: there may be one to claim.
    pub(super) wake: Notify,
    pub(super) lanes: ChatLanes,
}

impl Inbox {
    /// `instance`: `INSTANCE_ID`, the same across this process's restarts.
    pub fn new(store: Store, bot_id: i64, instance: &str, lease: Duration) -> Self {
        Self {
            store,
            bot_id,
            claimant: Claimant::start(instance),
            lease,
            wake: Notify::new(),
            lanes: ChatLanes::new(MAX_IN_FLIGHT as u32),
        }
    }

    /// Keeps `updates` durably (a repeat of one already kept is ignored);
    /// only after this returns Ok may Telegram be told they were received.
    /// Updates without a chat carry nothing for the plugins and are skipped.
    pub async fn keep(&self, updates: &[Update]) -> Result<(), StoreError> {
        let rows: Vec<InboxUpdate> = updates
            .iter()
            .filter_map(|update| {
                let chat = update.chat()?;
                Some(InboxUpdate {
                    update_id: i64::from(update.id.0),
                    chat_id: chat.id.0,
                    payload: serde_json::to_string(update).ok()?,
                })
            })
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        let added = self.store.inbox_add(self.bot_id, &rows).await?;
        let repeats = rows.len() as u64 - added;
        count("kept", added);
        if repeats > 0 {
            count("repeated", repeats);
            tracing::debug!(repeats, "repeated updates ignored");
        }
        self.wake.notify_one();
        Ok(())
    }

    /// Updates queued or running in this process.
    pub fn in_flight(&self) -> usize {
        self.lanes.in_flight()
    }

    /// Waits, at most `deadline`, for the updates this process is running;
    /// true when all finished. Unclaimed ones stay for the next start.
    pub async fn drain(&self, deadline: Duration) -> bool {
        self.lanes.drain(deadline).await
    }
}

/// `wasmbot_inbox_updates_total{status}`.
pub(super) fn count(status: &str, updates: u64) {
    crate::infra::metrics::metrics()
        .inbox_updates
        .get_or_create(&crate::infra::metrics::label(status))
        .inc_by(updates);
}
