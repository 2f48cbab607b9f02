//! Redis-backed containers with std's shape.

pub mod dict;

/// `Clone` and `Debug` for a blocking or async shell around a `core` that has `key` and
/// `redis` (every structure has one of each).
macro_rules! shell_impls {
    ($ty:ident < $($g:ident),* >, $name:literal) => {
        impl<$($g),*> Clone for $ty<$($g),*> {
            fn clone(&self) -> Self {
                $ty {
                    core: self.core.clone(),
                }
            }
        }

        impl<$($g),*> std::fmt::Debug for $ty<$($g),*> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct($name)
                    .field("key", &self.core.key)
                    .field("redis", &self.core.redis.shown())
                    .finish()
            }
        }
    };
}
pub(crate) use shell_impls;

use redis::Value;
use serde::de::DeserializeOwned;

use crate::codec;
use crate::error::{Error, Result};
use crate::op::Op;
use crate::redis::Redis;

/// Prefix of the keys pottery makes up (`pottery:<uuid4>`), as in Python pottery.
pub const RANDOM_KEY_PREFIX: &str = "pottery:";

/// How many random keys to try before giving up, as in Python pottery.
const RANDOM_KEY_TRIES: u32 = 3;

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
pub(crate) fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T> {
    codec::decode(bytes).map_err(|e| Error::codec(key, e))
}

/// Encodes one value to be written at `key`.
pub(crate) fn encode<T: serde::Serialize + ?Sized>(key: &str, value: &T) -> Result<Vec<u8>> {
    codec::encode_bytes(value).map_err(|e| Error::codec(key, e))
}

/// Decodes an optional bulk reply.
pub(crate) fn decode_opt<T: DeserializeOwned>(key: &str, value: Value) -> Result<Option<T>> {
    bulk(key, value)?.map(|b| decode(key, &b)).transpose()
}

/// An integer reply.
pub(crate) fn int(key: &str, value: Value) -> Result<i64> {
    match value {
        Value::Int(i) => Ok(i),
        other => Err(unexpected(key, "an integer", &other)),
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

/// Plans one try at a free random key: `EXISTS pottery:<uuid4>`.
pub(crate) fn random_key_op(candidate: &str) -> Op<'_, bool> {
    let mut cmd = redis::cmd("EXISTS");
    cmd.arg(candidate);
    Op::cmd(candidate, "key", cmd, |key, v| Ok(int(key, v)? == 0))
}

pub(crate) fn random_candidate() -> String {
    format!("{RANDOM_KEY_PREFIX}{}", uuid::Uuid::new_v4())
}

/// A key no one uses yet: `pottery:<uuid4>`, checked with EXISTS (three tries, as pottery).
pub(crate) fn random_key(redis: &Redis) -> Result<String> {
    let mut last = String::new();
    for _ in 0..RANDOM_KEY_TRIES {
        last = random_candidate();
        if redis.run(random_key_op(&last))? {
            return Ok(last);
        }
    }
    Err(Error::RandomKey {
        key: last,
        tries: RANDOM_KEY_TRIES,
    })
}

/// Async [`random_key`].
pub(crate) async fn random_key_async(redis: &Redis) -> Result<String> {
    let mut last = String::new();
    for _ in 0..RANDOM_KEY_TRIES {
        last = random_candidate();
        if redis.run_async(random_key_op(&last)).await? {
            return Ok(last);
        }
    }
    Err(Error::RandomKey {
        key: last,
        tries: RANDOM_KEY_TRIES,
    })
}
