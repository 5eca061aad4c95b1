//! The connection pool of either backend, and what every query shares: a
//! timeout and error type.

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

/// How long one query may take before it fails with [`StoreError::Timeout`].
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database query timed out after {0:?}")]
    Timeout(Duration),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("stored value is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A pooled connection to one of the two backends. Cheap to clone.
#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Store {
    /// Connects (creating the SQLite file and its folder on first use).
    /// Errors never contain the URL, which may hold a password.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url)
                .map_err(|_| anyhow::anyhow!("DATABASE_URL: not a valid postgres:// URL"))?;
            let pool = PgPoolOptions::new()
                .max_connections(10)
                .acquire_timeout(QUERY_TIMEOUT)
                .connect_with(options)
                .await
                .map_err(|error| {
                    anyhow::anyhow!(
                        "DATABASE_URL: cannot connect to PostgreSQL: {}",
                        describe(&error)
                    )
                })?;
            Ok(Store::Postgres(pool))
        } else if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|error| {
                    anyhow::anyhow!("DATABASE_URL: not a valid sqlite: URL ({error})")
                })?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(QUERY_TIMEOUT)
                .foreign_keys(true);
            if let Some(parent) = options.get_filename().parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent).map_err(|error| {
                    anyhow::anyhow!("DATABASE_URL: cannot create {}: {error}", parent.display())
                })?;
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                .acquire_timeout(QUERY_TIMEOUT)
                .connect_with(options)
                .await
                .map_err(|error| {
                    anyhow::anyhow!("DATABASE_URL: cannot open SQLite: {}", describe(&error))
                })?;
            Ok(Store::Sqlite(pool))
        } else {
            anyhow::bail!("DATABASE_URL: expected sqlite://PATH or postgres://…")
        }
    }

    /// Applies the migrations of this backend's dialect.
    pub async fn migrate(&self) -> StoreResult<()> {
        match self {
            Store::Sqlite(pool) => sqlx::migrate!("../migrations/sqlite").run(pool).await?,
            Store::Postgres(pool) => sqlx::migrate!("../migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    /// `SELECT 1`, for health checks.
    pub async fn ping(&self) -> StoreResult<()> {
        timed(async {
            match self {
                Store::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
                Store::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
            }
        })
        .await
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    pub async fn close(&self) {
        match self {
            Store::Sqlite(pool) => pool.close().await,
            Store::Postgres(pool) => pool.close().await,
        }
    }
}

/// Runs a query under [`QUERY_TIMEOUT`].
pub(super) async fn timed<T, E>(query: impl Future<Output = Result<T, E>>) -> StoreResult<T>
where
    StoreError: From<E>,
{
    match tokio::time::timeout(QUERY_TIMEOUT, query).await {
        Ok(result) => result.map_err(StoreError::from),
        Err(_) => Err(StoreError::Timeout(QUERY_TIMEOUT)),
    }
}

/// A connection error without anything from the URL.
fn describe(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::Database(db) => db.message().to_string(),
        sqlx::Error::PoolTimedOut => "timed out".into(),
        other => other.to_string(),
    }
}

/// The current time as the database stores it.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

/// Postgres numbers its parameters `$1`; SQLite spells the same `?1`.
pub(super) fn dialect(store: &Store, sql: &str) -> String {
    match store {
        Store::Sqlite(_) => sql.replace('$', "?"),
        Store::Postgres(_) => sql.to_string(),
    }
}

/// Runs the same statement, bound the same way, on either backend.
macro_rules! on_either {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            Store::Sqlite($pool) => $body,
            Store::Postgres($pool) => $body,
        }
    };
}

pub(super) use on_either;
