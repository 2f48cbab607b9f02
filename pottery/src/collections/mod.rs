//! Redis-backed containers with std's shape.

pub mod counter;
pub mod dict;
pub mod list;
pub mod set;

use std::collections::VecDeque;
use std::future::Future;

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

/// What every structure's two shells share, written once: `key`, `redis` and the conversion
/// to the other shell (`handles`); `new` and `random` for the structures made from a handle
/// and a key alone (`attach`). `$make` is an example constructor call, `$ty` an example type.
macro_rules! shell_basics {
    (handles $blocking:ident, $aio_mod:ident::$aio:ident, [$($g:ident),*], $make:literal) => {
        impl<$($g),*> $blocking<$($g),*> {
            /// The Redis key.
            ///
            /// ```
            /// # let redis = pottery::testing::doctest_redis();
            #[doc = concat!("# let x = pottery::", $make, ";")]
            /// assert_eq!(x.key(), "k");
            /// # Ok::<(), pottery::Error>(())
            /// ```
            pub fn key(&self) -> &str {
                &self.core.key
            }

            /// The handle this structure uses.
            ///
            /// ```
            /// # let redis = pottery::testing::doctest_redis();
            #[doc = concat!("# let x = pottery::", $make, ";")]
            /// assert!(x.redis().same_handle(&redis));
            /// # Ok::<(), pottery::Error>(())
            /// ```
            pub fn redis(&self) -> &$crate::Redis {
                &self.core.redis
            }

            /// The async twin on the same key and handle (no I/O).
            ///
            /// ```
            /// # let redis = pottery::testing::doctest_redis();
            #[doc = concat!("# let x = pottery::", $make, ";")]
            /// let a = x.to_async();
            /// assert_eq!(a.key(), "k");
            /// # Ok::<(), pottery::Error>(())
            /// ```
            pub fn to_async(&self) -> $aio_mod::$aio<$($g),*> {
                $aio_mod::$aio {
                    core: self.core.clone(),
                }
            }
        }

        impl<$($g),*> $aio_mod::$aio<$($g),*> {
            /// The Redis key.
            ///
            /// ```
            /// # let redis = pottery::testing::doctest_redis();
            #[doc = concat!("# let x = pottery::aio::", $make, ";")]
            /// assert_eq!(x.key(), "k");
            /// # Ok::<(), pottery::Error>(())
            /// ```
            pub fn key(&self) -> &str {
                &self.core.key
            }

            /// The handle this structure uses.
            ///
            /// ```
            /// # let redis = pottery::testing::doctest_redis();
            #[doc = concat!("# let x = pottery::aio::", $make, ";")]
            /// assert!(x.redis().same_handle(&redis));
            /// # Ok::<(), pottery::Error>(())
            /// ```
            pub fn redis(&self) -> &$crate::Redis {
                &self.core.redis
            }

            /// The blocking twin on the same key and handle (no I/O).
            ///
            /// ```
            /// # let redis = pottery::testing::doctest_redis();
            #[doc = concat!("# let x = pottery::aio::", $make, ";")]
            /// let b = x.to_blocking();
            /// assert_eq!(b.key(), "k");
            /// # Ok::<(), pottery::Error>(())
            /// ```
            pub fn to_blocking(&self) -> $blocking<$($g),*> {
                $blocking {
                    core: self.core.clone(),
                }
            }
        }
    };
    (attach $blocking:ident, $aio_mod:ident::$aio:ident, [$($g:ident),*], [$($bound:tt)*], $ty:literal) => {
        impl<$($g),*> $blocking<$($g),*>
        where
            $($bound)*
        {
            /// Attaches to the structure at `key` (no I/O; the key need not exist).
            ///
            /// ```
            /// # let redis = pottery::testing::doctest_redis();
            #[doc = concat!("let x: pottery::", $ty, " = pottery::", stringify!($blocking), "::new(&redis, \"k\");")]
            /// assert_eq!(x.key(), "k");
            /// ```
            pub fn new(redis: &$crate::Redis, key: impl Into<String>) -> Self {
                $blocking {
                    core: Core::new(redis, key.into()),
                }
            }

            /// Attaches to a fresh key `pottery:<uuid4>` that no one uses yet (one
            /// `EXISTS`). Unlike Python pottery, dropping the structure does not delete the
            /// key: `clear` it when done.
            ///
            /// ```
            /// # let redis = pottery::testing::doctest_redis();
            #[doc = concat!("let x: pottery::", $ty, " = pottery::", stringify!($blocking), "::random(&redis)?;")]
            /// assert!(x.key().starts_with("pottery:"));
            /// # Ok::<(), pottery::Error>(())
            /// ```
            pub fn random(redis: &$crate::Redis) -> $crate::Result<Self> {
                Ok(Self::new(redis, $crate::collections::random_key(redis)?))
            }
        }

        impl<$($g),*> $aio_mod::$aio<$($g),*>
        where
            $($bound)*
        {
            /// Attaches to the structure at `key` (no I/O; the key need not exist).
            ///
            /// ```
            /// # let redis = pottery::testing::doctest_redis();
            #[doc = concat!("let x: pottery::aio::", $ty, " = pottery::aio::", stringify!($blocking), "::new(&redis, \"k\");")]
            /// assert_eq!(x.key(), "k");
            /// ```
            pub fn new(redis: &$crate::Redis, key: impl Into<String>) -> Self {
                $aio_mod::$aio {
                    core: Core::new(redis, key.into()),
                }
            }

            /// Attaches to a fresh key `pottery:<uuid4>` that no one uses yet (one `EXISTS`).
            ///
            /// ```
            /// # let redis = pottery::testing::doctest_redis();
            /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
            #[doc = concat!("let x: pottery::aio::", $ty, " = pottery::aio::", stringify!($blocking), "::random(&redis).await?;")]
            /// assert!(x.key().starts_with("pottery:"));
            /// # Ok::<(), pottery::Error>(()) }).unwrap();
            /// ```
            pub async fn random(redis: &$crate::Redis) -> $crate::Result<Self> {
                Ok(Self::new(
                    redis,
                    $crate::collections::random_key_async(redis).await?,
                ))
            }
        }
    };
}
pub(crate) use shell_basics;

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

/// Plans one try at a free random key: `EXISTS pottery:<uuid4>`.
pub(crate) fn random_key_op(candidate: &str) -> Op<'_, bool> {
    let mut cmd = redis::cmd("EXISTS");
    cmd.arg(candidate);
    Op::cmd(candidate, "key", cmd, |key, v| Ok(int(key, v)? == 0))
}

pub(crate) fn random_candidate() -> String {
    format!("{RANDOM_KEY_PREFIX}{}", uuid::Uuid::new_v4())
}

/// A key in the same cluster slot as `key`, unique to this call (`pottery:scratch:{tag}:<uuid4>`),
/// for scripts that need a scratch key beside the one they work on.
pub(crate) fn scratch_key(key: &str) -> String {
    let id = uuid::Uuid::new_v4();
    let tag = match hash_tag(key.as_bytes()) {
        Some(tag) => String::from_utf8_lossy(tag).into_owned(),
        // No usable tag, and no braces to get in the way: the whole key is the tag.
        None if !key.contains(['{', '}']) => key.to_owned(),
        // Braces but no usable tag (rare): find a brace-free tag that hashes to the same slot.
        None => {
            let want = slot(key.as_bytes());
            (0u32..)
                .map(|n| format!("s{n}"))
                .find(|t| slot(t.as_bytes()) == want)
                .unwrap_or_default()
        }
    };
    format!("{RANDOM_KEY_PREFIX}scratch:{{{tag}}}:{id}")
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

/// Plans the atomic create-if-absent of a container: `command` (HSET, SADD, RPUSH) with `args`
/// runs only if the key does not exist; otherwise [`Error::KeyExists`].
pub(crate) fn create_op<'k>(
    key: &'k str,
    expected: &'static str,
    command: &str,
    args: Vec<Vec<u8>>,
) -> Op<'k, ()> {
    let mut argv = Vec::with_capacity(args.len() + 1);
    argv.push(command.as_bytes().to_vec());
    argv.extend(args);
    Op::eval(
        key,
        expected,
        &CREATE,
        vec![key.as_bytes().to_vec()],
        argv,
        |key, v| match int(key, v)? {
            1 => Ok(()),
            _ => Err(Error::KeyExists {
                key: key.to_owned(),
            }),
        },
    )
}

crate::op::script!(CREATE, "create.lua", Once);

/// A SCAN-family iteration in progress: the page being handed out and where the scan stands.
pub(crate) struct Scan {
    pub(crate) cursor: u64,
    started: bool,
    page: VecDeque<Vec<u8>>,
    failed: bool,
    /// Items per element: 2 for HSCAN (field, value), 1 for SSCAN.
    width: usize,
}

impl Scan {
    pub(crate) fn new(width: usize) -> Self {
        Scan {
            cursor: 0,
            started: false,
            page: VecDeque::new(),
            failed: false,
            width,
        }
    }

    /// Whether another SCAN call is needed before the next element.
    pub(crate) fn needs_page(&self) -> bool {
        !self.failed && self.page.len() < self.width && (!self.started || self.cursor != 0)
    }

    pub(crate) fn accept(&mut self, page: Result<(u64, Vec<Vec<u8>>)>) -> Result<()> {
        self.started = true;
        match page {
            Ok((cursor, items)) => {
                self.cursor = cursor;
                self.page.extend(items);
                Ok(())
            }
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }

    pub(crate) fn next_one<T: DeserializeOwned>(&mut self, key: &str) -> Option<Result<T>> {
        let item = self.page.pop_front()?;
        Some(decode(key, &item))
    }

    pub(crate) fn next_pair<K: DeserializeOwned, V: DeserializeOwned>(
        &mut self,
        key: &str,
    ) -> Option<Result<(K, V)>> {
        let f = self.page.pop_front()?;
        let v = self.page.pop_front()?;
        Some(decode(key, &f).and_then(|k| Ok((k, decode_value_of(key, &f, &v)?))))
    }
}

/// The `{hash tag}` of a key, if it has a non-empty one: what Redis Cluster hashes instead of
/// the whole key.
pub(crate) fn hash_tag(key: &[u8]) -> Option<&[u8]> {
    let open = key.iter().position(|b| *b == b'{')?;
    let len = key[open + 1..].iter().position(|b| *b == b'}')?;
    (len > 0).then(|| &key[open + 1..open + 1 + len])
}

/// The Redis Cluster slot of a key (CRC16/XMODEM of the key or its `{hash tag}`, mod 16384).
pub(crate) fn slot(key: &[u8]) -> u16 {
    let k = hash_tag(key).unwrap_or(key);
    let mut crc: u16 = 0;
    for byte in k {
        crc ^= u16::from(*byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16384
}

/// Whether one command can name all these keys: same server (and database), and on a cluster
/// the same slot.
pub(crate) fn same_place(keys: &[(&Redis, &str)]) -> bool {
    let Some((first, first_key)) = keys.first() else {
        return true;
    };
    keys.iter().all(|(r, k)| {
        (r.same_handle(first) || r.shown() == first.shown())
            && (!first.is_cluster() || slot(k.as_bytes()) == slot(first_key.as_bytes()))
    })
}

/// Runs plans, blocking or async: multi-step algorithms are written once, as `async` code
/// generic over the runner, and the blocking shell drives them with [`block_on_ready`].
pub(crate) trait Runner: Sync {
    /// Whether waiting must block the thread (its futures are polled without a runtime).
    const BLOCKING: bool;

    /// The future is boxed: an `impl Future` capturing the plan's lifetime here makes the
    /// callers' futures fail to prove `Send` when they are spawned (rustc issue #100013), and
    /// one allocation per round trip costs nothing measurable.
    fn run<'a, 'k: 'a, T: Send + 'k>(&'a self, redis: &'a Redis, op: Op<'k, T>)
    -> RunFuture<'a, T>;
}

/// What a [`Runner`] returns.
pub(crate) type RunFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// Runs plans on blocking connections; its futures are ready when first polled.
pub(crate) struct Blocking;

impl Runner for Blocking {
    const BLOCKING: bool = true;

    fn run<'a, 'k: 'a, T: Send + 'k>(
        &'a self,
        redis: &'a Redis,
        op: Op<'k, T>,
    ) -> RunFuture<'a, T> {
        Box::pin(std::future::ready(redis.run(op)))
    }
}

/// Runs plans on the async connection.
pub(crate) struct Async;

impl Runner for Async {
    const BLOCKING: bool = false;

    fn run<'a, 'k: 'a, T: Send + 'k>(
        &'a self,
        redis: &'a Redis,
        op: Op<'k, T>,
    ) -> RunFuture<'a, T> {
        Box::pin(redis.run_async(op))
    }
}

/// Drives a future whose every await is on a [`Blocking`] runner, so it never waits.
pub(crate) fn block_on_ready<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
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

#[cfg(test)]
mod tests {
    use super::{hash_tag, scratch_key, slot};

    #[test]
    fn scratch_keys_share_the_slot() {
        for key in [
            "plain", "{tag}x", "a{b}c{d}", "a}b", "{}x", "x{", "{{}x}", "é{ü}",
        ] {
            let scratch = scratch_key(key);
            assert_eq!(
                slot(scratch.as_bytes()),
                slot(key.as_bytes()),
                "{key} -> {scratch}"
            );
            assert!(scratch.starts_with("pottery:scratch:{"));
            assert_ne!(scratch, scratch_key(key), "unique per call");
        }
        assert_eq!(hash_tag(b"{user1000}.following"), Some(&b"user1000"[..]));
        assert_eq!(hash_tag(b"foo{}{bar}"), None);
        assert_eq!(slot(b"123456789"), 12739);
    }
}
