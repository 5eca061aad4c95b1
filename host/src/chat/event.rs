//! What adapters hand the dispatcher (a message or a button press) and what
//! they get back: actions to carry out, in order, in the event's chat.

use crate::infra::store::PendingPrompt;
use crate::runtime::{Attachment, ChatType, FileKind, Format, MessageRef, Quoted};

/// A message as an adapter received it.
#[derive(Debug, Clone)]
pub struct IncomingMessage {
    pub chat_id: i64,
    pub user_id: i64,
    pub username: Option<String>,
    pub text: String,
    pub chat_type: ChatType,
    /// First and last name (Telegram); the console uses the username.
    pub display_name: String,
    pub message_id: i64,
    /// The message this one replies to.
    pub reply_to: Option<Quoted>,
    /// The files that came with it (its text is their caption).
    pub attachments: Vec<Attachment>,
}

impl IncomingMessage {
    /// A text from a private chat with no reply and no message id (tests, benchmarks).
    pub fn private(chat_id: i64, user_id: i64, username: Option<&str>, text: &str) -> Self {
        Self {
            chat_id,
            user_id,
            username: username.map(str::to_string),
            text: text.to_string(),
            chat_type: ChatType::Private,
            display_name: username.unwrap_or_default().to_string(),
            message_id: 0,
            reply_to: None,
            attachments: Vec::new(),
        }
    }
}

/// A press on an inline button.
#[derive(Debug, Clone)]
pub struct IncomingPress {
    pub chat_id: i64,
    pub user_id: i64,
    pub username: Option<String>,
    pub chat_type: ChatType,
    pub display_name: String,
    /// The message the button is on.
    pub message_id: i64,
    /// What the host gave the adapter for the button (Telegram's callback_data).
    pub token: String,
}

#[derive(Debug, Clone)]
pub enum Incoming {
    Message(IncomingMessage),
    Press(IncomingPress),
}

impl Incoming {
    pub fn chat_id(&self) -> i64 {
        match self {
            Incoming::Message(message) => message.chat_id,
            Incoming::Press(press) => press.chat_id,
        }
    }

    pub fn user_id(&self) -> i64 {
        match self {
            Incoming::Message(message) => message.user_id,
            Incoming::Press(press) => press.user_id,
        }
    }

    /// Whether the event comes from a private chat with the user.
    pub fn is_private(&self) -> bool {
        let chat_type = match self {
            Incoming::Message(message) => message.chat_type,
            Incoming::Press(press) => press.chat_type,
        };
        chat_type == ChatType::Private
    }

    pub fn username(&self) -> Option<&str> {
        match self {
            Incoming::Message(message) => message.username.as_deref(),
            Incoming::Press(press) => press.username.as_deref(),
        }
    }
}

impl From<IncomingMessage> for Incoming {
    fn from(message: IncomingMessage) -> Self {
        Incoming::Message(message)
    }
}

impl From<IncomingPress> for Incoming {
    fn from(press: IncomingPress) -> Self {
        Incoming::Press(press)
    }
}

/// A button as the adapter shows it: the plugin's label, the host's token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineButton {
    pub label: String,
    pub token: String,
}

pub type Keyboard = Vec<Vec<InlineButton>>;

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    pub text: String,
    pub format: Format,
    pub keyboard: Keyboard,
    pub reply_to: Option<MessageRef>,
    /// The plugin's name for it (`message-ref::named`).
    pub name: Option<String>,
}

impl OutgoingMessage {
    /// Plain text, no buttons.
    pub fn plain(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            format: Format::Plain,
            keyboard: Vec::new(),
            reply_to: None,
            name: None,
        }
    }
}

/// A file to upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingFile {
    pub kind: FileKind,
    pub name: String,
    pub data: bytes::Bytes,
    pub caption: String,
    pub format: Format,
    pub reply_to: Option<MessageRef>,
}

/// One thing the adapter does in the event's chat, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatAction {
    Send(OutgoingMessage),
    Edit {
        message: MessageRef,
        text: Option<String>,
        format: Format,
        keyboard: Keyboard,
    },
    /// A file to upload (a photo or a document) with its caption.
    SendFile(OutgoingFile),
    Delete(MessageRef),
    React {
        message: MessageRef,
        emoji: String,
    },
    Typing,
    /// Answers the button press this event was (Telegram's answerCallbackQuery).
    Notice {
        text: String,
        alert: bool,
    },
}

/// The dispatcher's answer to one event.
#[derive(Debug, Clone)]
pub struct Answer {
    pub correlation_id: String,
    /// The plugin acting (its messages are recorded as its own); `None`
    /// for the host's own texts.
    pub plugin: Option<String>,
    /// The message a press was on, when its button is this plugin's: the
    /// plugin may edit or delete it.
    pub pressed_message: Option<i64>,
    /// Whether the event was a press (answered even with no notice).
    pub is_press: bool,
    pub actions: Vec<ChatAction>,
    /// What becomes of the chat's pending question once the actions are done.
    pub prompt: PromptChange,
}

/// Applied after the answer was delivered, so a question is neither lost
/// nor left behind when sending fails and the event is handled again.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PromptChange {
    #[default]
    Keep,
    /// The question was answered, cancelled or interrupted by a command.
    Clear,
    /// The plugin asked a (new) question.
    Set(PendingPrompt),
    /// A question asked from a due job or a webhook, while nobody was
    /// talking to the plugin: it becomes the chat's only if no other
    /// plugin's question is waiting there (that one keeps its answer).
    Offer(PendingPrompt),
}

impl Answer {
    /// Marks every message and caption as `plugin`'s ("🧩 plugin: ..."), for
    /// the admin chat: a plugin's message there must not pass for one of
    /// the host's alerts.
    pub fn mark_as_from(&mut self, plugin: &str) {
        for action in &mut self.actions {
            match action {
                ChatAction::Send(message) => {
                    message.text =
                        format!("{}{}", from_plugin(plugin, message.format), message.text);
                }
                ChatAction::SendFile(file) => {
                    file.caption = format!("{}{}", from_plugin(plugin, file.format), file.caption);
                }
                _ => {}
            }
        }
    }

    /// What the user reads, in order: every sent text and every edited
    /// text and notice, one per line (the console, tests).
    pub fn text(&self) -> String {
        let texts: Vec<&str> = self
            .actions
            .iter()
            .filter_map(|action| match action {
                ChatAction::Send(message) => Some(message.text.as_str()),
                ChatAction::SendFile(file) if !file.caption.is_empty() => {
                    Some(file.caption.as_str())
                }
                ChatAction::Edit {
                    text: Some(text), ..
                } => Some(text.as_str()),
                ChatAction::Notice { text, .. } if !text.is_empty() => Some(text.as_str()),
                _ => None,
            })
            .collect();
        texts.join("\n")
    }

    /// The format of the first message sent (plain when none).
    pub fn format(&self) -> Format {
        self.actions
            .iter()
            .find_map(|action| match action {
                ChatAction::Send(message) => Some(message.format),
                _ => None,
            })
            .unwrap_or(Format::Plain)
    }
}

/// The first line of a plugin's message in the admin chat, in the message's format.
fn from_plugin(plugin: &str, format: Format) -> String {
    let name: String = match format {
        Format::Plain => plugin.to_string(),
        // MarkdownV2 wants these escaped anywhere in the text.
        Format::Markdown => plugin
            .chars()
            .flat_map(|c| {
                let special = "_*[]()~`>#+-=|{}.!\\".contains(c);
                special
                    .then_some('\\')
                    .into_iter()
                    .chain(std::iter::once(c))
            })
            .collect(),
        Format::Html => plugin
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;"),
    };
    format!("🧩 {name}:\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plugins_name_is_written_in_the_messages_format() {
        assert_eq!(from_plugin("git-hub_2", Format::Plain), "🧩 git-hub_2:\n");
        // MarkdownV2 refuses these unescaped anywhere in a message.
        assert_eq!(
            from_plugin("git-hub_2", Format::Markdown),
            "🧩 git\\-hub\\_2:\n"
        );
        assert_eq!(from_plugin("a<b", Format::Html), "🧩 a&lt;b:\n");
    }
}
