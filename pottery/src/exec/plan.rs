//! Plans: an operation written as data — the request to send (one command or one Lua script
//! call: one round trip either way) and a pure function that turns the reply into the result.
//! [`Redis::run`](crate::Redis) and `run_async` (in `client/run.rs`) execute a plan; the
//! blocking, async and batch surfaces of every structure are made from the same plans.

use std::sync::OnceLock;
use std::time::Duration;

use redis::{Cmd, Value};

use super::reply::durable_reply;
use crate::error::Result;

/// A Lua script kept in its own file under `src/scripts/`. It is sent with EVALSHA and, on
/// `NOSCRIPT`, with EVAL (which also caches it on that server), so it works on any server,
/// cluster node or freshly restarted master without a separate SCRIPT LOAD.
pub(crate) struct Script {
    /// The file's name without `.lua` (for spans).
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    name: &'static str,
    src: &'static str,
    sha: OnceLock<String>,
    repeat: Repeat,
}

impl Script {
    pub(crate) const fn new(name: &'static str, src: &'static str, repeat: Repeat) -> Script {
        Script {
            name,
            src,
            sha: OnceLock::new(),
            repeat,
        }
    }

    /// The script's name: its file's, without `.lua`.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) fn name(&self) -> &'static str {
        self.name.strip_suffix(".lua").unwrap_or(self.name)
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
        let (name, body) = if by_sha {
            ("EVALSHA", self.sha())
        } else {
            ("EVAL", self.src)
        };
        // Sized once (growing it argument by argument cost an allocation or four per call):
        // the name, the body, the key count (at most 20 digits), the keys and arguments.
        let bytes = name.len()
            + body.len()
            + 20
            + keys.iter().map(Vec::len).sum::<usize>()
            + args.iter().map(Vec::len).sum::<usize>();
        let mut cmd = Cmd::with_capacity(3 + keys.len() + args.len(), bytes);
        cmd.arg(name).arg(body).arg(keys.len()).arg(keys).arg(args);
        cmd
    }
}

/// Defines a `static` [`Script`] from a file under `src/scripts/`, with its [`Repeat`] class.
macro_rules! script {
    ($name:ident, $file:literal, $repeat:ident) => {
        static $name: $crate::exec::plan::Script = $crate::exec::plan::Script::new(
            $file,
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/scripts/", $file)),
            $crate::exec::plan::Repeat::$repeat,
        );
    };
    // Several files, one script: shared Lua functions (a prelude) and the script using them.
    ($name:ident, [$($file:literal),+], $repeat:ident) => {
        static $name: $crate::exec::plan::Script = $crate::exec::plan::Script::new(
            [$($file),+][[$($file),+].len() - 1],
            concat!($(include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/scripts/", $file))),+),
            $crate::exec::plan::Repeat::$repeat,
        );
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
    pub(crate) fn apply(self, key: &str, value: Value) -> Result<T> {
        match self {
            Decode::Reply(f) => f(key, value),
            Decode::With(f) => f(key, value),
            Decode::Ready(t) => Ok(t),
        }
    }
}

/// An attempt's replies: the request's alone (most calls: no allocation), or every reply of
/// its pipeline (the request's, then a durable write's `WAIT`'s).
pub(crate) enum Replies {
    One(Value),
    All(Vec<Value>),
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
    /// The pottery operation, for spans (`RedisDict.insert`); empty: named by its command.
    pub name: &'static str,
}

/// What running an operation needs besides its decoder: the run machinery below the decoder
/// takes this, so it is not generic (one copy of it, whatever the reply's type), and it holds
/// no decoder across an await (a decoder need not be `Sync`).
#[derive(Clone, Copy)]
pub(crate) struct Head<'a> {
    /// The key the operation is about (for errors).
    pub key: &'a str,
    /// The Redis type the key must hold (for `WrongType` errors).
    pub expected: &'static str,
    pub req: &'a Req,
    /// Whether failures are retried (see [`Op::retries`]).
    pub retries: bool,
}

impl Head<'_> {
    /// The operation's class, from its command or script.
    pub(crate) fn repeat(&self) -> Repeat {
        match self.req {
            Req::Nothing => Repeat::Read,
            Req::Cmd(cmd) => command_class(cmd),
            Req::Eval { script, .. } => script.repeat,
        }
    }
}

impl<T> Op<'_, T> {
    /// The operation's class, from its command or script.
    pub(crate) fn repeat(&self) -> Repeat {
        self.head().repeat()
    }

    /// What running it needs besides its decoder.
    pub(crate) fn head(&self) -> Head<'_> {
        Head {
            key: self.key,
            expected: self.expected,
            req: &self.req,
            retries: self.retries,
        }
    }

    /// The result, from the reply (and for a durable write the reply to its `WAIT`).
    pub(crate) fn finish(self, durable: Option<(usize, Duration)>, reply: Replies) -> Result<T> {
        let value = match (durable, reply) {
            (Some((wanted, _)), Replies::All(reply)) => durable_reply(self.key, wanted, reply)?,
            (Some((wanted, _)), Replies::One(reply)) => {
                durable_reply(self.key, wanted, vec![reply])?
            }
            (None, Replies::One(reply)) => reply,
            (None, Replies::All(reply)) => reply.into_iter().next().unwrap_or(Value::Nil),
        };
        self.decode.apply(self.key, value)
    }

    /// The result, from a single reply (no `WAIT` behind it).
    pub(crate) fn finish_one(self, reply: Value) -> Result<T> {
        self.decode.apply(self.key, reply)
    }

    /// The same operation, tried once: a failure is returned as it is, neither retried nor
    /// turned into [`Error::MaybeApplied`] (for callers with rules of their own, such as the
    /// quorum primitives, or a fallback better than waiting, such as a non-strict cache).
    pub(crate) fn without_retries(mut self) -> Self {
        self.retries = false;
        self
    }

    /// The same operation, named for spans (`RedisDict.insert`).
    pub(crate) fn named(mut self, name: &'static str) -> Self {
        self.name = name;
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
            name,
        } = self;
        Op {
            key,
            expected,
            req,
            decode: Decode::With(Box::new(
                move |key: &str, v: Value| f(decode.apply(key, v)?),
            )),
            retries,
            name,
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
            name: "",
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
            name: "",
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
            name: "",
        }
    }

    /// [`Op::eval`] of a script whose one key is the operation's `key`.
    pub(crate) fn eval_key(
        key: &'k str,
        expected: &'static str,
        script: &'static Script,
        args: Vec<Vec<u8>>,
        decode: DecodeFn<T>,
    ) -> Self {
        Op::eval(
            key,
            expected,
            script,
            vec![key.as_bytes().to_vec()],
            args,
            decode,
        )
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
            name: "",
        }
    }

    pub(crate) fn ready(key: &'k str, value: T) -> Self {
        Op {
            key,
            expected: "",
            req: Req::Nothing,
            decode: Decode::Ready(value),
            retries: true,
            name: "",
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
    // The name in capitals, without allocating (every call classes its command): a longer
    // name than any listed is `Once` whatever it is.
    let raw = args.next().unwrap_or(b"");
    let mut upper = [0u8; 16];
    let Some(name) = upper.get_mut(..raw.len()) else {
        return Repeat::Once;
    };
    name.copy_from_slice(raw);
    name.make_ascii_uppercase();
    match &*name {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A script call is packed as it was when built argument by argument.
    #[test]
    fn script_command_as_built_argument_by_argument() {
        static S: Script = Script::new("s.lua", "return 1", Repeat::Read);
        let keys = vec![b"k1".to_vec(), b"k2".to_vec()];
        let args = vec![b"a".to_vec(), Vec::new(), vec![0xff; 40]];
        for by_sha in [true, false] {
            let mut old = redis::cmd(if by_sha { "EVALSHA" } else { "EVAL" });
            old.arg(if by_sha { S.sha() } else { S.source() })
                .arg(keys.len())
                .arg(&keys[..])
                .arg(&args[..]);
            let new = S.command(by_sha, &keys, &args);
            assert_eq!(new.get_packed_command(), old.get_packed_command());
            assert_eq!(S.command(by_sha, &[], &[]).args_iter().count(), 3);
        }
    }
}
