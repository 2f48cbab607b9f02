//! Coalescing: the commands that tasks send at once on one multiplexed connection go out as
//! one pipeline (one write, one read by the server, one read of the replies).
//!
//! redis-rs's multiplexed connection writes each command as it comes. With many tasks on one
//! connection, replies arrive together and wake their tasks together, but each task's next
//! command is written on its own: the server then reads them one by one, and under load that
//! is where the client's and the server's time goes.
//!
//! A command sent while the connection has none in flight goes at once, as before. A command
//! sent while others are in flight joins the *open batch*, or opens one: its sender (the
//! batch's leader) lets the other ready tasks run once (`yield_now`), then seals the batch and
//! sends it, its own command last, as one pipeline. Each sender gets its own reply (a server
//! error as its own error), or the pipeline's error.
//!
//! Cancellation: the batch's pipeline is a shared future that any of its senders drives, so a
//! sender dropped at any point (the leader too) takes nothing from the others. A leader dropped
//! before it sealed its batch seals it as it goes (without its own command, which was never
//! sent). A command whose sender was dropped after it joined a batch may still be sent: as for
//! any command whose future is dropped after it was handed to the connection, it may or may
//! not have run.
//!
//! Order is kept: the server runs a connection's commands in the order they were written,
//! pipelined or not, and a task sends its next command only after its reply.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};

use futures_util::FutureExt;
use futures_util::future::Shared;
use redis::aio::MultiplexedConnection;
use redis::{Cmd, RedisError, RedisResult, Value};

use crate::sync::lock;

/// A batch's replies, shared by its senders.
type Replies = Arc<RedisResult<Vec<Value>>>;

/// A batch's pipeline on its way: driven by whichever of its senders polls it.
type Sending = Shared<Pin<Box<dyn Future<Output = Replies> + Send>>>;

/// What a connection's clones share: its [`Coalescer`], and what to do with an error a
/// command on it returned (mark it lost, say).
pub(super) trait Shares: Send + Sync + 'static {
    fn coalescer(&self) -> &Coalescer;
    fn saw(&self, e: &RedisError);
}

/// What the clones of one connection share to coalesce their commands.
#[derive(Default)]
pub(super) struct Coalescer {
    /// Commands sent and not answered yet (each of a batch's counts).
    busy: AtomicUsize,
    /// The batch being collected, if any.
    open: Mutex<Option<Arc<Batch>>>,
    /// Commands sent in coalesced pipelines, ever (for tests: [`Coalescer::batched`]).
    batched: AtomicU64,
}

impl Coalescer {
    /// How many commands were sent in coalesced pipelines.
    pub(super) fn batched(&self) -> u64 {
        self.batched.load(Ordering::Relaxed)
    }
}

/// A batch of commands from several senders.
struct Batch {
    stage: Mutex<Stage>,
}

enum Stage {
    /// Joined by senders until its leader seals it.
    Collecting {
        pipe: redis::Pipeline,
        count: usize,
        /// The senders waiting for it to be sent.
        waiting: Vec<Waker>,
    },
    /// Sealed with no one but its leader, who sends its command alone.
    Alone,
    /// Sealed and handed to the connection (when first polled).
    Sent(Sending),
}

/// Counts `n` commands as in flight while it lives.
struct Busy<S: Shares>(Arc<S>, usize);

impl<S: Shares> Drop for Busy<S> {
    fn drop(&mut self) {
        self.0.coalescer().busy.fetch_sub(self.1, Ordering::Relaxed);
    }
}

/// Counts one command as in flight while it lives.
struct BusyOne<'a>(&'a AtomicUsize);

impl Drop for BusyOne<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Sends `cmd` on `conn`, alone or in a batch (see the module docs); `shared` is what the
/// connection's clones share. Returns its reply; a server error is a `Value::ServerError`,
/// as from redis-rs's `send_packed_command` (the caller extracts it).
pub(super) async fn send<S: Shares>(
    shared: &Arc<S>,
    conn: &mut MultiplexedConnection,
    cmd: &Cmd,
) -> RedisResult<Value> {
    let co = shared.coalescer();
    if co.busy.load(Ordering::Relaxed) == 0 {
        return alone(shared.as_ref(), conn, cmd).await;
    }
    match enter(co, cmd) {
        Entry::Joined(batch, index) => join(&batch, index).await,
        Entry::Leads(batch) => lead(shared, conn, batch, cmd).await,
    }
}

/// How a command enters the coalescer when others are in flight.
enum Entry {
    /// It joined the open batch, at this index.
    Joined(Arc<Batch>, usize),
    /// It opened this batch, which it leads.
    Leads(Arc<Batch>),
}

/// Joins `cmd` to the open batch, or opens one (no lock is held once it returns).
fn enter(co: &Coalescer, cmd: &Cmd) -> Entry {
    let mut open = lock(&co.open);
    if let Some(batch) = &*open {
        let mut stage = lock(&batch.stage);
        // The open batch is never sealed (sealing takes it out first).
        if let Stage::Collecting { pipe, count, .. } = &mut *stage {
            pipe.add_command(cmd.clone());
            *count += 1;
            return Entry::Joined(Arc::clone(batch), *count - 1);
        }
    }
    let batch = Arc::new(Batch {
        stage: Mutex::new(Stage::Collecting {
            pipe: redis::Pipeline::new(),
            count: 0,
            waiting: Vec::new(),
        }),
    });
    *open = Some(Arc::clone(&batch));
    Entry::Leads(batch)
}

/// Sends `cmd` on its own.
async fn alone<S: Shares>(
    shared: &S,
    conn: &mut MultiplexedConnection,
    cmd: &Cmd,
) -> RedisResult<Value> {
    let busy = &shared.coalescer().busy;
    busy.fetch_add(1, Ordering::Relaxed);
    let _busy = BusyOne(busy);
    let r = conn.send_packed_command(cmd).await;
    if let Err(e) = &r {
        shared.saw(e);
    }
    r
}

/// Leads `batch`, just opened: lets the other ready tasks join it, seals it and sends it with
/// `cmd` last (alone if no one joined).
async fn lead<S: Shares>(
    shared: &Arc<S>,
    conn: &mut MultiplexedConnection,
    batch: Arc<Batch>,
    cmd: &Cmd,
) -> RedisResult<Value> {
    let guard = Seal {
        shared,
        conn: &*conn,
        batch: &batch,
    };
    tokio::task::yield_now().await;
    std::mem::forget(guard);
    match seal(shared, conn, &batch, Some(cmd)) {
        Some((sending, index)) => reply_of(&sending.await, index),
        None => alone(shared.as_ref(), conn, cmd).await,
    }
}

/// Seals `batch` (closed to new senders) and makes its pipeline, `cmd` last if given: `None`
/// if no one joined it (its leader sends `cmd` alone), else the pipeline on its way and
/// `cmd`'s index in it. The senders waiting for it are woken.
fn seal<S: Shares>(
    shared: &Arc<S>,
    conn: &MultiplexedConnection,
    batch: &Arc<Batch>,
    cmd: Option<&Cmd>,
) -> Option<(Sending, usize)> {
    let co = shared.coalescer();
    {
        let mut open = lock(&co.open);
        if open.as_ref().is_some_and(|b| Arc::ptr_eq(b, batch)) {
            *open = None;
        }
    }
    let mut stage = lock(&batch.stage);
    let Stage::Collecting {
        mut pipe,
        mut count,
        waiting,
    } = std::mem::replace(&mut *stage, Stage::Alone)
    else {
        // Sealed already (by a leader dropped before it sealed it: never the case when the
        // leader seals it itself).
        return None;
    };
    if count == 0 {
        return None;
    }
    if let Some(cmd) = cmd {
        pipe.add_command(cmd.clone());
        count += 1;
    }
    co.busy.fetch_add(count, Ordering::Relaxed);
    // At most one per command (a `usize` count fits in a `u64`).
    co.batched.fetch_add(count as u64, Ordering::Relaxed);
    let busy = Busy(Arc::clone(shared), count);
    let mut conn = conn.clone();
    let sending: Pin<Box<dyn Future<Output = Replies> + Send>> = Box::pin(async move {
        let r = conn.send_packed_commands(&pipe, 0, count).await;
        if let Err(e) = &r {
            busy.0.saw(e);
        }
        drop(busy);
        Arc::new(r)
    });
    let sending = sending.shared();
    *stage = Stage::Sent(sending.clone());
    drop(stage);
    for w in waiting {
        w.wake();
    }
    Some((sending, count - 1))
}

/// Seals the batch of a leader dropped before it sealed it (see the module docs).
struct Seal<'a, S: Shares> {
    shared: &'a Arc<S>,
    conn: &'a MultiplexedConnection,
    batch: &'a Arc<Batch>,
}

impl<S: Shares> Drop for Seal<'_, S> {
    fn drop(&mut self) {
        // The pipeline is sent by the senders it wakes (they poll it).
        let _ = seal(self.shared, self.conn, self.batch, None);
    }
}

/// Waits for `batch` to be sent, then for its replies; returns the one at `index`.
async fn join(batch: &Batch, index: usize) -> RedisResult<Value> {
    let sending = std::future::poll_fn(|cx| {
        let mut stage = lock(&batch.stage);
        match &mut *stage {
            Stage::Collecting { waiting, .. } => {
                if !waiting.iter().any(|w| w.will_wake(cx.waker())) {
                    waiting.push(cx.waker().clone());
                }
                Poll::Pending
            }
            Stage::Sent(sending) => Poll::Ready(Some(sending.clone())),
            // A batch someone joined is never sealed alone.
            Stage::Alone => Poll::Ready(None),
        }
    })
    .await;
    match sending {
        Some(sending) => reply_of(&sending.await, index),
        None => Err(RedisError::from((
            redis::ErrorKind::Client,
            "a coalesced batch was sealed without its commands",
        ))),
    }
}

/// The reply at `index` of a batch's replies (the pipeline's error if it failed).
fn reply_of(replies: &Replies, index: usize) -> RedisResult<Value> {
    match &**replies {
        Ok(values) => values.get(index).cloned().ok_or_else(|| {
            RedisError::from((
                redis::ErrorKind::Client,
                "a coalesced batch got fewer replies than commands",
            ))
        }),
        Err(e) => Err(e.clone()),
    }
}
