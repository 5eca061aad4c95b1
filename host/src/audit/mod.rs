//! The audit writer: entries go into a bounded queue and a background task
//! inserts them in batches, so the reply path never waits on the database.
//! When the database is down the batch is kept and retried; when the queue is
//! full the overflow is counted and logged; shutdown flushes what is queued.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::store::{AuditEntry, Store};

/// Entries waiting for the database; past this, new ones are counted as overflow.
pub const DEFAULT_QUEUE_CAPACITY: usize = 50_000;
/// Largest batch per INSERT.
const BATCH: usize = 1_000;
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

pub struct AuditWriter {
    queue: mpsc::Sender<AuditEntry>,
    overflow: Arc<AtomicU64>,
    written: Arc<AtomicU64>,
    stop: Mutex<Option<(oneshot::Sender<Duration>, JoinHandle<()>)>>,
}

impl AuditWriter {
    pub fn start(store: Store, capacity: usize) -> Self {
        let (queue, receiver) = mpsc::channel(capacity.max(1));
        let (stop_tx, stop_rx) = oneshot::channel();
        let written = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(run(store, receiver, stop_rx, written.clone()));
        Self {
            queue,
            overflow: Arc::new(AtomicU64::new(0)),
            written,
            stop: Mutex::new(Some((stop_tx, task))),
        }
    }

    /// Queues an entry without waiting. A full queue drops it, counts it and
    /// logs an error.
    pub fn record(&self, entry: AuditEntry) {
        if let Err(error) = self.queue.try_send(entry) {
            let dropped = self.overflow.fetch_add(1, Ordering::Relaxed) + 1;
            let entry = match &error {
                mpsc::error::TrySendError::Full(entry)
                | mpsc::error::TrySendError::Closed(entry) => entry,
            };
            tracing::error!(
                action = %entry.action,
                correlation_id = entry.correlation_id.as_deref().unwrap_or(""),
                overflow_total = dropped,
                "audit queue full or closed: entry dropped"
            );
        }
    }

    /// Entries dropped because the queue was full.
    pub fn overflow(&self) -> u64 {
        self.overflow.load(Ordering::Relaxed)
    }

    /// Entries written to the database so far.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Entries waiting in the queue.
    pub fn queued(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }

    /// Writes what is queued, retrying for at most `deadline`, then stops.
    pub async fn shutdown(&self, deadline: Duration) {
        let Some((stop, task)) = self.stop.lock().await.take() else {
            return;
        };
        let _ = stop.send(deadline);
        let _ = task.await;
    }
}

async fn run(
    store: Store,
    mut receiver: mpsc::Receiver<AuditEntry>,
    mut stop: oneshot::Receiver<Duration>,
    written: Arc<AtomicU64>,
) {
    let mut batch: Vec<AuditEntry> = Vec::with_capacity(BATCH);
    let mut retry = RETRY_FIRST;
    loop {
        if batch.is_empty() {
            tokio::select! {
                received = receiver.recv() => match received {
                    Some(entry) => batch.push(entry),
                    None => return,
                },
                deadline = &mut stop => {
                    flush_on_shutdown(&store, &mut receiver, batch, deadline.unwrap_or_default(), &written).await;
                    return;
                }
            }
        }
        while batch.len() < BATCH {
            match receiver.try_recv() {
                Ok(entry) => batch.push(entry),
                Err(_) => break,
            }
        }
        match store.insert_audit(&batch).await {
            Ok(()) => {
                written.fetch_add(batch.len() as u64, Ordering::Relaxed);
                batch.clear();
                retry = RETRY_FIRST;
            }
            Err(error) => {
                // Keep the batch: it is written once the database is back.
                tracing::warn!(%error, pending = batch.len(), retry_in_ms = retry.as_millis() as u64, "audit write failed, will retry");
                tokio::select! {
                    _ = tokio::time::sleep(retry) => {}
                    deadline = &mut stop => {
                        flush_on_shutdown(&store, &mut receiver, batch, deadline.unwrap_or_default(), &written).await;
                        return;
                    }
                }
                retry = (retry * 2).min(RETRY_MAX);
            }
        }
    }
}

async fn flush_on_shutdown(
    store: &Store,
    receiver: &mut mpsc::Receiver<AuditEntry>,
    mut pending: Vec<AuditEntry>,
    deadline: Duration,
    written: &AtomicU64,
) {
    receiver.close();
    while let Ok(entry) = receiver.try_recv() {
        pending.push(entry);
    }
    let give_up = tokio::time::Instant::now() + deadline;
    let mut retry = RETRY_FIRST;
    while !pending.is_empty() {
        let take = pending.len().min(BATCH);
        match store.insert_audit(&pending[..take]).await {
            Ok(()) => {
                written.fetch_add(take as u64, Ordering::Relaxed);
                pending.drain(..take);
            }
            Err(error) => {
                if tokio::time::Instant::now() + retry > give_up {
                    tracing::error!(%error, lost = pending.len(), "audit entries not written before shutdown");
                    return;
                }
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(RETRY_MAX);
            }
        }
    }
}
