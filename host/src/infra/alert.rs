//! Operational alerts for the operator's admin chat. An alert never blocks or
//! fails its caller: it is handed to a background task, and a sink that is
//! down (Telegram itself unreachable) costs a log line, nothing more. Each
//! alert key (usually a service name) speaks at most once per interval, and
//! with `share_limits` at most once per interval across every replica that
//! shares the cache (Redis).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::infra::cache::CacheStore;
use crate::infra::sync::lock;

/// At most one alert per key in this long.
pub const ALERT_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// Queued alerts beyond this are logged and dropped rather than held.
const QUEUE_CAPACITY: usize = 64;

pub type SinkFuture = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

/// Where alert texts are delivered (the Telegram admin chat in production).
pub trait AlertSink: Send + Sync + 'static {
    fn deliver(&self, text: String) -> SinkFuture;
}

#[derive(Clone)]
pub struct Alerter {
    inner: Arc<Inner>,
}

struct Inner {
    /// Where alerts are queued for delivery; none until a sink is attached.
    queue: Mutex<Option<tokio::sync::mpsc::Sender<Queued>>>,
    last_sent: Mutex<HashMap<String, Instant>>,
    /// Rate limits shared with other replicas, checked by the delivery task.
    shared: Arc<OnceLock<CacheStore>>,
    interval: Duration,
}

struct Queued {
    /// The alert key, for alerts (notices are never limited).
    limit_key: Option<String>,
    text: String,
}

impl Alerter {
    /// Alerts go to `sink`; with none (no admin chat configured) they are only logged.
    /// Call inside a tokio runtime when there is a sink: delivery runs on a task of its own.
    pub fn new(sink: Option<Arc<dyn AlertSink>>, interval: Duration) -> Self {
        let alerter = Self {
            inner: Arc::new(Inner {
                queue: Mutex::new(None),
                last_sent: Mutex::new(HashMap::new()),
                shared: Arc::new(OnceLock::new()),
                interval,
            }),
        };
        if let Some(sink) = sink {
            alerter.attach(sink);
        }
        alerter
    }

    /// An alerter that only logs.
    pub fn log_only() -> Self {
        Self::new(None, ALERT_INTERVAL)
    }

    /// From now on, every clone of this alerter also delivers to `sink`
    /// (e.g. the admin chat once the Telegram bot is connected).
    pub fn attach(&self, sink: Arc<dyn AlertSink>) {
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<Queued>(QUEUE_CAPACITY);
        let shared = self.inner.shared.clone();
        let interval = self.inner.interval;
        tokio::spawn(async move {
            while let Some(Queued { limit_key, text }) = receiver.recv().await {
                if let (Some(key), Some(cache)) = (limit_key, shared.get())
                    && !cache.claim("alert", &key, interval).await
                {
                    tracing::debug!(key, "alert suppressed: another replica sent it recently");
                    continue;
                }
                if let Err(error) = sink.deliver(text).await {
                    tracing::warn!(error = %format!("{error:#}"), "could not deliver an alert to the admin chat");
                }
            }
        });
        *lock(&self.inner.queue) = Some(sender);
    }

    /// Keeps the per-key limit in `cache` too, so replicas sharing it (Redis)
    /// deliver each alert once between them. Set once; later calls are ignored.
    pub fn share_limits(&self, cache: CacheStore) {
        let _ = self.inner.shared.set(cache);
    }

    /// Raises an alert under `key`, unless that key alerted within the
    /// interval. Returns whether it was sent on.
    pub fn alert(&self, key: &str, text: impl Into<String>) -> bool {
        let text = text.into();
        let now = Instant::now();
        {
            let mut last_sent = lock(&self.inner.last_sent);
            if let Some(at) = last_sent.get(key)
                && now.duration_since(*at) < self.inner.interval
            {
                tracing::debug!(key, "alert suppressed: this key alerted recently");
                return false;
            }
            last_sent.insert(key.to_string(), now);
        }
        tracing::warn!(key, alert = %text, "alert");
        self.enqueue(Queued {
            limit_key: Some(key.to_string()),
            text,
        });
        true
    }

    /// Sends a notice that is never rate-limited (e.g. one recovery notice).
    pub fn notify(&self, key: &str, text: impl Into<String>) {
        let text = text.into();
        tracing::info!(key, notice = %text, "notice");
        self.enqueue(Queued {
            limit_key: None,
            text,
        });
    }

    fn enqueue(&self, queued: Queued) {
        if let Some(queue) = lock(&self.inner.queue).as_ref()
            && queue.try_send(queued).is_err()
        {
            tracing::error!("alert queue full or closed: an alert was not delivered");
        }
    }
}

impl Default for Alerter {
    fn default() -> Self {
        Self::log_only()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Recorder(tokio::sync::mpsc::UnboundedSender<String>, bool);

    impl AlertSink for Recorder {
        fn deliver(&self, text: String) -> SinkFuture {
            let _ = self.0.send(text);
            let fail = self.1;
            Box::pin(async move {
                if fail {
                    anyhow::bail!("telegram is down")
                }
                Ok(())
            })
        }
    }

    #[tokio::test]
    async fn one_alert_per_key_per_interval_and_notices_always() {
        let (sender, mut delivered) = tokio::sync::mpsc::unbounded_channel();
        let alerter = Alerter::new(
            Some(Arc::new(Recorder(sender, false))),
            Duration::from_millis(200),
        );
        assert!(alerter.alert("llm", "Claude is down"));
        assert!(!alerter.alert("llm", "Claude is still down"));
        assert!(alerter.alert("redis", "Redis is down"));
        alerter.notify("llm", "Claude is back");
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(alerter.alert("llm", "Claude is down again"));
        let mut texts = Vec::new();
        while texts.len() < 4 {
            texts.push(delivered.recv().await.unwrap());
        }
        assert_eq!(
            texts,
            [
                "Claude is down",
                "Redis is down",
                "Claude is back",
                "Claude is down again"
            ]
        );
    }

    #[tokio::test]
    async fn a_failing_sink_never_fails_the_caller() {
        let (sender, mut delivered) = tokio::sync::mpsc::unbounded_channel();
        let alerter = Alerter::new(Some(Arc::new(Recorder(sender, true))), ALERT_INTERVAL);
        assert!(alerter.alert("db", "down"));
        assert_eq!(delivered.recv().await.unwrap(), "down");
        assert!(
            alerter.alert("db2", "also down"),
            "the alerter keeps working after a failed delivery"
        );
        assert_eq!(delivered.recv().await.unwrap(), "also down");
    }
}
