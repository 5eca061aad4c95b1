//! From a Telegram update to the dispatcher's [`Incoming`] event: a text
//! message, or a press on one of our inline buttons (a callback query).

use teloxide::types::{Chat, FileMeta, Message, Update, UpdateKind, User};

use crate::chat::{Incoming, IncomingMessage, IncomingPress};
use crate::runtime::{Attachment, AttachmentKind, ChatType, Quoted};

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

/// The message an update carries (text, or files with their caption),
/// if any; other updates (stickers, locations, joins) are not for plugins.
pub fn incoming_message(update: &Update, bot_user_id: i64) -> Option<IncomingMessage> {
    let UpdateKind::Message(message) = &update.kind else {
        return None;
    };
    let attachments = attachments(message);
    let text = match message.text().or(message.caption()) {
        Some(text) => text,
        None if !attachments.is_empty() => "",
        None => return None,
    };
    let from = message.from.as_ref()?;
    if from.is_bot {
        return None;
    }
    let reply_to = message.reply_to_message().map(|quoted| Quoted {
        message_id: i64::from(quoted.id.0),
        text: quoted
            .text()
            .or(quoted.caption())
            .unwrap_or_default()
            .to_string(),
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
        attachments,
    })
}

/// The files a message carries: of a photo only its largest size. The id
/// is Telegram's file_id, which `getFile` takes.
fn attachments(message: &Message) -> Vec<Attachment> {
    let file = |kind, meta: &FileMeta, mime: Option<String>, name: Option<&String>| Attachment {
        id: meta.id.0.clone(),
        kind,
        mime_type: mime,
        // Telegram leaves the size out when it does not know it.
        size: (meta.size > 0).then_some(u64::from(meta.size)),
        name: name.cloned(),
    };
    let mut files = Vec::new();
    if let Some(largest) = message
        .photo()
        .and_then(|sizes| sizes.iter().max_by_key(|p| p.width * p.height))
    {
        // Telegram re-encodes every photo it keeps as JPEG.
        files.push(file(
            AttachmentKind::Photo,
            &largest.file,
            Some("image/jpeg".into()),
            None,
        ));
    }
    // A MIME type's essence: "audio/ogg", without parameters.
    macro_rules! essence {
        ($mime:expr) => {
            $mime.as_ref().map(|m| m.essence_str().to_string())
        };
    }
    let others = [
        message
            .voice()
            .map(|v| (AttachmentKind::Voice, &v.file, essence!(v.mime_type), None)),
        message.audio().map(|a| {
            let name = a.file_name.as_ref();
            (AttachmentKind::Audio, &a.file, essence!(a.mime_type), name)
        }),
        message.video().map(|v| {
            let name = v.file_name.as_ref();
            (AttachmentKind::Video, &v.file, essence!(v.mime_type), name)
        }),
        message.video_note().map(|n| {
            (
                AttachmentKind::VideoNote,
                &n.file,
                Some("video/mp4".into()),
                None,
            )
        }),
        message.document().map(|d| {
            let name = d.file_name.as_ref();
            (
                AttachmentKind::Document,
                &d.file,
                essence!(d.mime_type),
                name,
            )
        }),
    ];
    files.extend(
        others
            .into_iter()
            .flatten()
            .map(|(kind, meta, mime, name)| file(kind, meta, mime, name)),
    );
    files
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
    fn a_photo_is_its_caption_with_the_largest_size_attached() {
        let photo = update(serde_json::json!({"update_id": 8, "message": {
            "message_id": 4, "date": 1700000000, "chat": {"id": 1, "type": "private"},
            "from": {"id": 1, "is_bot": false, "first_name": "A"},
            "photo": [
                {"file_id": "small", "file_unique_id": "s", "width": 90, "height": 60, "file_size": 1000},
                {"file_id": "large", "file_unique_id": "l", "width": 1280, "height": 853, "file_size": 90000}],
            "caption": "/ask what is this?"}}));
        let incoming = incoming_message(&photo, 9).unwrap();
        assert_eq!(incoming.text, "/ask what is this?");
        assert_eq!(incoming.attachments.len(), 1);
        let attached = &incoming.attachments[0];
        assert_eq!(
            (attached.id.as_str(), attached.kind, attached.size),
            ("large", AttachmentKind::Photo, Some(90000))
        );
        let document = update(serde_json::json!({"update_id": 9, "message": {
            "message_id": 5, "date": 1700000000, "chat": {"id": 1, "type": "private"},
            "from": {"id": 1, "is_bot": false, "first_name": "A"},
            "document": {"file_id": "doc", "file_unique_id": "d", "file_name": "report.pdf",
                "mime_type": "application/pdf", "file_size": 5}}}));
        let incoming = incoming_message(&document, 9).unwrap();
        assert_eq!(incoming.text, "");
        let attached = &incoming.attachments[0];
        assert_eq!(attached.name.as_deref(), Some("report.pdf"));
        assert_eq!(attached.mime_type.as_deref(), Some("application/pdf"));
    }

    #[test]
    fn non_text_and_bot_messages_are_skipped() {
        let location = update(serde_json::json!({"update_id": 6, "message": {
            "message_id": 2, "date": 1700000000, "chat": {"id": 1, "type": "private"},
            "from": {"id": 1, "is_bot": false, "first_name": "A"},
            "location": {"latitude": 1.0, "longitude": 2.0}}}));
        assert!(incoming_message(&location, 9).is_none());
        let bot = update(serde_json::json!({"update_id": 7, "message": {
            "message_id": 3, "date": 1700000000, "chat": {"id": 1, "type": "private"},
            "from": {"id": 2, "is_bot": true, "first_name": "B"}, "text": "/start"}}));
        assert!(incoming_message(&bot, 9).is_none());
    }
}
