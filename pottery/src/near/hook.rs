//! Where the near cache meets [`Redis::run`](crate::Redis) and batches: reads served or
//! filled, writes' keys invalidated before they are sent and when their reply arrives.

use std::sync::Arc;
use std::time::Duration;

use super::{Near, Plan, Touched, plan};
use crate::client::Redis;
use crate::error::Result;
use crate::exec::plan::{Op, Req};
use redis::Value;

thread_local! {
    /// A lookup's scratch: the read's identity, an encoded argument, a copy of the cached
    /// bytes (reused: a hit allocates nothing but what it hands out).
    static SCRATCH: std::cell::RefCell<Scratch> = const {
        std::cell::RefCell::new(Scratch {
            ident: Vec::new(),
            arg: String::new(),
            value: Vec::new(),
        })
    };
}

struct Scratch {
    ident: Vec<u8>,
    arg: String,
    value: Vec<u8>,
}

impl Scratch {
    /// Keeps no large buffer for the thread's life.
    fn trim(&mut self) {
        const KEEP: usize = 1 << 16;
        if self.ident.capacity() > KEEP {
            self.ident = Vec::new();
        }
        if self.arg.capacity() > KEEP {
            self.arg = String::new();
        }
        if self.value.capacity() > KEEP {
            self.value = Vec::new();
        }
    }
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
    let value = SCRATCH
        .try_with(|scratch| {
            let mut scratch = scratch.try_borrow_mut().ok()?;
            scratch.ident.clear();
            super::plan::write_ident(cmd, &mut scratch.ident);
            let value = near.get(key, &scratch.ident);
            scratch.trim();
            Some(value)
        })
        .ok()
        .flatten()
        // No buffer (a call from a thread-local's destructor, or a re-entrant lookup from a
        // decoder): the identity allocated.
        .unwrap_or_else(|| {
            let mut ident = Vec::new();
            super::plan::write_ident(cmd, &mut ident);
            near.get(key, &ident)
        });
    match value {
        Some(v) => Ok(op.finish_one(v)),
        None => Err(op),
    }
}

/// How a [`Probed`] read's result is made from its cached reply, by the reply's shape (a
/// reply of another shape is not served this way: the plan is built and looked up then).
pub(crate) enum Decoder<T> {
    /// From a bulk string's bytes, or `None` for `nil`.
    Bulk(fn(&str, Option<&[u8]>) -> Result<T>),
    /// From an integer.
    Int(fn(&str, i64) -> Result<T>),
}

/// What a lookup copied out of a cached reply (decoded after the lock is released).
enum Copied {
    Nil,
    Bytes,
    Int(i64),
}

/// A read that may be answered from the near cache before its plan is built (no command is
/// made for a hit): what the `ops!` table's blocking and async methods run when an entry's
/// plan builder returns one (see [`Probe`]); a batch builds the plan and sends it.
pub(crate) struct Probed<'k, 'q, T, A: ?Sized, B> {
    /// The key read.
    pub key: &'k str,
    /// The command's name, in capitals (`HGET`).
    pub name: &'static str,
    /// The argument after the key, encoded as the plan encodes it (pottery's JSON).
    pub arg: &'q A,
    /// The result from the cached reply (called with no lock held).
    pub decode: Decoder<T>,
    /// The plan.
    pub build: B,
}

/// What a table entry's plan builder returns, run by the blocking and async methods: the
/// result at once (a near-cache hit, [`Probed`]), or the plan.
pub(crate) trait Probe<'k, T> {
    /// The result from the near cache of `redis` if it has it, else the plan.
    #[allow(clippy::result_large_err)]
    fn probe(self, redis: &Redis) -> std::result::Result<Result<T>, Result<Op<'k, T>>>;
}

impl<'k, T> Probe<'k, T> for Op<'k, T> {
    fn probe(self, _: &Redis) -> std::result::Result<Result<T>, Result<Op<'k, T>>> {
        Err(Ok(self))
    }
}

impl<'k, T> Probe<'k, T> for Result<Op<'k, T>> {
    fn probe(self, _: &Redis) -> std::result::Result<Result<T>, Result<Op<'k, T>>> {
        Err(self)
    }
}

impl<'k, T, A, B> Probe<'k, T> for Probed<'k, '_, T, A, B>
where
    A: serde::Serialize + ?Sized,
    B: FnOnce() -> Result<Op<'k, T>>,
{
    fn probe(self, redis: &Redis) -> std::result::Result<Result<T>, Result<Op<'k, T>>> {
        if let Some(near) = redis.near()
            && let Some(done) = self.peek(near)
        {
            return Ok(done);
        }
        Err((self.build)())
    }
}

impl<'k, T, A, B> crate::batch::IntoOp<'k, T> for Probed<'k, '_, T, A, B>
where
    A: ?Sized,
    B: FnOnce() -> Result<Op<'k, T>>,
{
    fn into_op(self) -> Result<Op<'k, T>> {
        (self.build)()
    }
}

impl<T, A: serde::Serialize + ?Sized, B> Probed<'_, '_, T, A, B> {
    /// The result from the cached reply, if there is one to serve in a shape `decode` takes.
    fn peek(&self, near: &Near) -> Option<Result<T>> {
        SCRATCH
            .try_with(|scratch| {
                let mut scratch = scratch.try_borrow_mut().ok()?;
                let Scratch { ident, arg, value } = &mut *scratch;
                arg.clear();
                // An argument that does not encode: the plan says so.
                crate::codec::encode_into(self.arg, arg).ok()?;
                ident.clear();
                super::plan::push_ident(ident, self.name.as_bytes());
                super::plan::push_ident(ident, arg.as_bytes());
                value.clear();
                // Under the shard's lock: a copy, not the decoder (which may run code of
                // the caller's types).
                let bulk = matches!(self.decode, Decoder::Bulk(_));
                let copied = near.peek(self.key.as_bytes(), ident, |v| match v {
                    Value::Nil if bulk => Some(Copied::Nil),
                    Value::BulkString(b) if bulk => {
                        value.extend_from_slice(b);
                        Some(Copied::Bytes)
                    }
                    Value::Int(n) if !bulk => Some(Copied::Int(*n)),
                    _ => None,
                })?;
                let done = match (&self.decode, copied) {
                    (Decoder::Bulk(f), Copied::Nil) => f(self.key, None),
                    (Decoder::Bulk(f), Copied::Bytes) => f(self.key, Some(value)),
                    (Decoder::Int(f), Copied::Int(n)) => f(self.key, n),
                    // Not copied for this decoder (see above).
                    _ => return None,
                };
                scratch.trim();
                Some(done)
            })
            .ok()
            .flatten()
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
