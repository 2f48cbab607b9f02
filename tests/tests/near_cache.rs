//! The near cache (issue "A near cache: reads served from local memory, invalidated by the
//! server, never stale past one invalidation") against real servers: another client's writes
//! seen within one invalidation delivery, read-your-writes, versions that never go backwards,
//! the read/insert race, a killed tracking connection, FLUSHALL/FLUSHDB/SWAPDB, expiry,
//! DEL/UNLINK/RENAME, scripts and transactions from others, databases, the caps, and the
//! caches. `POTTERY_NEAR_WRITES=<n>` runs more writes in the long loops (default 2,000);
//! `POTTERY_NEAR_REDIRECT=1` runs every test against servers that refuse `HELLO` (the RESP2
//! `REDIRECT` mode).

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

/// A server for one test. With `POTTERY_NEAR_REDIRECT=1` it refuses `HELLO` (renamed away),
/// so the near cache runs in the RESP2 `REDIRECT` mode: every test here must pass in it too.
fn start() -> RedisServer {
    if std::env::var_os("POTTERY_NEAR_REDIRECT").is_some_and(|v| v != "0") {
        RedisServer::builder()
            .args(["--rename-command", "HELLO", ""])
            .start()
            .unwrap()
    } else {
        RedisServer::start().unwrap()
    }
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
    let server = start();
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

/// Thousands of writes by another client (raw redis-rs): after each acknowledged write, the
/// new value is read within a bound, no read ever returns a version older than one already
/// read, and no read that started after the write's invalidation arrived returns the old one.
#[test]
fn another_clients_writes_are_seen_within_one_invalidation() {
    let server = start();
    let redis = near(&server);
    let key = unique_key("near-other");
    let dict = RedisDict::<String, i64>::new(&redis, &key);
    let mut conn = raw(&server);
    hset(&mut conn, &key, "v", 0);
    assert!(seen(&dict, "v", Some(0)));
    let (mut stale_after_invalidation, mut reads) = (0u64, 0u64);
    for i in 1..=writes() {
        // The last blocking read's fill ended: the last write's invalidation was applied
        // (the read that saw it was answered by the server, not through the tracking
        // connection that brings the invalidation).
        assert!(pottery::testing::near_settled(&redis));
        let invalidations_at_write = stats(&redis).invalidations;
        hset(&mut conn, &key, "v", i as i64);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let invalidated = stats(&redis).invalidations > invalidations_at_write;
            let got = dict.get("v").unwrap().unwrap();
            reads += 1;
            assert!(
                got == i as i64 || got == i as i64 - 1,
                "write {i}: read {got}"
            );
            if got == i as i64 {
                break;
            }
            if invalidated {
                stale_after_invalidation += 1;
            }
            assert!(Instant::now() < deadline, "write {i} not seen within 5 s");
        }
    }
    assert_eq!(stale_after_invalidation, 0, "over {reads} reads");
    let s = stats(&redis);
    assert!(s.invalidations >= writes() / 2, "{s:?}");
}

/// The same through the async API, with 8 tasks reading while the writes go on.
#[test]
fn async_readers_never_go_backwards() {
    let server = start();
    let redis = near(&server);
    let key = unique_key("near-async");
    let mut conn = raw(&server);
    hset(&mut conn, &key, "v", 0);
    let n = writes() as i64 / 2;
    let done = Arc::new(AtomicBool::new(false));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let readers: Vec<_> = (0..8)
        .map(|_| {
            let dict = aio::RedisDict::<String, i64>::new(&redis, &key);
            let done = Arc::clone(&done);
            rt.spawn(async move {
                let (mut last, mut reads) = (0, 0u64);
                while !done.load(Ordering::Acquire) || last < n {
                    let got = dict.get("v").await.unwrap().unwrap();
                    assert!(got >= last, "went back from {last} to {got}");
                    last = got;
                    reads += 1;
                    tokio::task::yield_now().await;
                }
                reads
            })
        })
        .collect();
    for i in 1..=n {
        hset(&mut conn, &key, "v", i);
    }
    done.store(true, Ordering::Release);
    let reads: u64 = rt.block_on(async {
        let mut total = 0;
        for r in readers {
            total += tokio::time::timeout(Duration::from_secs(10), r)
                .await
                .expect("readers see the last write within 10 s")
                .unwrap();
        }
        total
    });
    assert!(reads >= 8);
}

/// Another client's write of two fields together, `a` and `b`, to version `i` (one `HSET`).
fn hset_pair(conn: &mut redis::Connection, key: &str, i: i64) {
    redis::cmd("HSET")
        .arg(key)
        .arg("\"a\"")
        .arg(i)
        .arg("\"b\"")
        .arg(i)
        .exec(conn)
        .unwrap();
}

/// A reader's checks of `a`, `b`, then `a` again, read while [`hset_pair`] writes: none older
/// than the one read before it, no field going backwards, the last version seen in time.
struct PairReads {
    last_a: i64,
    last_b: i64,
    deadline: Instant,
}

impl PairReads {
    fn new() -> PairReads {
        PairReads {
            last_a: 0,
            last_b: 0,
            deadline: Instant::now() + Duration::from_secs(60),
        }
    }

    /// Whether to read again: until the writer is `done` and version `n` was seen.
    fn more(&self, done: &AtomicBool, n: i64) -> bool {
        !done.load(Ordering::Acquire) || self.last_b < n
    }

    fn check(&mut self, a: i64, b: i64, again: i64) {
        let (last_a, last_b) = (self.last_a, self.last_b);
        assert!(
            a >= last_a && b >= last_b,
            "went back: {last_a}/{last_b} to {a}/{b}"
        );
        assert!(b >= a, "b {b} older than the a {a} read before it");
        assert!(again >= b, "a {again} older than the b {b} read before it");
        (self.last_a, self.last_b) = (again, b);
        assert!(Instant::now() < self.deadline, "stuck at {a}/{b}");
    }
}

/// On a current-thread runtime an async miss is read on the handle's own connection and
/// filled behind it, as a blocking one is: 4 tasks on such a runtime, reading `a`, `b`, then
/// `a` again while another client writes both fields together, never read a field older than
/// the one read before it, nor go backwards.
#[test]
fn async_misses_on_a_current_thread_runtime_never_go_back() {
    let server = start();
    let redis = near(&server);
    let key = unique_key("near-pair-ct");
    let mut conn = raw(&server);
    hset_pair(&mut conn, &key, 0);
    let n = writes() as i64 / 2;
    let done = AtomicBool::new(false);
    let misses_before = stats(&redis).misses;
    std::thread::scope(|s| {
        let (redis, key, done) = (&redis, &key, &done);
        s.spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let tasks = (0..4).map(|_| async {
                    let dict = aio::RedisDict::<String, i64>::new(redis, key);
                    let mut reads = PairReads::new();
                    while reads.more(done, n) {
                        let a = dict.get("a").await.unwrap().unwrap();
                        let b = dict.get("b").await.unwrap().unwrap();
                        let again = dict.get("a").await.unwrap().unwrap();
                        reads.check(a, b, again);
                        tokio::task::yield_now().await;
                    }
                });
                futures_util::future::join_all(tasks).await;
            });
        });
        for i in 1..=n {
            hset_pair(&mut conn, key, i);
        }
        done.store(true, Ordering::Release);
    });
    assert!(stats(&redis).misses > misses_before);
}

/// A racing writer and 4 reader threads: each reader's versions never go backwards, and all
/// see the last one.
#[test]
fn racing_writer_versions_never_go_backwards() {
    let server = start();
    let redis = near(&server);
    let key = unique_key("near-race");
    let mut conn = raw(&server);
    hset(&mut conn, &key, "v", 0);
    let n = writes() as i64;
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let dict = RedisDict::<String, i64>::new(&redis, &key);
            let done = Arc::clone(&done);
            std::thread::spawn(move || {
                let mut last = 0;
                let deadline = Instant::now() + Duration::from_secs(60);
                while !done.load(Ordering::Acquire) || last < n {
                    let got = dict.get("v").unwrap().unwrap();
                    assert!(got >= last, "went back from {last} to {got}");
                    last = got;
                    assert!(Instant::now() < deadline, "stuck at {last}");
                }
            })
        })
        .collect();
    for i in 1..=n {
        hset(&mut conn, &key, "v", i);
    }
    done.store(true, Ordering::Release);
    for r in readers {
        r.join().unwrap();
    }
}

/// A blocking miss is answered on a pooled connection while the cache is filled behind it
/// (on the tracking connection): a thread given a version of a hash that way is never
/// answered an older one of the same hash from the cache afterwards. Another client writes
/// two fields together (one `HSET`); each of 2 reader threads reads `a`, `b`, then `a`
/// again: none is older than the one read before it, and neither field ever goes backwards.
#[test]
fn a_blocking_miss_never_takes_its_thread_back() {
    let server = start();
    let redis = near(&server);
    let key = unique_key("near-pair");
    let mut conn = raw(&server);
    hset_pair(&mut conn, &key, 0);
    let n = writes() as i64;
    let done = AtomicBool::new(false);
    let misses_before = stats(&redis).misses;
    std::thread::scope(|s| {
        for _ in 0..2 {
            let dict = RedisDict::<String, i64>::new(&redis, &key);
            let done = &done;
            s.spawn(move || {
                let mut reads = PairReads::new();
                while reads.more(done, n) {
                    let a = dict.get("a").unwrap().unwrap();
                    let b = dict.get("b").unwrap().unwrap();
                    let again = dict.get("a").unwrap().unwrap();
                    reads.check(a, b, again);
                }
            });
        }
        for i in 1..=n {
            hset_pair(&mut conn, &key, i);
        }
        done.store(true, Ordering::Release);
    });
    // The readers went to the server (misses: each write invalidates both fields).
    assert!(stats(&redis).misses > misses_before);
}

/// Read-your-writes from 4 threads, each on its own field, while another client rewrites
/// other fields of the same hash (each of its writes invalidating the whole hash).
#[test]
fn read_your_writes_from_four_threads() {
    let server = start();
    let redis = near(&server);
    let key = unique_key("near-ryw");
    let stop = Arc::new(AtomicBool::new(false));
    let other = {
        let mut conn = raw(&server);
        let (key, stop) = (key.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Acquire) {
                hset(&mut conn, &key, &format!("other{}", i % 7), i);
                i += 1;
            }
            i
        })
    };
    let checked = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let dict = RedisDict::<String, i64>::new(&redis, &key);
            let checked = Arc::clone(&checked);
            std::thread::spawn(move || {
                let field = format!("mine{t}");
                for i in 0..writes() as i64 / 4 {
                    dict.insert(field.clone(), i).unwrap();
                    assert_eq!(dict.get(&field).unwrap(), Some(i), "thread {t}");
                    assert_eq!(dict.get(&field).unwrap(), Some(i), "thread {t}, again");
                    checked.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    stop.store(true, Ordering::Release);
    assert!(other.join().unwrap() > 0);
    assert_eq!(checked.load(Ordering::Relaxed), writes() / 4 * 4);
}

/// A write by another client lands between a read's reply and its insertion (the fill hook):
/// the reply is not kept past the write's invalidation.
#[test]
fn a_write_between_reply_and_insert_is_not_lost() {
    let server = start();
    let redis = near(&server);
    let key = unique_key("near-inject");
    let mut conn = raw(&server);
    hset(&mut conn, &key, "v", 1);
    let injected = Arc::new(AtomicU64::new(0));
    {
        let (key, injected, url) = (key.clone(), Arc::clone(&injected), server.url());
        pottery::testing::near_hook::set_fill_hook(Some(Arc::new(move |k: &[u8]| {
            if k == key.as_bytes() && injected.load(Ordering::SeqCst) == 0 {
                injected.store(1, Ordering::SeqCst);
                let mut c = redis::Client::open(url.as_str())
                    .unwrap()
                    .get_connection()
                    .unwrap();
                hset(&mut c, &key, "v", 2);
            }
        })));
    }
    let dict = RedisDict::<String, i64>::new(&redis, &key);
    // This read began before the write: either value is right for it.
    let first = dict.get("v").unwrap();
    assert!(matches!(first, Some(1) | Some(2)), "{first:?}");
    // The fill of a blocking read runs behind it.
    assert!(poll(5, || injected.load(Ordering::SeqCst) == 1));
    assert!(seen(&dict, "v", Some(2)));
    for _ in 0..100 {
        assert_eq!(dict.get("v").unwrap(), Some(2));
    }
    pottery::testing::near_hook::set_fill_hook(None);
}

/// The id of the tracking connection (`flags=t`).
fn tracking_client(conn: &mut redis::Connection) -> Option<String> {
    let list: String = redis::cmd("CLIENT").arg("LIST").query(conn).unwrap();
    list.lines()
        .find(|l| {
            l.split(' ')
                .any(|f| f.starts_with("flags=") && f[6..].contains('t'))
        })
        .and_then(|l| l.split(' ').find_map(|f| f.strip_prefix("id=")))
        .map(str::to_owned)
}

/// CLIENT KILL of the tracking connection, then a write: the cache is flushed, the write is
/// seen, and a new tracking connection takes over.
#[test]
fn a_killed_tracking_connection_flushes() {
    let server = start();
    let redis = near(&server);
    let key = unique_key("near-kill");
    let dict = RedisDict::<String, i64>::new(&redis, &key);
    let mut conn = raw(&server);
    hset(&mut conn, &key, "v", 1);
    assert!(seen(&dict, "v", Some(1)));
    // A blocking read's fill (which opens the tracking connection) runs behind it.
    let mut id = None;
    assert!(poll(5, || {
        id = tracking_client(&mut conn);
        id.is_some()
    }));
    let id = id.expect("a tracking connection");
    let flushes = stats(&redis).flushes;
    redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(&id)
        .exec(&mut conn)
        .unwrap();
    hset(&mut conn, &key, "v", 2);
    assert!(seen(&dict, "v", Some(2)));
    assert!(poll(5, || stats(&redis).flushes > flushes));
    // Tracking again: cached again, and fresh again.
    assert!(poll(5, || {
        dict.get("v").unwrap();
        tracking_client(&mut conn).is_some_and(|new| new != id)
    }));
    let hits = stats(&redis).hits;
    assert!(poll(5, || {
        dict.get("v").unwrap();
        stats(&redis).hits > hits
    }));
    hset(&mut conn, &key, "v", 3);
    assert!(seen(&dict, "v", Some(3)));
    assert!(stats(&redis).connections >= 2);
}

/// FLUSHALL, FLUSHDB and SWAPDB from another client (null invalidations).
#[test]
fn flushall_flushdb_swapdb() {
    let server = start();
    let redis = near(&server);
    let key = unique_key("near-flush");
    let dict = RedisDict::<String, i64>::new(&redis, &key);
    let mut conn = raw(&server);
    for command in ["FLUSHALL", "FLUSHDB"] {
        hset(&mut conn, &key, "v", 1);
        assert!(seen(&dict, "v", Some(1)));
        redis::cmd(command).exec(&mut conn).unwrap();
        assert!(seen(&dict, "v", None), "{command}");
    }
    // SWAPDB: db 0 gets db 1's version of the key.
    hset(&mut conn, &key, "v", 1);
    assert!(seen(&dict, "v", Some(1)));
    redis::cmd("SELECT").arg(1).exec(&mut conn).unwrap();
    hset(&mut conn, &key, "v", 100);
    redis::cmd("SWAPDB").arg(0).arg(1).exec(&mut conn).unwrap();
    assert!(seen(&dict, "v", Some(100)));
    // A FLUSHDB on one of the handle's own pooled connections (not through a plan): the
    // server's null invalidation flushes.
    let flushes = stats(&redis).flushes;
    let mut flush = redis.connection().unwrap();
    redis::cmd("FLUSHDB").exec(&mut flush).unwrap();
    assert!(seen(&dict, "v", None));
    assert!(stats(&redis).flushes > flushes);
}

/// A key with a time to live is never served past it, even before the server deletes it.
#[test]
fn expiry_is_never_served_past() {
    let server = start();
    let redis = near(&server);
    let key = unique_key("near-expiry");
    let dict = RedisDict::<String, i64>::new(&redis, &key);
    let mut conn = raw(&server);
    // Active expiry off: only the deadline read with each fill (or a lazy delete) ends it.
    redis::cmd("DEBUG")
        .arg("SET-ACTIVE-EXPIRE")
        .arg(0)
        .exec(&mut conn)
        .ok();
    for round in 0..5 {
        hset(&mut conn, &key, "v", round);
        assert!(seen(&dict, "v", Some(round)));
        redis::cmd("PEXPIRE")
            .arg(&key)
            .arg(200)
            .exec(&mut conn)
            .unwrap();
        // The server counts whole milliseconds (a key lives through its last one): 2 ms more.
        let deadline = Instant::now() + Duration::from_millis(202);
        let mut after = 0;
        while after < 50 {
            let started = Instant::now();
            let got = dict.get("v").unwrap();
            if started >= deadline {
                if got.is_some() {
                    let pttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut conn).unwrap();
                    let again = dict.get("v").unwrap();
                    panic!(
                        "round {round}: read past the key's expiry: {:?} late {:?} pttl {pttl} again {again:?}",
                        stats(&redis),
                        started - deadline
                    );
                }
                after += 1;
            }
            assert!(started < deadline + Duration::from_secs(5));
        }
    }
}

/// DEL, UNLINK and RENAME (both keys), scripts and MULTI/EXEC from another client.
#[test]
fn deletes_renames_scripts_and_transactions_invalidate() {
    let server = start();
    let redis = near(&server);
    let (key, other) = (unique_key("near-del"), unique_key("near-del-other"));
    let dict = RedisDict::<String, i64>::new(&redis, &key);
    let renamed = RedisDict::<String, i64>::new(&redis, &other);
    let mut conn = raw(&server);
    for command in ["DEL", "UNLINK"] {
        hset(&mut conn, &key, "v", 1);
        assert!(seen(&dict, "v", Some(1)));
        redis::cmd(command).arg(&key).exec(&mut conn).unwrap();
        assert!(seen(&dict, "v", None), "{command}");
    }
    hset(&mut conn, &key, "v", 1);
    hset(&mut conn, &other, "v", 2);
    assert!(seen(&dict, "v", Some(1)));
    assert!(seen(&renamed, "v", Some(2)));
    redis::cmd("RENAME")
        .arg(&key)
        .arg(&other)
        .exec(&mut conn)
        .unwrap();
    assert!(seen(&dict, "v", None));
    assert!(seen(&renamed, "v", Some(1)));
    redis::cmd("EVAL")
        .arg("redis.call('HSET', KEYS[1], '\"v\"', ARGV[1])")
        .arg(1)
        .arg(&other)
        .arg(7)
        .exec(&mut conn)
        .unwrap();
    assert!(seen(&renamed, "v", Some(7)));
    redis::pipe()
        .atomic()
        .cmd("HSET")
        .arg(&other)
        .arg("\"v\"")
        .arg(8)
        .cmd("HSET")
        .arg(&other)
        .arg("\"w\"")
        .arg(9)
        .exec(&mut conn)
        .unwrap();
    assert!(seen(&renamed, "v", Some(8)));
    assert_eq!(renamed.get("w").unwrap(), Some(9));
}

/// The same key name in two databases: each handle reads its own, and a write in one does
/// not leak into the other.
#[test]
fn the_database_is_part_of_the_key() {
    let server = start();
    let key = unique_key("near-db");
    let db0 = near(&server);
    let db1 = Redis::builder(&server.url().replacen("/0", "/1", 1))
        .near_cache(NearCache::new())
        .build()
        .unwrap();
    let d0 = RedisDict::<String, i64>::new(&db0, &key);
    let d1 = RedisDict::<String, i64>::new(&db1, &key);
    d0.insert("v".into(), 0).unwrap();
    d1.insert("v".into(), 1).unwrap();
    for _ in 0..10 {
        assert_eq!(d0.get("v").unwrap(), Some(0));
        assert_eq!(d1.get("v").unwrap(), Some(1));
    }
    let mut conn = raw(&server);
    redis::cmd("SELECT").arg(1).exec(&mut conn).unwrap();
    hset(&mut conn, &key, "v", 11);
    assert!(seen(&d1, "v", Some(11)));
    assert_eq!(d0.get("v").unwrap(), Some(0));
}

/// The caps: entries never exceed max_entries, bytes stay under max_bytes.
#[test]
fn entries_and_bytes_are_capped() {
    let server = start();
    let redis = near_with(&server, NearCache::new().max_entries(10));
    let key = unique_key("near-cap");
    let dict = RedisDict::<String, i64>::new(&redis, &key);
    for i in 0..200 {
        dict.insert(format!("f{i}"), i).unwrap();
    }
    for round in 0..3 {
        for i in 0..200 {
            assert_eq!(
                dict.get(&format!("f{i}")).unwrap(),
                Some(i),
                "round {round}"
            );
            assert!(stats(&redis).entries <= 10);
        }
    }
    assert!(stats(&redis).evictions > 0);
    let small = near_with(&server, NearCache::new().max_bytes(4096));
    let big = RedisDict::<String, String>::new(&small, unique_key("near-bytes"));
    for i in 0..50 {
        big.insert(format!("f{i}"), "x".repeat(500)).unwrap();
        assert_eq!(
            big.get(&format!("f{i}")).unwrap().map(|s| s.len()),
            Some(500)
        );
        let s = stats(&small);
        assert!(s.bytes <= 4096, "{s:?}");
    }
    // A reply larger than the cap is not cached, and still read right.
    big.insert("huge".into(), "y".repeat(10_000)).unwrap();
    for _ in 0..3 {
        assert_eq!(big.get("huge").unwrap().map(|s| s.len()), Some(10_000));
    }
    assert!(stats(&small).bytes <= 4096);
}

/// Sets, snapshots and get_many read through the near cache, and stay fresh.
#[test]
fn sets_and_snapshots() {
    let server = start();
    let redis = near(&server);
    let key = unique_key("near-set");
    let set = RedisSet::<String>::new(&redis, &key);
    set.insert("a".into()).unwrap();
    let hits = stats(&redis).hits;
    for _ in 0..10 {
        assert!(set.contains("a").unwrap());
        assert_eq!(set.len().unwrap(), 1);
        assert_eq!(set.to_hash_set().unwrap().len(), 1);
    }
    assert!(stats(&redis).hits >= hits + 25);
    let mut conn = raw(&server);
    redis::cmd("SADD")
        .arg(&key)
        .arg("\"b\"")
        .exec(&mut conn)
        .unwrap();
    assert!(poll(5, || set.contains("b").unwrap()));
    assert_eq!(set.len().unwrap(), 2);
    let dict = RedisDict::<String, i64>::new(&redis, unique_key("near-snap"));
    dict.insert("a".into(), 1).unwrap();
    dict.insert("b".into(), 2).unwrap();
    for _ in 0..5 {
        assert_eq!(dict.to_hash_map().unwrap().len(), 2);
        assert_eq!(
            dict.get_many(["a", "b", "c"]).unwrap(),
            [Some(1), Some(2), None]
        );
    }
}

/// A RedisCache on a near-cached handle: lookups from memory, and local hits keep the sliding
/// expiry alive (a background PEXPIRE at most once per tenth of the timeout).
#[test]
fn redis_cache_hits_keep_the_sliding_expiry() {
    let server = start();
    let redis = near(&server);
    let key = unique_key("near-cache");
    let cache = RedisCache::new(&redis, &key).timeout(Some(Duration::from_millis(600)));
    let calls = AtomicU64::new(0);
    let compute = || {
        calls.fetch_add(1, Ordering::SeqCst);
        42u64
    };
    assert_eq!(cache.get_or_compute(&(1,), compute).unwrap(), 42);
    let hits = stats(&redis).hits;
    // Lookups for three timeouts: the entry must survive them.
    let until = Instant::now() + Duration::from_millis(1800);
    while Instant::now() < until {
        assert_eq!(cache.get_or_compute(&(1,), compute).unwrap(), 42);
        std::thread::sleep(Duration::from_millis(5)); // pacing the workload, not waiting
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the entry expired under local hits"
    );
    assert!(stats(&redis).hits > hits + 50);
    let mut conn = raw(&server);
    let pttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut conn).unwrap();
    assert!(pttl > 0, "{pttl}");
    // Per-entry ttl: never served past the deadline.
    let ttl = RedisCache::new(&redis, unique_key("near-ttl")).ttl(Some(Duration::from_millis(150)));
    assert_eq!(ttl.get_or_compute(&(1,), || 1u64).unwrap(), 1);
    // Stored before now: its deadline is at most 150 ms (and the server's millisecond) away.
    let stored = Instant::now();
    loop {
        let started = Instant::now();
        let got = ttl.get_or_compute(&(1,), || 2u64).unwrap();
        if started > stored + Duration::from_millis(152) {
            assert_eq!(got, 2, "served past its ttl");
            break;
        }
    }
}

/// A Python pottery RedisDict writer: a reader here never goes backwards and sees its last
/// write.
#[test]
fn python_writer() {
    let server = start();
    let redis = near(&server);
    let key = unique_key("near-python");
    let dict = RedisDict::<String, i64>::new(&redis, &key);
    let n = 300;
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (dict, done) = (dict.clone(), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut last = -1;
            while !done.load(Ordering::Acquire) {
                let got = dict.get("v").unwrap().unwrap_or(-1);
                assert!(got >= last, "went back from {last} to {got}");
                last = got;
            }
        })
    };
    pottery_tests::run_python(
        &format!(
            "from pottery import RedisDict\nfrom redis import Redis\nimport os\n\
             d = RedisDict(redis=Redis.from_url(os.environ['REDIS_URL']), key={key:?})\n\
             for i in range({n}):\n    d['v'] = i\n"
        ),
        &server.url(),
        "",
    );
    done.store(true, Ordering::Release);
    reader.join().unwrap();
    assert!(seen(&dict, "v", Some(n - 1)));
}

/// Cluster and Sentinel handles take a near cache (no I/O at build time; see
/// `near_cache_topology.rs` for them against real servers).
#[test]
fn cluster_and_sentinel_take_one() {
    let cluster = Redis::cluster_builder(["redis://127.0.0.1:1"])
        .near_cache(NearCache::new())
        .build()
        .unwrap();
    assert_eq!(cluster.near_cache_stats().map(|s| s.entries), Some(0));
    let sentinel = Redis::sentinel_builder(["redis://127.0.0.1:1"], "m")
        .near_cache(NearCache::new())
        .build()
        .unwrap();
    assert_eq!(sentinel.near_cache_stats().map(|s| s.entries), Some(0));
}

/// A CachedOrderedDict and #[derive(RedisBacked)] on a near-cached handle: loads from memory,
/// and fresh after another client's write.
#[test]
fn cached_ordered_dict_and_backed_records() {
    use pottery::{CachedOrderedDict, RedisBacked};

    #[derive(RedisBacked, Debug, Clone, PartialEq)]
    #[redis(key = "near-user:{id}")]
    struct User {
        id: u64,
        name: String,
    }

    let server = start();
    let redis = near(&server);
    let key = unique_key("near-cod");
    let mut first: CachedOrderedDict<u32, u64> =
        CachedOrderedDict::new(&redis, &key, 0..5).unwrap();
    for n in first.misses() {
        first.insert(n, u64::from(n) * 10).unwrap();
    }
    let hits = stats(&redis).hits;
    for _ in 0..5 {
        let again: CachedOrderedDict<u32, u64> =
            CachedOrderedDict::new(&redis, &key, 0..5).unwrap();
        assert!(again.misses().is_empty());
        assert_eq!(
            again.values().copied().collect::<Vec<_>>(),
            [0, 10, 20, 30, 40]
        );
    }
    assert!(stats(&redis).hits > hits);
    let mut conn = raw(&server);
    redis::cmd("HDEL")
        .arg(&key)
        .arg("3")
        .exec(&mut conn)
        .unwrap();
    assert!(poll(5, || {
        let d: CachedOrderedDict<u32, u64> = CachedOrderedDict::new(&redis, &key, 0..5).unwrap();
        d.misses() == [3]
    }));

    let user = User {
        id: 7,
        name: "ada".into(),
    };
    let ukey = unique_key("near-user");
    user.save(&redis, &ukey).unwrap();
    assert_eq!(User::load(&redis, &ukey).unwrap().as_ref(), Some(&user));
    let hits = stats(&redis).hits;
    assert_eq!(User::load(&redis, &ukey).unwrap().as_ref(), Some(&user));
    assert!(stats(&redis).hits > hits, "a load from memory");
    redis::cmd("HSET")
        .arg(&ukey)
        .arg("\"name\"")
        .arg("\"grace\"")
        .exec(&mut conn)
        .unwrap();
    assert!(poll(5, || User::load(&redis, &ukey)
        .unwrap()
        .is_some_and(|u| u.name == "grace")));
}

/// A tracking connection that stops answering (the server paused past the heartbeat's
/// bound) is given up: everything is flushed, and reads are fresh after the server is back.
#[test]
fn an_unanswered_heartbeat_flushes() {
    let server = start();
    let redis = near(&server);
    let key = unique_key("near-heartbeat");
    let dict = RedisDict::<String, i64>::new(&redis, &key);
    dict.insert("v".into(), 1).unwrap();
    assert_eq!(dict.get("v").unwrap(), Some(1));
    // Filled behind the blocking read.
    assert!(poll(5, || stats(&redis).entries == 1));
    let flushes = stats(&redis).flushes;
    server.pause();
    let flushed = poll(10, || stats(&redis).flushes > flushes);
    server.resume();
    assert!(flushed, "no flush while the server did not answer");
    assert_eq!(stats(&redis).entries, 0);
    let mut conn = raw(&server);
    hset(&mut conn, &key, "v", 2);
    assert!(seen(&dict, "v", Some(2)));
}

/// `max_age`: an entry is not served longer than that after the read that filled it.
#[test]
fn max_age_caps_an_entry() {
    let server = start();
    let redis = near_with(&server, NearCache::new().max_age(Duration::from_millis(50)));
    let dict = RedisDict::<String, i64>::new(&redis, unique_key("near-age"));
    dict.insert("v".into(), 1).unwrap();
    let filled = Instant::now();
    assert_eq!(dict.get("v").unwrap(), Some(1));
    // Served from memory until the age is reached, then read from the server again.
    let misses = stats(&redis).misses;
    assert!(poll(5, || {
        dict.get("v").unwrap();
        stats(&redis).misses > misses
    }));
    assert!(filled.elapsed() >= Duration::from_millis(50));
}

/// `RedisCache::remove` (what the `_invalidate` companions of `#[redis_cache]` call) reaches this
/// handle's local copy at once (the write invalidates locally before it is sent), and another
/// handle's removal reaches it through the server's invalidation: the next call computes.
#[test]
fn cache_invalidation_reaches_the_local_copy() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let server = start();
    let redis = near(&server);
    let cache = pottery::RedisCache::new(&redis, "near:products");
    let computed = AtomicU64::new(0);
    let price = |sku: u64| {
        cache
            .get_or_compute(&(sku,), || {
                computed.fetch_add(1, Ordering::SeqCst);
                sku * 100
            })
            .unwrap()
    };
    // Computed and stored; then read from the server (which fills the local copy, and may be
    // invalidated once by the sliding expiry's background refresh); then served locally.
    let hits = stats(&redis).hits;
    assert!(
        pottery_tests::poll(5, || {
            assert_eq!(price(7), 700);
            stats(&redis).hits > hits
        }),
        "a lookup was served locally"
    );
    assert_eq!(computed.load(Ordering::SeqCst), 1);
    // Removed through this handle: the next call computes again.
    assert!(cache.remove(&(7u64,)).unwrap());
    assert_eq!(price(7), 700);
    assert_eq!(computed.load(Ordering::SeqCst), 2);
    // Removed through another (plain) handle: seen within one invalidation.
    let other = pottery::RedisCache::new(&server.redis(), "near:products");
    assert!(other.remove(&(7u64,)).unwrap());
    assert!(
        pottery_tests::poll(5, || {
            price(7);
            computed.load(Ordering::SeqCst) == 3
        }),
        "another handle's removal reached the local copy"
    );
}

/// `RedisDict::get` looks in the near cache before it builds its command: its hits give what
/// the server's reply gives (a value, an absent field, bytes that are not pottery JSON as a
/// codec error naming the key), blocking and async, from threads and tasks at once; and a
/// batch does not look (a read queued after a write in the same batch sees the write).
#[test]
fn dict_get_hits_give_what_the_server_gives() {
    let server = start();
    let redis = near(&server);
    let key = unique_key("near-probe");
    let dict = RedisDict::<String, i64>::new(&redis, &key);
    dict.insert("a".into(), 1).unwrap();
    let mut conn = raw(&server);
    redis::cmd("HSET")
        .arg(&key)
        .arg("\"bad\"")
        .arg("not json")
        .exec(&mut conn)
        .unwrap();
    for _ in 0..3 {
        assert_eq!(dict.get("a").unwrap(), Some(1));
        assert_eq!(dict.get("none").unwrap(), None);
        match dict.get("bad") {
            Err(pottery::Error::Codec { key: k, .. }) => assert_eq!(k, key),
            other => panic!("{other:?}"),
        }
    }
    let hits = stats(&redis).hits;
    assert!(hits >= 6, "{:?}", stats(&redis));
    // Threads and tasks on one handle.
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..1000 {
                    assert_eq!(dict.get("a").unwrap(), Some(1));
                }
            });
        }
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let adict = Arc::new(dict.to_async());
    rt.block_on(async {
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let d = Arc::clone(&adict);
                tokio::spawn(async move {
                    for _ in 0..100 {
                        assert_eq!(d.get("a").await.unwrap(), Some(1));
                        assert_eq!(d.get("none").await.unwrap(), None);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    assert!(
        stats(&redis).hits >= hits + 4000 + 12_000,
        "{:?}",
        stats(&redis)
    );
    // Another client's write is still seen; our own at once.
    hset(&mut conn, &key, "a", 2);
    assert!(seen(&dict, "a", Some(2)));
    dict.set("a".into(), 3).unwrap();
    assert_eq!(dict.get("a").unwrap(), Some(3));
    // A batch reads on the server, after its own write.
    let batch = pottery::Batch::new(&redis);
    batch.on(&dict).set("a".into(), 4);
    let got = batch.on(&dict).get("a");
    batch.execute().unwrap();
    assert_eq!(got.get().unwrap(), Some(4));
    assert_eq!(dict.get("a").unwrap(), Some(4));
}

/// `RedisDict::contains_key` and `RedisSet::contains` look in the near cache before they build
/// their command too: hits answer as the server does, and writes are seen.
#[test]
fn membership_hits_give_what_the_server_gives() {
    let server = start();
    let redis = near(&server);
    let dict = RedisDict::<String, i64>::new(&redis, unique_key("near-probe-hexists"));
    let set = RedisSet::<String>::new(&redis, unique_key("near-probe-sismember"));
    dict.insert("a".into(), 1).unwrap();
    set.insert("a".into()).unwrap();
    let hits = stats(&redis).hits;
    for _ in 0..3 {
        assert!(dict.contains_key("a").unwrap());
        assert!(!dict.contains_key("b").unwrap());
        assert!(set.contains("a").unwrap());
        assert!(!set.contains("b").unwrap());
    }
    assert!(stats(&redis).hits >= hits + 8, "{:?}", stats(&redis));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (adict, aset) = (dict.to_async(), set.to_async());
    rt.block_on(async {
        assert!(adict.contains_key("a").await.unwrap());
        assert!(!aset.contains("b").await.unwrap());
    });
    // Another client's writes are seen.
    let mut conn = raw(&server);
    hset(&mut conn, dict.key(), "b", 2);
    redis::cmd("SADD")
        .arg(set.key())
        .arg("\"b\"")
        .exec(&mut conn)
        .unwrap();
    assert!(poll(5, || dict.contains_key("b").unwrap()));
    assert!(poll(5, || set.contains("b").unwrap()));
    // Our own at once.
    dict.remove("a").unwrap();
    set.remove("a").unwrap();
    assert!(!dict.contains_key("a").unwrap());
    assert!(!set.contains("a").unwrap());
}

/// Fields that look alike never share a near-cached reply: a string and an integer of the
/// same digits (`"1"` and `1`), strings that differ only in their escaping (`a"b`, `a\b`),
/// plain and escaped strings, keys that are prefixes of each other (or end in a quote); and
/// every hit gives what the server gives (values of every JSON shape, small integers
/// included), blocking and async.
#[test]
fn look_alike_reads_never_share_a_copy() {
    use serde_json::{Value, json};
    let server = start();
    let redis = near(&server);
    let key = unique_key("near-alike");
    let by_str = RedisDict::<String, Value>::new(&redis, &key);
    let by_int = RedisDict::<i64, Value>::new(&redis, &key);
    let longer = RedisDict::<String, Value>::new(&redis, format!("{key}1"));
    let quoted = RedisDict::<String, Value>::new(&redis, format!("{key}\""));
    let fields = ["1", "k1", "a\"b", "a\\b", "\u{e9}", "", "-1", "01", "x\ny"];
    let values = [
        json!(7),
        json!("7"),
        json!(-3),
        json!(1.5),
        json!(null),
        json!([1]),
        json!({"a": 1}),
        json!(123_456_789_012_345_678_i64),
        json!(true),
    ];
    for (f, v) in fields.iter().zip(&values) {
        by_str.insert((*f).into(), v.clone()).unwrap();
    }
    by_int.insert(1, json!("one")).unwrap();
    by_int.insert(-1, json!(-1)).unwrap();
    longer.insert("1".into(), json!(11)).unwrap();
    quoted.insert("1".into(), json!(12)).unwrap();
    let check = || {
        for (f, v) in fields.iter().zip(&values) {
            assert_eq!(by_str.get(*f).unwrap().as_ref(), Some(v), "{f:?}");
        }
        assert_eq!(by_str.get("2").unwrap(), None);
        assert_eq!(by_int.get(&1).unwrap(), Some(json!("one")));
        assert_eq!(by_int.get(&-1).unwrap(), Some(json!(-1)));
        assert_eq!(by_int.get(&7).unwrap(), None);
        assert_eq!(longer.get("1").unwrap(), Some(json!(11)));
        assert_eq!(quoted.get("1").unwrap(), Some(json!(12)));
        assert!(by_str.contains_key("1").unwrap());
        assert!(by_int.contains_key(&1).unwrap());
        assert!(!by_int.contains_key(&2).unwrap());
    };
    let hits = stats(&redis).hits;
    for _ in 0..3 {
        check();
    }
    // 18 reads a round: the first round fills, the next two hit.
    assert!(stats(&redis).hits >= hits + 2 * 18, "{:?}", stats(&redis));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (astr, aint) = (by_str.to_async(), by_int.to_async());
    rt.block_on(async {
        for _ in 0..3 {
            for (f, v) in fields.iter().zip(&values) {
                assert_eq!(astr.get(*f).await.unwrap().as_ref(), Some(v), "{f:?}");
            }
            assert_eq!(aint.get(&1).await.unwrap(), Some(json!("one")));
        }
    });
    // A write to one look-alike leaves the others as they are.
    by_int.insert(1, json!("uno")).unwrap();
    assert_eq!(by_int.get(&1).unwrap(), Some(json!("uno")));
    assert_eq!(by_str.get("1").unwrap(), Some(json!(7)));
    check_after_write(&by_str, &fields, &values);
}

fn check_after_write(
    dict: &RedisDict<String, serde_json::Value>,
    fields: &[&str],
    values: &[serde_json::Value],
) {
    for (f, v) in fields.iter().zip(values) {
        assert_eq!(dict.get(*f).unwrap().as_ref(), Some(v), "{f:?}");
    }
}

/// `max_age` beyond a second: hits check it against the coarse clock (no clock read) until
/// the deadline is near, and the entry still goes at its age, not before.
#[test]
fn a_long_max_age_is_kept_by_the_coarse_clock() {
    let server = start();
    let age = Duration::from_millis(1300);
    let redis = near_with(&server, NearCache::new().max_age(age));
    let dict = RedisDict::<String, i64>::new(&redis, unique_key("near-coarse-age"));
    dict.insert("v".into(), 1).unwrap();
    let misses = stats(&redis).misses;
    let filled = Instant::now();
    assert_eq!(dict.get("v").unwrap(), Some(1));
    assert_eq!(stats(&redis).misses, misses + 1);
    // Served locally until the age is reached (never a miss before), then read again.
    let expired = poll(10, || {
        assert_eq!(dict.get("v").unwrap(), Some(1));
        let missed = stats(&redis).misses > misses + 1;
        if missed {
            assert!(
                filled.elapsed() >= age,
                "expired early: {:?}",
                filled.elapsed()
            );
        }
        missed
    });
    assert!(expired, "never expired");
}

/// Each thread keeps copies of its hits in a front table of its own (issue #24's 64-task
/// row). Reads `field` on this thread until at least `n` more hits are counted: the copy is
/// then in this thread's front table.
fn in_front(redis: &Redis, dict: &RedisDict<String, i64>, field: &str, want: i64, n: u64) {
    let hits = stats(redis).hits;
    assert!(
        poll(5, || {
            dict.get(field).unwrap() == Some(want) && stats(redis).hits >= hits + n
        }),
        "{:?}",
        stats(redis)
    );
}

/// Another client's writes are seen by a thread whose front table held the key, and by the
/// thread that wrote nothing; this handle's own write on one thread is seen at once by
/// another thread's next read.
#[test]
fn front_tables_of_other_threads_see_writes() {
    let server = start();
    let redis = near(&server);
    let key = unique_key("near-front-write");
    let dict = RedisDict::<String, i64>::new(&redis, &key);
    dict.insert("f".into(), 1).unwrap();
    let mut conn = raw(&server);
    let (to_reader, from_main) = std::sync::mpsc::channel::<i64>();
    let (to_main, from_reader) = std::sync::mpsc::channel::<()>();
    let (redis, dict) = (&redis, &dict);
    std::thread::scope(|s| {
        s.spawn(move || {
            in_front(redis, dict, "f", 1, 3);
            to_main.send(()).unwrap();
            for v in from_main {
                if v < 0 {
                    // The main thread's own write, acknowledged before it said so.
                    assert_eq!(dict.get("f").unwrap(), Some(-v));
                } else {
                    assert!(seen(dict, "f", Some(v)), "{v}");
                }
                in_front(redis, dict, "f", v.abs(), 3);
                to_main.send(()).unwrap();
            }
        });
        from_reader.recv().unwrap();
        for v in 2..200 {
            if v % 10 == 0 {
                dict.insert("f".into(), v).unwrap();
                to_reader.send(-v).unwrap();
            } else {
                in_front(redis, dict, "f", v - 1, 2);
                hset(&mut conn, &key, "f", v);
                to_reader.send(v).unwrap();
                assert!(seen(dict, "f", Some(v)), "{v}");
            }
            from_reader.recv().unwrap();
        }
        drop(to_reader);
    });
}

/// An entry evicted by `max_entries` on one thread is no longer served from another
/// thread's front table (its next read is a miss).
#[test]
fn an_eviction_ends_other_threads_front_copies() {
    let server = start();
    let redis = near_with(&server, NearCache::new().max_entries(2));
    let key = unique_key("near-front-evict");
    let dict = RedisDict::<String, i64>::new(&redis, &key);
    for i in 0..20 {
        dict.insert(format!("f{i}"), i).unwrap();
    }
    let (go, wait) = std::sync::mpsc::channel::<()>();
    let (ready, is_ready) = std::sync::mpsc::channel::<()>();
    let (redis, dict) = (&redis, &dict);
    std::thread::scope(|s| {
        s.spawn(move || {
            in_front(redis, dict, "f0", 0, 3);
            ready.send(()).unwrap();
            wait.recv().unwrap();
            let before = stats(redis);
            assert_eq!(dict.get("f0").unwrap(), Some(0));
            let after = stats(redis);
            assert_eq!(after.misses, before.misses + 1, "{before:?} {after:?}");
            assert_eq!(after.hits, before.hits, "{before:?} {after:?}");
        });
        is_ready.recv().unwrap();
        let evictions = stats(redis).evictions;
        // Fills on this thread push f0 out: each takes an entry from the first shard holding
        // one after the clock's hand, which comes round to f0's (twice: its second chance
        // too) with odds of about one half per fill; 95 fills.
        for round in 0..5 {
            for i in 1..20 {
                assert_eq!(dict.get(&format!("f{i}")).unwrap(), Some(i), "{round}");
            }
        }
        let s = stats(redis);
        assert!(s.entries <= 2 && s.evictions >= evictions + 3, "{s:?}");
        go.send(()).unwrap();
    });
}

/// A flush (this handle's, or a server's FLUSHALL) ends every thread's front copies.
#[test]
fn a_flush_ends_other_threads_front_copies() {
    let server = start();
    let redis = near(&server);
    let key = unique_key("near-front-flush");
    let dict = RedisDict::<String, i64>::new(&redis, &key);
    dict.insert("f".into(), 1).unwrap();
    let mut conn = raw(&server);
    let (go, wait) = std::sync::mpsc::channel::<u8>();
    let (ready, is_ready) = std::sync::mpsc::channel::<()>();
    let (redis, dict) = (&redis, &dict);
    std::thread::scope(|s| {
        s.spawn(move || {
            in_front(redis, dict, "f", 1, 3);
            ready.send(()).unwrap();
            // The handle flushed: the next read goes to the server.
            wait.recv().unwrap();
            let before = stats(redis);
            assert_eq!(dict.get("f").unwrap(), Some(1));
            let after = stats(redis);
            assert_eq!(after.misses, before.misses + 1, "{before:?} {after:?}");
            assert_eq!(after.hits, before.hits, "{before:?} {after:?}");
            in_front(redis, dict, "f", 1, 3);
            ready.send(()).unwrap();
            // FLUSHALL from another client.
            wait.recv().unwrap();
            assert!(seen(dict, "f", None));
        });
        is_ready.recv().unwrap();
        redis.near_cache_flush();
        go.send(0).unwrap();
        is_ready.recv().unwrap();
        redis::cmd("FLUSHALL").exec(&mut conn).unwrap();
        go.send(1).unwrap();
    });
}

/// Two handles with near caches of their own, read on one thread (one front table): each
/// gets its own values, and each counts its own hits.
#[test]
fn two_handles_on_one_thread_do_not_mix() {
    let server = start();
    let key = unique_key("near-front-two");
    let a = near(&server);
    let b = Redis::builder(&server.url().replacen("/0", "/1", 1))
        .near_cache(NearCache::new())
        .build()
        .unwrap();
    let da = RedisDict::<String, i64>::new(&a, &key);
    let db = RedisDict::<String, i64>::new(&b, &key);
    for i in 0..50 {
        da.insert(format!("f{i}"), i).unwrap();
        db.insert(format!("f{i}"), 1000 + i).unwrap();
    }
    for i in 0..50 {
        assert_eq!(da.get(&format!("f{i}")).unwrap(), Some(i));
        assert_eq!(db.get(&format!("f{i}")).unwrap(), Some(1000 + i));
    }
    let (sa, sb) = (stats(&a), stats(&b));
    for round in 0..20 {
        for i in 0..50 {
            assert_eq!(da.get(&format!("f{i}")).unwrap(), Some(i), "{round}");
            assert_eq!(db.get(&format!("f{i}")).unwrap(), Some(1000 + i), "{round}");
            assert!(da.contains_key(&format!("f{i}")).unwrap());
        }
    }
    let (ea, eb) = (stats(&a), stats(&b));
    // Every read a hit (nothing changed; no TTL; the age cap is a minute away) but each
    // field's first `contains_key` (a fill).
    assert_eq!(
        (ea.hits - sa.hits, ea.misses - sa.misses),
        (2 * 1000 - 50, 50),
        "{ea:?}"
    );
    assert_eq!(
        (eb.hits - sb.hits, eb.misses - sb.misses),
        (1000, 0),
        "{eb:?}"
    );
    // A write through one handle: the other's copy of the same key is untouched.
    da.insert("f0".into(), -1).unwrap();
    assert_eq!(da.get("f0").unwrap(), Some(-1));
    assert_eq!(db.get("f0").unwrap(), Some(1000));
}

/// Two structures on one key of one handle, and a clone, read on one thread: the front table
/// tells reads apart by structure, not by key bytes (each structure keeps its own copies),
/// and every copy stops being served at another client's write.
#[test]
fn structures_on_one_key_each_see_writes() {
    let server = start();
    let redis = near(&server);
    let key = unique_key("near-two-structures");
    let mut conn = raw(&server);
    hset(&mut conn, &key, "v", 1);
    let one = RedisDict::<String, i64>::new(&redis, &key);
    let two = RedisDict::<String, i64>::new(&redis, &key);
    let clone = one.clone();
    for d in [&one, &two, &clone] {
        assert!(seen(d, "v", Some(1)));
    }
    let hits = stats(&redis).hits;
    for _ in 0..100 {
        for d in [&one, &two, &clone] {
            assert_eq!(d.get("v").unwrap(), Some(1));
        }
    }
    assert_eq!(stats(&redis).hits, hits + 300);
    hset(&mut conn, &key, "v", 2);
    for d in [&one, &two, &clone] {
        assert!(seen(d, "v", Some(2)));
        assert_eq!(d.get("v").unwrap(), Some(2));
    }
}

/// The stats stay exact on one thread with the front table: every hit counted once, from
/// the store or the front table; a thread that ends keeps its hits in the totals.
#[test]
fn stats_are_exact_with_front_tables() {
    let server = start();
    let redis = near(&server);
    let key = unique_key("near-front-stats");
    let dict = RedisDict::<String, i64>::new(&redis, &key);
    let set = RedisSet::<String>::new(&redis, unique_key("near-front-stats-set"));
    dict.insert("a".into(), 1).unwrap();
    set.insert("x".into()).unwrap();
    // Filled (a miss each), then read until served locally.
    assert!(poll(5, || {
        let h = stats(&redis).hits;
        dict.get("a").unwrap() == Some(1) && stats(&redis).hits == h + 1
    }));
    assert!(poll(5, || {
        let h = stats(&redis).hits;
        set.contains("x").unwrap() && stats(&redis).hits == h + 1
    }));
    assert!(poll(5, || {
        let h = stats(&redis).hits;
        dict.contains_key("a").unwrap() && stats(&redis).hits == h + 1
    }));
    let start_stats = stats(&redis);
    for _ in 0..1000 {
        assert_eq!(dict.get("a").unwrap(), Some(1));
        assert!(set.contains("x").unwrap());
        assert!(dict.contains_key("a").unwrap());
    }
    let s = stats(&redis);
    assert_eq!(s.hits, start_stats.hits + 3000, "{s:?}");
    assert_eq!(s.misses, start_stats.misses, "{s:?}");
    let before = stats(&redis);
    std::thread::scope(|sc| {
        sc.spawn(|| {
            for _ in 0..500 {
                assert_eq!(dict.get("a").unwrap(), Some(1));
            }
        });
    });
    // The thread ended: its 500 reads (one from the store, the rest from its front table)
    // are still counted.
    assert_eq!(stats(&redis).hits, before.hits + 500);
    assert_eq!(stats(&redis).misses, before.misses);
}
