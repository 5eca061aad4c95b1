//! The Redis backend: one auto-reconnecting connection shared by every call,
//! tuned to fail fast. When Redis is down a call gives up within
//! `CALL_DEADLINE` rather than waiting out reconnection back-off.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::failure::CacheFailure;

/// Longest a single cache call may take, connection attempt included.
pub const CALL_DEADLINE: Duration = Duration::from_millis(1500);

/// INCRBY, then an expiry only if the key has none (PTTL -1), in one atomic step.
const INCR_SCRIPT: &str = r"
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = tonumber(ARGV[2])
if ttl > 0 and redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return value
";

#[derive(Clone)]
pub struct RedisCache {
    connection: ConnectionManager,
}

impl RedisCache {
    /// Connects lazily: a Redis that is down at start-up is not an error,
    /// each call reports it instead.
    pub fn new(url: &str) -> Result<Self, CacheFailure> {
        // Deliberately not echoing the URL: it may carry a password.
        let client = redis::Client::open(url).map_err(|error| {
            CacheFailure::Unavailable(format!("REDIS_URL is not usable ({:?})", error.kind()))
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(Duration::from_millis(500)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let connection = ConnectionManager::new_lazy_with_config(client, config).map_err(|e| {
            CacheFailure::Unavailable(format!("cannot set up the Redis connection: {e}"))
        })?;
        Ok(Self { connection })
    }

    async fn run<T: redis::FromRedisValue>(&self, command: &redis::Cmd) -> Result<T, CacheFailure> {
        let mut connection = self.connection.clone();
        match tokio::time::timeout(CALL_DEADLINE, command.query_async(&mut connection)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) if is_not_a_number(&error) => Err(CacheFailure::NotANumber),
            Ok(Err(error)) => {
                tracing::warn!(%error, "Redis call failed");
                Err(CacheFailure::Unavailable(
                    "the cache server (Redis) is not available".into(),
                ))
            }
            Err(_) => {
                tracing::warn!(deadline = ?CALL_DEADLINE, "Redis did not answer in time");
                Err(CacheFailure::Unavailable(
                    "the cache server (Redis) did not answer in time".into(),
                ))
            }
        }
    }

    pub async fn get(&self, key: &str) -> Result<Option<String>, CacheFailure> {
        self.run(redis::cmd("GET").arg(key)).await
    }

    pub async fn set(
        &self,
        key: &str,
        value: &str,
        ttl: Option<Duration>,
    ) -> Result<(), CacheFailure> {
        let mut command = redis::cmd("SET");
        command.arg(key).arg(value);
        if let Some(ttl) = ttl {
            command.arg("PX").arg(millis(ttl));
        }
        self.run::<()>(&command).await
    }

    pub async fn delete(&self, key: &str) -> Result<bool, CacheFailure> {
        let removed: i64 = self.run(redis::cmd("DEL").arg(key)).await?;
        Ok(removed > 0)
    }

    pub async fn incr(
        &self,
        key: &str,
        delta: i64,
        ttl: Option<Duration>,
    ) -> Result<i64, CacheFailure> {
        let ttl = ttl.map_or(0, millis);
        self.run(
            redis::cmd("EVAL")
                .arg(INCR_SCRIPT)
                .arg(1)
                .arg(key)
                .arg(delta)
                .arg(ttl),
        )
        .await
    }

    pub async fn claim(&self, key: &str, ttl: Duration) -> Result<bool, CacheFailure> {
        let answer: Option<String> = self
            .run(
                redis::cmd("SET")
                    .arg(key)
                    .arg(1)
                    .arg("NX")
                    .arg("PX")
                    .arg(millis(ttl)),
            )
            .await?;
        Ok(answer.is_some())
    }
}

fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

fn is_not_a_number(error: &redis::RedisError) -> bool {
    let text = error.to_string();
    text.contains("not an integer") || text.contains("overflow")
}
