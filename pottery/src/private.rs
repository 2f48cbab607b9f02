//! Support for the code pottery's macros generate. Not a public API: it may change in any
//! release.

use std::time::Duration;

use crate::cache::redis_cache::RedisCache;
use crate::collections::{Async, Blocking, Runner, block_on_ready};
use crate::error::Result;
use crate::redis::Redis;
use crate::timer::ContextTimer;

pub use serde;

pub use crate::backed::{FieldReader, FieldWriter, HandleCore, save_owned_async};

/// What `redis = …` may be: a handle, a reference to one, or a `Result` of one.
pub trait IntoRedis {
    /// The handle.
    fn into_redis(self) -> Result<Redis>;
}

impl IntoRedis for Redis {
    fn into_redis(self) -> Result<Redis> {
        Ok(self)
    }
}

impl IntoRedis for &Redis {
    fn into_redis(self) -> Result<Redis> {
        Ok(self.clone())
    }
}

impl IntoRedis for Result<Redis> {
    fn into_redis(self) -> Result<Redis> {
        self
    }
}

/// The cache of a `#[redis_cache]` function, made once. `None` when no handle could be made
/// (a bad `REDIS_URL`, say): the function then runs uncached, with a warning.
pub fn make_cache(
    function: &str,
    key: Option<&str>,
    redis: Result<Redis>,
    timeout: Option<Duration>,
) -> Option<RedisCache> {
    let made = redis.and_then(|redis| {
        let cache = match key {
            Some(key) => RedisCache::new(&redis, key),
            None => RedisCache::random(&redis)?,
        };
        Ok(cache.timeout(timeout))
    });
    match made {
        Ok(cache) => Some(cache),
        Err(e) => {
            tracing::warn!(function, error = %e, "pottery cache: no Redis handle; the function runs uncached");
            None
        }
    }
}

/// Logs a cache failure of a `#[redis_cache]` function (in non-strict mode there are none).
pub fn cache_failed(function: &str, e: &crate::Error) {
    tracing::warn!(function, error = %e, "pottery cache: failed; the function ran uncached");
}

/// Times a `#[timed]` call: made at its start, reports when dropped (however the call ends).
pub struct Timed {
    name: &'static str,
    callback: Option<fn(&'static str, Duration)>,
    timer: ContextTimer,
}

impl Timed {
    /// Starts timing.
    pub fn start(name: &'static str, callback: Option<fn(&'static str, Duration)>) -> Timed {
        Timed {
            name,
            callback,
            timer: ContextTimer::started(),
        }
    }
}

impl Drop for Timed {
    fn drop(&mut self) {
        let _ = self.timer.stop();
        let elapsed = self.timer.elapsed_duration().unwrap_or_default();
        tracing::info!(
            target: "pottery::timed",
            function = self.name,
            elapsed_ms = self.timer.elapsed().unwrap_or_default(),
            "timed"
        );
        if let Some(callback) = self.callback {
            callback(self.name, elapsed);
        }
    }
}

/// Nothing at run time: makes a `#[redis_cache]` argument that does not serialize an error at
/// the argument's type.
pub fn cache_argument<A: serde::Serialize + ?Sized>() {}

/// The field of a `#[redis_cache]` call; `None` (with a warning) when the arguments do not
/// encode or there is no cache: the call then runs uncached.
pub fn cache_field<A: serde::Serialize + ?Sized>(
    function: &str,
    cache: Option<&RedisCache>,
    args: &A,
) -> Option<Vec<u8>> {
    let cache = cache?;
    match cache.encode_args(args) {
        Ok(field) => Some(field),
        Err(e) => {
            cache_failed(function, &e);
            None
        }
    }
}

/// The lookup of a `#[redis_cache]` call, on either runner: `Some` on a hit. Never fails:
/// cache trouble is a warning and a miss.
async fn lookup<R: Runner, V: serde::de::DeserializeOwned>(
    runner: &R,
    function: &str,
    cache: Option<&RedisCache>,
    field: Option<&[u8]>,
) -> Option<V> {
    let (cache, field) = (cache?, field?);
    cache.core().fetch(runner, field).await.unwrap_or_else(|e| {
        cache_failed(function, &e);
        None
    })
}

/// The store of a `#[redis_cache]` call after a miss or a bypass, on either runner. Never
/// fails.
async fn store<R: Runner, V: serde::Serialize>(
    runner: &R,
    function: &str,
    cache: Option<&RedisCache>,
    field: Option<Vec<u8>>,
    value: &V,
) {
    let (Some(cache), Some(field)) = (cache, field) else {
        return;
    };
    if let Err(e) = cache.core().save(runner, field, value).await {
        cache_failed(function, &e);
    }
}

/// The lookup of a `#[redis_cache]` call: `Some` on a hit. Never fails: cache trouble is a
/// warning and a miss.
pub fn cache_lookup<V: serde::de::DeserializeOwned>(
    function: &str,
    cache: Option<&RedisCache>,
    field: Option<&[u8]>,
) -> Option<V> {
    block_on_ready(lookup(&Blocking, function, cache, field))
}

/// The store of a `#[redis_cache]` call after a miss or a bypass. Never fails.
pub fn cache_store<V: serde::Serialize>(
    function: &str,
    cache: Option<&RedisCache>,
    field: Option<Vec<u8>>,
    value: &V,
) {
    block_on_ready(store(&Blocking, function, cache, field, value))
}

/// Async [`cache_lookup`].
pub async fn cache_lookup_async<V: serde::de::DeserializeOwned>(
    function: &str,
    cache: Option<&RedisCache>,
    field: Option<&[u8]>,
) -> Option<V> {
    lookup(&Async, function, cache, field).await
}

/// Async [`cache_store`].
pub async fn cache_store_async<V: serde::Serialize>(
    function: &str,
    cache: Option<&RedisCache>,
    field: Option<Vec<u8>>,
    value: &V,
) {
    store(&Async, function, cache, field, value).await
}
