//! Why a cache call failed, before a capability puts it in a plugin's terms.

/// Why a cache call failed, before it is put in a plugin's terms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CacheFailure {
    #[error("the value is not a 64-bit integer (or the sum overflows)")]
    NotANumber,
    #[error("{0}")]
    Unavailable(String),
    /// The plugin's entries would pass its quota (keys or bytes).
    #[error("{0}")]
    QuotaExceeded(String),
}

/// The most a plugin's cache entries may hold: keys, and bytes of keys and values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheQuota {
    pub keys: u64,
    pub bytes: u64,
}

impl CacheQuota {
    /// The refusal for a write that would make `keys` keys of `bytes` bytes.
    pub fn exceeded(self, keys: u64, bytes: u64) -> CacheFailure {
        CacheFailure::QuotaExceeded(format!(
            "quota exceeded: this plugin may keep {} cache keys and {} KiB; the write would make {keys} keys and {} KiB (delete some, let some expire, or the operator raises the quota)",
            self.keys,
            self.bytes >> 10,
            bytes.div_ceil(1024)
        ))
    }
}
