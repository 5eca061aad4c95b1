//! `wasmbot run`: the Telegram bot over the full host, until SIGINT/SIGTERM.
//! Built here: the dispatcher, the plugin jobs, the watcher, the health
//! monitor and the HTTP servers; `chat/telegram` connects, receives and drains.

use std::future::Future;

use anyhow::Context as _;
use tokio::sync::watch;

use super::ops::ops_router;
use super::serving::Audience;
use crate::app::config::Config;
use crate::app::root::{Host, shutdown_signal};
use crate::chat::jobs::{RunnerRole, hooks_router};
use crate::chat::telegram;

pub async fn run(config: &Config, migrate: bool) -> anyhow::Result<()> {
    let host = Host::start(config, migrate).await?;
    let plugins = host.registry.snapshot();
    for error in plugins.errors() {
        tracing::error!(plugin = %error.plugin, reason = %error.reason, "plugin not loaded");
    }
    tracing::info!(loaded = plugins.plugins().len(), "plugins loaded");
    let result = serve(&host, config, shutdown_signal()).await;
    // Whatever happened, what the audit queue holds reaches the database.
    host.shutdown().await;
    if result.is_ok() {
        tracing::info!("stopped");
    }
    result
}

/// Runs the bot until `shutdown` resolves, then stops taking updates and
/// waits (bounded) for the messages in flight. The caller flushes the audit.
pub async fn serve(
    host: &Host,
    config: &Config,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let settings = &config.telegram;
    let bot = telegram::connect(settings).await?;
    // Every part of the host that alerts (LLM, health, reloads) shares this alerter.
    bot.attach_admin_chat(settings, &host.services.alerter);
    let access = telegram::access_policy(settings)?;
    let store = host
        .services
        .store
        .clone()
        .context("wasmbot run keeps updates in the database, and none is open")?;
    let dispatcher = host.dispatcher(
        config,
        Audience {
            channel: "telegram",
            bot_username: bot.username.clone(),
            access: Some(access),
        },
    );
    let receiver = bot.receiver(settings, dispatcher.clone(), store.clone());
    bot.publish_menu(&host.registry.snapshot()).await;
    let _watcher = host.watch_plugins(bot.menu_publisher())?;

    let (stop, stopping) = watch::channel(false);
    let serve_on = |listener, router| {
        let mut stopping = stopping.clone();
        crate::infra::http::serve_on(listener, router, async move {
            let _ = stopping.wait_for(|stopped| *stopped).await;
        })
    };
    // Health and metrics on HTTP_ADDR; the webhook and the inbound hooks
    // beside them, or each alone on WEBHOOK_ADDR and HOOKS_ADDR so that only
    // they need be reachable from the internet. All listen before Telegram
    // is told where to post.
    let mut ops = ops_router(host.ops_state());
    let mut servers = tokio::task::JoinSet::new();
    let ops_listener = crate::infra::http::bind("HTTP_ADDR", config.http_addr_or_default()).await?;
    let hooks = hooks_router(dispatcher.clone());
    match config.hooks_addr {
        Some(addr) => {
            let listener = crate::infra::http::bind("HOOKS_ADDR", addr).await?;
            servers.spawn(serve_on(listener, hooks));
        }
        None => ops = ops.merge(hooks),
    }
    if let Some(hook) = receiver.webhook_router() {
        match settings.webhook_addr {
            Some(addr) => {
                let listener = crate::infra::http::bind("WEBHOOK_ADDR", addr).await?;
                servers.spawn(serve_on(listener, hook));
            }
            None => ops = ops.merge(hook),
        }
    }
    servers.spawn(serve_on(ops_listener, ops));
    receiver.register_webhook().await?;
    // Resolves when a server ends: at shutdown, or when one failed.
    let http = async move {
        match servers.join_next().await {
            Some(served) => served.context("the HTTP server stopped")?,
            None => Ok(()),
        }
    };
    // Due jobs and webhook deliveries, in whichever replica leads them.
    let jobs = host.spawn_plugin_jobs(
        RunnerRole::Bot,
        dispatcher,
        bot.job_output(settings, &store),
        stopping.clone(),
    );
    host.spawn_health_monitor(config, stopping);
    let received = receiver.receive(shutdown, &stop, http).await;
    if let Some(jobs) = jobs {
        let _ = jobs.await;
    }
    received
}
