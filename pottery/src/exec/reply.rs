//! Reading replies: decoders shared by every plan (integers, bulk strings, lengths, SCAN
//! pages, set members), the codec glue that names the key in its errors, and the replies of
//! a durable write's `WAIT` and of pipelines.

use redis::{RedisResult, Value};
use serde::de::DeserializeOwned;

use crate::codec;
use crate::error::{Error, Result};

/// An error for a reply of a shape the operation cannot produce.
pub(crate) fn unexpected(key: &str, what: &str, value: &Value) -> Error {
    Error::Redis {
        key: Some(key.to_owned()),
        source: redis::RedisError::from((
            redis::ErrorKind::UnexpectedReturnType,
            "unexpected reply",
            format!("expected {what}, got {value:?}"),
        )),
    }
}

/// The bytes of a bulk-string reply, `None` for nil.
pub(crate) fn bulk(key: &str, value: Value) -> Result<Option<Vec<u8>>> {
    match value {
        Value::Nil => Ok(None),
        Value::BulkString(b) => Ok(Some(b)),
        Value::SimpleString(s) => Ok(Some(s.into_bytes())),
        Value::VerbatimString { text, .. } => Ok(Some(text.into_bytes())),
        other => Err(unexpected(key, "a string or nil", &other)),
    }
}

/// Decodes one pottery-JSON value read at `key`.
#[inline]
pub(crate) fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T> {
    codec::decode(bytes).map_err(|e| Error::codec(key, e))
}

/// Decodes the value of hash field `field` (its stored bytes) read at `key`; an error names
/// the field, since the key alone does not say which value failed.
pub(crate) fn decode_value_of<T: DeserializeOwned>(
    key: &str,
    field: &[u8],
    bytes: &[u8],
) -> Result<T> {
    codec::decode(bytes).map_err(|e| {
        Error::codec(
            key,
            codec::CodecError::new(format!(
                "the value of field {}: {e}",
                String::from_utf8_lossy(field)
            )),
        )
    })
}

/// Encodes one value to be written at `key`.
pub(crate) fn encode<T: serde::Serialize + ?Sized>(key: &str, value: &T) -> Result<Vec<u8>> {
    codec::encode_bytes(value).map_err(|e| Error::codec(key, e))
}

/// Encodes one value as the next argument of `cmd`, through a buffer reused by the thread's
/// calls (no allocation of its own per call).
pub(crate) fn encode_arg<T: serde::Serialize + ?Sized>(
    cmd: &mut redis::Cmd,
    key: &str,
    value: &T,
) -> Result<()> {
    thread_local! {
        static BUF: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }
    /// A buffer grown past this is let go after use (one large value keeps no memory).
    const KEPT: usize = 16 * 1024;
    BUF.with(|buf| match buf.try_borrow_mut() {
        Ok(mut buf) => {
            let r = encode_into(key, value, &mut buf).map(|()| {
                cmd.arg(buf.as_bytes());
            });
            if buf.capacity() > KEPT {
                *buf = String::new();
            }
            r
        }
        // A value whose `Serialize` encodes another one through pottery: its own buffer.
        Err(_) => {
            cmd.arg(encode(key, value)?);
            Ok(())
        }
    })
}

/// Encodes one value into a reused buffer (bulk calls).
pub(crate) fn encode_into<T: serde::Serialize + ?Sized>(
    key: &str,
    value: &T,
    out: &mut String,
) -> Result<()> {
    codec::encode_into(value, out).map_err(|e| Error::codec(key, e))
}

/// Decodes an optional bulk reply.
pub(crate) fn decode_opt<T: DeserializeOwned>(key: &str, value: Value) -> Result<Option<T>> {
    bulk(key, value)?.map(|b| decode(key, &b)).transpose()
}

/// Decodes the optional bulk reply of a write that has already been applied (the value it
/// replaced or removed): bytes that do not decode are [`Error::UndecodableAfterWrite`], which
/// says so and keeps them.
pub(crate) fn decode_written<T: DeserializeOwned>(key: &str, value: Value) -> Result<Option<T>> {
    match bulk(key, value)? {
        None => Ok(None),
        Some(raw) => match codec::decode(&raw) {
            Ok(v) => Ok(Some(v)),
            Err(source) => Err(Error::UndecodableAfterWrite {
                key: key.to_owned(),
                raw,
                source,
            }),
        },
    }
}

/// An integer reply.
pub(crate) fn int(key: &str, value: Value) -> Result<i64> {
    match value {
        Value::Int(i) => Ok(i),
        other => Err(unexpected(key, "an integer", &other)),
    }
}

/// A count the server cannot make negative (a sorted set's size, a delivery count, a
/// remaining budget): a negative one is an unexpected reply, never a silent 0.
pub(crate) fn count(key: &str, n: i64) -> Result<u64> {
    u64::try_from(n).map_err(|_| unexpected(key, "a count", &Value::Int(n)))
}

/// Time left, in a unit of the server's clock: a negative value (the moment passed between the
/// server's reading of its clock and its reply) is exactly "none left".
pub(crate) fn time_left(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// A length or count reply (`HLEN`, `SCARD`, `PFCOUNT`…): a negative one, which no server
/// sends, is an unexpected reply rather than a silent 0.
pub(crate) fn length(key: &str, value: Value) -> Result<usize> {
    match value {
        Value::Int(i) => {
            usize::try_from(i).map_err(|_| unexpected(key, "a length", &Value::Int(i)))
        }
        other => Err(unexpected(key, "a length", &other)),
    }
}

/// The reply of a SCAN-family command: the next cursor and this page's flat items.
pub(crate) fn scan_page(key: &str, value: Value) -> Result<(u64, Vec<Vec<u8>>)> {
    let bad = |v: &Value| unexpected(key, "a scan page", v);
    let Value::Array(mut parts) = value else {
        return Err(bad(&value));
    };
    if parts.len() != 2 {
        return Err(bad(&Value::Array(parts)));
    }
    let items = parts.pop().unwrap_or(Value::Nil);
    let cursor = parts.pop().unwrap_or(Value::Nil);
    let cursor = match bulk(key, cursor)? {
        Some(c) => std::str::from_utf8(&c)
            .ok()
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| bad(&Value::BulkString(c)))?,
        None => return Err(bad(&Value::Nil)),
    };
    let Value::Array(items) = items else {
        return Err(bad(&items));
    };
    let items = items
        .into_iter()
        .map(|v| bulk(key, v)?.ok_or_else(|| bad(&Value::Nil)))
        .collect::<Result<Vec<_>>>()?;
    Ok((cursor, items))
}

/// The members of a set reply, as raw bytes.
pub(crate) fn members(key: &str, value: Value) -> Result<Vec<Vec<u8>>> {
    let items = match value {
        Value::Array(items) | Value::Set(items) => items,
        Value::Nil => Vec::new(),
        other => return Err(unexpected(key, "an array", &other)),
    };
    items
        .into_iter()
        .map(|v| bulk(key, v).map(Option::unwrap_or_default))
        .collect()
}

/// The reply of a write sent with `WAIT replicas timeout` behind it: the write's own reply,
/// or [`Error::NotDurable`] when fewer replicas confirmed it.
pub(crate) fn durable_reply(key: &str, wanted: usize, mut replies: Vec<Value>) -> Result<Value> {
    let acked = match replies.pop() {
        Some(Value::Int(n)) => usize::try_from(n)
            .map_err(|_| crate::exec::reply::unexpected(key, "a replica count", &Value::Int(n)))?,
        other => {
            return Err(crate::exec::reply::unexpected(
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

/// The replies of a pipeline, or the first error reply among them, as a query gives it.
pub(crate) fn own_replies(replies: Vec<Value>) -> RedisResult<Vec<Value>> {
    match replies.iter().find_map(|v| match v {
        Value::ServerError(e) => Some(e.clone()),
        _ => None,
    }) {
        Some(e) => Err(e.into()),
        None => Ok(replies),
    }
}

#[cfg(test)]
mod tests {
    use super::{encode, encode_arg};

    /// A value whose `Serialize` encodes another value as a command argument while the
    /// thread's buffer is in use (it gets a buffer of its own).
    struct Nested;

    impl serde::Serialize for Nested {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut inner = redis::cmd("X");
            encode_arg(&mut inner, "k", "inner").map_err(serde::ser::Error::custom)?;
            s.serialize_str(&format!("{:?}", inner.get_packed_command().len()))
        }
    }

    #[test]
    fn encoded_arguments_are_those_of_encode() {
        let big = "x".repeat(100_000);
        let mut cmd = redis::cmd("HSET");
        let mut expected = redis::cmd("HSET");
        for v in [
            serde_json::json!("a"),
            serde_json::json!({"b": [1, 2.5, null]}),
            serde_json::json!(big),
            serde_json::json!(-7),
        ] {
            encode_arg(&mut cmd, "k", &v).unwrap();
            expected.arg(encode("k", &v).unwrap());
        }
        encode_arg(&mut cmd, "k", &Nested).unwrap();
        expected.arg(encode("k", &Nested).unwrap());
        assert_eq!(cmd.get_packed_command(), expected.get_packed_command());
        // A value that cannot be encoded (a map with sequences for keys): an error naming the
        // key, and the thread's buffer still serves.
        let bad: std::collections::BTreeMap<Vec<u8>, u8> = [(vec![1], 1)].into();
        let err = encode_arg(&mut cmd, "the-key", &bad).unwrap_err();
        assert!(err.to_string().contains("the-key"), "{err}");
        let mut after = redis::cmd("GET");
        encode_arg(&mut after, "k", "a").unwrap();
        assert_eq!(
            after.get_packed_command(),
            b"*2\r\n$3\r\nGET\r\n$3\r\n\"a\"\r\n"
        );
    }
}
