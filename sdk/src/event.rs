use serde::de::DeserializeOwned;

use crate::{
    Attachment, AttachmentKind, ButtonPress, ChatType, Command, Event, EventKind, MessageRef,
};

/// What a handler may take as its argument: the whole [`Event`], or a view
/// of it such as [`crate::Message`]. `Err(text)` is shown to the user.
pub trait FromEvent: Sized {
    fn from_event(event: Event) -> Result<Self, String>;
}

impl FromEvent for Event {
    fn from_event(event: Event) -> Result<Self, String> {
        Ok(event)
    }
}

impl Event {
    /// The command, when this event is one (`/note buy milk`).
    pub fn command(&self) -> Option<&Command> {
        match &self.kind {
            EventKind::Command(command) => Some(command),
            _ => None,
        }
    }

    /// Whether this event is the command `name` (without the slash).
    pub fn is_command(&self, name: &str) -> bool {
        self.command().is_some_and(|command| command.name == name)
    }

    /// The command's arguments (trimmed), or "" when this is no command.
    pub fn args(&self) -> &str {
        self.command().map_or("", |command| command.args.as_str())
    }

    /// The plain text, when this event is plain text (not a command).
    pub fn text_input(&self) -> Option<&str> {
        match &self.kind {
            EventKind::Text(text) => Some(text),
            _ => None,
        }
    }

    /// The button press, when this event is one.
    pub fn press(&self) -> Option<&ButtonPress> {
        match &self.kind {
            EventKind::Button(press) => Some(press),
            _ => None,
        }
    }

    /// The first attachment of `kind` (a photo, a voice note…), if any.
    pub fn attachment(&self, kind: AttachmentKind) -> Option<&Attachment> {
        self.attachments.iter().find(|file| file.kind == kind)
    }

    /// Whether this event answers a question this plugin asked (`ask`).
    pub fn is_answer(&self) -> bool {
        self.prompt.is_some()
    }

    /// The state saved with the question this event answers, as text.
    pub fn prompt_text(&self) -> Option<&str> {
        self.prompt.as_deref()
    }

    /// The state saved with the question this event answers (see
    /// [`crate::Ask::state`]): `Ok(None)` when it answers no question,
    /// `Err` when the state is not a `T`.
    pub fn prompt_state<T: DeserializeOwned>(&self) -> Result<Option<T>, String> {
        match &self.prompt {
            Some(json) => serde_json::from_str(json)
                .map(Some)
                .map_err(|error| format!("unexpected question state: {error}")),
            None => Ok(None),
        }
    }

    /// A name to address the user by: their display name, else their
    /// @username, else "there" ("Hello, there!").
    pub fn display_name(&self) -> &str {
        let name = self.display_name.trim();
        if !name.is_empty() {
            return name;
        }
        self.username
            .as_deref()
            .filter(|name| !name.is_empty())
            .unwrap_or("there")
    }

    /// This event's message (for a button press, the message the button is
    /// on): to reply to, react to, edit or delete.
    pub fn message_ref(&self) -> MessageRef {
        MessageRef::Id(self.message_id)
    }

    /// Whether the chat is a private one with the user.
    pub fn is_private(&self) -> bool {
        matches!(self.chat_type, ChatType::Private)
    }

    /// A number unique to this event (a hash of its correlation id), e.g.
    /// an id for a vector point created from it.
    pub fn unique_id(&self) -> u64 {
        fnv1a(&self.correlation_id)
    }

    /// Seconds since the Unix epoch, by the host's clock.
    pub fn unix_time(&self) -> u64 {
        unix_time()
    }
}

impl ButtonPress {
    /// The message the pressed button is on.
    pub fn message(&self) -> MessageRef {
        MessageRef::Id(self.message_id)
    }
}

/// FNV-1a: stable across builds and hosts, unlike std's hasher.
pub(crate) fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

pub(crate) fn unix_time() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}
