//! RedisList, RedisDeque and their async twins against a real server and a cluster, checked
//! against Python's list/deque semantics.

use std::collections::{HashSet, VecDeque};

use futures_util::TryStreamExt;
use pottery::{Error, RedisDeque, RedisList};
use pottery_tests::{targets, unique_key};
use redis::Commands;

/// Python's list.insert.
fn py_insert(v: &mut Vec<i64>, i: isize, x: i64) {
    let n = v.len() as isize;
    let mut i = if i < 0 { (i + n).max(0) } else { i };
    if i > n {
        i = n;
    }
    v.insert(i as usize, x);
}

/// Python's list[a:b] for the bounds we test.
fn py_slice(v: &[i64], a: Option<isize>, b: Option<isize>) -> Vec<i64> {
    let n = v.len() as isize;
    let norm = |x: isize| if x < 0 { (x + n).max(0) } else { x.min(n) };
    let a = a.map_or(0, norm);
    let b = b.map_or(n, norm);
    if a >= b {
        vec![]
    } else {
        v[a as usize..b as usize].to_vec()
    }
}

#[test]
fn insert_and_remove_match_python_for_every_index() {
    for (kind, redis) in targets() {
        let l: RedisList<i64> = RedisList::new(&redis, unique_key("pyinsert"));
        for n in 0..6i64 {
            for i in -8..=8isize {
                // Duplicates and zeros, which pottery's sentinels mishandle.
                let start: Vec<i64> = (0..n).map(|x| x % 2).collect();
                l.clear().unwrap();
                l.extend(start.clone()).unwrap();
                let mut want = start.clone();
                py_insert(&mut want, i, 7);
                l.insert(i, 7).unwrap();
                assert_eq!(
                    l.to_vec().unwrap(),
                    want,
                    "{kind}: insert({i}, 7) into {start:?}"
                );

                l.clear().unwrap();
                l.extend(start.clone()).unwrap();
                let idx = if i < 0 { i + n as isize } else { i };
                if (0..n as isize).contains(&idx) {
                    let mut want = start.clone();
                    let got = want.remove(idx as usize);
                    assert_eq!(l.remove(i).unwrap(), got);
                    assert_eq!(
                        l.to_vec().unwrap(),
                        want,
                        "{kind}: remove({i}) from {start:?}"
                    );
                } else {
                    match l.remove(i) {
                        Err(Error::IndexOutOfRange { key, index }) => {
                            assert_eq!((key.as_str(), index), (l.key(), i))
                        }
                        other => panic!("{kind}: remove({i}) from {start:?}: {other:?}"),
                    }
                    assert_eq!(l.to_vec().unwrap(), start);
                }
            }
        }
        l.clear().unwrap();
    }
}

#[test]
fn every_list_method() {
    for (kind, redis) in targets() {
        let key = unique_key("list");
        let l: RedisList<i64> = RedisList::new(&redis, key.clone());
        assert!(l.is_empty().unwrap());
        assert_eq!(l.extend(Vec::new()).unwrap(), 0, "empty extend is a no-op");
        assert_eq!(l.push(0).unwrap(), 1);
        assert_eq!(l.extend([1, 0, 2, 3]).unwrap(), 5, "{kind}");
        assert_eq!(l.get(1).unwrap(), Some(1));
        assert_eq!(l.get(-1).unwrap(), Some(3));
        assert_eq!(l.get(9).unwrap(), None);
        l.set(-2, 20).unwrap();
        assert_eq!(l.to_vec().unwrap(), [0, 1, 0, 20, 3]);
        assert!(matches!(
            l.set(5, 1),
            Err(Error::IndexOutOfRange { index: 5, .. })
        ));
        assert!(matches!(
            l.set(-6, 1),
            Err(Error::IndexOutOfRange { index: -6, .. })
        ));
        let v = l.to_vec().unwrap();
        for (a, b) in [
            (None, None),
            (Some(1), Some(3)),
            (Some(-2), None),
            (None, Some(-1)),
            (Some(3), Some(1)),
            (Some(0), Some(0)),
            (Some(-9), Some(9)),
            (Some(2), Some(-9)),
        ] {
            let got = match (a, b) {
                (None, None) => l.slice(..).unwrap(),
                (Some(a), None) => l.slice(a..).unwrap(),
                (None, Some(b)) => l.slice(..b).unwrap(),
                (Some(a), Some(b)) => l.slice(a..b).unwrap(),
            };
            assert_eq!(got, py_slice(&v, a, b), "slice {a:?}..{b:?}");
        }
        assert_eq!(l.slice(1..=2).unwrap(), [1, 0]);
        assert_eq!(l.index_of(&0).unwrap(), Some(0));
        assert_eq!(l.index_of(&20).unwrap(), Some(3));
        assert_eq!(l.index_of(&99).unwrap(), None);
        assert!(l.contains(&3).unwrap());
        assert!(l.remove_value(&0).unwrap());
        assert_eq!(l.to_vec().unwrap(), [1, 0, 20, 3]);
        assert!(!l.remove_value(&99).unwrap());
        l.sort().unwrap();
        assert_eq!(l.to_vec().unwrap(), [0, 1, 3, 20]);
        l.reverse().unwrap();
        assert_eq!(l.to_vec().unwrap(), [20, 3, 1, 0]);
        assert_eq!(l.pop().unwrap(), Some(0));
        let streamed: Vec<i64> = l.iter().collect::<Result<_, _>>().unwrap();
        assert_eq!(streamed, [20, 3, 1]);
        assert!(format!("{l:?}").contains(&key));
        l.clear().unwrap();
        assert_eq!(l.pop().unwrap(), None);
        let big = RedisList::create(&redis, key.clone(), 0..3000i64).unwrap();
        assert!(matches!(
            RedisList::create(&redis, key.clone(), [1i64]),
            Err(Error::KeyExists { .. })
        ));
        assert_eq!(big.iter().count(), 3000);
        big.insert(1500, -1).unwrap();
        assert_eq!(big.get(1500).unwrap(), Some(-1));
        assert_eq!(big.remove(1500).unwrap(), -1);
        assert_eq!(big.to_vec().unwrap(), (0..3000).collect::<Vec<_>>());
        big.clear().unwrap();
    }
}

#[test]
fn sort_strings_by_code_point_and_refuse_mixed() {
    let redis = pottery::testing::shared_server().redis();
    let l: RedisList<String> = RedisList::new(&redis, unique_key("sort"));
    l.extend(["é", "z", "a", "Z", "😀", "b"].map(String::from))
        .unwrap();
    l.sort().unwrap();
    let mut want: Vec<String> = ["é", "z", "a", "Z", "😀", "b"].map(String::from).to_vec();
    want.sort();
    assert_eq!(l.to_vec().unwrap(), want);
    let mixed: RedisList<serde_json::Value> = RedisList::new(&redis, unique_key("mixed"));
    mixed
        .extend([serde_json::json!(1), serde_json::json!("a")])
        .unwrap();
    let err = mixed.sort().unwrap_err();
    assert_eq!(err.key(), Some(mixed.key()));
    assert_eq!(mixed.len().unwrap(), 2, "a failed sort changes nothing");
    l.clear().unwrap();
    mixed.clear().unwrap();
}

#[test]
fn deque_semantics() {
    for (kind, redis) in targets() {
        let key = unique_key("deque");
        let d: RedisDeque<char> = RedisDeque::new(&redis, key.clone());
        assert_eq!(d.maxlen(), None);
        d.extend("abc".chars()).unwrap();
        d.extend_front("xyz".chars()).unwrap();
        assert_eq!(
            d.to_vec_deque().unwrap(),
            ['z', 'y', 'x', 'a', 'b', 'c'],
            "{kind}"
        );
        assert_eq!(d.front().unwrap(), Some('z'));
        assert_eq!(d.back().unwrap(), Some('c'));
        assert_eq!(d.pop_front().unwrap(), Some('z'));
        assert_eq!(d.pop_back().unwrap(), Some('c'));
        d.push_back('q').unwrap();
        d.push_front('p').unwrap();
        assert_eq!(d.to_vec_deque().unwrap(), ['p', 'y', 'x', 'a', 'b', 'q']);
        // rotate matches Python's deque.rotate for any n.
        let model: VecDeque<char> = d.to_vec_deque().unwrap();
        for n in [-13isize, -6, -5, -1, 0, 1, 2, 3, 5, 6, 7, 100] {
            d.clear().unwrap();
            d.extend(model.iter().copied()).unwrap();
            d.rotate(n).unwrap();
            let mut want = model.clone();
            let len = want.len() as isize;
            let k = n.rem_euclid(len) as usize;
            want.rotate_right(k);
            assert_eq!(d.to_vec_deque().unwrap(), want, "rotate({n})");
        }
        d.clear().unwrap();
        d.rotate(3).unwrap(); // empty: no-op, no error
        d.clear().unwrap();

        // Bounded.
        let b: RedisDeque<u32> = RedisDeque::with_maxlen(&redis, key.clone(), 3).unwrap();
        assert_eq!(b.extend(1..=5).unwrap(), 3);
        assert_eq!(b.to_vec_deque().unwrap(), [3, 4, 5]);
        b.push_front(0).unwrap();
        assert_eq!(b.to_vec_deque().unwrap(), [0, 3, 4]);
        b.push_back(9).unwrap();
        assert_eq!(b.to_vec_deque().unwrap(), [3, 4, 9]);
        b.extend_front([7, 8]).unwrap();
        assert_eq!(b.to_vec_deque().unwrap(), [8, 7, 3]);
        match b.insert(1, 1) {
            Err(Error::MaxLenExceeded {
                key: k, maxlen: 3, ..
            }) => assert_eq!(k, key),
            other => panic!("{other:?}"),
        }
        assert_eq!(b.pop_back().unwrap(), Some(3));
        b.insert(1, 1).unwrap();
        assert_eq!(b.to_vec_deque().unwrap(), [8, 1, 7]);
        assert!(matches!(
            RedisDeque::<u32>::with_maxlen(&redis, key.clone(), 2),
            Err(Error::MaxLenExceeded { len: 3, .. })
        ));
        b.clear().unwrap();

        // maxlen 0 keeps nothing on either side (pottery keeps appendleft's element).
        let zero: RedisDeque<u32> = RedisDeque::with_maxlen(&redis, key.clone(), 0).unwrap();
        zero.push_back(1).unwrap();
        zero.push_front(2).unwrap();
        zero.extend_front([3, 4]).unwrap();
        assert!(zero.is_empty().unwrap());
        let created = RedisDeque::create(&redis, key.clone(), 0..10u32, Some(4)).unwrap();
        assert_eq!(created.to_vec_deque().unwrap(), [6, 7, 8, 9]);
        created.clear().unwrap();
    }
}

#[test]
fn concurrent_pushes_and_inserts_lose_nothing() {
    for (kind, redis) in targets() {
        let d: RedisDeque<u32> =
            RedisDeque::with_maxlen(&redis, unique_key("bounded"), 100).unwrap();
        std::thread::scope(|s| {
            for t in 0..4u32 {
                let d = d.clone();
                s.spawn(move || {
                    for i in 0..500 {
                        d.push_back(t * 1000 + i).unwrap();
                    }
                });
            }
        });
        let left = d.to_vec_deque().unwrap();
        assert_eq!(left.len(), 100, "{kind}");
        assert!(left.iter().all(|v| v % 1000 < 500 && v / 1000 < 4));
        assert_eq!(left.iter().collect::<HashSet<_>>().len(), 100);
        d.clear().unwrap();

        let l: RedisList<u32> =
            RedisList::create(&redis, unique_key("ins"), [0, u32::MAX]).unwrap();
        std::thread::scope(|s| {
            for t in 0..4u32 {
                let l = l.clone();
                s.spawn(move || {
                    for i in 0..100 {
                        l.insert(1, 1 + t * 1000 + i).unwrap();
                    }
                });
            }
        });
        let all = l.to_vec().unwrap();
        assert_eq!(all.len(), 402, "{kind}");
        assert_eq!((all[0], all[401]), (0, u32::MAX));
        assert_eq!(
            all.iter().collect::<HashSet<_>>().len(),
            402,
            "no duplicates"
        );
        l.clear().unwrap();
    }
}

#[test]
fn wrong_type_names_the_key() {
    for (kind, redis) in targets() {
        let key = unique_key("not-a-list");
        let mut conn = redis.connection().unwrap();
        let _: () = conn.set(&key, "x").unwrap();
        let l: RedisList<u8> = RedisList::new(&redis, key.clone());
        let d: RedisDeque<u8> = RedisDeque::new(&redis, key.clone());
        for r in [
            l.get(0).map(drop),
            l.insert(0, 1).map(drop),
            l.remove(0).map(drop),
            d.rotate(1).map(drop),
            d.push_back(1).map(drop),
        ] {
            match r {
                Err(Error::WrongType { key: k, expected }) => {
                    assert_eq!((k.as_str(), expected), (key.as_str(), "list"), "{kind}")
                }
                other => panic!("{kind}: {other:?}"),
            }
        }
        let _: () = conn.del(&key).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_twins() {
    for (kind, redis) in targets() {
        let l: pottery::aio::RedisList<i64> =
            pottery::aio::RedisList::new(&redis, unique_key("alist"));
        l.extend([5, 3, 9]).await.unwrap();
        l.push(1).await.unwrap();
        l.insert(-1, 7).await.unwrap();
        assert_eq!(l.to_vec().await.unwrap(), [5, 3, 9, 7, 1], "{kind}");
        l.set(0, 4).await.unwrap();
        assert!(matches!(
            l.set(9, 0).await,
            Err(Error::IndexOutOfRange { .. })
        ));
        assert_eq!(l.get(-1).await.unwrap(), Some(1));
        assert_eq!(l.remove(1).await.unwrap(), 3);
        assert_eq!(l.slice(1..3).await.unwrap(), [9, 7]);
        assert_eq!(l.index_of(&7).await.unwrap(), Some(2));
        assert!(l.contains(&9).await.unwrap());
        assert!(l.remove_value(&9).await.unwrap());
        l.sort().await.unwrap();
        assert_eq!(l.to_vec().await.unwrap(), [1, 4, 7]);
        l.reverse().await.unwrap();
        let streamed: Vec<i64> = l.iter().try_collect().await.unwrap();
        assert_eq!(streamed, [7, 4, 1]);
        assert_eq!(l.pop().await.unwrap(), Some(1));
        assert_eq!(l.len().await.unwrap(), 2);
        assert_eq!(l.to_blocking().to_vec().unwrap(), [7, 4]);
        l.clear().await.unwrap();
        assert!(l.is_empty().await.unwrap());
        let c = pottery::aio::RedisList::create(&redis, l.key(), [1i64])
            .await
            .unwrap();
        assert!(matches!(
            pottery::aio::RedisList::create(&redis, l.key(), [1i64]).await,
            Err(Error::KeyExists { .. })
        ));
        c.clear().await.unwrap();

        let d: pottery::aio::RedisDeque<i64> =
            pottery::aio::RedisDeque::with_maxlen(&redis, unique_key("adeque"), 3)
                .await
                .unwrap();
        assert_eq!(d.maxlen(), Some(3));
        d.extend([1, 2, 3, 4]).await.unwrap();
        d.extend_front([0]).await.unwrap();
        assert_eq!(d.to_vec_deque().await.unwrap(), [0, 2, 3]);
        d.rotate(-1).await.unwrap();
        assert_eq!(d.to_vec_deque().await.unwrap(), [2, 3, 0]);
        assert!(matches!(
            d.insert(0, 9).await,
            Err(Error::MaxLenExceeded { .. })
        ));
        assert_eq!(d.pop_front().await.unwrap(), Some(2));
        assert_eq!(d.pop_back().await.unwrap(), Some(0));
        d.push_back(8).await.unwrap();
        d.push_front(7).await.unwrap();
        assert_eq!(
            (d.front().await.unwrap(), d.back().await.unwrap()),
            (Some(7), Some(8))
        );
        d.insert(1, 5).await.unwrap_err();
        assert_eq!(d.to_blocking().to_vec_deque().unwrap(), [7, 3, 8]);
        d.clear().await.unwrap();
        let dd = pottery::aio::RedisDeque::create(&redis, d.key(), [1i64, 2, 3], Some(2))
            .await
            .unwrap();
        assert_eq!(dd.to_vec_deque().await.unwrap(), [2, 3]);
        dd.clear().await.unwrap();
        assert!(
            pottery::aio::RedisDeque::<u8>::random(&redis)
                .await
                .unwrap()
                .key()
                .starts_with("pottery:")
        );
        assert!(
            pottery::aio::RedisList::<u8>::random(&redis)
                .await
                .unwrap()
                .key()
                .starts_with("pottery:")
        );
    }
}

#[test]
fn a_removal_of_undecodable_data_says_it_was_applied_and_keeps_the_bytes() {
    for (kind, redis) in targets() {
        let key = unique_key("undecodable-list");
        let mut conn = redis.connection().unwrap();
        let l: RedisList<i64> = RedisList::new(&redis, key.clone());
        let q: RedisDeque<i64> = RedisDeque::new(&redis, key.clone());
        let _: () = conn
            .rpush(&key, &["1", "bad1", "bad2", "bad3", "bad4"])
            .unwrap();
        let raw = |r: Result<_, Error>| match r {
            Err(Error::UndecodableAfterWrite { key: k, raw, .. }) => {
                assert_eq!(k, key, "{kind}");
                raw
            }
            other => panic!("{kind}: {other:?}"),
        };
        assert_eq!(raw(l.remove(1).map(|_| ())), b"bad1");
        assert_eq!(raw(l.pop().map(|_| ())), b"bad4");
        assert_eq!(raw(q.pop_back().map(|_| ())), b"bad3");
        let rt = tokio::runtime::Runtime::new().unwrap();
        assert_eq!(
            raw(rt.block_on(l.to_async().remove(1)).map(|_| ())),
            b"bad2"
        );
        let _: () = conn.lpush(&key, "bad0").unwrap();
        assert_eq!(raw(q.pop_front().map(|_| ())), b"bad0");
        assert_eq!(
            l.to_vec().unwrap(),
            [1],
            "each removal happened, as reported"
        );
        l.clear().unwrap();
    }
}

#[test]
fn count_and_slices_with_a_step_as_in_python() {
    for (kind, redis) in targets() {
        let l: RedisList<i64> = RedisList::new(&redis, unique_key("count-step"));
        let q: RedisDeque<i64> = RedisDeque::new(&redis, l.key());
        assert_eq!(l.count(&1).unwrap(), 0, "{kind}");
        assert_eq!(l.slice_step(.., 2).unwrap(), Vec::<i64>::new());
        let v: Vec<i64> = vec![1, 2, 1, 3, 1, 4, 5, 1];
        l.extend(v.clone()).unwrap();
        assert_eq!(l.count(&1).unwrap(), 4);
        assert_eq!(q.count(&5).unwrap(), 1);
        // Python: v[::2], v[1::3], v[-5:-1:2], v[2:100:4], v[5:2:1]
        assert_eq!(l.slice_step(.., 2).unwrap(), [1, 1, 1, 5]);
        assert_eq!(l.slice_step(1.., 3).unwrap(), [2, 1, 1]);
        assert_eq!(l.slice_step(-5..-1, 2).unwrap(), [3, 4]);
        assert_eq!(l.slice_step(2..100, 4).unwrap(), [1, 5]);
        let (from, to) = (5, 2);
        assert_eq!(l.slice_step(from..to, 1).unwrap(), Vec::<i64>::new());
        assert_eq!(q.slice_step(..=3, 1).unwrap(), [1, 2, 1, 3]);
        assert!(matches!(l.slice_step(.., 0), Err(Error::Config { .. })));
        let rt = tokio::runtime::Runtime::new().unwrap();
        let a = l.to_async();
        assert_eq!(rt.block_on(a.count(&1)).unwrap(), 4);
        assert_eq!(rt.block_on(a.slice_step(.., 3)).unwrap(), [1, 3, 5]);
        l.clear().unwrap();
    }
}

#[test]
fn slices_with_any_step_match_python_on_400_cases() {
    use rand::prelude::*;
    let mut rng = StdRng::seed_from_u64(11);
    let pick = |rng: &mut StdRng| -> Option<isize> {
        match rng.random_range(0..10) {
            0 => None,
            1 => Some(*[isize::MIN, isize::MAX, -1000, 1000].choose(rng).unwrap()),
            _ => Some(rng.random_range(-15i64..=15) as isize),
        }
    };
    let cases: Vec<(usize, Option<isize>, Option<isize>, isize)> = (0..400)
        .map(|_| {
            let step = *[-5, -3, -2, -1, -1, 1, 2, 3, -7, 7]
                .choose(&mut rng)
                .unwrap();
            (
                rng.random_range(0..12),
                pick(&mut rng),
                pick(&mut rng),
                step,
            )
        })
        .collect();
    let input: String = cases
        .iter()
        .map(|(n, a, b, s)| format!("{}\n", serde_json::json!([n, a, b, s])))
        .collect();
    let code = "import json, sys\nfor line in sys.stdin:\n    n, a, b, s = json.loads(line)\n    print(json.dumps(list(range(n))[a:b:s]))";
    let python = pottery_tests::run_python(code, "redis://127.0.0.1:1/0", &input);
    let want: Vec<Vec<i64>> = python
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(want.len(), cases.len());
    for (kind, redis) in targets() {
        let key = unique_key("slice-step");
        let lists: Vec<RedisList<i64>> = (0..12)
            .map(|n| {
                let l = RedisList::new(&redis, format!("{{{key}}}:{n}"));
                l.extend(0..n as i64).unwrap();
                l
            })
            .collect();
        for ((n, a, b, s), want) in cases.iter().zip(&want) {
            let range = (
                a.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Included),
                b.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded),
            );
            let got = lists[*n].slice_step(range, *s).unwrap();
            assert_eq!(&got, want, "{kind}: list(range({n}))[{a:?}:{b:?}:{s}]");
        }
        // An inclusive end is the element itself, whichever way the slice runs.
        assert_eq!(
            lists[6]
                .slice_step(
                    (std::ops::Bound::Included(4), std::ops::Bound::Included(1)),
                    -1
                )
                .unwrap(),
            [4, 3, 2, 1]
        );
        assert_eq!(lists[6].slice_step(..=0, -2).unwrap(), [5, 3, 1]);
        assert_eq!(lists[6].slice_step(..=-1, 2).unwrap(), [0, 2, 4]);
        let rt = tokio::runtime::Runtime::new().unwrap();
        assert_eq!(
            rt.block_on(lists[5].to_async().slice_step(.., -2)).unwrap(),
            [4, 2, 0]
        );
        for l in lists {
            l.clear().unwrap();
        }
    }
}
