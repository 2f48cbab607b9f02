//! A failover under load, measured: a writer thread and an async reader task run through one
//! handle while the caller kills the master; afterwards every acknowledged write is read back.
//! Used by `tests/sentinel.rs` and `tests/cluster_failover.rs`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pottery::{Batch, Error, Redis, RedisCounter, RedisDict, aio};

/// What one run saw.
#[derive(Debug, Default)]
pub struct FailoverReport {
    /// How long the kill-and-wait step took (from the kill to the cluster or sentinels
    /// agreeing on the new master).
    pub failover: Duration,
    /// Writes acknowledged, in all.
    pub writes_acked: usize,
    /// Idempotent write calls (dict `set`) that returned an error: 0 with retries.
    pub write_errors: usize,
    /// Counter increments (a write that must not repeat) acknowledged.
    pub incrs_acked: usize,
    /// Increments that failed with `Error::MaybeApplied` (in flight when the master died).
    pub incrs_maybe_applied: usize,
    /// Increments that failed otherwise: 0 with retries.
    pub incr_errors: usize,
    /// Writes (sets and increments) that failed with `Error::NotDurable`: applied on the
    /// master, which died before a replica confirmed them (durable handles only).
    pub not_durable: usize,
    /// The counter's value at the end: between `incrs_acked` and that plus
    /// `incrs_maybe_applied` when nothing was applied twice (and nothing acknowledged lost).
    pub counter: i64,
    /// The first such error.
    pub first_write_error: Option<String>,
    /// Writes acknowledged after the failover was complete.
    pub writes_after_recovery: usize,
    /// Read calls that succeeded / failed, and reads after the failover was complete.
    pub reads_ok: usize,
    /// Read calls that returned an error.
    pub read_errors: usize,
    /// The first such error.
    pub first_read_error: Option<String>,
    /// Reads that succeeded after the failover was complete.
    pub reads_after_recovery: usize,
    /// Acknowledged writes missing when read back.
    pub lost: usize,
    /// Of those, writes acknowledged after the failover was complete (must be 0).
    pub lost_after_recovery: usize,
    /// The longest time between two successful writes / reads: what a caller would wait for
    /// a success by retrying.
    pub longest_write_gap: Duration,
    /// See `longest_write_gap`.
    pub longest_read_gap: Duration,
    /// Batches (of idempotent sets on three dicts in the failing master's slot and one
    /// elsewhere) that succeeded whole / with an operation that failed.
    pub batches_acked: usize,
    /// See `batches_acked`: 0 with retries.
    pub batch_errors: usize,
    /// The first such error.
    pub first_batch_error: Option<String>,
    /// Batches acknowledged after the failover was complete.
    pub batches_after_recovery: usize,
    /// Sets of acknowledged batches missing when read back after recovery (must be 0).
    pub batch_lost_after_recovery: usize,
}

/// How long to wait, after a failover, for the writer and the reader to succeed again.
const RECOVERY: Duration = Duration::from_secs(20);

/// Runs the writer (blocking `RedisDict` sets of i -> i, an idempotent write, each followed by
/// a counter increment, a write that must not repeat) and the reader (async `len` and `get` of
/// the latest key) on `redis`, calls `kill_and_wait` (which kills the master and
/// waits for the failover), waits until both succeed again, and reads every acknowledged
/// write back.
pub fn run(redis: &Redis, key: &str, kill_and_wait: impl FnOnce()) -> FailoverReport {
    let dict: RedisDict<u64, u64> = RedisDict::new(redis, key);
    // In the dict's slot, so that the same master owns both.
    let counter: RedisCounter<String> = RedisCounter::new(redis, format!("{{{key}}}:n"));
    dict.insert(u64::MAX, 0).expect("the first write works");
    let stop = Arc::new(AtomicBool::new(false));
    let recovered_at: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let acked: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::new(Mutex::new(Vec::new()));
    let after =
        |at: &Mutex<Option<Instant>>, t: Instant| at.lock().unwrap().is_some_and(|r| t >= r);
    // Reads and batches that succeeded after recovery, as they happen: the run ends when
    // each has enough (polled with a bound), not after a fixed pause.
    let reads_after = Arc::new(AtomicUsize::new(0));
    let batches_after = Arc::new(AtomicUsize::new(0));

    let writer = {
        let (dict, counter, stop, acked, recovered_at) = (
            dict.clone(),
            counter.clone(),
            stop.clone(),
            acked.clone(),
            recovered_at.clone(),
        );
        std::thread::spawn(move || {
            let mut r = FailoverReport::default();
            let mut last_ok = Instant::now();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                match dict.set(i, i) {
                    Ok(()) => {
                        let now = Instant::now();
                        r.longest_write_gap = r.longest_write_gap.max(now - last_ok);
                        last_ok = now;
                        acked.lock().unwrap().push((i, now));
                        r.writes_acked += 1;
                        if after(&recovered_at, now) {
                            r.writes_after_recovery += 1;
                        }
                    }
                    Err(Error::NotDurable { .. }) => r.not_durable += 1,
                    Err(e) => {
                        r.write_errors += 1;
                        r.first_write_error.get_or_insert_with(|| e.to_string());
                        // Without this, a refused connection fails in microseconds and the
                        // count says more about the loop than about the handle.
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
                match counter.incr("n", 1) {
                    Ok(_) => r.incrs_acked += 1,
                    Err(Error::MaybeApplied { .. }) => r.incrs_maybe_applied += 1,
                    Err(Error::NotDurable { .. }) => {
                        r.not_durable += 1;
                        r.incrs_maybe_applied += 1;
                    }
                    Err(e) => {
                        r.incr_errors += 1;
                        r.first_write_error.get_or_insert_with(|| e.to_string());
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
                i += 1;
            }
            r
        })
    };

    // Batches: three sets in the failing master's slot, one on a key elsewhere.
    let batch_dicts: Vec<RedisDict<u64, u64>> = (0..3)
        .map(|n| RedisDict::new(redis, format!("{{{key}}}:b{n}")))
        .chain([RedisDict::new(redis, format!("{key}:elsewhere"))])
        .collect();
    let batcher = {
        let (redis, dicts, stop, recovered_at, batches_after) = (
            redis.clone(),
            batch_dicts.clone(),
            stop.clone(),
            recovered_at.clone(),
            batches_after.clone(),
        );
        std::thread::spawn(move || {
            let mut r = FailoverReport::default();
            let mut acked = Vec::new();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let b = Batch::new(&redis);
                let sets: Vec<_> = dicts.iter().map(|d| b.on(d).set(i, i)).collect();
                let sent = b.execute();
                let results: Vec<_> = sets.into_iter().map(|p| p.get()).collect();
                match (sent, results.iter().find_map(|r| r.as_ref().err())) {
                    (Ok(()), None) => {
                        r.batches_acked += 1;
                        let now = Instant::now();
                        if after(&recovered_at, now) {
                            r.batches_after_recovery += 1;
                            batches_after.fetch_add(1, Ordering::Relaxed);
                            acked.push(i);
                        }
                    }
                    (_, Some(Error::NotDurable { .. })) => r.not_durable += 1,
                    (sent, failed) => {
                        r.batch_errors += 1;
                        let e = failed.map(ToString::to_string);
                        let e = e.or_else(|| sent.err().map(|e| e.to_string()));
                        r.first_batch_error.get_or_insert(e.unwrap_or_default());
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
                i += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
            (r, acked)
        })
    };

    let reader = {
        let (dict, stop, acked, recovered_at, reads_after) = (
            dict.to_async(),
            stop.clone(),
            acked.clone(),
            recovered_at.clone(),
            reads_after.clone(),
        );
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let task = tokio::spawn(async move {
                    let dict: aio::RedisDict<u64, u64> = dict;
                    let mut r = FailoverReport::default();
                    let mut last_ok = Instant::now();
                    while !stop.load(Ordering::Relaxed) {
                        let latest = acked.lock().unwrap().last().map(|&(i, _)| i);
                        let read = match latest {
                            Some(i) if r.reads_ok % 2 == 0 => dict.get(&i).await.map(drop),
                            _ => dict.len().await.map(drop),
                        };
                        match read {
                            Ok(()) => {
                                let now = Instant::now();
                                r.longest_read_gap = r.longest_read_gap.max(now - last_ok);
                                last_ok = now;
                                r.reads_ok += 1;
                                if after(&recovered_at, now) {
                                    r.reads_after_recovery += 1;
                                    reads_after.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                            Err(e) => {
                                r.read_errors += 1;
                                r.first_read_error.get_or_insert_with(|| e.to_string());
                            }
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    r
                });
                task.await.unwrap()
            })
        })
    };

    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    kill_and_wait();
    let failover = started.elapsed();
    *recovered_at.lock().unwrap() = Some(Instant::now());
    // Writes acknowledged after the failover was complete.
    let acked_after = || {
        let r = recovered_at.lock().unwrap().unwrap();
        acked
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, t)| *t >= r)
            .count()
    };
    // Everyone recovers: the writer, the reader and the batcher each succeed again as often
    // as `assert_invisible` requires (a fixed 300 ms pause could leave one short on a
    // loaded machine).
    let deadline = Instant::now() + RECOVERY;
    while (acked_after() < 50
        || reads_after.load(Ordering::Relaxed) < 20
        || batches_after.load(Ordering::Relaxed) < 10)
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    let w = writer.join().unwrap();
    let rd = reader.join().unwrap();
    let (bt, batch_acked) = batcher.join().unwrap();
    let mut batch_lost_after_recovery = 0;
    for d in &batch_dicts {
        let stored = d.to_hash_map().expect("reading the batches back works");
        batch_lost_after_recovery += batch_acked
            .iter()
            .filter(|i| stored.get(i) != Some(i))
            .count();
    }

    let stored = dict
        .to_hash_map()
        .expect("reading back after the failover works");
    let recovered = recovered_at.lock().unwrap().unwrap();
    let mut lost = 0;
    let mut lost_after_recovery = 0;
    for &(i, t) in acked.lock().unwrap().iter() {
        if stored.get(&i) != Some(&i) {
            lost += 1;
            if t >= recovered {
                lost_after_recovery += 1;
            }
        }
    }
    let counter = counter.get("n").expect("reading the counter back works");
    FailoverReport {
        failover,
        counter,
        lost,
        lost_after_recovery,
        reads_ok: rd.reads_ok,
        read_errors: rd.read_errors,
        first_read_error: rd.first_read_error,
        reads_after_recovery: rd.reads_after_recovery,
        longest_read_gap: rd.longest_read_gap,
        batches_acked: bt.batches_acked,
        batch_errors: bt.batch_errors,
        first_batch_error: bt.first_batch_error,
        batches_after_recovery: bt.batches_after_recovery,
        batch_lost_after_recovery,
        not_durable: w.not_durable + bt.not_durable,
        ..w
    }
}

impl FailoverReport {
    /// What a failover must look like with retries on: no error from reads or idempotent
    /// writes, at most one increment in flight at the kill reported as maybe applied, none
    /// applied twice, and nothing acknowledged after recovery lost.
    pub fn assert_invisible(&self) {
        assert_eq!(self.write_errors, 0, "{self:#?}");
        assert_eq!(self.read_errors, 0, "{self:#?}");
        assert_eq!(self.incr_errors, 0, "{self:#?}");
        // One write in flight when the master died: maybe applied, or applied but not
        // confirmed by a replica (durable handles).
        assert!(self.incrs_maybe_applied <= 1, "{self:#?}");
        assert!(self.not_durable <= 3, "{self:#?}");
        assert_eq!(self.batch_errors, 0, "{self:#?}");
        assert!(self.batches_after_recovery >= 10, "{self:#?}");
        assert_eq!(self.batch_lost_after_recovery, 0, "{self:#?}");
        assert!(self.writes_after_recovery >= 50, "{self:#?}");
        assert!(self.reads_after_recovery >= 1, "{self:#?}");
        assert_eq!(self.lost_after_recovery, 0, "{self:#?}");
        let counter = u64::try_from(self.counter).unwrap_or(0) as usize;
        assert!(
            counter <= self.incrs_acked + self.incrs_maybe_applied,
            "an increment was applied twice: {self:#?}"
        );
    }
}
