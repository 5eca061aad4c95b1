//! What a conversation keeps between events, on the host's store: the
//! plugin's data behind each button token, the question a chat's next
//! message answers, and which plugin sent which message.

use std::time::Duration;

use super::event::{InlineButton, Keyboard};
use crate::infra::store::{PendingPrompt, Store, StoreResult, StoredButton, unix_now};
use crate::runtime::{Button, DEFAULT_PROMPT_WAIT, Question};

/// A button answers presses for this long after its message was sent.
pub const BUTTON_LIFETIME: Duration = Duration::from_secs(30 * 86_400);

/// An expired button is still told apart from an unknown one this long.
const EXPIRED_BUTTONS_KEPT: Duration = Duration::from_secs(7 * 86_400);

/// How long the host remembers which plugin sent a message (what it may edit).
pub const MESSAGE_MEMORY: Duration = Duration::from_secs(90 * 86_400);

/// Telegram's callback_data holds at most 64 bytes; a token is "b" and 32 hex digits.
const TOKEN_PREFIX: &str = "b";

/// Gives each button a fresh token and keeps the plugin's data behind it.
pub async fn keep_buttons(
    store: &Store,
    plugin: &str,
    chat_id: i64,
    rows: Vec<Vec<Button>>,
) -> StoreResult<Keyboard> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut kept = Vec::new();
    let keyboard: Keyboard = rows
        .into_iter()
        .map(|row| {
            row.into_iter()
                .map(|button| {
                    let token = format!("{TOKEN_PREFIX}{}", uuid::Uuid::new_v4().simple());
                    kept.push((token.clone(), button.data));
                    InlineButton {
                        label: button.label,
                        token,
                    }
                })
                .collect()
        })
        .collect();
    let now = unix_now();
    store
        .buttons_create(
            plugin,
            chat_id,
            &kept,
            now + BUTTON_LIFETIME.as_secs() as i64,
            now - EXPIRED_BUTTONS_KEPT.as_secs() as i64,
        )
        .await?;
    Ok(keyboard)
}

/// Why a press reaches no plugin: the notice the user sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadButton {
    Unknown,
    Expired,
    OtherChat,
}

impl DeadButton {
    pub fn notice(self) -> &'static str {
        match self {
            DeadButton::Unknown => "This button no longer works. Send the command again.",
            DeadButton::Expired => "This button has expired. Send the command again.",
            DeadButton::OtherChat => "This button belongs to another chat.",
        }
    }
}

/// The button a press in `chat_id` with `token` stands for, if it still works.
pub async fn pressed(
    store: &Store,
    chat_id: i64,
    token: &str,
) -> StoreResult<Result<StoredButton, DeadButton>> {
    if !token.starts_with(TOKEN_PREFIX) || token.len() > 64 {
        return Ok(Err(DeadButton::Unknown));
    }
    Ok(match store.button(token).await? {
        None => Err(DeadButton::Unknown),
        Some(button) if button.expires_at <= unix_now() => Err(DeadButton::Expired),
        Some(button) if button.chat_id != chat_id => Err(DeadButton::OtherChat),
        Some(button) => Ok(button),
    })
}

/// The question a chat waits on (asked of `user_id`), as it will be kept.
pub fn pending(plugin: &str, user_id: i64, question: &Question) -> PendingPrompt {
    let wait = match question.timeout_secs {
        0 => DEFAULT_PROMPT_WAIT.as_secs() as i64,
        secs => i64::from(secs),
    };
    PendingPrompt {
        plugin: plugin.to_string(),
        user_id,
        state: question.state.clone(),
        expires_at: unix_now() + wait,
    }
}

/// The chat's pending question, if one is still waiting.
pub async fn waiting_question(store: &Store, chat_id: i64) -> StoreResult<Option<PendingPrompt>> {
    Ok(store
        .prompt(chat_id)
        .await?
        .filter(|prompt| prompt.expires_at > unix_now()))
}

/// Notes that `plugin` sent `message_id` (under `name`, when it gave one).
pub async fn note_sent(
    store: &Store,
    chat_id: i64,
    message_id: i64,
    plugin: &str,
    name: Option<&str>,
) -> StoreResult<()> {
    let now = unix_now();
    store
        .message_sent(
            chat_id,
            message_id,
            plugin,
            name,
            now,
            now - MESSAGE_MEMORY.as_secs() as i64,
        )
        .await
}

/// Whether `plugin` sent `message_id` (so it may edit or delete it).
pub async fn sent_by(
    store: &Store,
    chat_id: i64,
    message_id: i64,
    plugin: &str,
) -> StoreResult<bool> {
    Ok(store.message_sender(chat_id, message_id).await?.as_deref() == Some(plugin))
}
