#![doc = include_str!("../../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod backed;
pub(crate) mod cache;
pub mod codec;
mod collections;
mod error;
mod op;
mod primitives;
#[doc(hidden)]
pub mod private;
mod probabilistic;
mod redis;
mod rt;
#[cfg(feature = "testing")]
pub mod testing;
mod timer;

pub use crate::backed::RedisBacked;
pub use crate::cache::ordered_dict::{self, CachedOrderedDict};
pub use crate::cache::redis_cache::{self, CacheInfo, RedisCache};
pub use crate::collections::RANDOM_KEY_PREFIX;
pub use crate::collections::counter::{self, RedisCounter};
pub use crate::collections::dict::{self, RedisDict};
pub use crate::collections::list::{self, RedisDeque, RedisList};
pub use crate::collections::set::{self, IntoSetOperand, RedisSet};
pub use crate::error::{Error, Result};
pub use crate::primitives::nextid::{self, NextId};
pub use crate::primitives::redlock::{self, Redlock, RedlockGuard, WatchdogGuard, synchronize};
pub use crate::probabilistic::bloom::{self, BloomFilter};
pub use crate::probabilistic::hyperloglog::{self, HyperLogLog};
pub use crate::redis::{
    AsyncConnection, DEFAULT_URL, PooledConnection, Redis, RedisBuilder, default_redis,
    set_default_redis,
};
pub use crate::timer::{ContextTimer, TimerError, TimerScope};

/// The async twins of pottery's structures: the same names and methods, as `async fn`s, on
/// the [`Redis`] handle's multiplexed connection (Tokio).
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
    pub use crate::cache::ordered_dict::aio::CachedOrderedDict;
    pub use crate::cache::redis_cache::aio::RedisCache;
    pub use crate::collections::counter::aio::RedisCounter;
    pub use crate::collections::dict::aio::RedisDict;
    pub use crate::collections::list::aio::{RedisDeque, RedisList};
    pub use crate::collections::set::aio::RedisSet;
    pub use crate::primitives::nextid::aio::NextId;
    pub use crate::primitives::redlock::aio::{Redlock, RedlockGuard, WatchdogGuard, synchronize};
    pub use crate::probabilistic::bloom::aio::BloomFilter;
    pub use crate::probabilistic::hyperloglog::aio::HyperLogLog;
}

pub use pottery_macros::{RedisBacked, redis_cache, synchronize, timed};
