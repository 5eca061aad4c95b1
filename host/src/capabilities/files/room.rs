//! What a plugin's folder may still grow by in one call: its quota less
//! what the folder held when the call began (measured with cap-std, inside
//! the folder only) and less what the plugin's other calls in flight have
//! taken. Writes are charged in full as they happen, before they reach the
//! disk; the next call measures again, so deleting files frees room.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use bytes::Bytes;
use cap_std::fs::Dir;
use wasmtime_wasi::async_trait;
use wasmtime_wasi::p2::bindings::filesystem::types::ErrorCode;
use wasmtime_wasi::p2::{
    DynOutputStream, FsError, OutputStream, Pollable, StreamError, StreamResult,
};

use crate::infra::metrics::{QuotaLabels, metrics};

/// Each file, folder or link counts this much besides its bytes, so a
/// plugin cannot exhaust a disk's inodes with empty files.
pub const ENTRY_BYTES: u64 = 4096;

/// Folders deeper than this are not measured further (and count as full).
const MAX_DEPTH: usize = 32;

/// What the calls of one plugin in flight have taken together, so two
/// calls at once cannot each use the room that was left.
#[derive(Default)]
pub struct InFlight(AtomicU64);

pub struct FolderRoom {
    plugin: Arc<str>,
    quota: u64,
    left: AtomicU64,
    /// This call's charges, given back to `in_flight` when it ends (they
    /// are on disk by then, and the next call measures them).
    charged: AtomicU64,
    in_flight: Arc<InFlight>,
    refused: AtomicU32,
}

impl FolderRoom {
    pub fn new(plugin: Arc<str>, quota: u64, used: u64, in_flight: Arc<InFlight>) -> Self {
        let others = in_flight.0.load(Ordering::Relaxed);
        Self {
            plugin,
            quota,
            left: AtomicU64::new(quota.saturating_sub(used).saturating_sub(others)),
            charged: AtomicU64::new(0),
            in_flight,
            refused: AtomicU32::new(0),
        }
    }

    /// Takes `bytes` of room, or refuses with `insufficient-space`.
    pub fn take(&self, bytes: u64) -> Result<(), FsError> {
        if bytes == 0 {
            return Ok(());
        }
        let taken = self
            .left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(bytes)
            });
        match taken {
            Ok(_) => {
                self.charged.fetch_add(bytes, Ordering::Relaxed);
                self.in_flight.0.fetch_add(bytes, Ordering::Relaxed);
                Ok(())
            }
            Err(_) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                Err(ErrorCode::InsufficientSpace.into())
            }
        }
    }
}

impl Drop for FolderRoom {
    fn drop(&mut self) {
        let charged = *self.charged.get_mut();
        self.in_flight.0.fetch_sub(charged, Ordering::Relaxed);
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
    fn the_room_refuses_past_the_quota_and_counts_entries() {
        let in_flight = Arc::new(InFlight::default());
        let room = FolderRoom::new(Arc::from("p"), 10_000, 4_000, in_flight.clone());
        assert!(room.take(5_000).is_ok());
        // A second call at once sees what the first has taken.
        let other = FolderRoom::new(Arc::from("p"), 10_000, 4_000, in_flight.clone());
        assert!(other.take(1_001).is_err());
        assert!(other.take(1_000).is_ok());
        assert!(room.take(1_000).is_ok());
        assert!(room.take(1).is_err());
        drop(room);
        drop(other);
        assert_eq!(
            in_flight.0.load(Ordering::Relaxed),
            0,
            "given back at the end"
        );

        let folder = tempfile::tempdir().unwrap();
        std::fs::write(folder.path().join("a"), [0u8; 100]).unwrap();
        std::fs::create_dir(folder.path().join("sub")).unwrap();
        std::fs::write(folder.path().join("sub/b"), [0u8; 50]).unwrap();
        let dir = Dir::open_ambient_dir(folder.path(), cap_std::ambient_authority()).unwrap();
        assert_eq!(usage(&dir).unwrap(), 3 * ENTRY_BYTES + 150);
    }
}
