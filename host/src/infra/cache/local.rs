//! The in-process cache (moka) used when there is no `REDIS_URL`, and as the
//! host's own fallback while Redis is down. Every entry carries its own
//! deadline, so a TTL survives `incr` exactly as it does in Redis.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::ops::compute::Op;
use moka::sync::Cache;

use super::failure::CacheFailure;

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
}

impl LocalCache {
    /// A cache holding about `max_bytes` of keys and values.
    pub fn new(max_bytes: u64) -> Self {
        let entries = Cache::builder()
            .max_capacity(max_bytes)
            // Keys and values plus a rough per-entry overhead.
            .weigher(|key: &String, entry: &Entry| {
                u32::try_from(key.len() + entry.value.len() + 64).unwrap_or(u32::MAX)
            })
            .expire_after(AtDeadline)
            .build();
        Self { entries }
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
                Op::Put(Entry {
                    value: next.to_string().into(),
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
