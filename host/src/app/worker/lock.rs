//! Which worker is the active one: a PostgreSQL advisory lock held on a
//! connection of its own (released by the server when the process dies), or
//! on SQLite an OS file lock beside the database file (released by the OS).

use sqlx::Connection as _;

use crate::infra::store::Store;

/// The advisory lock key: "wasmbot worker" as a number.
const ADVISORY_KEY: i64 = 0x7761_736d_626f_7477;

pub enum LeaderLock {
    Postgres(sqlx::PgConnection),
    File(std::fs::File),
}

impl LeaderLock {
    /// The lock, if no other worker holds it.
    pub async fn try_acquire(store: &Store) -> anyhow::Result<Option<Self>> {
        match store {
            Store::Postgres(pool) => {
                // Detached: the lock lives exactly as long as this connection.
                let mut connection = pool.acquire().await?.detach();
                let acquired: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                    .bind(ADVISORY_KEY)
                    .fetch_one(&mut connection)
                    .await?;
                if acquired {
                    Ok(Some(LeaderLock::Postgres(connection)))
                } else {
                    let _ = connection.close().await;
                    Ok(None)
                }
            }
            Store::Sqlite(pool) => {
                let database = pool.connect_options().get_filename().to_path_buf();
                let path = database.with_extension("worker-lock");
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&path)
                    .map_err(|error| {
                        anyhow::anyhow!("opening the worker lock {}: {error}", path.display())
                    })?;
                match file.try_lock() {
                    Ok(()) => Ok(Some(LeaderLock::File(file))),
                    Err(std::fs::TryLockError::WouldBlock) => Ok(None),
                    Err(std::fs::TryLockError::Error(error)) => {
                        Err(anyhow::anyhow!("locking {}: {error}", path.display()))
                    }
                }
            }
        }
    }

    /// Whether the lock is still ours (a Postgres connection can be cut).
    pub async fn still_held(&mut self) -> bool {
        match self {
            LeaderLock::Postgres(connection) => connection.ping().await.is_ok(),
            LeaderLock::File(_) => true,
        }
    }
}
