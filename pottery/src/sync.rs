//! Locking that a panic elsewhere does not poison: pottery's mutexes guard plain data (caches
//! of connections, counters, lines of waiters) that stays consistent whatever a panicking
//! holder was doing, so a lock, an id or a cache must keep working after it.

use std::sync::{Mutex, MutexGuard};

/// The contents of `m`, poisoned or not.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
