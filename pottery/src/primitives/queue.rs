//! ReliableQueue: at-least-once jobs with a visibility timeout, on a Redis stream.
//!
//! # Layout
//! Two streams with one hash tag (one cluster slot): `queue:{<name>}` holds the jobs, each
//! entry one field `v` with the job in pottery's JSON; `queue:{<name>}:dead` holds the dead
//! letters (fields `v`, `id` — the job's id in the queue — and `deliveries`). Consumers
//! read through the consumer group `pottery`, created on first use; each process is one
//! consumer (`<pid>-<random>`).
//!
//! # Why a stream (and not BLMOVE between lists)
//! A stream's consumer group already keeps, per delivered job, who has it, since when
//! (its idle time) and how many times it was delivered: the visibility timeout is "idle
//! longer than it", `max_deliveries` compares the delivery counter, and a consumer that
//! dies leaves its jobs in the group's pending list where any other consumer reclaims them.
//! With lists the same needs a processing list, a sorted set of deadlines and a hash of
//! counters kept in step, and duplicates of one payload cannot be told apart.
//!
//! # Delivery
//! [`pop`](ReliableQueue::pop) runs one script that first reclaims a job whose visibility
//! timeout passed (or moves it to the dead letters once delivered `max_deliveries` times),
//! else reads a new one. With nothing ready it waits server-side (`XREADGROUP … BLOCK`, on a
//! connection of its own, never the shared multiplexed one), in slices of at most half a
//! visibility timeout so that expired jobs are reclaimed while it waits. A delivery is
//! acknowledged ([`ack`](Delivery::ack)), given back for redelivery at once
//! ([`nack`](Delivery::nack)), or kept longer ([`extend`](Delivery::extend)); each of these
//! acts only if the delivery is still the current one (this consumer, this delivery count),
//! so a consumer whose visibility timeout passed cannot acknowledge a later delivery. A
//! delivery dropped without any of them, or whose process died, is delivered again once
//! the visibility timeout has passed. Expired jobs are looked at by `pop`: a job moves to
//! the dead letters at the first `pop` after its last delivery expired.

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use redis::Value;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::client::Redis;
use crate::error::{Error, Result};
use crate::exec::plan::{Op, script};
use crate::exec::reply::{bulk, decode, encode, int, length, unexpected};
use crate::exec::rt;
use crate::sync::lock;

script!(TAKE, "queue_take.lua", Once);
script!(SETTLE, "queue_settle.lua", Once);
script!(PUSH, "queue_push.lua", Once);
script!(REQUEUE, "queue_requeue.lua", Once);

/// Key prefix: a queue named `jobs` is the stream `queue:{jobs}`.
pub const KEY_PREFIX: &str = "queue";
/// The consumer group every pottery consumer reads through.
pub const GROUP: &str = "pottery";
/// The visibility timeout unless told otherwise.
pub const DEFAULT_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(30);
/// How many deliveries a job gets before it becomes a dead letter, unless told otherwise.
pub const DEFAULT_MAX_DELIVERIES: u64 = 5;
const STREAM: &str = "stream";
/// The longest single server-side wait.
const MAX_SLICE: Duration = Duration::from_secs(2);

/// This process's consumer name.
static CONSUMER: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{}-{:08x}",
        std::process::id(),
        crate::exec::jitter::between(0, u64::from(u32::MAX))
    )
});

/// A job as read: its id, payload and delivery count.
struct Raw {
    id: String,
    payload: Vec<u8>,
    deliveries: u64,
}

fn text(key: &str, v: Value) -> Result<String> {
    let bytes = bulk(key, v)?.unwrap_or_default();
    String::from_utf8(bytes)
        .map_err(|e| unexpected(key, "an id", &Value::BulkString(e.into_bytes())))
}

fn raw_reply(key: &str, v: Value) -> Result<Option<Raw>> {
    let Value::Array(items) = v else {
        return Err(unexpected(key, "an array", &v));
    };
    if items.is_empty() {
        return Ok(None);
    }
    let [id, payload, deliveries]: [Value; 3] = items.try_into().map_err(|items: Vec<Value>| {
        unexpected(key, "{id, payload, deliveries}", &Value::Array(items))
    })?;
    Ok(Some(Raw {
        id: text(key, id)?,
        payload: bulk(key, payload)?.unwrap_or_default(),
        deliveries: crate::exec::reply::count(key, int(key, deliveries)?)?,
    }))
}

/// An `XREADGROUP … BLOCK` reply: nil, or one stream with (at most) one entry.
fn read_reply(key: &str, v: Value) -> Result<Option<Raw>> {
    let streams = match v {
        Value::Nil => return Ok(None),
        Value::Array(streams) => streams,
        Value::Map(pairs) => pairs
            .into_iter()
            .map(|(k, v)| Value::Array(vec![k, v]))
            .collect(),
        other => return Err(unexpected(key, "a stream read", &other)),
    };
    for stream in streams {
        let Value::Array(mut kv) = stream else {
            return Err(unexpected(key, "[stream, entries]", &stream));
        };
        let Some(Value::Array(entries)) = kv.pop() else {
            return Err(unexpected(key, "[stream, entries]", &Value::Array(kv)));
        };
        if let Some(entry) = entries.into_iter().next() {
            let (id, payload) = entry_fields(key, entry)?;
            return Ok(Some(Raw {
                id,
                payload: payload.unwrap_or_default(),
                deliveries: 1,
            }));
        }
    }
    Ok(None)
}

/// One stream entry: its id and its `v` field.
fn entry_fields(key: &str, entry: Value) -> Result<(String, Option<Vec<u8>>)> {
    let (id, fields) = entry_parts(key, entry)?;
    Ok((
        id,
        fields.into_iter().find(|(f, _)| f == b"v").map(|(_, v)| v),
    ))
}

/// A stream entry's fields, in order.
type Fields = Vec<(Vec<u8>, Vec<u8>)>;

fn entry_parts(key: &str, entry: Value) -> Result<(String, Fields)> {
    let Value::Array(parts) = entry else {
        return Err(unexpected(key, "[id, fields]", &entry));
    };
    let [id, fields]: [Value; 2] = parts
        .try_into()
        .map_err(|p: Vec<Value>| unexpected(key, "[id, fields]", &Value::Array(p)))?;
    let flat: Vec<Value> = match fields {
        Value::Array(f) => f,
        Value::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        other => return Err(unexpected(key, "entry fields", &other)),
    };
    let mut out = Vec::new();
    let mut it = flat.into_iter();
    while let (Some(f), Some(v)) = (it.next(), it.next()) {
        out.push((
            bulk(key, f)?.unwrap_or_default(),
            bulk(key, v)?.unwrap_or_default(),
        ));
    }
    Ok((text(key, id)?, out))
}

/// What to do with a delivery.
#[derive(Clone, Copy)]
enum Settle {
    Ack,
    Extend,
    Nack,
}

/// The queue's description, shared by its clones and deliveries.
pub(crate) struct Core<T> {
    pub(crate) redis: Redis,
    /// The jobs' stream, `queue:{<name>}`.
    pub(crate) key: String,
    dead: String,
    visibility: Duration,
    max_deliveries: u64,
    _types: PhantomData<fn(T) -> T>,
}

crate::shell::clone_core!(Core<T> { redis, key, dead, visibility, max_deliveries });

/// A job that was delivered `max_deliveries` times without being acknowledged.
#[derive(Clone, Debug, PartialEq)]
pub struct DeadLetter<T> {
    /// Its id in the dead-letter stream.
    pub id: String,
    /// Its id in the queue when it died.
    pub job_id: String,
    /// How many times it was delivered.
    pub deliveries: u64,
    /// The job.
    pub value: T,
}

impl<T> Core<T> {
    fn new(redis: &Redis, name: &str) -> Self {
        Core {
            redis: redis.clone(),
            key: format!("{KEY_PREFIX}:{{{name}}}"),
            dead: format!("{KEY_PREFIX}:{{{name}}}:dead"),
            visibility: DEFAULT_VISIBILITY_TIMEOUT,
            max_deliveries: DEFAULT_MAX_DELIVERIES,
            _types: PhantomData,
        }
    }

    fn ms(d: Duration) -> String {
        u64::try_from(d.as_millis()).unwrap_or(u64::MAX).to_string()
    }

    fn check(&self) -> Result<()> {
        let problem = if self.visibility.as_millis() == 0 {
            "the visibility timeout is shorter than 1 ms"
        } else if self.max_deliveries == 0 {
            "max_deliveries is 0"
        } else {
            return Ok(());
        };
        Err(Error::Config {
            message: format!("ReliableQueue `{}`: {problem}", self.key),
        })
    }

    fn keys(&self) -> Vec<Vec<u8>> {
        vec![
            self.key.clone().into_bytes(),
            self.dead.clone().into_bytes(),
        ]
    }

    /// The plan: `scripts/queue_push.lua` (`PUSH`); `XLEN`.
    fn push_many_plan<'a>(&self, values: impl IntoIterator<Item = &'a T>) -> Result<Op<'_, usize>>
    where
        T: Serialize + 'a,
    {
        let args = values
            .into_iter()
            .map(|v| encode(&self.key, v))
            .collect::<Result<Vec<_>>>()?;
        if args.is_empty() {
            let mut cmd = redis::cmd("XLEN");
            cmd.arg(&self.key);
            return Ok(Op::cmd(&self.key, STREAM, cmd, length));
        }
        Ok(Op::eval(
            &self.key,
            STREAM,
            &PUSH,
            vec![self.key.clone().into_bytes()],
            args,
            length,
        ))
    }

    /// The plan: `XLEN`.
    fn len_plan(&self) -> Op<'_, usize> {
        let mut cmd = redis::cmd("XLEN");
        cmd.arg(&self.key);
        Op::cmd(&self.key, STREAM, cmd, length)
    }

    /// The plan: `XLEN`.
    fn dead_len_plan(&self) -> Op<'_, usize> {
        let mut cmd = redis::cmd("XLEN");
        cmd.arg(&self.dead);
        Op::cmd(&self.dead, STREAM, cmd, length)
    }

    /// The plan: `XRANGE`.
    fn dead_letters_plan(&self, count: usize) -> Op<'_, Vec<DeadLetter<T>>>
    where
        T: DeserializeOwned,
    {
        let mut cmd = redis::cmd("XRANGE");
        cmd.arg(&self.dead)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(count.max(1));
        Op::cmd(&self.dead, STREAM, cmd, |key, v| {
            let Value::Array(entries) = v else {
                return Err(unexpected(key, "stream entries", &v));
            };
            entries
                .into_iter()
                .map(|e| {
                    let (id, fields) = entry_parts(key, e)?;
                    let field = |name: &[u8]| {
                        fields
                            .iter()
                            .find(|(f, _)| f == name)
                            .map(|(_, v)| v.as_slice())
                    };
                    let value = decode(key, field(b"v").unwrap_or_default())?;
                    let job_id =
                        String::from_utf8_lossy(field(b"id").unwrap_or_default()).into_owned();
                    let deliveries = std::str::from_utf8(field(b"deliveries").unwrap_or_default())
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| {
                            Error::codec(
                                key,
                                crate::codec::CodecError::new(
                                    "a dead letter without its delivery count",
                                ),
                            )
                        })?;
                    Ok(DeadLetter {
                        id,
                        job_id,
                        deliveries,
                        value,
                    })
                })
                .collect()
        })
    }

    /// The plan: `scripts/queue_requeue.lua` (`REQUEUE`).
    fn requeue_dead_letters_plan(&self, count: usize) -> Op<'_, usize> {
        Op::eval(
            &self.key,
            STREAM,
            &REQUEUE,
            self.keys(),
            vec![count.to_string().into_bytes()],
            length,
        )
    }

    /// The plan: `UNLINK`.
    fn clear_plan(&self) -> Op<'_, ()> {
        let mut cmd = redis::cmd("UNLINK");
        cmd.arg(&self.key).arg(&self.dead);
        Op::cmd(&self.key, STREAM, cmd, |_, _| Ok(()))
    }

    /// The plan: `scripts/queue_take.lua` (`TAKE`).
    fn take_op_plan(&self) -> Op<'_, Option<Raw>> {
        Op::eval(
            &self.key,
            STREAM,
            &TAKE,
            self.keys(),
            vec![
                GROUP.into(),
                CONSUMER.clone().into_bytes(),
                Self::ms(self.visibility).into_bytes(),
                self.max_deliveries.to_string().into_bytes(),
            ],
            raw_reply,
        )
    }

    /// The plan: `XREADGROUP`.
    fn block_op_plan(&self, slice: Duration) -> Op<'_, Option<Raw>> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(GROUP)
            .arg(CONSUMER.as_str())
            .arg("COUNT")
            .arg(1)
            .arg("BLOCK")
            .arg(Self::ms(slice).parse::<u64>().unwrap_or(1).max(1))
            .arg("STREAMS")
            .arg(&self.key)
            .arg(">");
        Op::cmd(&self.key, STREAM, cmd, read_reply)
    }

    /// The plan: `scripts/queue_settle.lua` (`SETTLE`).
    fn settle_op_plan(&self, id: &str, deliveries: u64, action: Settle) -> Op<'_, bool> {
        let action = match action {
            Settle::Ack => "ack",
            Settle::Extend => "extend",
            Settle::Nack => "nack",
        };
        Op::eval(
            &self.key,
            STREAM,
            &SETTLE,
            vec![self.key.clone().into_bytes()],
            vec![
                GROUP.into(),
                CONSUMER.clone().into_bytes(),
                id.as_bytes().to_vec(),
                deliveries.to_string().into_bytes(),
                action.into(),
                Self::ms(self.visibility).into_bytes(),
            ],
            |key, v| Ok(int(key, v)? == 1),
        )
    }

    async fn run<U: Send>(&self, op: Op<'_, U>) -> Result<U> {
        if rt::in_blocking_shell() {
            self.redis.run(op)
        } else {
            self.redis.run_async(op).await
        }
    }

    /// How long one server-side wait may last: within the wait, half a visibility timeout
    /// (expired jobs are reclaimed between waits), 2 s, and half the response timeout.
    fn slice(&self, left: Duration) -> Duration {
        let mut slice = left.min(self.visibility / 2).min(MAX_SLICE);
        if let Some(t) = self.redis.response_timeout() {
            slice = slice.min(t / 2);
        }
        slice.max(Duration::from_millis(1))
    }
}

impl<T: DeserializeOwned + Send + 'static> Core<T> {
    fn delivery(self: &Arc<Self>, raw: Raw) -> Result<Job<T>> {
        Ok(Job {
            value: decode(&self.key, &raw.payload)?,
            core: Arc::clone(self),
            id: raw.id,
            deliveries: raw.deliveries,
        })
    }

    /// A job, waiting server-side up to `wait` for one.
    async fn pop(self: &Arc<Self>, wait: Duration) -> Result<Option<Job<T>>> {
        self.check()?;
        let deadline = Instant::now() + wait;
        loop {
            if let Some(raw) = self.run(self.take_op_plan()).await? {
                return self.delivery(raw).map(Some);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let slice = self.slice(left);
            match self.block(slice).await {
                Ok(Some(raw)) => return self.delivery(raw).map(Some),
                Ok(None) => {}
                // The stream or its group was deleted while we waited: the next take
                // script makes them again.
                Err(Error::Redis { source, .. })
                    if matches!(source.code(), Some("NOGROUP" | "UNBLOCKED")) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// One server-side wait, on a pooled connection of its own (a blocked command would hold
    /// up every other caller of the shared async connection). From async code it runs on a
    /// blocking thread; if the caller stops waiting, a job it read is given back at once.
    async fn block(self: &Arc<Self>, slice: Duration) -> Result<Option<Raw>> {
        let bound = Some(slice + Duration::from_secs(1));
        if rt::in_blocking_shell() {
            return self.redis.run_within(self.block_op_plan(slice), bound);
        }
        let handoff = Arc::new(Handoff::default());
        let abandon = Abandon {
            core: Arc::clone(self),
            handoff: Arc::clone(&handoff),
        };
        let (core, h) = (Arc::clone(self), Arc::clone(&handoff));
        let read = tokio::task::spawn_blocking(move || -> Result<()> {
            if let Some(raw) = core.redis.run_within(core.block_op_plan(slice), bound)? {
                let mut slot = lock(&h.slot);
                if h.abandoned.load(Ordering::SeqCst) {
                    drop(slot);
                    give_back(&core, &raw);
                } else {
                    *slot = Some(raw);
                }
            }
            Ok(())
        });
        let outcome = read.await.map_err(|e| Error::Config {
            message: format!("ReliableQueue `{}`: a blocking read failed: {e}", self.key),
        })?;
        let raw = lock(&handoff.slot).take();
        drop(abandon);
        outcome?;
        Ok(raw)
    }
}

/// Gives a job read for a caller that stopped waiting back for redelivery at once.
fn give_back<T>(core: &Core<T>, raw: &Raw) {
    if let Err(e) = core
        .redis
        .run(core.settle_op_plan(&raw.id, raw.deliveries, Settle::Nack))
    {
        tracing::warn!(
            key = crate::observe::event_key(Some(&core.redis), &core.key),
            error = %crate::observe::event_error(Some(&core.redis), &e),
            "a job read for a cancelled pop waits for its visibility timeout"
        );
    }
}

/// Where a blocking read leaves its job for the async caller.
#[derive(Default)]
struct Handoff {
    slot: Mutex<Option<Raw>>,
    abandoned: AtomicBool,
}

/// Set when the async caller stops waiting: a job read after is given back; one read before
/// (left in the slot) is given back here.
struct Abandon<T: 'static> {
    core: Arc<Core<T>>,
    handoff: Arc<Handoff>,
}

impl<T: 'static> Drop for Abandon<T> {
    fn drop(&mut self) {
        let raw = {
            let mut slot = lock(&self.handoff.slot);
            self.handoff.abandoned.store(true, Ordering::SeqCst);
            slot.take()
        };
        if let Some(raw) = raw {
            let core = Arc::clone(&self.core);
            rt::spawn(async move {
                let op = core.settle_op_plan(&raw.id, raw.deliveries, Settle::Nack);
                if let Err(e) = core.redis.run_async(op).await {
                    tracing::warn!(
                        key = crate::observe::event_key(Some(&core.redis), &core.key),
                        error = %crate::observe::event_error(Some(&core.redis), &e),
                        "a job read for a cancelled pop waits for its visibility timeout"
                    );
                }
            });
        }
    }
}

/// A delivered job, shared by both shells' deliveries.
struct Job<T> {
    core: Arc<Core<T>>,
    id: String,
    deliveries: u64,
    value: T,
}

macro_rules! queue_builders {
    () => {
        /// The queue named `name` (streams `queue:{<name>}` and `queue:{<name>}:dead`), with a
        /// 30 s visibility timeout and 5 deliveries before a job becomes a dead letter.
        /// Nothing is sent yet.
        pub fn new(redis: &Redis, name: &str) -> Self {
            Self {
                core: Arc::new(Core::new(redis, name)),
            }
        }

        /// How long a delivered job stays invisible to other consumers before it is
        /// delivered again, unless acknowledged, given back or extended first (default 30 s).
        #[must_use]
        pub fn visibility_timeout(self, timeout: Duration) -> Self {
            let mut core = Arc::unwrap_or_clone(self.core);
            core.visibility = timeout;
            Self {
                core: Arc::new(core),
            }
        }

        /// How many deliveries a job gets; one delivered this often without being
        /// acknowledged moves to the dead letters instead of being delivered again (default 5).
        #[must_use]
        pub fn max_deliveries(self, n: u64) -> Self {
            let mut core = Arc::unwrap_or_clone(self.core);
            core.max_deliveries = n;
            Self {
                core: Arc::new(core),
            }
        }

        /// The jobs' stream key (`queue:{<name>}`).
        pub fn key(&self) -> &str {
            &self.core.key
        }

        /// The dead letters' stream key (`queue:{<name>}:dead`).
        pub fn dead_letter_key(&self) -> &str {
            &self.core.dead
        }
    };
}

macro_rules! delivery_getters {
    () => {
        /// The job.
        pub fn value(&self) -> &T {
            &self.job.value
        }

        /// The job, taken out (the delivery can no longer be acknowledged).
        pub fn into_value(self) -> T {
            self.job.value
        }

        /// The job's id in the stream.
        pub fn id(&self) -> &str {
            &self.job.id
        }

        /// How many times the job was delivered, this delivery included.
        pub fn deliveries(&self) -> u64 {
            self.job.deliveries
        }
    };
}

/// At-least-once jobs of type `T` on a Redis stream, with a visibility timeout and a
/// dead-letter queue; see the [module docs](crate::queue) for the layout and the rules.
///
/// ```
/// # let redis = pottery::testing::doctest_redis();
/// use std::time::Duration;
/// use pottery::ReliableQueue;
///
/// let q: ReliableQueue<String> = ReliableQueue::new(&redis, "doc-jobs")
///     .visibility_timeout(Duration::from_secs(30))
///     .max_deliveries(3);
/// # q.clear()?;
/// q.push(&"resize photo 7".to_string())?;
/// let job = q.pop(Duration::from_secs(1))?.expect("a job");
/// assert_eq!(job.value(), "resize photo 7");
/// assert!(job.ack()?); // done: never delivered again
/// assert!(q.pop(Duration::from_millis(10))?.is_none());
/// # q.clear()?;
/// # Ok::<(), pottery::Error>(())
/// ```
pub struct ReliableQueue<T> {
    core: Arc<Core<T>>,
}

crate::shell::shell_impls!(ReliableQueue<T>, "ReliableQueue");

impl<T> ReliableQueue<T> {
    queue_builders!();
}

impl<T: Serialize + DeserializeOwned + Send + 'static> ReliableQueue<T> {
    /// The next job, waiting up to `wait` for one (server-side, never polling): a job whose
    /// visibility timeout passed first, else a new one; `None` if none came within `wait`.
    /// An error naming the key for a job that is not pottery JSON of type `T` (it stays
    /// pending, and becomes a dead letter after `max_deliveries`).
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// use std::time::Duration;
    /// let q: pottery::ReliableQueue<u32> = pottery::ReliableQueue::new(&redis, "doc-pop");
    /// # q.clear()?;
    /// assert!(q.pop(Duration::from_millis(50))?.is_none()); // waited 50 ms
    /// q.push(&7)?;
    /// let job = q.pop(Duration::ZERO)?.unwrap();
    /// assert_eq!((*job.value(), job.deliveries()), (7, 1));
    /// job.ack()?;
    /// # q.clear()?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn pop(&self, wait: Duration) -> Result<Option<Delivery<T>>> {
        let job = rt::block_on(self.core.pop(wait))?;
        Ok(job.map(|job| Delivery { job }))
    }
}

/// A delivered job of a [`ReliableQueue`]: acknowledge it when done. Dropped without
/// [`ack`](Self::ack) (or with its process dead), it is delivered again once the visibility
/// timeout has passed.
///
/// ```
/// # let redis = pottery::testing::doctest_redis();
/// use std::time::Duration;
/// let q: pottery::ReliableQueue<String> = pottery::ReliableQueue::new(&redis, "doc-delivery")
///     .visibility_timeout(Duration::from_millis(100));
/// # q.clear()?;
/// q.push(&"x".to_string())?;
/// let first = q.pop(Duration::ZERO)?.unwrap();
/// drop(first); // not acknowledged
/// let again = q.pop(Duration::from_secs(5))?.unwrap(); // after the visibility timeout
/// assert_eq!(again.deliveries(), 2);
/// again.ack()?;
/// # q.clear()?;
/// # Ok::<(), pottery::Error>(())
/// ```
pub struct Delivery<T> {
    job: Job<T>,
}

impl<T> Delivery<T> {
    delivery_getters!();

    fn settle(&self, action: Settle) -> Result<bool> {
        let core = &self.job.core;
        core.redis
            .run(core.settle_op_plan(&self.job.id, self.job.deliveries, action))
    }

    /// Acknowledges the job: it is removed and never delivered again. `false` when this
    /// delivery had expired (its visibility timeout passed and the job was, or will be,
    /// delivered again; nothing was changed).
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let q: pottery::ReliableQueue<u8> = pottery::ReliableQueue::new(&redis, "doc-ack");
    /// # q.clear()?;
    /// q.push(&1)?;
    /// assert!(q.pop(std::time::Duration::ZERO)?.unwrap().ack()?);
    /// assert_eq!(q.len()?, 0);
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn ack(self) -> Result<bool> {
        self.settle(Settle::Ack)
    }

    /// Gives the job back: it is delivered again at once (at a consumer's next look: at
    /// most half a visibility timeout for one already waiting), or becomes a dead letter if
    /// this was its last delivery. `false` when this delivery had expired.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let q: pottery::ReliableQueue<u8> = pottery::ReliableQueue::new(&redis, "doc-nack");
    /// # q.clear()?;
    /// q.push(&1)?;
    /// assert!(q.pop(std::time::Duration::ZERO)?.unwrap().nack()?);
    /// let again = q.pop(std::time::Duration::ZERO)?.unwrap();
    /// assert_eq!(again.deliveries(), 2);
    /// again.ack()?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn nack(self) -> Result<bool> {
        self.settle(Settle::Nack)
    }

    /// Keeps the job a full visibility timeout longer, from now. `false` when this delivery
    /// had expired.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let q: pottery::ReliableQueue<u8> = pottery::ReliableQueue::new(&redis, "doc-extend");
    /// # q.clear()?;
    /// q.push(&1)?;
    /// let job = q.pop(std::time::Duration::ZERO)?.unwrap();
    /// assert!(job.extend()?);
    /// job.ack()?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn extend(&self) -> Result<bool> {
        self.settle(Settle::Extend)
    }
}

impl<T: fmt::Debug> fmt::Debug for Delivery<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("key", &self.job.core.key)
            .field("id", &self.job.id)
            .field("deliveries", &self.job.deliveries)
            .field("value", &self.job.value)
            .finish()
    }
}

crate::shell::ops! {
    // How to find an operation: `ReliableQueue::push` in the docs -> its `fn push` entry
    // below (same name; the body builds the plan) -> the plan builder it calls,
    // `Core::push_many_plan` (above), whose doc line names the request: the command, or the
    // `scripts/*.lua` it runs.
    impl<T: Serialize + DeserializeOwned + Send + 'static>
        /// A queue's operations in a [`Batch`](crate::Batch) or an
        /// [`aio::Batch`](crate::aio::Batch).
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// let q: pottery::ReliableQueue<u8> = pottery::ReliableQueue::new(&redis, "doc-queue-batch");
        /// # q.clear()?;
        /// let batch = pottery::Batch::new(&redis);
        /// batch.on(&q).push(&1);
        /// let n = batch.on(&q).push_many(&[2, 3]);
        /// batch.execute()?;
        /// assert_eq!(n.get()?, 3);
        /// # q.clear()?;
        /// # Ok::<(), pottery::Error>(())
        /// ```
        ReliableQueue<T> and aio::ReliableQueue<T>, batch ReliableQueueOps(Core<T>)
    {

        /// Appends a job (one `XADD`, in a script); returns how many jobs the queue holds,
        /// waiting or in flight.
        #[example(bare)]
        /// let q: pottery::ReliableQueue<String> = pottery::ReliableQueue::new(&redis, "doc-push");
        /// # q.clear()?;
        /// assert_eq!(q.push(&"a".to_string())?, 1);
        /// # q.clear()?;
        #[example(async, bare)]
        /// let q: pottery::aio::ReliableQueue<u8> = pottery::aio::ReliableQueue::new(&redis, "doc-push-async");
        /// # q.clear().await?;
        /// assert_eq!(q.push(&1).await?, 1);
        /// # q.clear().await?;
        fn push(&self, value: &T) -> usize {
            self.core.push_many_plan([value])
        }

        /// Appends jobs in one round trip; returns how many jobs the queue holds.
        #[example(bare)]
        /// let q: pottery::ReliableQueue<u32> = pottery::ReliableQueue::new(&redis, "doc-push-many");
        /// # q.clear()?;
        /// assert_eq!(q.push_many(&[1, 2, 3])?, 3);
        /// # q.clear()?;
        #[example(async, bare)]
        /// let q: pottery::aio::ReliableQueue<u8> = pottery::aio::ReliableQueue::new(&redis, "doc-push-many-async");
        /// # q.clear().await?;
        /// assert_eq!(q.push_many(&[1, 2]).await?, 2);
        /// # q.clear().await?;
        fn push_many(&self, values: &[T]) -> usize {
            self.core.push_many_plan(values)
        }

        /// How many jobs the queue holds, waiting or delivered and not yet acknowledged.
        #[example(bare)]
        /// let q: pottery::ReliableQueue<u32> = pottery::ReliableQueue::new(&redis, "doc-qlen");
        /// # q.clear()?;
        /// q.push(&1)?;
        /// assert_eq!(q.len()?, 1);
        /// # q.clear()?;
        fn len(&self) -> usize {
            self.core.len_plan()
        }

        /// Whether the queue holds no job (none waiting, none in flight).
        #[example(bare)]
        /// let q: pottery::ReliableQueue<u32> = pottery::ReliableQueue::new(&redis, "doc-qempty");
        /// # q.clear()?;
        /// assert!(q.is_empty()?);
        fn is_empty(&self) -> bool {
            self.core.len_plan().and_then(|n| Ok(n == 0))
        }

        /// How many dead letters there are.
        #[example(bare)]
        /// let q: pottery::ReliableQueue<u32> = pottery::ReliableQueue::new(&redis, "doc-dead-len");
        /// assert_eq!(q.dead_letter_len()?, 0);
        fn dead_letter_len(&self) -> usize {
            self.core.dead_len_plan()
        }

        /// The oldest `count` dead letters (read, not removed).
        #[example(bare)]
        /// use std::time::Duration;
        /// let q: pottery::ReliableQueue<String> = pottery::ReliableQueue::new(&redis, "doc-dead")
        ///     .max_deliveries(1);
        /// # q.clear()?;
        /// q.push(&"poison".to_string())?;
        /// q.pop(Duration::ZERO)?.unwrap().nack()?; // its one delivery
        /// assert!(q.pop(Duration::ZERO)?.is_none()); // moved to the dead letters
        /// let dead = q.dead_letters(10)?;
        /// assert_eq!((dead[0].value.as_str(), dead[0].deliveries), ("poison", 1));
        /// # q.clear()?;
        fn dead_letters(&self, count: usize) -> Vec<DeadLetter<T>> {
            self.core.dead_letters_plan(count)
        }

        /// Moves the oldest `count` dead letters back into the queue as new jobs (their delivery
        /// counts start again); returns how many were moved.
        #[example(bare)]
        /// use std::time::Duration;
        /// let q: pottery::ReliableQueue<u8> = pottery::ReliableQueue::new(&redis, "doc-requeue")
        ///     .max_deliveries(1);
        /// # q.clear()?;
        /// q.push(&9)?;
        /// q.pop(Duration::ZERO)?.unwrap().nack()?;
        /// assert!(q.pop(Duration::ZERO)?.is_none());
        /// assert_eq!(q.requeue_dead_letters(100)?, 1);
        /// let job = q.pop(Duration::ZERO)?.unwrap();
        /// assert_eq!((*job.value(), job.deliveries()), (9, 1));
        /// job.ack()?;
        /// # q.clear()?;
        fn requeue_dead_letters(&self, count: usize) -> usize {
            self.core.requeue_dead_letters_plan(count)
        }

        /// Deletes the queue, its consumer group and its dead letters.
        #[example(bare)]
        /// let q: pottery::ReliableQueue<u8> = pottery::ReliableQueue::new(&redis, "doc-qclear");
        /// q.push(&1)?;
        /// q.clear()?;
        /// assert_eq!(q.len()?, 0);
        fn clear(&self) -> () {
            self.core.clear_plan()
        }
    }
}

/// The async twins: [`aio::ReliableQueue`](crate::aio::ReliableQueue) and its deliveries.
pub mod aio {
    use super::*;

    /// Async [`ReliableQueue`](crate::ReliableQueue): the same operations, awaited. A
    /// `pop` waits on a blocking thread with a connection of its own; dropping its future
    /// gives a job it read back for redelivery at once (or, if the drop interrupted the
    /// reply to the script, after the visibility timeout: never lost).
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use std::time::Duration;
    /// let q: pottery::aio::ReliableQueue<u32> = pottery::aio::ReliableQueue::new(&redis, "doc-aio-queue");
    /// # q.clear().await?;
    /// q.push(&5).await?;
    /// let job = q.pop(Duration::from_secs(1)).await?.unwrap();
    /// assert_eq!(*job.value(), 5);
    /// job.ack().await?;
    /// # q.clear().await?;
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    pub struct ReliableQueue<T> {
        pub(super) core: Arc<Core<T>>,
    }

    crate::shell::shell_impls!(ReliableQueue<T>, "aio::ReliableQueue");

    impl<T> ReliableQueue<T> {
        queue_builders!();
    }

    impl<T: Serialize + DeserializeOwned + Send + 'static> ReliableQueue<T> {
        /// See [`crate::ReliableQueue::pop`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// use std::time::Duration;
        /// let q: pottery::aio::ReliableQueue<u32> = pottery::aio::ReliableQueue::new(&redis, "doc-aio-pop");
        /// # q.clear().await?;
        /// assert!(q.pop(Duration::from_millis(20)).await?.is_none());
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub async fn pop(&self, wait: Duration) -> Result<Option<Delivery<T>>> {
            let job = self.core.pop(wait).await?;
            Ok(job.map(|job| Delivery { job }))
        }
    }

    /// A delivered job of an [`aio::ReliableQueue`](ReliableQueue); see
    /// [`crate::Delivery`].
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use std::time::Duration;
    /// let q: pottery::aio::ReliableQueue<u8> = pottery::aio::ReliableQueue::new(&redis, "doc-aio-delivery");
    /// # q.clear().await?;
    /// q.push(&1).await?;
    /// let job = q.pop(Duration::ZERO).await?.unwrap();
    /// assert!(job.extend().await?);
    /// assert!(job.nack().await?);
    /// let job = q.pop(Duration::ZERO).await?.unwrap();
    /// assert!(job.ack().await?);
    /// # q.clear().await?;
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    pub struct Delivery<T> {
        pub(super) job: Job<T>,
    }

    impl<T> Delivery<T> {
        delivery_getters!();

        async fn settle(&self, action: Settle) -> Result<bool> {
            let core = &self.job.core;
            core.redis
                .run_async(core.settle_op_plan(&self.job.id, self.job.deliveries, action))
                .await
        }

        /// See [`crate::Delivery::ack`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// let q: pottery::aio::ReliableQueue<u8> = pottery::aio::ReliableQueue::new(&redis, "doc-aio-ack");
        /// # q.clear().await?;
        /// q.push(&1).await?;
        /// assert!(q.pop(std::time::Duration::ZERO).await?.unwrap().ack().await?);
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub async fn ack(self) -> Result<bool> {
            self.settle(Settle::Ack).await
        }

        /// See [`crate::Delivery::nack`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// let q: pottery::aio::ReliableQueue<u8> = pottery::aio::ReliableQueue::new(&redis, "doc-aio-nack");
        /// # q.clear().await?;
        /// q.push(&1).await?;
        /// assert!(q.pop(std::time::Duration::ZERO).await?.unwrap().nack().await?);
        /// # q.clear().await?;
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub async fn nack(self) -> Result<bool> {
            self.settle(Settle::Nack).await
        }

        /// See [`crate::Delivery::extend`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// let q: pottery::aio::ReliableQueue<u8> = pottery::aio::ReliableQueue::new(&redis, "doc-aio-extend");
        /// # q.clear().await?;
        /// q.push(&1).await?;
        /// let job = q.pop(std::time::Duration::ZERO).await?.unwrap();
        /// assert!(job.extend().await?);
        /// # q.clear().await?;
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub async fn extend(&self) -> Result<bool> {
            self.settle(Settle::Extend).await
        }
    }

    impl<T: fmt::Debug> fmt::Debug for Delivery<T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("aio::Delivery")
                .field("key", &self.job.core.key)
                .field("id", &self.job.id)
                .field("deliveries", &self.job.deliveries)
                .field("value", &self.job.value)
                .finish()
        }
    }
}
