//! RedisSet and aio::RedisSet against a real server, a cluster, and across servers.

use std::collections::HashSet;

use futures_util::TryStreamExt;
use pottery::testing::RedisServer;
use pottery::{Error, RedisSet};
use pottery_tests::{targets, unique_key};
use redis::Commands;

#[test]
fn every_method_sync() {
    for (kind, redis) in targets() {
        let key = unique_key("set");
        let s: RedisSet<String> = RedisSet::new(&redis, key.clone());
        assert!(s.is_empty().unwrap());
        assert!(s.insert("a".into()).unwrap(), "{kind}");
        assert!(!s.insert("a".into()).unwrap());
        assert_eq!(
            s.extend(["b".to_string(), "c".to_string(), "a".to_string()])
                .unwrap(),
            2
        );
        assert_eq!(s.extend(Vec::new()).unwrap(), 0);
        assert_eq!(s.len().unwrap(), 3);
        assert!(s.contains("b").unwrap());
        assert!(!s.contains("z").unwrap());
        assert_eq!(
            s.contains_many(["c", "z", "a"]).unwrap(),
            [true, false, true]
        );
        assert_eq!(
            s.contains_many(Vec::<&str>::new()).unwrap(),
            Vec::<bool>::new()
        );
        assert!(s.remove("c").unwrap());
        assert!(!s.remove("c").unwrap());
        let all: HashSet<String> = s.iter().collect::<Result<_, _>>().unwrap();
        assert_eq!(all, s.to_hash_set().unwrap());
        assert_eq!(all, ["a".to_string(), "b".to_string()].into());
        let popped = s.pop().unwrap().unwrap();
        assert!(all.contains(&popped));
        assert_eq!(s.len().unwrap(), 1);
        s.clear().unwrap();
        assert_eq!(s.pop().unwrap(), None);
        assert!(format!("{s:?}").contains(&key));
        let created = RedisSet::create(&redis, key.clone(), [1u8, 2]).unwrap();
        assert!(matches!(
            RedisSet::create(&redis, key.clone(), [3u8]),
            Err(Error::KeyExists { .. })
        ));
        assert_eq!(created.len().unwrap(), 2);
        created.clear().unwrap();
        let big = RedisSet::create(&redis, key.clone(), 0..10_000u32).unwrap();
        assert_eq!(big.len().unwrap(), 10_000);
        assert_eq!(big.iter().count(), 10_000);
        big.clear().unwrap();
        let r: RedisSet<u8> = RedisSet::random(&redis).unwrap();
        assert!(r.key().starts_with("pottery:"));
    }
}

#[test]
fn identity_is_by_encoding_as_in_pottery() {
    let redis = pottery::testing::shared_server().redis();
    let s: RedisSet<serde_json::Value> = RedisSet::new(&redis, unique_key("identity"));
    s.extend([
        serde_json::json!(1),
        serde_json::json!(1.0),
        serde_json::json!("1"),
        serde_json::json!(true),
    ])
    .unwrap();
    assert_eq!(s.len().unwrap(), 4);
    let mut conn = redis.connection().unwrap();
    let mut raw: Vec<String> = conn.smembers(s.key()).unwrap();
    raw.sort();
    assert_eq!(raw, ["\"1\"", "1", "1.0", "true"]);
    s.clear().unwrap();
}

/// Set algebra where one command reaches both keys: same server, or same slot on a cluster.
#[test]
fn algebra_server_side_and_client_side() {
    for (kind, redis) in targets() {
        let tag = unique_key("alg");
        // Hash tags keep a, b and dest in one slot, so the cluster runs SUNION & co. there.
        let a: RedisSet<u32> =
            RedisSet::create(&redis, format!("{{{tag}}}:a"), [1, 2, 3, 4]).unwrap();
        let b: RedisSet<u32> = RedisSet::create(&redis, format!("{{{tag}}}:b"), [3, 4, 5]).unwrap();
        let dest: RedisSet<u32> = RedisSet::new(&redis, format!("{{{tag}}}:dest"));
        // Without a tag, keys land in other slots: computed in the client on a cluster.
        let far: RedisSet<u32> = RedisSet::create(&redis, format!("{tag}:far"), [3, 4, 5]).unwrap();
        for other in [&b, &far] {
            assert_eq!(a.union(other).unwrap(), [1, 2, 3, 4, 5].into(), "{kind}");
            assert_eq!(a.intersection(other).unwrap(), [3, 4].into());
            assert_eq!(a.difference(other).unwrap(), [1, 2].into());
            assert_eq!(a.symmetric_difference(other).unwrap(), [1, 2, 5].into());
            assert_eq!(a.union_store(other, &dest).unwrap(), 5);
            assert_eq!(dest.to_hash_set().unwrap(), [1, 2, 3, 4, 5].into());
            assert_eq!(a.intersection_store(other, &dest).unwrap(), 2);
            assert_eq!(dest.to_hash_set().unwrap(), [3, 4].into());
            assert_eq!(a.difference_store(other, &dest).unwrap(), 2);
            assert_eq!(dest.to_hash_set().unwrap(), [1, 2].into());
            assert_eq!(a.symmetric_difference_store(other, &dest).unwrap(), 3);
            assert_eq!(dest.to_hash_set().unwrap(), [1, 2, 5].into());
            assert!(!a.is_subset(other).unwrap());
            assert!(!a.is_superset(other).unwrap());
            assert!(!a.is_disjoint(other).unwrap());
        }
        // Plain values.
        assert_eq!(a.union([9]).unwrap(), [1, 2, 3, 4, 9].into());
        assert_eq!(a.intersection(vec![2, 9]).unwrap(), [2].into());
        assert_eq!(a.difference([1, 2]).unwrap(), [3, 4].into());
        assert_eq!(a.symmetric_difference([4, 5]).unwrap(), [1, 2, 3, 5].into());
        assert!(a.is_subset(1..=10).unwrap());
        assert!(a.is_superset([1, 4]).unwrap());
        assert!(a.is_disjoint([7, 8]).unwrap());
        assert!(!a.is_disjoint([4]).unwrap());
        // An empty result stores nothing and leaves no key.
        assert_eq!(a.intersection_store([42], &dest).unwrap(), 0);
        assert!(dest.is_empty().unwrap());
        for s in [a, b, dest, far] {
            s.clear().unwrap();
        }
    }
}

#[test]
fn algebra_across_two_servers() {
    let one = RedisServer::start().unwrap();
    let two = RedisServer::start().unwrap();
    let a: RedisSet<char> = RedisSet::create(&one.redis(), "s", ['x', 'y']).unwrap();
    let b: RedisSet<char> = RedisSet::create(&two.redis(), "s", ['y', 'z']).unwrap();
    assert_eq!(a.union(&b).unwrap(), ['x', 'y', 'z'].into());
    assert_eq!(a.intersection(&b).unwrap(), ['y'].into());
    assert_eq!(a.difference_store(&b, &b).unwrap(), 1);
    assert_eq!(b.to_hash_set().unwrap(), ['x'].into());
    assert!(a.is_superset(&b).unwrap());
}

#[test]
fn wrong_type_names_the_key() {
    for (kind, redis) in targets() {
        let key = unique_key("a-hash");
        let mut conn = redis.connection().unwrap();
        let _: () = conn.hset(&key, "f", "v").unwrap();
        let s: RedisSet<String> = RedisSet::new(&redis, key.clone());
        for r in [
            s.insert("x".into()).map(drop),
            s.contains("x").map(drop),
            s.len().map(drop),
            s.pop().map(drop),
        ] {
            match r {
                Err(Error::WrongType { key: k, expected }) => {
                    assert_eq!((k.as_str(), expected), (key.as_str(), "set"), "{kind}")
                }
                other => panic!("{kind}: {other:?}"),
            }
        }
        let _: () = conn.del(&key).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_async() {
    for (kind, redis) in targets() {
        let tag = unique_key("aset");
        let s: pottery::aio::RedisSet<i64> =
            pottery::aio::RedisSet::new(&redis, format!("{{{tag}}}:s"));
        assert!(s.is_empty().await.unwrap());
        assert!(s.insert(1).await.unwrap(), "{kind}");
        assert_eq!(s.extend([2, 3, 4]).await.unwrap(), 3);
        assert!(s.contains(&2).await.unwrap());
        assert_eq!(s.contains_many([4, 5]).await.unwrap(), [true, false]);
        assert!(s.remove(&4).await.unwrap());
        assert_eq!(s.len().await.unwrap(), 3);
        let streamed: HashSet<i64> = s.iter().try_collect().await.unwrap();
        assert_eq!(streamed, s.to_hash_set().await.unwrap());
        let other = pottery::aio::RedisSet::create(&redis, format!("{{{tag}}}:o"), [3, 9])
            .await
            .unwrap();
        let dest: pottery::aio::RedisSet<i64> =
            pottery::aio::RedisSet::new(&redis, format!("{{{tag}}}:d"));
        assert_eq!(s.union(&other).await.unwrap(), [1, 2, 3, 9].into());
        assert_eq!(s.intersection(&other).await.unwrap(), [3].into());
        assert_eq!(s.difference(&other).await.unwrap(), [1, 2].into());
        assert_eq!(
            s.symmetric_difference(&other).await.unwrap(),
            [1, 2, 9].into()
        );
        assert_eq!(s.union_store(&other, &dest).await.unwrap(), 4);
        assert_eq!(s.intersection_store(&other, &dest).await.unwrap(), 1);
        assert_eq!(s.difference_store([1], &dest).await.unwrap(), 2);
        assert_eq!(
            s.symmetric_difference_store(&other, &dest).await.unwrap(),
            3
        );
        assert!(s.is_subset([1, 2, 3, 7]).await.unwrap());
        assert!(s.is_superset([1]).await.unwrap());
        assert!(s.is_disjoint(&dest.to_blocking()).await.is_ok());
        assert!(!s.is_disjoint(&other).await.unwrap());
        let p = s.pop().await.unwrap().unwrap();
        assert!([1, 2, 3].contains(&p));
        for x in [s, other, dest] {
            x.clear().await.unwrap();
        }
        let c = pottery::aio::RedisSet::create(&redis, tag.clone(), [1u8])
            .await
            .unwrap();
        assert!(matches!(
            pottery::aio::RedisSet::create(&redis, tag.clone(), [1u8]).await,
            Err(Error::KeyExists { .. })
        ));
        c.clear().await.unwrap();
        assert!(
            pottery::aio::RedisSet::<u8>::random(&redis)
                .await
                .unwrap()
                .key()
                .starts_with("pottery:")
        );
    }
}

#[test]
fn a_pop_of_undecodable_data_says_it_was_applied_and_keeps_the_bytes() {
    for (kind, redis) in targets() {
        let key = unique_key("undecodable-set");
        let mut conn = redis.connection().unwrap();
        let _: () = conn.sadd(&key, "bad").unwrap();
        let s: RedisSet<i64> = RedisSet::new(&redis, key.clone());
        match s.pop() {
            Err(Error::UndecodableAfterWrite { key: k, raw, .. }) => {
                assert_eq!((k, raw), (key.clone(), b"bad".to_vec()), "{kind}");
            }
            other => panic!("{kind}: {other:?}"),
        }
        assert!(s.is_empty().unwrap(), "popped, as reported");
        let _: () = conn.sadd(&key, "bad").unwrap();
        let err = tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(s.to_async().pop())
            .unwrap_err();
        assert!(err.to_string().contains("was applied"), "{kind}: {err}");
    }
}
