//! The inbox runner: claims kept updates (the oldest pending one of each chat,
//! leased to this process), hands each to the adapter on its chat's lane, and
//! marks it done only after the reply was sent. A lease is renewed while its
//! update runs; if the process dies, its restart (same `INSTANCE_ID`) claims
//! the update again at once, or another replica does when the lease runs out.
//! An update claimed more than [`MAX_ATTEMPTS`] times is set aside as dead,
//! with an alert, so one poison update cannot wedge its chat.

use std::sync::Arc;
use std::time::Duration;

use teloxide::types::Update;
use tokio::sync::watch;

use super::adapter::{TelegramAdapter, stopped};
use super::inbox::{Inbox, MAX_ATTEMPTS, MAX_IN_FLIGHT, count};
use crate::infra::store::{ClaimedUpdate, InboxOutcome};

/// How often an idle runner looks for updates another replica kept or
/// whose lease ran out (its own arrivals wake it at once).
const IDLE_POLL: Duration = Duration::from_millis(500);

/// After a failed database call, before the next claim.
const CLAIM_BACKOFF: Duration = Duration::from_secs(1);

/// A failed send is retried no sooner than this, times the attempts so far.
const RETRY_STEP: Duration = Duration::from_secs(2);

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
                .inbox_claim(inbox.bot_id, &inbox.claimant, inbox.lease, room)
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
                    &inbox.claimant.run,
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
            .inbox_renew(inbox.bot_id, update_id, &inbox.claimant.run, inbox.lease)
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
            .inbox_finish(inbox.bot_id, update_id, &inbox.claimant.run, outcome, error)
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
        audit.record(crate::infra::store::AuditEntry {
            chat_id: Some(update.chat_id),
            error: Some(reason),
            metadata: sqlx::types::Json(serde_json::json!({
                "update_id": update.update_id,
                "attempts": attempts,
            })),
            ..crate::infra::store::AuditEntry::new("inbox_dead", "dead")
        });
    }
}
