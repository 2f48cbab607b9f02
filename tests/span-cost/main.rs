//! `make bench` (third part): what pottery's spans cost per call, against the same build
//! without them (pottery's `tracing` feature off), in the same run on one throwaway server.
//!
//! `tools/span-cost.sh` builds this binary twice (without and with the `spans` feature) and
//! runs the build without spans, which starts a server (pinned to CPU 0) and then, round after
//! round, runs each configuration as a child process on CPU 1:
//!
//! * `off`: the build without spans;
//! * `no subscriber`: the build with spans, no subscriber installed (a span is a callsite check);
//! * `drop-all subscriber`: the build with spans under a `tracing_subscriber` registry with no
//!   layer, so every span is enabled, built, entered and closed, and nothing is written.
//!
//! Rows: sequential blocking `RedisDict::get` and `RedisDict::set`, and 64 tasks of
//! `aio::RedisDict::get` on one handle. Medians of the interleaved rounds; `QUICK=1` is short,
//! `QUICK=smoke` runs each row once.

use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use pottery::RedisDict;

const ROWS: [&str; 3] = ["dict get", "dict set", "64 tasks: aio dict get"];
const CONFIGS: [&str; 3] = ["off", "no subscriber", "drop-all subscriber"];

fn sizes() -> (usize, usize) {
    match std::env::var("QUICK").as_deref() {
        Ok("smoke") => (50, 1),
        Ok(v) if !v.is_empty() && v != "0" => (2_000, 3),
        _ => (20_000, 5),
    }
}

/// A child: `n` calls of each row against `url`, one `ops/s` figure a line.
fn worker(url: &str, n: usize) {
    #[cfg(feature = "spans")]
    if std::env::var("SPAN_COST_SUBSCRIBER").as_deref() == Ok("registry") {
        let _ =
            tracing_subscriber::util::SubscriberInitExt::try_init(tracing_subscriber::registry());
    }
    let redis = pottery::Redis::from_url(url).expect("a handle on the bench server");
    let d: RedisDict<String, i64> = RedisDict::new(&redis, "span-cost:dict");
    d.set("f".into(), 1).expect("HSET");
    let time = |f: &mut dyn FnMut()| {
        let start = Instant::now();
        f();
        n as f64 / start.elapsed().as_secs_f64()
    };
    let mut get = || {
        for _ in 0..n {
            std::hint::black_box(d.get("f").expect("HGET"));
        }
    };
    get(); // warm-up: the connection
    println!("{}", time(&mut get));
    println!(
        "{}",
        time(&mut || {
            for i in 0..n {
                d.set("g".into(), i as i64).expect("HSET");
            }
        })
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    let ad = Arc::new(d.to_async());
    let tasks = 64;
    let per_task = (n / tasks).max(1);
    let run = || {
        rt.block_on(async {
            let all: Vec<_> = (0..tasks)
                .map(|_| {
                    let ad = Arc::clone(&ad);
                    tokio::spawn(async move {
                        for _ in 0..per_task {
                            std::hint::black_box(ad.get("f").await.expect("HGET"));
                        }
                    })
                })
                .collect();
            for t in all {
                t.await.expect("a task");
            }
        })
    };
    run(); // warm-up: this runtime's connection
    let start = Instant::now();
    run();
    println!(
        "{}",
        (per_task * tasks) as f64 / start.elapsed().as_secs_f64()
    );
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let (n, rounds) = sizes();
    if let Ok(url) = std::env::var("SPAN_COST_URL") {
        return worker(&url, n);
    }
    if cfg!(feature = "spans") {
        eprintln!("run the build without the `spans` feature (tools/span-cost.sh does)");
        std::process::exit(2);
    }
    let spans = std::env::args()
        .nth(1)
        .expect("usage: span-cost <the build with the spans feature>");
    pottery::testing::pin_to_cpu(0);
    let server = pottery::testing::RedisServer::start().expect("start redis-server");
    pottery::testing::pin_to_cpu(1);
    let me = std::env::current_exe().expect("this binary's path");
    // rates[config][row]: one figure per round.
    let mut rates = vec![vec![Vec::new(); ROWS.len()]; CONFIGS.len()];
    for _ in 0..rounds {
        for (c, config) in CONFIGS.iter().enumerate() {
            let mut cmd = Command::new(if c == 0 {
                &me
            } else {
                std::path::Path::new(&spans)
            });
            cmd.env("SPAN_COST_URL", server.url());
            if *config == "drop-all subscriber" {
                cmd.env("SPAN_COST_SUBSCRIBER", "registry");
            }
            let out = cmd.output().expect("run a worker");
            assert!(
                out.status.success(),
                "{config}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let lines = String::from_utf8_lossy(&out.stdout).into_owned();
            for (r, line) in lines.lines().enumerate() {
                rates[c][r].push(line.trim().parse::<f64>().expect("a rate"));
            }
        }
    }
    println!(
        "| {:<24} | {:>10} | {:>14} | {:>6} | {:>20} | {:>6} |",
        "row (ops/s)", "off", "no subscriber", "/ off", "drop-all subscriber", "/ off"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (r, row) in ROWS.iter().enumerate() {
        let m: Vec<f64> = (0..CONFIGS.len())
            .map(|c| median(rates[c][r].clone()))
            .collect();
        println!(
            "| {:<24} | {:>10.0} | {:>14.0} | {:>5.2}x | {:>20.0} | {:>5.2}x |",
            row,
            m[0],
            m[1],
            m[1] / m[0],
            m[2],
            m[2] / m[0]
        );
    }
    println!(
        "{n} calls a row, {rounds} interleaved rounds, medians; server on CPU 0, clients on CPU 1"
    );
}
