//! Distributed primitives over N independent masters: Redlock and NextId.

pub mod nextid;
pub mod redlock;

use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use redis::RedisError;

use crate::error::Error;
use crate::op::Op;
use crate::redis::Redis;

/// What a fan-out to every master brought back.
pub(crate) struct Fanout<T> {
    /// Replies that counted as a "yes".
    pub(crate) yes: Vec<T>,
    /// Masters that failed: refused, timed out, or answered an error.
    pub(crate) errors: Vec<RedisError>,
}

/// The majority of `n`: more than half.
pub(crate) fn quorum(n: usize) -> usize {
    n / 2 + 1
}

fn as_redis_error(master: &Redis, e: Error) -> RedisError {
    match e {
        Error::Redis { source, .. } => source,
        other => RedisError::from((
            redis::ErrorKind::Client,
            "master failed",
            format!("{master:?}: {other}"),
        )),
    }
}

/// Sends `op(master)` to every master at once, each bounded by `timeout`, and collects replies
/// until `stop_after` of them count as "yes" (or all have answered). Requests still in flight
/// at that point have been written already; their replies are not waited for.
pub(crate) async fn fan_out<'a, T, F, A>(
    masters: &'a [Redis],
    timeout: Duration,
    op: F,
    accept: A,
    stop_after: Option<usize>,
) -> Fanout<T>
where
    T: Send + 'a,
    F: Fn(&'a Redis) -> Op<'a, T>,
    A: Fn(&T) -> bool,
{
    let mut pending: FuturesUnordered<_> = masters
        .iter()
        .map(|m| {
            let op = op(m);
            async move { (m, tokio::time::timeout(timeout, m.run_async(op)).await) }
        })
        .collect();
    let mut out = Fanout {
        yes: Vec::new(),
        errors: Vec::new(),
    };
    while let Some((master, reply)) = pending.next().await {
        match reply {
            Ok(Ok(v)) => {
                if accept(&v) {
                    out.yes.push(v);
                }
            }
            Ok(Err(e)) => out.errors.push(as_redis_error(master, e)),
            Err(_) => out.errors.push(RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("{master:?} did not answer within {timeout:?}"),
            ))),
        }
        if stop_after.is_some_and(|n| out.yes.len() >= n) {
            break;
        }
    }
    out
}

/// The masters' names for errors (passwords redacted).
pub(crate) fn names(masters: &[Redis]) -> Vec<String> {
    masters.iter().map(|m| format!("{m:?}")).collect()
}
