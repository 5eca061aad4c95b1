//! `wasmbot:plugin/cache`: get / set with TTL / delete / atomic incr, keys
//! private to each plugin. The backend is the host's `CacheStore`.

use std::time::Duration;

use super::keys::check_key;
use crate::infra::cache::{CacheFailure, CacheQuota, plugin_key};
use crate::runtime::CallState;
use crate::runtime::bindings::cache::{self as wit, CacheError};
use crate::runtime::{Budget, HOST_CALLS};

/// Counted per call; `limits.cache_writes` in the manifest, `PLUGIN_CACHE_WRITES` for the operator.
/// Kept per plugin; `limits.cache_keys` in the manifest, `PLUGIN_CACHE_KEYS` for the operator.
pub static CACHE_KEYS: Budget = Budget::new("cache_keys", "cache keys", 10_000, 1_000_000);

/// Kept per plugin (keys and values); `limits.cache_kb`, `PLUGIN_CACHE_KB`.
pub static CACHE_KB: Budget = Budget::new("cache_kb", "KiB of cache", 10 * 1024, 1024 * 1024);

pub static CACHE_WRITES: Budget = Budget::new("cache_writes", "cache writes", 100, 10000);

pub const MAX_VALUE_BYTES: usize = 512 * 1024;
pub const MAX_TTL: Duration = Duration::from_secs(30 * 24 * 60 * 60);

fn check_ttl(ttl_ms: Option<u64>) -> Result<Option<Duration>, CacheError> {
    let Some(ms) = ttl_ms else {
        return Ok(None);
    };
    let ttl = Duration::from_millis(ms);
    if ms == 0 || ttl > MAX_TTL {
        return Err(CacheError::InvalidTtl(format!(
            "a time-to-live must be 1 ms to 30 days ({} ms), got {ms} ms",
            MAX_TTL.as_millis()
        )));
    }
    Ok(Some(ttl))
}

impl From<CacheFailure> for CacheError {
    fn from(failure: CacheFailure) -> Self {
        match failure {
            CacheFailure::NotANumber => CacheError::NotANumber,
            CacheFailure::Unavailable(why) => CacheError::Unavailable(why),
            CacheFailure::QuotaExceeded(why) => CacheError::QuotaExceeded(why),
        }
    }
}

impl wit::Host for CallState {
    async fn get(&mut self, key: String) -> Result<Option<String>, CacheError> {
        self.spend(&HOST_CALLS)?;
        check_key(&key, CacheError::InvalidKey)?;
        let key = plugin_key(self.plugin(), &key);
        Ok(self.services().cache.get(&key).await?)
    }

    async fn set(
        &mut self,
        key: String,
        value: String,
        ttl_ms: Option<u64>,
    ) -> Result<(), CacheError> {
        self.spend(&CACHE_WRITES)?;
        check_key(&key, CacheError::InvalidKey)?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(CacheError::TooLarge(MAX_VALUE_BYTES as u32));
        }
        let ttl = check_ttl(ttl_ms)?;
        let key = plugin_key(self.plugin(), &key);
        let quota = self.cache_quota();
        let stored = self
            .services()
            .cache
            .set_within(self.plugin(), &key, &value, ttl, quota)
            .await;
        Ok(self.counting_quota(stored)?)
    }

    async fn delete(&mut self, key: String) -> Result<bool, CacheError> {
        self.spend(&CACHE_WRITES)?;
        check_key(&key, CacheError::InvalidKey)?;
        let key = plugin_key(self.plugin(), &key);
        Ok(self
            .services()
            .cache
            .delete_from(self.plugin(), &key)
            .await?)
    }

    async fn incr(
        &mut self,
        key: String,
        delta: i64,
        ttl_ms: Option<u64>,
    ) -> Result<i64, CacheError> {
        self.spend(&CACHE_WRITES)?;
        check_key(&key, CacheError::InvalidKey)?;
        let ttl = check_ttl(ttl_ms)?;
        let key = plugin_key(self.plugin(), &key);
        let quota = self.cache_quota();
        let counted = self
            .services()
            .cache
            .incr_within(self.plugin(), &key, delta, ttl, quota)
            .await;
        Ok(self.counting_quota(counted)?)
    }
}

impl CallState {
    fn cache_quota(&self) -> CacheQuota {
        CacheQuota {
            keys: u64::from(self.quota(&CACHE_KEYS)),
            bytes: u64::from(self.quota(&CACHE_KB)) << 10,
        }
    }

    /// Passes `outcome` on, counting a refusal over quota.
    fn counting_quota<T>(&mut self, outcome: Result<T, CacheFailure>) -> Result<T, CacheFailure> {
        if matches!(outcome, Err(CacheFailure::QuotaExceeded(_))) {
            self.over_quota("cache");
        }
        outcome
    }
}

over_budget_is!(CacheError);
