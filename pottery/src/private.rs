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
pub fn cache_remove(call: Field<'_>) -> Result<bool> {
    let (cache, field) = call.with()?;
    block_on_ready(cache.core().remove_field(&Blocking, field))
}

/// Async [`cache_remove`].
pub async fn cache_remove_async(call: Field<'_>) -> Result<bool> {
    let (cache, field) = call.with()?;
    cache.core().remove_field(&Async, field).await
}

/// `<fn>_prime(args…, value)`: stores `value` as the result of a `#[redis_cache]` call (the
/// field from [`cache_field`], as the call's). Errors are returned, not logged.
pub fn cache_prime<V: serde::Serialize + ?Sized>(call: Field<'_>, value: &V) -> Result<()> {
    let (cache, field) = call.with()?;
    block_on_ready(cache.core().store_field(&Blocking, field, value))
}

/// Async [`cache_prime`].
pub async fn cache_prime_async<V: serde::Serialize + ?Sized>(
    call: Field<'_>,
    value: &V,
) -> Result<()> {
    let (cache, field) = call.with()?;
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

/// A `#[redis_cache]` call's function, cache and hash field, from [`cache_field`]: what the
/// call, its `_invalidate` and its `_prime` companions all read and write.
pub struct Field<'c> {
    function: &'static str,
    cache: Option<&'c RedisCache>,
    field: Option<Result<Vec<u8>>>,
}

impl<'c> Field<'c> {
    /// For the call: the cache and the field, or `None` (with a warning) when the arguments
    /// do not encode or there is no cache: the call then runs uncached.
    fn usable(self) -> Option<(&'c RedisCache, Vec<u8>)> {
        match (self.cache, self.field?) {
            (Some(cache), Ok(field)) => Some((cache, field)),
            (_, Err(e)) => {
                cache_failed(self.function, &e);
                None
            }
            (None, Ok(_)) => None,
        }
    }

    /// For a companion: the cache and the field, or the error.
    fn with(self) -> Result<(&'c RedisCache, Vec<u8>)> {
        match (self.cache, self.field) {
            (Some(cache), Some(field)) => Ok((cache, field?)),
            _ => Err(no_cache(self.function)),
        }
    }
}

/// The field of a `#[redis_cache]` call with these arguments (one helper for the call and
/// its companions, so that they name the same entry).
pub fn cache_field<'c, A: serde::Serialize + ?Sized>(
    function: &'static str,
    cache: Option<&'c RedisCache>,
    args: &A,
) -> Field<'c> {
    let field = cache.map(|c| c.encode_args(args));
    Field {
        function,
        cache,
        field,
    }
}

/// A `#[redis_cache]` call: the cached result on a hit, else `f()` (stored as the policy `P`
/// says). Never fails: cache trouble is a warning and a call of `f`.
pub fn cached<P, Out>(call: Field<'_>, f: impl FnOnce() -> Out) -> Out
where
    P: Memo<Out>,
    P::Stored: serde::de::DeserializeOwned,
{
    block_on_ready(cached_with::<_, P, Out, _>(&Blocking, call, || {
        std::future::ready(f())
    }))
}

/// `memo` calls its computation at most once, and a cache the macros make is never strict,
/// so nothing after the computation can fail: a computed value is never lost.
fn computed_and_lost() -> ! {
    unreachable!("pottery cache: a computed value was dropped")
}

/// Async [`cached`].
pub async fn cached_async<P, Out, Fut>(call: Field<'_>, f: impl FnOnce() -> Fut) -> Out
where
    P: Memo<Out>,
    P::Stored: serde::de::DeserializeOwned,
    Fut: std::future::Future<Output = Out>,
{
    cached_with::<_, P, Out, _>(&Async, call, f).await
}

/// [`cached`] and [`cached_async`], on either runner (a blocking one's futures are ready when
/// first polled).
async fn cached_with<R, P, Out, Fut>(runner: &R, call: Field<'_>, f: impl FnOnce() -> Fut) -> Out
where
    R: crate::shell::runner::Runner,
    P: Memo<Out>,
    P::Stored: serde::de::DeserializeOwned,
    Fut: std::future::Future<Output = Out>,
{
    let function = call.function;
    let Some((cache, field)) = call.usable() else {
        return f().await;
    };
    let mut f = Some(f);
    let memo = cache
        .core()
        .memo::<R, P, Out, _, _>(runner, Ok(field), || {
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
pub fn cached_bypass<P: Store<Out>, Out>(call: Field<'_>, f: impl FnOnce() -> Out) -> Out {
    let out = f();
    let function = call.function;
    if let Some((cache, field)) = call.usable()
        && let Some(stored) = P::stored(&out)
        && let Err(e) = block_on_ready(cache.core().save(&Blocking, field, stored))
    {
        cache_failed(function, &e);
    }
    out
}

/// Async [`cached_bypass`].
pub async fn cached_bypass_async<P: Store<Out>, Out, Fut>(
    call: Field<'_>,
    f: impl FnOnce() -> Fut,
) -> Out
where
    Fut: std::future::Future<Output = Out>,
{
    let out = f().await;
    let function = call.function;
    if let Some((cache, field)) = call.usable()
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
