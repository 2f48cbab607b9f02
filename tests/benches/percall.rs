//! `make bench` (second part): pottery-rs's own cost per call against raw redis-rs doing the
//! same server work, on one throwaway server, in the same run — and the heap allocations per
//! call of each side (a counting global allocator) and the client's CPU time per call (`rs µs`,
//! `raw µs`: every thread of this process, the server excluded), which a busy machine disturbs
//! much less than the rates.
//!
//! Rows: sequential one-command operations (one client thread, the server pinned to CPU 0 and
//! the client to CPU 1); 64 tasks on one handle against raw redis-rs on one multiplexed
//! connection; 8 threads of blocking calls against raw redis-rs with a connection per thread;
//! a `redis_cache` hit against raw `EVALSHA` of the same lookup script; Redlock acquire +
//! release on one master (a new lock per cycle, pottery's idiom, and a shared lock's guard)
//! against the hand-written `SET NX PX` + release script; one `aio::Redlock` shared by 64 tasks
//! against one task's acquire + release rate; near-cache hits (one caller, 64 tasks) against
//! raw `HGET` of the same field.
//!
//! Rounds of the two sides are interleaved and the median round is reported. `QUICK=1` runs a
//! short version; `QUICK=smoke` (in `make test`) runs every row once, as small as it runs (its
//! figures mean nothing: it proves the rows work). Writes `target/percall.json`.
//! `PERCALL_ONLY=<text>` runs only the rows whose name contains the text (for profiling).
//! `PERCALL_SIDE=rs` or `PERCALL_SIDE=raw` runs one side of each row only (the other reads
//! NaN), for counting one side's system calls (`perf stat -e 'syscalls:sys_enter_*'`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use pottery::testing::RedisServer;
use pottery::{Redis, RedisCache, RedisCounter, RedisDict, RedisList, RedisSet, Redlock};

/// Counts allocations (not bytes): what a call costs the allocator.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every method forwards to the system allocator with the same arguments.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as the caller promised for this call.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as the caller promised for this call.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as the caller promised for this call.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// One side of a row: `n` operations; returns (ops/s, allocations per op, client CPU µs per op).
type Side<'a> = Box<dyn FnMut(usize) -> (f64, f64, f64) + 'a>;

/// The CPU time this process (every thread; the server is another process) has used, in µs.
fn cpu_micros() -> f64 {
    // SAFETY: a zeroed rusage is a valid out-parameter; RUSAGE_SELF is a valid target.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let micros = |t: libc::timeval| t.tv_sec as f64 * 1e6 + t.tv_usec as f64;
    micros(usage.ru_utime) + micros(usage.ru_stime)
}

/// Times `f(n)` and counts its allocations and the client's CPU time (all threads: rows with
/// several workers count them all, per operation). The CPU time per operation is the client's
/// own cost, which a busy machine disturbs much less than the rate.
fn measure(n: usize, f: impl FnOnce(usize)) -> (f64, f64, f64) {
    let a0 = ALLOCATIONS.load(Ordering::Relaxed);
    let cpu0 = cpu_micros();
    let start = Instant::now();
    f(n);
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_micros() - cpu0;
    let allocs = ALLOCATIONS.load(Ordering::Relaxed) - a0;
    (n as f64 / secs, allocs as f64 / n as f64, cpu / n as f64)
}

struct Row {
    name: &'static str,
    rs: f64,
    raw: f64,
    rs_allocs: f64,
    raw_allocs: f64,
    rs_cpu: f64,
    raw_cpu: f64,
}

fn compare(name: &'static str, n: usize, rounds: usize, mut rs: Side, mut raw: Side) -> Row {
    // `PERCALL_ONLY=<text>`: only the rows whose name contains it (for profiling).
    if let Ok(only) = std::env::var("PERCALL_ONLY")
        && !name.contains(only.as_str())
    {
        return Row {
            name,
            rs: f64::NAN,
            raw: f64::NAN,
            rs_allocs: f64::NAN,
            raw_allocs: f64::NAN,
            rs_cpu: f64::NAN,
            raw_cpu: f64::NAN,
        };
    }
    // `PERCALL_SIDE=rs` or `raw`: only that side (for counting one side's system calls).
    let side = std::env::var("PERCALL_SIDE").unwrap_or_default();
    if side == "rs" {
        raw = Box::new(|_| (f64::NAN, f64::NAN, f64::NAN));
    } else if side == "raw" {
        rs = Box::new(|_| (f64::NAN, f64::NAN, f64::NAN));
    }
    // A warm-up of each side (connections, script caches).
    rs(n.min(100));
    raw(n.min(100));
    let (mut a, mut b, mut aa, mut ba) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut ac, mut bc) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let (r, al, cpu) = rs(n);
        a.push(r);
        aa.push(al);
        ac.push(cpu);
        let (r, al, cpu) = raw(n);
        b.push(r);
        ba.push(al);
        bc.push(cpu);
    }
    let row = Row {
        name,
        rs: median(a),
        raw: median(b),
        rs_allocs: median(aa),
        raw_allocs: median(ba),
        rs_cpu: median(ac),
        raw_cpu: median(bc),
    };
    println!(
        "| {:<58} | {:>9.0} | {:>9.0} | {:>5.2}x | {:>6.1} | {:>6.1} | {:>6.2} | {:>6.2} |",
        row.name,
        row.rs,
        row.raw,
        row.rs / row.raw,
        row.rs_allocs,
        row.raw_allocs,
        row.rs_cpu,
        row.raw_cpu
    );
    row
}

fn main() {
    let quick = std::env::var("QUICK").is_ok_and(|v| v != "0" && !v.is_empty());
    let smoke = std::env::var("QUICK").is_ok_and(|v| v == "smoke");
    let (n, rounds) = if smoke {
        (50, 1)
    } else if quick {
        (2_000, 3)
    } else {
        (20_000, 5)
    };
    pottery::testing::pin_to_cpu(0);
    let server = RedisServer::start().expect("start redis-server");
    pottery::testing::pin_to_cpu(1);
    let redis: Redis = server.redis();
    let client = redis::Client::open(server.url()).unwrap();
    let raw_conn = std::cell::RefCell::new(client.get_connection().unwrap());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "| {:<58} | {:>9} | {:>9} | {:>6} | {:>6} | {:>6} | {:>6} | {:>6} |",
        "workload (same server work on both sides)",
        "rs ops/s",
        "raw ops/s",
        "rs/raw",
        "rs al",
        "raw al",
        "rs µs",
        "raw µs"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut rows = Vec::new();

    // Sequential one-command operations.
    let d: RedisDict<String, i64> = RedisDict::new(&redis, "percall:dict");
    d.insert("f".into(), 1).unwrap();
    let q = |f: &mut dyn FnMut(&mut redis::Connection)| f(&mut raw_conn.borrow_mut());
    rows.push(compare(
        "RedisDict::get vs HGET",
        n,
        rounds,
        Box::new(|n| {
            measure(n, |n| {
                for _ in 0..n {
                    std::hint::black_box(d.get("f").unwrap());
                }
            })
        }),
        Box::new(|n| {
            measure(n, |n| {
                q(&mut |c| {
                    for _ in 0..n {
                        let v: Option<String> = redis::cmd("HGET")
                            .arg("percall:dict")
                            .arg("\"f\"")
                            .query(c)
                            .unwrap();
                        std::hint::black_box(v.map(|s| s.parse::<i64>().unwrap()));
                    }
                })
            })
        }),
    ));
    rows.push(compare(
        "RedisDict::set vs HSET",
        n,
        rounds,
        Box::new(|n| {
            measure(n, |n| {
                for i in 0..n {
                    d.set("g".into(), i as i64).unwrap();
                }
            })
        }),
        Box::new(|n| {
            measure(n, |n| {
                q(&mut |c| {
                    for i in 0..n {
                        redis::cmd("HSET")
                            .arg("percall:dict")
                            .arg("\"g\"")
                            .arg(i.to_string())
                            .exec(c)
                            .unwrap();
                    }
                })
            })
        }),
    ));
    let s: RedisSet<String> = RedisSet::new(&redis, "percall:set");
    s.insert("m".into()).unwrap();
    rows.push(compare(
        "RedisSet::insert vs SADD",
        n,
        rounds,
        Box::new(|n| {
            measure(n, |n| {
                for _ in 0..n {
                    s.insert("m".into()).unwrap();
                }
            })
        }),
        Box::new(|n| {
            measure(n, |n| {
                q(&mut |c| {
                    for _ in 0..n {
                        let _: i64 = redis::cmd("SADD")
                            .arg("percall:set")
                            .arg("\"m\"")
                            .query(c)
                            .unwrap();
                    }
                })
            })
        }),
    ));
    rows.push(compare(
        "RedisSet::contains vs SISMEMBER",
        n,
        rounds,
        Box::new(|n| {
            measure(n, |n| {
                for _ in 0..n {
                    std::hint::black_box(s.contains("m").unwrap());
                }
            })
        }),
        Box::new(|n| {
            measure(n, |n| {
                q(&mut |c| {
                    for _ in 0..n {
                        let _: bool = redis::cmd("SISMEMBER")
                            .arg("percall:set")
                            .arg("\"m\"")
                            .query(c)
                            .unwrap();
                    }
                })
            })
        }),
    ));
    let counter: RedisCounter<String> = RedisCounter::new(&redis, "percall:counter");
    rows.push(compare(
        "RedisCounter::incr vs HINCRBY",
        n,
        rounds,
        Box::new(|n| {
            measure(n, |n| {
                for _ in 0..n {
                    counter.incr("c", 1).unwrap();
                }
            })
        }),
        Box::new(|n| {
            measure(n, |n| {
                q(&mut |c| {
                    for _ in 0..n {
                        let _: i64 = redis::cmd("HINCRBY")
                            .arg("percall:counter")
                            .arg("\"c\"")
                            .arg(1)
                            .query(c)
                            .unwrap();
                    }
                })
            })
        }),
    ));
    let list: RedisList<i64> = RedisList::new(&redis, "percall:list");
    list.push(1).unwrap();
    rows.push(compare(
        "RedisList::push vs RPUSH",
        n,
        rounds,
        Box::new(|n| {
            measure(n, |n| {
                for i in 0..n {
                    list.push(i as i64).unwrap();
                }
            })
        }),
        Box::new(|n| {
            measure(n, |n| {
                q(&mut |c| {
                    for i in 0..n {
                        let _: i64 = redis::cmd("RPUSH")
                            .arg("percall:list")
                            .arg(i.to_string())
                            .query(c)
                            .unwrap();
                    }
                })
            })
        }),
    ));
    rows.push(compare(
        "RedisList::get(i) vs LINDEX",
        n,
        rounds,
        Box::new(|n| {
            measure(n, |n| {
                for _ in 0..n {
                    std::hint::black_box(list.get(0).unwrap());
                }
            })
        }),
        Box::new(|n| {
            measure(n, |n| {
                q(&mut |c| {
                    for _ in 0..n {
                        let v: Option<String> = redis::cmd("LINDEX")
                            .arg("percall:list")
                            .arg(0)
                            .query(c)
                            .unwrap();
                        std::hint::black_box(v);
                    }
                })
            })
        }),
    ));

    // redis_cache hit: the same lookup script on both sides.
    let cache = RedisCache::new(&redis, "percall:cache");
    let _: u64 = cache.get_or_compute(&(7u64,), || 14u64).unwrap();
    let lookup = redis::Script::new(include_str!("../../pottery/src/scripts/cache_get.lua"));
    rows.push(compare(
        "RedisCache hit vs EVALSHA of the same lookup script",
        n,
        rounds,
        Box::new(|n| {
            measure(n, |n| {
                for _ in 0..n {
                    let v: u64 = cache.get_or_compute(&(7u64,), || 14u64).unwrap();
                    std::hint::black_box(v);
                }
            })
        }),
        Box::new(|n| {
            measure(n, |n| {
                q(&mut |c| {
                    for _ in 0..n {
                        let v: Option<String> = lookup
                            .key("percall:cache")
                            .arg("[7]")
                            .arg(60_000)
                            .invoke(c)
                            .unwrap();
                        std::hint::black_box(v.map(|s| s.parse::<u64>().unwrap()));
                    }
                })
            })
        }),
    ));

    // Redlock on one master: acquire + release.
    let release = redis::Script::new(include_str!(
        "../../pottery/src/scripts/redlock_release.lua"
    ));
    let raw_lock = |n: usize| {
        measure(n, |n| {
            q(&mut |c| {
                for _ in 0..n {
                    let uuid = uuid_like();
                    let ok: Option<String> = redis::cmd("SET")
                        .arg("redlock:percall")
                        .arg(&uuid)
                        .arg("PX")
                        .arg(10_000)
                        .arg("NX")
                        .query(c)
                        .unwrap();
                    assert!(ok.is_some());
                    let _: i64 = release.key("redlock:percall").arg(&uuid).invoke(c).unwrap();
                }
            })
        })
    };
    rows.push(compare(
        "Redlock::new + lock + release vs SET NX PX + release script",
        n,
        rounds,
        Box::new(|n| {
            measure(n, |n| {
                for _ in 0..n {
                    let lock = Redlock::new("percall", [redis.clone()]);
                    lock.lock().unwrap().release().unwrap();
                }
            })
        }),
        Box::new(raw_lock),
    ));
    let shared = Redlock::new("percall", [redis.clone()]);
    rows.push(compare(
        "shared Redlock lock + release vs SET NX PX + release script",
        n,
        rounds,
        Box::new(|n| {
            measure(n, |n| {
                for _ in 0..n {
                    shared.lock().unwrap().release().unwrap();
                }
            })
        }),
        Box::new(raw_lock),
    ));

    // 64 tasks on one handle against one multiplexed connection.
    let ad = Arc::new(d.to_async());
    let mux = rt
        .block_on(client.get_multiplexed_async_connection())
        .unwrap();
    let tasks = 64;
    let per_task = |n: usize| (n / tasks).max(1);
    rows.push(compare(
        "64 tasks: aio::RedisDict::get vs HGET (one multiplexed conn)",
        n,
        rounds,
        Box::new(|n| {
            measure(per_task(n) * tasks, |_| {
                rt.block_on(async {
                    let all: Vec<_> = (0..tasks)
                        .map(|_| {
                            let ad = Arc::clone(&ad);
                            let k = per_task(n);
                            tokio::spawn(async move {
                                for _ in 0..k {
                                    std::hint::black_box(ad.get("f").await.unwrap());
                                }
                            })
                        })
                        .collect();
                    for t in all {
                        t.await.unwrap();
                    }
                })
            })
        }),
        Box::new(|n| {
            measure(per_task(n) * tasks, |_| {
                rt.block_on(async {
                    let all: Vec<_> = (0..tasks)
                        .map(|_| {
                            let mut c = mux.clone();
                            let k = per_task(n);
                            tokio::spawn(async move {
                                for _ in 0..k {
                                    let v: Option<String> = redis::cmd("HGET")
                                        .arg("percall:dict")
                                        .arg("\"f\"")
                                        .query_async(&mut c)
                                        .await
                                        .unwrap();
                                    std::hint::black_box(v.map(|s| s.parse::<i64>().unwrap()));
                                }
                            })
                        })
                        .collect();
                    for t in all {
                        t.await.unwrap();
                    }
                })
            })
        }),
    ));
    rows.push(compare(
        "64 tasks: aio::RedisDict::set vs HSET (one multiplexed conn)",
        n,
        rounds,
        Box::new(|n| {
            measure(per_task(n) * tasks, |_| {
                rt.block_on(async {
                    let all: Vec<_> = (0..tasks)
                        .map(|t| {
                            let ad = Arc::clone(&ad);
                            let k = per_task(n);
                            tokio::spawn(async move {
                                for i in 0..k {
                                    ad.set(format!("t{t}"), i as i64).await.unwrap();
                                }
                            })
                        })
                        .collect();
                    for t in all {
                        t.await.unwrap();
                    }
                })
            })
        }),
        Box::new(|n| {
            measure(per_task(n) * tasks, |_| {
                rt.block_on(async {
                    let all: Vec<_> = (0..tasks)
                        .map(|t| {
                            let mut c = mux.clone();
                            let k = per_task(n);
                            tokio::spawn(async move {
                                for i in 0..k {
                                    redis::cmd("HSET")
                                        .arg("percall:dict")
                                        .arg(format!("\"t{t}\""))
                                        .arg(i.to_string())
                                        .exec_async(&mut c)
                                        .await
                                        .unwrap();
                                }
                            })
                        })
                        .collect();
                    for t in all {
                        t.await.unwrap();
                    }
                })
            })
        }),
    ));

    // Near-cache hits (issue #24): the same dict read through a near-cached handle, one
    // caller and 64 tasks, against raw HGET (one connection; one multiplexed connection).
    let near = Redis::builder(&server.url())
        .near_cache(pottery::NearCache::new())
        .build()
        .unwrap();
    let nd: RedisDict<String, i64> = RedisDict::new(&near, "percall:dict");
    let nad = Arc::new(nd.to_async());
    rows.push(compare(
        "near-cache hit: RedisDict::get vs HGET",
        n * 20,
        rounds,
        Box::new(|n| {
            measure(n, |n| {
                for _ in 0..n {
                    std::hint::black_box(nd.get("f").unwrap());
                }
            })
        }),
        Box::new(|n| {
            measure(n, |n| {
                q(&mut |c| {
                    for _ in 0..n {
                        let v: Option<String> = redis::cmd("HGET")
                            .arg("percall:dict")
                            .arg("\"f\"")
                            .query(c)
                            .unwrap();
                        std::hint::black_box(v.map(|s| s.parse::<i64>().unwrap()));
                    }
                })
            })
        }),
    ));
    rows.push(compare(
        "64 tasks: near-cache hit vs HGET (one multiplexed conn)",
        n * 20,
        rounds,
        Box::new(|n| {
            measure(per_task(n) * tasks, |_| {
                rt.block_on(async {
                    let all: Vec<_> = (0..tasks)
                        .map(|_| {
                            let ad = Arc::clone(&nad);
                            let k = per_task(n);
                            tokio::spawn(async move {
                                for _ in 0..k {
                                    std::hint::black_box(ad.get("f").await.unwrap());
                                }
                            })
                        })
                        .collect();
                    for t in all {
                        t.await.unwrap();
                    }
                })
            })
        }),
        Box::new(|n| {
            measure(per_task(n) * tasks, |_| {
                rt.block_on(async {
                    let all: Vec<_> = (0..tasks)
                        .map(|_| {
                            let mut c = mux.clone();
                            let k = per_task(n);
                            tokio::spawn(async move {
                                for _ in 0..k {
                                    let v: Option<String> = redis::cmd("HGET")
                                        .arg("percall:dict")
                                        .arg("\"f\"")
                                        .query_async(&mut c)
                                        .await
                                        .unwrap();
                                    std::hint::black_box(v.map(|s| s.parse::<i64>().unwrap()));
                                }
                            })
                        })
                        .collect();
                    for t in all {
                        t.await.unwrap();
                    }
                })
            })
        }),
    ));

    // 8 threads of blocking calls.
    let threads = 8;
    rows.push(compare(
        "8 threads: RedisDict::get vs HGET (a connection per thread)",
        n,
        rounds,
        Box::new(|n| {
            measure((n / threads).max(1) * threads, |_| {
                std::thread::scope(|sc| {
                    for _ in 0..threads {
                        sc.spawn(|| {
                            for _ in 0..(n / threads).max(1) {
                                std::hint::black_box(d.get("f").unwrap());
                            }
                        });
                    }
                })
            })
        }),
        Box::new(|n| {
            measure((n / threads).max(1) * threads, |_| {
                std::thread::scope(|sc| {
                    for _ in 0..threads {
                        sc.spawn(|| {
                            let mut c = client.get_connection().unwrap();
                            for _ in 0..(n / threads).max(1) {
                                let v: Option<String> = redis::cmd("HGET")
                                    .arg("percall:dict")
                                    .arg("\"f\"")
                                    .query(&mut c)
                                    .unwrap();
                                std::hint::black_box(v);
                            }
                        });
                    }
                })
            })
        }),
    ));

    // One aio::Redlock shared by 64 tasks: handoffs against one task's rate.
    let alock = Redlock::new("percall-shared", [redis.clone()]).to_async();
    let cycles = |tasks: usize, n: usize| {
        let k = (n / tasks).max(1);
        measure(k * tasks, |_| {
            rt.block_on(async {
                let all: Vec<_> = (0..tasks)
                    .map(|_| {
                        let l = alock.clone();
                        tokio::spawn(async move {
                            for _ in 0..k {
                                l.lock().await.unwrap().release().await.unwrap();
                            }
                        })
                    })
                    .collect();
                for t in all {
                    t.await.unwrap();
                }
            })
        })
    };
    rows.push(compare(
        "aio::Redlock shared by 64 tasks vs one task (handoffs/s)",
        n / 4,
        rounds,
        Box::new(|n| cycles(64, n)),
        Box::new(|n| cycles(1, n)),
    ));

    let json: Vec<String> = rows
        .iter()
        .filter(|r| !r.rs.is_nan())
        .map(|r| {
            format!(
                "{{\"name\": {:?}, \"rs\": {:.0}, \"raw\": {:.0}, \"ratio\": {:.3}, \"rs_allocs\": {:.1}, \"raw_allocs\": {:.1}, \"rs_cpu_us\": {:.3}, \"raw_cpu_us\": {:.3}}}",
                r.name,
                r.rs,
                r.raw,
                r.rs / r.raw,
                r.rs_allocs,
                r.raw_allocs,
                r.rs_cpu,
                r.raw_cpu
            )
        })
        .collect();
    let _ = std::fs::create_dir_all(concat!(env!("CARGO_MANIFEST_DIR"), "/../target"));
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/percall.json");
    std::fs::write(path, format!("[\n  {}\n]\n", json.join(",\n  "))).expect("write percall.json");
    drop(server);
    let _ = Duration::ZERO;
}

/// A fresh lock value, as unique as the uuid4 pottery sends (the raw side's holder id).
fn uuid_like() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{:032x}",
        (u128::from(std::process::id()) << 64) | u128::from(N.fetch_add(1, Ordering::Relaxed))
    )
}
