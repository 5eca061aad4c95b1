//! What a plugin's call asks of its Telegram chat while it runs: an answer
//! shown as Claude writes it, and the bytes of the files the user sent.
//!
//! A growing answer is a draft (`sendMessageDraft`, Bot API 9.5) in a
//! private chat, then one real message with the final text; elsewhere, or
//! once the Bot API server refuses drafts, it is a message sent with the
//! first words and edited as more arrive. Updates are throttled (a draft
//! at most every [`DRAFT_INTERVAL`], an edit every [`EDIT_INTERVAL`] in a
//! private chat and [`GROUP_EDIT_INTERVAL`] in a group, within Telegram's
//! limits) and the final text is always shown in full, split past 4096
//! like any reply. A draft Telegram asks to slow down (429) waits; only a
//! refusal of the method turns drafts off.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use teloxide::prelude::Requester as _;
use teloxide::types::FileId;
use tokio::sync::watch;
use tokio::time::Instant;

use super::replies::{
    DraftFailure, MESSAGE_LIMIT, ReplySender, TelegramChat, bot_api_url, split_message,
};
use crate::chat::{ChatOutput as _, OutgoingMessage};
use crate::runtime::{Attachment, ChatLink, FetchFailure, Format, LinkFuture};

/// How often a draft is updated, and a message edited, while text
/// arrives: about one edit per second in a private chat, and within the
/// 20 messages a minute Telegram allows a bot in a group.
pub const DRAFT_INTERVAL: Duration = Duration::from_millis(400);
pub const EDIT_INTERVAL: Duration = Duration::from_millis(1000);
pub const GROUP_EDIT_INTERVAL: Duration = Duration::from_millis(3000);

/// How long a download of one file may take.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// Draft ids: any non-zero number, distinct per answer.
static DRAFT_IDS: AtomicI64 = AtomicI64::new(1);

/// One Telegram chat, as a call sees it while it runs.
pub struct TelegramLink {
    pub replies: ReplySender,
    pub chat_id: i64,
    /// Drafts exist only in private chats.
    pub private: bool,
}

impl TelegramLink {
    pub fn for_chat(replies: &ReplySender, chat_id: i64, private: bool) -> Arc<dyn ChatLink> {
        Arc::new(Self {
            replies: replies.clone(),
            chat_id,
            private,
        })
    }
}

impl TelegramLink {
    async fn grow(&self, mut text: watch::Receiver<String>) -> anyhow::Result<()> {
        let mut drafting = self.private && self.replies.drafts_accepted();
        let draft_id = DRAFT_IDS.fetch_add(1, Ordering::Relaxed);
        // Edit mode: the messages sent so far, and the text each shows.
        let mut shown: Vec<(i64, String)> = Vec::new();
        let mut next_update = Instant::now();
        let mut ended = text.changed().await.is_err();
        while !ended {
            // Wait out the throttle, noticing the end (and taking the
            // latest text) meanwhile.
            while Instant::now() < next_update {
                tokio::select! {
                    _ = tokio::time::sleep_until(next_update) => {}
                    changed = text.changed() => if changed.is_err() { ended = true; break },
                }
            }
            if ended {
                break;
            }
            let current = text.borrow_and_update().clone();
            if drafting {
                match self.replies.draft(self.chat_id, draft_id, &current).await {
                    Ok(()) => next_update = Instant::now() + DRAFT_INTERVAL,
                    // Not a refusal: the next draft waits, the method stays.
                    Err(DraftFailure::SlowDown(wait)) => next_update = Instant::now() + wait,
                    Err(DraftFailure::Transient(error)) => {
                        tracing::warn!(chat_id = self.chat_id, %error, "a draft was not shown");
                        next_update = Instant::now() + DRAFT_INTERVAL;
                    }
                    Err(DraftFailure::Refused(refusal)) => {
                        tracing::info!(chat_id = self.chat_id, %refusal, "the Bot API server refused a draft; answers are edited into a message instead");
                        self.replies.refuse_drafts();
                        drafting = false;
                    }
                    Err(DraftFailure::NotHere(refusal)) => {
                        tracing::info!(chat_id = self.chat_id, %refusal, "a draft was refused in this chat; this answer is edited into a message instead");
                        drafting = false;
                    }
                }
            }
            if !drafting {
                if let Err(error) = self.edit_into(&mut shown, &current).await {
                    tracing::warn!(chat_id = self.chat_id, error = %format!("{error:#}"), "could not show part of a streamed answer");
                }
                next_update = Instant::now() + self.edit_interval();
            }
            ended = text.changed().await.is_err();
        }
        let last = text.borrow().clone();
        if last.trim().is_empty() {
            // Nothing to show: the plugin is told it was not shown.
            anyhow::bail!("the answer is empty");
        }
        self.edit_into(&mut shown, &last).await
    }

    /// Shows `text` in the messages of `shown` (split like any reply),
    /// editing those whose part changed and sending the parts that have
    /// none yet, through the same sends and edits as a plugin's actions.
    async fn edit_into(&self, shown: &mut Vec<(i64, String)>, text: &str) -> anyhow::Result<()> {
        let chat = TelegramChat {
            replies: &self.replies,
            chat_id: self.chat_id,
            callback_id: None,
        };
        for (index, part) in split_message(text, MESSAGE_LIMIT).into_iter().enumerate() {
            match shown.get_mut(index) {
                Some((_, was)) if *was == part => {}
                Some((id, was)) => {
                    chat.edit(*id, Some(&part), Format::Plain, &Vec::new())
                        .await?;
                    *was = part;
                }
                None => {
                    let message = OutgoingMessage {
                        text: part.clone(),
                        format: Format::Plain,
                        keyboard: Vec::new(),
                        reply_to: None,
                        name: None,
                    };
                    let id = chat
                        .send(&message, None)
                        .await?
                        .context("Telegram refused a part of a streamed answer")?;
                    shown.push((id, part));
                }
            }
        }
        Ok(())
    }

    fn edit_interval(&self) -> Duration {
        if self.private {
            EDIT_INTERVAL
        } else {
            GROUP_EDIT_INTERVAL
        }
    }

    async fn download(&self, attachment: &Attachment, cap: u64) -> Result<Vec<u8>, FetchFailure> {
        let bot = self.replies.bot();
        let unavailable = |what: &str, error: &dyn std::fmt::Display| {
            FetchFailure::Unavailable(format!("{what}: {error}"))
        };
        let file = bot
            .get_file(FileId(attachment.id.clone()))
            .await
            .map_err(|error| unavailable("Telegram did not describe the file", &error))?;
        if u64::from(file.meta.size) > cap {
            return Err(FetchFailure::TooLarge { cap });
        }
        // `{api}/file/bot<token>/<path>`: the URL holds the token, so no
        // error below names it.
        let token = format!("bot{}", bot.token());
        let mut segments = vec!["file", token.as_str()];
        segments.extend(file.path.split('/'));
        let url = bot_api_url(bot, &segments)
            .map_err(|error| unavailable("the file's address", &error))?;
        let mut response = bot
            .client()
            .get(url)
            .timeout(DOWNLOAD_TIMEOUT)
            .send()
            .await
            .map_err(|error| unavailable("downloading", &error.without_url()))?;
        if !response.status().is_success() {
            return Err(unavailable("downloading", &response.status()));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| unavailable("downloading", &error.without_url()))?
        {
            if (bytes.len() + chunk.len()) as u64 > cap {
                return Err(FetchFailure::TooLarge { cap });
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }
}

impl ChatLink for TelegramLink {
    fn show_growing(&self, text: watch::Receiver<String>) -> LinkFuture<'_, anyhow::Result<()>> {
        Box::pin(self.grow(text))
    }

    fn fetch<'a>(
        &'a self,
        attachment: &'a Attachment,
        max_bytes: u64,
    ) -> LinkFuture<'a, Result<Vec<u8>, FetchFailure>> {
        Box::pin(self.download(attachment, max_bytes))
    }
}
