//! A fast, expiring cache for this plugin (needs `capabilities = ["cache"]`):
//! counters, rate limits, short-lived values. Redis or in-process, as the
//! host is configured; entries may be evicted early, so keep durable data
//! in [`crate::state`].

use std::time::Duration;

use crate::bindings::wasmbot::plugin0_1_0::cache as wit;
pub use crate::bindings::wasmbot::plugin0_1_0::cache::CacheError;

impl CacheError {
    /// A sentence for a user or a log line.
    pub fn message(&self) -> String {
        match self {
            CacheError::InvalidKey(why) => format!("invalid cache key: {why}"),
            CacheError::TooLarge(limit) => format!("cache value larger than {limit} bytes"),
            CacheError::InvalidTtl(why) => format!("invalid cache time-to-live: {why}"),
            CacheError::NotANumber => "the cached value is not a whole number".into(),
            CacheError::Unavailable(why) => format!("cache unavailable: {why}"),
            CacheError::OverBudget(why) => why.clone(),
            CacheError::QuotaExceeded(why) => why.clone(),
        }
    }
}

impl From<CacheError> for String {
    fn from(error: CacheError) -> Self {
        error.message()
    }
}

fn millis(ttl: Option<Duration>) -> Option<u64> {
    ttl.map(|ttl| u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
}

/// The value under `key`, unless missing or expired.
pub fn get(key: &str) -> Result<Option<String>, CacheError> {
    wit::get(key)
}

/// Stores `value` under `key`, expiring after `ttl` when given.
pub fn set(key: &str, value: &str, ttl: Option<Duration>) -> Result<(), CacheError> {
    wit::set(key, value, millis(ttl))
}

/// Removes `key`; true when it existed.
pub fn delete(key: &str) -> Result<bool, CacheError> {
    wit::delete(key)
}

/// Adds `delta` to the counter under `key` and returns the new value,
/// atomically; `window` starts when the counter is created.
pub fn incr(key: &str, delta: i64, window: Option<Duration>) -> Result<i64, CacheError> {
    wit::incr(key, delta, millis(window))
}

/// A fixed-window rate limit: true while `key` has been hit at most `max`
/// times in the current `window` (this hit included).
///
/// ```ignore
/// if !cache::allow(&format!("ask:{}", msg.user_id), 5, Duration::from_secs(60))? {
///     return Ok(Reply::text("Slow down: 5 questions a minute."));
/// }
/// ```
pub fn allow(key: &str, max: u32, window: Duration) -> Result<bool, CacheError> {
    Ok(incr(key, 1, Some(window))? <= i64::from(max))
}
