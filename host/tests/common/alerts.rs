//! An admin chat for tests: alerts land in a channel instead of Telegram.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use wasmbot::alert::{ALERT_INTERVAL, AlertSink, Alerter, SinkFuture};

struct Inbox(UnboundedSender<String>);

impl AlertSink for Inbox {
    fn deliver(&self, text: String) -> SinkFuture {
        let _ = self.0.send(text);
        Box::pin(async { Ok(()) })
    }
}

/// An alerter with the real 5-minute rate limit, delivering into the receiver.
pub fn alerter_with_inbox() -> (Alerter, UnboundedReceiver<String>) {
    let (sender, inbox) = unbounded_channel();
    (
        Alerter::new(Some(Arc::new(Inbox(sender))), ALERT_INTERVAL),
        inbox,
    )
}

/// What arrived so far (after a moment for the background sender).
pub async fn delivered(inbox: &mut UnboundedReceiver<String>) -> Vec<String> {
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut texts = Vec::new();
    while let Ok(text) = inbox.try_recv() {
        texts.push(text);
    }
    texts
}
