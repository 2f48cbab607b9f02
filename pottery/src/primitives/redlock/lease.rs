//! One holder's lease, and the writes about it (release, extension) on every master: retried
//! until the lease ends, settled at a majority, finished in the background.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OwnedSemaphorePermit;

use super::core::Core;
use crate::client::Redis;
use crate::codec::CodecError;
use crate::error::{Error, Result};
use crate::exec::plan::script;
use crate::exec::rt;
use crate::primitives::{as_redis_error, is_transient, names, try_master};
use crate::sync::lock;

script!(RELEASE, "redlock_release.lua", Once);
script!(EXTEND, "redlock_extend.lua", Idempotent);
script!(LOCKED, "redlock_locked.lua", Read);

/// A compare-by-uuid write: its script, and how to read a 0.
#[derive(Clone, Copy)]
pub(super) struct UuidWrite {
    pub(super) script: &'static crate::exec::plan::Script,
    /// A release: a 0 after a try whose outcome is unknown means the lease is gone from that
    /// master (that try removed it, or it ran out), which is what was asked.
    pub(super) gone_is_done: bool,
}

pub(super) const RELEASE_WRITE: UuidWrite = UuidWrite {
    script: &RELEASE,
    gone_is_done: true,
};

pub(super) const EXTEND_WRITE: UuidWrite = UuidWrite {
    script: &EXTEND,
    gone_is_done: false,
};

/// How one master settled a compare-by-uuid write.
pub(super) enum Settled {
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
pub(super) struct Written {
    pub(super) done: usize,
    pub(super) not_held: usize,
    pub(super) unknown: Vec<Error>,
    pub(super) failed: Vec<Error>,
}

impl Written {
    /// Counts one master's outcome.
    fn add(&mut self, settled: Settled) {
        match settled {
            Settled::Done => self.done += 1,
            Settled::NotHeld => self.not_held += 1,
            Settled::Unknown(e) => self.unknown.push(e),
            Settled::Failed(e) => self.failed.push(e),
        }
    }
}

/// How many masters have finished their first try of a write (answered, failed or timed out),
/// and a wake-up for whoever waits for them.
#[derive(Default)]
pub(super) struct FirstTries {
    done: std::sync::atomic::AtomicUsize,
    wake: tokio::sync::Notify,
}

/// Runs `write` on master `i` until it answers, trying again after transient failures
/// (refused, reset, timed out — a stall longer than `master_timeout` —, loading, failing
/// over) until `deadline`. `sent`: an earlier try may have reached the master.
pub(super) async fn settle_on(
    core: Arc<Core>,
    i: usize,
    write: UuidWrite,
    args: Arc<[Vec<u8>]>,
    deadline: Instant,
    mut sent: bool,
    first_tries: Option<Arc<FirstTries>>,
) -> Settled {
    let Some(master) = core.masters.get(i) else {
        return Settled::NotHeld;
    };
    let mut retry = crate::exec::retry::Retry::until(deadline);
    let mut first_tries = first_tries;
    loop {
        let op = core.script_op(write.script, args.to_vec());
        let answer = try_master(master, core.n(), op, core.master_timeout).await;
        if let Some(firsts) = first_tries.take() {
            firsts.done.fetch_add(1, Ordering::SeqCst);
            firsts.wake.notify_one();
        }
        match answer {
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
                        let redis = core.masters.first();
                        tracing::debug!(
                            key = crate::observe::event_key(redis, &core.key),
                            ?wait,
                            error = %crate::observe::event_error(redis, &e),
                            "retrying a lock write"
                        );
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
// One lease

/// One holder's lease: everything that belongs to it and to nobody else.
pub(crate) struct Lease {
    pub(super) core: Arc<Core>,
    pub(super) uuid: String,
    pub(super) token: Option<u64>,
    pub(super) extensions: AtomicU32,
    /// Local estimate of when the lease ends (already less pottery's drift).
    pub(super) until: Mutex<Instant>,
    /// The local turn, when this lease was taken with it.
    pub(super) turn: Mutex<Option<OwnedSemaphorePermit>>,
}

impl Lease {
    pub(super) fn new(
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

    pub(super) fn give_back_turn(&self) {
        if let Some(permit) = lock(&self.turn).take() {
            self.core.local.set_held_until(None);
            drop(permit);
        }
    }

    /// The remaining validity by pottery's formula: the smallest remaining TTL in the quorum,
    /// minus drift and the time asking took.
    pub(super) async fn locked(&self) -> Result<Duration> {
        let core = &self.core;
        let started = Instant::now();
        let mut fanout = core
            .read_for_uuid(&LOCKED, vec![self.uuid.clone().into_bytes()], |p| *p > 0)
            .await;
        if fanout.count(|p| *p > 0) >= core.q() {
            let least = fanout.replies.iter().copied().filter(|p| *p > 0).min();
            let least =
                Duration::from_millis(least.and_then(|l| u64::try_from(l).ok()).unwrap_or(0));
            // pottery's formula; a validity that ran out is zero (lost), exactly.
            return Ok(least.saturating_sub(core.drift() + started.elapsed()));
        }
        core.check_masters_up(&mut fanout)?;
        Ok(Duration::ZERO)
    }

    /// A holder's extension: at most `num_extensions` of them, as pottery.
    pub(super) async fn extend(&self) -> Result<()> {
        let core = &self.core;
        let done = self.extensions.load(Ordering::SeqCst);
        if core.num_extensions.is_some_and(|max| done >= max) {
            return Err(Error::TooManyExtensions {
                key: core.key.clone(),
                masters: names(&core.masters),
            });
        }
        self.extend_by_watchdog().await?;
        self.extensions.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// A watchdog's extension: not counted against `num_extensions` (a watchdog holds until
    /// its guard is released).
    pub(super) async fn extend_by_watchdog(&self) -> Result<()> {
        let core = &self.core;
        let started = Instant::now();
        let args = vec![
            self.uuid.clone().into_bytes(),
            core.ttl_ms().to_string().into_bytes(),
        ];
        let written = core
            .write_for_uuid(&core.all(), EXTEND_WRITE, args, self.ends())
            .await;
        core.judge(written, "extension", || Error::ExtendUnlockedLock {
            key: core.key.clone(),
            masters: names(&core.masters),
        })?;
        let until = started + core.ttl.saturating_sub(core.drift());
        *lock(&self.until) = until;
        if lock(&self.turn).is_some() {
            core.local.set_held_until(Some(until));
        }
        Ok(())
    }

    /// When the lease ends on the servers (at the latest, by the local estimate).
    pub(super) fn ends(&self) -> Instant {
        *lock(&self.until) + self.core.drift() * 2
    }

    /// Gives the lease back. A master that does not answer is tried again (the release is a
    /// compare-and-delete of this lease's uuid: repeating it is harmless) until the lease
    /// ends or the retry window closes; an outcome still unknown then is
    /// [`Error::LockOutcomeUnknown`], never [`Error::ReleaseUnlockedLock`].
    pub(super) async fn release(&self) -> Result<()> {
        let span =
            crate::observe::operation(self.core.masters.first(), "Redlock.release", &self.core.key);
        let result = crate::observe::instrument(&span, self.release_in_span()).await;
        crate::observe::finish(&span, &result);
        result
    }

    /// [`Lease::release`], in its span.
    async fn release_in_span(&self) -> Result<()> {
        let core = &self.core;
        let written = core.release_as(&self.uuid, &core.all(), self.ends()).await;
        self.give_back_turn();
        core.judge(written, "release", || Error::ReleaseUnlockedLock {
            key: core.key.clone(),
            masters: names(&core.masters),
        })
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

/// Writes about one lease on every master (releases and extensions).
impl Core {
    /// Gives back `uuid`'s lease, which ends on the servers by `ends`, on the masters `on`
    /// (indices): retried through lost connections, stalls and `NOSCRIPT` until the lease
    /// ends or the retry window closes, and finished in the background where a majority
    /// settled the outcome first.
    pub(super) async fn release_as(
        self: &Arc<Self>,
        uuid: &str,
        on: &[usize],
        ends: Instant,
    ) -> Written {
        self.write_for_uuid(on, RELEASE_WRITE, vec![uuid.as_bytes().to_vec()], ends)
            .await
    }

    /// Every master's index.
    pub(super) fn all(&self) -> Vec<usize> {
        (0..self.n()).collect()
    }

    /// Until when a write about a lease that ends on the servers at `ends` is worth retrying:
    /// not past its end (the servers forget it then anyway), nor past the masters' longest
    /// retry window ([`RedisBuilder::retry_timeout`](crate::RedisBuilder::retry_timeout)).
    pub(super) fn write_deadline(&self, ends: Instant) -> Instant {
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
    pub(super) async fn write_for_uuid(
        self: &Arc<Self>,
        on: &[usize],
        write: UuidWrite,
        args: Vec<Vec<u8>>,
        ends: Instant,
    ) -> Written {
        let deadline = self.write_deadline(ends);
        let args: Arc<[Vec<u8>]> = args.into();
        // One master to write on (one master in all, or the one that granted a failed
        // attempt): nothing settles the outcome before that master does, so it is awaited
        // here, without the race and the first-try bookkeeping below.
        if let [i] = *on {
            let mut out = Written::default();
            out.add(settle_on(Arc::clone(self), i, write, args, deadline, false, None).await);
            return out;
        }
        let firsts = Arc::new(FirstTries::default());
        let settle = |i, sent, firsts| {
            settle_on(
                Arc::clone(self),
                i,
                write,
                Arc::clone(&args),
                deadline,
                sent,
                firsts,
            )
        };
        let mut pending = crate::exec::race::Racing::new();
        for &i in on {
            let settle = settle(i, false, Some(Arc::clone(&firsts)));
            pending.push(async move { (i, settle.await) });
        }
        let mut left: Vec<usize> = on.to_vec();
        let mut out = Written::default();
        let (n, q) = (self.n(), self.q());
        // Settled once a majority decided and every master had its first try: a master that
        // answers is never left holding a lease that was given back (a new attempt right after
        // would find it taken), and one that does not answer goes on in the background.
        loop {
            let decided = out.done >= q || out.not_held + out.failed.len() > n - q;
            if left.is_empty() || (decided && firsts.done.load(Ordering::SeqCst) >= on.len()) {
                break;
            }
            tokio::select! {
                next = pending.next() => {
                    let Some((i, settled)) = next else { break };
                    left.retain(|&j| j != i);
                    out.add(settled);
                }
                () = firsts.wake.notified() => {}
            }
        }
        drop(pending);
        // Those still trying were maybe sent: a 0 from them may mean "given back already".
        for i in left {
            let settle = settle(i, true, None);
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
    /// when masters that did not answer could have made a majority; else `unlocked()`.
    pub(super) fn judge(
        &self,
        mut w: Written,
        action: &'static str,
        unlocked: impl FnOnce() -> Error,
    ) -> Result<()> {
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
        Err(unlocked())
    }
}

/// The lease a lock instance holds through pottery's imperative calls (`acquire` … `release`).
pub(super) type Slot = Arc<Mutex<Option<Arc<Lease>>>>;
