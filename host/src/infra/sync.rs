//! Locking that survives a panic elsewhere.

use std::sync::{Mutex, MutexGuard};

/// The guard even if another thread panicked while holding the lock: the
/// data these locks protect (caches, counters, latest results) stays usable.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
