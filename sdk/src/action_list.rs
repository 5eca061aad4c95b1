//! The list of actions a handler answers with.

use crate::{
    Action, Ask, Edit, Keyboard, MAX_ACTIONS, MAX_ASK_TIMEOUT_SECS, MAX_BUTTON_DATA_BYTES,
    MAX_BUTTON_LABEL_CHARS, MAX_BUTTONS, MAX_BUTTONS_PER_ROW, MAX_PROMPT_STATE_BYTES, MessageRef,
    Reply,
};

/// What a handler may return on success: anything that becomes a list of
/// actions, run by the host in order.
pub trait IntoActions {
    fn into_actions(self) -> Vec<Action>;
}

impl IntoActions for Action {
    fn into_actions(self) -> Vec<Action> {
        vec![self]
    }
}

impl IntoActions for Reply {
    fn into_actions(self) -> Vec<Action> {
        vec![self.into()]
    }
}

impl IntoActions for Ask {
    fn into_actions(self) -> Vec<Action> {
        vec![self.into()]
    }
}

impl IntoActions for crate::File {
    fn into_actions(self) -> Vec<Action> {
        vec![self.into()]
    }
}

impl IntoActions for Actions {
    fn into_actions(self) -> Vec<Action> {
        self.0
    }
}

/// Each item's actions, in order.
impl<T: IntoActions> IntoActions for Vec<T> {
    fn into_actions(self) -> Vec<Action> {
        self.into_iter()
            .flat_map(IntoActions::into_actions)
            .collect()
    }
}

impl<T: IntoActions, const N: usize> IntoActions for [T; N] {
    fn into_actions(self) -> Vec<Action> {
        self.into_iter()
            .flat_map(IntoActions::into_actions)
            .collect()
    }
}

/// `None`: nothing.
impl<T: IntoActions> IntoActions for Option<T> {
    fn into_actions(self) -> Vec<Action> {
        self.map(IntoActions::into_actions).unwrap_or_default()
    }
}

/// Nothing to do (a button press is still answered by the host).
impl IntoActions for () {
    fn into_actions(self) -> Vec<Action> {
        Vec::new()
    }
}

/// Actions in the order the host runs them.
///
/// ```ignore
/// Actions::new()
///     .then(typing())
///     .then(Reply::text("Done").button("Undo", "undo"))
///     .then(react(event.message_ref(), "👍"))
/// // or: actions![typing(), Reply::text("Done"), react(event.message_ref(), "👍")]
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Actions(Vec<Action>);

impl Actions {
    /// No action yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// These actions followed by `next`'s.
    pub fn then(mut self, next: impl IntoActions) -> Self {
        self.push(next);
        self
    }

    /// Appends `next`'s actions.
    pub fn push(&mut self, next: impl IntoActions) {
        self.0.extend(next.into_actions());
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_slice(&self) -> &[Action] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<Action> {
        self.0
    }

    /// Whether the host would take this list: at most [`MAX_ACTIONS`]
    /// actions, one `ask` and one notice; per message at most
    /// [`MAX_BUTTONS`] buttons ([`MAX_BUTTONS_PER_ROW`] a row), labels of 1
    /// to [`MAX_BUTTON_LABEL_CHARS`] characters, data of at most
    /// [`MAX_BUTTON_DATA_BYTES`] bytes; question state of at most
    /// [`MAX_PROMPT_STATE_BYTES`]; every `sent(n)` naming an earlier
    /// message of the list. `Err` says what is wrong. The host checks the
    /// same whatever the plugin does; this is for tests and debugging.
    pub fn check(&self) -> Result<(), String> {
        if self.0.len() > MAX_ACTIONS {
            return Err(format!(
                "{} actions: at most {MAX_ACTIONS} in one answer",
                self.0.len()
            ));
        }
        let mut sent = 0u32;
        let (mut asks, mut answers) = (0, 0);
        let earlier = |message: &MessageRef, sent: u32| match message {
            MessageRef::Sent(n) if *n >= sent => Err(format!(
                "sent({n}) names no earlier message ({sent} sent before it)"
            )),
            MessageRef::Named(name) if name.is_empty() || name.len() > 64 => {
                Err(format!("named({name:?}): a name is 1-64 bytes"))
            }
            _ => Ok(()),
        };
        for action in &self.0 {
            match action {
                Action::Send(outgoing) => {
                    check_keyboard(&outgoing.keyboard)?;
                    if let Some(message) = &outgoing.reply_to {
                        earlier(message, sent)?;
                    }
                    sent += 1;
                }
                Action::Ask(question) => {
                    asks += 1;
                    if asks > 1 {
                        return Err("more than one question (`ask`) in one answer".into());
                    }
                    check_keyboard(&question.message.keyboard)?;
                    if let Some(message) = &question.message.reply_to {
                        earlier(message, sent)?;
                    }
                    if question.state.len() > MAX_PROMPT_STATE_BYTES {
                        return Err(format!(
                            "question state of {} bytes: at most {MAX_PROMPT_STATE_BYTES}",
                            question.state.len()
                        ));
                    }
                    if question.timeout_secs > MAX_ASK_TIMEOUT_SECS {
                        return Err(format!(
                            "question timeout of {} s: at most {MAX_ASK_TIMEOUT_SECS}",
                            question.timeout_secs
                        ));
                    }
                    sent += 1;
                }
                Action::Edit(Edit {
                    message, keyboard, ..
                }) => {
                    check_keyboard(keyboard)?;
                    earlier(message, sent)?;
                }
                Action::SendFile(file) => {
                    if let Some(message) = &file.reply_to {
                        earlier(message, sent)?;
                    }
                    if file.name.is_empty() || file.name.contains(['/', '\\']) {
                        return Err(format!(
                            "file name {:?}: 1-255 bytes without `/`",
                            file.name
                        ));
                    }
                    sent += 1;
                }
                Action::Delete(message) => earlier(message, sent)?,
                Action::React(reaction) => earlier(&reaction.message, sent)?,
                Action::Answer(_) => {
                    answers += 1;
                    if answers > 1 {
                        return Err("more than one notice: a button press is answered once".into());
                    }
                }
                Action::Typing => {}
            }
        }
        Ok(())
    }
}

fn check_keyboard(keyboard: &Keyboard) -> Result<(), String> {
    let count: usize = keyboard.iter().map(Vec::len).sum();
    if count > MAX_BUTTONS {
        return Err(format!(
            "{count} buttons on one message: at most {MAX_BUTTONS}"
        ));
    }
    if let Some(row) = keyboard.iter().find(|row| row.len() > MAX_BUTTONS_PER_ROW) {
        return Err(format!(
            "{} buttons in one row: at most {MAX_BUTTONS_PER_ROW}",
            row.len()
        ));
    }
    for button in keyboard.iter().flatten() {
        let chars = button.label.trim().chars().count();
        if chars == 0 || chars > MAX_BUTTON_LABEL_CHARS {
            return Err(format!(
                "button label {:?}: 1 to {MAX_BUTTON_LABEL_CHARS} characters",
                button.label
            ));
        }
        if button.data.len() > MAX_BUTTON_DATA_BYTES {
            return Err(format!(
                "data of button {:?}: {} bytes, at most {MAX_BUTTON_DATA_BYTES}",
                button.label,
                button.data.len()
            ));
        }
    }
    Ok(())
}

impl From<Reply> for Actions {
    fn from(reply: Reply) -> Self {
        Self(reply.into_actions())
    }
}

impl From<Ask> for Actions {
    fn from(ask: Ask) -> Self {
        Self(ask.into_actions())
    }
}

impl From<crate::File> for Actions {
    fn from(file: crate::File) -> Self {
        Self(vec![file.into()])
    }
}

impl From<Action> for Actions {
    fn from(action: Action) -> Self {
        Self(vec![action])
    }
}

impl From<Vec<Action>> for Actions {
    fn from(actions: Vec<Action>) -> Self {
        Self(actions)
    }
}

impl From<Actions> for Vec<Action> {
    fn from(actions: Actions) -> Self {
        actions.0
    }
}

impl FromIterator<Action> for Actions {
    fn from_iter<I: IntoIterator<Item = Action>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl Extend<Action> for Actions {
    fn extend<I: IntoIterator<Item = Action>>(&mut self, iter: I) {
        self.0.extend(iter);
    }
}

impl IntoIterator for Actions {
    type Item = Action;
    type IntoIter = std::vec::IntoIter<Action>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Actions {
    type Item = &'a Action;
    type IntoIter = std::slice::Iter<'a, Action>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Collects actions (anything [`IntoActions`]) into [`Actions`], in order:
/// `actions![edit(press.message(), Reply::text("Done")), notice("Saved")]`.
#[macro_export]
macro_rules! actions {
    () => {
        $crate::Actions::new()
    };
    ($($action:expr),+ $(,)?) => {
        $crate::Actions::new()$(.then($action))+
    };
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;
    use crate::{Edit, Format, Outgoing};

    #[test]
    fn a_reply_builds_rows_of_buttons() {
        let actions = Reply::text("Pick")
            .row()
            .button("a", "1")
            .button("b", "2")
            .row()
            .row()
            .button("c", "3")
            .row()
            .reply_to(7)
            .into_actions();
        assert_eq!(
            actions,
            [Action::Send(Outgoing {
                text: "Pick".into(),
                format: Format::Plain,
                keyboard: vec![
                    vec![Button::new("a", "1"), Button::new("b", "2")],
                    vec![Button::new("c", "3")],
                ],
                reply_to: Some(MessageRef::Id(7)),
                name: None,
            })]
        );
    }

    #[test]
    fn actions_collect_in_order_and_check_limits() {
        let list = actions![
            typing(),
            ask("What?").state(&json!({"n": 1})).timeout_secs(999_999),
            edit(sent(0), "changed"),
            clear_buttons(42),
            notice("ok"),
        ];
        assert_eq!(list.len(), 5);
        assert!(list.check().is_ok(), "{:?}", list.check());
        let Action::Ask(question) = &list.as_slice()[1] else {
            panic!("not an ask")
        };
        assert_eq!(question.state, r#"{"n":1}"#);
        assert_eq!(question.timeout_secs, crate::MAX_ASK_TIMEOUT_SECS);
        assert_eq!(
            list.as_slice()[3],
            Action::Edit(Edit {
                message: MessageRef::Id(42),
                text: None,
                format: Format::Plain,
                keyboard: vec![],
            })
        );

        let dangling = Actions::new().then(delete(sent(0)));
        assert!(dangling.check().unwrap_err().contains("sent(0)"));
        let many: Actions = (0..21).map(|_| typing()).collect();
        assert!(many.check().is_err());
        let long = Reply::text("x").button("l".repeat(65), "d");
        assert!(Actions::from(long).check().is_err());
    }

    #[test]
    fn a_file_is_a_sent_message_with_its_caption() {
        let list = actions![
            File::document("notes.txt", "1. milk\n")
                .caption("Your notes")
                .reply_to(5),
            delete(sent(0)),
        ];
        assert!(list.check().is_ok(), "{:?}", list.check());
        let Action::SendFile(file) = &list.as_slice()[0] else {
            panic!("not a file")
        };
        assert_eq!(
            (file.name.as_str(), file.kind, file.data.as_slice()),
            ("notes.txt", crate::FileKind::Document, &b"1. milk\n"[..])
        );
        assert_eq!(file.caption, "Your notes");
        assert_eq!(file.reply_to, Some(MessageRef::Id(5)));
        let bad = Actions::from(File::photo("a/b.png", vec![1]));
        assert!(bad.check().unwrap_err().contains("without `/`"));
    }

    #[test]
    fn a_conversation_attaches_files_to_the_last_user_message() {
        use crate::llm::{ChatMessage, Conversation, Role};
        let conversation = Conversation::new(&[
            ChatMessage::user("hi"),
            ChatMessage::assistant("hello"),
            ChatMessage::user("what is this?"),
        ])
        .system("Be brief.")
        .attach("image/png", vec![1, 2]);
        let request = conversation.request();
        assert_eq!(request.system.as_deref(), Some("Be brief."));
        assert!(request.messages[0].attachments.is_empty());
        assert_eq!(request.messages[2].attachments[0].media_type, "image/png");
        let alone =
            Conversation::new(&[ChatMessage::assistant("hello")]).attach("image/png", vec![]);
        assert_eq!(alone.request().messages[1].role, Role::User);
    }

    #[test]
    fn a_message_is_a_command_event() {
        let event = crate::Event {
            correlation_id: "c".into(),
            chat_id: 1,
            chat_type: ChatType::Private,
            user_id: 2,
            username: Some("ada".into()),
            display_name: "Ada Lovelace".into(),
            message_id: 3,
            reply_to: None,
            kind: EventKind::Command(Command {
                name: "note".into(),
                args: "buy milk".into(),
            }),
            text: "/note buy milk".into(),
            attachments: vec![crate::Attachment {
                id: "f1".into(),
                kind: AttachmentKind::Voice,
                mime_type: Some("audio/ogg".into()),
                size: Some(5),
                name: None,
            }],
            prompt: None,
        };
        assert_eq!(
            event
                .attachment(AttachmentKind::Voice)
                .map(|a| a.id.as_str()),
            Some("f1")
        );
        assert!(event.attachment(AttachmentKind::Photo).is_none());
        assert_eq!(event.display_name(), "Ada Lovelace");
        assert_eq!(event.args(), "buy milk");
        assert_eq!(event.prompt_state::<u32>(), Ok(None));
        let message = Message::from_event(event.clone()).unwrap();
        assert_eq!(
            (message.command.as_str(), message.args.as_str()),
            ("note", "buy milk")
        );
        assert_eq!(message.display_name(), "ada");
        assert_eq!(message.unique_id(), event.unique_id());
        let press = crate::Event {
            kind: EventKind::Button(ButtonPress {
                data: "x".into(),
                message_id: 9,
            }),
            prompt: Some("{\"step\":2}".into()),
            ..event
        };
        assert!(Message::from_event(press.clone()).is_err());
        assert_eq!(press.press().unwrap().message(), MessageRef::Id(9));
        assert_eq!(
            press.prompt_state::<serde_json::Value>().unwrap(),
            Some(json!({"step": 2}))
        );
    }
}
