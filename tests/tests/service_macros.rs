//! The attributes in the shapes services use them (issue 13): fallible functions, methods on
//! an app state, per-call lock keys and caches, one computation per cold entry.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use pottery::testing::RedisServer;
use pottery::{Redis, redis_cache, synchronize};
use pottery_tests::unique_key;
use redis::Commands;

/// An error type with no serde at all.
#[derive(Debug)]
enum LoadError {
    NotFound(u64),
    Db(#[allow(dead_code)] std::io::Error),
}

impl From<pottery::Error> for LoadError {
    fn from(e: pottery::Error) -> Self {
        LoadError::Db(std::io::Error::other(e.to_string()))
    }
}

static IO_CALLS: AtomicUsize = AtomicUsize::new(0);

#[redis_cache(redis = pottery::testing::doctest_redis(), key = "svc:io-result")]
fn io_result(id: u64) -> Result<u64, std::io::Error> {
    IO_CALLS.fetch_add(1, Ordering::SeqCst);
    if id == 0 {
        Err(std::io::Error::other("no such user"))
    } else {
        Ok(id * 10)
    }
}

static ENUM_CALLS: AtomicUsize = AtomicUsize::new(0);

#[redis_cache(redis = pottery::testing::doctest_redis(), key = "svc:enum-result")]
fn enum_result(id: u64) -> Result<Option<String>, LoadError> {
    ENUM_CALLS.fetch_add(1, Ordering::SeqCst);
    match id {
        0 => Err(LoadError::NotFound(id)),
        1 => Ok(None),
        _ => Ok(Some(format!("user-{id}"))),
    }
}

static OPT_CALLS: AtomicUsize = AtomicUsize::new(0);

#[redis_cache(redis = pottery::testing::doctest_redis(), key = "svc:option")]
fn option_value(id: u64) -> Option<u64> {
    OPT_CALLS.fetch_add(1, Ordering::SeqCst);
    (id > 0).then_some(id)
}

static NONE_CALLS: AtomicUsize = AtomicUsize::new(0);

#[redis_cache(redis = pottery::testing::doctest_redis(), key = "svc:option-none", cache_none = true)]
fn option_cache_none(id: u64) -> Option<u64> {
    NONE_CALLS.fetch_add(1, Ordering::SeqCst);
    (id > 0).then_some(id)
}

/// `Ok` is stored and `Err` is not, whatever the error type (none of them serializes);
/// `None` is not stored unless `cache_none`.
#[test]
fn results_store_ok_and_options_store_some() {
    io_result::cache_clear().unwrap();
    assert!(io_result(0).is_err());
    assert!(io_result(0).is_err());
    assert_eq!(
        IO_CALLS.load(Ordering::SeqCst),
        2,
        "an Err is never served from the cache"
    );
    assert_eq!(io_result(4).unwrap(), 40);
    assert_eq!(io_result(4).unwrap(), 40);
    assert_eq!(IO_CALLS.load(Ordering::SeqCst), 3, "an Ok is");
    assert_eq!(io_result::cache_info().unwrap().currsize, 1);

    enum_result::cache_clear().unwrap();
    assert!(matches!(enum_result(0), Err(LoadError::NotFound(0))));
    assert!(matches!(enum_result(0), Err(LoadError::NotFound(0))));
    assert_eq!(enum_result(1).unwrap(), None);
    assert_eq!(enum_result(1).unwrap(), None);
    assert_eq!(enum_result(2).unwrap().as_deref(), Some("user-2"));
    assert_eq!(enum_result(2).unwrap().as_deref(), Some("user-2"));
    assert_eq!(
        ENUM_CALLS.load(Ordering::SeqCst),
        5,
        "Err and Ok(None) recomputed"
    );
    assert_eq!(enum_result::cache_info().unwrap().currsize, 1);

    option_value::cache_clear().unwrap();
    assert_eq!(option_value(0), None);
    assert_eq!(option_value(0), None);
    assert_eq!(option_value(3), Some(3));
    assert_eq!(option_value(3), Some(3));
    assert_eq!(OPT_CALLS.load(Ordering::SeqCst), 3);

    option_cache_none::cache_clear().unwrap();
    assert_eq!(option_cache_none(0), None);
    assert_eq!(option_cache_none(0), None);
    assert_eq!(
        NONE_CALLS.load(Ordering::SeqCst),
        1,
        "cache_none stores None too"
    );
}

/// An app state with its own server and tenant: the cache and the lock live where it says.
struct AppState {
    redis: Redis,
    tenant: String,
    loads: AtomicUsize,
}

impl AppState {
    #[redis_cache(redis = self.redis.clone(), key = format!("svc:{}:users", self.tenant))]
    fn user(&self, id: u64) -> Result<String, std::io::Error> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        Ok(format!("{}-user-{id}", self.tenant))
    }

    #[redis_cache(redis = &self.redis, key = format!("svc:{}:async-users", self.tenant))]
    async fn user_async(&self, id: u64) -> Result<String, std::io::Error> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        Ok(format!("{}-async-{id}", self.tenant))
    }

    #[redis_cache(redis = self.redis.clone(), key = "svc:skip", skip = [conn])]
    fn with_client(&self, conn: &Redis, id: u64) -> u64 {
        let _ = conn;
        self.loads.fetch_add(1, Ordering::SeqCst);
        id + 1
    }

    #[synchronize(key = format!("{}:account:{id}", self.tenant), masters = [self.redis.clone()])]
    fn pay(&self, id: u64, counter: &str) -> Result<(), pottery::Error> {
        let mut conn = self.redis.connection()?;
        // An unprotected read-modify-write: only the per-account lock keeps it exact.
        let n: i64 = conn.get::<_, Option<i64>>(counter)?.unwrap_or(0);
        std::thread::sleep(Duration::from_micros(200));
        let _: () = conn.set(counter, n + 1)?;
        Ok(())
    }

    #[synchronize(key = format!("{}:async-account:{id}", self.tenant), masters = [self.redis.clone()])]
    async fn pay_async(&self, id: u64, counter: String) -> Result<(), LoadError> {
        let mut conn = self.redis.async_connection().await?;
        let n: Option<i64> = redis::cmd("GET")
            .arg(&counter)
            .query_async(&mut conn)
            .await
            .map_err(|e| LoadError::Db(std::io::Error::other(e)))?;
        let _: () = redis::cmd("SET")
            .arg(&counter)
            .arg(n.unwrap_or(0) + 1)
            .query_async(&mut conn)
            .await
            .map_err(|e| LoadError::Db(std::io::Error::other(e)))?;
        let _ = id;
        Ok(())
    }
}

fn app(server: &RedisServer, tenant: &str) -> AppState {
    AppState {
        redis: server.redis(),
        tenant: tenant.to_owned(),
        loads: AtomicUsize::new(0),
    }
}

/// `&self` methods, sync and async, with per-call `redis` and `key`: two app states on two
/// servers keep separate caches; `self` is never part of an entry.
#[test]
fn methods_on_app_states_use_their_own_server_and_key() {
    let (s1, s2) = (RedisServer::start().unwrap(), RedisServer::start().unwrap());
    let (a, b) = (app(&s1, "acme"), app(&s2, "globex"));
    assert_eq!(a.user(1).unwrap(), "acme-user-1");
    assert_eq!(a.user(1).unwrap(), "acme-user-1");
    assert_eq!(b.user(1).unwrap(), "globex-user-1");
    assert_eq!(a.loads.load(Ordering::SeqCst), 1);
    assert_eq!(b.loads.load(Ordering::SeqCst), 1);
    assert_eq!(s1.cli(["HLEN", "svc:acme:users"]).unwrap().trim(), "1");
    assert_eq!(s1.cli(["EXISTS", "svc:globex:users"]).unwrap().trim(), "0");
    assert_eq!(s2.cli(["HLEN", "svc:globex:users"]).unwrap().trim(), "1");
    // The entry is the arguments alone, as in pottery: `[1]`.
    assert_eq!(s1.cli(["HKEYS", "svc:acme:users"]).unwrap().trim(), "[1]");

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        assert_eq!(a.user_async(2).await.unwrap(), "acme-async-2");
        assert_eq!(a.user_async(2).await.unwrap(), "acme-async-2");
    });
    assert_eq!(a.loads.load(Ordering::SeqCst), 2);

    // A skipped argument needs no Serialize and is not in the entry.
    assert_eq!(a.with_client(&s1.redis(), 5), 6);
    assert_eq!(a.with_client(&s2.redis(), 5), 6);
    assert_eq!(a.loads.load(Ordering::SeqCst), 3);
    assert_eq!(s1.cli(["HKEYS", "svc:skip"]).unwrap().trim(), "[5]");
}

/// `#[synchronize(key = format!("account:{id}"))]` on a method: one account is exclusive
/// (an unprotected read-modify-write stays exact under 8 threads) while accounts run side by
/// side; the async form too.
#[test]
fn a_lock_per_account() {
    let server = RedisServer::start().unwrap();
    let state = Arc::new(app(&server, "bank"));
    let counters = [unique_key("acct-1"), unique_key("acct-2")];
    std::thread::scope(|s| {
        for t in 0..8 {
            let state = &state;
            let counter = &counters[t % 2];
            s.spawn(move || {
                for _ in 0..40 {
                    state.pay((t % 2) as u64, counter).unwrap();
                }
            });
        }
    });
    let mut conn = server.redis().connection().unwrap();
    for c in &counters {
        assert_eq!(conn.get::<_, i64>(c).unwrap(), 160, "{c}");
    }
    // Two accounts hold their locks at the same time.
    let a = pottery::Redlock::new("bank:account:0", [server.redis()]);
    let b = pottery::Redlock::new("bank:account:1", [server.redis()]);
    let (ga, gb) = (a.lock().unwrap(), b.lock().unwrap());
    drop((ga, gb));

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let counter = unique_key("async-acct");
    rt.block_on(async {
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let (state, counter) = (Arc::clone(&state), counter.clone());
                tokio::spawn(async move {
                    for _ in 0..5 {
                        state.pay_async(7, counter.clone()).await.unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    assert_eq!(conn.get::<_, i64>(&counter).unwrap(), 160);
}

static STAMPEDE_CALLS: AtomicUsize = AtomicUsize::new(0);

#[redis_cache(redis = pottery::testing::doctest_redis(), key = "svc:stampede")]
fn slow_square(n: u64) -> u64 {
    STAMPEDE_CALLS.fetch_add(1, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(150));
    n * n
}

#[redis_cache(redis = pottery::testing::doctest_redis(), key = "svc:stampede")]
async fn slow_square_async(n: u64) -> u64 {
    STAMPEDE_CALLS.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(150)).await;
    n * n
}

/// 8 threads and 8 tasks on one cold entry: one computation, and everybody gets its value.
#[test]
fn a_cold_entry_is_computed_once() {
    slow_square::cache_clear().unwrap();
    let n = rand::random::<u32>() as u64;
    let barrier = Arc::new(Barrier::new(9));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let got: Vec<u64> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let barrier = Arc::clone(&barrier);
                s.spawn(move || {
                    barrier.wait();
                    slow_square(n)
                })
            })
            .collect();
        barrier.wait();
        let tasks: Vec<_> = (0..8).map(|_| rt.spawn(slow_square_async(n))).collect();
        let mut got: Vec<u64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        got.extend(rt.block_on(async {
            let mut v = Vec::new();
            for t in tasks {
                v.push(t.await.unwrap());
            }
            v
        }));
        got
    });
    assert_eq!(got.len(), 16);
    assert!(got.iter().all(|v| *v == n * n));
    assert_eq!(
        STAMPEDE_CALLS.load(Ordering::SeqCst),
        1,
        "one computation for 16 callers"
    );
}

static PANICS: AtomicUsize = AtomicUsize::new(0);
static FIRST_STARTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[redis_cache(redis = pottery::testing::doctest_redis(), key = "svc:panicky")]
fn panics_first(n: u64) -> u64 {
    if PANICS.fetch_add(1, Ordering::SeqCst) == 0 {
        FIRST_STARTED.store(true, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(100));
        panic!("the first computation fails");
    }
    n + 1
}

/// A computation that panics does not leave the callers waiting for it stuck: the next one
/// computes.
#[test]
fn a_panicking_computation_lets_the_next_caller_compute() {
    panics_first::cache_clear().unwrap();
    let n = rand::random::<u32>() as u64;
    std::thread::scope(|s| {
        let first = s.spawn(move || std::panic::catch_unwind(|| panics_first(n)));
        // The waiters come once the first caller is computing (polled with a bound).
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !FIRST_STARTED.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(
            FIRST_STARTED.load(Ordering::SeqCst),
            "the first caller computes"
        );
        let waiters: Vec<_> = (0..4).map(|_| s.spawn(move || panics_first(n))).collect();
        assert!(first.join().unwrap().is_err());
        for w in waiters {
            assert_eq!(w.join().unwrap(), n + 1);
        }
    });
}

/// `RedisCache::get_or_try_compute` by hand: the same rule as the attribute.
#[test]
fn get_or_try_compute_stores_ok_only() {
    let redis = pottery::testing::doctest_redis();
    let cache = pottery::RedisCache::new(&redis, unique_key("try-compute"));
    let e: Result<u8, LoadError> = cache
        .get_or_try_compute(&(1,), || Err(LoadError::NotFound(1)))
        .unwrap();
    assert!(e.is_err());
    assert_eq!(cache.info().unwrap().currsize, 0);
    let v: Result<u8, LoadError> = cache.get_or_try_compute(&(1,), || Ok(9)).unwrap();
    assert_eq!(v.unwrap(), 9);
    let v: Result<u8, LoadError> = cache
        .get_or_try_compute(&(1,), || Err(LoadError::NotFound(1)))
        .unwrap();
    assert_eq!(v.unwrap(), 9, "served from the cache");
    cache.clear().unwrap();
}

static TTL_CALLS: AtomicUsize = AtomicUsize::new(0);

#[redis_cache(redis = pottery::testing::doctest_redis(), key = "svc:ttl", ttl = 1)]
fn price(item: u64) -> u64 {
    TTL_CALLS.fetch_add(1, Ordering::SeqCst) as u64 + item
}

/// `ttl = 1` under a call every 100 ms: the entry expires a second after it was stored, hits
/// notwithstanding, and is computed again; the hash's sliding timeout still applies.
#[test]
fn entries_expire_on_their_own() {
    price::cache_clear().unwrap();
    let started = std::time::Instant::now();
    let mut seen = std::collections::BTreeSet::new();
    while started.elapsed() < Duration::from_millis(2500) {
        seen.insert(price(1));
        std::thread::sleep(Duration::from_millis(100));
    }
    let computed = TTL_CALLS.load(Ordering::SeqCst);
    // Computed at the start and again after each expiry: at least twice, and never more often
    // than once a second (so at most four times in 2.5 s).
    assert!((2..=4).contains(&computed), "computed {computed} times");
    assert_eq!(seen.len(), computed);
    // The stored form keeps the deadline with the value, or (on a server with hash-field
    // expiry, such as Valkey 9) the field has a TTL of its own.
    let mut conn = pottery::testing::doctest_redis().connection().unwrap();
    let raw: Vec<(String, String)> = conn.hgetall("svc:ttl").unwrap();
    for (field, value) in raw {
        let deadline_form = value
            .split_once('|')
            .is_some_and(|(d, _)| d.parse::<u64>().is_ok());
        let mut field_ttl = || {
            redis::cmd("HPTTL")
                .arg("svc:ttl")
                .arg("FIELDS")
                .arg(1)
                .arg(&field)
                .query::<Vec<i64>>(&mut conn)
                // -2: the field expired between HGETALL and HPTTL (so it had a TTL).
                .is_ok_and(|t| t.first().is_some_and(|t| *t > 0 || *t == -2))
        };
        assert!(deadline_form || field_ttl(), "{field} = {value}");
    }
    price::cache_clear().unwrap();
}

static REPORTS: AtomicUsize = AtomicUsize::new(0);

struct Reporter {
    redis: Redis,
}

impl Reporter {
    #[redis_cache(redis = &self.redis, key = "svc:reports", single_flight = true)]
    fn report(&self, day: u64) -> Result<String, std::io::Error> {
        REPORTS.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(200));
        Ok(format!("report {day}"))
    }
}

/// `single_flight = true`: two "processes" (two handles whose in-process flights are separate:
/// the same server under two URLs) × 4 threads miss one entry at once and compute it once.
#[test]
fn single_flight_across_processes() {
    let server = RedisServer::start().unwrap();
    let urls = [server.url(), format!("redis://127.0.0.1:{}", server.port())];
    let reporters: Vec<Reporter> = (0..8)
        .map(|t| Reporter {
            redis: Redis::from_url(&urls[t % 2]).unwrap(),
        })
        .collect();
    let day = rand::random::<u32>() as u64;
    let barrier = Barrier::new(8);
    let got: Vec<String> = std::thread::scope(|s| {
        let threads: Vec<_> = reporters
            .into_iter()
            .map(|reporter| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    reporter.report(day).unwrap()
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert!(got.iter().all(|r| *r == format!("report {day}")));
    assert_eq!(REPORTS.load(Ordering::SeqCst), 1, "one computation in all");
    // The lease is given back once the value is stored.
    assert!(pottery_tests::poll(5, || server
        .cli(["EXISTS", &format!("{{svc:reports}}:flight:[{day}]")])
        .unwrap()
        .trim()
        == "0"));
}

const CHILD_URL: &str = "POTTERY_SINGLE_FLIGHT_URL";
const CHILD_DAY: &str = "POTTERY_SINGLE_FLIGHT_DAY";
const CHILD_START: &str = "POTTERY_SINGLE_FLIGHT_START_MS";

struct Ledger {
    redis: Redis,
}

impl Ledger {
    /// Counts its computations in Redis, so that two processes can be checked together.
    #[redis_cache(redis = &self.redis, key = "svc:ledger", single_flight = true)]
    fn close(&self, day: u64) -> Result<String, std::io::Error> {
        let mut conn = self.redis.connection().map_err(std::io::Error::other)?;
        let _: i64 = conn
            .incr(format!("svc:ledger:computed:{day}"), 1)
            .map_err(std::io::Error::other)?;
        std::thread::sleep(Duration::from_millis(200));
        Ok(format!("closed {day}"))
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// 4 threads of this process close one day at a given instant.
fn close_from_four_threads(url: &str, day: u64, start_ms: u64) -> Vec<String> {
    let ledger = Ledger {
        redis: Redis::from_url(url).unwrap(),
    };
    std::thread::sleep(Duration::from_millis(start_ms.saturating_sub(unix_ms())));
    std::thread::scope(|s| {
        let threads: Vec<_> = (0..4)
            .map(|_| s.spawn(|| ledger.close(day).unwrap()))
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    })
}

/// The other process of `single_flight_across_two_os_processes` (a no-op when run alone).
#[test]
fn single_flight_child() {
    let (Ok(url), Ok(day), Ok(start)) = (
        std::env::var(CHILD_URL),
        std::env::var(CHILD_DAY),
        std::env::var(CHILD_START),
    ) else {
        return;
    };
    let got = close_from_four_threads(&url, day.parse().unwrap(), start.parse().unwrap());
    for g in got {
        println!("CLOSED {g}");
    }
}

/// `single_flight = true` across two real processes × 4 threads each, on one cold entry: one
/// computation in all (counted in Redis), and all eight callers get its value.
#[test]
fn single_flight_across_two_os_processes() {
    let server = RedisServer::start().unwrap();
    let day = rand::random::<u32>() as u64;
    let start = unix_ms() + 700;
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "single_flight_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_URL, server.url())
        .env(CHILD_DAY, day.to_string())
        .env(CHILD_START, start.to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mine = close_from_four_threads(&server.url(), day, start);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let theirs: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        // libtest may print "test … " on the same line before the first result.
        .filter_map(|l| l.find("CLOSED ").map(|i| l[i + 7..].to_owned()))
        .collect();
    assert_eq!(theirs.len(), 4, "the child reported its four results");
    assert!(
        mine.iter()
            .chain(&theirs)
            .all(|r| *r == format!("closed {day}"))
    );
    let computed = server
        .cli(["GET", &format!("svc:ledger:computed:{day}")])
        .unwrap();
    assert_eq!(
        computed.trim(),
        "1",
        "one computation across both processes"
    );
}

/// A catalog service: cached product lookups that an update must invalidate.
struct Catalog {
    redis: Redis,
    key: String,
    loads: AtomicUsize,
}

impl Catalog {
    #[redis_cache(redis = &self.redis, key = self.key.clone())]
    fn product(&self, id: u64) -> Result<String, std::io::Error> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        Ok(format!("product {id}"))
    }

    #[redis_cache(redis = &self.redis, key = format!("{}:async", self.key), ttl = 30, skip = [trace])]
    async fn product_async(&self, id: u64, lang: &str, trace: u64) -> Option<String> {
        let _ = trace;
        self.loads.fetch_add(1, Ordering::SeqCst);
        Some(format!("{lang}: product {id}"))
    }
}

/// `<fn>_invalidate` and `<fn>_prime` on methods, sync and async, on a server and a cluster:
/// they reach the very entry the call reads (same argument tuple, same key and handle).
#[test]
fn method_companions_invalidate_and_prime() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    for (kind, redis) in pottery_tests::targets() {
        let catalog = Catalog {
            redis: redis.clone(),
            key: unique_key("svc:catalog"),
            loads: AtomicUsize::new(0),
        };
        assert_eq!(catalog.product(1).unwrap(), "product 1");
        assert_eq!(catalog.product(1).unwrap(), "product 1");
        assert_eq!(catalog.loads.load(Ordering::SeqCst), 1, "{kind}");
        assert!(catalog.product_invalidate(1).unwrap(), "{kind}");
        assert!(
            !catalog.product_invalidate(1).unwrap(),
            "{kind}: gone already"
        );
        assert_eq!(catalog.product(1).unwrap(), "product 1");
        assert_eq!(
            catalog.loads.load(Ordering::SeqCst),
            2,
            "{kind}: computed again"
        );
        // Prime stores what the call returns on a hit (for a Result, the Ok value).
        catalog.product_prime(2, &"primed".to_string()).unwrap();
        assert_eq!(catalog.product(2).unwrap(), "primed");
        assert_eq!(catalog.loads.load(Ordering::SeqCst), 2, "{kind}");
        let cache = pottery::RedisCache::new(&redis, catalog.key.clone());
        assert_eq!(
            cache.get::<_, String>(&(2,)).unwrap().as_deref(),
            Some("primed")
        );

        rt.block_on(async {
            let got = catalog.product_async(7, "en", 1).await;
            assert_eq!(got.as_deref(), Some("en: product 7"));
            // `trace` is skipped: not part of the entry, so any value reaches it.
            assert!(catalog.product_async_invalidate(7, "en", 99).await.unwrap());
            assert!(!catalog.product_async_invalidate(7, "fr", 1).await.unwrap());
            catalog
                .product_async_prime(8, "fr", 0, &"fr: primed".to_string())
                .await
                .unwrap();
            assert_eq!(
                catalog.product_async(8, "fr", 5).await.as_deref(),
                Some("fr: primed")
            );
        });
        assert_eq!(catalog.loads.load(Ordering::SeqCst), 3, "{kind}");
        cache.clear().unwrap();
        pottery::RedisCache::new(&redis, format!("{}:async", catalog.key))
            .clear()
            .unwrap();
    }
}

static STOCK_CALLS: AtomicUsize = AtomicUsize::new(0);

#[redis_cache(redis = pottery::testing::doctest_redis(), key = "svc:stock")]
fn stock(sku: String, warehouse: u32) -> u64 {
    STOCK_CALLS.fetch_add(1, Ordering::SeqCst);
    u64::from(warehouse) + sku.len() as u64
}

#[redis_cache(redis = pottery::testing::doctest_redis(), key = "svc:stock-async")]
async fn stock_async(sku: String) -> Result<u64, std::io::Error> {
    STOCK_CALLS.fetch_add(1, Ordering::SeqCst);
    Ok(sku.len() as u64)
}

/// The free-function companions: next to the function, async when it is.
#[test]
fn function_companions_invalidate_and_prime() {
    stock::cache_clear().unwrap();
    assert_eq!(stock("abc".into(), 1), 4);
    assert_eq!(stock("abc".into(), 1), 4);
    assert_eq!(STOCK_CALLS.load(Ordering::SeqCst), 1);
    assert!(stock_invalidate("abc".into(), 1).unwrap());
    assert!(!stock_invalidate("abc".into(), 2).unwrap());
    assert_eq!(stock("abc".into(), 1), 4);
    assert_eq!(STOCK_CALLS.load(Ordering::SeqCst), 2);
    stock_prime("xyz".into(), 9, &100).unwrap();
    assert_eq!(stock("xyz".into(), 9), 100);
    assert_eq!(stock::cache_info().unwrap().hits, 2);
    stock::cache_clear().unwrap();

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        stock_async::cache_clear_async().await.unwrap();
        stock_async_prime("a".into(), &42).await.unwrap();
        assert_eq!(stock_async("a".into()).await.unwrap(), 42);
        assert!(stock_async_invalidate("a".into()).await.unwrap());
        assert_eq!(stock_async("a".into()).await.unwrap(), 1);
        stock_async::cache_clear_async().await.unwrap();
    });
    assert_eq!(STOCK_CALLS.load(Ordering::SeqCst), 3);
}

/// A service whose cache's server hangs (accepts, never answers).
struct Hung {
    redis: Redis,
    calls: AtomicUsize,
}

impl Hung {
    #[redis_cache(redis = &self.redis, key = "svc:hung")]
    fn answer(&self, n: u64) -> u64 {
        self.calls.fetch_add(1, Ordering::SeqCst);
        n + 1
    }

    #[redis_cache(redis = &self.redis, key = "svc:hung-async")]
    async fn answer_async(&self, n: u64) -> u64 {
        self.calls.fetch_add(1, Ordering::SeqCst);
        n + 1
    }
}

/// Against a server that never answers, with a 2 s timeout.
fn hung() -> (pottery::testing::FaultyServer, Hung) {
    let server = pottery::testing::FaultyServer::silent().unwrap();
    let redis = Redis::builder(&server.url())
        .connection_timeout(Duration::from_secs(2))
        .response_timeout(Some(Duration::from_secs(2)))
        .build()
        .unwrap();
    let hung = Hung {
        redis,
        calls: AtomicUsize::new(0),
    };
    (server, hung)
}

/// A `&self` method's cache is made on every call, but its circuit breaker is the handle's:
/// after the first call waits out the timeout, the next (within `retry_after`, 1 s) calls the
/// function at once instead of waiting again.
#[test]
fn method_cache_keeps_its_breaker() {
    let (_server, hung) = hung();
    assert_eq!(hung.answer(1), 2, "the function answers; the cache failed");
    let started = std::time::Instant::now();
    assert_eq!(hung.answer(2), 3);
    let second = started.elapsed();
    assert!(
        second < Duration::from_secs(1),
        "second call took {second:?}"
    );
    assert_eq!(hung.calls.load(Ordering::SeqCst), 2);
}

/// The async form of [`method_cache_keeps_its_breaker`].
#[test]
fn async_method_cache_keeps_its_breaker() {
    let (_server, hung) = hung();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        assert_eq!(hung.answer_async(1).await, 2);
        let started = std::time::Instant::now();
        assert_eq!(hung.answer_async(2).await, 3);
        let second = started.elapsed();
        assert!(
            second < Duration::from_secs(1),
            "second call took {second:?}"
        );
    });
    assert_eq!(hung.calls.load(Ordering::SeqCst), 2);
}

/// A repository trait, implemented with a cached method.
trait Products {
    fn name(&self, id: u64) -> String;
}

impl Products for Catalog {
    // A trait impl can hold no other items: no companions here.
    #[redis_cache(redis = &self.redis, key = format!("{}:names", self.key), companions = false)]
    fn name(&self, id: u64) -> String {
        self.loads.fetch_add(1, Ordering::SeqCst);
        format!("name {id}")
    }
}

/// `companions = false` makes `#[redis_cache]` usable on a trait impl's method.
#[test]
fn trait_impl_methods_without_companions() {
    let catalog = Catalog {
        redis: pottery::testing::doctest_redis(),
        key: unique_key("svc:trait"),
        loads: AtomicUsize::new(0),
    };
    assert_eq!(catalog.name(1), "name 1");
    assert_eq!(catalog.name(1), "name 1");
    assert_eq!(catalog.loads.load(Ordering::SeqCst), 1);
    pottery::RedisCache::new(&catalog.redis, format!("{}:names", catalog.key))
        .clear()
        .unwrap();
}
