//! Carrying out a plugin's actions in one Telegram chat: messages rendered
//! as the plugin asked (plain, MarkdownV2, HTML), retried as plain text if
//! Telegram rejects the markup, split on line boundaries at Telegram's
//! 4096-character limit, inline keyboards, edits, deletes, reactions,
//! "typing" and callback answers. Every request waits out 429
//! `retry_after` and retries network errors with backoff.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use teloxide::ApiError;
use teloxide::RequestError;
use teloxide::payloads::{
    AnswerCallbackQuerySetters as _, EditMessageReplyMarkupSetters as _,
    EditMessageTextSetters as _, SendDocumentSetters as _, SendMessageSetters as _,
    SendPhotoSetters as _, SetMessageReactionSetters as _,
};
use teloxide::prelude::{Bot, Requester as _};
use teloxide::requests::Payload;
use teloxide::requests::Request;
use teloxide::types::{
    CallbackQueryId, ChatAction as TypingAction, ChatId, InlineKeyboardButton,
    InlineKeyboardMarkup, InputFile, MessageId, ParseMode, ReactionType, ReplyParameters,
};

use crate::chat::{ChatOutput, Keyboard, OutgoingFile, OutgoingMessage};
use crate::infra::store::clean_capped;
use crate::runtime::{FileKind, Format};

/// Characters Telegram shows in a callback answer.
const NOTICE_LIMIT: usize = 200;

/// Telegram's limit for one message's text, in UTF-16 code units.
pub const MESSAGE_LIMIT: usize = 4096;

/// Attempts per request before giving up (429s and network errors).
const MAX_ATTEMPTS: u32 = 5;

/// The longest `retry_after` we wait out; beyond it the request is given up.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

#[derive(Clone)]
pub struct ReplySender {
    bot: Bot,
    /// Set once the Bot API server refused `sendMessageDraft` (an older or
    /// self-hosted server): streamed answers are edited into messages.
    drafts_refused: Arc<AtomicBool>,
}

impl ReplySender {
    pub fn new(bot: Bot) -> Self {
        Self {
            bot,
            drafts_refused: Arc::default(),
        }
    }

    pub fn bot(&self) -> &Bot {
        &self.bot
    }

    pub fn drafts_accepted(&self) -> bool {
        !self.drafts_refused.load(Ordering::Relaxed)
    }

    pub fn refuse_drafts(&self) {
        self.drafts_refused.store(true, Ordering::Relaxed);
    }

    /// `sendMessageDraft` (Bot API 9.5; teloxide predates it): shows
    /// `text` (its last 4096 characters) as the draft `draft_id` being
    /// written in a private chat.
    pub async fn draft(&self, chat_id: i64, draft_id: i64, text: &str) -> Result<(), DraftFailure> {
        let Some(tail) = split_message(text, MESSAGE_LIMIT).pop() else {
            return Ok(());
        };
        let method = format!("bot{}", self.bot.token());
        let url = bot_api_url(&self.bot, &[&method, "sendMessageDraft"])
            .map_err(DraftFailure::Refused)?;
        let body = serde_json::json!({"chat_id": chat_id, "draft_id": draft_id, "text": tail});
        let response = self
            .bot
            .client()
            .post(url)
            .json(&body)
            .send()
            .await
            .map_err(|error| DraftFailure::Transient(error.without_url().to_string()))?;
        let status = response.status();
        let Ok(answer) = response.json::<serde_json::Value>().await else {
            return Err(DraftFailure::Transient(format!(
                "HTTP {status} without a Bot API answer"
            )));
        };
        if status.is_success() && answer["ok"] == serde_json::json!(true) {
            return Ok(());
        }
        let description = answer["description"].as_str().unwrap_or("no description");
        let why = format!("HTTP {status}: {description}");
        Err(match status.as_u16() {
            429 => DraftFailure::SlowDown(Duration::from_secs(
                answer["parameters"]["retry_after"].as_u64().unwrap_or(1),
            )),
            // The server does not know the method: no draft will work.
            404 => DraftFailure::Refused(why),
            _ if description.to_ascii_lowercase().contains("method") => DraftFailure::Refused(why),
            500.. => DraftFailure::Transient(why),
            // This chat or this text (blocked, not found…): not this answer.
            _ => DraftFailure::NotHere(why),
        })
    }

    /// Sends `text` to `chat_id` as one or more messages; an empty text sends nothing.
    pub async fn send(&self, chat_id: i64, text: &str, format: Format) -> Result<(), RequestError> {
        let message = OutgoingMessage {
            text: text.to_string(),
            format,
            keyboard: Vec::new(),
            reply_to: None,
            name: None,
        };
        self.send_message(chat_id, &message, None).await.map(drop)
    }

    /// Sends the message, split at the limit: the first part replies to
    /// `reply_to`, the last carries the keyboard. Returns the last part's id.
    async fn send_message(
        &self,
        chat_id: i64,
        message: &OutgoingMessage,
        reply_to: Option<i64>,
    ) -> Result<Option<i64>, RequestError> {
        let parts = split_message(&message.text, MESSAGE_LIMIT);
        let count = parts.len();
        let mut last = None;
        for (index, part) in parts.iter().enumerate() {
            let keyboard = (index + 1 == count).then_some(&message.keyboard);
            let reply_to = if index == 0 { reply_to } else { None };
            let sent = retrying(message.format, |mode| {
                let mut request = self.bot.send_message(ChatId(chat_id), part.as_str());
                if let Some(mode) = mode {
                    request = request.parse_mode(mode);
                }
                if let Some(keyboard) = keyboard.filter(|keyboard| !keyboard.is_empty()) {
                    request = request.reply_markup(markup(keyboard));
                }
                if let Some(id) = reply_to {
                    request = request.reply_parameters(
                        ReplyParameters::new(message_id(id)).allow_sending_without_reply(),
                    );
                }
                request
            })
            .await?;
            last = Some(i64::from(sent.id.0));
        }
        Ok(last)
    }
}

/// `api_url` with these path segments added (kept when it has a path of
/// its own; a token's colon is no URL scheme this way).
pub fn bot_api_url(bot: &Bot, segments: &[&str]) -> Result<reqwest::Url, String> {
    let mut url = bot.api_url();
    url.path_segments_mut()
        .map_err(|()| "the Bot API URL cannot take a path".to_string())?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

/// Why a draft was not shown.
#[derive(Debug)]
pub enum DraftFailure {
    /// The server does not take drafts (an older or self-hosted Bot API).
    Refused(String),
    /// Refused for this chat or this answer only: it is edited instead.
    NotHere(String),
    /// Telegram asked to wait this long (429).
    SlowDown(Duration),
    /// The network or the server failed this once.
    Transient(String),
}

/// One chat of one update: what [`crate::chat::perform`] drives.
pub struct TelegramChat<'a> {
    pub replies: &'a ReplySender,
    pub chat_id: i64,
    /// The callback query to answer when the update was a button press.
    pub callback_id: Option<String>,
}

impl ChatOutput for TelegramChat<'_> {
    async fn send(
        &self,
        message: &OutgoingMessage,
        reply_to: Option<i64>,
    ) -> anyhow::Result<Option<i64>> {
        match self
            .replies
            .send_message(self.chat_id, message, reply_to)
            .await
        {
            Ok(id) => Ok(id),
            // Telegram refused it (no rights, blocked, no such chat): sending
            // again will not help, and the update is not retried for it.
            Err(RequestError::Api(error)) => {
                tracing::error!(chat_id = self.chat_id, %error, "Telegram refused a message; it is not sent");
                Ok(None)
            }
            // A network failure after the retries: the update is tried again later.
            Err(error) => Err(error.into()),
        }
    }

    async fn send_file(
        &self,
        file: &OutgoingFile,
        reply_to: Option<i64>,
    ) -> anyhow::Result<Option<i64>> {
        let bot = &self.replies.bot;
        let chat = ChatId(self.chat_id);
        let upload = || InputFile::memory(file.data.clone()).file_name(file.name.clone());
        let reply =
            reply_to.map(|id| ReplyParameters::new(message_id(id)).allow_sending_without_reply());
        let caption = (!file.caption.is_empty()).then(|| file.caption.clone());
        // The same setters on two request types (photo, document).
        macro_rules! with_caption {
            ($request:expr, $mode:expr) => {{
                let mut request = $request;
                if let Some(caption) = &caption {
                    request = request.caption(caption.clone());
                    if let Some(mode) = $mode {
                        request = request.parse_mode(mode);
                    }
                }
                if let Some(reply) = &reply {
                    request = request.reply_parameters(reply.clone());
                }
                request
            }};
        }
        let sent = match file.kind {
            FileKind::Photo => {
                retrying(file.format, |mode| {
                    with_caption!(bot.send_photo(chat, upload()), mode)
                })
                .await
            }
            FileKind::Document => {
                retrying(file.format, |mode| {
                    with_caption!(bot.send_document(chat, upload()), mode)
                })
                .await
            }
        };
        match sent {
            Ok(message) => Ok(Some(i64::from(message.id.0))),
            // Refused (not an image, too large for Telegram): sending again
            // will not help; the user is told instead of left waiting.
            Err(RequestError::Api(error)) => {
                tracing::error!(chat_id = self.chat_id, %error, name = %file.name, "Telegram refused a file; it is not sent");
                let notice = format!("(Telegram refused the file {}: {error})", file.name);
                self.replies
                    .send(self.chat_id, &notice, Format::Plain)
                    .await?;
                Ok(None)
            }
            Err(error) => Err(error.into()),
        }
    }

    async fn edit(
        &self,
        id: i64,
        text: Option<&str>,
        format: Format,
        keyboard: &Keyboard,
    ) -> anyhow::Result<()> {
        let bot = &self.replies.bot;
        let chat = ChatId(self.chat_id);
        let result = match text {
            Some(text) => {
                // An edit cannot be split: cut to one message.
                let text = within_limit(text);
                retrying(format, |mode| {
                    let mut request = bot.edit_message_text(chat, message_id(id), text.as_str());
                    if let Some(mode) = mode {
                        request = request.parse_mode(mode);
                    }
                    if !keyboard.is_empty() {
                        request = request.reply_markup(markup(keyboard));
                    }
                    request
                })
                .await
                .map(drop)
            }
            None => retrying(Format::Plain, |_| {
                bot.edit_message_reply_markup(chat, message_id(id))
                    .reply_markup(markup(keyboard))
            })
            .await
            .map(drop),
        };
        match result {
            // Pressing "check again" with nothing changed is not a failure.
            Err(RequestError::Api(ApiError::MessageNotModified)) => Ok(()),
            other => other.with_context(|| format!("editing message {id}")),
        }
    }

    async fn delete(&self, id: i64) -> anyhow::Result<()> {
        let bot = &self.replies.bot;
        retrying(Format::Plain, |_| {
            bot.delete_message(ChatId(self.chat_id), message_id(id))
        })
        .await
        .map(drop)
        .with_context(|| format!("deleting message {id}"))
    }

    async fn react(&self, id: i64, emoji: &str) -> anyhow::Result<()> {
        let bot = &self.replies.bot;
        let reaction: Vec<ReactionType> = if emoji.is_empty() {
            Vec::new()
        } else {
            vec![ReactionType::Emoji {
                emoji: emoji.to_string(),
            }]
        };
        retrying(Format::Plain, |_| {
            bot.set_message_reaction(ChatId(self.chat_id), message_id(id))
                .reaction(reaction.clone())
        })
        .await
        .map(drop)
        .with_context(|| format!("reacting {emoji} to message {id}"))
    }

    async fn typing(&self) -> anyhow::Result<()> {
        let bot = &self.replies.bot;
        retrying(Format::Plain, |_| {
            bot.send_chat_action(ChatId(self.chat_id), TypingAction::Typing)
        })
        .await
        .map(drop)
        .context("showing typing")
    }

    async fn notice(&self, text: &str, alert: bool) -> anyhow::Result<()> {
        let Some(id) = &self.callback_id else {
            return Ok(());
        };
        let bot = &self.replies.bot;
        // Telegram shows (and takes) at most 200 characters.
        let text = if text.chars().count() > NOTICE_LIMIT {
            text.chars().take(NOTICE_LIMIT - 1).collect::<String>() + "…"
        } else {
            text.to_string()
        };
        let answer = |text: &str| {
            let text = text.to_string();
            retrying(Format::Plain, move |_| {
                let mut request = bot
                    .answer_callback_query(CallbackQueryId(id.clone()))
                    .show_alert(alert);
                if !text.is_empty() {
                    request = request.text(text.clone());
                }
                request
            })
        };
        if let Err(error) = answer(&text).await {
            if text.is_empty() {
                return Err(error).context("answering the button press");
            }
            // The press must be answered, if not with this text then without.
            tracing::warn!(%error, "Telegram refused the notice; answering the press without it");
            answer("").await.context("answering the button press")?;
        }
        Ok(())
    }
}

fn message_id(id: i64) -> MessageId {
    // Telegram message ids are 32-bit; a larger id is no message of ours.
    MessageId(i32::try_from(id).unwrap_or(i32::MAX))
}

fn markup(keyboard: &Keyboard) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(keyboard.iter().map(|row| {
        row.iter()
            .map(|button| {
                InlineKeyboardButton::callback(button.label.clone(), button.token.clone())
            })
            .collect::<Vec<_>>()
    }))
}

/// The text cut to one Telegram message (UTF-16 units), with an ellipsis.
fn within_limit(text: &str) -> String {
    if telegram_len(text) <= MESSAGE_LIMIT {
        return text.to_string();
    }
    let (bytes, _) = prefix_within(text, MESSAGE_LIMIT - 1);
    clean_capped(&text[..bytes], bytes).into_owned() + "…"
}

/// Sends the request `make` builds (given the parse mode to use), waiting
/// out 429s, retrying network errors with backoff, and falling back to
/// plain text once when Telegram rejects the markup.
async fn retrying<R>(
    format: Format,
    make: impl Fn(Option<ParseMode>) -> R,
) -> Result<<R::Payload as Payload>::Output, RequestError>
where
    R: Request<Err = RequestError>,
{
    let mut parse_mode = match format {
        Format::Plain => None,
        Format::Markdown => Some(ParseMode::MarkdownV2),
        Format::Html => Some(ParseMode::Html),
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let error = match make(parse_mode).send().await {
            Ok(output) => return Ok(output),
            Err(error) => error,
        };
        match &error {
            RequestError::Api(ApiError::CantParseEntities(detail)) if parse_mode.is_some() => {
                tracing::warn!(%detail, "Telegram rejected the reply's markup; sending it as plain text");
                parse_mode = None;
                attempt -= 1;
            }
            RequestError::RetryAfter(wait)
                if attempt < MAX_ATTEMPTS && wait.duration() <= MAX_RETRY_AFTER =>
            {
                tracing::warn!(
                    retry_after_s = wait.seconds(),
                    "Telegram asked us to slow down; waiting"
                );
                tokio::time::sleep(wait.duration()).await;
            }
            RequestError::Network(_) | RequestError::Io(_) if attempt < MAX_ATTEMPTS => {
                let backoff = Duration::from_millis(250 << attempt);
                tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "a Telegram request failed; retrying");
                tokio::time::sleep(backoff).await;
            }
            _ => return Err(error),
        }
    }
}

/// The length Telegram counts: UTF-16 code units (an emoji outside the
/// basic plane is two).
pub fn telegram_len(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}

/// Splits `text` into parts of at most `limit` UTF-16 code units (the way
/// Telegram counts), at line breaks where possible; a single longer line is
/// cut at the last character that fits. Parts that are only white space are
/// dropped.
pub fn split_message(text: &str, limit: usize) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut current_len = 0;
    for line in text.split_inclusive('\n') {
        let mut line = line;
        let mut line_len = telegram_len(line);
        if current_len + line_len > limit && current_len > 0 {
            parts.push(std::mem::take(&mut current));
            current_len = 0;
        }
        while line_len > limit {
            let (cut, cut_len) = prefix_within(line, limit);
            parts.push(line[..cut].to_string());
            line = &line[cut..];
            line_len -= cut_len;
        }
        current.push_str(line);
        current_len += line_len;
    }
    parts.push(current);
    parts.retain(|part| !part.trim().is_empty());
    for part in &mut parts {
        // A part ending where a line ended needs no trailing newline.
        while part.ends_with('\n') {
            part.pop();
        }
    }
    parts
}

/// The byte length and UTF-16 length of the longest prefix of `line` within
/// `limit` UTF-16 units (at least one character, so splitting always advances).
fn prefix_within(line: &str, limit: usize) -> (usize, usize) {
    let mut units = 0;
    for (index, c) in line.char_indices() {
        let next = units + c.len_utf16();
        if next > limit && index > 0 {
            return (index, units);
        }
        units = next;
    }
    (line.len(), units)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_one_part_and_empty_is_none() {
        assert_eq!(split_message("hello", 10), vec!["hello"]);
        assert!(split_message("", 10).is_empty());
        assert!(split_message(" \n\n ", 10).is_empty());
    }

    #[test]
    fn long_text_splits_on_lines_and_keeps_every_character() {
        let text = "aaaa\nbbbb\ncccc\n";
        assert_eq!(split_message(text, 10), vec!["aaaa\nbbbb", "cccc"]);
        let line = "é".repeat(25);
        let parts = split_message(&line, 10);
        assert_eq!(
            parts.iter().map(|p| p.chars().count()).collect::<Vec<_>>(),
            [10, 10, 5]
        );
        assert_eq!(parts.concat(), line);
    }

    #[test]
    fn a_5000_character_reply_is_two_messages_within_the_limit() {
        let text: String = (0..100).map(|i| format!("{i:>49}\n")).collect();
        assert_eq!(text.chars().count(), 5000);
        let parts = split_message(&text, MESSAGE_LIMIT);
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| p.chars().count() <= MESSAGE_LIMIT));
        assert_eq!(parts.join("\n") + "\n", text);
    }

    #[test]
    fn emoji_count_as_telegram_counts_them() {
        // 🙂 is two UTF-16 units: 3000 of them are 6000 units, two messages.
        let text = "🙂".repeat(3000);
        assert_eq!(telegram_len(&text), 6000);
        let parts = split_message(&text, MESSAGE_LIMIT);
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| telegram_len(p) <= MESSAGE_LIMIT));
        assert_eq!(telegram_len(&parts[0]), MESSAGE_LIMIT);
        assert_eq!(parts.concat(), text);
        // Mixed with text and line breaks, nothing is lost or over the limit.
        let mixed: String = (0..400).map(|i| format!("{i} 🙂🎉 ü\n")).collect();
        let parts = split_message(&mixed, 100);
        assert!(parts.iter().all(|p| telegram_len(p) <= 100));
        assert_eq!(parts.join("\n") + "\n", mixed);
    }
}
