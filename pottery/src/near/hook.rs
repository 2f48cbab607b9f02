//! Where the near cache meets [`Redis::run`](crate::Redis) and batches: reads served or
//! filled, writes' keys invalidated before they are sent and when their reply arrives.

use std::sync::Arc;
use std::time::Duration;

use super::arg::{Arg, Taken};
use super::front::{Front, Kind, Read};
use super::{Near, Plan, Touched, plan};
use crate::client::Redis;
use crate::error::Result;
use crate::exec::plan::{Op, Req};
use redis::Value;

thread_local! {
    /// A lookup's scratch: the read's identity (a miss's), an encoded argument (one that is
    /// not a plain string), a copy of the cached bytes (a miss's), the front table (reused: a
    /// hit allocates nothing but what it hands out).
    static SCRATCH: std::cell::RefCell<Scratch> = const {
        std::cell::RefCell::new(Scratch {
            ident: Vec::new(),
            arg: String::new(),
            value: Vec::new(),
            front: Front::new(),
        })
    };
}

struct Scratch {
    ident: Vec<u8>,
    arg: String,
    value: Vec<u8>,
    /// The thread's front table ([`super::front`]).
    front: Front,
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
            let value = if super::own::own_fills() {
                after_own_fills(near, key, &scratch.ident)
            } else {
                near.get(key, &scratch.ident)
            };
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
/// reply of another shape is not served this way: the plan is built and looked up then):
/// [`bulk`] or [`int`]. A type, not a function pointer, so that the decoder is inlined.
pub(crate) trait Decode<T> {
    /// Whether it reads bulk strings and nil (else integers).
    const BULK: bool;
    /// The result from a copied reply read at `key`, or `None` when it is of another shape.
    fn decode(&self, key: &str, kind: Kind, bytes: &[u8]) -> Option<Result<T>>;
}

/// A [`Decode`] from a bulk string's bytes, or `None` for `nil` ([`bulk`]).
pub(crate) struct Bulk<F>(F);

/// A [`Decode`] from an integer ([`int`]).
pub(crate) struct Int<F>(F);

/// Decodes a bulk string, or `None` for `nil`, with `f`.
pub(crate) fn bulk<T, F: Fn(&str, Option<Bytes<'_>>) -> Result<T>>(f: F) -> Bulk<F> {
    Bulk(f)
}

/// A cached bulk string, for a [`bulk`] decoder: its bytes, and the small integer they are
/// pottery's JSON of if they are one (read when they were copied, not at every hit).
#[derive(Clone, Copy)]
pub(crate) struct Bytes<'a> {
    bytes: &'a [u8],
    small: Option<i64>,
}

impl Bytes<'_> {
    /// The value these bytes are pottery's JSON of, read at `key`: what
    /// [`crate::exec::reply::decode`] makes of them.
    #[inline]
    pub(crate) fn decode<T: serde::de::DeserializeOwned>(self, key: &str) -> Result<T> {
        match self.small {
            Some(i) => {
                crate::codec::decode_small_int(i).map_err(|e| crate::error::Error::codec(key, e))
            }
            None => crate::exec::reply::decode(key, self.bytes),
        }
    }
}

/// Decodes an integer with `f`.
pub(crate) fn int<T, F: Fn(&str, i64) -> Result<T>>(f: F) -> Int<F> {
    Int(f)
}

impl<T, F: Fn(&str, Option<Bytes<'_>>) -> Result<T>> Decode<T> for Bulk<F> {
    const BULK: bool = true;

    // Always: a call here returns the result through memory, read back at once in another
    // width than it was written (a stall that costs as much as the rest of the hit).
    #[inline(always)]
    fn decode(&self, key: &str, kind: Kind, bytes: &[u8]) -> Option<Result<T>> {
        match kind {
            Kind::Nil => Some((self.0)(key, None)),
            Kind::Bytes => Some((self.0)(key, Some(Bytes { bytes, small: None }))),
            Kind::Small(i) => Some((self.0)(
                key,
                Some(Bytes {
                    bytes,
                    small: Some(i),
                }),
            )),
            Kind::Int(_) => None,
        }
    }
}

impl<T, F: Fn(&str, i64) -> Result<T>> Decode<T> for Int<F> {
    const BULK: bool = false;

    // Always: a call here returns the result through memory, read back at once in another
    // width than it was written (a stall that costs as much as the rest of the hit).
    #[inline(always)]
    fn decode(&self, key: &str, kind: Kind, _: &[u8]) -> Option<Result<T>> {
        match kind {
            Kind::Int(n) => Some((self.0)(key, n)),
            Kind::Nil | Kind::Bytes | Kind::Small(_) => None,
        }
    }
}

/// A read that may be answered from the near cache before its plan is built (no command is
/// made for a hit): what the `ops!` table's blocking and async methods run when an entry's
/// plan builder returns one (see [`Probe`]); a batch builds the plan and sends it.
pub(crate) struct Probed<'k, 'q, A: ?Sized, B, D> {
    /// The reading structure (which stands for its key in the front table).
    pub reader: super::Reader,
    /// The key read.
    pub key: &'k str,
    /// The command's name, in capitals (`HGET`).
    pub name: &'static str,
    /// The argument after the key, encoded as the plan encodes it (pottery's JSON).
    pub arg: &'q A,
    /// The result from the cached reply (called with no lock held): [`bulk`] or [`int`].
    pub decode: D,
    /// The plan.
    pub build: B,
}

/// A near-cache hit's result, written by [`Probe::probe`]: the value and the error apart, so
/// that the method's result is made where it is returned (moving a whole `Result<T>`, as
/// large as an [`Error`](crate::Error), through every layer costs more than the lookup).
pub(crate) struct Hit<T> {
    /// The value read.
    pub(crate) ok: Option<T>,
    /// The cached reply did not decode.
    pub(crate) err: Option<crate::Error>,
}

impl<T> Hit<T> {
    /// No hit (yet).
    pub(crate) fn new() -> Self {
        Hit {
            ok: None,
            err: None,
        }
    }

    #[inline]
    fn set(&mut self, result: Option<Result<T>>) {
        match result {
            Some(Ok(v)) => self.ok = Some(v),
            Some(Err(e)) => self.err = Some(e),
            None => {}
        }
    }
}

/// What a table entry's plan builder returns, run by the blocking and async methods: the
/// result at once (a near-cache hit, [`Probed`]), or the plan.
pub(crate) trait Probe<'k, T> {
    /// What makes the plan.
    type Plan: crate::batch::IntoOp<'k, T>;

    /// Looks in the near cache of `redis`: the result in `hit` if it has it (written there,
    /// not returned, which would copy it through every layer on the way), and in any case
    /// what makes the plan (made only when there is no hit).
    fn probe(self, redis: &Redis, hit: &mut Hit<T>) -> Self::Plan;
}

impl<'k, T> Probe<'k, T> for Op<'k, T> {
    type Plan = Self;

    fn probe(self, _: &Redis, _: &mut Hit<T>) -> Self {
        self
    }
}

impl<'k, T> Probe<'k, T> for Result<Op<'k, T>> {
    type Plan = Self;

    fn probe(self, _: &Redis, _: &mut Hit<T>) -> Self {
        self
    }
}

/// A [`Probed`] read's plan, made by its builder.
pub(crate) struct Build<B>(B);

impl<'k, T, B: FnOnce() -> Result<Op<'k, T>>> crate::batch::IntoOp<'k, T> for Build<B> {
    fn into_op(self) -> Result<Op<'k, T>> {
        (self.0)()
    }
}

impl<'k, T, A, B, D> Probe<'k, T> for Probed<'k, '_, A, B, D>
where
    A: serde::Serialize + ?Sized,
    B: FnOnce() -> Result<Op<'k, T>>,
    D: Decode<T>,
{
    type Plan = Build<B>;

    #[inline]
    fn probe(self, redis: &Redis, hit: &mut Hit<T>) -> Build<B> {
        if let Some(near) = redis.near() {
            self.peek(near, hit);
        }
        Build(self.build)
    }
}

impl<'k, T, A, B, D> crate::batch::IntoOp<'k, T> for Probed<'k, '_, A, B, D>
where
    A: ?Sized,
    B: FnOnce() -> Result<Op<'k, T>>,
{
    fn into_op(self) -> Result<Op<'k, T>> {
        (self.build)()
    }
}

impl<A: serde::Serialize + ?Sized, B, D> Probed<'_, '_, A, B, D> {
    /// The result from the cached reply, if there is one to serve in a shape `decode` takes:
    /// from this thread's front table if it holds a copy that may be served, else from the
    /// store (then copied into the front table); written in `hit`.
    #[inline]
    fn peek<T>(&self, near: &Near, hit: &mut Hit<T>)
    where
        D: Decode<T>,
    {
        // No buffer (a call from a thread-local's destructor, or a re-entrant lookup from a
        // decoder): no lookup.
        let _ = SCRATCH.try_with(|scratch| {
            let Ok(mut scratch) = scratch.try_borrow_mut() else {
                return;
            };
            let Scratch {
                ident,
                arg,
                value,
                front,
            } = &mut *scratch;
            let store = near.store();
            let mut missed = false;
            let taken = super::arg::with_plain(self.arg, |s| {
                self.look(store, front, ident, value, hit, &mut missed, Arg::Quoted(s));
            });
            match taken {
                Taken::Plain(()) | Taken::Failed => {}
                // An argument that does not encode: the plan says so.
                Taken::Encode => {
                    if crate::codec::encode_into(self.arg, arg).is_ok() {
                        let json = Arg::Json(arg.as_bytes());
                        self.look(store, front, ident, value, hit, &mut missed, json);
                    }
                }
            }
            if missed {
                scratch.trim();
            }
        });
    }

    /// [`Self::peek`] of the read whose argument is `arg`: the front table's copy, else the
    /// store's (`missed` then). Always inlined: it is the hit's code, in the two places it
    /// is called from (a call would pass the result back through memory).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn look<T>(
        &self,
        store: &super::store::Store,
        front: &mut Front,
        ident: &mut Vec<u8>,
        value: &mut Vec<u8>,
        hit: &mut Hit<T>,
        missed: &mut bool,
        arg: Arg<'_>,
    ) where
        D: Decode<T>,
    {
        let read = Read {
            reader: self.reader,
            key: self.key.as_bytes(),
            name: self.name.as_bytes(),
            arg,
        };
        // This thread has a background fill of the key under way: looked up by `hit`,
        // which waits for it first.
        if super::own::own_fills() && super::own::own_fill_of(store.id(), read.key) {
            return;
        }
        let h = super::front::front_hash(store, &read);
        if let Some((kind, bytes)) = front.get(store, h, &read, D::BULK) {
            hit.set(self.decode.decode(self.key, kind, bytes));
            return;
        }
        *missed = true;
        if let Some((kind, value)) = from_store(front, ident, value, store, h, &read, D::BULK) {
            hit.set(self.decode.decode(self.key, kind, value));
        }
    }
}

/// The cached reply to the read `ident` of `key`, on a thread that has background fills
/// ([`Near::fill_in_background`](super::Near)): none of the key's (then as usual), or a
/// reply cached and every fill of the key this thread has under way waited for and answered
/// (then looked up again). A read with nothing cached does not wait; nor does one on an
/// async runtime's thread (it is filled through the tracking connection instead).
#[inline(never)]
fn after_own_fills(near: &Near, key: &[u8], ident: &[u8]) -> Option<Value> {
    let store = near.store();
    if !super::own::own_fill_of(store.id(), key) {
        return near.get(key, ident);
    }
    let cached = store.holds(key, ident);
    if cached
        && tokio::runtime::Handle::try_current().is_err()
        && super::own::settle_own(store.id(), key)
    {
        return near.get(key, ident);
    }
    store.miss(key);
    None
}

/// The reply to `read` (front hash `h`), copied from `store` if it holds one in the shape
/// asked (a bulk string or nil if `bulk`, else an integer) into `value` (the reply's bytes),
/// and into the thread's `front` table: a front-table miss, kept out of the hit's code.
#[inline(never)]
fn from_store<'v>(
    front: &mut Front,
    ident: &mut Vec<u8>,
    value: &'v mut Vec<u8>,
    store: &super::store::Store,
    h: u64,
    read: &Read<'_>,
    bulk: bool,
) -> Option<(Kind, &'v [u8])> {
    ident.clear();
    super::plan::push_ident(ident, read.name);
    read.arg.push_ident(ident);
    let (hk, hi) = store.hashes(read.key, ident);
    value.clear();
    // Under the shard's lock: a copy, not the decoder (which may run code of the caller's
    // types).
    let (kind, stamp) = store.lookup(hk, hi, read.key, ident, false, |v, stamp| {
        let kind = match v {
            Value::Nil if bulk => Kind::Nil,
            Value::BulkString(b) if bulk => {
                value.extend_from_slice(b);
                crate::codec::small_int(b).map_or(Kind::Bytes, Kind::Small)
            }
            Value::Int(n) if !bulk => Kind::Int(*n),
            _ => return None,
        };
        Some((kind, stamp))
    })?;
    front.put(store, h, read, stamp, kind, value);
    Some((kind, value))
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
            if let Req::Cmd(cmd) = &op.req {
                if let Some(v) = near.after_own_fill(&read) {
                    return op.finish_one(v);
                }
                // Read on a pooled connection, the cache filled behind it (see there), whatever
                // the reply (a decoding error is a reply too; a failed read most likely fails
                // to fill as well).
                if let Some(room) = near.background_room() {
                    let cmd = cmd.clone();
                    let out = redis.run_direct(op, timeout);
                    near.fill_in_background(room, read, cmd);
                    return out;
                }
                if let Some(v) = crate::exec::rt::block_on(near.fill(&read, cmd)) {
                    return op.finish_one(v);
                }
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
    let mut behind = None;
    let touched = match plan(&op.req, op.repeat()) {
        Plan::Read(read) => {
            if let Req::Cmd(cmd) = &op.req {
                // On a current-thread runtime the tracking connection's task runs on
                // pottery's I/O runtime, two thread wake-ups away: a miss is read on the
                // handle's own connection and filled behind, as a blocking one is.
                let room = match on_current_thread() {
                    true => match after_own_fills_async(near, &read).await {
                        Some(v) => return op.finish_one(v),
                        None => near.background_room(),
                    },
                    false => None,
                };
                match room {
                    Some(room) => behind = Some((room, read, cmd.clone())),
                    None => {
                        if let Some(v) = fill(near, &read, cmd).await {
                            return op.finish_one(v);
                        }
                    }
                }
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
    let out = redis.run_direct_async(op).await;
    if let Some((room, read, cmd)) = behind {
        near.fill_in_background(room, read, cmd);
    }
    out
}

/// A future with its type erased: the miss path's futures are large, and every call's future
/// would carry them (and the compiler's proofs that they are `Send` would go through them).
type Boxed<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// [`Near::fill`], boxed.
fn fill<'a>(
    near: &'a Arc<Near>,
    read: &'a super::plan::Read,
    cmd: &'a redis::Cmd,
) -> Boxed<'a, Option<Value>> {
    Box::pin(near.fill(read, cmd))
}

/// [`Near::after_own_fills_async`], boxed.
fn after_own_fills_async<'a>(
    near: &'a Near,
    read: &'a super::plan::Read,
) -> Boxed<'a, Option<Value>> {
    Box::pin(near.after_own_fills_async(read))
}

/// Whether the caller runs on a current-thread Tokio runtime.
fn on_current_thread() -> bool {
    tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A copy's small integer, read when it was copied, decodes as its bytes do: the same
    /// values and the same errors, for every type a dict may hold.
    #[test]
    fn small_integers_decode_as_their_bytes() {
        fn check<T: serde::de::DeserializeOwned + std::fmt::Debug>(bytes: &[u8]) {
            let small = crate::codec::small_int(bytes);
            let copy = Bytes { bytes, small };
            let plain = Bytes { bytes, small: None };
            assert_eq!(
                format!("{:?}", copy.decode::<T>("k")),
                format!("{:?}", plain.decode::<T>("k")),
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
        let cases: &[&[u8]] = &[
            b"0",
            b"7",
            b"-1",
            b"42",
            b"-0",
            b"00",
            b"255",
            b"256",
            b"-129",
            b"999999999999999999",
            b"9999999999999999999",
            b"1.5",
            b"\"7\"",
            b"",
        ];
        for bytes in cases {
            check::<i64>(bytes);
            check::<u8>(bytes);
            check::<i8>(bytes);
            check::<u64>(bytes);
            check::<f64>(bytes);
            check::<Option<i64>>(bytes);
            check::<String>(bytes);
            check::<bool>(bytes);
            check::<serde_json::Value>(bytes);
        }
    }
}
