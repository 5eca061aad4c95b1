//! The audit writer: entries go into a bounded queue and a background task
//! inserts them in batches, so the reply path never waits on the database.
//!
//! No input can stop it:
//! - every entry is sanitized when it is queued ([`AuditEntry::sanitized`]), so text from
//!   a plugin, a secret's name or a Telegram message stores as it is;
//! - a batch the database still refuses as data (a value or a constraint) is
//!   split in halves until the offending rows are found: the others are
//!   written and each bad one is set aside in `audit_rejected` (or, if even
//!   that fails, a log line), counted and alerted;
//! - a database that is down or slow keeps the batch on the retry path;
//!   every entry has an idempotency key, so a batch written although its
//!   answer timed out is not written twice;
//! - a writer making no progress for a minute, or a full queue, alerts the
//!   admin chat and shows in `/readyz` and `/health`.
//!
//! Shutdown flushes what is queued.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::infra::alert::Alerter;
use crate::infra::metrics::metrics;
use crate::infra::store::{
    AuditEntry, KeyedAuditEntry, RejectedAudit, Store, StoreError, clean_text,
};

/// Entries waiting for the database; past this, new ones are counted as overflow.
pub const DEFAULT_QUEUE_CAPACITY: usize = 50_000;
/// No write for this long while entries wait: the trail is stalled.
pub const DEFAULT_STALL_AFTER: Duration = Duration::from_secs(60);
/// How much of the queue plugins' own entries may fill, in percent.
pub const PLUGIN_SHARE_PERCENT: usize = 75;
/// How much metadata plugins' entries may hold in the queue, together.
pub const PLUGIN_QUEUE_BYTES: usize = 32 << 20;
/// Largest batch per INSERT.
const BATCH: usize = 1_000;
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// How the writer is set up; [`AuditOptions::new`] for the defaults.
#[derive(Clone)]
pub struct AuditOptions {
    pub capacity: usize,
    /// See [`DEFAULT_STALL_AFTER`]; also how long a queue overflow shows.
    pub stall_after: Duration,
    /// Where stalls, overflows and set-aside entries are reported; the log
    /// only when none.
    pub alerter: Option<Alerter>,
}

impl AuditOptions {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            stall_after: DEFAULT_STALL_AFTER,
            alerter: None,
        }
    }
}

/// Whether the trail is keeping up, for `/readyz`, `/health` and alerts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditHealth {
    Ok,
    /// Entries wait and nothing was written for `for_secs`.
    Stalled {
        pending: usize,
        for_secs: u64,
        last_error: Option<String>,
    },
    /// The queue was full within the stall window; `dropped` in all.
    Overflowing {
        dropped: u64,
    },
}

impl AuditHealth {
    pub fn is_ok(&self) -> bool {
        matches!(self, AuditHealth::Ok)
    }

    /// `ok`, `stalled` or `overflowing`.
    pub fn label(&self) -> &'static str {
        match self {
            AuditHealth::Ok => "ok",
            AuditHealth::Stalled { .. } => "stalled",
            AuditHealth::Overflowing { .. } => "overflowing",
        }
    }
}

impl std::fmt::Display for AuditHealth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuditHealth::Ok => write!(f, "ok"),
            AuditHealth::Stalled {
                pending,
                for_secs,
                last_error,
            } => {
                write!(
                    f,
                    "stalled: {pending} entries waiting, nothing written for {for_secs} s"
                )?;
                if let Some(error) = last_error {
                    write!(f, " (last error: {error})")?;
                }
                Ok(())
            }
            AuditHealth::Overflowing { dropped } => {
                write!(
                    f,
                    "overflowing: the queue is full, {dropped} entries dropped"
                )
            }
        }
    }
}

/// What the writer task, the watchdog and the handle share.
struct Shared {
    overflow: AtomicU64,
    written: AtomicU64,
    rejected: AtomicU64,
    /// Entries accepted by `record` and not yet written, set aside or lost:
    /// one counter, changed where an entry enters and where it leaves, so no
    /// moment in between (taken off the queue, not yet in a batch) reads 0.
    unwritten: AtomicUsize,
    /// The task waits on an empty queue: nothing can be stalled.
    idle: AtomicBool,
    started: Instant,
    /// Milliseconds since `started` of the last progress (a write, a row set
    /// aside, the queue found empty or new work taken up).
    last_progress_ms: AtomicU64,
    /// Milliseconds since `started` of the last overflow, plus one (0: never).
    last_overflow_ms: AtomicU64,
    last_error: StdMutex<Option<String>>,
    stall_after: Duration,
    stopped: AtomicBool,
    /// Metadata bytes of plugins' entries in the queue.
    plugin_bytes: AtomicUsize,
}

impl Shared {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis().min(u128::from(u64::MAX)) as u64
    }

    fn progress(&self) {
        self.last_progress_ms
            .store(self.now_ms(), Ordering::Relaxed);
    }

    fn set_error(&self, error: Option<String>) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = error;
    }

    fn health(&self) -> AuditHealth {
        let now = self.now_ms();
        let pending = self.unwritten.load(Ordering::Relaxed);
        let since_progress = now.saturating_sub(self.last_progress_ms.load(Ordering::Relaxed));
        let window = self.stall_after.as_millis().min(u128::from(u64::MAX)) as u64;
        if pending > 0 && !self.idle.load(Ordering::Relaxed) && since_progress >= window {
            return AuditHealth::Stalled {
                pending,
                for_secs: since_progress / 1000,
                last_error: self
                    .last_error
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .clone(),
            };
        }
        let last_overflow = self.last_overflow_ms.load(Ordering::Relaxed);
        if last_overflow > 0 && now.saturating_sub(last_overflow - 1) < window {
            return AuditHealth::Overflowing {
                dropped: self.overflow.load(Ordering::Relaxed),
            };
        }
        AuditHealth::Ok
    }
}

pub struct AuditWriter {
    queue: mpsc::Sender<Queued>,
    shared: Arc<Shared>,
    stop: Mutex<Option<(oneshot::Sender<Duration>, JoinHandle<()>)>>,
    watchdog: JoinHandle<()>,
}

impl AuditWriter {
    /// A writer with the default options and alerts in the log only.
    pub fn start(store: Store, capacity: usize) -> Self {
        Self::start_with(store, AuditOptions::new(capacity))
    }

    pub fn start_with(store: Store, options: AuditOptions) -> Self {
        let (queue, receiver) = mpsc::channel(options.capacity.max(1));
        let (stop_tx, stop_rx) = oneshot::channel();
        let shared = Arc::new(Shared {
            overflow: AtomicU64::new(0),
            written: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            unwritten: AtomicUsize::new(0),
            idle: AtomicBool::new(true),
            started: Instant::now(),
            last_progress_ms: AtomicU64::new(0),
            last_overflow_ms: AtomicU64::new(0),
            last_error: StdMutex::new(None),
            stall_after: options.stall_after,
            stopped: AtomicBool::new(false),
            plugin_bytes: AtomicUsize::new(0),
        });
        let alerter = options.alerter.unwrap_or_default();
        let task = tokio::spawn(run(
            Writer {
                store,
                shared: shared.clone(),
                alerter: alerter.clone(),
            },
            receiver,
            stop_rx,
        ));
        let watchdog = tokio::spawn(watch(shared.clone(), queue.downgrade(), alerter));
        Self {
            queue,
            shared,
            stop: Mutex::new(Some((stop_tx, task))),
            watchdog,
        }
    }

    /// Sanitizes and queues an entry without waiting. A full queue drops
    /// it, counts it and logs an error (and the watchdog alerts).
    pub fn record(&self, entry: AuditEntry) {
        self.enqueue(Queued::new(entry, false));
    }

    /// Queues a plugin's entry, unless plugins' entries already fill their
    /// share of the queue: [`PLUGIN_SHARE_PERCENT`] of its entries and
    /// [`PLUGIN_QUEUE_BYTES`] of metadata. The rest is kept for the host's
    /// own entries (access denied, secret denied, message handled, LLM
    /// requests), so a flooding plugin cannot crowd them out. False when refused.
    pub fn record_from_plugin(&self, entry: AuditEntry) -> bool {
        let queued = Queued::new(entry, true);
        // Unwritten, not queued: entries the writer holds in a batch it
        // cannot write yet count too.
        let share = self.queue.max_capacity() * PLUGIN_SHARE_PERCENT / 100;
        let bytes = self.shared.plugin_bytes.load(Ordering::Relaxed);
        if self.pending() >= share || bytes + queued.plugin_bytes > PLUGIN_QUEUE_BYTES {
            metrics().audit_plugin_refused.inc();
            return false;
        }
        self.enqueue(queued)
    }

    /// True when queued; counted as overflow (and logged) when not.
    fn enqueue(&self, queued: Queued) -> bool {
        // Counted before it is queued: the writer may take it at once.
        self.shared.unwritten.fetch_add(1, Ordering::Relaxed);
        self.shared
            .plugin_bytes
            .fetch_add(queued.plugin_bytes, Ordering::Relaxed);
        let Err(error) = self.queue.try_send(queued) else {
            return true;
        };
        let queued = match error {
            mpsc::error::TrySendError::Full(queued) | mpsc::error::TrySendError::Closed(queued) => {
                queued
            }
        };
        self.shared.unwritten.fetch_sub(1, Ordering::Relaxed);
        self.shared
            .plugin_bytes
            .fetch_sub(queued.plugin_bytes, Ordering::Relaxed);
        let dropped = self.shared.overflow.fetch_add(1, Ordering::Relaxed) + 1;
        self.shared
            .last_overflow_ms
            .store(self.shared.now_ms() + 1, Ordering::Relaxed);
        tracing::error!(
            action = %queued.entry.action,
            correlation_id = queued.entry.correlation_id.as_deref().unwrap_or(""),
            overflow_total = dropped,
            "audit queue full or closed: entry dropped"
        );
        false
    }

    /// Metadata bytes of plugins' entries waiting in the queue (at most
    /// [`PLUGIN_QUEUE_BYTES`]; a batch the writer holds is not counted).
    pub fn plugin_queue_bytes(&self) -> usize {
        self.shared.plugin_bytes.load(Ordering::Relaxed)
    }

    /// Entries dropped because the queue was full.
    pub fn overflow(&self) -> u64 {
        self.shared.overflow.load(Ordering::Relaxed)
    }

    /// Entries written to the database so far (a retried entry that was
    /// already there counts once).
    pub fn written(&self) -> u64 {
        self.shared.written.load(Ordering::Relaxed)
    }

    /// Entries the database refused, set aside in `audit_rejected` or the log.
    pub fn rejected(&self) -> u64 {
        self.shared.rejected.load(Ordering::Relaxed)
    }

    /// Entries waiting in the queue.
    pub fn queued(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }

    /// Entries not written yet: queued, or held by the writer (a batch being
    /// written or retried).
    pub fn pending(&self) -> usize {
        self.shared.unwritten.load(Ordering::Relaxed)
    }

    /// The error of the last failed write, until a write succeeds.
    pub fn last_error(&self) -> Option<String> {
        self.shared
            .last_error
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Whether the trail keeps up: ok, stalled or overflowing.
    pub fn health(&self) -> AuditHealth {
        self.shared.health()
    }

    /// Writes what is queued, retrying for at most `deadline`, then stops.
    pub async fn shutdown(&self, deadline: Duration) {
        let Some((stop, task)) = self.stop.lock().await.take() else {
            return;
        };
        let _ = stop.send(deadline);
        if let Err(error) = task.await {
            tracing::error!(%error, "the audit writer task ended abnormally");
        }
        self.shared.stopped.store(true, Ordering::Relaxed);
        self.watchdog.abort();
    }
}

impl Drop for AuditWriter {
    fn drop(&mut self) {
        self.watchdog.abort();
    }
}

/// Checks the writer's health every few seconds: alerts when it stalls or
/// An entry as it waits in the queue: sanitized, its metadata held as
/// JSON text (bytes, not a tree of values), so a full queue has a bounded
/// memory cost; parsed back when the writer takes it, off the message path.
struct Queued {
    /// The entry with its metadata taken out.
    entry: AuditEntry,
    metadata: Box<str>,
    /// The metadata's size when a plugin wrote it (counted against
    /// [`PLUGIN_QUEUE_BYTES`]); zero for the host's own entries.
    plugin_bytes: usize,
}

impl Queued {
    fn new(entry: AuditEntry, from_plugin: bool) -> Self {
        let mut entry = entry.sanitized();
        let metadata = std::mem::take(&mut entry.metadata.0)
            .to_string()
            .into_boxed_str();
        let plugin_bytes = if from_plugin { metadata.len() } else { 0 };
        Self {
            entry,
            metadata,
            plugin_bytes,
        }
    }

    fn into_entry(self, shared: &Shared) -> AuditEntry {
        shared
            .plugin_bytes
            .fetch_sub(self.plugin_bytes, Ordering::Relaxed);
        let mut entry = self.entry;
        // It was serialized from a value a moment ago: it parses back.
        entry.metadata.0 = serde_json::from_str(&self.metadata).unwrap_or_default();
        entry
    }
}

/// the queue overflows, and sends one notice when it is well again.
async fn watch(shared: Arc<Shared>, queue: mpsc::WeakSender<Queued>, alerter: Alerter) {
    let tick = (shared.stall_after / 4).clamp(Duration::from_millis(50), Duration::from_secs(5));
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reported = AuditHealth::Ok;
    loop {
        ticker.tick().await;
        if shared.stopped.load(Ordering::Relaxed) {
            return;
        }
        // The handle is gone (dropped without shutdown): nothing to watch.
        if queue.upgrade().is_none() {
            return;
        }
        let health = shared.health();
        metrics()
            .audit_stalled
            .set(i64::from(matches!(health, AuditHealth::Stalled { .. })));
        if std::mem::discriminant(&health) == std::mem::discriminant(&reported) {
            continue;
        }
        match &health {
            AuditHealth::Ok => {
                tracing::info!(was = reported.label(), "audit trail healthy again");
                alerter.notify("audit", "✅ The audit trail is being written again.");
            }
            AuditHealth::Stalled { .. } => {
                alerter.alert("audit:stalled", format!("❌ The audit trail is {health}."));
            }
            AuditHealth::Overflowing { .. } => {
                alerter.alert(
                    "audit:overflow",
                    format!(
                        "❌ The audit trail is {health} (see the log for each; the writer keeps up with less)."
                    ),
                );
            }
        }
        reported = health;
    }
}

/// The writer task's view: where to write, what to count, whom to tell.
struct Writer {
    store: Store,
    shared: Arc<Shared>,
    alerter: Alerter,
}

/// A failure that may pass: the entries stay pending and are retried.
struct Transient(StoreError);

impl Writer {
    /// Writes `pending`, removing what was written or set aside. A batch the
    /// database refuses as data is split in halves until each bad row is
    /// alone; on a transient error what is left stays in `pending`.
    async fn write(&self, pending: &mut Vec<KeyedAuditEntry>) -> Result<(), Transient> {
        let mut done = vec![false; pending.len()];
        // Ranges still to try, the next on top: left to right keeps the order.
        let mut todo = vec![(0, pending.len())];
        let mut result = Ok(());
        while let Some((start, end)) = todo.pop() {
            if start == end {
                continue;
            }
            match self.store.insert_audit_keyed(&pending[start..end]).await {
                Ok(inserted) => {
                    let count = (end - start) as u64;
                    if inserted < count {
                        tracing::debug!(
                            already = count - inserted,
                            "audit entries were already written by an attempt whose answer was lost"
                        );
                    }
                    self.shared.written.fetch_add(count, Ordering::Relaxed);
                    self.shared
                        .unwritten
                        .fetch_sub(end - start, Ordering::Relaxed);
                    done[start..end].fill(true);
                    self.shared.progress();
                }
                Err(error) if error.is_data_error() => {
                    if end - start > 1 {
                        let middle = start + (end - start) / 2;
                        todo.push((middle, end));
                        todo.push((start, middle));
                        continue;
                    }
                    if let Err(transient) = self.set_aside(&pending[start], &error).await {
                        result = Err(transient);
                        break;
                    }
                    done[start] = true;
                    self.shared.progress();
                }
                Err(error) => {
                    result = Err(Transient(error));
                    break;
                }
            }
        }
        let mut flags = done.into_iter();
        pending.retain(|_| !flags.next().unwrap_or(false));
        result
    }

    /// Keeps a refused entry in `audit_rejected`; if the database refuses
    /// that too, in an error log line (JSON, so lossless and one line).
    /// Counted, and alerted (at most once per 5 minutes).
    async fn set_aside(
        &self,
        keyed: &KeyedAuditEntry,
        refusal: &StoreError,
    ) -> Result<(), Transient> {
        let error = clean_text(&refusal.to_string()).into_owned();
        let entry = keyed.entry.to_lossless_json(keyed.entry_id);
        let rejected = RejectedAudit {
            entry_id: keyed.entry_id,
            rejected_at: chrono::Utc::now(),
            error: error.clone(),
            entry,
        };
        let place = match self.store.insert_audit_rejected(&rejected).await {
            Ok(()) => "audit_rejected",
            Err(second) if second.is_data_error() => {
                tracing::error!(
                    entry = %rejected.entry,
                    %error,
                    set_aside_error = %second,
                    "audit entry refused by the database, and audit_rejected refused it too; it is kept only in this line"
                );
                "the log"
            }
            Err(second) => return Err(Transient(second)),
        };
        self.shared.rejected.fetch_add(1, Ordering::Relaxed);
        self.shared.unwritten.fetch_sub(1, Ordering::Relaxed);
        metrics().audit_rejected.inc();
        tracing::error!(
            entry_id = %keyed.entry_id,
            action = ?keyed.entry.action,
            correlation_id = ?keyed.entry.correlation_id,
            %error,
            place,
            "audit entry refused by the database: set aside"
        );
        self.alerter.alert(
            "audit:rejected",
            format!(
                "⚠️ The database refused an audit entry ({}); it was set aside in {place} (entry_id {}). {error}",
                clean_text(&keyed.entry.action),
                keyed.entry_id
            ),
        );
        Ok(())
    }

    fn failed(&self, error: &StoreError, pending: usize, retry: Duration) {
        tracing::warn!(%error, pending, retry_in_ms = retry.as_millis() as u64, "audit write failed, will retry");
        // Shown in alerts, /readyz and /health: no control characters.
        self.shared
            .set_error(Some(clean_text(&error.to_string()).into_owned()));
    }
}

async fn run(
    writer: Writer,
    mut receiver: mpsc::Receiver<Queued>,
    mut stop: oneshot::Receiver<Duration>,
) {
    let mut batch: Vec<KeyedAuditEntry> = Vec::with_capacity(BATCH);
    let mut retry = RETRY_FIRST;
    loop {
        if batch.is_empty() {
            writer.shared.progress();
            writer.shared.idle.store(true, Ordering::Relaxed);
            tokio::select! {
                received = receiver.recv() => match received {
                    // Keyed once, here: every retry of it reuses the key.
                    Some(queued) => batch.push(KeyedAuditEntry::new(queued.into_entry(&writer.shared))),
                    None => return,
                },
                deadline = &mut stop => {
                    writer.shared.idle.store(false, Ordering::Relaxed);
                    flush_on_shutdown(&writer, &mut receiver, batch, deadline.unwrap_or_default()).await;
                    return;
                }
            }
            // The stall clock starts when work is taken up, not when the
            // queue last ran dry.
            writer.shared.progress();
            writer.shared.idle.store(false, Ordering::Relaxed);
        }
        while batch.len() < BATCH {
            match receiver.try_recv() {
                Ok(queued) => batch.push(KeyedAuditEntry::new(queued.into_entry(&writer.shared))),
                Err(_) => break,
            }
        }
        match writer.write(&mut batch).await {
            Ok(()) => {
                if retry != RETRY_FIRST {
                    tracing::info!("audit writes succeed again");
                }
                writer.shared.set_error(None);
                retry = RETRY_FIRST;
            }
            Err(Transient(error)) => {
                // Keep the batch: it is written once the database is back.
                writer.failed(&error, batch.len(), retry);
                tokio::select! {
                    _ = tokio::time::sleep(retry) => {}
                    deadline = &mut stop => {
                        flush_on_shutdown(&writer, &mut receiver, batch, deadline.unwrap_or_default()).await;
                        return;
                    }
                }
                retry = (retry * 2).min(RETRY_MAX);
            }
        }
    }
}

async fn flush_on_shutdown(
    writer: &Writer,
    receiver: &mut mpsc::Receiver<Queued>,
    mut pending: Vec<KeyedAuditEntry>,
    deadline: Duration,
) {
    receiver.close();
    while let Ok(queued) = receiver.try_recv() {
        pending.push(KeyedAuditEntry::new(queued.into_entry(&writer.shared)));
    }
    let give_up = tokio::time::Instant::now() + deadline;
    let mut retry = RETRY_FIRST;
    while !pending.is_empty() {
        let take = pending.len().min(BATCH);
        let mut batch: Vec<KeyedAuditEntry> = pending.drain(..take).collect();
        let outcome = writer.write(&mut batch).await;
        // What the batch kept goes back in front, in order.
        let kept = batch.len();
        pending.splice(0..0, batch);
        if let Err(Transient(error)) = outcome {
            if tokio::time::Instant::now() + retry > give_up {
                tracing::error!(%error, lost = pending.len(), "audit entries not written before shutdown");
                writer
                    .shared
                    .unwritten
                    .fetch_sub(pending.len(), Ordering::Relaxed);
                for keyed in &pending {
                    // Lossless, so an operator can still replay them.
                    tracing::error!(entry = %keyed.entry.to_lossless_json(keyed.entry_id), "audit entry lost at shutdown");
                }
                return;
            }
            writer.failed(&error, kept, retry);
            tokio::time::sleep(retry).await;
            retry = (retry * 2).min(RETRY_MAX);
        }
    }
}
