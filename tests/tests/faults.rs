//! Misbehaving servers: every call returns a typed error within its configured timeouts plus a
//! small margin, blocking and async, and invalid timeout settings are refused by the builder.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use pottery::testing::RedisServer;
use pottery::{Error, Redis, RedisDict};
use pottery_tests::unique_key;

/// What a call may take beyond its configured timeouts.
const MARGIN: Duration = Duration::from_millis(1000);

/// A listener that accepts connections and never answers (nor closes them).
fn silent_listener() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}", listener.local_addr().unwrap());
    let accepting = listener.try_clone().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in accepting.incoming() {
            match stream {
                Ok(s) => held.push(s),
                Err(_) => return,
            }
        }
    });
    (listener, url)
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed())
}

#[test]
fn the_builder_refuses_zero_timeouts() {
    let zero = Duration::ZERO;
    for b in [
        Redis::builder("redis://127.0.0.1").connection_timeout(zero),
        Redis::builder("redis://127.0.0.1").response_timeout(Some(zero)),
        Redis::cluster_builder(["redis://127.0.0.1:7000"]).connection_timeout(zero),
        Redis::cluster_builder(["redis://127.0.0.1:7000"]).response_timeout(Some(zero)),
    ] {
        match b.build() {
            Err(Error::Config { message }) => assert!(message.contains("timeout"), "{message}"),
            other => panic!("{other:?}"),
        }
    }
    Redis::builder("redis://127.0.0.1")
        .response_timeout(None)
        .build()
        .unwrap();
}

#[test]
fn a_server_that_never_answers_fails_calls_within_their_timeouts() {
    let (_listener, plain) = silent_listener();
    // With a password and a database the handshake has two commands (AUTH, SELECT) to wait
    // for; the connection timeout covers both.
    let with_auth = plain.replace("redis://", "redis://:pw@") + "/3";
    for (url, connect, response) in [
        (&plain, 1000, 1000),
        (&plain, 500, 2000),
        (&plain, 2000, 500),
        (&with_auth, 1000, 500),
    ] {
        let (connect, response) = (
            Duration::from_millis(connect),
            Duration::from_millis(response),
        );
        let bound = connect + response + MARGIN;
        let redis = Redis::builder(url)
            .connection_timeout(connect)
            .response_timeout(Some(response))
            .build()
            .unwrap();
        let d: RedisDict<String, i64> = RedisDict::new(&redis, "k");
        for _ in 0..2 {
            let (r, took) = timed(|| d.get("a"));
            eprintln!("blocking get, connect {connect:?} response {response:?}: {took:?} {r:?}");
            assert!(matches!(r, Err(Error::Redis { .. })), "{r:?}");
            assert!(took < bound, "blocking get took {took:?}, bound {bound:?}");
            let (r, took) = timed(|| d.insert("a".into(), 1));
            eprintln!("blocking insert: {took:?}");
            assert!(r.is_err() && took < bound, "insert took {took:?}");
        }
        let rt = tokio::runtime::Runtime::new().unwrap();
        let ad = d.to_async();
        for _ in 0..2 {
            let (r, took) = timed(|| rt.block_on(ad.get("a")));
            eprintln!("async get, connect {connect:?} response {response:?}: {took:?} {r:?}");
            assert!(matches!(r, Err(Error::Redis { .. })), "{r:?}");
            assert!(took < bound, "async get took {took:?}, bound {bound:?}");
        }
    }
}

#[test]
fn a_paused_server_fails_calls_within_the_response_timeout_and_works_again() {
    let server = RedisServer::start().unwrap();
    let response = Duration::from_millis(500);
    let connect = Duration::from_millis(500);
    let redis = Redis::builder(&server.url())
        .connection_timeout(connect)
        .response_timeout(Some(response))
        .build()
        .unwrap();
    let d: RedisDict<String, i64> = RedisDict::new(&redis, unique_key("paused"));
    d.insert("a".into(), 1).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ad = d.to_async();
    assert_eq!(rt.block_on(ad.get("a")).unwrap(), Some(1));
    server.pause();
    // Connected calls wait for one reply; a call that must connect first also waits for that.
    let bound = connect + response + MARGIN;
    for _ in 0..3 {
        let (r, took) = timed(|| d.get("a"));
        eprintln!("blocking get while paused: {took:?} {r:?}");
        assert!(matches!(r, Err(Error::Redis { .. })), "{r:?}");
        assert!(took < bound, "blocking get took {took:?}, bound {bound:?}");
        let (r, took) = timed(|| rt.block_on(ad.get("a")));
        eprintln!("async get while paused: {took:?} {r:?}");
        assert!(matches!(r, Err(Error::Redis { .. })), "{r:?}");
        assert!(took < bound, "async get took {took:?}, bound {bound:?}");
    }
    server.resume();
    assert!(pottery_tests::poll(5, || d.get("a").ok() == Some(Some(1))));
    assert!(pottery_tests::poll(5, || rt.block_on(ad.get("a")).ok() == Some(Some(1))));
    d.clear().unwrap();
}

#[test]
fn a_paused_cluster_node_fails_calls_within_the_timeouts_and_works_again() {
    let cluster = pottery::testing::RedisCluster::start(3).unwrap();
    let response = Duration::from_millis(500);
    let connect = Duration::from_millis(500);
    let redis = Redis::cluster_builder(cluster.urls())
        .connection_timeout(connect)
        .response_timeout(Some(response))
        .build()
        .unwrap();
    // One key on each node, so that whichever node is paused owns one of them.
    let dicts: Vec<RedisDict<String, i64>> = (0..12)
        .map(|i| RedisDict::new(&redis, format!("paused-cluster-{i}")))
        .collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    for d in &dicts {
        d.insert("a".into(), 1).unwrap();
        assert_eq!(rt.block_on(d.to_async().get("a")).unwrap(), Some(1));
    }
    cluster.nodes[0].pause();
    // Async calls keep the single-server bound. A blocking call after a failure rebuilds the
    // cluster connection: redis-rs's blocking cluster client connects to every node (the paused
    // one included), refreshes the slots and retries once, so it may take about two of each
    // timeout. It used to retry 16 times, each waiting the response timeout again, and then
    // sleep for minutes. (Measured: 2.06 s at 0.5 s + 0.5 s; before, 8.7 s, then a hang.)
    let bound = connect + response + MARGIN;
    let blocking_bound = 2 * (connect + response) + MARGIN;
    let (mut failed, mut worst_sync, mut worst_async) = (0, Duration::ZERO, Duration::ZERO);
    for d in &dicts {
        let (r, took) = timed(|| d.get("a"));
        failed += usize::from(r.is_err());
        worst_sync = worst_sync.max(took);
        let (r, took) = timed(|| rt.block_on(d.to_async().get("a")));
        failed += usize::from(r.is_err());
        worst_async = worst_async.max(took);
    }
    eprintln!(
        "cluster, one node paused: {failed} failed calls, longest blocking {worst_sync:?}, async {worst_async:?}"
    );
    assert!(failed > 0, "no key on the paused node?");
    assert!(
        worst_sync < blocking_bound,
        "blocking call took {worst_sync:?}"
    );
    assert!(worst_async < bound, "async call took {worst_async:?}");
    cluster.nodes[0].resume();
    for d in &dicts {
        assert!(pottery_tests::poll(10, || d.get("a").ok() == Some(Some(1))));
        assert!(pottery_tests::poll(10, || {
            rt.block_on(d.to_async().get("a")).ok() == Some(Some(1))
        }));
    }
}

#[test]
fn tls_against_a_plaintext_server_fails_within_the_timeouts() {
    let server = RedisServer::start().unwrap();
    let url = server.url().replace("redis://", "rediss://") + "#insecure";
    let (connect, response) = (Duration::from_millis(500), Duration::from_millis(500));
    let redis = Redis::builder(&url)
        .connection_timeout(connect)
        .response_timeout(Some(response))
        .build()
        .unwrap();
    let d: RedisDict<String, i64> = RedisDict::new(&redis, "k");
    let bound = connect + response + MARGIN;
    let (r, took) = timed(|| d.get("a"));
    eprintln!("rediss:// to plaintext, blocking: {took:?} {r:?}");
    assert!(r.is_err() && took < bound, "{took:?}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (r, took) = timed(|| rt.block_on(d.to_async().get("a")));
    eprintln!("rediss:// to plaintext, async: {took:?} {r:?}");
    assert!(r.is_err() && took < bound, "{took:?}");
}
