//! `wasmbot chat`: the console adapter over the full host.

use std::io::IsTerminal;

use anyhow::Context as _;

use crate::app::config::Config;
use crate::app::root::Host;
use crate::chat::Dispatcher;
use crate::chat::console::{self, ConsoleUser};

pub async fn run(config: &Config, user: ConsoleUser, migrate: bool) -> anyhow::Result<()> {
    let host = Host::start(config, migrate).await?;
    let plugins = host.registry.snapshot();
    for error in plugins.errors() {
        eprintln!("wasmbot: {error}");
    }
    if plugins.plugins().is_empty() {
        eprintln!(
            "wasmbot: no plugins loaded from {} (run `just build-plugins`)",
            config.plugins_dir.display()
        );
    }
    // Rebuilt plugins (`just watch`) are picked up while the console runs.
    let _watcher = crate::runtime::watch(host.registry.clone(), |_, _| {})
        .with_context(|| format!("watching {}", config.plugins_dir.display()))?;
    // Health and metrics only when asked for: the console is a local tool.
    let ops = host.serve_ops_if_configured(config);
    let dispatcher = Dispatcher::new(host.registry.clone(), None)
        .with_services(host.services.clone())
        .with_default_plugin(config.default_plugin.clone());
    let interactive = std::io::stdin().is_terminal();
    if interactive {
        println!("wasmbot console: type /help, or Ctrl-D to leave.");
    }
    let input = tokio::io::BufReader::new(tokio::io::stdin());
    let result = console::run(&dispatcher, &user, input, tokio::io::stdout(), interactive)
        .await
        .context("console input/output failed");
    if let Some(ops) = ops {
        ops.stop().await;
    }
    host.shutdown().await;
    result
}
