//! `credentials`: encrypted secrets. This module stores bytes; encryption is
//! the vault's job (`crate::infra::vault`).

use chrono::{DateTime, Utc};
use sqlx::FromRow;

use super::pool::{Store, StoreResult, now, timed};

#[derive(Debug, Clone, FromRow)]
pub struct StoredCredential {
    pub name: String,
    pub ciphertext: Vec<u8>,
    pub nonce: Vec<u8>,
    pub key_version: i32,
}

/// What `secrets list` shows: never the value.
#[derive(Debug, Clone, FromRow)]
pub struct CredentialInfo {
    pub name: String,
    pub key_version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub(super) const UPSERT_SQLITE: &str =
    "INSERT INTO credentials (name, ciphertext, nonce, key_version, created_at, updated_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?5)
     ON CONFLICT (name) DO UPDATE SET ciphertext = excluded.ciphertext, nonce = excluded.nonce,
         key_version = excluded.key_version, updated_at = excluded.updated_at";
pub(super) const UPSERT_POSTGRES: &str =
    "INSERT INTO credentials (name, ciphertext, nonce, key_version, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $5)
     ON CONFLICT (name) DO UPDATE SET ciphertext = excluded.ciphertext, nonce = excluded.nonce,
         key_version = excluded.key_version, updated_at = excluded.updated_at";

impl Store {
    pub async fn put_credential(&self, credential: &StoredCredential) -> StoreResult<()> {
        let at = now();
        match self {
            Store::Sqlite(pool) => timed(
                sqlx::query(UPSERT_SQLITE)
                    .bind(&credential.name)
                    .bind(&credential.ciphertext)
                    .bind(&credential.nonce)
                    .bind(credential.key_version)
                    .bind(at)
                    .execute(pool),
            )
            .await
            .map(drop),
            Store::Postgres(pool) => timed(
                sqlx::query(UPSERT_POSTGRES)
                    .bind(&credential.name)
                    .bind(&credential.ciphertext)
                    .bind(&credential.nonce)
                    .bind(credential.key_version)
                    .bind(at)
                    .execute(pool),
            )
            .await
            .map(drop),
        }
    }

    pub async fn get_credential(&self, name: &str) -> StoreResult<Option<StoredCredential>> {
        match self {
            Store::Sqlite(pool) => timed(
                sqlx::query_as(
                    "SELECT name, ciphertext, nonce, key_version FROM credentials WHERE name = ?1",
                )
                .bind(name)
                .fetch_optional(pool),
            )
            .await,
            Store::Postgres(pool) => timed(
                sqlx::query_as(
                    "SELECT name, ciphertext, nonce, key_version FROM credentials WHERE name = $1",
                )
                .bind(name)
                .fetch_optional(pool),
            )
            .await,
        }
    }

    pub async fn list_credentials(&self) -> StoreResult<Vec<CredentialInfo>> {
        let sql = "SELECT name, key_version, created_at, updated_at FROM credentials ORDER BY name";
        match self {
            Store::Sqlite(pool) => timed(sqlx::query_as(sql).fetch_all(pool)).await,
            Store::Postgres(pool) => timed(sqlx::query_as(sql).fetch_all(pool)).await,
        }
    }

    /// Returns whether the credential existed.
    pub async fn delete_credential(&self, name: &str) -> StoreResult<bool> {
        let affected = match self {
            Store::Sqlite(pool) => timed(
                sqlx::query("DELETE FROM credentials WHERE name = ?1")
                    .bind(name)
                    .execute(pool),
            )
            .await?
            .rows_affected(),
            Store::Postgres(pool) => timed(
                sqlx::query("DELETE FROM credentials WHERE name = $1")
                    .bind(name)
                    .execute(pool),
            )
            .await?
            .rows_affected(),
        };
        Ok(affected > 0)
    }

    pub async fn all_credentials(&self) -> StoreResult<Vec<StoredCredential>> {
        let sql = "SELECT name, ciphertext, nonce, key_version FROM credentials ORDER BY name";
        match self {
            Store::Sqlite(pool) => timed(sqlx::query_as(sql).fetch_all(pool)).await,
            Store::Postgres(pool) => timed(sqlx::query_as(sql).fetch_all(pool)).await,
        }
    }

    /// Writes every credential in one transaction: all or nothing (key rotation).
    pub async fn replace_credentials(&self, credentials: &[StoredCredential]) -> StoreResult<()> {
        let at = now();
        match self {
            Store::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                for credential in credentials {
                    timed(
                        sqlx::query(UPSERT_SQLITE)
                            .bind(&credential.name)
                            .bind(&credential.ciphertext)
                            .bind(&credential.nonce)
                            .bind(credential.key_version)
                            .bind(at)
                            .execute(&mut *tx),
                    )
                    .await?;
                }
                tx.commit().await?;
            }
            Store::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                for credential in credentials {
                    timed(
                        sqlx::query(UPSERT_POSTGRES)
                            .bind(&credential.name)
                            .bind(&credential.ciphertext)
                            .bind(&credential.nonce)
                            .bind(credential.key_version)
                            .bind(at)
                            .execute(&mut *tx),
                    )
                    .await?;
                }
                tx.commit().await?;
            }
        }
        Ok(())
    }
}
