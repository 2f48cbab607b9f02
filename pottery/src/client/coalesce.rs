//! Coalescing: the commands that tasks send at once on one multiplexed connection go out as
//! one pipeline (one write, one read by the server, one read of the replies).
//!
//! redis-rs's multiplexed connection writes each command as it comes. With many tasks on one
//! connection, replies arrive together and wake their tasks together, but each task's next
//! command is written on its own: the server then reads them one by one, and under load that
//! is where the client's and the server's time goes.
//!
//! Only on multi-threaded runtimes (see [`Coalescer::for_this_runtime`]): on a
//! current-thread runtime the driver already writes together what its senders sent.
//!
//! A command sent while the connection has none in flight goes at once, as before. A command
//! sent while others are in flight joins the connection's *open batch* (or opens one), then
//! its sender lets the other ready tasks run once (`yield_now`): the first of the batch's
//! senders to come back seals it and sends it as one pipeline; the others find it sent. Each
//! sender gets its own reply (a server error as its own error), or the pipeline's error. A
//! batch whose senders all find it holding only one command sends that command alone.
//!
//! No sender waits on another: each seals the batch itself if no one has, so a sender whose
//! task is slow to be polled again (or never is) holds no one up. Cancellation: the pipeline
//! is a shared future that any of its senders drives, so a dropped sender takes nothing from
//! the others. A batch whose senders were all dropped before it was sealed is given up (none
//! of it is sent); a command whose sender was dropped while others of its batch live is sent
//! with them: as any command whose future was dropped after it was handed to the connection,
//! it may or may not run.
//!
//! Order is kept: the server runs a connection's commands in the order they were written,
//! pipelined or not, and a task sends its next command only after its reply.

use std::future::Future;
use std::pin::Pin;
#[cfg(feature = "testing")]
use std::sync::atomic::AtomicU64;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

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
pub(super) struct Coalescer {
    /// Off: every command is sent on its own (`RedisBuilder::coalesce(false)`).
    on: bool,
    /// Commands sent and not answered yet (each of a batch's counts).
    busy: AtomicUsize,
    /// The batch being collected, if any.
    open: Mutex<Option<Arc<Batch>>>,
    /// Commands sent in coalesced pipelines, ever (for tests: [`Coalescer::batched`]; not
    /// counted in other builds).
    #[cfg(feature = "testing")]
    batched: AtomicU64,
}

impl Coalescer {
    /// A coalescer, `on` or off.
    pub(super) fn new(on: bool) -> Coalescer {
        Coalescer {
            on,
            busy: AtomicUsize::new(0),
            open: Mutex::new(None),
            #[cfg(feature = "testing")]
            batched: AtomicU64::new(0),
        }
    }

    /// A coalescer for a connection made on the current runtime: on if `on` and the runtime
    /// is multi-threaded. On a current-thread runtime the connection's driver task runs on the
    /// same thread as its senders, only once the other ready tasks have run: the commands
    /// they sent meanwhile are written together already, and coalescing would add its own
    /// cost for nothing (measured: the 64-task `HSET` and script rows slower with it).
    pub(super) fn for_this_runtime(on: bool) -> Coalescer {
        let threaded = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() != tokio::runtime::RuntimeFlavor::CurrentThread);
        Coalescer::new(on && threaded)
    }

    /// How many commands were sent in coalesced pipelines.
    #[cfg(feature = "testing")]
    pub(super) fn batched(&self) -> u64 {
        self.batched.load(Ordering::Relaxed)
    }
}

/// A batch of commands from several senders.
struct Batch {
    stage: Mutex<Stage>,
}

enum Stage {
    /// Joined by senders until one of them seals it.
    Collecting {
        pipe: redis::Pipeline,
        /// Commands in `pipe`.
        count: usize,
        /// Senders of them not dropped.
        members: usize,
    },
    /// Sealed holding one command: its sender sends it alone.
    Alone,
    /// Given up: its senders were all dropped before it was sealed (nothing was sent).
    Abandoned,
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
    if !co.on || co.busy.load(Ordering::Relaxed) == 0 {
        return alone(shared.as_ref(), conn, cmd).await;
    }
    let (batch, index) = enter(co, cmd);
    let member = Member { co, batch: &batch };
    // The other ready tasks join it.
    tokio::task::yield_now().await;
    std::mem::forget(member);
    match seal(shared, conn, &batch) {
        Some(sending) => reply_of(&sending.await, index),
        None => alone(shared.as_ref(), conn, cmd).await,
    }
}

/// Adds `cmd` to the open batch, or opens one with it (no lock is held once it returns): the
/// batch, and `cmd`'s index in it.
fn enter(co: &Coalescer, cmd: &Cmd) -> (Arc<Batch>, usize) {
    let mut open = lock(&co.open);
    if let Some(batch) = &*open {
        let mut stage = lock(&batch.stage);
        // The open batch is always collecting (sealing or giving it up takes it out first).
        if let Stage::Collecting {
            pipe,
            count,
            members,
        } = &mut *stage
        {
            pipe.add_command(cmd.clone());
            *count += 1;
            *members += 1;
            return (Arc::clone(batch), *count - 1);
        }
    }
    let mut pipe = redis::Pipeline::new();
    pipe.add_command(cmd.clone());
    let batch = Arc::new(Batch {
        stage: Mutex::new(Stage::Collecting {
            pipe,
            count: 1,
            members: 1,
        }),
    });
    *open = Some(Arc::clone(&batch));
    (batch, 0)
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

/// Seals `batch` if no one has (closed to new senders; its pipeline made), by one of its
/// senders: its pipeline on its way, or `None` if it holds only the caller's command (which
/// the caller then sends alone).
fn seal<S: Shares>(
    shared: &Arc<S>,
    conn: &MultiplexedConnection,
    batch: &Arc<Batch>,
) -> Option<Sending> {
    let co = shared.coalescer();
    let mut open = lock(&co.open);
    if open.as_ref().is_some_and(|b| Arc::ptr_eq(b, batch)) {
        *open = None;
    }
    drop(open);
    let mut stage = lock(&batch.stage);
    let (pipe, count) = match std::mem::replace(&mut *stage, Stage::Alone) {
        Stage::Collecting { pipe, count, .. } => (pipe, count),
        Stage::Sent(sending) => {
            *stage = Stage::Sent(sending.clone());
            return Some(sending);
        }
        // Only the caller's command, sealed alone by the caller: never sealed again. Nor is a
        // batch given up while the caller, one of its senders, lives.
        done @ (Stage::Alone | Stage::Abandoned) => {
            *stage = done;
            return None;
        }
    };
    if count == 1 {
        return None;
    }
    co.busy.fetch_add(count, Ordering::Relaxed);
    // At most one per command (a `usize` count fits in a `u64`).
    #[cfg(feature = "testing")]
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
    Some(sending)
}

/// A sender of a batch not yet sealed: dropped, it leaves the batch, and the last to leave
/// gives it up.
struct Member<'a> {
    co: &'a Coalescer,
    batch: &'a Arc<Batch>,
}

impl Drop for Member<'_> {
    fn drop(&mut self) {
        // Lock order: the open batch, then a batch's stage.
        let mut open = lock(&self.co.open);
        let mut stage = lock(&self.batch.stage);
        if let Stage::Collecting { members, .. } = &mut *stage {
            *members -= 1;
            if *members == 0 {
                *stage = Stage::Abandoned;
                if open.as_ref().is_some_and(|b| Arc::ptr_eq(b, self.batch)) {
                    *open = None;
                }
            }
        }
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
