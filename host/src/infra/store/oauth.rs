//! `oauth_credentials`: each OAuth 2 credential's provider and token
//! status. Its tokens and client secret are one encrypted credential,
//! `oauth:NAME`, written in the same transaction as the row (a rotated
//! refresh token is never saved without its access token, or lost).

use sqlx::FromRow;

use super::credentials::{StoredCredential, UPSERT_POSTGRES, UPSERT_SQLITE};
use super::pool::{Store, StoreResult, dialect, now, on_either, timed};

#[derive(Debug, Clone, FromRow)]
pub struct OAuthRow {
    pub name: String,
    pub provider: String,
    pub auth_url: String,
    pub token_url: String,
    pub client_id: String,
    pub scopes: String,
    pub expires_ms: Option<i64>,
    pub refreshed_ms: i64,
    /// `ok` or `reauthorize`.
    pub status: String,
    pub detail: Option<String>,
    pub refreshing_until_ms: Option<i64>,
    pub created_ms: i64,
}

const COLUMNS: &str = "name, provider, auth_url, token_url, client_id, scopes, expires_ms, \
     refreshed_ms, status, detail, refreshing_until_ms, created_ms";

impl Store {
    /// Adds (or replaces, after a new authorization) a credential: its row
    /// and its encrypted tokens, together.
    pub async fn oauth_put(&self, row: &OAuthRow, tokens: &StoredCredential) -> StoreResult<()> {
        let sql = dialect(
            self,
            "INSERT INTO oauth_credentials (name, provider, auth_url, token_url, client_id, scopes, \
             expires_ms, refreshed_ms, status, detail, refreshing_until_ms, created_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'ok', NULL, NULL, $9) \
             ON CONFLICT (name) DO UPDATE SET provider = excluded.provider, \
             auth_url = excluded.auth_url, token_url = excluded.token_url, \
             client_id = excluded.client_id, scopes = excluded.scopes, \
             expires_ms = excluded.expires_ms, refreshed_ms = excluded.refreshed_ms, \
             status = 'ok', detail = NULL, refreshing_until_ms = NULL, refresh_holder = NULL",
        );
        let upsert = upsert_sql(self);
        let at = now();
        on_either!(self, pool => {
            let mut tx = pool.begin().await?;
            timed(
                sqlx::query(&sql)
                    .bind(&row.name)
                    .bind(&row.provider)
                    .bind(&row.auth_url)
                    .bind(&row.token_url)
                    .bind(&row.client_id)
                    .bind(&row.scopes)
                    .bind(row.expires_ms)
                    .bind(row.refreshed_ms)
                    .bind(row.created_ms)
                    .execute(&mut *tx),
            )
            .await?;
            timed(bind_credential(sqlx::query(upsert), tokens, at).execute(&mut *tx)).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    pub async fn oauth_get(&self, name: &str) -> StoreResult<Option<OAuthRow>> {
        let sql = dialect(
            self,
            &format!("SELECT {COLUMNS} FROM oauth_credentials WHERE name = $1"),
        );
        on_either!(self, pool => timed(sqlx::query_as(&sql).bind(name).fetch_optional(pool)).await)
    }

    pub async fn oauth_list(&self) -> StoreResult<Vec<OAuthRow>> {
        let sql = format!("SELECT {COLUMNS} FROM oauth_credentials ORDER BY name");
        on_either!(self, pool => timed(sqlx::query_as(&sql).fetch_all(pool)).await)
    }

    /// Removes the row and its tokens; false when there was no such credential.
    pub async fn oauth_remove(&self, name: &str, tokens_name: &str) -> StoreResult<bool> {
        let row = dialect(self, "DELETE FROM oauth_credentials WHERE name = $1");
        let tokens = dialect(self, "DELETE FROM credentials WHERE name = $1");
        let removed = on_either!(self, pool => {
            let mut tx = pool.begin().await?;
            let removed = timed(sqlx::query(&row).bind(name).execute(&mut *tx))
                .await?
                .rows_affected();
            timed(sqlx::query(&tokens).bind(tokens_name).execute(&mut *tx)).await?;
            tx.commit().await?;
            removed
        });
        Ok(removed == 1)
    }

    /// Takes the refresh lease for `holder` until `until_ms` unless someone
    /// else holds one that has not run out; true when this caller may
    /// refresh. Only `holder` may then save the result or release it.
    pub async fn oauth_lease(
        &self,
        name: &str,
        holder: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> StoreResult<bool> {
        let sql = dialect(
            self,
            "UPDATE oauth_credentials SET refreshing_until_ms = $2, refresh_holder = $4 \
             WHERE name = $1 AND (refreshing_until_ms IS NULL OR refreshing_until_ms <= $3)",
        );
        let taken = on_either!(self, pool => timed(
            sqlx::query(&sql).bind(name).bind(until_ms).bind(now_ms).bind(holder).execute(pool),
        )
        .await?
        .rows_affected());
        Ok(taken == 1)
    }

    /// A refresh succeeded: the new tokens and their expiry, and the lease
    /// released, in one transaction — only while `holder` still holds the
    /// lease. False (nothing written) when it ran out and another refresh
    /// took it over: that one's tokens are the newer ones.
    pub async fn oauth_refreshed(
        &self,
        name: &str,
        holder: &str,
        tokens: &StoredCredential,
        expires_ms: Option<i64>,
        refreshed_ms: i64,
    ) -> StoreResult<bool> {
        let sql = dialect(
            self,
            "UPDATE oauth_credentials SET expires_ms = $2, refreshed_ms = $3, status = 'ok', \
             detail = NULL, refreshing_until_ms = NULL, refresh_holder = NULL \
             WHERE name = $1 AND refresh_holder = $4",
        );
        let upsert = upsert_sql(self);
        let at = now();
        let saved = on_either!(self, pool => {
            let mut tx = pool.begin().await?;
            let held = timed(
                sqlx::query(&sql)
                    .bind(name)
                    .bind(expires_ms)
                    .bind(refreshed_ms)
                    .bind(holder)
                    .execute(&mut *tx),
            )
            .await?
            .rows_affected()
                == 1;
            if held {
                timed(bind_credential(sqlx::query(upsert), tokens, at).execute(&mut *tx)).await?;
                tx.commit().await?;
            } else {
                tx.rollback().await?;
            }
            held
        });
        Ok(saved)
    }

    /// Releases `holder`'s lease, recording `status` and why (a refused or
    /// failed refresh; `status` stays `ok` for a failure worth retrying).
    /// False (nothing written) when the lease is no longer `holder`'s.
    pub async fn oauth_release(
        &self,
        name: &str,
        holder: &str,
        status: &str,
        detail: Option<&str>,
    ) -> StoreResult<bool> {
        let sql = dialect(
            self,
            "UPDATE oauth_credentials SET status = $2, detail = $3, refreshing_until_ms = NULL, \
             refresh_holder = NULL WHERE name = $1 AND refresh_holder = $4",
        );
        let released = on_either!(self, pool => timed(
            sqlx::query(&sql).bind(name).bind(status).bind(detail).bind(holder).execute(pool),
        )
        .await?
        .rows_affected());
        Ok(released == 1)
    }
}

fn upsert_sql(store: &Store) -> &'static str {
    match store {
        Store::Sqlite(_) => UPSERT_SQLITE,
        Store::Postgres(_) => UPSERT_POSTGRES,
    }
}

fn bind_credential<'q, DB>(
    query: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
    credential: &'q StoredCredential,
    at: chrono::DateTime<chrono::Utc>,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    DB: sqlx::Database,
    String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Vec<u8>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i32: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    chrono::DateTime<chrono::Utc>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    query
        .bind(&credential.name)
        .bind(&credential.ciphertext)
        .bind(&credential.nonce)
        .bind(credential.key_version)
        .bind(at)
}
