//! Retry classes: what may be done with an operation whose outcome is unknown, and the retry
//! policy of one call (until a deadline, with growing, jittered waits). What kind of failure an
//! error is lives with the error type ([`crate::error`]); what to do about it lives here.

use std::time::Duration;

use super::plan::{Head, Repeat};
use crate::error::{Error, Result, transient_server_error};

pub(crate) fn is_noscript(e: &redis::RedisError) -> bool {
    e.code() == Some("NOSCRIPT")
}

/// Why an attempt failed, as far as retrying is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// The request was certainly not executed: any operation may be retried.
    NotExecuted,
    /// The connection broke after the request was sent: only reads and idempotent writes may
    /// be retried.
    Unknown,
    /// Not a failover: the error is the answer (a timeout included: the response timeout is
    /// the caller's bound on waiting).
    Final,
}

fn outcome(e: &redis::RedisError, connecting: bool) -> Outcome {
    use redis::ErrorKind;
    if e.is_timeout() {
        return Outcome::Final;
    }
    if e.is_connection_refusal() {
        return Outcome::NotExecuted;
    }
    if connecting {
        // Nothing was sent. A master the sentinels cannot name yet (a failover under way), a
        // server still loading, a refused or reset connection: worth another try. Wrong
        // credentials or settings are not.
        return match e.kind() {
            ErrorKind::AuthenticationFailed
            | ErrorKind::InvalidClientConfig
            | ErrorKind::EmptySentinelList
            | ErrorKind::RESP3NotSupported
            | ErrorKind::Parse
            | ErrorKind::Client => Outcome::Final,
            ErrorKind::Server(kind) if !transient_server_error(kind) => Outcome::Final,
            _ => Outcome::NotExecuted,
        };
    }
    match e.kind() {
        ErrorKind::MasterNameNotFoundBySentinel | ErrorKind::NoValidReplicasFoundBySentinel => {
            Outcome::NotExecuted
        }
        // The server refused the request without running it (a MOVED or ASK here is a
        // redirect redis-rs did not follow: its one retry was spent, and it refreshed its
        // slots).
        ErrorKind::Server(kind) if transient_server_error(kind) => Outcome::NotExecuted,
        ErrorKind::ClusterConnectionNotFound => Outcome::NotExecuted,
        _ if e.code() == Some("NOREPLICAS") || e.code() == Some("BUSY") => Outcome::NotExecuted,
        _ if e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error() => {
            Outcome::Unknown
        }
        _ => Outcome::Final,
    }
}

/// Whether a server's error reply says the command was refused without running (a failover
/// under way), so that it may be sent again whatever its class.
pub(crate) fn not_executed(e: &redis::RedisError) -> bool {
    outcome(e, false) == Outcome::NotExecuted
}

/// An attempt's failure: the error, and whether it happened while connecting (before
/// anything was sent).
pub(crate) struct Failed {
    pub(crate) error: redis::RedisError,
    pub(crate) connecting: bool,
}

/// Why an attempt returned no reply.
pub(crate) enum Failure {
    /// The server or the connection failed: maybe retried.
    Failed(Failed),
    /// Anything else (no Tokio runtime, say): returned as it is.
    Other(Error),
}

impl From<Failed> for Failure {
    fn from(f: Failed) -> Failure {
        Failure::Failed(f)
    }
}

impl Failure {
    /// A failure to get a connection: nothing was sent.
    pub(crate) fn connecting(e: Error) -> Failure {
        match e {
            Error::Redis { source, .. } => Failure::not_connected(source),
            other => Failure::Other(other),
        }
    }

    /// A connection that could not be made: nothing was sent.
    pub(crate) fn not_connected(error: redis::RedisError) -> Failure {
        Failure::Failed(Failed {
            error,
            connecting: true,
        })
    }

    /// A failure after the request was (maybe) sent.
    pub(crate) fn sent(error: redis::RedisError) -> Failure {
        Failure::Failed(Failed {
            error,
            connecting: false,
        })
    }
}

/// What to do after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Try again after this pause.
    Wait(Duration),
    /// Return the error: it is the answer, or the retry window closed.
    GiveUp,
    /// Return [`Error::MaybeApplied`]: a write that must not repeat was maybe applied.
    MaybeApplied,
}

/// The retry policy of one call: until a deadline, with waits growing from 25 ms to 500 ms.
pub(crate) struct Retry {
    /// When retrying stops: set at the first failure from `window`, or given.
    deadline: Option<std::time::Instant>,
    /// How long retrying may go on after the first failure.
    window: Option<Duration>,
    attempt: u32,
}

impl Retry {
    /// A policy that retries for `window` from the first failure (zero: never). Nothing is
    /// computed until a failure: a call that succeeds at once pays nothing for it.
    pub(crate) fn new(window: Duration) -> Retry {
        Retry {
            deadline: None,
            window: (!window.is_zero()).then_some(window),
            attempt: 0,
        }
    }

    /// What to do after an attempt of an operation of class `op` failed with `f`.
    pub(crate) fn next(&mut self, op: Repeat, f: &Failed) -> Next {
        match outcome(&f.error, f.connecting) {
            Outcome::Final => return Next::GiveUp,
            Outcome::Unknown if op == Repeat::Once => return Next::MaybeApplied,
            Outcome::Unknown | Outcome::NotExecuted => {}
        }
        let Some(wait) = self.pause() else {
            return Next::GiveUp;
        };
        // redis-rs's error (no key), and only one that is retried: a connection's, not a reply's.
        tracing::debug!(attempt = self.attempt, ?wait, error = %f.error, "retrying");
        crate::observe::count!("pottery.client.retries");
        Next::Wait(wait)
    }

    /// A policy that gives up at `deadline`.
    pub(crate) fn until(deadline: std::time::Instant) -> Retry {
        Retry {
            deadline: Some(deadline),
            window: None,
            attempt: 0,
        }
    }

    /// The next pause (growing from 25 ms to 500 ms, ±25 % jitter so that many callers do
    /// not retry in step), or `None` when the next attempt would start past the deadline.
    pub(crate) fn pause(&mut self) -> Option<Duration> {
        if self.deadline.is_none()
            && let Some(window) = self.window
        {
            self.deadline = Some(std::time::Instant::now() + window);
        }
        let deadline = self.deadline?;
        let base = Duration::from_millis(25) * 2u32.saturating_pow(self.attempt.min(5));
        let wait = base.min(Duration::from_millis(500));
        let wait = wait.mul_f64(0.75 + crate::exec::jitter::unit() * 0.5);
        self.attempt += 1;
        if std::time::Instant::now() + wait >= deadline {
            return None;
        }
        Some(wait)
    }
}

impl Retry {
    /// How long to wait before trying `op` again after `failure`, or the error the call
    /// returns.
    pub(crate) fn after(&mut self, op: Head<'_>, failure: Failure) -> Result<Duration> {
        match failure {
            Failure::Other(e) => Err(e),
            Failure::Failed(f) => match self.next(op.repeat(), &f) {
                Next::Wait(wait) => Ok(wait),
                Next::GiveUp => Err(final_error(op, f, false)),
                Next::MaybeApplied => Err(final_error(op, f, op.retries)),
            },
        }
    }
}

/// The error a failed call returns.
pub(crate) fn final_error(op: Head<'_>, f: Failed, maybe_applied: bool) -> Error {
    if maybe_applied {
        return Error::MaybeApplied {
            key: op.key.to_owned(),
            source: f.error,
        };
    }
    Error::redis(op.key, op.expected, f.error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::plan::command_class;

    fn class(args: &[&str]) -> Repeat {
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        command_class(&cmd)
    }

    #[test]
    fn commands_are_classed_by_what_a_repeat_would_do() {
        for read in [
            &["HGET", "k", "f"][..],
            &["LRANGE", "k", "0", "-1"],
            &["BITFIELD_RO", "k"],
        ] {
            assert_eq!(class(read), Repeat::Read, "{read:?}");
        }
        for same in [
            &["HSET", "k", "f", "v"][..],
            &["SADD", "k", "m"],
            &["DEL", "k"],
            &["SET", "k", "v", "PX", "10"],
            &["SDIFFSTORE", "k", "k", "o"],
            &["BITFIELD", "k", "SET", "u1", "3", "1"],
            &["sunionstore", "d", "a", "d"],
        ] {
            assert_eq!(class(same), Repeat::Idempotent, "{same:?}");
        }
        for once in [
            &["HINCRBY", "k", "f", "1"][..],
            &["RPUSH", "k", "v"],
            &["LPOP", "k"],
            &["SPOP", "k"],
            &["SET", "k", "v", "NX", "PX", "10"],
            &["SET", "k", "v", "get"],
            &["SDIFFSTORE", "d", "a", "d"],
            &["BITFIELD", "k", "INCRBY", "u8", "0", "1"],
            &["LTRIM", "k", "1", "-1"],
            &["SOMETHING", "new"],
        ] {
            assert_eq!(class(once), Repeat::Once, "{once:?}");
        }
    }

    fn failed(error: redis::RedisError, connecting: bool) -> Failed {
        Failed { error, connecting }
    }

    #[test]
    fn only_writes_that_may_repeat_are_retried_after_an_unknown_outcome() {
        let reset =
            || redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        let refused =
            || redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        let timeout =
            || redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut));
        let loading = || {
            redis::RedisError::from((
                redis::ErrorKind::Server(redis::ServerErrorKind::BusyLoading),
                "LOADING",
            ))
        };
        let window = Duration::from_secs(60);
        // Sent, connection reset: unknown outcome.
        assert!(matches!(
            Retry::new(window).next(Repeat::Idempotent, &failed(reset(), false)),
            Next::Wait(_)
        ));
        assert!(matches!(
            Retry::new(window).next(Repeat::Read, &failed(reset(), false)),
            Next::Wait(_)
        ));
        assert_eq!(
            Retry::new(window).next(Repeat::Once, &failed(reset(), false)),
            Next::MaybeApplied
        );
        // Refused, or failed while connecting, or LOADING: certainly not executed.
        for op in [Repeat::Once, Repeat::Idempotent] {
            assert!(matches!(
                Retry::new(window).next(op, &failed(refused(), false)),
                Next::Wait(_)
            ));
            assert!(matches!(
                Retry::new(window).next(op, &failed(reset(), true)),
                Next::Wait(_)
            ));
            assert!(matches!(
                Retry::new(window).next(op, &failed(loading(), false)),
                Next::Wait(_)
            ));
            // A timeout is the answer (the caller's bound), for every class.
            assert_eq!(
                Retry::new(window).next(op, &failed(timeout(), false)),
                Next::GiveUp
            );
        }
        // Retries off.
        assert_eq!(
            Retry::new(Duration::ZERO).next(Repeat::Read, &failed(refused(), false)),
            Next::GiveUp
        );
    }
}
