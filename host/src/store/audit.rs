//! `audit_trail`: append-only. Inserts come in batches from the audit writer;
//! the only delete is the retention cleanup.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{FromRow, QueryBuilder};

use super::{Store, StoreResult, timed};

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
}

const COLUMNS: &str = "created_at, correlation_id, user_id, chat_id, plugin, action, source, model, status, error, duration_ms, metadata";

/// Parameters per row; batches stay under SQLite's 32766 bind limit.
const BIND_PER_ROW: usize = 12;
pub const MAX_BATCH: usize = 2_000;

impl Store {
    /// Inserts a batch in one statement.
    pub async fn insert_audit(&self, entries: &[AuditEntry]) -> StoreResult<()> {
        for chunk in entries.chunks(MAX_BATCH.min(30_000 / BIND_PER_ROW)) {
            match self {
                Store::Sqlite(pool) => {
                    let mut query =
                        QueryBuilder::new(format!("INSERT INTO audit_trail ({COLUMNS}) "));
                    query.push_values(chunk, |mut row, e| {
                        row.push_bind(e.created_at)
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
                    timed(query.build().execute(pool)).await?;
                }
                Store::Postgres(pool) => {
                    let mut query =
                        QueryBuilder::new(format!("INSERT INTO audit_trail ({COLUMNS}) "));
                    query.push_values(chunk, |mut row, e| {
                        row.push_bind(e.created_at)
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
                    timed(query.build().execute(pool)).await?;
                }
            }
        }
        Ok(())
    }

    /// Deletes entries created before `cutoff`; returns how many.
    pub async fn cleanup_audit(&self, cutoff: DateTime<Utc>) -> StoreResult<u64> {
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
        match self {
            Store::Sqlite(pool) => {
                let rows: Vec<SqliteAuditRow> = timed(
                    sqlx::query_as(&format!(
                        "SELECT {COLUMNS} FROM audit_trail WHERE correlation_id = ?1 ORDER BY id"
                    ))
                    .bind(correlation_id)
                    .fetch_all(pool),
                )
                .await?;
                rows.into_iter().map(SqliteAuditRow::into_entry).collect()
            }
            Store::Postgres(pool) => {
                timed(
                    sqlx::query_as(&format!(
                        "SELECT {COLUMNS} FROM audit_trail WHERE correlation_id = $1 ORDER BY id"
                    ))
                    .bind(correlation_id)
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
