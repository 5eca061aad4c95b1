//! What a running call may ask of the chat its event came from: an answer
//! shown while it is written, and the bytes of the files that came with
//! the event. The adapter (Telegram, the console) implements it; a call
//! with no chat behind it (a due job, a webhook, a benchmark) has none.

use std::future::Future;
use std::pin::Pin;

use tokio::sync::watch;

use super::bindings::conversation::events::Attachment;

/// A boxed future borrowing the link: `ChatLink` is used as a trait object.
pub type LinkFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why an attachment's bytes could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchFailure {
    #[error("the file is larger than {cap} bytes")]
    TooLarge { cap: u64 },
    #[error("{0}")]
    Unavailable(String),
}

pub trait ChatLink: Send + Sync {
    /// Shows an answer as it grows. `text` always holds the whole text so
    /// far; once its sender is gone its last value is the final text, which
    /// is shown in full (split like any reply) before this returns. An
    /// error means the final text could not be shown.
    fn show_growing(&self, text: watch::Receiver<String>) -> LinkFuture<'_, anyhow::Result<()>>;

    /// Whether the agent shows each tool call as a line between the
    /// streamed text (the console does; a Telegram chat shows the answer only).
    fn shows_tool_calls(&self) -> bool {
        false
    }

    /// The bytes of `attachment` (one of the event's): at most `max_bytes`,
    /// checked before and while downloading.
    fn fetch<'a>(
        &'a self,
        attachment: &'a Attachment,
        max_bytes: u64,
    ) -> LinkFuture<'a, Result<Vec<u8>, FetchFailure>>;
}
