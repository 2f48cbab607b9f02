//! Starting server processes: binaries, ports, spawning, waiting for a condition.

use crate::sync::lock;
use std::io;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a server may take to come up.
pub(super) const START_TIMEOUT: Duration = Duration::from_secs(20);

pub(super) fn server_binary() -> String {
    std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_owned())
}

pub(super) fn cli_binary() -> String {
    std::env::var("REDIS_CLI").unwrap_or_else(|_| "redis-cli".to_owned())
}

pub(super) type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

/// Children are spawned by one thread that lives as long as the process, so that
/// `PR_SET_PDEATHSIG` (which fires when the spawning *thread* ends) fires only when the whole
/// process goes away.
pub(super) fn spawn(cmd: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let tx = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("pottery-testing-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    // SAFETY: prctl is async-signal-safe; the closure allocates nothing.
                    unsafe {
                        cmd.pre_exec(|| {
                            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                            Ok(())
                        });
                    }
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("cannot start the pottery-testing-spawner thread");
        Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    lock(tx)
        .send((cmd, reply_tx))
        .map_err(|_| io::Error::other("spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| io::Error::other("spawner thread is gone"))?
}

pub(super) fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Polls `check` every 20 ms until it is `Ok` or `deadline` passes (then a `TimedOut` error
/// that says what was awaited and the last reason it was not yet so).
#[cfg_attr(not(all(feature = "cluster", feature = "sentinel")), allow(dead_code))]
pub(super) fn poll_until<T>(
    deadline: Instant,
    what: &str,
    mut check: impl FnMut() -> Result<T, String>,
) -> io::Result<T> {
    loop {
        match check() {
            Ok(v) => return Ok(v),
            Err(why) if Instant::now() > deadline => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("timed out waiting for {what}: {why}"),
                ));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// The value of `field:value` in an `INFO`-style reply.
#[cfg_attr(not(all(feature = "cluster", feature = "sentinel")), allow(dead_code))]
pub(super) fn info_field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines().find_map(|line| {
        line.trim()
            .strip_prefix(field)
            .and_then(|rest| rest.strip_prefix(':'))
    })
}

/// `?protocol=resp3` when `$POTTERY_TEST_PROTOCOL` is `resp3`: then every test handle speaks
/// RESP3 (`make test` runs the integration suite that way once), else nothing (RESP2).
pub(super) fn protocol_query() -> &'static str {
    static QUERY: OnceLock<&'static str> = OnceLock::new();
    QUERY.get_or_init(|| match std::env::var("POTTERY_TEST_PROTOCOL").as_deref() {
        Ok("resp3") => "?protocol=resp3",
        _ => "",
    })
}
