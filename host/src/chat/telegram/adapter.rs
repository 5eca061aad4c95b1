//! What one update needs on its way through, shared by the receivers
//! (polling, webhook) and the inbox.

use std::sync::Arc;

use anyhow::Context as _;
use teloxide::prelude::Bot;
use teloxide::types::Update;
use tokio::sync::watch;

use super::inbox::Inbox;
use super::replies::ReplySender;
use super::updates::incoming_message;
use crate::chat::dispatcher::Dispatcher;
use crate::infra::services::HostServices;

/// Everything one update needs on its way through.
pub struct TelegramAdapter {
    pub(super) bot: Bot,
    pub(super) dispatcher: Arc<Dispatcher>,
    pub(super) replies: ReplySender,
    pub(super) inbox: Inbox,
}

impl TelegramAdapter {
    /// Handles one claimed update: the plugin's answer is sent before this
    /// returns Ok. An error (the reply could not be sent) means "try again".
    pub(super) async fn handle(&self, update: Update) -> anyhow::Result<()> {
        let Some(incoming) = incoming_message(&update) else {
            return Ok(());
        };
        let chat_id = incoming.chat_id;
        let Some(reply) = self.dispatcher.handle(incoming).await else {
            return Ok(());
        };
        self.replies
            .send(chat_id, &reply.text, reply.format)
            .await
            .with_context(|| {
                format!(
                    "sending the reply (correlation id {}) to chat {chat_id}",
                    reply.correlation_id
                )
            })
    }

    pub(super) fn services(&self) -> &HostServices {
        self.dispatcher.services()
    }
}

/// Resolves once `stop` turns true.
pub(super) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}
