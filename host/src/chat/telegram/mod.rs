//! `wasmbot run`: the Telegram adapter. One update travels
//! polling/webhook -> `Inbox::keep` (a durable row, before Telegram is told
//! it was received) -> `inbox::run` claims it (the oldest pending update of
//! its chat, leased to this process) -> the chat's lane ->
//! `TelegramAdapter::handle` -> `Dispatcher::handle` (access check, plugin)
//! -> `ReplySender` -> Telegram -> the row is marked done.

mod inbox;
mod menu;
mod polling;
mod replies;
mod settings;
mod updates;
mod webhook;

pub use inbox::{Inbox, MAX_ATTEMPTS, MAX_IN_FLIGHT};
pub use replies::ReplySender;
pub use settings::{OPS_PATHS, TelegramSettings};

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use sha2::{Digest as _, Sha256};
use teloxide::prelude::{Bot, Requester as _};
use teloxide::types::Update;
use tokio::sync::watch;

use crate::alert::{AlertSink, SinkFuture};
use crate::app::Host;
use crate::chat::Dispatcher;
use crate::chat::access::AccessPolicy;
use crate::config::Config;
use crate::http::OpsState;
use crate::runtime::{ReloadOutcome, ReplyFormat};
use crate::services::HostServices;
use updates::incoming_message;

/// How long shutdown waits for messages in flight.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(30);

/// Everything one update needs on its way through.
pub struct TelegramAdapter {
    bot: Bot,
    dispatcher: Arc<Dispatcher>,
    replies: ReplySender,
    inbox: Inbox,
}

impl TelegramAdapter {
    /// Handles one claimed update: the plugin's answer is sent before this
    /// returns Ok. An error (the reply could not be sent) means "try again".
    async fn handle(&self, update: Update) -> anyhow::Result<()> {
        let Some(incoming) = incoming_message(&update) else {
            return Ok(());
        };
        let chat_id = incoming.chat_id;
        let Some(reply) = self.dispatcher.handle(incoming).await else {
            return Ok(());
        };
        self.replies
            .send(chat_id, &reply.text, reply.format)
            .await
            .with_context(|| {
                format!(
                    "sending the reply (correlation id {}) to chat {chat_id}",
                    reply.correlation_id
                )
            })
    }

    fn services(&self) -> &HostServices {
        self.dispatcher.services()
    }
}

/// Runs the bot until `shutdown` resolves, then stops taking updates and
/// waits (bounded) for the messages in flight. The caller flushes the audit.
pub async fn serve(
    config: &Config,
    host: &Host,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let settings = &config.telegram;
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
        .with_access(access);
    let adapter = Arc::new(TelegramAdapter {
        bot: bot.clone(),
        dispatcher: Arc::new(dispatcher),
        replies,
        inbox: Inbox::new(store, bot_id, settings.inbox_lease),
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
    .with_context(|| format!("watching {}", config.plugins_dir.display()))?;

    let (stop, stopping) = watch::channel(false);
    let serve_on = |listener, router| {
        let mut stopping = stopping.clone();
        crate::http::serve_on(
            listener,
            router,
            async move { stopped(&mut stopping).await },
        )
    };
    // Health and metrics on HTTP_ADDR; the webhook beside them, or alone on
    // WEBHOOK_ADDR so that only it need be reachable from the internet. Both
    // listen before Telegram is told where to post.
    let mut ops = crate::http::ops_router(OpsState {
        services: host.services.clone(),
        registry: Some(host.registry.clone()),
    });
    let mut servers = tokio::task::JoinSet::new();
    let ops_listener = crate::http::bind("HTTP_ADDR", config.http_addr_or_default()).await?;
    let webhook = settings
        .webhook_url
        .as_ref()
        .map(|url| (url, webhook_secret(token.expose())));
    if let Some((url, secret)) = &webhook {
        let hook = webhook::router(adapter.clone(), url.path(), secret.clone());
        match settings.webhook_addr {
            Some(addr) => {
                let listener = crate::http::bind("WEBHOOK_ADDR", addr).await?;
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
    let runner = tokio::spawn(inbox::run(adapter.clone(), stopping.clone()));
    if let Some(monitor) = host.services.health.clone() {
        let mut stopping = stopping.clone();
        let interval = config.health.interval;
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
pub fn admin_alert_sink(config: &Config) -> anyhow::Result<Option<Arc<dyn AlertSink>>> {
    let settings = &config.telegram;
    let (Some(token), Some(chat_id)) = (&settings.bot_token, settings.admin_chat_id) else {
        return Ok(None);
    };
    let bot = connect(token.expose(), settings)?;
    Ok(Some(Arc::new(AdminChat {
        replies: ReplySender::new(bot),
        chat_id,
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

/// Resolves once `stop` turns true.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
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
                .send(chat_id, &text, ReplyFormat::Plain)
                .await
                .with_context(|| format!("sending an alert to TELEGRAM_ADMIN_CHAT_ID {chat_id}"))
        })
    }
}
