//! RedisCounter and aio::RedisCounter against a real server and a cluster.

use std::collections::HashMap;

use futures_util::TryStreamExt;
use pottery::{Error, RedisCounter};
use pottery_tests::{targets, unique_key};
use redis::Commands;

#[test]
fn every_method_sync() {
    for (kind, redis) in targets() {
        let c: RedisCounter<String> = RedisCounter::new(&redis, unique_key("counter"));
        assert!(c.is_empty().unwrap());
        assert_eq!(c.get("a").unwrap(), 0, "{kind}");
        c.update(["a", "b", "a"].map(String::from)).unwrap();
        assert_eq!(c.get("a").unwrap(), 2);
        // pottery double-counts here ({a: 2}.update('a') gives 5); we give 3.
        c.update(["a".to_string()]).unwrap();
        assert_eq!(c.get("a").unwrap(), 3);
        c.update_counts([("b".to_string(), 4), ("c".to_string(), 1)])
            .unwrap();
        assert_eq!(c.get("b").unwrap(), 5);
        c.subtract(["c".to_string()]).unwrap();
        assert_eq!(c.get("c").unwrap(), 0);
        assert_eq!(
            c.len().unwrap(),
            3,
            "a zero count keeps its field, as in Counter"
        );
        c.subtract_counts([("b".to_string(), 7)]).unwrap();
        assert_eq!(c.get("b").unwrap(), -2);
        assert_eq!(c.incr("a", 10).unwrap(), 13);
        c.set("d".into(), 4).unwrap();
        assert_eq!(c.get("d").unwrap(), 4);
        assert_eq!(c.total().unwrap(), 13 - 2 + 4);
        assert_eq!(
            c.most_common(Some(2)).unwrap(),
            [("a".to_string(), 13), ("d".to_string(), 4)]
        );
        assert_eq!(c.most_common(None).unwrap().len(), 4);
        let mut e = c.elements().unwrap();
        e.sort();
        assert_eq!(e.len(), 17);
        assert_eq!(e.iter().filter(|x| *x == "d").count(), 4);
        let snapshot = c.to_hash_map().unwrap();
        let streamed: HashMap<String, i64> = c.iter().collect::<Result<_, _>>().unwrap();
        assert_eq!(snapshot, streamed);
        assert_eq!(c.remove("d").unwrap(), Some(4));
        assert_eq!(c.remove("d").unwrap(), None);
        c.update(Vec::new()).unwrap();
        assert!(format!("{c:?}").contains(c.key()));
        c.clear().unwrap();
        assert!(c.is_empty().unwrap());
        let created = RedisCounter::create(&redis, c.key(), [("x".to_string(), 2)]).unwrap();
        assert!(matches!(
            RedisCounter::create(&redis, c.key(), [("x".to_string(), 2)]),
            Err(Error::KeyExists { .. })
        ));
        created.clear().unwrap();
        assert!(
            RedisCounter::<u8>::random(&redis)
                .unwrap()
                .key()
                .starts_with("pottery:")
        );
    }
}

#[test]
fn arithmetic_is_pythons_counter_arithmetic() {
    for (_, redis) in targets() {
        let a: RedisCounter<char> = RedisCounter::new(&redis, unique_key("ca"));
        let b: RedisCounter<char> = RedisCounter::new(&redis, unique_key("cb"));
        a.update_counts([('x', 3), ('y', 1), ('z', -1)]).unwrap();
        b.update_counts([('x', 1), ('y', 2), ('w', -4), ('v', 2)])
            .unwrap();
        // Python: Counter(x=3, y=1, z=-1) + Counter(x=1, y=2, w=-4, v=2) == Counter(x=4, y=3, v=2)
        assert_eq!(a.add(&b).unwrap(), [('x', 4), ('y', 3), ('v', 2)].into());
        // - == Counter(x=2, w=4)
        assert_eq!(a.sub(&b).unwrap(), [('x', 2), ('w', 4)].into());
        // | == Counter(x=3, y=2, v=2)
        assert_eq!(a.union(&b).unwrap(), [('x', 3), ('y', 2), ('v', 2)].into());
        // & == Counter(x=1, y=1)
        assert_eq!(a.intersection(&b).unwrap(), [('x', 1), ('y', 1)].into());
        a.clear().unwrap();
        b.clear().unwrap();
    }
}

#[test]
fn eight_threads_incr_lose_nothing() {
    for (kind, redis) in targets() {
        let c: RedisCounter<String> = RedisCounter::new(&redis, unique_key("hits"));
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        c.incr("hits", 1).unwrap();
                    }
                });
            }
        });
        assert_eq!(c.get("hits").unwrap(), 8000, "{kind}");
        c.clear().unwrap();
    }
}

#[test]
fn a_bad_value_fails_the_whole_update_and_names_the_key() {
    for (kind, redis) in targets() {
        let key = unique_key("bad-counter");
        let c: RedisCounter<String> = RedisCounter::new(&redis, key.clone());
        c.update(["ok".to_string()]).unwrap();
        let mut conn = redis.connection().unwrap();
        let _: () = conn.hset(&key, "\"bad\"", "\"text\"").unwrap();
        let err = c.update(["ok".to_string(), "bad".to_string()]).unwrap_err();
        assert_eq!(err.key(), Some(key.as_str()), "{kind}: {err}");
        assert_eq!(c.get("ok").unwrap(), 1, "nothing half-written");
        assert!(matches!(c.get("bad"), Err(Error::Codec { .. })));
        let _: () = conn.del(&key).unwrap();
        let _: () = conn.rpush(&key, "x").unwrap();
        assert!(matches!(c.incr("x", 1), Err(Error::WrongType { .. })));
        assert!(matches!(
            c.update(["x".to_string()]),
            Err(Error::WrongType { .. })
        ));
        let _: () = conn.del(&key).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_async() {
    for (kind, redis) in targets() {
        let c: pottery::aio::RedisCounter<u32> =
            pottery::aio::RedisCounter::new(&redis, unique_key("acounter"));
        assert!(c.is_empty().await.unwrap());
        c.update([1, 1, 2]).await.unwrap();
        c.update_counts([(3, 5)]).await.unwrap();
        c.subtract([2]).await.unwrap();
        c.subtract_counts([(3, 1)]).await.unwrap();
        assert_eq!(c.incr(&1, 1).await.unwrap(), 3, "{kind}");
        c.set(9, 9).await.unwrap();
        assert_eq!(c.get(&9).await.unwrap(), 9);
        assert_eq!(c.total().await.unwrap(), 3 + 4 + 9);
        assert_eq!(c.most_common(Some(1)).await.unwrap(), [(9, 9)]);
        assert_eq!(c.elements().await.unwrap().len(), 16);
        assert_eq!(c.len().await.unwrap(), 4);
        let streamed: HashMap<u32, i64> = c.iter().try_collect().await.unwrap();
        assert_eq!(streamed, c.to_hash_map().await.unwrap());
        let other =
            pottery::aio::RedisCounter::create(&redis, unique_key("aother"), [(1u32, 1i64)])
                .await
                .unwrap();
        assert_eq!(c.add(&other).await.unwrap()[&1], 4);
        assert_eq!(c.sub(&other).await.unwrap()[&1], 2);
        assert_eq!(c.union(&other).await.unwrap()[&1], 3);
        assert_eq!(c.intersection(&other).await.unwrap(), [(1, 1)].into());
        assert_eq!(c.remove(&9).await.unwrap(), Some(9));
        assert_eq!(c.to_blocking().get(&1).unwrap(), 3);
        c.clear().await.unwrap();
        other.clear().await.unwrap();
        assert!(
            pottery::aio::RedisCounter::<u8>::random(&redis)
                .await
                .unwrap()
                .key()
                .starts_with("pottery:")
        );
    }
}

#[test]
fn a_total_that_does_not_fit_an_i64_is_an_error_not_a_wrapped_value() {
    for (kind, redis) in targets() {
        let key = unique_key("total-overflow");
        let c: RedisCounter<String> = RedisCounter::new(&redis, key.clone());
        c.incr("a", i64::MAX).unwrap();
        c.incr("b", i64::MAX).unwrap();
        let err = c.total().unwrap_err();
        assert!(matches!(err, Error::Codec { .. }), "{kind}: {err}");
        assert_eq!(err.key(), Some(key.as_str()));
        assert!(err.to_string().contains("does not fit"), "{err}");
        // Large counts that cancel out are fine: the sum is exact.
        c.set("c".into(), i64::MIN).unwrap();
        c.set("d".into(), i64::MIN).unwrap();
        assert_eq!(c.total().unwrap(), -2, "{kind}");
        let rt = tokio::runtime::Runtime::new().unwrap();
        c.remove("c").unwrap();
        c.remove("d").unwrap();
        let err = rt.block_on(c.to_async().total()).unwrap_err();
        assert!(matches!(err, Error::Codec { .. }), "{kind}: {err}");
        c.clear().unwrap();
    }
}

#[test]
fn an_update_that_would_overflow_or_meets_a_non_canonical_count_writes_nothing() {
    for (kind, redis) in targets() {
        let key = unique_key("update-overflow");
        let c: RedisCounter<String> = RedisCounter::new(&redis, key.clone());
        c.set("a".into(), i64::MAX).unwrap();
        let err = c
            .update_counts([("c".to_string(), 5), ("a".to_string(), 1)])
            .unwrap_err();
        assert_eq!(err.key(), Some(key.as_str()), "{kind}: {err}");
        assert!(err.to_string().contains("nothing was written"), "{err}");
        assert_eq!(c.get("c").unwrap(), 0, "{kind}: c must not be written");
        assert_eq!(c.get("a").unwrap(), i64::MAX);
        // The same at the low end, and through subtract.
        c.set("m".into(), i64::MIN + 1).unwrap();
        let err = c
            .subtract_counts([("c".to_string(), 1), ("m".to_string(), 2)])
            .unwrap_err();
        assert!(err.to_string().contains("nothing was written"), "{err}");
        assert_eq!(c.get("c").unwrap(), 0, "{kind}");
        // Exactly reaching the bounds is fine.
        c.subtract_counts([("m".to_string(), 1)]).unwrap();
        assert_eq!(c.get("m").unwrap(), i64::MIN);
        c.update_counts([("a".to_string(), -1), ("a".to_string(), 1)])
            .unwrap();
        assert_eq!(c.get("a").unwrap(), i64::MAX);
        // Repeats that merge past i64 are refused before anything is sent.
        let err = c
            .update_counts([("c".to_string(), i64::MAX), ("c".to_string(), 1)])
            .unwrap_err();
        assert!(err.to_string().contains("nothing was written"), "{err}");
        assert!(c.subtract_counts([("c".to_string(), i64::MIN)]).is_err());
        assert_eq!(c.get("c").unwrap(), 0, "{kind}");
        // A stored `007` is not a count HINCRBY accepts: refused up front.
        let mut conn = redis.connection().unwrap();
        let _: () = conn.hset(&key, "\"z\"", "007").unwrap();
        let err = c
            .update_counts([("c".to_string(), 5), ("z".to_string(), 1)])
            .unwrap_err();
        assert!(err.to_string().contains("nothing was written"), "{err}");
        assert_eq!(c.get("c").unwrap(), 0, "{kind}");
        for bad in ["-0", "+1", " 1", "9223372036854775808", "1e3", ""] {
            let _: () = conn.hset(&key, "\"z\"", bad).unwrap();
            assert!(
                c.update_counts([("c".to_string(), 5), ("z".to_string(), 1)])
                    .is_err(),
                "{kind}: {bad:?} accepted"
            );
            assert_eq!(c.get("c").unwrap(), 0, "{kind}: {bad:?}");
        }
        let rt = tokio::runtime::Runtime::new().unwrap();
        let err = rt
            .block_on(
                c.to_async()
                    .update_counts([("c".to_string(), 5), ("a".to_string(), 1)]),
            )
            .unwrap_err();
        assert!(err.to_string().contains("nothing was written"), "{err}");
        assert_eq!(c.get("c").unwrap(), 0, "{kind}");
        c.clear().unwrap();
    }
}

#[test]
fn most_common_breaks_ties_in_scan_order_as_python_does() {
    for (kind, redis) in targets() {
        for size in [5usize, 300] {
            let key = unique_key("ties");
            let c: RedisCounter<String> = RedisCounter::new(&redis, key.clone());
            // Every count ties but one.
            let counts: Vec<(String, i64)> = (0..size)
                .map(|i| (format!("k{i}"), if i == size / 2 { 2 } else { 1 }))
                .collect();
            c.update_counts(counts).unwrap();
            // The order Python's Counter(self) reads them in: HSCAN from cursor 0.
            let scanned: Vec<String> = c.iter().map(|r| r.unwrap().0).collect();
            let top = c.most_common(Some(4)).unwrap();
            let want: Vec<(String, i64)> = std::iter::once((format!("k{}", size / 2), 2))
                .chain(
                    scanned
                        .iter()
                        .filter(|k| **k != format!("k{}", size / 2))
                        .take(3)
                        .map(|k| (k.clone(), 1)),
                )
                .collect();
            assert_eq!(top, want, "{kind}, {size} keys");
            if kind == "single" {
                // And the keys Python pottery 3.0.1 picks from the same hash.
                let py = pottery_tests::run_python(
                    "import json, os, sys\n\
                     from redis import Redis\n\
                     from pottery import RedisCounter\n\
                     r = Redis.from_url(os.environ['REDIS_URL'])\n\
                     c = RedisCounter(redis=r, key=sys.stdin.read())\n\
                     print(json.dumps(c.most_common(4)))",
                    &pottery::testing::shared_server().url(),
                    &key,
                );
                let py: Vec<(String, i64)> = serde_json::from_str(py.trim()).unwrap();
                assert_eq!(top, py, "{size} keys: Python picks the same keys");
            }
            let all = c.most_common(None).unwrap();
            assert_eq!(all.len(), size);
            let rt = tokio::runtime::Runtime::new().unwrap();
            assert_eq!(
                rt.block_on(c.to_async().most_common(Some(4))).unwrap(),
                want
            );
            c.clear().unwrap();
        }
    }
}

#[test]
fn elements_of_counts_too_large_to_hold_is_an_error_not_a_hang() {
    for (kind, redis) in targets() {
        let c: RedisCounter<u64> = RedisCounter::new(&redis, unique_key("huge-elements"));
        c.update_counts([(u64::MAX >> 1, 1 << 40), (7, 2)]).unwrap();
        let start = std::time::Instant::now();
        let err = c.elements().unwrap_err();
        assert!(matches!(err, Error::Codec { .. }), "{kind}: {err}");
        assert!(err.to_string().contains("1099511627778"), "{err}");
        let rt = tokio::runtime::Runtime::new().unwrap();
        assert!(rt.block_on(c.to_async().elements()).is_err());
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "{kind}"
        );
        c.set(u64::MAX >> 1, -3).unwrap();
        assert_eq!(c.elements().unwrap(), [7, 7], "{kind}");
        c.clear().unwrap();
    }
}

/// Python's counts are unbounded; RedisCounter's are i64. A count beyond i64 (the bytes
/// Python writes for `c['big'] = 2**63`) fails every read that meets it with Error::Codec
/// naming the key (and the field where the read covers several), never a wrong number.
#[test]
fn a_count_beyond_i64_is_a_typed_error_naming_the_key_and_field() {
    let redis = pottery::testing::shared_server().redis();
    let key = unique_key("counter-big");
    let c: RedisCounter<String> = RedisCounter::new(&redis, key.clone());
    let other: RedisCounter<String> = RedisCounter::new(&redis, unique_key("counter-big-o"));
    c.set("small".into(), 1).unwrap();
    other.set("small".into(), 1).unwrap();
    let mut conn = redis.connection().unwrap();
    let _: () = conn.hset(&key, "\"big\"", "9223372036854775808").unwrap();
    let check = |err: Error, names_field: bool| {
        assert!(matches!(err, Error::Codec { .. }), "{err}");
        assert_eq!(err.key(), Some(key.as_str()));
        assert!(err.to_string().contains("9223372036854775808"), "{err}");
        if names_field {
            assert!(err.to_string().contains("\"big\""), "{err}");
        }
    };
    check(c.get("big").unwrap_err(), false);
    check(c.to_hash_map().unwrap_err(), true);
    check(c.most_common(None).unwrap_err(), true);
    check(c.total().unwrap_err(), true);
    check(c.add(&other).unwrap_err(), true);
    check(c.iter().find_map(Result::err).unwrap(), true);
    // Writes that meet it refuse before writing.
    let err = c.update_counts([("big".to_string(), 1)]).unwrap_err();
    assert_eq!(err.key(), Some(key.as_str()));
    assert!(err.to_string().ends_with("nothing was written"), "{err}");
    // The count reads into i128 through a dict view of the same hash.
    let view: pottery::RedisDict<String, i128> = pottery::RedisDict::new(&redis, key.clone());
    assert_eq!(view.get("big").unwrap(), Some(1 << 63));
    c.clear().unwrap();
    other.clear().unwrap();
}
