//! The Redis backend: one auto-reconnecting connection shared by every call,
//! tuned to fail fast. When Redis is down a call gives up within
//! `CALL_DEADLINE` rather than waiting out reconnection back-off.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::failure::{CacheFailure, CacheQuota};

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

/// Every plugin write keeps the plugin's index: `…:index` (its keys, scored
/// by when they expire, `+inf` for never), `…:sizes` (each key's size) and
/// `…:bytes` (their sum). Entries past their expiry are taken off first, by
/// the server's own clock, so the totals are those of live keys.
const QUOTA_PROLOGUE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ended = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, k in ipairs(ended) do
  local s = redis.call('HGET', KEYS[3], k)
  if s then redis.call('DECRBY', KEYS[4], s) end
  redis.call('HDEL', KEYS[3], k)
end
if #ended > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now) end
local old = tonumber(redis.call('HGET', KEYS[3], KEYS[1]) or '-1')
local keys = redis.call('ZCARD', KEYS[2])
local bytes = tonumber(redis.call('GET', KEYS[4]) or '0')
local function would_be(size)
  if old >= 0 then return keys, bytes - old + size end
  return keys + 1, bytes + size
end
local function keep(size, expires)
  redis.call('ZADD', KEYS[2], expires, KEYS[1])
  redis.call('HSET', KEYS[3], KEYS[1], size)
  redis.call('INCRBY', KEYS[4], size - math.max(old, 0))
end
";

/// SET within the quota. ARGV: value, ttl ms (0: none), max keys, max bytes.
/// Returns {1} or {0, keys, bytes} (what the write would have made).
const SET_SCRIPT: &str = r"
local size = string.len(KEYS[1]) + string.len(ARGV[1])
local k, b = would_be(size)
if k > tonumber(ARGV[3]) or b > tonumber(ARGV[4]) then return {0, k, b} end
local ttl = tonumber(ARGV[2])
if ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
  keep(size, now + ttl)
else
  redis.call('SET', KEYS[1], ARGV[1])
  keep(size, '+inf')
end
return {1}
";

/// INCRBY within the quota (an expiry set only if the key has none).
/// ARGV: delta, ttl ms (0: none), max keys, max bytes. A new key counts
/// 20 bytes of value, the longest a 64-bit integer takes.
/// Returns {1, value} or {0, keys, bytes}.
const INCR_QUOTA_SCRIPT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then
  local k, b = would_be(string.len(KEYS[1]) + 20)
  if k > tonumber(ARGV[3]) or b > tonumber(ARGV[4]) then return {0, k, b} end
end
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = tonumber(ARGV[2])
if ttl > 0 and redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
local left = redis.call('PTTL', KEYS[1])
local expires = '+inf'
if left > 0 then expires = now + left end
keep(string.len(KEYS[1]) + string.len(tostring(value)), expires)
return {1, value}
";

/// The plugin's live keys and their bytes. Returns {keys, bytes}.
const USAGE_SCRIPT: &str = r"
return {keys, bytes}
";

/// DEL, and the key off the plugin's index. Returns 1 when it existed.
const DELETE_SCRIPT: &str = r"
local removed = redis.call('DEL', KEYS[1])
if old >= 0 then
  redis.call('HDEL', KEYS[3], KEYS[1])
  redis.call('ZREM', KEYS[2], KEYS[1])
  redis.call('DECRBY', KEYS[4], old)
end
return removed
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

    /// A script over a plugin's key and its quota index (see [`QUOTA_PROLOGUE`]).
    fn quota_script(script: &str, key: &str, plugin: &str) -> redis::Cmd {
        let mut command = redis::cmd("EVAL");
        command
            .arg(format!("{QUOTA_PROLOGUE}{script}"))
            .arg(4)
            .arg(key)
            .arg(format!("wasmbot:quota:{plugin}:index"))
            .arg(format!("wasmbot:quota:{plugin}:sizes"))
            .arg(format!("wasmbot:quota:{plugin}:bytes"));
        command
    }

    /// Runs a quota script: `{1}` or `{1, value}` when it wrote (the value,
    /// or 0), `{0, keys, bytes}` when the write would have passed `quota`.
    async fn within_quota(
        &self,
        command: &redis::Cmd,
        quota: CacheQuota,
    ) -> Result<i64, CacheFailure> {
        match self.run::<Vec<i64>>(command).await?.as_slice() {
            [1] => Ok(0),
            [1, value] => Ok(*value),
            [0, keys, bytes] => Err(quota.exceeded(*keys as u64, *bytes as u64)),
            other => Err(unexpected(other)),
        }
    }

    pub async fn set_within(
        &self,
        plugin: &str,
        key: &str,
        value: &str,
        ttl: Option<Duration>,
        quota: CacheQuota,
    ) -> Result<(), CacheFailure> {
        let mut command = Self::quota_script(SET_SCRIPT, key, plugin);
        command
            .arg(value)
            .arg(ttl.map_or(0, millis))
            .arg(quota.keys)
            .arg(quota.bytes);
        self.within_quota(&command, quota).await.map(drop)
    }

    pub async fn incr_within(
        &self,
        plugin: &str,
        key: &str,
        delta: i64,
        ttl: Option<Duration>,
        quota: CacheQuota,
    ) -> Result<i64, CacheFailure> {
        let mut command = Self::quota_script(INCR_QUOTA_SCRIPT, key, plugin);
        command
            .arg(delta)
            .arg(ttl.map_or(0, millis))
            .arg(quota.keys)
            .arg(quota.bytes);
        self.within_quota(&command, quota).await
    }

    pub async fn delete_from(&self, plugin: &str, key: &str) -> Result<bool, CacheFailure> {
        let removed: i64 = self
            .run(&Self::quota_script(DELETE_SCRIPT, key, plugin))
            .await?;
        Ok(removed > 0)
    }

    /// The plugin's live keys and their bytes, as its quota counts them.
    pub async fn usage(&self, plugin: &str) -> Result<(u64, u64), CacheFailure> {
        let answer: Vec<i64> = self
            .run(&Self::quota_script(USAGE_SCRIPT, "", plugin))
            .await?;
        match answer.as_slice() {
            [keys, bytes] => Ok((*keys as u64, *bytes as u64)),
            other => Err(unexpected(other)),
        }
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

fn unexpected(answer: &[i64]) -> CacheFailure {
    tracing::warn!(?answer, "unexpected answer from a cache quota script");
    CacheFailure::Unavailable("the cache server (Redis) answered unexpectedly".into())
}

fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

fn is_not_a_number(error: &redis::RedisError) -> bool {
    let text = error.to_string();
    text.contains("not an integer") || text.contains("overflow")
}
