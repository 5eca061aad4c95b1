//! At-least-once handling. Polling and the webhook only *keep* an update
//! (a row in the `inbox` table) before Telegram is told it was received; the
//! runner here claims kept updates (the oldest pending one of each chat,
//! leased to this process), hands each to the adapter on its chat's lane, and
//! marks it done only after the reply was sent. A lease is renewed while its
//! update runs; if the process dies, the lease runs out and the update is
//! claimed again (by this process after a restart, or by another replica).
//! An update claimed more than [`MAX_ATTEMPTS`] times is set aside as dead,
//! with an alert, so one poison update cannot wedge its chat.

use std::sync::Arc;
use std::time::Duration;

use teloxide::types::Update;
use tokio::sync::{Notify, watch};

use super::{TelegramAdapter, stopped};
use crate::chat::lanes::ChatLanes;
use crate::store::{ClaimedUpdate, InboxOutcome, InboxUpdate, Store, StoreError};

/// Claims that never completed before an update is set aside as dead.
pub const MAX_ATTEMPTS: i32 = 3;

/// Updates queued or running at once in this process, across all chats.
pub const MAX_IN_FLIGHT: usize = 256;

/// How often an idle runner looks for updates another replica kept or
/// whose lease ran out (its own arrivals wake it at once).
const IDLE_POLL: Duration = Duration::from_millis(500);

/// After a failed database call, before the next claim.
const CLAIM_BACKOFF: Duration = Duration::from_secs(1);

/// A failed send is retried no sooner than this, times the attempts so far.
const RETRY_STEP: Duration = Duration::from_secs(2);

/// One bot's inbox as this process sees it.
pub struct Inbox {
    store: Store,
    bot_id: i64,
    /// This process's name on the leases it takes.
    owner: String,
    lease: Duration,
    /// Rung when an update is kept or finished: there may be one to claim.
    wake: Notify,
    lanes: ChatLanes,
}

impl Inbox {
    pub fn new(store: Store, bot_id: i64, lease: Duration) -> Self {
        Self {
            store,
            bot_id,
            owner: uuid::Uuid::new_v4().simple().to_string(),
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

/// Claims and handles kept updates until `stop` turns true; the caller then
/// drains the lanes. Pending and expired updates from before a restart are
/// the oldest, so they are claimed first.
pub async fn run(adapter: Arc<TelegramAdapter>, mut stop: watch::Receiver<bool>) {
    let inbox = &adapter.inbox;
    loop {
        let room = MAX_IN_FLIGHT.saturating_sub(inbox.in_flight());
        let mut wait = IDLE_POLL;
        if room > 0 {
            match inbox
                .store
                .inbox_claim(inbox.bot_id, &inbox.owner, inbox.lease, room)
                .await
            {
                Ok(claimed) if !claimed.is_empty() => {
                    for update in claimed {
                        let chat_id = update.chat_id;
                        let job = handle_claimed(adapter.clone(), update);
                        tokio::select! {
                            _ = inbox.lanes.submit(chat_id, job) => {}
                            _ = stopped(&mut stop) => return,
                        }
                    }
                    // There may be more than there was room for.
                    continue;
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "could not claim updates from the inbox; retrying");
                    wait = CLAIM_BACKOFF;
                }
            }
        }
        tokio::select! {
            _ = inbox.wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = stopped(&mut stop) => return,
        }
    }
}

/// One claimed update: set aside when it failed too often, else handled
/// under a renewed lease and then marked done (or given back on failure).
async fn handle_claimed(adapter: Arc<TelegramAdapter>, update: ClaimedUpdate) {
    let inbox = &adapter.inbox;
    let (bot_id, update_id) = (inbox.bot_id, update.update_id);
    if update.attempts > MAX_ATTEMPTS {
        set_aside(&adapter, &update).await;
        inbox.wake.notify_one();
        return;
    }
    let outcome = match serde_json::from_str::<Update>(&update.payload) {
        Ok(parsed) => {
            tokio::select! {
                outcome = adapter.handle(parsed) => outcome,
                never = renew_lease(inbox, update_id) => match never {},
            }
        }
        Err(error) => Err(anyhow::anyhow!("the kept update is not an update: {error}")),
    };
    match outcome {
        Ok(()) => {
            finish(inbox, update_id, InboxOutcome::Done, None).await;
            count("done", 1);
        }
        Err(error) => {
            count("retried", 1);
            let retry_in = RETRY_STEP * update.attempts.max(1) as u32;
            tracing::warn!(update_id, chat_id = update.chat_id, attempts = update.attempts, error = %format!("{error:#}"), retry_in_s = retry_in.as_secs(), "update not handled; it will be tried again");
            if let Err(error) = inbox
                .store
                .inbox_release(
                    bot_id,
                    update_id,
                    &inbox.owner,
                    retry_in,
                    &format!("{error:#}"),
                )
                .await
            {
                tracing::warn!(update_id, %error, "could not give the update back; it is retried when its lease runs out");
            }
        }
    }
    inbox.wake.notify_one();
}

/// Keeps the lease of a running update alive; never returns.
async fn renew_lease(inbox: &Inbox, update_id: i64) -> std::convert::Infallible {
    let every = inbox.lease / 3;
    loop {
        tokio::time::sleep(every).await;
        match inbox
            .store
            .inbox_renew(inbox.bot_id, update_id, &inbox.owner, inbox.lease)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(
                    update_id,
                    "the lease on a running update ran out; another process may handle it too"
                )
            }
            Err(error) => tracing::warn!(update_id, %error, "could not renew an update's lease"),
        }
    }
}

/// Marks an update finished, retrying briefly: a lost mark means the update
/// is handled a second time once its lease runs out.
async fn finish(inbox: &Inbox, update_id: i64, outcome: InboxOutcome, error: Option<&str>) {
    let mut wait = Duration::from_millis(100);
    for attempt in 1..=5 {
        match inbox
            .store
            .inbox_finish(inbox.bot_id, update_id, &inbox.owner, outcome, error)
            .await
        {
            Ok(true) => return,
            Ok(false) => {
                tracing::warn!(
                    update_id,
                    "a finished update's lease had run out; it may have been handled twice"
                );
                return;
            }
            Err(failure) if attempt < 5 => {
                tracing::warn!(update_id, error = %failure, "could not mark an update finished; retrying");
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            Err(failure) => {
                tracing::error!(update_id, error = %failure, "could not mark an update finished; it will be handled again after its lease");
            }
        }
    }
}

/// A poison update: never completed in [`MAX_ATTEMPTS`] claims (the process
/// died each time, or sending kept failing). Kept as dead for the operator.
async fn set_aside(adapter: &TelegramAdapter, update: &ClaimedUpdate) {
    let attempts = update.attempts - 1;
    let reason = format!("not completed after {attempts} attempts");
    finish(
        &adapter.inbox,
        update.update_id,
        InboxOutcome::Dead,
        Some(&reason),
    )
    .await;
    count("dead", 1);
    tracing::error!(
        update_id = update.update_id,
        chat_id = update.chat_id,
        attempts,
        "update set aside as dead"
    );
    adapter.services().alerter.alert(
        "inbox:dead",
        format!(
            "⚠️ Telegram update {} in chat {} was set aside after {attempts} attempts that never completed (see the inbox table, status 'dead'). The chat's next messages are handled.",
            update.update_id, update.chat_id
        ),
    );
    if let Some(audit) = &adapter.services().audit {
        audit.record(crate::store::AuditEntry {
            chat_id: Some(update.chat_id),
            error: Some(reason),
            metadata: sqlx::types::Json(serde_json::json!({
                "update_id": update.update_id,
                "attempts": attempts,
            })),
            ..crate::store::AuditEntry::new("inbox_dead", "dead")
        });
    }
}

/// `wasmbot_inbox_updates_total{status}`.
fn count(status: &str, updates: u64) {
    crate::metrics::metrics()
        .inbox_updates
        .get_or_create(&crate::metrics::label(status))
        .inc_by(updates);
}
