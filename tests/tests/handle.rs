//! The `Redis` handle: TLS, ACL users and passwords, redaction, connection reuse, failure and
//! recovery, against real servers.

use std::time::Duration;

use pottery::testing::{RedisServer, shared_server};
use pottery::{Error, Redis, RedisDict};
use pottery_tests::{poll, two_workers, unique_key};

fn connected_clients(server: &RedisServer) -> usize {
    let info = server.cli(["INFO", "clients"]).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("connected_clients:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("connected_clients in INFO")
}

#[test]
fn tls_with_a_ca_made_at_test_time() {
    let server = RedisServer::builder().tls().start().unwrap();
    assert!(server.url().starts_with("rediss://"));
    let redis = server.redis();
    let d: RedisDict<String, String> = RedisDict::new(&redis, "tls-dict");
    d.insert("secure".into(), "yes".into()).unwrap();
    assert_eq!(d.get("secure").unwrap().as_deref(), Some("yes"));
    // Without the CA, the certificate is refused...
    let untrusted = Redis::from_url(&server.url()).unwrap();
    assert!(untrusted.ping().is_err());
    // ...unless verification is explicitly skipped.
    let insecure = Redis::from_url(&format!("{}#insecure", server.url())).unwrap();
    insecure.ping().unwrap();
    // A plain-text client gets nowhere.
    let plain = Redis::builder(&server.url().replace("rediss://", "redis://"))
        .response_timeout(Some(Duration::from_secs(2)))
        .build()
        .unwrap();
    assert!(plain.ping().is_err());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let a = d.to_async();
        assert_eq!(a.get("secure").await.unwrap().as_deref(), Some("yes"));
    });
}

#[test]
fn acl_user_and_password_never_leak() {
    let server = RedisServer::builder()
        .acl_user("alice", "s3cret-pw")
        .start()
        .unwrap();
    let redis = server.redis();
    redis.ping().unwrap();
    let shown = format!("{redis:?}");
    assert!(shown.contains("alice:***@"), "{shown}");
    assert!(!shown.contains("s3cret-pw"), "{shown}");

    let wrong_url = server.url().replace("s3cret-pw", "wrong-pw");
    let wrong = Redis::from_url(&wrong_url).unwrap();
    assert!(!format!("{wrong:?}").contains("wrong-pw"));
    let err = wrong.ping().unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(!text.contains("wrong-pw"), "{text}");
    let d: RedisDict<String, i64> = RedisDict::new(&wrong, "k");
    let err = d.get("x").unwrap_err();
    assert!(matches!(err, Error::Redis { .. }));
    assert!(!format!("{err} {err:?}").contains("wrong-pw"));

    let pw_server = RedisServer::builder().password("hunter2").start().unwrap();
    pw_server.redis().ping().unwrap();
    assert!(!format!("{:?}", pw_server.redis()).contains("hunter2"));
    let anonymous = Redis::from_url(&format!("redis://127.0.0.1:{}/0", pw_server.port())).unwrap();
    assert!(anonymous.ping().is_err());

    let bad = Redis::from_url("redis://u:topsecret@[not-a-host").unwrap_err();
    assert!(matches!(bad, Error::Config { .. }));
    assert!(!format!("{bad} {bad:?}").contains("topsecret"), "{bad}");
}

#[test]
fn blocking_connections_are_reused() {
    let server = RedisServer::start().unwrap();
    let redis = server.redis();
    let d: RedisDict<u32, u32> = RedisDict::new(&redis, "reuse");
    for i in 0..500 {
        d.insert(i, i).unwrap();
    }
    // One thread, so one pooled connection, plus redis-cli's own.
    assert_eq!(connected_clients(&server), 2);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for i in 0..200 {
                    d.get(&i).unwrap();
                }
            });
        }
    });
    let clients = connected_clients(&server);
    assert!(
        (2..=5).contains(&clients),
        "{clients} connections for 4 threads"
    );
}

#[test]
fn a_killed_server_is_an_error_then_recovers() {
    let mut server = RedisServer::start().unwrap();
    let redis = server.redis();
    let d: RedisDict<String, i64> = RedisDict::new(&redis, "crash");
    d.insert("a".into(), 1).unwrap();
    server.stop();
    match d.get("a") {
        Err(Error::Redis { key, .. }) => assert_eq!(key.as_deref(), Some("crash")),
        other => panic!("expected a Redis error, got {other:?}"),
    }
    assert!(d.len().is_err());
    server.restart().unwrap();
    // Nothing persisted, but the handle works again at once.
    assert_eq!(d.get("a").unwrap(), None);
    d.insert("b".into(), 2).unwrap();
    assert_eq!(d.len().unwrap(), 1);
}

#[test]
fn async_recovers_after_a_restart() {
    let mut server = RedisServer::start().unwrap();
    let redis = server.redis();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let d: pottery::aio::RedisDict<String, i64> =
        pottery::aio::RedisDict::new(&redis, "crash-async");
    rt.block_on(async { d.insert("a".into(), 1).await.unwrap() });
    server.stop();
    let err = rt.block_on(async { d.get("a").await }).unwrap_err();
    assert!(matches!(err, Error::Redis { .. }), "{err:?}");
    server.restart().unwrap();
    // The multiplexed connection reconnects in the background: bounded poll.
    let ok = poll(10, || {
        rt.block_on(async { d.insert("b".into(), 2).await }).is_ok()
    });
    assert!(ok, "async dict did not recover after the restart");
    assert_eq!(rt.block_on(async { d.get("b").await }).unwrap(), Some(2));
}

#[test]
fn a_hung_server_times_out_instead_of_hanging() {
    let server = RedisServer::start().unwrap();
    let redis = Redis::builder(&server.url())
        .response_timeout(Some(Duration::from_millis(300)))
        .build()
        .unwrap();
    redis.ping().unwrap();
    server.pause();
    let started = std::time::Instant::now();
    let result = redis.ping();
    server.resume();
    assert!(result.is_err());
    assert!(started.elapsed() < Duration::from_secs(5));
    // The timed-out connection was dropped, not reused with a stale reply in it.
    poll(5, || redis.ping().is_ok());
    let d: RedisDict<String, i64> = RedisDict::new(&redis, unique_key("after-hang"));
    d.insert("x".into(), 7).unwrap();
    assert_eq!(d.get("x").unwrap(), Some(7));
    d.clear().unwrap();
}

#[test]
fn constructors() {
    let server = shared_server();
    let client = redis::Client::open(server.url()).unwrap();
    let redis = Redis::from_client(client);
    redis.ping().unwrap();
    assert_eq!(
        format!("{redis:?}"),
        format!("Redis(redis://127.0.0.1:{}/0)", server.port())
    );
    assert!(!redis.is_cluster());
    let default = pottery::default_redis().unwrap();
    assert!(default.same_handle(&pottery::default_redis().unwrap()));
    assert!(
        pottery::set_default_redis(redis.clone()).is_err(),
        "already initialised"
    );
    assert!(Redis::from_url("http://nope").is_err());
    assert!(Redis::cluster(Vec::<String>::new()).is_err());
}

#[test]
fn cluster_handle_spreads_keys_over_nodes() {
    let cluster = pottery::testing::shared_cluster();
    let redis = cluster.redis();
    assert!(redis.is_cluster());
    assert!(format!("{redis:?}").starts_with("Redis(cluster["));
    let dicts: Vec<RedisDict<u32, u32>> = (0..30)
        .map(|i| RedisDict::new(&redis, format!("spread:{i}")))
        .collect();
    for (i, d) in dicts.iter().enumerate() {
        d.insert(1, i as u32).unwrap();
    }
    let per_node: Vec<usize> = cluster
        .nodes
        .iter()
        .map(|n| n.cli(["DBSIZE"]).unwrap().trim().parse().unwrap())
        .collect();
    assert!(
        per_node.iter().filter(|n| **n > 0).count() >= 2,
        "{per_node:?}"
    );
    for (i, d) in dicts.iter().enumerate() {
        assert_eq!(d.get(&1).unwrap(), Some(i as u32));
        d.clear().unwrap();
    }
}

#[test]
fn one_handle_serves_successive_runtimes() {
    let redis = shared_server().redis();
    let d: pottery::aio::RedisDict<String, i64> =
        pottery::aio::RedisDict::new(&redis, unique_key("runtimes"));
    for i in 0..3 {
        // Each runtime is dropped before the next starts, as with #[tokio::test]s.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            d.insert("n".into(), i).await.unwrap();
            assert_eq!(d.get("n").await.unwrap(), Some(i));
        });
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async { d.clear().await.unwrap() });
}

/// Two runtimes alive at once, called in turn (the handle's last-used slot then changes hands
/// at every call): each keeps its own async connection, and no call makes a new one. Once a
/// runtime is gone, its connection closes and the other's goes on.
#[test]
fn two_live_runtimes_each_keep_their_own_async_connection() {
    let server = RedisServer::start().unwrap();
    let redis = server.redis();
    let d: pottery::aio::RedisDict<String, i64> =
        pottery::aio::RedisDict::new(&redis, unique_key("two-runtimes"));
    let a = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let b = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    a.block_on(d.insert("a".into(), 0)).unwrap();
    b.block_on(d.insert("b".into(), 0)).unwrap();
    let connections = || info_stat(&server, "stats", "total_connections_received");
    let before = connections();
    for i in 1..=20 {
        a.block_on(async {
            // Tasks on the runtime's workers, and its `block_on` thread.
            let tasks: Vec<_> = (0..4)
                .map(|_| {
                    let d = d.clone();
                    tokio::spawn(async move { d.insert("a".into(), i).await })
                })
                .collect();
            for t in tasks {
                t.await.unwrap().unwrap();
            }
            assert_eq!(d.get("a").await.unwrap(), Some(i));
        });
        b.block_on(async {
            d.insert("b".into(), i).await.unwrap();
            assert_eq!(d.get("b").await.unwrap(), Some(i));
        });
    }
    // `redis-cli` connects once per call: the INFO below is the one new connection.
    assert_eq!(connections() - before, 1, "no call made a new connection");
    // The two runtimes' connections and redis-cli's.
    assert!(poll(10, || connected_clients(&server) == 3));
    drop(b);
    // The dropped runtime's connection closes (its driver task died with it).
    assert!(poll(10, || connected_clients(&server) == 2));
    let before = connections();
    assert_eq!(a.block_on(d.get("b")).unwrap(), Some(20));
    assert_eq!(
        connections() - before,
        1,
        "the live runtime keeps its connection"
    );
    a.block_on(d.clear()).unwrap();
}

/// A stat of the server's `INFO` (`section`).
fn info_stat(server: &RedisServer, section: &str, name: &str) -> u64 {
    let info = server.cli(["INFO", section]).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} in INFO {section}"))
}

/// The async connection is not redis-rs's `ConnectionManager`: pottery replaces it. Killed on
/// the server (`CLIENT KILL`), it is found lost by the next call, whose retry makes a new one
/// and succeeds; 64 tasks that all meet the killed connection share one new connection; a
/// connection a user holds is renewed too.
#[test]
fn a_killed_async_connection_is_replaced_once_for_all_its_callers() {
    let server = RedisServer::start().unwrap();
    let redis = server.redis();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let d: std::sync::Arc<pottery::aio::RedisDict<String, i64>> =
        std::sync::Arc::new(pottery::aio::RedisDict::new(&redis, unique_key("killed")));
    rt.block_on(d.insert("a".into(), 1)).unwrap();
    let kill = || {
        let killed = server
            .cli(["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"])
            .unwrap();
        // The handle's one async connection (and maybe an earlier redis-cli's, if the server
        // has not yet seen it close).
        let killed: u64 = killed.trim().parse().unwrap();
        assert!(killed >= 1, "the handle's async connection killed");
    };
    let connections = || info_stat(&server, "stats", "total_connections_received");
    // One caller: its read is retried on a new connection.
    kill();
    let before = connections();
    assert_eq!(rt.block_on(d.get("a")).unwrap(), Some(1));
    // `redis-cli` connects once per call: the INFO above and below are one connection each.
    assert_eq!(connections() - before, 2, "one new connection for the call");
    // 64 tasks at once: one new connection for them all.
    for round in 0..3 {
        kill();
        let before = connections();
        let results = rt.block_on(async {
            let tasks: Vec<_> = (0..64)
                .map(|_| {
                    let d = std::sync::Arc::clone(&d);
                    tokio::spawn(async move { d.get("a").await })
                })
                .collect();
            let mut results = Vec::new();
            for t in tasks {
                results.push(t.await.unwrap());
            }
            results
        });
        for r in results {
            assert_eq!(r.unwrap(), Some(1), "round {round}");
        }
        assert_eq!(
            connections() - before,
            2,
            "round {round}: one new connection"
        );
        // The handle's and redis-cli's (once the server saw earlier redis-clis close).
        assert!(
            poll(10, || connected_clients(&server) == 2),
            "round {round}: one connection of the handle's"
        );
    }
    // A connection a user holds (`async_connection`) is renewed by its next command once it
    // was found lost: at most one command fails, as with redis-rs's `ConnectionManager`.
    let mut held = rt.block_on(redis.async_connection()).unwrap();
    kill();
    let ping = |conn: &mut pottery::AsyncConnection| {
        rt.block_on(redis::cmd("PING").query_async::<String>(conn))
    };
    let first = ping(&mut held);
    assert_eq!(ping(&mut held).unwrap(), "PONG", "after {first:?}");
    rt.block_on(d.clear()).unwrap();
}

/// Commands that tasks send while others are in flight on the handle's async connection go
/// out coalesced, one pipeline for many: 64 tasks on one handle each still get their own
/// replies (an atomic insert's old value, a read of it) and their own server errors (a read of
/// a key of the wrong type), and the coalesced path was taken.
#[test]
fn coalesced_commands_are_each_answered_on_their_own() {
    let server = RedisServer::start().unwrap();
    let redis = server.redis();
    let rt = two_workers();
    let wrong = unique_key("coalesce-string");
    server.cli(["SET", &wrong, "not a hash"]).unwrap();
    let d = std::sync::Arc::new(pottery::aio::RedisDict::<String, i64>::new(
        &redis,
        unique_key("coalesce"),
    ));
    let bad = std::sync::Arc::new(pottery::aio::RedisDict::<String, i64>::new(
        &redis,
        wrong.clone(),
    ));
    let before = pottery::testing::coalesced_commands(&redis);
    let outcomes = rt.block_on(async {
        let tasks: Vec<_> = (0..64)
            .map(|t| {
                let (d, bad, wrong) = (d.clone(), bad.clone(), wrong.clone());
                tokio::spawn(async move {
                    let field = format!("t{t}");
                    for i in 0..100i64 {
                        let old = d.insert(field.clone(), i).await.unwrap();
                        assert_eq!(old, (i > 0).then(|| i - 1), "task {t}, round {i}");
                        assert_eq!(d.get(&field).await.unwrap(), Some(i), "task {t}");
                        if i % 10 == 0 {
                            match bad.get("f").await {
                                Err(Error::WrongType { key, expected }) => {
                                    assert_eq!((key.as_str(), expected), (wrong.as_str(), "hash"));
                                }
                                other => panic!("a read of a string as a hash: {other:?}"),
                            }
                        }
                    }
                    t
                })
            })
            .collect();
        let mut done = Vec::new();
        for task in tasks {
            done.push(task.await.unwrap());
        }
        done
    });
    assert_eq!(outcomes, (0..64).collect::<Vec<_>>());
    let all = rt.block_on(d.to_hash_map()).unwrap();
    assert_eq!(all.len(), 64);
    assert!(all.values().all(|v| *v == 99), "{all:?}");
    assert!(
        pottery::testing::coalesced_commands(&redis) > before,
        "64 tasks on one connection: some commands went out coalesced"
    );
}

/// Polls `f` once: whether it is still pending.
async fn pending_after_one_poll<F: std::future::Future + Unpin>(f: &mut F) -> bool {
    std::future::poll_fn(|cx| {
        std::task::Poll::Ready(std::pin::Pin::new(&mut *f).poll(cx).is_pending())
    })
    .await
}

/// Polls `f` at most `polls` times (each when it is woken): its output, or `None` if it was
/// still pending then (it is dropped at that point).
async fn polled_at_most<F: std::future::Future>(f: F, polls: usize) -> Option<F::Output> {
    let mut f = std::pin::pin!(f);
    let mut n = 0;
    std::future::poll_fn(move |cx| {
        if n == polls {
            return std::task::Poll::Ready(None);
        }
        n += 1;
        f.as_mut().poll(cx).map(Some)
    })
    .await
}

/// Senders dropped at every point of a coalesced send (before their batch is sealed, leader
/// or not, while it is on its way, after it was answered) take nothing from the others: 64
/// tasks on one handle, each increment dropped after 1 to 3 polls or run to the end (fixed
/// seeds): every call that returned did so with a count above its task's last one, no call
/// hangs, and each counter ends between the increments that returned and those plus the
/// dropped ones (a dropped increment may or may not have run).
#[test]
fn coalesced_senders_dropped_at_any_point_take_nothing_from_the_others() {
    use rand::{Rng, SeedableRng};
    let server = RedisServer::start().unwrap();
    let redis = server.redis();
    let rt = two_workers();
    let c = std::sync::Arc::new(pottery::aio::RedisCounter::<String>::new(
        &redis,
        unique_key("coalesce-drops"),
    ));
    let tallies = rt.block_on(async {
        let tasks: Vec<_> = (0..64u64)
            .map(|t| {
                let c = c.clone();
                tokio::spawn(async move {
                    let mut rng = rand::rngs::StdRng::seed_from_u64(t);
                    let field = format!("t{t}");
                    let (mut ok, mut dropped, mut last) = (0i64, 0i64, 0i64);
                    for _ in 0..200 {
                        let polls = match rng.random_range(0..6) {
                            0..=2 => usize::MAX,
                            k => k - 2,
                        };
                        match polled_at_most(c.incr(&field, 1), polls).await {
                            Some(n) => {
                                let n = n.unwrap();
                                assert!(n > last, "task {t}: {n} after {last}");
                                last = n;
                                ok += 1;
                            }
                            None => dropped += 1,
                        }
                    }
                    (field, ok, dropped)
                })
            })
            .collect();
        let mut tallies = Vec::new();
        for task in tasks {
            tallies.push(
                tokio::time::timeout(Duration::from_secs(60), task)
                    .await
                    .expect("no call hangs")
                    .unwrap(),
            );
        }
        tallies
    });
    let (mut oks, mut drops) = (0, 0);
    for (field, ok, dropped) in tallies {
        let n = rt.block_on(c.get(&field)).unwrap();
        assert!(
            ok <= n && n <= ok + dropped,
            "{field}: {n}, {ok} returned, {dropped} dropped"
        );
        oks += ok;
        drops += dropped;
    }
    assert!(oks > 0 && drops > 0, "{oks} returned, {drops} dropped");
}

/// A read's and two inserts' futures, each polled once with the server frozen: the read is
/// sent alone (in flight), the first insert opens a batch behind it, the second joins it. The
/// caller resumes the server.
#[allow(clippy::type_complexity)]
async fn frozen_batch<'d>(
    server: &RedisServer,
    d: &'d pottery::aio::RedisDict<String, i64>,
    first: (&str, i64),
    second: (&str, i64),
) -> [std::pin::Pin<Box<dyn std::future::Future<Output = pottery::Result<Option<i64>>> + 'd>>; 3] {
    server.pause();
    let mut read: std::pin::Pin<Box<dyn std::future::Future<Output = _>>> = Box::pin(d.get("a"));
    assert!(pending_after_one_poll(&mut read).await, "sent alone");
    let mut opener: std::pin::Pin<Box<dyn std::future::Future<Output = _>>> =
        Box::pin(d.insert(first.0.into(), first.1));
    assert!(pending_after_one_poll(&mut opener).await, "opens a batch");
    let mut joined: std::pin::Pin<Box<dyn std::future::Future<Output = _>>> =
        Box::pin(d.insert(second.0.into(), second.1));
    assert!(pending_after_one_poll(&mut joined).await, "joins it");
    [read, opener, joined]
}

/// A batch's senders, driven by hand so that each step is known ([`frozen_batch`]): the first
/// sender whose turn comes back seals and sends the batch, so one whose task is never polled
/// again holds no one up; a batch whose senders are all dropped before it is sealed is given
/// up (none of it runs, and it is not sent with a later batch); one of whose senders was
/// dropped is sent with the dropped sender's command (it may run, as any command handed to
/// the connection before its future was dropped).
#[test]
fn a_batch_is_sealed_by_whichever_sender_comes_back_first() {
    let server = RedisServer::start().unwrap();
    let redis = server.redis();
    // Coalescing is for multi-threaded runtimes (see
    // `coalescing_can_be_turned_off_and_is_for_threaded_runtimes`).
    let rt = two_workers();
    let d = pottery::aio::RedisDict::<String, i64>::new(&redis, unique_key("coalesce-seal"));
    let coalesced = || pottery::testing::coalesced_commands(&redis);
    rt.block_on(async {
        // The connection is made, the insert's script loaded.
        assert_eq!(d.insert("a".into(), 1).await.unwrap(), None);
        let before = coalesced();
        // The opener is never polled again: the sender that joined seals the batch.
        let [read, opener, joined] = frozen_batch(&server, &d, ("b", 2), ("c", 3)).await;
        server.resume();
        assert_eq!(read.await.unwrap(), Some(1));
        assert_eq!(joined.await.unwrap(), None);
        assert_eq!(
            coalesced(),
            before + 2,
            "both commands sent as one pipeline"
        );
        assert_eq!(d.get("b").await.unwrap(), Some(2), "sent with the batch");
        drop(opener);
        // Every sender dropped before the batch is sealed: it is given up.
        let [read, x, y] = frozen_batch(&server, &d, ("x", 24), ("y", 25)).await;
        drop((x, y));
        server.resume();
        assert_eq!(read.await.unwrap(), Some(1));
        // A later batch does not carry them.
        let [read, z, w] = frozen_batch(&server, &d, ("z", 26), ("w", 27)).await;
        server.resume();
        assert_eq!(read.await.unwrap(), Some(1));
        assert_eq!((z.await.unwrap(), w.await.unwrap()), (None, None));
        assert_eq!(coalesced(), before + 4);
        for given_up in ["x", "y"] {
            assert_eq!(
                d.get(given_up).await.unwrap(),
                None,
                "a given-up batch never runs"
            );
        }
        // One sender dropped, the other not: both commands go.
        let [read, u, v] = frozen_batch(&server, &d, ("u", 28), ("v", 29)).await;
        drop(u);
        server.resume();
        assert_eq!(read.await.unwrap(), Some(1));
        assert_eq!(v.await.unwrap(), None);
        assert_eq!(coalesced(), before + 6);
        assert_eq!(d.get("u").await.unwrap(), Some(28), "sent with its batch");
        d.clear().await.unwrap();
    });
}

/// `RedisBuilder::coalesce(false)`: every command is sent on its own, however many tasks send
/// at once (and each is answered as before). Nor does a connection made on a current-thread
/// runtime coalesce: its driver runs on its senders' thread once they have all sent, and
/// writes what they sent together already.
#[test]
fn coalescing_can_be_turned_off_and_is_for_threaded_runtimes() {
    let server = RedisServer::start().unwrap();
    let redis = Redis::builder(&server.url())
        .coalesce(false)
        .build()
        .unwrap();
    let rt = two_workers();
    let c = std::sync::Arc::new(pottery::aio::RedisCounter::<String>::new(
        &redis,
        unique_key("coalesce-off"),
    ));
    rt.block_on(async {
        let tasks: Vec<_> = (0..64)
            .map(|t| {
                let c = c.clone();
                tokio::spawn(async move {
                    for i in 1..=50 {
                        assert_eq!(c.incr(&format!("t{t}"), 1).await.unwrap(), i);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    assert_eq!(pottery::testing::coalesced_commands(&redis), 0);
    let redis = server.redis();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let c = pottery::aio::RedisCounter::<String>::new(&redis, unique_key("coalesce-ct"));
    let fields: Vec<String> = (0..64).map(|t| format!("t{t}")).collect();
    let counts = rt.block_on(futures_util::future::join_all(
        fields.iter().map(|f| c.incr(f, 1)),
    ));
    assert!(counts.into_iter().all(|n| n.unwrap() == 1));
    assert_eq!(pottery::testing::coalesced_commands(&redis), 0);
}
