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
}

impl Script {
    pub(crate) const fn new(src: &'static str) -> Script {
        Script {
            src,
            sha: OnceLock::new(),
        }
    }

    fn sha(&self) -> &str {
        self.sha
            .get_or_init(|| redis::Script::new(self.src).get_hash().to_owned())
    }

    fn command(&self, by_sha: bool, keys: &[Vec<u8>], args: &[Vec<u8>]) -> Cmd {
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

/// Defines a `static` [`Script`] from a file under `src/scripts/`.
macro_rules! script {
    ($name:ident, $file:literal) => {
        static $name: $crate::op::Script = $crate::op::Script::new(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/scripts/",
            $file
        )));
    };
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
    fn apply(self, key: &str, value: Value) -> Result<T> {
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
}

impl<'k, T> Op<'k, T> {
    pub(crate) fn cmd(key: &'k str, expected: &'static str, cmd: Cmd, decode: DecodeFn<T>) -> Self {
        Op {
            key,
            expected,
            req: Req::Cmd(cmd),
            decode: Decode::Reply(decode),
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
        }
    }

    pub(crate) fn ready(key: &'k str, value: T) -> Self {
        Op {
            key,
            expected: "",
            req: Req::Nothing,
            decode: Decode::Ready(value),
        }
    }
}

fn is_noscript(e: &redis::RedisError) -> bool {
    e.code() == Some("NOSCRIPT")
}

impl Redis {
    /// Runs `op` on a pooled blocking connection: one round trip (two the first time a script
    /// meets a server that does not know it yet).
    pub(crate) fn run<T>(&self, op: Op<'_, T>) -> Result<T> {
        self.run_within(op, None)
    }

    /// [`Redis::run`] with replies bounded by `timeout` rather than the handle's response
    /// timeout.
    pub(crate) fn run_within<T>(&self, op: Op<'_, T>, timeout: Option<Duration>) -> Result<T> {
        let connect = || match timeout {
            Some(t) => self.connection_within(t),
            None => self.connection(),
        };
        let reply: RedisResult<Value> = match &op.req {
            Req::Nothing => Ok(Value::Nil),
            Req::Cmd(cmd) => connect().map_err(|e| rekey(e, op.key))?.pipe_query(cmd),
            Req::Eval { script, keys, args } => {
                let mut conn = connect().map_err(|e| rekey(e, op.key))?;
                match conn.pipe_query(&script.command(true, keys, args)) {
                    Err(e) if is_noscript(&e) => {
                        conn.pipe_query(&script.command(false, keys, args))
                    }
                    other => other,
                }
            }
        };
        let value = reply.map_err(|e| Error::redis(op.key, op.expected, e))?;
        op.decode.apply(op.key, value)
    }

    /// Runs `op` on the shared async connection.
    pub(crate) async fn run_async<T>(&self, op: Op<'_, T>) -> Result<T> {
        let reply: RedisResult<Value> = match &op.req {
            Req::Nothing => Ok(Value::Nil),
            Req::Cmd(cmd) => {
                let mut conn = self
                    .async_connection()
                    .await
                    .map_err(|e| rekey(e, op.key))?;
                cmd.query_async(&mut conn).await
            }
            Req::Eval { script, keys, args } => {
                let mut conn = self
                    .async_connection()
                    .await
                    .map_err(|e| rekey(e, op.key))?;
                match script
                    .command(true, keys, args)
                    .query_async(&mut conn)
                    .await
                {
                    Err(e) if is_noscript(&e) => {
                        script
                            .command(false, keys, args)
                            .query_async(&mut conn)
                            .await
                    }
                    other => other,
                }
            }
        };
        let value = reply.map_err(|e| Error::redis(op.key, op.expected, e))?;
        op.decode.apply(op.key, value)
    }
}

/// Attaches the key to a connection error.
fn rekey(e: Error, key: &str) -> Error {
    match e {
        Error::Redis { key: None, source } => Error::Redis {
            key: Some(key.to_owned()),
            source,
        },
        other => other,
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
