//! One implementation of each operation, two shells.
//!
//! An [`Op`] is an operation written as data: the request to send (one command or one Lua
//! script call — one round trip either way) and a pure function that turns the reply into the
//! result. [`Redis::run`] executes it on a pooled blocking connection and
//! [`Redis::run_async`] on the shared async connection, so the blocking and async types are
//! thin shells over the same plans and cannot drift apart.

use std::sync::OnceLock;
use std::time::Duration;

use redis::{Cmd, RedisResult, Value};

use crate::error::{Error, Result};
use crate::redis::Redis;

/// A Lua script kept in its own file under `src/scripts/`. It is sent with EVALSHA and, on
/// `NOSCRIPT`, with EVAL (which also caches it on that server), so it works on any server,
/// cluster node or freshly restarted master without a separate SCRIPT LOAD.
pub(crate) struct Script {
    src: &'static str,
    sha: OnceLock<String>,
    repeat: Repeat,
}

impl Script {
    pub(crate) const fn new(src: &'static str, repeat: Repeat) -> Script {
        Script {
            src,
            sha: OnceLock::new(),
            repeat,
        }
    }

    pub(crate) fn sha(&self) -> &str {
        self.sha
            .get_or_init(|| redis::Script::new(self.src).get_hash().to_owned())
    }

    /// The script's source (for `SCRIPT LOAD`).
    pub(crate) fn source(&self) -> &'static str {
        self.src
    }

    pub(crate) fn command(&self, by_sha: bool, keys: &[Vec<u8>], args: &[Vec<u8>]) -> Cmd {
        let mut cmd = if by_sha {
            let mut c = redis::cmd("EVALSHA");
            c.arg(self.sha());
            c
        } else {
            let mut c = redis::cmd("EVAL");
            c.arg(self.src);
            c
        };
        cmd.arg(keys.len()).arg(keys).arg(args);
        cmd
    }
}

/// Defines a `static` [`Script`] from a file under `src/scripts/`, with its [`Repeat`] class.
macro_rules! script {
    ($name:ident, $file:literal, $repeat:ident) => {
        static $name: $crate::op::Script = $crate::op::Script::new(
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/scripts/", $file)),
            $crate::op::Repeat::$repeat,
        );
    };
    // Several files, one script: shared Lua functions (a prelude) and the script using them.
    ($name:ident, [$($file:literal),+], $repeat:ident) => {
        static $name: $crate::op::Script = $crate::op::Script::new(
            concat!($(include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/scripts/", $file))),+),
            $crate::op::Repeat::$repeat,
        );
    };
}

/// What may be done with an operation whose outcome is unknown (the connection broke after
/// it was sent). Every command and script pottery sends has one; see [`command_class`] and the
/// `script!` definitions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Repeat {
    /// Changes nothing stored: retried; never waits for replicas.
    Read,
    /// A write whose effect is the same applied once or twice (`HSET` of a value, `SADD`,
    /// `DEL`…): retried.
    Idempotent,
    /// A write that must not be applied twice (`HINCRBY`, pushes, pops, the scripts that
    /// return an old value): retried only when it was certainly not executed.
    Once,
}

/// The class of a command, by its name (and, for a few, its arguments). Anything not listed
/// is [`Repeat::Once`]: an unknown command is never repeated.
pub(crate) fn command_class(cmd: &Cmd) -> Repeat {
    let mut args = cmd.args_iter().map(|a| match a {
        redis::Arg::Simple(b) => b,
        _ => b"",
    });
    let name = args.next().unwrap_or(b"").to_ascii_uppercase();
    match name.as_slice() {
        b"GET" | b"HGET" | b"HMGET" | b"HGETALL" | b"HEXISTS" | b"HLEN" | b"HSCAN" | b"HKEYS"
        | b"HVALS" | b"HSTRLEN" | b"SCARD" | b"SISMEMBER" | b"SMISMEMBER" | b"SMEMBERS"
        | b"SSCAN" | b"SUNION" | b"SINTER" | b"SDIFF" | b"SRANDMEMBER" | b"LRANGE" | b"LINDEX"
        | b"LLEN" | b"LPOS" | b"EXISTS" | b"TYPE" | b"TTL" | b"PTTL" | b"PFCOUNT" | b"GETBIT"
        | b"BITCOUNT" | b"BITPOS" | b"PING" | b"ECHO" | b"SCAN" | b"DBSIZE" | b"STRLEN"
        | b"BITFIELD_RO" => Repeat::Read,
        // Setting bits (a Bloom filter's add) is idempotent; incrementing them is not.
        b"BITFIELD" => {
            if args.any(|a| a.eq_ignore_ascii_case(b"INCRBY")) {
                Repeat::Once
            } else {
                Repeat::Idempotent
            }
        }
        // Set to a value, delete, expire: the same state however often. (Their replies may
        // differ on a repeat: a retried SADD may say the member was already there.)
        b"HSET" | b"HMSET" | b"HDEL" | b"SADD" | b"SREM" | b"DEL" | b"UNLINK" | b"EXPIRE"
        | b"PEXPIRE" | b"PERSIST" | b"LSET" | b"SETBIT" | b"PFADD" | b"PFMERGE"
        | b"SUNIONSTORE" | b"SINTERSTORE" | b"HSETNX" | b"SETNX" => Repeat::Idempotent,
        // dest = dest - others is the same twice; dest = a - dest is not.
        b"SDIFFSTORE" => {
            let (dest, first) = (args.next(), args.next());
            if dest.is_some() && dest == first {
                Repeat::Idempotent
            } else {
                Repeat::Once
            }
        }
        // A plain SET is idempotent; with NX, XX or GET its reply depends on what was there.
        b"SET" => {
            let conditional = args
                .skip(2)
                .any(|a| matches!(a.to_ascii_uppercase().as_slice(), b"NX" | b"XX" | b"GET"));
            if conditional {
                Repeat::Once
            } else {
                Repeat::Idempotent
            }
        }
        _ => Repeat::Once,
    }
}
pub(crate) use script;

/// What to send.
pub(crate) enum Req {
    /// Nothing: the answer is known without asking (an empty `extend`, say).
    Nothing,
    /// One command.
    Cmd(Cmd),
    /// One Lua script call.
    Eval {
        script: &'static Script,
        keys: Vec<Vec<u8>>,
        args: Vec<Vec<u8>>,
    },
}

/// Turns the reply into the result; gets the key for error messages. A plain function
/// pointer: plans capture nothing, so they cost no allocation.
pub(crate) type DecodeFn<T> = fn(&str, Value) -> Result<T>;

/// A decoder that needs data of the plan's own (a Bloom filter's `k`, say).
pub(crate) type DecodeWith<'k, T> = Box<dyn FnOnce(&str, Value) -> Result<T> + Send + 'k>;

/// How the result is made.
pub(crate) enum Decode<'k, T> {
    /// From the reply.
    Reply(DecodeFn<T>),
    /// From the reply, with data captured by the plan.
    With(DecodeWith<'k, T>),
    /// Known in advance (with [`Req::Nothing`]).
    Ready(T),
}

impl<T> Decode<'_, T> {
    pub(crate) fn apply(self, key: &str, value: Value) -> Result<T> {
        match self {
            Decode::Reply(f) => f(key, value),
            Decode::With(f) => f(key, value),
            Decode::Ready(t) => Ok(t),
        }
    }
}

/// An operation: the request and how to read its reply.
pub(crate) struct Op<'k, T> {
    /// The key the operation is about (for errors).
    pub key: &'k str,
    /// The Redis type the key must hold (for `WrongType` errors).
    pub expected: &'static str,
    pub req: Req,
    pub decode: Decode<'k, T>,
    /// Whether failures are retried (see [`Redis::run`]); off for callers with a fallback
    /// better than waiting, such as a non-strict cache.
    pub retries: bool,
}

impl<T> Op<'_, T> {
    /// The operation's class, from its command or script.
    pub(crate) fn repeat(&self) -> Repeat {
        match &self.req {
            Req::Nothing => Repeat::Read,
            Req::Cmd(cmd) => command_class(cmd),
            Req::Eval { script, .. } => script.repeat,
        }
    }

    /// The result, from the reply (and for a durable write the reply to its `WAIT`).
    fn finish(self, durable: Option<(usize, Duration)>, reply: Vec<Value>) -> Result<T> {
        let value = match durable {
            Some((wanted, _)) => durable_reply(self.key, wanted, reply)?,
            None => reply.into_iter().next().unwrap_or(Value::Nil),
        };
        self.decode.apply(self.key, value)
    }

    /// The same operation, tried once: a failure is returned as it is, neither retried nor
    /// turned into [`Error::MaybeApplied`] (for callers with rules of their own, such as the
    /// quorum primitives, or a fallback better than waiting, such as a non-strict cache).
    pub(crate) fn without_retries(mut self) -> Self {
        self.retries = false;
        self
    }
}

impl<'k, T: Send + 'k> Op<'k, T> {
    /// The same request, its result passed through `f` (a shell's last step, such as a
    /// counter's missing field read as 0), for surfaces that run the op elsewhere (a batch).
    pub(crate) fn and_then<U>(self, f: impl FnOnce(T) -> Result<U> + Send + 'k) -> Op<'k, U> {
        let Op {
            key,
            expected,
            req,
            decode,
            retries,
        } = self;
        Op {
            key,
            expected,
            req,
            decode: Decode::With(Box::new(
                move |key: &str, v: Value| f(decode.apply(key, v)?),
            )),
            retries,
        }
    }
}

impl<'k, T> Op<'k, T> {
    pub(crate) fn cmd(key: &'k str, expected: &'static str, cmd: Cmd, decode: DecodeFn<T>) -> Self {
        Op {
            key,
            expected,
            req: Req::Cmd(cmd),
            decode: Decode::Reply(decode),
            retries: true,
        }
    }

    /// [`Op::cmd`] with a decoder that captures data.
    pub(crate) fn cmd_with(
        key: &'k str,
        expected: &'static str,
        cmd: Cmd,
        decode: impl FnOnce(&str, Value) -> Result<T> + Send + 'k,
    ) -> Self {
        Op {
            key,
            expected,
            req: Req::Cmd(cmd),
            decode: Decode::With(Box::new(decode)),
            retries: true,
        }
    }

    pub(crate) fn eval(
        key: &'k str,
        expected: &'static str,
        script: &'static Script,
        keys: Vec<Vec<u8>>,
        args: Vec<Vec<u8>>,
        decode: DecodeFn<T>,
    ) -> Self {
        Op {
            key,
            expected,
            req: Req::Eval { script, keys, args },
            decode: Decode::Reply(decode),
            retries: true,
        }
    }

    /// [`Op::eval`] with a decoder that captures data.
    pub(crate) fn eval_with(
        key: &'k str,
        expected: &'static str,
        script: &'static Script,
        keys: Vec<Vec<u8>>,
        args: Vec<Vec<u8>>,
        decode: impl FnOnce(&str, Value) -> Result<T> + Send + 'k,
    ) -> Self {
        Op {
            key,
            expected,
            req: Req::Eval { script, keys, args },
            decode: Decode::With(Box::new(decode)),
            retries: true,
        }
    }

    pub(crate) fn ready(key: &'k str, value: T) -> Self {
        Op {
            key,
            expected: "",
            req: Req::Nothing,
            decode: Decode::Ready(value),
            retries: true,
        }
    }
}

fn is_noscript(e: &redis::RedisError) -> bool {
    e.code() == Some("NOSCRIPT")
}

/// Why an attempt failed, as far as retrying is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// The request was certainly not executed: any operation may be retried.
    NotExecuted,
    /// The connection broke after the request was sent: only reads and idempotent writes may
    /// be retried.
    Unknown,
    /// Not a failover: the error is the answer (a timeout included: the response timeout is
    /// the caller's bound on waiting).
    Final,
}

fn outcome(e: &redis::RedisError, connecting: bool) -> Outcome {
    use redis::ErrorKind;
    if e.is_timeout() {
        return Outcome::Final;
    }
    if e.is_connection_refusal() {
        return Outcome::NotExecuted;
    }
    if connecting {
        // Nothing was sent. A master the sentinels cannot name yet (a failover under way), a
        // server still loading, a refused or reset connection: worth another try. Wrong
        // credentials or settings are not.
        return match e.kind() {
            ErrorKind::AuthenticationFailed
            | ErrorKind::InvalidClientConfig
            | ErrorKind::EmptySentinelList
            | ErrorKind::RESP3NotSupported
            | ErrorKind::Parse
            | ErrorKind::Client => Outcome::Final,
            ErrorKind::Server(kind) if !transient_server_error(kind) => Outcome::Final,
            _ => Outcome::NotExecuted,
        };
    }
    match e.kind() {
        ErrorKind::MasterNameNotFoundBySentinel | ErrorKind::NoValidReplicasFoundBySentinel => {
            Outcome::NotExecuted
        }
        // The server refused the request without running it (a MOVED or ASK here is a
        // redirect redis-rs did not follow: its one retry was spent, and it refreshed its
        // slots).
        ErrorKind::Server(kind) if transient_server_error(kind) => Outcome::NotExecuted,
        ErrorKind::ClusterConnectionNotFound => Outcome::NotExecuted,
        _ if e.code() == Some("NOREPLICAS") || e.code() == Some("BUSY") => Outcome::NotExecuted,
        _ if e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error() => {
            Outcome::Unknown
        }
        _ => Outcome::Final,
    }
}

/// Whether a server's error reply says the command was refused without running (a failover
/// under way), so that it may be sent again whatever its class.
pub(crate) fn not_executed(e: &redis::RedisError) -> bool {
    outcome(e, false) == Outcome::NotExecuted
}

/// Server errors that say "not now" rather than "no".
pub(crate) fn transient_server_error(kind: redis::ServerErrorKind) -> bool {
    use redis::ServerErrorKind;
    matches!(
        kind,
        ServerErrorKind::BusyLoading
            | ServerErrorKind::TryAgain
            | ServerErrorKind::ClusterDown
            | ServerErrorKind::MasterDown
            | ServerErrorKind::ReadOnly
            | ServerErrorKind::Moved
            | ServerErrorKind::Ask
    )
}

/// An attempt's failure: the error, and whether it happened while connecting (before
/// anything was sent).
pub(crate) struct Failed {
    pub(crate) error: redis::RedisError,
    pub(crate) connecting: bool,
}

/// Why an attempt returned no reply.
pub(crate) enum Failure {
    /// The server or the connection failed: maybe retried.
    Failed(Failed),
    /// Anything else (no Tokio runtime, say): returned as it is.
    Other(Error),
}

impl From<Failed> for Failure {
    fn from(f: Failed) -> Failure {
        Failure::Failed(f)
    }
}

impl Failure {
    /// A failure to get a connection: nothing was sent.
    pub(crate) fn connecting(e: Error) -> Failure {
        match e {
            Error::Redis { source, .. } => Failure::not_connected(source),
            other => Failure::Other(other),
        }
    }

    /// A connection that could not be made: nothing was sent.
    pub(crate) fn not_connected(error: redis::RedisError) -> Failure {
        Failure::Failed(Failed {
            error,
            connecting: true,
        })
    }

    /// A failure after the request was (maybe) sent.
    pub(crate) fn sent(error: redis::RedisError) -> Failure {
        Failure::Failed(Failed {
            error,
            connecting: false,
        })
    }
}

/// The retry policy of one call: until a deadline, with waits growing from 25 ms to 500 ms.
pub(crate) struct Retry {
    deadline: Option<std::time::Instant>,
    attempt: u32,
}

impl Retry {
    pub(crate) fn new(window: Duration) -> Retry {
        Retry {
            deadline: (!window.is_zero()).then(|| std::time::Instant::now() + window),
            attempt: 0,
        }
    }

    /// How long to wait before the next attempt, or `None` to give up with the error (turned
    /// into [`Error::MaybeApplied`] for a write that must not be repeated).
    pub(crate) fn next(&mut self, op: Repeat, f: &Failed) -> std::result::Result<Duration, bool> {
        match outcome(&f.error, f.connecting) {
            Outcome::Final => return Err(false),
            Outcome::Unknown if op == Repeat::Once => return Err(true),
            Outcome::Unknown | Outcome::NotExecuted => {}
        }
        let Some(deadline) = self.deadline else {
            return Err(false);
        };
        let base = Duration::from_millis(25) * 2u32.saturating_pow(self.attempt.min(5));
        let wait = base.min(Duration::from_millis(500));
        // ±25 % jitter, so that many callers do not retry in step.
        let wait = wait.mul_f64(0.75 + rand::random::<f64>() * 0.5);
        self.attempt += 1;
        let now = std::time::Instant::now();
        if now + wait >= deadline {
            return Err(false);
        }
        tracing::debug!(attempt = self.attempt, ?wait, error = %f.error, "retrying");
        Ok(wait)
    }
}

impl Retry {
    /// How long to wait before trying `op` again after `failure`, or the error the call
    /// returns.
    fn after<T>(&mut self, op: &Op<'_, T>, failure: Failure) -> Result<Duration> {
        match failure {
            Failure::Other(e) => Err(e),
            Failure::Failed(f) => self
                .next(op.repeat(), &f)
                .map_err(|maybe_applied| final_error(op, f, maybe_applied && op.retries)),
        }
    }
}

/// The error a failed call returns.
fn final_error<T>(op: &Op<'_, T>, f: Failed, maybe_applied: bool) -> Error {
    if maybe_applied {
        return Error::MaybeApplied {
            key: op.key.to_owned(),
            source: f.error,
        };
    }
    Error::redis(op.key, op.expected, f.error)
}

/// The reply of a write sent with `WAIT replicas timeout` behind it: the write's own reply,
/// or [`Error::NotDurable`] when fewer replicas confirmed it.
fn durable_reply(key: &str, wanted: usize, mut replies: Vec<Value>) -> Result<Value> {
    let acked = match replies.pop() {
        Some(Value::Int(n)) => usize::try_from(n).unwrap_or(0),
        other => {
            return Err(crate::collections::unexpected(
                key,
                "the reply to WAIT",
                &other.unwrap_or(Value::Nil),
            ));
        }
    };
    let reply = replies.pop().unwrap_or(Value::Nil);
    if acked < wanted {
        return Err(Error::NotDurable {
            key: key.to_owned(),
            acked,
            wanted,
        });
    }
    Ok(reply)
}

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

/// `WAIT replicas timeout` (at least 1 ms: 0 would wait forever).
pub(crate) fn wait_command(replicas: usize, timeout: Duration) -> Cmd {
    let mut wait = redis::cmd("WAIT");
    wait.arg(replicas).arg(
        u64::try_from(timeout.as_millis())
            .unwrap_or(u64::MAX)
            .max(1),
    );
    wait
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
        let repeat = op.repeat();
        let durable = self.durable().filter(|_| repeat != Repeat::Read);

        let mut retry = Retry::new(match timeout {
            Some(_) => Duration::ZERO,
            None if op.retries => self.retry_timeout(),
            None => Duration::ZERO,
        });
        loop {
            let mut attempt = self.attempt_sync(&op, timeout, durable);
            if let Err(failure) = &attempt
                && let Some(addr) = self.ask_target(failure)
            {
                attempt = self.follow_ask_sync(&addr, &op.req, durable, timeout);
            }
            match attempt {
                Ok(reply) => return op.finish(durable, reply),
                Err(failure) => std::thread::sleep(retry.after(&op, failure)?),
            }
        }
    }

    /// One attempt: the reply (with `WAIT`'s behind it for a durable write).
    fn attempt_sync<T>(
        &self,
        op: &Op<'_, T>,
        timeout: Option<Duration>,
        durable: Option<(usize, Duration)>,
    ) -> std::result::Result<Vec<Value>, Failure> {
        let sent = |error| Failed {
            error,
            connecting: false,
        };
        if let Req::Nothing = op.req {
            return Ok(vec![Value::Nil, Value::Int(i64::MAX)]);
        }
        let connect = || match timeout {
            Some(t) => self.connection_within(t),
            None => self.connection(),
        };
        let mut conn = connect().map_err(Failure::connecting)?;
        // A write that must not repeat goes on a connection known to be alive: after an idle
        // spell, a PING first (only a PING is lost if it died; then a new connection).
        // (Each death empties the pool, so this ends with a new connection at the latest.)
        while op.repeat() == Repeat::Once && conn.died_while_idle() {
            drop(conn);
            conn = connect().map_err(Failure::connecting)?;
        }
        let cluster = self.is_cluster();
        let mut query = |cmd: Cmd| -> RedisResult<Vec<Value>> {
            match (durable, cluster) {
                // redis-rs's blocking cluster connection sends no pipelines: the WAIT follows
                // on the same connection to the key's master (a second round trip).
                (Some((replicas, timeout)), true) => {
                    let reply = conn.pipe_query(&cmd)?;
                    // The write is applied: from here on a failure must not make it look
                    // unsent (a retry would apply it twice). A WAIT that fails confirms no
                    // replica: Error::NotDurable.
                    let acked = conn
                        .wait_for_replicas(op.key, replicas, timeout)
                        .unwrap_or(Value::Int(0));
                    Ok(vec![reply, acked])
                }
                _ => match with_wait(cmd, durable) {
                    Ok(cmd) => conn.pipe_query(&cmd).map(|v| vec![v]),
                    Err(pipe) => pipe.query(&mut conn),
                },
            }
        };
        match &op.req {
            Req::Nothing => unreachable!("answered above"),
            Req::Cmd(cmd) => query(cmd.clone()).map_err(|e| sent(e).into()),
            Req::Eval { script, keys, args } => match query(script.command(true, keys, args)) {
                Err(e) if is_noscript(&e) => query(script.command(false, keys, args)),
                other => other,
            }
            .map_err(|e| sent(e).into()),
        }
    }

    /// Runs `op` on the shared async connection, retried through failovers like
    /// [`Redis::run`].
    pub(crate) async fn run_async<T>(&self, op: Op<'_, T>) -> Result<T> {
        let repeat = op.repeat();
        let durable = self.durable().filter(|_| repeat != Repeat::Read);
        let mut retry = Retry::new(if op.retries {
            self.retry_timeout()
        } else {
            Duration::ZERO
        });
        // As the blocking `attempt_sync` does for its pooled connection.
        if self.async_used(None) && repeat == Repeat::Once {
            self.check_idle_async(op.key).await;
        }
        loop {
            let mut attempt = self.attempt_async(&op.req, durable).await;
            if let Err(failure) = &attempt
                && let Some(addr) = self.ask_target(failure)
            {
                attempt = self.follow_ask_async(&addr, &op.req, durable).await;
            }
            match attempt {
                Ok(reply) => return op.finish(durable, reply),
                Err(failure) => {
                    let wait = retry.after(&op, failure)?;
                    // A cluster connection that saw a redirect or a dead node is replaced (a
                    // fresh one reads the slots anew): pottery follows redirects itself, since
                    // redis-rs's own retries may send a write twice.
                    self.forget_async_cluster_connection();
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// One attempt (given the request only: the decoder need not be `Sync`).
    async fn attempt_async(
        &self,
        req: &Req,
        durable: Option<(usize, Duration)>,
    ) -> std::result::Result<Vec<Value>, Failure> {
        if let Req::Nothing = req {
            return Ok(vec![Value::Nil, Value::Int(i64::MAX)]);
        }
        let mut conn = self.async_connection().await.map_err(Failure::connecting)?;
        let sent = |error| Failed {
            error,
            connecting: false,
        };
        let cmd = match req {
            Req::Nothing => unreachable!("answered above"),
            Req::Cmd(cmd) => cmd.clone(),
            Req::Eval { script, keys, args } => script.command(true, keys, args),
        };
        let first = match with_wait(cmd, durable) {
            Ok(cmd) => cmd.query_async(&mut conn).await.map(|v| vec![v]),
            Err(pipe) => pipe.query_async(&mut conn).await,
        };
        match (req, first) {
            (Req::Eval { script, keys, args }, Err(e)) if is_noscript(&e) => {
                match with_wait(script.command(false, keys, args), durable) {
                    Ok(cmd) => cmd.query_async(&mut conn).await.map(|v| vec![v]),
                    Err(pipe) => pipe.query_async(&mut conn).await,
                }
                .map_err(|e| sent(e).into())
            }
            (_, r) => r.map_err(|e| sent(e).into()),
        }
    }
}

impl Redis {
    /// Before a write that must not repeat, when the handle's async connections sat idle for
    /// [`IDLE_CHECK`](crate::redis::IDLE_CHECK): a read of its key first (`EXISTS`, routed
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
        .is_err_and(|e| crate::redis::poisons(&e))
}

/// Following `ASK`: while a cluster slot migrates, its master answers `ASK <slot> <node>` for
/// keys already moved to the importing node, which serves a request only after `ASKING` on
/// the same connection. pottery follows the redirect at once, whatever the retry window: it
/// is not a failover to wait out (the migration may take minutes), and the request did not
/// run (redis-rs's cluster client, which pottery keeps from retrying, would have followed it).
impl Redis {
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
    ) -> std::result::Result<Vec<Value>, Failure> {
        use redis::ConnectionLike;
        let (pipe, n) = asking_pipeline(req, durable);
        let mut conn = self
            .node_blocking_connection(addr, timeout)
            .map_err(Failure::not_connected)?;
        conn.req_packed_commands(&pipe.get_packed_pipeline(), 1, n)
            .and_then(own_replies)
            .map_err(Failure::sent)
    }

    /// Sends `req` to the importing node at `addr` on the handle's direct connection to it.
    async fn follow_ask_async(
        &self,
        addr: &str,
        req: &Req,
        durable: Option<(usize, Duration)>,
    ) -> std::result::Result<Vec<Value>, Failure> {
        use redis::aio::ConnectionLike;
        let (pipe, n) = asking_pipeline(req, durable);
        let mut conn = self
            .node_connection(addr)
            .await
            .map_err(Failure::not_connected)?;
        conn.req_packed_commands(&pipe, 1, n)
            .await
            .and_then(own_replies)
            .map_err(|e| {
                if crate::redis::poisons(&e) {
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

/// The replies of a pipeline, or the first error reply among them, as a query gives it.
fn own_replies(replies: Vec<Value>) -> RedisResult<Vec<Value>> {
    match replies.iter().find_map(|v| match v {
        Value::ServerError(e) => Some(e.clone()),
        _ => None,
    }) {
        Some(e) => Err(e.into()),
        None => Ok(replies),
    }
}

trait PipeQuery {
    fn pipe_query(&mut self, cmd: &Cmd) -> RedisResult<Value>;
}

impl<C: redis::ConnectionLike> PipeQuery for C {
    fn pipe_query(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        cmd.query(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(args: &[&str]) -> Repeat {
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        command_class(&cmd)
    }

    #[test]
    fn commands_are_classed_by_what_a_repeat_would_do() {
        for read in [
            &["HGET", "k", "f"][..],
            &["LRANGE", "k", "0", "-1"],
            &["BITFIELD_RO", "k"],
        ] {
            assert_eq!(class(read), Repeat::Read, "{read:?}");
        }
        for same in [
            &["HSET", "k", "f", "v"][..],
            &["SADD", "k", "m"],
            &["DEL", "k"],
            &["SET", "k", "v", "PX", "10"],
            &["SDIFFSTORE", "k", "k", "o"],
            &["BITFIELD", "k", "SET", "u1", "3", "1"],
            &["sunionstore", "d", "a", "d"],
        ] {
            assert_eq!(class(same), Repeat::Idempotent, "{same:?}");
        }
        for once in [
            &["HINCRBY", "k", "f", "1"][..],
            &["RPUSH", "k", "v"],
            &["LPOP", "k"],
            &["SPOP", "k"],
            &["SET", "k", "v", "NX", "PX", "10"],
            &["SET", "k", "v", "get"],
            &["SDIFFSTORE", "d", "a", "d"],
            &["BITFIELD", "k", "INCRBY", "u8", "0", "1"],
            &["LTRIM", "k", "1", "-1"],
            &["SOMETHING", "new"],
        ] {
            assert_eq!(class(once), Repeat::Once, "{once:?}");
        }
    }

    fn failed(error: redis::RedisError, connecting: bool) -> Failed {
        Failed { error, connecting }
    }

    #[test]
    fn only_writes_that_may_repeat_are_retried_after_an_unknown_outcome() {
        let reset =
            || redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        let refused =
            || redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        let timeout =
            || redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut));
        let loading = || {
            redis::RedisError::from((
                redis::ErrorKind::Server(redis::ServerErrorKind::BusyLoading),
                "LOADING",
            ))
        };
        let window = Duration::from_secs(60);
        // Sent, connection reset: unknown outcome.
        assert!(
            Retry::new(window)
                .next(Repeat::Idempotent, &failed(reset(), false))
                .is_ok()
        );
        assert!(
            Retry::new(window)
                .next(Repeat::Read, &failed(reset(), false))
                .is_ok()
        );
        assert_eq!(
            Retry::new(window).next(Repeat::Once, &failed(reset(), false)),
            Err(true)
        );
        // Refused, or failed while connecting, or LOADING: certainly not executed.
        for op in [Repeat::Once, Repeat::Idempotent] {
            assert!(
                Retry::new(window)
                    .next(op, &failed(refused(), false))
                    .is_ok()
            );
            assert!(Retry::new(window).next(op, &failed(reset(), true)).is_ok());
            assert!(
                Retry::new(window)
                    .next(op, &failed(loading(), false))
                    .is_ok()
            );
            // A timeout is the answer (the caller's bound), for every class.
            assert_eq!(
                Retry::new(window).next(op, &failed(timeout(), false)),
                Err(false)
            );
        }
        // Retries off.
        assert_eq!(
            Retry::new(Duration::ZERO).next(Repeat::Read, &failed(refused(), false)),
            Err(false)
        );
    }
}
