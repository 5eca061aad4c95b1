//! `REDIS_URL` and `CACHE_MEMORY_MB`: where the cache lives.

use crate::env::{ConfigError, SecretString, parse_number};

#[derive(Debug, Clone)]
pub struct CacheSettings {
    /// `REDIS_URL`; none: an in-process cache. May hold a password, so it is
    /// kept as a secret and never printed.
    pub redis_url: Option<SecretString>,
    /// `CACHE_MEMORY_MB`: the in-process cache's size (least recently used
    /// entries are evicted beyond it).
    pub memory_mb: u64,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            redis_url: None,
            memory_mb: 64,
        }
    }
}

impl CacheSettings {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let redis_url = get("REDIS_URL").map(|url| url.trim().to_string());
        if let Some(url) = &redis_url {
            let scheme_ok = url.starts_with("redis://") || url.starts_with("rediss://");
            if !scheme_ok || redis::Client::open(url.as_str()).is_err() {
                // The URL may hold a password: say what is wrong, not what it is.
                return Err(ConfigError::new(
                    "REDIS_URL",
                    "expected redis://[:PASSWORD@]HOST[:PORT][/DB]",
                ));
            }
        }
        let memory_mb = parse_number(
            "CACHE_MEMORY_MB",
            get("CACHE_MEMORY_MB"),
            Self::default().memory_mb,
            1..=65_536,
            "MiB",
        )?;
        Ok(Self {
            redis_url: redis_url.map(SecretString::new),
            memory_mb,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<CacheSettings, ConfigError> {
        CacheSettings::from_lookup(crate::env::lookup_in(vars))
    }

    #[test]
    fn unset_means_in_process_and_a_bad_url_is_refused_without_echoing_it() {
        let local = settings(&[]).unwrap();
        assert!(local.redis_url.is_none());
        assert_eq!(local.memory_mb, 64);
        let redis = settings(&[("REDIS_URL", " redis://:pw@cache:6379/2 ")]).unwrap();
        assert_eq!(
            redis.redis_url.as_ref().map(SecretString::expose),
            Some("redis://:pw@cache:6379/2")
        );
        let error = settings(&[("REDIS_URL", "http://:hunter2@cache")]).unwrap_err();
        assert_eq!(error.variable, "REDIS_URL");
        assert!(!error.to_string().contains("hunter2"), "{error}");
        let error = settings(&[("CACHE_MEMORY_MB", "0")]).unwrap_err();
        assert_eq!(error.variable, "CACHE_MEMORY_MB");
    }
}
