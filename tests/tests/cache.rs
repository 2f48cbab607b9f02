//! RedisCache and CachedOrderedDict (sync and async, single server and cluster), with Python
//! pottery 3.0.1's CachedOrderedDict on the same server for interop.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use pottery::testing::{RedisServer, shared_server};
use pottery::{CacheInfo, CachedOrderedDict, Error, RedisCache};
use pottery_tests::{poll, run_python, targets, unique_key};
use redis::Commands;
use serde_json::json;

fn pttl(redis: &pottery::Redis, key: &str) -> i64 {
    let mut conn = redis.connection().unwrap();
    conn.pttl(key).unwrap()
}

/// pottery's redis_cache tests, in Rust: hits and misses, the 60 s sliding TTL, no TTL with
/// `timeout(None)`, bypass, clear, a random key.
#[test]
fn redis_cache_flows() {
    for (kind, redis) in targets() {
        let key = unique_key("cache");
        let cache = RedisCache::new(&redis, key.clone());
        let calls = AtomicUsize::new(0);
        let expensive = |n: i64| {
            calls.fetch_add(1, Ordering::SeqCst);
            n * 10
        };
        assert_eq!(cache.get_or_compute(&(1,), || expensive(1)).unwrap(), 10);
        assert_eq!(cache.get_or_compute(&(1,), || expensive(1)).unwrap(), 10);
        assert_eq!(cache.get_or_compute(&(2,), || expensive(2)).unwrap(), 20);
        assert_eq!(calls.load(Ordering::SeqCst), 2, "{kind}");
        assert_eq!(
            cache.info().unwrap(),
            CacheInfo {
                hits: 1,
                misses: 2,
                maxsize: None,
                currsize: 2
            }
        );
        // The whole hash has a 60 s sliding expiry.
        let ttl = pttl(&redis, &key);
        assert!((50_000..=60_000).contains(&ttl), "{kind}: {ttl}");
        // The field is the arguments' JSON, readable by anyone.
        let mut conn = redis.connection().unwrap();
        let raw: Option<String> = conn.hget(&key, "[1]").unwrap();
        assert_eq!(raw.as_deref(), Some("10"));
        // bypass recomputes and stores, counting nothing.
        assert_eq!(cache.bypass(&(1,), || 11).unwrap(), 11);
        assert_eq!(cache.get_or_compute(&(1,), || 0).unwrap(), 11);
        let info = cache.info().unwrap();
        assert_eq!((info.hits, info.misses), (2, 2));
        // Clones share the counters; the async twin too.
        let clone = cache.clone();
        clone.get_or_compute(&(2,), || 0).unwrap();
        assert_eq!(cache.info().unwrap().hits, 3);
        cache.clear().unwrap();
        assert_eq!(cache.info().unwrap(), CacheInfo::default());
        let exists: bool = conn.exists(&key).unwrap();
        assert!(!exists);

        let forever = RedisCache::new(&redis, unique_key("cache-forever")).timeout(None);
        forever.get_or_compute(&("a", 1), || 1).unwrap();
        assert_eq!(pttl(&redis, forever.key()), -1);
        forever.clear().unwrap();

        let random = RedisCache::random(&redis).unwrap();
        assert!(random.key().starts_with("pottery:"));
        assert_eq!(random.info().unwrap().currsize, 0);
    }
}

/// pottery keys entries by CPython `hash()`, so f(-1) and f(-2) share one; we do not.
#[test]
fn distinct_arguments_never_share_an_entry() {
    let redis = shared_server().redis();
    let cache = RedisCache::new(&redis, unique_key("cache-collide"));
    assert_eq!(
        cache
            .get_or_compute(&(-1,), || "minus one".to_string())
            .unwrap(),
        "minus one"
    );
    assert_eq!(
        cache
            .get_or_compute(&(-2,), || "minus two".to_string())
            .unwrap(),
        "minus two"
    );
    assert_eq!(cache.get_or_compute(&(1,), || 1.5).unwrap(), 1.5);
    // 1, 1.0 and true are three different arguments.
    assert_eq!(cache.get_or_compute(&(1.0,), || 2.5).unwrap(), 2.5);
    assert_eq!(cache.get_or_compute(&(true,), || 3.5).unwrap(), 3.5);
    assert_eq!(cache.info().unwrap().currsize, 5);
    cache.clear().unwrap();
}

/// The hash expires `timeout` after its last use; every use slides it.
#[test]
fn sliding_expiry() {
    let redis = shared_server().redis();
    let key = unique_key("cache-expiry");
    // 3 s leaves 1.5 s of room for a stalled 2-core machine between two steps.
    let cache = RedisCache::new(&redis, key.clone()).timeout(Some(Duration::from_secs(3)));
    cache.get_or_compute(&(1,), || 1).unwrap();
    let ttl = pttl(&redis, &key);
    assert!((1..=3000).contains(&ttl), "{ttl}");
    // A hit slides the expiry back up to the full timeout.
    assert!(poll(10, || pttl(&redis, &key) < 1500));
    cache.get_or_compute(&(1,), || 1).unwrap();
    assert!(pttl(&redis, &key) > 1500);
    // Left alone, it goes.
    assert!(
        poll(10, || pttl(&redis, &key) == -2),
        "the cache never expired"
    );
    assert_eq!(cache.get_or_compute(&(1,), || 2).unwrap(), 2, "recomputed");
}

#[test]
fn eight_threads_count_every_call() {
    for (kind, redis) in targets() {
        let cache = RedisCache::new(&redis, unique_key("cache-threads"));
        let computed = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for t in 0..8 {
                let cache = cache.clone();
                let computed = &computed;
                s.spawn(move || {
                    for i in 0..200u64 {
                        let n = (i * 7 + t) % 50;
                        let v = cache
                            .get_or_compute(&(n,), || {
                                computed.fetch_add(1, Ordering::SeqCst);
                                n * n
                            })
                            .unwrap();
                        assert_eq!(v, n * n);
                    }
                });
            }
        });
        let info = cache.info().unwrap();
        assert_eq!(info.hits + info.misses, 1600, "{kind}");
        assert_eq!(info.misses as usize, computed.load(Ordering::SeqCst));
        assert_eq!(info.currsize, 50);
        assert!(info.hits >= 1600 - 8 * 50, "{kind}: {info:?}");
        cache.clear().unwrap();
    }
}

#[test]
fn redis_down_still_answers() {
    let mut server = RedisServer::start().unwrap();
    // Strict calls retry through outages for the handle's retry timeout: keep it short here.
    let redis = pottery::Redis::builder(&server.url())
        .retry_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let cache = RedisCache::new(&redis, "cache-down").retry_after(Duration::ZERO);
    assert_eq!(cache.get_or_compute(&(3,), || 9).unwrap(), 9);
    server.stop();
    // Down: computed, returned; counted as a miss.
    assert_eq!(cache.get_or_compute(&(4,), || 16).unwrap(), 16);
    assert_eq!(cache.get_or_compute(&(3,), || 9).unwrap(), 9);
    assert_eq!(cache.bypass(&(5,), || 25).unwrap(), 25);
    // Strict mode says what is wrong, naming the key.
    let strict = cache.clone().strict(true);
    let err = strict.get_or_compute(&(4,), || 16).unwrap_err();
    assert!(
        matches!(&err, Error::Redis { key: Some(k), .. } if k == "cache-down"),
        "{err}"
    );
    // Back up: the cache works again.
    server.restart().unwrap();
    assert!(poll(10, || cache.get_or_compute(&(6,), || 36).is_ok()
        && cache.info().map(|i| i.currsize >= 1).unwrap_or(false)));
    assert_eq!(
        cache.get_or_compute(&(6,), || 0).unwrap(),
        36,
        "a hit again"
    );
}

#[tokio::test]
async fn redis_down_still_answers_async() {
    let mut server = RedisServer::start().unwrap();
    let cache = pottery::aio::RedisCache::new(&server.redis(), "cache-down-async");
    assert_eq!(
        cache.get_or_compute(&(3,), || async { 9 }).await.unwrap(),
        9
    );
    server.stop();
    assert_eq!(
        cache.get_or_compute(&(4,), || async { 16 }).await.unwrap(),
        16
    );
    assert_eq!(
        cache.get_or_compute(&(3,), || async { 9 }).await.unwrap(),
        9
    );
}

#[test]
fn undecodable_entry_is_recomputed_and_overwritten() {
    let redis = shared_server().redis();
    let key = unique_key("cache-garbage");
    let mut conn = redis.connection().unwrap();
    let _: () = conn.hset(&key, "[7]", "\u{1}not json").unwrap();
    let cache = RedisCache::new(&redis, key.clone());
    assert_eq!(cache.get_or_compute(&(7,), || 49).unwrap(), 49);
    let raw: String = conn.hget(&key, "[7]").unwrap();
    assert_eq!(raw, "49");
    // A value of another type is recomputed too.
    let _: () = conn.hset(&key, "[8]", "\"a string\"").unwrap();
    assert_eq!(cache.get_or_compute(&(8,), || 64).unwrap(), 64);
    let info = cache.info().unwrap();
    assert_eq!((info.hits, info.misses), (0, 2));
    assert!(matches!(
        cache
            .clone()
            .strict(true)
            .get_or_compute(&(9,), || 1)
            .map(|_| ()),
        Ok(())
    ));
    let _: () = conn.hset(&key, "[9]", "garbage").unwrap();
    let err = cache
        .clone()
        .strict(true)
        .get_or_compute(&(9,), || 1)
        .unwrap_err();
    assert!(
        matches!(&err, Error::Codec { key: k, .. } if *k == key),
        "{err}"
    );
    cache.clear().unwrap();
}

#[tokio::test]
async fn async_cache_flows() {
    for (kind, redis) in targets() {
        let cache = pottery::aio::RedisCache::new(&redis, unique_key("cache-async"));
        let v: String = cache
            .get_or_compute(&("x", 1), || async { "computed".to_string() })
            .await
            .unwrap();
        assert_eq!(v, "computed");
        let v: String = cache
            .get_or_compute(&("x", 1), || async { unreachable!("a hit") })
            .await
            .unwrap();
        assert_eq!(v, "computed");
        assert_eq!(cache.bypass(&("y", 2), || async { 5 }).await.unwrap(), 5);
        let info = cache.info().await.unwrap();
        assert_eq!((info.hits, info.misses, info.currsize), (1, 1, 2), "{kind}");
        // The blocking twin shares counters and entries.
        assert_eq!(
            cache.to_blocking().get_or_compute(&("y", 2), || 0).unwrap(),
            5
        );
        assert_eq!(cache.info().await.unwrap().hits, 2);
        cache.clear().await.unwrap();
        assert_eq!(cache.info().await.unwrap(), CacheInfo::default());
    }
}

#[test]
fn cached_ordered_dict_flows() {
    for (kind, redis) in targets() {
        let key = unique_key("cod");
        let mut d: CachedOrderedDict<u32, String> =
            CachedOrderedDict::new(&redis, key.clone(), [3, 1, 2, 1]).unwrap();
        assert_eq!(d.misses(), [3, 1, 2], "{kind}: deduplicated, in order");
        assert!(d.is_empty());
        for k in d.misses() {
            d.insert(k, format!("#{k}")).unwrap();
        }
        assert!(d.misses().is_empty());
        assert_eq!(d.len(), 3);
        assert_eq!(d.get(&1).map(String::as_str), Some("#1"));
        let order: Vec<u32> = d.keys().copied().collect();
        assert_eq!(order, [3, 1, 2]);
        // Written through: a new view loads them all in one round trip.
        let again: CachedOrderedDict<u32, String> =
            CachedOrderedDict::new(&redis, key.clone(), [2, 9]).unwrap();
        assert_eq!(again.misses(), [9]);
        assert_eq!(again.iter().collect::<Vec<_>>(), [(&2, &"#2".to_string())]);
        let ttl = pttl(&redis, &key);
        assert!((50_000..=60_000).contains(&ttl), "{kind}: {ttl}");
        // A new key goes at the end; extend writes all in one go.
        d.extend([(7, "#7".to_string()), (3, "three".to_string())])
            .unwrap();
        assert_eq!(d.keys().copied().collect::<Vec<_>>(), [3, 1, 2, 7]);
        assert_eq!(d.insert(1, "one".into()).unwrap(), Some("#1".into()));
        // setdefault never overwrites what Redis holds, even for a key not loaded here.
        let mut other: CachedOrderedDict<u32, String> =
            CachedOrderedDict::new(&redis, key.clone(), []).unwrap();
        assert_eq!(other.setdefault(1, "default".into()).unwrap(), "one");
        assert_eq!(other.setdefault(42, "default".into()).unwrap(), "default");
        assert_eq!(other.get(&42).map(String::as_str), Some("default"));
        let check: CachedOrderedDict<u32, String> =
            CachedOrderedDict::new(&redis, key.clone(), [1, 42]).unwrap();
        assert_eq!(check.get(&1).map(String::as_str), Some("one"));
        assert_eq!(check.get(&42).map(String::as_str), Some("default"));
        // An entry of another shape is a miss.
        let mut conn = redis.connection().unwrap();
        let _: () = conn.hset(&key, "5", "not json").unwrap();
        let odd: CachedOrderedDict<u32, String> =
            CachedOrderedDict::new(&redis, key.clone(), [5, 1]).unwrap();
        assert_eq!(odd.misses(), [5]);
        assert!(format!("{odd:?}").contains(&key));
        // No timeout: no TTL.
        let key2 = unique_key("cod-forever");
        let mut forever: CachedOrderedDict<u8, u8> =
            CachedOrderedDict::with_timeout(&redis, key2.clone(), [1], None).unwrap();
        forever.insert(1, 1).unwrap();
        assert_eq!(pttl(&redis, &key2), -1);
        let _: () = conn.del(&[key, key2]).unwrap();
    }
}

#[tokio::test]
async fn cached_ordered_dict_async() {
    for (kind, redis) in targets() {
        let key = unique_key("cod-async");
        let mut d: pottery::aio::CachedOrderedDict<String, f64> =
            pottery::aio::CachedOrderedDict::new(
                &redis,
                key.clone(),
                ["a".to_string(), "b".to_string()],
            )
            .await
            .unwrap();
        assert_eq!(d.misses(), ["a", "b"]);
        d.insert("a".into(), 1.5).await.unwrap();
        d.extend([("b".to_string(), 2.5)]).await.unwrap();
        assert_eq!(*d.setdefault("a".into(), 9.0).await.unwrap(), 1.5);
        assert_eq!(d.len(), 2, "{kind}");
        let again =
            CachedOrderedDict::<String, f64>::new(&redis, key.clone(), ["b".to_string()]).unwrap();
        assert_eq!(again.get("b"), Some(&2.5));
        let mut conn = redis.connection().unwrap();
        let _: () = conn.del(&key).unwrap();
    }
}

const PY_PRELUDE: &str = r#"
import json, os, sys
from redis import Redis
from pottery import CachedOrderedDict
redis = Redis.from_url(os.environ['REDIS_URL'])
args = json.loads(sys.stdin.read())
"#;

#[test]
fn cached_ordered_dict_interop() {
    let server = shared_server();
    let redis = server.redis();
    let key = unique_key("cod-py");
    // Python caches some keys...
    let code = format!(
        "{PY_PRELUDE}\ncod = CachedOrderedDict(redis_client=redis, redis_key=args['key'], dict_keys=[1, 2, 'x'])\n\
         assert cod.misses() == {{1, 2, 'x'}}\n\
         cod[1] = 'one'\ncod['x'] = {{'nested': [1.5, None, 'é']}}\nprint('ok')"
    );
    assert_eq!(
        run_python(&code, &server.url(), &json!({"key": key}).to_string()).trim(),
        "ok"
    );
    // ...Rust reads them and fills the rest...
    let mut d: CachedOrderedDict<serde_json::Value, serde_json::Value> =
        CachedOrderedDict::new(&redis, key.clone(), [json!(1), json!(2), json!("x")]).unwrap();
    assert_eq!(d.misses(), [json!(2)]);
    assert_eq!(d.get(&json!(1)), Some(&json!("one")));
    assert_eq!(
        d.get(&json!("x")),
        Some(&json!({"nested": [1.5, null, "é"]}))
    );
    d.insert(json!(2), json!([2, 2.0])).unwrap();
    // ...and Python sees everything, with no misses.
    let code = format!(
        "{PY_PRELUDE}\ncod = CachedOrderedDict(redis_client=redis, redis_key=args['key'], dict_keys=[1, 2, 'x'])\n\
         assert not cod.misses(), cod.misses()\n\
         print(json.dumps(cod[2]), cod[1], cod['x']['nested'][2] == 'é')"
    );
    let out = run_python(&code, &server.url(), &json!({"key": key}).to_string());
    assert_eq!(out.trim(), "[2, 2.0] one True");
    // Both sides write the same bytes for the same data.
    let py_key = unique_key("cod-py-bytes");
    let rs_key = unique_key("cod-rs-bytes");
    let code = format!(
        "{PY_PRELUDE}\ncod = CachedOrderedDict(redis_client=redis, redis_key=args['key'], dict_keys=[])\n\
         cod[10] = 'ten'\ncod['k'] = [1, {{'b': 2, 'a': 1e16}}]\nprint('ok')"
    );
    run_python(&code, &server.url(), &json!({"key": py_key}).to_string());
    let mut r: CachedOrderedDict<serde_json::Value, serde_json::Value> =
        CachedOrderedDict::new(&redis, rs_key.clone(), []).unwrap();
    r.insert(json!(10), json!("ten")).unwrap();
    r.insert(json!("k"), json!([1, {"b": 2, "a": 1e16}]))
        .unwrap();
    let mut conn = redis.connection().unwrap();
    let a: std::collections::HashMap<Vec<u8>, Vec<u8>> = conn.hgetall(&py_key).unwrap();
    let b: std::collections::HashMap<Vec<u8>, Vec<u8>> = conn.hgetall(&rs_key).unwrap();
    assert_eq!(a.len(), 2);
    assert_eq!(a, b);
    let _: () = conn.del(&[key, py_key, rs_key]).unwrap();
}

/// `remove` deletes one entry (blocking, async, batched), on a server and a cluster; the rest
/// of the cache is left alone.
#[test]
fn remove_drops_one_entry() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    for (kind, redis) in targets() {
        for ttl in [None, Some(Duration::from_secs(30))] {
            let cache = RedisCache::new(&redis, unique_key("cache-remove")).ttl(ttl);
            for n in 1..=4u64 {
                cache.get_or_compute(&(n,), || n * n).unwrap();
            }
            assert!(cache.remove(&(2,)).unwrap(), "{kind} {ttl:?}");
            assert!(
                !cache.remove(&(2,)).unwrap(),
                "{kind} {ttl:?}: already gone"
            );
            assert_eq!(cache.get::<_, u64>(&(2,)).unwrap(), None);
            assert_eq!(cache.get::<_, u64>(&(3,)).unwrap(), Some(9));
            assert_eq!(
                cache.get_or_compute(&(2,), || 40).unwrap(),
                40,
                "computed again"
            );

            let batch = pottery::Batch::new(&redis);
            let removed = batch.on(&cache).remove(&(3,));
            let absent = batch.on(&cache).remove(&(99,));
            batch.execute().unwrap();
            assert!(removed.get().unwrap() && !absent.get().unwrap(), "{kind}");

            let aio = cache.to_async();
            rt.block_on(async {
                assert!(aio.remove(&(4,)).await.unwrap());
                assert_eq!(aio.get::<_, u64>(&(4,)).await.unwrap(), None);
            });
            assert_eq!(
                cache.info().unwrap().currsize,
                2,
                "{kind} {ttl:?}: 1 and 2 left"
            );
            cache.clear().unwrap();
        }
    }
}

/// The cache's index of deadlines (servers without hash-field expiry), if there is one.
fn deadlines_key(key: &str) -> String {
    format!("{{{key}}}:deadlines")
}

/// Per-entry ttl over a few thousand entries, a few of them kept in use: once the rest have
/// expired the server holds the live entries and a small margin, not every entry ever stored
/// (Redis 7.0: the index of deadlines, trimmed by every store and lookup; Valkey 9 and Redis
/// 7.4+: hash-field expiry); `currsize` counts live entries only; the index slides with the
/// hash and goes with `clear`.
#[test]
fn expired_entries_leave_the_server() {
    const ENTRIES: u64 = 3000;
    const HOT: u64 = 5;
    for (kind, redis) in targets() {
        let key = unique_key("cache-trim");
        let cache = RedisCache::new(&redis, key.clone())
            .ttl(Some(Duration::from_secs(1)))
            .timeout(Some(Duration::from_secs(30)));
        let batch = pottery::Batch::new(&redis);
        for n in 0..ENTRIES {
            batch.on(&cache).store(&(n,), &n);
        }
        batch.execute().unwrap();
        let mut conn = redis.connection().unwrap();
        let hlen = |conn: &mut pottery::PooledConnection| -> usize { conn.hlen(&key).unwrap() };
        assert_eq!(hlen(&mut conn), ENTRIES as usize, "{kind}");
        let indexed: usize = conn.zcard(deadlines_key(&key)).unwrap();
        if indexed > 0 {
            // The index expires with the hash.
            assert_eq!(indexed, ENTRIES as usize, "{kind}");
            let index_ttl = pttl(&redis, &deadlines_key(&key));
            assert!((1..=30_000).contains(&index_ttl), "{kind}: {index_ttl}");
        }
        // Keep a few in use (recomputed as they expire) until the rest are gone.
        let mut settled = 0;
        let gone = poll(15, || {
            for n in 0..HOT {
                assert_eq!(cache.get_or_compute(&(n,), || n).unwrap(), n);
            }
            let held = hlen(&mut conn);
            if held <= HOT as usize + 5 {
                settled = held;
                true
            } else {
                false
            }
        });
        assert!(gone, "{kind}: {} entries still held", hlen(&mut conn));
        assert!(settled <= HOT as usize + 5);
        let info = cache.info().unwrap();
        assert!(info.currsize <= HOT as usize, "{kind}: {info:?}");
        let indexed: usize = conn.zcard(deadlines_key(&key)).unwrap();
        assert!(
            indexed <= HOT as usize + 5,
            "{kind}: {indexed} in the index"
        );
        cache.clear().unwrap();
        let left: usize = conn
            .exists(&[key.clone(), deadlines_key(&key)][..])
            .unwrap();
        assert_eq!(left, 0, "{kind}: clear deletes the hash and its index");
    }
}

/// `currsize` leaves out entries whose deadline has passed before anything deleted them.
#[test]
fn currsize_counts_live_entries() {
    let redis = shared_server().redis();
    let cache = RedisCache::new(&redis, unique_key("cache-live")).ttl(Some(Duration::from_secs(1)));
    for n in 0..20u64 {
        cache.store(&(n,), &n).unwrap();
    }
    assert_eq!(cache.info().unwrap().currsize, 20);
    assert!(
        poll(10, || cache.info().unwrap().currsize == 0),
        "{:?}",
        cache.info()
    );
    cache.clear().unwrap();
}

/// The trim deletes only entries whose own deadline has passed: an entry stored again since
/// without a time to live (by a cache on the same key without `ttl`) stays.
#[test]
fn trim_spares_entries_stored_again() {
    let redis = shared_server().redis();
    let key = unique_key("cache-trim-spare");
    let ttl = RedisCache::new(&redis, key.clone()).ttl(Some(Duration::from_secs(1)));
    let plain = RedisCache::new(&redis, key.clone());
    ttl.store(&(1,), &1).unwrap();
    ttl.store(&(2,), &2).unwrap();
    plain.store(&(2,), &20).unwrap();
    // Past entry 1's deadline: a lookup of another entry trims, and deletes 1 only.
    let mut conn = redis.connection().unwrap();
    assert!(poll(10, || {
        ttl.get::<_, u64>(&(3,)).unwrap();
        !conn.hexists::<_, _, bool>(&key, "[1]").unwrap()
    }));
    assert_eq!(plain.get::<_, u64>(&(2,)).unwrap(), Some(20));
    let indexed: usize = conn.zcard(deadlines_key(&key)).unwrap();
    assert_eq!(indexed, 0, "both fields left the index");
    ttl.clear().unwrap();
}
