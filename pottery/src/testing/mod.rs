//! Throwaway `redis-server` processes for tests — pottery's own and yours (feature `testing`).
//!
//! Every server listens on a free loopback port, keeps its files in a temporary directory,
//! persists nothing, and is killed when its value is dropped — and, should the test process
//! die first, by the kernel (`PR_SET_PDEATHSIG`), so no test leaves a server behind.
//!
//! Kinds: a plain server ([`RedisServer::start`]), one with a password or an ACL user, one with
//! TLS and certificates made on the spot ([`ServerBuilder`]), N independent masters
//! ([`Masters`]), a Redis Cluster with or without replicas ([`RedisCluster`]) and a
//! Sentinel-managed master with a replica and three sentinels ([`SentinelGroup`]) — these two
//! with features `cluster` and `sentinel`. `redis-server` and `redis-cli` are
//! taken from `$PATH`, or from `$REDIS_SERVER` / `$REDIS_CLI`.
//!
//! For fault injection: a real server can be frozen ([`RedisServer::pause`]), killed
//! ([`RedisServer::stop`]) and brought back on its port ([`RedisServer::restart`]);
//! [`FaultyServer`] is a server that never answers, answers garbage or answers as an HTTP
//! server does ([`Misbehaviour`]); [`RefusedPort`] is a port known to refuse connections.
//!
//! ```
//! use pottery::testing::RedisServer;
//!
//! let server = RedisServer::start()?;
//! let redis = server.redis();
//! redis.ping()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[cfg(feature = "cluster")]
mod cluster;
mod faulty;
pub mod near_hook;
mod process;
#[cfg(feature = "sentinel")]
mod sentinel;
mod server;
mod shared;
mod tls;

#[cfg(feature = "cluster")]
#[cfg_attr(docsrs, doc(cfg(feature = "cluster")))]
pub use self::cluster::{ClusterBuilder, ClusterNode, ClusterRole, RedisCluster};
pub use self::faulty::{FaultyServer, Misbehaviour, RefusedPort};
pub use self::process::pin_to_cpu;
#[cfg(feature = "sentinel")]
#[cfg_attr(docsrs, doc(cfg(feature = "sentinel")))]
pub use self::sentinel::{SentinelBuilder, SentinelGroup};
pub use self::server::{Masters, RedisServer, ServerBuilder};
#[cfg(feature = "cluster")]
#[cfg_attr(docsrs, doc(cfg(feature = "cluster")))]
pub use self::shared::shared_cluster;
pub use self::shared::{doctest_redis, read_log, shared_server};
pub use self::tls::TlsFiles;

/// How many of pottery's commands `redis`'s async connections (those it holds now, to a
/// single server or a Sentinel group's master, made on a multi-threaded runtime; a cluster
/// handle's and those of a current-thread runtime are not coalesced) sent
/// coalesced with other tasks' commands, as one pipeline: commands sent while others are in
/// flight on the same connection go out together (one write, one read by the server), each
/// still answered on its own.
///
/// ```
/// # let redis = pottery::testing::doctest_redis();
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let d = pottery::aio::RedisDict::<String, i64>::new(&redis, "coalesced-doc");
/// let replies = futures_util::future::join_all((0..64).map(|i| d.insert(format!("f{i}"), i))).await;
/// assert!(replies.iter().all(|r| r.is_ok()));
/// // Counted over the handle's life: how many went out in a pipeline depends on timing.
/// let _ = pottery::testing::coalesced_commands(&redis);
/// # d.clear().await.unwrap();
/// # });
/// ```
pub fn coalesced_commands(redis: &crate::Redis) -> u64 {
    redis.coalesced_commands()
}

/// Waits (up to five seconds) until the near cache of `redis` has no fill of a blocking read
/// under way, and says whether it got there (`true` at once without a near cache). A
/// blocking read that misses is answered on a pooled connection and fills the cache behind
/// it, on the tracking connection; once those fills have ended, every invalidation the server
/// sent before the reads ran has been applied. For tests that count cached entries, or
/// invalidations, right after blocking reads.
///
/// ```
/// # let server = pottery::testing::RedisServer::start().unwrap();
/// use pottery::{NearCache, Redis, RedisDict};
///
/// let redis = Redis::builder(&server.url()).near_cache(NearCache::new()).build()?;
/// let config = RedisDict::<String, String>::new(&redis, "settled-doc");
/// config.insert("mode".into(), "fast".into())?;
/// assert_eq!(config.get("mode")?.as_deref(), Some("fast")); // a miss, filled behind it
/// assert!(pottery::testing::near_settled(&redis));
/// assert_eq!(redis.near_cache_stats().unwrap().entries, 1);
/// # Ok::<(), pottery::Error>(())
/// ```
pub fn near_settled(redis: &crate::Redis) -> bool {
    let Some(near) = redis.near() else {
        return true;
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !near.settled() {
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    true
}
