//! Helpers shared by pottery's integration tests: the servers they run against and a bridge
//! to Python pottery 3.0.1 for interop checks.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use pottery::Redis;
use pottery::testing::{shared_cluster, shared_server};

/// The handles a structure is tested on: one server, and a 3-master cluster. With
/// `POTTERY_NEAR_CACHE=1` both have a near cache (the whole suite of a structure, or the
/// model suite, must give the same results with it).
pub fn targets() -> Vec<(&'static str, Redis)> {
    if std::env::var_os("POTTERY_NEAR_CACHE").is_some_and(|v| v != "0") {
        let single = Redis::builder(&shared_server().url())
            .near_cache(pottery::NearCache::new())
            .build()
            .expect("a near-cached handle");
        let cluster = Redis::cluster_builder(shared_cluster().urls())
            .near_cache(pottery::NearCache::new())
            .build()
            .expect("a near-cached cluster handle");
        return vec![("single", single), ("cluster", cluster)];
    }
    vec![
        ("single", shared_server().redis()),
        ("cluster", shared_cluster().redis()),
    ]
}

/// A Tokio runtime of two worker threads, as a service's on this 2-core machine.
pub fn two_workers() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A key no other test uses.
pub fn unique_key(name: &str) -> String {
    format!("test:{name}:{}", rand::random::<u64>())
}

/// The Python interpreter of the venv that `make test` prepares, with pottery 3.0.1 in it.
///
/// `$POTTERY_PYTHON` if set, else `.venv/bin/python` at the workspace root. Panics with a clear
/// message when neither exists: the interop tests must run, not silently pass.
pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("POTTERY_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(
        venv.exists(),
        "no Python venv with pottery 3.0.1 at {}: run `make test` (or `make venv`) first",
        venv.display()
    );
    venv
}

/// Runs a Python snippet with `REDIS_URL` set and the given stdin; returns its stdout.
/// Panics (failing the test) if Python fails.
pub fn run_python(code: &str, redis_url: &str, stdin: &str) -> String {
    use std::io::Write;
    // redis-py reads `protocol=3`, not redis-rs's `protocol=resp3` (the RESP3 test run): Python
    // speaks its default protocol either way.
    let redis_url = redis_url.split('?').next().unwrap_or(redis_url);
    // URLs handed over in the input too (a list of masters, say).
    let stdin = &stdin.replace("?protocol=resp3", "");
    let mut child = Command::new(python())
        .arg("-c")
        .arg(code)
        .env("REDIS_URL", redis_url)
        .env("PYTHONHASHSEED", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run the venv's python");
    // Feed stdin from another thread so neither side blocks on a full pipe.
    let mut pipe = child.stdin.take().expect("stdin is piped");
    let input = stdin.to_owned();
    let writer = std::thread::spawn(move || pipe.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect("python did not finish");
    writer
        .join()
        .expect("writer thread")
        .expect("write to python");
    assert!(
        out.status.success(),
        "python failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("python printed UTF-8")
}

/// Polls `check` until it returns true, for at most `secs` seconds.
pub fn poll(secs: u64, mut check: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    check()
}

/// A plain redis-rs connection to each of `urls` (a cluster's nodes, say): what a test asks a
/// node directly, with no redirects followed.
pub fn node_connections(urls: &[String]) -> Vec<redis::Connection> {
    urls.iter()
        .map(|u| {
            redis::Client::open(u.as_str())
                .and_then(|c| c.get_connection())
                .unwrap_or_else(|e| panic!("cannot connect to {u}: {e}"))
        })
        .collect()
}

/// The calls an `INFO commandstats` reply counts for the commands whose line `counted` accepts
/// (lines such as `cmdstat_hset:calls=3,usec=…`).
pub fn command_calls(info: &str, counted: impl Fn(&str) -> bool) -> u64 {
    info.lines()
        .filter(|l| counted(l))
        .filter_map(|l| {
            l.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

pub mod failover;

/// Re-runs the current test binary as a worker process: only the test `name` (which acts as
/// a worker when it finds its variables in `env`), stdout piped, stdin piped.
pub fn spawn_worker(name: &str, env: &[(&str, String)]) -> std::process::Child {
    let mut cmd = Command::new(std::env::current_exe().expect("the test binary"));
    cmd.args(["--exact", name, "--nocapture", "--test-threads=1"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot re-run the test binary")
}

/// Milliseconds since the Unix epoch (a wall-clock instant two processes can agree on).
pub fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
