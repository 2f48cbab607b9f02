//! Failovers that callers do not see (issue 15): a server restarted mid-run costs latency,
//! not errors, for every operation that may be repeated; a write that must not be repeated
//! fails with `Error::MaybeApplied` only when it was in flight; durable writes wait for
//! replicas in the same round trip.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use pottery::testing::RedisServer;
use pottery::{Error, Redis, RedisCounter, RedisDict, RedisList};
use pottery_tests::{poll, unique_key};

/// A server whose acknowledged writes survive a restart (AOF, fsync at every write).
fn durable_server() -> RedisServer {
    RedisServer::builder()
        .args(["--appendonly", "yes", "--appendfsync", "always"])
        .start()
        .unwrap()
}

fn handle(server: &RedisServer) -> Redis {
    Redis::builder(&server.url())
        .connection_timeout(Duration::from_secs(1))
        .response_timeout(Some(Duration::from_secs(2)))
        .retry_timeout(Duration::from_secs(15))
        .build()
        .unwrap()
}

#[derive(Default)]
struct Tally {
    /// Acknowledged idempotent writes (dict sets) and their errors.
    sets: AtomicU64,
    set_errors: AtomicU64,
    /// Acknowledged increments, and those that failed saying they may have been applied.
    incrs: AtomicU64,
    maybe: AtomicU64,
    /// Any other error of a write that must not be repeated.
    incr_errors: AtomicU64,
    /// Reads through the async API, and their errors.
    reads: AtomicU64,
    read_errors: AtomicU64,
}

#[test]
fn a_restarted_server_costs_latency_not_errors() {
    let mut server = durable_server();
    let redis = handle(&server);
    let key = unique_key("restart");
    let d: RedisDict<u64, u64> = RedisDict::new(&redis, format!("{key}:d"));
    let c: RedisCounter<String> = RedisCounter::new(&redis, format!("{key}:c"));
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (d, c, tally, stop) = (d.clone(), c.clone(), tally.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                match d.set(i, i) {
                    Ok(()) => {
                        tally.sets.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        eprintln!("set {i}: {e}");
                        tally.set_errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                match c.incr("n", 1) {
                    Ok(_) => {
                        tally.incrs.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(Error::MaybeApplied { .. }) => {
                        tally.maybe.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        eprintln!("incr: {e}");
                        tally.incr_errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                i += 1;
            }
            i
        })
    };
    let reader = {
        let (d, tally, stop) = (d.to_async(), tally.clone(), stop.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async move {
                let task = tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        match d.get(&0).await {
                            Ok(_) => {
                                tally.reads.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => {
                                eprintln!("async get: {e}");
                                tally.read_errors.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                });
                task.await.unwrap();
            });
        })
    };
    let progress = |n: u64| {
        let from = tally.sets.load(Ordering::Relaxed);
        assert!(
            poll(30, || tally.sets.load(Ordering::Relaxed) >= from + n
                && tally.reads.load(Ordering::Relaxed) > 0),
            "no progress"
        );
    };
    progress(200);
    for _ in 0..2 {
        server.stop();
        // The outage: the calls meanwhile wait and retry.
        std::thread::sleep(Duration::from_millis(700));
        server.restart().unwrap();
        let reads = tally.reads.load(Ordering::Relaxed);
        progress(200);
        assert!(poll(30, || tally.reads.load(Ordering::Relaxed) > reads));
    }
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().unwrap();
    reader.join().unwrap();
    let t = &*tally;
    let (sets, incrs, maybe) = (
        t.sets.load(Ordering::Relaxed),
        t.incrs.load(Ordering::Relaxed),
        t.maybe.load(Ordering::Relaxed),
    );
    eprintln!(
        "restart x2: {sets} sets, {incrs} incrs, {maybe} maybe-applied, {} reads; errors: \
         set {}, incr {}, read {}",
        t.reads.load(Ordering::Relaxed),
        t.set_errors.load(Ordering::Relaxed),
        t.incr_errors.load(Ordering::Relaxed),
        t.read_errors.load(Ordering::Relaxed),
    );
    // Reads and idempotent writes: latency, never an error.
    assert_eq!(t.set_errors.load(Ordering::Relaxed), 0);
    assert_eq!(t.read_errors.load(Ordering::Relaxed), 0);
    // A write that must not be repeated: at most the one in flight at each of the 2 kills,
    // and then with the error that says so.
    assert_eq!(t.incr_errors.load(Ordering::Relaxed), 0);
    assert!(maybe <= 2, "{maybe}");
    // Nothing acknowledged was lost (the server fsyncs every write), nothing applied twice.
    assert_eq!(sets, written);
    for i in 0..written {
        assert_eq!(d.get(&i).unwrap(), Some(i), "acknowledged set {i} lost");
    }
    let n = c.get("n").unwrap();
    assert!(
        (incrs..=incrs + maybe).contains(&(n as u64)),
        "counter {n}, acknowledged {incrs}, maybe {maybe}"
    );
}

#[test]
fn a_write_that_must_not_repeat_is_retried_when_certainly_not_sent() {
    // The server is down before the call and the handle has no connection yet: every attempt
    // is refused, nothing is sent, so even a push is retried, and goes in once when the
    // server is back. (Connections that died while idle: see
    // `a_write_that_must_not_repeat_goes_through_on_connections_closed_while_idle`.)
    let mut server = durable_server();
    let l: RedisList<String> = RedisList::new(&server.redis(), unique_key("refused-push"));
    l.push("before".into()).unwrap();
    server.stop();
    let fresh = handle(&server);
    let pusher = {
        let l: RedisList<String> = RedisList::new(&fresh, l.key());
        std::thread::spawn(move || l.push("during".into()))
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let al: pottery::aio::RedisList<String> = pottery::aio::RedisList::new(&fresh, l.key());
    let async_push = rt.spawn(async move { al.push("async".into()).await });
    // The outage.
    std::thread::sleep(Duration::from_millis(500));
    server.restart().unwrap();
    pusher.join().unwrap().unwrap();
    rt.block_on(async_push).unwrap().unwrap();
    let mut got = RedisList::<String>::new(&fresh, l.key()).to_vec().unwrap();
    got.sort();
    assert_eq!(got, ["async", "before", "during"]);
}

/// How many clients a server has, asked on a new connection (counted among them).
fn clients(url: &str) -> usize {
    let mut conn = redis::Client::open(url)
        .and_then(|c| c.get_connection())
        .unwrap();
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut conn).unwrap();
    list.lines().count()
}

/// Increments through a handle's blocking pool and async connection, alone and in batches,
/// each time after the servers closed the handle's connections for idling (`timeout 1`).
fn increments_after_idle_closes(redis: &Redis, urls: &[String]) {
    for url in urls {
        let mut conn = redis::Client::open(url.as_str())
            .and_then(|c| c.get_connection())
            .unwrap();
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("timeout")
            .arg(1)
            .query(&mut conn)
            .unwrap();
    }
    let counter: RedisCounter<String> = RedisCounter::new(redis, unique_key("idle"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ac = counter.to_async();
    let mut expected: i64 = 0;
    for round in 0..2 {
        expected += 1;
        assert_eq!(counter.incr("n", 1).unwrap(), expected, "round {round}");
        expected += 1;
        assert_eq!(
            rt.block_on(ac.incr("n", 1)).unwrap(),
            expected,
            "round {round}"
        );
        // The servers close the idle connections (only the asking one is left).
        for url in urls {
            assert!(
                poll(10, || clients(url) == 1),
                "the server at {url} never closed the idle connections"
            );
        }
        if round % 2 == 0 {
            expected += 1;
            assert_eq!(
                counter.incr("n", 1).unwrap(),
                expected,
                "round {round}: blocking, on a pooled connection the server closed"
            );
            expected += 1;
            assert_eq!(
                rt.block_on(ac.incr("n", 1)).unwrap(),
                expected,
                "round {round}: async, on a connection the server closed"
            );
        } else {
            let b = pottery::Batch::new(redis);
            let n = b.on(&counter).incr("n", 1);
            b.execute().unwrap();
            expected += 1;
            assert_eq!(
                n.get().unwrap(),
                expected,
                "round {round}: a blocking batch"
            );
            rt.block_on(async {
                let b = pottery::aio::Batch::new(redis);
                let n = b.on(&ac).incr("n", 1);
                b.execute().await.unwrap();
                expected += 1;
                assert_eq!(n.get().unwrap(), expected, "round {round}: an async batch");
            });
        }
    }
    assert_eq!(counter.get("n").unwrap(), expected);
}

#[test]
fn a_write_that_must_not_repeat_goes_through_on_connections_closed_while_idle() {
    // A server with `timeout` set, a proxy or a managed service closes connections that idle
    // too long. The handle's pooled and async connections are then dead, which it learns
    // only when it uses them. A write that must not repeat used to fail with
    // `Error::MaybeApplied` the first time after every idle spell, though the server never
    // received it.
    let server = RedisServer::start().unwrap();
    increments_after_idle_closes(&handle(&server), &[server.url()]);
    let cluster = pottery::testing::RedisCluster::start(3).unwrap();
    increments_after_idle_closes(&cluster.redis(), &cluster.urls());
}

#[test]
fn retries_end_at_the_retry_timeout_with_the_servers_error() {
    let mut server = RedisServer::start().unwrap();
    let redis = Redis::builder(&server.url())
        .retry_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let d: RedisDict<String, i64> = RedisDict::new(&redis, "k");
    server.stop();
    let started = std::time::Instant::now();
    let err = d.get("a").unwrap_err();
    let took = started.elapsed();
    eprintln!("refused for {took:?}: {err}");
    assert!(
        matches!(&err, Error::Redis { source, .. } if source.is_connection_refusal()),
        "{err:?}"
    );
    // Retries stop before the next wait would pass the deadline.
    assert!(took < Duration::from_secs(3), "{took:?}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let err = rt.block_on(d.to_async().get("a")).unwrap_err();
    assert!(matches!(err, Error::Redis { .. }), "{err:?}");
    // Without retries: the first refusal is the answer.
    let once = Redis::builder(&server.url())
        .retry_timeout(Duration::ZERO)
        .build()
        .unwrap();
    let d: RedisDict<String, i64> = RedisDict::new(&once, "k");
    assert!(d.get("a").is_err());
}

#[test]
fn durable_writes_wait_for_replicas_in_the_same_round_trip() {
    let master = RedisServer::start().unwrap();
    let replica = RedisServer::builder()
        .args(["--replicaof", "127.0.0.1", &master.port().to_string()])
        .start()
        .unwrap();
    assert!(poll(20, || {
        replica
            .cli(["INFO", "replication"])
            .is_ok_and(|info| info.contains("master_link_status:up"))
    }));
    let durable = Redis::builder(&master.url())
        .durable_writes(1, Duration::from_secs(2))
        .build()
        .unwrap();
    let key = unique_key("durable");
    let d: RedisDict<String, i64> = RedisDict::new(&durable, key.clone());
    let c: RedisCounter<String> = RedisCounter::new(&durable, format!("{key}:c"));
    assert_eq!(d.insert("a".into(), 1).unwrap(), None);
    assert_eq!(c.incr("n", 5).unwrap(), 5);
    // Acknowledged means on the replica too: read it there, no waiting.
    let on_replica: RedisDict<String, i64> = RedisDict::new(&replica.redis(), key.clone());
    assert_eq!(on_replica.get("a").unwrap(), Some(1));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ad = d.to_async();
    assert_eq!(rt.block_on(ad.insert("b".into(), 2)).unwrap(), None);
    assert_eq!(on_replica.get("b").unwrap(), Some(2));
    // Reads do not wait.
    assert_eq!(d.get("a").unwrap(), Some(1));
    // Two replicas asked for, one there: the write is applied on the master, and the error
    // says that fewer replicas confirmed it.
    // (WAIT waits its whole timeout for the missing replica: 1 s leaves the present one
    // time to confirm on a loaded machine.)
    let too_many = Redis::builder(&master.url())
        .durable_writes(2, Duration::from_secs(1))
        .build()
        .unwrap();
    let d2: RedisDict<String, i64> = RedisDict::new(&too_many, key.clone());
    match d2.insert("c".into(), 3) {
        Err(Error::NotDurable {
            key: k,
            acked,
            wanted,
        }) => {
            assert_eq!((k.as_str(), acked, wanted), (key.as_str(), 1, 2));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(d.get("c").unwrap(), Some(3));
    let err = rt.block_on(d2.to_async().set("c".into(), 4)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotDurable {
                acked: 1,
                wanted: 2,
                ..
            }
        ),
        "{err:?}"
    );
    // A zero timeout would make WAIT block forever: refused.
    assert!(matches!(
        Redis::builder(&master.url())
            .durable_writes(1, Duration::ZERO)
            .build(),
        Err(Error::Config { .. })
    ));
    d.clear().unwrap();
}
