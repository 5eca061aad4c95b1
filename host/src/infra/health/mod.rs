//! Health of every service the host depends on: the database, Redis,
//! Qdrant, the LLM and the plugin set, checked in parallel, each within a
//! timeout. The monitor runs the checks every `HEALTH_INTERVAL_SECS`, keeps
//! the latest results (for `/health` and `/metrics`), alerts the admin chat
//! when a service goes down and sends one notice when it is back.

mod checks;
mod monitor;
mod settings;
mod status;

pub use checks::{HealthChecker, PluginReport};
pub use monitor::HealthMonitor;
pub use settings::HealthSettings;
pub use status::{CHECK_TIMEOUT, ServiceHealth, Status};
