//! Redlock: a distributed lock over N independent Redis masters, wire-compatible with
//! pottery's `Redlock` (and so with any Python process locking the same key).

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use redis::Value;

use super::{Fanout, fan_out, names, quorum};
use crate::error::{Error, Result};
use crate::op::{Op, script};
use crate::redis::Redis;
use crate::rt;

script!(LOCKED, "redlock_locked.lua");
script!(EXTEND, "redlock_extend.lua");
script!(RELEASE, "redlock_release.lua");
script!(ACQUIRE_FENCED, "redlock_acquire_fenced.lua");
script!(FENCE_RAISE, "fence_raise.lua");

/// Key prefix, as pottery.
pub const KEY_PREFIX: &str = "redlock";
const STRING: &str = "string";
const CLOCK_DRIFT_FACTOR: f64 = 0.01;
const RETRY_DELAY_MS: u64 = 200;

fn int_reply(key: &str, v: Value) -> Result<i64> {
    crate::collections::int(key, v)
}

/// What one holder knows of its lease.
#[derive(Default)]
struct Holding {
    uuid: String,
    extensions: u32,
    token: Option<u64>,
}

pub(crate) struct Core {
    key: String,
    fence_key: String,
    masters: Vec<Redis>,
    ttl: Duration,
    num_extensions: Option<u32>,
    blocking: bool,
    timeout: Option<Duration>,
    raise_on_redis_errors: bool,
    master_timeout: Duration,
    holding: Mutex<Holding>,
}

impl Core {
    fn ttl_ms(&self) -> u64 {
        u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX)
    }

    /// pottery's drift: ttl × 1 % + 2 ms.
    fn drift(&self) -> Duration {
        self.ttl.mul_f64(CLOCK_DRIFT_FACTOR) + Duration::from_millis(2)
    }

    fn holding(&self) -> std::sync::MutexGuard<'_, Holding> {
        self.holding.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn uuid(&self) -> String {
        self.holding().uuid.clone()
    }

    fn script_op<'a>(
        &'a self,
        script: &'static crate::op::Script,
        args: Vec<Vec<u8>>,
    ) -> Op<'a, i64> {
        Op::eval(
            &self.key,
            STRING,
            script,
            vec![self.key.clone().into_bytes()],
            args,
            int_reply,
        )
    }

    /// `QuorumIsImpossible` when asked for and more than half the masters failed.
    fn check_masters_up<T>(&self, fanout: &Fanout<T>) -> Result<()> {
        if self.raise_on_redis_errors && fanout.errors.len() > self.masters.len() / 2 {
            return Err(Error::QuorumIsImpossible {
                key: self.key.clone(),
                masters: names(&self.masters),
                errors: fanout.errors.clone(),
            });
        }
        Ok(())
    }

    /// One attempt: SET NX PX on every master at once, done at quorum. With `fenced`, the
    /// fencing script runs instead and the token is kept.
    async fn attempt(&self, fenced: bool) -> Result<bool> {
        let uuid = uuid::Uuid::new_v4().to_string();
        {
            let mut h = self.holding();
            h.uuid = uuid.clone();
            h.extensions = 0;
            h.token = None;
        }
        let started = Instant::now();
        let n = self.masters.len();
        let ttl_ms = self.ttl_ms().to_string();
        let fanout = if fenced {
            fan_out(
                &self.masters,
                self.master_timeout,
                |_| {
                    Op::eval(
                        &self.key,
                        STRING,
                        &ACQUIRE_FENCED,
                        vec![
                            self.key.clone().into_bytes(),
                            self.fence_key.clone().into_bytes(),
                        ],
                        vec![uuid.clone().into_bytes(), ttl_ms.clone().into_bytes()],
                        int_reply,
                    )
                },
                |fence| *fence > 0,
                Some(quorum(n)),
            )
            .await
        } else {
            fan_out(
                &self.masters,
                self.master_timeout,
                |_| {
                    let mut cmd = redis::cmd("SET");
                    cmd.arg(&self.key)
                        .arg(&uuid)
                        .arg("PX")
                        .arg(&ttl_ms)
                        .arg("NX");
                    Op::cmd(&self.key, STRING, cmd, |_, v| {
                        Ok(if matches!(v, Value::Okay) { 1 } else { 0 })
                    })
                },
                |ok| *ok == 1,
                Some(quorum(n)),
            )
            .await
        };
        if fanout.yes.len() >= quorum(n) {
            let validity = self.ttl.saturating_sub(self.drift() + started.elapsed());
            if !validity.is_zero() {
                if fenced {
                    let token = fanout.yes.iter().copied().max().unwrap_or(0);
                    // Raise the quorum's fences to the token, so that any later acquisition
                    // (whose majority meets this one) gets a larger number.
                    let floor = token.to_string().into_bytes();
                    let raised = fan_out(
                        &self.masters,
                        self.master_timeout,
                        |_| {
                            Op::eval(
                                &self.fence_key,
                                STRING,
                                &FENCE_RAISE,
                                vec![self.fence_key.clone().into_bytes()],
                                vec![floor.clone()],
                                int_reply,
                            )
                        },
                        |v| *v >= token,
                        Some(quorum(n)),
                    )
                    .await;
                    if raised.yes.len() < quorum(n) {
                        let _ = self.release_as(&uuid).await;
                        self.check_masters_up(&raised)?;
                        return Ok(false);
                    }
                    self.holding().token = u64::try_from(token).ok();
                }
                return Ok(true);
            }
        }
        // Undo partial locks; a failure there changes nothing for the caller.
        let _ = self.release_as(&uuid).await;
        self.check_masters_up(&fanout)?;
        Ok(false)
    }

    async fn release_as(&self, uuid: &str) -> Fanout<i64> {
        fan_out(
            &self.masters,
            self.master_timeout,
            |_| self.script_op(&RELEASE, vec![uuid.as_bytes().to_vec()]),
            |deleted| *deleted == 1,
            Some(quorum(self.masters.len())),
        )
        .await
    }

    async fn acquire_within(&self, timeout: Option<Duration>, fenced: bool) -> Result<bool> {
        let started = Instant::now();
        loop {
            if self.attempt(fenced).await? {
                return Ok(true);
            }
            if timeout.is_some_and(|t| started.elapsed() >= t) {
                return Ok(false);
            }
            let mut delay = Duration::from_millis(rand::rng().random_range(0..=RETRY_DELAY_MS));
            if let Some(t) = timeout {
                delay = delay.min(t.saturating_sub(started.elapsed()));
            }
            tokio::time::sleep(delay).await;
        }
    }

    /// What `lock()` does: the context-manager settings.
    async fn lock_attempt(&self) -> Result<()> {
        let acquired = if self.blocking {
            self.acquire_within(self.timeout, false).await?
        } else {
            self.attempt(false).await?
        };
        if acquired {
            Ok(())
        } else {
            Err(Error::QuorumNotAchieved {
                key: self.key.clone(),
                masters: names(&self.masters),
            })
        }
    }

    async fn locked(&self) -> Result<Duration> {
        let uuid = self.uuid();
        if uuid.is_empty() {
            return Ok(Duration::ZERO);
        }
        let started = Instant::now();
        let fanout = fan_out(
            &self.masters,
            self.master_timeout,
            |_| self.script_op(&LOCKED, vec![uuid.clone().into_bytes()]),
            |pttl| *pttl > 0,
            Some(quorum(self.masters.len())),
        )
        .await;
        if fanout.yes.len() >= quorum(self.masters.len()) {
            let least = fanout.yes.iter().copied().min().unwrap_or(0);
            let least = Duration::from_millis(u64::try_from(least).unwrap_or(0));
            return Ok(least.saturating_sub(self.drift() + started.elapsed()));
        }
        self.check_masters_up(&fanout)?;
        Ok(Duration::ZERO)
    }

    async fn extend(&self) -> Result<()> {
        let uuid = {
            let h = self.holding();
            if self.num_extensions.is_some_and(|max| h.extensions >= max) {
                return Err(Error::TooManyExtensions {
                    key: self.key.clone(),
                    masters: names(&self.masters),
                });
            }
            h.uuid.clone()
        };
        let ttl_ms = self.ttl_ms().to_string().into_bytes();
        let fanout = fan_out(
            &self.masters,
            self.master_timeout,
            |_| self.script_op(&EXTEND, vec![uuid.clone().into_bytes(), ttl_ms.clone()]),
            |extended| *extended == 1,
            Some(quorum(self.masters.len())),
        )
        .await;
        if !uuid.is_empty() && fanout.yes.len() >= quorum(self.masters.len()) {
            self.holding().extensions += 1;
            return Ok(());
        }
        self.check_masters_up(&fanout)?;
        Err(Error::ExtendUnlockedLock {
            key: self.key.clone(),
            masters: names(&self.masters),
        })
    }

    async fn release(&self) -> Result<()> {
        let uuid = self.uuid();
        let fanout = self.release_as(&uuid).await;
        if !uuid.is_empty() && fanout.yes.len() >= quorum(self.masters.len()) {
            let mut h = self.holding();
            if h.uuid == uuid {
                *h = Holding::default();
            }
            return Ok(());
        }
        self.check_masters_up(&fanout)?;
        Err(Error::ReleaseUnlockedLock {
            key: self.key.clone(),
            masters: names(&self.masters),
        })
    }
}

/// Settings shared by the blocking and the async lock, set with chainable methods named as in
/// pottery.
macro_rules! builder_methods {
    () => {
        /// How long a lease lasts before it frees itself (default 10 s, as pottery).
        pub fn auto_release_time(self, ttl: Duration) -> Self {
            self.with(|c| c.ttl = ttl)
        }

        /// How many times a holder may [`extend`](Self::extend) one lease (default 3).
        pub fn num_extensions(self, n: u32) -> Self {
            self.with(|c| c.num_extensions = Some(n))
        }

        /// No limit on extensions (for long jobs under a watchdog).
        pub fn unlimited_extensions(self) -> Self {
            self.with(|c| c.num_extensions = None)
        }

        /// Whether `lock()` waits for the lock (default true) or tries once.
        pub fn context_manager_blocking(self, blocking: bool) -> Self {
            self.with(|c| c.blocking = blocking)
        }

        /// How long a blocking `lock()` waits (default: forever).
        pub fn context_manager_timeout(self, timeout: Option<Duration>) -> Self {
            self.with(|c| c.timeout = timeout)
        }

        /// Fail with [`Error::QuorumIsImpossible`] when more than half the masters fail,
        /// instead of answering "not acquired" (default false, as pottery).
        pub fn raise_on_redis_errors(self, raise: bool) -> Self {
            self.with(|c| c.raise_on_redis_errors = raise)
        }

        /// How long one master may take to answer before it counts as a "no" (default 500 ms,
        /// well under the lease).
        pub fn master_timeout(self, timeout: Duration) -> Self {
            self.with(|c| c.master_timeout = timeout)
        }

        fn with(self, f: impl FnOnce(&mut Core)) -> Self {
            let mut core = Arc::try_unwrap(self.core).unwrap_or_else(|shared| Core {
                key: shared.key.clone(),
                fence_key: shared.fence_key.clone(),
                masters: shared.masters.clone(),
                ttl: shared.ttl,
                num_extensions: shared.num_extensions,
                blocking: shared.blocking,
                timeout: shared.timeout,
                raise_on_redis_errors: shared.raise_on_redis_errors,
                master_timeout: shared.master_timeout,
                holding: Mutex::new(Holding::default()),
            });
            f(&mut core);
            Self {
                core: Arc::new(core),
            }
        }

        /// The Redis key: `redlock:<key>`.
        pub fn key(&self) -> &str {
            &self.core.key
        }
    };
}

fn new_core(key: &str, masters: impl IntoIterator<Item = Redis>) -> Core {
    let key = format!("{KEY_PREFIX}:{key}");
    Core {
        fence_key: format!("{{{key}}}:fence"),
        key,
        masters: masters.into_iter().collect(),
        ttl: Duration::from_secs(10),
        num_extensions: Some(3),
        blocking: true,
        timeout: None,
        raise_on_redis_errors: false,
        master_timeout: Duration::from_millis(500),
        holding: Mutex::new(Holding::default()),
    }
}

/// A distributed lock over one or many independent Redis masters: pottery's `Redlock`.
///
/// Same wire contract as pottery — key `redlock:<key>`, a fresh uuid4 per attempt,
/// `SET NX PX`, compare-then-act Lua for `locked`/`extend`/`release`, a majority quorum and
/// pottery's drift (1 % of the lease + 2 ms) — so Rust and Python processes exclude each other.
/// Requests go to every master at once and each call returns as soon as a majority answered.
///
/// ```
/// use std::time::Duration;
/// use pottery::Redlock;
///
/// # let masters = pottery::testing::doctest_redis();
/// let printer = Redlock::new("printer", [masters]).auto_release_time(Duration::from_secs(5));
/// {
///     let _guard = printer.lock()?;   // released when the guard drops
///     assert!(printer.locked()? > Duration::ZERO);
/// }
/// assert_eq!(printer.locked()?, Duration::ZERO);
///
/// assert!(printer.try_acquire()?);
/// printer.extend()?;
/// printer.release()?;
/// # Ok::<(), pottery::Error>(())
/// ```
#[derive(Clone)]
pub struct Redlock {
    core: Arc<Core>,
}

impl fmt::Debug for Redlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redlock")
            .field("key", &self.core.key)
            .field("masters", &names(&self.core.masters))
            .finish()
    }
}

impl Redlock {
    /// A lock on `redlock:<key>` over these masters (no I/O).
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// let lock = pottery::Redlock::new("printer", [redis]);
    /// assert_eq!(lock.key(), "redlock:printer");
    /// ```
    pub fn new(key: &str, masters: impl IntoIterator<Item = Redis>) -> Self {
        Redlock {
            core: Arc::new(new_core(key, masters)),
        }
    }

    builder_methods!();

    /// The async twin, sharing this lock's state (a lease taken by one is held by both).
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// let lock = pottery::Redlock::new("printer", [redis]);
    /// assert_eq!(lock.to_async().key(), lock.key());
    /// ```
    pub fn to_async(&self) -> aio::Redlock {
        aio::Redlock {
            core: Arc::clone(&self.core),
        }
    }

    /// Waits until the lock is acquired (retrying after 0–200 ms).
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let lock = pottery::Redlock::new("doc-acquire", [redis]);
    /// assert!(lock.acquire()?);
    /// # lock.release()?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn acquire(&self) -> Result<bool> {
        rt::block_on(self.core.acquire_within(None, false))
    }

    /// One attempt; `true` if it got the lock.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let lock = pottery::Redlock::new("doc-try", [redis]);
    /// assert!(lock.try_acquire()?);
    /// assert!(!lock.try_acquire()?);   // not re-entrant, as in pottery
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn try_acquire(&self) -> Result<bool> {
        rt::block_on(self.core.attempt(false))
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
        rt::block_on(self.core.acquire_within(Some(timeout), false))
    }

    /// Waits for the lock and returns a fencing token: a number larger than the token of
    /// every earlier acquisition of this key, by any client that also uses tokens.
    ///
    /// Each master counts successful acquisitions in `{redlock:<key>}:fence`; the token is the
    /// largest count in the quorum, written back to a majority before it is returned, so the
    /// majority of any later acquisition sees it. Guarantees hold while masters keep their
    /// data (a master restarted without persistence forgets its count) and while each holder
    /// finishes within its lease. Hand the token to the resource you protect and have it refuse
    /// smaller ones: that, not the lock alone, stops a paused holder whose lease expired.
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
        rt::block_on(async {
            self.core.acquire_within(None, true).await?;
            Ok(self.core.holding().token.unwrap_or(0))
        })
    }

    /// The remaining validity of this holder's lease (zero when it holds none), by pottery's
    /// formula: the smallest remaining TTL in the quorum, minus drift and the time asking took.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let lock = pottery::Redlock::new("doc-locked", [redis]);
    /// assert_eq!(lock.locked()?, std::time::Duration::ZERO);
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn locked(&self) -> Result<Duration> {
        rt::block_on(self.core.locked())
    }

    /// Resets the lease to the full `auto_release_time`; [`Error::TooManyExtensions`] past
    /// `num_extensions`, [`Error::ExtendUnlockedLock`] when not held.
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
        rt::block_on(self.core.extend())
    }

    /// Releases the lock; [`Error::ReleaseUnlockedLock`] when this holder has no lease (never
    /// acquired, released already, or expired).
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let lock = pottery::Redlock::new("doc-release", [redis]);
    /// assert!(matches!(lock.release(), Err(pottery::Error::ReleaseUnlockedLock { .. })));
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn release(&self) -> Result<()> {
        rt::block_on(self.core.release())
    }

    /// Takes the lock as pottery's `with redlock:` does (honouring
    /// `context_manager_blocking` / `context_manager_timeout`), or fails with
    /// [`Error::QuorumNotAchieved`]. The guard releases on drop.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let lock = pottery::Redlock::new("doc-lock", [redis]);
    /// let guard = lock.lock()?;
    /// guard.release()?;   // explicit, reporting errors
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn lock(&self) -> Result<RedlockGuard> {
        rt::block_on(self.core.lock_attempt())?;
        Ok(RedlockGuard {
            lock: Some(self.clone()),
        })
    }

    /// Like [`lock`](Self::lock), and keeps the lease alive from a background thread that
    /// extends it every third of `auto_release_time` (up to `num_extensions` times; see
    /// [`unlimited_extensions`](Self::unlimited_extensions)). Ask the guard whether the lease
    /// was lost.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let redis = pottery::testing::doctest_redis();
    /// let lock = pottery::Redlock::new("doc-watchdog", [redis])
    ///     .auto_release_time(Duration::from_millis(300))
    ///     .unlimited_extensions();
    /// let guard = lock.lock_with_watchdog()?;
    /// std::thread::sleep(Duration::from_millis(700));
    /// assert!(!guard.lost());
    /// assert!(lock.locked()? > Duration::ZERO);
    /// drop(guard);
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn lock_with_watchdog(&self) -> Result<WatchdogGuard> {
        let guard = self.lock()?;
        let watch = Arc::new(Watch::default());
        let (core, w) = (Arc::clone(&self.core), Arc::clone(&watch));
        let thread = std::thread::Builder::new()
            .name("pottery-redlock-watchdog".into())
            .spawn(move || rt::block_on(watchdog(core, w)))
            .map_err(|e| Error::Config {
                message: format!("cannot start the watchdog thread: {e}"),
            })?;
        Ok(WatchdogGuard {
            guard: Some(guard),
            watch,
            thread: Some(thread),
        })
    }
}

#[derive(Default)]
struct Watch {
    stop: AtomicBool,
    lost: AtomicBool,
    wake: tokio::sync::Notify,
}

/// Extends every third of the lease until told to stop; marks the lease lost when an extension
/// fails or when the last allowed extension runs out.
async fn watchdog(core: Arc<Core>, watch: Arc<Watch>) {
    let period = core.ttl / 3;
    let mut expires = Instant::now() + core.ttl;
    loop {
        let _ = tokio::time::timeout(period, watch.wake.notified()).await;
        if watch.stop.load(Ordering::SeqCst) {
            return;
        }
        match core.extend().await {
            Ok(()) => expires = Instant::now() + core.ttl,
            Err(Error::TooManyExtensions { .. }) => {
                // No more extensions: the lease ends when it ends.
                let left = expires.saturating_duration_since(Instant::now());
                let _ = tokio::time::timeout(left, watch.wake.notified()).await;
                if !watch.stop.load(Ordering::SeqCst) {
                    watch.lost.store(true, Ordering::SeqCst);
                }
                return;
            }
            Err(_) => {
                watch.lost.store(true, Ordering::SeqCst);
                return;
            }
        }
    }
}

/// Holds a [`Redlock`] until dropped (best effort) or [`release`](Self::release)d (reporting
/// errors).
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
    lock: Option<Redlock>,
}

impl fmt::Debug for RedlockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedlockGuard")
            .field("lock", &self.lock)
            .finish()
    }
}

impl RedlockGuard {
    /// Releases now, reporting [`Error::ReleaseUnlockedLock`] if the lease was lost.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let lock = pottery::Redlock::new("doc-guard-release", [redis]);
    /// lock.lock()?.release()?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn release(mut self) -> Result<()> {
        match self.lock.take() {
            Some(lock) => lock.release(),
            None => Ok(()),
        }
    }
}

impl Drop for RedlockGuard {
    fn drop(&mut self) {
        if let Some(lock) = self.lock.take() {
            let _ = lock.release();
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
    guard: Option<RedlockGuard>,
    watch: Arc<Watch>,
    thread: Option<std::thread::JoinHandle<()>>,
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
    /// Whether the lease was lost: an extension failed (the masters forgot the lock, another
    /// holder took it after expiry…) or the allowed extensions ran out and it expired.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let lock = pottery::Redlock::new("doc-lost", [redis]);
    /// let guard = lock.lock_with_watchdog()?;
    /// assert!(!guard.lost());
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn lost(&self) -> bool {
        self.watch.lost.load(Ordering::SeqCst)
    }

    fn stop(&mut self) {
        self.watch.stop.store(true, Ordering::SeqCst);
        self.watch.wake.notify_one();
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
        match self.guard.take() {
            Some(g) => g.release(),
            None => Ok(()),
        }
    }
}

impl Drop for WatchdogGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs `f` while holding a fresh [`Redlock`] on `key`: pottery's `@synchronize` as a
/// function. Failing to get the lock is `Err(QuorumNotAchieved)` and `f` does not run.
///
/// `configure` sets up the lock (for example its `auto_release_time`, or
/// `context_manager_blocking(false)` to try once); pass `|l| l` for pottery's defaults.
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
    let lock = configure(Redlock::new(key, masters));
    let started = Instant::now();
    let guard = lock.lock()?;
    let waited = started.elapsed();
    let out = f();
    tracing::info!(
        key = lock.key(),
        waited_ms = waited.as_millis() as u64,
        held_ms = (started.elapsed() - waited).as_millis() as u64,
        "synchronize"
    );
    drop(guard);
    Ok(out)
}

/// The async twin: [`aio::Redlock`](crate::aio::Redlock).
pub mod aio {
    use super::*;

    /// Async [`Redlock`](crate::Redlock): the same API with `async fn`s. Its guard releases on
    /// drop through a spawned task, and has an explicit async `release()`.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let lock = pottery::aio::Redlock::new("doc-async", [redis]);
    /// let guard = lock.lock().await?;
    /// assert!(lock.locked().await? > std::time::Duration::ZERO);
    /// guard.release().await?;
    /// assert!(lock.try_acquire().await?);
    /// lock.release().await?;
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    #[derive(Clone)]
    pub struct Redlock {
        pub(super) core: Arc<Core>,
    }

    impl fmt::Debug for Redlock {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("aio::Redlock")
                .field("key", &self.core.key)
                .field("masters", &names(&self.core.masters))
                .finish()
        }
    }

    impl Redlock {
        /// A lock on `redlock:<key>` over these masters (no I/O).
        pub fn new(key: &str, masters: impl IntoIterator<Item = Redis>) -> Self {
            Redlock {
                core: Arc::new(new_core(key, masters)),
            }
        }

        builder_methods!();

        /// The blocking twin, sharing this lock's state.
        pub fn to_blocking(&self) -> crate::Redlock {
            crate::Redlock {
                core: Arc::clone(&self.core),
            }
        }

        /// See [`crate::Redlock::acquire`].
        pub async fn acquire(&self) -> Result<bool> {
            self.core.acquire_within(None, false).await
        }

        /// See [`crate::Redlock::try_acquire`].
        pub async fn try_acquire(&self) -> Result<bool> {
            self.core.attempt(false).await
        }

        /// See [`crate::Redlock::acquire_timeout`].
        pub async fn acquire_timeout(&self, timeout: Duration) -> Result<bool> {
            self.core.acquire_within(Some(timeout), false).await
        }

        /// See [`crate::Redlock::acquire_with_token`].
        pub async fn acquire_with_token(&self) -> Result<u64> {
            self.core.acquire_within(None, true).await?;
            Ok(self.core.holding().token.unwrap_or(0))
        }

        /// See [`crate::Redlock::locked`].
        pub async fn locked(&self) -> Result<Duration> {
            self.core.locked().await
        }

        /// See [`crate::Redlock::extend`].
        pub async fn extend(&self) -> Result<()> {
            self.core.extend().await
        }

        /// See [`crate::Redlock::release`].
        pub async fn release(&self) -> Result<()> {
            self.core.release().await
        }

        /// See [`crate::Redlock::lock`].
        pub async fn lock(&self) -> Result<RedlockGuard> {
            self.core.lock_attempt().await?;
            Ok(RedlockGuard {
                lock: Some(self.clone()),
            })
        }

        /// See [`crate::Redlock::lock_with_watchdog`]; the extender is a Tokio task.
        pub async fn lock_with_watchdog(&self) -> Result<WatchdogGuard> {
            let guard = self.lock().await?;
            let watch = Arc::new(Watch::default());
            let task = tokio::spawn(watchdog(Arc::clone(&self.core), Arc::clone(&watch)));
            Ok(WatchdogGuard {
                guard: Some(guard),
                watch,
                task,
            })
        }
    }

    /// Async [`RedlockGuard`](crate::RedlockGuard): dropping it releases through a spawned task.
    #[must_use = "the lock is released when the guard is dropped"]
    pub struct RedlockGuard {
        lock: Option<Redlock>,
    }

    impl fmt::Debug for RedlockGuard {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("aio::RedlockGuard")
                .field("lock", &self.lock)
                .finish()
        }
    }

    impl RedlockGuard {
        /// Releases now, reporting errors.
        pub async fn release(mut self) -> Result<()> {
            match self.lock.take() {
                Some(lock) => lock.release().await,
                None => Ok(()),
            }
        }
    }

    impl Drop for RedlockGuard {
        fn drop(&mut self) {
            if let Some(lock) = self.lock.take() {
                rt::spawn(async move {
                    let _ = lock.release().await;
                });
            }
        }
    }

    /// Async [`WatchdogGuard`](crate::WatchdogGuard).
    #[must_use = "the lock is released when the guard is dropped"]
    pub struct WatchdogGuard {
        guard: Option<RedlockGuard>,
        watch: Arc<Watch>,
        task: tokio::task::JoinHandle<()>,
    }

    impl fmt::Debug for WatchdogGuard {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("aio::WatchdogGuard")
                .field("lost", &self.lost())
                .finish()
        }
    }

    impl WatchdogGuard {
        /// See [`crate::WatchdogGuard::lost`].
        pub fn lost(&self) -> bool {
            self.watch.lost.load(Ordering::SeqCst)
        }

        /// Stops the watchdog and releases, reporting errors.
        pub async fn release(mut self) -> Result<()> {
            self.watch.stop.store(true, Ordering::SeqCst);
            self.watch.wake.notify_one();
            self.task.abort();
            match self.guard.take() {
                Some(g) => g.release().await,
                None => Ok(()),
            }
        }
    }

    impl Drop for WatchdogGuard {
        fn drop(&mut self) {
            self.watch.stop.store(true, Ordering::SeqCst);
            self.watch.wake.notify_one();
            self.task.abort();
        }
    }

    /// Async [`synchronize`](crate::synchronize()): runs the future `f()` under a fresh lock.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let n = pottery::aio::synchronize("doc-async-sync", [redis], |l| l, || async { 7 }).await?;
    /// assert_eq!(n, 7);
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    pub async fn synchronize<T, Fut>(
        key: &str,
        masters: impl IntoIterator<Item = Redis>,
        configure: impl FnOnce(Redlock) -> Redlock,
        f: impl FnOnce() -> Fut,
    ) -> Result<T>
    where
        Fut: std::future::Future<Output = T>,
    {
        let lock = configure(Redlock::new(key, masters));
        let guard = lock.lock().await?;
        let out = f().await;
        guard.release().await.or_else(|e| match e {
            // The body ran; a lease that expired meanwhile is worth a warning, not a failure.
            Error::ReleaseUnlockedLock { .. } => {
                tracing::warn!(
                    key = lock.key(),
                    "lease expired before synchronize finished"
                );
                Ok(())
            }
            other => Err(other),
        })?;
        Ok(out)
    }
}
