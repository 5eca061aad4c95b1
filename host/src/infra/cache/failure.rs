//! Why a cache call failed, before a capability puts it in a plugin's terms.

/// Why a cache call failed, before it is put in a plugin's terms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CacheFailure {
    #[error("the value is not a 64-bit integer (or the sum overflows)")]
    NotANumber,
    #[error("{0}")]
    Unavailable(String),
}
