//! What a request means to the near cache: a read it may serve, a write whose keys it must
//! invalidate, or neither.

use redis::{Arg, Cmd};

use crate::exec::plan::{Repeat, Req};

/// A read the near cache may answer: one key, a deterministic reply.
#[derive(Clone)]
pub(crate) struct Read {
    pub key: Vec<u8>,
    /// The read's identity ([`write_ident`]): with the key, what identifies the cached reply.
    pub ident: Vec<u8>,
}

/// Appends one piece of a read's identity: its length, then its bytes.
pub(crate) fn push_ident(out: &mut Vec<u8>, piece: &[u8]) {
    // A piece longer than 4 GiB is not a command argument Redis takes.
    out.extend_from_slice(&u32::try_from(piece.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(piece);
}

/// Writes the identity of a cached read `cmd` (one that [`cached_read_key`] accepts) into
/// `out`: its name in capitals and every argument but the key, each with its length. With the
/// key, it tells one cached reply from another (`HGET h a` from `HGET h b`), and it is cheaper
/// to make than the packed command.
pub(crate) fn write_ident(cmd: &Cmd, out: &mut Vec<u8>) {
    for (i, arg) in cmd.args_iter().map(simple).enumerate() {
        match i {
            0 => {
                let start = out.len() + 4;
                push_ident(out, arg);
                out[start..].make_ascii_uppercase();
            }
            1 => {}
            _ => push_ident(out, arg),
        }
    }
}

/// The keys a write may change.
pub(crate) enum Touched {
    Keys(Vec<Vec<u8>>),
    /// Unknown: everything.
    All,
}

pub(crate) enum Plan {
    Read(Read),
    Write(Touched),
    /// A read that is not cached (iteration, scripts, random or time-dependent replies).
    Pass,
}

fn simple(a: Arg<&[u8]>) -> &[u8] {
    match a {
        Arg::Simple(b) => b,
        _ => b"",
    }
}

/// Reads of one key (the first argument) whose reply depends only on the key's value.
fn cacheable(name: &[u8]) -> bool {
    matches!(
        name,
        b"GET"
            | b"STRLEN"
            | b"HGET"
            | b"HMGET"
            | b"HGETALL"
            | b"HEXISTS"
            | b"HLEN"
            | b"HKEYS"
            | b"HVALS"
            | b"HSTRLEN"
            | b"SCARD"
            | b"SISMEMBER"
            | b"SMISMEMBER"
            | b"SMEMBERS"
            | b"LRANGE"
            | b"LINDEX"
            | b"LLEN"
            | b"EXISTS"
            | b"TYPE"
    )
}

/// Writes whose keys are not among their arguments (or that change other databases).
fn touches_all(name: &[u8]) -> bool {
    matches!(
        name,
        b"FLUSHDB" | b"FLUSHALL" | b"SWAPDB" | b"SELECT" | b"MOVE" | b"COPY" | b"MULTI" | b"EXEC"
    )
}

/// What `req` (of class `repeat`) means to the near cache.
pub(crate) fn plan(req: &Req, repeat: Repeat) -> Plan {
    match req {
        Req::Nothing => Plan::Pass,
        Req::Eval { keys, .. } => {
            if repeat == Repeat::Read {
                Plan::Pass
            } else {
                Plan::Write(Touched::Keys(keys.clone()))
            }
        }
        Req::Cmd(cmd) => plan_cmd(cmd, repeat),
    }
}

/// A command's name in capitals, in `buf` (no allocation); `None` when longer than any name
/// the near cache knows.
fn upper<'b>(raw: &[u8], buf: &'b mut [u8; 16]) -> Option<&'b [u8]> {
    let name = buf.get_mut(..raw.len())?;
    name.copy_from_slice(raw);
    name.make_ascii_uppercase();
    Some(name)
}

/// The key of a command the near cache may answer (a read of one key whose reply depends
/// only on the key's value), without allocating; `None` for any other command. Every such
/// command is of class [`Repeat::Read`].
pub(crate) fn cached_read_key(cmd: &Cmd) -> Option<&[u8]> {
    let mut args = cmd.args_iter().map(simple);
    let mut buf = [0u8; 16];
    let name = upper(args.next().unwrap_or(b""), &mut buf)?;
    if !cacheable(name) {
        return None;
    }
    let key = args.next()?;
    // EXISTS of several keys is several keys' business.
    if name == b"EXISTS" && args.next().is_some() {
        return None;
    }
    Some(key)
}

pub(crate) fn plan_cmd(cmd: &Cmd, repeat: Repeat) -> Plan {
    if repeat == Repeat::Read {
        return match cached_read_key(cmd) {
            Some(key) => Plan::Read(Read {
                key: key.to_vec(),
                ident: {
                    let mut ident = Vec::new();
                    write_ident(cmd, &mut ident);
                    ident
                },
            }),
            None => Plan::Pass,
        };
    }
    let mut args = cmd.args_iter().map(simple);
    let mut buf = [0u8; 16];
    if upper(args.next().unwrap_or(b""), &mut buf).is_some_and(touches_all) {
        return Plan::Write(Touched::All);
    }
    // Every argument that could be a key: a superset of the keys, whatever their positions.
    Plan::Write(Touched::Keys(args.map(<[u8]>::to_vec).collect()))
}

/// The keys a batch's writes may change.
pub(crate) fn batch_touched<'a>(reqs: impl Iterator<Item = (&'a Req, Repeat)>) -> Option<Touched> {
    let mut keys = Vec::new();
    for (req, repeat) in reqs {
        match plan(req, repeat) {
            Plan::Write(Touched::All) => return Some(Touched::All),
            Plan::Write(Touched::Keys(k)) => keys.extend(k),
            Plan::Read(_) | Plan::Pass => {}
        }
    }
    (!keys.is_empty()).then_some(Touched::Keys(keys))
}

/// A RESP3 reply in the shape RESP2 gives it (what pottery's decoders read): maps and sets
/// as flat arrays, booleans as integers, doubles and verbatim strings as bulk strings.
pub(crate) fn resp2(v: redis::Value) -> redis::Value {
    use redis::Value;
    match v {
        Value::Map(pairs) => Value::Array(
            pairs
                .into_iter()
                .flat_map(|(k, v)| [resp2(k), resp2(v)])
                .collect(),
        ),
        Value::Set(items) | Value::Array(items) => {
            Value::Array(items.into_iter().map(resp2).collect())
        }
        Value::Boolean(b) => Value::Int(i64::from(b)),
        Value::Double(d) => Value::BulkString(d.to_string().into_bytes()),
        Value::VerbatimString { text, .. } => Value::BulkString(text.into_bytes()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        let mut hget = redis::cmd("HGET");
        hget.arg("h").arg("f");
        assert!(matches!(plan_cmd(&hget, Repeat::Read), Plan::Read(r) if r.key == b"h"));
        let mut ex = redis::cmd("EXISTS");
        ex.arg("a").arg("b");
        assert!(matches!(plan_cmd(&ex, Repeat::Read), Plan::Pass));
        let mut hset = redis::cmd("HSET");
        hset.arg("h").arg("f").arg("v");
        assert!(
            matches!(plan_cmd(&hset, Repeat::Idempotent), Plan::Write(Touched::Keys(k)) if k[0] == b"h")
        );
        let flush = redis::cmd("flushdb");
        assert!(matches!(
            plan_cmd(&flush, Repeat::Once),
            Plan::Write(Touched::All)
        ));
        // The identity: the name in capitals and the arguments after the key.
        let mut lower = redis::cmd("hget");
        lower.arg("h").arg("f");
        let (mut a, mut b) = (Vec::new(), Vec::new());
        write_ident(&hget, &mut a);
        write_ident(&lower, &mut b);
        assert_eq!(a, b);
        assert_eq!(a, b"\x04\0\0\0HGET\x01\0\0\0f");
        let mut other = redis::cmd("HGET");
        other.arg("other").arg("f");
        b.clear();
        write_ident(&other, &mut b);
        assert_eq!(a, b, "the key is not part of the identity");
        let mut long = redis::cmd("AVERYLONGCOMMANDNAME");
        long.arg("k");
        assert!(cached_read_key(&long).is_none());
        assert!(matches!(
            plan_cmd(&long, Repeat::Once),
            Plan::Write(Touched::Keys(k)) if k == [b"k".to_vec()]
        ));
    }

    /// Every read the near cache answers is of class `Read` (its hit path, which answers
    /// before the class is computed, relies on it).
    #[test]
    fn cached_reads_are_reads() {
        for name in [
            "GET",
            "STRLEN",
            "HGET",
            "HMGET",
            "HGETALL",
            "HEXISTS",
            "HLEN",
            "HKEYS",
            "HVALS",
            "HSTRLEN",
            "SCARD",
            "SISMEMBER",
            "SMISMEMBER",
            "SMEMBERS",
            "LRANGE",
            "LINDEX",
            "LLEN",
            "EXISTS",
            "TYPE",
            "hget",
        ] {
            let mut cmd = redis::cmd(name);
            cmd.arg("k").arg("x");
            if name == "EXISTS" {
                cmd = redis::cmd(name);
                cmd.arg("k");
            }
            assert_eq!(cached_read_key(&cmd), Some(&b"k"[..]), "{name}");
            assert_eq!(
                crate::exec::plan::command_class(&cmd),
                Repeat::Read,
                "{name}"
            );
        }
    }
}
