//! The single path every event takes, whichever adapter it came from:
//! correlation id -> access -> where it goes (`route.rs` decides: a
//! command's owner, the plugin whose question or button this answers, or
//! the default plugin for free text) -> its call under its limits ->
//! actions for the adapter. What is kept of each call (its audit entry,
//! the metrics) is `record.rs`'s.

use std::sync::Arc;
use std::time::Instant;

use tracing::Instrument as _;

use super::access::{Access, AccessPolicy, REFUSAL_TEXT};
use super::agent::{AGENT_BUTTONS, AgentLoop, AgentSettings, TurnContext};
use super::carry::carry_out;
use super::command::{self, ParsedCommand};
use super::conversation::{self, DeadButton};
use super::event::{
    Answer, ChatAction, Incoming, IncomingMessage, IncomingPress, OutgoingMessage, PromptChange,
};
use super::help;
use super::native::{NATIVE, NativeHandler, native_call};
use super::record;
use super::route::{self, Loaded, PressRoute, Question, Route};
use crate::infra::services::HostServices;
use crate::infra::store::{PendingPrompt, Store, clean_text};
use crate::runtime::{
    ButtonPress, CANCEL_COMMAND, CallContext, ChatLink, ChatType, Command, Event, EventKind,
    HELP_COMMAND, Happening, HappeningKind, LoadedPlugin, PluginFailure, PluginRegistry, PluginSet,
};

/// Said for plain text when no plugin takes it.
const NO_FREE_TEXT: &str = "I answer commands that start with a slash: send /help to see them.";

pub struct Dispatcher {
    registry: Arc<PluginRegistry>,
    native: std::collections::HashMap<String, NativeHandler>,
    services: Arc<HostServices>,
    access: AccessPolicy,
    /// Our own @username: `/cmd@other_bot` in a group is for someone else,
    /// and free text in a group must mention us (or reply to us).
    bot_username: Option<String>,
    /// The plugin that receives free text (`DEFAULT_PLUGIN`).
    default_plugin: Option<String>,
    /// Where this dispatcher's answers go (`telegram`, `console`): the jobs
    /// its plugins add are fired by a process serving the same.
    channel: &'static str,
    /// The limits on a turn the assistant hands the agent.
    agent: AgentSettings,
}

/// Who handles an event, and with what.
struct Call {
    target: Target,
    event: Event,
    /// How the user knows the handler: "/note", or the plugin's name.
    label: String,
    /// What becomes of the chat's question unless the plugin asks another.
    prompt: PromptChange,
    pressed_message: Option<i64>,
}

enum Target {
    Plugin(Arc<LoadedPlugin>),
    Native(NativeHandler),
}

impl Dispatcher {
    pub fn new(registry: Arc<PluginRegistry>, bot_username: Option<String>) -> Self {
        Self {
            registry,
            services: Arc::default(),
            access: AccessPolicy::everyone(),
            native: Default::default(),
            bot_username,
            default_plugin: None,
            channel: "telegram",
            agent: AgentSettings::default(),
        }
    }

    /// The agent's limits (`AGENT_MAX_STEPS`, `AGENT_TURN_TOKENS`).
    pub fn with_agent(mut self, settings: AgentSettings) -> Self {
        self.agent = settings;
        self
    }

    /// Where answers go (`telegram` unless set): jobs added through this
    /// dispatcher are fired by a runner of the same channel.
    pub fn with_channel(mut self, channel: &'static str) -> Self {
        self.channel = channel;
        self
    }

    pub fn channel(&self) -> &'static str {
        self.channel
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

    /// The plugin that receives plain text (it must declare `free_text`).
    pub fn with_default_plugin(mut self, plugin: Option<String>) -> Self {
        self.default_plugin = plugin;
        self
    }

    pub fn services(&self) -> &HostServices {
        &self.services
    }

    pub fn registry(&self) -> &Arc<PluginRegistry> {
        &self.registry
    }

    /// Handles one event. `None` means it was not for us.
    pub async fn handle(&self, incoming: impl Into<Incoming>) -> Option<Answer> {
        self.handle_in(incoming, None).await
    }

    /// Handles one event from the chat behind `link`, which the plugin's
    /// call may use while it runs (an answer streamed, the event's files).
    pub async fn handle_in(
        &self,
        incoming: impl Into<Incoming>,
        link: Option<Arc<dyn ChatLink>>,
    ) -> Option<Answer> {
        let incoming = incoming.into();
        let correlation_id: Arc<str> = Arc::from(uuid::Uuid::new_v4().simple().to_string());
        let span = tracing::info_span!(
            "message",
            correlation_id = %correlation_id,
            chat_id = incoming.chat_id(),
            user_id = incoming.user_id(),
        );
        self.route(incoming, correlation_id, link)
            .instrument(span)
            .await
    }

    async fn route(
        &self,
        incoming: Incoming,
        correlation_id: Arc<str>,
        link: Option<Arc<dyn ChatLink>>,
    ) -> Option<Answer> {
        let started = Instant::now();
        let is_press = matches!(incoming, Incoming::Press(_));
        let host = |text: String| Some(host_answer(&correlation_id, is_press, text));

        // Parsed once: for the addressing below and for routing.
        let command = match &incoming {
            Incoming::Message(message) => command::parse(&message.text),
            Incoming::Press(_) => None,
        };
        // Group chatter and other bots' commands are not for us, whoever sent them.
        if let Incoming::Message(message) = &incoming
            && !self.for_us(message, command.as_ref())
        {
            tracing::debug!("a message not addressed to the bot, ignored");
            return None;
        }
        let access = self.access.check(incoming.user_id());
        if access != Access::Allowed {
            tracing::warn!(
                status = "denied",
                "message handled: the user is not allowed"
            );
            record::refused(self.services.audit.as_deref(), &incoming, &correlation_id);
            return match access {
                Access::Refused => host(REFUSAL_TEXT.to_string()),
                // A press is answered anyway, so the user's client stops waiting.
                _ if is_press => host(String::new()),
                _ => None,
            };
        }

        let plugins = self.registry.snapshot();
        let routed = match incoming {
            Incoming::Message(message) => {
                self.route_message(message, command, &plugins, &correlation_id)
                    .await
            }
            // Boxed: the store's futures stay out of every message's state machine.
            Incoming::Press(press) => {
                Box::pin(self.route_press(press, &plugins, &correlation_id)).await
            }
        };
        match routed {
            Routed::Host(text, prompt) => {
                let mut answer = host_answer(&correlation_id, is_press, text);
                answer.prompt = prompt;
                Some(answer)
            }
            Routed::Call(call) => Some(
                self.call(*call, is_press, started, &correlation_id, link)
                    .await,
            ),
            Routed::Agent(press, data) => {
                let cx = self.turn_context(&plugins, &correlation_id, link, &press);
                Some(Box::pin(super::agent::resume(cx, &data, press.message_id)).await)
            }
        }
    }

    async fn route_message(
        &self,
        incoming: IncomingMessage,
        command: Option<ParsedCommand>,
        plugins: &PluginSet,
        correlation_id: &str,
    ) -> Routed {
        let store = self.services.store.as_ref();
        let loaded = Loaded {
            plugins,
            native: &self.native,
        };
        let route = |question| {
            route::route_message(
                &incoming,
                command.as_ref(),
                &loaded,
                self.default_plugin.as_deref(),
                store.is_some(),
                question,
            )
        };
        let mut waiting = None;
        let mut decided = route(Question::Unread);
        if matches!(decided, Route::ReadQuestion) {
            if let Some(store) = store {
                waiting = Box::pin(waiting_question(store, incoming.chat_id)).await;
            }
            decided = route(Question::Read(waiting.as_ref()));
        }
        // A command other than /help and /cancel leaves the question behind;
        // it is cleared once the answer was delivered.
        let left_behind = match store {
            Some(_) => PromptChange::Clear,
            None => PromptChange::Keep,
        };
        let clears = |clears_question: bool| match clears_question {
            true => PromptChange::Clear,
            false => PromptChange::Keep,
        };
        let (target, state, prompt) = match decided {
            Route::Help => {
                tracing::info!(command = HELP_COMMAND, status = "ok", "message handled");
                return Routed::Host(help::help_text(plugins), PromptChange::Keep);
            }
            Route::Cancel(cancelled) => {
                tracing::info!(command = CANCEL_COMMAND, status = "ok", "message handled");
                return match cancelled {
                    Some(plugin) => Routed::Host(
                        format!("Cancelled: {plugin} no longer waits for your answer."),
                        PromptChange::Clear,
                    ),
                    None => {
                        Routed::Host("There is no question to cancel.".into(), PromptChange::Keep)
                    }
                };
            }
            Route::UnknownCommand(name) => {
                tracing::info!(command = %name, status = "unknown_command", "message handled");
                return Routed::Host(help::unknown_command_text(&name, plugins), left_behind);
            }
            Route::Native(handler) => (Target::Native(handler), None, left_behind),
            Route::Command(plugin) => (Target::Plugin(plugin), None, left_behind),
            Route::Answer(plugin) => {
                let state = waiting.map(|waiting| waiting.state);
                (Target::Plugin(plugin), state, PromptChange::Clear)
            }
            Route::FreeText {
                plugin,
                clears_question,
            } => {
                if clears_question {
                    question_dropped(waiting.as_ref());
                }
                (Target::Plugin(plugin), None, clears(clears_question))
            }
            Route::NoFreeText { clears_question } => {
                if clears_question {
                    question_dropped(waiting.as_ref());
                }
                tracing::info!(status = "not_a_command", "message handled");
                return Routed::Host(NO_FREE_TEXT.to_string(), clears(clears_question));
            }
            // Asked again once the question was read: routing cannot say more.
            Route::ReadQuestion => {
                tracing::error!("routing asked for the chat's question twice");
                return Routed::Host(NO_FREE_TEXT.to_string(), PromptChange::Keep);
            }
        };
        let (label, kind) = match command {
            Some(parsed) => (
                format!("/{}", parsed.name),
                EventKind::Command(Command {
                    args: parsed.args,
                    name: parsed.name,
                }),
            ),
            None => {
                let label = match &target {
                    Target::Plugin(plugin) => plugin.name().to_string(),
                    Target::Native(_) => NATIVE.to_string(),
                };
                (label, EventKind::Text(self.text_for_plugin(&incoming)))
            }
        };
        Routed::Call(Box::new(Call {
            target,
            label,
            event: Self::event(incoming, kind, state, correlation_id),
            prompt,
            pressed_message: None,
        }))
    }

    async fn route_press(
        &self,
        press: IncomingPress,
        plugins: &PluginSet,
        correlation_id: &str,
    ) -> Routed {
        let Some(store) = self.services.store.as_ref() else {
            return Routed::Host(DeadButton::Unknown.notice().to_string(), PromptChange::Keep);
        };
        let button = match conversation::pressed(store, press.chat_id, &press.token).await {
            Ok(Ok(button)) => button,
            Ok(Err(dead)) => {
                tracing::info!(status = "dead_button", reason = ?dead, "button press handled");
                return Routed::Host(dead.notice().to_string(), PromptChange::Keep);
            }
            Err(error) => {
                tracing::error!(%error, "could not read a button from the store");
                return Routed::Host(
                    "Sorry, that did not work. Please try again.".into(),
                    PromptChange::Keep,
                );
            }
        };
        let loaded = Loaded {
            plugins,
            native: &self.native,
        };
        let route =
            |question| route::route_press(&press, &button.plugin, AGENT_BUTTONS, &loaded, question);
        let mut waiting = None;
        let mut decided = route(Question::Unread);
        if matches!(decided, PressRoute::ReadQuestion) {
            waiting = waiting_question(store, press.chat_id).await;
            decided = route(Question::Read(waiting.as_ref()));
        }
        let (plugin, answers_question) = match decided {
            PressRoute::Agent => return Routed::Agent(press, button.data),
            PressRoute::Plugin {
                plugin,
                answers_question,
            } => (plugin, answers_question),
            PressRoute::PluginMissing | PressRoute::ReadQuestion => {
                tracing::info!(plugin = %button.plugin, status = "plugin_missing", "button press handled");
                return Routed::Host(
                    format!(
                        "This button belongs to {}, which is not available right now.",
                        button.plugin
                    ),
                    PromptChange::Keep,
                );
            }
        };
        // A press on the buttons of the plugin that asked answers its question.
        let (state, prompt) = match waiting {
            Some(waiting) if answers_question => (Some(waiting.state), PromptChange::Clear),
            _ => (None, PromptChange::Keep),
        };
        let event = Event {
            correlation_id: correlation_id.to_string(),
            chat_id: press.chat_id,
            chat_type: press.chat_type,
            user_id: press.user_id,
            username: press.username.clone(),
            display_name: press.display_name.clone(),
            message_id: press.message_id,
            reply_to: None,
            kind: EventKind::Button(ButtonPress {
                data: button.data,
                message_id: press.message_id,
            }),
            text: String::new(),
            attachments: Vec::new(),
            prompt: state,
        };
        Routed::Call(Box::new(Call {
            label: plugin.name().to_string(),
            target: Target::Plugin(plugin),
            event,
            prompt,
            pressed_message: Some(press.message_id),
        }))
    }

    /// Whether a message is for this bot: in a private chat always; in a
    /// group, a command not addressed to another bot (`/cmd@other_bot`), or
    /// text that replies to one of our messages or mentions `@our_name`.
    fn for_us(&self, incoming: &IncomingMessage, command: Option<&ParsedCommand>) -> bool {
        if let Some(parsed) = command {
            return match (&parsed.mention, &self.bot_username) {
                (Some(mention), Some(ours)) => mention.eq_ignore_ascii_case(ours),
                _ => true,
            };
        }
        incoming.chat_type == ChatType::Private
            || incoming
                .reply_to
                .as_ref()
                .is_some_and(|quoted| quoted.from_bot)
            || self.mention_in(incoming.text.trim()).is_some()
    }

    /// Where `@our_name` stands in `text` as a whole word (bytes).
    fn mention_in(&self, text: &str) -> Option<std::ops::Range<usize>> {
        let mention = format!("@{}", self.bot_username.as_deref()?);
        // Usernames are ASCII: the lower-cased copy has the same byte offsets.
        let lower = text.to_ascii_lowercase();
        let wanted = mention.to_ascii_lowercase();
        lower.match_indices(&wanted).find_map(|(at, _)| {
            let end = at + wanted.len();
            let word_goes_on = lower[end..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
            let inside_word = lower[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
            (!word_goes_on && !inside_word).then_some(at..end)
        })
    }

    /// The plain text a plugin receives: trimmed, and in a group without
    /// the mention of the bot (the rest, line breaks included, is kept).
    fn text_for_plugin(&self, incoming: &IncomingMessage) -> String {
        let text = incoming.text.trim();
        if incoming.chat_type == ChatType::Private {
            return text.to_string();
        }
        match self.mention_in(text) {
            Some(range) => {
                let before = text[..range.start].trim_end();
                let after = text[range.end..].trim_start();
                match (before.is_empty(), after.is_empty()) {
                    (false, false) => format!("{before} {after}"),
                    _ => format!("{before}{after}"),
                }
            }
            None => text.to_string(),
        }
    }

    /// The event a plugin receives for `incoming` (taken apart, not copied).
    fn event(
        incoming: IncomingMessage,
        kind: EventKind,
        prompt: Option<String>,
        correlation_id: &str,
    ) -> Event {
        Event {
            correlation_id: correlation_id.to_string(),
            chat_id: incoming.chat_id,
            chat_type: incoming.chat_type,
            user_id: incoming.user_id,
            username: incoming.username,
            display_name: incoming.display_name,
            message_id: incoming.message_id,
            reply_to: incoming.reply_to,
            kind,
            text: incoming.text,
            attachments: incoming.attachments,
            prompt,
        }
    }

    /// Runs the call and turns its actions into what the adapter does.
    async fn call(
        &self,
        call: Call,
        is_press: bool,
        started: Instant,
        correlation_id: &Arc<str>,
        link: Option<Arc<dyn ChatLink>>,
    ) -> Answer {
        let event = &call.event;
        // Only a plugin granted `agent`, from a chat, hands turns to the agent.
        let agent = match (&call.target, &link) {
            (Target::Plugin(plugin), Some(_)) if plugin.manifest().grants("agent") => {
                Some(AgentLoop::new(TurnContext {
                    turn_key: (self.channel == "telegram" && event.message_id != 0)
                        .then(|| format!("telegram:{}:{}", event.chat_id, event.message_id)),
                    ..self.turn_context(
                        &self.registry.snapshot(),
                        correlation_id,
                        link.clone(),
                        &(event.chat_id, event.user_id),
                    )
                }))
            }
            _ => None,
        };
        let ctx = CallContext {
            correlation_id: correlation_id.clone(),
            user_id: event.user_id,
            chat_id: event.chat_id,
            channel: self.channel,
            services: self.services.clone(),
            link,
            agent: agent
                .clone()
                .map(|agent| agent as Arc<dyn crate::runtime::AgentLink>),
            attachments: event.attachments.clone(),
        };
        let (handler_name, outcome) = match &call.target {
            Target::Native(handler) => (NATIVE, native_call(handler, event)),
            Target::Plugin(plugin) => (plugin.name(), plugin.invoke(event, &ctx).await),
        };
        // A short plugin call completes without ever waiting, so a loop of
        // them would hold a worker thread forever; take part in tokio's
        // cooperative budget so the watcher and other chats still run.
        tokio::task::consume_budget().await;
        let elapsed = started.elapsed();
        let duration_ms = elapsed.as_secs_f64() * 1000.0;
        record::call_finished(
            self.services.audit.as_deref(),
            event,
            handler_name,
            &outcome,
            elapsed,
        );
        let kind = record::kind_name(&event.kind);
        let command = match &event.kind {
            EventKind::Command(command) => command.name.as_str(),
            _ => "",
        };
        let mut answer = Answer {
            correlation_id: event.correlation_id.clone(),
            plugin: Some(handler_name.to_string()),
            pressed_message: call.pressed_message,
            is_press,
            actions: Vec::new(),
            prompt: call.prompt,
        };
        match outcome {
            Ok(actions) => {
                tracing::info!(
                    plugin = handler_name,
                    kind,
                    command,
                    status = "ok",
                    duration_ms,
                    "message handled"
                );
                carry_out(
                    self.services.store.as_ref(),
                    &mut answer,
                    handler_name,
                    (event.chat_id, event.user_id),
                    actions,
                )
                .await;
                if let Some(agent) = &agent {
                    for (plugin, actions) in agent.take_actions() {
                        carry_out(
                            self.services.store.as_ref(),
                            &mut answer,
                            &plugin,
                            (event.chat_id, event.user_id),
                            actions,
                        )
                        .await;
                    }
                }
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
                        tracing::info!(plugin = handler_name, kind, command, status, duration_ms, %cause, "message handled")
                    }
                    _ => {
                        tracing::error!(plugin = handler_name, kind, command, status, duration_ms, %cause, "message handled")
                    }
                }
                if matches!(failure, PluginFailure::Busy) && answer.prompt == PromptChange::Clear {
                    // "Send it again" must reach the same question.
                    answer.prompt = PromptChange::Keep;
                }
                let text = clean_text(&failure_text(&call.label, &failure)).into_owned();
                answer.actions.push(if is_press {
                    ChatAction::Notice { text, alert: true }
                } else {
                    plain(text)
                });
            }
        }
        answer
    }
}

impl Dispatcher {
    /// What an agent turn in this chat may reach.
    fn turn_context(
        &self,
        plugins: &Arc<PluginSet>,
        correlation_id: &Arc<str>,
        link: Option<Arc<dyn ChatLink>>,
        who: &impl ChatAndUser,
    ) -> TurnContext {
        TurnContext {
            services: self.services.clone(),
            plugins: plugins.clone(),
            channel: self.channel,
            link,
            chat_id: who.chat(),
            user_id: who.user(),
            correlation_id: correlation_id.clone(),
            turn_key: None,
            settings: self.agent,
            recorded: Arc::default(),
        }
    }
}

/// Where an agent turn happens.
trait ChatAndUser {
    fn chat(&self) -> i64;
    fn user(&self) -> i64;
}

impl ChatAndUser for (i64, i64) {
    fn chat(&self) -> i64 {
        self.0
    }
    fn user(&self) -> i64 {
        self.1
    }
}

impl ChatAndUser for IncomingPress {
    fn chat(&self) -> i64 {
        self.chat_id
    }
    fn user(&self) -> i64 {
        self.user_id
    }
}

impl Dispatcher {
    /// A due job or a webhook delivery for `plugin`: its `on-event` under
    /// its limits, then its actions for the adapter, all in
    /// `happening.chat_id` (the job's chat or the admin chat: the plugin
    /// cannot name another). `user_id` is who added the job (0 for a
    /// webhook). The plugin's own error text is its answer; a failure the
    /// host caught (a crash, a timeout, no such plugin) is returned for the
    /// runner to try again.
    pub async fn handle_happening(
        &self,
        plugin: &str,
        happening: Happening,
        user_id: i64,
    ) -> Result<Answer, PluginFailure> {
        let span = tracing::info_span!(
            "event",
            correlation_id = %happening.correlation_id,
            chat_id = happening.chat_id,
            plugin,
        );
        async move {
            let started = Instant::now();
            let kind = match &happening.kind {
                HappeningKind::Job(_) => "job",
                HappeningKind::Webhook(_) => "webhook",
            };
            let Some(loaded) = self.registry.snapshot().plugin(plugin).cloned() else {
                tracing::warn!(kind, status = "plugin_missing", "event not handled: the plugin is not loaded");
                return Err(PluginFailure::Crashed(format!("the plugin `{plugin}` is not loaded")));
            };
            let ctx = CallContext {
                agent: None,
                correlation_id: Arc::from(happening.correlation_id.as_str()),
                user_id,
                chat_id: happening.chat_id,
                channel: self.channel,
                services: self.services.clone(),
                link: None,
                attachments: Vec::new(),
            };
            let outcome = loaded.invoke_happening(&happening, &ctx).await;
            tokio::task::consume_budget().await;
            let elapsed = started.elapsed();
            let seconds = elapsed.as_secs_f64();
            record::happening_finished(
                self.services.audit.as_deref(),
                &happening,
                (kind, user_id),
                plugin,
                &outcome,
                elapsed,
            );
            let mut answer = Answer {
                correlation_id: happening.correlation_id.clone(),
                plugin: Some(plugin.to_string()),
                pressed_message: None,
                is_press: false,
                actions: Vec::new(),
                prompt: PromptChange::Keep,
            };
            match outcome {
                Ok(actions) => {
                    tracing::info!(kind, status = "ok", duration_ms = seconds * 1000.0, "event handled");
                    carry_out(self.services.store.as_ref(), &mut answer, plugin, (happening.chat_id, user_id), actions)
                        .await;
                    // Nobody was talking to the plugin: its question must
                    // not take over one another plugin is waiting on.
                    if let PromptChange::Set(prompt) = std::mem::take(&mut answer.prompt) {
                        answer.prompt = PromptChange::Offer(prompt);
                    }
                    Ok(answer)
                }
                Err(PluginFailure::Declined(text)) => {
                    tracing::info!(kind, status = "declined", duration_ms = seconds * 1000.0, "event handled");
                    answer.actions.push(plain(clean_text(&text).into_owned()));
                    Ok(answer)
                }
                Err(failure) => {
                    let cause = failure.to_string();
                    tracing::error!(kind, status = failure.status(), duration_ms = seconds * 1000.0, cause = %clean_text(&cause), "event handled");
                    Err(failure)
                }
            }
        }
        .instrument(span)
        .await
    }
}

/// Where routing ends.
enum Routed {
    /// The host answers with this text itself (and the chat's question may change).
    Host(String, PromptChange),
    Call(Box<Call>),
    /// A press on the agent's Allow / Deny (with the button's data).
    Agent(IncomingPress, String),
}

/// The question's plugin is gone: the question goes, the text goes on.
fn question_dropped(waiting: Option<&PendingPrompt>) {
    let plugin = waiting.map_or("?", |waiting| waiting.plugin.as_str());
    tracing::warn!(%plugin, "the plugin that asked a question is not loaded; its question is dropped");
}

async fn waiting_question(store: &Store, chat_id: i64) -> Option<PendingPrompt> {
    match conversation::waiting_question(store, chat_id).await {
        Ok(prompt) => prompt,
        Err(error) => {
            // Without the store the question cannot be answered now; the
            // message is handled as if none were waiting.
            tracing::error!(%error, "could not read the chat's pending question");
            None
        }
    }
}

fn plain(text: String) -> ChatAction {
    ChatAction::Send(OutgoingMessage::plain(text))
}

/// The host's own text: a message, or the notice answering a press.
fn host_answer(correlation_id: &str, is_press: bool, text: String) -> Answer {
    let text = clean_text(&text).into_owned();
    let action = if is_press {
        ChatAction::Notice { text, alert: false }
    } else {
        plain(text)
    };
    Answer {
        correlation_id: correlation_id.to_string(),
        plugin: None,
        pressed_message: None,
        is_press,
        actions: vec![action],
        prompt: PromptChange::Keep,
    }
}

/// What the user reads when a call fails; the cause itself goes to the log.
/// `handler` is "/note" for a command, the plugin's name otherwise.
fn failure_text(handler: &str, failure: &PluginFailure) -> String {
    match failure {
        PluginFailure::Declined(text) => text.clone(),
        PluginFailure::Timeout(_) => {
            format!("Sorry, {handler} took too long and was stopped. Please try again later.")
        }
        PluginFailure::OutOfMemory(_) => {
            format!("Sorry, {handler} needed more memory than it is allowed and was stopped.")
        }
        PluginFailure::Crashed(_) | PluginFailure::Unsendable(_) => {
            format!("Sorry, something went wrong in {handler}. The problem has been logged.")
        }
        PluginFailure::Busy => {
            format!("The bot is busy right now; please send {handler} again in a moment.")
        }
    }
}
