//! Where an event goes, decided without the store or a plugin call: a pure
//! function of the event, what is loaded and the chat's waiting question.
//! The question is read only when the answer depends on it (`ReadQuestion`),
//! so a command never waits on the store; the dispatcher reads it and asks
//! again.

use std::collections::HashMap;
use std::sync::Arc;

use super::command::ParsedCommand;
use super::event::{IncomingMessage, IncomingPress};
use super::native::NativeHandler;
use crate::infra::store::PendingPrompt;
use crate::runtime::{CANCEL_COMMAND, ChatType, HELP_COMMAND, LoadedPlugin, PluginSet};

/// What routing needs to know of the loaded plugins and the host's own
/// commands; what it finds travels in the route (`Plugin`, `Native`).
pub trait Handlers {
    type Plugin;
    type Native;
    /// A command the host answers itself (benchmarks' native handler).
    fn native(&self, command: &str) -> Option<Self::Native>;
    /// The plugin that claims `command`.
    fn command_owner(&self, command: &str) -> Option<Self::Plugin>;
    fn loaded(&self, plugin: &str) -> Option<Self::Plugin>;
    /// Whether `plugin` takes plain text.
    fn takes_free_text(&self, plugin: &Self::Plugin) -> bool;
}

/// The loaded plugins, with the host's native commands.
pub struct Loaded<'a> {
    pub plugins: &'a PluginSet,
    pub native: &'a HashMap<String, NativeHandler>,
}

impl Handlers for Loaded<'_> {
    type Plugin = Arc<LoadedPlugin>;
    type Native = NativeHandler;

    fn native(&self, command: &str) -> Option<NativeHandler> {
        self.native.get(command).cloned()
    }

    fn command_owner(&self, command: &str) -> Option<Arc<LoadedPlugin>> {
        self.plugins.plugin_for(command).cloned()
    }

    fn loaded(&self, plugin: &str) -> Option<Arc<LoadedPlugin>> {
        self.plugins.plugin(plugin).cloned()
    }

    fn takes_free_text(&self, plugin: &Arc<LoadedPlugin>) -> bool {
        plugin.manifest().free_text
    }
}

/// The chat's waiting question, as far as it is known.
#[derive(Clone, Copy)]
pub enum Question<'a> {
    /// Not read (yet): routing asks for it when it matters.
    Unread,
    /// Read: `None` when no question waits (or there is no store).
    Read(Option<&'a PendingPrompt>),
}

/// Where a message goes: to a `P`lugin, a `N`ative command or the host.
#[derive(Debug, PartialEq, Eq)]
pub enum Route<P, N> {
    /// Read the chat's waiting question, then route again.
    ReadQuestion,
    /// The host's `/help`.
    Help,
    /// The host's `/cancel`: the plugin whose question it cancels, if any.
    Cancel(Option<String>),
    /// A command nobody claims.
    UnknownCommand(String),
    /// A command the host answers itself.
    Native(N),
    /// A command of a plugin's. Like a native or an unknown one, it leaves
    /// any waiting question behind, unread.
    Command(P),
    /// Text that answers the question the plugin asked.
    Answer(P),
    /// Text for the default plugin; `clears_question` when a question waited
    /// for a plugin that is gone.
    FreeText { plugin: P, clears_question: bool },
    /// Text no plugin takes.
    NoFreeText { clears_question: bool },
}

/// Where `message` goes: `command` is its parsed command (if it is one),
/// `default_plugin` the operator's `DEFAULT_PLUGIN`, `has_store` whether
/// questions are kept at all.
pub fn route_message<H: Handlers>(
    message: &IncomingMessage,
    command: Option<&ParsedCommand>,
    handlers: &H,
    default_plugin: Option<&str>,
    has_store: bool,
    question: Question<'_>,
) -> Route<H::Plugin, H::Native> {
    if let Some(parsed) = command {
        let name = parsed.name.as_str();
        if name == HELP_COMMAND {
            return Route::Help;
        }
        if name == CANCEL_COMMAND {
            return match (has_store, question) {
                (true, Question::Unread) => Route::ReadQuestion,
                (_, Question::Read(Some(waiting))) => Route::Cancel(Some(waiting.plugin.clone())),
                _ => Route::Cancel(None),
            };
        }
        if let Some(native) = handlers.native(name) {
            return Route::Native(native);
        }
        return match handlers.command_owner(name) {
            Some(plugin) => Route::Command(plugin),
            None => Route::UnknownCommand(name.to_string()),
        };
    }

    let mut clears_question = false;
    if has_store {
        match question {
            Question::Unread => return Route::ReadQuestion,
            Question::Read(Some(waiting)) if answers(waiting, message) => {
                if let Some(plugin) = handlers.loaded(&waiting.plugin) {
                    return Route::Answer(plugin);
                }
                // Its plugin is gone: the question goes, the text goes on.
                clears_question = true;
            }
            Question::Read(_) => {}
        }
    }
    let free_text = default_plugin
        .and_then(|name| handlers.loaded(name))
        .filter(|plugin| handlers.takes_free_text(plugin));
    match free_text {
        Some(plugin) => Route::FreeText {
            plugin,
            clears_question,
        },
        None => Route::NoFreeText { clears_question },
    }
}

/// Whether `message` answers `waiting`: in a private chat any message, in
/// a group only one from the user who was asked.
pub fn answers(waiting: &PendingPrompt, message: &IncomingMessage) -> bool {
    message.chat_type == ChatType::Private || waiting.user_id == message.user_id
}

/// Where a press on one of a plugin's buttons goes.
#[derive(Debug, PartialEq, Eq)]
pub enum PressRoute<P> {
    ReadQuestion,
    /// The agent's own Allow / Deny.
    Agent,
    /// The button's plugin is not loaded.
    PluginMissing,
    /// To the plugin; `answers_question` when it is the plugin that asked
    /// the chat's question and this user may answer it.
    Plugin {
        plugin: P,
        answers_question: bool,
    },
}

/// Where a press goes once its button is known to belong to `plugin`
/// (`agent_buttons`: the agent's own mark).
pub fn route_press<H: Handlers>(
    press: &IncomingPress,
    owner: &str,
    agent_buttons: &str,
    handlers: &H,
    question: Question<'_>,
) -> PressRoute<H::Plugin> {
    if owner == agent_buttons {
        return PressRoute::Agent;
    }
    let Some(plugin) = handlers.loaded(owner) else {
        return PressRoute::PluginMissing;
    };
    match question {
        Question::Unread => PressRoute::ReadQuestion,
        Question::Read(waiting) => PressRoute::Plugin {
            plugin,
            answers_question: waiting.is_some_and(|waiting| {
                waiting.plugin == owner
                    && (press.chat_type == ChatType::Private || waiting.user_id == press.user_id)
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::command;

    /// Plugins by name: commands they claim, and whether they take free text.
    struct Fake(&'static [(&'static str, &'static [&'static str], bool)]);

    impl Handlers for Fake {
        type Plugin = &'static str;
        type Native = &'static str;
        fn native(&self, command: &str) -> Option<&'static str> {
            (command == "native").then_some("native")
        }
        fn command_owner(&self, command: &str) -> Option<&'static str> {
            self.0
                .iter()
                .find(|(_, commands, _)| commands.contains(&command))
                .map(|(name, _, _)| *name)
        }
        fn loaded(&self, plugin: &str) -> Option<&'static str> {
            self.0
                .iter()
                .find(|(name, _, _)| *name == plugin)
                .map(|(name, _, _)| *name)
        }
        fn takes_free_text(&self, plugin: &&'static str) -> bool {
            self.0.iter().any(|(name, _, free)| name == plugin && *free)
        }
    }

    type Routed = Route<&'static str, &'static str>;

    const LOADED: Fake = Fake(&[
        ("notes", &["note", "notes"], false),
        ("assistant", &["ask"], true),
    ]);

    fn message(chat_type: ChatType, user_id: i64, text: &str) -> IncomingMessage {
        IncomingMessage {
            chat_type,
            ..IncomingMessage::private(1, user_id, Some("ada"), text)
        }
    }

    fn waiting(plugin: &str, user_id: i64) -> PendingPrompt {
        PendingPrompt {
            plugin: plugin.into(),
            user_id,
            state: "s".into(),
            expires_at: i64::MAX,
        }
    }

    fn route(text: &str, default: Option<&str>, store: bool, question: Question<'_>) -> Routed {
        let incoming = message(ChatType::Private, 7, text);
        let parsed = command::parse(text);
        route_message(
            &incoming,
            parsed.as_ref(),
            &LOADED,
            default,
            store,
            question,
        )
    }

    #[test]
    fn a_command_goes_to_its_plugin_without_reading_the_question() {
        assert_eq!(
            route("/note milk", None, true, Question::Unread),
            Route::Command("notes")
        );
        assert_eq!(
            route("/native", None, true, Question::Unread),
            Route::Native("native")
        );
        assert_eq!(
            route("/nope", None, true, Question::Unread),
            Route::UnknownCommand("nope".into())
        );
        assert_eq!(route("/help", None, true, Question::Unread), Route::Help);
    }

    #[test]
    fn cancel_reads_the_question_and_names_who_asked() {
        assert_eq!(
            route("/cancel", None, true, Question::Unread),
            Route::ReadQuestion
        );
        let asked = waiting("notes", 7);
        assert_eq!(
            route("/cancel", None, true, Question::Read(Some(&asked))),
            Route::Cancel(Some("notes".into()))
        );
        assert_eq!(
            route("/cancel", None, true, Question::Read(None)),
            Route::Cancel(None)
        );
        assert_eq!(
            route("/cancel", None, false, Question::Unread),
            Route::Cancel(None)
        );
    }

    #[test]
    fn text_answers_a_waiting_question_before_the_default_plugin() {
        assert_eq!(
            route("milk", Some("assistant"), true, Question::Unread),
            Route::ReadQuestion
        );
        let asked = waiting("notes", 7);
        assert_eq!(
            route(
                "milk",
                Some("assistant"),
                true,
                Question::Read(Some(&asked))
            ),
            Route::Answer("notes")
        );
        assert_eq!(
            route("milk", Some("assistant"), true, Question::Read(None)),
            Route::FreeText {
                plugin: "assistant",
                clears_question: false
            }
        );
        // Without a store there is no question to read.
        assert_eq!(
            route("milk", Some("assistant"), false, Question::Unread),
            Route::FreeText {
                plugin: "assistant",
                clears_question: false
            }
        );
    }

    #[test]
    fn a_question_whose_plugin_is_gone_is_cleared_and_the_text_goes_on() {
        let asked = waiting("unloaded", 7);
        assert_eq!(
            route(
                "milk",
                Some("assistant"),
                true,
                Question::Read(Some(&asked))
            ),
            Route::FreeText {
                plugin: "assistant",
                clears_question: true
            }
        );
        assert_eq!(
            route("milk", None, true, Question::Read(Some(&asked))),
            Route::NoFreeText {
                clears_question: true
            }
        );
    }

    #[test]
    fn free_text_needs_a_default_plugin_that_takes_it() {
        // `notes` is loaded but does not take free text.
        assert_eq!(
            route("milk", Some("notes"), true, Question::Read(None)),
            Route::NoFreeText {
                clears_question: false
            }
        );
        assert_eq!(
            route("milk", Some("missing"), false, Question::Unread),
            Route::NoFreeText {
                clears_question: false
            }
        );
    }

    #[test]
    fn in_a_group_only_the_user_asked_answers() {
        let asked = waiting("notes", 7);
        let from = |user| {
            let incoming = message(ChatType::Group, user, "milk");
            route_message(
                &incoming,
                None,
                &LOADED,
                Some("assistant"),
                true,
                Question::Read(Some(&asked)),
            )
        };
        assert_eq!(from(7), Route::Answer("notes"));
        assert_eq!(
            from(8),
            Route::FreeText {
                plugin: "assistant",
                clears_question: false
            }
        );
    }

    fn press(chat_type: ChatType, user_id: i64) -> IncomingPress {
        IncomingPress {
            chat_id: 1,
            user_id,
            username: None,
            chat_type,
            display_name: "Ada".into(),
            message_id: 5,
            token: "t".into(),
        }
    }

    #[test]
    fn a_press_goes_to_its_plugin_and_answers_only_its_own_question() {
        let private = press(ChatType::Private, 7);
        assert_eq!(
            route_press(&private, "@agent", "@agent", &LOADED, Question::Unread),
            PressRoute::Agent
        );
        assert_eq!(
            route_press(&private, "gone", "@agent", &LOADED, Question::Unread),
            PressRoute::PluginMissing
        );
        assert_eq!(
            route_press(&private, "notes", "@agent", &LOADED, Question::Unread),
            PressRoute::ReadQuestion
        );
        let asked = waiting("notes", 7);
        let other = waiting("assistant", 7);
        let read = |press: &IncomingPress, waiting| {
            route_press(press, "notes", "@agent", &LOADED, Question::Read(waiting))
        };
        assert_eq!(
            read(&private, Some(&asked)),
            PressRoute::Plugin {
                plugin: "notes",
                answers_question: true
            }
        );
        assert_eq!(
            read(&private, Some(&other)),
            PressRoute::Plugin {
                plugin: "notes",
                answers_question: false
            }
        );
        assert_eq!(
            read(&private, None),
            PressRoute::Plugin {
                plugin: "notes",
                answers_question: false
            }
        );
        // In a group, a press by someone else does not answer the question.
        assert_eq!(
            read(&press(ChatType::Group, 8), Some(&asked)),
            PressRoute::Plugin {
                plugin: "notes",
                answers_question: false
            }
        );
        assert_eq!(
            read(&press(ChatType::Group, 7), Some(&asked)),
            PressRoute::Plugin {
                plugin: "notes",
                answers_question: true
            }
        );
    }
}
