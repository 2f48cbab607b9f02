//! RedisDict and aio::RedisDict against a real server and a real cluster.

use std::collections::HashMap;

use futures_util::TryStreamExt;
use pottery::{Error, RedisDict};
use pottery_tests::{targets, unique_key};
use redis::Commands;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Person {
    name: String,
    age: u32,
    tags: Vec<String>,
}

#[test]
fn every_method_sync() {
    for (kind, redis) in targets() {
        let key = unique_key("dict-sync");
        let d: RedisDict<String, i64> = RedisDict::new(&redis, key.clone());
        assert_eq!(d.key(), key);
        assert!(d.is_empty().unwrap(), "{kind}");
        assert_eq!(d.len().unwrap(), 0);
        assert_eq!(d.get("jack").unwrap(), None);
        assert_eq!(d.insert("jack".into(), 4098).unwrap(), None);
        assert_eq!(d.insert("sape".into(), 4139).unwrap(), None);
        assert_eq!(d.insert("jack".into(), 4127).unwrap(), Some(4098));
        assert_eq!(d.get("jack").unwrap(), Some(4127));
        assert!(d.contains_key("sape").unwrap());
        assert!(!d.contains_key("guido").unwrap());
        assert_eq!(d.len().unwrap(), 2);
        assert!(!d.is_empty().unwrap());
        assert_eq!(d.remove("sape").unwrap(), Some(4139));
        assert_eq!(d.remove("sape").unwrap(), None);
        d.extend([("a".to_string(), 1), ("b".to_string(), 2)])
            .unwrap();
        d.extend(Vec::new()).unwrap();
        let snapshot = d.to_hash_map().unwrap();
        let want: HashMap<String, i64> =
            [("jack".into(), 4127), ("a".into(), 1), ("b".into(), 2)].into();
        assert_eq!(snapshot, want, "{kind}");
        let mut seen: HashMap<String, i64> = HashMap::new();
        for item in d.iter() {
            let (k, v) = item.unwrap();
            seen.insert(k, v);
        }
        assert_eq!(seen, want);
        let mut keys: Vec<String> = d.keys().collect::<Result<_, _>>().unwrap();
        keys.sort();
        assert_eq!(keys, ["a", "b", "jack"]);
        let mut values: Vec<i64> = d.values().collect::<Result<_, _>>().unwrap();
        values.sort();
        assert_eq!(values, [1, 2, 4127]);
        assert!(format!("{d:?}").contains(&key));
        d.clear().unwrap();
        assert!(d.is_empty().unwrap());
        assert_eq!(d.to_hash_map().unwrap(), HashMap::new());
    }
}

#[test]
fn create_is_atomic_create_if_absent() {
    for (kind, redis) in targets() {
        let key = unique_key("dict-create");
        let d = RedisDict::create(&redis, key.clone(), [(1u32, "one".to_string())]).unwrap();
        assert_eq!(d.get(&1).unwrap().as_deref(), Some("one"));
        let again = RedisDict::create(&redis, key.clone(), [(2u32, "two".to_string())]);
        match again {
            Err(Error::KeyExists { key: k }) => assert_eq!(k, key, "{kind}"),
            other => panic!("{kind}: expected KeyExists, got {other:?}"),
        }
        // Nothing of the failed create was written.
        assert_eq!(d.len().unwrap(), 1);
        d.clear().unwrap();
        // A big create crosses the script's chunking.
        let big = RedisDict::create(
            &redis,
            key.clone(),
            (0..5000u32).map(|i| (i, i.to_string())),
        )
        .unwrap();
        assert_eq!(big.len().unwrap(), 5000);
        assert_eq!(big.get(&4999).unwrap().as_deref(), Some("4999"));
        big.clear().unwrap();
    }
}

#[test]
fn random_keys_are_pottery_uuid4() {
    for (_, redis) in targets() {
        let d: RedisDict<String, String> = RedisDict::random(&redis).unwrap();
        let suffix = d.key().strip_prefix("pottery:").expect("prefix");
        assert_eq!(suffix.len(), 36);
        assert_eq!(suffix.as_bytes()[14], b'4', "uuid version 4: {suffix}");
        assert!(
            suffix
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase() || c == '-')
        );
        let other: RedisDict<String, String> = RedisDict::random(&redis).unwrap();
        assert_ne!(d.key(), other.key());
    }
}

#[test]
fn structured_values_and_integer_keys() {
    for (_, redis) in targets() {
        let d: RedisDict<u64, Person> = RedisDict::new(&redis, unique_key("people"));
        let ada = Person {
            name: "Ada Lovelace — ✓".into(),
            age: 36,
            tags: vec!["math".into(), "🧮".into()],
        };
        d.insert(1815, ada.clone()).unwrap();
        assert_eq!(d.get(&1815).unwrap(), Some(ada.clone()));
        let mut conn = redis.connection().unwrap();
        let raw: Vec<u8> = conn.hget(d.key(), "1815").unwrap();
        assert_eq!(
            String::from_utf8(raw).unwrap(),
            r#"{"age": 36, "name": "Ada Lovelace \u2014 \u2713", "tags": ["math", "\ud83e\uddee"]}"#
        );
        d.clear().unwrap();
    }
}

#[test]
fn threads_insert_without_losing_any() {
    for (kind, redis) in targets() {
        let d: RedisDict<String, u32> = RedisDict::new(&redis, unique_key("threads"));
        std::thread::scope(|s| {
            for t in 0..8 {
                let d = d.clone();
                s.spawn(move || {
                    for i in 0..1000 {
                        d.insert(format!("{t}-{i}"), i).unwrap();
                    }
                });
            }
        });
        assert_eq!(d.len().unwrap(), 8000, "{kind}");
        d.clear().unwrap();
    }
}

#[test]
fn wrong_type_names_the_key() {
    for (kind, redis) in targets() {
        let key = unique_key("a-list");
        let mut conn = redis.connection().unwrap();
        let _: () = conn.rpush(&key, "x").unwrap();
        let d: RedisDict<String, i64> = RedisDict::new(&redis, key.clone());
        for result in [
            d.get("a").map(drop),
            d.insert("a".into(), 1).map(drop),
            d.remove("a").map(drop),
            d.len().map(drop),
            d.to_hash_map().map(drop),
            d.iter().next().unwrap().map(drop),
        ] {
            match result {
                Err(Error::WrongType { key: k, expected }) => {
                    assert_eq!(k, key, "{kind}");
                    assert_eq!(expected, "hash");
                }
                other => panic!("{kind}: expected WrongType, got {other:?}"),
            }
        }
        let err = d.get("a").unwrap_err();
        assert!(err.to_string().contains(&key), "{err}");
        let _: () = conn.del(&key).unwrap();
    }
}

#[test]
fn foreign_bytes_are_a_codec_error_naming_the_key() {
    for (kind, redis) in targets() {
        let key = unique_key("garbage");
        let mut conn = redis.connection().unwrap();
        let _: () = conn.hset(&key, "\"a\"", b"\xff\xfe not json").unwrap();
        let _: () = conn.hset(&key, "not-json-field", "1").unwrap();
        let d: RedisDict<String, i64> = RedisDict::new(&redis, key.clone());
        match d.get("a") {
            Err(Error::Codec { key: k, .. }) => assert_eq!(k, key, "{kind}"),
            other => panic!("{kind}: expected Codec, got {other:?}"),
        }
        assert!(matches!(d.to_hash_map(), Err(Error::Codec { .. })));
        let results: Vec<_> = d.iter().collect();
        assert!(
            results
                .iter()
                .any(|r| matches!(r, Err(Error::Codec { .. })))
        );
        // A value of the wrong JSON type is a codec error too.
        let _: () = conn.hset(&key, "\"s\"", "\"text\"").unwrap();
        assert!(matches!(d.get("s"), Err(Error::Codec { .. })));
        let _: () = conn.del(&key).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_async() {
    for (kind, redis) in targets() {
        let d: pottery::aio::RedisDict<String, f64> =
            pottery::aio::RedisDict::new(&redis, unique_key("dict-async"));
        assert!(d.is_empty().await.unwrap());
        assert_eq!(d.insert("pi".into(), 2.5).await.unwrap(), None);
        assert_eq!(d.insert("pi".into(), 1.375e-7).await.unwrap(), Some(2.5));
        assert_eq!(d.get("pi").await.unwrap(), Some(1.375e-7));
        assert!(d.contains_key("pi").await.unwrap());
        d.extend((0..2000).map(|i| (format!("k{i}"), f64::from(i))))
            .await
            .unwrap();
        assert_eq!(d.len().await.unwrap(), 2001, "{kind}");
        let streamed: HashMap<String, f64> = d.iter().try_collect().await.unwrap();
        assert_eq!(streamed.len(), 2001);
        assert_eq!(streamed, d.to_hash_map().await.unwrap());
        let keys: Vec<String> = d.keys().try_collect().await.unwrap();
        assert_eq!(keys.len(), 2001);
        let values: Vec<f64> = d.values().try_collect().await.unwrap();
        assert_eq!(values.len(), 2001);
        assert_eq!(d.remove("pi").await.unwrap(), Some(1.375e-7));
        assert_eq!(d.remove("pi").await.unwrap(), None);
        let created =
            pottery::aio::RedisDict::create(&redis, d.key(), [("x".to_string(), 1.0)]).await;
        assert!(matches!(created, Err(Error::KeyExists { .. })));
        d.clear().await.unwrap();
        assert_eq!(d.len().await.unwrap(), 0);
        let r: pottery::aio::RedisDict<String, f64> =
            pottery::aio::RedisDict::random(&redis).await.unwrap();
        assert!(r.key().starts_with("pottery:"));
        // The blocking twin sees the same data.
        r.insert("x".into(), 1.5).await.unwrap();
        assert_eq!(r.to_blocking().get("x").unwrap(), Some(1.5));
        r.clear().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_tasks_insert_without_losing_any() {
    for (kind, redis) in targets() {
        let d: pottery::aio::RedisDict<String, u32> =
            pottery::aio::RedisDict::new(&redis, unique_key("tasks"));
        let mut tasks = Vec::new();
        for t in 0..64 {
            let d = d.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..50 {
                    d.insert(format!("{t}-{i}"), i).await.unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(d.len().await.unwrap(), 64 * 50, "{kind}");
        d.clear().await.unwrap();
    }
}

#[test]
fn set_writes_what_insert_writes_without_reading() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    for (kind, redis) in targets() {
        let a: RedisDict<String, Person> = RedisDict::new(&redis, unique_key("dict-set-a"));
        let b: RedisDict<String, Person> = RedisDict::new(&redis, unique_key("dict-set-b"));
        let p = Person {
            name: "Zoë".into(),
            age: 3,
            tags: vec!["x".into()],
        };
        a.insert("k".into(), p.clone()).unwrap();
        b.set("k".into(), p.clone()).unwrap();
        let mut con = redis.connection().unwrap();
        let raw_a: Vec<u8> = con.hget(a.key(), "\"k\"").unwrap();
        let raw_b: Vec<u8> = con.hget(b.key(), "\"k\"").unwrap();
        assert_eq!(raw_a, raw_b, "{kind}: same bytes");
        b.set(
            "k".into(),
            Person {
                age: 4,
                ..p.clone()
            },
        )
        .unwrap();
        assert_eq!(b.get("k").unwrap().unwrap().age, 4);
        let ab = b.to_async();
        rt.block_on(async {
            ab.set("j".into(), p.clone()).await.unwrap();
            assert_eq!(ab.get("j").await.unwrap(), Some(p.clone()));
        });
        assert_eq!(b.len().unwrap(), 2);
        // On a key of another type: a typed error, nothing written.
        a.clear().unwrap();
        let _: i64 = con.rpush(a.key(), 1).unwrap();
        assert!(matches!(
            a.set("k".into(), p.clone()),
            Err(Error::WrongType { .. })
        ));
        let _: () = con.del(a.key()).unwrap();
        b.clear().unwrap();
    }
}

#[test]
fn a_write_over_undecodable_data_says_it_was_applied_and_keeps_the_bytes() {
    for (kind, redis) in targets() {
        let key = unique_key("undecodable-write");
        let d: RedisDict<String, i64> = RedisDict::new(&redis, key.clone());
        let mut conn = redis.connection().unwrap();
        let _: () = conn.hset(&key, "\"k\"", "not json").unwrap();
        match d.insert("k".into(), 7) {
            Err(Error::UndecodableAfterWrite { key: k, raw, .. }) => {
                assert_eq!(k, key, "{kind}");
                assert_eq!(raw, b"not json");
            }
            other => panic!("{kind}: {other:?}"),
        }
        assert_eq!(
            d.get("k").unwrap(),
            Some(7),
            "the write happened, as reported"
        );
        let _: () = conn.hset(&key, "\"k\"", "\"text\"").unwrap();
        match d.remove("k") {
            Err(Error::UndecodableAfterWrite { raw, .. }) => assert_eq!(raw, b"\"text\""),
            other => panic!("{kind}: {other:?}"),
        }
        assert_eq!(d.get("k").unwrap(), None, "removed, as reported");
        let rt = tokio::runtime::Runtime::new().unwrap();
        let _: () = conn.hset(&key, "\"k\"", "1.5").unwrap();
        let err = rt.block_on(d.to_async().insert("k".into(), 8)).unwrap_err();
        assert!(err.to_string().contains("was applied"), "{kind}: {err}");
        assert_eq!(err.key(), Some(key.as_str()));
        d.clear().unwrap();
    }
}

#[test]
fn setdefault_pop_and_popitem_as_in_python() {
    for (kind, redis) in targets() {
        let key = unique_key("setdefault");
        let d: RedisDict<String, i64> = RedisDict::new(&redis, key.clone());
        assert_eq!(d.setdefault("a".into(), 1).unwrap(), 1, "{kind}");
        assert_eq!(d.setdefault("a".into(), 2).unwrap(), 1);
        assert_eq!(d.get("a").unwrap(), Some(1));
        assert_eq!(d.pop("a", 7).unwrap(), 1);
        assert_eq!(d.pop("a", 7).unwrap(), 7);
        assert_eq!(d.popitem().unwrap(), None);
        d.extend((0..300).map(|i| (format!("k{i}"), i))).unwrap();
        // pottery pops next(iter(d)): the first entry HSCAN returns.
        let first = d.iter().next().unwrap().unwrap();
        assert_eq!(d.popitem().unwrap(), Some(first.clone()), "{kind}");
        assert!(!d.contains_key(&first.0).unwrap());
        assert_eq!(d.len().unwrap(), 299);
        let mut conn = redis.connection().unwrap();
        let _: () = conn.del(&key).unwrap();
        let _: () = conn.hset(&key, "\"bad\"", "nope").unwrap();
        assert!(matches!(
            d.setdefault("bad".into(), 3),
            Err(Error::Codec { .. })
        ));
        let raw: String = conn.hget(&key, "\"bad\"").unwrap();
        assert_eq!(raw, "nope", "nothing written");
        match d.popitem() {
            Err(Error::UndecodableAfterWrite { raw, .. }) => assert_eq!(raw, b"nope"),
            other => panic!("{kind}: {other:?}"),
        }
        assert!(d.is_empty().unwrap());
        let rt = tokio::runtime::Runtime::new().unwrap();
        let a = d.to_async();
        rt.block_on(async {
            assert_eq!(a.setdefault("x".into(), 5).await.unwrap(), 5);
            assert_eq!(a.setdefault("x".into(), 6).await.unwrap(), 5);
            assert_eq!(a.popitem().await.unwrap(), Some(("x".to_string(), 5)));
            assert_eq!(a.pop("x", -1).await.unwrap(), -1);
        });
    }
}

#[test]
fn entry_modifications_from_8_threads_lose_nothing() {
    for (kind, redis) in targets() {
        let d: RedisDict<String, i64> = RedisDict::new(&redis, unique_key("dict-entry"));
        let d = std::sync::Arc::new(d);
        std::thread::scope(|s| {
            for _ in 0..8 {
                let d = &d;
                s.spawn(move || {
                    for _ in 0..40 {
                        d.entry("n".into())
                            .and_modify(|n| *n += 1)
                            .or_insert(1)
                            .unwrap();
                    }
                });
            }
        });
        assert_eq!(d.get("n").unwrap(), Some(320), "{kind}");
        // Without a modifier: the first default stays.
        assert_eq!(d.entry("m".into()).or_insert(5).unwrap(), 5);
        assert_eq!(d.entry("m".into()).or_insert(6).unwrap(), 5);
        let mut called = false;
        assert_eq!(
            d.entry("m".into())
                .or_insert_with(|| {
                    called = true;
                    7
                })
                .unwrap(),
            5
        );
        assert!(!called, "the default is computed only for an absent field");
        assert_eq!(d.entry("z".into()).or_default().unwrap(), 0);
        assert_eq!(d.entry("z".into()).key(), "z");
        // Data another client wrote that does not decode: an error, and nothing written.
        let mut conn = redis.connection().unwrap();
        let _: () = conn.hset(d.key(), "\"bad\"", "not json").unwrap();
        let err = d
            .entry("bad".into())
            .and_modify(|n| *n += 1)
            .or_insert(1)
            .unwrap_err();
        assert!(matches!(err, Error::Codec { .. }), "{err:?}");
        let raw: Vec<u8> = conn.hget(d.key(), "\"bad\"").unwrap();
        assert_eq!(raw, b"not json");
        d.clear().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entry_modifications_from_64_spawned_tasks_lose_nothing() {
    for (kind, redis) in targets() {
        let d: pottery::aio::RedisDict<String, Vec<u32>> =
            pottery::aio::RedisDict::new(&redis, unique_key("dict-entry-async"));
        let tasks: Vec<_> = (0..64u32)
            .map(|i| {
                let d = d.clone();
                tokio::spawn(async move {
                    d.entry("seen".into())
                        .and_modify(move |v| v.push(i))
                        .or_insert_with(move || vec![i])
                        .await
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let mut seen = d.get("seen").await.unwrap().unwrap();
        seen.sort_unstable();
        assert_eq!(seen, (0..64).collect::<Vec<_>>(), "{kind}");
        d.clear().await.unwrap();
    }
}
