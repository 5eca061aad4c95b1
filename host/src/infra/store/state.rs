//! `plugin_state`: JSON values by key, always scoped to one plugin.

use serde_json::Value;
use sqlx::types::Json;

use super::pool::{Store, StoreResult, now, timed};

impl Store {
    pub async fn get_state(&self, plugin: &str, key: &str) -> StoreResult<Option<Value>> {
        match self {
            Store::Sqlite(pool) => {
                let text: Option<String> = timed(
                    sqlx::query_scalar(
                        "SELECT value FROM plugin_state WHERE plugin = ?1 AND key = ?2",
                    )
                    .bind(plugin)
                    .bind(key)
                    .fetch_optional(pool),
                )
                .await?;
                Ok(text.map(|t| serde_json::from_str(&t)).transpose()?)
            }
            Store::Postgres(pool) => {
                let value: Option<Json<Value>> = timed(
                    sqlx::query_scalar(
                        "SELECT value FROM plugin_state WHERE plugin = $1 AND key = $2",
                    )
                    .bind(plugin)
                    .bind(key)
                    .fetch_optional(pool),
                )
                .await?;
                Ok(value.map(|v| v.0))
            }
        }
    }

    /// Stores `value` under `key` with no quota (the host's own writes, tests).
    pub async fn set_state(&self, plugin: &str, key: &str, value: &Value) -> StoreResult<()> {
        self.set_state_within(plugin, key, value, StateQuota::UNLIMITED)
            .await
            .map(drop)
    }

    /// Stores `value` under `key` unless the plugin's state would then hold
    /// more than `quota`; the check and the write are one transaction, with
    /// the plugin's usage row locked, so replicas sharing the database agree.
    pub async fn set_state_within(
        &self,
        plugin: &str,
        key: &str,
        value: &Value,
        quota: StateQuota,
    ) -> StoreResult<Result<(), OverQuota>> {
        let text = value.to_string();
        let size = (key.len() + text.len()) as i64;
        let at = now();
        match self {
            Store::Sqlite(pool) => {
                // IMMEDIATE: take the write lock first, so two writers never
                // both read the usage and then both write.
                let mut tx = timed(pool.begin_with("BEGIN IMMEDIATE")).await?;
                let usage = usage_sqlite(&mut tx, plugin).await?;
                let old: Option<i64> = timed(
                    sqlx::query_scalar(
                        "SELECT size_bytes FROM plugin_state WHERE plugin = ?1 AND key = ?2",
                    )
                    .bind(plugin)
                    .bind(key)
                    .fetch_optional(&mut *tx),
                )
                .await?;
                let after = usage.after_write(old, size);
                if let Err(over) = quota.check(after) {
                    return Ok(Err(over));
                }
                timed(
                    sqlx::query(
                        "INSERT INTO plugin_state (plugin, key, value, updated_at, size_bytes) VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value,
                             updated_at = excluded.updated_at, size_bytes = excluded.size_bytes",
                    )
                    .bind(plugin)
                    .bind(key)
                    .bind(&text)
                    .bind(at)
                    .bind(size)
                    .execute(&mut *tx),
                )
                .await?;
                timed(
                    sqlx::query(
                        "UPDATE plugin_state_usage SET keys = ?2, bytes = ?3 WHERE plugin = ?1",
                    )
                    .bind(plugin)
                    .bind(after.keys as i64)
                    .bind(after.bytes as i64)
                    .execute(&mut *tx),
                )
                .await?;
                timed(tx.commit()).await?;
            }
            Store::Postgres(pool) => {
                let mut tx = timed(pool.begin()).await?;
                let usage = usage_postgres(&mut tx, plugin).await?;
                let old: Option<i64> = timed(
                    sqlx::query_scalar(
                        "SELECT size_bytes FROM plugin_state WHERE plugin = $1 AND key = $2",
                    )
                    .bind(plugin)
                    .bind(key)
                    .fetch_optional(&mut *tx),
                )
                .await?;
                let after = usage.after_write(old, size);
                if let Err(over) = quota.check(after) {
                    return Ok(Err(over));
                }
                timed(
                    sqlx::query(
                        "INSERT INTO plugin_state (plugin, key, value, updated_at, size_bytes) VALUES ($1, $2, $3, $4, $5)
                         ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value,
                             updated_at = excluded.updated_at, size_bytes = excluded.size_bytes",
                    )
                    .bind(plugin)
                    .bind(key)
                    .bind(Json(value))
                    .bind(at)
                    .bind(size)
                    .execute(&mut *tx),
                )
                .await?;
                timed(
                    sqlx::query(
                        "UPDATE plugin_state_usage SET keys = $2, bytes = $3 WHERE plugin = $1",
                    )
                    .bind(plugin)
                    .bind(after.keys as i64)
                    .bind(after.bytes as i64)
                    .execute(&mut *tx),
                )
                .await?;
                timed(tx.commit()).await?;
            }
        }
        Ok(Ok(()))
    }

    /// Returns whether the key existed.
    pub async fn delete_state(&self, plugin: &str, key: &str) -> StoreResult<bool> {
        let freed: Option<i64> = match self {
            Store::Sqlite(pool) => {
                let mut tx = timed(pool.begin_with("BEGIN IMMEDIATE")).await?;
                let freed = timed(
                    sqlx::query_scalar(
                        "DELETE FROM plugin_state WHERE plugin = ?1 AND key = ?2 RETURNING size_bytes",
                    )
                    .bind(plugin)
                    .bind(key)
                    .fetch_optional(&mut *tx),
                )
                .await?;
                if let Some(size) = freed {
                    timed(
                        sqlx::query(
                            "UPDATE plugin_state_usage SET keys = keys - 1, bytes = bytes - ?2 WHERE plugin = ?1",
                        )
                        .bind(plugin)
                        .bind(size)
                        .execute(&mut *tx),
                    )
                    .await?;
                }
                timed(tx.commit()).await?;
                freed
            }
            Store::Postgres(pool) => {
                let mut tx = timed(pool.begin()).await?;
                let freed = timed(
                    sqlx::query_scalar(
                        "DELETE FROM plugin_state WHERE plugin = $1 AND key = $2 RETURNING size_bytes",
                    )
                    .bind(plugin)
                    .bind(key)
                    .fetch_optional(&mut *tx),
                )
                .await?;
                if let Some(size) = freed {
                    timed(
                        sqlx::query(
                            "UPDATE plugin_state_usage SET keys = keys - 1, bytes = bytes - $2 WHERE plugin = $1",
                        )
                        .bind(plugin)
                        .bind(size)
                        .execute(&mut *tx),
                    )
                    .await?;
                }
                timed(tx.commit()).await?;
                freed
            }
        };
        Ok(freed.is_some())
    }

    /// What `plugin`'s state holds now (for `wasmbot plugins list`).
    pub async fn state_usage(&self, plugin: &str) -> StoreResult<StateUsage> {
        let row: Option<(i64, i64)> = match self {
            Store::Sqlite(pool) => {
                timed(
                    sqlx::query_as("SELECT keys, bytes FROM plugin_state_usage WHERE plugin = ?1")
                        .bind(plugin)
                        .fetch_optional(pool),
                )
                .await?
            }
            Store::Postgres(pool) => {
                timed(
                    sqlx::query_as("SELECT keys, bytes FROM plugin_state_usage WHERE plugin = $1")
                        .bind(plugin)
                        .fetch_optional(pool),
                )
                .await?
            }
        };
        Ok(row.map_or(StateUsage::default(), StateUsage::from_row))
    }

    /// Keys of `plugin` starting with `prefix`, sorted, at most `limit`.
    pub async fn list_state(
        &self,
        plugin: &str,
        prefix: &str,
        limit: u32,
    ) -> StoreResult<Vec<String>> {
        match self {
            Store::Sqlite(pool) => {
                timed(
                    sqlx::query_scalar(
                        "SELECT key FROM plugin_state WHERE plugin = ?1 AND substr(key, 1, length(?2)) = ?2
                         ORDER BY key LIMIT ?3",
                    )
                    .bind(plugin)
                    .bind(prefix)
                    .bind(i64::from(limit))
                    .fetch_all(pool),
                )
                .await
            }
            Store::Postgres(pool) => {
                timed(
                    sqlx::query_scalar(
                        "SELECT key FROM plugin_state WHERE plugin = $1 AND left(key, length($2)) = $2
                         ORDER BY key COLLATE \"C\" LIMIT $3",
                    )
                    .bind(plugin)
                    .bind(prefix)
                    .bind(i64::from(limit))
                    .fetch_all(pool),
                )
                .await
            }
        }
    }
}

/// How much a plugin's state holds: keys, and bytes of keys and JSON text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateUsage {
    pub keys: u64,
    pub bytes: u64,
}

impl StateUsage {
    fn from_row((keys, bytes): (i64, i64)) -> Self {
        Self {
            keys: keys.max(0) as u64,
            bytes: bytes.max(0) as u64,
        }
    }

    /// The usage once a value of `size` bytes replaced one of `old` (none: a new key).
    fn after_write(self, old: Option<i64>, size: i64) -> Self {
        let (keys, old) = match old {
            Some(old) => (self.keys, old.max(0) as u64),
            None => (self.keys + 1, 0),
        };
        Self {
            keys,
            bytes: (self.bytes + size.max(0) as u64).saturating_sub(old),
        }
    }
}

/// The most a plugin's state may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateQuota {
    pub keys: u64,
    pub bytes: u64,
}

impl StateQuota {
    pub const UNLIMITED: Self = Self {
        keys: u64::MAX,
        bytes: u64::MAX,
    };

    fn check(self, after: StateUsage) -> Result<(), OverQuota> {
        if after.keys > self.keys || after.bytes > self.bytes {
            return Err(OverQuota {
                quota: self,
                would_be: after,
            });
        }
        Ok(())
    }
}

/// A write refused because the plugin's state would pass its quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverQuota {
    pub quota: StateQuota,
    pub would_be: StateUsage,
}

impl std::fmt::Display for OverQuota {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "quota exceeded: this plugin may keep {} keys and {} KiB of state; the write would make {} keys and {} KiB (delete some, or the operator raises the quota)",
            self.quota.keys,
            self.quota.bytes >> 10,
            self.would_be.keys,
            self.would_be.bytes.div_ceil(1024)
        )
    }
}

/// The plugin's usage row, created empty when missing.
async fn usage_sqlite(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    plugin: &str,
) -> StoreResult<StateUsage> {
    timed(
        sqlx::query(
            "INSERT INTO plugin_state_usage (plugin, keys, bytes) VALUES (?1, 0, 0) ON CONFLICT DO NOTHING",
        )
        .bind(plugin)
        .execute(&mut **tx),
    )
    .await?;
    let row: (i64, i64) = timed(
        sqlx::query_as("SELECT keys, bytes FROM plugin_state_usage WHERE plugin = ?1")
            .bind(plugin)
            .fetch_one(&mut **tx),
    )
    .await?;
    Ok(StateUsage::from_row(row))
}

/// The plugin's usage row, created empty when missing, locked until commit.
async fn usage_postgres(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    plugin: &str,
) -> StoreResult<StateUsage> {
    timed(
        sqlx::query(
            "INSERT INTO plugin_state_usage (plugin, keys, bytes) VALUES ($1, 0, 0) ON CONFLICT DO NOTHING",
        )
        .bind(plugin)
        .execute(&mut **tx),
    )
    .await?;
    let row: (i64, i64) = timed(
        sqlx::query_as("SELECT keys, bytes FROM plugin_state_usage WHERE plugin = $1 FOR UPDATE")
            .bind(plugin)
            .fetch_one(&mut **tx),
    )
    .await?;
    Ok(StateUsage::from_row(row))
}
