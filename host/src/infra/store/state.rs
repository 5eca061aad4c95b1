//! `plugin_state`: JSON values by key, always scoped to one plugin.

use serde_json::Value;
use sqlx::types::Json;

use super::pool::{Store, StoreResult, dialect, now, on_either, timed};

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
        let old_size = dialect(
            self,
            "SELECT size_bytes FROM plugin_state WHERE plugin = $1 AND key = $2",
        );
        // The value is JSONB on Postgres, JSON text on SQLite.
        let upsert = dialect(
            self,
            &format!(
                "INSERT INTO plugin_state (plugin, key, value, updated_at, size_bytes) VALUES ($1, $2, {}, $4, $5)
                 ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value,
                     updated_at = excluded.updated_at, size_bytes = excluded.size_bytes",
                match self {
                    Store::Sqlite(_) => "$3",
                    Store::Postgres(_) => "CAST($3 AS JSONB)",
                }
            ),
        );
        let set_usage = dialect(
            self,
            "UPDATE plugin_state_usage SET keys = $2, bytes = $3 WHERE plugin = $1",
        );
        let (create_usage, read_usage) = self.usage_queries();
        on_either!(self, pool => {
            let mut tx = timed(pool.begin_with(self.write_begin())).await?;
            timed(sqlx::query(&create_usage).bind(plugin).execute(&mut *tx)).await?;
            let row: (i64, i64) =
                timed(sqlx::query_as(&read_usage).bind(plugin).fetch_one(&mut *tx)).await?;
            let usage = StateUsage::from_row(row);
            let old: Option<i64> = timed(
                sqlx::query_scalar(&old_size)
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
                sqlx::query(&upsert)
                    .bind(plugin)
                    .bind(key)
                    .bind(&text)
                    .bind(now())
                    .bind(size)
                    .execute(&mut *tx),
            )
            .await?;
            timed(
                sqlx::query(&set_usage)
                    .bind(plugin)
                    .bind(after.keys as i64)
                    .bind(after.bytes as i64)
                    .execute(&mut *tx),
            )
            .await?;
            timed(tx.commit()).await?;
        });
        Ok(Ok(()))
    }

    /// Returns whether the key existed.
    pub async fn delete_state(&self, plugin: &str, key: &str) -> StoreResult<bool> {
        let delete = dialect(
            self,
            "DELETE FROM plugin_state WHERE plugin = $1 AND key = $2 RETURNING size_bytes",
        );
        let free = dialect(
            self,
            "UPDATE plugin_state_usage SET keys = keys - 1, bytes = bytes - $2 WHERE plugin = $1",
        );
        let freed: Option<i64> = on_either!(self, pool => {
            let mut tx = timed(pool.begin_with(self.write_begin())).await?;
            let freed = timed(
                sqlx::query_scalar(&delete)
                    .bind(plugin)
                    .bind(key)
                    .fetch_optional(&mut *tx),
            )
            .await?;
            if let Some(size) = freed {
                timed(sqlx::query(&free).bind(plugin).bind(size).execute(&mut *tx)).await?;
            }
            timed(tx.commit()).await?;
            freed
        });
        Ok(freed.is_some())
    }

    /// Creating the plugin's usage row when missing, and reading it locked
    /// until commit (on SQLite the transaction already holds the write lock).
    fn usage_queries(&self) -> (String, String) {
        let create = dialect(
            self,
            "INSERT INTO plugin_state_usage (plugin, keys, bytes) VALUES ($1, 0, 0) ON CONFLICT DO NOTHING",
        );
        let read = match self {
            Store::Sqlite(_) => "SELECT keys, bytes FROM plugin_state_usage WHERE plugin = ?1",
            Store::Postgres(_) => {
                "SELECT keys, bytes FROM plugin_state_usage WHERE plugin = $1 FOR UPDATE"
            }
        };
        (create, read.to_string())
    }

    /// SQLite takes the write lock first (IMMEDIATE), so two writers never
    /// both read the usage and then both write; Postgres locks the usage row.
    fn write_begin(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "BEGIN IMMEDIATE",
            Store::Postgres(_) => "BEGIN",
        }
    }

    /// What `plugin`'s state holds now (for `wasmbot plugins list`).
    pub async fn state_usage(&self, plugin: &str) -> StoreResult<StateUsage> {
        let sql = dialect(
            self,
            "SELECT keys, bytes FROM plugin_state_usage WHERE plugin = $1",
        );
        let row: Option<(i64, i64)> = on_either!(self, pool => timed(
            sqlx::query_as(&sql).bind(plugin).fetch_optional(pool)
        )
        .await?);
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
