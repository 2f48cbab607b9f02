//! Running a batch: planning it (one pipeline per server, or per master on a cluster, with
//! the scripts it needs loaded at its head), sending it, following redirects and failovers,
//! and handing each operation its reply.

use std::time::Duration;

use redis::Value;

use super::queue::Queue;
use super::queue::Queued;
use crate::client::Redis;
use crate::error::{Error, Result};
use crate::exec::plan::Repeat;
use crate::exec::plan::{Req, Script};
use crate::exec::retry::{Failed, Failure, Next, Retry};

/// How a batch is sent.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Via {
    /// On a pooled blocking connection (a cluster's groups on the async connection, driven
    /// by the calling thread: redis-rs's blocking cluster connection sends no pipelines).
    Blocking,
    /// On the shared async connection.
    Async,
}

/// The operations sent to one server (on a cluster: to one master, routed by the slot of
/// the first; `owner` is that master's index in the slot map, `None` when the group is one
/// slot's).
pub(super) struct Group<'a> {
    pub(super) slot: Option<u16>,
    pub(super) owner: Option<u16>,
    /// The master's address, when the group is a master's: sent on a direct connection.
    pub(super) addr: Option<String>,
    /// Operations a master redirected with `ASK` (their slot is migrating and their keys are
    /// on the importing master, `addr`): each is sent after `ASKING`.
    pub(super) asking: bool,
    pub(super) ops: Vec<Queued<'a>>,
}

/// Operations a cluster master refused without running them (their slot moved since the
/// slot map was read), or that may go again after their master's connection failed, with
/// the error: sent again, each to its slot's master.
pub(super) type Moved<'a> = Vec<(Queued<'a>, redis::RedisError)>;

/// Runs a batch: the one implementation behind both `execute`s.
pub(super) async fn execute(queue: Queue<'_>, atomic: bool, via: Via) -> Result<()> {
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
    // A near cache forgets the keys the batch may write, before it is sent and after.
    let near = redis.near().cloned().and_then(|near| {
        crate::near::batch_touched(ops.iter().map(|q| (&q.req, q.repeat))).map(|t| (near, t))
    });
    let _after = near.as_ref().map(|(near, touched)| {
        near.touch(touched);
        crate::near::TouchAgain { near, touched }
    });
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
        let results = crate::exec::race::join_all(
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
            Next::Wait(wait) => {
                sleep(via, wait).await;
                owners = redis.slot_owners().await;
            }
            // Still moving, or still unreachable, when the retry window closed: each such
            // operation fails with its error (nothing of it ran, or it may repeat); the
            // others have their results. The batch fails if a connection did.
            Next::GiveUp | Next::MaybeApplied => {
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
pub(super) fn plan<'a>(
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
pub(super) fn asking_groups(asked: Vec<(String, Queued<'_>)>) -> Vec<Group<'_>> {
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
pub(super) struct Layout {
    /// `SCRIPT LOAD`s first.
    pub(super) scripts: usize,
    /// `MULTI` … `EXEC` around the operations.
    pub(super) atomic: bool,
    /// An `ASKING` before each operation.
    pub(super) asking: bool,
    /// `WAIT` last.
    pub(super) wait: Option<usize>,
    /// How many replies in all.
    pub(super) count: usize,
}

/// The pipeline of a group: `SCRIPT LOAD` of each distinct script, then the operations
/// (inside `MULTI`/`EXEC` for a transaction), then `WAIT` for a durable handle's writes.
/// The requests are moved into the pipeline, or copied when they may have to go again
/// (`keep`: a cluster's operations whose slot moved).
pub(super) fn pipeline(
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
pub(super) fn class(ops: &[Queued<'_>]) -> Repeat {
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
pub(super) async fn run_group<'a>(
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
                    if let Next::Wait(wait) = retry.next(class, &f) {
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
                Next::Wait(_) if addr.is_some() => {
                    let sent = !f.connecting;
                    return Ok(ops
                        .into_iter()
                        .map(|mut q| {
                            q.sent = sent;
                            (q, f.error.clone())
                        })
                        .collect());
                }
                Next::Wait(wait) => sleep(via, wait).await,
                Next::GiveUp => return Err(fail_all(ops, f, false)),
                Next::MaybeApplied => return Err(fail_all(ops, f, retries)),
            },
        }
    }
}

/// Waits before a retry: a blocking batch blocks its thread, as a blocking call does.
pub(super) async fn sleep(via: Via, wait: Duration) {
    match via {
        Via::Blocking => std::thread::sleep(wait),
        Via::Async => tokio::time::sleep(wait).await,
    }
}

/// The error when the server refused every operation of a group without running any of them
/// (`MOVED`, `TRYAGAIN`, `LOADING`, `READONLY`… during a failover: a group is one server's,
/// one slot's on a cluster, so they come all together).
pub(super) fn refused(replies: &[Value], layout: &Layout, n: usize) -> Option<redis::RedisError> {
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
pub(super) fn fail_all(ops: Vec<Queued<'_>>, f: Failed, maybe_applied: bool) -> Error {
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
pub(super) async fn send(
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
pub(super) fn own_reply(q: &Queued<'_>, v: Value) -> Result<Value> {
    match v {
        Value::ServerError(e) => Err(Error::redis(q.key, q.expected, e.into())),
        v => Ok(v),
    }
}

/// Hands each operation of a group its reply, except, with `reroute`, to those a cluster
/// master refused without running them (a slot that moved, a failover): those are returned.
pub(super) fn distribute<'a>(
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
