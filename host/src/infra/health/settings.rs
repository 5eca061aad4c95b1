//! `HEALTH_INTERVAL_SECS`.

use std::time::Duration;

use crate::env::{ConfigError, parse_number};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthSettings {
    /// `HEALTH_INTERVAL_SECS`: how often the monitor checks.
    pub interval: Duration,
}

impl HealthSettings {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let interval = parse_number(
            "HEALTH_INTERVAL_SECS",
            get("HEALTH_INTERVAL_SECS"),
            60,
            1..=86_400,
            "seconds",
        )?;
        Ok(Self {
            interval: Duration::from_secs(interval),
        })
    }
}
