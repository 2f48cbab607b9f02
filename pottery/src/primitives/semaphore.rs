//! Semaphore: `permits` leases on one key, shared by every thread, task and process.
//!
//! # Layout
//! Two keys with one hash tag (one cluster slot): `semaphore:{<name>}`, a sorted set of the
//! live leases (member: the holder's random uuid, score: when its lease ends, in milliseconds
//! of *server* time), and `semaphore:{<name>}:fence`, the counter that numbers grants (the
//! fencing [`token`](SemaphorePermit::token)). A grant is one script: drop the ended leases,
//! and add one if fewer than `permits` remain. The set expires with its last lease, so an
//! abandoned semaphore leaves only its counter. A release removes the holder's lease and
//! publishes on the channel `semaphore:{<name>}`, which wakes waiters at once.
//!
//! # Guarantees
//! At most `permits` leases are live at any instant of server time. A holder that dies (or
//! stalls) keeps its permit until its lease ends, then loses it: long work renews the lease
//! with [`extend`](SemaphorePermit::extend) or a watchdog
//! ([`acquire_with_watchdog`](Semaphore::acquire_with_watchdog)). Every process should use the
//! same `permits` for one name (the count is checked against the caller's value).
//!
//! # Waiting
//! Waiters of one process on one semaphore line up in FIFO order; the first contends with
//! other processes and is woken by a release's message (or, without pub/sub — a cluster —,
//! polls every 50–200 ms), and at the latest when the earliest lease ends. A cancelled
//! acquire (a dropped future) gives back whatever it was granted, in the background.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::{Duration, Instant};

use redis::Value;

use crate::client::Redis;
use crate::error::{Error, Result};
use crate::exec::plan::{Op, script};
use crate::exec::reply::{int, unexpected};
use crate::exec::rt;
use crate::primitives::redlock::waiting::Wakeups;
use crate::primitives::redlock::watchdog::Watch;
use crate::primitives::{as_redis_error, is_transient, try_master};
use crate::sync::lock;

pub use crate::primitives::redlock::LostSignal;

script!(ACQUIRE, "semaphore_acquire.lua", Once);
script!(RELEASE, "semaphore_release.lua", Once);
script!(EXTEND, "semaphore_extend.lua", Idempotent);
script!(HELD, "semaphore_held.lua", Read);

/// Key prefix: a semaphore named `pool` lives at `semaphore:{pool}`.
pub const KEY_PREFIX: &str = "semaphore";
/// A permit's lease unless told otherwise.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);
/// How long `acquire` waits at most unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const ZSET: &str = "zset";
/// The longest a single try of a release or an extension waits for its reply.
const TRY_TIMEOUT: Duration = Duration::from_secs(1);

/// The description shared by a semaphore's clones and permits.
#[derive(Clone)]
pub(crate) struct Core {
    pub(crate) redis: Redis,
    /// The holders' key, `semaphore:{<name>}` (also the release channel).
    pub(crate) key: String,
    fence: String,
    permits: u64,
    lease: Duration,
    timeout: Duration,
}

/// What an attempt brought back.
enum Attempt {
    /// A permit: its fencing token.
    Granted(u64),
    /// Full; the earliest lease ends in this long.
    Full(Duration),
}

fn attempt_reply(key: &str, v: Value) -> Result<Attempt> {
    let Value::Array(items) = v else {
        return Err(unexpected(key, "an array of 3 integers", &v));
    };
    let [granted, n, _]: [Value; 3] = items
        .try_into()
        .map_err(|items: Vec<Value>| unexpected(key, "3 integers", &Value::Array(items)))?;
    let (granted, n) = (int(key, granted)?, int(key, n)?);
    Ok(if granted == 1 {
        Attempt::Granted(crate::exec::reply::count(key, n)?)
    } else {
        Attempt::Full(Duration::from_millis(crate::exec::reply::time_left(n)))
    })
}

/// The process-wide FIFO lines, one per semaphore (handle and key).
static LINES: LazyLock<Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>> =
    LazyLock::new(Default::default);

fn line_for(redis: &Redis, key: &str) -> Arc<tokio::sync::Mutex<()>> {
    let id = format!("{key}\n{redis:?}");
    let mut lines = lock(&LINES);
    if let Some(line) = lines.get(&id).and_then(Weak::upgrade) {
        return line;
    }
    if lines.len() >= 64 && lines.len().is_power_of_two() {
        lines.retain(|_, w| w.strong_count() > 0);
    }
    let line = Arc::new(tokio::sync::Mutex::new(()));
    lines.insert(id, Arc::downgrade(&line));
    line
}

/// Runs `future` in the background, where it can outlive the caller.
fn background(future: impl std::future::Future<Output = ()> + Send + 'static) {
    if rt::in_blocking_shell() {
        drop(rt::spawn_global(future));
    } else {
        rt::spawn(future);
    }
}

impl Core {
    fn new(redis: &Redis, name: &str, permits: u64) -> Core {
        Core {
            redis: redis.clone(),
            key: format!("{KEY_PREFIX}:{{{name}}}"),
            fence: format!("{KEY_PREFIX}:{{{name}}}:fence"),
            permits,
            lease: DEFAULT_LEASE,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    fn lease_ms(&self) -> u64 {
        u64::try_from(self.lease.as_millis()).unwrap_or(u64::MAX)
    }

    fn check(&self) -> Result<()> {
        let problem = if self.permits == 0 {
            "permits is 0"
        } else if self.lease_ms() == 0 {
            "the lease is shorter than 1 ms"
        } else {
            return Ok(());
        };
        Err(Error::Config {
            message: format!("Semaphore `{}`: {problem}", self.key),
        })
    }

    fn busy(&self, waited: Duration) -> Error {
        Error::LockBusy {
            key: self.key.clone(),
            masters: vec![format!("{:?}", self.redis)],
            waited,
        }
    }

    async fn run<T: Send>(&self, op: Op<'_, T>) -> Result<T> {
        if rt::in_blocking_shell() {
            self.redis.run(op)
        } else {
            self.redis.run_async(op).await
        }
    }

    fn held_op(&self) -> Op<'_, u64> {
        Op::eval(
            &self.key,
            ZSET,
            &HELD,
            vec![self.key.clone().into_bytes()],
            vec![],
            |key, v| crate::exec::reply::count(key, int(key, v)?),
        )
    }

    /// Permits not held now (by this caller's count of `permits`).
    async fn available(&self) -> Result<u64> {
        self.check()?;
        let held = self.run(self.held_op()).await?;
        // More held than this caller's `permits` (another process configured more): none
        // available, which is exact for this caller.
        Ok(self.permits.saturating_sub(held))
    }

    /// One grant attempt. Whatever it may have been granted is given back in the background
    /// unless it returns a permit: on an error, and when its future is dropped.
    async fn attempt(self: &Arc<Self>) -> Result<std::result::Result<Held, Duration>> {
        let uuid = crate::shell::keys::uuid4();
        let started = Instant::now();
        let mut undo = Undo {
            core: Some(Arc::clone(self)),
            uuid: uuid.clone(),
        };
        let op = Op::eval(
            &self.key,
            ZSET,
            &ACQUIRE,
            vec![
                self.key.clone().into_bytes(),
                self.fence.clone().into_bytes(),
            ],
            vec![
                uuid.clone().into_bytes(),
                self.permits.to_string().into_bytes(),
                self.lease_ms().to_string().into_bytes(),
            ],
            attempt_reply,
        );
        let attempt = self.run(op).await?;
        undo.core = None;
        Ok(match attempt {
            Attempt::Granted(token) => Ok(Held {
                core: Arc::clone(self),
                uuid,
                token,
                until: Mutex::new(started + self.lease),
                released: AtomicBool::new(false),
            }),
            Attempt::Full(wait) => Err(wait),
        })
    }

    /// A permit now, or `None` when all are held.
    pub(crate) async fn try_acquire(self: &Arc<Self>) -> Result<Option<Held>> {
        self.check()?;
        Ok(self.attempt().await?.ok())
    }

    /// A permit, waiting in the process's FIFO line and for releases, until the timeout.
    pub(crate) async fn acquire(self: &Arc<Self>) -> Result<Held> {
        self.check()?;
        let started = Instant::now();
        let deadline = started + self.timeout;
        let line = line_for(&self.redis, &self.key);
        let Ok(_turn) = tokio::time::timeout_at(deadline.into(), line.lock()).await else {
            return Err(self.busy(started.elapsed()));
        };
        let mut wakeups: Option<Wakeups> = None;
        loop {
            let marks = wakeups.as_ref().map(Wakeups::marks);
            let wait = match self.attempt().await? {
                Ok(held) => return Ok(held),
                Err(wait) => wait,
            };
            let now = Instant::now();
            if now >= deadline {
                return Err(self.busy(started.elapsed()));
            }
            match (&wakeups, marks) {
                (Some(w), Some(marks)) => {
                    // Woken by a release; at the latest when the earliest lease ends (or
                    // after a poll's pause, for releases we cannot hear).
                    let poll = if w.listening.is_empty() {
                        Duration::from_millis(crate::exec::jitter::between(50, 199))
                    } else {
                        Duration::from_secs(2)
                    };
                    let pause = wait.min(poll).min(deadline - now) + Duration::from_millis(1);
                    w.wait(&marks, pause).await;
                }
                _ => {
                    // First refusal: start listening, then look again at once (a release
                    // in between is seen by that attempt).
                    wakeups = Some(
                        Wakeups::subscribe(
                            &self.key,
                            std::slice::from_ref(&self.redis),
                            Duration::from_secs(1).min(deadline - now),
                        )
                        .await,
                    );
                }
            }
        }
    }

    /// A compare-by-uuid write (release or extension), tried again through lost
    /// connections and stalls until `deadline`: `Ok(true)` applied, `Ok(false)` not held;
    /// [`Error::LockOutcomeUnknown`] when no try got an answer.
    async fn write_for(
        &self,
        script: &'static crate::exec::plan::Script,
        args: Vec<Vec<u8>>,
        deadline: Instant,
        gone_is_done: bool,
        action: &'static str,
    ) -> Result<bool> {
        let mut retry = crate::exec::retry::Retry::until(deadline);
        let mut sent = false;
        loop {
            let op = Op::eval(
                &self.key,
                ZSET,
                script,
                vec![self.key.clone().into_bytes()],
                args.clone(),
                int,
            );
            let per_try = deadline
                .saturating_duration_since(Instant::now())
                .clamp(Duration::from_millis(10), TRY_TIMEOUT);
            match try_master(&self.redis, 1, op, per_try).await {
                Ok(1) => return Ok(true),
                Ok(0) if sent && gone_is_done => return Ok(true),
                Ok(0) => return Ok(false),
                Ok(other) => {
                    return Err(Error::codec(
                        &self.key,
                        crate::codec::CodecError::new(format!(
                            "unexpected reply {other} to a semaphore script"
                        )),
                    ));
                }
                Err(e) if is_transient(&e) => {
                    sent |= !matches!(&e, Error::Redis { source, .. } if source.is_connection_refusal());
                    match retry.pause() {
                        Some(wait) => tokio::time::sleep(wait).await,
                        None => {
                            return Err(Error::LockOutcomeUnknown {
                                key: self.key.clone(),
                                masters: vec![format!("{:?}", self.redis)],
                                action,
                                errors: vec![as_redis_error(&e)],
                            });
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Until when a write about a lease that ends by `ends` is worth retrying.
    fn write_deadline(&self, ends: Instant) -> Instant {
        ends.min(Instant::now() + self.redis.retry_timeout())
            .max(Instant::now() + Duration::from_millis(10))
    }
}

/// Gives back an attempt's possible grant unless disarmed (`core` taken).
struct Undo {
    core: Option<Arc<Core>>,
    uuid: String,
}

impl Drop for Undo {
    fn drop(&mut self) {
        let Some(core) = self.core.take() else {
            return;
        };
        let uuid = std::mem::take(&mut self.uuid);
        background(async move {
            let deadline = core.write_deadline(Instant::now() + core.lease);
            let _ = core
                .write_for(&RELEASE, vec![uuid.into_bytes()], deadline, true, "release")
                .await;
        });
    }
}

/// One holder's lease: its uuid, token and local estimate of its end.
pub(crate) struct Held {
    core: Arc<Core>,
    uuid: String,
    token: u64,
    until: Mutex<Instant>,
    /// Set once the permit is given back (or dropped): its loss is no longer reported.
    released: AtomicBool,
}

impl Held {
    fn ends(&self) -> Instant {
        *lock(&self.until)
    }

    async fn extend(&self) -> Result<()> {
        let core = &self.core;
        let started = Instant::now();
        let args = vec![
            self.uuid.clone().into_bytes(),
            core.lease_ms().to_string().into_bytes(),
        ];
        let deadline = core.write_deadline(self.ends());
        if core
            .write_for(&EXTEND, args, deadline, false, "extension")
            .await?
        {
            *lock(&self.until) = started + core.lease;
            Ok(())
        } else {
            Err(Error::ExtendUnlockedLock {
                key: core.key.clone(),
                masters: vec![format!("{:?}", core.redis)],
            })
        }
    }

    async fn release(&self) -> Result<()> {
        let core = &self.core;
        let deadline = core.write_deadline(self.ends());
        let args = vec![self.uuid.clone().into_bytes()];
        if core
            .write_for(&RELEASE, args, deadline, true, "release")
            .await?
        {
            Ok(())
        } else {
            Err(Error::ReleaseUnlockedLock {
                key: core.key.clone(),
                masters: vec![format!("{:?}", core.redis)],
            })
        }
    }
}

/// Extends the lease every third of its length until told to stop; marks it lost when an
/// extension fails or none succeeded before the lease ended.
async fn watchdog(held: Arc<Held>, watch: Arc<Watch>) {
    let period = held.core.lease / 3;
    let mut next = Instant::now() + period;
    loop {
        let _ = tokio::time::timeout_at(next.into(), watch.wake.notified()).await;
        if watch.stop.load(Ordering::SeqCst) {
            return;
        }
        let left = held.ends().saturating_duration_since(Instant::now());
        let extended =
            tokio::time::timeout(left.max(Duration::from_millis(1)), held.extend()).await;
        if !matches!(extended, Ok(Ok(()))) {
            if !watch.stop.load(Ordering::SeqCst) {
                tracing::warn!(
                    key = crate::observe::event_key(Some(&held.core.redis), &held.core.key),
                    "a semaphore watchdog lost its permit"
                );
                watch.mark_lost();
            }
            return;
        }
        next = (next + period).max(Instant::now());
    }
}

/// What the blocking and the async permit share: the lease and, in the watchdog form, the
/// watchdog's flags.
struct Permit {
    held: Option<Arc<Held>>,
    watch: Option<Arc<Watch>>,
}

impl Permit {
    fn new(held: Held, watchdog_on: bool) -> Permit {
        let held = Arc::new(held);
        let watch = watchdog_on.then(|| {
            let watch = Arc::new(Watch::default());
            drop(rt::spawn_global(watchdog(
                Arc::clone(&held),
                Arc::clone(&watch),
            )));
            watch
        });
        Permit {
            held: Some(held),
            watch,
        }
    }

    fn held(&self) -> &Held {
        // Taken only by `release` and `drop`, which consume the permit.
        self.held
            .as_deref()
            .expect("a permit holds its lease until released")
    }

    fn lost(&self) -> bool {
        match &self.watch {
            Some(w) => w.lost(),
            None => self.held().ends() <= Instant::now(),
        }
    }

    fn lost_signal(&self) -> LostSignal {
        match &self.watch {
            Some(w) => w.signal(),
            None => {
                // No watchdog: the lease is lost when it ends (by the local estimate).
                let watch = Arc::new(Watch::default());
                let w = Arc::clone(&watch);
                let held = Arc::clone(self.held.as_ref().expect("held"));
                drop(rt::spawn_global(async move {
                    loop {
                        tokio::time::sleep_until(held.ends().into()).await;
                        if held.released.load(Ordering::SeqCst) {
                            return;
                        }
                        if held.ends() <= Instant::now() {
                            w.mark_lost();
                            return;
                        }
                    }
                }));
                watch.signal()
            }
        }
    }

    /// Stops the watchdog and takes the lease out, for a release.
    fn take(&mut self) -> Option<Arc<Held>> {
        if let Some(w) = self.watch.take() {
            w.stop();
        }
        let held = self.held.take();
        if let Some(h) = &held {
            h.released.store(true, Ordering::SeqCst);
        }
        held
    }
}

macro_rules! semaphore_builders {
    () => {
        /// A semaphore of `permits` permits named `name` (keys `semaphore:{<name>}` and
        /// `semaphore:{<name>}:fence`), with 10 s leases and a 10 s acquire timeout. Nothing is
        /// sent yet; 0 permits makes every call an [`Error::Config`](crate::Error::Config).
        pub fn new(redis: &Redis, name: &str, permits: u64) -> Self {
            Self {
                core: Arc::new(Core::new(redis, name, permits)),
            }
        }

        /// How long a permit lasts unless extended (default 10 s): a holder that dies gives
        /// its permit back when its lease ends.
        #[must_use]
        pub fn lease(self, lease: Duration) -> Self {
            let mut core = Arc::unwrap_or_clone(self.core);
            core.lease = lease;
            Self {
                core: Arc::new(core),
            }
        }

        /// How long `acquire` waits at most (default 10 s); then it fails with
        /// [`Error::LockBusy`](crate::Error::LockBusy).
        #[must_use]
        pub fn timeout(self, timeout: Duration) -> Self {
            let mut core = Arc::unwrap_or_clone(self.core);
            core.timeout = timeout;
            Self {
                core: Arc::new(core),
            }
        }

        /// The holders' Redis key (`semaphore:{<name>}`).
        pub fn key(&self) -> &str {
            &self.core.key
        }

        /// How many permits there are.
        pub fn permits(&self) -> u64 {
            self.core.permits
        }
    };
}

macro_rules! permit_methods {
    ($($aw:tt)*) => {
        /// The fencing token: grants of one semaphore are numbered 1, 2, 3… in the order
        /// the server made them, whoever made them. Pass it to the resource you protect, which
        /// can refuse a write carrying a token older than one it has seen.
        pub fn token(&self) -> u64 {
            self.inner.held().token
        }

        /// Whether the lease is lost: in the watchdog form, an extension failed; otherwise
        /// the lease ended (by the local estimate, which ends no later than the server's).
        pub fn lost(&self) -> bool {
            self.inner.lost()
        }

        /// Completes when the lease is lost (see [`lost`](Self::lost)). `Send` and
        /// `'static`: select on it beside the work the permit protects.
        pub fn lost_signal(&self) -> LostSignal {
            self.inner.lost_signal()
        }
    };
}

fn log_release_error(redis: &Redis, key: &str, e: &Error) {
    tracing::warn!(
        key = crate::observe::event_key(Some(redis), key),
        error = %crate::observe::event_error(Some(redis), e),
        "a dropped semaphore permit was not given back"
    );
}

/// A distributed counting semaphore: at most `permits` holders at once, across threads,
/// tasks and processes, each holding a lease that ends on its own if the holder dies. See the
/// [module docs](crate::semaphore) for the key layout and guarantees.
///
/// ```
/// # let redis = pottery::testing::doctest_redis();
/// use std::time::Duration;
/// use pottery::Semaphore;
///
/// let pool = Semaphore::new(&redis, "doc-pool", 2).lease(Duration::from_secs(5));
/// let a = pool.acquire()?;
/// let b = pool.try_acquire()?.expect("a second permit");
/// assert!(pool.try_acquire()?.is_none()); // both taken
/// assert_eq!(pool.available()?, 0);
/// assert!(b.token() > a.token());
/// drop(a); // given back
/// assert_eq!(pool.available()?, 1);
/// # b.release()?;
/// # Ok::<(), pottery::Error>(())
/// ```
#[derive(Clone)]
pub struct Semaphore {
    core: Arc<Core>,
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("key", &self.core.key)
            .field("permits", &self.core.permits)
            .field("redis", &self.core.redis.shown())
            .finish()
    }
}

impl Semaphore {
    semaphore_builders!();

    /// A permit: waits (first in, first served among this process's callers; woken by
    /// releases) until one is free or the timeout passes ([`Error::LockBusy`]).
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// let sem = pottery::Semaphore::new(&redis, "doc-sem-acquire", 1);
    /// let permit = sem.acquire()?;
    /// // ... use the resource ...
    /// permit.release()?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn acquire(&self) -> Result<SemaphorePermit> {
        let held = rt::block_on(self.core.acquire())?;
        Ok(SemaphorePermit {
            inner: Permit::new(held, false),
        })
    }

    /// [`acquire`](Self::acquire), with a watchdog that extends the lease every third of it
    /// until the permit is released or dropped; [`SemaphorePermit::lost`] tells if an
    /// extension failed.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// use std::time::Duration;
    /// let sem = pottery::Semaphore::new(&redis, "doc-sem-watchdog", 1).lease(Duration::from_millis(300));
    /// let permit = sem.acquire_with_watchdog()?;
    /// std::thread::sleep(Duration::from_millis(700)); // longer than the lease
    /// assert!(!permit.lost());
    /// assert_eq!(sem.available()?, 0);
    /// permit.release()?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn acquire_with_watchdog(&self) -> Result<SemaphorePermit> {
        let held = rt::block_on(self.core.acquire())?;
        Ok(SemaphorePermit {
            inner: Permit::new(held, true),
        })
    }

    /// A permit if one is free now (one round trip), else `None`.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// let sem = pottery::Semaphore::new(&redis, "doc-sem-try", 1);
    /// let permit = sem.try_acquire()?.expect("free");
    /// assert!(sem.try_acquire()?.is_none());
    /// # permit.release()?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn try_acquire(&self) -> Result<Option<SemaphorePermit>> {
        let held = rt::block_on(self.core.try_acquire())?;
        Ok(held.map(|held| SemaphorePermit {
            inner: Permit::new(held, false),
        }))
    }

    /// How many permits are free now (one round trip).
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// let sem = pottery::Semaphore::new(&redis, "doc-sem-available", 3);
    /// assert_eq!(sem.available()?, 3);
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn available(&self) -> Result<u64> {
        rt::block_on(self.core.available())
    }
}

/// A held permit of a [`Semaphore`]: given back by [`release`](Self::release) or when
/// dropped (a failure to give it back on drop is logged; the lease then ends by itself).
///
/// ```
/// # let redis = pottery::testing::doctest_redis();
/// let sem = pottery::Semaphore::new(&redis, "doc-permit", 1);
/// {
///     let permit = sem.acquire()?;
///     assert!(!permit.lost());
///     permit.extend()?; // a full lease from now
/// } // dropped: given back
/// assert_eq!(sem.available()?, 1);
/// # Ok::<(), pottery::Error>(())
/// ```
pub struct SemaphorePermit {
    inner: Permit,
}

impl SemaphorePermit {
    permit_methods!();

    /// Renews the lease: a full lease from now. [`Error::ExtendUnlockedLock`] when the
    /// lease had ended (another holder may have the permit);
    /// [`Error::LockOutcomeUnknown`] when the server did not answer in time.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// let sem = pottery::Semaphore::new(&redis, "doc-permit-extend", 1);
    /// let permit = sem.acquire()?;
    /// permit.extend()?;
    /// # permit.release()?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn extend(&self) -> Result<()> {
        rt::block_on(self.inner.held().extend())
    }

    /// Gives the permit back, retried through lost connections until the lease ends:
    /// [`Error::ReleaseUnlockedLock`] when the lease had already ended,
    /// [`Error::LockOutcomeUnknown`] when no answer came (never "not held" for that).
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// let sem = pottery::Semaphore::new(&redis, "doc-permit-release", 1);
    /// sem.acquire()?.release()?;
    /// assert_eq!(sem.available()?, 1);
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn release(mut self) -> Result<()> {
        match self.inner.take() {
            Some(held) => rt::block_on(held.release()),
            None => Ok(()),
        }
    }
}

impl Drop for SemaphorePermit {
    fn drop(&mut self) {
        if let Some(held) = self.inner.take()
            && let Err(e) = rt::block_on(held.release())
        {
            log_release_error(&held.core.redis, &held.core.key, &e);
        }
    }
}

impl fmt::Debug for SemaphorePermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit")
            .field("key", &self.inner.held.as_ref().map(|h| &h.core.key))
            .field("token", &self.inner.held.as_ref().map(|h| h.token))
            .finish()
    }
}

/// The async twins: [`aio::Semaphore`](crate::aio::Semaphore) and its permit.
pub mod aio {
    use super::*;

    /// Async [`Semaphore`](crate::Semaphore): the same operations, awaited. Its futures are
    /// `Send`; dropping an `acquire` at any point gives back whatever it was granted (in the
    /// background).
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let sem = pottery::aio::Semaphore::new(&redis, "doc-aio-sem", 2);
    /// let a = sem.acquire().await?;
    /// let _b = sem.acquire().await?;
    /// assert!(sem.try_acquire().await?.is_none());
    /// a.release().await?;
    /// assert_eq!(sem.available().await?, 1);
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    #[derive(Clone)]
    pub struct Semaphore {
        core: Arc<Core>,
    }

    impl fmt::Debug for Semaphore {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("aio::Semaphore")
                .field("key", &self.core.key)
                .field("permits", &self.core.permits)
                .field("redis", &self.core.redis.shown())
                .finish()
        }
    }

    impl Semaphore {
        semaphore_builders!();

        /// See [`crate::Semaphore::acquire`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// let sem = pottery::aio::Semaphore::new(&redis, "doc-aio-sem-acquire", 1);
        /// let permit = sem.acquire().await?;
        /// permit.release().await?;
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub async fn acquire(&self) -> Result<SemaphorePermit> {
            let held = self.core.acquire().await?;
            Ok(SemaphorePermit {
                inner: Permit::new(held, false),
            })
        }

        /// See [`crate::Semaphore::acquire_with_watchdog`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// let sem = pottery::aio::Semaphore::new(&redis, "doc-aio-sem-watchdog", 1);
        /// let permit = sem.acquire_with_watchdog().await?;
        /// tokio::select! {
        ///     _ = permit.lost_signal() => unreachable!("nobody takes it"),
        ///     _ = tokio::time::sleep(std::time::Duration::from_millis(20)) => {}
        /// }
        /// permit.release().await?;
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub async fn acquire_with_watchdog(&self) -> Result<SemaphorePermit> {
            let held = self.core.acquire().await?;
            Ok(SemaphorePermit {
                inner: Permit::new(held, true),
            })
        }

        /// See [`crate::Semaphore::try_acquire`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// let sem = pottery::aio::Semaphore::new(&redis, "doc-aio-sem-try", 1);
        /// let permit = sem.try_acquire().await?.expect("free");
        /// # permit.release().await?;
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub async fn try_acquire(&self) -> Result<Option<SemaphorePermit>> {
            let held = self.core.try_acquire().await?;
            Ok(held.map(|held| SemaphorePermit {
                inner: Permit::new(held, false),
            }))
        }

        /// See [`crate::Semaphore::available`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// let sem = pottery::aio::Semaphore::new(&redis, "doc-aio-sem-available", 2);
        /// assert_eq!(sem.available().await?, 2);
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub async fn available(&self) -> Result<u64> {
            self.core.available().await
        }
    }

    /// A held permit of an [`aio::Semaphore`](Semaphore): given back by
    /// [`release`](Self::release), or in the background when dropped.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let sem = pottery::aio::Semaphore::new(&redis, "doc-aio-permit", 1);
    /// let permit = sem.acquire().await?;
    /// permit.extend().await?;
    /// assert!(permit.token() > 0);
    /// permit.release().await?;
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    pub struct SemaphorePermit {
        inner: Permit,
    }

    impl SemaphorePermit {
        permit_methods!();

        /// See [`crate::SemaphorePermit::extend`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// let sem = pottery::aio::Semaphore::new(&redis, "doc-aio-permit-extend", 1);
        /// let permit = sem.acquire().await?;
        /// permit.extend().await?;
        /// # permit.release().await?;
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub async fn extend(&self) -> Result<()> {
            self.inner.held().extend().await
        }

        /// See [`crate::SemaphorePermit::release`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// let sem = pottery::aio::Semaphore::new(&redis, "doc-aio-permit-release", 1);
        /// sem.acquire().await?.release().await?;
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub async fn release(mut self) -> Result<()> {
            match self.inner.take() {
                Some(held) => held.release().await,
                None => Ok(()),
            }
        }
    }

    impl Drop for SemaphorePermit {
        fn drop(&mut self) {
            if let Some(held) = self.inner.take() {
                rt::spawn(async move {
                    if let Err(e) = held.release().await {
                        log_release_error(&held.core.redis, &held.core.key, &e);
                    }
                });
            }
        }
    }

    impl fmt::Debug for SemaphorePermit {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("aio::SemaphorePermit")
                .field("key", &self.inner.held.as_ref().map(|h| &h.core.key))
                .field("token", &self.inner.held.as_ref().map(|h| h.token))
                .finish()
        }
    }
}
