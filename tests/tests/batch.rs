//! Batches and transactions (blocking and async) against a real server and a cluster: the
//! same results as the calls made one by one, all-or-nothing transactions, scripts lost
//! between batches, errors per operation, no I/O for an empty batch, and interop with Python
//! pottery.

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use pottery::{
    Batch, BloomFilter, Error, HyperLogLog, Pending, Redis, RedisBacked, RedisCache, RedisCounter,
    RedisDeque, RedisDict, RedisList, RedisSet,
};
use pottery_tests::{run_python, targets, unique_key};
use redis::Commands;

/// A `#[derive(RedisBacked)]` struct, for its handle's operations in batches.
#[derive(RedisBacked, Debug, PartialEq)]
struct Player {
    name: String,
    visits: i64,
    #[redis(default)]
    tags: Vec<String>,
    nick: Option<String>,
}

fn ada() -> Player {
    Player {
        name: "Ada".into(),
        visits: 1,
        tags: vec!["early".into()],
        nick: None,
    }
}

/// One of each batchable structure, on keys of their own (with `tag`, all in one slot).
struct World {
    cache: RedisCache,
    player: PlayerHandle,
    dict: RedisDict<String, i64>,
    set: RedisSet<String>,
    list: RedisList<u32>,
    deque: RedisDeque<u32>,
    counter: RedisCounter<String>,
    bloom: BloomFilter<String>,
    hll: HyperLogLog<String>,
}

impl World {
    fn new(redis: &Redis, tag: bool) -> World {
        let base = unique_key("batch");
        let key = |name: &str| {
            if tag {
                format!("{{{base}}}:{name}")
            } else {
                format!("{base}:{name}")
            }
        };
        World {
            cache: RedisCache::new(redis, key("cache")),
            player: Player::handle(redis, key("player")),
            dict: RedisDict::new(redis, key("dict")),
            set: RedisSet::new(redis, key("set")),
            list: RedisList::new(redis, key("list")),
            deque: RedisDeque::with_maxlen(redis, key("deque"), 3).unwrap(),
            counter: RedisCounter::new(redis, key("counter")),
            bloom: BloomFilter::new(redis, key("bloom"), 100, 0.01).unwrap(),
            hll: HyperLogLog::new(redis, key("hll")),
        }
    }

    fn clear(&self) {
        self.cache.clear().unwrap();
        self.player.delete().unwrap();
        self.dict.clear().unwrap();
        self.set.clear().unwrap();
        self.list.clear().unwrap();
        self.deque.clear().unwrap();
        self.counter.clear().unwrap();
        self.bloom.clear().unwrap();
        self.hll.clear().unwrap();
    }
}

/// A queued result, shown once the batch ran.
type Shown = Box<dyn FnOnce() -> String + Send>;

fn show<T: Debug + Send + 'static>(p: Pending<T>) -> Shown {
    Box::new(move || format!("{:?}", p.get().expect("a queued operation failed")))
}

fn shown<T: Debug>(r: pottery::Result<T>) -> String {
    format!("{:?}", r.expect("a direct call failed"))
}

/// The mixed sequence, queued on a batch (blocking or async, on blocking or async structures:
/// the views are the same).
macro_rules! queue_mixed {
    ($b:expr, $w:expr) => {{
        let (b, w) = (&$b, &$w);
        vec![
            show(b.on(&w.dict).insert("a".into(), 1)),
            show(b.on(&w.dict).insert("a".into(), 2)),
            show(b.on(&w.dict).set("b".into(), 3)),
            show(b.on(&w.dict).get("a")),
            show(b.on(&w.dict).get_many(["a", "b", "c"])),
            show(b.on(&w.dict).setdefault("c".into(), 4)),
            show(b.on(&w.dict).setdefault("c".into(), 5)),
            show(b.on(&w.dict).contains_key("c")),
            show(b.on(&w.dict).remove("b")),
            show(b.on(&w.dict).len()),
            show(b.on(&w.dict).extend(Vec::new())),
            show(b.on(&w.set).insert("x".into())),
            show(b.on(&w.set).insert("x".into())),
            show(b.on(&w.set).extend(["y".to_string(), "z".to_string()])),
            show(b.on(&w.set).contains("y")),
            show(b.on(&w.set).contains_many(["x", "q"])),
            show(b.on(&w.set).remove("z")),
            show(b.on(&w.set).len()),
            show(b.on(&w.list).push(1)),
            show(b.on(&w.list).extend([2, 3, 4])),
            show(b.on(&w.list).set(0, 10)),
            show(b.on(&w.list).insert(1, 11)),
            show(b.on(&w.list).remove(-1)),
            show(b.on(&w.list).get(1)),
            show(b.on(&w.list).pop()),
            show(b.on(&w.list).to_vec()),
            show(b.on(&w.list).len()),
            show(b.on(&w.deque).push_back(1)),
            show(b.on(&w.deque).extend([2, 3, 4])),
            show(b.on(&w.deque).push_front(9)),
            show(b.on(&w.deque).rotate(1)),
            show(b.on(&w.deque).pop_front()),
            show(b.on(&w.deque).back()),
            show(b.on(&w.deque).to_vec_deque()),
            show(b.on(&w.counter).incr("hits", 2)),
            show(
                b.on(&w.counter)
                    .update(["hits".to_string(), "misses".to_string()]),
            ),
            show(b.on(&w.counter).update_counts([("misses".to_string(), 4)])),
            show(b.on(&w.counter).subtract(["misses".to_string()])),
            show(b.on(&w.counter).get("hits")),
            show(b.on(&w.counter).get("nobody")),
            show(b.on(&w.counter).remove("misses")),
            show(b.on(&w.counter).len()),
            show(b.on(&w.bloom).add("raj")),
            show(b.on(&w.bloom).add("raj")),
            show(b.on(&w.bloom).update(["a".to_string(), "b".to_string()])),
            show(b.on(&w.bloom).contains("raj")),
            show(b.on(&w.bloom).contains_many(["a", "nope"])),
            show(b.on(&w.bloom).len()),
            show(b.on(&w.hll).add("x")),
            show(b.on(&w.hll).update(["y".to_string(), "z".to_string()])),
            show(b.on(&w.hll).contains("y")),
            show(b.on(&w.hll).contains_many(["x", "nope"])),
            show(b.on(&w.hll).len()),
            show(b.on(&w.cache).store(&(1,), "one")),
            show(b.on(&w.cache).get::<_, String>(&(1,))),
            show(b.on(&w.cache).get::<_, String>(&(2,))),
            show(b.on(&w.player).exists()),
            show(b.on(&w.player).save(&ada())),
            show(b.on(&w.player).visits()),
            show(b.on(&w.player).incr_visits(5)),
            show(b.on(&w.player).set_nick(Some("ada".to_string()))),
            show(b.on(&w.player).nick()),
            show(b.on(&w.player).tags()),
            show(b.on(&w.player).load()),
            show(b.on(&w.player).exists()),
        ]
    }};
}

/// The same sequence, one call at a time.
fn direct_mixed(w: &World) -> Vec<String> {
    vec![
        shown(w.dict.insert("a".into(), 1)),
        shown(w.dict.insert("a".into(), 2)),
        shown(w.dict.set("b".into(), 3)),
        shown(w.dict.get("a")),
        shown(w.dict.get_many(["a", "b", "c"])),
        shown(w.dict.setdefault("c".into(), 4)),
        shown(w.dict.setdefault("c".into(), 5)),
        shown(w.dict.contains_key("c")),
        shown(w.dict.remove("b")),
        shown(w.dict.len()),
        shown(w.dict.extend(Vec::new())),
        shown(w.set.insert("x".into())),
        shown(w.set.insert("x".into())),
        shown(w.set.extend(["y".to_string(), "z".to_string()])),
        shown(w.set.contains("y")),
        shown(w.set.contains_many(["x", "q"])),
        shown(w.set.remove("z")),
        shown(w.set.len()),
        shown(w.list.push(1)),
        shown(w.list.extend([2, 3, 4])),
        shown(w.list.set(0, 10)),
        shown(w.list.insert(1, 11)),
        shown(w.list.remove(-1)),
        shown(w.list.get(1)),
        shown(w.list.pop()),
        shown(w.list.to_vec()),
        shown(w.list.len()),
        shown(w.deque.push_back(1)),
        shown(w.deque.extend([2, 3, 4])),
        shown(w.deque.push_front(9)),
        shown(w.deque.rotate(1)),
        shown(w.deque.pop_front()),
        shown(w.deque.back()),
        shown(w.deque.to_vec_deque()),
        shown(w.counter.incr("hits", 2)),
        shown(w.counter.update(["hits".to_string(), "misses".to_string()])),
        shown(w.counter.update_counts([("misses".to_string(), 4)])),
        shown(w.counter.subtract(["misses".to_string()])),
        shown(w.counter.get("hits")),
        shown(w.counter.get("nobody")),
        shown(w.counter.remove("misses")),
        shown(w.counter.len()),
        shown(w.bloom.add("raj")),
        shown(w.bloom.add("raj")),
        shown(w.bloom.update(["a".to_string(), "b".to_string()])),
        shown(w.bloom.contains("raj")),
        shown(w.bloom.contains_many(["a", "nope"])),
        shown(w.bloom.len()),
        shown(w.hll.add("x")),
        shown(w.hll.update(["y".to_string(), "z".to_string()])),
        shown(w.hll.contains("y")),
        shown(w.hll.contains_many(["x", "nope"])),
        shown(w.hll.len()),
        shown(w.cache.store(&(1,), "one")),
        shown(w.cache.get::<_, String>(&(1,))),
        shown(w.cache.get::<_, String>(&(2,))),
        shown(w.player.exists()),
        shown(w.player.save(&ada())),
        shown(w.player.visits()),
        shown(w.player.incr_visits(5)),
        shown(w.player.set_nick(Some("ada".to_string()))),
        shown(w.player.nick()),
        shown(w.player.tags()),
        shown(w.player.load()),
        shown(w.player.exists()),
    ]
}

/// The state a world ends in, for comparing worlds.
fn state(w: &World) -> String {
    let mut dict: Vec<_> = w.dict.to_hash_map().unwrap().into_iter().collect();
    dict.sort();
    let mut set: Vec<_> = w.set.to_hash_set().unwrap().into_iter().collect();
    set.sort();
    let mut counter: Vec<_> = w.counter.to_hash_map().unwrap().into_iter().collect();
    counter.sort();
    format!(
        "{dict:?} {set:?} {:?} {:?} {counter:?} {} {} {:?} {:?}",
        w.list.to_vec().unwrap(),
        w.deque.to_vec_deque().unwrap(),
        w.bloom.len().unwrap(),
        w.hll.len().unwrap(),
        w.cache.get::<_, String>(&(1,)).unwrap(),
        w.player.load().unwrap(),
    )
}

/// The async twins of a world's structures (a derived handle serves both).
struct AioWorld {
    cache: pottery::aio::RedisCache,
    player: PlayerHandle,
    dict: pottery::aio::RedisDict<String, i64>,
    set: pottery::aio::RedisSet<String>,
    list: pottery::aio::RedisList<u32>,
    deque: pottery::aio::RedisDeque<u32>,
    counter: pottery::aio::RedisCounter<String>,
    bloom: pottery::aio::BloomFilter<String>,
    hll: pottery::aio::HyperLogLog<String>,
}

impl AioWorld {
    fn of(w: &World) -> AioWorld {
        AioWorld {
            cache: w.cache.to_async(),
            player: w.player.clone(),
            dict: w.dict.to_async(),
            set: w.set.to_async(),
            list: w.list.to_async(),
            deque: w.deque.to_async(),
            counter: w.counter.to_async(),
            bloom: w.bloom.to_async(),
            hll: w.hll.to_async(),
        }
    }
}

#[test]
fn mixed_batches_give_what_the_calls_give_one_by_one() {
    for (kind, redis) in targets() {
        let one_by_one = World::new(&redis, false);
        let want = direct_mixed(&one_by_one);

        // Pipelined: on a cluster the structures are in several slots.
        let batched = World::new(&redis, false);
        let b = Batch::new(&redis);
        let got = queue_mixed!(b, batched);
        assert_eq!(
            b.len(),
            got.len() - 1,
            "{kind}: the empty extend is answered at once"
        );
        b.execute().unwrap();
        let got: Vec<String> = got.into_iter().map(|f| f()).collect();
        assert_eq!(got, want, "{kind}: batch");
        assert_eq!(state(&batched), state(&one_by_one), "{kind}");

        // As a transaction (one slot on a cluster).
        let atomic = World::new(&redis, true);
        let tx = Batch::transaction(&redis);
        let got = queue_mixed!(tx, atomic);
        tx.execute().unwrap();
        let got: Vec<String> = got.into_iter().map(|f| f()).collect();
        assert_eq!(got, want, "{kind}: transaction");
        assert_eq!(state(&atomic), state(&one_by_one), "{kind}");

        for w in [one_by_one, batched, atomic] {
            w.clear();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_batches_give_what_the_calls_give_one_by_one() {
    for (kind, redis) in targets() {
        let (one_by_one, batched, atomic) = tokio::task::spawn_blocking({
            let redis = redis.clone();
            move || {
                let w = World::new(&redis, false);
                let want = direct_mixed(&w);
                (
                    (w, want),
                    World::new(&redis, false),
                    World::new(&redis, true),
                )
            }
        })
        .await
        .unwrap();
        let (one_by_one, want) = one_by_one;
        for (w, transaction) in [(&batched, false), (&atomic, true)] {
            let aw = AioWorld::of(w);
            let b = if transaction {
                pottery::aio::Batch::transaction(&redis)
            } else {
                pottery::aio::Batch::new(&redis)
            };
            let got = queue_mixed!(b, aw);
            let run = b.execute();
            assert_send(&run);
            run.await.unwrap();
            let got: Vec<String> = got.into_iter().map(|f| f()).collect();
            assert_eq!(got, want, "{kind}: async, transaction {transaction}");
        }
        tokio::task::spawn_blocking(move || {
            let want = state(&one_by_one);
            assert_eq!(state(&batched), want, "{kind}");
            assert_eq!(state(&atomic), want, "{kind}");
            for w in [one_by_one, batched, atomic] {
                w.clear();
            }
        })
        .await
        .unwrap();
    }
}

fn assert_send<T: Send>(_: &T) {}

#[test]
fn transactions_are_seen_all_or_nothing() {
    const TOTAL: i64 = 1000;
    for (kind, redis) in targets() {
        let tag = unique_key("bank");
        let a: RedisCounter<String> = RedisCounter::new(&redis, format!("{{{tag}}}:a"));
        let b: RedisCounter<String> = RedisCounter::new(&redis, format!("{{{tag}}}:b"));
        a.set("n".into(), TOTAL).unwrap();
        b.set("n".into(), 0).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let reads = std::thread::scope(|s| {
            let reader = s.spawn(|| {
                let mut reads = 0;
                while !stop.load(Ordering::Relaxed) {
                    let tx = Batch::transaction(&redis);
                    let (x, y) = (tx.on(&a).get("n"), tx.on(&b).get("n"));
                    tx.execute().unwrap();
                    let (x, y) = (x.get().unwrap(), y.get().unwrap());
                    assert_eq!(x + y, TOTAL, "{kind}: a transaction was seen half done");
                    reads += 1;
                }
                reads
            });
            let movers: Vec<_> = (0..2)
                .map(|t| {
                    let (a, b, redis) = (&a, &b, &redis);
                    s.spawn(move || {
                        for i in 0..300 {
                            let by = if (i + t) % 3 == 0 { -7 } else { 5 };
                            let tx = Batch::transaction(redis);
                            let from = tx.on(a).incr("n", -by);
                            let to = tx.on(b).incr("n", by);
                            tx.execute().unwrap();
                            from.get().unwrap();
                            to.get().unwrap();
                        }
                    })
                })
                .collect();
            // And one async mover, on aio twins.
            let async_mover = s.spawn(|| {
                let (a, b) = (a.to_async(), b.to_async());
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    for i in 0..300 {
                        let by = if i % 4 == 0 { 11 } else { -3 };
                        let tx = pottery::aio::Batch::transaction(&redis);
                        let from = tx.on(&a).incr("n", -by);
                        let to = tx.on(&b).incr("n", by);
                        tx.execute().await.unwrap();
                        from.get().unwrap();
                        to.get().unwrap();
                    }
                });
            });
            for m in movers {
                m.join().unwrap();
            }
            async_mover.join().unwrap();
            stop.store(true, Ordering::Relaxed);
            reader.join().unwrap()
        });
        assert!(reads > 10, "{kind}: the reader ran ({reads} reads)");
        assert_eq!(a.get("n").unwrap() + b.get("n").unwrap(), TOTAL, "{kind}");
        a.clear().unwrap();
        b.clear().unwrap();
    }
}

/// `SCRIPT FLUSH` on every node of a target.
fn flush_scripts(redis: &Redis) {
    let urls = if redis.is_cluster() {
        pottery::testing::shared_cluster().urls()
    } else {
        vec![pottery::testing::shared_server().url()]
    };
    for url in urls {
        let mut conn = redis::Client::open(url).unwrap().get_connection().unwrap();
        redis::cmd("SCRIPT").arg("FLUSH").exec(&mut conn).unwrap();
    }
}

#[test]
fn a_script_flush_between_batches_runs_each_operation_once() {
    for (kind, redis) in targets() {
        for transaction in [false, true] {
            let w = World::new(&redis, true);
            let bounded: RedisDeque<u32> =
                RedisDeque::with_maxlen(&redis, format!("{}:bounded", w.dict.key()), 2).unwrap();
            for round in 1..=3i64 {
                flush_scripts(&redis);
                let b = if transaction {
                    Batch::transaction(&redis)
                } else {
                    Batch::new(&redis)
                };
                // Scripts: hash_insert, counter_update, list_insert, deque_push, hll_contains.
                let old = b.on(&w.dict).insert("k".into(), round);
                b.on(&w.counter).update_counts([("n".to_string(), 1)]);
                b.on(&w.list).insert(0, round as u32);
                let len = b.on(&bounded).push_back(round as u32);
                let seen = b.on(&w.hll).contains("nothing");
                b.execute().unwrap();
                let want_old = (round > 1).then_some(round - 1);
                assert_eq!(old.get().unwrap(), want_old, "{kind} {transaction} {round}");
                assert_eq!(len.get().unwrap(), (round as usize).min(2));
                assert!(!seen.get().unwrap());
                assert_eq!(w.counter.get("n").unwrap(), round, "applied once");
                assert_eq!(w.list.len().unwrap(), round as usize, "applied once");
            }
            bounded.clear().unwrap();
            w.clear();
        }
    }
}

#[test]
fn errors_are_per_operation() {
    for (kind, redis) in targets() {
        for transaction in [false, true] {
            let base = unique_key("errors");
            let list_key = format!("{{{base}}}:list");
            let mut conn = redis.connection().unwrap();
            let _: () = conn.rpush(&list_key, "x").unwrap();
            let d: RedisDict<String, i64> = RedisDict::new(&redis, format!("{{{base}}}:dict"));
            let wrong: RedisDict<String, i64> = RedisDict::new(&redis, list_key.clone());
            let s: RedisSet<u32> = RedisSet::new(&redis, format!("{{{base}}}:set"));
            let _: () = conn.hset(d.key(), "\"bad\"", "not json").unwrap();
            let b = if transaction {
                Batch::transaction(&redis)
            } else {
                Batch::new(&redis)
            };
            let first = b.on(&d).insert("a".into(), 1);
            let wrongtype = b.on(&wrong).get("x");
            let wrong_write = b.on(&wrong).insert("x".into(), 1);
            let undecodable = b.on(&d).get("bad");
            let last = b.on(&s).insert(7);
            b.execute().unwrap();
            assert_eq!(first.get().unwrap(), None, "{kind} {transaction}");
            assert!(
                matches!(wrongtype.get(), Err(Error::WrongType { ref key, expected: "hash" }) if *key == list_key),
                "{kind} {transaction}"
            );
            assert!(matches!(wrong_write.get(), Err(Error::WrongType { .. })));
            assert!(matches!(undecodable.get(), Err(Error::Codec { .. })));
            assert!(last.get().unwrap());
            assert_eq!(d.get("a").unwrap(), Some(1), "applied");
            assert!(s.contains(&7).unwrap(), "applied");
            let _: () = conn.del(&list_key).unwrap();
            d.clear().unwrap();
            s.clear().unwrap();
        }
    }
}

#[test]
fn a_cluster_transaction_across_slots_sends_nothing() {
    let redis = pottery::testing::shared_cluster().redis();
    // `{a}` and `{b}` hash to slots 15495 and 3300.
    let a: RedisDict<String, i64> = RedisDict::new(&redis, format!("{{a}}:{}", unique_key("x")));
    let b: RedisDict<String, i64> = RedisDict::new(&redis, format!("{{b}}:{}", unique_key("x")));
    let tx = Batch::transaction(&redis);
    let x = tx.on(&a).insert("k".into(), 1);
    let y = tx.on(&b).insert("k".into(), 1);
    let err = tx.execute().unwrap_err();
    assert!(matches!(err, Error::CrossSlot { .. }), "{err}");
    assert!(matches!(x.get(), Err(Error::CrossSlot { .. })));
    assert!(matches!(y.get(), Err(Error::CrossSlot { .. })));
    assert_eq!(a.len().unwrap() + b.len().unwrap(), 0, "nothing was sent");
}

#[tokio::test]
async fn an_empty_batch_does_no_io() {
    // Nothing listens on port 1: any I/O would fail.
    let dead = Redis::builder("redis://127.0.0.1:1")
        .retry_timeout(std::time::Duration::ZERO)
        .build()
        .unwrap();
    let d: RedisDict<String, i64> = RedisDict::new(&dead, "k");
    let (blocking, answered) = tokio::task::spawn_blocking({
        let (dead, d) = (dead.clone(), d.clone());
        move || {
            Batch::new(&dead).execute().unwrap();
            Batch::transaction(&dead).execute().unwrap();
            // An operation answered without asking (an empty extend) needs no I/O either.
            let b = Batch::new(&dead);
            let nothing = b.on(&d).extend(Vec::new());
            assert!(b.is_empty() && nothing.is_ready());
            b.execute().unwrap();
            // And a real one fails with the connection.
            let b = Batch::new(&dead);
            let len = b.on(&d).len();
            let err = b.execute().unwrap_err();
            (nothing.get(), (err, len.get()))
        }
    })
    .await
    .unwrap();
    blocking.unwrap();
    let (err, len) = answered;
    assert!(matches!(err, Error::Redis { .. }), "{err}");
    assert!(matches!(len, Err(Error::Redis { .. })), "{len:?}");
    pottery::aio::Batch::new(&dead).execute().await.unwrap();
    pottery::aio::Batch::transaction(&dead)
        .execute()
        .await
        .unwrap();
    // A batch dropped unexecuted leaves its results NotExecuted.
    let ad = d.to_async();
    let b = pottery::aio::Batch::new(&dead);
    let len = b.on(&ad).len();
    drop(b);
    assert!(matches!(len.get(), Err(Error::NotExecuted { .. })));
}

#[test]
fn python_reads_what_a_batch_wrote() {
    let server = pottery::testing::shared_server();
    let redis = server.redis();
    let base = unique_key("batch-py");
    let d: RedisDict<String, Vec<f64>> = RedisDict::new(&redis, format!("{base}:dict"));
    let s: RedisSet<String> = RedisSet::new(&redis, format!("{base}:set"));
    let l: RedisList<serde_json::Value> = RedisList::new(&redis, format!("{base}:list"));
    let c: RedisCounter<String> = RedisCounter::new(&redis, format!("{base}:counter"));
    let tx = Batch::transaction(&redis);
    tx.on(&d).insert("héllo".into(), vec![1.5, -0.0]);
    tx.on(&s).extend(["a".to_string(), "日本".to_string()]);
    tx.on(&l).extend([
        serde_json::json!({"z": 1, "a": [true, null]}),
        serde_json::json!(2),
    ]);
    tx.on(&c)
        .update(["x".to_string(), "x".to_string(), "y".to_string()]);
    tx.execute().unwrap();
    let code = r#"
import json, os, sys
from redis import Redis
from pottery import RedisCounter, RedisDict, RedisList, RedisSet
redis = Redis.from_url(os.environ['REDIS_URL'])
base = sys.stdin.read()
d = RedisDict(redis=redis, key=base + ':dict').to_dict()
s = sorted(RedisSet(redis=redis, key=base + ':set'))
l = list(RedisList(redis=redis, key=base + ':list'))
c = dict(RedisCounter(redis=redis, key=base + ':counter'))
print(json.dumps([d, s, l, c], sort_keys=True, ensure_ascii=False))
"#;
    let out = run_python(code, &server.url(), &base);
    assert_eq!(
        out.trim(),
        r#"[{"héllo": [1.5, -0.0]}, ["a", "日本"], [{"a": [true, null], "z": 1}, 2], {"x": 2, "y": 1}]"#
    );
    d.clear().unwrap();
    s.clear().unwrap();
    l.clear().unwrap();
    c.clear().unwrap();
}

#[test]
fn a_structure_on_another_handle_is_refused() {
    let redis = pottery::testing::shared_server().redis();
    let other = pottery::testing::shared_cluster().redis();
    let d: RedisDict<String, i64> = RedisDict::new(&other, unique_key("elsewhere"));
    let b = Batch::new(&redis);
    let r = b.on(&d).insert("a".into(), 1);
    b.execute().unwrap();
    assert!(matches!(r.get(), Err(Error::Config { .. })));
    assert_eq!(d.len().unwrap(), 0);
}

/// Server reads so far (`total_reads_processed`), this INFO included.
fn reads(probe: &mut redis::Connection) -> u64 {
    let info: String = redis::cmd("INFO").arg("stats").query(probe).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("total_reads_processed:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

#[test]
fn a_batch_is_one_round_trip() {
    let server = pottery::testing::RedisServer::start().unwrap();
    let redis = server.redis();
    let mut probe = redis::Client::open(server.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let w = World::new(&redis, false);
    let aw = AioWorld::of(&w);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for round in 0..3 {
        for (transaction, blocking) in [(false, true), (true, true), (false, false), (true, false)]
        {
            let before = reads(&mut probe);
            let results = if blocking {
                let b = if transaction {
                    Batch::transaction(&redis)
                } else {
                    Batch::new(&redis)
                };
                let got = queue_mixed!(b, w);
                b.execute().unwrap();
                got
            } else {
                rt.block_on(async {
                    let b = if transaction {
                        pottery::aio::Batch::transaction(&redis)
                    } else {
                        pottery::aio::Batch::new(&redis)
                    };
                    let got = queue_mixed!(b, aw);
                    b.execute().await.unwrap();
                    got
                })
            };
            // The probe's INFO is one read; the batch (scripts loaded, 65 operations) is one
            // write the server may read in two chunks, and a first async call connects.
            let used = reads(&mut probe) - before - 1;
            let most = if round == 0 && !blocking && !transaction {
                4
            } else {
                2
            };
            assert!(
                (1..=most).contains(&used),
                "round {round}, transaction {transaction}, blocking {blocking}: {used} reads"
            );
            assert_eq!(results.len(), 65);
            results.into_iter().for_each(|f| drop(f()));
            w.clear();
        }
    }
}

#[test]
fn a_durable_batch_waits_once_for_its_writes() {
    // The shared server has no replica: writes are applied, but not durable.
    let server = pottery::testing::shared_server();
    let durable = Redis::builder(&server.url())
        .durable_writes(1, std::time::Duration::from_millis(50))
        .build()
        .unwrap();
    let d: RedisDict<String, i64> = RedisDict::new(&durable, unique_key("durable"));
    for transaction in [false, true] {
        let b = if transaction {
            Batch::transaction(&durable)
        } else {
            Batch::new(&durable)
        };
        let written = b.on(&d).set("a".into(), 1);
        let read = b.on(&d).get("a");
        b.execute().unwrap();
        assert!(
            matches!(
                written.get(),
                Err(Error::NotDurable {
                    acked: 0,
                    wanted: 1,
                    ..
                })
            ),
            "{transaction}"
        );
        assert_eq!(read.get().unwrap(), Some(1), "reads are not waited for");
        // A batch of reads sends no WAIT.
        let b = Batch::new(&durable);
        let read = b.on(&d).get("a");
        b.execute().unwrap();
        assert_eq!(read.get().unwrap(), Some(1));
    }
    d.clear().ok();
}

#[test]
fn a_broken_connection_fails_writes_that_must_not_repeat_as_maybe_applied() {
    use pottery::testing::{FaultyServer, Misbehaviour};
    let server = FaultyServer::start(Misbehaviour::Garbage).unwrap();
    let redis = Redis::builder(&server.url())
        .retry_timeout(std::time::Duration::from_millis(300))
        .response_timeout(Some(std::time::Duration::from_secs(2)))
        .build()
        .unwrap();
    let d: RedisDict<String, i64> = RedisDict::new(&redis, "k");
    // An insert must not be applied twice: not retried, and MaybeApplied.
    let b = Batch::new(&redis);
    let inserted = b.on(&d).insert("a".into(), 1);
    let read = b.on(&d).get("a");
    let err = b.execute().unwrap_err();
    assert!(matches!(err, Error::MaybeApplied { .. }), "{err}");
    assert!(matches!(inserted.get(), Err(Error::MaybeApplied { .. })));
    assert!(matches!(read.get(), Err(Error::Redis { .. })));
    // Reads and idempotent writes are retried (until the retry timeout), then fail plainly.
    let started = std::time::Instant::now();
    let b = Batch::new(&redis);
    let set = b.on(&d).set("a".into(), 1);
    let read = b.on(&d).get("a");
    let err = b.execute().unwrap_err();
    assert!(matches!(err, Error::Redis { .. }), "{err}");
    assert!(matches!(set.get(), Err(Error::Redis { .. })));
    assert!(matches!(read.get(), Err(Error::Redis { .. })));
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(100),
        "retried: {:?}",
        started.elapsed()
    );
}

/// `SCRIPT LOAD`s a server has run: one per distinct script per pipeline a batch sends.
fn script_loads(probe: &mut redis::Connection) -> u64 {
    let info: String = redis::cmd("INFO").arg("commandstats").query(probe).unwrap();
    pottery_tests::command_calls(&info, |l| {
        l.starts_with("cmdstat_script|load:") || l.starts_with("cmdstat_script:")
    })
}

/// A cluster of its own (3 masters), its handle, and a plain connection to each master.
fn cluster_with_probes() -> (
    pottery::testing::RedisCluster,
    Redis,
    Vec<redis::Connection>,
) {
    let cluster = pottery::testing::RedisCluster::start(3).unwrap();
    let redis = cluster.redis();
    let probes = pottery_tests::node_connections(&cluster.urls());
    (cluster, redis, probes)
}

#[test]
fn a_cluster_batch_is_one_pipeline_per_master() {
    let (_cluster, redis, mut probes) = cluster_with_probes();
    // 120 keys: about 120 slots, on all three masters.
    let dicts: Vec<RedisDict<String, i64>> = (0..120)
        .map(|i| RedisDict::new(&redis, unique_key(&format!("per-master-{i}"))))
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for round in 0..4i64 {
        let before: u64 = probes.iter_mut().map(script_loads).sum();
        let old: Vec<Pending<Option<i64>>> = if round % 2 == 0 {
            let b = Batch::new(&redis);
            let old = dicts
                .iter()
                .map(|d| b.on(d).insert("n".into(), round))
                .collect();
            b.execute().unwrap();
            old
        } else {
            rt.block_on(async {
                let b = pottery::aio::Batch::new(&redis);
                let old = dicts
                    .iter()
                    .map(|d| b.on(d).insert("n".into(), round))
                    .collect();
                b.execute().await.unwrap();
                old
            })
        };
        let want = (round > 0).then_some(round - 1);
        for p in old {
            assert_eq!(p.get().unwrap(), want, "round {round}");
        }
        // `insert` is a script: each pipeline loads it once.
        let loads = probes.iter_mut().map(script_loads).sum::<u64>() - before;
        assert_eq!(
            loads, 3,
            "round {round}: {loads} pipelines for 120 slots on 3 masters"
        );
    }
    for d in &dicts {
        assert_eq!(d.get("n").unwrap(), Some(3));
    }
}

/// The node ids of a cluster, the owner of `slot` first.
fn owner_first(probe: &mut redis::Connection, slot: u16) -> Vec<String> {
    let nodes: String = redis::cmd("CLUSTER").arg("NODES").query(probe).unwrap();
    let mut masters: Vec<(bool, String)> = nodes
        .lines()
        .filter(|l| l.contains("master"))
        .map(|l| {
            let parts: Vec<&str> = l.split_whitespace().collect();
            let owns = parts[8..].iter().any(|r| {
                let (a, b) = r.split_once('-').unwrap_or((r, r));
                matches!((a.parse::<u16>(), b.parse::<u16>()), (Ok(a), Ok(b)) if a <= slot && slot <= b)
            });
            (owns, parts[0].to_string())
        })
        .collect();
    masters.sort_by_key(|(owns, _)| !owns);
    masters.into_iter().map(|(_, id)| id).collect()
}

#[test]
fn a_cluster_batch_follows_a_slot_that_moved() {
    let (_cluster, redis, mut probes) = cluster_with_probes();
    let others: Vec<RedisDict<String, i64>> = (0..30)
        .map(|i| RedisDict::new(&redis, unique_key(&format!("still-{i}"))))
        .collect();
    let key = unique_key("moving");
    let moving: RedisDict<String, i64> = RedisDict::new(&redis, key.clone());
    // A batch reads the slot map.
    let b = Batch::new(&redis);
    for d in &others {
        b.on(d).set("n".into(), 1);
    }
    b.execute().unwrap();
    // Then the (empty) slot of `key` moves to another master, on every node.
    let slot: u16 = redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(&key)
        .query(&mut probes[0])
        .unwrap();
    let ids = owner_first(&mut probes[0], slot);
    let (old, new) = (ids[0].clone(), ids[1].clone());
    let mut order: Vec<usize> = Vec::new();
    for (i, p) in probes.iter_mut().enumerate() {
        let me: String = redis::cmd("CLUSTER").arg("MYID").query(p).unwrap();
        if me == new {
            order.insert(0, i);
        } else if me == old {
            order.push(i);
        } else {
            order.insert(order.len().min(1), i);
        }
    }
    for i in order {
        let _: () = redis::cmd("CLUSTER")
            .arg("SETSLOT")
            .arg(slot)
            .arg("NODE")
            .arg(&new)
            .query(&mut probes[i])
            .unwrap();
    }
    // The batch's map is stale: the old owner refuses (MOVED) and the operation goes again.
    let b = Batch::new(&redis);
    let first = b.on(&moving).insert("n".into(), 7);
    let rest: Vec<_> = others
        .iter()
        .map(|d| b.on(d).insert("n".into(), 2))
        .collect();
    b.execute().unwrap();
    assert_eq!(first.get().unwrap(), None);
    for p in rest {
        assert_eq!(p.get().unwrap(), Some(1));
    }
    assert_eq!(moving.get("n").unwrap(), Some(7));
    let mut owner = None;
    for p in probes.iter_mut() {
        let me: String = redis::cmd("CLUSTER").arg("MYID").query(p).unwrap();
        if me == new {
            owner = Some(p);
        }
    }
    let owner = owner.unwrap();
    let stored: Option<String> = redis::cmd("HGET")
        .arg(&key)
        .arg("\"n\"")
        .query(owner)
        .unwrap();
    assert_eq!(
        stored.as_deref(),
        Some("7"),
        "the value is on the slot's new master"
    );
}

#[tokio::test]
async fn a_batch_dropped_after_sending_says_its_writes_may_have_been_applied() {
    let server = pottery::testing::RedisServer::start().unwrap();
    let redis = server.redis();
    let counter: pottery::aio::RedisCounter<String> =
        pottery::aio::RedisCounter::new(&redis, "dropped:counter");
    let dict: pottery::aio::RedisDict<String, i64> =
        pottery::aio::RedisDict::new(&redis, "dropped:dict");
    assert_eq!(dict.len().await.unwrap(), 0, "connected");
    server.pause();
    let b = pottery::aio::Batch::new(&redis);
    let incr = b.on(&counter).incr("n", 1);
    let set = b.on(&dict).set("a".into(), 1);
    let get = b.on(&dict).get("a");
    let never = pottery::aio::Batch::new(&redis);
    let unsent = never.on(&counter).incr("n", 1);
    // The request is written, the server is stopped: the caller gives up and drops the future.
    let gave_up = tokio::time::timeout(std::time::Duration::from_millis(300), b.execute()).await;
    assert!(gave_up.is_err(), "the execute future was dropped mid-await");
    drop(never);
    server.resume();
    assert!(
        matches!(incr.get(), Err(Error::MaybeApplied { ref key, .. }) if key == "dropped:counter"),
        "a sent write that must not repeat"
    );
    assert!(
        matches!(set.get(), Err(Error::MaybeApplied { .. })),
        "a sent write"
    );
    assert!(
        matches!(get.get(), Err(Error::NotExecuted { .. })),
        "a read"
    );
    assert!(
        matches!(unsent.get(), Err(Error::NotExecuted { .. })),
        "never sent"
    );
    // And it was applied, once the server went on: "not executed" would have been a lie.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while counter.get("n").await.ok() != Some(1) && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(counter.get("n").await.unwrap(), 1);
    assert_eq!(dict.get("a").await.unwrap(), Some(1));
}
