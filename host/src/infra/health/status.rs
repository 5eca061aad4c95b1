//! What one check found.

use std::time::Duration;

/// One check's deadline.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Healthy,
    Unhealthy,
    NotConfigured,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceHealth {
    pub name: &'static str,
    pub status: Status,
    pub latency_ms: Option<u32>,
    /// The error when unhealthy; a short fact otherwise (e.g. "3 loaded").
    pub detail: Option<String>,
}
