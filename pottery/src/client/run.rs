//! How a call runs: `impl Redis { run, run_within, run_async }` — one attempt on a pooled
//! blocking connection or the shared async one, `EVAL` after `NOSCRIPT`, a durable write's
//! `WAIT` in the same round trip, `ASK` followed at once, and retries through failovers by the
//! operation's class ([`crate::exec::retry`]).

use std::time::Duration;

use redis::{Cmd, RedisResult, Value};

use crate::client::{AsyncConnection, Redis};
use crate::error::Result;
use crate::exec::plan::Repeat;
use crate::exec::plan::{Head, Op, Replies, Req, wait_command};
use crate::exec::reply::own_replies;
use crate::exec::retry::{Failed, Failure, Retry, is_noscript};

/// A durable write's `WAIT`: how many replicas, within how long (`None`: not durable).
type Durable = Option<(usize, Duration)>;

/// The request as sent: the command alone, or a pipeline of it and `WAIT` for a durable write.
fn with_wait(
    cmd: Cmd,
    durable: Option<(usize, Duration)>,
) -> std::result::Result<Cmd, redis::Pipeline> {
    match durable {
        None => Ok(cmd),
        Some((replicas, timeout)) => {
            let mut pipe = redis::pipe();
            pipe.add_command(cmd);
            pipe.add_command(wait_command(replicas, timeout));
            Err(pipe)
        }
    }
}

impl Redis {
    /// Runs `op` on a pooled blocking connection: one round trip (two the first time a script
    /// meets a server that does not know it yet), retried through failovers (see
    /// [`RedisBuilder::retry_timeout`](crate::RedisBuilder::retry_timeout)).
    pub(crate) fn run<T>(&self, op: Op<'_, T>) -> Result<T> {
        self.run_within(op, None)
    }

    /// [`Redis::run`] with replies bounded by `timeout` rather than the handle's response
    /// timeout; such a call (a quorum primitive's, which has its own deadlines) is not retried.
    pub(crate) fn run_within<T>(&self, op: Op<'_, T>, timeout: Option<Duration>) -> Result<T> {
        // A near-cache hit is no database operation: no span, no duration.
        let op = match self.near() {
            Some(near) => match crate::near::hit(near, op) {
                Ok(result) => return result,
                Err(op) => op,
            },
            None => op,
        };
        let span = crate::observe::op(self, &op);
        let result = crate::observe::in_span(&span, || self.run_within_span(op, timeout));
        crate::observe::finish(&span, &result);
        result
    }

    /// [`Redis::run_within`], in its span (a near-cache hit was looked for).
    fn run_within_span<T>(&self, op: Op<'_, T>, timeout: Option<Duration>) -> Result<T> {
        match self.near() {
            Some(near) => crate::near::run_blocking(self, near, op, timeout),
            None => self.run_direct(op, timeout),
        }
    }

    /// [`Redis::run_within`] on the server, bypassing any near cache.
    pub(crate) fn run_direct<T>(&self, op: Op<'_, T>, timeout: Option<Duration>) -> Result<T> {
        let (durable, reply) = self.replies(op.head(), timeout)?;
        op.finish(durable, reply)
    }

    /// [`Redis::run_direct`] up to the decoder (not generic: one copy for every reply type):
    /// the replies, and the `WAIT` of a durable write sent with them.
    fn replies(&self, op: Head<'_>, timeout: Option<Duration>) -> Result<(Durable, Replies)> {
        // The operation's class is found only when it matters (a durable handle, an idle
        // connection, a failure): classing the command is not free.
        let durable = self.durable().filter(|_| op.repeat() != Repeat::Read);

        let mut retry = Retry::new(match timeout {
            Some(_) => Duration::ZERO,
            None if op.retries => self.retry_timeout(),
            None => Duration::ZERO,
        });
        loop {
            let mut attempt = self.attempt_sync(op, timeout, durable);
            if let Err(failure) = &attempt {
                self.near_sees(failure);
            }
            if let Err(failure) = &attempt
                && let Some(addr) = self.ask_target(failure)
            {
                attempt = self.follow_ask_sync(&addr, op.req, durable, timeout);
            }
            match attempt {
                Ok(reply) => return Ok((durable, reply)),
                Err(failure) => std::thread::sleep(retry.after(op, failure)?),
            }
        }
    }

    /// One attempt: the reply (with `WAIT`'s behind it for a durable write).
    fn attempt_sync(
        &self,
        op: Head<'_>,
        timeout: Option<Duration>,
        durable: Durable,
    ) -> std::result::Result<Replies, Failure> {
        let sent = |error| Failed {
            error,
            connecting: false,
        };
        if let Req::Nothing = op.req {
            return Ok(Replies::All(vec![Value::Nil, Value::Int(i64::MAX)]));
        }
        let connect = || match timeout {
            Some(t) => self.connection_within(t),
            None => self.connection(),
        };
        let mut conn = connect().map_err(Failure::connecting)?;
        // A write that must not repeat goes on a connection known to be alive: after an idle
        // spell, a PING first (only a PING is lost if it died; then a new connection).
        // (Each death empties the pool, so this ends with a new connection at the latest.)
        while conn.sat_idle() && op.repeat() == Repeat::Once && conn.died_while_idle() {
            drop(conn);
            conn = connect().map_err(Failure::connecting)?;
        }
        let cluster = self.is_cluster();
        let mut query = |cmd: &Cmd| -> RedisResult<Replies> {
            match (durable, cluster) {
                // redis-rs's blocking cluster connection sends no pipelines: the WAIT follows
                // on the same connection to the key's master (a second round trip).
                (Some((replicas, timeout)), true) => {
                    let reply = conn.pipe_query(cmd)?;
                    // The write is applied: from here on a failure must not make it look
                    // unsent (a retry would apply it twice). A WAIT that fails confirms no
                    // replica: Error::NotDurable.
                    let acked = conn
                        .wait_for_replicas(op.key, replicas, timeout)
                        .unwrap_or(Value::Int(0));
                    Ok(Replies::All(vec![reply, acked]))
                }
                // Sent as it is (no copy) unless a WAIT goes behind it.
                (None, _) => conn.pipe_query(cmd).map(Replies::One),
                (Some(_), false) => match with_wait(cmd.clone(), durable) {
                    Ok(cmd) => conn.pipe_query(&cmd).map(Replies::One),
                    Err(pipe) => pipe.query(&mut conn).map(Replies::All),
                },
            }
        };
        match op.req {
            Req::Nothing => unreachable!("answered above"),
            Req::Cmd(cmd) => query(cmd).map_err(|e| sent(e).into()),
            Req::Eval { script, keys, args } => match query(&script.command(true, keys, args)) {
                Err(e) if is_noscript(&e) => query(&script.command(false, keys, args)),
                other => other,
            }
            .map_err(|e| sent(e).into()),
        }
    }

    /// Runs `op` on the shared async connection, retried through failovers like
    /// [`Redis::run`].
    pub(crate) async fn run_async<T>(&self, op: Op<'_, T>) -> Result<T> {
        // A near-cache hit is no database operation: no span, no duration.
        let op = match self.near() {
            Some(near) => match crate::near::hit(near, op) {
                Ok(result) => return result,
                Err(op) => op,
            },
            None => op,
        };
        self.run_async_missed(op).await
    }

    /// [`Redis::run_async`] for an `op` the near cache did not answer (or on a handle without
    /// one): in its span, on the server.
    pub(crate) async fn run_async_missed<T>(&self, op: Op<'_, T>) -> Result<T> {
        let span = crate::observe::op(self, &op);
        // One future awaited (the size of every call's future is the sum of those awaited in
        // different branches), polled as it is when nobody listens: no `Instrumented`
        // wrapper to enter and leave a disabled span at every poll.
        let started = crate::observe::started(&span);
        let result = crate::observe::instrumented(&span, self.run_async_span(op, started)).await;
        crate::observe::finish(&span, &result);
        result
    }

    /// [`Redis::run_async`], in its span (a near-cache hit was looked for), which began at
    /// `started` if its start was read.
    fn run_async_span<T>(
        &self,
        op: Op<'_, T>,
        started: Option<std::time::Instant>,
    ) -> impl std::future::Future<Output = Result<T>> {
        use futures_util::future::Either;
        match self.near() {
            Some(near) => Either::Left(crate::near::run_async(self, near, op)),
            None => Either::Right(self.run_direct_async_at(op, started)),
        }
    }

    /// [`Redis::run_async`] on the server, bypassing any near cache.
    pub(crate) fn run_direct_async<T>(
        &self,
        op: Op<'_, T>,
    ) -> impl std::future::Future<Output = Result<T>> {
        self.run_direct_async_at(op, None)
    }

    /// [`Redis::run_direct_async`] of a call that started at `started`, if that was read (the
    /// idle check's clock then needs no second reading).
    async fn run_direct_async_at<T>(
        &self,
        op: Op<'_, T>,
        started: Option<std::time::Instant>,
    ) -> Result<T> {
        let (durable, reply) = self.replies_async(op.head(), started).await?;
        op.finish(durable, reply)
    }

    /// [`Redis::run_direct_async_at`] up to the decoder (not generic: one copy for every reply
    /// type): the replies, and the `WAIT` of a durable write sent with them.
    async fn replies_async(
        &self,
        op: Head<'_>,
        started: Option<std::time::Instant>,
    ) -> Result<(Durable, Replies)> {
        // As in `run_direct`: the class only when it matters.
        let durable = self.durable().filter(|_| op.repeat() != Repeat::Read);
        let mut retry = Retry::new(if op.retries {
            self.retry_timeout()
        } else {
            Duration::ZERO
        });
        // The first attempt's connection (none yet: made by the attempt), found with the
        // check of how long it sat idle.
        let (mut conn, idle) = self.async_connection_used(started);
        // As the blocking `attempt_sync` does for its pooled connection.
        if idle && op.repeat() == Repeat::Once {
            // The check may replace the connection: the attempt takes the current one.
            conn = None;
            // Boxed, as every rare path here: a call's future stays small.
            Box::pin(self.check_idle_async(op.key)).await;
        }
        loop {
            let mut attempt = self.attempt_async(op.req, durable, conn.take()).await;
            if let Err(failure) = &attempt {
                self.near_sees(failure);
            }
            if let Err(failure) = &attempt
                && let Some(addr) = self.ask_target(failure)
            {
                attempt = Box::pin(self.follow_ask_async(&addr, op.req, durable)).await;
            }
            match attempt {
                Ok(reply) => return Ok((durable, reply)),
                Err(failure) => {
                    let wait = retry.after(op, failure)?;
                    // A cluster connection that saw a redirect or a dead node is replaced (a
                    // fresh one reads the slots anew): pottery follows redirects itself, since
                    // redis-rs's own retries may send a write twice.
                    self.forget_async_cluster_connection();
                    Box::pin(tokio::time::sleep(wait)).await;
                }
            }
        }
    }

    /// One attempt (given the request only: the decoder need not be `Sync`), on `conn` or
    /// else the runtime's async connection.
    async fn attempt_async(
        &self,
        req: &Req,
        durable: Option<(usize, Duration)>,
        conn: Option<AsyncConnection>,
    ) -> std::result::Result<Replies, Failure> {
        if let Req::Nothing = req {
            return Ok(Replies::All(vec![Value::Nil, Value::Int(i64::MAX)]));
        }
        let mut conn = match conn {
            Some(conn) => conn,
            None => self.async_connection().await.map_err(Failure::connecting)?,
        };
        let sent = |error| Failed {
            error,
            connecting: false,
        };
        // The command is sent as it is (no copy) unless a WAIT goes behind it.
        let evalsha;
        let cmd = match req {
            Req::Nothing => unreachable!("answered above"),
            Req::Cmd(cmd) => cmd,
            Req::Eval { script, keys, args } => {
                evalsha = script.command(true, keys, args);
                &evalsha
            }
        };
        let first = match durable {
            None => conn.send_command(cmd).await.map(Replies::One),
            Some(_) => match with_wait(cmd.clone(), durable) {
                Ok(cmd) => conn.send_command(&cmd).await.map(Replies::One),
                Err(pipe) => pipe.query_async(&mut conn).await.map(Replies::All),
            },
        };
        match (req, first) {
            (Req::Eval { script, keys, args }, Err(e)) if is_noscript(&e) => {
                match with_wait(script.command(false, keys, args), durable) {
                    Ok(cmd) => conn.send_command(&cmd).await.map(Replies::One),
                    Err(pipe) => pipe.query_async(&mut conn).await.map(Replies::All),
                }
                .map_err(|e| sent(e).into())
            }
            (_, r) => r.map_err(|e| sent(e).into()),
        }
    }
}

impl Redis {
    /// Before a write that must not repeat, when the handle's async connections sat idle for
    /// [`IDLE_CHECK`](crate::client::IDLE_CHECK): a read of its key first (`EXISTS`, routed
    /// where the write goes). A connection that died while idle (the server's `timeout`, a
    /// proxy, a restart) fails that read, which is harmless, and is replaced; the write, sent
    /// on it, would have had an unknown outcome.
    pub(crate) async fn check_idle_async(&self, key: &str) {
        let Ok(mut conn) = self.async_connection().await else {
            return;
        };
        if !still_alive(&mut conn, key).await {
            self.forget_async_cluster_connection();
        }
    }
}

/// Whether `conn` answers a read of `key` (`EXISTS`, routed where a write of it goes) without
/// an error that says the connection is gone.
pub(crate) async fn still_alive(conn: &mut impl redis::aio::ConnectionLike, key: &str) -> bool {
    let mut exists = redis::cmd("EXISTS");
    exists.arg(key);
    !exists
        .query_async::<Value>(conn)
        .await
        .is_err_and(|e| crate::client::poisons(&e))
}

/// Following `ASK`: while a cluster slot migrates, its master answers `ASK <slot> <node>` for
/// keys already moved to the importing node, which serves a request only after `ASKING` on
/// the same connection. pottery follows the redirect at once, whatever the retry window: it
/// is not a failover to wait out (the migration may take minutes), and the request did not
/// run (redis-rs's cluster client, which pottery keeps from retrying, would have followed it).
impl Redis {
    /// A cluster redirect (`MOVED`, `ASK`, `TRYAGAIN`, `CLUSTERDOWN`) answered to any call, not
    /// only to a near cache's fill: a slot moved or is moving, so the near cache forgets what
    /// it holds and finds the slot map anew.
    fn near_sees(&self, failure: &Failure) {
        if let (Some(near), Failure::Failed(f)) = (self.near(), failure)
            && crate::near::is_redirect(&f.error)
        {
            near.topology_changed();
        }
    }

    /// The node an `ASK` reply names, on a cluster handle.
    fn ask_target(&self, failure: &Failure) -> Option<String> {
        match failure {
            Failure::Failed(f)
                if self.is_cluster()
                    && f.error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::Ask) =>
            {
                f.error.redirect_node().map(|(addr, _)| addr.to_owned())
            }
            _ => None,
        }
    }

    /// Sends `req` to the importing node at `addr` on a new blocking connection.
    fn follow_ask_sync(
        &self,
        addr: &str,
        req: &Req,
        durable: Option<(usize, Duration)>,
        timeout: Option<Duration>,
    ) -> std::result::Result<Replies, Failure> {
        use redis::ConnectionLike;
        let (pipe, n) = asking_pipeline(req, durable);
        let mut conn = self
            .node_blocking_connection(addr, timeout)
            .map_err(Failure::not_connected)?;
        conn.req_packed_commands(&pipe.get_packed_pipeline(), 1, n)
            .and_then(own_replies)
            .map(Replies::All)
            .map_err(Failure::sent)
    }

    /// Sends `req` to the importing node at `addr` on the handle's direct connection to it.
    async fn follow_ask_async(
        &self,
        addr: &str,
        req: &Req,
        durable: Option<(usize, Duration)>,
    ) -> std::result::Result<Replies, Failure> {
        use redis::aio::ConnectionLike;
        let (pipe, n) = asking_pipeline(req, durable);
        let mut conn = self
            .node_connection(addr)
            .await
            .map_err(Failure::not_connected)?;
        conn.req_packed_commands(&pipe, 1, n)
            .await
            .and_then(own_replies)
            .map(Replies::All)
            .map_err(|e| {
                if crate::client::poisons(&e) {
                    self.forget_node_connection(addr);
                }
                Failure::sent(e)
            })
    }
}

/// `ASKING`, then the request (a script as `EVAL`: the importing node may not have it
/// cached), then a durable write's `WAIT`; and how many replies follow `ASKING`'s, which are
/// an attempt's.
fn asking_pipeline(req: &Req, durable: Option<(usize, Duration)>) -> (redis::Pipeline, usize) {
    let mut pipe = redis::pipe();
    pipe.cmd("ASKING");
    match req {
        Req::Cmd(cmd) => pipe.add_command(cmd.clone()),
        Req::Eval { script, keys, args } => pipe.add_command(script.command(false, keys, args)),
        // Answered without a server.
        Req::Nothing => pipe.cmd("PING"),
    };
    if let Some((replicas, timeout)) = durable {
        pipe.add_command(wait_command(replicas, timeout));
    }
    (pipe, 1 + usize::from(durable.is_some()))
}

trait PipeQuery {
    fn pipe_query(&mut self, cmd: &Cmd) -> RedisResult<Value>;
}

impl<C: redis::ConnectionLike> PipeQuery for C {
    fn pipe_query(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        cmd.query(self)
    }
}
