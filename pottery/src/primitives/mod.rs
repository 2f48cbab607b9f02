//! Distributed primitives over N independent masters: Redlock and NextId.
//!
//! Both send one request to every master at once and decide as soon as the replies settle the
//! question (a majority agreed, or a majority can no longer agree). Errors are sorted in two
//! kinds: *transient* ones (refused, timed out, dropped, loading, failing over), after which a
//! later try may succeed, and *permanent* ones (authentication, `NOPERM`, a database out of
//! range, corrupt data), which no amount of waiting repairs and which are reported at once
//! when they make a majority impossible.

pub mod nextid;
pub mod queue;
pub mod ratelimit;
pub mod redlock;
pub mod semaphore;

use std::time::Duration;

use redis::{ErrorKind, RedisError};

use crate::client::Redis;
use crate::error::Error;
use crate::exec::plan::Op;
use crate::exec::race::Racing;

/// Settings that can never work, refused before any I/O: `problem` (if any) as an
/// [`Error::Config`] naming the primitive `kind` and its `key`.
pub(crate) fn refuse_settings(
    kind: &str,
    key: &str,
    problem: Option<impl std::fmt::Display>,
) -> Result<(), Error> {
    match problem {
        Some(p) => Err(Error::Config {
            message: format!("{kind} `{key}`: {p}"),
        }),
        None => Ok(()),
    }
}

/// What a fan-out to every master brought back.
pub(crate) struct Fanout<T> {
    /// The replies, in the order they came.
    pub(crate) replies: Vec<T>,
    /// For each reply, the index of the master that sent it.
    pub(crate) from: Vec<usize>,
    /// Masters that failed: refused, timed out, or answered an error.
    pub(crate) errors: Vec<Error>,
    /// Masters whose reply was not waited for.
    pub(crate) pending: usize,
}

impl<T> Fanout<T> {
    /// How many replies satisfy `f`.
    pub(crate) fn count(&self, f: impl Fn(&T) -> bool) -> usize {
        self.replies.iter().filter(|r| f(r)).count()
    }

    /// The first permanent error, if the permanent errors alone leave fewer than `quorum`
    /// masters able to say yes.
    pub(crate) fn permanent_failure(&mut self, n: usize, quorum: usize) -> Option<Error> {
        let permanent = self.errors.iter().filter(|e| !is_transient(e)).count();
        if permanent > 0 && n - permanent < quorum {
            let i = self.errors.iter().position(|e| !is_transient(e))?;
            return Some(self.errors.swap_remove(i));
        }
        None
    }

    /// Whether the failed masters alone make a majority impossible.
    pub(crate) fn unreachable(&self, n: usize, quorum: usize) -> bool {
        n - self.errors.len() < quorum
    }
}

/// The majority of `n`: more than half.
pub(crate) fn quorum(n: usize) -> usize {
    n / 2 + 1
}

/// Whether a later try may succeed where this error failed.
pub(crate) fn is_transient(e: &Error) -> bool {
    match e {
        Error::Redis { source, .. } | Error::MaybeApplied { source, .. } => {
            crate::error::redis_transient(source)
        }
        Error::NotDurable { .. } => true,
        _ => false,
    }
}

/// The redis-rs error inside `e`, for [`Error::QuorumIsImpossible`]'s list.
pub(crate) fn as_redis_error(e: &Error) -> RedisError {
    match e {
        Error::Redis { source, .. } | Error::MaybeApplied { source, .. } => source.clone(),
        other => RedisError::from((ErrorKind::Client, "master failed", other.to_string())),
    }
}

/// A copy of `e` for the other callers of a shared round (errors are not `Clone`).
pub(crate) fn echo(e: &Error) -> Error {
    match e {
        Error::Redis { key, source } => Error::Redis {
            key: key.clone(),
            source: source.clone(),
        },
        Error::Codec { key, source } => Error::Codec {
            key: key.clone(),
            source: source.clone(),
        },
        Error::MaybeApplied { key, source } => Error::MaybeApplied {
            key: key.clone(),
            source: source.clone(),
        },
        Error::NotDurable { key, acked, wanted } => Error::NotDurable {
            key: key.clone(),
            acked: *acked,
            wanted: *wanted,
        },
        Error::QuorumNotAchieved { key, masters } => Error::QuorumNotAchieved {
            key: key.clone(),
            masters: masters.clone(),
        },
        Error::QuorumIsImpossible {
            key,
            masters,
            errors,
        } => Error::QuorumIsImpossible {
            key: key.clone(),
            masters: masters.clone(),
            errors: errors.clone(),
        },
        Error::Config { message } => Error::Config {
            message: message.clone(),
        },
        other => Error::Config {
            message: other.to_string(),
        },
    }
}

/// Sends `op(master)` to every master at once, each bounded by `timeout`, and collects replies
/// until `settled` says the outcome is known (or all have answered). Requests still pending
/// at that point may or may not reach their master (redis-rs does not write a queued request
/// whose caller stopped waiting): settle early only where either is fine, and wait for every
/// master where a write must land everywhere (giving a lease back).
pub(crate) async fn fan_out<'a, T, F, S>(
    masters: &'a [Redis],
    timeout: Duration,
    op: F,
    mut settled: S,
) -> Fanout<T>
where
    T: Send + 'a,
    F: Fn(&'a Redis) -> Op<'a, T>,
    S: FnMut(&Fanout<T>) -> bool,
{
    let mut out = Fanout {
        replies: Vec::new(),
        from: Vec::new(),
        errors: Vec::new(),
        pending: masters.len(),
    };
    // One master: its answer is the outcome (no set of futures to keep).
    if let [master] = masters {
        out.pending = 0;
        match try_master(master, 1, op(master), timeout).await {
            Ok(v) => {
                out.replies.push(v);
                out.from.push(0);
            }
            Err(e) => out.errors.push(e),
        }
        return out;
    }
    let mut pending = Racing::new();
    for (i, m) in masters.iter().enumerate() {
        let op = op(m);
        pending.push(async move { (i, try_master(m, masters.len(), op, timeout).await) });
    }
    while let Some((i, reply)) = pending.next().await {
        out.pending -= 1;
        match reply {
            Ok(v) => {
                out.replies.push(v);
                out.from.push(i);
            }
            Err(e) => out.errors.push(e),
        }
        if out.pending > 0 && settled(&out) {
            break;
        }
    }
    out
}

/// One try of `op` on `master` (one of `masters` masters), without the handle's retries (the
/// quorum rules retry and give back on their own), bounded by `timeout`. One master under a
/// blocking call is a plain synchronous round trip on a pooled connection, without the async
/// machinery (nothing else could run meanwhile anyway).
pub(crate) async fn try_master<T: Send>(
    master: &Redis,
    masters: usize,
    op: Op<'_, T>,
    timeout: Duration,
) -> Result<T, Error> {
    let op = op.without_retries();
    if masters == 1 && !master.is_cluster() && crate::exec::rt::in_blocking_shell() {
        return master.run_within(op, Some(timeout));
    }
    let key = op.key;
    // Boxed: a quorum call nests the whole client (spans, near cache, retries) inside the
    // lock's or id's own future, and a caller's future around both would otherwise exceed
    // rustc's layout depth (an `async fn` under `#[synchronize]` did). One allocation per
    // master and attempt, beside a round trip.
    match tokio::time::timeout(timeout, Box::pin(master.run_async(op))).await {
        Ok(reply) => reply,
        Err(_) => Err(Error::Redis {
            key: Some(key.to_owned()),
            source: RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("{master:?} did not answer within {timeout:?}"),
            )),
        }),
    }
}

/// The masters' names for errors (passwords redacted).
pub(crate) fn names(masters: &[Redis]) -> Vec<String> {
    masters.iter().map(|m| format!("{m:?}")).collect()
}
