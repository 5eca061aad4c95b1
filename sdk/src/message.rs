use serde::{Deserialize, Serialize};

use crate::event::fnv1a;
use crate::{Event, EventKind, FromEvent};

/// One command addressed to this plugin: the simple view of an [`Event`]
/// for handlers that only answer commands (`fn handle(msg: Message)`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Unique per message; the host tags every log line and audit entry with it.
    pub correlation_id: String,
    pub chat_id: i64,
    pub user_id: i64,
    /// Telegram @username (or the console's --username), when there is one.
    pub username: Option<String>,
    /// The command without the slash or @botname, e.g. "start"; empty for
    /// plain text (which reaches a plugin only with `free_text = true`).
    pub command: String,
    /// Everything after the command, trimmed; empty when there is nothing.
    /// For plain text: the whole text, trimmed.
    pub args: String,
    /// The message exactly as the user sent it.
    pub text: String,
}

impl Message {
    /// A name to address the user by: their @username, or "there" ("Hello, there!").
    pub fn display_name(&self) -> &str {
        self.username
            .as_deref()
            .filter(|name| !name.is_empty())
            .unwrap_or("there")
    }

    /// The arguments split on whitespace.
    pub fn arg_words(&self) -> impl Iterator<Item = &str> {
        self.args.split_whitespace()
    }

    /// A number unique to this message (a hash of its correlation id), e.g.
    /// an id for a vector point created from it.
    pub fn unique_id(&self) -> u64 {
        fnv1a(&self.correlation_id)
    }

    /// Seconds since the Unix epoch, by the host's clock.
    pub fn unix_time(&self) -> u64 {
        crate::event::unix_time()
    }
}

/// A command becomes a `Message`; so does plain text (with an empty
/// `command` and the text as `args`). A button press is refused: a
/// `Message` handler never attaches buttons.
impl FromEvent for Message {
    fn from_event(event: Event) -> Result<Self, String> {
        let (command, args) = match event.kind {
            EventKind::Command(command) => (command.name, command.args),
            EventKind::Text(text) => (String::new(), text.trim().to_string()),
            EventKind::Button(_) => {
                return Err("This plugin doesn't take button presses.".into());
            }
        };
        Ok(Self {
            correlation_id: event.correlation_id,
            chat_id: event.chat_id,
            user_id: event.user_id,
            username: event.username,
            command,
            args,
            text: event.text,
        })
    }
}

/// Escapes every character MarkdownV2 reserves, so `text` shows as written
/// inside a `Reply::markdown`.
pub fn escape_markdown(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if "_*[]()~`>#+-=|{}.!\\".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// Escapes `<`, `>` and `&` for a `Reply::html`.
pub fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
