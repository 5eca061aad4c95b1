//! The cache shared by plugins and the host: Redis when `REDIS_URL` is set,
//! an in-process moka cache otherwise. Plugins' keys are private to each
//! plugin (`wasmbot:plugin:<plugin>:<key>`); the host keeps its own shared
//! state beside them (`wasmbot:host:<area>:<key>`): Telegram update ids and
//! alert rate limits, so several replicas agree.

use std::sync::Arc;
use std::time::Duration;

use super::failure::{CacheFailure, CacheQuota};
use super::local::LocalCache;
use super::redis::RedisCache;
use super::settings::CacheSettings;

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

    /// [`Self::set`] of a plugin's key, unless the plugin's entries would
    /// then pass `quota` (on Redis the check and the write are one script,
    /// so replicas agree).
    pub async fn set_within(
        &self,
        plugin: &str,
        key: &str,
        value: &str,
        ttl: Option<Duration>,
        quota: CacheQuota,
    ) -> Result<(), CacheFailure> {
        match &*self.backend {
            Backend::Local(local) => {
                local.check_quota(key, value.len() as u64, quota)?;
                local.set(key, value, ttl);
                Ok(())
            }
            Backend::Redis { redis, .. } => redis.set_within(plugin, key, value, ttl, quota).await,
        }
    }

    /// [`Self::incr`] of a plugin's key within `quota` (a new key counts the
    /// longest number, 20 bytes).
    pub async fn incr_within(
        &self,
        plugin: &str,
        key: &str,
        delta: i64,
        ttl: Option<Duration>,
        quota: CacheQuota,
    ) -> Result<i64, CacheFailure> {
        match &*self.backend {
            Backend::Local(local) => {
                local.check_quota(key, 20, quota)?;
                local.incr(key, delta, ttl)
            }
            Backend::Redis { redis, .. } => redis.incr_within(plugin, key, delta, ttl, quota).await,
        }
    }

    /// [`Self::delete`] of a plugin's key, giving its room back.
    pub async fn delete_from(&self, plugin: &str, key: &str) -> Result<bool, CacheFailure> {
        match &*self.backend {
            Backend::Local(local) => Ok(local.delete(key)),
            Backend::Redis { redis, .. } => redis.delete_from(plugin, key).await,
        }
    }

    /// A plugin's live keys and their bytes, as its quota counts them; None
    /// for the in-process cache, whose entries live in the bot's process.
    pub async fn shared_usage(&self, plugin: &str) -> Result<Option<(u64, u64)>, CacheFailure> {
        match &*self.backend {
            Backend::Local(_) => Ok(None),
            Backend::Redis { redis, .. } => redis.usage(plugin).await.map(Some),
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
