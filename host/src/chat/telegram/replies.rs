//! Sending replies: rendered as the plugin asked (plain, MarkdownV2, HTML),
//! retried as plain text if Telegram rejects the markup, split on line
//! boundaries at Telegram's 4096-character limit, with 429 `retry_after`
//! waited out and network errors retried with backoff.

use std::time::Duration;

use teloxide::ApiError;
use teloxide::RequestError;
use teloxide::payloads::SendMessageSetters as _;
use teloxide::prelude::{Bot, Requester as _};
use teloxide::types::{ChatId, ParseMode};

use crate::runtime::ReplyFormat;

/// Telegram's limit for one message's text, in UTF-16 code units.
pub const MESSAGE_LIMIT: usize = 4096;

/// Attempts per message part before giving up (429s and network errors).
const MAX_ATTEMPTS: u32 = 5;

/// The longest `retry_after` we wait out; beyond it the part is given up.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

#[derive(Clone)]
pub struct ReplySender {
    bot: Bot,
}

impl ReplySender {
    pub fn new(bot: Bot) -> Self {
        Self { bot }
    }

    /// Sends `text` to `chat_id` as one or more messages; an empty text sends nothing.
    pub async fn send(
        &self,
        chat_id: i64,
        text: &str,
        format: ReplyFormat,
    ) -> Result<(), RequestError> {
        for part in split_message(text, MESSAGE_LIMIT) {
            self.send_part(chat_id, &part, format).await?;
        }
        Ok(())
    }

    async fn send_part(
        &self,
        chat_id: i64,
        text: &str,
        format: ReplyFormat,
    ) -> Result<(), RequestError> {
        let mut parse_mode = match format {
            ReplyFormat::Plain => None,
            ReplyFormat::Markdown => Some(ParseMode::MarkdownV2),
            ReplyFormat::Html => Some(ParseMode::Html),
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = self.bot.send_message(ChatId(chat_id), text);
            if let Some(mode) = parse_mode {
                request = request.parse_mode(mode);
            }
            let error = match request.await {
                Ok(_) => return Ok(()),
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
                    tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "sending a reply failed; retrying");
                    tokio::time::sleep(backoff).await;
                }
                _ => return Err(error),
            }
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
