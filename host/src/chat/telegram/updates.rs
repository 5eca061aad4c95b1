//! From a Telegram update to the dispatcher's [`IncomingMessage`].

use teloxide::types::{Update, UpdateKind};

use crate::chat::dispatcher::IncomingMessage;

/// The text message an update carries, if any; other updates are not for plugins.
pub fn incoming_message(update: &Update) -> Option<IncomingMessage> {
    let UpdateKind::Message(message) = &update.kind else {
        return None;
    };
    let text = message.text()?;
    let from = message.from.as_ref()?;
    if from.is_bot {
        return None;
    }
    Some(IncomingMessage {
        chat_id: message.chat.id.0,
        // Telegram user ids fit in 52 bits.
        user_id: i64::try_from(from.id.0).ok()?,
        username: from.username.clone(),
        text: text.to_string(),
    })
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
        let incoming = incoming_message(&update).unwrap_or_else(|| panic!("{update:?}"));
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
        assert!(incoming_message(&photo).is_none());
        let bot = update(serde_json::json!({"update_id": 7, "message": {
            "message_id": 3, "date": 1700000000, "chat": {"id": 1, "type": "private"},
            "from": {"id": 2, "is_bot": true, "first_name": "B"}, "text": "/start"}}));
        assert!(incoming_message(&bot).is_none());
    }
}
