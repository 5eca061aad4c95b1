//! An admin chat for tests: alerts land in a channel instead of Telegram.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use wasmbot::infra::alert::{ALERT_INTERVAL, AlertSink, Alerter, SinkFuture};

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

/// What `alerter` delivered up to now. One task delivers alerts in order
/// (after any shared-limit check in Redis), so a notice queued now comes back
/// after every earlier alert was delivered or suppressed: no fixed wait, and
/// an empty answer means none was sent.
pub async fn alerts_so_far(
    alerter: &Alerter,
    inbox: &mut UnboundedReceiver<String>,
) -> Vec<String> {
    const MARK: &str = "(test: end of the alerts so far)";
    alerter.notify("test-mark", MARK);
    let mut texts = Vec::new();
    loop {
        let text = tokio::time::timeout(Duration::from_secs(30), inbox.recv())
            .await
            .expect("the alert task delivered nothing for 30 s")
            .expect("the alert task stopped");
        if text == MARK {
            return texts;
        }
        texts.push(text);
    }
}
