//! Where the near cache meets [`Redis::run`](crate::Redis) and batches: reads served or
//! filled, writes' keys invalidated before they are sent and when their reply arrives.

use std::sync::Arc;
use std::time::Duration;

use super::{Near, Plan, Touched, plan};
use crate::client::Redis;
use crate::error::Result;
use crate::exec::plan::{Op, Req};

thread_local! {
    /// The packed command of a lookup (reused: a hit allocates nothing but its value).
    static PACKED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `op` answered from the near cache, if it is a read the cache holds a reply to: no span,
/// no round trip, no allocation but the value's. Any other `op` is handed back (a cacheable
/// read counted as a miss), for [`run_blocking`] or [`run_async`].
// The op goes back by value, not boxed: a miss costs no allocation.
#[allow(clippy::result_large_err)]
pub(crate) fn hit<'k, T>(near: &Near, op: Op<'k, T>) -> std::result::Result<Result<T>, Op<'k, T>> {
    let Req::Cmd(cmd) = &op.req else {
        return Err(op);
    };
    // Every command with such a key is of class `Read` (`plan` would make it a `Plan::Read`).
    let Some(key) = super::plan::cached_read_key(cmd) else {
        return Err(op);
    };
    let value = PACKED
        .try_with(|packed| {
            let mut packed = packed.try_borrow_mut().ok()?;
            packed.clear();
            cmd.write_packed_command(&mut packed);
            Some(near.get(key, &packed))
        })
        .ok()
        .flatten()
        // No buffer (a call from a thread-local's destructor, or a re-entrant lookup, which
        // none makes): the packed command allocated.
        .unwrap_or_else(|| near.get(key, &cmd.get_packed_command()));
    match value {
        Some(v) => Ok(op.finish_one(v)),
        None => Err(op),
    }
}

/// [`Redis::run_within`] on a near-cached handle, for an `op` that [`hit`] did not answer.
pub(crate) fn run_blocking<T>(
    redis: &Redis,
    near: &Arc<Near>,
    op: Op<'_, T>,
    timeout: Option<Duration>,
) -> Result<T> {
    match plan(&op.req, op.repeat()) {
        Plan::Read(read) => {
            if let Req::Cmd(cmd) = &op.req
                && let Some(v) = crate::exec::rt::block_on(near.fill(&read, cmd))
            {
                return op.finish_one(v);
            }
            redis.run_direct(op, timeout)
        }
        Plan::Write(touched) => {
            near.touch(&touched);
            let out = redis.run_direct(op, timeout);
            near.touch(&touched);
            out
        }
        Plan::Pass => redis.run_direct(op, timeout),
    }
}

/// [`Redis::run_async`] on a near-cached handle, for an `op` that [`hit`] did not answer.
pub(crate) async fn run_async<T>(redis: &Redis, near: &Arc<Near>, op: Op<'_, T>) -> Result<T> {
    // One call to the server awaited below (each awaited future adds to this one's size).
    let touched = match plan(&op.req, op.repeat()) {
        Plan::Read(read) => {
            if let Req::Cmd(cmd) = &op.req
                // Boxed: the fill's future is large, and every call's future would carry it.
                && let Some(v) = Box::pin(near.fill(&read, cmd)).await
            {
                return op.finish_one(v);
            }
            None
        }
        Plan::Write(touched) => {
            near.touch(&touched);
            Some(touched)
        }
        Plan::Pass => None,
    };
    // A write's keys are invalidated again when it ends, even if this future is dropped.
    let _after = touched.as_ref().map(|touched| TouchAgain { near, touched });
    redis.run_direct_async(op).await
}

/// Invalidates a write's keys when dropped: after its reply, or when its future is dropped
/// with the write possibly applied.
pub(crate) struct TouchAgain<'a> {
    pub(crate) near: &'a Near,
    pub(crate) touched: &'a Touched,
}

impl Drop for TouchAgain<'_> {
    fn drop(&mut self) {
        self.near.touch(self.touched);
    }
}
