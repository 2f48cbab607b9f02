//! The near cache (issue "A near cache: reads served from local memory, invalidated by the
//! server, never stale past one invalidation") against real servers: another client's writes
//! seen within one invalidation delivery, read-your-writes, versions that never go backwards,
//! the read/insert race, a killed tracking connection, FLUSHALL/FLUSHDB/SWAPDB, expiry,
//! DEL/UNLINK/RENAME, scripts and transactions from others, databases, the caps, and the
//! caches. `POTTERY_NEAR_WRITES=<n>` runs more writes in the long loops (default 2,000).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use pottery::testing::RedisServer;
use pottery::{NearCache, Redis, RedisCache, RedisDict, RedisSet, aio};
use pottery_tests::{poll, unique_key};

fn writes() -> u64 {
    std::env::var("POTTERY_NEAR_WRITES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000)
}

fn near(server: &RedisServer) -> Redis {
    near_with(server, NearCache::new())
}

fn near_with(server: &RedisServer, settings: NearCache) -> Redis {
    Redis::builder(&server.url())
        .near_cache(settings)
        .build()
        .unwrap()
}

fn raw(server: &RedisServer) -> redis::Connection {
    redis::Client::open(server.url())
        .unwrap()
        .get_connection()
        .unwrap()
}

fn hset(conn: &mut redis::Connection, key: &str, field: &str, value: i64) {
    // The dict's encoding: JSON keys and values.
    redis::cmd("HSET")
        .arg(key)
        .arg(format!("\"{field}\""))
        .arg(value)
        .exec(conn)
        .unwrap();
}

fn stats(redis: &Redis) -> pottery::NearCacheStats {
    redis.near_cache_stats().unwrap()
}

/// Reads `field` until it is `want`, within a bound (one invalidation delivery, generously).
fn seen(dict: &RedisDict<String, i64>, field: &str, want: Option<i64>) -> bool {
    poll(5, || dict.get(field).unwrap() == want)
}

#[test]
fn reads_are_served_locally_and_writes_are_seen() {
    let server = RedisServer::start().unwrap();
    let redis = near(&server);
    let key = unique_key("near-basic");
    let dict = RedisDict::<String, i64>::new(&redis, &key);
    dict.insert("a".into(), 1).unwrap();
    assert_eq!(dict.get("a").unwrap(), Some(1));
    let before = stats(&redis);
    for _ in 0..100 {
        assert_eq!(dict.get("a").unwrap(), Some(1));
        assert!(dict.contains_key("a").unwrap());
        assert_eq!(dict.len().unwrap(), 1);
    }
    let after = stats(&redis);
    assert!(after.hits >= before.hits + 290, "{before:?} {after:?}");
    // Read-your-writes.
    dict.insert("a".into(), 2).unwrap();
    assert_eq!(dict.get("a").unwrap(), Some(2));
    // Another client's write.
    let mut conn = raw(&server);
    hset(&mut conn, &key, "a", 3);
    assert!(seen(&dict, "a", Some(3)));
    assert_eq!(stats(&redis).connections, 1);
}
