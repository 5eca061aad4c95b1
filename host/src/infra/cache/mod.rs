//! The host's cache backends (Redis, in-process), shared by plugins and the host.

mod failure;
mod local;
mod redis;
mod settings;
mod store;

pub use self::redis::CALL_DEADLINE;
pub use failure::{CacheFailure, CacheQuota};
pub use local::LocalCache;
pub use settings::CacheSettings;
pub use store::{CacheStore, host_key, plugin_key};
