//! BloomFilter, HyperLogLog (sync and async, single server and cluster) and ContextTimer,
//! with Python pottery 3.0.1 on the same server for interop.

use std::collections::HashMap;
use std::time::Duration;

use pottery::testing::{RedisServer, shared_server};
use pottery::{BloomFilter, ContextTimer, Error, HyperLogLog, TimerError};
use pottery_tests::{run_python, targets, unique_key};
use redis::Commands;
use serde_json::json;

const PY_PRELUDE: &str = r#"
import json, os, sys
from redis import Redis
from pottery import BloomFilter, HyperLogLog
redis = Redis.from_url(os.environ['REDIS_URL'])
args = json.loads(sys.stdin.read())
"#;

/// The reference's offset vectors for m = 959, k = 7 (pottery's `BloomFilter(100, 0.01)`).
#[test]
fn bloom_offsets_are_potterys() {
    let redis = shared_server().redis();
    let f: BloomFilter<serde_json::Value> = BloomFilter::new(&redis, "unused", 100, 0.01).unwrap();
    let vectors = [
        (json!("rajiv"), [183, 319, 787, 585, 8, 471, 711]),
        (json!("raj"), [482, 875, 725, 667, 109, 714, 595]),
        (json!("dan"), [687, 925, 954, 707, 615, 914, 620]),
        (json!(1), [547, 122, 87, 450, 77, 910, 717]),
        (json!(null), [505, 815, 149, 533, 204, 427, 755]),
        (json!([1, "a"]), [182, 37, 547, 208, 700, 414, 326]),
        (json!({"b": 1, "a": 2}), [748, 511, 181, 365, 800, 602, 461]),
        (json!("é"), [647, 151, 753, 681, 799, 757, 704]),
    ];
    for (value, want) in vectors {
        assert_eq!(f.offsets(&value).unwrap(), want, "{value}");
    }
    let big: BloomFilter<u8> = BloomFilter::new(&redis, "unused", 1_000_000, 0.001).unwrap();
    assert_eq!((big.size(), big.num_hashes()), (14_377_588, 10));
    for (n, p) in [(0, 0.01), (10, 0.0), (10, 1.0), (10, f64::NAN)] {
        let err = BloomFilter::<u8>::new(&redis, "bad-bloom", n, p).unwrap_err();
        assert!(matches!(err, Error::Config { .. }), "{err}");
        assert!(err.to_string().contains("bad-bloom"), "{err}");
    }
}

#[test]
fn bloom_every_method_sync() {
    for (kind, redis) in targets() {
        let key = unique_key("bloom");
        let f: BloomFilter<String> = BloomFilter::new(&redis, key.clone(), 100, 0.01).unwrap();
        assert_eq!(f.key(), key);
        assert!(format!("{f:?}").contains(&key));
        assert_eq!(f.params(), (100, 0.01));
        assert!(f.is_empty().unwrap(), "{kind}");
        assert!(!f.contains("rajiv").unwrap());
        assert!(f.add("rajiv").unwrap());
        assert!(!f.add("rajiv").unwrap(), "{kind}: second add is not new");
        assert_eq!(f.update(["raj".to_string(), "dan".to_string()]).unwrap(), 2);
        assert_eq!(f.update(Vec::new()).unwrap(), 0);
        assert!(f.contains("rajiv").unwrap());
        assert_eq!(
            f.contains_many(["dan", "raj", "luis", "rajiv"]).unwrap(),
            [true, true, false, true]
        );
        assert_eq!(
            f.contains_many(Vec::<&str>::new()).unwrap(),
            Vec::<bool>::new()
        );
        assert_eq!(f.len().unwrap(), 3, "{kind}");
        // The string is as long as pottery's SETBITs make it: up to the highest bit set.
        let mut conn = redis.connection().unwrap();
        let bytes: Vec<u8> = conn.get(&key).unwrap();
        assert!(bytes.len() <= 959_usize.div_ceil(8));
        f.clear().unwrap();
        assert!(f.is_empty().unwrap());
        assert!(!f.contains("rajiv").unwrap());
    }
}

#[tokio::test]
async fn bloom_every_method_async() {
    for (kind, redis) in targets() {
        let key = unique_key("bloom-async");
        let f: pottery::aio::BloomFilter<u32> =
            pottery::aio::BloomFilter::new(&redis, key.clone(), 1000, 0.01).unwrap();
        assert_eq!(f.key(), key);
        assert_eq!((f.size(), f.num_hashes()), (9586, 7));
        assert!(f.is_empty().await.unwrap());
        assert!(f.add(&7).await.unwrap());
        assert_eq!(f.update(0..100).await.unwrap(), 99, "{kind}: 7 was there");
        assert!(f.contains(&50).await.unwrap());
        assert_eq!(
            f.contains_many([1, 99, 100_000]).await.unwrap(),
            [true, true, false]
        );
        let len = f.len().await.unwrap();
        assert!((97..=103).contains(&len), "{kind}: estimate {len}");
        // The blocking twin sees the same bits.
        assert!(f.to_blocking().contains(&42).unwrap());
        f.clear().await.unwrap();
        assert!(f.is_empty().await.unwrap());
    }
}

/// With `num_elements` values inserted, 100,000 absent probes hit at most 1.2 × the
/// configured rate. Fixed data, so the result is the same every run.
#[test]
fn bloom_false_positive_rate() {
    let redis = shared_server().redis();
    let f: BloomFilter<String> =
        BloomFilter::new(&redis, unique_key("bloom-fp"), 10_000, 0.01).unwrap();
    f.update((0..10_000).map(|i| format!("member-{i}")))
        .unwrap();
    // No false negatives.
    let members = f
        .contains_many((0..10_000).map(|i| format!("member-{i}")))
        .unwrap();
    assert!(members.iter().all(|b| *b));
    let mut false_positives = 0;
    for chunk in 0..10 {
        let probes = (chunk * 10_000..(chunk + 1) * 10_000).map(|i| format!("absent-{i}"));
        false_positives += f
            .contains_many(probes)
            .unwrap()
            .iter()
            .filter(|b| **b)
            .count();
    }
    let rate = false_positives as f64 / 100_000.0;
    assert!(rate <= 0.012, "false-positive rate {rate}");
    // The estimate is close to the truth.
    let len = f.len().unwrap();
    assert!((9_700..=10_300).contains(&len), "estimate {len}");
    f.clear().unwrap();
}

#[test]
fn bloom_saturated_and_wrong_type() {
    let redis = shared_server().redis();
    let key = unique_key("bloom-full");
    let f: BloomFilter<u8> = BloomFilter::new(&redis, key.clone(), 100, 0.01).unwrap();
    let mut conn = redis.connection().unwrap();
    let _: () = conn.set(&key, vec![0xffu8; 200]).unwrap();
    // Every bit set: the largest estimate 959 bits and 7 hashes can tell apart (the one for
    // 958 bits set, floor(959 / 7 * ln 959) = 940), not usize::MAX.
    assert_eq!(f.len().unwrap(), 940);
    assert!(f.contains(&1).unwrap());
    let _: () = conn.del(&key).unwrap();
    let _: () = conn.hset(&key, "a", "b").unwrap();
    for err in [
        f.add(&1).unwrap_err(),
        f.contains(&1).unwrap_err(),
        f.len().unwrap_err(),
    ] {
        assert!(
            matches!(&err, Error::WrongType { key: k, .. } if *k == key),
            "{err}"
        );
    }
    let _: () = conn.del(&key).unwrap();
}

#[test]
fn bloom_interop_both_ways_and_identical_bits() {
    let server = shared_server();
    let redis = server.redis();
    let py_key = unique_key("bloom-py");
    let rs_key = unique_key("bloom-rs");
    let values = json!(["rajiv", "raj", "dan", 1, null, [1, "a"], {"b": 1, "a": 2}, "é", 2.5]);
    let code = format!(
        "{PY_PRELUDE}\nbf = BloomFilter(args['values'], num_elements=100, false_positives=0.01, \
         redis=redis, key=args['key'])\nprint('ok')"
    );
    run_python(
        &code,
        &server.url(),
        &json!({"key": py_key, "values": values}).to_string(),
    );
    // Python added -> Rust contains.
    let from_py: BloomFilter<serde_json::Value> =
        BloomFilter::new(&redis, py_key.clone(), 100, 0.01).unwrap();
    let all: Vec<serde_json::Value> = values.as_array().unwrap().clone();
    assert!(
        from_py
            .contains_many(all.iter())
            .unwrap()
            .iter()
            .all(|b| *b)
    );
    assert!(!from_py.contains(&json!("luis")).unwrap());
    // Rust adds the same values -> the same bytes.
    let from_rs: BloomFilter<serde_json::Value> =
        BloomFilter::new(&redis, rs_key.clone(), 100, 0.01).unwrap();
    from_rs.update(all.clone()).unwrap();
    let mut conn = redis.connection().unwrap();
    let a: Vec<u8> = conn.get(&py_key).unwrap();
    let b: Vec<u8> = conn.get(&rs_key).unwrap();
    assert!(!a.is_empty());
    assert_eq!(a, b, "bitmaps differ");
    // Rust added -> Python's `in`.
    let check = format!(
        "{PY_PRELUDE}\nbf = BloomFilter(num_elements=100, false_positives=0.01, redis=redis, \
         key=args['key'])\nprint(all(v in bf for v in args['values'] if not isinstance(v, (list, dict))), \
         'luis' in bf, len(bf))"
    );
    let out = run_python(
        &check,
        &server.url(),
        &json!({"key": rs_key, "values": values}).to_string(),
    );
    assert_eq!(out.trim(), format!("True False {}", from_rs.len().unwrap()));
    let _: () = conn.del(&[py_key, rs_key]).unwrap();
}

#[test]
fn hll_every_method_sync() {
    for (kind, redis) in targets() {
        // One hash tag, so the cluster puts the three keys in one slot.
        let tag = unique_key("hll");
        let (ka, kb, kc) = (
            format!("{{{tag}}}:a"),
            format!("{{{tag}}}:b"),
            format!("{{{tag}}}:c"),
        );
        let a: HyperLogLog<String> = HyperLogLog::new(&redis, ka.clone());
        let b: HyperLogLog<String> = HyperLogLog::new(&redis, kb.clone());
        assert_eq!(a.key(), ka);
        assert!(format!("{a:?}").contains(&ka));
        assert!(a.is_empty().unwrap(), "{kind}");
        assert!(!a.contains("x").unwrap());
        assert!(a.add("sergey").unwrap());
        assert!(!a.add("sergey").unwrap());
        assert!(
            a.update(["larry".to_string(), "sergey".to_string()])
                .unwrap()
        );
        assert_eq!(a.len().unwrap(), 2, "{kind}");
        assert_eq!(
            a.contains_many(["larry", "eric", "sergey"]).unwrap(),
            [true, false, true]
        );
        assert_eq!(
            a.contains_many(Vec::<&str>::new()).unwrap(),
            Vec::<bool>::new()
        );
        b.update(["eric".to_string(), "larry".to_string()]).unwrap();
        assert_eq!(a.union_len([&b]).unwrap(), 3);
        let c = a.union([&b], kc.clone()).unwrap();
        assert_eq!(c.len().unwrap(), 3, "{kind}");
        assert_eq!(a.len().unwrap(), 2, "union leaves the sources alone");
        a.merge([&b]).unwrap();
        assert_eq!(a.len().unwrap(), 3);
        assert!(a.contains("eric").unwrap());
        // Membership leaves no scratch key behind.
        let mut conn = redis.connection().unwrap();
        let exists: i64 = redis::cmd("EXISTS").arg(&ka).query(&mut conn).unwrap();
        assert_eq!(exists, 1);
        for h in [&a, &b, &c] {
            h.clear().unwrap();
        }
        assert!(a.is_empty().unwrap());
    }
}

#[tokio::test]
async fn hll_every_method_async() {
    for (kind, redis) in targets() {
        let tag = unique_key("hll-async");
        let a: pottery::aio::HyperLogLog<u32> =
            pottery::aio::HyperLogLog::new(&redis, format!("{{{tag}}}:a"));
        let b: pottery::aio::HyperLogLog<u32> =
            pottery::aio::HyperLogLog::new(&redis, format!("{{{tag}}}:b"));
        assert!(a.is_empty().await.unwrap());
        assert!(a.add(&1).await.unwrap());
        assert!(a.update([2, 3]).await.unwrap());
        assert_eq!(a.len().await.unwrap(), 3, "{kind}");
        assert!(a.contains(&2).await.unwrap());
        assert_eq!(a.contains_many([3, 4]).await.unwrap(), [true, false]);
        b.update([3, 4, 5]).await.unwrap();
        assert_eq!(a.union_len([&b]).await.unwrap(), 5);
        let c = a.union([&b], format!("{{{tag}}}:c")).await.unwrap();
        assert_eq!(c.len().await.unwrap(), 5);
        a.merge([&b]).await.unwrap();
        assert_eq!(a.len().await.unwrap(), 5);
        assert_eq!(a.to_blocking().len().unwrap(), 5);
        for h in [&a, &b, &c] {
            h.clear().await.unwrap();
        }
    }
}

/// Within 2 % for 100,000 distinct values; membership has no false negatives and leaves
/// nothing behind, on a cluster too (the scratch key shares the slot, whatever the key).
#[test]
fn hll_accuracy_and_no_residue() {
    for (kind, redis) in targets() {
        // A key with braces but no usable hash tag exercises the slot-matching scratch key.
        let key = format!("{}{{}}x", unique_key("hll-acc"));
        let h: HyperLogLog<u64> = HyperLogLog::new(&redis, key.clone());
        for chunk in 0..10u64 {
            h.update(chunk * 10_000..(chunk + 1) * 10_000).unwrap();
        }
        let len = h.len().unwrap() as f64;
        assert!(
            (len - 100_000.0).abs() / 100_000.0 <= 0.02,
            "{kind}: estimate {len}"
        );
        let found = h.contains_many(0..2_000u64).unwrap();
        assert!(found.iter().all(|b| *b), "{kind}: no false negatives");
        let before = h.len().unwrap();
        h.contains_many(1_000_000..1_000_500u64).unwrap();
        assert_eq!(h.len().unwrap(), before, "membership does not add");
        let leftovers = scratch_keys(&redis);
        assert!(leftovers.is_empty(), "{kind}: left behind {leftovers:?}");
        h.clear().unwrap();
    }
}

/// A read must not write: `contains` runs on a copy, so the HLL's bytes (whose header caches
/// the cardinality, which `PFCOUNT` rewrites after an add) are the same before and after.
#[test]
fn hll_contains_leaves_the_key_byte_for_byte_unchanged() {
    for (kind, redis) in targets() {
        let mut conn = redis.connection().unwrap();
        for n in [50u64, 5_000] {
            // 50 values stay sparse, 5,000 make the HLL dense.
            let key = unique_key("hll-dump");
            let h: HyperLogLog<u64> = HyperLogLog::new(&redis, key.clone());
            h.update(0..n).unwrap(); // PFADD leaves the cached cardinality stale
            let dump = |conn: &mut dyn redis::ConnectionLike| -> Vec<u8> {
                redis::cmd("DUMP").arg(&key).query(conn).unwrap()
            };
            let before = dump(&mut conn);
            assert!(h.contains(&3).unwrap());
            h.contains_many([1u64, 10_000_000, 2]).unwrap();
            assert!(!h.contains(&987_654_321).unwrap());
            assert_eq!(
                dump(&mut conn),
                before,
                "{kind}, {n} values: contains wrote the key"
            );
            // PFCOUNT does rewrite it: the check above is not vacuous.
            h.len().unwrap();
            assert_ne!(dump(&mut conn), before, "{kind}, {n} values");
            h.clear().unwrap();
        }
        assert!(scratch_keys(&redis).is_empty(), "{kind}");
    }
}

fn scratch_keys(redis: &pottery::Redis) -> Vec<String> {
    let mut conn = redis.connection().unwrap();
    if redis.is_cluster() {
        // KEYS on a cluster connection is sent to every primary and merged by redis-rs.
        redis::cmd("KEYS")
            .arg("pottery:scratch:*")
            .query(&mut conn)
            .unwrap()
    } else {
        conn.keys("pottery:scratch:*").unwrap()
    }
}

#[test]
fn hll_errors_name_the_key() {
    let redis = shared_server().redis();
    let key = unique_key("hll-wrong");
    let mut conn = redis.connection().unwrap();
    let _: () = conn.rpush(&key, "x").unwrap();
    let h: HyperLogLog<u8> = HyperLogLog::new(&redis, key.clone());
    for err in [
        h.add(&1).unwrap_err(),
        h.len().unwrap_err(),
        h.contains(&1).unwrap_err(),
    ] {
        assert!(
            matches!(&err, Error::WrongType { key: k, .. } if *k == key),
            "{err}"
        );
    }
    let _: () = conn.del(&key).unwrap();
    // A plain string that is not an HLL is refused too, and nothing is left behind.
    let _: () = conn.set(&key, "not an hll").unwrap();
    assert!(h.contains(&1).is_err());
    assert!(scratch_keys(&redis).is_empty());
    let _: () = conn.del(&key).unwrap();
    // Two servers: one PFMERGE cannot reach both.
    let other = RedisServer::start().unwrap();
    let there: HyperLogLog<u8> = HyperLogLog::new(&other.redis(), "elsewhere");
    let err = h.merge([&there]).unwrap_err();
    assert!(
        matches!(&err, Error::CrossSlot { key: k, other } if *k == key && other == "elsewhere"),
        "{err}"
    );
    // Two cluster slots likewise.
    let cluster = pottery::testing::shared_cluster().redis();
    let x: HyperLogLog<u8> = HyperLogLog::new(&cluster, "slot-a");
    let y: HyperLogLog<u8> = HyperLogLog::new(&cluster, "slot-b");
    assert!(matches!(x.union_len([&y]), Err(Error::CrossSlot { .. })));
}

#[test]
fn hll_interop_both_ways_and_identical_bytes() {
    let server = shared_server();
    let redis = server.redis();
    let py_key = unique_key("hll-py");
    let rs_key = unique_key("hll-rs");
    let values = json!(["sergey", "larry", "eric", 1, 2.5, null, [1, 2], {"a": "é"}]);
    // pottery's add() needs hashable values, so everything goes in through update().
    let code = format!(
        "{PY_PRELUDE}\nhll = HyperLogLog(redis=redis, key=args['key'])\n\
         hll.update(args['values'])\nprint(len(hll))"
    );
    let out = run_python(
        &code,
        &server.url(),
        &json!({"key": py_key, "values": values}).to_string(),
    );
    let all: Vec<serde_json::Value> = values.as_array().unwrap().clone();
    assert_eq!(out.trim(), all.len().to_string());
    let from_py: HyperLogLog<serde_json::Value> = HyperLogLog::new(&redis, py_key.clone());
    assert_eq!(from_py.len().unwrap(), all.len());
    assert!(
        from_py
            .contains_many(all.iter())
            .unwrap()
            .iter()
            .all(|b| *b)
    );
    assert!(!from_py.contains(&json!("bill")).unwrap());
    let from_rs: HyperLogLog<serde_json::Value> = HyperLogLog::new(&redis, rs_key.clone());
    from_rs.update(all.clone()).unwrap();
    let mut conn = redis.connection().unwrap();
    // Compare before anyone runs PFCOUNT on the Rust key (it caches the count in the header):
    // the Python key was counted above, so compare registers through a fresh copy of each.
    let fresh_py = unique_key("hll-py-fresh");
    let fresh_rs = unique_key("hll-rs-fresh");
    let _: () = redis::cmd("PFMERGE")
        .arg(&fresh_py)
        .arg(&py_key)
        .query(&mut conn)
        .unwrap();
    let _: () = redis::cmd("PFMERGE")
        .arg(&fresh_rs)
        .arg(&rs_key)
        .query(&mut conn)
        .unwrap();
    let a: Vec<u8> = conn.get(&fresh_py).unwrap();
    let b: Vec<u8> = conn.get(&fresh_rs).unwrap();
    assert_eq!(a, b, "HLL registers differ");
    let check = format!(
        "{PY_PRELUDE}\nhll = HyperLogLog(redis=redis, key=args['key'])\n\
         print(all(hll.contains_many(*[v for v in args['values'] if not isinstance(v, (list, dict))])), \
         'bill' in hll, len(hll))"
    );
    let out = run_python(
        &check,
        &server.url(),
        &json!({"key": rs_key, "values": values}).to_string(),
    );
    assert_eq!(out.trim(), format!("True False {}", all.len()));
    let _: () = conn.del(&[py_key, rs_key, fresh_py, fresh_rs]).unwrap();
}

#[test]
fn context_timer_as_pottery() {
    let mut timer = ContextTimer::new();
    assert_eq!(timer.elapsed(), Err(TimerError::NotStarted));
    {
        let running = timer.scope().unwrap();
        std::thread::sleep(Duration::from_millis(30));
        assert!(running.elapsed() >= 30);
    }
    let ms = timer.elapsed().unwrap();
    assert!(ms >= 30, "{ms}");
    assert_eq!(timer.elapsed().unwrap(), ms, "frozen after the scope");
    assert_eq!(timer.scope().unwrap_err(), TimerError::AlreadyStopped);
    let mut manual = ContextTimer::new();
    manual.start().unwrap();
    assert_eq!(manual.start(), Err(TimerError::AlreadyStarted));
    std::thread::sleep(Duration::from_millis(10));
    assert!(manual.elapsed_duration().unwrap() >= Duration::from_millis(10));
    manual.stop().unwrap();
    assert_eq!(manual.stop(), Err(TimerError::AlreadyStopped));
    let messages: HashMap<TimerError, &str> = [
        (TimerError::AlreadyStarted, "timer has already been started"),
        (TimerError::AlreadyStopped, "timer has already been stopped"),
        (TimerError::NotStarted, "timer hasn't yet been started"),
    ]
    .into();
    for (e, m) in messages {
        assert_eq!(e.to_string(), m);
    }
}

#[test]
fn bloom_refuses_rates_its_sizing_cannot_deliver() {
    let redis = shared_server().redis();
    for p in [0.9999999999999999, 0.9, 0.5000001] {
        match BloomFilter::<u8>::new(&redis, "unused", 100, p) {
            Err(Error::Config { message }) => assert!(message.contains("0.5"), "{message}"),
            other => panic!("{p}: {other:?}"),
        }
        assert!(pottery::aio::BloomFilter::<u8>::new(&redis, "unused", 100, p).is_err());
    }
    let half: BloomFilter<u8> = BloomFilter::new(&redis, "unused", 100, 0.5).unwrap();
    assert_eq!(
        (half.size(), half.num_hashes()),
        (145, 2),
        "pottery's sizes"
    );
    // A saturated small filter still reports a finite, bounded estimate.
    let key = unique_key("bloom-half-full");
    let f: BloomFilter<u8> = BloomFilter::new(&redis, key.clone(), 100, 0.5).unwrap();
    f.update(0..=255).unwrap();
    let len = f.len().unwrap();
    assert!(len < 1000, "{len}");
    f.clear().unwrap();
}
