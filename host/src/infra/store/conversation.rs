//! What conversations keep between events: button tokens (`chat_buttons`),
//! the pending question of each chat (`chat_prompts`) and which plugin sent
//! which message (`chat_messages`). Times are Unix seconds.

use super::pool::{Store, StoreResult, dialect, on_either, timed};

/// A button as the host keeps it behind its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredButton {
    pub plugin: String,
    pub chat_id: i64,
    pub data: String,
    pub expires_at: i64,
}

/// The question a chat's next message answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingPrompt {
    pub plugin: String,
    /// Who was asked: in a group only they answer.
    pub user_id: i64,
    pub state: String,
    pub expires_at: i64,
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl Store {
    /// Keeps one button per `(token, data)` of `plugin` in `chat_id` until
    /// `expires_at`, and drops buttons that expired before `forget_before`.
    pub async fn buttons_create(
        &self,
        plugin: &str,
        chat_id: i64,
        buttons: &[(String, String)],
        expires_at: i64,
        forget_before: i64,
    ) -> StoreResult<()> {
        let insert = dialect(
            self,
            "INSERT INTO chat_buttons (token, plugin, chat_id, data, expires_at) VALUES ($1, $2, $3, $4, $5)",
        );
        let purge = dialect(self, "DELETE FROM chat_buttons WHERE expires_at < $1");
        on_either!(self, pool => {
            let mut tx = timed(pool.begin()).await?;
            timed(sqlx::query(&purge).bind(forget_before).execute(&mut *tx)).await?;
            for (token, data) in buttons {
                timed(
                    sqlx::query(&insert)
                        .bind(token)
                        .bind(plugin)
                        .bind(chat_id)
                        .bind(data)
                        .bind(expires_at)
                        .execute(&mut *tx),
                )
                .await?;
            }
            timed(tx.commit()).await?;
        });
        Ok(())
    }

    /// The button behind `token`, expired or not.
    pub async fn button(&self, token: &str) -> StoreResult<Option<StoredButton>> {
        let sql = dialect(
            self,
            "SELECT plugin, chat_id, data, expires_at FROM chat_buttons WHERE token = $1",
        );
        let row: Option<(String, i64, String, i64)> = on_either!(self, pool => timed(
            sqlx::query_as(&sql).bind(token).fetch_optional(pool)
        )
        .await?);
        Ok(row.map(|(plugin, chat_id, data, expires_at)| StoredButton {
            plugin,
            chat_id,
            data,
            expires_at,
        }))
    }

    /// Makes `plugin`'s question the one `chat_id` waits on, replacing any
    /// other, and forgets questions that expired before `now`.
    pub async fn prompt_set(
        &self,
        chat_id: i64,
        prompt: &PendingPrompt,
        now: i64,
    ) -> StoreResult<()> {
        self.put_prompt(chat_id, prompt, now, false).await.map(drop)
    }

    /// Makes `plugin`'s question the one `chat_id` waits on unless another
    /// plugin's question (not expired) is waiting there; true when kept.
    pub async fn prompt_offer(
        &self,
        chat_id: i64,
        prompt: &PendingPrompt,
        now: i64,
    ) -> StoreResult<bool> {
        self.put_prompt(chat_id, prompt, now, true).await
    }

    /// Forgets expired questions, then keeps `prompt` (over another
    /// plugin's only unless `own_only`); true when kept.
    async fn put_prompt(
        &self,
        chat_id: i64,
        prompt: &PendingPrompt,
        now: i64,
        own_only: bool,
    ) -> StoreResult<bool> {
        let purge = dialect(self, "DELETE FROM chat_prompts WHERE expires_at < $1");
        let sql = dialect(
            self,
            &format!(
                "INSERT INTO chat_prompts (chat_id, plugin, user_id, state, expires_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (chat_id) DO UPDATE SET plugin = excluded.plugin, user_id = excluded.user_id,
                     state = excluded.state, expires_at = excluded.expires_at{}",
                if own_only {
                    " WHERE chat_prompts.plugin = excluded.plugin"
                } else {
                    ""
                }
            ),
        );
        let kept = on_either!(self, pool => {
            timed(sqlx::query(&purge).bind(now).execute(pool)).await?;
            timed(
                sqlx::query(&sql)
                    .bind(chat_id)
                    .bind(&prompt.plugin)
                    .bind(prompt.user_id)
                    .bind(&prompt.state)
                    .bind(prompt.expires_at)
                    .execute(pool),
            )
            .await?
            .rows_affected()
        });
        Ok(kept == 1)
    }

    /// The chat's pending question (expired or not).
    pub async fn prompt(&self, chat_id: i64) -> StoreResult<Option<PendingPrompt>> {
        let sql = dialect(
            self,
            "SELECT plugin, user_id, state, expires_at FROM chat_prompts WHERE chat_id = $1",
        );
        let row: Option<(String, i64, String, i64)> = on_either!(self, pool => timed(
            sqlx::query_as(&sql).bind(chat_id).fetch_optional(pool)
        )
        .await?);
        Ok(
            row.map(|(plugin, user_id, state, expires_at)| PendingPrompt {
                plugin,
                user_id,
                state,
                expires_at,
            }),
        )
    }

    /// Leaves the chat's pending question; returns whether there was one.
    pub async fn prompt_clear(&self, chat_id: i64) -> StoreResult<bool> {
        let sql = dialect(self, "DELETE FROM chat_prompts WHERE chat_id = $1");
        let done = on_either!(self, pool => timed(
            sqlx::query(&sql).bind(chat_id).execute(pool)
        )
        .await?
        .rows_affected());
        Ok(done > 0)
    }

    /// Notes that `plugin` sent `message_id` in `chat_id`, and forgets
    /// messages sent before `forget_before`.
    pub async fn message_sent(
        &self,
        chat_id: i64,
        message_id: i64,
        plugin: &str,
        name: Option<&str>,
        now: i64,
        forget_before: i64,
    ) -> StoreResult<()> {
        let purge = dialect(self, "DELETE FROM chat_messages WHERE sent_at < $1");
        let sql = dialect(
            self,
            "INSERT INTO chat_messages (chat_id, message_id, plugin, sent_at, name) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (chat_id, message_id) DO UPDATE SET plugin = excluded.plugin,
                 sent_at = excluded.sent_at, name = excluded.name",
        );
        on_either!(self, pool => {
            timed(sqlx::query(&purge).bind(forget_before).execute(pool)).await?;
            timed(
                sqlx::query(&sql)
                    .bind(chat_id)
                    .bind(message_id)
                    .bind(plugin)
                    .bind(now)
                    .bind(name)
                    .execute(pool),
            )
            .await?;
        });
        Ok(())
    }

    /// The latest message `plugin` sent in `chat_id` under `name`.
    pub async fn message_named(
        &self,
        chat_id: i64,
        plugin: &str,
        name: &str,
    ) -> StoreResult<Option<i64>> {
        let sql = dialect(
            self,
            "SELECT message_id FROM chat_messages WHERE chat_id = $1 AND plugin = $2 AND name = $3
             ORDER BY sent_at DESC, message_id DESC LIMIT 1",
        );
        Ok(on_either!(self, pool => timed(
            sqlx::query_scalar(&sql)
                .bind(chat_id)
                .bind(plugin)
                .bind(name)
                .fetch_optional(pool)
        )
        .await?))
    }

    /// Which plugin sent `message_id`, if the host knows.
    pub async fn message_sender(
        &self,
        chat_id: i64,
        message_id: i64,
    ) -> StoreResult<Option<String>> {
        let sql = dialect(
            self,
            "SELECT plugin FROM chat_messages WHERE chat_id = $1 AND message_id = $2",
        );
        Ok(on_either!(self, pool => timed(
            sqlx::query_scalar(&sql).bind(chat_id).bind(message_id).fetch_optional(pool)
        )
        .await?))
    }
}
