use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::acquire::{Taken, acquire};
use super::aio;
use super::core::{Core, Wait, new_core};
use super::lease::Lease;
use super::lease::Slot;
use super::watchdog::{LostSignal, Watch, watchdog};
use crate::client::Redis;
use crate::error::{Error, Result};
use crate::exec::rt;
use crate::primitives::names;
use crate::sync::lock;

// ---------------------------------------------------------------------------------------------
// The public types

/// A distributed lock over one or many independent Redis masters: pottery's `Redlock`.
///
/// Same wire contract as pottery — key `redlock:<key>`, a fresh uuid4 per attempt,
/// `SET NX PX`, compare-then-act Lua for `locked`/`extend`/`release`, a majority quorum and
/// pottery's drift (1 % of the lease + 2 ms) — so Rust and Python processes exclude each other.
///
/// **Share one instance.** A `Redlock` is a description (key, masters, settings): keep one in a
/// `static` or an `Arc` and call [`lock`](Self::lock) from any number of threads; each guard
/// owns its lease, and releases, extends and reports on that lease only. Waiters in one process
/// queue in order and are handed the lock as the holder releases; across processes they are
/// woken by the release (published by the release script), by the holder's expiry, or by a
/// 50–200 ms poll (for Python holders, whose release publishes nothing).
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use pottery::Redlock;
///
/// # let redis = pottery::testing::doctest_redis();
/// let printer = Arc::new(Redlock::new("doc-printer", [redis]).auto_release_time(Duration::from_secs(5)));
/// let workers: Vec<_> = (0..4)
///     .map(|_| {
///         let printer = Arc::clone(&printer);
///         std::thread::spawn(move || -> pottery::Result<()> {
///             let guard = printer.lock()?;        // waits its turn
///             assert!(guard.locked()? > Duration::ZERO);
///             guard.release()                     // or let it drop
///         })
///     })
///     .collect();
/// for w in workers {
///     w.join().unwrap()?;
/// }
/// # Ok::<(), pottery::Error>(())
/// ```
///
/// **Blocking calls and threads.** Over several masters, a blocking call runs the quorum
/// round on a small Tokio runtime owned by the calling thread, and each handle keeps one async
/// connection per runtime (at most 64, the oldest replaced first). Calling from thousands of
/// short-lived threads therefore keeps up to 64 idle connections, each holding its dead
/// runtime's event descriptors (an `epoll` and an `eventfd`), until they are replaced or the
/// handle is dropped: bounded, but prefer a thread pool, or the async
/// [`aio::Redlock`](crate::aio::Redlock) from tasks.
///
/// pottery's imperative calls ([`acquire`](Self::acquire), [`extend`](Self::extend),
/// [`locked`](Self::locked), [`release`](Self::release)) are here too, with pottery's meaning:
/// one holder per instance, whose lease the instance keeps. A clone is a new instance (with its
/// own imperative lease); [`to_async`](Self::to_async) shares it.
pub struct Redlock {
    pub(super) core: Arc<Core>,
    pub(super) held: Slot,
}

lock_shell!("Redlock", to_async, aio::Redlock, "aio::Redlock");

impl Redlock {
    builder_methods!();

    /// Takes the lock as pottery's `with redlock:` does (honouring
    /// `context_manager_blocking` / `context_manager_timeout`), or fails with
    /// [`Error::LockBusy`] (another holder has it; the masters answered) or
    /// [`Error::QuorumNotAchieved`] (no majority of masters answered). The guard owns the
    /// lease and releases it on drop.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let lock = pottery::Redlock::new("doc-lock", [redis]);
    /// let guard = lock.lock()?;
    /// guard.release()?;   // explicit, reporting errors
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn lock(&self) -> Result<RedlockGuard> {
        self.guarded(false)
    }

    /// [`lock`](Self::lock), with a fencing token on the guard ([`RedlockGuard::token`]): a
    /// number larger than the token of every earlier fenced acquisition of this key.
    ///
    /// Each master counts successful acquisitions in `{redlock:<key>}:fence`; the token is the
    /// largest count in the quorum, written back to a majority before it is returned, so the
    /// majority of any later acquisition sees it. Guarantees hold while masters keep their
    /// data (a master restarted without persistence forgets its count). Hand the token to the
    /// resource you protect and have it refuse smaller ones: that, not the lock alone, stops a
    /// paused holder whose lease expired.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let lock = pottery::Redlock::new("doc-fenced", [redis]);
    /// let first = lock.lock_fenced()?;
    /// let t1 = first.token().unwrap();
    /// first.release()?;
    /// assert!(lock.lock_fenced()?.token().unwrap() > t1);
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn lock_fenced(&self) -> Result<RedlockGuard> {
        self.guarded(true)
    }

    fn guarded(&self, fenced: bool) -> Result<RedlockGuard> {
        match rt::block_on(acquire(&self.core, self.core.wait_mode(), fenced))? {
            Ok(lease) => Ok(RedlockGuard::new(lease)),
            Err(why) => Err(self.core.missed(why)),
        }
    }

    /// Like [`lock`](Self::lock), and keeps the lease alive from a background thread until
    /// the guard is released or dropped: it extends the lease every third of
    /// `auto_release_time`, counted from the lease's start, and is not bound by
    /// `num_extensions` (pottery's cap for manual [`extend`](Self::extend) calls). Ask the
    /// guard whether the lease was lost ([`WatchdogGuard::lost`]), or wait for that
    /// ([`WatchdogGuard::wait_lost`], or await [`WatchdogGuard::lost_signal`]).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let redis = pottery::testing::doctest_redis();
    /// let lock = pottery::Redlock::new("doc-watchdog", [redis])
    ///     .auto_release_time(Duration::from_secs(1));
    /// let guard = lock.lock_with_watchdog()?;
    /// std::thread::sleep(Duration::from_millis(1500)); // longer than the lease
    /// assert!(!guard.lost());
    /// assert!(guard.locked()? > Duration::ZERO);
    /// drop(guard);
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn lock_with_watchdog(&self) -> Result<WatchdogGuard> {
        let guard = self.lock()?;
        let watch = Arc::new(Watch::default());
        let (lease, w) = (Arc::clone(&guard.lease), Arc::clone(&watch));
        let thread = std::thread::Builder::new()
            .name("pottery-redlock-watchdog".into())
            .spawn(move || rt::block_on(watchdog(lease, w)))
            .map_err(|e| Error::Config {
                message: format!("cannot start the watchdog thread: {e}"),
            })?;
        Ok(WatchdogGuard {
            guard,
            watch,
            thread: Some(thread),
        })
    }

    /// pottery's `acquire()`: waits until this instance holds the lock. Not re-entrant: a
    /// second call while the instance holds a lease waits for that lease to run out.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let lock = pottery::Redlock::new("doc-acquire", [redis]);
    /// assert!(lock.acquire()?);
    /// # lock.release()?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn acquire(&self) -> Result<bool> {
        Ok(self.hold(rt::block_on(acquire(&self.core, Wait::For(None), false))?))
    }

    /// One attempt; `true` if this instance got the lock.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let lock = pottery::Redlock::new("doc-try", [redis]);
    /// assert!(lock.try_acquire()?);
    /// assert!(!lock.try_acquire()?);   // not re-entrant, as in pottery
    /// # lock.release()?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn try_acquire(&self) -> Result<bool> {
        Ok(self.hold(rt::block_on(acquire(&self.core, Wait::Once, false))?))
    }

    /// Retries until `timeout` has passed; at least one attempt even for zero (pottery makes
    /// none).
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let lock = pottery::Redlock::new("doc-timeout", [redis]);
    /// assert!(lock.acquire_timeout(std::time::Duration::ZERO)?);
    /// # lock.release()?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool> {
        let wait = Wait::For(Some(timeout));
        Ok(self.hold(rt::block_on(acquire(&self.core, wait, false))?))
    }

    /// [`lock_fenced`](Self::lock_fenced) in pottery's imperative form: this instance holds
    /// the lease, and the token is returned ([`Error::LockBusy`] or
    /// [`Error::QuorumNotAchieved`] when `context_manager_blocking` /
    /// `context_manager_timeout` ran out, as for [`lock`](Self::lock)).
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let lock = pottery::Redlock::new("doc-fence", [redis]);
    /// let first = lock.acquire_with_token()?;
    /// lock.release()?;
    /// let second = lock.acquire_with_token()?;
    /// assert!(second > first);
    /// # lock.release()?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn acquire_with_token(&self) -> Result<u64> {
        match rt::block_on(acquire(&self.core, self.core.wait_mode(), true))? {
            Ok(lease) => {
                let token = lease.token.unwrap_or(0);
                self.hold(Ok(lease));
                Ok(token)
            }
            Err(why) => Err(self.core.missed(why)),
        }
    }

    /// The remaining validity of this instance's imperative lease (zero when it holds none),
    /// by pottery's formula: the smallest remaining TTL in the quorum, minus drift and the time
    /// asking took. A guard reports its own with [`RedlockGuard::locked`].
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let lock = pottery::Redlock::new("doc-locked", [redis]);
    /// assert_eq!(lock.locked()?, std::time::Duration::ZERO);
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn locked(&self) -> Result<Duration> {
        match self.slot()? {
            Some(lease) => rt::block_on(lease.locked()),
            None => Ok(Duration::ZERO),
        }
    }

    /// Resets this instance's imperative lease to the full `auto_release_time`;
    /// [`Error::TooManyExtensions`] past `num_extensions`, [`Error::ExtendUnlockedLock`] when
    /// not held.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// let lock = pottery::Redlock::new("doc-extend", [redis]).num_extensions(1);
    /// lock.acquire()?;
    /// lock.extend()?;
    /// assert!(matches!(lock.extend(), Err(pottery::Error::TooManyExtensions { .. })));
    /// # lock.release()?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn extend(&self) -> Result<()> {
        match self.slot()? {
            Some(lease) => rt::block_on(lease.extend()),
            None => Err(self.extend_unlocked()),
        }
    }

    /// Releases this instance's imperative lease; [`Error::ReleaseUnlockedLock`] when it holds
    /// none (never acquired, released already, or expired).
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let lock = pottery::Redlock::new("doc-release", [redis]);
    /// assert!(matches!(lock.release(), Err(pottery::Error::ReleaseUnlockedLock { .. })));
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn release(&self) -> Result<()> {
        match self.take_slot()? {
            Some(lease) => rt::block_on(lease.release()),
            None => Err(self.release_unlocked()),
        }
    }
}

/// Owns one lease of a [`Redlock`] and releases it when dropped (best effort) or
/// [`release`](Self::release)d (reporting errors).
///
/// ```
/// # let redis = pottery::testing::doctest_redis();
/// # let lock = pottery::Redlock::new("doc-guard", [redis]);
/// let guard: pottery::RedlockGuard = lock.lock()?;
/// drop(guard);
/// assert!(lock.try_acquire()?);
/// # lock.release()?;
/// # Ok::<(), pottery::Error>(())
/// ```
#[must_use = "the lock is released when the guard is dropped"]
pub struct RedlockGuard {
    pub(super) lease: Arc<Lease>,
    pub(super) armed: bool,
}

impl fmt::Debug for RedlockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedlockGuard")
            .field("lease", &self.lease)
            .finish()
    }
}

impl RedlockGuard {
    fn new(lease: Lease) -> Self {
        RedlockGuard {
            lease: Arc::new(lease),
            armed: true,
        }
    }

    /// Releases now, reporting [`Error::ReleaseUnlockedLock`] if the lease was lost (expired,
    /// or taken over after expiry): another holder's lease is never touched.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let lock = pottery::Redlock::new("doc-guard-release", [redis]);
    /// lock.lock()?.release()?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn release(mut self) -> Result<()> {
        self.armed = false;
        rt::block_on(self.lease.release())
    }

    /// This lease's remaining validity (zero once lost).
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let lock = pottery::Redlock::new("doc-guard-locked", [redis]);
    /// let guard = lock.lock()?;
    /// assert!(guard.locked()? > std::time::Duration::ZERO);
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn locked(&self) -> Result<Duration> {
        rt::block_on(self.lease.locked())
    }

    /// Resets this lease to the full `auto_release_time` ([`Error::TooManyExtensions`] past
    /// `num_extensions`, [`Error::ExtendUnlockedLock`] once lost).
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let lock = pottery::Redlock::new("doc-guard-extend", [redis]);
    /// let guard = lock.lock()?;
    /// guard.extend()?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn extend(&self) -> Result<()> {
        rt::block_on(self.lease.extend())
    }

    /// The fencing token, for a guard from [`Redlock::lock_fenced`].
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let lock = pottery::Redlock::new("doc-guard-token", [redis]);
    /// assert_eq!(lock.lock()?.token(), None);
    /// assert!(lock.lock_fenced()?.token().is_some());
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn token(&self) -> Option<u64> {
        self.lease.token
    }
}

impl Drop for RedlockGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = rt::block_on(self.lease.release());
        }
    }
}

/// A [`RedlockGuard`] whose lease a background thread keeps extending.
///
/// ```
/// # let redis = pottery::testing::doctest_redis();
/// # let lock = pottery::Redlock::new("doc-watchdog-guard", [redis]);
/// let guard = lock.lock_with_watchdog()?;
/// assert!(!guard.lost());
/// guard.release()?;
/// # Ok::<(), pottery::Error>(())
/// ```
#[must_use = "the lock is released when the guard is dropped"]
pub struct WatchdogGuard {
    pub(super) guard: RedlockGuard,
    pub(super) watch: Arc<Watch>,
    pub(super) thread: Option<std::thread::JoinHandle<()>>,
}

impl fmt::Debug for WatchdogGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchdogGuard")
            .field("guard", &self.guard)
            .field("lost", &self.lost())
            .finish()
    }
}

impl WatchdogGuard {
    /// Whether the lease was lost: an extension was refused (the masters forgot the lock,
    /// another holder took it after a stall longer than the lease…) or none could be confirmed
    /// by a majority before the lease ran out.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let lock = pottery::Redlock::new("doc-lost", [redis]);
    /// let guard = lock.lock_with_watchdog()?;
    /// assert!(!guard.lost());
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn lost(&self) -> bool {
        self.watch.lost()
    }

    /// Waits up to `timeout` for the lease to be lost; `true` if it was. A leader's loop can
    /// do its work in steps and look between them, or a thread can wait on it alone.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let redis = pottery::testing::doctest_redis();
    /// # let lock = pottery::Redlock::new("doc-wait-lost", [redis]);
    /// let guard = lock.lock_with_watchdog()?;
    /// assert!(!guard.wait_lost(Duration::from_millis(20)));
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn wait_lost(&self, timeout: Duration) -> bool {
        let signal = self.watch.signal();
        rt::block_on(async move { tokio::time::timeout(timeout, signal).await.is_ok() })
    }

    /// A future that completes when the lease is lost (see [`LostSignal`]): for async code
    /// that holds a blocking guard.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let lock = pottery::Redlock::new("doc-lost-signal-blocking", [redis]);
    /// let guard = lock.lock_with_watchdog()?;
    /// let _lost: pottery::redlock::LostSignal = guard.lost_signal();
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn lost_signal(&self) -> LostSignal {
        self.watch.signal()
    }

    /// This lease's remaining validity.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let lock = pottery::Redlock::new("doc-wd-locked", [redis]);
    /// let guard = lock.lock_with_watchdog()?;
    /// assert!(guard.locked()? > std::time::Duration::ZERO);
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn locked(&self) -> Result<Duration> {
        self.guard.locked()
    }

    /// The fencing token (`None`: watchdog guards are not fenced).
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let lock = pottery::Redlock::new("doc-wd-token", [redis]);
    /// assert_eq!(lock.lock_with_watchdog()?.token(), None);
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn token(&self) -> Option<u64> {
        self.guard.token()
    }

    fn stop(&mut self) {
        self.watch.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Stops the watchdog and releases, reporting errors.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let lock = pottery::Redlock::new("doc-watchdog-release", [redis]);
    /// lock.lock_with_watchdog()?.release()?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn release(mut self) -> Result<()> {
        self.stop();
        self.guard.armed = false;
        rt::block_on(self.guard.lease.release())
    }
}

impl Drop for WatchdogGuard {
    fn drop(&mut self) {
        // Stop extending before the inner guard releases.
        self.stop();
    }
}

/// Runs `f` while holding a lease of a [`Redlock`] on `key`: pottery's `@synchronize` as a
/// function. Failing to get the lock is `Err(LockBusy)` (held elsewhere) or
/// `Err(QuorumNotAchieved)` (no majority of masters answered), and `f` does not run.
///
/// `configure` sets up the lock (for example its `auto_release_time`, or
/// `context_manager_blocking(false)` to try once); pass `|l| l` for pottery's defaults. Callers
/// of one key in this process queue in order, whatever lock instance they use.
///
/// ```
/// # let redis = pottery::testing::doctest_redis();
/// let total = pottery::synchronize("doc-sync", [redis], |l| l, || 40 + 2)?;
/// assert_eq!(total, 42);
/// # Ok::<(), pottery::Error>(())
/// ```
pub fn synchronize<T>(
    key: &str,
    masters: impl IntoIterator<Item = Redis>,
    configure: impl FnOnce(Redlock) -> Redlock,
    f: impl FnOnce() -> T,
) -> Result<T> {
    synchronized(&configure(Redlock::new(key, masters)), f)
}

/// `f` under a lease of `lock`, released when it returns (or panics): [`synchronize`] and
/// `#[synchronize]` without making the lock.
#[doc(hidden)]
pub fn synchronized<T>(lock: &Redlock, f: impl FnOnce() -> T) -> Result<T> {
    let started = Instant::now();
    let guard = lock.lock()?;
    let waited = started.elapsed();
    let out = f();
    tracing::info!(
        key = crate::observe::event_key(lock.core.masters.first(), lock.key()),
        waited_ms = waited.as_millis() as u64,
        held_ms = (started.elapsed() - waited).as_millis() as u64,
        "synchronize"
    );
    drop(guard);
    Ok(out)
}
