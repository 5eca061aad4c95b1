//! `wasmbot:plugin/cache`: get / set with TTL / delete / atomic incr, keys
//! private to each plugin (`wasmbot:plugin:<plugin>:<key>`). Redis when
//! `REDIS_URL` is set, an in-process moka cache otherwise. The host keeps
//! its own shared state here too (`wasmbot:host:<area>:<key>`): Telegram
//! update ids and alert rate limits, so several replicas agree.

mod local;
mod redis;
mod settings;

pub use self::redis::CALL_DEADLINE;
pub use local::LocalCache;
pub use settings::CacheSettings;

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};

use self::redis::RedisCache;
use crate::runtime::CallState;
use crate::runtime::bindings_cache::{self as wit, CacheError};

pub const MAX_KEY_BYTES: usize = 256;
pub const MAX_VALUE_BYTES: usize = 512 * 1024;
pub const MAX_TTL: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// Why a cache call failed, before it is put in a plugin's terms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CacheFailure {
    #[error("the value is not a 64-bit integer (or the sum overflows)")]
    NotANumber,
    #[error("{0}")]
    Unavailable(String),
}

/// The cache shared by plugins and the host; cheap to clone.
#[derive(Clone)]
pub struct CacheStore {
    backend: Arc<Backend>,
}

enum Backend {
    Local(LocalCache),
    /// The local cache answers the host's own claims while Redis is down:
    /// a replica then decides alone rather than dropping an update or an alert.
    Redis {
        redis: RedisCache,
        fallback: LocalCache,
    },
}

impl Default for CacheStore {
    fn default() -> Self {
        Self::local(CacheSettings::default().memory_mb)
    }
}

impl CacheStore {
    pub fn from_settings(settings: &CacheSettings) -> Result<Self, CacheFailure> {
        match &settings.redis_url {
            Some(url) => Self::redis(url.expose(), settings.memory_mb),
            None => Ok(Self::local(settings.memory_mb)),
        }
    }

    pub fn local(memory_mb: u64) -> Self {
        Self::with(Backend::Local(LocalCache::new(memory_mb << 20)))
    }

    pub fn redis(url: &str, fallback_memory_mb: u64) -> Result<Self, CacheFailure> {
        Ok(Self::with(Backend::Redis {
            redis: RedisCache::new(url)?,
            fallback: LocalCache::new(fallback_memory_mb << 20),
        }))
    }

    fn with(backend: Backend) -> Self {
        Self {
            backend: Arc::new(backend),
        }
    }

    /// True when other processes see the same entries (Redis).
    pub fn is_shared(&self) -> bool {
        matches!(*self.backend, Backend::Redis { .. })
    }

    /// "redis" or "in-process", for logs and `health`.
    pub fn backend_name(&self) -> &'static str {
        match *self.backend {
            Backend::Local(_) => "in-process",
            Backend::Redis { .. } => "redis",
        }
    }

    pub async fn get(&self, key: &str) -> Result<Option<String>, CacheFailure> {
        match &*self.backend {
            Backend::Local(local) => Ok(local.get(key)),
            Backend::Redis { redis, .. } => redis.get(key).await,
        }
    }

    pub async fn set(
        &self,
        key: &str,
        value: &str,
        ttl: Option<Duration>,
    ) -> Result<(), CacheFailure> {
        match &*self.backend {
            Backend::Local(local) => {
                local.set(key, value, ttl);
                Ok(())
            }
            Backend::Redis { redis, .. } => redis.set(key, value, ttl).await,
        }
    }

    pub async fn delete(&self, key: &str) -> Result<bool, CacheFailure> {
        match &*self.backend {
            Backend::Local(local) => Ok(local.delete(key)),
            Backend::Redis { redis, .. } => redis.delete(key).await,
        }
    }

    pub async fn incr(
        &self,
        key: &str,
        delta: i64,
        ttl: Option<Duration>,
    ) -> Result<i64, CacheFailure> {
        match &*self.backend {
            Backend::Local(local) => local.incr(key, delta, ttl),
            Backend::Redis { redis, .. } => redis.incr(key, delta, ttl).await,
        }
    }

    /// The host's "first one wins": true when `host_key(area, key)` was free
    /// (it is now held for `ttl`), false when someone holds it. Never fails:
    /// with Redis down this replica decides from its own memory.
    pub async fn claim(&self, area: &str, key: &str, ttl: Duration) -> bool {
        let key = host_key(area, key);
        match &*self.backend {
            Backend::Local(local) => local.claim(&key, ttl),
            Backend::Redis { redis, fallback } => match redis.claim(&key, ttl).await {
                Ok(claimed) => claimed,
                Err(_) => fallback.claim(&key, ttl),
            },
        }
    }
}

/// Where a plugin's key lives; plugin names hold no `:`, so plugins cannot collide.
pub fn plugin_key(plugin: &str, key: &str) -> String {
    format!("wasmbot:plugin:{plugin}:{key}")
}

/// Where the host's own state lives, apart from every plugin's.
pub fn host_key(area: &str, key: &str) -> String {
    format!("wasmbot:host:{area}:{key}")
}

pub fn link(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    wit::add_to_linker::<CallState, HasSelf<CallState>>(linker, |state| state)
}

fn check_key(key: &str) -> Result<(), CacheError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(CacheError::InvalidKey(format!(
            "keys must be 1-{MAX_KEY_BYTES} bytes, got {}",
            key.len()
        )));
    }
    Ok(())
}

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
        }
    }
}

impl wit::Host for CallState {
    async fn get(&mut self, key: String) -> Result<Option<String>, CacheError> {
        check_key(&key)?;
        let key = plugin_key(self.plugin(), &key);
        Ok(self.services().cache.get(&key).await?)
    }

    async fn set(
        &mut self,
        key: String,
        value: String,
        ttl_ms: Option<u64>,
    ) -> Result<(), CacheError> {
        check_key(&key)?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(CacheError::TooLarge(MAX_VALUE_BYTES as u32));
        }
        let ttl = check_ttl(ttl_ms)?;
        let key = plugin_key(self.plugin(), &key);
        Ok(self.services().cache.set(&key, &value, ttl).await?)
    }

    async fn delete(&mut self, key: String) -> Result<bool, CacheError> {
        check_key(&key)?;
        let key = plugin_key(self.plugin(), &key);
        Ok(self.services().cache.delete(&key).await?)
    }

    async fn incr(
        &mut self,
        key: String,
        delta: i64,
        ttl_ms: Option<u64>,
    ) -> Result<i64, CacheError> {
        check_key(&key)?;
        let ttl = check_ttl(ttl_ms)?;
        let key = plugin_key(self.plugin(), &key);
        Ok(self.services().cache.incr(&key, delta, ttl).await?)
    }
}
