//! `webhook_deliveries`: what identifies each delivery a hook received in
//! the last day (its sender's delivery id, its body's digest), so that a
//! replayed one is refused by every replica sharing the database, and after
//! a restart. A delivery is remembered in the same transaction that keeps
//! it as a job: one that could not be kept is not remembered, and may be
//! sent again.

use super::jobs::NewJob;
use super::pool::{Store, StoreResult, dialect, on_either, timed};

/// How long a delivery is remembered.
pub const DELIVERY_MEMORY_MS: i64 = 24 * 60 * 60 * 1000;

/// A delivery refused: one of its keys was received within the last day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replayed;

impl Store {
    /// Whether `plugin/name` received a delivery with any of `keys` within
    /// the last day (a cheap look before the delivery is counted and kept).
    pub async fn webhook_delivery_seen(
        &self,
        plugin: &str,
        name: &str,
        keys: &[String],
    ) -> StoreResult<bool> {
        let sql = dialect(
            self,
            "SELECT 1 FROM webhook_deliveries \
             WHERE plugin = $1 AND name = $2 AND delivery_key = $3 AND seen_ms >= $4",
        );
        let since = chrono::Utc::now().timestamp_millis() - DELIVERY_MEMORY_MS;
        for key in keys {
            let found: Option<i32> = on_either!(self, pool => timed(
                sqlx::query_scalar(&sql)
                    .bind(plugin)
                    .bind(name)
                    .bind(key)
                    .bind(since)
                    .fetch_optional(pool),
            )
            .await?);
            if found.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Remembers `keys` for `job`'s hook `name` and keeps `job` (a webhook
    /// delivery, due now) in one transaction; refuses it when any key was
    /// received within the last day, a replica's concurrent insert included.
    /// Forgets what is older than a day on the way.
    pub async fn webhook_delivery_keep(
        &self,
        name: &str,
        keys: &[String],
        job: &NewJob<'_>,
    ) -> StoreResult<Result<i64, Replayed>> {
        let now = chrono::Utc::now().timestamp_millis();
        let forget = dialect(self, "DELETE FROM webhook_deliveries WHERE seen_ms < $1");
        let remember = dialect(
            self,
            "INSERT INTO webhook_deliveries (plugin, name, delivery_key, seen_ms) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        );
        let keep = dialect(
            self,
            "INSERT INTO scheduled_jobs (plugin, channel, chat_id, user_id, kind, spec, payload, due_ms, created_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        );
        // SQLite takes the write lock first, so two deliveries never both
        // find a key missing; Postgres serializes them on the primary key.
        let begin = match self {
            Store::Sqlite(_) => "BEGIN IMMEDIATE",
            Store::Postgres(_) => "BEGIN",
        };
        on_either!(self, pool => {
            let mut tx = timed(pool.begin_with(begin)).await?;
            timed(sqlx::query(&forget).bind(now - DELIVERY_MEMORY_MS).execute(&mut *tx)).await?;
            for key in keys {
                let added = timed(
                    sqlx::query(&remember)
                        .bind(job.plugin)
                        .bind(name)
                        .bind(key)
                        .bind(now)
                        .execute(&mut *tx),
                )
                .await?
                .rows_affected();
                if added == 0 {
                    // Dropping the transaction rolls it back.
                    return Ok(Err(Replayed));
                }
            }
            let id: i64 = timed(
                sqlx::query_scalar(&keep)
                    .bind(job.plugin)
                    .bind(job.channel)
                    .bind(job.chat_id)
                    .bind(job.user_id)
                    .bind(job.kind)
                    .bind(job.spec)
                    .bind(job.payload)
                    .bind(job.due_ms)
                    .bind(now)
                    .fetch_one(&mut *tx),
            )
            .await?;
            timed(tx.commit()).await?;
            Ok(Ok(id))
        })
    }
}
