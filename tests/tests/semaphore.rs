//! Semaphore: never more holders than permits (checked by a counter under the permits, over
//! every acquisition of 2 processes), progress for every worker, a SIGKILLed holder's permit
//! returning with its lease, cancelled acquires leaving nothing, sharing, errors.

use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pottery::testing::{RedisServer, shared_cluster, shared_server};
use pottery::{Error, Redis, Semaphore, aio};
use pottery_tests::{epoch_ms, poll, spawn_worker, unique_key};

const WORKER_URL: &str = "POTTERY_SEM_URL";
const WORKER_KEY: &str = "POTTERY_SEM_KEY";
const WORKER_START: &str = "POTTERY_SEM_START";
const WORKER_MILLIS: &str = "POTTERY_SEM_MILLIS";
const HOLD_MARK: &str = "SEM-HOLDING";
const RESULT_MARK: &str = "SEM-RESULT";

const PERMITS: u64 = 4;
const RUN: Duration = Duration::from_secs(5);

/// What one process's 16 workers saw.
struct Tally {
    /// Acquisitions per worker.
    per_worker: Vec<u64>,
    /// The largest holder count read under a permit.
    max_seen: i64,
    /// Reads above the permits.
    violations: u64,
}

/// 16 threads sharing one `Arc<Semaphore>` from `start` (epoch ms) for `run`: acquire, count
/// ourselves in on a separate counter (INCR), hold 0–3 ms, count out, release.
fn sixteen_workers(redis: &Redis, key: &str, start: u64, run: Duration) -> Tally {
    let sem = Arc::new(
        Semaphore::new(redis, key, PERMITS)
            .lease(Duration::from_secs(5))
            .timeout(Duration::from_secs(20)),
    );
    let counter = format!("{key}:in-use");
    let end = start + run.as_millis() as u64;
    while epoch_ms() < start {
        std::thread::sleep(Duration::from_millis(1));
    }
    let max_seen = std::sync::atomic::AtomicI64::new(0);
    let violations = AtomicU64::new(0);
    let per_worker: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|_| {
                let (sem, counter, max_seen, violations) = (&sem, &counter, &max_seen, &violations);
                s.spawn(move || {
                    let mut conn = redis.connection().unwrap();
                    let mut n = 0u64;
                    while epoch_ms() < end {
                        let permit = sem.acquire().unwrap_or_else(|e| panic!("acquire: {e}"));
                        let inside: i64 = redis::cmd("INCR").arg(counter).query(&mut conn).unwrap();
                        max_seen.fetch_max(inside, Ordering::SeqCst);
                        if inside > PERMITS as i64 {
                            violations.fetch_add(1, Ordering::SeqCst);
                        }
                        std::thread::sleep(Duration::from_micros(rand::random::<u64>() % 3000));
                        let _: i64 = redis::cmd("DECR").arg(counter).query(&mut conn).unwrap();
                        permit.release().unwrap_or_else(|e| panic!("release: {e}"));
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    Tally {
        per_worker,
        max_seen: max_seen.into_inner(),
        violations: violations.into_inner(),
    }
}

#[test]
fn two_processes_of_sixteen_workers_never_exceed_the_permits() {
    let server = RedisServer::start().unwrap();
    let key = unique_key("sem-procs");
    let start = epoch_ms() + 1500;
    let mut child = spawn_worker(
        "semaphore_worker",
        &[
            (WORKER_URL, server.url()),
            (WORKER_KEY, key.clone()),
            (WORKER_START, start.to_string()),
            (WORKER_MILLIS, RUN.as_millis().to_string()),
        ],
    );
    let mine = sixteen_workers(&server.redis(), &key, start, RUN);
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
    let v: Vec<i64> = line
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    let (their_max, their_violations) = (v[0], v[1] as u64);
    let theirs: Vec<u64> = v[2..].iter().map(|&x| x as u64).collect();
    let total: u64 = mine.per_worker.iter().chain(&theirs).sum();
    println!(
        "{total} acquisitions; most holders seen {}; per worker here {:?}, there {:?}",
        mine.max_seen.max(their_max),
        mine.per_worker,
        theirs
    );
    assert_eq!(
        mine.violations + their_violations,
        0,
        "more holders than permits"
    );
    assert!(mine.max_seen.max(their_max) <= PERMITS as i64);
    assert_eq!(theirs.len(), 16);
    for (i, n) in mine.per_worker.iter().chain(&theirs).enumerate() {
        assert!(*n > 0, "worker {i} never got a permit");
    }
    let sem = Semaphore::new(&server.redis(), &key, PERMITS);
    assert_eq!(sem.available().unwrap(), PERMITS, "permits left taken");
}

/// Not a test of its own: the second process of the test above.
#[test]
fn semaphore_worker() {
    let Ok(url) = std::env::var(WORKER_URL) else {
        return;
    };
    let key = std::env::var(WORKER_KEY).unwrap();
    let start: u64 = std::env::var(WORKER_START).unwrap().parse().unwrap();
    let run = Duration::from_millis(std::env::var(WORKER_MILLIS).unwrap().parse().unwrap());
    let t = sixteen_workers(&Redis::from_url(&url).unwrap(), &key, start, run);
    let per: Vec<String> = t.per_worker.iter().map(u64::to_string).collect();
    println!(
        "\n{RESULT_MARK} {} {} {}",
        t.max_seen,
        t.violations,
        per.join(" ")
    );
}

/// Not a test of its own: takes every permit of the semaphore it is given, says so, and
/// sleeps until killed.
#[test]
fn semaphore_holder() {
    let Ok(url) = std::env::var(WORKER_URL) else {
        return;
    };
    let key = std::env::var(WORKER_KEY).unwrap();
    let sem =
        Semaphore::new(&Redis::from_url(&url).unwrap(), &key, 2).lease(Duration::from_millis(1500));
    let permits = [sem.acquire().unwrap(), sem.acquire().unwrap()];
    println!("\n{HOLD_MARK} {}", permits[1].token());
    std::thread::sleep(Duration::from_secs(60));
    drop(permits);
}

#[test]
fn a_killed_holder_gives_its_permits_back_when_its_lease_ends() {
    let server = shared_server();
    let key = unique_key("sem-kill");
    let mut child = spawn_worker(
        "semaphore_holder",
        &[(WORKER_URL, server.url()), (WORKER_KEY, key.clone())],
    );
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "the holder ended before holding"
        );
        if line.contains(HOLD_MARK) {
            break;
        }
    }
    let sem = Semaphore::new(&server.redis(), &key, 2).timeout(Duration::from_secs(10));
    assert!(
        sem.try_acquire().unwrap().is_none(),
        "the holder holds both"
    );
    child.kill().unwrap(); // SIGKILL: no release
    child.wait().unwrap();
    let killed = Instant::now();
    // Waiting acquire: admitted when the dead holder's lease ends (1.5 s).
    let permit = sem.acquire().unwrap();
    let took = killed.elapsed();
    println!("a permit came back {took:?} after the kill (lease 1.5 s)");
    assert!(took < Duration::from_millis(1500 + 3000), "{took:?}");
    assert!(poll(3, || sem.available().unwrap() == 1));
    permit.release().unwrap();
    assert_eq!(sem.available().unwrap(), 2);
}

#[test]
fn cancelled_acquires_leave_no_permit_taken() {
    let redis = shared_server().redis();
    let key = unique_key("sem-cancel");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let sem = aio::Semaphore::new(&redis, &key, 2).lease(Duration::from_secs(30));
        let blocker = sem.acquire().await.unwrap();
        // Both permits held for the first 50: those acquires are cut while waiting.
        let mut second = Some(sem.acquire().await.unwrap());
        let mut got = 0;
        for i in 0..100u64 {
            if i == 50 {
                second.take().unwrap().release().await.unwrap();
            }
            // Some cut within a round trip (mid-attempt), the rest within 5 ms.
            let bound = if i % 3 == 0 { 300 } else { 5000 };
            let cut = Duration::from_micros(rand::random::<u64>() % bound);
            if let Ok(r) = tokio::time::timeout(cut, sem.acquire()).await {
                got += 1;
                let permit = r.unwrap();
                if i % 2 == 0 {
                    drop(permit); // given back in the background
                } else {
                    permit.release().await.unwrap();
                }
            }
        }
        blocker.release().await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut available = 0;
        while Instant::now() < deadline {
            available = sem.available().await.unwrap();
            if available == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        println!("{got} of 100 cut acquires got a permit");
        assert_eq!(available, 2, "a cancelled acquire left a permit taken");
    });
}

#[test]
fn one_semaphore_shared_by_8_threads_and_clones_in_64_tasks() {
    fn send_static<T: Send + 'static>(t: T) -> T {
        t
    }
    let redis = shared_server().redis();
    let key = unique_key("sem-shared");
    let sem = Arc::new(Semaphore::new(&redis, &key, 3));
    let inside = AtomicUsize::new(0);
    let most = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..8 {
            let (sem, inside, most) = (&sem, &inside, &most);
            s.spawn(move || {
                for _ in 0..15 {
                    let permit = sem.acquire().unwrap();
                    let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(n, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_micros(300));
                    inside.fetch_sub(1, Ordering::SeqCst);
                    drop(permit);
                }
            });
        }
    });
    assert!(most.load(Ordering::SeqCst) <= 3);
    assert_eq!(sem.available().unwrap(), 3);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let sem = aio::Semaphore::new(&redis, &key, 3);
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let (sem, inside, most) = (sem.clone(), Arc::clone(&inside), Arc::clone(&most));
                tokio::spawn(send_static(async move {
                    for _ in 0..4 {
                        let permit = sem.acquire().await.unwrap();
                        let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(n, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_micros(300)).await;
                        inside.fetch_sub(1, Ordering::SeqCst);
                        permit.release().await.unwrap();
                    }
                }))
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert!(most.load(Ordering::SeqCst) <= 3);
        assert_eq!(sem.available().await.unwrap(), 3);
    });
}

#[test]
fn leases_tokens_watchdog_and_errors() {
    let server = RedisServer::start().unwrap();
    let redis = Redis::builder(&server.url())
        .retry_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let key = unique_key("sem-errors");
    let err = Semaphore::new(&redis, &key, 0).try_acquire().unwrap_err();
    assert!(
        matches!(err, Error::Config { .. }) && err.to_string().contains(&key),
        "{err}"
    );

    let sem = Semaphore::new(&redis, &key, 1).lease(Duration::from_millis(300));
    // Tokens increase grant after grant.
    let a = sem.acquire().unwrap();
    let t1 = a.token();
    a.release().unwrap();
    let b = sem.acquire().unwrap();
    assert!(b.token() > t1);
    // A lease that ended: extend and release say "not held".
    assert!(poll(5, || b.lost()));
    assert!(poll(5, || sem.available().unwrap() == 1));
    let err = b.extend().unwrap_err();
    assert!(matches!(err, Error::ExtendUnlockedLock { .. }), "{err}");
    let err = b.release().unwrap_err();
    assert!(matches!(err, Error::ReleaseUnlockedLock { .. }), "{err}");
    // A full semaphore: try_acquire says None, acquire runs out with LockBusy naming the key.
    let holder = sem.acquire_with_watchdog().unwrap();
    let short = Semaphore::new(&redis, &key, 1).timeout(Duration::from_millis(200));
    assert!(short.try_acquire().unwrap().is_none());
    let err = short.acquire().unwrap_err();
    assert!(err.is_lock_busy() && err.key() == Some(sem.key()), "{err}");
    // The watchdog holds it past several leases.
    let past = Instant::now() + Duration::from_millis(1000);
    while Instant::now() < past {
        assert!(
            short.try_acquire().unwrap().is_none(),
            "the watchdog let the lease end"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!holder.lost());
    holder.release().unwrap();
    // A release whose connection was killed under it is retried, and lands.
    let permit = sem.acquire().unwrap();
    let _ = server.cli(["CLIENT", "KILL", "TYPE", "normal"]);
    permit.release().unwrap();
    assert_eq!(sem.available().unwrap(), 1);
    // A release the server cannot answer (stopped) is an unknown outcome, never "not held".
    let sem = Semaphore::new(&redis, &key, 1).lease(Duration::from_secs(3));
    let permit = sem.acquire().unwrap();
    server.pause();
    let err = permit.release().unwrap_err();
    server.resume();
    assert!(matches!(err, Error::LockOutcomeUnknown { .. }), "{err}");
    assert!(err.is_maybe_applied());
    // ... and the permit comes back when its lease ends at the latest.
    assert!(poll(10, || sem.available().unwrap_or(0) == 1));
}

#[test]
fn on_a_cluster() {
    let redis = shared_cluster().redis();
    let key = unique_key("sem-cluster");
    let sem = Semaphore::new(&redis, &key, 2).timeout(Duration::from_secs(5));
    let a = sem.acquire().unwrap();
    let b = sem.acquire().unwrap();
    assert!(sem.try_acquire().unwrap().is_none());
    let waiter = std::thread::scope(|s| {
        let w = s.spawn(|| sem.acquire().map(|p| p.token()));
        std::thread::sleep(Duration::from_millis(50));
        a.release().unwrap();
        w.join().unwrap()
    });
    assert!(waiter.unwrap() > b.token());
    drop(b);
    assert_eq!(sem.available().unwrap(), 2);
}

/// A waiter is woken by the release's message, not by polling: while a holder keeps the only
/// permit for a second (a hold time, not a wait for correctness), the waiter makes a handful
/// of attempts at most (a poll every 50–200 ms would make 5–20).
#[test]
fn waiters_are_woken_by_the_release_not_by_polling() {
    let server = RedisServer::start().unwrap();
    let redis = server.redis();
    let key = unique_key("sem-wake");
    let sem = Semaphore::new(&redis, &key, 1).lease(Duration::from_secs(30));
    sem.acquire().unwrap().release().unwrap(); // the server knows the scripts now
    let holder = sem.acquire().unwrap();
    let scripts = || {
        let info = server.cli(["INFO", "commandstats"]).unwrap();
        pottery_tests::command_calls(&info, |l| {
            l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:")
        })
    };
    let before = scripts();
    let token = std::thread::scope(|s| {
        let waiter = s.spawn(|| sem.acquire().map(|p| p.token()));
        std::thread::sleep(Duration::from_secs(1));
        holder.release().unwrap();
        waiter.join().unwrap().unwrap()
    });
    // The holder's release, the waiter's attempts (refused, refused once listening, granted
    // on the release's message) and its own release on drop: 5.
    let attempts = scripts() - before;
    println!("{attempts} script calls while waiting 1 s");
    assert!(attempts <= 7, "the waiter polled: {attempts} script calls");
    assert!(token > 1);
}
