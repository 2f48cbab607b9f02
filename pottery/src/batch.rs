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

use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::Value;

use crate::client::Redis;
use crate::error::{Error, Result};
use crate::exec::plan::Repeat;
use crate::exec::plan::{Op, Req, Script};
use crate::exec::retry::{Failed, Failure, Retry};

/// Hands a reply (or the error that replaced it) to a queued operation's decoder and its
/// [`Pending`].
type Deliver<'a> = Box<dyn FnOnce(Result<Value>) + Send + 'a>;

/// An operation waiting in a batch.
struct Queued<'a> {
    key: &'a str,
    expected: &'static str,
    req: Req,
    repeat: Repeat,
    retries: bool,
    /// Taken when the reply (or an error) is handed over; see the `Drop` impl.
    reply_to: Option<Deliver<'a>>,
    /// Whether the request may have reached the server: set when a pipeline holding it is
    /// sent, cleared when a server refused it without running it.
    sent: bool,
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
    fn keys(&self) -> Vec<&[u8]> {
        match &self.req {
            Req::Eval { keys, .. } if !keys.is_empty() => keys.iter().map(Vec::as_slice).collect(),
            _ => vec![self.key.as_bytes()],
        }
    }

    fn fail(self, e: Error) {
        self.reply(Err(e));
    }

    /// Hands the operation its reply, or the error that replaced it.
    fn reply(mut self, result: Result<Value>) {
        if let Some(reply_to) = self.reply_to.take() {
            reply_to(result);
        }
    }
}

/// The queue of a batch: where the per-structure views put their operations. (Public only to
/// appear in [`Batchable`]'s signature; it cannot be named outside pottery.)
pub struct Queue<'a> {
    redis: Redis,
    ops: Mutex<Vec<Queued<'a>>>,
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
    fn new(redis: &Redis) -> Self {
        Queue {
            redis: redis.clone(),
            ops: Mutex::new(Vec::new()),
        }
    }

    fn len(&self) -> usize {
        self.ops.lock().unwrap_or_else(|p| p.into_inner()).len()
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
            *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
        });
        self.ops
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Queued {
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

    fn take(self) -> (Redis, Vec<Queued<'a>>) {
        (
            self.redis,
            self.ops.into_inner().unwrap_or_else(|p| p.into_inner()),
        )
    }
}

/// The result of one operation queued in a [`Batch`] or an [`aio::Batch`], filled when the
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
    key: String,
    slot: Arc<Mutex<Option<Result<T>>>>,
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
    fn new(key: &str) -> Self {
        Pending {
            key: key.to_owned(),
            slot: Arc::new(Mutex::new(None)),
        }
    }

    fn ready(key: String, result: Result<T>) -> Self {
        Pending {
            key,
            slot: Arc::new(Mutex::new(Some(result))),
        }
    }

    fn fill(&self, result: Result<T>) {
        *self.slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
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
        let taken = self.slot.lock().unwrap_or_else(|p| p.into_inner()).take();
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
        self.slot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
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
pub trait Batchable: Sealed {
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

/// Seals [`Batchable`]: only pottery's structures are batchable.
pub trait Sealed {}

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

/// How a batch is sent.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Via {
    /// On a pooled blocking connection (a cluster's groups on the async connection, driven
    /// by the calling thread: redis-rs's blocking cluster connection sends no pipelines).
    Blocking,
    /// On the shared async connection.
    Async,
}

/// The operations sent to one server (on a cluster: to one master, routed by the slot of
/// the first; `owner` is that master's index in the slot map, `None` when the group is one
/// slot's).
struct Group<'a> {
    slot: Option<u16>,
    owner: Option<u16>,
    /// The master's address, when the group is a master's: sent on a direct connection.
    addr: Option<String>,
    /// Operations a master redirected with `ASK` (their slot is migrating and their keys are
    /// on the importing master, `addr`): each is sent after `ASKING`.
    asking: bool,
    ops: Vec<Queued<'a>>,
}

/// Operations a cluster master refused without running them (their slot moved since the
/// slot map was read), or that may go again after their master's connection failed, with
/// the error: sent again, each to its slot's master.
type Moved<'a> = Vec<(Queued<'a>, redis::RedisError)>;

/// Runs a batch: the one implementation behind both `execute`s.
async fn execute(queue: Queue<'_>, atomic: bool, via: Via) -> Result<()> {
    let span = crate::observe::batch(&queue.redis, queue.len(), atomic);
    let result = crate::observe::instrument(&span, execute_groups(queue, atomic, via)).await;
    crate::observe::finish(&span, &result);
    result
}

/// [`execute`], in its span.
async fn execute_groups(queue: Queue<'_>, atomic: bool, via: Via) -> Result<()> {
    let (redis, mut ops) = queue.take();
    if ops.is_empty() {
        return Ok(());
    }
    // On a cluster a pipeline goes to each master that owns some of the keys; operations
    // whose slot moved meanwhile come back refused, and go again to their slot's master.
    let mut owners = if atomic {
        None
    } else {
        redis.slot_owners().await
    };
    let mut retry = Retry::new(redis.retry_timeout());
    // Operations redirected with `ASK`, by the importing master's address, and how many
    // rounds in a row only followed such redirects.
    let mut asked: Vec<(String, Queued<'_>)> = Vec::new();
    let mut ask_rounds = 0;
    loop {
        let mut groups = if ops.is_empty() {
            Vec::new()
        } else {
            plan(&redis, ops, atomic, owners.as_deref())?
        };
        groups.extend(asking_groups(std::mem::take(&mut asked)));
        let results = futures_util::future::join_all(
            groups
                .into_iter()
                .map(|g| run_group(&redis, g, atomic, via)),
        )
        .await;
        let mut moved = Vec::new();
        let mut failed = None;
        for r in results {
            match r {
                Ok(m) => moved.extend(m),
                Err(e) => {
                    failed.get_or_insert(e);
                }
            }
        }
        if moved.is_empty() {
            return failed.map_or(Ok(()), Err);
        }
        if let Some(e) = failed {
            for (q, _) in moved {
                q.fail(crate::primitives::echo(&e));
            }
            return Err(e);
        }
        // A slot being migrated: the keys `ASK`ed for are already on the importing master,
        // and go there at once, whatever the retry window (a redirect, not a retry); the
        // slot map stays, as the slot is still the migrating master's. A few rounds in a
        // row at most, then they wait like the rest.
        let (ask, rest): (Moved<'_>, Moved<'_>) = moved.into_iter().partition(|(_, e)| {
            e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::Ask)
                && e.redirect_node().is_some()
        });
        let moved = if rest.is_empty() && ask_rounds < 3 {
            ask_rounds += 1;
            for (q, e) in ask {
                let (addr, _) = e.redirect_node().expect("partitioned on it");
                asked.push((addr.to_owned(), q));
            }
            ops = Vec::new();
            continue;
        } else {
            ask_rounds = 0;
            let mut moved = rest;
            moved.extend(ask);
            moved
        };
        redis.forget_slot_owners();
        redis.forget_async_cluster_connection();
        let f = Failed {
            error: moved[0].1.clone(),
            connecting: false,
        };
        match retry.next(Repeat::Read, &f) {
            Ok(wait) => {
                sleep(via, wait).await;
                owners = redis.slot_owners().await;
            }
            // Still moving, or still unreachable, when the retry window closed: each such
            // operation fails with its error (nothing of it ran, or it may repeat); the
            // others have their results. The batch fails if a connection did.
            Err(_) => {
                let connection = !matches!(f.error.kind(), redis::ErrorKind::Server(_));
                for (q, e) in moved {
                    let e = Error::redis(q.key, q.expected, e);
                    q.fail(e);
                }
                return if connection {
                    Err(Error::Redis {
                        key: None,
                        source: f.error,
                    })
                } else {
                    Ok(())
                };
            }
        }
        ops = moved.into_iter().map(|(q, _)| q).collect();
    }
}

/// Splits the operations by where they go: one group on a single server; on a cluster one
/// per master (by `owners`, the slot map) or, without a map, one per slot, in the order of
/// their first operation; for a transaction one group whose keys must all share a slot.
fn plan<'a>(
    redis: &Redis,
    ops: Vec<Queued<'a>>,
    atomic: bool,
    owners: Option<&crate::client::SlotOwners>,
) -> Result<Vec<Group<'a>>> {
    if !redis.is_cluster() {
        return Ok(vec![Group {
            slot: None,
            owner: None,
            addr: None,
            asking: false,
            ops,
        }]);
    }
    let slot_of = crate::exec::slot::slot;
    if atomic {
        let first = ops[0].key;
        let first_slot = slot_of(first.as_bytes());
        let other = ops.iter().find_map(|q| {
            q.keys()
                .into_iter()
                .find(|k| slot_of(k) != first_slot)
                .map(|k| String::from_utf8_lossy(k).into_owned())
        });
        if let Some(other) = other {
            for q in ops {
                let e = Error::CrossSlot {
                    key: q.key.to_owned(),
                    other: other.clone(),
                };
                q.fail(e);
            }
            return Err(Error::CrossSlot {
                key: first.to_owned(),
                other,
            });
        }
        return Ok(vec![Group {
            slot: Some(first_slot),
            owner: None,
            addr: None,
            asking: false,
            ops,
        }]);
    }
    let mut groups: Vec<Group<'a>> = Vec::new();
    for q in ops {
        let slot = slot_of(q.keys()[0]);
        let owner = owners.and_then(|o| o.owner(slot));
        let addr = owner.and_then(|i| owners?.address(i)).map(str::to_owned);
        let owner = owner.filter(|_| addr.is_some());
        let same = |g: &&mut Group<'a>| match owner {
            Some(_) => g.owner == owner,
            None => g.owner.is_none() && g.slot == Some(slot),
        };
        match groups.iter_mut().find(same) {
            Some(g) => g.ops.push(q),
            None => groups.push(Group {
                slot: Some(slot),
                owner,
                addr,
                asking: false,
                ops: vec![q],
            }),
        }
    }
    Ok(groups)
}

/// One group per importing master for operations redirected with `ASK`, in the order of
/// their first operation.
fn asking_groups(asked: Vec<(String, Queued<'_>)>) -> Vec<Group<'_>> {
    let mut groups: Vec<Group<'_>> = Vec::new();
    for (addr, q) in asked {
        match groups.iter_mut().find(|g| g.addr.as_deref() == Some(&addr)) {
            Some(g) => g.ops.push(q),
            None => groups.push(Group {
                slot: None,
                owner: None,
                addr: Some(addr),
                asking: true,
                ops: vec![q],
            }),
        }
    }
    groups
}

/// Where each reply of a group's pipeline is.
struct Layout {
    /// `SCRIPT LOAD`s first.
    scripts: usize,
    /// `MULTI` … `EXEC` around the operations.
    atomic: bool,
    /// An `ASKING` before each operation.
    asking: bool,
    /// `WAIT` last.
    wait: Option<usize>,
    /// How many replies in all.
    count: usize,
}

/// The pipeline of a group: `SCRIPT LOAD` of each distinct script, then the operations
/// (inside `MULTI`/`EXEC` for a transaction), then `WAIT` for a durable handle's writes.
/// The requests are moved into the pipeline, or copied when they may have to go again
/// (`keep`: a cluster's operations whose slot moved).
fn pipeline(
    ops: &mut [Queued<'_>],
    atomic: bool,
    asking: bool,
    durable: Option<(usize, Duration)>,
    keep: bool,
) -> (redis::Pipeline, Layout) {
    let mut pipe = redis::pipe();
    let mut scripts: Vec<&'static Script> = Vec::new();
    for q in ops.iter() {
        if let Req::Eval { script, .. } = &q.req
            && !scripts.iter().any(|s| std::ptr::eq(*s, *script))
        {
            scripts.push(script);
            pipe.cmd("SCRIPT").arg("LOAD").arg(script.source());
        }
    }
    if atomic {
        pipe.cmd("MULTI");
    }
    for q in ops.iter_mut() {
        if asking {
            pipe.cmd("ASKING");
        }
        match &q.req {
            Req::Cmd(cmd) if keep => pipe.add_command(cmd.clone()),
            Req::Cmd(_) => match std::mem::replace(&mut q.req, Req::Nothing) {
                Req::Cmd(cmd) => pipe.add_command(cmd),
                _ => unreachable!("matched as a command"),
            },
            Req::Eval { script, keys, args } => pipe.add_command(script.command(true, keys, args)),
            // Answered when queued.
            Req::Nothing => pipe.cmd("PING"),
        };
    }
    if atomic {
        pipe.cmd("EXEC");
    }
    let wait = durable.map(|(replicas, timeout)| {
        pipe.add_command(crate::exec::plan::wait_command(replicas, timeout));
        replicas
    });
    let layout = Layout {
        scripts: scripts.len(),
        atomic,
        asking,
        wait,
        count: scripts.len()
            + ops.len() * (1 + usize::from(asking))
            + 2 * usize::from(atomic)
            + usize::from(wait.is_some()),
    };
    (pipe, layout)
}

/// The class of a group: its least repeatable operation's.
fn class(ops: &[Queued<'_>]) -> Repeat {
    if ops.iter().any(|q| q.repeat == Repeat::Once) {
        Repeat::Once
    } else if ops.iter().any(|q| q.repeat == Repeat::Idempotent) {
        Repeat::Idempotent
    } else {
        Repeat::Read
    }
}

/// Sends one group, retried through failovers as its class allows (see `Retry`), and hands
/// each operation its reply; returns the operations a cluster master refused because their
/// slot moved (see [`execute`]).
async fn run_group<'a>(
    redis: &Redis,
    group: Group<'a>,
    atomic: bool,
    via: Via,
) -> Result<Moved<'a>> {
    let Group {
        slot,
        addr,
        asking,
        ops,
        ..
    } = group;
    let mut ops = ops;
    let class = class(&ops);
    let durable = redis.durable().filter(|_| class != Repeat::Read);
    let retries = ops.iter().all(|q| q.retries);
    let reroute = redis.is_cluster() && !atomic;
    let (pipe, layout) = pipeline(&mut ops, atomic, asking, durable, reroute);
    let mut retry = Retry::new(if retries {
        redis.retry_timeout()
    } else {
        Duration::ZERO
    });
    // Writes that must not repeat go on a connection known to be alive (see `IDLE_CHECK`).
    let check_idle = (class == Repeat::Once && retries).then_some(ops[0].key);
    loop {
        for q in ops.iter_mut() {
            q.sent = true;
        }
        match send(
            redis,
            via,
            &pipe,
            layout.count,
            slot,
            addr.as_deref(),
            check_idle,
        )
        .await
        {
            Ok(replies) => {
                // Refused whole (a failover under way): retried like a single operation. (On
                // a cluster, the refused operations go again by slot, from `execute`.)
                if !reroute && let Some(error) = refused(&replies, &layout, ops.len()) {
                    let f = Failed {
                        error,
                        connecting: false,
                    };
                    if let Ok(wait) = retry.next(class, &f) {
                        redis.forget_async_cluster_connection();
                        sleep(via, wait).await;
                        continue;
                    }
                }
                return Ok(distribute(ops, replies, &layout, reroute));
            }
            Err(Failure::Other(e)) => {
                for q in ops {
                    q.fail(crate::primitives::echo(&e));
                }
                return Err(e);
            }
            Err(Failure::Failed(f)) => match retry.next(class, &f) {
                // A master's group may go again: to wherever its slots are now (a failover
                // moves them to another address), from `execute`.
                Ok(_) if addr.is_some() => {
                    let sent = !f.connecting;
                    return Ok(ops
                        .into_iter()
                        .map(|mut q| {
                            q.sent = sent;
                            (q, f.error.clone())
                        })
                        .collect());
                }
                Ok(wait) => sleep(via, wait).await,
                Err(maybe_applied) => return Err(fail_all(ops, f, maybe_applied && retries)),
            },
        }
    }
}

/// Waits before a retry: a blocking batch blocks its thread, as a blocking call does.
async fn sleep(via: Via, wait: Duration) {
    match via {
        Via::Blocking => std::thread::sleep(wait),
        Via::Async => tokio::time::sleep(wait).await,
    }
}

/// The error when the server refused every operation of a group without running any of them
/// (`MOVED`, `TRYAGAIN`, `LOADING`, `READONLY`… during a failover: a group is one server's,
/// one slot's on a cluster, so they come all together).
fn refused(replies: &[Value], layout: &Layout, n: usize) -> Option<redis::RedisError> {
    if layout.asking {
        return None;
    }
    let start = layout.scripts + usize::from(layout.atomic);
    let mut first = None;
    for v in replies.get(start..start + n)? {
        let Value::ServerError(e) = v else {
            return None;
        };
        let e = redis::RedisError::from(e.clone());
        if !crate::exec::retry::not_executed(&e) {
            return None;
        }
        first.get_or_insert(e);
    }
    first
}

/// Every operation of a group whose connection failed gets the error: a write that must not
/// repeat, sent when the connection broke, [`Error::MaybeApplied`]; the others the
/// connection's error. Returns the batch's error.
fn fail_all(ops: Vec<Queued<'_>>, f: Failed, maybe_applied: bool) -> Error {
    let once = ops
        .iter()
        .find(|q| q.repeat == Repeat::Once)
        .map(|q| q.key.to_owned());
    for q in ops {
        let e = if maybe_applied && q.repeat == Repeat::Once {
            Error::MaybeApplied {
                key: q.key.to_owned(),
                source: f.error.clone(),
            }
        } else {
            Error::redis(q.key, q.expected, f.error.clone())
        };
        q.fail(e);
    }
    match once {
        Some(key) if maybe_applied => Error::MaybeApplied {
            key,
            source: f.error,
        },
        _ => Error::Redis {
            key: None,
            source: f.error,
        },
    }
}

/// One attempt at sending a group's pipeline (a cluster master's on a direct connection to
/// `addr`).
async fn send(
    redis: &Redis,
    via: Via,
    pipe: &redis::Pipeline,
    count: usize,
    slot: Option<u16>,
    addr: Option<&str>,
    check_idle: Option<&str>,
) -> std::result::Result<Vec<Value>, Failure> {
    let node = |addr| async move {
        redis
            .node_connection(addr)
            .await
            .map_err(Failure::not_connected)
    };
    if let Some(addr) = addr {
        use redis::aio::ConnectionLike;
        let mut conn = node(addr).await?;
        let idle = redis.async_used(Some(addr));
        if let (Some(key), true) = (check_idle, idle)
            && !crate::client::run::still_alive(&mut conn, key).await
        {
            redis.forget_node_connection(addr);
            conn = node(addr).await?;
        }
        return conn.req_packed_commands(pipe, 0, count).await.map_err(|e| {
            if crate::client::poisons(&e) {
                redis.forget_node_connection(addr);
            }
            Failure::sent(e)
        });
    }
    if via == Via::Blocking && !redis.is_cluster() {
        use redis::ConnectionLike;
        let mut conn = redis.connection().map_err(Failure::connecting)?;
        while check_idle.is_some() && conn.died_while_idle() {
            drop(conn);
            conn = redis.connection().map_err(Failure::connecting)?;
        }
        return conn
            .req_packed_commands(&pipe.get_packed_pipeline(), 0, count)
            .map_err(Failure::sent);
    }
    let idle = redis.async_used(None);
    if let (Some(key), true) = (check_idle, idle) {
        redis.check_idle_async(key).await;
    }
    let mut conn = redis
        .async_connection()
        .await
        .map_err(Failure::connecting)?;
    conn.send_pipeline(pipe, count, slot)
        .await
        .map_err(Failure::sent)
}

/// A reply as the operation's result: a server error (`WRONGTYPE`…) is that operation's
/// error only.
fn own_reply(q: &Queued<'_>, v: Value) -> Result<Value> {
    match v {
        Value::ServerError(e) => Err(Error::redis(q.key, q.expected, e.into())),
        v => Ok(v),
    }
}

/// Hands each operation of a group its reply, except, with `reroute`, to those a cluster
/// master refused without running them (a slot that moved, a failover): those are returned.
fn distribute<'a>(
    ops: Vec<Queued<'a>>,
    replies: Vec<Value>,
    layout: &Layout,
    reroute: bool,
) -> Moved<'a> {
    let mut moved = Vec::new();
    let mut replies = replies.into_iter();
    // The WAIT reply, last: how many replicas have the writes.
    let acked = layout.wait.map(|wanted| {
        let last = replies.next_back().unwrap_or(Value::Nil);
        (wanted, last)
    });
    let mut replies = replies.skip(layout.scripts);
    let n = ops.len();
    // Each operation's reply; `None` when a transaction did not run (EXEC's reply says why).
    let mut exec = Value::Nil;
    let own: Vec<Option<Value>> = if layout.atomic {
        let _multi = replies.next();
        let queued: Vec<Value> = replies.by_ref().take(n).collect();
        match replies.next().unwrap_or(Value::Nil) {
            Value::Array(results) if results.len() == n => results.into_iter().map(Some).collect(),
            // Refused (EXECABORT: a command was refused when queued) or discarded: nothing
            // ran. Each operation gets its own refusal, or the EXEC's.
            other => {
                exec = other;
                queued
                    .into_iter()
                    .map(|q| matches!(q, Value::ServerError(_)).then_some(q))
                    .collect()
            }
        }
    } else if layout.asking {
        // Each reply follows its `ASKING`'s.
        replies.take(2 * n).skip(1).step_by(2).map(Some).collect()
    } else {
        replies.take(n).map(Some).collect()
    };
    let mut own = own.into_iter();
    for q in ops {
        let reply = own.next();
        if reroute
            && q.retries
            && let Some(Some(Value::ServerError(e))) = &reply
        {
            let e = redis::RedisError::from(e.clone());
            if crate::exec::retry::not_executed(&e) {
                let mut q = q;
                q.sent = false;
                moved.push((q, e));
                continue;
            }
        }
        let mut result = match reply {
            Some(Some(v)) => own_reply(&q, v),
            Some(None) | None => match &exec {
                Value::ServerError(e) => Err(Error::redis(q.key, q.expected, e.clone().into())),
                other => Err(crate::exec::reply::unexpected(
                    q.key,
                    "the reply to EXEC",
                    other,
                )),
            },
        };
        if let (Some((wanted, wait)), true) = (&acked, q.repeat != Repeat::Read)
            && result.is_ok()
        {
            match wait {
                Value::Int(n) if usize::try_from(*n).unwrap_or(0) >= *wanted => {}
                Value::Int(n) => {
                    result = Err(Error::NotDurable {
                        key: q.key.to_owned(),
                        acked: usize::try_from(*n).unwrap_or(0),
                        wanted: *wanted,
                    })
                }
                other => {
                    result = Err(crate::exec::reply::unexpected(
                        q.key,
                        "the reply to WAIT",
                        other,
                    ))
                }
            }
        }
        q.reply(result);
    }
    moved
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
///   [`Error::CrossSlot`] before anything is sent.
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
///   A batch that fails after sending gives [`Error::MaybeApplied`] to its writes that must
///   not repeat. With [`durable_writes`](crate::RedisBuilder::durable_writes), a batch with
///   writes ends with one `WAIT`, and its writes fail with [`Error::NotDurable`] if too few
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
            /// (else the operations fail with [`Error::Config`]). Blocking and async
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
    /// connection does (or, for a transaction on a cluster, with [`Error::CrossSlot`] before
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
    use super::*;

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
