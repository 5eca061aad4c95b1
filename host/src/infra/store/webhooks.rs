//! `webhooks`: the inbound hooks the operator added (`wasmbot hooks add`).
//! Their signing secrets live in the vault, not here.

use sqlx::FromRow;

use super::pool::{Store, StoreResult, dialect, on_either, timed};

#[derive(Debug, Clone, FromRow)]
pub struct StoredWebhook {
    pub plugin: String,
    pub name: String,
    /// None: the admin chat.
    pub chat_id: Option<i64>,
    pub created_ms: i64,
}

impl Store {
    /// Adds (or re-targets) a hook.
    pub async fn webhook_put(
        &self,
        plugin: &str,
        name: &str,
        chat_id: Option<i64>,
    ) -> StoreResult<()> {
        let sql = dialect(
            self,
            "INSERT INTO webhooks (plugin, name, chat_id, created_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (plugin, name) DO UPDATE SET chat_id = excluded.chat_id",
        );
        let now = chrono::Utc::now().timestamp_millis();
        on_either!(self, pool => timed(
            sqlx::query(&sql).bind(plugin).bind(name).bind(chat_id).bind(now).execute(pool),
        )
        .await
        .map(drop))
    }

    pub async fn webhook_get(
        &self,
        plugin: &str,
        name: &str,
    ) -> StoreResult<Option<StoredWebhook>> {
        let sql = dialect(
            self,
            "SELECT plugin, name, chat_id, created_ms FROM webhooks WHERE plugin = $1 AND name = $2",
        );
        on_either!(self, pool => timed(
            sqlx::query_as(&sql).bind(plugin).bind(name).fetch_optional(pool),
        )
        .await)
    }

    pub async fn webhook_list(&self) -> StoreResult<Vec<StoredWebhook>> {
        let sql = "SELECT plugin, name, chat_id, created_ms FROM webhooks ORDER BY plugin, name";
        on_either!(self, pool => timed(sqlx::query_as(sql).fetch_all(pool)).await)
    }

    /// False when there was no such hook.
    pub async fn webhook_delete(&self, plugin: &str, name: &str) -> StoreResult<bool> {
        let sql = dialect(self, "DELETE FROM webhooks WHERE plugin = $1 AND name = $2");
        let deleted = on_either!(self, pool => timed(
            sqlx::query(&sql).bind(plugin).bind(name).execute(pool),
        )
        .await?
        .rows_affected());
        Ok(deleted == 1)
    }
}
