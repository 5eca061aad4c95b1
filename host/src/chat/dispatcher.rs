//! The single path every message takes, whichever adapter it came from:
//! correlation id -> parse the command -> find the plugin in the current
//! snapshot -> run it under its limits -> a reply for the user.

use std::sync::Arc;
use std::time::Instant;

use tracing::Instrument as _;

use super::access::{Access, AccessPolicy, REFUSAL_TEXT};
use super::command;
use super::help;
use crate::infra::metrics::{MessageLabels, label, metrics};
use crate::infra::services::HostServices;
use crate::infra::store::AuditEntry;
use crate::infra::store::clean_text;
use crate::runtime::{
    CallContext, HELP_COMMAND, Message, PluginFailure, PluginRegistry, Reply, ReplyFormat,
};

/// A message as an adapter received it.
#[derive(Debug, Clone)]
pub struct IncomingMessage {
    pub chat_id: i64,
    pub user_id: i64,
    pub username: Option<String>,
    pub text: String,
}

/// What the adapter should send back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingReply {
    pub text: String,
    pub format: ReplyFormat,
    pub correlation_id: String,
}

/// A command handled by host code instead of a plugin (benchmarks compare
/// the two through this same path).
pub type NativeHandler = Arc<dyn Fn(&Message) -> Reply + Send + Sync>;

/// The plugin name native commands are logged, audited and counted under.
const NATIVE: &str = "native";

pub struct Dispatcher {
    registry: Arc<PluginRegistry>,
    native: std::collections::HashMap<String, NativeHandler>,
    services: Arc<HostServices>,
    access: AccessPolicy,
    /// Our own @username: `/cmd@other_bot` in a group is for someone else.
    bot_username: Option<String>,
}

impl Dispatcher {
    pub fn new(registry: Arc<PluginRegistry>, bot_username: Option<String>) -> Self {
        Self {
            registry,
            services: Arc::default(),
            access: AccessPolicy::everyone(),
            native: Default::default(),
            bot_username,
        }
    }

    /// Lends these services (database, vault, audit) to the plugins.
    pub fn with_services(mut self, services: impl Into<Arc<HostServices>>) -> Self {
        self.services = services.into();
        self
    }

    /// Handles `/command` with host code; it takes precedence over a plugin.
    pub fn with_native_command(mut self, command: &str, handler: NativeHandler) -> Self {
        self.native.insert(command.to_string(), handler);
        self
    }

    /// Who may use the bot; everyone unless set.
    pub fn with_access(mut self, access: AccessPolicy) -> Self {
        self.access = access;
        self
    }

    pub fn services(&self) -> &HostServices {
        &self.services
    }

    pub fn registry(&self) -> &Arc<PluginRegistry> {
        &self.registry
    }

    /// Handles one message. `None` means the message was not for us.
    pub async fn handle(&self, incoming: IncomingMessage) -> Option<OutgoingReply> {
        let correlation_id: Arc<str> = Arc::from(uuid::Uuid::new_v4().simple().to_string());
        let span = tracing::info_span!(
            "message",
            correlation_id = %correlation_id,
            chat_id = incoming.chat_id,
            user_id = incoming.user_id,
        );
        self.route(incoming, correlation_id).instrument(span).await
    }

    async fn route(
        &self,
        incoming: IncomingMessage,
        correlation_id: Arc<str>,
    ) -> Option<OutgoingReply> {
        let started = Instant::now();
        let plugins = self.registry.snapshot();
        // Every reply passes here: a plugin's answer or error text, and host
        // texts that quote the user, reach the user with no control
        // characters but newline and tab (see `infra/store/sanitize.rs`).
        let reply = |text: String, format: ReplyFormat| {
            let text = match clean_text(&text) {
                std::borrow::Cow::Borrowed(_) => text,
                std::borrow::Cow::Owned(clean) => clean,
            };
            Some(OutgoingReply {
                text,
                format,
                correlation_id: correlation_id.to_string(),
            })
        };

        let access = self.access.check(incoming.user_id);
        if access != Access::Allowed {
            tracing::warn!(
                status = "denied",
                "message handled: the user is not allowed"
            );
            self.audit_refusal(&incoming, &correlation_id);
            return match access {
                Access::Refused => reply(REFUSAL_TEXT.to_string(), ReplyFormat::Plain),
                _ => None,
            };
        }

        let Some(parsed) = command::parse(&incoming.text) else {
            tracing::info!(status = "not_a_command", "message handled");
            return reply(help::not_a_command_text(&plugins), ReplyFormat::Plain);
        };
        if let (Some(mention), Some(ours)) = (parsed.mention, &self.bot_username)
            && !mention.eq_ignore_ascii_case(ours)
        {
            tracing::debug!(mention, "command addressed to another bot, ignored");
            return None;
        }
        if parsed.name == HELP_COMMAND {
            tracing::info!(command = HELP_COMMAND, status = "ok", "message handled");
            return reply(help::help_text(&plugins), ReplyFormat::Plain);
        }
        let native = self.native.get(&parsed.name).cloned();
        let plugin = plugins.plugin_for(&parsed.name).cloned();
        if native.is_none() && plugin.is_none() {
            tracing::info!(command = %parsed.name, status = "unknown_command", "message handled");
            return reply(
                help::unknown_command_text(&parsed.name, &plugins),
                ReplyFormat::Plain,
            );
        }

        let message = Message {
            correlation_id: correlation_id.to_string(),
            chat_id: incoming.chat_id,
            user_id: incoming.user_id,
            username: incoming.username.clone(),
            command: parsed.name.clone(),
            args: parsed.args.to_string(),
            text: incoming.text.clone(),
        };
        let ctx = CallContext {
            correlation_id: correlation_id.clone(),
            user_id: incoming.user_id,
            chat_id: incoming.chat_id,
            services: self.services.clone(),
        };
        let (handler_name, outcome) = match (&native, &plugin) {
            (Some(handler), _) => (NATIVE, Ok(handler(&message))),
            (None, Some(plugin)) => (plugin.name(), plugin.invoke(&message, &ctx).await),
            (None, None) => return None,
        };
        // A short plugin call completes without ever waiting, so a loop of
        // them would hold a worker thread forever; take part in tokio's
        // cooperative budget so the watcher and other chats still run.
        tokio::task::consume_budget().await;
        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        count_message(handler_name, &outcome, started.elapsed().as_secs_f64());
        let command = parsed.name.as_str();
        self.audit_message(
            &incoming,
            &correlation_id,
            handler_name,
            command,
            &outcome,
            duration_ms,
        );
        match outcome {
            Ok(plugin_reply) => {
                tracing::info!(
                    plugin = handler_name,
                    command,
                    status = "ok",
                    duration_ms,
                    "message handled"
                );
                reply(plugin_reply.text, plugin_reply.format)
            }
            Err(failure) => {
                let status = failure.status();
                // The cause may hold a plugin's text: cleaned, it cannot forge log lines.
                let cause = failure.to_string();
                let cause = clean_text(&cause);
                match &failure {
                    // A plugin's own error reply (usage, "not configured") is
                    // a normal answer; a full pool is load, not the plugin's fault.
                    PluginFailure::Declined(_) | PluginFailure::Busy => {
                        tracing::info!(plugin = handler_name, command, status, duration_ms, %cause, "message handled")
                    }
                    _ => {
                        tracing::error!(plugin = handler_name, command, status, duration_ms, %cause, "message handled")
                    }
                }
                reply(failure_text(command, &failure), ReplyFormat::Plain)
            }
        }
    }
}

impl Dispatcher {
    /// A message from someone not on the allow-list: no plugin ran.
    fn audit_refusal(&self, incoming: &IncomingMessage, correlation_id: &str) {
        let Some(writer) = &self.services.audit else {
            return;
        };
        writer.record(AuditEntry {
            correlation_id: Some(correlation_id.to_string()),
            user_id: Some(incoming.user_id),
            chat_id: Some(incoming.chat_id),
            error: Some("user is not in TELEGRAM_ALLOWED_USERS".into()),
            metadata: sqlx::types::Json(serde_json::json!({ "username": incoming.username })),
            ..AuditEntry::new("access", "denied")
        });
    }

    /// One entry per handled message; queued, never awaited.
    fn audit_message(
        &self,
        incoming: &IncomingMessage,
        correlation_id: &str,
        plugin: &str,
        command: &str,
        outcome: &Result<Reply, PluginFailure>,
        duration_ms: f64,
    ) {
        let Some(writer) = &self.services.audit else {
            return;
        };
        let (status, error) = match outcome {
            Ok(_) => ("ok", None),
            Err(failure) => (failure.status(), Some(failure.to_string())),
        };
        writer.record(AuditEntry {
            correlation_id: Some(correlation_id.to_string()),
            user_id: Some(incoming.user_id),
            chat_id: Some(incoming.chat_id),
            plugin: Some(plugin.to_string()),
            error,
            duration_ms: Some(duration_ms),
            metadata: sqlx::types::Json(serde_json::json!({ "command": command })),
            ..AuditEntry::new("command", status)
        });
    }
}

/// The message, its latency and (for a call the host ended) the failure, in the metrics.
fn count_message(plugin: &str, outcome: &Result<Reply, PluginFailure>, seconds: f64) {
    let status = match outcome {
        Ok(_) => "ok",
        Err(failure) => failure.status(),
    };
    let m = metrics();
    m.messages
        .get_or_create(&MessageLabels {
            plugin: plugin.to_string(),
            status: status.to_string(),
        })
        .inc();
    m.handler_seconds.observe(seconds);
    if let Err(failure) = outcome
        && !matches!(failure, PluginFailure::Declined(_))
    {
        m.plugin_failures.get_or_create(&label(status)).inc();
    }
}

/// What the user reads when a call fails; the cause itself goes to the log.
fn failure_text(command: &str, failure: &PluginFailure) -> String {
    match failure {
        PluginFailure::Declined(text) => text.clone(),
        PluginFailure::Timeout(_) => {
            format!("Sorry, /{command} took too long and was stopped. Please try again later.")
        }
        PluginFailure::OutOfMemory(_) => {
            format!("Sorry, /{command} needed more memory than it is allowed and was stopped.")
        }
        PluginFailure::Crashed(_) => {
            format!("Sorry, something went wrong in /{command}. The problem has been logged.")
        }
        PluginFailure::Busy => {
            format!("The bot is busy right now; please send /{command} again in a moment.")
        }
    }
}
