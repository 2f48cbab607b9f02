#![cfg_attr(docsrs, feature(doc_cfg))]
//! Redis for Humans: Python pottery's collections, locks and caches for Rust, wire-compatible
//! with pottery 3.0.1.
//!
//! Start from a [`Redis`] handle (one server, a Redis Cluster, or Sentinel's master; cheap to
//! clone, no I/O until the first call) and make structures from it. Each has a blocking type
//! here and an async twin in [`aio`]; each operation is written once and also queues in a
//! [`Batch`].
//!
//! ```
//! use pottery::{Redis, RedisDict};
//! # let redis = pottery::testing::doctest_redis();
//! // let redis = Redis::from_env()?;
//! let tel: RedisDict<String, i64> = RedisDict::new(&redis, "doc-crate-tel");
//! tel.insert("jack".into(), 4098)?;
//! assert_eq!(tel.get("jack")?, Some(4098));
//! # tel.clear()?;
//! # Ok::<(), pottery::Error>(())
//! ```
//!
//! # Guides
//! Each type's guide is its module's documentation: [`dict`], [`set`], [`list`] (lists and
//! deques), [`counter`], [`redlock`] (and `#[synchronize]`), [`nextid`], [`redis_cache`](mod@redis_cache) (and
//! `#[redis_cache]`), [`ordered_dict`], [`bloom`], [`hyperloglog`]. What is not one type is in
//! [`guide`]: [connecting](guide::connecting), [errors, retries and durable
//! writes](guide::errors), [structs as hashes](guide::structs), [batches and
//! transactions](guide::batches), [timers](guide::timers), and [what differs from Python
//! pottery](guide::compatibility). Throwaway servers for tests are in `testing` (feature
//! `testing`).
//!
//! # Errors
//! Every call returns [`Result`]; [`Error`] names the key, and [`Error::kind`] sorts it
//! ([`ErrorKind`]) for mapping to responses and retries.

// The README's examples are doctests too.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// Builders' plain setters, each with its own docs: `fn field(mut self, arg: Type) -> Ret`
/// stores `arg` in the builder's field of the same name and returns the builder.
macro_rules! setters {
    ($ret:ty; $($(#[$doc:meta])* fn $field:ident($arg:ident: $ty:ty);)*) => {$(
        $(#[$doc])*
        pub fn $field(mut self, $arg: $ty) -> $ret {
            self.$field = $arg;
            self
        }
    )*};
}

mod backed;
mod batch;
pub(crate) mod cache;
mod client;
pub mod codec;
mod collections;
mod error;
mod exec;
pub mod guide;
pub mod near;
mod observe;
mod primitives;
#[doc(hidden)]
pub mod private;
mod probabilistic;
mod shell;
mod sync;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
mod timer;

pub use crate::backed::{RedisBacked, Tracked};
pub use crate::batch::{Batch, Batchable, Pending};
pub use crate::cache::ordered_dict::{self, CachedOrderedDict};
pub use crate::cache::redis_cache::{self, CacheInfo, RedisCache};
pub use crate::client::{
    AsyncConnection, DEFAULT_URL, PooledConnection, Redis, RedisBuilder, default_redis,
    set_default_redis,
};
pub use crate::collections::counter::{self, RedisCounter};
pub use crate::collections::dict::{self, RedisDict};
pub use crate::collections::list::{self, RedisDeque, RedisList};
pub use crate::collections::set::{self, IntoSetOperand, RedisSet};
pub use crate::error::{Error, ErrorKind, Result};
pub use crate::near::{NearCache, NearCacheStats};
pub use crate::primitives::nextid::{self, NextId};
pub use crate::primitives::queue::{self, DeadLetter, Delivery, ReliableQueue};
pub use crate::primitives::ratelimit::{self, Decision, RateLimiter};
pub use crate::primitives::redlock::{self, Redlock, RedlockGuard, WatchdogGuard, synchronize};
pub use crate::primitives::semaphore::{self, Semaphore, SemaphorePermit};
pub use crate::probabilistic::bloom::{self, BloomFilter};
pub use crate::probabilistic::hyperloglog::{self, HyperLogLog};
pub use crate::shell::keys::RANDOM_KEY_PREFIX;
pub use crate::timer::{ContextTimer, TimerError, TimerScope};

/// The redis-rs crate pottery is built on, for [`Redis::from_client`], raw commands on a
/// [`PooledConnection`] and the like, at the version pottery uses.
pub use redis;

/// The async twins of pottery's structures: the same names and methods, as `async fn`s, on
/// the [`Redis`] handle's multiplexed connection (Tokio). A structure's blocking, async and
/// batch methods are produced from one table of its operations, so the three take the same
/// arguments, send the same requests and decode the same way.
///
/// ```
/// # let redis = pottery::testing::doctest_redis();
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let d: pottery::aio::RedisDict<String, i64> = pottery::aio::RedisDict::random(&redis).await?;
/// d.insert("one".into(), 1).await?;
/// # d.clear().await?;
/// # Ok::<(), pottery::Error>(()) }).unwrap();
/// ```
pub mod aio {
    pub use crate::batch::aio::Batch;
    pub use crate::cache::ordered_dict::aio::CachedOrderedDict;
    pub use crate::cache::redis_cache::aio::RedisCache;
    pub use crate::collections::counter::aio::RedisCounter;
    pub use crate::collections::dict::aio::RedisDict;
    pub use crate::collections::list::aio::{RedisDeque, RedisList};
    pub use crate::collections::set::aio::RedisSet;
    pub use crate::primitives::nextid::aio::NextId;
    pub use crate::primitives::queue::aio::{Delivery, ReliableQueue};
    pub use crate::primitives::ratelimit::aio::RateLimiter;
    pub use crate::primitives::redlock::aio::{Redlock, RedlockGuard, WatchdogGuard, synchronize};
    pub use crate::primitives::semaphore::aio::{Semaphore, SemaphorePermit};
    pub use crate::probabilistic::bloom::aio::BloomFilter;
    pub use crate::probabilistic::hyperloglog::aio::HyperLogLog;
}

/// Derives [`RedisBacked`](trait@RedisBacked): the struct is stored as a Redis hash, and gets a
/// typed `<Struct>Handle` with one-round-trip field getters, `set_<field>` and `incr_<field>`.
/// Attributes: `#[redis(key = "prefix:{field}")]` (and `#[redis(crate = my_pottery)]` when the
/// dependency is renamed) on the struct; `#[redis(rename = "...")]`,
/// `#[redis(skip)]`, `#[redis(default)]` and `#[redis(default = path)]` on fields. See the
/// crate documentation's "Structs as hashes" section.
///
/// ```
/// use pottery::RedisBacked;
///
/// #[derive(RedisBacked, Debug, PartialEq)]
/// #[redis(key = "doc-point:{name}")]
/// struct Point { name: String, x: i64, y: i64 }
///
/// # let redis = pottery::testing::doctest_redis();
/// let p = Point { name: "a".into(), x: 1, y: 2 };
/// p.save_keyed(&redis)?;
/// let handle = Point::handle_keyed(&redis, "a");
/// assert_eq!(handle.incr_x(10)?, 11);
/// assert_eq!(Point::load_keyed(&redis, "a")?, Some(Point { x: 11, ..p }));
/// # Point::delete_keyed(&redis, "a")?;
/// # Ok::<(), pottery::Error>(())
/// ```
#[cfg(feature = "macros")]
#[cfg_attr(docsrs, doc(cfg(feature = "macros")))]
pub use pottery_macros::RedisBacked;

/// Memoises a function, an `async fn` or a `&self` method in a Redis hash shared by every
/// process using the same key: only `Ok` / `Some` results are stored, `key` and `redis` may be
/// expressions of `self` and the arguments, and concurrent misses of one entry compute once.
/// Free functions get companions in a module of the function's name (`cache_info`,
/// `cache_clear`, `bypass`, `wrapped`). Every cached function and method gets
/// `<fn>_invalidate(args…) -> pottery::Result<bool>` (delete the entry those arguments read)
/// and `<fn>_prime(args…, &value) -> pottery::Result<()>` (store `value` as its result) next
/// to it — methods of the same impl with the same receiver for a method, `async` for an
/// `async fn` — which encode the arguments exactly as the call does and return Redis errors
/// (`companions = false` leaves them out, as a method of a trait impl needs).
/// See the crate documentation's "redis_cache" section.
///
/// ```
/// use pottery::redis_cache;
///
/// #[redis_cache(key = "doc-squares", redis = pottery::testing::doctest_redis())]
/// fn square(n: u64) -> u64 {
///     n * n
/// }
///
/// fn main() -> pottery::Result<()> {
///     square::cache_clear()?;
///     assert_eq!(square(12), 144); // computed
///     assert_eq!(square(12), 144); // from Redis
///     assert_eq!(square::cache_info()?.hits, 1);
///     assert!(square_invalidate(12)?); // dropped: the next call computes
///     square_prime(3, &10)?;           // stored as square(3)'s result
///     assert_eq!(square(3), 10);
///     square::cache_clear()
/// }
/// ```
#[cfg(feature = "macros")]
#[cfg_attr(docsrs, doc(cfg(feature = "macros")))]
pub use pottery_macros::redis_cache;

/// Runs every call of a function, an `async fn` or a `&self` method under a lease of a
/// [`Redlock`] (a lock per call's `key` expression, such as `format!("account:{id}")`); the
/// function returns `Result<T, E>` with `E: From<pottery::Error>`. See the crate documentation's
/// "synchronize" section.
///
/// ```
/// use pottery::synchronize;
///
/// #[synchronize(key = "doc-printer", masters = [pottery::testing::doctest_redis()])]
/// fn print(pages: u32) -> Result<u32, pottery::Error> {
///     Ok(pages)
/// }
///
/// fn main() {
///     assert_eq!(print(2).unwrap(), 2);
/// }
/// ```
#[cfg(feature = "macros")]
#[cfg_attr(docsrs, doc(cfg(feature = "macros")))]
pub use pottery_macros::synchronize;

/// Times every call of a function (or `async fn`) with a [`ContextTimer`]: a `tracing` event
/// and, with `callback = path`, a call of `path(name, elapsed)`. See the crate documentation's
/// "#[timed]" section.
///
/// ```
/// use pottery::timed;
///
/// fn report(name: &'static str, took: std::time::Duration) {
///     assert_eq!(name, "work");
///     assert!(took < std::time::Duration::from_secs(5));
/// }
///
/// #[timed(callback = report)]
/// fn work() -> u32 {
///     7
/// }
///
/// fn main() {
///     assert_eq!(work(), 7);
/// }
/// ```
#[cfg(feature = "macros")]
#[cfg_attr(docsrs, doc(cfg(feature = "macros")))]
pub use pottery_macros::timed;
