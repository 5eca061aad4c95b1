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

    pub async fn set_state(&self, plugin: &str, key: &str, value: &Value) -> StoreResult<()> {
        let at = now();
        match self {
            Store::Sqlite(pool) => timed(
                sqlx::query(
                    "INSERT INTO plugin_state (plugin, key, value, updated_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                )
                .bind(plugin)
                .bind(key)
                .bind(value.to_string())
                .bind(at)
                .execute(pool),
            )
            .await
            .map(drop),
            Store::Postgres(pool) => timed(
                sqlx::query(
                    "INSERT INTO plugin_state (plugin, key, value, updated_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                )
                .bind(plugin)
                .bind(key)
                .bind(Json(value))
                .bind(at)
                .execute(pool),
            )
            .await
            .map(drop),
        }
    }

    /// Returns whether the key existed.
    pub async fn delete_state(&self, plugin: &str, key: &str) -> StoreResult<bool> {
        let result = match self {
            Store::Sqlite(pool) => timed(
                sqlx::query("DELETE FROM plugin_state WHERE plugin = ?1 AND key = ?2")
                    .bind(plugin)
                    .bind(key)
                    .execute(pool),
            )
            .await?
            .rows_affected(),
            Store::Postgres(pool) => timed(
                sqlx::query("DELETE FROM plugin_state WHERE plugin = $1 AND key = $2")
                    .bind(plugin)
                    .bind(key)
                    .execute(pool),
            )
            .await?
            .rows_affected(),
        };
        Ok(result > 0)
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
