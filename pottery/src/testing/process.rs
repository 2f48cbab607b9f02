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

/// Pins the calling thread, and the threads and processes it starts afterwards, to one CPU
/// (nothing on a machine with a single CPU, or where the kernel refuses): what a benchmark does
/// to start its servers on one core and run its clients on another.
///
/// On a 2-core machine an unpinned run lets the scheduler put client and server on one core (a
/// round trip becomes a context switch) or on two (a cross-core wake-up) as it pleases, which
/// moves single-command rates by several times between runs. Pinned, every contender pays the
/// same cross-core round trip, as it would over a network. `make bench` pins this way.
///
/// ```
/// use pottery::testing::{RedisServer, pin_to_cpu};
/// pin_to_cpu(0);
/// let server = RedisServer::start()?; // the server process stays on CPU 0
/// pin_to_cpu(1); // the client on CPU 1
/// server.redis().ping()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn pin_to_cpu(cpu: usize) {
    // Not available_parallelism(): it follows the affinity mask, so it says 1 once pinned.
    // SAFETY: sysconf has no preconditions.
    if unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) } < 2 || cpu >= libc::CPU_SETSIZE as usize
    {
        return;
    }
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes within it (cpu is below
    // CPU_SETSIZE); pid 0 is the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}
