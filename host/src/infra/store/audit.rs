//! `audit_trail`: append-only. Inserts come in batches from the audit writer,
//! each row under an idempotency key (`entry_id`) so that a batch retried
//! after a timeout is written once; the only delete is the retention cleanup,
//! which the database itself holds to the retention in `audit_retention`.
//! Rows the database refuses are set aside in `audit_rejected`.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{FromRow, QueryBuilder};
use uuid::Uuid;

use super::pool::{Store, StoreError, StoreResult, timed};
use super::sanitize::{clean_capped, clean_json, json_needs_cleaning, needs_cleaning};

#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct AuditEntry {
    pub created_at: DateTime<Utc>,
    pub correlation_id: Option<String>,
    pub user_id: Option<i64>,
    pub chat_id: Option<i64>,
    pub plugin: Option<String>,
    pub action: String,
    /// Who wrote it: `host` or `plugin`.
    pub source: String,
    pub model: Option<String>,
    pub status: String,
    pub error: Option<String>,
    pub duration_ms: Option<f64>,
    pub metadata: Json<Value>,
}

/// Longest value (bytes) kept per text column. `correlation_id` is indexed,
/// and a btree entry must stay well under PostgreSQL's ~2.7 KB row limit.
const MAX_ID: usize = 128;
const MAX_NAME: usize = 128;
const MAX_SOURCE: usize = 32;
const MAX_MODEL: usize = 256;
const MAX_STATUS: usize = 64;
const MAX_ERROR: usize = 4 * 1024;

impl AuditEntry {
    /// An entry written by the host now, with every optional field empty;
    /// callers fill in who and what with struct update syntax or assignments.
    pub fn new(action: &str, status: &str) -> Self {
        Self {
            created_at: Utc::now(),
            correlation_id: None,
            user_id: None,
            chat_id: None,
            plugin: None,
            action: action.to_string(),
            source: "host".to_string(),
            model: None,
            status: status.to_string(),
            error: None,
            duration_ms: None,
            metadata: Json(Value::Object(Default::default())),
        }
    }

    /// The entry with every text made storable: control characters (NUL
    /// included, which PostgreSQL refuses in text and in jsonb) replaced,
    /// each column and each metadata key and string capped. See
    /// `sanitize.rs`. The audit writer applies it to every
    /// entry it queues and the store to every row it inserts.
    pub fn sanitized(mut self) -> Self {
        fn text(value: &mut String, max: usize) {
            if needs_cleaning(value, max) {
                *value = clean_capped(value, max).into_owned();
            }
        }
        fn optional(value: &mut Option<String>, max: usize) {
            if let Some(value) = value {
                text(value, max);
            }
        }
        optional(&mut self.correlation_id, MAX_ID);
        optional(&mut self.plugin, MAX_NAME);
        text(&mut self.action, MAX_NAME);
        text(&mut self.source, MAX_SOURCE);
        optional(&mut self.model, MAX_MODEL);
        text(&mut self.status, MAX_STATUS);
        optional(&mut self.error, MAX_ERROR);
        if json_needs_cleaning(&self.metadata.0) {
            clean_json(&mut self.metadata.0);
        }
        self
    }

    /// Whether [`AuditEntry::sanitized`] would change anything.
    pub fn needs_sanitizing(&self) -> bool {
        let optional = |value: &Option<String>, max| {
            value
                .as_deref()
                .is_some_and(|value| needs_cleaning(value, max))
        };
        optional(&self.correlation_id, MAX_ID)
            || optional(&self.plugin, MAX_NAME)
            || needs_cleaning(&self.action, MAX_NAME)
            || needs_cleaning(&self.source, MAX_SOURCE)
            || optional(&self.model, MAX_MODEL)
            || needs_cleaning(&self.status, MAX_STATUS)
            || optional(&self.error, MAX_ERROR)
            || json_needs_cleaning(&self.metadata.0)
    }

    /// Every field as JSON text. JSON escapes every control character
    /// (`\u0000`…), so the text is lossless and safe in a `TEXT` column or a
    /// log line, where `jsonb` would refuse `\u0000`.
    pub fn to_lossless_json(&self, entry_id: Uuid) -> String {
        serde_json::json!({
            "entry_id": entry_id.to_string(),
            "created_at": self.created_at.to_rfc3339(),
            "correlation_id": self.correlation_id,
            "user_id": self.user_id,
            "chat_id": self.chat_id,
            "plugin": self.plugin,
            "action": self.action,
            "source": self.source,
            "model": self.model,
            "status": self.status,
            "error": self.error,
            // NaN and infinities are not JSON numbers; keep them as text.
            "duration_ms": self.duration_ms.map(|ms| match serde_json::Number::from_f64(ms) {
                Some(number) => Value::Number(number),
                None => Value::String(ms.to_string()),
            }),
            "metadata": self.metadata.0,
        })
        .to_string()
    }
}

/// An entry with the idempotency key it is inserted under: inserting the
/// same key twice writes one row.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyedAuditEntry {
    pub entry_id: Uuid,
    pub entry: AuditEntry,
}

impl KeyedAuditEntry {
    /// `entry` under a new random key.
    pub fn new(entry: AuditEntry) -> Self {
        Self {
            entry_id: Uuid::new_v4(),
            entry,
        }
    }
}

/// An entry the database refused, as kept in `audit_rejected`.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedAudit {
    pub entry_id: Uuid,
    pub rejected_at: DateTime<Utc>,
    /// The database's error.
    pub error: String,
    /// [`AuditEntry::to_lossless_json`].
    pub entry: String,
}

const COLUMNS: &str = "created_at, correlation_id, user_id, chat_id, plugin, action, source, model, status, error, duration_ms, metadata";

/// Parameters per row; batches stay under SQLite's 32766 bind limit.
const BIND_PER_ROW: usize = 13;
pub const MAX_BATCH: usize = 2_000;

/// A host clock running slightly ahead of the database's must not get the
/// retention cleanup refused: the cutoff is moved back by this much, so rows
/// are kept at most this much longer than the retention.
const CLOCK_SKEW_MARGIN: chrono::TimeDelta = chrono::TimeDelta::minutes(1);

impl StoreError {
    /// Whether the database refused the data itself (a value it cannot
    /// store, a constraint), so that the same rows fail the same way on every
    /// retry. Anything else (unreachable, timed out, pool exhausted, missing
    /// table or grant) may pass later and is retried.
    pub fn is_data_error(&self) -> bool {
        let StoreError::Database(error) = self else {
            return matches!(self, StoreError::Json(_));
        };
        match error {
            // A value the driver could not encode fails the same way again.
            sqlx::Error::Encode(_) => true,
            sqlx::Error::Database(db) => {
                let Some(code) = db.code() else {
                    return false;
                };
                if db
                    .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                    .is_some()
                {
                    // SQLSTATE class 22 data exception (e.g. 22021 invalid byte
                    // sequence, 22008 datetime out of range), 23 integrity
                    // constraint violation, 54 program limit exceeded (a value
                    // too large for an index or a jsonb object).
                    ["22", "23", "54"]
                        .iter()
                        .any(|class| code.starts_with(class))
                } else {
                    // SQLite extended result codes: the primary code is the low
                    // byte. 18 TOOBIG, 19 CONSTRAINT (CHECK, NOT NULL, a trigger's
                    // RAISE(ABORT)), 20 MISMATCH (datatype mismatch).
                    code.parse::<i32>()
                        .is_ok_and(|code| matches!(code & 0xff, 18..=20))
                }
            }
            _ => false,
        }
    }
}

impl Store {
    /// Inserts a batch in one statement per chunk, each entry under a new
    /// key. The audit writer uses [`Store::insert_audit_keyed`].
    pub async fn insert_audit(&self, entries: &[AuditEntry]) -> StoreResult<()> {
        let keyed: Vec<KeyedAuditEntry> =
            entries.iter().cloned().map(KeyedAuditEntry::new).collect();
        self.insert_audit_keyed(&keyed).await.map(drop)
    }

    /// Inserts a batch, skipping entries whose key is already stored (a
    /// retry of a batch that was written although its answer never came).
    /// Entries are sanitized here too, so no caller can store what the
    /// writer would have cleaned. Returns how many rows were new.
    pub async fn insert_audit_keyed(&self, entries: &[KeyedAuditEntry]) -> StoreResult<u64> {
        let entries: Vec<Cow<'_, KeyedAuditEntry>> = entries
            .iter()
            .map(|keyed| {
                if keyed.entry.needs_sanitizing() {
                    Cow::Owned(KeyedAuditEntry {
                        entry_id: keyed.entry_id,
                        entry: keyed.entry.clone().sanitized(),
                    })
                } else {
                    Cow::Borrowed(keyed)
                }
            })
            .collect();
        let mut inserted = 0;
        for chunk in entries.chunks(MAX_BATCH.min(30_000 / BIND_PER_ROW)) {
            let insert = format!("INSERT INTO audit_trail (entry_id, {COLUMNS}) ");
            match self {
                Store::Sqlite(pool) => {
                    let mut query = QueryBuilder::new(&insert);
                    query.push_values(chunk, |mut row, keyed| {
                        let e = &keyed.entry;
                        row.push_bind(keyed.entry_id.to_string())
                            .push_bind(e.created_at)
                            .push_bind(&e.correlation_id)
                            .push_bind(e.user_id)
                            .push_bind(e.chat_id)
                            .push_bind(&e.plugin)
                            .push_bind(&e.action)
                            .push_bind(&e.source)
                            .push_bind(&e.model)
                            .push_bind(&e.status)
                            .push_bind(&e.error)
                            .push_bind(e.duration_ms)
                            .push_bind(e.metadata.0.to_string());
                    });
                    query.push(" ON CONFLICT (entry_id) DO NOTHING");
                    inserted += timed(query.build().execute(pool)).await?.rows_affected();
                }
                Store::Postgres(pool) => {
                    let mut query = QueryBuilder::new(&insert);
                    query.push_values(chunk, |mut row, keyed| {
                        let e = &keyed.entry;
                        row.push_bind(keyed.entry_id.to_string())
                            .push_unseparated("::uuid")
                            .push_bind(e.created_at)
                            .push_bind(&e.correlation_id)
                            .push_bind(e.user_id)
                            .push_bind(e.chat_id)
                            .push_bind(&e.plugin)
                            .push_bind(&e.action)
                            .push_bind(&e.source)
                            .push_bind(&e.model)
                            .push_bind(&e.status)
                            .push_bind(&e.error)
                            .push_bind(e.duration_ms)
                            .push_bind(&e.metadata);
                    });
                    query.push(" ON CONFLICT (entry_id) DO NOTHING");
                    inserted += timed(query.build().execute(pool)).await?.rows_affected();
                }
            }
        }
        Ok(inserted)
    }

    /// Sets aside an entry the database refused, with why. A second call for
    /// the same key keeps the first.
    pub async fn insert_audit_rejected(&self, rejected: &RejectedAudit) -> StoreResult<()> {
        match self {
            Store::Sqlite(pool) => {
                timed(
                    sqlx::query(
                        "INSERT INTO audit_rejected (entry_id, rejected_at, error, entry) \
                         VALUES (?1, ?2, ?3, ?4) ON CONFLICT (entry_id) DO NOTHING",
                    )
                    .bind(rejected.entry_id.to_string())
                    .bind(rejected.rejected_at)
                    .bind(&rejected.error)
                    .bind(&rejected.entry)
                    .execute(pool),
                )
                .await?;
            }
            Store::Postgres(pool) => {
                timed(
                    sqlx::query(
                        "INSERT INTO audit_rejected (entry_id, rejected_at, error, entry) \
                         VALUES ($1::uuid, $2, $3, $4) ON CONFLICT (entry_id) DO NOTHING",
                    )
                    .bind(rejected.entry_id.to_string())
                    .bind(rejected.rejected_at)
                    .bind(&rejected.error)
                    .bind(&rejected.entry)
                    .execute(pool),
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Every entry set aside, oldest first.
    pub async fn rejected_audit(&self) -> StoreResult<Vec<RejectedAudit>> {
        let rows: Vec<(String, DateTime<Utc>, String, String)> = match self {
            Store::Sqlite(pool) => {
                timed(
                    sqlx::query_as(
                        "SELECT entry_id, rejected_at, error, entry FROM audit_rejected ORDER BY id",
                    )
                    .fetch_all(pool),
                )
                .await?
            }
            Store::Postgres(pool) => {
                timed(
                    sqlx::query_as(
                        "SELECT entry_id::text, rejected_at, error, entry FROM audit_rejected ORDER BY id",
                    )
                    .fetch_all(pool),
                )
                .await?
            }
        };
        rows.into_iter()
            .map(|(entry_id, rejected_at, error, entry)| {
                let entry_id = Uuid::parse_str(&entry_id).map_err(|error| {
                    StoreError::Database(sqlx::Error::Decode(
                        format!("audit_rejected.entry_id {entry_id:?}: {error}").into(),
                    ))
                })?;
                Ok(RejectedAudit {
                    entry_id,
                    rejected_at,
                    error,
                    entry,
                })
            })
            .collect()
    }

    /// The retention the database enforces on deletes (`audit_retention`).
    pub async fn audit_retention_days(&self) -> StoreResult<u32> {
        let sql = "SELECT days FROM audit_retention";
        let days: i64 = match self {
            Store::Sqlite(pool) => timed(sqlx::query_scalar(sql).fetch_one(pool)).await?,
            Store::Postgres(pool) => {
                let days: i32 = timed(sqlx::query_scalar(sql).fetch_one(pool)).await?;
                i64::from(days)
            }
        };
        Ok(u32::try_from(days).unwrap_or(0))
    }

    /// Makes the database enforce a retention of `days`; returns the previous
    /// value when it changed. On PostgreSQL only a role with UPDATE on
    /// `audit_retention` (the owner, not the bot's role) may change it, so a
    /// leaked application password cannot shorten the retention; that
    /// role gets a permission error here.
    pub async fn set_audit_retention_days(&self, days: u32) -> StoreResult<Option<u32>> {
        let current = self.audit_retention_days().await?;
        if current == days {
            return Ok(None);
        }
        match self {
            Store::Sqlite(pool) => {
                timed(
                    sqlx::query("UPDATE audit_retention SET days = ?1, updated_at = ?2")
                        .bind(i64::from(days))
                        .bind(Utc::now())
                        .execute(pool),
                )
                .await?;
            }
            Store::Postgres(pool) => {
                let days = i32::try_from(days).unwrap_or(i32::MAX);
                timed(
                    sqlx::query("UPDATE audit_retention SET days = $1, updated_at = now()")
                        .bind(days)
                        .execute(pool),
                )
                .await?;
            }
        }
        Ok(Some(current))
    }

    /// Deletes entries created before `cutoff` (moved back by a minute, see
    /// `CLOCK_SKEW_MARGIN`); returns how many. The database refuses a cutoff
    /// newer than `now - audit_retention.days`, whoever asks: PostgreSQL in
    /// `audit_trail_cleanup`, SQLite in a trigger on the retention gate.
    pub async fn cleanup_audit(&self, cutoff: DateTime<Utc>) -> StoreResult<u64> {
        let cutoff = cutoff - CLOCK_SKEW_MARGIN;
        match self {
            Store::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                timed(
                    sqlx::query("UPDATE audit_retention_gate SET cutoff = ?1 WHERE id = 1")
                        .bind(cutoff)
                        .execute(&mut *tx),
                )
                .await?;
                let deleted = timed(
                    sqlx::query("DELETE FROM audit_trail WHERE created_at < ?1")
                        .bind(cutoff)
                        .execute(&mut *tx),
                )
                .await?
                .rows_affected();
                timed(
                    sqlx::query("UPDATE audit_retention_gate SET cutoff = NULL WHERE id = 1")
                        .execute(&mut *tx),
                )
                .await?;
                tx.commit().await?;
                Ok(deleted)
            }
            Store::Postgres(pool) => {
                let deleted: i64 = timed(
                    sqlx::query_scalar("SELECT audit_trail_cleanup($1)")
                        .bind(cutoff)
                        .fetch_one(pool),
                )
                .await?;
                Ok(deleted.max(0) as u64)
            }
        }
    }

    /// Entries of one message, oldest first.
    pub async fn audit_for_correlation(
        &self,
        correlation_id: &str,
    ) -> StoreResult<Vec<AuditEntry>> {
        self.audit_where("correlation_id", correlation_id).await
    }

    /// Entries of one kind (`http_request`, `secret_read`...), oldest first.
    pub async fn audit_for_action(&self, action: &str) -> StoreResult<Vec<AuditEntry>> {
        self.audit_where("action", action).await
    }

    /// `column` is one of ours, never input.
    async fn audit_where(&self, column: &'static str, value: &str) -> StoreResult<Vec<AuditEntry>> {
        match self {
            Store::Sqlite(pool) => {
                let rows: Vec<SqliteAuditRow> = timed(
                    sqlx::query_as(&format!(
                        "SELECT {COLUMNS} FROM audit_trail WHERE {column} = ?1 ORDER BY id"
                    ))
                    .bind(value)
                    .fetch_all(pool),
                )
                .await?;
                rows.into_iter().map(SqliteAuditRow::into_entry).collect()
            }
            Store::Postgres(pool) => {
                timed(
                    sqlx::query_as(&format!(
                        "SELECT {COLUMNS} FROM audit_trail WHERE {column} = $1 ORDER BY id"
                    ))
                    .bind(value)
                    .fetch_all(pool),
                )
                .await
            }
        }
    }

    pub async fn count_audit(&self) -> StoreResult<i64> {
        let sql = "SELECT COUNT(*) FROM audit_trail";
        match self {
            Store::Sqlite(pool) => timed(sqlx::query_scalar(sql).fetch_one(pool)).await,
            Store::Postgres(pool) => timed(sqlx::query_scalar(sql).fetch_one(pool)).await,
        }
    }
}

/// SQLite keeps metadata as text.
#[derive(FromRow)]
struct SqliteAuditRow {
    created_at: DateTime<Utc>,
    correlation_id: Option<String>,
    user_id: Option<i64>,
    chat_id: Option<i64>,
    plugin: Option<String>,
    action: String,
    source: String,
    model: Option<String>,
    status: String,
    error: Option<String>,
    duration_ms: Option<f64>,
    metadata: String,
}

impl SqliteAuditRow {
    fn into_entry(self) -> StoreResult<AuditEntry> {
        Ok(AuditEntry {
            created_at: self.created_at,
            correlation_id: self.correlation_id,
            user_id: self.user_id,
            chat_id: self.chat_id,
            plugin: self.plugin,
            action: self.action,
            source: self.source,
            model: self.model,
            status: self.status,
            error: self.error,
            duration_ms: self.duration_ms,
            metadata: Json(serde_json::from_str(&self.metadata)?),
        })
    }
}
