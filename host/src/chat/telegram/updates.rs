//! From a Telegram update to the dispatcher's [`Incoming`] event: a text
//! message, or a press on one of our inline buttons (a callback query).

use teloxide::types::{Chat, Update, UpdateKind, User};

use crate::chat::{Incoming, IncomingMessage, IncomingPress};
use crate::runtime::{ChatType, Quoted};

/// The event an update carries for the plugins, if any, and for a press
/// the callback query id it must be answered with.
pub fn incoming(update: &Update, bot_user_id: i64) -> Option<(Incoming, Option<String>)> {
    match &update.kind {
        UpdateKind::Message(_) => {
            incoming_message(update, bot_user_id).map(|message| (Incoming::Message(message), None))
        }
        UpdateKind::CallbackQuery(query) => {
            let message = query.message.as_ref()?;
            let press = IncomingPress {
                chat_id: message.chat().id.0,
                user_id: user_id(&query.from)?,
                username: query.from.username.clone(),
                chat_type: chat_type(message.chat()),
                display_name: query.from.full_name(),
                message_id: i64::from(message.id().0),
                // A press without data (a game) is answered as an unknown button.
                token: query.data.clone().unwrap_or_default(),
            };
            Some((Incoming::Press(press), Some(query.id.0.clone())))
        }
        _ => None,
    }
}

/// The text message an update carries, if any; other updates are not for plugins.
pub fn incoming_message(update: &Update, bot_user_id: i64) -> Option<IncomingMessage> {
    let UpdateKind::Message(message) = &update.kind else {
        return None;
    };
    let text = message.text()?;
    let from = message.from.as_ref()?;
    if from.is_bot {
        return None;
    }
    let reply_to = message.reply_to_message().map(|quoted| Quoted {
        message_id: i64::from(quoted.id.0),
        text: quoted.text().unwrap_or_default().to_string(),
        from_bot: quoted
            .from
            .as_ref()
            .is_some_and(|author| user_id(author) == Some(bot_user_id)),
    });
    Some(IncomingMessage {
        chat_id: message.chat.id.0,
        user_id: user_id(from)?,
        username: from.username.clone(),
        text: text.to_string(),
        chat_type: chat_type(&message.chat),
        display_name: from.full_name(),
        message_id: i64::from(message.id.0),
        reply_to,
    })
}

// Telegram user ids fit in 52 bits.
fn user_id(user: &User) -> Option<i64> {
    i64::try_from(user.id.0).ok()
}

fn chat_type(chat: &Chat) -> ChatType {
    if chat.is_private() {
        ChatType::Private
    } else if chat.is_channel() {
        ChatType::Channel
    } else {
        ChatType::Group
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(json: serde_json::Value) -> Update {
        serde_json::from_str(&json.to_string()).unwrap()
    }

    #[test]
    fn a_text_message_becomes_an_incoming_message() {
        let update = update(serde_json::json!({"update_id": 5, "message": {
            "message_id": 1, "date": 1700000000,
            "chat": {"id": -1_001_234_567_890_i64, "type": "supergroup", "title": "G"},
            "from": {"id": 77, "is_bot": false, "first_name": "Ada", "username": "ada"},
            "text": "/start@wasmbot_bot"}}));
        let incoming = incoming_message(&update, 1).unwrap_or_else(|| panic!("{update:?}"));
        assert_eq!(
            (incoming.chat_id, incoming.user_id),
            (-1_001_234_567_890, 77)
        );
        assert_eq!(incoming.username.as_deref(), Some("ada"));
        assert_eq!(incoming.text, "/start@wasmbot_bot");
    }

    #[test]
    fn non_text_and_bot_messages_are_skipped() {
        let photo = update(serde_json::json!({"update_id": 6, "message": {
            "message_id": 2, "date": 1700000000, "chat": {"id": 1, "type": "private"},
            "from": {"id": 1, "is_bot": false, "first_name": "A"}}}));
        assert!(incoming_message(&photo, 9).is_none());
        let bot = update(serde_json::json!({"update_id": 7, "message": {
            "message_id": 3, "date": 1700000000, "chat": {"id": 1, "type": "private"},
            "from": {"id": 2, "is_bot": true, "first_name": "B"}, "text": "/start"}}));
        assert!(incoming_message(&bot, 9).is_none());
    }
}
