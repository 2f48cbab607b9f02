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

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use rand::Rng;
use redis::Value;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use super::{Fanout, as_redis_error, fan_out, is_transient, names, quorum, try_master};
use crate::codec::CodecError;
use crate::error::{Error, Result};
use crate::op::{Op, script};
use crate::redis::Redis;
use crate::rt;

script!(ACQUIRE, "redlock_acquire.lua", Once);
script!(ACQUIRE_FENCED, "redlock_acquire_fenced.lua", Once);
script!(LOCKED, "redlock_locked.lua", Read);
script!(EXTEND, "redlock_extend.lua", Idempotent);
script!(RELEASE, "redlock_release.lua", Once);
script!(FENCE_RAISE, "fence_raise.lua", Idempotent);

/// Key prefix, as pottery.
pub const KEY_PREFIX: &str = "redlock";
const STRING: &str = "string";
const CLOCK_DRIFT_FACTOR: f64 = 0.01;
/// The shortest lease that leaves room for pottery's drift and a round trip.
const MIN_LEASE: Duration = Duration::from_millis(10);
/// The longest lease (Redis takes any `PX`, but a lease of more than 49 days is a mistake).
const MAX_LEASE_MS: u64 = u32::MAX as u64;
/// The polling fallback while waiting: a random pause in this range (milliseconds).
const POLL_MS: (u64, u64) = (50, 200);
/// How often a local waiter looks whether the turn's owner overran its lease.
const OVERRUN_CHECK: Duration = Duration::from_millis(250);

fn lock_mutex<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn int_reply(key: &str, v: Value) -> Result<i64> {
    crate::collections::int(key, v)
}

/// A master's answer to an acquire attempt.
enum Reply {
    /// Granted; the fence counter's value for a fenced attempt.
    Granted(i64),
    /// Held by somebody else for this many more milliseconds.
    Held(i64),
}

fn attempt_reply(key: &str, v: Value) -> Result<Reply> {
    let pair = match v {
        Value::Array(items) if items.len() == 2 => {
            let mut it = items.into_iter();
            (
                int_reply(key, it.next().unwrap_or(Value::Nil))?,
                int_reply(key, it.next().unwrap_or(Value::Nil))?,
            )
        }
        other => {
            return Err(Error::codec(
                key,
                CodecError::new(format!("unexpected reply to a lock attempt: {other:?}")),
            ));
        }
    };
    match pair {
        (1, fence) => Ok(Reply::Granted(fence)),
        (_, -1) => Err(Error::codec(
            key,
            CodecError::new(
                "the lock key exists with no expiry, which no Redlock holder writes: it is not a \
                 lease (delete it)",
            ),
        )),
        (_, pttl) => Ok(Reply::Held(pttl)),
    }
}

// ---------------------------------------------------------------------------------------------
// The description

#[derive(Clone)]
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
    unreachable_timeout: Duration,
    local: Arc<Local>,
}

impl Core {
    fn ttl_ms(&self) -> u64 {
        u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX)
    }

    /// pottery's drift: ttl × 1 % + 2 ms.
    fn drift(&self) -> Duration {
        self.ttl.mul_f64(CLOCK_DRIFT_FACTOR) + Duration::from_millis(2)
    }

    fn n(&self) -> usize {
        self.masters.len()
    }

    fn q(&self) -> usize {
        quorum(self.n())
    }

    /// Settings that can never work are refused before any I/O.
    fn check(&self) -> Result<()> {
        let problem = if self.masters.is_empty() {
            Some("no masters".to_owned())
        } else if self.ttl < MIN_LEASE || self.ttl_ms() > MAX_LEASE_MS {
            Some(format!(
                "auto_release_time {:?} is outside {MIN_LEASE:?} ..= {MAX_LEASE_MS} ms",
                self.ttl
            ))
        } else if self.master_timeout.is_zero() {
            Some("master_timeout is zero".to_owned())
        } else {
            None
        };
        match problem {
            Some(p) => Err(Error::Config {
                message: format!("Redlock `{}`: {p}", self.key),
            }),
            None => Ok(()),
        }
    }

    fn not_achieved(&self) -> Error {
        Error::QuorumNotAchieved {
            key: self.key.clone(),
            masters: names(&self.masters),
        }
    }

    fn impossible(&self, errors: &[Error]) -> Error {
        Error::QuorumIsImpossible {
            key: self.key.clone(),
            masters: names(&self.masters),
            errors: errors.iter().map(as_redis_error).collect(),
        }
    }

    /// `QuorumIsImpossible` when asked for and more than half the masters failed; a
    /// permanent error (authentication, `NOPERM`…) whenever it rules out a majority.
    fn check_masters_up<T>(&self, fanout: &mut Fanout<T>) -> Result<()> {
        if let Some(e) = fanout.permanent_failure(self.n(), self.q()) {
            return Err(e);
        }
        if self.raise_on_redis_errors && fanout.errors.len() > self.n() / 2 {
            return Err(self.impossible(&fanout.errors));
        }
        Ok(())
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

    /// Runs a compare-by-uuid read on every master, settled at a majority of `yes`, or when
    /// a majority can no longer say yes. (Writes go through
    /// [`write_for_uuid`](Self::write_for_uuid), which retries and finishes in the
    /// background.)
    async fn read_for_uuid(
        &self,
        script: &'static crate::op::Script,
        args: Vec<Vec<u8>>,
        yes: fn(&i64) -> bool,
    ) -> Fanout<i64> {
        let (n, q) = (self.n(), self.q());
        fan_out(
            &self.masters,
            self.master_timeout,
            |_| self.script_op(script, args.clone()),
            |f| {
                let y = f.count(yes);
                y >= q || f.replies.len() - y + f.errors.len() > n - q
            },
        )
        .await
    }

    /// Gives back `uuid`'s lease, which ends on the servers by `ends`, on the masters `on`
    /// (indices): retried through lost connections, stalls and `NOSCRIPT` until the lease
    /// ends or the retry window closes, and finished in the background where a majority
    /// settled the outcome first.
    async fn release_as(self: &Arc<Self>, uuid: &str, on: &[usize], ends: Instant) -> Written {
        self.write_for_uuid(on, RELEASE_WRITE, vec![uuid.as_bytes().to_vec()], ends)
            .await
    }

    /// Every master's index.
    fn all(&self) -> Vec<usize> {
        (0..self.n()).collect()
    }

    /// Until when a write about a lease that ends on the servers at `ends` is worth retrying:
    /// not past its end (the servers forget it then anyway), nor past the masters' longest
    /// retry window ([`RedisBuilder::retry_timeout`](crate::RedisBuilder::retry_timeout)).
    fn write_deadline(&self, ends: Instant) -> Instant {
        let window = self
            .masters
            .iter()
            .map(Redis::retry_timeout)
            .max()
            .unwrap_or_default();
        ends.min(Instant::now() + window)
    }

    /// Runs a compare-by-uuid write (a release or an extension: repeating either is
    /// harmless) on the masters `on`, each tried again through lost connections, stalls and
    /// `NOSCRIPT` until [`write_deadline`](Self::write_deadline). Returns once a majority of
    /// all the masters applied it, or a majority can no longer apply it, or every master in
    /// `on` settled; masters still trying then go on in the background, so a lease is given
    /// back (or kept) wherever a master comes back in time.
    async fn write_for_uuid(
        self: &Arc<Self>,
        on: &[usize],
        write: UuidWrite,
        args: Vec<Vec<u8>>,
        ends: Instant,
    ) -> Written {
        let deadline = self.write_deadline(ends);
        let args: Arc<[Vec<u8>]> = args.into();
        let mut pending: FuturesUnordered<_> = on
            .iter()
            .map(|&i| {
                let settle = settle_on(
                    Arc::clone(self),
                    i,
                    write,
                    Arc::clone(&args),
                    deadline,
                    false,
                );
                async move { (i, settle.await) }
            })
            .collect();
        let mut left: Vec<usize> = on.to_vec();
        let mut out = Written::default();
        let (n, q) = (self.n(), self.q());
        while let Some((i, settled)) = pending.next().await {
            left.retain(|&j| j != i);
            match settled {
                Settled::Done => out.done += 1,
                Settled::NotHeld => out.not_held += 1,
                Settled::Unknown(e) => out.unknown.push(e),
                Settled::Failed(e) => out.failed.push(e),
            }
            let decided = out.done >= q || out.not_held + out.failed.len() > n - q;
            if decided && !left.is_empty() {
                break;
            }
        }
        drop(pending);
        // Those still trying were maybe sent: a 0 from them may mean "given back already".
        for i in left {
            let settle = settle_on(
                Arc::clone(self),
                i,
                write,
                Arc::clone(&args),
                deadline,
                true,
            );
            let background = async move {
                drop(settle.await);
            };
            // A blocking call's own runtime runs only while that thread is in a pottery
            // call: give the rest to pottery's runtime instead.
            if rt::in_blocking_shell() {
                drop(rt::spawn_global(background));
            } else {
                rt::spawn(background);
            }
        }
        out
    }

    /// The result of a compare-by-uuid write: `Ok` when a majority applied it; the first
    /// permanent error when those alone rule a majority out; [`Error::LockOutcomeUnknown`]
    /// when masters that did not answer could have made a majority; else `unlocked`.
    fn judge(&self, mut w: Written, action: &'static str, unlocked: Error) -> Result<()> {
        let (n, q) = (self.n(), self.q());
        if w.done >= q {
            return Ok(());
        }
        if !w.failed.is_empty() && n - w.failed.len() < q {
            return Err(w.failed.swap_remove(0));
        }
        if w.done + w.unknown.len() >= q {
            return Err(Error::LockOutcomeUnknown {
                key: self.key.clone(),
                masters: names(&self.masters),
                action,
                errors: w.unknown.iter().map(as_redis_error).collect(),
            });
        }
        Err(unlocked)
    }

    fn wait_mode(&self) -> Wait {
        if self.blocking {
            Wait::For(self.timeout)
        } else {
            Wait::Once
        }
    }
}

fn new_core(key: &str, masters: impl IntoIterator<Item = Redis>) -> Core {
    let key = format!("{KEY_PREFIX}:{key}");
    let masters: Vec<Redis> = masters.into_iter().collect();
    Core {
        fence_key: format!("{{{key}}}:fence"),
        local: local_for(&key, &masters),
        key,
        masters,
        ttl: Duration::from_secs(10),
        num_extensions: Some(3),
        blocking: true,
        timeout: None,
        raise_on_redis_errors: false,
        master_timeout: Duration::from_millis(500),
        unreachable_timeout: Duration::from_secs(5),
    }
}

/// A compare-by-uuid write: its script, and how to read a 0.
#[derive(Clone, Copy)]
struct UuidWrite {
    script: &'static crate::op::Script,
    /// A release: a 0 after a try whose outcome is unknown means the lease is gone from that
    /// master (that try removed it, or it ran out), which is what was asked.
    gone_is_done: bool,
}

const RELEASE_WRITE: UuidWrite = UuidWrite {
    script: &RELEASE,
    gone_is_done: true,
};

const EXTEND_WRITE: UuidWrite = UuidWrite {
    script: &EXTEND,
    gone_is_done: false,
};

/// How one master settled a compare-by-uuid write.
enum Settled {
    /// Applied (or, for a release, the lease is gone: see [`UuidWrite::gone_is_done`]).
    Done,
    /// The master does not hold this lease.
    NotHeld,
    /// No answer before the deadline: it may or may not have been applied.
    Unknown(Error),
    /// An error no retry mends (authentication, `NOPERM`, a reply that is not pottery's…).
    Failed(Error),
}

/// What a compare-by-uuid write did on the masters that settled.
#[derive(Default)]
struct Written {
    done: usize,
    not_held: usize,
    unknown: Vec<Error>,
    failed: Vec<Error>,
}

/// Runs `write` on master `i` until it answers, trying again after transient failures
/// (refused, reset, timed out — a stall longer than `master_timeout` —, loading, failing
/// over) until `deadline`. `sent`: an earlier try may have reached the master.
async fn settle_on(
    core: Arc<Core>,
    i: usize,
    write: UuidWrite,
    args: Arc<[Vec<u8>]>,
    deadline: Instant,
    mut sent: bool,
) -> Settled {
    let Some(master) = core.masters.get(i) else {
        return Settled::NotHeld;
    };
    let mut retry = crate::op::Retry::until(deadline);
    loop {
        let op = core.script_op(write.script, args.to_vec());
        match try_master(master, core.n(), op, core.master_timeout).await {
            Ok(1) => return Settled::Done,
            Ok(0) if sent && write.gone_is_done => return Settled::Done,
            Ok(0) => return Settled::NotHeld,
            Ok(other) => {
                return Settled::Failed(Error::codec(
                    &core.key,
                    CodecError::new(format!("unexpected reply {other} to a lock script")),
                ));
            }
            Err(e) if is_transient(&e) => {
                // A refused connection sent nothing; anything else may have been sent.
                sent |=
                    !matches!(&e, Error::Redis { source, .. } if source.is_connection_refusal());
                match retry.pause() {
                    Some(wait) => {
                        tracing::debug!(key = %core.key, ?wait, error = %e, "retrying a lock write");
                        tokio::time::sleep(wait).await;
                    }
                    None => return Settled::Unknown(e),
                }
            }
            Err(e) => return Settled::Failed(e),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The local line: one per key and set of masters in this process

/// Waiters of this process on one lock. The semaphore's single permit is the "turn": its
/// owner is the one local caller that contends with other processes (or holds the lease), and
/// the semaphore queues the others in FIFO order.
struct Local {
    turn: Arc<Semaphore>,
    /// When the turn's owner's lease ends (local estimate), while it holds one. A waiter that
    /// sees it pass stops waiting for the turn and contends anyway: a guard kept past its lease
    /// does not block the process.
    held_until: Mutex<Option<Instant>>,
}

static LOCALS: LazyLock<Mutex<HashMap<String, Weak<Local>>>> = LazyLock::new(Default::default);

fn local_for(key: &str, masters: &[Redis]) -> Arc<Local> {
    let id = format!("{key}\n{}", names(masters).join("\n"));
    let mut map = lock_mutex(&LOCALS);
    if let Some(local) = map.get(&id).and_then(Weak::upgrade) {
        return local;
    }
    if map.len() >= 64 && map.len().is_power_of_two() {
        map.retain(|_, w| w.strong_count() > 0);
    }
    let local = Arc::new(Local {
        turn: Arc::new(Semaphore::new(1)),
        held_until: Mutex::new(None),
    });
    map.insert(id, Arc::downgrade(&local));
    local
}

enum Turn {
    Mine(OwnedSemaphorePermit),
    /// The owner's lease ran out while it kept the turn.
    Overrun,
    TimedOut,
}

impl Local {
    fn overrun(&self) -> bool {
        lock_mutex(&self.held_until).is_some_and(|u| u <= Instant::now())
    }

    fn set_held_until(&self, until: Option<Instant>) {
        *lock_mutex(&self.held_until) = until;
    }

    /// The turn now, `Some(None)` when its owner overran its lease, `None` when it is taken.
    fn try_turn(&self) -> Option<Option<OwnedSemaphorePermit>> {
        match Arc::clone(&self.turn).try_acquire_owned() {
            Ok(p) => Some(Some(p)),
            Err(_) if self.overrun() => Some(None),
            Err(_) => None,
        }
    }

    async fn wait_turn(&self, deadline: Option<Instant>) -> Turn {
        if let Ok(p) = Arc::clone(&self.turn).try_acquire_owned() {
            return Turn::Mine(p);
        }
        let acquire = Arc::clone(&self.turn).acquire_owned();
        tokio::pin!(acquire);
        loop {
            // Look at the owner's lease when it should end, and at least every 250 ms (it may
            // not have one yet, or may have extended it): cheaper than waking every waiter at
            // each change.
            let recheck = Instant::now() + OVERRUN_CHECK;
            let at = lock_mutex(&self.held_until).map_or(recheck, |u| u.min(recheck));
            tokio::select! {
                biased;
                permit = &mut acquire => {
                    return match permit {
                        Ok(p) => Turn::Mine(p),
                        Err(_) => Turn::Overrun,
                    };
                }
                _ = tokio::time::sleep_until(at.into()) => {
                    if self.overrun() {
                        return Turn::Overrun;
                    }
                }
                _ = sleep_until(deadline) => return Turn::TimedOut,
            }
        }
    }
}

/// Sleeps until `at`, or forever for `None`.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

// ---------------------------------------------------------------------------------------------
// One lease

/// One holder's lease: everything that belongs to it and to nobody else.
pub(crate) struct Lease {
    core: Arc<Core>,
    uuid: String,
    token: Option<u64>,
    extensions: AtomicU32,
    /// Local estimate of when the lease ends (already less pottery's drift).
    until: Mutex<Instant>,
    /// The local turn, when this lease was taken with it.
    turn: Mutex<Option<OwnedSemaphorePermit>>,
}

impl Lease {
    fn new(
        core: &Arc<Core>,
        uuid: String,
        token: Option<u64>,
        until: Instant,
        turn: Option<OwnedSemaphorePermit>,
    ) -> Lease {
        if turn.is_some() {
            core.local.set_held_until(Some(until));
        }
        Lease {
            core: Arc::clone(core),
            uuid,
            token,
            extensions: AtomicU32::new(0),
            until: Mutex::new(until),
            turn: Mutex::new(turn),
        }
    }

    fn give_back_turn(&self) {
        if let Some(permit) = lock_mutex(&self.turn).take() {
            self.core.local.set_held_until(None);
            drop(permit);
        }
    }

    /// The remaining validity by pottery's formula: the smallest remaining TTL in the quorum,
    /// minus drift and the time asking took.
    async fn locked(&self) -> Result<Duration> {
        let core = &self.core;
        let started = Instant::now();
        let mut fanout = core
            .read_for_uuid(&LOCKED, vec![self.uuid.clone().into_bytes()], |p| *p > 0)
            .await;
        if fanout.count(|p| *p > 0) >= core.q() {
            let least = fanout.replies.iter().copied().filter(|p| *p > 0).min();
            let least =
                Duration::from_millis(least.and_then(|l| u64::try_from(l).ok()).unwrap_or(0));
            return Ok(least.saturating_sub(core.drift() + started.elapsed()));
        }
        core.check_masters_up(&mut fanout)?;
        Ok(Duration::ZERO)
    }

    async fn extend(&self) -> Result<()> {
        let core = &self.core;
        let done = self.extensions.load(Ordering::SeqCst);
        if core.num_extensions.is_some_and(|max| done >= max) {
            return Err(Error::TooManyExtensions {
                key: core.key.clone(),
                masters: names(&core.masters),
            });
        }
        let started = Instant::now();
        let args = vec![
            self.uuid.clone().into_bytes(),
            core.ttl_ms().to_string().into_bytes(),
        ];
        let written = core
            .write_for_uuid(&core.all(), EXTEND_WRITE, args, self.ends())
            .await;
        let unlocked = Error::ExtendUnlockedLock {
            key: core.key.clone(),
            masters: names(&core.masters),
        };
        core.judge(written, "extension", unlocked)?;
        self.extensions.fetch_add(1, Ordering::SeqCst);
        let until = started + core.ttl.saturating_sub(core.drift());
        *lock_mutex(&self.until) = until;
        if lock_mutex(&self.turn).is_some() {
            core.local.set_held_until(Some(until));
        }
        Ok(())
    }

    /// When the lease ends on the servers (at the latest, by the local estimate).
    fn ends(&self) -> Instant {
        *lock_mutex(&self.until) + self.core.drift() * 2
    }

    /// Gives the lease back. A master that does not answer is tried again (the release is a
    /// compare-and-delete of this lease's uuid: repeating it is harmless) until the lease
    /// ends or the retry window closes; an outcome still unknown then is
    /// [`Error::LockOutcomeUnknown`], never [`Error::ReleaseUnlockedLock`].
    async fn release(&self) -> Result<()> {
        let core = &self.core;
        let written = core.release_as(&self.uuid, &core.all(), self.ends()).await;
        self.give_back_turn();
        let unlocked = Error::ReleaseUnlockedLock {
            key: core.key.clone(),
            masters: names(&core.masters),
        };
        core.judge(written, "release", unlocked)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.give_back_turn();
    }
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("key", &self.core.key)
            .field("token", &self.token)
            .finish()
    }
}

// ---------------------------------------------------------------------------------------------
// Acquiring

/// Gives back, in the background, what masters may have granted to an attempt whose future
/// was dropped before it finished.
struct Undo {
    core: Arc<Core>,
    uuid: Option<String>,
    /// When the attempt's lease would end on the servers.
    ends: Instant,
}

impl Drop for Undo {
    fn drop(&mut self) {
        if let Some(uuid) = self.uuid.take() {
            let core = Arc::clone(&self.core);
            let ends = self.ends;
            let release = async move {
                let _ = core.release_as(&uuid, &core.all(), ends).await;
            };
            // A blocking call's own runtime runs only while that thread is in a pottery
            // call: give the release to pottery's runtime instead.
            if rt::in_blocking_shell() {
                drop(rt::spawn_global(release));
            } else {
                rt::spawn(release);
            }
        }
    }
}

enum Outcome {
    Acquired {
        uuid: String,
        token: Option<u64>,
        until: Instant,
    },
    /// Held elsewhere; the earliest a holder's lease runs out, if known.
    Held(Option<Duration>),
    /// Too many masters failed (transiently) for a majority.
    Unreachable(Vec<Error>),
}

/// One attempt: the acquire script on every master at once, done when a majority said yes
/// or can no longer say it.
/// How an attempt asks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ask {
    /// pottery's plain `SET NX PX`: the cheapest, and all an uncontended lock needs.
    Plain,
    /// The acquire script: on a "no", the holder's remaining lease (and a lock key with no
    /// expiry is reported as corrupt).
    Script,
    /// The fenced acquire script.
    Fenced,
}

async fn attempt(core: &Arc<Core>, ask: Ask) -> Result<Outcome> {
    let fenced = ask == Ask::Fenced;
    let uuid = uuid::Uuid::new_v4().to_string();
    let started = Instant::now();
    let mut undo = Undo {
        core: Arc::clone(core),
        uuid: Some(uuid.clone()),
        ends: started + core.ttl + core.drift(),
    };
    let (n, q) = (core.n(), core.q());
    let (script, keys) = if fenced {
        (
            &ACQUIRE_FENCED,
            vec![
                core.key.clone().into_bytes(),
                core.fence_key.clone().into_bytes(),
            ],
        )
    } else {
        (&ACQUIRE, vec![core.key.clone().into_bytes()])
    };
    let args = vec![
        uuid.clone().into_bytes(),
        core.ttl_ms().to_string().into_bytes(),
    ];
    let granted = |r: &Reply| matches!(r, Reply::Granted(_));
    let ttl_ms = core.ttl_ms().to_string();
    let mut fanout = fan_out(
        &core.masters,
        core.master_timeout,
        |_| {
            if ask == Ask::Plain {
                let mut cmd = redis::cmd("SET");
                cmd.arg(&core.key)
                    .arg(&uuid)
                    .arg("PX")
                    .arg(&ttl_ms)
                    .arg("NX");
                return Op::cmd(&core.key, STRING, cmd, |_, v| {
                    // The holder's remaining lease is unknown (-2: no hint).
                    Ok(if matches!(v, Value::Okay) {
                        Reply::Granted(0)
                    } else {
                        Reply::Held(-2)
                    })
                });
            }
            Op::eval(
                &core.key,
                STRING,
                script,
                keys.clone(),
                args.clone(),
                attempt_reply,
            )
        },
        |f| {
            let y = f.count(granted);
            y >= q || f.replies.len() - y + f.errors.len() > n - q
        },
    )
    .await;
    fanout.errors = fanout
        .errors
        .into_iter()
        .map(|e| corrupt_fence(core, e))
        .collect();
    if fanout.count(granted) >= q {
        let validity = core.ttl.saturating_sub(core.drift() + started.elapsed());
        if !validity.is_zero() {
            let token = if fenced {
                raise_fences(core, &fanout).await?
            } else {
                Some(None)
            };
            if let Some(token) = token {
                undo.uuid = None;
                return Ok(Outcome::Acquired {
                    uuid,
                    token,
                    until: started + validity,
                });
            }
        }
    }
    // Not acquired: give back what was granted, on the masters that granted it, before the
    // next attempt (or waiter) needs it. What masters that failed or were not waited for may
    // have granted is given back in the background, as `undo` drops: they are likely
    // unreachable, and waiting for them again would double the time a failed attempt takes
    // (measured: a `try_acquire` on an unresponsive master took two master timeouts, and a
    // lock with one healthy master of three 1.75 s instead of ~1 s).
    let granted_by: Vec<usize> = fanout
        .replies
        .iter()
        .zip(&fanout.from)
        .filter(|(r, _)| granted(r))
        .map(|(_, &i)| i)
        .collect();
    if !granted_by.is_empty() {
        let _ = core.release_as(&uuid, &granted_by, undo.ends).await;
    }
    if fanout.pending == 0 && fanout.errors.is_empty() {
        undo.uuid = None;
    }
    if let Some(e) = fanout.permanent_failure(n, q) {
        return Err(e);
    }
    if fanout.unreachable(n, q) {
        return Ok(Outcome::Unreachable(fanout.errors));
    }
    let wait = fanout
        .replies
        .iter()
        .filter_map(|r| match r {
            Reply::Held(p) if *p >= 0 => u64::try_from(*p).ok(),
            _ => None,
        })
        .min()
        .map(Duration::from_millis);
    Ok(Outcome::Held(wait))
}

/// The fenced acquire script's refusal of a corrupt fence counter, as a codec error naming it.
fn corrupt_fence(core: &Core, e: Error) -> Error {
    match &e {
        Error::Redis { source, .. } if source.code() == Some("CORRUPT") => Error::codec(
            &core.fence_key,
            CodecError::new("the fence counter is not a decimal number (delete it)"),
        ),
        _ => e,
    }
}

/// The fencing token of a granted fenced attempt: the largest counter in the quorum, written
/// back to a majority so that the majority of any later acquisition sees it. `None` when the
/// raise did not reach a majority.
async fn raise_fences(core: &Core, granted: &Fanout<Reply>) -> Result<Option<Option<u64>>> {
    let token = granted
        .replies
        .iter()
        .filter_map(|r| match r {
            Reply::Granted(f) => Some(*f),
            Reply::Held(_) => None,
        })
        .max()
        .unwrap_or(0);
    let (n, q) = (core.n(), core.q());
    let floor = token.to_string().into_bytes();
    let mut raised = fan_out(
        &core.masters,
        core.master_timeout,
        |_| {
            Op::eval(
                &core.fence_key,
                STRING,
                &FENCE_RAISE,
                vec![core.fence_key.clone().into_bytes()],
                vec![floor.clone()],
                int_reply,
            )
        },
        |f| {
            let y = f.count(|v| *v >= token);
            y >= q || f.replies.len() - y + f.errors.len() > n - q
        },
    )
    .await;
    if raised.count(|v| *v >= token) >= q {
        return Ok(Some(u64::try_from(token).ok()));
    }
    if let Some(e) = raised.permanent_failure(n, q) {
        return Err(e);
    }
    Ok(None)
}

#[derive(Clone, Copy)]
enum Wait {
    /// One attempt.
    Once,
    /// Until acquired, or for at most this long.
    For(Option<Duration>),
}

/// Takes a lease: waits for this process's turn, then attempts, waking on releases, on the
/// holder's expiry and on the polling fallback, until acquired or out of time.
/// What an acquisition ended with: a lease, or why not.
type Taken = std::result::Result<Lease, Missed>;

/// Why an acquisition ended without a lease.
enum Missed {
    /// Held by another holder (the masters answered), after waiting this long.
    Busy(Duration),
    /// The last attempt got no majority of answers.
    NoQuorum,
}

impl Core {
    /// The error of a lock call that ended without a lease.
    fn missed(&self, why: Missed) -> Error {
        match why {
            Missed::Busy(waited) => Error::LockBusy {
                key: self.key.clone(),
                masters: names(&self.masters),
                waited,
            },
            Missed::NoQuorum => self.not_achieved(),
        }
    }
}

async fn acquire(core: &Arc<Core>, wait: Wait, fenced: bool) -> Result<Taken> {
    // The first attempt of a waiting call is pottery's plain SET NX PX; later ones use the
    // script, which says how long the holder has left and reports a corrupt lock key. A
    // single attempt uses the script, so that a corrupt key is reported rather than taken
    // for a holder.
    let mut ask = match (fenced, wait) {
        (true, _) => Ask::Fenced,
        (false, Wait::Once) => Ask::Script,
        (false, Wait::For(_)) => Ask::Plain,
    };
    core.check()?;
    let started = Instant::now();
    let deadline = match wait {
        Wait::Once => None,
        Wait::For(t) => t.map(|t| started + t),
    };
    // Another caller of this process has the turn: busy.
    let busy = || {
        let waited = match wait {
            Wait::Once => Duration::ZERO,
            Wait::For(_) => started.elapsed(),
        };
        Ok(Err(Missed::Busy(waited)))
    };
    let turn = match wait {
        Wait::Once => match core.local.try_turn() {
            Some(turn) => turn,
            None => return busy(),
        },
        Wait::For(_) => match core.local.wait_turn(deadline).await {
            Turn::Mine(p) => Some(p),
            Turn::Overrun => None,
            Turn::TimedOut => return busy(),
        },
    };
    let mut wakeups: Option<Wakeups> = None;
    let mut unreachable_since: Option<Instant> = None;
    loop {
        let marks = wakeups.as_ref().map(Wakeups::marks);
        let outcome = attempt(core, ask).await?;
        if ask == Ask::Plain {
            ask = Ask::Script;
        }
        let hint = match outcome {
            Outcome::Acquired { uuid, token, until } => {
                return Ok(Ok(Lease::new(core, uuid, token, until, turn)));
            }
            Outcome::Held(hint) => {
                unreachable_since = None;
                hint
            }
            Outcome::Unreachable(errors) => {
                let since = *unreachable_since.get_or_insert_with(Instant::now);
                if core.raise_on_redis_errors
                    || (matches!(wait, Wait::For(_)) && since.elapsed() >= core.unreachable_timeout)
                {
                    return Err(core.impossible(&errors));
                }
                None
            }
        };
        let now = Instant::now();
        if matches!(wait, Wait::Once) || deadline.is_some_and(|d| now >= d) {
            return match unreachable_since {
                // The last attempt got no majority of answers.
                Some(_) => Ok(Err(Missed::NoQuorum)),
                None => busy(),
            };
        }
        if wakeups.is_none() && unreachable_since.is_none() {
            // Listen for releases first, then look again: a release in between is not missed.
            wakeups = Some(Wakeups::subscribe(core).await);
            continue;
        }
        let mut pause = Duration::from_millis(rand::rng().random_range(POLL_MS.0..=POLL_MS.1));
        if let Some(h) = hint {
            pause = pause.min(h + Duration::from_millis(1));
        }
        if let Some(d) = deadline {
            pause = pause.min(d.saturating_duration_since(now));
        }
        match (&wakeups, &marks) {
            (Some(w), Some(marks)) => w.wait(marks, pause).await,
            _ => tokio::time::sleep(pause).await,
        }
    }
}

/// Release notifications from every master that can send them, through the process's shared
/// subscriber connections.
struct Wakeups {
    listening: Vec<Listening>,
}

impl Wakeups {
    async fn subscribe(core: &Core) -> Wakeups {
        let listens = core.masters.iter().map(|m| async move {
            let subscribed = async {
                let subscriber = Subscriber::of(m).await?;
                Some(subscriber.listen(&core.key).await)
            };
            tokio::time::timeout(core.master_timeout, subscribed)
                .await
                .ok()
                .flatten()
        });
        let listening = futures_util::future::join_all(listens).await;
        Wakeups {
            listening: listening.into_iter().flatten().collect(),
        }
    }

    /// How many releases each channel has seen so far (taken before an attempt).
    fn marks(&self) -> Vec<u64> {
        self.listening
            .iter()
            .map(|l| l.channel.fired.load(Ordering::SeqCst))
            .collect()
    }

    /// Until a release is announced after `marks` were taken, or `pause` has passed.
    async fn wait(&self, marks: &[u64], pause: Duration) {
        let fired = || {
            self.listening
                .iter()
                .zip(marks)
                .any(|(l, m)| l.channel.fired.load(Ordering::SeqCst) != *m)
        };
        if self.listening.is_empty() {
            tokio::time::sleep(pause).await;
            return;
        }
        let mut notified: Vec<_> = self
            .listening
            .iter()
            .map(|l| Box::pin(l.channel.notify.notified()))
            .collect();
        for n in &mut notified {
            n.as_mut().enable();
        }
        if fired() {
            return;
        }
        let _ = tokio::time::timeout(pause, futures_util::future::select_all(notified)).await;
    }
}

/// One pub/sub connection per master in this process, shared by every waiter on every key:
/// waiting costs no connection of its own. Its driver and dispatcher run on pottery's runtime;
/// when the connection drops, every channel is woken (the waiters look, and poll) and the next
/// waiter connects anew.
struct Subscriber {
    sink: redis::aio::PubSubSink,
    channels: Mutex<HashMap<String, Arc<Channel>>>,
    /// Serialises SUBSCRIBE and UNSUBSCRIBE.
    ops: tokio::sync::Mutex<()>,
    alive: AtomicBool,
}

/// One channel (one lock key) of a [`Subscriber`].
#[derive(Default)]
struct Channel {
    /// Releases seen: a waiter that compares it before and after an attempt misses none.
    fired: AtomicU64,
    notify: Notify,
    listeners: AtomicUsize,
    subscribed: AtomicBool,
}

static SUBSCRIBERS: LazyLock<Mutex<HashMap<String, Arc<Subscriber>>>> =
    LazyLock::new(Default::default);

impl Subscriber {
    /// The shared subscriber of `master`, connecting it if needed; `None` for a cluster handle
    /// or when it cannot connect (the waiters poll).
    async fn of(master: &Redis) -> Option<Arc<Subscriber>> {
        let id = format!("{master:?}");
        if let Some(s) = lock_mutex(&SUBSCRIBERS).get(&id)
            && s.alive.load(Ordering::SeqCst)
        {
            return Some(Arc::clone(s));
        }
        let connect = {
            let master = master.clone();
            rt::spawn_global(async move { master.pubsub_async().await })
        };
        let pubsub = connect.await.ok()??.ok()?;
        let (sink, stream) = pubsub.split();
        let made = Arc::new(Subscriber {
            sink,
            channels: Mutex::default(),
            ops: tokio::sync::Mutex::new(()),
            alive: AtomicBool::new(true),
        });
        let mut all = lock_mutex(&SUBSCRIBERS);
        if let Some(s) = all.get(&id)
            && s.alive.load(Ordering::SeqCst)
        {
            // Another waiter connected meanwhile: use that one (ours closes as it drops).
            return Some(Arc::clone(s));
        }
        all.insert(id.clone(), Arc::clone(&made));
        drop(all);
        rt::spawn_global(dispatch(id, Arc::downgrade(&made), stream));
        Some(made)
    }

    /// Starts listening on `key`'s channel (subscribing if nobody here listens yet).
    async fn listen(self: &Arc<Self>, key: &str) -> Listening {
        let channel = {
            let mut channels = lock_mutex(&self.channels);
            let channel = Arc::clone(channels.entry(key.to_owned()).or_default());
            channel.listeners.fetch_add(1, Ordering::SeqCst);
            channel
        };
        let listening = Listening {
            subscriber: Arc::clone(self),
            channel: Arc::clone(&channel),
            key: key.to_owned(),
        };
        let _ops = self.ops.lock().await;
        if !channel.subscribed.load(Ordering::SeqCst)
            && self.sink.clone().subscribe(key).await.is_ok()
        {
            channel.subscribed.store(true, Ordering::SeqCst);
        }
        listening
    }
}

/// Delivers the messages of one subscriber connection to its channels, until it drops.
async fn dispatch(id: String, subscriber: Weak<Subscriber>, mut stream: redis::aio::PubSubStream) {
    while let Some(msg) = stream.next().await {
        let Some(s) = subscriber.upgrade() else {
            return;
        };
        let channel = lock_mutex(&s.channels).get(msg.get_channel_name()).cloned();
        if let Some(channel) = channel {
            channel.fired.fetch_add(1, Ordering::SeqCst);
            channel.notify.notify_waiters();
        }
    }
    // The connection dropped: wake everybody (they look again, and poll), and let the next
    // waiter connect anew.
    if let Some(s) = subscriber.upgrade() {
        s.alive.store(false, Ordering::SeqCst);
        let mut all = lock_mutex(&SUBSCRIBERS);
        if all.get(&id).is_some_and(|current| Arc::ptr_eq(current, &s)) {
            all.remove(&id);
        }
        drop(all);
        for channel in lock_mutex(&s.channels).values() {
            channel.fired.fetch_add(1, Ordering::SeqCst);
            channel.notify.notify_waiters();
        }
    }
}

/// A waiter's interest in one channel; the last one to go unsubscribes (in the background).
struct Listening {
    subscriber: Arc<Subscriber>,
    channel: Arc<Channel>,
    key: String,
}

impl Drop for Listening {
    fn drop(&mut self) {
        if self.channel.listeners.fetch_sub(1, Ordering::SeqCst) != 1 {
            return;
        }
        let (subscriber, channel, key) = (
            Arc::clone(&self.subscriber),
            Arc::clone(&self.channel),
            std::mem::take(&mut self.key),
        );
        rt::spawn_global(async move {
            let _ops = subscriber.ops.lock().await;
            {
                let mut channels = lock_mutex(&subscriber.channels);
                if channel.listeners.load(Ordering::SeqCst) != 0 {
                    return;
                }
                if channels
                    .get(&key)
                    .is_some_and(|current| Arc::ptr_eq(current, &channel))
                {
                    channels.remove(&key);
                }
            }
            if channel.subscribed.swap(false, Ordering::SeqCst) {
                let _ = subscriber.sink.clone().unsubscribe(&key).await;
            }
        });
    }
}

// ---------------------------------------------------------------------------------------------
// The watchdog

#[derive(Default)]
struct Watch {
    stop: AtomicBool,
    lost: AtomicBool,
    wake: Notify,
}

impl Watch {
    fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }
}

/// Extends the lease every third of its length until told to stop; marks it lost when an
/// extension fails or when the last allowed extension runs out.
async fn watchdog(lease: Arc<Lease>, watch: Arc<Watch>) {
    let period = lease.core.ttl / 3;
    loop {
        let _ = tokio::time::timeout(period, watch.wake.notified()).await;
        if watch.stop.load(Ordering::SeqCst) {
            return;
        }
        match lease.extend().await {
            Ok(()) => {}
            Err(Error::TooManyExtensions { .. }) => {
                // No more extensions: the lease ends when it ends.
                let left = lock_mutex(&lease.until).saturating_duration_since(Instant::now());
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

// ---------------------------------------------------------------------------------------------
// The public types

/// The lease a lock instance holds through pottery's imperative calls (`acquire` … `release`).
type Slot = Arc<Mutex<Option<Arc<Lease>>>>;

/// Settings shared by the blocking and the async lock, set with chainable methods named as in
/// pottery.
macro_rules! builder_methods {
    () => {
        /// How long a lease lasts before it frees itself (default 10 s, as pottery). Between
        /// 10 ms and 2³² ms; anything else makes every call fail with [`Error::Config`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// let lock = pottery::Redlock::new("doc-ttl", [redis])
        ///     .auto_release_time(std::time::Duration::from_secs(2));
        /// # let _ = lock;
        /// ```
        pub fn auto_release_time(self, ttl: Duration) -> Self {
            self.with(|c| c.ttl = ttl)
        }

        /// How many times a holder may extend one lease (default 3).
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// let lock = pottery::Redlock::new("doc-n-ext", [redis]).num_extensions(10);
        /// # let _ = lock;
        /// ```
        pub fn num_extensions(self, n: u32) -> Self {
            self.with(|c| c.num_extensions = Some(n))
        }

        /// No limit on extensions (for long jobs under a watchdog).
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// let lock = pottery::Redlock::new("doc-unlimited", [redis]).unlimited_extensions();
        /// # let _ = lock;
        /// ```
        pub fn unlimited_extensions(self) -> Self {
            self.with(|c| c.num_extensions = None)
        }

        /// Whether `lock()` waits for the lock (default true) or tries once.
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// let lock = pottery::Redlock::new("doc-nb", [redis]).context_manager_blocking(false);
        /// # let _ = lock;
        /// ```
        pub fn context_manager_blocking(self, blocking: bool) -> Self {
            self.with(|c| c.blocking = blocking)
        }

        /// How long a blocking `lock()` waits (default: forever).
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// let lock = pottery::Redlock::new("doc-cm-timeout", [redis])
        ///     .context_manager_timeout(Some(std::time::Duration::from_secs(1)));
        /// # let _ = lock;
        /// ```
        pub fn context_manager_timeout(self, timeout: Option<Duration>) -> Self {
            self.with(|c| c.timeout = timeout)
        }

        /// Fail with [`Error::QuorumIsImpossible`] as soon as more than half the masters fail,
        /// instead of answering "not acquired" (default false, as pottery).
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// let lock = pottery::Redlock::new("doc-raise", [redis]).raise_on_redis_errors(true);
        /// # let _ = lock;
        /// ```
        pub fn raise_on_redis_errors(self, raise: bool) -> Self {
            self.with(|c| c.raise_on_redis_errors = raise)
        }

        /// How long one master may take to answer before it counts as failed (default
        /// 500 ms, well under the lease).
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// let lock = pottery::Redlock::new("doc-mt", [redis])
        ///     .master_timeout(std::time::Duration::from_millis(200));
        /// # let _ = lock;
        /// ```
        pub fn master_timeout(self, timeout: Duration) -> Self {
            self.with(|c| c.master_timeout = timeout)
        }

        /// How long a waiting call goes on while too many masters are unreachable for a
        /// majority (default 5 s); then it fails with [`Error::QuorumIsImpossible`]. Errors
        /// that waiting cannot mend (authentication, `NOPERM`, a database out of range, a
        /// corrupt lock key) fail at once.
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// let lock = pottery::Redlock::new("doc-unreachable", [redis])
        ///     .unreachable_timeout(std::time::Duration::from_secs(1));
        /// # let _ = lock;
        /// ```
        pub fn unreachable_timeout(self, timeout: Duration) -> Self {
            self.with(|c| c.unreachable_timeout = timeout)
        }

        fn with(mut self, f: impl FnOnce(&mut Core)) -> Self {
            f(Arc::make_mut(&mut self.core));
            self
        }

        /// The Redis key: `redlock:<key>`.
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// assert_eq!(pottery::Redlock::new("printer", [redis]).key(), "redlock:printer");
        /// ```
        pub fn key(&self) -> &str {
            &self.core.key
        }

        /// The imperative lease, once the settings are known to be usable.
        fn slot(&self) -> Result<Option<Arc<Lease>>> {
            self.core.check()?;
            Ok(lock_mutex(&self.held).clone())
        }

        fn hold(&self, lease: Taken) -> bool {
            match lease {
                Ok(lease) => {
                    *lock_mutex(&self.held) = Some(Arc::new(lease));
                    true
                }
                Err(_) => false,
            }
        }

        fn take_slot(&self) -> Result<Option<Arc<Lease>>> {
            self.core.check()?;
            Ok(lock_mutex(&self.held).take())
        }

        fn extend_unlocked(&self) -> Error {
            Error::ExtendUnlockedLock {
                key: self.core.key.clone(),
                masters: names(&self.core.masters),
            }
        }

        fn release_unlocked(&self) -> Error {
            Error::ReleaseUnlockedLock {
                key: self.core.key.clone(),
                masters: names(&self.core.masters),
            }
        }
    };
}

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
    core: Arc<Core>,
    held: Slot,
}

/// A new instance: same key, masters and settings, no lease of its own.
impl Clone for Redlock {
    fn clone(&self) -> Self {
        Redlock {
            core: Arc::clone(&self.core),
            held: Slot::default(),
        }
    }
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
            held: Slot::default(),
        }
    }

    builder_methods!();

    /// The async twin, sharing this instance's imperative lease.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// let lock = pottery::Redlock::new("printer", [redis]);
    /// assert_eq!(lock.to_async().key(), lock.key());
    /// ```
    pub fn to_async(&self) -> aio::Redlock {
        aio::Redlock {
            core: Arc::clone(&self.core),
            held: Arc::clone(&self.held),
        }
    }

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

    /// Like [`lock`](Self::lock), and keeps the lease alive from a background thread that
    /// extends it every third of `auto_release_time` (up to `num_extensions` times; see
    /// [`unlimited_extensions`](Self::unlimited_extensions)). Ask the guard whether the lease
    /// was lost.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let redis = pottery::testing::doctest_redis();
    /// let lock = pottery::Redlock::new("doc-watchdog", [redis])
    ///     .auto_release_time(Duration::from_secs(1))
    ///     .unlimited_extensions();
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
    lease: Arc<Lease>,
    armed: bool,
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
    guard: RedlockGuard,
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
        key = lock.key(),
        waited_ms = waited.as_millis() as u64,
        held_ms = (started.elapsed() - waited).as_millis() as u64,
        "synchronize"
    );
    drop(guard);
    Ok(out)
}

/// Async [`synchronized`]; a lease that expired before the body finished is a warning.
#[doc(hidden)]
pub async fn synchronized_async<T, Fut>(lock: &aio::Redlock, f: impl FnOnce() -> Fut) -> Result<T>
where
    Fut: std::future::Future<Output = T>,
{
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

/// The async twin: [`aio::Redlock`](crate::aio::Redlock).
pub mod aio {
    use super::*;

    /// Async [`Redlock`](crate::Redlock): the same API with `async fn`s, every future `Send`
    /// (and `'static` on an owned clone), safe to drop at any await point: an attempt
    /// cancelled midway gives back what it was granted.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let lock = pottery::aio::Redlock::new("doc-async", [redis]);
    /// let tasks: Vec<_> = (0..8)
    ///     .map(|_| {
    ///         let lock = lock.clone();
    ///         tokio::spawn(async move {
    ///             let guard = lock.lock().await?;
    ///             guard.release().await
    ///         })
    ///     })
    ///     .collect();
    /// for t in tasks {
    ///     t.await.unwrap()?;
    /// }
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    pub struct Redlock {
        pub(super) core: Arc<Core>,
        pub(super) held: Slot,
    }

    /// A new instance: same key, masters and settings, no lease of its own.
    impl Clone for Redlock {
        fn clone(&self) -> Self {
            Redlock {
                core: Arc::clone(&self.core),
                held: Slot::default(),
            }
        }
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
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// let lock = pottery::aio::Redlock::new("printer", [redis]);
        /// assert_eq!(lock.key(), "redlock:printer");
        /// ```
        pub fn new(key: &str, masters: impl IntoIterator<Item = Redis>) -> Self {
            Redlock {
                core: Arc::new(new_core(key, masters)),
                held: Slot::default(),
            }
        }

        builder_methods!();

        /// The blocking twin, sharing this instance's imperative lease.
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// let lock = pottery::aio::Redlock::new("printer", [redis]);
        /// assert_eq!(lock.to_blocking().key(), lock.key());
        /// ```
        pub fn to_blocking(&self) -> crate::Redlock {
            crate::Redlock {
                core: Arc::clone(&self.core),
                held: Arc::clone(&self.held),
            }
        }

        /// See [`crate::Redlock::lock`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// # let lock = pottery::aio::Redlock::new("doc-alock", [redis]);
        /// let guard = lock.lock().await?;
        /// guard.release().await?;
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub async fn lock(&self) -> Result<RedlockGuard> {
            self.guarded(false).await
        }

        /// See [`crate::Redlock::lock_fenced`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// # let lock = pottery::aio::Redlock::new("doc-alock-fenced", [redis]);
        /// let guard = lock.lock_fenced().await?;
        /// assert!(guard.token().is_some());
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub async fn lock_fenced(&self) -> Result<RedlockGuard> {
            self.guarded(true).await
        }

        async fn guarded(&self, fenced: bool) -> Result<RedlockGuard> {
            match acquire(&self.core, self.core.wait_mode(), fenced).await? {
                Ok(lease) => Ok(RedlockGuard {
                    lease: Some(Arc::new(lease)),
                }),
                Err(why) => Err(self.core.missed(why)),
            }
        }

        /// See [`crate::Redlock::lock_with_watchdog`]; the extender is a Tokio task.
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// # let lock = pottery::aio::Redlock::new("doc-awd", [redis]);
        /// let guard = lock.lock_with_watchdog().await?;
        /// assert!(!guard.lost());
        /// guard.release().await?;
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub async fn lock_with_watchdog(&self) -> Result<WatchdogGuard> {
            let guard = self.lock().await?;
            let watch = Arc::new(Watch::default());
            let lease = guard
                .lease
                .clone()
                .ok_or_else(|| self.core.not_achieved())?;
            let task = tokio::spawn(watchdog(lease, Arc::clone(&watch)));
            Ok(WatchdogGuard { guard, watch, task })
        }

        /// See [`crate::Redlock::acquire`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// # let lock = pottery::aio::Redlock::new("doc-aacquire", [redis]);
        /// assert!(lock.acquire().await?);
        /// lock.release().await?;
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub async fn acquire(&self) -> Result<bool> {
            Ok(self.hold(acquire(&self.core, Wait::For(None), false).await?))
        }

        /// See [`crate::Redlock::try_acquire`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// # let lock = pottery::aio::Redlock::new("doc-atry", [redis]);
        /// assert!(lock.try_acquire().await?);
        /// lock.release().await?;
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub async fn try_acquire(&self) -> Result<bool> {
            Ok(self.hold(acquire(&self.core, Wait::Once, false).await?))
        }

        /// See [`crate::Redlock::acquire_timeout`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// # let lock = pottery::aio::Redlock::new("doc-atimeout", [redis]);
        /// assert!(lock.acquire_timeout(std::time::Duration::from_secs(1)).await?);
        /// lock.release().await?;
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub async fn acquire_timeout(&self, timeout: Duration) -> Result<bool> {
            let wait = Wait::For(Some(timeout));
            Ok(self.hold(acquire(&self.core, wait, false).await?))
        }

        /// See [`crate::Redlock::acquire_with_token`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// # let lock = pottery::aio::Redlock::new("doc-atoken", [redis]);
        /// let token = lock.acquire_with_token().await?;
        /// assert!(token >= 1);
        /// lock.release().await?;
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub async fn acquire_with_token(&self) -> Result<u64> {
            match acquire(&self.core, self.core.wait_mode(), true).await? {
                Ok(lease) => {
                    let token = lease.token.unwrap_or(0);
                    self.hold(Ok(lease));
                    Ok(token)
                }
                Err(why) => Err(self.core.missed(why)),
            }
        }

        /// See [`crate::Redlock::locked`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// # let lock = pottery::aio::Redlock::new("doc-alocked", [redis]);
        /// assert_eq!(lock.locked().await?, std::time::Duration::ZERO);
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub async fn locked(&self) -> Result<Duration> {
            match self.slot()? {
                Some(lease) => lease.locked().await,
                None => Ok(Duration::ZERO),
            }
        }

        /// See [`crate::Redlock::extend`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// # let lock = pottery::aio::Redlock::new("doc-aextend", [redis]);
        /// lock.acquire().await?;
        /// lock.extend().await?;
        /// # lock.release().await?;
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub async fn extend(&self) -> Result<()> {
            match self.slot()? {
                Some(lease) => lease.extend().await,
                None => Err(self.extend_unlocked()),
            }
        }

        /// See [`crate::Redlock::release`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// # let lock = pottery::aio::Redlock::new("doc-arelease", [redis]);
        /// assert!(lock.release().await.is_err());
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub async fn release(&self) -> Result<()> {
            match self.take_slot()? {
                Some(lease) => lease.release().await,
                None => Err(self.release_unlocked()),
            }
        }
    }

    /// Async [`RedlockGuard`](crate::RedlockGuard): owns one lease; dropping it releases the
    /// lease through a spawned task.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let lock = pottery::aio::Redlock::new("doc-aguard", [redis]);
    /// let guard: pottery::aio::RedlockGuard = lock.lock().await?;
    /// assert!(guard.locked().await? > std::time::Duration::ZERO);
    /// guard.release().await?;
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    #[must_use = "the lock is released when the guard is dropped"]
    pub struct RedlockGuard {
        lease: Option<Arc<Lease>>,
    }

    impl fmt::Debug for RedlockGuard {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("aio::RedlockGuard")
                .field("lease", &self.lease)
                .finish()
        }
    }

    impl RedlockGuard {
        fn lease(&self) -> Result<&Arc<Lease>> {
            self.lease.as_ref().ok_or_else(|| Error::Config {
                message: "the guard was released".into(),
            })
        }

        /// Releases now, reporting errors; see [`crate::RedlockGuard::release`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// # let lock = pottery::aio::Redlock::new("doc-aguard-release", [redis]);
        /// lock.lock().await?.release().await?;
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub async fn release(mut self) -> Result<()> {
            match self.lease.take() {
                Some(lease) => lease.release().await,
                None => Ok(()),
            }
        }

        /// See [`crate::RedlockGuard::locked`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// # let lock = pottery::aio::Redlock::new("doc-aguard-locked", [redis]);
        /// let guard = lock.lock().await?;
        /// assert!(guard.locked().await? > std::time::Duration::ZERO);
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub async fn locked(&self) -> Result<Duration> {
            self.lease()?.locked().await
        }

        /// See [`crate::RedlockGuard::extend`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// # let lock = pottery::aio::Redlock::new("doc-aguard-extend", [redis]);
        /// let guard = lock.lock().await?;
        /// guard.extend().await?;
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub async fn extend(&self) -> Result<()> {
            self.lease()?.extend().await
        }

        /// See [`crate::RedlockGuard::token`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// # let lock = pottery::aio::Redlock::new("doc-aguard-token", [redis]);
        /// assert_eq!(lock.lock().await?.token(), None);
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub fn token(&self) -> Option<u64> {
            self.lease.as_ref().and_then(|l| l.token)
        }
    }

    impl Drop for RedlockGuard {
        fn drop(&mut self) {
            if let Some(lease) = self.lease.take() {
                rt::spawn(async move {
                    let _ = lease.release().await;
                });
            }
        }
    }

    /// Async [`WatchdogGuard`](crate::WatchdogGuard).
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let lock = pottery::aio::Redlock::new("doc-awd-guard", [redis]);
    /// let guard: pottery::aio::WatchdogGuard = lock.lock_with_watchdog().await?;
    /// assert!(guard.locked().await? > std::time::Duration::ZERO);
    /// guard.release().await?;
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    #[must_use = "the lock is released when the guard is dropped"]
    pub struct WatchdogGuard {
        guard: RedlockGuard,
        watch: Arc<Watch>,
        task: tokio::task::JoinHandle<()>,
    }

    impl fmt::Debug for WatchdogGuard {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("aio::WatchdogGuard")
                .field("guard", &self.guard)
                .field("lost", &self.lost())
                .finish()
        }
    }

    impl WatchdogGuard {
        /// See [`crate::WatchdogGuard::lost`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// # let lock = pottery::aio::Redlock::new("doc-awd-lost", [redis]);
        /// assert!(!lock.lock_with_watchdog().await?.lost());
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub fn lost(&self) -> bool {
            self.watch.lost.load(Ordering::SeqCst)
        }

        /// See [`crate::WatchdogGuard::locked`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// # let lock = pottery::aio::Redlock::new("doc-awd-locked", [redis]);
        /// let guard = lock.lock_with_watchdog().await?;
        /// assert!(guard.locked().await? > std::time::Duration::ZERO);
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub async fn locked(&self) -> Result<Duration> {
            self.guard.locked().await
        }

        /// See [`crate::WatchdogGuard::token`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// # let lock = pottery::aio::Redlock::new("doc-awd-token", [redis]);
        /// assert_eq!(lock.lock_with_watchdog().await?.token(), None);
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub fn token(&self) -> Option<u64> {
            self.guard.token()
        }

        /// Stops the watchdog and releases, reporting errors.
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// # let lock = pottery::aio::Redlock::new("doc-awd-release", [redis]);
        /// lock.lock_with_watchdog().await?.release().await?;
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub async fn release(mut self) -> Result<()> {
            self.watch.stop();
            self.task.abort();
            match self.guard.lease.take() {
                Some(lease) => lease.release().await,
                None => Ok(()),
            }
        }
    }

    impl Drop for WatchdogGuard {
        fn drop(&mut self) {
            self.watch.stop();
            self.task.abort();
        }
    }

    /// Async [`synchronize`](crate::synchronize()): runs the future `f()` under a lease of a
    /// lock on `key`.
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
        super::synchronized_async(&configure(Redlock::new(key, masters)), f).await
    }
}
