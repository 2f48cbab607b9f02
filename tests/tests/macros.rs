//! The attribute macros on `fn` and `async fn`, against a real server.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use pottery::testing::shared_server;
use pottery::{Redis, redis_cache, synchronize, timed};
use redis::Commands;

fn server_redis() -> Redis {
    shared_server().redis()
}

static SQUARES: AtomicUsize = AtomicUsize::new(0);

/// Squares `n`, slowly.
#[redis_cache(key = "macro-test:squares", redis = server_redis(), timeout = 30)]
fn square(n: i64) -> i64 {
    SQUARES.fetch_add(1, Ordering::SeqCst);
    n * n
}

#[redis_cache(key = "macro-test:greet", redis = server_redis(), timeout = none)]
fn greet(name: &str, mut times: usize) -> String {
    times = times.max(1);
    format!("hello {name}").repeat(times)
}

// Durations as `Duration` expressions (a number means seconds, as for `square`).
const ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(45);

#[redis_cache(
    key = "macro-test:nothing",
    redis = server_redis(),
    timeout = ANSWER_TIMEOUT,
    ttl = std::time::Duration::from_secs(600)
)]
fn answer() -> u32 {
    42
}

#[redis_cache(key = "macro-test:async", redis = server_redis())]
async fn slow_double(n: u32) -> Vec<u32> {
    tokio::task::yield_now().await;
    vec![n, n]
}

#[test]
fn redis_cache_on_fn() {
    square::cache_clear().unwrap();
    let before = SQUARES.load(Ordering::SeqCst);
    assert_eq!(square(-1), 1);
    assert_eq!(square(-2), 4, "f(-1) and f(-2) are cached apart");
    assert_eq!(square(-1), 1);
    assert_eq!(SQUARES.load(Ordering::SeqCst) - before, 2);
    let info = square::cache_info().unwrap();
    assert_eq!((info.hits, info.misses, info.currsize), (1, 2, 2));
    // The field is the arguments' JSON array; the TTL is the one asked for.
    let mut conn = server_redis().connection().unwrap();
    let raw: Option<String> = conn.hget("macro-test:squares", "[-2]").unwrap();
    assert_eq!(raw.as_deref(), Some("4"));
    let ttl: i64 = conn.ttl("macro-test:squares").unwrap();
    assert!((1..=30).contains(&ttl), "{ttl}");
    // bypass recomputes and stores without counting; wrapped skips the cache.
    assert_eq!(square::bypass(3), 9);
    assert_eq!(square::wrapped(4), 16);
    let info = square::cache_info().unwrap();
    assert_eq!((info.hits, info.misses, info.currsize), (1, 2, 3));
    assert!(square::cache().is_some());
    square::cache_clear().unwrap();
    assert_eq!(square::cache_info().unwrap(), pottery::CacheInfo::default());

    greet::cache_clear().unwrap();
    assert_eq!(greet("ada", 2), "hello adahello ada");
    assert_eq!(greet("ada", 2), "hello adahello ada");
    assert_eq!(greet::cache_info().unwrap().hits, 1);
    let ttl: i64 = conn.ttl("macro-test:greet").unwrap();
    assert_eq!(ttl, -1, "timeout = none");
    let raw: Option<String> = conn.hget("macro-test:greet", "[\"ada\", 2]").unwrap();
    assert_eq!(raw.as_deref(), Some("\"hello adahello ada\""));
    greet::cache_clear().unwrap();

    answer::cache_clear().unwrap();
    assert_eq!(answer(), 42);
    assert_eq!(answer(), 42);
    assert_eq!(answer::cache_info().unwrap().hits, 1);
    let ttl: i64 = conn.ttl("macro-test:nothing").unwrap();
    assert!(
        (31..=45).contains(&ttl),
        "the hash's sliding timeout is 45 s: {ttl}"
    );
    answer::cache_clear().unwrap();
}

#[tokio::test]
async fn redis_cache_on_async_fn() {
    slow_double::cache_clear().unwrap();
    assert_eq!(slow_double(4).await, [4, 4]);
    assert_eq!(slow_double(4).await, [4, 4]);
    assert_eq!(slow_double::bypass(5).await, [5, 5]);
    assert_eq!(slow_double::wrapped(6).await, [6, 6]);
    let info = slow_double::cache_info().unwrap();
    assert_eq!((info.hits, info.misses, info.currsize), (1, 1, 2));
    slow_double::cache_clear().unwrap();
}

/// A cache whose Redis is unreachable: the function still answers.
#[redis_cache(key = "unreachable", redis = Redis::from_url("redis://127.0.0.1:1/0"))]
fn still_works(n: u8) -> u8 {
    n + 1
}

#[test]
fn redis_cache_never_fails_the_function() {
    assert_eq!(still_works(1), 2);
    assert_eq!(still_works(1), 2);
    assert_eq!(still_works::bypass(2), 3);
}

static TIMINGS: Mutex<Vec<(&'static str, Duration)>> = Mutex::new(Vec::new());

fn record(name: &'static str, took: Duration) {
    TIMINGS.lock().unwrap().push((name, took));
}

#[timed(callback = record)]
fn nap(ms: u64) -> u64 {
    if ms == 0 {
        return 0; // an early return is timed too
    }
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

#[timed(name = "async nap", callback = record)]
async fn async_nap(ms: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    ms
}

#[timed]
fn plain() -> &'static str {
    "unchanged"
}

#[tokio::test]
async fn timed_on_fn_and_async_fn() {
    assert_eq!(nap(15), 15);
    assert_eq!(nap(0), 0);
    assert_eq!(async_nap(15).await, 15);
    assert_eq!(plain(), "unchanged");
    let timings = TIMINGS.lock().unwrap().clone();
    let naps: Vec<_> = timings.iter().filter(|(n, _)| *n == "nap").collect();
    assert_eq!(naps.len(), 2);
    assert!(naps.iter().any(|(_, d)| *d >= Duration::from_millis(15)));
    let async_naps: Vec<_> = timings.iter().filter(|(n, _)| *n == "async nap").collect();
    assert_eq!(async_naps.len(), 1);
    assert!(async_naps[0].1 >= Duration::from_millis(15));
}

#[derive(Debug)]
#[allow(dead_code)] // the payloads are for Debug output
enum AppError {
    Lock(pottery::Error),
    Redis(redis::RedisError),
}

impl From<pottery::Error> for AppError {
    fn from(e: pottery::Error) -> Self {
        AppError::Lock(e)
    }
}

impl From<redis::RedisError> for AppError {
    fn from(e: redis::RedisError) -> Self {
        AppError::Redis(e)
    }
}

/// An unprotected read-modify-write: safe only under the lock.
#[synchronize(key = "macro-test:counter-lock", masters = [server_redis()], auto_release_time = 5000)]
fn bump(key: &str) -> Result<i64, AppError> {
    let mut conn = server_redis().connection()?;
    let n: i64 = conn.get::<_, Option<i64>>(key)?.unwrap_or(0);
    conn.set::<_, _, ()>(key, n + 1)?;
    Ok(n + 1)
}

#[synchronize(key = "macro-test:held", masters = vec![server_redis()], blocking = false)]
fn try_once() -> Result<&'static str, AppError> {
    Ok("ran")
}

// A duration argument as a `Duration` expression (a number means seconds, as above for
// `auto_release_time` in milliseconds).
#[synchronize(
    key = "macro-test:async-lock",
    masters = [server_redis()],
    timeout = std::time::Duration::from_secs(5)
)]
async fn async_bump(key: String) -> Result<i64, pottery::Error> {
    let mut conn = server_redis().async_connection().await?;
    let n: i64 = redis::AsyncCommands::incr(&mut conn, key, 1)
        .await
        .map_err(|e| pottery::Error::Redis {
            key: None,
            source: e,
        })?;
    Ok(n)
}

#[test]
fn synchronize_excludes_and_reports_lock_failure() {
    let key = pottery_tests::unique_key("macro-sync");
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..50 {
                    bump(&key).unwrap();
                }
            });
        }
    });
    let mut conn = server_redis().connection().unwrap();
    let total: i64 = conn.get(&key).unwrap();
    assert_eq!(total, 200, "lost updates under #[synchronize]");
    // While someone else holds the lock, a non-blocking call fails with the lock error.
    let holder = pottery::Redlock::new("macro-test:held", [server_redis()]);
    let guard = holder.lock().unwrap();
    match try_once() {
        Err(AppError::Lock(pottery::Error::LockBusy { key, .. })) => {
            assert_eq!(key, "redlock:macro-test:held")
        }
        other => panic!("expected LockBusy, got {other:?}"),
    }
    guard.release().unwrap();
    assert_eq!(try_once().unwrap(), "ran");
    let _: () = conn.del(&key).unwrap();
}

#[tokio::test]
async fn synchronize_on_async_fn() {
    let key = pottery_tests::unique_key("macro-async-sync");
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let key = key.clone();
            tokio::spawn(async move { async_bump(key).await.unwrap() })
        })
        .collect();
    let mut seen = Vec::new();
    for t in tasks {
        seen.push(t.await.unwrap());
    }
    seen.sort();
    assert_eq!(seen, [1, 2, 3, 4]);
}
