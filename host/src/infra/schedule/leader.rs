//! Which process is the one doing a kind of scheduled work (the worker's
//! maintenance, a channel's jobs): a PostgreSQL advisory lock held on a
//! connection of its own (released by the server when the process dies), or
//! on SQLite an OS file lock beside the database file (released by the OS).

use sqlx::Connection as _;

use crate::infra::store::Store;

/// What a lock elects a leader for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leadership {
    /// `wasmbot worker`'s maintenance jobs.
    Worker,
    /// Firing the due jobs and webhook deliveries of one channel.
    Jobs(&'static str),
    /// Held by a worker that runs a channel's jobs for as long as it lives:
    /// the bot processes see it and leave the jobs to the worker.
    JobsWorker(&'static str),
}

impl Leadership {
    /// The lock's name: the advisory lock key is a hash of it and the
    /// current schema (deployments sharing a server in schemas of their
    /// own do not block each other), and the lock file's extension.
    fn name(self) -> String {
        match self {
            Leadership::Worker => "worker-lock".into(),
            Leadership::Jobs(channel) => format!("jobs-{channel}-lock"),
            Leadership::JobsWorker(channel) => format!("jobs-{channel}-worker-lock"),
        }
    }
}

/// The advisory lock of a [`Leadership`]'s name in the current schema.
const TRY_LOCK: &str =
    "SELECT pg_try_advisory_lock(hashtextextended($1 || ':' || current_schema(), 0))";
const UNLOCK: &str =
    "SELECT pg_advisory_unlock(hashtextextended($1 || ':' || current_schema(), 0))";

async fn try_lock(connection: &mut sqlx::PgConnection, what: Leadership) -> sqlx::Result<bool> {
    sqlx::query_scalar(TRY_LOCK)
        .bind(what.name())
        .fetch_one(connection)
        .await
}

pub enum LeaderLock {
    Postgres(sqlx::PgConnection),
    File(std::fs::File),
}

impl LeaderLock {
    /// The lock, if no other process holds it.
    pub async fn try_acquire(store: &Store, what: Leadership) -> anyhow::Result<Option<Self>> {
        match store {
            Store::Postgres(pool) => {
                // A pooled connection goes back to the pool when the lock is
                // not ours (a standby asks every few seconds: no new
                // connection each time); one that got it is detached, so the
                // lock lives exactly as long as that connection.
                let mut connection = pool.acquire().await?;
                let acquired = try_lock(&mut connection, what).await?;
                Ok(acquired.then(|| LeaderLock::Postgres(connection.detach())))
            }
            Store::Sqlite(pool) => {
                let database = pool.connect_options().get_filename().to_path_buf();
                let path = database.with_extension(what.name());
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&path)
                    .map_err(|error| {
                        anyhow::anyhow!("opening the lock file {}: {error}", path.display())
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

    /// Whether some process holds the lock now (taking it for a moment to
    /// see; on Postgres on a pooled connection, given back unlocked).
    pub async fn is_held_elsewhere(store: &Store, what: Leadership) -> anyhow::Result<bool> {
        match store {
            Store::Postgres(pool) => {
                let mut connection = pool.acquire().await?;
                if !try_lock(&mut connection, what).await? {
                    return Ok(true);
                }
                // A pooled connection must never keep the lock: one that
                // cannot give it back is closed instead of returned.
                if let Err(error) = sqlx::query(UNLOCK)
                    .bind(what.name())
                    .execute(&mut *connection)
                    .await
                {
                    let _ = connection.detach().close().await;
                    return Err(error.into());
                }
                Ok(false)
            }
            Store::Sqlite(_) => Ok(match Self::try_acquire(store, what).await? {
                Some(lock) => {
                    lock.release().await;
                    false
                }
                None => true,
            }),
        }
    }

    /// Gives the lock up now (dropping it does too, a moment later).
    pub async fn release(self) {
        match self {
            LeaderLock::Postgres(connection) => {
                let _ = connection.close().await;
            }
            LeaderLock::File(file) => drop(file),
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
