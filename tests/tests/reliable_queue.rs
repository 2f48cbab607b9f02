//! ReliableQueue: every job processed at least once while consumer processes are SIGKILLed
//! and restarted, duplicates only where a consumer died (or its delivery expired) before the
//! ack, poison jobs in the dead letters after max_deliveries; waiting; settle rules; cluster;
//! async pops dropped at random points.
//!
//! `POTTERY_QUEUE_JOBS` sets the job count of the kill test (2,000 by default; the issue's
//! full run is 10,000).

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pottery::testing::{RedisServer, shared_cluster, shared_server};
use pottery::{Redis, ReliableQueue, aio};
use pottery_tests::{poll, spawn_worker, unique_key};

const WORKER_URL: &str = "POTTERY_Q_URL";
const WORKER_NAME: &str = "POTTERY_Q_NAME";
const VISIBILITY: Duration = Duration::from_secs(1);
const MAX_DELIVERIES: u64 = 3;
const POISON: u64 = 20;

/// A job: its number, and whether it is poison (never acknowledged).
type Job = (u64, bool);

fn queue(redis: &Redis, name: &str) -> ReliableQueue<Job> {
    ReliableQueue::new(redis, name)
        .visibility_timeout(VISIBILITY)
        .max_deliveries(MAX_DELIVERIES)
}

/// Not a test of its own: a consumer process of `jobs_survive_killed_consumers`. Prints
/// `GOT n deliveries` on receipt, `ACKING n` before the ack, then `DONE n` or `STALE n`.
#[test]
fn queue_consumer() {
    let Ok(url) = std::env::var(WORKER_URL) else {
        return;
    };
    let q = queue(
        &Redis::from_url(&url).unwrap(),
        &std::env::var(WORKER_NAME).unwrap(),
    );
    println!("\nREADY");
    loop {
        let Some(d) = q.pop(Duration::from_millis(500)).unwrap() else {
            continue;
        };
        let (n, poison) = *d.value();
        println!("GOT {n} {}", d.deliveries());
        if poison {
            // Given back, or dropped (delivered again after the visibility timeout).
            if d.deliveries() % 2 == 0 {
                d.nack().unwrap();
            }
            continue;
        }
        std::thread::sleep(Duration::from_micros(rand::random::<u64>() % 1000));
        println!("ACKING {n}");
        if d.ack().unwrap() {
            println!("DONE {n}");
        } else {
            println!("STALE {n}");
        }
    }
}

struct Consumer {
    child: Child,
    index: usize,
}

fn start_consumer(
    url: &str,
    name: &str,
    index: usize,
    lines: &Arc<Mutex<Vec<(usize, String)>>>,
) -> Consumer {
    let mut child = spawn_worker(
        "queue_consumer",
        &[(WORKER_URL, url.to_owned()), (WORKER_NAME, name.to_owned())],
    );
    let out = BufReader::new(child.stdout.take().unwrap());
    let lines = Arc::clone(lines);
    std::thread::spawn(move || {
        for line in out.lines() {
            let Ok(line) = line else { break };
            lines.lock().unwrap().push((index, line));
        }
    });
    Consumer { child, index }
}

#[test]
fn jobs_survive_killed_consumers() {
    let jobs: u64 = std::env::var("POTTERY_QUEUE_JOBS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let server = RedisServer::start().unwrap();
    let redis = server.redis();
    let name = unique_key("q-kill");
    let q = queue(&redis, &name);
    // Every 100th job is poison, POISON of them.
    let all: Vec<Job> = (0..jobs)
        .map(|n| (n, n % 100 == 0 && n / 100 < POISON))
        .collect();
    let poison: HashSet<u64> = all.iter().filter(|j| j.1).map(|j| j.0).collect();
    for chunk in all.chunks(500) {
        q.push_many(chunk).unwrap();
    }
    let lines = Arc::new(Mutex::new(Vec::new()));
    let mut next_index = 0;
    let mut consumers: Vec<Consumer> = (0..4)
        .map(|_| {
            next_index += 1;
            start_consumer(&server.url(), &name, next_index - 1, &lines)
        })
        .collect();
    // Kill a random consumer at random points, and start a new one, five times.
    let mut killed: HashSet<usize> = HashSet::new();
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(100 + rand::random::<u64>() % 300));
        let victim = rand::random::<u64>() as usize % consumers.len();
        let mut c = consumers.swap_remove(victim);
        c.child.kill().unwrap();
        c.child.wait().unwrap();
        killed.insert(c.index);
        next_index += 1;
        consumers.push(start_consumer(&server.url(), &name, next_index - 1, &lines));
    }
    // Done when every job was acknowledged or is a dead letter.
    let settled = poll(120, || {
        q.len().unwrap() == 0
            && q.dead_letter_len().unwrap() == POISON.min(poison.len() as u64) as usize
    });
    for mut c in consumers {
        c.child.kill().unwrap();
        c.child.wait().unwrap();
    }
    std::thread::sleep(Duration::from_millis(100)); // let the readers take the last lines
    assert!(
        settled,
        "left: {} jobs, {} dead letters",
        q.len().unwrap(),
        q.dead_letter_len().unwrap()
    );

    #[derive(Default, Debug)]
    struct Seen {
        got: Vec<(usize, u64)>,
        acking: Vec<usize>,
        done: Vec<usize>,
        stale: Vec<usize>,
    }
    let mut seen: BTreeMap<u64, Seen> = BTreeMap::new();
    for (proc_, line) in lines.lock().unwrap().iter() {
        let mut parts = line.split_whitespace();
        let (Some(word), Some(n)) = (
            parts.next(),
            parts.next().and_then(|n| n.parse::<u64>().ok()),
        ) else {
            continue;
        };
        let s = seen.entry(n).or_default();
        match word {
            "GOT" => s.got.push((*proc_, parts.next().unwrap().parse().unwrap())),
            "ACKING" => s.acking.push(*proc_),
            "DONE" => s.done.push(*proc_),
            "STALE" => s.stale.push(*proc_),
            _ => {}
        }
    }
    let mut duplicates = 0;
    let mut died_acking = 0;
    for (n, _) in &all {
        let s = seen.get(n);
        if poison.contains(n) {
            assert!(
                s.is_none_or(|s| s.done.is_empty()),
                "poison job {n} was acknowledged"
            );
            continue;
        }
        let s = s.unwrap_or_else(|| {
            panic!("job {n} was never delivered to a consumer that lived to say so")
        });
        // Processed at least once: acknowledged (or its process died between the ack and the
        // line saying so, and the queue is empty: the ack landed).
        assert!(s.done.len() <= 1, "job {n} acknowledged twice: {s:?}");
        if s.done.is_empty() {
            assert!(
                s.acking.iter().any(|p| killed.contains(p)),
                "job {n} never acknowledged: {s:?}"
            );
            died_acking += 1;
        }
        // Delivered more than once only after a delivery whose consumer died before the ack
        // or whose ack came too late.
        if s.got.len() > 1 {
            duplicates += 1;
            for (p, _) in &s.got[..s.got.len() - 1] {
                let explained = killed.contains(p) && !s.done.contains(p) || s.stale.contains(p);
                assert!(
                    explained,
                    "job {n} delivered again though consumer {p} lived and acknowledged: {s:?}"
                );
            }
        }
    }
    let dead = q.dead_letters(1000).unwrap();
    let dead_jobs: HashSet<u64> = dead.iter().map(|d| d.value.0).collect();
    assert_eq!(dead_jobs, poison, "the dead letters are the poison jobs");
    assert!(
        dead.iter()
            .all(|d| d.deliveries == MAX_DELIVERIES && d.value.1),
        "{dead:?}"
    );
    println!(
        "{jobs} jobs, 5 consumers killed: {duplicates} delivered more than once, {died_acking} \
         acknowledged by a consumer that died right after; {} dead letters",
        dead.len()
    );
    q.clear().unwrap();
}

#[test]
fn pop_waits_its_full_bound_and_wakes_on_a_push() {
    let redis = shared_server().redis();
    let q: ReliableQueue<u32> = ReliableQueue::new(&redis, &unique_key("q-wait"));
    for wait in [
        Duration::from_millis(0),
        Duration::from_millis(300),
        Duration::from_millis(2500),
    ] {
        let started = Instant::now();
        assert!(q.pop(wait).unwrap().is_none());
        assert!(
            started.elapsed() >= wait,
            "returned before its bound: {:?} < {wait:?}",
            started.elapsed()
        );
    }
    let got = std::thread::scope(|s| {
        let popper = s.spawn(|| q.pop(Duration::from_secs(10)).unwrap().map(|d| *d.value()));
        std::thread::sleep(Duration::from_millis(100));
        q.push(&42).unwrap();
        popper.join().unwrap()
    });
    assert_eq!(got, Some(42));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let q: aio::ReliableQueue<u32> =
            aio::ReliableQueue::new(&redis, &unique_key("q-wait-async"));
        let started = Instant::now();
        assert!(q.pop(Duration::from_millis(300)).await.unwrap().is_none());
        assert!(started.elapsed() >= Duration::from_millis(300));
        q.clear().await.unwrap();
    });
    q.clear().unwrap();
}

#[test]
fn settling_rules() {
    let redis = shared_server().redis();
    let q: ReliableQueue<String> = ReliableQueue::new(&redis, &unique_key("q-rules"))
        .visibility_timeout(Duration::from_millis(300));
    q.push(&"a".to_string()).unwrap();
    // extend keeps it invisible past its visibility timeout
    let d = q.pop(Duration::ZERO).unwrap().unwrap();
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(200));
        assert!(d.extend().unwrap());
        assert!(
            q.pop(Duration::ZERO).unwrap().is_none(),
            "an extended job was delivered again"
        );
    }
    // once expired it is delivered again, and the old delivery can no longer settle it
    let again = loop {
        if let Some(again) = q.pop(Duration::from_secs(2)).unwrap() {
            break again;
        }
    };
    assert_eq!(again.deliveries(), 2);
    assert!(!d.extend().unwrap());
    assert!(!d.ack().unwrap(), "a stale delivery acknowledged the job");
    assert!(again.ack().unwrap());
    assert_eq!(q.len().unwrap(), 0);
    // a value that is not pottery JSON of the type: an error naming the key
    let mut conn = redis.connection().unwrap();
    let _: String = redis::cmd("XADD")
        .arg(q.key())
        .arg("*")
        .arg("v")
        .arg("{not json")
        .query(&mut conn)
        .unwrap();
    let err = q.pop(Duration::ZERO).unwrap_err();
    assert!(err.to_string().contains(q.key()), "{err}");
    let err = ReliableQueue::<u8>::new(&redis, "q-bad")
        .max_deliveries(0)
        .pop(Duration::ZERO)
        .unwrap_err();
    assert!(matches!(err, pottery::Error::Config { .. }), "{err}");
    q.clear().unwrap();
}

#[test]
fn on_a_cluster() {
    let redis = shared_cluster().redis();
    let q: ReliableQueue<u32> =
        ReliableQueue::new(&redis, &unique_key("q-cluster")).max_deliveries(1);
    q.clear().unwrap();
    assert_eq!(q.push_many(&[1, 2, 3]).unwrap(), 3);
    let mut got = Vec::new();
    while let Some(d) = q.pop(Duration::from_millis(200)).unwrap() {
        got.push(*d.value());
        if *d.value() == 2 {
            d.nack().unwrap(); // its one delivery: a dead letter
        } else {
            assert!(d.ack().unwrap());
        }
    }
    got.sort();
    assert_eq!(got, [1, 2, 3]);
    assert_eq!(
        q.dead_letters(10)
            .unwrap()
            .iter()
            .map(|d| d.value)
            .collect::<Vec<_>>(),
        [2]
    );
    assert_eq!(q.requeue_dead_letters(10).unwrap(), 1);
    let d = q.pop(Duration::from_secs(1)).unwrap().unwrap();
    assert_eq!(*d.value(), 2);
    d.ack().unwrap();
    q.clear().unwrap();
}

#[test]
fn async_clones_in_64_tasks_with_dropped_pops_lose_nothing() {
    fn send_static<T: Send + 'static>(t: T) -> T {
        t
    }
    let redis = shared_server().redis();
    let name = unique_key("q-async");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let q: aio::ReliableQueue<u32> =
            aio::ReliableQueue::new(&redis, &name).visibility_timeout(Duration::from_millis(500));
        let jobs: Vec<u32> = (0..400).collect();
        q.push_many(&jobs).await.unwrap();
        let acked = Arc::new(Mutex::new(Vec::new()));
        let deadline = Instant::now() + Duration::from_secs(60);
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let (q, acked) = (q.clone(), Arc::clone(&acked));
                tokio::spawn(send_static(async move {
                    let mut n = 0u64;
                    while Instant::now() < deadline && acked.lock().unwrap().len() < 400 {
                        n += 1;
                        let pop = q.pop(Duration::from_millis(100));
                        let d = if (n + i).is_multiple_of(3) {
                            let cut = Duration::from_micros(rand::random::<u64>() % 3000);
                            match tokio::time::timeout(cut, pop).await {
                                Ok(d) => d,
                                Err(_) => continue, // dropped wherever it was
                            }
                        } else {
                            pop.await
                        };
                        if let Some(d) = d.unwrap() {
                            let v = *d.value();
                            if d.ack().await.unwrap() {
                                acked.lock().unwrap().push(v);
                            }
                        }
                    }
                }))
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let mut acked = acked.lock().unwrap().clone();
        acked.sort();
        assert_eq!(acked, jobs, "every job acknowledged exactly once");
        assert_eq!(q.len().await.unwrap(), 0);
        q.clear().await.unwrap();
    });
}
