//! Running the bot: connect, receive updates (polling or webhook), serve
//! the ops endpoints beside them, and stop without losing what was received.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use sha2::{Digest as _, Sha256};
use teloxide::prelude::{Bot, Requester as _};
use tokio::sync::watch;

use super::adapter::{TelegramAdapter, stopped};
use super::inbox::Inbox;
use super::jobs::TelegramJobs;
use super::replies::ReplySender;
use super::settings::TelegramSettings;
use super::{menu, polling, runner, webhook};
use crate::chat::Dispatcher;
use crate::chat::access::AccessPolicy;
use crate::chat::jobs::{JobRunner, RunnerRole, hooks_router};
use crate::infra::alert::{AlertSink, SinkFuture};
use crate::infra::services::HostServices;
use crate::runtime::{Format, PluginRegistry, ReloadOutcome};

/// How long shutdown waits for messages in flight.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(30);

/// What the bot is given by the composition root.
pub struct BotHost<'a> {
    pub settings: &'a TelegramSettings,
    pub services: Arc<HostServices>,
    pub registry: Arc<PluginRegistry>,
    /// The operator's endpoints, served on `ops_addr` (`HTTP_ADDR`); the
    /// webhook is served beside them unless `WEBHOOK_ADDR` is set.
    pub ops: axum::Router,
    pub ops_addr: SocketAddr,
    /// `HOOKS_ADDR`: the inbound webhooks' own listener; None serves them
    /// beside the ops endpoints.
    pub hooks_addr: Option<SocketAddr>,
    /// `HEALTH_INTERVAL_SECS`: how often the health monitor checks.
    pub health_interval: Duration,
    /// `DEFAULT_PLUGIN`: who receives plain text.
    pub default_plugin: Option<String>,
    /// `AGENT_MAX_STEPS`, `AGENT_TURN_TOKENS`.
    pub agent: crate::chat::agent::AgentSettings,
}

/// Runs the bot until `shutdown` resolves, then stops taking updates and
/// waits (bounded) for the messages in flight. The caller flushes the audit.
pub async fn serve(
    host: BotHost<'_>,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let settings = host.settings;
    let token = settings.bot_token.as_ref().context(
        "TELEGRAM_BOT_TOKEN is not set: `wasmbot run` needs the token @BotFather gave you (or talk to the bot with `wasmbot chat`)",
    )?;
    let bot = connect(token.expose(), settings)?;
    let me = bot.get_me().await.map_err(|error| {
        anyhow::anyhow!(
            "Telegram did not accept TELEGRAM_BOT_TOKEN at {} (getMe): {error}",
            settings.api_url
        )
    })?;
    let username = me.user.username.clone();
    tracing::info!(
        bot = username.as_deref().unwrap_or("?"),
        "connected to Telegram"
    );

    let replies = ReplySender::new(bot.clone());
    let services = host.services.clone();
    match settings.admin_chat_id {
        // Every part of the host that alerts (LLM, health, reloads) shares this alerter.
        Some(chat_id) => services.alerter.attach(Arc::new(AdminChat {
            replies: replies.clone(),
            chat_id,
        })),
        None => tracing::warn!("TELEGRAM_ADMIN_CHAT_ID is not set: alerts go to the log only"),
    }
    settings.check_access_configured()?;
    let access = match &settings.allowed_users {
        Some(users) if !users.is_empty() => {
            AccessPolicy::only(users.iter().filter_map(|u| i64::try_from(u.0).ok()))
        }
        _ => {
            tracing::warn!("TELEGRAM_ALLOW_EVERYONE=true: anyone who finds the bot can use it");
            AccessPolicy::everyone()
        }
    };
    let store = host
        .services
        .store
        .clone()
        .context("wasmbot run keeps updates in the database, and none is open")?;
    let bot_id = i64::try_from(me.user.id.0).context("the bot's user id is out of range")?;
    let alerter = services.alerter.clone();
    let dispatcher = Dispatcher::new(host.registry.clone(), username)
        .with_services(services)
        .with_access(access)
        .with_default_plugin(host.default_plugin.clone())
        .with_agent(host.agent);
    let dispatcher = Arc::new(dispatcher);
    let job_runner = JobRunner::new(
        RunnerRole::Bot,
        dispatcher.clone(),
        store.clone(),
        Arc::new(TelegramJobs {
            replies: replies.clone(),
            admin_chat: settings.admin_chat_id,
            store: store.clone(),
        }),
    );
    let adapter = Arc::new(TelegramAdapter {
        bot: bot.clone(),
        dispatcher: dispatcher.clone(),
        replies,
        inbox: Inbox::new(store, bot_id, &settings.instance_id, settings.inbox_lease),
    });

    menu::publish(&bot, &host.registry.snapshot()).await;
    let menu_bot = bot.clone();
    let _watcher = crate::runtime::watch(host.registry.clone(), move |outcomes, plugins| {
        for (plugin, outcome) in outcomes {
            if let ReloadOutcome::Refused { reason } = outcome {
                alerter.alert(
                    &format!("plugin:{plugin}"),
                    format!("⚠️ Plugin `{plugin}` was not reloaded: {reason}. The previous version keeps serving."),
                );
            }
        }
        let (bot, plugins) = (menu_bot.clone(), plugins.clone());
        tokio::spawn(async move { menu::publish(&bot, &plugins).await });
    })
    .with_context(|| format!("watching {}", host.registry.dir().display()))?;

    let (stop, stopping) = watch::channel(false);
    let serve_on = |listener, router| {
        let mut stopping = stopping.clone();
        crate::infra::http::serve_on(
            listener,
            router,
            async move { stopped(&mut stopping).await },
        )
    };
    // Health and metrics on HTTP_ADDR; the webhook and the inbound hooks
    // beside them, or each alone on WEBHOOK_ADDR and HOOKS_ADDR so that only
    // they need be reachable from the internet. All listen before Telegram
    // is told where to post.
    let mut ops = host.ops;
    let mut servers = tokio::task::JoinSet::new();
    let ops_listener = crate::infra::http::bind("HTTP_ADDR", host.ops_addr).await?;
    let hooks = hooks_router(dispatcher);
    match host.hooks_addr {
        Some(addr) => {
            let listener = crate::infra::http::bind("HOOKS_ADDR", addr).await?;
            servers.spawn(serve_on(listener, hooks));
        }
        None => ops = ops.merge(hooks),
    }
    let webhook = settings
        .webhook_url
        .as_ref()
        .map(|url| (url, webhook_secret(token.expose())));
    if let Some((url, secret)) = &webhook {
        let hook = webhook::router(adapter.clone(), url.path(), secret.clone());
        match settings.webhook_addr {
            Some(addr) => {
                let listener = crate::infra::http::bind("WEBHOOK_ADDR", addr).await?;
                servers.spawn(serve_on(listener, hook));
            }
            None => ops = ops.merge(hook),
        }
    }
    servers.spawn(serve_on(ops_listener, ops));
    if let Some((url, secret)) = &webhook {
        webhook::register(&bot, url, secret).await?;
    }
    // Resolves when a server ends: at shutdown, or when one failed.
    let http = async move {
        match servers.join_next().await {
            Some(served) => served.context("the HTTP server stopped")?,
            None => Ok(()),
        }
    };
    // Updates kept before a crash or a restart are the oldest: claimed first.
    let runner = tokio::spawn(runner::run(adapter.clone(), stopping.clone()));
    // Due jobs and webhook deliveries, in whichever replica leads them.
    let jobs = tokio::spawn(job_runner.run(stopping.clone()));
    if let Some(monitor) = host.services.health.clone() {
        let mut stopping = stopping.clone();
        let interval = host.health_interval;
        tokio::spawn(async move {
            monitor
                .run(interval, async move { stopped(&mut stopping).await })
                .await
        });
    }
    let updates = match settings.webhook_url {
        Some(_) => tokio::spawn(http),
        None => {
            let poller = adapter.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = polling::run(poller, stopping) => Ok(()),
                    served = http => served,
                }
            })
        }
    };
    let updates_failed = tokio::select! {
        _ = shutdown => None,
        result = updates => Some(result),
    };
    let _ = stop.send(true);
    let _ = runner.await;
    let _ = jobs.await;
    tracing::info!(
        in_flight = adapter.inbox.in_flight(),
        "stopping: finishing the messages in flight"
    );
    // Unfinished updates stay in the inbox for the next start.
    if !adapter.inbox.drain(DRAIN_DEADLINE).await {
        tracing::error!(
            in_flight = adapter.inbox.in_flight(),
            "messages still running at the shutdown deadline; they are handled again after the next start"
        );
    }
    if let Some(result) = updates_failed {
        result.context("the update receiver stopped")??;
    }
    Ok(())
}

/// Alerts to `TELEGRAM_ADMIN_CHAT_ID`, for processes that do not run the
/// bot (the worker); None unless both the token and the chat are set.
pub fn admin_alert_sink(settings: &TelegramSettings) -> anyhow::Result<Option<Arc<dyn AlertSink>>> {
    let (Some(token), Some(chat_id)) = (&settings.bot_token, settings.admin_chat_id) else {
        return Ok(None);
    };
    let bot = connect(token.expose(), settings)?;
    Ok(Some(Arc::new(AdminChat {
        replies: ReplySender::new(bot),
        chat_id,
    })))
}

/// Where a process that does not run the bot (the worker) delivers the
/// jobs it fires: the Bot API, with the admin chat for jobs addressed to it.
/// None unless the token is set.
pub fn job_output(
    settings: &TelegramSettings,
    store: &crate::infra::store::Store,
) -> anyhow::Result<Option<Arc<dyn crate::chat::jobs::JobOutput>>> {
    let Some(token) = &settings.bot_token else {
        return Ok(None);
    };
    let bot = connect(token.expose(), settings)?;
    Ok(Some(Arc::new(TelegramJobs {
        replies: ReplySender::new(bot),
        admin_chat: settings.admin_chat_id,
        store: store.clone(),
    })))
}

/// A Bot API client whose request timeout outlasts a long poll.
fn connect(token: &str, settings: &TelegramSettings) -> anyhow::Result<Bot> {
    let client = teloxide::net::default_reqwest_settings()
        .timeout(Duration::from_secs(
            u64::from(polling::POLL_TIMEOUT_SECS) + 15,
        ))
        .build()
        .context("building the HTTP client for Telegram")?;
    Ok(Bot::with_client(token, client).set_api_url(settings.api_url.clone()))
}

/// The webhook's secret token: derived from the bot token, so every replica
/// agrees on it without more configuration, and reveals nothing about it.
fn webhook_secret(token: &str) -> String {
    let digest = Sha256::digest(format!("wasmbot webhook secret:{token}"));
    hex::encode(&digest[..24])
}

/// Alerts delivered to the operator's admin chat.
struct AdminChat {
    replies: ReplySender,
    chat_id: i64,
}

impl AlertSink for AdminChat {
    fn deliver(&self, text: String) -> SinkFuture {
        let (replies, chat_id) = (self.replies.clone(), self.chat_id);
        Box::pin(async move {
            replies
                .send(chat_id, &text, Format::Plain)
                .await
                .with_context(|| format!("sending an alert to TELEGRAM_ADMIN_CHAT_ID {chat_id}"))
        })
    }
}
