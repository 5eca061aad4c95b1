//! `wasmbot run`: the Telegram bot over the full host, until SIGINT/SIGTERM.

use crate::app::config::Config;
use crate::app::root::{Host, shutdown_signal};

pub async fn run(config: &Config, migrate: bool) -> anyhow::Result<()> {
    let host = Host::start(config, migrate).await?;
    let plugins = host.registry.snapshot();
    for error in plugins.errors() {
        tracing::error!(plugin = %error.plugin, reason = %error.reason, "plugin not loaded");
    }
    tracing::info!(loaded = plugins.plugins().len(), "plugins loaded");
    let result = host.serve_telegram(config, shutdown_signal()).await;
    // Whatever happened, what the audit queue holds reaches the database.
    host.shutdown().await;
    if result.is_ok() {
        tracing::info!("stopped");
    }
    result
}
