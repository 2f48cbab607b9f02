//! The description of a lock (key, masters, settings) and its scripts.

use std::sync::Arc;
use std::time::Duration;

use redis::Value;

use super::waiting::{Local, local_for};
use crate::client::Redis;
use crate::codec::CodecError;
use crate::error::{Error, Result};
use crate::exec::plan::Op;
use crate::primitives::{Fanout, as_redis_error, fan_out, names, quorum};

/// Key prefix, as pottery.
pub const KEY_PREFIX: &str = "redlock";
pub(super) const STRING: &str = "string";
pub(super) const CLOCK_DRIFT_FACTOR: f64 = 0.01;
/// The shortest lease that leaves room for pottery's drift and a round trip.
pub(super) const MIN_LEASE: Duration = Duration::from_millis(10);
/// The longest lease (Redis takes any `PX`, but a lease of more than 49 days is a mistake).
pub(super) const MAX_LEASE_MS: u64 = u32::MAX as u64;
/// The polling fallback while waiting: a random pause in this range (milliseconds).
pub(super) const POLL_MS: (u64, u64) = (50, 200);

pub(super) fn int_reply(key: &str, v: Value) -> Result<i64> {
    crate::exec::reply::int(key, v)
}

/// A master's answer to an acquire attempt.
pub(super) enum Reply {
    /// Granted; the fence counter's value for a fenced attempt.
    Granted(i64),
    /// Held by somebody else for this many more milliseconds.
    Held(i64),
}

pub(super) fn attempt_reply(key: &str, v: Value) -> Result<Reply> {
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
    pub(super) key: String,
    pub(super) fence_key: String,
    pub(super) masters: Vec<Redis>,
    pub(super) ttl: Duration,
    pub(super) num_extensions: Option<u32>,
    pub(super) blocking: bool,
    pub(super) timeout: Option<Duration>,
    pub(super) raise_on_redis_errors: bool,
    pub(super) master_timeout: Duration,
    pub(super) unreachable_timeout: Duration,
    pub(super) local: Arc<Local>,
}

impl Core {
    pub(super) fn ttl_ms(&self) -> u64 {
        u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX)
    }

    /// pottery's drift: ttl × 1 % + 2 ms.
    pub(super) fn drift(&self) -> Duration {
        self.ttl.mul_f64(CLOCK_DRIFT_FACTOR) + Duration::from_millis(2)
    }

    pub(super) fn n(&self) -> usize {
        self.masters.len()
    }

    pub(super) fn q(&self) -> usize {
        quorum(self.n())
    }

    /// Settings that can never work are refused before any I/O.
    pub(super) fn check(&self) -> Result<()> {
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
        crate::primitives::refuse_settings("Redlock", &self.key, problem)
    }

    pub(super) fn not_achieved(&self) -> Error {
        Error::QuorumNotAchieved {
            key: self.key.clone(),
            masters: names(&self.masters),
        }
    }

    pub(super) fn impossible(&self, errors: &[Error]) -> Error {
        Error::QuorumIsImpossible {
            key: self.key.clone(),
            masters: names(&self.masters),
            errors: errors.iter().map(as_redis_error).collect(),
        }
    }

    /// `QuorumIsImpossible` when asked for and more than half the masters failed; a
    /// permanent error (authentication, `NOPERM`…) whenever it rules out a majority.
    pub(super) fn check_masters_up<T>(&self, fanout: &mut Fanout<T>) -> Result<()> {
        if let Some(e) = fanout.permanent_failure(self.n(), self.q()) {
            return Err(e);
        }
        if self.raise_on_redis_errors && fanout.errors.len() > self.n() / 2 {
            return Err(self.impossible(&fanout.errors));
        }
        Ok(())
    }

    pub(super) fn script_op<'a>(
        &'a self,
        script: &'static crate::exec::plan::Script,
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
    pub(super) async fn read_for_uuid(
        &self,
        script: &'static crate::exec::plan::Script,
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

    pub(super) fn wait_mode(&self) -> Wait {
        if self.blocking {
            Wait::For(self.timeout)
        } else {
            Wait::Once
        }
    }
}

pub(super) fn new_core(key: &str, masters: impl IntoIterator<Item = Redis>) -> Core {
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

/// How long a lock call waits.
#[derive(Clone, Copy)]
pub(super) enum Wait {
    /// One attempt.
    Once,
    /// Until acquired, or for at most this long.
    For(Option<Duration>),
}
