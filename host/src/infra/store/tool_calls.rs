//! `tool_calls`: the assistant's tool log, two rows per call (started,
//! never updated; completed, pointing to it), and `agent_pauses`: turns
//! waiting for the user to allow a tool.

use super::pool::{Store, StoreResult, dialect, on_either, timed};

/// A tool call about to run: its started row.
#[derive(Debug, Clone, PartialEq)]
pub struct StartedToolCall<'a> {
    pub id: &'a str,
    pub correlation_id: &'a str,
    /// The user's message the turn answers, when it can be handled again
    /// (a Telegram update); none for the console and MCP.
    pub turn_key: Option<&'a str>,
    pub chat_id: i64,
    pub user_id: i64,
    pub plugin: &'a str,
    pub tool: &'a str,
    /// The input, as JSON (secrets masked).
    pub input: &'a str,
}

/// One line of `wasmbot tools log`: a started row and its completion, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolLogRow {
    pub id: String,
    pub correlation_id: String,
    pub chat_id: i64,
    pub user_id: i64,
    pub plugin: String,
    pub tool: String,
    pub input: String,
    pub started_ms: i64,
    /// None while running, or when the call never completed.
    pub status: Option<String>,
    pub output: Option<String>,
    pub duration_ms: Option<f64>,
}

/// A completed call of a turn, as a redelivered update reuses it.
#[derive(Debug, Clone, PartialEq)]
pub struct CompletedToolCall {
    pub tool: String,
    pub input: String,
    pub status: String,
    pub output: String,
}

type LogTuple = (
    String,
    String,
    i64,
    i64,
    String,
    String,
    String,
    i64,
    Option<String>,
    Option<String>,
    Option<f64>,
);

impl Store {
    /// Writes a call's started row (before the tool runs).
    pub async fn tool_call_started(&self, call: &StartedToolCall<'_>) -> StoreResult<()> {
        self.tool_call_row(call.id, None, call, call.input, None, None)
            .await
    }

    /// Writes the completion row of the call `started` (which is never updated).
    pub async fn tool_call_finished(
        &self,
        started: &StartedToolCall<'_>,
        status: &str,
        output: &str,
        duration_ms: f64,
    ) -> StoreResult<()> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        self.tool_call_row(
            &id,
            Some(started.id),
            started,
            output,
            Some(status),
            Some(duration_ms),
        )
        .await
    }

    /// One row of the log: a started row (no parent, no status) or the
    /// completion row of `parent`.
    async fn tool_call_row(
        &self,
        id: &str,
        parent: Option<&str>,
        call: &StartedToolCall<'_>,
        payload: &str,
        status: Option<&str>,
        duration_ms: Option<f64>,
    ) -> StoreResult<()> {
        let sql = dialect(
            self,
            "INSERT INTO tool_calls (id, parent_id, correlation_id, turn_key, chat_id, user_id, plugin, tool, payload, status, duration_ms, at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        );
        let now = chrono::Utc::now().timestamp_millis();
        on_either!(self, pool => timed(
            sqlx::query(&sql)
                .bind(id)
                .bind(parent)
                .bind(call.correlation_id)
                .bind(call.turn_key)
                .bind(call.chat_id)
                .bind(call.user_id)
                .bind(call.plugin)
                .bind(call.tool)
                .bind(payload)
                .bind(status)
                .bind(duration_ms)
                .bind(now)
                .execute(pool)
        )
        .await
        .map(|_| ())?);
        Ok(())
    }

    /// The calls of the turn `turn_key` that completed (any status), in the
    /// order they started.
    pub async fn tool_calls_completed(
        &self,
        turn_key: &str,
    ) -> StoreResult<Vec<CompletedToolCall>> {
        let sql = dialect(
            self,
            "SELECT s.tool, s.payload, c.status, c.payload FROM tool_calls s \
             JOIN tool_calls c ON c.parent_id = s.id \
             WHERE s.turn_key = $1 AND s.parent_id IS NULL \
             ORDER BY s.at_ms, s.id",
        );
        let rows: Vec<(String, String, Option<String>, String)> = on_either!(self, pool => timed(
            sqlx::query_as(&sql).bind(turn_key).fetch_all(pool)
        )
        .await?);
        Ok(rows
            .into_iter()
            .map(|(tool, input, status, output)| CompletedToolCall {
                tool,
                input,
                status: status.unwrap_or_default(),
                output,
            })
            .collect())
    }

    /// The newest `limit` calls (of `chat_id`, when given), newest first.
    pub async fn tool_calls_log(
        &self,
        chat_id: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<ToolLogRow>> {
        let sql = dialect(
            self,
            "SELECT s.id, s.correlation_id, s.chat_id, s.user_id, s.plugin, s.tool, s.payload, s.at_ms, \
                    c.status, c.payload, c.duration_ms \
             FROM tool_calls s LEFT JOIN tool_calls c ON c.parent_id = s.id \
             WHERE s.parent_id IS NULL AND ($1 IS NULL OR s.chat_id = $1) \
             ORDER BY s.at_ms DESC, s.id DESC LIMIT $2",
        );
        let sql = match self {
            // Postgres must know the parameter's type.
            Store::Postgres(_) => sql.replace("$1 IS NULL", "$1::BIGINT IS NULL"),
            Store::Sqlite(_) => sql,
        };
        let rows: Vec<LogTuple> = on_either!(self, pool => timed(
            sqlx::query_as(&sql).bind(chat_id).bind(limit).fetch_all(pool)
        )
        .await?);
        Ok(rows
            .into_iter()
            .map(
                |(
                    id,
                    correlation_id,
                    chat_id,
                    user_id,
                    plugin,
                    tool,
                    input,
                    started_ms,
                    status,
                    output,
                    duration_ms,
                )| {
                    ToolLogRow {
                        id,
                        correlation_id,
                        chat_id,
                        user_id,
                        plugin,
                        tool,
                        input,
                        started_ms,
                        status,
                        output,
                        duration_ms,
                    }
                },
            )
            .collect())
    }

    /// Keeps a turn that waits for the user's answer; forgets expired ones.
    pub async fn agent_pause_keep(
        &self,
        id: &str,
        chat_id: i64,
        user_id: i64,
        turn: &str,
        expires_ms: i64,
    ) -> StoreResult<()> {
        let forget = dialect(self, "DELETE FROM agent_pauses WHERE expires_ms < $1");
        let keep = dialect(
            self,
            "INSERT INTO agent_pauses (id, chat_id, user_id, turn, expires_ms) VALUES ($1, $2, $3, $4, $5)",
        );
        let now = chrono::Utc::now().timestamp_millis();
        on_either!(self, pool => {
            timed(sqlx::query(&forget).bind(now).execute(pool)).await?;
            timed(
                sqlx::query(&keep)
                    .bind(id)
                    .bind(chat_id)
                    .bind(user_id)
                    .bind(turn)
                    .bind(expires_ms)
                    .execute(pool),
            )
            .await?;
        });
        Ok(())
    }

    /// Takes the paused turn `id` out (once: a second press finds nothing):
    /// its chat, user, turn and expiry.
    pub async fn agent_pause_take(&self, id: &str) -> StoreResult<Option<(i64, i64, String, i64)>> {
        let sql = dialect(
            self,
            "DELETE FROM agent_pauses WHERE id = $1 RETURNING chat_id, user_id, turn, expires_ms",
        );
        Ok(on_either!(self, pool => timed(
            sqlx::query_as(&sql).bind(id).fetch_optional(pool)
        )
        .await?))
    }
}
