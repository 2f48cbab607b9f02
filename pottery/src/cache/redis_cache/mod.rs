//! `RedisCache`: memoisation in a Redis hash, the runtime behind `#[redis_cache]`.
//!
#![doc = include_str!("../../guide/redis_cache.md")]

mod core;
mod flight;
mod policy;

use std::future::Future;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::timeout_ms;
use crate::client::Redis;
use crate::error::Result;
use crate::exec::reply::{decode, encode};
use crate::shell::runner::{Async, Blocking, block_on_ready};

use self::core::{Core, Stats};
pub use self::policy::{AsIs, Memo, OkOnly, OkSome, SomeOnly, Store, Whole};

/// What a cache has seen: pottery's `CacheInfo`.
///
/// `hits` and `misses` count this process's calls through this cache (as pottery's do);
/// `currsize` is how many live entries the Redis hash holds now, from every process (`HLEN`,
/// less entries whose own [time to live](RedisCache::ttl) has passed and that are not deleted
/// yet); `maxsize` is always `None` (entries leave by the sliding timeout, not by size).
///
/// ```
/// let info = pottery::CacheInfo::default();
/// assert_eq!((info.hits, info.misses, info.maxsize, info.currsize), (0, 0, None, 0));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheInfo {
    /// Calls answered from the cache.
    pub hits: u64,
    /// Calls that ran the function (including those made while Redis was unreachable).
    pub misses: u64,
    /// Always `None`: the cache has no size limit.
    pub maxsize: Option<usize>,
    /// Live entries in the Redis hash.
    pub currsize: usize,
}

/// Memoises a function's results in a Redis hash shared by every process that uses the same
/// key: Python pottery's `redis_cache`, and the runtime behind `#[redis_cache]`.
///
/// * The hash field is the arguments' JSON (pass them as a tuple: `(a, b)` is stored as
///   `[a, b]`), so it is the same in every process and language, and two different arguments
///   never share an entry. (Python pottery's fields are CPython `hash()` values, which collide —
///   `f(-1)` and `f(-2)` share one — and change per process for strings; its entries cannot
///   be shared with pottery-rs, and this is on purpose.)
/// * The whole hash expires `timeout` after the last hit, miss or bypass (default 60 s, a
///   sliding `PEXPIRE` sent in the same script as the lookup or the store).
/// * A hit is one round trip; a miss is two (the lookup, then the store).
/// * **The cache never makes the function fail.** When Redis cannot be reached, or a stored
///   value does not decode as the function's result type, the function is called and its
///   value returned (and stored, in the second case), with a `tracing` warning. After a
///   connection failure the cache leaves Redis alone for [`retry_after`](Self::retry_after)
///   (1 s), so a dead server does not add a timeout to every call; and the cache's lookups
///   and stores are tried once, not retried through a failover like other operations
///   ([`RedisBuilder::retry_timeout`](crate::RedisBuilder::retry_timeout)): calling the
///   function beats waiting. With [`strict(true)`](Self::strict) those failures are errors
///   instead, after the handle's retries.
///
/// On a handle with a [near cache](crate::near), a cache without per-entry time to live is
/// read through it: a lookup is an `HGET` served from memory when cached. Its sliding expiry
/// is then kept by a `PEXPIRE` sent in the background, at most once per tenth of the timeout
/// per handle and cache (and at the first lookup), so the hash expires between 0.9 × and 1 ×
/// `timeout` after the last lookup from this process (each refresh also invalidates the
/// cached entries: the next lookups read the server once). A cache with per-entry
/// [`ttl`](Self::ttl) always reads the server: an entry is never served past its deadline.
///
/// Clones share the hit and miss counters (and the pause after a connection failure). The
/// caches `#[redis_cache]` makes share theirs per handle and key, even when made afresh on
/// every call of a `&self` method.
///
/// ```
/// use pottery::{Redis, RedisCache};
///
/// let redis = Redis::from_env()?;
/// # let redis = pottery::testing::doctest_redis();
/// let cache = RedisCache::new(&redis, "expensive-function-cache-doc");
/// # cache.clear()?;
/// fn expensive_function(n: u64) -> u64 { n * n }
///
/// let n = 5;
/// assert_eq!(cache.get_or_compute(&(n,), || expensive_function(n))?, 25); // a miss: computed
/// assert_eq!(cache.get_or_compute(&(n,), || -> u64 { unreachable!() })?, 25); // a hit: from Redis
/// let info = cache.info()?;
/// assert_eq!((info.hits, info.misses, info.currsize), (1, 1, 1));
/// # cache.clear()?;
/// # Ok::<(), pottery::Error>(())
/// ```
#[derive(Clone)]
pub struct RedisCache {
    core: Core,
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache")
            .field("key", &self.core.key)
            .field("redis", &self.core.redis.shown())
            .field("timeout_ms", &self.core.timeout_ms)
            .finish()
    }
}

/// The settings and accessors of [`RedisCache`] and [`aio::RedisCache`], written once.
macro_rules! cache_shell {
    ($ty:ident, $path:literal) => {
        impl $ty {
            /// A cache in the hash at `key` (no I/O), with the default 60 s sliding timeout.
            ///
            /// ```
            #[doc = concat!("# use ", $path, " as This;")]
            /// # let redis = pottery::testing::doctest_redis();
            /// let cache = This::new(&redis, "prices");
            /// assert_eq!(cache.key(), "prices");
            /// ```
            pub fn new(redis: &Redis, key: impl Into<String>) -> Self {
                RedisCache {
                    core: Core::new(redis, key.into()),
                }
            }

            /// Sets the sliding timeout: the hash expires this long after its last use. `None` (or
            /// zero) keeps it forever.
            ///
            /// ```
            #[doc = concat!("# use ", $path, " as This;")]
            /// # let redis = pottery::testing::doctest_redis();
            /// let forever = This::new(&redis, "k").timeout(None);
            /// let short = This::new(&redis, "k").timeout(Some(std::time::Duration::from_secs(5)));
            /// assert_eq!(short.get_timeout(), Some(std::time::Duration::from_secs(5)));
            /// assert_eq!(forever.get_timeout(), None);
            /// ```
            #[must_use]
            pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
                self.core.timeout_ms = timeout_ms(timeout);
                self
            }

            /// Gives each entry its own time to live: it expires `ttl` after it was stored, however
            /// busy the hash is (a hit never extends it), and is then computed again. Where the
            /// server expires hash fields (`HPEXPIRE`: Redis ≥ 7.4, Valkey ≥ 9.0) the store script
            /// sets a field TTL and the value is stored as it is; elsewhere the deadline is kept with
            /// the value (`<deadline ms>|<value>`, by the server's clock) and checked by the lookup
            /// script, which deletes an expired entry. There the field also goes into an index of
            /// deadlines (a sorted set in the hash's cluster slot: `{<key>}:deadlines`, or
            /// `<key>:deadlines` when the key has a `{hash tag}`), from which every store and lookup
            /// deletes up to 100 entries whose deadline has passed, as the server's expiry would:
            /// the hash holds the live entries and a small margin, however many expire unread. The
            /// index slides and is cleared with the hash. Either way a hit stays one round trip. The
            /// hash's own sliding [`timeout`](Self::timeout) still applies. `None` (the default):
            /// entries live as long as the hash, as in pottery.
            ///
            /// ```
            #[doc = concat!("# use ", $path, " as This;")]
            /// # let redis = pottery::testing::doctest_redis();
            /// let fresh = This::new(&redis, "prices").ttl(Some(std::time::Duration::from_secs(30)));
            /// # let _ = fresh;
            /// ```
            #[must_use]
            pub fn ttl(mut self, ttl: Option<Duration>) -> Self {
                self.core.ttl_ms = ttl.map_or(0, |t| timeout_ms(Some(t)).max(1));
                self
            }

            /// One computation per missing entry across processes too (within one process it always
            /// is): the first caller to miss takes a short lease on the entry in Redis
            /// (`<key>:flight:<field>`, `bound` long) and computes; callers in other processes wait for
            /// the value it stores, polling, for at most `bound`, then compute themselves. A computation
            /// that fails or stores nothing frees the lease (or it expires) and the next caller
            /// computes. `None` (the default): off.
            ///
            /// ```
            #[doc = concat!("# use ", $path, " as This;")]
            /// # let redis = pottery::testing::doctest_redis();
            /// let reports = This::new(&redis, "reports")
            ///     .single_flight(Some(std::time::Duration::from_secs(10)));
            /// # let _ = reports;
            /// ```
            #[must_use]
            pub fn single_flight(mut self, bound: Option<Duration>) -> Self {
                self.core.single_flight = bound;
                self
            }

            /// The sliding timeout.
            ///
            /// ```
            #[doc = concat!("# use ", $path, " as This;")]
            /// # let redis = pottery::testing::doctest_redis();
            /// assert_eq!(This::new(&redis, "k").get_timeout(), Some(std::time::Duration::from_secs(60)));
            /// ```
            pub fn get_timeout(&self) -> Option<Duration> {
                (self.core.timeout_ms > 0).then(|| Duration::from_millis(self.core.timeout_ms))
            }

            /// Makes cache failures (Redis unreachable, an undecodable entry, arguments or a result
            /// that do not encode) errors instead of falling back to the function. Off by default.
            ///
            /// ```
            #[doc = concat!("# use ", $path, " as This;")]
            /// # let redis = pottery::testing::doctest_redis();
            /// let cache = This::new(&redis, "k").strict(true);
            /// # let _ = cache;
            /// ```
            #[must_use]
            pub fn strict(mut self, strict: bool) -> Self {
                self.core.strict = strict;
                self
            }

            /// How long the cache leaves Redis alone after failing to reach it (default 1 s); the
            /// function is simply called meanwhile.
            ///
            /// ```
            #[doc = concat!("# use ", $path, " as This;")]
            /// # let redis = pottery::testing::doctest_redis();
            /// let cache = This::new(&redis, "k").retry_after(std::time::Duration::from_millis(200));
            /// # let _ = cache;
            /// ```
            #[must_use]
            pub fn retry_after(mut self, pause: Duration) -> Self {
                self.core.retry_after = pause;
                self
            }

            /// The Redis key.
            ///
            /// ```
            #[doc = concat!("# use ", $path, " as This;")]
            /// # let redis = pottery::testing::doctest_redis();
            /// assert_eq!(This::new(&redis, "k").key(), "k");
            /// ```
            pub fn key(&self) -> &str {
                &self.core.key
            }
        }
    };
}

cache_shell!(RedisCache, "pottery::RedisCache");

impl RedisCache {
    /// A cache at a fresh `pottery:<uuid4>` key (pottery's `redis_cache(key=None)`).
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// let cache = pottery::RedisCache::random(&redis)?;
    /// assert!(cache.key().starts_with("pottery:"));
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn random(redis: &Redis) -> Result<Self> {
        Ok(RedisCache::new(
            redis,
            crate::shell::keys::random_key(redis)?,
        ))
    }

    /// The async twin, sharing this cache's counters.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// let cache = pottery::RedisCache::new(&redis, "k");
    /// assert_eq!(cache.to_async().key(), "k");
    /// ```
    pub fn to_async(&self) -> aio::RedisCache {
        aio::RedisCache {
            core: self.core.clone(),
        }
    }

    /// The cached result for `args`, or `f()`'s, stored for next time.
    ///
    /// `Err` only in [`strict`](Self::strict) mode; otherwise cache failures fall back to `f`.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let cache = pottery::RedisCache::random(&redis)?;
    /// let greeting = cache.get_or_compute(&("ada", 36), || format!("hello ada, 36"))?;
    /// assert_eq!(greeting, "hello ada, 36");
    /// # cache.clear()?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn get_or_compute<A, V>(&self, args: &A, f: impl FnOnce() -> V) -> Result<V>
    where
        A: Serialize + ?Sized,
        V: Serialize + DeserializeOwned,
    {
        block_on_ready(
            self.core
                .get_or_compute(&Blocking, args, || std::future::ready(f())),
        )
    }

    /// [`get_or_compute`](Self::get_or_compute) for a fallible function: only `Ok` values
    /// are stored; an `Err` is returned as it is, stored nowhere, and the next call computes
    /// again. `E` needs no trait. The outer `Result` is the cache's own (an error only in
    /// [`strict`](Self::strict) mode).
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let cache = pottery::RedisCache::random(&redis)?;
    /// let failed: Result<u32, std::io::Error> =
    ///     cache.get_or_try_compute(&(7,), || Err(std::io::Error::other("db down")))?;
    /// assert!(failed.is_err());                          // not stored
    /// let loaded = cache.get_or_try_compute(&(7,), || Ok::<_, std::io::Error>(49))?;
    /// assert_eq!(loaded.unwrap(), 49);                   // computed, and stored
    /// let cached = cache.get_or_try_compute(&(7,), || Err::<u32, _>(std::io::Error::other("unused")))?;
    /// assert_eq!(cached.unwrap(), 49);                   // a hit
    /// # cache.clear()?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn get_or_try_compute<A, V, E>(
        &self,
        args: &A,
        f: impl FnOnce() -> std::result::Result<V, E>,
    ) -> Result<std::result::Result<V, E>>
    where
        A: Serialize + ?Sized,
        V: Serialize + DeserializeOwned,
    {
        block_on_ready(self.core.memo::<Blocking, OkOnly, _, _, _>(
            &Blocking,
            encode(&self.core.key, args),
            || std::future::ready(f()),
        ))
    }

    /// For `#[redis_cache]`: the hash field for `args`.
    #[doc(hidden)]
    pub fn encode_args<A: Serialize + ?Sized>(&self, args: &A) -> Result<Vec<u8>> {
        encode(&self.core.key, args)
    }

    pub(crate) fn core(&self) -> &Core {
        &self.core
    }

    /// This cache with the counters and circuit breaker its handle keeps for its key, so that
    /// the caches `#[redis_cache]` makes on every call (for `&self` methods) share them.
    pub(crate) fn with_handle_state(mut self) -> Self {
        self.core.stats = self.core.redis.shared_state::<Stats>(&self.core.key);
        self
    }

    /// Calls `f` and stores its result for `args`, counting neither a hit nor a miss
    /// (pottery's `__bypass__`).
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let cache = pottery::RedisCache::random(&redis)?;
    /// cache.bypass(&(1,), || 10)?;
    /// assert_eq!(cache.get_or_compute(&(1,), || 99)?, 10);
    /// # cache.clear()?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn bypass<A, V>(&self, args: &A, f: impl FnOnce() -> V) -> Result<V>
    where
        A: Serialize + ?Sized,
        V: Serialize,
    {
        block_on_ready(
            self.core
                .bypass(&Blocking, args, || std::future::ready(f())),
        )
    }

    /// Hits and misses of this process, and the live entries in Redis (one round trip: a
    /// script of `HLEN` less the expired entries not yet deleted).
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let cache = pottery::RedisCache::random(&redis)?;
    /// assert_eq!(cache.info()?, pottery::CacheInfo::default());
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn info(&self) -> Result<CacheInfo> {
        let currsize = self.core.redis.run(self.core.len_plan())?;
        Ok(self.core.info(currsize))
    }

    /// Deletes every entry (`UNLINK` of the hash and its index of deadlines) and resets the
    /// counters.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let cache = pottery::RedisCache::random(&redis)?;
    /// cache.get_or_compute(&(1,), || 1)?;
    /// cache.clear()?;
    /// assert_eq!(cache.info()?, pottery::CacheInfo::default());
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn clear(&self) -> Result<()> {
        self.core.reset();
        self.core.redis.run(self.core.clear_plan())
    }
}

crate::shell::ops! {
    // How to find an operation: `RedisCache::get` in the docs -> its `fn get` entry
    // below (same name; the body builds the plan) -> the plan builder it calls,
    // `Core::lookup_plan` (in core.rs), whose doc line names the request: the command, or the
    // `scripts/*.lua` it runs.
    impl
        /// A cache's plain reads and writes in a [`Batch`](crate::Batch) or an
        /// [`aio::Batch`](crate::aio::Batch) (from [`Batch::on`](crate::Batch::on)): warm a
        /// cache with many entries, or read many at once, in one round trip.
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # let cache = pottery::RedisCache::random(&redis)?;
        /// let batch = pottery::Batch::new(&redis);
        /// for n in 1..=3u64 {
        ///     batch.on(&cache).store(&(n,), &(n * n));
        /// }
        /// let nine = batch.on(&cache).get::<_, u64>(&(3,));
        /// batch.execute()?;
        /// assert_eq!(nine.get()?, Some(9));
        /// assert_eq!(cache.get_or_compute(&(2,), || 0u64)?, 4); // a hit: stored by the batch
        /// # cache.clear()?;
        /// # Ok::<(), pottery::Error>(())
        /// ```
        RedisCache and aio::RedisCache, batch CacheOps(Core)
    {
        example cache: This = random(&redis), clear;

        /// The value stored for `args`, if any: what [`get_or_compute`](RedisCache::get_or_compute)
        /// would return on a hit, read without computing anything and without counting a hit or a
        /// miss in [`info`](RedisCache::info). Like a hit, it restarts the entry's sliding timeout.
        /// `V` is the type the function returns (for [`get_or_try_compute`](RedisCache::get_or_try_compute),
        /// the type inside `Ok`).
        #[example]
        /// assert_eq!(cache.get::<_, u64>(&(5,))?, None);
        /// cache.get_or_compute(&(5,), || 25u64)?;
        /// assert_eq!(cache.get::<_, u64>(&(5,))?, Some(25));
        #[example(async)]
        /// assert_eq!(cache.get::<_, u64>(&(5,)).await?, None);
        fn get<A, V>(&self, args: &A) -> Option<V>
        where
            A: Serialize + ?Sized,
            V: DeserializeOwned + Send + 'static,
        {
            let key = &self.core.key;
            Ok(self.core
                .lookup_plan(encode(&self.core.key, args)?)
                .and_then(move |raw| raw.map(|b| decode(key, &b)).transpose()))
        }

        /// Stores `value` as the result for `args`, replacing any (what
        /// [`bypass`](RedisCache::bypass) does with a value at hand): the entry then lives as a
        /// computed one would, with the cache's timeout and time to live.
        #[example]
        /// cache.store(&(5,), &25u64)?;
        /// assert_eq!(cache.get_or_compute(&(5,), || -> u64 { unreachable!() })?, 25);
        #[example(async)]
        /// cache.store(&(5,), &25u64).await?;
        /// assert_eq!(cache.get::<_, u64>(&(5,)).await?, Some(25));
        fn store<A, V>(&self, args: &A, value: &V) -> ()
        where
            A: Serialize + ?Sized,
            V: Serialize + ?Sized,
        {
            Ok(self.core.store_plan(encode(&self.core.key, args)?, encode(&self.core.key, value)?))
        }

        /// Deletes the entry for `args`, so that the next call computes it again (after an
        /// update of what it was computed from, say): whether a live entry was there. One round
        /// trip; the other entries, the hash's timeout and the counters are left alone. Errors
        /// are returned, whatever [`strict`](RedisCache::strict) says: an invalidation that did not
        /// happen must not pass for one that did.
        #[example]
        /// cache.get_or_compute(&(5,), || 25u64)?;
        /// assert!(cache.remove(&(5,))?);
        /// assert!(!cache.remove(&(5,))?);                  // nothing left to remove
        /// assert_eq!(cache.get_or_compute(&(5,), || 26u64)?, 26); // computed again
        #[example(async)]
        /// cache.store(&(5,), &25u64).await?;
        /// assert!(cache.remove(&(5,)).await?);
        /// assert_eq!(cache.get::<_, u64>(&(5,)).await?, None);
        fn remove<A>(&self, args: &A) -> bool
        where
            A: Serialize + ?Sized,
        {
            Ok(self.core.remove_plan(encode(&self.core.key, args)?))
        }
    }
}

/// The async twin: [`aio::RedisCache`](crate::aio::RedisCache).
pub mod aio {
    use super::*;

    /// Async [`RedisCache`](crate::RedisCache): the function is an `async` closure.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let cache = pottery::aio::RedisCache::new(&redis, "async-cache-doc");
    /// # cache.clear().await?;
    /// let v: u64 = cache.get_or_compute(&(3,), || async { 3 * 3 }).await?;
    /// assert_eq!(v, 9);
    /// assert_eq!(cache.info().await?.misses, 1);
    /// # cache.clear().await?;
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    #[derive(Clone)]
    pub struct RedisCache {
        pub(super) core: Core,
    }

    impl std::fmt::Debug for RedisCache {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("aio::RedisCache")
                .field("key", &self.core.key)
                .field("redis", &self.core.redis.shown())
                .field("timeout_ms", &self.core.timeout_ms)
                .finish()
        }
    }

    cache_shell!(RedisCache, "pottery::aio::RedisCache");

    impl RedisCache {
        /// See [`crate::RedisCache::random`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// let cache = pottery::aio::RedisCache::random(&redis).await?;
        /// assert!(cache.key().starts_with("pottery:"));
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub async fn random(redis: &Redis) -> Result<Self> {
            Ok(RedisCache::new(
                redis,
                crate::shell::keys::random_key_async(redis).await?,
            ))
        }

        /// The blocking twin, sharing this cache's counters.
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// assert_eq!(pottery::aio::RedisCache::new(&redis, "k").to_blocking().key(), "k");
        /// ```
        pub fn to_blocking(&self) -> crate::RedisCache {
            crate::RedisCache {
                core: self.core.clone(),
            }
        }

        /// See [`crate::RedisCache::get_or_compute`]; `f` returns a future.
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// # let cache = pottery::aio::RedisCache::new(&redis, "async-goc-doc");
        /// # cache.clear().await?;
        /// let v: String = cache.get_or_compute(&("x",), || async { "y".to_string() }).await?;
        /// assert_eq!(v, "y");
        /// # cache.clear().await?;
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub async fn get_or_compute<A, V, F, Fut>(&self, args: &A, f: F) -> Result<V>
        where
            A: Serialize + ?Sized,
            V: Serialize + DeserializeOwned,
            F: FnOnce() -> Fut,
            Fut: Future<Output = V>,
        {
            self.core.get_or_compute(&Async, args, f).await
        }

        /// See [`crate::RedisCache::get_or_try_compute`]; `f` returns a future.
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// # let cache = pottery::aio::RedisCache::random(&redis).await?;
        /// let r = cache
        ///     .get_or_try_compute(&(1,), || async { Err::<u32, _>(std::io::Error::other("down")) })
        ///     .await?;
        /// assert!(r.is_err());
        /// let r = cache.get_or_try_compute(&(1,), || async { Ok::<u32, std::io::Error>(2) }).await?;
        /// assert_eq!(r.unwrap(), 2);
        /// # cache.clear().await?;
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub async fn get_or_try_compute<A, V, E, F, Fut>(
            &self,
            args: &A,
            f: F,
        ) -> Result<std::result::Result<V, E>>
        where
            A: Serialize + ?Sized,
            V: Serialize + DeserializeOwned,
            F: FnOnce() -> Fut,
            Fut: Future<Output = std::result::Result<V, E>>,
        {
            self.core
                .memo::<Async, OkOnly, _, _, _>(&Async, encode(&self.core.key, args), f)
                .await
        }

        /// See [`crate::RedisCache::bypass`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// # let cache = pottery::aio::RedisCache::new(&redis, "async-bypass-doc");
        /// assert_eq!(cache.bypass(&(1,), || async { 2 }).await?, 2);
        /// # cache.clear().await?;
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub async fn bypass<A, V, F, Fut>(&self, args: &A, f: F) -> Result<V>
        where
            A: Serialize + ?Sized,
            V: Serialize,
            F: FnOnce() -> Fut,
            Fut: Future<Output = V>,
        {
            self.core.bypass(&Async, args, f).await
        }

        /// See [`crate::RedisCache::info`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// # let cache = pottery::aio::RedisCache::new(&redis, "async-info-doc");
        /// # cache.clear().await?;
        /// assert_eq!(cache.info().await?.currsize, 0);
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub async fn info(&self) -> Result<CacheInfo> {
            let currsize = self.core.redis.run_async(self.core.len_plan()).await?;
            Ok(self.core.info(currsize))
        }

        /// See [`crate::RedisCache::clear`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// # let cache = pottery::aio::RedisCache::new(&redis, "async-clear-doc");
        /// cache.clear().await?;
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub async fn clear(&self) -> Result<()> {
            self.core.reset();
            self.core.redis.run_async(self.core.clear_plan()).await
        }
    }
}
