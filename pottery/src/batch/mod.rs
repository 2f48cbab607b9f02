//! Batches and transactions: operations of many structures sent in one round trip, each with
//! its own typed result.
//!
//! A batch queues [`Op`]s — the very plans the blocking and async shells run — and sends them
//! together: one pipeline per server (on a cluster, one per master, all sent at once), with
//! every Lua script the batch needs loaded by `SCRIPT LOAD` at the head of the same pipeline,
//! so a server that lost its script cache runs every operation exactly once. Each structure
//! lists its operations once, in an `ops!` table next to its `Core` (see `surface.rs`); the
//! table produces its view type (`DictOps`, `SetOps`…), and the view queues the structure's
//! own plans, so a batched operation cannot answer differently from the same call made alone.
//!
//! The planning, the sending and the distribution of the replies are written once (below);
//! [`Batch::execute`] and [`aio::Batch::execute`] differ only in how they send (a pooled
//! blocking connection, or the shared async one).

mod queue;
mod run;

use self::run::{Via, execute};
use crate::client::Redis;
use crate::error::Result;
use crate::exec::plan::Op;

pub use self::queue::{Pending, Queue};

/// A structure whose operations can be queued in a [`Batch`] or an [`aio::Batch`], blocking
/// and async alike. [`Batch::on`] gives its view, whose methods queue the structure's
/// operations: [`DictOps`](crate::dict::DictOps), [`SetOps`](crate::set::SetOps),
/// [`ListOps`](crate::list::ListOps), [`DequeOps`](crate::list::DequeOps),
/// [`CounterOps`](crate::counter::CounterOps), [`BloomOps`](crate::bloom::BloomOps) and
/// [`HyperLogLogOps`](crate::hyperloglog::HyperLogLogOps).
///
/// Redlock and NextId are not batchable: their operations are quorum rounds across several
/// masters with rules of their own (deadlines, give-backs), not one request to one server.
///
/// ```
/// fn queue_len<'q, 'a>(batch: &'q pottery::Batch<'a>, d: &'a pottery::RedisDict<String, i64>)
///     -> pottery::Pending<usize> {
///     batch.on(d).len()
/// }
/// # let redis = pottery::testing::doctest_redis();
/// # let d: pottery::RedisDict<String, i64> = pottery::RedisDict::random(&redis)?;
/// # let batch = pottery::Batch::new(&redis);
/// # let n = queue_len(&batch, &d);
/// # batch.execute()?;
/// # assert_eq!(n.get()?, 0);
/// # Ok::<(), pottery::Error>(())
/// ```
pub trait Batchable: sealed::Sealed {
    /// The structure's view in a batch: one method per batchable operation, each returning a
    /// [`Pending`] result.
    type Ops<'q, 'a>
    where
        Self: 'a,
        'a: 'q;

    /// The view of this structure on `queue` (use [`Batch::on`]).
    #[doc(hidden)]
    fn queue_on<'q, 'a>(&'a self, queue: &'q Queue<'a>) -> Self::Ops<'q, 'a>;
}

/// Seals [`Batchable`]: only pottery's structures and the handles `#[derive(RedisBacked)]`
/// makes are batchable (a batch queues plans, which only pottery can make). The module is not
/// reachable from outside the crate, so no other type can name the trait.
pub(crate) mod sealed {
    /// See the module.
    pub trait Sealed {}
}

/// Marks the handles `#[derive(RedisBacked)]` generates (and only those: it is not part of
/// the API, and implementing it by hand is not supported).
#[doc(hidden)]
pub trait DerivedHandle {}

impl<T: DerivedHandle> sealed::Sealed for T {}

/// A structure's conversion of a `Core` op builder's result, infallible (`Op`) or not
/// (`Result<Op>`), for the `ops!` tables.
pub(crate) trait IntoOp<'a, T> {
    fn into_op(self) -> Result<Op<'a, T>>;
}

impl<'a, T> IntoOp<'a, T> for Op<'a, T> {
    fn into_op(self) -> Result<Op<'a, T>> {
        Ok(self)
    }
}

impl<'a, T> IntoOp<'a, T> for Result<Op<'a, T>> {
    fn into_op(self) -> Result<Op<'a, T>> {
        self
    }
}

/// Operations of any of pottery's structures on one [`Redis`] handle, sent together when
/// [`execute`](Batch::execute) is called: one write and one round trip per server (on a
/// cluster, one pipeline per master, all sent at once), each operation with its own typed
/// result in a [`Pending`].
///
/// * [`Batch::new`] pipelines: other clients may see some of the writes before others.
///   [`Batch::transaction`] wraps them in `MULTI`/`EXEC`: other clients see all of them or
///   none, and the reads in it see one moment. On a cluster a transaction's keys must all be
///   in one hash slot (give them one `{hash tag}`); otherwise `execute` fails with
///   [`Error::CrossSlot`](crate::Error::CrossSlot) before anything is sent.
/// * Each result is the one the operation gives when called alone, errors included: a key
///   of the wrong type or data that does not decode fails that operation's [`Pending`] only.
///   (In a transaction, as in Redis, the other operations still apply.) `execute` itself
///   fails only when the connection does.
/// * On a cluster, an operation whose slot moved since the slot map was read goes again to
///   the slot's new master, within the retry window; one whose slot is being migrated
///   (resharding) and whose key is already on the importing master follows the `ASK`
///   redirect there at once.
/// * Lua-backed operations work in batches: the scripts are loaded (`SCRIPT LOAD`) at the
///   head of the same pipeline, so a server that lost its script cache neither runs an
///   operation twice nor skips one.
/// * Retries through failovers follow the operations' classes (see the crate documentation's
///   "Failovers, retries and durable writes"): a batch is sent again only when every
///   operation in it is a read or an idempotent write, or when it was certainly not executed.
///   A batch that fails after sending gives [`Error::MaybeApplied`](crate::Error::MaybeApplied) to its writes that must
///   not repeat. With [`durable_writes`](crate::RedisBuilder::durable_writes), a batch with
///   writes ends with one `WAIT`, and its writes fail with [`Error::NotDurable`](crate::Error::NotDurable) if too few
///   replicas confirmed them.
/// * [`Redlock`](crate::Redlock) and [`NextId`](crate::NextId) are not batchable: they are
///   quorum rounds across masters with rules of their own.
///
/// The borrow checker keeps the structures alive until the batch ran; an empty batch does no
/// I/O.
///
/// ```
/// use pottery::{Batch, RedisCounter, RedisDict, RedisList, RedisSet};
/// # let redis = pottery::testing::doctest_redis();
/// let users: RedisDict<String, String> = RedisDict::new(&redis, "doc-batch-users");
/// let online: RedisSet<String> = RedisSet::new(&redis, "doc-batch-online");
/// let hits: RedisCounter<String> = RedisCounter::new(&redis, "doc-batch-hits");
/// let feed: RedisList<String> = RedisList::new(&redis, "doc-batch-feed");
/// # users.clear()?; online.clear()?; hits.clear()?; feed.clear()?;
///
/// let batch = Batch::new(&redis);
/// let old = batch.on(&users).insert("ada".into(), "Ada".into());
/// let added = batch.on(&online).insert("ada".into());
/// let n = batch.on(&hits).incr("ada", 1);
/// let len = batch.on(&feed).push("ada joined".into());
/// batch.execute()?; // one round trip
///
/// assert_eq!(old.get()?, None);
/// assert!(added.get()?);
/// assert_eq!(n.get()?, 1);
/// assert_eq!(len.get()?, 1);
/// # users.clear()?; online.clear()?; hits.clear()?; feed.clear()?;
/// # Ok::<(), pottery::Error>(())
/// ```
pub struct Batch<'a> {
    queue: Queue<'a>,
    atomic: bool,
}

/// The constructors and accessors of [`Batch`] and [`aio::Batch`], written once (only
/// `execute` differs: it blocks, or it is awaited).
macro_rules! batch_shell {
    ($ty:ident, $name:literal, $path:literal) => {
        impl std::fmt::Debug for $ty<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct($name)
                    .field("redis", &self.queue.redis.shown())
                    .field("transaction", &self.atomic)
                    .field("len", &self.queue.len())
                    .finish()
            }
        }

        impl<'a> $ty<'a> {
            /// An empty batch on `redis` (pipelined, not atomic). Executing it while empty
            /// does no I/O.
            ///
            /// ```
            /// # let redis = pottery::testing::doctest_redis();
            #[doc = concat!("# use ", $path, " as This;")]
            /// let batch = This::new(&redis);
            /// assert!(batch.is_empty() && !batch.is_transaction());
            /// ```
            pub fn new(redis: &Redis) -> Self {
                $ty {
                    queue: Queue::new(redis),
                    atomic: false,
                }
            }

            /// An empty transaction on `redis`: its operations run in `MULTI`/`EXEC`, so
            /// other clients see all of its writes or none. On a cluster all its keys must be
            /// in one slot.
            ///
            /// ```
            /// # let redis = pottery::testing::doctest_redis();
            #[doc = concat!("# use ", $path, " as This;")]
            /// let stock: pottery::RedisCounter<String> = pottery::RedisCounter::new(&redis, "{shop}:stock");
            /// let sold: pottery::RedisCounter<String> = pottery::RedisCounter::new(&redis, "{shop}:sold");
            /// let tx = This::transaction(&redis);
            /// let _left = tx.on(&stock).incr("apple", -1);
            /// let _sold = tx.on(&sold).incr("apple", 1);
            /// assert!(tx.is_transaction());
            /// assert_eq!(tx.len(), 2);
            /// ```
            pub fn transaction(redis: &Redis) -> Self {
                $ty {
                    queue: Queue::new(redis),
                    atomic: true,
                }
            }

            /// The view of `structure` in this batch: its methods queue its operations and
            /// return their [`Pending`] results. The structure must be on this batch's handle
            /// (else the operations fail with [`Error::Config`](crate::Error::Config)). Blocking and async
            /// structures have the same views.
            ///
            /// ```
            /// # let redis = pottery::testing::doctest_redis();
            #[doc = concat!("# use ", $path, " as This;")]
            /// let d: pottery::RedisDict<String, i64> = pottery::RedisDict::new(&redis, "doc-on");
            /// let batch = This::new(&redis);
            /// let dict = batch.on(&d);
            /// dict.set("a".into(), 1);
            /// let _a = dict.get("a");
            /// assert_eq!(batch.len(), 2);
            /// ```
            pub fn on<'q, S>(&'q self, structure: &'a S) -> S::Ops<'q, 'a>
            where
                S: Batchable + 'a,
                'a: 'q,
            {
                structure.queue_on(&self.queue)
            }

            /// How many operations wait to be sent.
            ///
            /// ```
            /// # let redis = pottery::testing::doctest_redis();
            #[doc = concat!("# use ", $path, " as This;")]
            /// let s: pottery::RedisSet<u32> = pottery::RedisSet::new(&redis, "doc-len");
            /// let batch = This::new(&redis);
            /// let _len = batch.on(&s).len();
            /// assert_eq!(batch.len(), 1);
            /// ```
            pub fn len(&self) -> usize {
                self.queue.len()
            }

            /// Whether no operation waits to be sent.
            ///
            /// ```
            /// # let redis = pottery::testing::doctest_redis();
            #[doc = concat!("# use ", $path, " as This;")]
            /// assert!(This::new(&redis).is_empty());
            /// ```
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }

            /// Whether this is a transaction (`MULTI`/`EXEC`).
            ///
            /// ```
            /// # let redis = pottery::testing::doctest_redis();
            #[doc = concat!("# use ", $path, " as This;")]
            /// assert!(This::transaction(&redis).is_transaction());
            /// assert!(!This::new(&redis).is_transaction());
            /// ```
            pub fn is_transaction(&self) -> bool {
                self.atomic
            }
        }
    };
}

batch_shell!(Batch, "Batch", "pottery::Batch");

impl Batch<'_> {
    /// Sends every queued operation and fills their [`Pending`] results. Fails only when the
    /// connection does (or, for a transaction on a cluster, with [`Error::CrossSlot`](crate::Error::CrossSlot) before
    /// sending anything); the operations then hold the error too.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let d: pottery::RedisDict<String, i64> = pottery::RedisDict::random(&redis)?;
    /// let batch = pottery::Batch::new(&redis);
    /// let old = batch.on(&d).insert("a".into(), 1);
    /// batch.execute()?;
    /// assert_eq!(old.get()?, None);
    /// # d.clear()?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn execute(self) -> Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        let cluster = self.queue.redis.is_cluster();
        let run = execute(self.queue, self.atomic, Via::Blocking);
        if cluster {
            // The cluster's groups go out at once on the async connection.
            crate::exec::rt::block_on(run)
        } else {
            // One group on a blocking connection: the future never waits.
            crate::shell::runner::block_on_ready(run)
        }
    }
}

/// The async [`Batch`].
pub mod aio {
    use super::*;

    /// Async [`Batch`](crate::Batch): the same queue, views and results; only
    /// [`execute`](Batch::execute) is an `async fn`, on the handle's async connection.
    ///
    /// ```
    /// use pottery::aio::{Batch, RedisDict, RedisSet};
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let d: RedisDict<String, i64> = RedisDict::random(&redis).await?;
    /// let s: RedisSet<String> = RedisSet::random(&redis).await?;
    /// let batch = Batch::new(&redis);
    /// let old = batch.on(&d).insert("a".into(), 1);
    /// let added = batch.on(&s).insert("a".into());
    /// batch.execute().await?;
    /// assert_eq!(old.get()?, None);
    /// assert!(added.get()?);
    /// # d.clear().await?; s.clear().await?;
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    pub struct Batch<'a> {
        queue: Queue<'a>,
        atomic: bool,
    }

    batch_shell!(Batch, "aio::Batch", "pottery::aio::Batch");

    impl Batch<'_> {
        /// See [`crate::Batch::execute`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// let s: pottery::aio::RedisSet<u32> = pottery::aio::RedisSet::random(&redis).await?;
        /// let tx = pottery::aio::Batch::transaction(&redis);
        /// let added = tx.on(&s).insert(1);
        /// let len = tx.on(&s).len();
        /// tx.execute().await?;
        /// assert!(added.get()?);
        /// assert_eq!(len.get()?, 1);
        /// # s.clear().await?;
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub async fn execute(self) -> Result<()> {
            super::execute(self.queue, self.atomic, Via::Async).await
        }
    }
}

#[cfg(test)]
mod tests {
    use redis::Value;

    use super::queue::Queue;
    use std::time::Duration;

    use super::run::{class, distribute, pipeline, refused};
    use super::*;
    use crate::error::Error;
    use crate::exec::plan::{Repeat, Req};

    fn reply(resp: &str) -> Value {
        redis::parse_redis_value(resp.as_bytes()).expect("a RESP reply")
    }

    /// `n` queued `HLEN`s (reads) and `HINCRBY`s (writes that must not repeat), and their
    /// pending results.
    fn queued<'a>(queue: &Queue<'a>, keys: &'a [String]) -> Vec<Pending<i64>> {
        keys.iter()
            .enumerate()
            .map(|(i, key)| {
                let mut cmd = redis::cmd(if i % 2 == 0 { "HLEN" } else { "HINCRBY" });
                cmd.arg(key.as_str());
                if i % 2 == 1 {
                    cmd.arg("f").arg(1);
                }
                queue.push(
                    &queue.redis,
                    Ok(Op::cmd(key, "hash", cmd, crate::exec::reply::int)),
                )
            })
            .collect()
    }

    fn setup() -> (Redis, Vec<String>) {
        let redis = Redis::from_url("redis://127.0.0.1:1").expect("a URL");
        (redis, vec!["a".into(), "b".into(), "c".into()])
    }

    #[test]
    fn each_operation_gets_its_own_reply_and_errors_stay_its_own() {
        let (redis, keys) = setup();
        let queue = Queue::new(&redis);
        let pending = queued(&queue, &keys);
        let (_, mut ops) = queue.take();
        let (_, layout) = pipeline(&mut ops, false, false, None, false);
        assert_eq!(layout.count, 3);
        let replies = vec![
            reply(":3\r\n"),
            reply("-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
            reply(":7\r\n"),
        ];
        assert!(refused(&replies, &layout, ops.len()).is_none());
        distribute(ops, replies, &layout, false);
        let mut results = pending.into_iter().map(Pending::get);
        assert_eq!(results.next().unwrap().unwrap(), 3);
        assert!(matches!(
            results.next().unwrap(),
            Err(Error::WrongType { ref key, .. }) if key == "b"
        ));
        assert_eq!(results.next().unwrap().unwrap(), 7);
    }

    #[test]
    fn a_moved_operation_comes_back_and_the_others_get_their_replies() {
        let (redis, keys) = setup();
        let queue = Queue::new(&redis);
        let pending = queued(&queue, &keys);
        let (_, mut ops) = queue.take();
        let (_, layout) = pipeline(&mut ops, false, false, None, true);
        let replies = vec![
            reply(":3\r\n"),
            reply("-MOVED 3999 127.0.0.1:7001\r\n"),
            reply(":7\r\n"),
        ];
        let moved = distribute(ops, replies, &layout, true);
        assert_eq!(moved.len(), 1);
        assert_eq!(moved[0].0.key, "b");
        assert!(
            matches!(&moved[0].0.req, Req::Cmd(_)),
            "kept, to be sent again"
        );
        let mut results = pending.into_iter();
        assert_eq!(results.next().unwrap().get().unwrap(), 3);
        let b = results.next().unwrap();
        assert_eq!(results.next().unwrap().get().unwrap(), 7);
        drop(moved);
        drop(b);
    }

    #[test]
    fn an_asked_group_sends_asking_before_each_operation_and_skips_its_replies() {
        let (redis, keys) = setup();
        let queue = Queue::new(&redis);
        let pending = queued(&queue, &keys);
        let (_, mut ops) = queue.take();
        let (pipe, layout) = pipeline(&mut ops, false, true, None, true);
        assert_eq!(layout.count, 6);
        let names: Vec<Vec<u8>> = pipe
            .cmd_iter()
            .map(|c| match c.args_iter().next() {
                Some(redis::Arg::Simple(b)) => b.to_vec(),
                _ => Vec::new(),
            })
            .collect();
        assert_eq!(
            names,
            [
                &b"ASKING"[..],
                b"HLEN",
                b"ASKING",
                b"HINCRBY",
                b"ASKING",
                b"HLEN"
            ]
        );
        let ok = || reply("+OK\r\n");
        let replies = vec![
            ok(),
            reply(":3\r\n"),
            ok(),
            reply(":5\r\n"),
            ok(),
            reply(":7\r\n"),
        ];
        assert!(refused(&replies, &layout, ops.len()).is_none());
        assert!(distribute(ops, replies, &layout, true).is_empty());
        let got: Vec<i64> = pending.into_iter().map(|p| p.get().unwrap()).collect();
        assert_eq!(got, [3, 5, 7]);
    }

    #[test]
    fn a_refused_transaction_gives_each_operation_its_refusal() {
        let (redis, keys) = setup();
        let queue = Queue::new(&redis);
        let pending = queued(&queue, &keys);
        let (_, mut ops) = queue.take();
        let (_, layout) = pipeline(&mut ops, true, false, None, false);
        assert_eq!(layout.count, 5, "MULTI, 3 ops, EXEC");
        let replies = vec![
            reply("+OK\r\n"),
            reply("+QUEUED\r\n"),
            reply("-ERR wrong number of arguments for 'hincrby' command\r\n"),
            reply("+QUEUED\r\n"),
            reply("-EXECABORT Transaction discarded because of previous errors.\r\n"),
        ];
        distribute(ops, replies, &layout, false);
        let results: Vec<_> = pending.into_iter().map(Pending::get).collect();
        let text = |r: &Result<i64>| r.as_ref().unwrap_err().to_string();
        assert!(
            text(&results[0]).contains("discarded"),
            "{}",
            text(&results[0])
        );
        assert!(
            text(&results[1]).contains("wrong number"),
            "{}",
            text(&results[1])
        );
        assert!(text(&results[2]).contains("discarded"));
    }

    #[test]
    fn a_durable_batch_fails_only_its_writes_when_too_few_replicas_confirm() {
        let (redis, keys) = setup();
        let queue = Queue::new(&redis);
        let pending = queued(&queue, &keys);
        let (_, mut ops) = queue.take();
        let (_, layout) = pipeline(
            &mut ops,
            false,
            false,
            Some((2, Duration::from_millis(10))),
            false,
        );
        assert_eq!(layout.count, 4, "3 ops, WAIT");
        let replies = vec![
            reply(":1\r\n"),
            reply(":2\r\n"),
            reply(":3\r\n"),
            reply(":1\r\n"),
        ];
        distribute(ops, replies, &layout, false);
        let results: Vec<_> = pending.into_iter().map(Pending::get).collect();
        assert_eq!(*results[0].as_ref().unwrap(), 1, "a read is not waited for");
        assert!(matches!(
            results[1],
            Err(Error::NotDurable {
                acked: 1,
                wanted: 2,
                ..
            })
        ));
        assert_eq!(*results[2].as_ref().unwrap(), 3);
    }

    crate::exec::plan::script!(TEST_SCRIPT, "hash_insert.lua", Once);

    #[test]
    fn each_script_is_loaded_once_at_the_head_before_multi() {
        let (redis, keys) = setup();
        let queue = Queue::new(&redis);
        for key in &keys {
            let op = Op::eval(
                key,
                "hash",
                &TEST_SCRIPT,
                vec![key.clone().into_bytes()],
                vec![b"f".to_vec(), b"1".to_vec()],
                crate::exec::reply::decode_written::<i64>,
            );
            let _ = queue.push(&redis, Ok(op));
        }
        let (_, mut ops) = queue.take();
        let (pipe, layout) = pipeline(&mut ops, true, false, None, false);
        assert_eq!((layout.scripts, layout.count), (1, 1 + 1 + 3 + 1));
        let packed = String::from_utf8_lossy(&pipe.get_packed_pipeline()).into_owned();
        let load = packed.find("SCRIPT").expect("a SCRIPT LOAD");
        let multi = packed.find("MULTI").expect("a MULTI");
        assert!(load < multi);
        assert_eq!(packed.matches("EVALSHA").count(), 3);
        assert_eq!(packed.matches("SCRIPT").count(), 1);
    }

    #[test]
    fn a_group_refused_whole_is_retried() {
        let (redis, keys) = setup();
        let queue = Queue::new(&redis);
        let _pending = queued(&queue, &keys);
        let (_, mut ops) = queue.take();
        let (pipe, layout) = pipeline(&mut ops, false, false, None, false);
        assert_eq!(pipe.len(), 3);
        let moved = || reply("-MOVED 3999 127.0.0.1:6381\r\n");
        let replies = vec![moved(), moved(), moved()];
        assert!(refused(&replies, &layout, ops.len()).is_some());
        let replies = vec![moved(), reply(":1\r\n"), moved()];
        assert!(refused(&replies, &layout, ops.len()).is_none());
        assert_eq!(class(&ops), Repeat::Once);
    }
}
