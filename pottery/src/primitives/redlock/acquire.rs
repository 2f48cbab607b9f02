//! Acquiring: one attempt on every master at once, fencing tokens, and the waiting loop.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::Value;

use super::core::{Core, POLL_MS, Reply, STRING, Wait, attempt_reply, int_reply};
use super::lease::Lease;
use super::waiting::{Turn, Wakeups};
use crate::codec::CodecError;
use crate::error::{Error, Result};
use crate::exec::plan::{Op, script};
use crate::exec::rt;
use crate::primitives::{Fanout, fan_out, names};

script!(FENCE_RAISE, "fence_raise.lua", Idempotent);
script!(ACQUIRE_FENCED, "redlock_acquire_fenced.lua", Once);
script!(ACQUIRE, "redlock_acquire.lua", Once);

// ---------------------------------------------------------------------------------------------
// Acquiring

/// Gives back, in the background, what masters may have granted to an attempt whose future
/// was dropped before it finished.
pub(super) struct Undo {
    pub(super) core: Arc<Core>,
    pub(super) uuid: Option<String>,
    /// When the attempt's lease would end on the servers.
    pub(super) ends: Instant,
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

pub(super) enum Outcome {
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
pub(super) enum Ask {
    /// pottery's plain `SET NX PX`: the cheapest, and all an uncontended lock needs.
    Plain,
    /// The acquire script: on a "no", the holder's remaining lease (and a lock key with no
    /// expiry is reported as corrupt).
    Script,
    /// The fenced acquire script.
    Fenced,
}

pub(super) async fn attempt(core: &Arc<Core>, ask: Ask) -> Result<Outcome> {
    let fenced = ask == Ask::Fenced;
    let uuid = crate::shell::keys::uuid4();
    let started = Instant::now();
    let mut undo = Undo {
        core: Arc::clone(core),
        uuid: Some(uuid.clone()),
        ends: started + core.ttl + core.drift(),
    };
    let (n, q) = (core.n(), core.q());
    let ttl_ms = core.ttl_ms().to_string();
    // The scripts' keys and arguments (a plain `SET` needs neither).
    let script_args = || vec![uuid.clone().into_bytes(), ttl_ms.clone().into_bytes()];
    let (script, keys, args) = match ask {
        Ask::Plain => (&ACQUIRE, Vec::new(), Vec::new()),
        Ask::Script => (&ACQUIRE, vec![core.key.clone().into_bytes()], script_args()),
        Ask::Fenced => (
            &ACQUIRE_FENCED,
            vec![
                core.key.clone().into_bytes(),
                core.fence_key.clone().into_bytes(),
            ],
            script_args(),
        ),
    };
    let granted = |r: &Reply| matches!(r, Reply::Granted(_));
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
        // Zero when the attempt took the whole lease: not acquired (checked below).
        let validity = core.ttl.saturating_sub(core.drift() + started.elapsed());
        if !validity.is_zero() {
            let fence = if fenced {
                raise_fences(core, &fanout).await?
            } else {
                Fence::Unfenced
            };
            let token = match fence {
                Fence::Unfenced => None,
                Fence::Raised(token) => Some(token),
                // The attempt does not count: what was granted is given back below.
                Fence::NoMajority => return give_back(core, undo, uuid, fanout).await,
            };
            undo.uuid = None;
            return Ok(Outcome::Acquired {
                uuid,
                token,
                until: started + validity,
            });
        }
    }
    give_back(core, undo, uuid, fanout).await
}

/// An attempt that did not get the lock: gives back what was granted, and says why.
async fn give_back(
    core: &Arc<Core>,
    mut undo: Undo,
    uuid: String,
    mut fanout: Fanout<Reply>,
) -> Result<Outcome> {
    let (n, q) = (core.n(), core.q());
    let granted = |r: &Reply| matches!(r, Reply::Granted(_));
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
pub(super) fn corrupt_fence(core: &Core, e: Error) -> Error {
    match &e {
        Error::Redis { source, .. } if source.code() == Some("CORRUPT") => Error::codec(
            &core.fence_key,
            CodecError::new("the fence counter is not a decimal number (delete it)"),
        ),
        _ => e,
    }
}

/// What raising the fence counters gave a granted attempt.
pub(super) enum Fence {
    /// Not a fenced attempt.
    Unfenced,
    /// The token: written back to a majority.
    Raised(u64),
    /// The raise did not reach a majority: the attempt does not count.
    NoMajority,
}

/// The fencing token of a granted fenced attempt: the largest counter in the quorum, written
/// back to a majority so that the majority of any later acquisition sees it.
pub(super) async fn raise_fences(core: &Core, granted: &Fanout<Reply>) -> Result<Fence> {
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
        // The script only ever increments from 0: a negative counter was written by
        // someone else.
        return u64::try_from(token).map(Fence::Raised).map_err(|_| {
            Error::codec(
                &core.fence_key,
                CodecError::new(format!(
                    "the fence counter is negative ({token}): delete it"
                )),
            )
        });
    }
    if let Some(e) = raised.permanent_failure(n, q) {
        return Err(e);
    }
    Ok(Fence::NoMajority)
}

/// Takes a lease: waits for this process's turn, then attempts, waking on releases, on the
/// holder's expiry and on the polling fallback, until acquired or out of time.
/// What an acquisition ended with: a lease, or why not.
pub(super) type Taken = std::result::Result<Lease, Missed>;

/// Why an acquisition ended without a lease.
pub(super) enum Missed {
    /// Held by another holder (the masters answered), after waiting this long.
    Busy(Duration),
    /// The last attempt got no majority of answers.
    NoQuorum,
}

impl Core {
    /// The error of a lock call that ended without a lease.
    pub(super) fn missed(&self, why: Missed) -> Error {
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

pub(super) async fn acquire(core: &Arc<Core>, wait: Wait, fenced: bool) -> Result<Taken> {
    let span = crate::observe::operation(core.masters.first(), "Redlock.acquire", &core.key);
    let result = crate::observe::instrument(&span, acquire_in_span(core, wait, fenced)).await;
    crate::observe::finish(&span, &result);
    if let Ok(Err(missed)) = &result {
        if let Missed::Busy(_) = missed {
            crate::observe::count!("pottery.lock.busy");
        }
        crate::observe::error_type(
            &span,
            match missed {
                Missed::Busy(_) => crate::ErrorKind::LockBusy,
                Missed::NoQuorum => crate::ErrorKind::Unavailable,
            },
        );
    }
    result
}

/// [`acquire`], in its span.
async fn acquire_in_span(core: &Arc<Core>, wait: Wait, fenced: bool) -> Result<Taken> {
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
    if let Wait::For(_) = wait {
        crate::observe::event!("waiting for the turn among this process's callers of the lock");
    }
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
        crate::observe::event!(
            held = hint.is_some(),
            "the lock is held elsewhere or unreachable; waiting"
        );
        if wakeups.is_none() && unreachable_since.is_none() {
            // Listen for releases first, then look again: a release in between is not missed.
            wakeups = Some(Wakeups::subscribe(&core.key, &core.masters, core.master_timeout).await);
            continue;
        }
        let mut pause = Duration::from_millis(crate::exec::jitter::between(POLL_MS.0, POLL_MS.1));
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
