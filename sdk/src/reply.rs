//! Builders for the actions a handler answers with.

use serde::Serialize;

use crate::{
    Action, Button, Edit, Format, Keyboard, MAX_ASK_TIMEOUT_SECS, MessageRef, Notice, Outgoing,
    Question, Reaction,
};

/// How long [`ask`] waits for an answer unless told otherwise: 10 minutes.
pub const DEFAULT_ASK_TIMEOUT_SECS: u32 = 10 * 60;

/// One outgoing message: its text and format, its buttons, and the message
/// it replies to.
///
/// ```ignore
/// Reply::text("Pick one")
///     .button("Yes", "yes")
///     .button("No", "no")
///     .row()
///     .button("Later", "later")
///     .reply_to(event.message_ref())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub text: String,
    pub format: Format,
    /// Rows of buttons; empty for none.
    pub keyboard: Keyboard,
    pub reply_to: Option<MessageRef>,
    /// The plugin's own name for the message ([`Reply::named`]).
    pub name: Option<String>,
}

impl Reply {
    fn new(text: impl Into<String>, format: Format) -> Self {
        Self {
            text: text.into(),
            format,
            keyboard: Vec::new(),
            reply_to: None,
            name: None,
        }
    }

    /// A plain-text message.
    pub fn text(text: impl Into<String>) -> Self {
        Self::new(text, Format::Plain)
    }

    /// A message rendered as Telegram MarkdownV2. Put user text through
    /// [`crate::escape_markdown`] first; markup Telegram refuses is sent as plain text.
    pub fn markdown(text: impl Into<String>) -> Self {
        Self::new(text, Format::Markdown)
    }

    /// A message rendered as Telegram HTML (see [`crate::escape_html`]).
    pub fn html(text: impl Into<String>) -> Self {
        Self::new(text, Format::Html)
    }

    /// Adds a button to the current row; a press comes back to this plugin
    /// as a [`crate::ButtonPress`] carrying `data` (at most 1024 bytes).
    pub fn button(mut self, label: impl Into<String>, data: impl Into<String>) -> Self {
        add_button(&mut self.keyboard, Button::new(label, data));
        self
    }

    /// Starts a new row: the next buttons go under the previous ones.
    pub fn row(mut self) -> Self {
        new_row(&mut self.keyboard);
        self
    }

    /// Replaces the buttons (a [`Buttons`] or rows of [`Button`]s).
    pub fn keyboard(mut self, keyboard: impl Into<Keyboard>) -> Self {
        self.keyboard = keyboard.into();
        self
    }

    /// Sends the message as a reply to `message` (an id or [`sent`]).
    pub fn reply_to(mut self, message: impl Into<MessageRef>) -> Self {
        self.reply_to = Some(message.into());
        self
    }

    /// Gives the message a name of this plugin's own (1-64 bytes), so a
    /// later call can edit or delete it with [`named`]`(name)`; a newer
    /// message with the same name in the chat takes the name over.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// The latest message this plugin sent in this chat under `name`
/// ([`Reply::named`]), from this call or an earlier one.
pub fn named(name: impl Into<String>) -> MessageRef {
    MessageRef::Named(name.into())
}

impl From<String> for Reply {
    fn from(text: String) -> Self {
        Self::text(text)
    }
}

impl From<&str> for Reply {
    fn from(text: &str) -> Self {
        Self::text(text)
    }
}

impl From<Reply> for Outgoing {
    fn from(reply: Reply) -> Self {
        Outgoing {
            text: reply.text,
            format: reply.format,
            keyboard: rows(reply.keyboard),
            reply_to: reply.reply_to,
            name: reply.name,
        }
    }
}

impl From<Reply> for Action {
    fn from(reply: Reply) -> Self {
        Action::Send(reply.into())
    }
}

/// Rows of buttons, for [`edit_buttons`] or [`Reply::keyboard`].
///
/// ```ignore
/// Buttons::new().button("✓ 1", "done:1").row().button("✓ 2", "done:2")
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Buttons {
    rows: Keyboard,
}

impl Buttons {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a button to the current row.
    pub fn button(mut self, label: impl Into<String>, data: impl Into<String>) -> Self {
        self.push(Button::new(label, data));
        self
    }

    /// Starts a new row.
    pub fn row(mut self) -> Self {
        new_row(&mut self.rows);
        self
    }

    /// Adds a button to the current row, in place.
    pub fn push(&mut self, button: Button) {
        add_button(&mut self.rows, button);
    }

    /// Starts a new row, in place.
    pub fn new_row(&mut self) {
        new_row(&mut self.rows);
    }

    /// Whether there is no button at all.
    pub fn is_empty(&self) -> bool {
        self.rows.iter().all(Vec::is_empty)
    }
}

impl From<Buttons> for Keyboard {
    fn from(buttons: Buttons) -> Self {
        rows(buttons.rows)
    }
}

impl Button {
    pub fn new(label: impl Into<String>, data: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            data: data.into(),
        }
    }
}

impl MessageRef {
    /// The `n`-th message sent (`send` or `ask`) by the same action list, from 0.
    pub fn sent(n: u32) -> Self {
        Self::Sent(n)
    }

    /// A message by its id.
    pub fn id(id: i64) -> Self {
        Self::Id(id)
    }
}

impl From<i64> for MessageRef {
    fn from(id: i64) -> Self {
        Self::Id(id)
    }
}

/// The `n`-th message sent (`send` or `ask`) by the same action list, from 0.
pub fn sent(n: u32) -> MessageRef {
    MessageRef::Sent(n)
}

fn add_button(keyboard: &mut Keyboard, button: Button) {
    match keyboard.last_mut() {
        Some(row) => row.push(button),
        None => keyboard.push(vec![button]),
    }
}

fn new_row(keyboard: &mut Keyboard) {
    if keyboard.last().is_some_and(|row| !row.is_empty()) {
        keyboard.push(Vec::new());
    }
}

/// The keyboard without empty rows.
fn rows(mut keyboard: Keyboard) -> Keyboard {
    keyboard.retain(|row| !row.is_empty());
    keyboard
}

/// A question: a message whose answer (the chat's next message or button
/// press) comes back to this plugin with `event.prompt` set to
/// [`state`](Ask::state). The user may send `/cancel` instead.
#[derive(Debug, Clone, PartialEq)]
pub struct Ask {
    pub message: Reply,
    /// What the plugin needs to handle the answer (at most 16 KiB).
    pub state: String,
    /// How long to wait for the answer, at most a day.
    pub timeout_secs: u32,
}

/// Asks the chat `text` (plain text); see [`Ask`].
///
/// ```ignore
/// ask("What should I note?").state(&Pending { list: 1 }).timeout_secs(300)
/// ```
pub fn ask(text: impl Into<String>) -> Ask {
    Ask::new(Reply::text(text))
}

impl Ask {
    /// Asks with `message` (any format, buttons...).
    pub fn new(message: impl Into<Reply>) -> Self {
        Self {
            message: message.into(),
            state: String::new(),
            timeout_secs: DEFAULT_ASK_TIMEOUT_SECS,
        }
    }

    /// Saves `value` (as JSON) with the question; read it back from the
    /// answer with [`crate::Event::prompt_state`].
    ///
    /// # Panics
    /// When `value` cannot be written as JSON (a map with non-text keys).
    pub fn state<T: Serialize + ?Sized>(mut self, value: &T) -> Self {
        self.state = serde_json::to_string(value).expect("question state must serialize to JSON");
        self
    }

    /// Saves `text` as it is with the question ([`crate::Event::prompt_text`]).
    pub fn state_text(mut self, text: impl Into<String>) -> Self {
        self.state = text.into();
        self
    }

    /// How long to wait for the answer (capped at a day).
    pub fn timeout_secs(mut self, seconds: u32) -> Self {
        self.timeout_secs = seconds.min(MAX_ASK_TIMEOUT_SECS);
        self
    }

    /// Adds a button to the question's current row (a press answers it).
    pub fn button(mut self, label: impl Into<String>, data: impl Into<String>) -> Self {
        self.message = self.message.button(label, data);
        self
    }

    /// Starts a new row of buttons.
    pub fn row(mut self) -> Self {
        self.message = self.message.row();
        self
    }

    /// Asks in reply to `message`.
    pub fn reply_to(mut self, message: impl Into<MessageRef>) -> Self {
        self.message = self.message.reply_to(message);
        self
    }
}

impl From<Ask> for Question {
    fn from(ask: Ask) -> Self {
        Question {
            message: ask.message.into(),
            state: ask.state,
            timeout_secs: ask.timeout_secs,
        }
    }
}

impl From<Ask> for Action {
    fn from(ask: Ask) -> Self {
        Action::Ask(ask.into())
    }
}

/// Sends `reply` (the same as using the [`Reply`] itself as an action).
pub fn send(reply: impl Into<Reply>) -> Action {
    Action::Send(reply.into().into())
}

/// Replaces the text, format and buttons of `message` with `reply`'s.
pub fn edit(message: impl Into<MessageRef>, reply: impl Into<Reply>) -> Action {
    let reply = reply.into();
    Action::Edit(Edit {
        message: message.into(),
        text: Some(reply.text),
        format: reply.format,
        keyboard: rows(reply.keyboard),
    })
}

/// Replaces the buttons of `message`, keeping its text.
pub fn edit_buttons(message: impl Into<MessageRef>, keyboard: impl Into<Keyboard>) -> Action {
    Action::Edit(Edit {
        message: message.into(),
        text: None,
        format: Format::Plain,
        keyboard: rows(keyboard.into()),
    })
}

/// Removes the buttons of `message`, keeping its text.
pub fn clear_buttons(message: impl Into<MessageRef>) -> Action {
    edit_buttons(message, Keyboard::new())
}

/// Deletes `message`.
pub fn delete(message: impl Into<MessageRef>) -> Action {
    Action::Delete(message.into())
}

/// Reacts to `message` with one emoji Telegram allows ("👍"); "" removes ours.
pub fn react(message: impl Into<MessageRef>, emoji: impl Into<String>) -> Action {
    Action::React(Reaction {
        message: message.into(),
        emoji: emoji.into(),
    })
}

/// Shows "typing…" in the chat for a few seconds.
pub fn typing() -> Action {
    Action::Typing
}

/// Answers the button press this event is with a short notice.
pub fn notice(text: impl Into<String>) -> Action {
    Action::Answer(Notice {
        text: text.into(),
        alert: false,
    })
}

/// Answers the button press this event is with an alert the user must dismiss.
pub fn alert(text: impl Into<String>) -> Action {
    Action::Answer(Notice {
        text: text.into(),
        alert: true,
    })
}
