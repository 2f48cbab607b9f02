//! Support for the code pottery's macros generate. Not a public API: it may change in any
//! release.

use std::time::Duration;

use crate::cache::redis_cache::RedisCache;
pub use crate::cache::redis_cache::{Memo, OkOnly, OkSome, SomeOnly, Store, Whole};
use crate::client::Redis;
use crate::error::Result;
use crate::shell::runner::{Async, Blocking, block_on_ready};
use crate::timer::ContextTimer;

pub use serde;

pub use crate::backed::{
    FieldReader, FieldWriter, HandleCore, HandleOps, Tracked, save_owned_async,
};
pub use crate::batch::{DerivedHandle, Queue};

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

/// The cache of a `#[redis_cache]` function (made once, or on every call of a method whose
/// `key` or `redis` mention `self`), with the counters and circuit breaker that its handle
/// keeps for its key: a cache made afresh per call keeps them. `None` when no handle could be
/// made (a bad `REDIS_URL`, say): the function then runs uncached, with a warning.
pub fn make_cache(
    function: &str,
    key: Option<&str>,
    redis: Result<Redis>,
    timeout: Option<Duration>,
    ttl: Option<Duration>,
    single_flight: Option<Duration>,
) -> Option<RedisCache> {
    let made = redis.and_then(|redis| {
        let cache = match key {
            Some(key) => RedisCache::new(&redis, key),
            None => RedisCache::random(&redis)?,
        };
        Ok(cache
            .timeout(timeout)
            .ttl(ttl)
            .single_flight(single_flight)
            .with_handle_state())
    });
    match made {
        Ok(cache) => Some(cache),
        Err(e) => {
            tracing::warn!(function, error = %e, "pottery cache: no Redis handle; the function runs uncached");
            None
        }
    }
}

/// The error of a `#[redis_cache]` companion whose cache could not be made.
fn no_cache(function: &str) -> crate::Error {
    crate::Error::Config {
        message: format!(
            "the cache of `{function}` has no Redis handle (the warning logged when it was \
             made says why)"
        ),
    }
}

/// `<fn>_invalidate(args…)`: deletes the entry of a `#[redis_cache]` call (the field from
/// [`cache_field`], as the call's). Errors are returned, not logged.
pub fn cache_remove(function: &str, cache: Option<&RedisCache>, field: Field) -> Result<bool> {
    let (cache, field) = field.with(function, cache)?;
    block_on_ready(cache.core().remove_field(&Blocking, field))
}

/// Async [`cache_remove`].
pub async fn cache_remove_async(
    function: &str,
    cache: Option<&RedisCache>,
    field: Field,
) -> Result<bool> {
    let (cache, field) = field.with(function, cache)?;
    cache.core().remove_field(&Async, field).await
}

/// `<fn>_prime(args…, value)`: stores `value` as the result of a `#[redis_cache]` call (the
/// field from [`cache_field`], as the call's). Errors are returned, not logged.
pub fn cache_prime<V: serde::Serialize + ?Sized>(
    function: &str,
    cache: Option<&RedisCache>,
    field: Field,
    value: &V,
) -> Result<()> {
    let (cache, field) = field.with(function, cache)?;
    block_on_ready(cache.core().store_field(&Blocking, field, value))
}

/// Async [`cache_prime`].
pub async fn cache_prime_async<V: serde::Serialize + ?Sized>(
    function: &str,
    cache: Option<&RedisCache>,
    field: Field,
    value: &V,
) -> Result<()> {
    let (cache, field) = field.with(function, cache)?;
    cache.core().store_field(&Async, field, value).await
}

/// Logs a cache failure of a `#[redis_cache]` function (in non-strict mode there are none).
pub fn cache_failed(function: &str, e: &crate::Error) {
    // No handle here: the error's kind (and a connection failure's text), never its key.
    tracing::warn!(
        function,
        error = %crate::observe::event_error(None, e),
        "pottery cache: failed; the function ran uncached"
    );
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

/// The hash field of a `#[redis_cache]` call's arguments, from [`cache_field`]: what the
/// call, its `_invalidate` and its `_prime` companions all read and write.
pub struct Field(Option<Result<Vec<u8>>>);

impl Field {
    /// For the call: the field, or `None` (with a warning) when the arguments do not encode
    /// or there is no cache: the call then runs uncached.
    fn usable(self, function: &str) -> Option<Vec<u8>> {
        match self.0? {
            Ok(field) => Some(field),
            Err(e) => {
                cache_failed(function, &e);
                None
            }
        }
    }

    /// For a companion: the field and the cache, or the error.
    fn with<'c>(
        self,
        function: &str,
        cache: Option<&'c RedisCache>,
    ) -> Result<(&'c RedisCache, Vec<u8>)> {
        match (cache, self.0) {
            (Some(cache), Some(field)) => Ok((cache, field?)),
            _ => Err(no_cache(function)),
        }
    }
}

/// The field of a `#[redis_cache]` call with these arguments (one helper for the call and
/// its companions, so that they name the same entry).
pub fn cache_field<A: serde::Serialize + ?Sized>(
    function: &str,
    cache: Option<&RedisCache>,
    args: &A,
) -> Field {
    let _ = function;
    Field(cache.map(|c| c.encode_args(args)))
}

/// A `#[redis_cache]` call: the cached result on a hit, else `f()` (stored as the policy `P`
/// says). Never fails: cache trouble is a warning and a call of `f`.
pub fn cached<P, Out>(
    function: &str,
    cache: Option<&RedisCache>,
    field: Field,
    f: impl FnOnce() -> Out,
) -> Out
where
    P: Memo<Out>,
    P::Stored: serde::de::DeserializeOwned,
{
    let (Some(cache), Some(field)) = (cache, field.usable(function)) else {
        return f();
    };
    let mut f = Some(f);
    let memo = cache
        .core()
        .memo::<Blocking, P, Out, _, _>(&Blocking, Ok(field), || {
            std::future::ready(match f.take() {
                Some(f) => f(),
                None => computed_and_lost(),
            })
        });
    match block_on_ready(memo) {
        Ok(out) => out,
        Err(e) => {
            cache_failed(function, &e);
            match f {
                Some(f) => f(),
                None => computed_and_lost(),
            }
        }
    }
}

/// `memo` calls its computation at most once, and a cache the macros make is never strict,
/// so nothing after the computation can fail: a computed value is never lost.
fn computed_and_lost() -> ! {
    unreachable!("pottery cache: a computed value was dropped")
}

/// Async [`cached`].
pub async fn cached_async<P, Out, Fut>(
    function: &str,
    cache: Option<&RedisCache>,
    field: Field,
    f: impl FnOnce() -> Fut,
) -> Out
where
    P: Memo<Out>,
    P::Stored: serde::de::DeserializeOwned,
    Fut: std::future::Future<Output = Out>,
{
    let (Some(cache), Some(field)) = (cache, field.usable(function)) else {
        return f().await;
    };
    let mut f = Some(f);
    let memo = cache
        .core()
        .memo::<Async, P, Out, _, _>(&Async, Ok(field), || {
            let f = f.take();
            async move {
                match f {
                    Some(f) => f().await,
                    None => computed_and_lost(),
                }
            }
        })
        .await;
    match memo {
        Ok(out) => out,
        Err(e) => {
            cache_failed(function, &e);
            match f {
                Some(f) => f().await,
                None => computed_and_lost(),
            }
        }
    }
}

/// A `#[redis_cache]` bypass: calls `f` and stores its result as `P` says, counting neither a
/// hit nor a miss. Never fails.
pub fn cached_bypass<P: Store<Out>, Out>(
    function: &str,
    cache: Option<&RedisCache>,
    field: Field,
    f: impl FnOnce() -> Out,
) -> Out {
    let out = f();
    if let (Some(cache), Some(field)) = (cache, field.usable(function))
        && let Some(stored) = P::stored(&out)
        && let Err(e) = block_on_ready(cache.core().save(&Blocking, field, stored))
    {
        cache_failed(function, &e);
    }
    out
}

/// Async [`cached_bypass`].
pub async fn cached_bypass_async<P: Store<Out>, Out, Fut>(
    function: &str,
    cache: Option<&RedisCache>,
    field: Field,
    f: impl FnOnce() -> Fut,
) -> Out
where
    Fut: std::future::Future<Output = Out>,
{
    let out = f().await;
    if let (Some(cache), Some(field)) = (cache, field.usable(function))
        && let Some(stored) = P::stored(&out)
        && let Err(e) = cache.core().save(&Async, field, stored).await
    {
        cache_failed(function, &e);
    }
    out
}

/// The masters of a `#[synchronize]` without `masters = …`: `[default_redis()]`, or none (with
/// a warning) when no handle can be made — the lock then fails with a configuration error.
pub fn default_masters() -> Vec<Redis> {
    match crate::client::default_redis() {
        Ok(redis) => vec![redis],
        Err(e) => {
            tracing::warn!(error = %e, "pottery synchronize: no Redis handle");
            Vec::new()
        }
    }
}

pub use crate::primitives::redlock::{synchronized, synchronized_async};
