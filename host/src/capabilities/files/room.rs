//! What a plugin's folder may still grow by. One [`FolderLedger`] per
//! folder in this process keeps a running total shared by every call of
//! the plugin, however many run at once (chats, jobs, webhooks): each write
//! is charged to it before it reaches the disk, by how much it makes the
//! folder bigger as [`usage`] measures it (a write at a huge offset is
//! charged the whole gap: files count at their logical size). Removing a
//! file or a folder gives its size back at once; anything else the total
//! cannot follow exactly (an overwrite, a truncation) leaves it too high,
//! never too low, and the folder is measured again on a blocking thread
//! once none of the plugin's calls is in flight. The first call in a
//! process measures the folder (after a restart the total is what the disk
//! says, not what was remembered).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use cap_std::fs::Dir;
use wasmtime_wasi::async_trait;
use wasmtime_wasi::p2::bindings::filesystem::types::ErrorCode;
use wasmtime_wasi::p2::{
    DynOutputStream, FsError, OutputStream, Pollable, StreamError, StreamResult,
};

use crate::infra::metrics::{QuotaLabels, metrics};
use crate::infra::sync::lock;

/// Each file, folder or link counts this much besides its bytes, so a
/// plugin cannot exhaust a disk's inodes with empty files.
pub const ENTRY_BYTES: u64 = 4096;

/// Folders deeper than this are not measured further (and count as full).
const MAX_DEPTH: usize = 32;

/// The running total of one folder, shared by every call that writes to it.
pub struct FolderLedger {
    folder: PathBuf,
    /// What the folder holds as [`usage`] counts it, plus what was charged
    /// and less what was freed since it was measured.
    used: AtomicU64,
    calls: Mutex<Calls>,
}

#[derive(Default)]
struct Calls {
    /// Measured in this process at least once.
    measured: bool,
    in_flight: u32,
    /// Counts calls begun, so a measurement that raced one is not applied.
    begun: u64,
    /// A call changed the folder since it was last measured.
    changed: bool,
    /// A measurement is running on a blocking thread.
    measuring: bool,
}

impl FolderLedger {
    /// The ledger of `folder`, the same for every call (and every version
    /// of the plugin) in this process.
    pub fn of(folder: &Path) -> Arc<Self> {
        // Kept for the life of the process (one small entry per plugin
        // folder): a total dropped between calls would be measured again.
        static LEDGERS: OnceLock<Mutex<HashMap<PathBuf, Arc<FolderLedger>>>> = OnceLock::new();
        let mut ledgers = lock(LEDGERS.get_or_init(Mutex::default));
        ledgers
            .entry(folder.to_path_buf())
            .or_insert_with(|| {
                Arc::new(Self {
                    folder: folder.to_path_buf(),
                    used: AtomicU64::new(0),
                    calls: Mutex::default(),
                })
            })
            .clone()
    }

    /// A call begins: the folder is measured if this process has not yet.
    pub fn begin(&self, dir: &Dir) -> std::io::Result<()> {
        let mut calls = lock(&self.calls);
        if !calls.measured {
            self.used.store(usage(dir)?, Ordering::Release);
            calls.measured = true;
        }
        calls.in_flight += 1;
        calls.begun += 1;
        Ok(())
    }

    /// A call ended; the last one of a busy spell has the folder measured
    /// again off the message path, if anything changed.
    fn end(self: &Arc<Self>, changed: bool) {
        let mut calls = lock(&self.calls);
        calls.in_flight = calls.in_flight.saturating_sub(1);
        calls.changed |= changed;
        if calls.in_flight > 0 || !calls.changed || calls.measuring {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        calls.measuring = true;
        calls.changed = false;
        let begun = calls.begun;
        drop(calls);
        let ledger = self.clone();
        runtime.spawn_blocking(move || ledger.measure_again(begun));
    }

    fn measure_again(&self, begun: u64) {
        let measured = Dir::open_ambient_dir(&self.folder, cap_std::ambient_authority())
            .and_then(|dir| usage(&dir));
        let mut calls = lock(&self.calls);
        calls.measuring = false;
        match measured {
            // No call began meanwhile: nothing was charged that the
            // measurement might have missed.
            Ok(used) if calls.begun == begun && calls.in_flight == 0 => {
                self.used.store(used, Ordering::Release);
            }
            Ok(_) => calls.changed = true,
            Err(error) => tracing::warn!(
                folder = %self.folder.display(),
                %error,
                "cannot measure a plugin's files folder; its running total is kept"
            ),
        }
    }

    /// What the folder holds as the quota counts it.
    #[cfg(test)]
    fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }
}

/// One call's view of its plugin's ledger: the quota, and what it refused.
pub struct FolderRoom {
    plugin: Arc<str>,
    quota: u64,
    /// None: a call without the grant, which may write nothing.
    ledger: Option<Arc<FolderLedger>>,
    changed: AtomicBool,
    refused: AtomicU32,
}

impl FolderRoom {
    /// A call of `plugin` begins writing to the folder `dir` of `ledger`.
    pub fn begin(
        plugin: Arc<str>,
        quota: u64,
        ledger: Arc<FolderLedger>,
        dir: &Dir,
    ) -> std::io::Result<Self> {
        ledger.begin(dir)?;
        Ok(Self::with(plugin, quota, Some(ledger)))
    }

    /// Room for a call without the grant: none.
    pub fn refusing(plugin: Arc<str>) -> Self {
        Self::with(plugin, 0, None)
    }

    fn with(plugin: Arc<str>, quota: u64, ledger: Option<Arc<FolderLedger>>) -> Self {
        Self {
            plugin,
            quota,
            ledger,
            changed: AtomicBool::new(false),
            refused: AtomicU32::new(0),
        }
    }

    /// Takes `bytes` of room from the plugin's total, or refuses with
    /// `insufficient-space`.
    pub fn take(&self, bytes: u64) -> Result<(), FsError> {
        if bytes == 0 {
            return Ok(());
        }
        let quota = self.quota;
        let taken = self.ledger.as_ref().map(|ledger| {
            ledger
                .used
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                    used.checked_add(bytes).filter(|after| *after <= quota)
                })
        });
        self.changed.store(true, Ordering::Relaxed);
        match taken {
            Some(Ok(_)) => Ok(()),
            _ => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                Err(ErrorCode::InsufficientSpace.into())
            }
        }
    }

    /// Gives back what a removed file or folder held.
    pub fn give_back(&self, bytes: u64) {
        if let Some(ledger) = &self.ledger {
            let _ = ledger
                .used
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                    Some(used.saturating_sub(bytes))
                });
        }
        self.changed.store(true, Ordering::Relaxed);
    }

    /// The folder changed in a way the total cannot follow: measure it again.
    pub fn changed(&self) {
        self.changed.store(true, Ordering::Relaxed);
    }
}

impl Drop for FolderRoom {
    fn drop(&mut self) {
        if let Some(ledger) = &self.ledger {
            ledger.end(*self.changed.get_mut());
        }
        let refused = *self.refused.get_mut();
        if refused == 0 {
            return;
        }
        metrics()
            .quota_refusals
            .get_or_create(&QuotaLabels {
                plugin: self.plugin.to_string(),
                quota: "files".to_string(),
            })
            .inc_by(u64::from(refused));
        tracing::warn!(
            target: "plugin",
            plugin = %self.plugin,
            quota_bytes = self.quota,
            refused,
            "the plugin's files folder is full: writes were refused (raise `limits.files_kb` in the manifest)"
        );
    }
}

/// What `dir` holds: every file's length plus [`ENTRY_BYTES`] per entry.
/// Symbolic links are counted, never followed.
pub fn usage(dir: &Dir) -> std::io::Result<u64> {
    usage_at(dir, 0)
}

fn usage_at(dir: &Dir, depth: usize) -> std::io::Result<u64> {
    if depth > MAX_DEPTH {
        return Ok(u64::MAX / 2);
    }
    let mut total = 0u64;
    for entry in dir.entries()? {
        let entry = entry?;
        let kind = entry.file_type()?;
        total = total.saturating_add(ENTRY_BYTES);
        if kind.is_dir() {
            let sub = entry.open_dir()?;
            total = total.saturating_add(usage_at(&sub, depth + 1)?);
        } else if kind.is_file() {
            total = total.saturating_add(entry.metadata()?.len());
        }
    }
    Ok(total)
}

/// A file's output stream whose writes are charged to the room first.
pub struct ChargedStream {
    inner: DynOutputStream,
    room: Arc<FolderRoom>,
}

impl ChargedStream {
    pub fn new(inner: DynOutputStream, room: Arc<FolderRoom>) -> Self {
        Self { inner, room }
    }
}

#[async_trait]
impl OutputStream for ChargedStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        if self.room.take(bytes.len() as u64).is_err() {
            // `filesystem-error-code` turns this into insufficient-space.
            return Err(StreamError::LastOperationFailed(wasmtime::Error::from(
                std::io::Error::from_raw_os_error(libc::ENOSPC),
            )));
        }
        self.inner.write(bytes)
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.inner.flush()
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        self.inner.check_write()
    }

    async fn cancel(&mut self) {
        self.inner.cancel().await
    }
}

#[async_trait]
impl Pollable for ChargedStream {
    async fn ready(&mut self) {
        self.inner.ready().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_at_once_share_one_total_and_removal_gives_room_back() {
        let folder = tempfile::tempdir().unwrap();
        std::fs::write(folder.path().join("a"), [0u8; 100]).unwrap();
        std::fs::create_dir(folder.path().join("sub")).unwrap();
        std::fs::write(folder.path().join("sub/b"), [0u8; 50]).unwrap();
        let dir = Dir::open_ambient_dir(folder.path(), cap_std::ambient_authority()).unwrap();
        assert_eq!(usage(&dir).unwrap(), 3 * ENTRY_BYTES + 150);

        let ledger = FolderLedger::of(folder.path());
        assert!(Arc::ptr_eq(&ledger, &FolderLedger::of(folder.path())));
        let quota = 3 * ENTRY_BYTES + 150 + 10_000;
        let first = FolderRoom::begin(Arc::from("p"), quota, ledger.clone(), &dir).unwrap();
        let second = FolderRoom::begin(Arc::from("p"), quota, ledger.clone(), &dir).unwrap();
        // Two calls at once: the room left is one room, not one each.
        assert!(first.take(6_000).is_ok());
        assert!(second.take(6_000).is_err());
        assert!(second.take(4_000).is_ok());
        assert!(first.take(1).is_err());
        second.give_back(100);
        assert!(first.take(100).is_ok());
        assert_eq!(ledger.used(), quota);
        drop((first, second));
    }
}
