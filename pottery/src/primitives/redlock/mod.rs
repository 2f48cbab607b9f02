//! Redlock: a distributed lock over N independent Redis masters, wire-compatible with
//! pottery's `Redlock` (and so with any Python process locking the same key).
//!
//! # Shape
//! A [`Redlock`] is a description of a lock — key, masters, settings — that any number of
//! threads and tasks share (in a `static`, an `Arc`, or as clones). Each successful attempt makes
//! a *lease* (its own uuid, extension count, fencing token, local validity estimate) owned by
//! the guard it returns; the guard's `release`, `extend` and `locked` act on that lease alone,
//! with compare-and-act scripts keyed by its uuid, so a stale guard can never free or prolong
//! somebody else's lease, and a failed attempt never touches anybody's lease.
//!
//! # Waiting
//! Waiters of one process on one key (whatever instance they use) line up in a local FIFO:
//! only the head contends with other processes, and a local release hands over directly. The
//! head waits for the holder's release, which the release script publishes on a channel named
//! after the key (through one pub/sub connection per master shared by the whole process), for
//! the holder's
//! remaining lease (returned by the failed attempt), or at most a random 50–200 ms (a Python
//! pottery holder publishes nothing, and pottery itself polls every 0–200 ms).
//!
//! # Cancellation
//! Dropping an acquiring future at any await point gives back whatever a master granted: the
//! attempt owns a drop guard that releases its uuid in the background, on the caller's runtime
//! (so the release travels on the same connections, behind the attempt's own commands).
//!
#![doc = include_str!("../../guide/redlock.md")]

#[macro_use]
mod settings;

mod acquire;
pub mod aio;
mod blocking;
mod core;
mod lease;
pub(crate) mod waiting;
pub(crate) mod watchdog;

pub use self::aio::synchronized_async;
pub use self::blocking::{Redlock, RedlockGuard, WatchdogGuard, synchronize, synchronized};
pub use self::core::KEY_PREFIX;
pub use self::watchdog::LostSignal;
