//! A thread's background fills: the fills its blocking misses (and its async ones on a
//! current-thread runtime) left under way, which its reads of the same keys heed (see
//! [`Near::fill_in_background`]), and what bounds them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::link::Near;
use super::plan::Read;
use super::{HEARTBEAT_BOUND, lock};

/// Background fills (of blocking misses) in flight per near cache, at most: past it a
/// blocking miss fills the cache as an async one does.
pub(super) const BACKGROUND_MAX: usize = 256;

/// A thread's background fills under way (or ended and not yet looked at), at most.
pub(super) const OWN_MAX: usize = 16;

thread_local! {
    /// This thread's background fills (see [`Near::fill_in_background`]): until one ends,
    /// this thread's cached reads of its key wait for it.
    static OWN: std::cell::RefCell<Vec<OwnFill>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Whether `OWN` may hold any (what a hit looks at).
    static OWN_ANY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A thread's background fill: the store, the read (its key and identity), and its end.
pub(super) struct OwnFill {
    pub(super) store: u64,
    pub(super) read: Read,
    pub(super) done: Arc<Done>,
}

/// The end of a background fill: under way, then whether the tracking connection answered
/// its read (so that every invalidation the server sent before that read ran was applied:
/// see [`Near::fill_in_background`]).
#[derive(Default)]
pub(super) struct Done {
    /// [`UNDER_WAY`], [`ANSWERED`] or [`UNANSWERED`] (read without a lock by every lookup of
    /// a thread that has fills).
    state: std::sync::atomic::AtomicU8,
    lock: Mutex<()>,
    ended: Condvar,
    /// For async readers waiting on a current-thread runtime.
    notify: tokio::sync::Notify,
}

pub(super) const UNDER_WAY: u8 = 0;
pub(super) const ANSWERED: u8 = 1;
const UNANSWERED: u8 = 2;

impl Done {
    pub(super) fn end(&self, answered: bool) {
        let to = if answered { ANSWERED } else { UNANSWERED };
        // The first end counts (the task's own, before its guard's).
        let _ = self
            .state
            .compare_exchange(UNDER_WAY, to, Ordering::AcqRel, Ordering::Acquire);
        drop(lock(&self.lock));
        self.ended.notify_all();
        self.notify.notify_waiters();
    }

    pub(super) fn state(&self) -> u8 {
        self.state.load(Ordering::Acquire)
    }

    /// [`Done::wait`], awaited.
    async fn wait_async(&self, bound: Duration) -> bool {
        // Made before the state is read: an end after that read wakes it.
        let ended = self.notify.notified();
        if self.state() == UNDER_WAY {
            let _ = tokio::time::timeout(bound, ended).await;
        }
        self.state() == ANSWERED
    }

    /// Waits up to `bound` for the end; whether the read was answered.
    pub(super) fn wait(&self, bound: Duration) -> bool {
        let guard = lock(&self.lock);
        let waited = self
            .ended
            .wait_timeout_while(guard, bound, |_| self.state() == UNDER_WAY);
        drop(waited);
        self.state() == ANSWERED
    }
}

/// Whether this thread has background fills to look at ([`own_fill_of`]): one
/// thread-local load.
#[inline]
pub(crate) fn own_fills() -> bool {
    OWN_ANY.try_with(std::cell::Cell::get).unwrap_or(false)
}

/// Runs `f` on this thread's background fills (`None` from a thread-local's destructor, or
/// re-entered), keeping [`own_fills`] up to date.
pub(super) fn with_own<R>(f: impl FnOnce(&mut Vec<OwnFill>) -> R) -> Option<R> {
    OWN.try_with(|own| {
        let mut own = own.try_borrow_mut().ok()?;
        let out = f(&mut own);
        let _ = OWN_ANY.try_with(|any| any.set(!own.is_empty()));
        Some(out)
    })
    .ok()
    .flatten()
}

/// Whether this thread has a background fill of `key` of `store` that a read of the key must
/// heed: one under way, or one that ended unanswered. (Those that ended answered, of any key,
/// are forgotten: a thread whose fills have all ended looks at none again.)
#[inline(never)]
pub(crate) fn own_fill_of(store: u64, key: &[u8]) -> bool {
    with_own(|own| {
        own.retain(|o| o.done.state() != ANSWERED);
        own.iter().any(|o| o.store == store && o.read.key == key)
    })
    .unwrap_or(false)
}

/// Waits for this thread's background fills of `key` of `store` (at most [`HEARTBEAT_BOUND`]
/// in all) and forgets them; whether every one was answered (then every invalidation the
/// server sent before this thread's last read of the key ran has been applied).
#[inline(never)]
pub(crate) fn settle_own(store: u64, key: &[u8]) -> bool {
    let Some(mine) = take_own(store, key) else {
        return false;
    };
    let deadline = Instant::now() + HEARTBEAT_BOUND;
    mine.iter().all(|o| o.done.wait(time_left(deadline)))
}

/// [`settle_own`], awaited, on a current-thread runtime (whose one thread the fills' records
/// are kept on). The records stay while it waits: the runtime's other tasks heed them
/// meanwhile (those that ended answered are forgotten by the next look, [`own_fill_of`]).
pub(super) async fn settle_own_async(store: u64, key: &[u8]) -> bool {
    let Some(mine) = with_own(|own| {
        own.iter()
            .filter(|o| o.store == store && o.read.key == key)
            .map(|o| Arc::clone(&o.done))
            .collect::<Vec<_>>()
    }) else {
        return false;
    };
    let deadline = Instant::now() + HEARTBEAT_BOUND;
    for done in &mine {
        if !done.wait_async(time_left(deadline)).await {
            return false;
        }
    }
    true
}

/// This thread's background fills of `key` of `store`, taken from its records.
fn take_own(store: u64, key: &[u8]) -> Option<Vec<OwnFill>> {
    with_own(|own| {
        let (mine, rest) = std::mem::take(own)
            .into_iter()
            .partition(|o| o.store == store && o.read.key == key);
        *own = rest;
        mine
    })
}

/// What is left until `deadline` (nothing once past it: not a clamp of anybody's value).
fn time_left(deadline: Instant) -> Duration {
    deadline
        .checked_duration_since(Instant::now())
        .unwrap_or(Duration::ZERO)
}

/// A place for one more background fill of a near cache (its count of them, taken back
/// when this is dropped unused). Only the counter is borrowed: a future that holds this
/// across an await proves it `Send` without going through the whole near cache.
pub(crate) struct Room<'a> {
    pub(super) count: &'a AtomicUsize,
}

impl Drop for Room<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Ends a background fill however its task ends (answered, or dropped with the runtime).
pub(super) struct Background {
    pub(super) near: Arc<Near>,
    pub(super) done: Arc<Done>,
}

impl Drop for Background {
    fn drop(&mut self) {
        self.near.background().fetch_sub(1, Ordering::Relaxed);
        self.done.end(false);
    }
}

/// Whether this thread has a background fill of `read` itself, of `store` (`None` from a
/// thread-local's destructor).
pub(super) fn own_fill_of_read(store: u64, read: &Read) -> Option<bool> {
    with_own(|own| {
        own.iter()
            .any(|o| o.store == store && o.read.key == read.key && o.read.ident == read.ident)
    })
}
