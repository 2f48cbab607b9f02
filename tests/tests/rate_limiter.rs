//! RateLimiter (GCRA on the server's clock): the admitted count over every value collected,
//! across threads and processes; retry_after; a skewed client clock; bad arguments; the async
//! and batch surfaces.

use std::io::{BufReader, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use pottery::testing::{RedisServer, shared_cluster, shared_server};
use pottery::{Error, RateLimiter, Redis, aio};
use pottery_tests::{epoch_ms, spawn_worker, unique_key};

const WORKER_URL: &str = "POTTERY_RL_URL";
const WORKER_KEY: &str = "POTTERY_RL_KEY";
const WORKER_START: &str = "POTTERY_RL_START";
const WORKER_MILLIS: &str = "POTTERY_RL_MILLIS";
const RESULT_MARK: &str = "RL-RESULT";

const RATE: u64 = 1000;
const BURST: u64 = 50;
const RUN: Duration = Duration::from_secs(3);

/// What one process's 8 threads saw: admitted units, and the wall-clock span (ms since the
/// epoch) from its first request to its last admitted reply.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    admitted: u64,
    first_sent: u64,
    last_admitted: u64,
    calls: u64,
}

/// 8 threads on one shared limiter, from `start` (epoch ms) for `run`: half call
/// `try_acquire` and sleep the refusal's `retry_after`, half call `acquire`.
fn eight_threads(limiter: &RateLimiter, start: u64, run: Duration) -> Tally {
    let end = start + run.as_millis() as u64;
    while epoch_ms() < start {
        std::thread::sleep(Duration::from_millis(1));
    }
    let admitted = AtomicU64::new(0);
    let calls = AtomicU64::new(0);
    let last = AtomicU64::new(0);
    let first = epoch_ms();
    std::thread::scope(|s| {
        for t in 0..8 {
            let (admitted, calls, last) = (&admitted, &calls, &last);
            s.spawn(move || {
                while epoch_ms() < end {
                    calls.fetch_add(1, Ordering::Relaxed);
                    let d = if t % 2 == 0 {
                        limiter.try_acquire(1).expect("try_acquire")
                    } else {
                        match limiter.acquire(1) {
                            Ok(d) => d,
                            Err(e) => panic!("acquire: {e}"),
                        }
                    };
                    if d.allowed {
                        admitted.fetch_add(1, Ordering::SeqCst);
                        last.fetch_max(epoch_ms(), Ordering::SeqCst);
                    } else {
                        let wait = d.retry_after.expect("a refusal says when to come back");
                        std::thread::sleep(wait);
                    }
                }
            });
        }
    });
    Tally {
        admitted: admitted.into_inner(),
        first_sent: first,
        last_admitted: last.into_inner(),
        calls: calls.into_inner(),
    }
}

fn limiter(redis: &Redis, key: &str) -> RateLimiter {
    RateLimiter::new(redis, key, RATE, Duration::from_secs(1))
        .burst(BURST)
        .timeout(Duration::from_secs(2))
}

#[test]
fn two_processes_of_eight_threads_share_one_limit() {
    let server = RedisServer::start().unwrap();
    let key = unique_key("rl-procs");
    let start = epoch_ms() + 1500; // time for the child to start
    let mut child = spawn_worker(
        "rate_limiter_worker",
        &[
            (WORKER_URL, server.url()),
            (WORKER_KEY, key.clone()),
            (WORKER_START, start.to_string()),
            (WORKER_MILLIS, RUN.as_millis().to_string()),
        ],
    );
    let mine = eight_threads(&limiter(&server.redis(), &key), start, RUN);

    let mut out = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_to_string(&mut out)
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the worker failed: {}\n{out}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let line = out
        .lines()
        .find_map(|l| l.split_once(RESULT_MARK).map(|(_, r)| r.to_owned()))
        .unwrap_or_else(|| panic!("no result from the worker:\n{out}"));
    let v: Vec<u64> = line
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    let theirs = Tally {
        admitted: v[0],
        first_sent: v[1],
        last_admitted: v[2],
        calls: v[3],
    };
    assert!(
        mine.admitted > 0 && theirs.admitted > 0,
        "{mine:?} {theirs:?}"
    );
    let admitted = mine.admitted + theirs.admitted;
    // Every admission happened on the server between the first request and the last
    // admitted reply (one machine: one clock): GCRA admits at most burst + span / T there.
    let first = mine.first_sent.min(theirs.first_sent);
    let last = mine.last_admitted.max(theirs.last_admitted);
    let span_ms = last.saturating_sub(first);
    let bound = BURST + span_ms * RATE / 1000 + 1;
    let nominal = BURST + RATE * RUN.as_millis() as u64 / 1000;
    println!(
        "admitted {admitted} ({} + {}) in {span_ms} ms, {} calls; bound {bound}; nominal {nominal}",
        mine.admitted,
        theirs.admitted,
        mine.calls + theirs.calls
    );
    assert!(admitted <= bound, "admitted {admitted} > {bound}");
    assert!(
        admitted * 100 >= nominal * 95,
        "admitted {admitted} < 95% of {nominal}"
    );
}

/// Not a test of its own: the second process of `two_processes_of_eight_threads_share_one_limit`.
#[test]
fn rate_limiter_worker() {
    let Ok(url) = std::env::var(WORKER_URL) else {
        return;
    };
    let key = std::env::var(WORKER_KEY).unwrap();
    let start: u64 = std::env::var(WORKER_START).unwrap().parse().unwrap();
    let run = Duration::from_millis(std::env::var(WORKER_MILLIS).unwrap().parse().unwrap());
    let redis = Redis::from_url(&url).unwrap();
    let t = eight_threads(&limiter(&redis, &key), start, run);
    println!(
        "\n{RESULT_MARK} {} {} {} {}",
        t.admitted, t.first_sent, t.last_admitted, t.calls
    );
}

#[test]
fn a_caller_that_sleeps_retry_after_is_admitted() {
    let redis = shared_server().redis();
    for (rate, period_ms, burst, n) in [(10, 1000, 1, 1), (20, 1000, 5, 3), (1000, 1000, 10, 7)] {
        let limiter = RateLimiter::new(
            &redis,
            &unique_key("rl-retry"),
            rate,
            Duration::from_millis(period_ms),
        )
        .burst(burst);
        let interval = Duration::from_millis(period_ms) / rate as u32;
        for round in 0..5 {
            // Empty the bucket, then ask for n: refused unless the server's clock refilled n
            // meanwhile (at 1,000 a second, n milliseconds), so empty it again until it is.
            let refused = (0..100)
                .find_map(|_| {
                    while limiter.try_acquire(1).unwrap().allowed {}
                    Some(limiter.try_acquire(n).unwrap()).filter(|d| !d.allowed)
                })
                .expect("a request for n refused right after emptying the bucket, in 100 tries");
            // Fewer than n left (the server's clock may have refilled some since the bucket
            // was emptied: at 1,000 a second, one a millisecond).
            assert!(refused.remaining < n, "{refused:?}");
            let wait = refused.retry_after.unwrap();
            assert!(
                wait > Duration::ZERO && wait <= interval * n as u32,
                "round {round}: {wait:?} for {n} x {interval:?}"
            );
            assert!(
                refused.reset_after <= interval * burst as u32,
                "{refused:?}"
            );
            std::thread::sleep(wait);
            let d = limiter.try_acquire(n).unwrap();
            assert!(
                d.allowed,
                "round {round}: refused after sleeping {wait:?}: {d:?}"
            );
            assert_eq!(d.retry_after, None);
        }
        limiter.reset().unwrap();
    }
}

#[test]
fn decisions_count_down_and_reset() {
    let redis = shared_server().redis();
    let limiter = RateLimiter::new(
        &redis,
        &unique_key("rl-count"),
        1,
        Duration::from_secs(3600),
    )
    .burst(5);
    let remaining: Vec<u64> = (0..5)
        .map(|_| {
            let d = limiter.try_acquire(1).unwrap();
            assert!(d.allowed);
            d.remaining
        })
        .collect();
    assert_eq!(remaining, [4, 3, 2, 1, 0]);
    let peek = limiter.try_acquire(0).unwrap();
    assert!(peek.allowed && peek.remaining == 0, "{peek:?}");
    let d = limiter.try_acquire(1).unwrap();
    assert!(!d.allowed);
    assert!(d.retry_after.unwrap() > Duration::from_secs(3500), "{d:?}");
    assert!(d.reset_after > Duration::from_secs(5 * 3600 - 10), "{d:?}");
    // The key expires when the bucket is full again: it exists now, with a TTL.
    let mut conn = redis.connection().unwrap();
    let ttl: i64 = redis::cmd("PTTL")
        .arg(limiter.key())
        .query(&mut conn)
        .unwrap();
    assert!(ttl > 0, "{ttl}");
    limiter.reset().unwrap();
    assert_eq!(limiter.try_acquire(5).unwrap().remaining, 0);
    limiter.reset().unwrap();
}

#[test]
fn bad_arguments_are_config_errors() {
    let redis = shared_server().redis();
    let key = unique_key("rl-bad");
    let cases = [
        RateLimiter::new(&redis, &key, 0, Duration::from_secs(1)),
        RateLimiter::new(&redis, &key, 10, Duration::ZERO),
        RateLimiter::new(&redis, &key, 10, Duration::from_secs(1)).burst(0),
    ];
    for limiter in &cases {
        for err in [
            limiter.try_acquire(1).unwrap_err(),
            limiter.acquire(1).unwrap_err(),
        ] {
            assert!(matches!(err, Error::Config { .. }), "{limiter:?}: {err}");
            assert!(err.to_string().contains(&key), "{err}");
        }
    }
    let limiter = RateLimiter::new(&redis, &key, 10, Duration::from_secs(1)).burst(3);
    let err = limiter.try_acquire(4).unwrap_err();
    assert!(
        matches!(err, Error::Config { .. }) && err.to_string().contains("burst"),
        "{err}"
    );
    let err = limiter.acquire(4).unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err}");
    // Nothing was written by the refused calls.
    assert!(!redis.connection().unwrap().exists_key(limiter.key()));
    // Data that is not a limiter's state is an error naming the key, not a default.
    let mut conn = redis.connection().unwrap();
    let _: () = redis::cmd("SET")
        .arg(limiter.key())
        .arg("not a number")
        .query(&mut conn)
        .unwrap();
    let err = limiter.try_acquire(1).unwrap_err();
    assert!(err.to_string().contains(limiter.key()), "{err}");
    limiter.reset().unwrap();
}

trait ExistsKey {
    fn exists_key(&mut self, key: &str) -> bool;
}

impl ExistsKey for pottery::PooledConnection {
    fn exists_key(&mut self, key: &str) -> bool {
        redis::cmd("EXISTS").arg(key).query::<i64>(self).unwrap() == 1
    }
}

#[test]
fn acquire_gives_up_when_the_next_admission_is_beyond_its_timeout() {
    let redis = shared_server().redis();
    let limiter = RateLimiter::new(
        &redis,
        &unique_key("rl-timeout"),
        1,
        Duration::from_secs(60),
    )
    .burst(1)
    .timeout(Duration::from_millis(200));
    assert!(limiter.acquire(1).unwrap().allowed);
    let started = Instant::now();
    let err = limiter.acquire(1).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(30), "acquire hung");
    match &err {
        Error::RateLimited {
            key, retry_after, ..
        } => {
            assert_eq!(key, limiter.key());
            assert!(*retry_after > Duration::from_secs(50));
        }
        other => panic!("{other}"),
    }
    assert!(err.is_retryable());
    limiter.reset().unwrap();
}

/// A worker whose wall clock is five minutes ahead (an LD_PRELOAD shim moves
/// `clock_gettime(CLOCK_REALTIME)` and `gettimeofday`) shares the limit exactly.
#[test]
fn a_skewed_client_clock_changes_nothing() {
    let Some(shim) = skew_shim() else {
        println!("no C compiler: skipped");
        return;
    };
    let server = shared_server();
    let key = unique_key("rl-skew");
    let limiter = RateLimiter::new(&server.redis(), &key, 10, Duration::from_secs(1)).burst(4);
    // This process takes 3 of 4; the skewed worker sees 1 left, takes it, is then refused
    // with at most 100 ms to wait, sleeps it and is admitted.
    for _ in 0..3 {
        assert!(limiter.try_acquire(1).unwrap().allowed);
    }
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "skewed_worker",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(WORKER_URL, server.url())
    .env(WORKER_KEY, &key)
    .env("LD_PRELOAD", &shim)
    .env("POTTERY_SKEW_SECS", "300");
    let output = cmd.output().unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = out
        .lines()
        .find_map(|l| l.split_once("SKEW-RESULT ").map(|(_, r)| r.to_owned()))
        .unwrap();
    let v: Vec<i64> = line
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    let (skew_ms, first_remaining, refused_wait_us, admitted_after) = (v[0], v[1], v[2], v[3]);
    assert!(
        skew_ms > 290_000,
        "the shim did not skew the worker's clock: {skew_ms} ms"
    );
    assert_eq!(first_remaining, 0);
    assert!(
        refused_wait_us > 0 && refused_wait_us <= 100_000,
        "{refused_wait_us}"
    );
    assert_eq!(admitted_after, 1);
    limiter.reset().unwrap();
}

#[test]
fn skewed_worker() {
    let Ok(url) = std::env::var(WORKER_URL) else {
        return;
    };
    let key = std::env::var(WORKER_KEY).unwrap();
    let skew_ms = epoch_ms() as i64 - server_time_ms(&url);
    let limiter = RateLimiter::new(
        &Redis::from_url(&url).unwrap(),
        &key,
        10,
        Duration::from_secs(1),
    )
    .burst(4);
    let first = limiter.try_acquire(1).unwrap();
    assert!(first.allowed, "{first:?}");
    let refused = limiter.try_acquire(1).unwrap();
    assert!(!refused.allowed, "{refused:?}");
    let wait = refused.retry_after.unwrap();
    std::thread::sleep(wait);
    let after = limiter.try_acquire(1).unwrap();
    println!(
        "\nSKEW-RESULT {skew_ms} {} {} {}",
        first.remaining,
        wait.as_micros(),
        i64::from(after.allowed)
    );
}

fn server_time_ms(url: &str) -> i64 {
    let mut conn = redis::Client::open(url).unwrap().get_connection().unwrap();
    let (s, us): (i64, i64) = redis::cmd("TIME").query(&mut conn).unwrap();
    s * 1000 + us / 1000
}

/// Builds the clock-skewing LD_PRELOAD shim (once per test process); `None` without `cc`.
fn skew_shim() -> Option<String> {
    let dir = std::env::temp_dir().join(format!("pottery-skew-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let src = dir.join("skew.c");
    let lib = dir.join("libskew.so");
    std::fs::write(
        &src,
        r#"#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>
#include <sys/time.h>
static long skew(void) { const char *s = getenv("POTTERY_SKEW_SECS"); return s ? atol(s) : 0; }
int clock_gettime(clockid_t id, struct timespec *ts) {
    static int (*real)(clockid_t, struct timespec *) = 0;
    if (!real) real = dlsym(RTLD_NEXT, "clock_gettime");
    int r = real(id, ts);
    if (r == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) ts->tv_sec += skew();
    return r;
}
int gettimeofday(struct timeval *tv, void *tz) {
    struct timespec ts;
    int r = clock_gettime(CLOCK_REALTIME, &ts);
    if (r == 0 && tv) { tv->tv_sec = ts.tv_sec; tv->tv_usec = ts.tv_nsec / 1000; }
    (void)tz;
    return r;
}
"#,
    )
    .ok()?;
    let status = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-o"])
        .arg(&lib)
        .arg(&src)
        .arg("-ldl")
        .status()
        .ok()?;
    status.success().then(|| lib.to_string_lossy().into_owned())
}

#[test]
fn async_clones_in_64_tasks_with_dropped_futures_stay_within_the_limit() {
    fn send_static<T: Send + 'static>(t: T) -> T {
        t
    }
    let redis = shared_server().redis();
    let key = unique_key("rl-async");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let limiter = aio::RateLimiter::new(&redis, &key, 500, Duration::from_secs(1))
            .burst(20)
            .timeout(Duration::from_secs(1));
        limiter.reset().await.unwrap();
        let admitted = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let limiter = limiter.clone();
                let admitted = Arc::clone(&admitted);
                tokio::spawn(send_static(async move {
                    let until = Instant::now() + Duration::from_millis(700);
                    let mut n = 0u64;
                    while Instant::now() < until {
                        n += 1;
                        // Every other call is dropped after 0-2 ms, wherever it is.
                        let d = if (n + i).is_multiple_of(2) {
                            let cut = Duration::from_micros(rand::random::<u64>() % 2000);
                            match tokio::time::timeout(cut, limiter.acquire(1)).await {
                                Ok(d) => d,
                                Err(_) => continue,
                            }
                        } else {
                            limiter.acquire(1).await
                        };
                        match d {
                            Ok(d) if d.allowed => {
                                admitted.fetch_add(1, Ordering::SeqCst);
                            }
                            Ok(d) => panic!("acquire returned a refusal: {d:?}"),
                            Err(Error::RateLimited { .. }) => {}
                            Err(e) => panic!("{e}"),
                        }
                    }
                }))
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let span = started.elapsed();
        let admitted = admitted.load(Ordering::SeqCst);
        // Admissions seen are at most those counted on the server (dropped futures may have
        // been admitted unseen): burst + span / T.
        let bound = 20 + (span.as_millis() as u64) * 500 / 1000 + 1;
        println!("async: {admitted} admitted in {span:?}, bound {bound}");
        assert!(admitted > 0 && admitted <= bound, "{admitted} > {bound}");
        limiter.reset().await.unwrap();
    });
}

#[test]
fn batched_decisions_and_a_cluster() {
    let cluster = shared_cluster().redis();
    let limiters: Vec<RateLimiter> = (0..4)
        .map(|i| {
            RateLimiter::new(
                &cluster,
                &unique_key(&format!("rl-batch-{i}")),
                10,
                Duration::from_secs(1),
            )
            .burst(3)
        })
        .collect();
    for l in &limiters {
        l.reset().unwrap();
        assert!(l.try_acquire(1).unwrap().allowed);
    }
    let single = shared_server().redis();
    let local: Vec<RateLimiter> = (0..3)
        .map(|i| {
            RateLimiter::new(
                &single,
                &unique_key(&format!("rl-b-{i}")),
                10,
                Duration::from_secs(1),
            )
            .burst(3)
        })
        .collect();
    let batch = pottery::Batch::new(&single);
    let pending: Vec<_> = local.iter().map(|l| batch.on(l).try_acquire(2)).collect();
    let refused = batch.on(&local[0]).try_acquire(2);
    batch.execute().unwrap();
    for p in pending {
        let d = p.get().unwrap();
        assert!(d.allowed && d.remaining == 1, "{d:?}");
    }
    assert!(!refused.get().unwrap().allowed);
    for l in limiters.iter().chain(&local) {
        l.reset().unwrap();
    }
}
