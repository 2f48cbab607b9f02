//! `make bench`: pottery-rs against raw redis-rs and Python pottery 3.0.1 on the same
//! throwaway servers, in the same run. `QUICK=1` runs a short version; `QUICK=smoke` (in `make test`) runs every workload once.
//!
//! Each workload is one client thread issuing operations back to back unless its name says
//! otherwise; rounds of the contenders are interleaved and the median round is reported, so
//! drift on the machine affects all of them alike. Round trips per operation are counted on
//! the servers (`INFO stats` → `total_reads_processed`, summed over every server involved)
//! over a separate pass of each contender. A full run writes `docs/bench.json` and
//! `docs/bench.svg`; a QUICK run writes `target/bench-quick.json` only. `BENCH_ONLY=near`
//! runs the near-cache rows alone (printed, nothing written).
//!
//! A second, smaller table measures contention (issue 12): several workers on one lock or one
//! id sequence for a fixed duration, with handoffs or ids per second, the wait for the lock
//! (p50/p99), the spread of acquisitions over the workers, failed calls, and the same run's
//! one-worker rate.
//!
//! A third table measures a cache stampede (issue 13): 64 tasks call one cold `#[redis_cache]`
//! entry at once whose computation takes 50 ms, with the computations performed and the time
//! until every task has the value, in one process and across 64 handles that stand for 64
//! processes (with and without `single_flight`).

use std::collections::HashMap;
use std::hint::black_box;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant};

use pottery::testing::RedisServer;
use pottery::{Redis, RedisCounter, RedisDeque, RedisDict, RedisList, RedisSet, redis_cache};
use redis::Commands;

/// The bench server's handle, for the `#[redis_cache]` functions below (set first in `main`).
static BENCH_REDIS: OnceLock<Redis> = OnceLock::new();

fn bench_redis() -> Redis {
    BENCH_REDIS.get().expect("set in main").clone()
}

/// Calls of the cached functions' bodies (hit rows: must not move while measuring).
static USER_LOADS: AtomicUsize = AtomicUsize::new(0);

/// A free `#[redis_cache]` function: the cache is made once.
#[redis_cache(redis = bench_redis(), key = "bench:rs:users")]
fn load_user(id: u64) -> Result<u64, std::io::Error> {
    USER_LOADS.fetch_add(1, Ordering::Relaxed);
    Ok(id * 2)
}

/// App state with a per-call `redis` and `key` (evaluated on every call).
struct Tenant {
    redis: Redis,
    tenant: String,
}

impl Tenant {
    #[redis_cache(redis = &self.redis, key = format!("bench:{}:users", self.tenant))]
    fn user(&self, id: u64) -> Result<u64, std::io::Error> {
        USER_LOADS.fetch_add(1, Ordering::Relaxed);
        Ok(id * 2)
    }
}

/// How long a stampede's computation takes.
const STAMPEDE_COMPUTE: Duration = Duration::from_millis(50);

/// Computations performed in the current stampede round.
static COMPUTATIONS: AtomicUsize = AtomicUsize::new(0);

/// The stampede's computation: counted, 50 ms, and the entry's value is the entry itself.
async fn slow(entry: u64) -> u64 {
    COMPUTATIONS.fetch_add(1, Ordering::Relaxed);
    tokio::time::sleep(STAMPEDE_COMPUTE).await;
    entry
}

/// The stampede's function in one process (its in-process single flight is always on).
#[redis_cache(redis = bench_redis(), key = "bench:rs:stampede")]
async fn slow_report(entry: u64) -> u64 {
    slow(entry).await
}

#[derive(Default)]
struct Row {
    name: String,
    /// What the rates count: `ops/s` or `items/s`.
    unit: &'static str,
    ours: f64,
    raw: Option<f64>,
    python: Option<f64>,
    /// Round trips (server reads) per operation: pottery-rs, raw, Python.
    trips: [Option<f64>; 3],
    /// Peak RSS of the client process during the workload, MiB: pottery-rs, Python.
    rss_mib: [Option<f64>; 2],
    /// Another pottery-rs workload measured in the same rounds, and its rate: this row's
    /// target is a ratio to it rather than to raw redis-rs.
    vs: Option<(String, f64)>,
}

impl Row {
    fn new(name: &str, r: &[(f64, f64)]) -> Row {
        Row {
            name: name.to_owned(),
            unit: "ops/s",
            ours: r[0].0,
            raw: r.get(1).map(|x| x.0),
            trips: [Some(r[0].1), r.get(1).map(|x| x.1), None],
            ..Row::default()
        }
    }
}

/// One row of the contention table: `workers` threads or tasks on one lock (or one id
/// sequence) for a fixed duration. Python's rows come from its script with the same fields.
#[derive(Default, Clone, serde::Deserialize)]
#[serde(default)]
struct Contention {
    name: String,
    /// `pottery-rs` or `pottery-py`.
    client: String,
    /// `handoffs/s` or `ids/s`.
    unit: String,
    workers: usize,
    /// Wall time of the contended run, from the start signal until every worker stopped.
    secs: f64,
    /// Successful acquisitions (or ids) per second over `secs`, all workers together.
    rate: f64,
    /// One worker alone, same loop, same run (shorter).
    uncontended: Option<f64>,
    /// Time from calling `lock()` to holding the guard, milliseconds.
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    /// Fewest and most successful calls of one worker.
    min: Option<u64>,
    max: Option<u64>,
    /// Calls that returned an error (counted, not retried by the bench).
    failed: u64,
    /// Server reads per successful call over the contended run, summed over the masters.
    trips: Option<f64>,
}

/// What one worker of a fixed-duration run did.
#[derive(Default)]
struct Worker {
    done: u64,
    failed: u64,
    /// Waits for the lock, milliseconds (empty for id draws).
    waits: Vec<f64>,
}

/// A fixed-duration run: every worker's tally, the wall time, and the servers' reads.
struct Run {
    workers: Vec<Worker>,
    secs: f64,
    reads: u64,
}

impl Run {
    fn rate(&self) -> f64 {
        self.workers.iter().map(|w| w.done).sum::<u64>() as f64 / self.secs
    }

    /// The contention row of this run, `alone` being the same loop's one-worker run.
    fn row(&self, name: &str, unit: &str, alone: Option<&Run>) -> Contention {
        let done: u64 = self.workers.iter().map(|w| w.done).sum();
        let mut waits: Vec<f64> = self.workers.iter().flat_map(|w| w.waits.clone()).collect();
        waits.sort_by(|a, b| a.total_cmp(b));
        Contention {
            name: name.to_owned(),
            client: "pottery-rs".to_owned(),
            unit: unit.to_owned(),
            workers: self.workers.len(),
            secs: self.secs,
            rate: self.rate(),
            uncontended: alone.map(Run::rate),
            p50_ms: percentile(&waits, 0.50),
            p99_ms: percentile(&waits, 0.99),
            min: self.workers.iter().map(|w| w.done).min(),
            max: self.workers.iter().map(|w| w.done).max(),
            failed: self.workers.iter().map(|w| w.failed).sum(),
            trips: (done > 0).then(|| self.reads as f64 / done as f64),
        }
    }
}

/// The `q` quantile of sorted values (nearest rank; the Python side computes it alike).
fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    Some(sorted[((last as f64) * q).round() as usize])
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Runs `op(worker)` back to back on `threads` threads for `dur`. Each thread makes one
/// warm-up call first (its runtime, its connections); the servers' reads are counted from the
/// start signal to the end. `op` returns the wait to record, if any; an error counts as a
/// failed call.
fn on_threads(
    probe: &mut Probe,
    threads: usize,
    dur: Duration,
    op: &(dyn Fn(usize) -> pottery::Result<Option<Duration>> + Sync),
) -> Run {
    let barrier = Barrier::new(threads + 1);
    let barrier = &barrier;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let _ = op(t);
                    barrier.wait(); // warmed up
                    barrier.wait(); // go
                    let end = Instant::now() + dur;
                    let mut w = Worker::default();
                    while Instant::now() < end {
                        match op(t) {
                            Ok(wait) => {
                                w.done += 1;
                                w.waits.extend(wait.map(millis));
                            }
                            Err(_) => w.failed += 1,
                        }
                    }
                    w
                })
            })
            .collect();
        barrier.wait();
        let before = probe.reads();
        barrier.wait();
        let start = Instant::now();
        let workers: Vec<Worker> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let secs = start.elapsed().as_secs_f64();
        let reads = probe
            .reads()
            .saturating_sub(before + probe.conns.len() as u64);
        Run {
            workers,
            secs,
            reads,
        }
    })
}

/// `tasks` tokio tasks on clones of one async lock, each looping `lock().await` and dropping
/// the guard for `dur`. The dropped guards release in the background; one last acquisition
/// after the run waits for the final release (and is counted in the reads, a rounding error).
fn on_tasks(
    rt: &tokio::runtime::Runtime,
    probe: &mut Probe,
    tasks: usize,
    dur: Duration,
    lock: &pottery::aio::Redlock,
) -> Run {
    let drain = || {
        rt.block_on(async { lock.lock().await.unwrap().release().await.unwrap() });
    };
    drain(); // warm-up: connections, scripts
    let before = probe.reads();
    let (workers, secs) = rt.block_on(async {
        let start = Instant::now();
        let end = start + dur;
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                let lock = lock.clone();
                tokio::spawn(async move {
                    let mut w = Worker::default();
                    while Instant::now() < end {
                        let t = Instant::now();
                        match lock.lock().await {
                            Ok(g) => {
                                w.waits.push(millis(t.elapsed()));
                                drop(g);
                                w.done += 1;
                            }
                            Err(_) => w.failed += 1,
                        }
                    }
                    w
                })
            })
            .collect();
        let mut workers = Vec::new();
        for h in handles {
            workers.push(h.await.unwrap());
        }
        (workers, start.elapsed().as_secs_f64())
    });
    drain();
    let reads = probe
        .reads()
        .saturating_sub(before + probe.conns.len() as u64);
    Run {
        workers,
        secs,
        reads,
    }
}

/// One row of the stampede table: what each round of `tasks` simultaneous calls of one cold
/// entry did.
struct Stampede {
    name: String,
    tasks: usize,
    /// Computations performed, per round.
    computations: Vec<usize>,
    /// Milliseconds from the first call until every task had the value, per round.
    all_ms: Vec<f64>,
    /// Server reads, per round (every task together; commands pipelined on one connection
    /// may arrive in one read).
    reads: Vec<u64>,
    /// Commands the server processed, per round (every task together).
    commands: Vec<u64>,
}

impl Stampede {
    /// The median, fewest and most computations of a round.
    fn computations(&self) -> (f64, usize, usize) {
        let v: Vec<f64> = self.computations.iter().map(|&c| c as f64).collect();
        let min = self.computations.iter().copied().min().unwrap_or(0);
        let max = self.computations.iter().copied().max().unwrap_or(0);
        (median(v), min, max)
    }

    /// The median, fastest and slowest time until every task had the value, ms.
    fn all_ms(&self) -> (f64, f64, f64) {
        let min = self.all_ms.iter().copied().fold(f64::INFINITY, f64::min);
        let max = self.all_ms.iter().copied().fold(0.0, f64::max);
        (median(self.all_ms.clone()), min, max)
    }

    fn reads(&self) -> f64 {
        median(self.reads.iter().map(|&r| r as f64).collect())
    }

    fn commands(&self) -> f64 {
        median(self.commands.iter().map(|&r| r as f64).collect())
    }
}

/// A cache stampede: each round, `tasks` tokio tasks start at once on `call(entry, task)` for
/// a fresh entry (`next_entry` counts entries across every stampede of the run, so none is
/// ever warm) and must all get the entry back. One unrecorded warm-up round first
/// (connections, scripts), then `rounds` recorded ones.
#[allow(clippy::too_many_arguments)]
fn stampede<F, Fut>(
    rt: &tokio::runtime::Runtime,
    probe: &mut Probe,
    name: &str,
    tasks: usize,
    rounds: usize,
    next_entry: &mut u64,
    call: F,
) -> Stampede
where
    F: Fn(u64, usize) -> Fut,
    Fut: std::future::Future<Output = u64> + Send + 'static,
{
    let mut row = Stampede {
        name: name.to_owned(),
        tasks,
        computations: Vec::new(),
        all_ms: Vec::new(),
        reads: Vec::new(),
        commands: Vec::new(),
    };
    for round in 0..=rounds {
        let entry = *next_entry;
        *next_entry += 1;
        COMPUTATIONS.store(0, Ordering::Relaxed);
        let before = probe.counts();
        let took = rt.block_on(async {
            let start = Instant::now();
            let handles: Vec<_> = (0..tasks).map(|t| tokio::spawn(call(entry, t))).collect();
            for h in handles {
                assert_eq!(h.await.unwrap(), entry, "{name}: a task got another value");
            }
            start.elapsed()
        });
        let after = probe.counts();
        let own = probe.conns.len() as u64; // the first INFO of each server
        if round > 0 {
            row.computations.push(COMPUTATIONS.load(Ordering::Relaxed));
            row.all_ms.push(millis(took));
            row.reads.push(after[0].saturating_sub(before[0] + own));
            row.commands.push(after[1].saturating_sub(before[1] + own));
        }
    }
    row
}

/// Counts the reads of the servers a workload talks to.
struct Probe {
    conns: Vec<redis::Connection>,
}

impl Probe {
    fn new(urls: &[String]) -> Probe {
        Probe {
            conns: pottery_tests::node_connections(urls),
        }
    }

    fn reads(&mut self) -> u64 {
        self.counts()[0]
    }

    /// Reads and commands processed, summed over the servers (one INFO each).
    fn counts(&mut self) -> [u64; 2] {
        let mut sum = [0; 2];
        for c in self.conns.iter_mut() {
            let info: String = redis::cmd("INFO").arg("stats").query(c).unwrap();
            for (i, name) in ["total_reads_processed:", "total_commands_processed:"]
                .iter()
                .enumerate()
            {
                sum[i] += info
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
        sum
    }

    /// Server reads per operation of `f(ops)`, not counting the probe's own INFO.
    fn per_op(&mut self, ops: usize, f: &mut dyn FnMut(usize)) -> f64 {
        let before = self.reads();
        f(ops);
        let after = self.reads();
        after.saturating_sub(before + self.conns.len() as u64) as f64 / ops as f64
    }
}

fn reset_peak_rss() {
    // Linux: writing 5 resets VmHWM to the current RSS.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// Ops per second of `f(n)`, which performs `n` operations.
fn rate(n: usize, f: &mut dyn FnMut(usize)) -> f64 {
    let start = Instant::now();
    f(n);
    n as f64 / start.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Runs the contenders in interleaved rounds; returns the median rate of each, and its round
/// trips per operation counted by `probe` over a separate pass of `trip_ops` operations.
fn compare_with(
    probe: &mut Probe,
    n: usize,
    rounds: usize,
    trip_ops: usize,
    contenders: &mut [&mut dyn FnMut(usize)],
) -> Vec<(f64, f64)> {
    let mut rates = vec![Vec::new(); contenders.len()];
    for f in contenders.iter_mut() {
        f(n / 10 + 1); // warm-up: connections, script cache
    }
    for _ in 0..rounds {
        for (i, f) in contenders.iter_mut().enumerate() {
            rates[i].push(rate(n, *f));
        }
    }
    let trips: Vec<f64> = contenders
        .iter_mut()
        .map(|f| probe.per_op(trip_ops, *f))
        .collect();
    rates.into_iter().map(median).zip(trips).collect()
}

/// Times pottery-rs against raw redis-rs on a workload of single operations (`f(i)` is the
/// `i`-th), and makes its row.
fn row_pair(
    probe: &mut Probe,
    n: usize,
    rounds: usize,
    name: &str,
    mut ours: impl FnMut(usize),
    mut raw: impl FnMut(usize),
) -> Row {
    let r = compare(
        probe,
        n,
        rounds,
        &mut [&mut |n| (0..n).for_each(&mut ours), &mut |n| {
            (0..n).for_each(&mut raw)
        }],
    );
    Row::new(name, &r)
}

fn compare(
    probe: &mut Probe,
    n: usize,
    rounds: usize,
    contenders: &mut [&mut dyn FnMut(usize)],
) -> Vec<(f64, f64)> {
    compare_with(probe, n, rounds, (n / 10).clamp(1, 200), contenders)
}

/// What the Python side measured: rates, round trips per op, peak RSS (MiB), by row name.
#[derive(Default, serde::Deserialize)]
struct PyResults {
    rates: HashMap<String, f64>,
    trips: HashMap<String, f64>,
    rss: HashMap<String, f64>,
    /// Rows of the contention table (PY_PRIMITIVES only).
    #[serde(default)]
    contention: Vec<Contention>,
}

/// The Python prelude: measuring helpers shared by both scripts. `servers` are the clients
/// whose reads are counted.
const PY_PRELUDE: &str = r#"
import json, os, sys, time, warnings
warnings.simplefilter('ignore')
from redis import Redis
rates, trips, rss = {}, {}, {}
servers = []
def reads():
    return sum(s.info('stats')['total_reads_processed'] for s in servers)
def measure(name, f, count, items=1, warm=True, trip_ops=None):
    if warm:
        f(max(1, count // 10))
    t = time.perf_counter()
    f(count)
    rates[name] = count * items / (time.perf_counter() - t)
    m = trip_ops or max(1, min(count, 200))
    b = reads()
    f(m)
    trips[name] = (reads() - b - len(servers)) / (m * items)
def reset_peak():
    try:
        with open('/proc/self/clear_refs', 'w') as fh: fh.write('5')
    except OSError:
        pass
def peak_mib():
    with open('/proc/self/status') as fh:
        for line in fh:
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) / 1024
"#;

const PY_BENCH: &str = r#"
from pottery import RedisDict, RedisList, RedisDeque, RedisCounter, RedisSet
from pottery import redis_cache, BloomFilter, HyperLogLog
n, it_n = int(sys.argv[1]), int(sys.argv[2])
redis = Redis.from_url(os.environ['REDIS_URL'])
servers.append(redis)
d = RedisDict(redis=redis, key='bench:py:dict'); d.clear()
def dict_insert(k):
    for i in range(k): d['k%d' % (i % 1000)] = i
def dict_get(k):
    for i in range(k): d['k%d' % (i % 1000)]
measure('dict insert', dict_insert, n)
measure('dict get', dict_get, n)
d.clear()
batch = {'k%d' % i: i for i in range(10000)}
def dict_extend(k):
    for _ in range(k): d.update(batch)
measure('dict extend of 10,000', dict_extend, max(3, n // 200))
d.clear()
big = RedisDict(redis=redis, key='bench:py:iter'); big.clear()
for start in range(0, it_n, 10000):
    big.update({'k%d' % i: i for i in range(start, min(it_n, start + 10000))})
def dict_iter(k):
    for _ in range(k):
        for kv in big.items(): pass
reset_peak()
measure('dict iteration over {:,}'.format(it_n), dict_iter, 1, items=it_n, warm=False, trip_ops=1)
rss['dict iteration over {:,}'.format(it_n)] = peak_mib()
big.clear()
l = RedisList(redis=redis, key='bench:py:list'); l.clear(); l.extend(range(1000))
def list_get(k):
    for i in range(k): l[i % 1000]
measure('list get(i)', list_get, n)
l.clear()
q = RedisDeque(redis=redis, key='bench:py:deque', maxlen=100); q.clear()
def deque_push(k):
    for i in range(k): q.append(i)
measure('deque push_back (maxlen)', deque_push, n)
q.clear()
c = RedisCounter(redis=redis, key='bench:py:counter'); c.clear()
def counter_incr(k):
    for i in range(k): c['k%d' % (i % 100)] += 1
measure('counter incr', counter_incr, n)
c.clear()
st = RedisSet(redis=redis, key='bench:py:set'); st.clear()
def set_add(k):
    for i in range(k): st.add(i)
measure('set add', set_add, n)
probe = list(range(0, 200, 2))
def set_contains_many(k):
    for _ in range(k): list(st.contains_many(*probe))
measure('set contains_many(100)', set_contains_many, n)
st.clear()
@redis_cache(redis=redis, key='bench:py:cache')
def cached(x):
    return x * 2
for i in range(100): cached(i)
def cache_hit(k):
    for i in range(k): cached(i % 100)
measure('redis_cache hit', cache_hit, n)
cached.cache_clear()
bf = BloomFilter(num_elements=1000000, false_positives=0.001, redis=redis, key='bench:py:bloom'); bf.clear()
def bloom_add(k):
    for i in range(k): bf.add('v%d' % (i % 1000))
def bloom_contains(k):
    for i in range(k): ('v%d' % (i % 1000)) in bf
measure('bloom add', bloom_add, n)
measure('bloom contains', bloom_contains, n)
bf.clear()
hll = HyperLogLog(redis=redis, key='bench:py:hll')
values = list(range(100000))
def hll_update(k):
    for _ in range(k): hll.update(values)
measure('HLL update of 100,000', hll_update, max(2, n // 1000), trip_ops=1)
hll.clear()
print(json.dumps({'rates': rates, 'trips': trips, 'rss': rss}))
"#;

const PY_PRIMITIVES: &str = r#"
from pottery import Redlock, NextID
n = int(sys.argv[1])
urls = json.loads(sys.argv[2])
servers.extend(Redis.from_url(u) for u in urls)
for label, count in (('1 master', 1), ('5 masters', 5)):
    masters = frozenset(Redis.from_url(u) for u in urls[:count])
    lock = Redlock(key='bench-py', masters=masters)
    def cycle(k):
        for _ in range(k):
            assert lock.acquire(blocking=False)
            lock.release()
    measure('redlock acquire+release, ' + label, cycle, n, trip_ops=20)
    ids = NextID(key='bench-py', masters=masters)
    def draw(k):
        for _ in range(k): next(ids)
    measure('next_id, ' + label, draw, n, trip_ops=20)

# Contention (the second table): `dur` seconds per run, `short` for the one-worker run.
import threading
from pottery import PrimitiveError
dur, short = float(sys.argv[3]), float(sys.argv[4])
contention = []
def pct(v, q):
    return v[int(round((len(v) - 1) * q))] if v else None
def on_threads(threads, secs, make_op):
    # make_op(i) -> op(); op() returns the wait to record (or None) and raises on failure.
    ops = [make_op(i) for i in range(threads)]
    for op in ops:
        try: op()
        except PrimitiveError: pass
    tally = [[0, 0, []] for _ in range(threads)]
    barrier = threading.Barrier(threads + 1)
    def work(i):
        op, t = ops[i], tally[i]
        barrier.wait()
        end = time.perf_counter() + secs
        while time.perf_counter() < end:
            try:
                w = op()
            except PrimitiveError:
                t[1] += 1
                continue
            t[0] += 1
            if w is not None: t[2].append(w * 1e3)
    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for w in workers: w.start()
    b = reads()
    barrier.wait()
    t0 = time.perf_counter()
    for w in workers: w.join()
    took = time.perf_counter() - t0
    rd = reads() - b - len(servers)
    done = sum(t[0] for t in tally)
    waits = sorted(x for t in tally for x in t[2])
    return {'client': 'pottery-py', 'workers': threads, 'secs': took, 'rate': done / took,
            'p50_ms': pct(waits, 0.50), 'p99_ms': pct(waits, 0.99),
            'min': min(t[0] for t in tally), 'max': max(t[0] for t in tally),
            'failed': sum(t[1] for t in tally), 'trips': rd / done if done else None}
for label, count in (('1 master', 1), ('5 masters', 5)):
    masters = frozenset(Redis.from_url(u) for u in urls[:count])
    key = 'bench-py-contend-%d' % count
    # One Redlock per thread: pottery's instances are not thread-safe.
    def lock_op(i):
        lock = Redlock(key=key, masters=masters)
        def op():
            t = time.perf_counter()
            with lock:
                w = time.perf_counter() - t
            return w
        return op
    alone = on_threads(1, short, lock_op)
    row = on_threads(8, dur, lock_op)
    row.update(name='redlock handoffs, 8 threads, ' + label, unit='handoffs/s',
               uncontended=alone['rate'])
    contention.append(row)
masters = frozenset(Redis.from_url(u) for u in urls)
def id_op(i):
    ids = NextID(key='bench-py-contend', masters=masters)
    def op():
        next(ids)
    return op
alone = on_threads(1, short, id_op)
row = on_threads(8, dur, id_op)
row.update(name='next_id, 8 threads, 8 handles, 5 masters', unit='ids/s',
           uncontended=alone['rate'], p50_ms=None, p99_ms=None)
contention.append(row)
print(json.dumps({'rates': rates, 'trips': trips, 'rss': rss, 'contention': contention}))
"#;

fn venv_python() -> Option<String> {
    std::env::var("POTTERY_PYTHON").ok().or_else(|| {
        let p = concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python");
        std::path::Path::new(p).exists().then(|| p.to_owned())
    })
}

/// Runs a Python bench script (pinned like us, as the affinity is inherited); empty results
/// when there is no venv or the script fails (it says why on stderr).
fn run_python(script: &str, args: &[String], url: &str) -> PyResults {
    let Some(python) = venv_python() else {
        eprintln!("no Python venv: the pottery-py columns stay empty (run `make venv`)");
        return PyResults::default();
    };
    let code = format!("{PY_PRELUDE}{script}");
    match Command::new(python)
        .arg("-c")
        .arg(code)
        .args(args)
        .env("REDIS_URL", url)
        .output()
    {
        Ok(out) if out.status.success() => {
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
                eprintln!("python bench printed no results: {e}");
                PyResults::default()
            })
        }
        Ok(out) => {
            eprintln!(
                "python bench failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            PyResults::default()
        }
        Err(e) => {
            eprintln!("python bench failed: {e}");
            PyResults::default()
        }
    }
}

/// The rate limiter's script, for the raw EVALSHA floor.
const GCRA_SRC: &str = include_str!("../../pottery/src/scripts/ratelimit_gcra.lua");

/// The id of the first entry of an `XREADGROUP` reply.
fn stream_first_id(v: &redis::Value) -> Option<String> {
    use redis::Value;
    let Value::Array(streams) = v else {
        return None;
    };
    let Value::Array(kv) = streams.first()? else {
        return None;
    };
    let Value::Array(entries) = kv.get(1)? else {
        return None;
    };
    let Value::Array(entry) = entries.first()? else {
        return None;
    };
    match entry.first()? {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    }
}

/// The compare-and-delete a raw Redlock release sends.
const RELEASE_SRC: &str =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

fn main() {
    if let Ok(spec) = std::env::var(NEAR_WRITER) {
        near_writer(&spec);
        return;
    }
    let quick = std::env::var("QUICK").is_ok_and(|v| v != "0" && !v.is_empty());
    // `QUICK=smoke` (make test): every workload once, as small as it runs, to prove the
    // benchmark works; its figures mean nothing.
    let smoke = std::env::var("QUICK").is_ok_and(|v| v == "smoke");
    let (n, rounds) = if smoke {
        (200, 1)
    } else if quick {
        (1_000, 3)
    } else {
        (10_000, 5)
    };
    pottery::testing::pin_to_cpu(0);
    let server = RedisServer::start().expect("start redis-server");
    let masters = pottery::testing::Masters::start(5).expect("start five masters");
    pottery::testing::pin_to_cpu(1);
    let url = server.url();
    let redis: Redis = server.redis();
    BENCH_REDIS.set(redis.clone()).expect("set once");
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut raw = client.get_connection().unwrap();
    let mut rows = Vec::new();
    let mut probe = Probe::new(std::slice::from_ref(&url));
    // Entries iterated in the dict-iteration row (Python does one HGET per entry there).
    let it_n: usize = if smoke {
        1_000
    } else if quick {
        10_000
    } else {
        100_000
    };

    // `BENCH_ONLY=near`: only the near-cache rows (printed; nothing written).
    if std::env::var("BENCH_ONLY").is_ok_and(|v| v == "near") {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let araw = rt
            .block_on(client.get_multiplexed_async_connection())
            .unwrap();
        near_rows(&url, &mut probe, &rt, &araw, n, rounds, smoke, &mut rows);
        near_mix(&url, smoke);
        for row in &rows {
            println!(
                "| {:<48} | {:>11.0} | {:>11.0} | {:>7.1}x |",
                row.name,
                row.ours,
                row.raw.or(row.vs.as_ref().map(|v| v.1)).unwrap_or(f64::NAN),
                row.ours / row.raw.or(row.vs.as_ref().map(|v| v.1)).unwrap_or(f64::NAN)
            );
        }
        return;
    }

    let dict: RedisDict<String, i64> = RedisDict::new(&redis, "bench:rs");
    let raw_key = "bench:raw";

    // dict insert: pottery's insert (returns the old value, atomically) vs a bare HSET.
    rows.push(row_pair(
        &mut probe,
        n,
        rounds,
        "dict insert",
        |i| {
            black_box(dict.insert(format!("k{}", i % 1000), i as i64).unwrap());
        },
        |i| {
            let _: () = raw
                .hset(raw_key, format!("\"k{}\"", i % 1000), i as i64)
                .unwrap();
        },
    ));

    rows.push(row_pair(
        &mut probe,
        n,
        rounds,
        "dict get",
        |i| {
            black_box(dict.get(&format!("k{}", i % 1000)).unwrap());
        },
        |i| {
            let v: Option<Vec<u8>> = raw.hget(raw_key, format!("\"k{}\"", i % 1000)).unwrap();
            black_box(v);
        },
    ));

    // Durable writes (issue 15): the same dict set on a master with one replica, without and
    // with `durable_writes(1, ..)` (WAIT 1 pipelined behind the write); raw redis-rs sends
    // the same commands (HSET, and HSET + WAIT in one pipeline).
    {
        pottery::testing::pin_to_cpu(0);
        let master = RedisServer::start().expect("start a replicated master");
        let replica = RedisServer::builder()
            .args(["--replicaof", "127.0.0.1", &master.port().to_string()])
            .start()
            .expect("start its replica");
        pottery::testing::pin_to_cpu(1);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !replica
            .cli(["INFO", "replication"])
            .is_ok_and(|i| i.contains("master_link_status:up"))
        {
            assert!(Instant::now() < deadline, "the replica did not connect");
            std::thread::sleep(Duration::from_millis(20));
        }
        let murl = master.url();
        let mut rprobe = Probe::new(std::slice::from_ref(&murl));
        let plain: RedisDict<String, i64> = RedisDict::new(&master.redis(), "bench:rs:durable");
        let durable_handle = Redis::builder(&murl)
            .durable_writes(1, Duration::from_secs(1))
            .build()
            .unwrap();
        let durable: RedisDict<String, i64> = RedisDict::new(&durable_handle, "bench:rs:durable");
        let mut mraw = redis::Client::open(murl.as_str())
            .unwrap()
            .get_connection()
            .unwrap();
        rows.push(row_pair(
            &mut rprobe,
            n,
            rounds,
            "dict set, master with a replica",
            |i| plain.set(format!("k{}", i % 1000), i as i64).unwrap(),
            |i| {
                let _: () = mraw
                    .hset("bench:raw:durable", format!("\"k{}\"", i % 1000), i as i64)
                    .unwrap();
            },
        ));
        rows.push(row_pair(
            &mut rprobe,
            n,
            rounds,
            "dict set, durable (WAIT 1)",
            |i| durable.set(format!("k{}", i % 1000), i as i64).unwrap(),
            |i| {
                let (_, acked): ((), i64) = redis::pipe()
                    .hset("bench:raw:durable", format!("\"k{}\"", i % 1000), i as i64)
                    .cmd("WAIT")
                    .arg(1)
                    .arg(1000)
                    .query(&mut mraw)
                    .unwrap();
                assert_eq!(acked, 1);
            },
        ));
    }

    // dict extend of 10,000 items: one HSET of 10,000 pairs each way.
    let batch: Vec<(String, i64)> = (0..10_000).map(|i| (format!("k{i}"), i)).collect();
    let en = if smoke {
        2
    } else if quick {
        10
    } else {
        100
    };
    let r = compare_with(
        &mut probe,
        en,
        rounds,
        2,
        &mut [
            &mut |n| {
                for _ in 0..n {
                    dict.extend(batch.iter().cloned()).unwrap();
                }
            },
            &mut |n| {
                for _ in 0..n {
                    // The same JSON, formatted by hand.
                    let pairs: Vec<(String, i64)> = batch
                        .iter()
                        .map(|(k, v)| (format!("\"{k}\""), *v))
                        .collect();
                    let _: () = raw.hset_multiple("bench:raw:extend", &pairs).unwrap();
                }
            },
        ],
    );
    rows.push(Row::new("dict extend of 10,000", &r));
    let _: () = raw.del("bench:raw:extend").unwrap();

    // dict iteration: HSCAN pages each way (pottery decodes every entry).
    let (it_row, it_rss) = iteration(&redis, &mut raw, &mut probe, it_n, rounds);
    rows.push(Row {
        rss_mib: [Some(it_rss), None],
        ..it_row
    });

    // list get(i) on 1,000 elements: LINDEX.
    let list: RedisList<i64> = RedisList::new(&redis, "bench:rs:list");
    list.clear().unwrap();
    list.extend(0..1000).unwrap();
    rows.push(row_pair(
        &mut probe,
        n,
        rounds,
        "list get(i)",
        |i| {
            black_box(list.get((i % 1000) as isize).unwrap());
        },
        |i| {
            let v: Option<Vec<u8>> = raw.lindex(list.key(), (i % 1000) as isize).unwrap();
            black_box(v);
        },
    ));
    list.clear().unwrap();

    // deque push_back with maxlen 100: one Lua call vs a raw RPUSH + LTRIM pipeline.
    let deque: RedisDeque<i64> = RedisDeque::with_maxlen(&redis, "bench:rs:deque", 100).unwrap();
    rows.push(row_pair(
        &mut probe,
        n,
        rounds,
        "deque push_back (maxlen)",
        |i| {
            black_box(deque.push_back(i as i64).unwrap());
        },
        |i| {
            let _: () = redis::pipe()
                .rpush("bench:raw:deque", i)
                .ignore()
                .ltrim("bench:raw:deque", -100, -1)
                .ignore()
                .query(&mut raw)
                .unwrap();
        },
    ));
    deque.clear().unwrap();

    // counter incr: HINCRBY both ways.
    let counter: RedisCounter<String> = RedisCounter::new(&redis, "bench:rs:counter");
    rows.push(row_pair(
        &mut probe,
        n,
        rounds,
        "counter incr",
        |i| {
            black_box(counter.incr(&format!("k{}", i % 100), 1).unwrap());
        },
        |i| {
            let v: i64 = raw
                .hincr("bench:raw:counter", format!("\"k{}\"", i % 100), 1)
                .unwrap();
            black_box(v);
        },
    ));
    counter.clear().unwrap();

    // set add: SADD.
    let set: RedisSet<i64> = RedisSet::new(&redis, "bench:rs:set");
    rows.push(row_pair(
        &mut probe,
        n,
        rounds,
        "set add",
        |i| {
            black_box(set.insert(i as i64).unwrap());
        },
        |i| {
            let v: i64 = raw.sadd("bench:raw:set", i).unwrap();
            black_box(v);
        },
    ));

    // set contains_many(100): one SMISMEMBER each way.
    let probe_values: Vec<i64> = (0..200).step_by(2).collect();
    let raw_members: Vec<String> = probe_values.iter().map(|v| v.to_string()).collect();
    let _: () = raw.sadd("bench:raw:set", &raw_members).unwrap();
    rows.push(row_pair(
        &mut probe,
        n,
        rounds,
        "set contains_many(100)",
        |_| {
            black_box(set.contains_many(probe_values.iter()).unwrap());
        },
        |_| {
            let v: Vec<bool> = redis::cmd("SMISMEMBER")
                .arg("bench:raw:set")
                .arg(&raw_members)
                .query(&mut raw)
                .unwrap();
            black_box(v);
        },
    ));
    set.clear().unwrap();

    // redis_cache hit: one script (HGET + sliding PEXPIRE) vs a raw HGET of the same field.
    let cache = pottery::RedisCache::new(&redis, "bench:rs:cache");
    cache.clear().unwrap();
    for i in 0..100u64 {
        cache.get_or_compute(&(i,), || i * 2).unwrap();
    }
    let fields: Vec<String> = (0..100).map(|i| format!("[{i}]")).collect();
    rows.push(row_pair(
        &mut probe,
        n,
        rounds,
        "redis_cache hit",
        |i| {
            let arg = ((i % 100) as u64,);
            black_box(
                cache
                    .get_or_compute(&arg, || -> u64 { unreachable!("a hit") })
                    .unwrap(),
            );
        },
        |i| {
            let v: Option<Vec<u8>> = raw.hget("bench:rs:cache", &fields[i % 100]).unwrap();
            black_box(v);
        },
    ));
    cache.clear().unwrap();

    // redis_cache hit with a per-entry ttl: the lookup script also checks the deadline kept
    // with the value (`<deadline ms>|<json>`) — still one round trip — vs a raw HGET of the
    // same field. (The ttl outlives the row by far: every call must stay a hit.)
    let ttl_cache =
        pottery::RedisCache::new(&redis, "bench:rs:cache:ttl").ttl(Some(Duration::from_secs(600)));
    ttl_cache.clear().unwrap();
    for i in 0..100u64 {
        ttl_cache.get_or_compute(&(i,), || i * 2).unwrap();
    }
    rows.push(row_pair(
        &mut probe,
        n,
        rounds,
        "redis_cache hit, ttl",
        |i| {
            let arg = ((i % 100) as u64,);
            black_box(
                ttl_cache
                    .get_or_compute(&arg, || -> u64 { unreachable!("a hit") })
                    .unwrap(),
            );
        },
        |i| {
            let v: Option<Vec<u8>> = raw.hget("bench:rs:cache:ttl", &fields[i % 100]).unwrap();
            black_box(v);
        },
    ));
    ttl_cache.clear().unwrap();

    // #[redis_cache] hits in the same rounds: a `&self` method whose `redis` and `key`
    // (`format!("bench:{}:users", self.tenant)`) are evaluated on every call, the free
    // function (cache made once), and a raw HGET of the method's field.
    let tenant = Tenant {
        redis: redis.clone(),
        tenant: "acme".to_owned(),
    };
    let tenant_cache = pottery::RedisCache::new(&redis, "bench:acme:users");
    tenant_cache.clear().unwrap();
    load_user::cache_clear().unwrap();
    for id in 0..100u64 {
        tenant.user(id).unwrap();
        load_user(id).unwrap();
    }
    let loads = USER_LOADS.load(Ordering::Relaxed);
    let r = compare(
        &mut probe,
        n,
        rounds,
        &mut [
            &mut |n| {
                for i in 0..n {
                    black_box(tenant.user((i % 100) as u64).unwrap());
                }
            },
            &mut |n| {
                for i in 0..n {
                    black_box(load_user((i % 100) as u64).unwrap());
                }
            },
            &mut |n| {
                for i in 0..n {
                    let v: Option<Vec<u8>> =
                        raw.hget("bench:acme:users", &fields[i % 100]).unwrap();
                    black_box(v);
                }
            },
        ],
    );
    assert_eq!(
        USER_LOADS.load(Ordering::Relaxed),
        loads,
        "every call a hit"
    );
    let fn_row = "redis_cache hit, attribute fn";
    rows.push(Row::new(fn_row, &[r[1], r[2]]));
    rows.push(Row {
        vs: Some((fn_row.to_owned(), r[1].0)),
        ..Row::new("redis_cache hit, method, per-call key", &[r[0], r[2]])
    });
    tenant_cache.clear().unwrap();
    load_user::cache_clear().unwrap();

    // Bloom add / contains: one BITFIELD (SET or GET of k bits) each; raw gets the offsets
    // precomputed.
    let bloom: pottery::BloomFilter<String> =
        pottery::BloomFilter::new(&redis, "bench:rs:bloom", 1_000_000, 0.001).unwrap();
    bloom.clear().unwrap();
    let names: Vec<String> = (0..1000).map(|i| format!("v{i}")).collect();
    let offsets: Vec<Vec<u64>> = names.iter().map(|v| bloom.offsets(v).unwrap()).collect();
    let raw_bitfield = |conn: &mut redis::Connection, sub: &str, i: usize| {
        let mut cmd = redis::cmd(if sub == "SET" {
            "BITFIELD"
        } else {
            "BITFIELD_RO"
        });
        cmd.arg("bench:raw:bloom");
        for off in &offsets[i % 1000] {
            cmd.arg(sub).arg("u1").arg(*off);
            if sub == "SET" {
                cmd.arg(1);
            }
        }
        let v: Vec<i64> = cmd.query(conn).unwrap();
        black_box(v);
    };
    rows.push(row_pair(
        &mut probe,
        n,
        rounds,
        "bloom add",
        |i| {
            black_box(bloom.add(names[i % 1000].as_str()).unwrap());
        },
        |i| {
            raw_bitfield(&mut raw, "SET", i);
        },
    ));
    rows.push(row_pair(
        &mut probe,
        n,
        rounds,
        "bloom contains",
        |i| {
            black_box(bloom.contains(names[i % 1000].as_str()).unwrap());
        },
        |i| {
            raw_bitfield(&mut raw, "GET", i);
        },
    ));
    bloom.clear().unwrap();

    // HyperLogLog update of 100,000 values: one PFADD each way (raw formats the integers
    // itself, as redis-rs does for any integer argument).
    let hll: pottery::HyperLogLog<u64> = pottery::HyperLogLog::new(&redis, "bench:rs:hll");
    let numbers: Vec<u64> = (0..100_000).collect();
    let hn = if smoke {
        2
    } else if quick {
        6
    } else {
        30
    };
    let r = compare_with(
        &mut probe,
        hn,
        rounds,
        1,
        &mut [
            &mut |n| {
                for _ in 0..n {
                    black_box(hll.update(0..100_000u64).unwrap());
                }
            },
            &mut |n| {
                for _ in 0..n {
                    let v: i64 = redis::cmd("PFADD")
                        .arg("bench:raw:hll")
                        .arg(&numbers)
                        .query(&mut raw)
                        .unwrap();
                    black_box(v);
                }
            },
        ],
    );
    rows.push(Row::new("HLL update of 100,000", &r));
    hll.clear().unwrap();
    let _: () = raw.del(&["bench:raw:bloom", "bench:raw:hll"]).unwrap();

    let _: () = raw
        .del(&["bench:raw:deque", "bench:raw:counter", "bench:raw:set"])
        .unwrap();

    // Batches (issue 16): 100 mixed operations (20 each of dict insert, set insert, counter
    // incr, list push and Bloom add) as one batch, as one transaction and one by one; raw
    // redis-rs sends the same commands in one pipe() (the insert as EVALSHA of pottery's
    // script; BITFIELD SET with the offsets precomputed), and in a second row a bare HSET for
    // the insert: pipelined, the server's script time shows (as in "async dict insert, 64
    // tasks").
    {
        let bd: RedisDict<String, i64> = RedisDict::new(&redis, "bench:rs:batch:dict");
        let bs: RedisSet<String> = RedisSet::new(&redis, "bench:rs:batch:set");
        let bc: RedisCounter<String> = RedisCounter::new(&redis, "bench:rs:batch:counter");
        let bl: RedisList<i64> = RedisList::new(&redis, "bench:rs:batch:list");
        let bb: pottery::BloomFilter<String> =
            pottery::BloomFilter::new(&redis, "bench:rs:batch:bloom", 1_000_000, 0.001).unwrap();
        let keys: Vec<String> = (0..1000).map(|i| format!("k{i}")).collect();
        let offsets: Vec<Vec<u64>> = keys.iter().map(|k| bb.offsets(k).unwrap()).collect();
        // Raw redis-rs: one pipe() per 100 operations; the dict insert as a bare HSET, or
        // (`lua`) as the EVALSHA of pottery's own script, the very commands a batch sends.
        let insert_sha =
            redis::Script::new(include_str!("../../pottery/src/scripts/hash_insert.lua"))
                .get_hash()
                .to_owned();
        let mut raw_lua = client.get_connection().unwrap();
        let _: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(include_str!("../../pottery/src/scripts/hash_insert.lua"))
            .query(&mut raw_lua)
            .unwrap();
        let raw_mixed = |conn: &mut redis::Connection, n: usize, lua: bool| {
            for u in 0..n / 100 {
                let mut pipe = redis::pipe();
                for j in 0..20 {
                    let idx = (u * 20 + j) % 1000;
                    let k = format!("\"{}\"", keys[idx]);
                    if lua {
                        pipe.cmd("EVALSHA")
                            .arg(&insert_sha)
                            .arg(1)
                            .arg("bench:raw:batch:dict")
                            .arg(&k)
                            .arg(j);
                    } else {
                        pipe.hset("bench:raw:batch:dict", &k, j);
                    }
                    pipe.sadd("bench:raw:batch:set", &k)
                        .hincr("bench:raw:batch:counter", &k, 1)
                        .rpush("bench:raw:batch:list", j);
                    let mut bits = redis::cmd("BITFIELD");
                    bits.arg("bench:raw:batch:bloom");
                    for o in &offsets[idx] {
                        bits.arg("SET").arg("u1").arg(*o).arg(1);
                    }
                    pipe.add_command(bits);
                }
                let v: Vec<redis::Value> = pipe.query(conn).unwrap();
                black_box(v);
            }
        };
        macro_rules! run_batch {
            ($b:expr, $u:expr) => {{
                let b = $b;
                let mut olds = Vec::with_capacity(20);
                let mut added = Vec::with_capacity(20);
                let mut counts = Vec::with_capacity(20);
                let mut lens = Vec::with_capacity(20);
                let mut seen = Vec::with_capacity(20);
                for j in 0..20 {
                    let k = &keys[($u * 20 + j) % 1000];
                    olds.push(b.on(&bd).insert(k.clone(), j as i64));
                    added.push(b.on(&bs).insert(k.clone()));
                    counts.push(b.on(&bc).incr(k, 1));
                    lens.push(b.on(&bl).push(j as i64));
                    seen.push(b.on(&bb).add(k));
                }
                b.execute().unwrap();
                for p in olds {
                    black_box(p.get().unwrap());
                }
                for p in added {
                    black_box(p.get().unwrap());
                }
                for p in counts {
                    black_box(p.get().unwrap());
                }
                for p in lens {
                    black_box(p.get().unwrap());
                }
                for p in seen {
                    black_box(p.get().unwrap());
                }
            }};
        }
        let r = compare(
            &mut probe,
            n,
            rounds,
            &mut [
                &mut |n| {
                    for u in 0..n / 100 {
                        run_batch!(pottery::Batch::new(&redis), u);
                    }
                },
                &mut |n| {
                    for u in 0..n / 100 {
                        run_batch!(pottery::Batch::transaction(&redis), u);
                    }
                },
                &mut |n| {
                    for i in 0..n / 5 {
                        let k = &keys[i % 1000];
                        black_box(bd.insert(k.clone(), i as i64).unwrap());
                        black_box(bs.insert(k.clone()).unwrap());
                        black_box(bc.incr(k, 1).unwrap());
                        black_box(bl.push(i as i64).unwrap());
                        black_box(bb.add(k).unwrap());
                    }
                },
                &mut |n| raw_mixed(&mut raw, n, false),
                &mut |n| raw_mixed(&mut raw_lua, n, true),
            ],
        );
        let batch_row = "batch of 100 mixed ops";
        let by_one = "100 mixed ops one by one";
        // Raw: the same commands (EVALSHA for the insert); a second row against raw HSET.
        rows.push(Row {
            vs: Some((by_one.to_owned(), r[2].0)),
            ..Row::new(batch_row, &[r[0], r[4]])
        });
        rows.push(Row::new(
            "batch of 100 mixed ops, raw with HSET",
            &[r[0], r[3]],
        ));
        rows.push(Row {
            vs: Some((batch_row.to_owned(), r[0].0)),
            ..Row::new("transaction of 100 mixed ops", &[r[1], r[4]])
        });
        rows.push(Row::new(by_one, &[r[2]]));
        bd.clear().unwrap();
        bs.clear().unwrap();
        bc.clear().unwrap();
        bl.clear().unwrap();
        bb.clear().unwrap();
        let _: () = raw
            .del(&[
                "bench:raw:batch:dict",
                "bench:raw:batch:set",
                "bench:raw:batch:counter",
                "bench:raw:batch:list",
                "bench:raw:batch:bloom",
            ])
            .unwrap();
    }

    // Async: one task, sequential awaits, on the multiplexed connection.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let adict = dict.to_async();
    let mut araw = rt
        .block_on(client.get_multiplexed_async_connection())
        .unwrap();
    let r = compare(
        &mut probe,
        n,
        rounds,
        &mut [
            &mut |n| {
                rt.block_on(async {
                    for i in 0..n {
                        black_box(adict.get(&format!("k{}", i % 1000)).await.unwrap());
                    }
                })
            },
            &mut |n| {
                rt.block_on(async {
                    for i in 0..n {
                        let v: Option<Vec<u8>> = redis::AsyncCommands::hget(
                            &mut araw,
                            raw_key,
                            format!("\"k{}\"", i % 1000),
                        )
                        .await
                        .unwrap();
                        black_box(v);
                    }
                })
            },
        ],
    );
    rows.push(Row::new("async dict get", &r));

    // 64 concurrent tasks on one multiplexed connection (redis-rs pipelines their commands).
    let tasks = 64;
    let key_of = |j: usize| format!("k{}", j % 1000);
    let adict = &adict;
    let field_of = |j: usize| format!("\"k{}\"", j % 1000);
    let r = compare(
        &mut probe,
        n * 4,
        rounds,
        &mut [
            &mut |n| {
                in_tasks(&rt, tasks, n, |j| async move {
                    black_box(adict.get(&key_of(j)).await.unwrap());
                })
            },
            &mut |n| {
                in_tasks(&rt, tasks, n, |j| {
                    let mut c = araw.clone();
                    async move {
                        let v: Option<Vec<u8>> =
                            redis::AsyncCommands::hget(&mut c, raw_key, field_of(j))
                                .await
                                .unwrap();
                        black_box(v);
                    }
                })
            },
        ],
    );
    rows.push(Row::new("async dict get, 64 tasks", &r));
    let raw_hset = |n: usize| {
        in_tasks(&rt, tasks, n, |j| {
            let mut c = araw.clone();
            async move {
                let _: () = redis::AsyncCommands::hset(&mut c, raw_key, field_of(j), j as i64)
                    .await
                    .unwrap();
            }
        })
    };
    let r = compare(
        &mut probe,
        n * 4,
        rounds,
        &mut [
            &mut |n| {
                in_tasks(&rt, tasks, n, |j| async move {
                    black_box(adict.insert(key_of(j), j as i64).await.unwrap());
                })
            },
            &mut |n| raw_hset(n),
        ],
    );
    rows.push(Row::new("async dict insert, 64 tasks", &r));
    let r = compare(
        &mut probe,
        n * 4,
        rounds,
        &mut [
            &mut |n| {
                in_tasks(&rt, tasks, n, |j| async move {
                    adict.set(key_of(j), j as i64).await.unwrap();
                })
            },
            &mut |n| raw_hset(n),
        ],
    );
    rows.push(Row::new("async dict set, 64 tasks", &r));

    near_rows(&url, &mut probe, &rt, &araw, n, rounds, smoke, &mut rows);
    near_mix(&url, smoke);

    dict.clear().unwrap();
    let _: () = raw.del(raw_key).unwrap();

    // Distributed primitives: one and five masters; round trips summed over the masters.
    let urls: Vec<String> = masters.servers.iter().map(|s| s.url()).collect();
    let mut mprobe = Probe::new(&urls);
    let pn = if smoke {
        30
    } else if quick {
        300
    } else {
        3000
    };
    let release = redis::Script::new(RELEASE_SRC);
    for count in [1usize, 5] {
        let label = if count == 1 { "1 master" } else { "5 masters" };
        let handles: Vec<Redis> = masters.handles().into_iter().take(count).collect();
        let lock = pottery::Redlock::new("bench", handles.clone());
        // Raw floor with one master: the same two round trips issued by hand (SET NX PX,
        // then a compare-and-delete script) on a plain sync connection.
        let mut first = masters.servers[0].redis().connection().unwrap();
        // The shared form the README leads with: a guard per lease.
        let mut ours = |n: usize| {
            for _ in 0..n {
                lock.lock().unwrap().release().unwrap();
            }
        };
        let mut by_hand = |n: usize| {
            for i in 0..n {
                let token = format!("raw-{i}");
                let ok: Option<String> = redis::cmd("SET")
                    .arg("redlock:bench-raw")
                    .arg(&token)
                    .arg("PX")
                    .arg(10_000)
                    .arg("NX")
                    .query(&mut first)
                    .unwrap();
                assert!(ok.is_some());
                let _: i64 = release
                    .key("redlock:bench-raw")
                    .arg(&token)
                    .invoke(&mut first)
                    .unwrap();
            }
        };
        // Raw floor with five masters: the same two round trips fanned out by hand — each
        // command written to every master before any reply is read.
        let mut fan: Vec<redis::Connection> = masters
            .servers
            .iter()
            .map(|s| {
                redis::Client::open(s.url())
                    .unwrap()
                    .get_connection()
                    .unwrap()
            })
            .collect();
        let release_sha = release.get_hash().to_owned();
        for c in fan.iter_mut() {
            let _: String = redis::cmd("SCRIPT")
                .arg("LOAD")
                .arg(RELEASE_SRC)
                .query(c)
                .unwrap();
        }
        let mut fanned = |n: usize| {
            for i in 0..n {
                let token = format!("raw-{i}");
                let set = redis::cmd("SET")
                    .arg("redlock:bench-fan")
                    .arg(&token)
                    .arg("PX")
                    .arg(10_000)
                    .arg("NX")
                    .get_packed_command();
                let del = redis::cmd("EVALSHA")
                    .arg(&release_sha)
                    .arg(1)
                    .arg("redlock:bench-fan")
                    .arg(&token)
                    .get_packed_command();
                for packed in [set, del] {
                    for c in fan.iter_mut() {
                        c.send_packed_command(&packed).unwrap();
                    }
                    for c in fan.iter_mut() {
                        black_box(c.recv_response().unwrap());
                    }
                }
            }
        };
        let r = if count == 1 {
            compare(&mut mprobe, pn, rounds, &mut [&mut ours, &mut by_hand])
        } else {
            compare(&mut mprobe, pn, rounds, &mut [&mut ours, &mut fanned])
        };
        rows.push(Row::new(&format!("redlock acquire+release, {label}"), &r));
        let ids = pottery::NextId::new("bench", handles.clone());
        let r = compare(
            &mut mprobe,
            pn,
            rounds,
            &mut [&mut |n| {
                for _ in 0..n {
                    black_box(ids.next_id().unwrap());
                }
            }],
        );
        rows.push(Row::new(&format!("next_id, {label}"), &r));
    }
    let ids = pottery::NextId::new("bench-threads", masters.handles());
    let r = compare(
        &mut mprobe,
        pn * 4,
        rounds,
        &mut [&mut |n| {
            std::thread::scope(|s| {
                for _ in 0..8 {
                    let ids = ids.clone();
                    s.spawn(move || {
                        for _ in 0..n / 8 {
                            black_box(ids.next_id().unwrap());
                        }
                    });
                }
            });
        }],
    );
    rows.push(Row::new("next_id, 8 threads, 5 masters", &r));

    // Issue 26: the rate limiter, the semaphore and the reliable queue on one master.
    {
        let one = masters.servers[0].redis();
        let mut conn = masters.servers[0].redis().connection().unwrap();
        // Rate limiter decisions against a raw EVALSHA of the same script.
        let limiter =
            pottery::RateLimiter::new(&one, "bench-rl", 1_000_000_000, Duration::from_secs(1));
        let gcra = redis::Script::new(GCRA_SRC);
        let r = compare(
            &mut mprobe,
            pn,
            rounds,
            &mut [
                &mut |n| {
                    for _ in 0..n {
                        black_box(limiter.try_acquire(1).unwrap());
                    }
                },
                &mut |n| {
                    for _ in 0..n {
                        let v: Vec<i64> = gcra
                            .key("ratelimit:bench-rl-raw")
                            .arg("0.001")
                            .arg(1_000_000_000u64)
                            .arg(1)
                            .invoke(&mut conn)
                            .unwrap();
                        black_box(v);
                    }
                },
            ],
        );
        rows.push(Row::new(
            "rate limiter try_acquire (raw: EVALSHA of its script)",
            &r,
        ));
        // Semaphore acquire+release against Redlock's on the same master.
        let sem = pottery::Semaphore::new(&one, "bench-sem", 4);
        let lock = pottery::Redlock::new("bench-sem-lock", vec![one.clone()]);
        let r = compare(
            &mut mprobe,
            pn,
            rounds,
            &mut [
                &mut |n| {
                    for _ in 0..n {
                        sem.try_acquire().unwrap().unwrap().release().unwrap();
                    }
                },
                &mut |n| {
                    for _ in 0..n {
                        lock.lock().unwrap().release().unwrap();
                    }
                },
            ],
        );
        let lock_row = "redlock acquire+release, 1 master (same run)";
        rows.push(Row {
            vs: Some((lock_row.to_owned(), r[1].0)),
            ..Row::new("semaphore acquire+release", &[r[0]])
        });
        // Queue push+pop+ack against a raw loop of the same stream commands.
        let q: pottery::ReliableQueue<u64> = pottery::ReliableQueue::new(&one, "bench-q");
        q.clear().unwrap();
        let _: redis::Value = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg("bench-q-raw")
            .arg("g")
            .arg("$")
            .arg("MKSTREAM")
            .query(&mut conn)
            .unwrap_or(redis::Value::Nil);
        let r = compare(
            &mut mprobe,
            pn,
            rounds,
            &mut [
                &mut |n| {
                    for i in 0..n {
                        q.push(&(i as u64)).unwrap();
                        let d = q.pop(Duration::ZERO).unwrap().unwrap();
                        assert!(d.ack().unwrap());
                    }
                },
                &mut |n| {
                    for i in 0..n {
                        let _: String = redis::cmd("XADD")
                            .arg("bench-q-raw")
                            .arg("*")
                            .arg("v")
                            .arg(i)
                            .query(&mut conn)
                            .unwrap();
                        let read: redis::Value = redis::cmd("XREADGROUP")
                            .arg("GROUP")
                            .arg("g")
                            .arg("c")
                            .arg("COUNT")
                            .arg(1)
                            .arg("STREAMS")
                            .arg("bench-q-raw")
                            .arg(">")
                            .query(&mut conn)
                            .unwrap();
                        let id = stream_first_id(&read).expect("an entry");
                        let _: i64 = redis::cmd("XACK")
                            .arg("bench-q-raw")
                            .arg("g")
                            .arg(&id)
                            .query(&mut conn)
                            .unwrap();
                        let _: i64 = redis::cmd("XDEL")
                            .arg("bench-q-raw")
                            .arg(&id)
                            .query(&mut conn)
                            .unwrap();
                    }
                },
            ],
        );
        rows.push(Row::new(
            "queue push+pop+ack (raw: XADD, XREADGROUP, XACK, XDEL)",
            &r,
        ));
        q.clear().unwrap();
    }

    // Async Redlock: 64 tasks, each cycling its own lock on the five masters.
    let locks: Vec<pottery::aio::Redlock> = (0..tasks)
        .map(|t| pottery::aio::Redlock::new(&format!("bench-async-{t}"), masters.handles()))
        .collect();
    let r = compare(
        &mut mprobe,
        pn * 4,
        rounds,
        &mut [&mut |n| {
            rt.block_on(futures_util::future::join_all(locks.iter().map(
                |lock| async move {
                    for _ in 0..n / tasks {
                        lock.lock().await.unwrap().release().await.unwrap();
                    }
                },
            )));
        }],
    );
    rows.push(Row::new("async redlock, 64 tasks, 5 masters", &r));

    // Contention (issue 12), the second table: fixed-duration runs of many workers on ONE lock
    // (one `Arc<Redlock>` for threads, clones of one `aio::Redlock` for tasks) or one id
    // sequence, each next to the same loop with one worker.
    let dur = if smoke {
        Duration::from_millis(200)
    } else {
        Duration::from_secs(if quick { 1 } else { 4 })
    };
    let short = dur / 4;
    let mut contention = Vec::new();
    for count in [1usize, 5] {
        let label = if count == 1 { "1 master" } else { "5 masters" };
        let handles: Vec<Redis> = masters.handles().into_iter().take(count).collect();
        let lock = Arc::new(pottery::Redlock::new(
            &format!("bench-contend-{count}"),
            handles.clone(),
        ));
        let cycle = |_: usize| {
            let t = Instant::now();
            let g = lock.lock()?;
            let wait = t.elapsed();
            drop(g);
            Ok(Some(wait))
        };
        let alone = on_threads(&mut mprobe, 1, short, &cycle);
        let run = on_threads(&mut mprobe, 8, dur, &cycle);
        contention.push(run.row(
            &format!("redlock handoffs, 8 threads, {label}"),
            "handoffs/s",
            Some(&alone),
        ));
        let alock = pottery::aio::Redlock::new(&format!("bench-contend-async-{count}"), handles);
        let alone = on_tasks(&rt, &mut mprobe, 1, short, &alock);
        let run = on_tasks(&rt, &mut mprobe, tasks, dur, &alock);
        contention.push(run.row(
            &format!("async redlock handoffs, {tasks} tasks, {label}"),
            "handoffs/s",
            Some(&alone),
        ));
    }
    // NextId on five masters: one handle shared by 8 threads (its callers share rounds), then
    // 8 independent handles, one per thread, that contend like 8 processes would.
    let shared = pottery::NextId::new("bench-contend-shared", masters.handles());
    let draw = |ids: &pottery::NextId| {
        ids.next_id().map(|id| {
            black_box(id);
            None
        })
    };
    let alone = on_threads(&mut mprobe, 1, short, &|_| draw(&shared));
    let run = on_threads(&mut mprobe, 8, dur, &|_| draw(&shared));
    contention.push(run.row(
        "next_id, 8 threads, 1 shared handle, 5 masters",
        "ids/s",
        Some(&alone),
    ));
    let own: Vec<pottery::NextId> = (0..8)
        .map(|_| pottery::NextId::new("bench-contend-own", masters.handles()))
        .collect();
    let alone = on_threads(&mut mprobe, 1, short, &|t| draw(&own[t]));
    let run = on_threads(&mut mprobe, 8, dur, &|t| draw(&own[t]));
    contention.push(run.row(
        "next_id, 8 threads, 8 handles, 5 masters",
        "ids/s",
        Some(&alone),
    ));

    // Cache stampede (issue 13), the third table: 64 tasks call one cold entry at once; the
    // computation sleeps 50 ms. In one process, the `#[redis_cache]` function computes once
    // (in-process single flight is always on); its `wrapped` function is the same stampede
    // without a cache. Then 64 handles, each on its own URL of the same server (`?client=i`,
    // so each has its own in-process flights) stand for 64 processes: `aio::RedisCache` on
    // each, without and with `single_flight` (the attribute's 10 s bound).
    let stampede_rounds = if smoke {
        1
    } else if quick {
        5
    } else {
        11
    };
    let mut next_entry = 0u64;
    let mut stampedes = Vec::new();
    stampedes.push(stampede(
        &rt,
        &mut probe,
        &format!("attribute async fn, {tasks} tasks, 1 process"),
        tasks,
        stampede_rounds,
        &mut next_entry,
        |entry, _| slow_report(entry),
    ));
    stampedes.push(stampede(
        &rt,
        &mut probe,
        &format!("no cache (wrapped), {tasks} tasks"),
        tasks,
        stampede_rounds,
        &mut next_entry,
        |entry, _| slow_report::wrapped(entry),
    ));
    slow_report::cache_clear().unwrap();
    let handles: Vec<Redis> = (0..tasks)
        .map(|t| Redis::from_url(&format!("{url}?client={t}")).unwrap())
        .collect();
    for (label, bound) in [
        ("single_flight off", None),
        ("single_flight on", Some(Duration::from_secs(10))),
    ] {
        let key = format!("bench:rs:stampede:{}", label.replace(' ', "-"));
        let caches: Vec<pottery::aio::RedisCache> = handles
            .iter()
            .map(|h| pottery::aio::RedisCache::new(h, key.as_str()).single_flight(bound))
            .collect();
        stampedes.push(stampede(
            &rt,
            &mut probe,
            &format!("aio::RedisCache, {tasks} handles, {label}"),
            tasks,
            stampede_rounds,
            &mut next_entry,
            |entry, t| {
                let cache = caches[t].clone();
                async move {
                    cache
                        .get_or_compute(&(entry,), || slow(entry))
                        .await
                        .unwrap()
                }
            },
        ));
        rt.block_on(caches[0].clear()).unwrap();
    }

    // A million entries iterated with a bounded footprint (full runs only: filling takes time).
    if !quick {
        let (row, rss) = iteration(&redis, &mut raw, &mut probe, 1_000_000, 1);
        rows.push(Row {
            rss_mib: [Some(rss), None],
            raw: None,
            trips: [row.trips[0], None, None],
            ..row
        });
    }

    // Failovers (issue 15, full runs only): a cluster of 3 masters + 3 replicas
    // (`cluster-node-timeout 2000`); a writer thread (an idempotent dict set, then a counter
    // increment, which must not repeat) and an async reader through one handle while the
    // master owning the keys is SIGKILLed. With the default retries, and with them off (what
    // callers saw before).
    let mut failovers = Vec::new();
    if !quick {
        for (label, retry) in [
            ("retries on (default 10 s)", Duration::from_secs(10)),
            ("retries off", Duration::ZERO),
        ] {
            let mut cluster = pottery::testing::RedisCluster::builder()
                .masters(3)
                .replicas_per_master(1)
                .node_timeout(Duration::from_millis(2000))
                .start()
                .expect("start a cluster with replicas");
            let handle = Redis::cluster_builder(cluster.urls())
                .connection_timeout(Duration::from_secs(1))
                .response_timeout(Some(Duration::from_secs(2)))
                .retry_timeout(retry)
                .build()
                .unwrap();
            let key = format!("bench:failover:{}", rand::random::<u64>());
            let owner = cluster.master_for_key(&key).unwrap();
            let report = pottery_tests::failover::run(&handle, &key, || {
                cluster.kill_node(owner);
                cluster
                    .wait_for_failover(Duration::from_secs(30))
                    .expect("the cluster fails over");
            });
            failovers.push((label, report));
        }
    }

    let py_prims = run_python(
        PY_PRIMITIVES,
        &[
            (pn / 3).to_string(),
            serde_json::to_string(&urls).unwrap(),
            dur.as_secs_f64().to_string(),
            short.as_secs_f64().to_string(),
        ],
        &url,
    );
    let py = run_python(PY_BENCH, &[n.to_string(), it_n.to_string()], &url);
    for row in &mut rows {
        for r in [&py, &py_prims] {
            if let Some(v) = r.rates.get(&row.name) {
                row.python = Some(*v);
                row.trips[2] = r.trips.get(&row.name).copied();
                row.rss_mib[1] = r.rss.get(&row.name).copied();
            }
        }
    }
    // Each Python row goes after ours of the same name.
    let mut table = Vec::new();
    for row in contention {
        let name = row.name.clone();
        table.push(row);
        table.extend(
            py_prims
                .contention
                .iter()
                .filter(|p| p.name == name)
                .cloned(),
        );
    }
    report(&rows, &table, &stampedes, &failovers, dur, quick, n, rounds);
}

/// Runs `n` operations as `tasks` concurrent tasks on `rt`; `op(j)` is the `j`-th operation.
fn in_tasks<F, Fut>(rt: &tokio::runtime::Runtime, tasks: usize, n: usize, op: F)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let op = &op;
    rt.block_on(futures_util::future::join_all((0..tasks).map(
        |t| async move {
            for i in 0..n / tasks {
                op(i * tasks + t).await;
            }
        },
    )));
}

/// Fills a dict of `size` entries (in HSETs of 10,000) and iterates it: pottery-rs's `iter`
/// against raw HSCAN pages of the same size. Returns the row (items/s, round trips per item)
/// and pottery-rs's peak RSS during its iterations.
fn iteration(
    redis: &Redis,
    raw: &mut redis::Connection,
    probe: &mut Probe,
    size: usize,
    rounds: usize,
) -> (Row, f64) {
    let key = format!("bench:iter:{size}");
    let big: RedisDict<String, i64> = RedisDict::new(redis, key.clone());
    big.clear().unwrap();
    for start in (0..size).step_by(10_000) {
        big.extend((start..(start + 10_000).min(size)).map(|i| (format!("k{i}"), i as i64)))
            .unwrap();
    }
    let mut peak: f64 = 0.0;
    let mut ours = |k: usize| {
        reset_peak_rss();
        for _ in 0..k {
            let mut count = 0usize;
            for entry in big.iter() {
                black_box(entry.unwrap());
                count += 1;
            }
            assert_eq!(count, size);
        }
        peak = peak.max(peak_rss_mib().unwrap_or(0.0));
    };
    let mut by_hand = |k: usize| {
        for _ in 0..k {
            let mut cursor = 0u64;
            let mut count = 0usize;
            loop {
                let (next, page): ScanPage = redis::cmd("HSCAN")
                    .arg(&key)
                    .arg(cursor)
                    .arg("COUNT")
                    .arg(512)
                    .query(raw)
                    .unwrap();
                count += page.len();
                black_box(page);
                cursor = next;
                if cursor == 0 {
                    break;
                }
            }
            assert!(count >= size);
        }
    };
    let r = compare_with(probe, 1, rounds, 1, &mut [&mut ours, &mut by_hand]);
    big.clear().unwrap();
    let per_item: Vec<(f64, f64)> = r
        .iter()
        .map(|(rate, trips)| (rate * size as f64, trips / size as f64))
        .collect();
    let mut row = Row::new(
        &format!("dict iteration over {}", thousands(size)),
        &per_item,
    );
    row.unit = "items/s";
    (row, peak)
}

/// An HSCAN reply: the next cursor and the page's field-value pairs.
type ScanPage = (u64, Vec<(Vec<u8>, Vec<u8>)>);

/// 100000 → "100,000".
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn fmt_opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map_or("-".to_owned(), f)
}

fn fmt_trips(t: f64) -> String {
    if t >= 10.0 || t == t.round() {
        format!("{t:.0}")
    } else if t >= 0.1 {
        format!("{t:.2}")
    } else {
        format!("{t:.4}")
    }
}

/// Prints the tables; writes the JSON (and, for a full run, the chart) under `docs/`.
#[allow(clippy::too_many_arguments)]
fn report(
    rows: &[Row],
    contention: &[Contention],
    stampedes: &[Stampede],
    failovers: &[(&str, pottery_tests::failover::FailoverReport)],
    dur: Duration,
    quick: bool,
    n: usize,
    rounds: usize,
) {
    let mode = if quick {
        "QUICK=1 make bench"
    } else {
        "make bench"
    };
    println!(
        "\npottery-rs benchmark ({mode}; {n} ops x {rounds} rounds, median; redis-server on loopback, servers on CPU 0, clients on CPU 1)"
    );
    println!(
        "{:<40} {:>12} {:>12} {:>12} {:>7} {:>7} {:>12}  {:>6} {:>6} {:>6}  {:>6} {:>6}",
        "workload",
        "unit",
        "pottery-rs",
        "raw",
        "rs/raw",
        "rs/py",
        "pottery-py",
        "rt rs",
        "rt raw",
        "rt py",
        "MiB rs",
        "MiB py"
    );
    for row in rows {
        println!(
            "{:<40} {:>12} {:>12.0} {:>12} {:>7} {:>7} {:>12}  {:>6} {:>6} {:>6}  {:>6} {:>6}",
            row.name,
            row.unit,
            row.ours,
            fmt_opt(row.raw, |r| format!("{r:.0}")),
            fmt_opt(row.raw, |r| format!("{:.2}x", row.ours / r)),
            fmt_opt(row.python, |p| format!("{:.2}x", row.ours / p)),
            fmt_opt(row.python, |p| format!("{p:.0}")),
            fmt_opt(row.trips[0], fmt_trips),
            fmt_opt(row.trips[1], fmt_trips),
            fmt_opt(row.trips[2], fmt_trips),
            fmt_opt(row.rss_mib[0], |m| format!("{m:.1}")),
            fmt_opt(row.rss_mib[1], |m| format!("{m:.1}")),
        );
    }
    println!(
        "rt = round trips per operation (per item for iterations), counted as server reads, summed over the masters"
    );
    for row in rows {
        if let Some((other, rate)) = &row.vs {
            println!(
                "{}: {:.2}x {other} (same rounds)",
                row.name,
                row.ours / rate
            );
        }
    }
    print_contention(contention, dur);
    print_stampedes(stampedes);
    if !failovers.is_empty() {
        print!("{}", failover_markdown(failovers));
    }

    let json = serde_json::json!({
        "date": shell(&["date", "-u", "+%Y-%m-%d"]),
        "command": mode,
        "machine": machine(),
        "ops_per_round": n,
        "rounds": rounds,
        "rows": rows.iter().map(|r| serde_json::json!({
            "workload": r.name,
            "unit": r.unit,
            "pottery_rs": r.ours,
            "raw_redis_rs": r.raw,
            "pottery_py": r.python,
            "rs_over_raw": r.raw.map(|x| r.ours / x),
            "rs_over_py": r.python.map(|x| r.ours / x),
            "round_trips_rs": r.trips[0],
            "round_trips_raw": r.trips[1],
            "round_trips_py": r.trips[2],
            "peak_rss_mib_rs": r.rss_mib[0],
            "peak_rss_mib_py": r.rss_mib[1],
            "compared_to": r.vs.as_ref().map(|v| &v.0),
            "rs_over_compared": r.vs.as_ref().map(|v| r.ours / v.1),
        })).collect::<Vec<_>>(),
        "contention_seconds": dur.as_secs_f64(),
        "contention": contention.iter().map(|c| serde_json::json!({
            "workload": c.name,
            "client": c.client,
            "unit": c.unit,
            "workers": c.workers,
            "seconds": c.secs,
            "rate": c.rate,
            "uncontended_rate": c.uncontended,
            "rate_over_uncontended": c.uncontended.map(|u| c.rate / u),
            "wait_p50_ms": c.p50_ms,
            "wait_p99_ms": c.p99_ms,
            "min_per_worker": c.min,
            "max_per_worker": c.max,
            "failed_calls": c.failed,
            "round_trips": c.trips,
        })).collect::<Vec<_>>(),
        "failover": failovers.iter().map(|(label, f)| serde_json::json!({
            "workload": "cluster 3+3 failover, cluster-node-timeout 2000",
            "retries": label,
            "failover_ms": millis(f.failover),
            "longest_write_wait_ms": millis(f.longest_write_gap),
            "longest_read_wait_ms": millis(f.longest_read_gap),
            "set_errors": f.write_errors,
            "read_errors": f.read_errors,
            "incr_errors": f.incr_errors,
            "incr_maybe_applied": f.incrs_maybe_applied,
            "writes_acked": f.writes_acked,
            "acked_writes_lost": f.lost,
        })).collect::<Vec<_>>(),
        "stampede_compute_ms": millis(STAMPEDE_COMPUTE),
        "stampede": stampedes.iter().map(|s| {
            let (c, cmin, cmax) = s.computations();
            let (ms, msmin, msmax) = s.all_ms();
            serde_json::json!({
                "workload": s.name,
                "client": "pottery-rs",
                "tasks": s.tasks,
                "rounds": s.all_ms.len(),
                "computations_median": c,
                "computations_min": cmin,
                "computations_max": cmax,
                "all_have_value_ms_median": ms,
                "all_have_value_ms_min": msmin,
                "all_have_value_ms_max": msmax,
                "server_reads_per_round": s.reads(),
                "commands_per_round": s.commands(),
                "computations_per_round": s.computations,
                "all_have_value_ms_per_round": s.all_ms,
            })
        }).collect::<Vec<_>>(),
    });
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let (json_path, svg_path) = if quick {
        (root.join("target/bench-quick.json"), None)
    } else {
        (
            root.join("docs/bench.json"),
            Some(root.join("docs/bench.svg")),
        )
    };
    if let Some(dir) = json_path.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(
        &json_path,
        serde_json::to_string_pretty(&json).unwrap() + "\n",
    )
    .unwrap();
    println!("wrote {}", json_path.display());
    if let Some(svg_path) = svg_path {
        std::fs::write(&svg_path, chart(rows, &json)).unwrap();
        println!("wrote {}", svg_path.display());
        let md_path = root.join("docs/bench.md");
        std::fs::write(
            &md_path,
            markdown(rows)
                + "\n"
                + &contention_markdown(contention)
                + "\n"
                + &stampede_markdown(stampedes)
                + "\n"
                + &failover_markdown(failovers),
        )
        .unwrap();
        println!("wrote {}", md_path.display());
    }
}

/// The failover table: what callers saw while a cluster master was replaced.
fn failover_markdown(failovers: &[(&str, pottery_tests::failover::FailoverReport)]) -> String {
    let mut out = String::from(
        "Cluster failover (3 masters + 3 replicas, `cluster-node-timeout 2000`, the keys' master \
         SIGKILLed under a writer thread and an async reader on one handle):\n\n\
         | retries | kill to new master | longest write wait | longest read wait | set errors | \
         read errors | incr errors | incr maybe applied | acked writes lost |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for (label, f) in failovers {
        out += &format!(
            "| {label} | {:.1} s | {:.1} s | {:.1} s | {} | {} | {} | {} | {} of {} |\n",
            f.failover.as_secs_f64(),
            f.longest_write_gap.as_secs_f64(),
            f.longest_read_gap.as_secs_f64(),
            f.write_errors,
            f.read_errors,
            f.incr_errors,
            f.incrs_maybe_applied,
            f.lost,
            f.writes_acked,
        );
    }
    out
}

/// The contention table's cells for one row: rate, one-worker rate, ratio, p50, p99, min,
/// max, failed, round trips.
fn contention_cells(c: &Contention) -> [String; 9] {
    let ms = |v: f64| {
        if v >= 100.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.2}")
        }
    };
    [
        format!("{:.0}", c.rate),
        fmt_opt(c.uncontended, |u| format!("{u:.0}")),
        fmt_opt(c.uncontended, |u| format!("{:.2}x", c.rate / u)),
        fmt_opt(c.p50_ms, ms),
        fmt_opt(c.p99_ms, ms),
        c.min.map_or("-".to_owned(), |v| v.to_string()),
        c.max.map_or("-".to_owned(), |v| v.to_string()),
        c.failed.to_string(),
        fmt_opt(c.trips, fmt_trips),
    ]
}

const CONTENTION_NOTE: &str = "Fixed-duration runs; workers start together after one warm-up call each. rate = successful \
calls per second, all workers together; alone = the same loop with one worker; wait = lock() \
to guard; min/max = successful calls of the least and most served worker; rt = server reads \
per successful call, summed over the masters. pottery-rs threads share ONE Redlock (Arc) and \
tasks clones of ONE aio::Redlock; pottery-py runs one Redlock per thread (its instances are not \
thread-safe), `with lock: pass`. NextId '8 handles' = one independent handle per thread \
(pottery-py: one NextID per thread, num_tries=3).";

fn print_contention(table: &[Contention], dur: Duration) {
    println!(
        "\ncontention ({} s per run; alone = one worker, same loop, {} s)",
        dur.as_secs_f64(),
        dur.as_secs_f64() / 4.0
    );
    println!(
        "{:<46} {:<10} {:>10} {:>10} {:>8} {:>7} {:>8} {:>8} {:>6} {:>6} {:>6} {:>6}",
        "workload",
        "client",
        "unit",
        "rate",
        "alone",
        "ratio",
        "p50 ms",
        "p99 ms",
        "min",
        "max",
        "failed",
        "rt"
    );
    for c in table {
        let [rate, alone, ratio, p50, p99, min, max, failed, trips] = contention_cells(c);
        println!(
            "{:<46} {:<10} {:>10} {rate:>10} {alone:>8} {ratio:>7} {p50:>8} {p99:>8} {min:>6} {max:>6} {failed:>6} {trips:>6}",
            c.name, c.client, c.unit
        );
    }
    println!("{CONTENTION_NOTE}");
}

fn contention_markdown(table: &[Contention]) -> String {
    let mut out = String::from(
        "| contention | client | rate | alone | ratio | wait p50 ms | wait p99 ms | min / max per worker | failed | round trips |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for c in table {
        let [_, _, ratio, p50, p99, min, max, failed, trips] = contention_cells(c);
        let rate = thousands(c.rate.round() as usize);
        let alone = fmt_opt(c.uncontended, |u| thousands(u.round() as usize));
        out.push_str(&format!(
            "| {} | {} | {rate} {} | {alone} | {} | {p50} | {p99} | {min} / {max} | {failed} | {trips} |\n",
            c.name,
            c.client,
            c.unit,
            ratio.replace('x', "×"),
        ));
    }
    out.push('\n');
    out.push_str(CONTENTION_NOTE);
    out.push('\n');
    out
}

const STAMPEDE_NOTE: &str = "Each round, every task is spawned at once on a fresh (cold) entry; \
computations = times the 50 ms function ran; all have it = from the first call until the last \
task had the value; cmds / reads = commands and socket reads the server processed per round, all \
tasks together (commands pipelined on one connection can share a read). '1 process' = one \
`#[redis_cache]` function (in-process single flight is always on); '64 handles' = one Redis \
handle per task on its own URL of the same server, as 64 processes would be, without and with \
single_flight (a lease in Redis; the others poll for the value, 2 ms growing to 10 ms apart).";

fn print_stampedes(table: &[Stampede]) {
    let Some(first) = table.first() else { return };
    println!(
        "\nstampede ({} tasks call one cold entry at once; the computation takes {} ms; median of {} rounds)",
        first.tasks,
        millis(STAMPEDE_COMPUTE),
        first.all_ms.len()
    );
    println!(
        "{:<46} {:>12} {:>9} {:>14} {:>13} {:>6} {:>6}",
        "workload", "computations", "(min-max)", "all have it ms", "(min-max)", "cmds", "reads"
    );
    for s in table {
        let (c, cmin, cmax) = s.computations();
        let (ms, msmin, msmax) = s.all_ms();
        println!(
            "{:<46} {c:>12.0} {:>9} {ms:>14.1} {:>13} {:>6.0} {:>6.0}",
            s.name,
            format!("{cmin}-{cmax}"),
            format!("{msmin:.0}-{msmax:.0}"),
            s.commands(),
            s.reads(),
        );
    }
    println!("{STAMPEDE_NOTE}");
}

fn stampede_markdown(table: &[Stampede]) -> String {
    let mut out = String::from(
        "| stampede | computations (min–max) | ms until all have the value (min–max) | commands / server reads per round |\n\
         |---|---:|---:|---:|\n",
    );
    for s in table {
        let (c, cmin, cmax) = s.computations();
        let (ms, msmin, msmax) = s.all_ms();
        out.push_str(&format!(
            "| {} | {c:.0} ({cmin}–{cmax}) | {ms:.1} ({msmin:.0}–{msmax:.0}) | {:.0} / {:.0} |\n",
            s.name,
            s.commands(),
            s.reads()
        ));
    }
    out.push('\n');
    out.push_str(STAMPEDE_NOTE);
    out.push('\n');
    out
}

/// The table as Markdown (pasted into the README's performance section).
fn markdown(rows: &[Row]) -> String {
    let rate = |v: f64| thousands(v.round() as usize);
    let mut out = String::from(
        "| workload | pottery-rs | raw redis-rs | rs / raw | pottery-py | rs / py | round trips rs / raw / py |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let unit = if r.unit == "items/s" { " items/s" } else { "" };
        let trips = r
            .trips
            .iter()
            .map(|t| fmt_opt(*t, fmt_trips))
            .collect::<Vec<_>>()
            .join(" / ");
        let rss = match r.rss_mib {
            [Some(a), Some(b)] => format!(" (peak RSS {a:.1} MiB vs {b:.1} MiB)"),
            [Some(a), None] => format!(" (peak RSS {a:.1} MiB)"),
            _ => String::new(),
        };
        out.push_str(&format!(
            "| {}{rss} | {}{unit} | {} | {} | {} | {} | {trips} |\n",
            r.name,
            rate(r.ours),
            fmt_opt(r.raw, rate),
            fmt_opt(r.raw, |x| format!("{:.2}×", r.ours / x)),
            fmt_opt(r.python, rate),
            fmt_opt(r.python, |x| format!("{:.2}×", r.ours / x)),
        ));
    }
    for r in rows {
        if let Some((other, rate)) = &r.vs {
            out.push_str(&format!(
                "\n{}: {:.2}× {other} (same rounds)\n",
                r.name,
                r.ours / rate
            ));
        }
    }
    out
}

fn shell(args: &[&str]) -> String {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn machine() -> serde_json::Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_default();
    let cores = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let python = venv_python()
        .map(|p| {
            shell(&[
                &p,
                "-c",
                "import sys, importlib.metadata as m; print('Python', sys.version.split()[0], 'pottery', m.version('pottery'))",
            ])
        })
        .unwrap_or_default();
    serde_json::json!({
        "cpu": cpu,
        "cores": cores,
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
        "redis_server": shell(&["redis-server", "--version"]),
        "rustc": shell(&["rustc", "--version"]),
        "python_and_pottery": python,
    })
}

/// A horizontal bar chart of the rates (log scale), three bars per workload.
fn chart(rows: &[Row], meta: &serde_json::Value) -> String {
    use std::fmt::Write;
    let (left, width, bar, gap, top) = (300.0, 560.0, 7.0, 9.0, 70.0);
    let group = 3.0 * bar + gap;
    let height = top + group * rows.len() as f64 + 60.0;
    let max = rows
        .iter()
        .flat_map(|r| [Some(r.ours), r.raw, r.python])
        .flatten()
        .fold(1.0f64, f64::max);
    let decades = max.log10().ceil().max(1.0);
    let x = |v: f64| left + width * (v.max(1.0).log10() / decades);
    let mut svg = String::new();
    let total_w = left + width + 90.0;
    let _ = writeln!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{total_w}" height="{height}" font-family="sans-serif" font-size="11">"##
    );
    let _ = writeln!(svg, r##"<rect width="100%" height="100%" fill="white"/>"##);
    let _ = writeln!(
        svg,
        r##"<text x="10" y="20" font-size="14" font-weight="bold">pottery-rs vs raw redis-rs vs Python pottery 3.0.1 (rate, log scale; higher is better)</text>"##
    );
    let _ = writeln!(
        svg,
        r##"<text x="10" y="38" fill="#555">{} — `{}` — {} ({} cores)</text>"##,
        meta["date"].as_str().unwrap_or(""),
        meta["command"].as_str().unwrap_or(""),
        meta["machine"]["cpu"].as_str().unwrap_or(""),
        meta["machine"]["cores"],
    );
    let colors = [
        ("#1f77b4", "pottery-rs"),
        ("#999999", "raw redis-rs"),
        ("#ff7f0e", "pottery-py"),
    ];
    for (i, (c, label)) in colors.iter().enumerate() {
        let lx = left + i as f64 * 150.0;
        let _ = writeln!(
            svg,
            r##"<rect x="{lx}" y="48" width="12" height="10" fill="{c}"/><text x="{}" y="57">{label}</text>"##,
            lx + 16.0
        );
    }
    for d in 0..=decades as i32 {
        let v = 10f64.powi(d);
        let gx = x(v);
        let _ = writeln!(
            svg,
            r##"<line x1="{gx}" y1="{top}" x2="{gx}" y2="{}" stroke="#ddd"/><text x="{gx}" y="{}" text-anchor="middle" fill="#555">1e{d}</text>"##,
            height - 45.0,
            height - 32.0
        );
    }
    for (i, row) in rows.iter().enumerate() {
        let y0 = top + i as f64 * group;
        let unit = if row.unit == "items/s" {
            " (items/s)"
        } else {
            ""
        };
        let _ = writeln!(
            svg,
            r##"<text x="{}" y="{}" text-anchor="end">{}{unit}</text>"##,
            left - 6.0,
            y0 + 1.5 * bar + 4.0,
            row.name
        );
        for (j, v) in [Some(row.ours), row.raw, row.python]
            .into_iter()
            .enumerate()
        {
            let Some(v) = v else { continue };
            let y = y0 + j as f64 * bar;
            let _ = writeln!(
                svg,
                r##"<rect x="{left}" y="{y}" width="{:.1}" height="{}" fill="{}"/><text x="{:.1}" y="{}" font-size="8" fill="#333">{v:.0}</text>"##,
                (x(v) - left).max(0.5),
                bar - 1.0,
                colors[j].0,
                x(v) + 3.0,
                y + bar - 1.5
            );
        }
    }
    let _ = writeln!(
        svg,
        r##"<text x="10" y="{}" fill="#555">ops/s unless marked; one client thread unless the name says; servers pinned to CPU 0, clients to CPU 1</text>"##,
        height - 10.0
    );
    svg.push_str("</svg>\n");
    svg
}

/// The near cache: a hit against raw `HGET` of the same field (one caller, and 64 async
/// tasks), a miss (its `HGET` + `PTTL` on the tracking connection) against raw redis-rs
/// sending the same pipeline, a write on a near-cached handle against the same write on a
/// plain one, and freshness: the time from another client's acknowledged write to this
/// handle's first read of the new value, over 1,000 writes (printed).
#[allow(clippy::too_many_arguments)]
fn near_rows(
    url: &str,
    probe: &mut Probe,
    rt: &tokio::runtime::Runtime,
    araw: &redis::aio::MultiplexedConnection,
    n: usize,
    rounds: usize,
    smoke: bool,
    rows: &mut Vec<Row>,
) {
    let near = Redis::builder(url)
        .near_cache(pottery::NearCache::new())
        .build()
        .unwrap();
    let plain = Redis::from_url(url).unwrap();
    let key = "bench:rs:near";
    let raw_key = "bench:raw";
    let ndict: RedisDict<String, i64> = RedisDict::new(&near, key);
    let pdict: RedisDict<String, i64> = RedisDict::new(&plain, key);
    let mut raw = redis::Client::open(url).unwrap().get_connection().unwrap();
    for i in 0..1000 {
        pdict.set(format!("k{i}"), i).unwrap();
        let _: () = raw.hset(raw_key, format!("\"k{i}\""), i).unwrap();
    }
    // Hits: 100 fields, all cached after the warm-up. Their names are built once, before
    // the loops, on both sides (a `format!` per call would cost more than a hit).
    let hits = n * 20;
    let fields: Vec<String> = (0..100).map(|i| format!("k{i}")).collect();
    let raw_fields: Vec<String> = (0..100).map(|i| format!("\"k{i}\"")).collect();
    let (fields, raw_fields) = (&fields, &raw_fields);
    let r = compare(
        probe,
        hits,
        rounds,
        &mut [
            &mut |n| {
                for i in 0..n {
                    black_box(ndict.get(&fields[i % 100]).unwrap());
                }
            },
            &mut |n| {
                for i in 0..n {
                    let v: Option<Vec<u8>> = raw.hget(raw_key, &raw_fields[i % 100]).unwrap();
                    black_box(v);
                }
            },
        ],
    );
    rows.push(Row::new("near-cache hit (dict get)", &r));
    let nadict = ndict.to_async();
    let (nadict, tasks) = (&nadict, 64);
    let r = compare(
        probe,
        hits,
        rounds,
        &mut [
            &mut |n| {
                in_tasks(rt, tasks, n, |j| async move {
                    black_box(nadict.get(&fields[j % 100]).await.unwrap());
                })
            },
            &mut |n| {
                in_tasks(rt, tasks, n, |j| {
                    let mut c = araw.clone();
                    async move {
                        let v: Option<Vec<u8>> =
                            redis::AsyncCommands::hget(&mut c, raw_key, &raw_fields[j % 100])
                                .await
                                .unwrap();
                        black_box(v);
                    }
                })
            },
        ],
    );
    rows.push(Row::new("near-cache hit (async dict get), 64 tasks", &r));
    // Misses: the cache flushed before each read (no I/O), so every read is a fill.
    let r = compare(
        probe,
        n,
        rounds,
        &mut [
            &mut |n| {
                for i in 0..n {
                    near.near_cache_flush();
                    black_box(ndict.get(&format!("k{}", i % 1000)).unwrap());
                }
            },
            &mut |n| {
                for i in 0..n {
                    let v: (Option<Vec<u8>>, i64) = redis::pipe()
                        .hget(raw_key, format!("\"k{}\"", i % 1000))
                        .pttl(raw_key)
                        .query(&mut raw)
                        .unwrap();
                    black_box(v);
                }
            },
        ],
    );
    rows.push(Row::new("near-cache miss (dict get: HGET + PTTL)", &r));
    // Async misses: read on the tracking connection itself (cached before they return).
    let r = compare(
        probe,
        n,
        rounds,
        &mut [
            &mut |n| {
                rt.block_on(async {
                    for i in 0..n {
                        near.near_cache_flush();
                        black_box(nadict.get(&format!("k{}", i % 1000)).await.unwrap());
                    }
                })
            },
            &mut |n| {
                let mut c = araw.clone();
                rt.block_on(async {
                    for i in 0..n {
                        let v: (Option<Vec<u8>>, i64) = redis::pipe()
                            .hget(raw_key, format!("\"k{}\"", i % 1000))
                            .pttl(raw_key)
                            .query_async(&mut c)
                            .await
                            .unwrap();
                        black_box(v);
                    }
                })
            },
        ],
    );
    rows.push(Row::new(
        "near-cache miss (async dict get: HGET + PTTL)",
        &r,
    ));
    // Writes: the same insert on a near-cached handle and on a plain one.
    let r = compare(
        probe,
        n,
        rounds,
        &mut [
            &mut |n| {
                for i in 0..n {
                    black_box(ndict.insert(format!("k{}", i % 1000), i as i64).unwrap());
                }
            },
            &mut |n| {
                for i in 0..n {
                    black_box(pdict.insert(format!("k{}", i % 1000), i as i64).unwrap());
                }
            },
        ],
    );
    let mut row = Row::new("near-cache write (dict insert)", &r);
    row.vs = Some(("dict insert, plain handle".into(), r[1].0));
    row.raw = None;
    rows.push(row);
    println!(
        "near-cache write: {:.0}/s near-cached vs {:.0}/s plain handle (same script)",
        r[0].0, r[1].0
    );
    // Freshness.
    let writes = if smoke { 50 } else { 1000 };
    let mut lags = Vec::with_capacity(writes);
    black_box(ndict.get("fresh").unwrap());
    for i in 0..writes as i64 {
        let _: () = raw.hset(key, "\"fresh\"", i).unwrap();
        let acked = Instant::now();
        let deadline = acked + Duration::from_secs(5);
        // The reader yields between polls: this benchmark pins its thread to the core where
        // pottery's I/O threads (the tracking connection's reader) also run, and a reader
        // spinning there would measure the scheduler's time slice, not the invalidation.
        while ndict.get("fresh").unwrap() != Some(i) {
            assert!(Instant::now() < deadline, "write {i} not seen within 5 s");
            std::thread::yield_now();
        }
        lags.push(acked.elapsed().as_secs_f64() * 1e3);
    }
    lags.sort_by(f64::total_cmp);
    println!(
        "near-cache freshness over {writes} writes (another client's acknowledged HSET to this \
         handle's first read of it): p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        percentile(&lags, 0.5).unwrap_or(0.0),
        percentile(&lags, 0.99).unwrap_or(0.0),
        lags.last().copied().unwrap_or(0.0)
    );
    let s = near.near_cache_stats().unwrap();
    println!("near-cache stats: {s:?}");
}

/// `BENCH_NEAR_WRITER` in the environment: this process is the other process of
/// [`near_mix`], writing `HSET`s at a given rate.
const NEAR_WRITER: &str = "BENCH_NEAR_WRITER";

/// What [`near_mix`] reads and its writer writes: `keys` hashes (named after `prefix`) of
/// `fields` fields each.
#[derive(Clone, Copy)]
struct MixLayout {
    keys: usize,
    fields: usize,
}

impl MixLayout {
    fn key(&self, prefix: &str, i: usize) -> String {
        format!("{prefix}:{}", i % self.keys)
    }

    fn field(&self, i: usize) -> String {
        format!("k{}", i % self.fields)
    }

    /// The `i`th read's or write's key and field (every pair in turn).
    fn at(&self, i: usize) -> (usize, usize) {
        (i % self.keys, (i / self.keys) % self.fields)
    }
}

/// The writer process of [`near_mix`]: `url`, key prefix, keys and fields, tab-separated in
/// `spec`. Each line on its standard input is a number of writes to send (as one pipeline),
/// spread over every key and field; at the end of its input it prints how many it sent.
fn near_writer(spec: &str) {
    let [url, prefix, keys, fields] = spec.split('\t').collect::<Vec<_>>()[..] else {
        panic!("{NEAR_WRITER}: url, prefix, keys, fields");
    };
    let layout = MixLayout {
        keys: keys.parse().unwrap(),
        fields: fields.parse().unwrap(),
    };
    // The server's core: the reader has the other.
    pottery::testing::pin_to_cpu(0);
    let mut conn = redis::Client::open(url).unwrap().get_connection().unwrap();
    let mut sent = 0usize;
    for line in std::io::stdin().lines() {
        let n: usize = line.unwrap().trim().parse().unwrap();
        let mut pipe = redis::pipe();
        for i in sent..sent + n {
            // A stride, so that the writes do not follow the reader's order.
            let (k, f) = layout.at(i * 37);
            pipe.hset(layout.key(prefix, k), format!("\"{}\"", layout.field(f)), i)
                .ignore();
        }
        let _: () = pipe.query(&mut conn).unwrap();
        sent += n;
    }
    println!("{sent}");
}

/// One run of [`near_mix`]: `dicts` are read flat out for `millis`, every field of every
/// dict in turn, and for every 19 reads another process is asked for one write (in requests
/// of 100, which it sends as a pipeline): writes are 5 % of the operations. The reader
/// yields every 1,000 reads, so that the tracking connection's reader, on the same core,
/// gets to apply invalidations. Returns reads per second, writes per second (those sent
/// while the reader ran, and after it, for a writer that fell behind) and the share of reads
/// that were near-cache hits (`None` on a plain handle).
fn near_mix_run(
    url: &str,
    prefix: &str,
    layout: MixLayout,
    dicts: &[RedisDict<String, i64>],
    fields: &[String],
    millis: u64,
) -> (f64, f64, Option<f64>) {
    use std::io::Write as _;
    let spec = format!("{url}\t{prefix}\t{}\t{}", layout.keys, layout.fields);
    let mut writer = Command::new(std::env::current_exe().unwrap())
        .env(NEAR_WRITER, spec)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the writer process");
    let mut ask = writer.stdin.take().unwrap();
    let stats = || dicts[0].redis().near_cache_stats();
    let before = stats();
    let start = Instant::now();
    let end = start + Duration::from_millis(millis);
    let mut reads = 0usize;
    while Instant::now() < end {
        for i in reads..reads + 1_900 {
            let (k, f) = layout.at(i);
            black_box(dicts[k].get(&fields[f]).unwrap());
            if i % 1_000 == 999 {
                std::thread::yield_now();
            }
        }
        reads += 1_900;
        ask.write_all(b"100\n").unwrap();
        ask.flush().unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    drop(ask);
    let out = writer.wait_with_output().expect("the writer process");
    assert!(out.status.success(), "the writer process failed");
    let writes: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let hit_rate = stats().zip(before).map(|(s, b)| {
        let (hits, misses) = (s.hits - b.hits, s.misses - b.misses);
        hits as f64 / (hits + misses).max(1) as f64
    });
    (reads as f64 / secs, writes / secs, hit_rate)
}

/// The near cache under a 95 % read / 5 % write mix, writes from another process (printed):
/// a near-cached and a plain handle each read flat out for a second while another process
/// rewrites what they read, one write for every 19 reads (see [`near_mix_run`]).
/// Two layouts: 100 hashes of one field (a write invalidates what one read reads), and one
/// hash of 100 fields (a write to any field invalidates the whole hash: tracking is per key).
fn near_mix(url: &str, smoke: bool) {
    let near = Redis::builder(url)
        .near_cache(pottery::NearCache::new())
        .build()
        .unwrap();
    let plain = Redis::from_url(url).unwrap();
    let millis = if smoke { 100 } else { 1_000 };
    for (what, layout) in [
        (
            "100 hashes of 1 field",
            MixLayout {
                keys: 100,
                fields: 1,
            },
        ),
        (
            "1 hash of 100 fields",
            MixLayout {
                keys: 1,
                fields: 100,
            },
        ),
    ] {
        let prefix = format!("bench:rs:nearmix:{}x{}", layout.keys, layout.fields);
        let fields: Vec<String> = (0..layout.fields).map(|f| layout.field(f)).collect();
        let mut report = Vec::new();
        for (name, redis) in [("near-cached", &near), ("plain", &plain)] {
            let dicts: Vec<RedisDict<String, i64>> = (0..layout.keys)
                .map(|k| RedisDict::new(redis, layout.key(&prefix, k)))
                .collect();
            for d in &dicts {
                for (i, f) in fields.iter().enumerate() {
                    d.set(f.clone(), i as i64).unwrap();
                }
            }
            let (reads, writes, hit_rate) =
                near_mix_run(url, &prefix, layout, &dicts, &fields, millis);
            println!(
                "near-cache 95/5 mix, {what}, {name} handle: {reads:.0} reads/s, another \
                 process writing {writes:.0}/s ({:.1} % writes){}",
                100.0 * writes / (reads + writes),
                hit_rate.map_or(String::new(), |h| format!(", hit rate {:.1} %", 100.0 * h))
            );
            report.push(reads);
            if name == "plain" {
                for d in &dicts {
                    d.clear().unwrap();
                }
            }
        }
        println!(
            "near-cache 95/5 mix, {what}: reads {:.1}x the plain handle's",
            report[0] / report[1]
        );
    }
}
