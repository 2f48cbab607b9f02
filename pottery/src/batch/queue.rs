//! The queue of a batch: each operation's plan and where its result goes ([`Pending`]).

use std::sync::{Arc, Mutex};

use redis::Value;

use crate::client::Redis;
use crate::error::{Error, Result};
use crate::exec::plan::Repeat;
use crate::exec::plan::{Op, Req};
use crate::sync::lock;

/// Hands a reply (or the error that replaced it) to a queued operation's decoder and its
/// [`Pending`].
pub(super) type Deliver<'a> = Box<dyn FnOnce(Result<Value>) + Send + 'a>;

/// An operation waiting in a batch.
pub(super) struct Queued<'a> {
    pub(super) key: &'a str,
    pub(super) expected: &'static str,
    pub(super) req: Req,
    pub(super) repeat: Repeat,
    pub(super) retries: bool,
    /// Taken when the reply (or an error) is handed over; see the `Drop` impl.
    pub(super) reply_to: Option<Deliver<'a>>,
    /// Whether the request may have reached the server: set when a pipeline holding it is
    /// sent, cleared when a server refused it without running it.
    pub(super) sent: bool,
}

/// An operation dropped without its result (its batch, or the future of `execute`, was
/// dropped) gets one that says whether it may have run: a write that was sent may have been
/// applied; anything else did not run.
impl Drop for Queued<'_> {
    fn drop(&mut self) {
        if let Some(reply_to) = self.reply_to.take() {
            let e = if self.sent && self.repeat != Repeat::Read {
                Error::MaybeApplied {
                    key: self.key.to_owned(),
                    source: redis::RedisError::from(std::io::Error::new(
                        std::io::ErrorKind::Interrupted,
                        "the batch was dropped after its request was sent",
                    )),
                }
            } else {
                Error::NotExecuted {
                    key: self.key.to_owned(),
                }
            };
            reply_to(Err(e));
        }
    }
}

impl Queued<'_> {
    /// The keys the request names (a script's keys, else the operation's key).
    pub(super) fn keys(&self) -> Vec<&[u8]> {
        match &self.req {
            Req::Eval { keys, .. } if !keys.is_empty() => keys.iter().map(Vec::as_slice).collect(),
            _ => vec![self.key.as_bytes()],
        }
    }

    pub(super) fn fail(self, e: Error) {
        self.reply(Err(e));
    }

    /// Hands the operation its reply, or the error that replaced it.
    pub(super) fn reply(mut self, result: Result<Value>) {
        if let Some(reply_to) = self.reply_to.take() {
            reply_to(result);
        }
    }
}

/// The queue of a batch: where the per-structure views put their operations. (Public only to
/// appear in [`Batchable`](crate::Batchable)'s signature; it cannot be named outside pottery.)
pub struct Queue<'a> {
    pub(super) redis: Redis,
    pub(super) ops: Mutex<Vec<Queued<'a>>>,
}

impl std::fmt::Debug for Queue<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("redis", &self.redis.shown())
            .field("len", &self.len())
            .finish()
    }
}

impl<'a> Queue<'a> {
    pub(super) fn new(redis: &Redis) -> Self {
        Queue {
            redis: redis.clone(),
            ops: Mutex::new(Vec::new()),
        }
    }

    pub(super) fn len(&self) -> usize {
        lock(&self.ops).len()
    }

    /// Queues `op` of a structure on `owner`; an op that could not be made (a value that does
    /// not encode, say) or that needs no request is answered at once.
    pub(crate) fn push<T: Send + 'a>(&self, owner: &Redis, op: Result<Op<'a, T>>) -> Pending<T> {
        let op = match op {
            Ok(op) => op,
            Err(e) => {
                let key = e.key().unwrap_or_default().to_owned();
                return Pending::ready(key, Err(e));
            }
        };
        let pending = Pending::new(op.key);
        if !(owner.same_handle(&self.redis) || owner.shown() == self.redis.shown()) {
            pending.fill(Err(Error::Config {
                message: format!(
                    "the structure at key `{}` lives on {}, and the batch sends to {}",
                    op.key,
                    owner.shown(),
                    self.redis.shown()
                ),
            }));
            return pending;
        }
        let repeat = op.repeat();
        let Op {
            key,
            expected,
            req,
            decode,
            retries,
            name: _,
        } = op;
        if let Req::Nothing = req {
            pending.fill(decode.apply(key, Value::Nil));
            return pending;
        }
        let slot = Arc::clone(&pending.slot);
        let deliver: Deliver<'a> = Box::new(move |reply: Result<Value>| {
            let result = reply.and_then(|v| decode.apply(key, v));
            *lock(&slot) = Some(result);
        });
        lock(&self.ops).push(Queued {
            key,
            expected,
            req,
            repeat,
            retries,
            reply_to: Some(deliver),
            sent: false,
        });
        pending
    }

    pub(super) fn take(self) -> (Redis, Vec<Queued<'a>>) {
        (
            self.redis,
            self.ops.into_inner().unwrap_or_else(|p| p.into_inner()),
        )
    }
}

/// The result of one operation queued in a [`Batch`](crate::Batch) or an [`aio::Batch`](crate::aio::Batch), filled when the
/// batch runs: the same `Result<T>` the operation's own method returns when called alone.
///
/// ```
/// # let redis = pottery::testing::doctest_redis();
/// # let d: pottery::RedisDict<String, i64> = pottery::RedisDict::random(&redis)?;
/// let batch = pottery::Batch::new(&redis);
/// let old = batch.on(&d).insert("a".into(), 1);
/// let len = batch.on(&d).len();
/// batch.execute()?;
/// assert_eq!(old.get()?, None);
/// assert_eq!(len.get()?, 1);
/// # d.clear()?;
/// # Ok::<(), pottery::Error>(())
/// ```
///
/// A `Pending` may be dropped unread: its operation still runs, and its error, if any, is
/// ignored.
pub struct Pending<T> {
    pub(super) key: String,
    pub(super) slot: Arc<Mutex<Option<Result<T>>>>,
}

impl<T> std::fmt::Debug for Pending<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("key", &self.key)
            .field("ready", &self.is_ready())
            .finish()
    }
}

impl<T> Pending<T> {
    pub(super) fn new(key: &str) -> Self {
        Pending {
            key: key.to_owned(),
            slot: Arc::new(Mutex::new(None)),
        }
    }

    pub(super) fn ready(key: String, result: Result<T>) -> Self {
        Pending {
            key,
            slot: Arc::new(Mutex::new(Some(result))),
        }
    }

    pub(super) fn fill(&self, result: Result<T>) {
        *lock(&self.slot) = Some(result);
    }

    /// The operation's result. Before the batch ran (or when it was dropped, or its
    /// `execute` failed before sending the operation) it is [`Error::NotExecuted`]. When the
    /// future of an async `execute` is dropped after the request was sent (a `timeout`, a
    /// `select!`, an aborted task), a write is [`Error::MaybeApplied`]: the server may still
    /// run it.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let s: pottery::RedisSet<u32> = pottery::RedisSet::random(&redis)?;
    /// let batch = pottery::Batch::new(&redis);
    /// let added = batch.on(&s).insert(7);
    /// batch.execute()?;
    /// assert!(added.get()?);
    /// # s.clear()?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn get(self) -> Result<T> {
        let taken = lock(&self.slot).take();
        taken.unwrap_or_else(|| Err(Error::NotExecuted { key: self.key }))
    }

    /// Whether the result is there (the batch ran, or the operation was answered without
    /// asking the server — an empty `extend`, a value that does not encode).
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let d: pottery::RedisDict<String, i64> = pottery::RedisDict::random(&redis)?;
    /// let batch = pottery::Batch::new(&redis);
    /// let len = batch.on(&d).len();
    /// assert!(!len.is_ready());
    /// batch.execute()?;
    /// assert!(len.is_ready());
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn is_ready(&self) -> bool {
        lock(&self.slot).is_some()
    }

    /// The key of the operation.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// let d: pottery::RedisDict<String, i64> = pottery::RedisDict::new(&redis, "doc-prices");
    /// let batch = pottery::Batch::new(&redis);
    /// assert_eq!(batch.on(&d).len().key(), "doc-prices");
    /// ```
    pub fn key(&self) -> &str {
        &self.key
    }
}
