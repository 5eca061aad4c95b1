//! A turn's text as it grows in the chat, whether a message or a press
//! on Allow started it.

use std::sync::Arc;

use tokio::sync::watch;

use crate::runtime::ChatLink;

/// Where the text of a turn ended up.
pub(super) enum Shown {
    /// Grown in the chat, and shown in full.
    InChat,
    /// The chat could not show it in full (logged).
    Failed,
    /// No chat to grow it in: its last value, for the caller to send.
    NoChat(String),
}

/// Runs `work` while the text it writes to `receiver`'s sender grows in
/// the chat behind `link`.
pub(super) async fn grow_while<T>(
    link: &Option<Arc<dyn ChatLink>>,
    receiver: watch::Receiver<String>,
    work: impl std::future::Future<Output = T>,
) -> (T, Shown) {
    let Some(link) = link else {
        let ended = work.await;
        let text = receiver.borrow().clone();
        return (ended, Shown::NoChat(text));
    };
    let (ended, shown) = tokio::join!(work, link.show_growing(receiver));
    match shown {
        Ok(()) => (ended, Shown::InChat),
        Err(error) => {
            tracing::warn!(error = %format!("{error:#}"), "the agent's answer could not be shown in full");
            (ended, Shown::Failed)
        }
    }
}
