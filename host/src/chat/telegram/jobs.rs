//! Where due jobs and webhook deliveries of the `telegram` channel go: the
//! job's chat (or `TELEGRAM_ADMIN_CHAT_ID`), sent like any answer.

use std::future::Future;
use std::pin::Pin;

use super::replies::{ReplySender, TelegramChat};
use crate::chat::jobs::JobOutput;
use crate::chat::{Answer, perform};
use crate::infra::store::Store;

pub struct TelegramJobs {
    pub replies: ReplySender,
    pub admin_chat: Option<i64>,
    pub store: Store,
}

impl JobOutput for TelegramJobs {
    fn admin_chat(&self) -> Option<i64> {
        self.admin_chat
    }

    fn deliver(
        &self,
        chat_id: i64,
        answer: Answer,
    ) -> Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send + '_>> {
        Box::pin(async move {
            let chat = TelegramChat {
                replies: &self.replies,
                chat_id,
                callback_id: None,
            };
            perform(&answer, chat_id, &chat, Some(&self.store)).await
        })
    }
}
