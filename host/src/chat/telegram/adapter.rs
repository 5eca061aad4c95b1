//! What one update needs on its way through, shared by the receivers
//! (polling, webhook) and the inbox.

use std::sync::Arc;

use teloxide::prelude::Bot;
use teloxide::types::Update;
use tokio::sync::watch;

use super::inbox::Inbox;
use super::live::TelegramLink;
use super::replies::{ReplySender, TelegramChat};
use super::updates::incoming;
use crate::chat::{Dispatcher, perform};
use crate::infra::services::HostServices;

/// Everything one update needs on its way through.
pub struct TelegramAdapter {
    pub(super) bot: Bot,
    pub(super) dispatcher: Arc<Dispatcher>,
    pub(super) replies: ReplySender,
    pub(super) inbox: Inbox,
}

impl TelegramAdapter {
    /// Handles one claimed update: the plugin's actions are carried out
    /// before this returns Ok. An error (a message could not be sent) means
    /// "try again".
    pub(super) async fn handle(&self, update: Update) -> anyhow::Result<()> {
        let Some((event, callback_id)) = incoming(&update, self.inbox.bot_id) else {
            return Ok(());
        };
        let chat_id = event.chat_id();
        let link = TelegramLink::for_chat(&self.replies, chat_id, event.is_private());
        let Some(answer) = self.dispatcher.handle_in(event, Some(link)).await else {
            return Ok(());
        };
        let chat = TelegramChat {
            replies: &self.replies,
            chat_id,
            callback_id,
        };
        perform(&answer, chat_id, &chat, self.services().store.as_ref()).await
    }

    pub(super) fn services(&self) -> &HostServices {
        self.dispatcher.services()
    }
}

/// Resolves once `stop` turns true.
pub(super) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}
