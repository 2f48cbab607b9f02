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
use pottery::{Redis, RedisDict};
use redis::Commands;

struct Row {
    name: &'static str,
    ours: f64,
    raw: f64,
    python: Option<f64>,
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
import os, sys, time
from redis import Redis
from pottery import RedisDict
n = int(sys.argv[1])
redis = Redis.from_url(os.environ['REDIS_URL'])
d = RedisDict(redis=redis, key='bench:py')
d.clear()
t = time.perf_counter()
for i in range(n):
    d['k%d' % (i % 1000)] = i
insert = n / (time.perf_counter() - t)
t = time.perf_counter()
for i in range(n):
    d['k%d' % (i % 1000)]
get = n / (time.perf_counter() - t)
d.clear()
print(insert, get)
"#;

/// Python pottery's dict insert and get rates, if the venv is there.
fn python_rates(url: &str, n: usize) -> Option<(f64, f64)> {
    let python = std::env::var("POTTERY_PYTHON").ok().or_else(|| {
        let p = concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python");
        std::path::Path::new(p).exists().then(|| p.to_owned())
    })?;
    let out = Command::new(python)
        .arg("-c")
        .arg(PY_BENCH)
        .arg(n.to_string())
        .env("REDIS_URL", url)
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "python bench failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.split_whitespace().filter_map(|x| x.parse().ok());
    Some((it.next()?, it.next()?))
}

fn main() {
    let quick = std::env::var("QUICK").is_ok_and(|v| v != "0" && !v.is_empty());
    let (n, rounds) = if quick { (2_000, 3) } else { (20_000, 5) };
    let server = RedisServer::start().expect("start redis-server");
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
    let py = python_rates(&url, n);
    rows.push(Row {
        name: "dict insert",
        ours: r[0],
        raw: r[1],
        python: py.map(|p| p.0),
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
        raw: r[1],
        python: py.map(|p| p.1),
    });

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
        raw: r[1],
        python: None,
    });

    dict.clear().unwrap();
    let _: () = raw.del(raw_key).unwrap();

    println!(
        "\npottery-rs benchmark ({}; {n} ops x {rounds} rounds, median; redis-server on loopback)",
        if quick { "QUICK" } else { "full" }
    );
    println!(
        "{:<16} {:>12} {:>12} {:>8} {:>12} {:>8}",
        "workload", "pottery-rs/s", "raw/s", "rs/raw", "pottery-py/s", "rs/py"
    );
    for row in &rows {
        let py = row.python.map_or("-".to_owned(), |p| format!("{p:.0}"));
        let vs_py = row
            .python
            .map_or("-".to_owned(), |p| format!("{:.2}x", row.ours / p));
        println!(
            "{:<16} {:>12.0} {:>12.0} {:>7.2}x {:>12} {:>8}",
            row.name,
            row.ours,
            row.raw,
            row.ours / row.raw,
            py,
            vs_py
        );
    }
}
