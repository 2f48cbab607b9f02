//! Where the near cache meets [`Redis::run`](crate::Redis) and batches: reads served or
//! filled, writes' keys invalidated before they are sent and when their reply arrives.

use std::sync::Arc;
use std::time::Duration;

use super::{Near, Plan, Touched, plan};
use crate::client::Redis;
use crate::error::Result;
use crate::exec::plan::{Op, Req};

/// [`Redis::run_within`] on a near-cached handle.
pub(crate) fn run_blocking<T>(
    redis: &Redis,
    near: &Arc<Near>,
    op: Op<'_, T>,
    timeout: Option<Duration>,
) -> Result<T> {
    match plan(&op.req, op.repeat()) {
        Plan::Read(read) => {
            if let Some(v) = near.get(&read) {
                return op.finish(None, vec![v]);
            }
            if let Req::Cmd(cmd) = &op.req
                && let Some(v) = crate::exec::rt::block_on(near.fill(&read, cmd))
            {
                return op.finish(None, vec![v]);
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

/// [`Redis::run_async`] on a near-cached handle.
pub(crate) async fn run_async<T>(redis: &Redis, near: &Arc<Near>, op: Op<'_, T>) -> Result<T> {
    match plan(&op.req, op.repeat()) {
        Plan::Read(read) => {
            if let Some(v) = near.get(&read) {
                return op.finish(None, vec![v]);
            }
            if let Req::Cmd(cmd) = &op.req
                && let Some(v) = near.fill(&read, cmd).await
            {
                return op.finish(None, vec![v]);
            }
            redis.run_direct_async(op).await
        }
        Plan::Write(touched) => {
            // Invalidated again when the write ends, even if this future is dropped.
            let _after = TouchAgain {
                near,
                touched: &touched,
            };
            near.touch(&touched);
            redis.run_direct_async(op).await
        }
        Plan::Pass => redis.run_direct_async(op).await,
    }
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
