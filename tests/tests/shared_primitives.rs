//! Issue 12 regression suite: Redlock and NextId are safe and live when shared.
//!
//! Safety is asserted over every value collected (every id, every acquisition, every lease read
//! back from the masters); liveness is asserted as "made progress" or "returned within a bound",
//! never as a speed. Waiting for a condition is a bounded poll, never a sleep; the sleeps that
//! remain are hold times (how long a holder keeps the lock), not waits for correctness.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::panic::{self, AssertUnwindSafe};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pottery::testing::{Masters, RedisServer, RefusedPort};
use pottery::{Error, NextId, Redis, Redlock, aio};
use pottery_tests::{poll, unique_key};
use redis::Commands;

/// How long the NextId stress runs last.
const RUN: Duration = Duration::from_millis(1500);
/// How long the shared-Redlock stress runs last.
const LOCK_RUN: Duration = Duration::from_secs(2);
/// The bound on anything that used to hang and must now fail promptly.
const PROMPT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A handle on `url` with the same response timeout as the testing module's handles.
fn handle(url: &str) -> Redis {
    Redis::builder(url)
        .response_timeout(Some(Duration::from_secs(10)))
        .build()
        .expect("a valid URL")
}

/// `GET key` on every master (`None` for absent, or for a master that cannot be asked).
fn values(handles: &[Redis], key: &str) -> Vec<Option<String>> {
    handles
        .iter()
        .map(|h| {
            let mut conn = h.connection().ok()?;
            conn.get::<_, Option<String>>(key).ok().flatten()
        })
        .collect()
}

/// `GET key` on every master, from async code.
async fn values_async(handles: &[Redis], key: &str) -> Vec<Option<String>> {
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        let v = match h.async_connection().await {
            Ok(mut conn) => redis::cmd("GET")
                .arg(key)
                .query_async::<Option<String>>(&mut conn)
                .await
                .ok()
                .flatten(),
            Err(_) => None,
        };
        out.push(v);
    }
    out
}

/// The value a majority of masters hold, if any.
fn majority(vals: &[Option<String>]) -> Option<String> {
    let quorum = vals.len() / 2 + 1;
    vals.iter()
        .flatten()
        .find(|v| vals.iter().filter(|x| x.as_ref() == Some(*v)).count() >= quorum)
        .cloned()
}

/// True when `key` is absent on every master (a master that cannot be asked counts as "not
/// known to be gone").
fn gone_everywhere(handles: &[Redis], key: &str) -> bool {
    handles.iter().all(|h| match h.connection() {
        Ok(mut conn) => conn.exists::<_, bool>(key).map(|e| !e).unwrap_or(false),
        Err(_) => false,
    })
}

/// Polls (async) until `key` is absent on every master, for at most `bound`.
async fn wait_gone_async(handles: &[Redis], key: &str, bound: Duration) -> bool {
    let deadline = Instant::now() + bound;
    loop {
        if values_async(handles, key).await.iter().all(Option::is_none) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn set_everywhere(handles: &[Redis], key: &str, value: &str) {
    for h in handles {
        let mut conn = h.connection().unwrap();
        let _: () = conn.set(key, value).unwrap();
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn stats(label: &str, counts: &[u64]) {
    let min = counts.iter().min().copied().unwrap_or(0);
    let max = counts.iter().max().copied().unwrap_or(0);
    let total: u64 = counts.iter().sum();
    let mean = total as f64 / counts.len().max(1) as f64;
    println!(
        "{label}: {total} acquisitions by {} workers (min {min}, max {max}, mean {mean:.1})",
        counts.len()
    );
}

/// What one NextId caller got.
#[derive(Default)]
struct Tally {
    ids: Vec<u64>,
    errors: usize,
    sample: Vec<String>,
}

/// Calls `next_id()` while `keep_going()`; counts each id in `issued`.
fn hammer(ids: &NextId, keep_going: impl Fn() -> bool, issued: &AtomicU64) -> Tally {
    let mut tally = Tally::default();
    while keep_going() {
        match ids.next_id() {
            Ok(id) => {
                tally.ids.push(id);
                issued.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                tally.errors += 1;
                if tally.sample.len() < 5 {
                    tally.sample.push(e.to_string());
                }
            }
        }
    }
    tally
}

/// Safety over every id: each caller's ids strictly increase, and no id was handed out twice.
/// Returns (ids, errors).
fn check_ids(label: &str, tallies: &[Tally]) -> (usize, usize) {
    let mut all = Vec::new();
    for (t, tally) in tallies.iter().enumerate() {
        if let Some(w) = tally.ids.windows(2).find(|w| w[0] >= w[1]) {
            panic!(
                "{label}: thread {t} got id {} and then {} (not increasing)",
                w[0], w[1]
            );
        }
        all.extend_from_slice(&tally.ids);
    }
    let total = all.len();
    all.sort_unstable();
    let dups: Vec<u64> = all
        .windows(2)
        .filter(|w| w[0] == w[1])
        .map(|w| w[0])
        .collect();
    let errors: usize = tallies.iter().map(|t| t.errors).sum();
    let per: Vec<usize> = tallies.iter().map(|t| t.ids.len()).collect();
    let samples: Vec<&String> = tallies.iter().flat_map(|t| &t.sample).take(5).collect();
    println!(
        "{label}: {total} ids from {} callers (min {} / max {} per caller), {errors} errors {samples:?}",
        tallies.len(),
        per.iter().min().unwrap_or(&0),
        per.iter().max().unwrap_or(&0),
    );
    assert!(
        dups.is_empty(),
        "{label}: {} duplicate ids among {total}, first {:?}",
        dups.len(),
        &dups[..dups.len().min(10)]
    );
    (total, errors)
}

/// One check that must finish (not panic) within its bound.
struct Case {
    name: String,
    bound: Duration,
    run: Box<dyn FnOnce() + Send + 'static>,
}

fn case(name: impl Into<String>, bound: Duration, run: impl FnOnce() + Send + 'static) -> Case {
    Case {
        name: name.into(),
        bound,
        run: Box::new(run),
    }
}

/// Runs every case at once, each on its own thread, and fails listing every case that
/// panicked, took longer than its bound, or never returned (a hang: its thread is left behind).
fn all_within(cases: Vec<Case>) {
    let (tx, rx) = mpsc::channel();
    let longest = cases.iter().map(|c| c.bound).max().unwrap_or_default();
    let mut pending: BTreeMap<String, Duration> = BTreeMap::new();
    for Case { name, bound, run } in cases {
        assert!(
            pending.insert(name.clone(), bound).is_none(),
            "duplicate case {name}"
        );
        let tx = tx.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            let outcome = panic::catch_unwind(AssertUnwindSafe(run)).map_err(|p| {
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "panicked".to_owned())
            });
            let _ = tx.send((name, started.elapsed(), outcome));
        });
    }
    drop(tx);
    let deadline = Instant::now() + longest + Duration::from_secs(10);
    let mut failures = Vec::new();
    while !pending.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok((name, took, outcome)) = rx.recv_timeout(left) else {
            break;
        };
        let bound = pending.remove(&name).expect("a known case");
        println!("  {name}: {took:?} {outcome:?}");
        match outcome {
            Err(msg) => failures.push(format!("{name}: {msg}")),
            Ok(()) if took > bound => {
                failures.push(format!("{name}: returned after {took:?}, bound {bound:?}"))
            }
            Ok(()) => {}
        }
    }
    for (name, bound) in pending {
        failures.push(format!("{name}: did not return (bound {bound:?}): a hang"));
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// `None` when `r` is `Err(Config)`, else what is wrong.
fn not_config(what: &str, r: pottery::Result<()>) -> Option<String> {
    match r {
        Err(Error::Config { .. }) => None,
        other => Some(format!("{what}: expected Err(Config), got {other:?}")),
    }
}

/// Panics listing every problem found.
fn no_problems(problems: impl IntoIterator<Item = Option<String>>) {
    let problems: Vec<String> = problems.into_iter().flatten().collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn expect_config(what: &str, r: pottery::Result<()>) {
    no_problems([not_config(what, r)]);
}

/// `None` when `r` is an error whose `key()` is `key`, else what is wrong.
fn not_naming(what: &str, r: pottery::Result<()>, key: &str) -> Option<String> {
    match r {
        Err(e) if e.key() == Some(key) => {
            println!("  {what}: {e}");
            None
        }
        other => Some(format!(
            "{what}: expected an error naming `{key}` (Error::key), got {other:?}"
        )),
    }
}

fn expect_err_naming(what: &str, r: pottery::Result<()>, key: &str) {
    no_problems([not_naming(what, r, key)]);
}

/// `None` when `key` is gone from every master within 5 s, else what remained.
fn lease_left(what: &str, handles: &[Redis], key: &str) -> Option<String> {
    if poll(5, || gone_everywhere(handles, key)) {
        None
    } else {
        Some(format!(
            "{what}: left a lease on the masters: {:?}",
            values(handles, key)
        ))
    }
}

fn expect_codec(what: &str, r: pottery::Result<u64>, key: &str) {
    match r {
        Err(e @ Error::Codec { .. }) if e.key() == Some(key) => println!("  {what}: {e}"),
        other => panic!("{what}: expected Err(Codec) naming `{key}`, got {other:?}"),
    }
}

fn expect_any_err(what: &str, r: pottery::Result<()>) {
    match r {
        Err(e) => println!("  {what}: {e}"),
        Ok(()) => panic!("{what}: expected an error, got Ok"),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    pottery_tests::two_workers()
}

// ---------------------------------------------------------------------------------------------
// 1. NextId uniqueness
// ---------------------------------------------------------------------------------------------

/// NextId: 4 handles each shared by 4 threads (16 callers) for ~1.5 s on 1, 3 and 5 masters
/// hand out no id twice, each thread's ids strictly increase, no call fails, and every thread
/// gets ids (the 2026-11-30 measurement was 579 duplicates in ~75,000).
#[test]
fn nextid_shared_handles_never_duplicate() {
    for n in [1, 3, 5] {
        let masters = Masters::start(n).unwrap();
        let key = unique_key("ids-shared");
        let handles: Vec<NextId> = (0..4)
            .map(|_| NextId::new(&key, masters.handles()))
            .collect();
        let issued = AtomicU64::new(0);
        let until = Instant::now() + RUN;
        let tallies: Vec<Tally> = std::thread::scope(|s| {
            let issued = &issued;
            let joins: Vec<_> = handles
                .iter()
                .flat_map(|ids| {
                    (0..4).map(move |_| {
                        s.spawn(move || hammer(ids, || Instant::now() < until, issued))
                    })
                })
                .collect();
            joins.into_iter().map(|j| j.join().unwrap()).collect()
        });
        let label = format!("{n} master(s), 4 handles x 4 threads");
        let (_, errors) = check_ids(&label, &tallies);
        assert_eq!(errors, 0, "{label}: calls failed");
        assert!(
            tallies.iter().all(|t| !t.ids.is_empty()),
            "{label}: a thread got no id at all"
        );
    }
}

/// NextId: 8 threads each with a NextId of its own (as 8 processes would be) on 3 and 5
/// masters: no errors (retries back off within the timeout instead of failing) and no
/// duplicates.
#[test]
fn nextid_own_handles_never_fail_or_duplicate() {
    for n in [3, 5] {
        let masters = Masters::start(n).unwrap();
        let key = unique_key("ids-own");
        let issued = AtomicU64::new(0);
        let until = Instant::now() + RUN;
        let tallies: Vec<Tally> = std::thread::scope(|s| {
            let joins: Vec<_> = (0..8)
                .map(|_| {
                    let ids = NextId::new(&key, masters.handles());
                    let issued = &issued;
                    s.spawn(move || hammer(&ids, || Instant::now() < until, issued))
                })
                .collect();
            joins.into_iter().map(|j| j.join().unwrap()).collect()
        });
        let label = format!("{n} masters, 8 threads with their own NextId");
        let (_, errors) = check_ids(&label, &tallies);
        assert_eq!(errors, 0, "{label}: calls failed");
        assert!(
            tallies.iter().all(|t| !t.ids.is_empty()),
            "{label}: a thread got no id at all"
        );
    }
}

const CHILD_URLS: &str = "SHARED_PRIMITIVES_CHILD_URLS";
const CHILD_KEY: &str = "SHARED_PRIMITIVES_CHILD_KEY";
const CHILD_MILLIS: &str = "SHARED_PRIMITIVES_CHILD_MILLIS";
const READY_MARK: &str = "SHARED_PRIMITIVES_READY";
const ID_MARK: &str = "SHARED_PRIMITIVES_ID ";
const ERR_MARK: &str = "SHARED_PRIMITIVES_ERRORS ";

/// Eight threads sharing one NextId handle for `run`.
fn eight_threads_one_handle(ids: &NextId, run: Duration) -> Vec<Tally> {
    let issued = AtomicU64::new(0);
    let until = Instant::now() + run;
    std::thread::scope(|s| {
        let joins: Vec<_> = (0..8)
            .map(|_| {
                let issued = &issued;
                s.spawn(move || hammer(ids, || Instant::now() < until, issued))
            })
            .collect();
        joins.into_iter().map(|j| j.join().unwrap()).collect()
    })
}

/// NextId across processes: this process and a second one (this test binary re-run on
/// `nextid_two_processes_child`), 8 threads on one handle each, for ~1.5 s on 3 masters: no id
/// is handed out twice across both, each thread's ids increase, no call fails.
#[test]
fn nextid_two_processes_never_duplicate() {
    let masters = Masters::start(3).unwrap();
    let key = unique_key("ids-procs");
    let urls: Vec<String> = masters.servers.iter().map(RedisServer::url).collect();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "nextid_two_processes_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_URLS, urls.join(","))
        .env(CHILD_KEY, &key)
        .env(CHILD_MILLIS, RUN.as_millis().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot re-run the test binary");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        if out.read_line(&mut line).unwrap() == 0 {
            let output = child.wait_with_output().unwrap();
            panic!(
                "the child process ended before it was ready: {}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        if line.contains(READY_MARK) {
            break;
        }
    }
    // Both processes start now.
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "go").unwrap();
    drop(stdin);
    let ids = NextId::new(&key, masters.handles());
    let mut tallies = eight_threads_one_handle(&ids, RUN);

    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the child process failed: {}\n{rest}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let mut theirs: BTreeMap<usize, Tally> = BTreeMap::new();
    let mut child_errors = None;
    for line in rest.lines() {
        if let Some(at) = line.find(ID_MARK) {
            let mut parts = line[at + ID_MARK.len()..].split_whitespace();
            let t: usize = parts.next().unwrap().parse().unwrap();
            let id: u64 = parts.next().unwrap().parse().unwrap();
            theirs.entry(t).or_default().ids.push(id);
        } else if let Some(at) = line.find(ERR_MARK) {
            let text = &line[at + ERR_MARK.len()..];
            let (n, sample) = text.split_once(' ').unwrap_or((text, ""));
            child_errors = Some(n.parse::<usize>().unwrap());
            if !sample.is_empty() {
                println!("child errors: {sample}");
            }
        }
    }
    let child_errors = child_errors.expect("the child reported its errors");
    let child_ids: usize = theirs.values().map(|t| t.ids.len()).sum();
    assert!(child_ids > 0, "the child process got no ids:\n{rest}");
    let mine: usize = tallies.iter().map(|t| t.ids.len()).sum();
    assert!(mine > 0, "this process got no ids");
    println!("this process: {mine} ids; the child: {child_ids} ids, {child_errors} errors");
    tallies.extend(theirs.into_values());
    let (_, errors) = check_ids("2 processes x 8 threads, 3 masters", &tallies);
    assert_eq!(errors + child_errors, 0, "calls failed");
}

/// Not a test of its own: the second process of `nextid_two_processes_never_duplicate`. It
/// does nothing unless that test started it (with the masters, key and duration in its
/// environment); then it prints every id it got, one per line, after a marker.
#[test]
fn nextid_two_processes_child() {
    let Ok(urls) = std::env::var(CHILD_URLS) else {
        return;
    };
    let key = std::env::var(CHILD_KEY).unwrap();
    let run = Duration::from_millis(std::env::var(CHILD_MILLIS).unwrap().parse().unwrap());
    let ids = NextId::new(&key, urls.split(',').map(handle));
    println!();
    println!("{READY_MARK}");
    std::io::stdout().flush().unwrap();
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).unwrap();
    let tallies = eight_threads_one_handle(&ids, run);
    let mut out = String::from("\n");
    for (t, tally) in tallies.iter().enumerate() {
        for id in &tally.ids {
            out.push_str(&format!("{ID_MARK}{t} {id}\n"));
        }
    }
    let errors: usize = tallies.iter().map(|t| t.errors).sum();
    let samples: Vec<&String> = tallies.iter().flat_map(|t| &t.sample).take(3).collect();
    out.push_str(&format!("{ERR_MARK}{errors} {samples:?}\n"));
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes()).unwrap();
    stdout.flush().unwrap();
}

/// NextId through a crash: on 3 masters persisting every write (AOF, fsync always), one master
/// is SIGKILLed mid-run and restarted on its data: still no duplicate, each thread's ids still
/// increase, and ids keep coming after the restart. Errors during the outage are allowed
/// (counted and printed).
#[test]
fn nextid_survives_a_crashed_master() {
    let servers = (0..3)
        .map(|_| {
            RedisServer::builder()
                .args(["--appendonly", "yes", "--appendfsync", "always"])
                .start()
        })
        .collect::<std::io::Result<Vec<_>>>()
        .unwrap();
    let mut masters = Masters { servers };
    let key = unique_key("ids-crash");
    let handles: Vec<NextId> = (0..2)
        .map(|_| NextId::new(&key, masters.handles()))
        .collect();
    let issued = AtomicU64::new(0);
    let running = AtomicBool::new(true);
    let (tallies, before, during, after) = std::thread::scope(|s| {
        let (issued, running) = (&issued, &running);
        let joins: Vec<_> = handles
            .iter()
            .flat_map(|ids| {
                (0..4).map(move |_| {
                    s.spawn(move || hammer(ids, || running.load(Ordering::SeqCst), issued))
                })
            })
            .collect();
        let progressed = |from: u64| poll(10, || issued.load(Ordering::SeqCst) >= from + 200);
        let before = progressed(0);
        masters.servers[1].stop();
        let at_stop = issued.load(Ordering::SeqCst);
        let during = progressed(at_stop);
        let restarted = masters.servers[1].restart();
        let at_restart = issued.load(Ordering::SeqCst);
        let after = restarted.is_ok() && progressed(at_restart);
        running.store(false, Ordering::SeqCst);
        restarted.unwrap();
        let tallies: Vec<Tally> = joins.into_iter().map(|j| j.join().unwrap()).collect();
        (tallies, before, during, after)
    });
    println!(
        "progress: before the crash {before}, during the outage {during}, after the restart {after}"
    );
    let (_, errors) = check_ids("3 AOF masters, one SIGKILLed and restarted", &tallies);
    println!("errors (allowed during the outage): {errors}");
    assert!(before, "no ids before the crash");
    assert!(after, "no ids after the master came back");
}

// ---------------------------------------------------------------------------------------------
// 2. Two holders never
// ---------------------------------------------------------------------------------------------

/// Redlock: while thread A holds `lock_with_watchdog()` (2 s lease) for 3 s, thread B looping
/// `try_acquire()` on a clone never gets in, and A's lease is never lost (B's failed attempts
/// do not touch it).
#[test]
fn a_clone_trying_never_intrudes_on_a_watchdog_holder() {
    let masters = Masters::start(3).unwrap();
    let key = unique_key("two-holders");
    let lock = Redlock::new(&key, masters.handles())
        .auto_release_time(Duration::from_secs(2))
        .unlimited_extensions();
    let a_inside = AtomicBool::new(false);
    let a_done = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<()>();
    let ((lost, left, released), (wins, intrusions, tries)) = std::thread::scope(|s| {
        let (lock, a_inside, a_done) = (&lock, &a_inside, &a_done);
        let a = s.spawn(move || {
            let guard = lock.lock_with_watchdog().unwrap();
            a_inside.store(true, Ordering::SeqCst);
            tx.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(3000)); // the hold: 1.5 leases
            let lost = guard.lost();
            let left = guard.locked();
            a_inside.store(false, Ordering::SeqCst);
            let released = guard.release();
            a_done.store(true, Ordering::SeqCst);
            (lost, left, released)
        });
        let b = s.spawn(move || {
            let (mut wins, mut intrusions, mut tries) = (0u32, 0u32, 0u32);
            if rx.recv().is_err() {
                return (wins, intrusions, tries);
            }
            let b = lock.clone();
            let started = Instant::now();
            while !a_done.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(20) {
                tries += 1;
                if b.try_acquire().unwrap() {
                    wins += 1;
                    if a_inside.load(Ordering::SeqCst) {
                        intrusions += 1;
                    }
                    b.release().unwrap();
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            (wins, intrusions, tries)
        });
        (a.join().unwrap(), b.join().unwrap())
    });
    println!("B: {tries} tries, {wins} wins, {intrusions} while A was inside");
    assert_eq!(intrusions, 0, "B got the lock while A held it");
    assert!(!lost, "A's watchdog lost the lease");
    let left = left.unwrap();
    assert!(left > Duration::ZERO, "A's guard says it holds nothing");
    released.unwrap();
}

/// Redlock: a guard whose lease expired cannot release the next holder's lease. g1's 600 ms
/// lease runs out; another instance takes the lock; `g1.release()` is `ReleaseUnlockedLock` and leaves
/// the new holder's key on the masters; a third instance cannot get in.
#[test]
fn an_expired_guard_never_releases_the_next_holder() {
    let masters = Masters::start(3).unwrap();
    let handles = masters.handles();
    let key = unique_key("expired");
    let rkey = format!("redlock:{key}");
    let lock = Redlock::new(&key, masters.handles()).auto_release_time(Duration::from_millis(600));
    let g1 = lock.lock().unwrap();
    assert!(
        poll(5, || gone_everywhere(&handles, &rkey)),
        "the 600 ms lease never expired on the masters"
    );
    // A fresh instance with the default 10 s lease: the checks below must run while g2
    // holds, however slow the machine.
    let other = Redlock::new(&key, masters.handles());
    let g2 = other
        .lock()
        .expect("another instance takes the expired lock");
    let before = values(&handles, &rkey);
    let theirs = majority(&before).expect("the new holder's lease is on a majority");
    match g1.release() {
        Err(Error::ReleaseUnlockedLock { .. }) => {}
        other => panic!("releasing an expired guard: expected ReleaseUnlockedLock, got {other:?}"),
    }
    let after = values(&handles, &rkey);
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        if b.as_ref() == Some(&theirs) {
            assert_eq!(
                a.as_ref(),
                Some(&theirs),
                "master {i}: the expired guard's release removed the new holder's lease"
            );
        }
    }
    assert!(
        !lock.clone().try_acquire().unwrap(),
        "a third instance got in"
    );
    assert!(
        !Redlock::new(&key, masters.handles()).try_acquire().unwrap(),
        "a fresh instance got in"
    );
    assert_eq!(majority(&values(&handles, &rkey)), Some(theirs));
    g2.release().unwrap();
}

// ---------------------------------------------------------------------------------------------
// 3. Shared instance liveness + exclusion
// ---------------------------------------------------------------------------------------------

/// Redlock: 8 threads sharing ONE instance by reference, for ~2 s on 1 and 5 masters: an
/// unprotected GET-then-SET counter stays exact (equals the acquisitions), and every thread
/// gets the lock (the 2026-11-30 measurement was 1 handoff/s).
#[test]
fn one_shared_redlock_is_exclusive_and_live_across_threads() {
    for n in [1, 5] {
        let masters = Masters::start(n).unwrap();
        let data = masters.servers[0].redis();
        let counter = unique_key("counter");
        let lock = Redlock::new(&unique_key("shared"), masters.handles());
        let until = Instant::now() + LOCK_RUN;
        let counts: Vec<u64> = std::thread::scope(|s| {
            let joins: Vec<_> = (0..8)
                .map(|_| {
                    let (lock, data, counter) = (&lock, &data, &counter);
                    s.spawn(move || {
                        let mut conn = data.connection().unwrap();
                        let mut n = 0u64;
                        while Instant::now() < until {
                            let guard = lock.lock().unwrap();
                            let v: i64 = conn.get::<_, Option<i64>>(counter).unwrap().unwrap_or(0);
                            let _: () = conn.set(counter, v + 1).unwrap();
                            guard.release().unwrap();
                            n += 1;
                        }
                        n
                    })
                })
                .collect();
            joins.into_iter().map(|j| j.join().unwrap()).collect()
        });
        stats(&format!("{n} master(s), 8 threads, one Redlock"), &counts);
        let total: u64 = counts.iter().sum();
        let mut conn = data.connection().unwrap();
        assert_eq!(
            conn.get::<_, Option<u64>>(&counter).unwrap().unwrap_or(0),
            total,
            "{n} master(s): lost updates under the lock"
        );
        assert!(
            counts.iter().all(|&c| c >= 1),
            "{n} master(s): a thread never got the lock: {counts:?}"
        );
    }
}

/// aio::Redlock: 64 tasks on clones of one lock, for ~2 s on 1 and 5 masters: the unprotected
/// counter stays exact and every task gets the lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_async_redlock_is_exclusive_and_live_across_64_tasks() {
    for n in [1, 5] {
        let masters = Masters::start(n).unwrap();
        let data = masters.servers[0].redis();
        let counter = unique_key("counter");
        let lock = aio::Redlock::new(&unique_key("shared-async"), masters.handles());
        let until = Instant::now() + LOCK_RUN;
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let (lock, data, counter) = (lock.clone(), data.clone(), counter.clone());
                tokio::spawn(async move {
                    let mut conn = data.async_connection().await.unwrap();
                    let mut n = 0u64;
                    while Instant::now() < until {
                        let guard = lock.lock().await.unwrap();
                        let v: Option<i64> = redis::cmd("GET")
                            .arg(&counter)
                            .query_async(&mut conn)
                            .await
                            .unwrap();
                        let _: () = redis::cmd("SET")
                            .arg(&counter)
                            .arg(v.unwrap_or(0) + 1)
                            .query_async(&mut conn)
                            .await
                            .unwrap();
                        guard.release().await.unwrap();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let mut counts = Vec::new();
        for t in tasks {
            counts.push(t.await.unwrap());
        }
        stats(
            &format!("{n} master(s), 64 tasks, clones of one aio::Redlock"),
            &counts,
        );
        let total: u64 = counts.iter().sum();
        let mut conn = data.async_connection().await.unwrap();
        let stored: Option<u64> = redis::cmd("GET")
            .arg(&counter)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(
            stored.unwrap_or(0),
            total,
            "{n} master(s): lost updates under the lock"
        );
        assert!(
            counts.iter().all(|&c| c >= 1),
            "{n} master(s): a task never got the lock: {counts:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Watchdog guard and plain guard of one instance
// ---------------------------------------------------------------------------------------------

/// Redlock: two threads of ONE instance take turns, one with `lock_with_watchdog()` held past
/// its lease, the other with `lock()` / `lock_fenced()`: each guard reports time left while
/// held, keeps its own value on the masters until it releases (the other's waiting, extending
/// and releasing never touch it), releases Ok; fenced tokens increase; the instance's own
/// `release()`/`extend()` (it holds no imperative lease) fail without touching a guard's lease.
#[test]
fn watchdog_and_plain_guards_of_one_instance_take_turns() {
    let masters = Masters::start(3).unwrap();
    let handles = masters.handles();
    let key = unique_key("turns");
    let rkey = format!("redlock:{key}");
    // A 2 s lease: the watchdog (extending every third of it) and the plain guard's hold
    // keep a second or more of slack on a loaded machine.
    let lock = Redlock::new(&key, masters.handles())
        .auto_release_time(Duration::from_secs(2))
        .unlimited_extensions();
    let tokens: Vec<u64> = std::thread::scope(|s| {
        let (lock, handles, rkey) = (&lock, &handles, &rkey);
        let w = s.spawn(move || {
            for round in 0..2 {
                let guard = lock.lock_with_watchdog().unwrap();
                let mine = majority(&values(handles, rkey))
                    .unwrap_or_else(|| panic!("watchdog round {round}: no lease on a majority"));
                assert!(guard.locked().unwrap() > Duration::ZERO);
                // The hold: past the lease, so only the watchdog keeps it.
                std::thread::sleep(Duration::from_millis(2600));
                assert!(!guard.lost(), "watchdog round {round}: lease lost");
                assert!(
                    guard.locked().unwrap() > Duration::ZERO,
                    "watchdog round {round}: nothing left"
                );
                assert_eq!(
                    majority(&values(handles, rkey)),
                    Some(mine),
                    "watchdog round {round}: another holder's value on the masters"
                );
                guard.release().unwrap();
            }
        });
        let p = s.spawn(move || {
            let mut tokens = Vec::new();
            for round in 0..4 {
                let guard = if round % 2 == 0 {
                    lock.lock().unwrap()
                } else {
                    let g = lock.lock_fenced().unwrap();
                    tokens.push(g.token().expect("a fenced guard carries a token"));
                    g
                };
                let mine = majority(&values(handles, rkey))
                    .unwrap_or_else(|| panic!("plain round {round}: no lease on a majority"));
                assert!(guard.locked().unwrap() > Duration::ZERO);
                guard.extend().unwrap();
                assert!(
                    matches!(lock.release(), Err(Error::ReleaseUnlockedLock { .. })),
                    "the instance released although it holds no imperative lease"
                );
                assert!(
                    matches!(lock.extend(), Err(Error::ExtendUnlockedLock { .. })),
                    "the instance extended although it holds no imperative lease"
                );
                std::thread::sleep(Duration::from_millis(300)); // the hold
                assert!(guard.locked().unwrap() > Duration::ZERO);
                assert_eq!(
                    majority(&values(handles, rkey)),
                    Some(mine),
                    "plain round {round}: the lease changed under the guard"
                );
                guard.release().unwrap();
            }
            tokens
        });
        w.join().unwrap();
        p.join().unwrap()
    });
    assert_eq!(tokens.len(), 2);
    assert!(tokens[0] < tokens[1], "fencing tokens {tokens:?}");
    assert!(
        poll(5, || gone_everywhere(&handles, &rkey)),
        "a lease remained after every guard released"
    );
}

// ---------------------------------------------------------------------------------------------
// 5. Cancellation
// ---------------------------------------------------------------------------------------------

/// aio::Redlock: `lock()` futures cancelled after 0–5 ms (100 times, the lock held by another
/// instance every other time) and spawned `lock()` tasks aborted at delays around one
/// acquisition's latency (some land right after the quorum answered), on 1 and 3 masters, leave
/// no lease behind: the holder's lease is never touched, and after each try (once every guard
/// is released and every cancelled future dropped) no `redlock:<key>` remains on any master.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_lock_futures_leave_no_lease() {
    for n in [1, 3] {
        let masters = Masters::start(n).unwrap();
        let handles = masters.handles();
        let key = unique_key("cancel");
        let rkey = format!("redlock:{key}");
        let lock = aio::Redlock::new(&key, masters.handles());
        let holder = aio::Redlock::new(&key, masters.handles())
            .context_manager_timeout(Some(Duration::from_secs(3)));
        let (mut got, mut cancelled) = (0u32, 0u32);
        for i in 0..100u64 {
            let held = if i % 2 == 1 {
                let g = holder.lock().await.unwrap_or_else(|e| {
                    panic!("{n} master(s), try {i}: the holder cannot get the lock ({e}): a cancelled lock() left a lease")
                });
                let v = majority(&values_async(&handles, &rkey).await)
                    .expect("the holder's lease is on a majority");
                Some((g, v))
            } else {
                None
            };
            let d = Duration::from_millis(i % 6);
            match tokio::time::timeout(d, lock.lock()).await {
                Ok(Ok(g)) => {
                    assert!(
                        held.is_none(),
                        "{n} master(s), try {i}: lock() succeeded while another instance held the lock"
                    );
                    got += 1;
                    g.release().await.unwrap();
                }
                Ok(Err(e)) => panic!("{n} master(s), try {i}: lock() failed: {e}"),
                Err(_) => cancelled += 1,
            }
            let holder_value = held.as_ref().map(|(_, v)| v.clone());
            if let Some((g, v)) = held {
                assert_eq!(
                    majority(&values_async(&handles, &rkey).await),
                    Some(v),
                    "{n} master(s), try {i}: a cancelled waiter changed the holder's lease"
                );
                g.release().await.unwrap_or_else(|e| {
                    panic!("{n} master(s), try {i}: the holder's release failed after a cancelled waiter: {e}")
                });
            }
            if !wait_gone_async(&handles, &rkey, Duration::from_secs(3)).await {
                panic!(
                    "{n} master(s), try {i} (timeout {d:?}, holder's lease {holder_value:?}): a \
                     lease remained after every lock() was released or cancelled: {:?}",
                    values_async(&handles, &rkey).await
                );
            }
        }
        println!("{n} master(s): timeouts 0-5 ms: {got} acquired, {cancelled} cancelled");
        assert!(
            wait_gone_async(&handles, &rkey, Duration::from_secs(3)).await,
            "{n} master(s): a lease remained after cancelled lock() futures: {:?}",
            values_async(&handles, &rkey).await
        );

        // Abort spawned lock() tasks at delays from 0 to twice one acquisition's latency.
        let mut latencies = Vec::new();
        for _ in 0..10 {
            let started = Instant::now();
            let g = lock.lock().await.unwrap();
            latencies.push(started.elapsed());
            g.release().await.unwrap();
        }
        latencies.sort();
        let typical = latencies[latencies.len() / 2];
        let (mut completed, mut aborted) = (0u32, 0u32);
        for k in 0..=30u32 {
            let delay = typical * k / 15;
            let task_lock = lock.clone();
            let started = Instant::now();
            let task = tokio::spawn(async move { task_lock.lock().await });
            while started.elapsed() < delay {
                tokio::task::yield_now().await;
            }
            task.abort();
            match task.await {
                Ok(Ok(g)) => {
                    completed += 1;
                    g.release().await.unwrap();
                }
                Ok(Err(e)) => panic!("{n} master(s): lock() failed: {e}"),
                Err(e) if e.is_cancelled() => {
                    aborted += 1;
                    assert!(
                        wait_gone_async(&handles, &rkey, Duration::from_secs(3)).await,
                        "{n} master(s): lock() aborted after {delay:?} (typical acquisition \
                         {typical:?}) left a lease: {:?}",
                        values_async(&handles, &rkey).await
                    );
                }
                Err(e) => panic!("{n} master(s): the lock() task panicked: {e}"),
            }
        }
        println!(
            "{n} master(s): aborts around {typical:?}: {completed} completed first, {aborted} aborted"
        );
        assert!(
            wait_gone_async(&handles, &rkey, Duration::from_secs(3)).await,
            "{n} master(s): a lease remained after aborted lock() tasks"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 6. Former hangs: typed errors within a bound
// ---------------------------------------------------------------------------------------------

/// Invalid settings are `Err(Config)` from every call at once, without I/O: zero masters
/// (Redlock, aio::Redlock, NextId), a lease below 10 ms or above u32::MAX ms, a zero master
/// timeout. The 10 ms lease, the smallest valid one, is accepted.
#[test]
fn invalid_settings_are_config_errors() {
    let masters = Masters::start(1).unwrap();
    let mut cases = Vec::new();

    cases.push(case("zero masters: Redlock", PROMPT, || {
        let k = unique_key("zero");
        let none = || Vec::<Redis>::new();
        let lock = Redlock::new(&k, none());
        no_problems([
            not_config("lock", lock.lock().map(drop)),
            not_config("lock_with_watchdog", lock.lock_with_watchdog().map(drop)),
            not_config("lock_fenced", lock.lock_fenced().map(drop)),
            not_config("try_acquire", lock.try_acquire().map(drop)),
            not_config("acquire", lock.acquire().map(drop)),
            not_config(
                "acquire_timeout",
                lock.acquire_timeout(Duration::from_secs(1)).map(drop),
            ),
            not_config("acquire_with_token", lock.acquire_with_token().map(drop)),
            not_config("locked", lock.locked().map(drop)),
            not_config("extend", lock.extend()),
            not_config("release", lock.release()),
            not_config(
                "synchronize",
                pottery::synchronize(&k, none(), |l| l, || ()),
            ),
        ]);
    }));
    cases.push(case(
        "zero masters: aio::Redlock and aio::NextId",
        PROMPT,
        || {
            runtime().block_on(async {
                let k = unique_key("zero-async");
                let lock = aio::Redlock::new(&k, Vec::<Redis>::new());
                let ids = aio::NextId::new(&k, Vec::<Redis>::new());
                no_problems([
                    not_config("aio lock", lock.lock().await.map(drop)),
                    not_config("aio lock_fenced", lock.lock_fenced().await.map(drop)),
                    not_config("aio try_acquire", lock.try_acquire().await.map(drop)),
                    not_config("aio acquire", lock.acquire().await.map(drop)),
                    not_config("aio locked", lock.locked().await.map(drop)),
                    not_config("aio next_id", ids.next_id().await.map(drop)),
                ]);
            });
        },
    ));
    cases.push(case("zero masters: NextId", PROMPT, || {
        let ids = NextId::new(&unique_key("zero-ids"), Vec::<Redis>::new());
        no_problems([
            not_config("next_id", ids.next_id().map(drop)),
            not_config("reset", ids.reset()),
        ]);
    }));

    let leases = [
        ("0", Duration::ZERO),
        ("500us", Duration::from_micros(500)),
        ("1ms", Duration::from_millis(1)),
        ("2ms", Duration::from_millis(2)),
        ("9.999ms", Duration::from_micros(9999)),
        (
            "u32::MAX+1 ms",
            Duration::from_millis(u64::from(u32::MAX) + 1),
        ),
        ("Duration::MAX", Duration::MAX),
    ];
    for (name, ttl) in leases {
        let handles = masters.handles();
        cases.push(case(
            format!("auto_release_time {name}"),
            PROMPT,
            move || {
                let k = unique_key("lease");
                let lock = Redlock::new(&k, handles.clone()).auto_release_time(ttl);
                expect_config("try_acquire", lock.try_acquire().map(drop));
                expect_config("lock", lock.lock().map(drop));
                expect_config("lock_with_watchdog", lock.lock_with_watchdog().map(drop));
                expect_config("lock_fenced", lock.lock_fenced().map(drop));
                expect_config(
                    "acquire_timeout",
                    lock.acquire_timeout(Duration::from_millis(100)).map(drop),
                );
                assert!(
                    gone_everywhere(&handles, &format!("redlock:{k}")),
                    "an invalid lease reached the masters"
                );
            },
        ));
    }
    let handles = masters.handles();
    cases.push(case("auto_release_time 10ms is valid", PROMPT, move || {
        let lock = Redlock::new(&unique_key("lease-10"), handles)
            .auto_release_time(Duration::from_millis(10));
        let r = lock.try_acquire();
        assert!(r.is_ok(), "a 10 ms lease: {r:?}");
    }));
    let handles = masters.handles();
    cases.push(case("master_timeout zero", PROMPT, move || {
        let lock = Redlock::new(&unique_key("mt"), handles.clone()).master_timeout(Duration::ZERO);
        expect_config("try_acquire", lock.try_acquire().map(drop));
        expect_config("lock", lock.lock().map(drop));
        let ids = NextId::new(&unique_key("mt-ids"), handles).master_timeout(Duration::ZERO);
        expect_config("next_id", ids.next_id().map(drop));
    }));
    all_within(cases);
}

/// Masters that cannot serve give an error within a bound instead of a wait without end: the
/// only master stopped (`QuorumIsImpossible` within `unreachable_timeout` + margin), a wrong
/// password, an ACL user without write or script permission (NOPERM), a database index out of
/// range.
#[test]
fn unusable_masters_fail_within_a_bound() {
    // A master that is down: a port held bound and never listened on (a stopped server's port
    // could be taken by a server another test starts meanwhile, which then answers).
    let stopped = RefusedPort::new().unwrap();
    let stopped_handle = Redis::from_url(&stopped.url()).unwrap();
    let protected = RedisServer::builder().password("right").start().unwrap();
    let wrong_password = format!("redis://:wrong@127.0.0.1:{}/0", protected.port());
    let limited = RedisServer::start().unwrap();
    limited
        .cli([
            "ACL",
            "SETUSER",
            "limited",
            "on",
            ">pw",
            "~*",
            "&*",
            "+@all",
            "-@write",
            "-@scripting",
        ])
        .unwrap();
    let noperm = format!("redis://limited:pw@127.0.0.1:{}/0", limited.port());
    let plain = RedisServer::start().unwrap();
    let db99 = format!("redis://127.0.0.1:{}/99", plain.port());

    let unreachable = Duration::from_millis(500);
    let margin = Duration::from_secs(5);
    let mut cases = Vec::new();
    let h = stopped_handle.clone();
    cases.push(case(
        "stopped master: lock()",
        unreachable + margin,
        move || {
            let lock = Redlock::new(&unique_key("down"), [h]).unreachable_timeout(unreachable);
            match lock.lock() {
                Err(Error::QuorumIsImpossible { .. }) => {}
                other => panic!("expected QuorumIsImpossible, got {:?}", other.map(drop)),
            }
        },
    ));
    let h = stopped_handle.clone();
    cases.push(case(
        "stopped master: acquire()",
        unreachable + margin,
        move || {
            let lock = Redlock::new(&unique_key("down"), [h]).unreachable_timeout(unreachable);
            match lock.acquire() {
                Err(Error::QuorumIsImpossible { .. }) => {}
                other => panic!("expected QuorumIsImpossible, got {other:?}"),
            }
        },
    ));
    let h = stopped_handle.clone();
    cases.push(case(
        "stopped master: aio lock()",
        unreachable + margin,
        move || {
            runtime().block_on(async {
                let lock =
                    aio::Redlock::new(&unique_key("down"), [h]).unreachable_timeout(unreachable);
                match lock.lock().await {
                    Err(Error::QuorumIsImpossible { .. }) => {}
                    other => panic!("expected QuorumIsImpossible, got {:?}", other.map(drop)),
                }
            })
        },
    ));
    let h = stopped_handle.clone();
    cases.push(case(
        "stopped master: next_id()",
        unreachable + margin,
        move || {
            let ids = NextId::new(&unique_key("down-ids"), [h]).timeout(unreachable);
            expect_any_err("next_id", ids.next_id().map(drop));
        },
    ));

    for (label, url) in [
        ("wrong password", wrong_password),
        ("NOPERM", noperm),
        ("db 99", db99),
    ] {
        let u = url.clone();
        cases.push(case(format!("{label}: lock()"), PROMPT, move || {
            let lock = Redlock::new(&unique_key("bad"), [handle(&u)]);
            expect_any_err("lock", lock.lock().map(drop));
        }));
        let u = url.clone();
        cases.push(case(format!("{label}: lock_fenced()"), PROMPT, move || {
            let lock = Redlock::new(&unique_key("bad"), [handle(&u)]);
            expect_any_err("lock_fenced", lock.lock_fenced().map(drop));
        }));
        let u = url.clone();
        cases.push(case(format!("{label}: acquire()"), PROMPT, move || {
            let lock = Redlock::new(&unique_key("bad"), [handle(&u)]);
            expect_any_err("acquire", lock.acquire().map(drop));
        }));
        let u = url;
        cases.push(case(format!("{label}: next_id()"), PROMPT, move || {
            let ids = NextId::new(&unique_key("bad-ids"), [handle(&u)]);
            expect_any_err("next_id", ids.next_id().map(drop));
        }));
    }
    all_within(cases);
    drop((stopped, protected, limited, plain));
}

/// Corrupt lock state written by another client is an error naming the key, within a bound:
/// `redlock:<key>` holding a value without TTL (a lease that never expires) for `lock()`, and
/// for `lock_fenced()` with a 1 s context-manager timeout; `{redlock:<key>}:fence` holding
/// `notanumber` for `lock_fenced()` and `acquire_with_token()`, which leave no lease behind.
#[test]
fn corrupt_lock_keys_are_errors_naming_the_key() {
    let masters = Masters::start(3).unwrap();
    let mut cases = Vec::new();

    let handles = masters.handles();
    cases.push(case("garbage lock key: lock()", PROMPT, move || {
        let k = unique_key("garbage");
        let rkey = format!("redlock:{k}");
        set_everywhere(&handles, &rkey, "garbage");
        let lock = Redlock::new(&k, handles.clone());
        expect_err_naming("lock", lock.lock().map(drop), &rkey);
        assert_eq!(
            values(&handles, &rkey),
            vec![Some("garbage".to_owned()); 3],
            "the foreign value was changed"
        );
    }));
    let handles = masters.handles();
    cases.push(case("garbage lock key: aio lock()", PROMPT, move || {
        let k = unique_key("garbage-async");
        let rkey = format!("redlock:{k}");
        set_everywhere(&handles, &rkey, "garbage");
        runtime().block_on(async {
            let lock = aio::Redlock::new(&k, handles);
            expect_err_naming("aio lock", lock.lock().await.map(drop), &rkey);
        });
    }));
    let handles = masters.handles();
    cases.push(case(
        "garbage lock key: lock_fenced() with a 1 s timeout",
        PROMPT,
        move || {
            let k = unique_key("garbage-fenced");
            let rkey = format!("redlock:{k}");
            set_everywhere(&handles, &rkey, "garbage");
            let lock =
                Redlock::new(&k, handles).context_manager_timeout(Some(Duration::from_secs(1)));
            expect_err_naming("lock_fenced", lock.lock_fenced().map(drop), &rkey);
        },
    ));
    let handles = masters.handles();
    cases.push(case("fence notanumber: lock_fenced()", PROMPT, move || {
        let k = unique_key("fence");
        let rkey = format!("redlock:{k}");
        let fence = format!("{{{rkey}}}:fence");
        set_everywhere(&handles, &fence, "notanumber");
        let lock = Redlock::new(&k, handles.clone());
        let r = lock.lock_fenced().map(drop);
        no_problems([
            not_naming("lock_fenced", r, &fence),
            lease_left("the failed lock_fenced", &handles, &rkey),
        ]);
    }));
    let handles = masters.handles();
    cases.push(case(
        "fence notanumber: acquire_with_token()",
        PROMPT,
        move || {
            let k = unique_key("fence-token");
            let rkey = format!("redlock:{k}");
            let fence = format!("{{{rkey}}}:fence");
            set_everywhere(&handles, &fence, "notanumber");
            let lock = Redlock::new(&k, handles.clone());
            let r = lock.acquire_with_token().map(drop);
            no_problems([
                not_naming("acquire_with_token", r, &fence),
                lease_left("the failed acquire_with_token", &handles, &rkey),
            ]);
        },
    ));
    let handles = masters.handles();
    cases.push(case(
        "fence notanumber: aio lock_fenced()",
        PROMPT,
        move || {
            let k = unique_key("fence-async");
            let fence = format!("{{redlock:{k}}}:fence");
            set_everywhere(&handles, &fence, "notanumber");
            runtime().block_on(async {
                let lock = aio::Redlock::new(&k, handles);
                expect_err_naming(
                    "aio lock_fenced",
                    lock.lock_fenced().await.map(drop),
                    &fence,
                );
            });
        },
    ));
    all_within(cases);
}

/// NextId counters that are not a u64 (`abc`, `-5`, `1.5`) are `Codec` errors naming
/// `nextid:<key>`, within a bound; ids go past 2^53 exactly, reach 2^63−1, and the call after
/// that is an error, not a wrap.
#[test]
fn nextid_counters_corrupt_or_huge() {
    let masters = Masters::start(3).unwrap();
    let mut cases = Vec::new();
    for bad in ["abc", "-5", "1.5"] {
        let handles = masters.handles();
        cases.push(case(format!("counter {bad}"), PROMPT, move || {
            let k = unique_key("corrupt");
            let nkey = format!("nextid:{k}");
            set_everywhere(&handles, &nkey, bad);
            expect_codec("next_id", NextId::new(&k, handles.clone()).next_id(), &nkey);
            let r = runtime().block_on(aio::NextId::new(&k, handles).next_id());
            expect_codec("aio next_id", r, &nkey);
        }));
    }
    let handles = masters.handles();
    cases.push(case("past 2^53", PROMPT, move || {
        let k = unique_key("big");
        set_everywhere(&handles, &format!("nextid:{k}"), "9007199254740992");
        let ids = NextId::new(&k, handles);
        assert_eq!(ids.next_id().unwrap(), 9_007_199_254_740_993);
        assert_eq!(ids.next_id().unwrap(), 9_007_199_254_740_994);
    }));
    let handles = masters.handles();
    cases.push(case("at 2^63-1", PROMPT, move || {
        let k = unique_key("max");
        let nkey = format!("nextid:{k}");
        set_everywhere(&handles, &nkey, "9223372036854775806");
        let ids = NextId::new(&k, handles.clone()).timeout(Duration::from_secs(1));
        assert_eq!(ids.next_id().unwrap(), 9_223_372_036_854_775_807);
        match ids.next_id() {
            Err(e) => println!("  past 2^63-1: {e}"),
            Ok(id) => panic!("the id after 2^63-1 was {id}, not an error"),
        }
        for (i, v) in values(&handles, &nkey).iter().enumerate() {
            if let Some(v) = v {
                let n: i128 = v
                    .parse()
                    .unwrap_or_else(|_| panic!("master {i} holds {v:?}"));
                assert!(
                    n >= 9_223_372_036_854_775_806,
                    "master {i}: the counter wrapped to {n}"
                );
            }
        }
    }));
    all_within(cases);
}

// ---------------------------------------------------------------------------------------------
// 7. Python interop wake-up
// ---------------------------------------------------------------------------------------------

const PY_PRELUDE: &str = r#"
import json, sys, time
from redis import Redis
from pottery import Redlock
args = json.loads(sys.stdin.readline())
masters = {Redis.from_url(args['url'])}
"#;

fn spawn_python(code: &str, args: &serde_json::Value) -> std::process::Child {
    let mut child = Command::new(pottery_tests::python())
        .arg("-c")
        .arg(code)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run the venv's python");
    let mut stdin = child.stdin.take().unwrap();
    // redis-py reads `protocol=3`, not redis-rs's `protocol=resp3` (the RESP3 test run).
    writeln!(stdin, "{}", args.to_string().replace("?protocol=resp3", "")).unwrap();
    drop(stdin);
    child
}

fn read_line_of(out: &mut impl BufRead, what: &str) -> String {
    let mut line = String::new();
    let n = out.read_line(&mut line).unwrap();
    assert!(n > 0, "python ended before printing {what}");
    line.trim().to_owned()
}

/// Python pottery 3.0.1 and Rust wake each other: a Rust thread waiting in `lock()` gets the
/// lock once a Python holder releases it, and a Python `acquire()` waiting on a Rust holder
/// returns True once Rust releases (both bounded; the latencies are printed, not asserted).
#[test]
fn python_and_rust_waiters_wake_up() {
    let masters = Masters::start(1).unwrap();
    let url = masters.servers[0].url();
    let key = unique_key("wake");
    let args = serde_json::json!({"url": url, "key": key});

    // Python holds, Rust waits.
    let code = format!(
        "{PY_PRELUDE}
lock = Redlock(key=args['key'], masters=masters, auto_release_time=30)
assert lock.acquire(blocking=False)
print('held', flush=True)
# Holds until Rust has seen it held and started waiting (it sets the key `go`), 20 s at most.
signal = Redis.from_url(args['url'])
deadline = time.time() + 20
while not signal.exists(args['key'] + ':go') and time.time() < deadline:
    time.sleep(0.01)
lock.release()
print('released %r' % time.time(), flush=True)"
    );
    let mut child = spawn_python(&code, &args);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    assert_eq!(read_line_of(&mut out, "held"), "held");
    assert!(
        !Redlock::new(&key, masters.handles()).try_acquire().unwrap(),
        "Python holds the lock"
    );
    let waiter = {
        let lock = Redlock::new(&key, masters.handles())
            .context_manager_timeout(Some(Duration::from_secs(20)));
        std::thread::spawn(move || {
            let guard = lock.lock();
            let at = unix_now();
            (guard.map(|g| g.release()), at)
        })
    };
    let _: () = redis::cmd("SET")
        .arg(format!("{key}:go"))
        .arg(1)
        .query(
            &mut redis::Client::open(url.as_str())
                .unwrap()
                .get_connection()
                .unwrap(),
        )
        .unwrap();
    let released = read_line_of(&mut out, "released");
    let py_released: f64 = released.strip_prefix("released ").unwrap().parse().unwrap();
    let (outcome, rust_acquired) = waiter.join().unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    outcome
        .expect("the Rust waiter got the lock after Python released it")
        .expect("and released it");
    println!(
        "Python release -> Rust lock(): {:.1} ms",
        (rust_acquired - py_released) * 1000.0
    );

    // Rust holds, Python waits.
    let code = format!(
        "{PY_PRELUDE}
lock = Redlock(key=args['key'], masters=masters)
print('waiting', flush=True)
ok = lock.acquire(timeout=20)
print(json.dumps([ok, time.time()]), flush=True)
if ok:
    lock.release()"
    );
    let lock = Redlock::new(&key, masters.handles());
    let guard = lock.lock().unwrap();
    let mut child = spawn_python(&code, &args);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    assert_eq!(read_line_of(&mut out, "waiting"), "waiting");
    std::thread::sleep(Duration::from_millis(500)); // the hold, while Python waits
    let rust_released = unix_now();
    guard.release().unwrap();
    let (ok, py_acquired): (bool, f64) =
        serde_json::from_str(&read_line_of(&mut out, "the outcome")).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(ok, "Python's acquire() did not get the lock Rust released");
    println!(
        "Rust release -> Python acquire(): {:.1} ms",
        (py_acquired - rust_released) * 1000.0
    );
}

// ---------------------------------------------------------------------------------------------
// 8. Futures are Send + 'static
// ---------------------------------------------------------------------------------------------

fn require_send<F: std::future::Future + Send + 'static>(_: F) {}
fn require_send_borrowed<F: std::future::Future + Send>(_: F) {}
fn require_shareable<T: Send + Sync>() {}
fn require_sendable<T: Send>() {}

/// Compile-time: every async method of aio::Redlock, its guards, aio::NextId and
/// `aio::synchronize` returns a `Send` future, `'static` when its inputs are owned (a clone
/// moved in); the blocking types can be shared across threads and guards moved between them.
/// (The futures are built and dropped, never polled: no I/O.)
#[test]
fn futures_are_send_and_static() {
    require_shareable::<Redlock>();
    require_shareable::<NextId>();
    require_shareable::<aio::Redlock>();
    require_shareable::<aio::NextId>();
    require_sendable::<pottery::RedlockGuard>();
    require_sendable::<pottery::WatchdogGuard>();
    require_sendable::<aio::RedlockGuard>();
    require_sendable::<aio::WatchdogGuard>();

    let masters = vec![handle("redis://127.0.0.1:1/0")];
    let lock = aio::Redlock::new("send", masters.clone());
    let ids = aio::NextId::new("send", masters.clone());

    let l = lock.clone();
    require_send(async move { l.acquire().await });
    let l = lock.clone();
    require_send(async move { l.try_acquire().await });
    let l = lock.clone();
    require_send(async move { l.acquire_timeout(Duration::from_millis(1)).await });
    let l = lock.clone();
    require_send(async move { l.acquire_with_token().await });
    let l = lock.clone();
    require_send(async move { l.locked().await });
    let l = lock.clone();
    require_send(async move { l.extend().await });
    let l = lock.clone();
    require_send(async move { l.release().await });
    let l = lock.clone();
    require_send(async move { l.lock().await.map(drop) });
    let l = lock.clone();
    require_send(async move { l.lock_fenced().await.map(drop) });
    let l = lock.clone();
    require_send(async move { l.lock_with_watchdog().await.map(drop) });
    let l = lock.clone();
    require_send(async move {
        let guard = l.lock().await?;
        let _ = guard.token();
        guard.locked().await?;
        guard.extend().await?;
        guard.release().await
    });
    let l = lock.clone();
    require_send(async move {
        let guard = l.lock_fenced().await?;
        let _ = guard.token();
        guard.release().await
    });
    let l = lock.clone();
    require_send(async move {
        let guard = l.lock_with_watchdog().await?;
        let _ = (guard.lost(), guard.token());
        guard.locked().await?;
        guard.release().await
    });
    let i = ids.clone();
    require_send(async move { i.next_id().await });
    let i = ids.clone();
    require_send(async move { i.reset().await });
    let (key, m) = ("send".to_owned(), masters.clone());
    require_send(async move { aio::synchronize(&key, m, |l| l, || async { 1 + 1 }).await });
    let (key, m) = ("send".to_owned(), masters.clone());
    require_send(async move {
        aio::synchronize(
            &key,
            m,
            |l| l.context_manager_blocking(false),
            move || async move {
                tokio::task::yield_now().await;
                2
            },
        )
        .await
    });
    // Borrowing futures are Send too.
    require_send_borrowed(lock.lock());
    require_send_borrowed(lock.try_acquire());
    require_send_borrowed(ids.next_id());
    // The blocking twin's async view and back.
    let blocking = lock.to_blocking();
    let l = blocking.to_async();
    require_send(async move { l.lock().await.map(drop) });
}

/// Redlock: a released lease is gone from every master, not only from the majority that
/// answered first: 150 `lock()`/`release()` rounds (sync and async) on 3 masters, each followed
/// by a bounded check that `redlock:<key>` is absent everywhere. (A release that settles at a
/// majority and drops its other requests unsent leaves a minority lease for a whole lease time.)
#[test]
fn a_released_lease_is_gone_from_every_master() {
    let masters = Masters::start(3).unwrap();
    let handles = masters.handles();
    let key = unique_key("released");
    let rkey = format!("redlock:{key}");
    let lock = Redlock::new(&key, masters.handles());
    for i in 0..150 {
        lock.lock().unwrap().release().unwrap();
        assert!(
            poll(3, || gone_everywhere(&handles, &rkey)),
            "sync round {i}: the released lease remained: {:?}",
            values(&handles, &rkey)
        );
    }
    let lock = lock.to_async();
    runtime().block_on(async {
        for i in 0..150 {
            lock.lock().await.unwrap().release().await.unwrap();
            assert!(
                wait_gone_async(&handles, &rkey, Duration::from_secs(3)).await,
                "async round {i}: the released lease remained: {:?}",
                values_async(&handles, &rkey).await
            );
        }
    });
}
