//! The in-process cache (moka) used when there is no `REDIS_URL`, and as the
//! host's own fallback while Redis is down. Every entry carries its own
//! deadline, so a TTL survives `incr` exactly as it does in Redis.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moka::ops::compute::Op;
use moka::sync::Cache;

use super::failure::{CacheFailure, CacheQuota};
use crate::infra::sync::lock;

/// Where plugins' keys start (`store::plugin_key`); what follows, up to the
/// next `:`, is the plugin.
const PLUGIN_PREFIX: &str = "wasmbot:plugin:";

/// The plugin a key belongs to, if it is a plugin's.
fn plugin_of(key: &str) -> Option<&str> {
    key.strip_prefix(PLUGIN_PREFIX)?.split(':').next()
}

/// What an entry counts for against its plugin's quota.
fn entry_size(key: &str, value: &str) -> u64 {
    (key.len() + value.len()) as u64
}

/// Keys and bytes of each plugin's live entries. An entry is added when
/// written and taken off by moka's eviction listener, whatever ends it:
/// replaced, removed, expired or evicted.
#[derive(Default)]
struct PluginUsage(Mutex<HashMap<String, (u64, u64)>>);

impl PluginUsage {
    fn add(&self, key: &str, value: &str) {
        if let Some(plugin) = plugin_of(key) {
            let mut usage = lock(&self.0);
            let (keys, bytes) = usage.entry(plugin.to_string()).or_default();
            *keys += 1;
            *bytes += entry_size(key, value);
        }
    }

    fn remove(&self, key: &str, value: &str) {
        if let Some(plugin) = plugin_of(key) {
            let mut usage = lock(&self.0);
            if let Some((keys, bytes)) = usage.get_mut(plugin) {
                *keys = keys.saturating_sub(1);
                *bytes = bytes.saturating_sub(entry_size(key, value));
            }
        }
    }

    fn of(&self, plugin: &str) -> (u64, u64) {
        lock(&self.0).get(plugin).copied().unwrap_or_default()
    }
}

#[derive(Clone)]
struct Entry {
    value: Arc<str>,
    expires_at: Option<Instant>,
}

impl Entry {
    fn live(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }
}

/// Tells moka when each entry expires: at its own deadline, whatever happens to it.
struct AtDeadline;

impl AtDeadline {
    fn remaining(entry: &Entry, now: Instant) -> Option<Duration> {
        entry.expires_at.map(|at| at.saturating_duration_since(now))
    }
}

impl moka::Expiry<String, Entry> for AtDeadline {
    fn expire_after_create(&self, _: &String, entry: &Entry, now: Instant) -> Option<Duration> {
        Self::remaining(entry, now)
    }

    fn expire_after_update(
        &self,
        _: &String,
        entry: &Entry,
        now: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Self::remaining(entry, now)
    }
}

#[derive(Clone)]
pub struct LocalCache {
    entries: Cache<String, Entry>,
    usage: Arc<PluginUsage>,
}

impl LocalCache {
    /// A cache holding about `max_bytes` of keys and values.
    pub fn new(max_bytes: u64) -> Self {
        let usage = Arc::new(PluginUsage::default());
        let ended = usage.clone();
        let entries = Cache::builder()
            .max_capacity(max_bytes)
            // Keys and values plus a rough per-entry overhead.
            .weigher(|key: &String, entry: &Entry| {
                u32::try_from(key.len() + entry.value.len() + 64).unwrap_or(u32::MAX)
            })
            .expire_after(AtDeadline)
            .eviction_listener(move |key: Arc<String>, entry: Entry, _cause| {
                ended.remove(&key, &entry.value);
            })
            .build();
        Self { entries, usage }
    }

    /// Refuses a write of `value` under `key` (a plugin's) that would take
    /// the plugin past `quota`. Entries that ended but were not yet taken
    /// off are taken off first when the quota seems reached.
    pub fn check_quota(
        &self,
        key: &str,
        value_len: u64,
        quota: CacheQuota,
    ) -> Result<(), CacheFailure> {
        let Some(plugin) = plugin_of(key) else {
            return Ok(());
        };
        let after = || {
            let (keys, bytes) = self.usage.of(plugin);
            let now = Instant::now();
            let old = self
                .entries
                .get(key)
                .filter(|entry| entry.live(now))
                .map(|entry| entry_size(key, &entry.value));
            let size = key.len() as u64 + value_len;
            match old {
                Some(old) => (keys, (bytes + size).saturating_sub(old)),
                None => (keys + 1, bytes + size),
            }
        };
        let fits = |(keys, bytes): (u64, u64)| keys <= quota.keys && bytes <= quota.bytes;
        if fits(after()) {
            return Ok(());
        }
        self.entries.run_pending_tasks();
        let (keys, bytes) = after();
        if fits((keys, bytes)) {
            Ok(())
        } else {
            Err(quota.exceeded(keys, bytes))
        }
    }

    pub fn get(&self, key: &str) -> Option<String> {
        let entry = self.entries.get(key)?;
        entry.live(Instant::now()).then(|| entry.value.to_string())
    }

    pub fn set(&self, key: &str, value: &str, ttl: Option<Duration>) {
        let entry = Entry {
            value: value.into(),
            expires_at: ttl.map(|ttl| Instant::now() + ttl),
        };
        self.usage.add(key, value);
        self.entries.insert(key.to_string(), entry);
    }

    pub fn delete(&self, key: &str) -> bool {
        self.entries
            .remove(key)
            .is_some_and(|entry| entry.live(Instant::now()))
    }

    /// Adds `delta` under the key's own lock, so concurrent increments never lose one.
    pub fn incr(&self, key: &str, delta: i64, ttl: Option<Duration>) -> Result<i64, CacheFailure> {
        let mut outcome = Err(CacheFailure::NotANumber);
        self.entries
            .entry(key.to_string())
            .and_compute_with(|existing| {
                let now = Instant::now();
                let existing = existing.map(|e| e.into_value()).filter(|e| e.live(now));
                let (current, expires_at) = match &existing {
                    Some(entry) => match entry.value.parse::<i64>() {
                        Ok(number) => (number, entry.expires_at),
                        Err(_) => return Op::Nop,
                    },
                    None => (0, None),
                };
                let Some(next) = current.checked_add(delta) else {
                    return Op::Nop;
                };
                outcome = Ok(next);
                let value: Arc<str> = next.to_string().into();
                self.usage.add(key, &value);
                Op::Put(Entry {
                    value,
                    expires_at: expires_at.or_else(|| ttl.map(|ttl| now + ttl)),
                })
            });
        outcome
    }

    /// True when `key` was absent (and is now held for `ttl`), false when it was held.
    pub fn claim(&self, key: &str, ttl: Duration) -> bool {
        let mut claimed = false;
        self.entries
            .entry(key.to_string())
            .and_compute_with(|existing| {
                let now = Instant::now();
                if existing.is_some_and(|e| e.value().live(now)) {
                    return Op::Nop;
                }
                claimed = true;
                Op::Put(Entry {
                    value: "1".into(),
                    expires_at: Some(now + ttl),
                })
            });
        claimed
    }
}
