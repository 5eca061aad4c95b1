//! `scheduled_jobs`: what a plugin asked to be woken for (once, or on a cron
//! expression) and webhook deliveries, until delivered. The process running
//! a channel's jobs *claims* due ones by leasing them (as the inbox does);
//! one that fired is deleted, or moved to its next time when it repeats; one
//! whose handler failed is given back with a "not before", and set aside
//! (`dead`) after too many attempts. `webhooks`: the hooks the operator added.

use sqlx::FromRow;

use super::pool::{Store, StoreResult, dialect, on_either, timed};

/// A job as `schedule.add` (or a webhook delivery) creates it.
#[derive(Debug, Clone)]
pub struct NewJob<'a> {
    pub plugin: &'a str,
    pub channel: &'a str,
    /// None: the admin chat.
    pub chat_id: Option<i64>,
    pub user_id: Option<i64>,
    /// `at`, `cron` or `webhook`.
    pub kind: &'a str,
    pub spec: Option<&'a str>,
    pub payload: &'a str,
    pub due_ms: i64,
}

/// A job refused: the plugin keeps this many already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyJobs(pub u64);

/// A kept job, as `schedule.list` and the runner see it.
#[derive(Debug, Clone, FromRow)]
pub struct StoredJob {
    pub id: i64,
    pub plugin: String,
    pub channel: String,
    pub chat_id: Option<i64>,
    pub user_id: Option<i64>,
    pub kind: String,
    pub spec: Option<String>,
    pub payload: String,
    pub due_ms: i64,
    /// Attempts at this occurrence; for a claimed job, this claim included.
    pub attempts: i32,
    pub status: String,
    pub last_error: Option<String>,
}

const COLUMNS: &str = "id, plugin, channel, chat_id, user_id, kind, spec, payload, due_ms, attempts, status, last_error";

/// When a job may be claimed: its due time, or later its retry time (a
/// failed job waits behind the jobs that came due meanwhile) or the end
/// of a lease that ran out.
const CLAIMABLE_AT: &str = "CASE WHEN lease_until_ms IS NOT NULL AND lease_until_ms > due_ms THEN lease_until_ms ELSE due_ms END";

/// Due jobs of a channel whose lease is free or ran out, taken fairly: each
/// plugin's are numbered soonest first (`nth`), a plugin gets at most its
/// share ($6: a JSON object of what is left of it for plugins already
/// running jobs; $7 for the others), and every plugin's first job comes
/// before anyone's second. Postgres skips rows another replica is claiming
/// at this moment (locked before they are numbered: `FOR UPDATE` cannot sit
/// beside a window function).
fn claim_postgres() -> String {
    format!(
        "WITH free AS ( \
           SELECT id, plugin, {CLAIMABLE_AT} AS claimable_at FROM scheduled_jobs \
           WHERE channel = $3 AND status = 'active' AND due_ms <= $4 \
             AND (lease_until_ms IS NULL OR lease_until_ms < $4) \
           FOR UPDATE SKIP LOCKED), \
         ranked AS ( \
           SELECT id, plugin, claimable_at, \
                  ROW_NUMBER() OVER (PARTITION BY plugin ORDER BY claimable_at, id) AS nth \
           FROM free), \
         due AS ( \
           SELECT id FROM ranked \
           WHERE nth <= COALESCE(($6::jsonb ->> plugin)::bigint, $7) \
           ORDER BY nth, claimable_at, id LIMIT $5) \
         UPDATE scheduled_jobs SET lease_owner = $1, lease_until_ms = $2, attempts = scheduled_jobs.attempts + 1 \
         FROM due WHERE scheduled_jobs.id = due.id \
         RETURNING scheduled_jobs.id, plugin, channel, chat_id, user_id, kind, spec, payload, due_ms, attempts, status, last_error"
    )
}

/// SQLite has one writer at a time, so the statement alone is atomic.
fn claim_sqlite() -> String {
    format!(
        "UPDATE scheduled_jobs SET lease_owner = ?1, lease_until_ms = ?2, attempts = attempts + 1 \
         WHERE id IN ( \
           SELECT id FROM ( \
             SELECT id, plugin, claimable_at, \
                    ROW_NUMBER() OVER (PARTITION BY plugin ORDER BY claimable_at, id) AS nth \
             FROM (SELECT id, plugin, {CLAIMABLE_AT} AS claimable_at FROM scheduled_jobs \
                   WHERE channel = ?3 AND status = 'active' AND due_ms <= ?4 \
                     AND (lease_until_ms IS NULL OR lease_until_ms < ?4))) AS ranked \
           WHERE nth <= COALESCE((SELECT value FROM json_each(?6) WHERE key = ranked.plugin), ?7) \
           ORDER BY nth, claimable_at, id LIMIT ?5) \
         RETURNING id, plugin, channel, chat_id, user_id, kind, spec, payload, due_ms, attempts, status, last_error"
    )
}

/// How many due jobs one claim may take, and of each plugin.
#[derive(Debug, Clone, Default)]
pub struct ClaimRoom {
    /// All plugins together.
    pub total: usize,
    /// A plugin with none running.
    pub per_plugin: usize,
    /// What is left of the share of plugins running jobs now.
    pub left: std::collections::HashMap<String, usize>,
}

/// Runs one UPDATE or DELETE of a single job on either backend; true when
/// it changed the row.
macro_rules! change {
    ($store:ident, $sql:expr, $($arg:expr),*) => {{
        let sql = dialect($store, $sql);
        let changed = on_either!($store, pool => timed(
            sqlx::query(&sql)$(.bind($arg))*.execute(pool),
        )
        .await?
        .rows_affected());
        Ok(changed == 1)
    }};
}

impl Store {
    /// Adds a job unless the plugin already keeps `max_jobs` (webhook
    /// deliveries do not count); returns its id. Jobs set aside after
    /// failing count too: a plugin whose jobs keep dying fills its quota
    /// and adds no more until they expire (`jobs_expire_dead`) or it
    /// cancels them by id.
    pub async fn jobs_add(
        &self,
        job: &NewJob<'_>,
        max_jobs: u64,
    ) -> StoreResult<Result<i64, TooManyJobs>> {
        let sql = dialect(
            self,
            "INSERT INTO scheduled_jobs (plugin, channel, chat_id, user_id, kind, spec, payload, due_ms, created_ms) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9 \
             WHERE (SELECT COUNT(*) FROM scheduled_jobs WHERE plugin = $1 AND kind <> 'webhook') < $10 \
             RETURNING id",
        );
        let created = chrono::Utc::now().timestamp_millis();
        let max = i64::try_from(max_jobs).unwrap_or(i64::MAX);
        let id: Option<i64> = on_either!(self, pool => timed(
            sqlx::query_scalar(&sql)
                .bind(job.plugin)
                .bind(job.channel)
                .bind(job.chat_id)
                .bind(job.user_id)
                .bind(job.kind)
                .bind(job.spec)
                .bind(job.payload)
                .bind(job.due_ms)
                .bind(created)
                .bind(max)
                .fetch_optional(pool),
        )
        .await?);
        Ok(id.ok_or(TooManyJobs(max_jobs)))
    }

    /// Deletes one of `plugin`'s jobs (not a webhook delivery); false when
    /// it has none by that id.
    pub async fn jobs_cancel(&self, plugin: &str, id: i64) -> StoreResult<bool> {
        let sql = dialect(
            self,
            "DELETE FROM scheduled_jobs WHERE plugin = $1 AND id = $2 AND kind <> 'webhook'",
        );
        let deleted = on_either!(self, pool => timed(
            sqlx::query(&sql).bind(plugin).bind(id).execute(pool),
        )
        .await?
        .rows_affected());
        Ok(deleted == 1)
    }

    /// `plugin`'s active jobs (not webhook deliveries), soonest first.
    pub async fn jobs_list(&self, plugin: &str, limit: u32) -> StoreResult<Vec<StoredJob>> {
        let sql = dialect(
            self,
            &format!(
                "SELECT {COLUMNS} FROM scheduled_jobs WHERE plugin = $1 AND status = 'active' \
                 AND kind <> 'webhook' ORDER BY due_ms, id LIMIT $2"
            ),
        );
        Ok(on_either!(self, pool => timed(
            sqlx::query_as(&sql).bind(plugin).bind(i64::from(limit)).fetch_all(pool),
        )
        .await?))
    }

    /// `plugin`'s jobs kept (against its quota) and set aside (webhook deliveries not counted).
    pub async fn jobs_usage(&self, plugin: &str) -> StoreResult<(i64, i64)> {
        let sql = dialect(
            self,
            "SELECT COALESCE(SUM(CASE WHEN status = 'active' THEN 1 ELSE 0 END), 0), \
                    COALESCE(SUM(CASE WHEN status = 'dead' THEN 1 ELSE 0 END), 0) \
             FROM scheduled_jobs WHERE plugin = $1 AND kind <> 'webhook'",
        );
        Ok(on_either!(self, pool => timed(
            sqlx::query_as(&sql).bind(plugin).fetch_one(pool),
        )
        .await?))
    }

    /// Deletes jobs set aside (`dead`) that were added before `before_ms`:
    /// kept for the operator as long as the audit trail, then gone.
    pub async fn jobs_expire_dead(&self, before_ms: i64) -> StoreResult<u64> {
        let sql = dialect(
            self,
            "DELETE FROM scheduled_jobs WHERE status = 'dead' AND created_ms < $1",
        );
        Ok(on_either!(self, pool => timed(
            sqlx::query(&sql).bind(before_ms).execute(pool),
        )
        .await?
        .rows_affected()))
    }

    /// Every job, active and set aside, for the operator and tests.
    pub async fn jobs_all(&self) -> StoreResult<Vec<StoredJob>> {
        let sql = format!("SELECT {COLUMNS} FROM scheduled_jobs ORDER BY due_ms, id");
        Ok(on_either!(self, pool => timed(sqlx::query_as(&sql).fetch_all(pool)).await?))
    }

    /// When the channel's next active job may be claimed after `after_ms`
    /// (a failed one: not before its retry time; a running one: when its
    /// lease runs out), if any. Jobs claimable already are not counted:
    /// they wait for a slot, and a finished job wakes the runner for them.
    pub async fn jobs_next_due(&self, channel: &str, after_ms: i64) -> StoreResult<Option<i64>> {
        let sql = dialect(
            self,
            &format!(
                "SELECT MIN({CLAIMABLE_AT}) FROM scheduled_jobs \
                 WHERE channel = $1 AND status = 'active' AND {CLAIMABLE_AT} > $2"
            ),
        );
        Ok(on_either!(self, pool => timed(
            sqlx::query_scalar::<_, Option<i64>>(&sql).bind(channel).bind(after_ms).fetch_one(pool),
        )
        .await?))
    }

    /// Active jobs of `channel` for `chat_id` (or the admin chat) due before `until_ms`.
    pub async fn jobs_due_before(
        &self,
        channel: &str,
        chat_id: i64,
        until_ms: i64,
    ) -> StoreResult<i64> {
        let sql = dialect(
            self,
            "SELECT COUNT(*) FROM scheduled_jobs WHERE channel = $1 AND status = 'active' \
             AND (chat_id = $2 OR chat_id IS NULL) AND due_ms <= $3",
        );
        Ok(on_either!(self, pool => timed(
            sqlx::query_scalar(&sql).bind(channel).bind(chat_id).bind(until_ms).fetch_one(pool),
        )
        .await?))
    }

    /// Leases due jobs of `channel` to `owner` until `until_ms`, at most
    /// what `room` allows in all and of each plugin.
    pub async fn jobs_claim(
        &self,
        channel: &str,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
        room: &ClaimRoom,
    ) -> StoreResult<Vec<StoredJob>> {
        let sql = match self {
            Store::Sqlite(_) => claim_sqlite(),
            Store::Postgres(_) => claim_postgres(),
        };
        let limit = i64::try_from(room.total).unwrap_or(i64::MAX);
        let per_plugin = i64::try_from(room.per_plugin).unwrap_or(i64::MAX);
        let left = serde_json::to_string(&room.left).unwrap_or_else(|_| "{}".to_string());
        let mut claimed: Vec<StoredJob> = on_either!(self, pool => timed(
            sqlx::query_as(&sql)
                .bind(owner)
                .bind(until_ms)
                .bind(channel)
                .bind(now_ms)
                .bind(limit)
                .bind(&left)
                .bind(per_plugin)
                .fetch_all(pool),
        )
        .await?);
        claimed.sort_by_key(|job| (job.due_ms, job.id));
        Ok(claimed)
    }

    /// Extends `owner`'s lease on a job it is still running; false when it
    /// is no longer `owner`'s.
    pub async fn jobs_renew(&self, id: i64, owner: &str, until_ms: i64) -> StoreResult<bool> {
        change!(
            self,
            "UPDATE scheduled_jobs SET lease_until_ms = $1 WHERE id = $2 AND lease_owner = $3",
            until_ms,
            id,
            owner
        )
    }

    /// A one-shot job (or delivery) that fired: gone. False when `owner` no
    /// longer held it (or it was cancelled meanwhile).
    pub async fn jobs_done(&self, id: i64, owner: &str) -> StoreResult<bool> {
        change!(
            self,
            "DELETE FROM scheduled_jobs WHERE id = $1 AND lease_owner = $2",
            id,
            owner
        )
    }

    /// A repeating job that fired (or whose occurrence was given up, with
    /// `error`): waits for `next_ms`, attempts counted afresh.
    pub async fn jobs_reschedule(
        &self,
        id: i64,
        owner: &str,
        next_ms: i64,
        error: Option<&str>,
    ) -> StoreResult<bool> {
        change!(
            self,
            "UPDATE scheduled_jobs SET due_ms = $1, attempts = 0, lease_owner = NULL, \
             lease_until_ms = NULL, last_error = $2 WHERE id = $3 AND lease_owner = $4",
            next_ms,
            error,
            id,
            owner
        )
    }

    /// A job whose handler (or delivery) failed: tried again from `retry_ms`.
    pub async fn jobs_retry(
        &self,
        id: i64,
        owner: &str,
        retry_ms: i64,
        error: &str,
    ) -> StoreResult<bool> {
        change!(
            self,
            "UPDATE scheduled_jobs SET lease_owner = NULL, lease_until_ms = $1, last_error = $2 \
             WHERE id = $3 AND lease_owner = $4",
            retry_ms,
            error,
            id,
            owner
        )
    }

    /// A job that failed too often: kept, set aside, for the operator.
    pub async fn jobs_set_aside(&self, id: i64, owner: &str, error: &str) -> StoreResult<bool> {
        change!(
            self,
            "UPDATE scheduled_jobs SET status = 'dead', lease_owner = NULL, lease_until_ms = NULL, \
             last_error = $1 WHERE id = $2 AND lease_owner = $3",
            error,
            id,
            owner
        )
    }
}
