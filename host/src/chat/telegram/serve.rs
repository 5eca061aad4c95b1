//! The bot's connection to Telegram: connect (`getMe`), receive updates
//! (polling or webhook) into the inbox, and stop without losing what was
//! received. What serves beside it is built by the composition root.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use sha2::{Digest as _, Sha256};
use teloxide::prelude::{Bot, Requester as _};
use tokio::sync::watch;
use url::Url;

use super::adapter::TelegramAdapter;
use super::inbox::Inbox;
use super::jobs::TelegramJobs;
use super::replies::ReplySender;
use super::settings::TelegramSettings;
use super::{menu, polling, runner, webhook};
use crate::chat::Dispatcher;
use crate::chat::access::AccessPolicy;
use crate::chat::jobs::JobOutput;
use crate::infra::alert::{AlertSink, Alerter, SinkFuture};
use crate::infra::store::Store;
use crate::runtime::{Format, PluginSet};

/// How long shutdown waits for messages in flight.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(30);

/// A bot the Bot API accepted (`getMe`): what the composition root builds
/// the dispatcher, the jobs and the alerts of `wasmbot run` with.
pub struct TelegramBot {
    bot: Bot,
    /// Our @username: the dispatcher tells group chatter for us by it.
    pub username: Option<String>,
    bot_id: i64,
    replies: ReplySender,
    /// The webhook's secret token, derived from the bot token.
    webhook_secret: String,
}

/// Connects with `TELEGRAM_BOT_TOKEN` and asks Telegram who the bot is.
pub async fn connect(settings: &TelegramSettings) -> anyhow::Result<TelegramBot> {
    let token = settings.bot_token.as_ref().context(
        "TELEGRAM_BOT_TOKEN is not set: `wasmbot run` needs the token @BotFather gave you (or talk to the bot with `wasmbot chat`)",
    )?;
    let bot = client(token.expose(), settings)?;
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
    Ok(TelegramBot {
        replies: ReplySender::new(bot.clone()),
        bot_id: i64::try_from(me.user.id.0).context("the bot's user id is out of range")?,
        webhook_secret: webhook_secret(token.expose()),
        bot,
        username,
    })
}

/// Who may talk to the bot: `TELEGRAM_ALLOWED_USERS`, or everyone when the
/// operator said so (`TELEGRAM_ALLOW_EVERYONE=true`); refused unset.
pub fn access_policy(settings: &TelegramSettings) -> anyhow::Result<AccessPolicy> {
    settings.check_access_configured()?;
    Ok(match &settings.allowed_users {
        Some(users) if !users.is_empty() => {
            AccessPolicy::only(users.iter().filter_map(|u| i64::try_from(u.0).ok()))
        }
        _ => {
            tracing::warn!("TELEGRAM_ALLOW_EVERYONE=true: anyone who finds the bot can use it");
            AccessPolicy::everyone()
        }
    })
}

impl TelegramBot {
    /// Alerts from every part of the host (LLM, health, reloads) go to the
    /// admin chat, where one is set.
    pub fn attach_admin_chat(&self, settings: &TelegramSettings, alerter: &Alerter) {
        match admin_chat(&self.replies, settings) {
            Some(sink) => alerter.attach(sink),
            None => tracing::warn!("TELEGRAM_ADMIN_CHAT_ID is not set: alerts go to the log only"),
        }
    }

    /// Where the plugins' due jobs are delivered.
    pub fn job_output(&self, settings: &TelegramSettings, store: &Store) -> Arc<dyn JobOutput> {
        jobs_through(&self.replies, settings, store)
    }

    /// Publishes the commands of `plugins` as the bot's menu.
    pub async fn publish_menu(&self, plugins: &PluginSet) {
        menu::publish(&self.bot, plugins).await;
    }

    /// Publishes each new set of plugins as the menu, in the background
    /// (for the plugins folder's watcher).
    pub fn menu_publisher(&self) -> impl Fn(&PluginSet) + Send + Sync + 'static {
        let bot = self.bot.clone();
        move |plugins: &PluginSet| {
            let (bot, plugins) = (bot.clone(), plugins.clone());
            tokio::spawn(async move { menu::publish(&bot, &plugins).await });
        }
    }

    /// The receiving side: updates kept in the inbox, then handed to `dispatcher`.
    pub fn receiver(
        &self,
        settings: &TelegramSettings,
        dispatcher: Arc<Dispatcher>,
        store: Store,
    ) -> TelegramReceiver {
        let adapter = Arc::new(TelegramAdapter {
            bot: self.bot.clone(),
            dispatcher,
            replies: self.replies.clone(),
            inbox: Inbox::new(
                store,
                self.bot_id,
                &settings.instance_id,
                settings.inbox_lease,
            ),
        });
        TelegramReceiver {
            adapter,
            webhook: settings
                .webhook_url
                .clone()
                .map(|url| (url, self.webhook_secret.clone())),
        }
    }
}

/// Receives updates (long polling, or the webhook Telegram posts to), keeps
/// each in the inbox and hands it on; drains what is in flight at shutdown.
pub struct TelegramReceiver {
    adapter: Arc<TelegramAdapter>,
    webhook: Option<(Url, String)>,
}

impl TelegramReceiver {
    /// The route Telegram posts updates to, when `TELEGRAM_WEBHOOK_URL` is
    /// set: the caller serves it (alone on `WEBHOOK_ADDR`, or beside the ops
    /// endpoints) before [`Self::register_webhook`].
    pub fn webhook_router(&self) -> Option<axum::Router> {
        let (url, secret) = self.webhook.as_ref()?;
        Some(webhook::router(
            self.adapter.clone(),
            url.path(),
            secret.clone(),
        ))
    }

    /// Tells Telegram where to post (when a webhook is set); the route must
    /// be listening already.
    pub async fn register_webhook(&self) -> anyhow::Result<()> {
        match &self.webhook {
            Some((url, secret)) => webhook::register(&self.adapter.bot, url, secret).await,
            None => Ok(()),
        }
    }

    /// Handles updates — by long polling, or as the webhook delivers them
    /// while `http` serves it — until `shutdown` resolves or `http` ends
    /// (a failure); then tells everything listening to `stop` to stop and
    /// waits (bounded) for the messages in flight.
    pub async fn receive(
        self,
        shutdown: impl Future<Output = ()> + Send,
        stop: &watch::Sender<bool>,
        http: impl Future<Output = anyhow::Result<()>> + Send + 'static,
    ) -> anyhow::Result<()> {
        let adapter = self.adapter;
        let stopping = stop.subscribe();
        // Updates kept before a crash or a restart are the oldest: claimed first.
        let runner = tokio::spawn(runner::run(adapter.clone(), stopping.clone()));
        let updates = match self.webhook {
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
}

/// Alerts to `TELEGRAM_ADMIN_CHAT_ID`, for processes that do not run the
/// bot (the worker); None unless both the token and the chat are set.
pub fn admin_alert_sink(settings: &TelegramSettings) -> anyhow::Result<Option<Arc<dyn AlertSink>>> {
    let (Some(token), Some(_)) = (&settings.bot_token, settings.admin_chat_id) else {
        return Ok(None);
    };
    let replies = ReplySender::new(client(token.expose(), settings)?);
    Ok(admin_chat(&replies, settings))
}

/// Where a process that does not run the bot (the worker) delivers the
/// jobs it fires: the Bot API, with the admin chat for jobs addressed to it.
/// None unless the token is set.
pub fn job_output(
    settings: &TelegramSettings,
    store: &Store,
) -> anyhow::Result<Option<Arc<dyn JobOutput>>> {
    let Some(token) = &settings.bot_token else {
        return Ok(None);
    };
    let replies = ReplySender::new(client(token.expose(), settings)?);
    Ok(Some(jobs_through(&replies, settings, store)))
}

/// The admin chat as an alert sink, where `TELEGRAM_ADMIN_CHAT_ID` is set.
fn admin_chat(replies: &ReplySender, settings: &TelegramSettings) -> Option<Arc<dyn AlertSink>> {
    let chat_id = settings.admin_chat_id?;
    Some(Arc::new(AdminChat {
        replies: replies.clone(),
        chat_id,
    }))
}

/// Due jobs delivered through `replies` (the admin chat's to it).
fn jobs_through(
    replies: &ReplySender,
    settings: &TelegramSettings,
    store: &Store,
) -> Arc<dyn JobOutput> {
    Arc::new(TelegramJobs {
        replies: replies.clone(),
        admin_chat: settings.admin_chat_id,
        store: store.clone(),
    })
}

/// A Bot API client whose request timeout outlasts a long poll.
fn client(token: &str, settings: &TelegramSettings) -> anyhow::Result<Bot> {
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
