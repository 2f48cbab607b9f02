//! `make bench`: pottery-rs against raw redis-rs (and Python pottery 3.0.1) on the same
//! throwaway server, in the same run. `QUICK=1` runs a short version (part of `make test`).
//!
//! Each workload is one client thread issuing operations back to back; rounds of the
//! contenders are interleaved and the median round is reported, so drift on the machine
//! affects all of them alike.

use std::hint::black_box;
use std::process::Command;
use std::time::Instant;

use pottery::testing::RedisServer;
use pottery::{Redis, RedisCounter, RedisDeque, RedisDict, RedisList, RedisSet};
use redis::Commands;

struct Row {
    name: &'static str,
    ours: f64,
    raw: Option<f64>,
    python: Option<f64>,
}

/// Pins the calling thread (and the threads and processes it starts afterwards) to one CPU.
///
/// The servers are started pinned to CPU 0 and the clients then run on CPU 1: on a 2-core
/// machine an unpinned run lets the scheduler put client and server on one core (a round trip
/// becomes a context switch, ~8 µs) or on two (a cross-core wake-up, ~55 µs) as it pleases,
/// which moves single-command rates by 2–7× between runs. Pinned, every contender pays the
/// same cross-core round trip, as it would over a network.
fn pin(cpu: usize) {
    // Not available_parallelism(): it follows the affinity mask, so it says 1 once pinned.
    // SAFETY: sysconf has no preconditions.
    if unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) } < 2 {
        return;
    }
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes within it; pid 0 is the
    // calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
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

/// Runs the contenders in interleaved rounds; returns the median rate of each.
fn compare(n: usize, rounds: usize, contenders: &mut [&mut dyn FnMut(usize)]) -> Vec<f64> {
    let mut rates = vec![Vec::new(); contenders.len()];
    for f in contenders.iter_mut() {
        f(n / 10 + 1); // warm-up: connections, script cache
    }
    for _ in 0..rounds {
        for (i, f) in contenders.iter_mut().enumerate() {
            rates[i].push(rate(n, *f));
        }
    }
    rates.into_iter().map(median).collect()
}

const PY_BENCH: &str = r#"
import json, os, sys, time
from redis import Redis
from pottery import RedisDict, RedisList, RedisDeque, RedisCounter, RedisSet
n = int(sys.argv[1])
redis = Redis.from_url(os.environ['REDIS_URL'])

def rate(f):
    t = time.perf_counter()
    f()
    return n / (time.perf_counter() - t)

out = {}
d = RedisDict(redis=redis, key='bench:py:dict'); d.clear()
def dict_insert():
    for i in range(n): d['k%d' % (i % 1000)] = i
def dict_get():
    for i in range(n): d['k%d' % (i % 1000)]
out['dict insert'] = rate(dict_insert)
out['dict get'] = rate(dict_get)
d.clear()
l = RedisList(redis=redis, key='bench:py:list'); l.clear(); l.extend(range(1000))
def list_get():
    for i in range(n): l[i % 1000]
out['list get(i)'] = rate(list_get)
l.clear()
q = RedisDeque(redis=redis, key='bench:py:deque', maxlen=100); q.clear()
def deque_push():
    for i in range(n): q.append(i)
out['deque push_back (maxlen)'] = rate(deque_push)
q.clear()
c = RedisCounter(redis=redis, key='bench:py:counter'); c.clear()
def counter_incr():
    for i in range(n): c['k%d' % (i % 100)] += 1
out['counter incr'] = rate(counter_incr)
c.clear()
st = RedisSet(redis=redis, key='bench:py:set'); st.clear()
def set_add():
    for i in range(n): st.add(i)
out['set add'] = rate(set_add)
st.clear()
from pottery import redis_cache, BloomFilter, HyperLogLog
@redis_cache(redis=redis, key='bench:py:cache')
def cached(x):
    return x * 2
for i in range(100): cached(i)
def cache_hit():
    for i in range(n): cached(i % 100)
out['redis_cache hit'] = rate(cache_hit)
cached.cache_clear()
bf = BloomFilter(num_elements=1000000, false_positives=0.001, redis=redis, key='bench:py:bloom'); bf.clear()
def bloom_add():
    for i in range(n): bf.add('v%d' % (i % 1000))
def bloom_contains():
    for i in range(n): ('v%d' % (i % 1000)) in bf
out['bloom add'] = rate(bloom_add)
out['bloom contains'] = rate(bloom_contains)
bf.clear()
hll = HyperLogLog(redis=redis, key='bench:py:hll')
values = list(range(100000))
hn = max(2, n // 1000)
t = time.perf_counter()
for _ in range(hn): hll.update(values)
out['HLL update of 100,000'] = hn / (time.perf_counter() - t)
hll.clear()
print(json.dumps(out))
"#;

/// Python pottery's rate for each workload, if the venv is there.
fn python_rates(url: &str, n: usize) -> std::collections::HashMap<String, f64> {
    let Some(python) = std::env::var("POTTERY_PYTHON").ok().or_else(|| {
        let p = concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python");
        std::path::Path::new(p).exists().then(|| p.to_owned())
    }) else {
        return Default::default();
    };
    let out = match Command::new(python)
        .arg("-c")
        .arg(PY_BENCH)
        .arg(n.to_string())
        .env("REDIS_URL", url)
        .output()
    {
        Ok(out) if out.status.success() => out,
        Ok(out) => {
            eprintln!(
                "python bench failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return Default::default();
        }
        Err(e) => {
            eprintln!("python bench failed: {e}");
            return Default::default();
        }
    };
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

const PY_PRIMITIVES: &str = r#"
import json, sys, time
from redis import Redis
from pottery import Redlock, NextID
n = int(sys.argv[1])
urls = json.loads(sys.argv[2])
out = {}
for label, count in (('1 master', 1), ('5 masters', 5)):
    masters = frozenset(Redis.from_url(u) for u in urls[:count])
    lock = Redlock(key='bench-py', masters=masters)
    t = time.perf_counter()
    for _ in range(n):
        assert lock.acquire(blocking=False)
        lock.release()
    out['redlock acquire+release, ' + label] = n / (time.perf_counter() - t)
    ids = NextID(key='bench-py', masters=masters)
    t = time.perf_counter()
    for _ in range(n):
        next(ids)
    out['next_id, ' + label] = n / (time.perf_counter() - t)
print(json.dumps(out))
"#;

/// Python pottery's Redlock and NextID rates on the same masters.
fn python_primitive_rates(urls: &[String], n: usize) -> std::collections::HashMap<String, f64> {
    let Some(python) = std::env::var("POTTERY_PYTHON").ok().or_else(|| {
        let p = concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python");
        std::path::Path::new(p).exists().then(|| p.to_owned())
    }) else {
        return Default::default();
    };
    let urls = serde_json::to_string(urls).unwrap_or_default();
    match Command::new(python)
        .arg("-c")
        .arg(PY_PRIMITIVES)
        .arg(n.to_string())
        .arg(urls)
        .output()
    {
        Ok(out) if out.status.success() => serde_json::from_slice(&out.stdout).unwrap_or_default(),
        Ok(out) => {
            eprintln!(
                "python primitives bench failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Default::default()
        }
        Err(e) => {
            eprintln!("python primitives bench failed: {e}");
            Default::default()
        }
    }
}

fn main() {
    let quick = std::env::var("QUICK").is_ok_and(|v| v != "0" && !v.is_empty());
    let (n, rounds) = if quick { (2_000, 3) } else { (20_000, 5) };
    pin(0);
    let server = RedisServer::start().expect("start redis-server");
    let masters = pottery::testing::Masters::start(5).expect("start five masters");
    pin(1);
    let url = server.url();
    let redis: Redis = server.redis();
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut raw = client.get_connection().unwrap();
    let mut rows = Vec::new();

    let dict: RedisDict<String, i64> = RedisDict::new(&redis, "bench:rs");
    let raw_key = "bench:raw";

    // dict insert: pottery's insert (returns the old value, atomically) vs a bare HSET.
    let r = compare(
        n,
        rounds,
        &mut [
            &mut |n| {
                for i in 0..n {
                    black_box(dict.insert(format!("k{}", i % 1000), i as i64).unwrap());
                }
            },
            &mut |n| {
                for i in 0..n {
                    let _: () = raw
                        .hset(raw_key, format!("\"k{}\"", i % 1000), i as i64)
                        .unwrap();
                }
            },
        ],
    );
    rows.push(Row {
        name: "dict insert",
        ours: r[0],
        raw: Some(r[1]),
        python: None,
    });

    let r = compare(
        n,
        rounds,
        &mut [
            &mut |n| {
                for i in 0..n {
                    black_box(dict.get(&format!("k{}", i % 1000)).unwrap());
                }
            },
            &mut |n| {
                for i in 0..n {
                    let v: Option<Vec<u8>> =
                        raw.hget(raw_key, format!("\"k{}\"", i % 1000)).unwrap();
                    black_box(v);
                }
            },
        ],
    );
    rows.push(Row {
        name: "dict get",
        ours: r[0],
        raw: Some(r[1]),
        python: None,
    });

    // list get(i) on 1,000 elements: LINDEX.
    let list: RedisList<i64> = RedisList::new(&redis, "bench:rs:list");
    list.clear().unwrap();
    list.extend(0..1000).unwrap();
    let r = compare(
        n,
        rounds,
        &mut [
            &mut |n| {
                for i in 0..n {
                    black_box(list.get((i % 1000) as isize).unwrap());
                }
            },
            &mut |n| {
                for i in 0..n {
                    let v: Option<Vec<u8>> = raw.lindex(list.key(), (i % 1000) as isize).unwrap();
                    black_box(v);
                }
            },
        ],
    );
    rows.push(Row {
        name: "list get(i)",
        ours: r[0],
        raw: Some(r[1]),
        python: None,
    });
    list.clear().unwrap();

    // deque push_back with maxlen 100: one Lua call vs a raw RPUSH + LTRIM pipeline.
    let deque: RedisDeque<i64> = RedisDeque::with_maxlen(&redis, "bench:rs:deque", 100).unwrap();
    let r = compare(
        n,
        rounds,
        &mut [
            &mut |n| {
                for i in 0..n {
                    black_box(deque.push_back(i as i64).unwrap());
                }
            },
            &mut |n| {
                for i in 0..n {
                    let _: () = redis::pipe()
                        .rpush("bench:raw:deque", i)
                        .ignore()
                        .ltrim("bench:raw:deque", -100, -1)
                        .ignore()
                        .query(&mut raw)
                        .unwrap();
                }
            },
        ],
    );
    rows.push(Row {
        name: "deque push_back (maxlen)",
        ours: r[0],
        raw: Some(r[1]),
        python: None,
    });
    deque.clear().unwrap();

    // counter incr: HINCRBY both ways.
    let counter: RedisCounter<String> = RedisCounter::new(&redis, "bench:rs:counter");
    let r = compare(
        n,
        rounds,
        &mut [
            &mut |n| {
                for i in 0..n {
                    black_box(counter.incr(&format!("k{}", i % 100), 1).unwrap());
                }
            },
            &mut |n| {
                for i in 0..n {
                    let v: i64 = raw
                        .hincr("bench:raw:counter", format!("\"k{}\"", i % 100), 1)
                        .unwrap();
                    black_box(v);
                }
            },
        ],
    );
    rows.push(Row {
        name: "counter incr",
        ours: r[0],
        raw: Some(r[1]),
        python: None,
    });
    counter.clear().unwrap();

    // set add: SADD.
    let set: RedisSet<i64> = RedisSet::new(&redis, "bench:rs:set");
    let r = compare(
        n,
        rounds,
        &mut [
            &mut |n| {
                for i in 0..n {
                    black_box(set.insert(i as i64).unwrap());
                }
            },
            &mut |n| {
                for i in 0..n {
                    let v: i64 = raw.sadd("bench:raw:set", i).unwrap();
                    black_box(v);
                }
            },
        ],
    );
    rows.push(Row {
        name: "set add",
        ours: r[0],
        raw: Some(r[1]),
        python: None,
    });
    set.clear().unwrap();

    // redis_cache hit: one script (HGET + sliding PEXPIRE) vs a raw HGET of the same field.
    let cache = pottery::RedisCache::new(&redis, "bench:rs:cache");
    cache.clear().unwrap();
    for i in 0..100u64 {
        cache.get_or_compute(&(i,), || i * 2).unwrap();
    }
    let fields: Vec<String> = (0..100).map(|i| format!("[{i}]")).collect();
    let r = compare(
        n,
        rounds,
        &mut [
            &mut |n| {
                for i in 0..n {
                    let arg = ((i % 100) as u64,);
                    black_box(
                        cache
                            .get_or_compute(&arg, || -> u64 { unreachable!("a hit") })
                            .unwrap(),
                    );
                }
            },
            &mut |n| {
                for i in 0..n {
                    let v: Option<Vec<u8>> = raw.hget("bench:rs:cache", &fields[i % 100]).unwrap();
                    black_box(v);
                }
            },
        ],
    );
    rows.push(Row {
        name: "redis_cache hit",
        ours: r[0],
        raw: Some(r[1]),
        python: None,
    });
    cache.clear().unwrap();

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
    let r = compare(
        n,
        rounds,
        &mut [
            &mut |n| {
                for i in 0..n {
                    black_box(bloom.add(names[i % 1000].as_str()).unwrap());
                }
            },
            &mut |n| {
                for i in 0..n {
                    raw_bitfield(&mut raw, "SET", i);
                }
            },
        ],
    );
    rows.push(Row {
        name: "bloom add",
        ours: r[0],
        raw: Some(r[1]),
        python: None,
    });
    let r = compare(
        n,
        rounds,
        &mut [
            &mut |n| {
                for i in 0..n {
                    black_box(bloom.contains(names[i % 1000].as_str()).unwrap());
                }
            },
            &mut |n| {
                for i in 0..n {
                    raw_bitfield(&mut raw, "GET", i);
                }
            },
        ],
    );
    rows.push(Row {
        name: "bloom contains",
        ours: r[0],
        raw: Some(r[1]),
        python: None,
    });
    bloom.clear().unwrap();

    // HyperLogLog update of 100,000 values: one PFADD each way (raw formats the integers
    // itself, as redis-rs does for any integer argument).
    let hll: pottery::HyperLogLog<u64> = pottery::HyperLogLog::new(&redis, "bench:rs:hll");
    let numbers: Vec<u64> = (0..100_000).collect();
    let hn = if quick { 6 } else { 30 };
    let r = compare(
        hn,
        rounds,
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
    rows.push(Row {
        name: "HLL update of 100,000",
        ours: r[0],
        raw: Some(r[1]),
        python: None,
    });
    hll.clear().unwrap();
    let _: () = raw.del(&["bench:raw:bloom", "bench:raw:hll"]).unwrap();

    let _: () = raw
        .del(&["bench:raw:deque", "bench:raw:counter", "bench:raw:set"])
        .unwrap();

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
    rows.push(Row {
        name: "async dict get",
        ours: r[0],
        raw: Some(r[1]),
        python: None,
    });

    dict.clear().unwrap();
    let _: () = raw.del(raw_key).unwrap();

    // Distributed primitives: one and five masters.
    let urls: Vec<String> = masters.servers.iter().map(|s| s.url()).collect();
    let pn = if quick { 300 } else { 3000 };
    for (label, count) in [("1 master", 1usize), ("5 masters", 5)] {
        let handles: Vec<Redis> = masters.handles().into_iter().take(count).collect();
        let lock = pottery::Redlock::new("bench", handles.clone());
        // Raw floor with one master: the same two round trips issued by hand (SET NX PX,
        // then a compare-and-delete script) on a plain sync connection.
        let release = redis::Script::new(
            "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
        );
        let mut first = masters.servers[0].redis().connection().unwrap();
        let r = compare(
            pn,
            rounds,
            &mut [
                &mut |n| {
                    for _ in 0..n {
                        assert!(lock.try_acquire().unwrap());
                        lock.release().unwrap();
                    }
                },
                &mut |n| {
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
                },
            ],
        );
        let raw = (count == 1).then_some(r[1]);
        rows.push(Row {
            name: if count == 1 {
                "redlock acquire+release, 1 master"
            } else {
                "redlock acquire+release, 5 masters"
            },
            ours: r[0],
            raw,
            python: None,
        });
        let ids = pottery::NextId::new("bench", handles.clone());
        let r = compare(
            pn,
            rounds,
            &mut [&mut |n| {
                for _ in 0..n {
                    black_box(ids.next_id().unwrap());
                }
            }],
        );
        rows.push(Row {
            name: if count == 1 {
                "next_id, 1 master"
            } else {
                "next_id, 5 masters"
            },
            ours: r[0],
            raw: None,
            python: None,
        });
        let _ = label;
    }
    let ids = pottery::NextId::new("bench-threads", masters.handles());
    let r = compare(
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
    rows.push(Row {
        name: "next_id, 8 threads, 5 masters",
        ours: r[0],
        raw: None,
        python: None,
    });
    let py_prims = python_primitive_rates(&urls, pn / 3);

    let py = python_rates(&url, n);
    for row in &mut rows {
        row.python = py.get(row.name).or_else(|| py_prims.get(row.name)).copied();
    }

    println!(
        "\npottery-rs benchmark ({}; {n} ops x {rounds} rounds, median; redis-server on loopback)",
        if quick { "QUICK" } else { "full" }
    );
    println!(
        "{:<36} {:>12} {:>12} {:>8} {:>12} {:>8}",
        "workload", "pottery-rs/s", "raw/s", "rs/raw", "pottery-py/s", "rs/py"
    );
    for row in &rows {
        let py = row.python.map_or("-".to_owned(), |p| format!("{p:.0}"));
        let vs_py = row
            .python
            .map_or("-".to_owned(), |p| format!("{:.2}x", row.ours / p));
        let raw = row.raw.map_or("-".to_owned(), |r| format!("{r:.0}"));
        let vs_raw = row
            .raw
            .map_or("-".to_owned(), |r| format!("{:.2}x", row.ours / r));
        println!(
            "{:<36} {:>12.0} {:>12} {:>8} {:>12} {:>8}",
            row.name, row.ours, raw, vs_raw, py, vs_py
        );
    }
}
