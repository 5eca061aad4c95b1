//! `wasmbot chat`: the console adapter over the full host.

use std::io::IsTerminal;
use std::sync::Arc;

use anyhow::Context as _;

use super::serving::Audience;
use crate::app::config::Config;
use crate::app::root::Host;
use crate::chat::console::{self, ConsoleJobs, ConsoleUser};
use crate::chat::jobs::RunnerRole;

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
    let _watcher = host.watch_plugins(|_| {})?;
    let dispatcher = host.dispatcher(
        config,
        Audience {
            channel: console::CHANNEL,
            bot_username: None,
            access: None,
        },
    );
    // Health, metrics and webhooks only when asked for: the console is a local tool.
    let ops = host.serve_ops_if_configured(config, &dispatcher);
    // Jobs added in a console (reminders) fire here, between the user's lines.
    let (jobs_output, proactive) = ConsoleJobs::new(user.chat_id);
    let (stop_jobs, jobs_stopping) = tokio::sync::watch::channel(false);
    let jobs = host.spawn_plugin_jobs(
        RunnerRole::Bot,
        dispatcher.clone(),
        Arc::new(jobs_output),
        jobs_stopping,
    );
    let interactive = std::io::stdin().is_terminal();
    if interactive {
        println!(
            "wasmbot console: type /help, /attach PATH [caption] to send a file, or Ctrl-D to leave."
        );
    }
    let input = tokio::io::BufReader::new(tokio::io::stdin());
    let result = console::run(
        &dispatcher,
        &user,
        input,
        tokio::io::stdout(),
        interactive,
        Some(proactive),
    )
    .await
    .context("console input/output failed");
    let _ = stop_jobs.send(true);
    if let Some(jobs) = jobs {
        let _ = jobs.await;
    }
    for server in ops {
        server.stop().await;
    }
    host.shutdown().await;
    result
}
