//! `inbox`: Telegram updates kept before they are acknowledged and handled
//! from here, at least once. A replica *claims* the oldest pending update of a
//! chat by leasing it; while any update of a chat is pending, the later ones
//! of that chat wait, so a chat is handled in order and one update at a time
//! across replicas. A lease that runs out (its replica died) makes the update
//! claimable again, and a restarted instance takes back its own leases at
//! once (each lease names the instance as well as the run that took it); the
//! claim counts attempts so a poison update can be set aside.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{FromRow, QueryBuilder};

use super::pool::{Store, StoreResult, dialect, on_either, timed};

/// An update as it arrived, before it is kept.
#[derive(Debug, Clone)]
pub struct InboxUpdate {
    pub update_id: i64,
    pub chat_id: i64,
    /// The update's JSON, as Telegram sent it.
    pub payload: String,
}

/// Who takes leases: the instance (`INSTANCE_ID`, stable across restarts)
/// and this run of it (new at every start). Two replicas with one instance
/// name would take each other's leases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimant {
    pub instance: String,
    pub run: String,
}

impl Claimant {
    /// A new run of `instance`.
    pub fn start(instance: &str) -> Self {
        Self {
            instance: instance.to_string(),
            run: uuid::Uuid::new_v4().simple().to_string(),
        }
    }
}

/// An update this replica has leased and should handle now.
#[derive(Debug, Clone, FromRow)]
pub struct ClaimedUpdate {
    pub update_id: i64,
    pub chat_id: i64,
    pub payload: String,
    /// Claims so far, this one included.
    pub attempts: i32,
}

/// How an update left the inbox's pending set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboxOutcome {
    /// Handled and answered.
    Done,
    /// Set aside: failed too often. Kept for the operator.
    Dead,
}

impl InboxOutcome {
    fn status(self) -> &'static str {
        match self {
            InboxOutcome::Done => "done",
            InboxOutcome::Dead => "dead",
        }
    }
}

/// Counts of one bot's inbox, for tests, `/metrics` and the bench.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InboxCounts {
    pub pending: i64,
    pub done: i64,
    pub dead: i64,
}

/// Each chat's oldest pending update, whose lease is free, ran out, or was
/// taken by an earlier run of the claiming instance (it crashed: nobody
/// else will finish it), oldest first. The heads are found by skipping from chat to chat along the
/// pending index (a loose index scan), so a claim costs per chat, not per
/// pending update: a backlog of thousands does not slow it down. Postgres
/// skips rows another replica is claiming at this moment, and its re-check of
/// a row it waited for sees the new lease or status and passes over it; a
/// head finished since the snapshot is passed over the same way, and the
/// chat's next update is found by the next claim.
const CLAIM_POSTGRES: &str = "WITH RECURSIVE heads (chat_id, update_id) AS ( \
       (SELECT chat_id, update_id FROM inbox WHERE bot_id = $3 AND status = 'pending' \
        ORDER BY chat_id, update_id LIMIT 1) \
       UNION ALL \
       SELECT next.chat_id, next.update_id FROM heads h CROSS JOIN LATERAL ( \
         SELECT chat_id, update_id FROM inbox \
         WHERE bot_id = $3 AND status = 'pending' AND chat_id > h.chat_id \
         ORDER BY chat_id, update_id LIMIT 1) next \
     ), free AS ( \
       SELECT i.bot_id, i.update_id FROM inbox i JOIN heads h ON i.update_id = h.update_id \
       WHERE i.bot_id = $3 AND i.status = 'pending' \
         AND (i.lease_until IS NULL OR i.lease_until < $4 \
              OR (i.lease_instance = $6 AND i.lease_owner <> $1)) \
       ORDER BY i.update_id LIMIT $5 \
       FOR UPDATE OF i SKIP LOCKED \
     ) \
     UPDATE inbox SET lease_owner = $1, lease_until = $2, lease_instance = $6, attempts = inbox.attempts + 1 \
     FROM free WHERE inbox.bot_id = free.bot_id AND inbox.update_id = free.update_id \
     RETURNING inbox.update_id, inbox.chat_id, inbox.payload, inbox.attempts";

/// SQLite has one writer at a time, so the statement alone is atomic.
const CLAIM_SQLITE: &str = "UPDATE inbox SET lease_owner = ?1, lease_until = ?2, lease_instance = ?6, attempts = attempts + 1 \
     WHERE (bot_id, update_id) IN ( \
       SELECT i.bot_id, i.update_id FROM inbox i \
       WHERE i.bot_id = ?3 AND i.status = 'pending' \
         AND (i.lease_until IS NULL OR i.lease_until < ?4 \
              OR (i.lease_instance = ?6 AND i.lease_owner <> ?1)) \
         AND NOT EXISTS (SELECT 1 FROM inbox j WHERE j.bot_id = i.bot_id AND j.chat_id = i.chat_id \
                         AND j.status = 'pending' AND j.update_id < i.update_id) \
       ORDER BY i.update_id LIMIT ?5) \
     RETURNING update_id, chat_id, payload, attempts";

impl Store {
    /// Keeps `updates`; an update already kept is left as it is. Returns how
    /// many were new.
    pub async fn inbox_add(&self, bot_id: i64, updates: &[InboxUpdate]) -> StoreResult<u64> {
        let now = Utc::now();
        // One statement per chunk (a getUpdates batch is at most 100), so one
        // round trip and atomic without a transaction; repeats make a retry safe.
        let start = "INSERT INTO inbox (bot_id, update_id, chat_id, payload, received_at) ";
        let mut added = 0;
        for chunk in updates.chunks(1_000) {
            added += on_either!(self, pool => {
                let mut query = QueryBuilder::new(start);
                query.push_values(chunk, |mut row, update| {
                    row.push_bind(bot_id)
                        .push_bind(update.update_id)
                        .push_bind(update.chat_id)
                        .push_bind(update.payload.as_str())
                        .push_bind(now);
                });
                query.push(" ON CONFLICT (bot_id, update_id) DO NOTHING");
                timed(query.build().execute(pool)).await?.rows_affected()
            });
        }
        Ok(added)
    }

    /// Leases at most `limit` updates, each the oldest pending one of its
    /// chat, to `claimant` for `lease`; oldest first. Renewing, finishing
    /// and releasing name the claimant's run as the owner.
    pub async fn inbox_claim(
        &self,
        bot_id: i64,
        claimant: &Claimant,
        lease: Duration,
        limit: usize,
    ) -> StoreResult<Vec<ClaimedUpdate>> {
        let now = Utc::now();
        let until = lease_end(now, lease);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let sql = match self {
            Store::Sqlite(_) => CLAIM_SQLITE,
            Store::Postgres(_) => CLAIM_POSTGRES,
        };
        let mut claimed: Vec<ClaimedUpdate> = on_either!(self, pool => timed(
            sqlx::query_as(sql)
                .bind(claimant.run.as_str())
                .bind(until)
                .bind(bot_id)
                .bind(now)
                .bind(limit)
                .bind(claimant.instance.as_str())
                .fetch_all(pool),
        )
        .await?);
        // RETURNING does not promise the subquery's order.
        claimed.sort_by_key(|update| update.update_id);
        Ok(claimed)
    }

    /// Extends `owner`'s lease on an update it is still handling; false when
    /// the lease is no longer `owner`'s (it ran out and another took it).
    pub async fn inbox_renew(
        &self,
        bot_id: i64,
        update_id: i64,
        owner: &str,
        lease: Duration,
    ) -> StoreResult<bool> {
        let sql = dialect(
            self,
            "UPDATE inbox SET lease_until = $1 WHERE bot_id = $2 AND update_id = $3 \
             AND status = 'pending' AND lease_owner = $4",
        );
        let until = lease_end(Utc::now(), lease);
        let changed = on_either!(self, pool => timed(
            sqlx::query(&sql).bind(until).bind(bot_id).bind(update_id).bind(owner).execute(pool),
        )
        .await?
        .rows_affected());
        Ok(changed == 1)
    }

    /// Takes an update out of the pending set, if `owner` still holds it.
    pub async fn inbox_finish(
        &self,
        bot_id: i64,
        update_id: i64,
        owner: &str,
        outcome: InboxOutcome,
        error: Option<&str>,
    ) -> StoreResult<bool> {
        let sql = dialect(
            self,
            "UPDATE inbox SET status = $1, finished_at = $2, last_error = $3, lease_owner = NULL, lease_until = NULL, lease_instance = NULL \
             WHERE bot_id = $4 AND update_id = $5 AND status = 'pending' AND lease_owner = $6",
        );
        let now = Utc::now();
        let changed = on_either!(self, pool => timed(
            sqlx::query(&sql)
                .bind(outcome.status())
                .bind(now)
                .bind(error)
                .bind(bot_id)
                .bind(update_id)
                .bind(owner)
                .execute(pool),
        )
        .await?
        .rows_affected());
        Ok(changed == 1)
    }

    /// Gives an update back to try again no sooner than `retry_in`; the
    /// attempt it cost stays counted.
    pub async fn inbox_release(
        &self,
        bot_id: i64,
        update_id: i64,
        owner: &str,
        retry_in: Duration,
        error: &str,
    ) -> StoreResult<()> {
        let sql = dialect(
            self,
            "UPDATE inbox SET lease_owner = NULL, lease_instance = NULL, lease_until = $1, last_error = $2 \
             WHERE bot_id = $3 AND update_id = $4 AND status = 'pending' AND lease_owner = $5",
        );
        let until = lease_end(Utc::now(), retry_in);
        on_either!(self, pool => timed(
            sqlx::query(&sql).bind(until).bind(error).bind(bot_id).bind(update_id).bind(owner).execute(pool),
        )
        .await
        .map(drop)?);
        Ok(())
    }

    /// Deletes done updates finished before `done_before` and dead ones
    /// finished before `dead_before`; returns how many.
    pub async fn inbox_cleanup(
        &self,
        done_before: DateTime<Utc>,
        dead_before: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let sql = dialect(
            self,
            "DELETE FROM inbox WHERE (status = 'done' AND finished_at < $1) \
             OR (status = 'dead' AND finished_at < $2)",
        );
        Ok(on_either!(self, pool => timed(
            sqlx::query(&sql).bind(done_before).bind(dead_before).execute(pool),
        )
        .await?
        .rows_affected()))
    }

    /// How many of a bot's updates are pending, done and dead.
    pub async fn inbox_counts(&self, bot_id: i64) -> StoreResult<InboxCounts> {
        let sql = dialect(
            self,
            "SELECT status, COUNT(*) FROM inbox WHERE bot_id = $1 GROUP BY status",
        );
        let rows: Vec<(String, i64)> = on_either!(self, pool => timed(
            sqlx::query_as(&sql).bind(bot_id).fetch_all(pool),
        )
        .await?);
        let mut counts = InboxCounts::default();
        for (status, count) in rows {
            match status.as_str() {
                "pending" => counts.pending = count,
                "done" => counts.done = count,
                "dead" => counts.dead = count,
                _ => {}
            }
        }
        Ok(counts)
    }
}

fn lease_end(now: DateTime<Utc>, lease: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(lease)
        .ok()
        .and_then(|lease| now.checked_add_signed(lease))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}
