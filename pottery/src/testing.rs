//! Throwaway `redis-server` processes for tests — pottery's own and yours (feature `testing`).
//!
//! Every server listens on a free loopback port, keeps its files in a temporary directory,
//! persists nothing, and is killed when its value is dropped — and, should the test process
//! die first, by the kernel (`PR_SET_PDEATHSIG`), so no test leaves a server behind.
//!
//! Kinds: a plain server ([`RedisServer::start`]), one with a password or an ACL user, one with
//! TLS and certificates made on the spot ([`ServerBuilder`]), N independent masters
//! ([`Masters`]), a Redis Cluster with or without replicas ([`RedisCluster`]) and a
//! Sentinel-managed master with a replica and three sentinels ([`SentinelGroup`]). `redis-server` and `redis-cli` are
//! taken from `$PATH`, or from `$REDIS_SERVER` / `$REDIS_CLI`.
//!
//! For fault injection: a real server can be frozen ([`RedisServer::pause`]), killed
//! ([`RedisServer::stop`]) and brought back on its port ([`RedisServer::restart`]);
//! [`FaultyServer`] is a server that never answers, answers garbage or answers as an HTTP
//! server does ([`Misbehaviour`]); [`RefusedPort`] is a port known to refuse connections.
//!
//! ```
//! use pottery::testing::RedisServer;
//!
//! let server = RedisServer::start()?;
//! let redis = server.redis();
//! redis.ping()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io::{self, Read};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::redis::Redis;

/// How long a server may take to come up.
const START_TIMEOUT: Duration = Duration::from_secs(20);

fn server_binary() -> String {
    std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_owned())
}

fn cli_binary() -> String {
    std::env::var("REDIS_CLI").unwrap_or_else(|_| "redis-cli".to_owned())
}

type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

/// Children are spawned by one thread that lives as long as the process, so that
/// `PR_SET_PDEATHSIG` (which fires when the spawning *thread* ends) fires only when the whole
/// process goes away.
fn spawn(cmd: Command) -> io::Result<Child> {
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
    tx.lock()
        .unwrap_or_else(|p| p.into_inner())
        .send((cmd, reply_tx))
        .map_err(|_| io::Error::other("spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| io::Error::other("spawner thread is gone"))?
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// TLS material made for one server: a CA and a server certificate for `localhost` and
/// `127.0.0.1`, signed by it.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// The CA certificate (PEM): give it to [`crate::RedisBuilder::tls_root_cert`].
    pub ca_pem: Vec<u8>,
    ca_path: PathBuf,
    cert_path: PathBuf,
    key_path: PathBuf,
}

fn make_tls(dir: &Path) -> io::Result<TlsFiles> {
    let err = |e: rcgen::Error| io::Error::other(e.to_string());
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "pottery test CA");
    let ca_key = rcgen::KeyPair::generate().map_err(err)?;
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).map_err(err)?;
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .map_err(err)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    let key = rcgen::KeyPair::generate().map_err(err)?;
    let cert = params.signed_by(&key, &ca).map_err(err)?;
    let files = TlsFiles {
        ca_pem: ca.pem().into_bytes(),
        ca_path: dir.join("ca.crt"),
        cert_path: dir.join("server.crt"),
        key_path: dir.join("server.key"),
    };
    std::fs::write(&files.ca_path, &files.ca_pem)?;
    std::fs::write(&files.cert_path, cert.pem())?;
    std::fs::write(&files.key_path, key.serialize_pem())?;
    Ok(files)
}

/// Options for a [`RedisServer`].
///
/// ```
/// use pottery::testing::RedisServer;
///
/// let server = RedisServer::builder().acl_user("alice", "wonderland").start()?;
/// assert!(server.url().starts_with("redis://alice:wonderland@127.0.0.1:"));
/// server.redis().ping()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct ServerBuilder {
    binary: Option<String>,
    password: Option<String>,
    acl_user: Option<(String, String)>,
    tls: bool,
    cluster: bool,
    node_timeout: Option<Duration>,
    /// Run as a sentinel with this configuration file's contents.
    sentinel_conf: Option<String>,
    /// TLS material shared with other servers (a [`SentinelGroup`]'s), instead of this
    /// server's own.
    shared_tls: Option<TlsFiles>,
    args: Vec<String>,
}

impl ServerBuilder {
    /// Run this server binary instead of `$REDIS_SERVER` or `redis-server` (a `valkey-server`,
    /// say).
    ///
    /// ```
    /// let b = pottery::testing::RedisServer::builder().binary("/usr/bin/redis-server");
    /// # let _ = b;
    /// ```
    pub fn binary(mut self, path: impl Into<String>) -> Self {
        self.binary = Some(path.into());
        self
    }

    /// Require this password for the default user (`requirepass`).
    ///
    /// ```
    /// let server = pottery::testing::RedisServer::builder().password("pw").start()?;
    /// assert!(server.url().contains(":pw@"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn password(mut self, password: &str) -> Self {
        self.password = Some(password.to_owned());
        self
    }

    /// Add an ACL user with every permission, turn the default user off, and put this user
    /// in [`RedisServer::url`].
    ///
    /// ```
    /// let server = pottery::testing::RedisServer::builder().acl_user("bob", "pw").start()?;
    /// assert!(server.url().contains("bob:pw@"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn acl_user(mut self, user: &str, password: &str) -> Self {
        self.acl_user = Some((user.to_owned(), password.to_owned()));
        self
    }

    /// Serve TLS only, with a CA and server certificate made for this server.
    ///
    /// ```
    /// let server = pottery::testing::RedisServer::builder().tls().start()?;
    /// assert!(server.url().starts_with("rediss://"));
    /// server.redis().ping()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Run as a cluster node (`cluster-enabled yes`); see [`RedisCluster`].
    ///
    /// ```
    /// let node = pottery::testing::RedisServer::builder().cluster_node().start()?;
    /// # let _ = node;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cluster_node(mut self) -> Self {
        self.cluster = true;
        self
    }

    /// Pass extra `redis-server` arguments, such as `["--maxmemory", "10mb"]`.
    ///
    /// ```
    /// let server = pottery::testing::RedisServer::builder().args(["--maxmemory", "10mb"]).start()?;
    /// # let _ = server;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Starts the server on a free port and waits until it accepts connections.
    ///
    /// ```
    /// let server = pottery::testing::RedisServer::builder().start()?;
    /// assert!(server.port() > 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start(self) -> io::Result<RedisServer> {
        let dir = tempfile::Builder::new()
            .prefix("pottery-redis-")
            .tempdir()?;
        if let Some(conf) = &self.sentinel_conf {
            // Sentinel rewrites its configuration file, so it lives with the server.
            std::fs::write(dir.path().join("sentinel.conf"), conf)?;
        }
        let tls = match (&self.shared_tls, self.tls) {
            (Some(shared), _) => Some(shared.clone()),
            (None, true) => Some(make_tls(dir.path())?),
            (None, false) => None,
        };
        let mut server = RedisServer {
            child: None,
            port: free_port()?,
            dir,
            tls,
            options: self,
        };
        let mut last_error = None;
        for _ in 0..10 {
            match server.launch() {
                Ok(()) => return Ok(server),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(e),
                Err(e) => {
                    last_error = Some(e);
                    server.port = free_port()?;
                }
            }
        }
        Err(last_error.unwrap_or_else(|| io::Error::other("could not start redis-server")))
    }
}

/// A `redis-server` process of our own, killed on drop.
///
/// ```
/// let mut server = pottery::testing::RedisServer::start()?;
/// let redis = server.redis();
/// redis.ping()?;
/// server.stop();
/// assert!(redis.ping().is_err());
/// server.restart()?;
/// redis.ping()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    tls: Option<TlsFiles>,
    options: ServerBuilder,
}

impl RedisServer {
    /// Starts a plain server (no password, no TLS).
    ///
    /// ```
    /// let server = pottery::testing::RedisServer::start()?;
    /// # let _ = server;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start() -> io::Result<RedisServer> {
        ServerBuilder::default().start()
    }

    /// Options for a server with a password, an ACL user, TLS…
    ///
    /// ```
    /// let server = pottery::testing::RedisServer::builder().password("pw").start()?;
    /// # let _ = server;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    fn command(&self) -> Command {
        let binary = self.options.binary.clone().unwrap_or_else(server_binary);
        let mut cmd = Command::new(binary);
        let dir = self.dir.path();
        if self.options.sentinel_conf.is_some() {
            // The configuration file must come first.
            cmd.arg(dir.join("sentinel.conf")).arg("--sentinel");
        }
        cmd.arg("--bind").arg("127.0.0.1");
        match &self.tls {
            Some(tls) => {
                cmd.arg("--port").arg("0");
                cmd.arg("--tls-port").arg(self.port.to_string());
                cmd.arg("--tls-cert-file").arg(&tls.cert_path);
                cmd.arg("--tls-key-file").arg(&tls.key_path);
                cmd.arg("--tls-ca-cert-file").arg(&tls.ca_path);
                cmd.arg("--tls-auth-clients").arg("no");
                if self.options.cluster {
                    cmd.arg("--tls-cluster").arg("yes");
                }
            }
            None => {
                cmd.arg("--port").arg(self.port.to_string());
            }
        }
        if self.options.sentinel_conf.is_none() {
            // A replica's full sync starts at once, not after the default 5 s wait for more
            // replicas to share it: every replica start and failover here is seconds faster.
            cmd.arg("--repl-diskless-sync-delay").arg("0");
        }
        cmd.arg("--save").arg("");
        cmd.arg("--appendonly").arg("no");
        cmd.arg("--daemonize").arg("no");
        cmd.arg("--protected-mode").arg("no");
        cmd.arg("--dir").arg(dir);
        cmd.arg("--logfile").arg(self.log_path());
        if let Some(pw) = &self.options.password {
            cmd.arg("--requirepass").arg(pw);
        }
        if let Some((user, pw)) = &self.options.acl_user {
            cmd.arg("--user").arg("default").arg("off");
            cmd.arg("--user")
                .arg(user)
                .arg("on")
                .arg(format!(">{pw}"))
                .arg("~*")
                .arg("&*")
                .arg("+@all");
        }
        if self.options.cluster {
            cmd.arg("--cluster-enabled").arg("yes");
            cmd.arg("--cluster-config-file").arg(dir.join("nodes.conf"));
            let timeout = self.options.node_timeout.unwrap_or(Duration::from_secs(5));
            cmd.arg("--cluster-node-timeout")
                .arg(timeout.as_millis().max(1).to_string());
        }
        cmd.args(&self.options.args);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    }

    fn launch(&mut self) -> io::Result<()> {
        let _ = std::fs::remove_file(self.log_path());
        let mut child = spawn(self.command()).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot run `{}` ({e}); install redis-server (Debian: apt-get install \
                     redis-server redis-tools) or run `make test`, which does",
                    server_binary()
                ),
            )
        })?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
            // A sentinel says it monitors its master instead of being ready.
            let ready = if self.options.sentinel_conf.is_some() {
                log.contains("+monitor master")
            } else {
                log.contains("Ready to accept connections")
            };
            if ready {
                self.child = Some(child);
                return Ok(());
            }
            if let Some(status) = child.try_wait()? {
                return Err(io::Error::other(format!(
                    "redis-server exited ({status}) on port {}: {}",
                    self.port,
                    log.lines().last().unwrap_or("")
                )));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("redis-server on port {} did not start in time", self.port),
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The port it listens on (TLS port for a TLS server).
    ///
    /// ```
    /// # let server = pottery::testing::RedisServer::start()?;
    /// assert_ne!(server.port(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its URL, with the credentials it was configured with (and `?protocol=resp3` when
    /// `$POTTERY_TEST_PROTOCOL` is `resp3`).
    ///
    /// ```
    /// # let server = pottery::testing::RedisServer::start()?;
    /// assert_eq!(server.url(), format!("redis://127.0.0.1:{}/0", server.port()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        let auth = match (&self.options.acl_user, &self.options.password) {
            (Some((user, pw)), _) => format!("{user}:{pw}@"),
            (None, Some(pw)) => format!(":{pw}@"),
            (None, None) => String::new(),
        };
        format!(
            "{scheme}://{auth}127.0.0.1:{}/0{}",
            self.port,
            protocol_query()
        )
    }

    /// The TLS material, for a TLS server.
    ///
    /// ```
    /// # let server = pottery::testing::RedisServer::builder().tls().start()?;
    /// assert!(server.tls().unwrap().ca_pem.starts_with(b"-----BEGIN CERTIFICATE-----"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn tls(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
    }

    /// A new [`Redis`] handle on this server (trusting its CA for TLS).
    ///
    /// ```
    /// # let server = pottery::testing::RedisServer::start()?;
    /// server.redis().ping()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn redis(&self) -> Redis {
        let mut b = Redis::builder(&self.url()).response_timeout(Some(Duration::from_secs(10)));
        if let Some(tls) = &self.tls {
            b = b.tls_root_cert(tls.ca_pem.clone());
        }
        b.build().expect("the test server's URL is valid")
    }

    /// Whether the process runs (it has been neither [`stop`](Self::stop)ped nor dropped).
    ///
    /// ```
    /// # let mut server = pottery::testing::RedisServer::start()?;
    /// assert!(server.is_running());
    /// server.stop();
    /// assert!(!server.is_running());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kills the server (SIGKILL), as a crash would.
    ///
    /// ```
    /// # let mut server = pottery::testing::RedisServer::start()?;
    /// server.stop();
    /// assert!(server.redis().ping().is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stop(&mut self) {
        self.kill();
    }

    /// Starts it again on the same port and directory (after [`stop`](Self::stop)).
    ///
    /// ```
    /// # let mut server = pottery::testing::RedisServer::start()?;
    /// server.stop();
    /// server.restart()?;
    /// server.redis().ping()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn restart(&mut self) -> io::Result<()> {
        self.kill();
        self.launch()
    }

    /// Freezes the process (SIGSTOP): it keeps its port but answers nothing, like a hung host.
    ///
    /// ```
    /// # let server = pottery::testing::RedisServer::start()?;
    /// server.pause();
    /// server.resume();
    /// server.redis().ping()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Thaws a [`pause`](Self::pause)d server (SIGCONT).
    ///
    /// ```
    /// # let server = pottery::testing::RedisServer::start()?;
    /// server.resume();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, sig: libc::c_int) {
        if let Some(child) = &self.child
            && let Ok(pid) = libc::pid_t::try_from(child.id())
        {
            // SAFETY: sending a signal to our own child process.
            unsafe {
                libc::kill(pid, sig);
            }
        }
    }

    /// Runs `redis-cli` against this server with `args` and returns its standard output.
    ///
    /// ```
    /// # let server = pottery::testing::RedisServer::start()?;
    /// assert_eq!(server.cli(["PING"])?.trim(), "PONG");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cli<I, S>(&self, args: I) -> io::Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = Command::new(cli_binary());
        cmd.arg("-h")
            .arg("127.0.0.1")
            .arg("-p")
            .arg(self.port.to_string());
        if let Some(tls) = &self.tls {
            cmd.arg("--tls").arg("--cacert").arg(&tls.ca_path);
        }
        if let Some((user, pw)) = &self.options.acl_user {
            cmd.arg("--user").arg(user).arg("--pass").arg(pw);
        } else if let Some(pw) = &self.options.password {
            cmd.arg("-a").arg(pw);
        }
        cmd.arg("--no-auth-warning");
        cmd.args(args);
        let out = cmd.stderr(Stdio::piped()).stdout(Stdio::piped()).output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "redis-cli failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// N independent masters (for Redlock and NextId tests).
///
/// ```
/// let masters = pottery::testing::Masters::start(3)?;
/// assert_eq!(masters.handles().len(), 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Masters {
    /// The servers, in order.
    pub servers: Vec<RedisServer>,
}

impl Masters {
    /// Starts `n` plain servers.
    ///
    /// ```
    /// let masters = pottery::testing::Masters::start(2)?;
    /// assert_ne!(masters.servers[0].port(), masters.servers[1].port());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start(n: usize) -> io::Result<Masters> {
        let servers = (0..n)
            .map(|_| RedisServer::start())
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Masters { servers })
    }

    /// One handle per master.
    ///
    /// ```
    /// # let masters = pottery::testing::Masters::start(1)?;
    /// for redis in masters.handles() { redis.ping()?; }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn handles(&self) -> Vec<Redis> {
        self.servers.iter().map(RedisServer::redis).collect()
    }
}

/// Options for a [`RedisCluster`]: how many masters, how many replicas each, the
/// `cluster-node-timeout`.
///
/// ```no_run
/// use std::time::Duration;
///
/// let cluster = pottery::testing::RedisCluster::builder()
///     .masters(3)
///     .replicas_per_master(1)
///     .node_timeout(Duration::from_millis(2000))
///     .start()?;
/// assert_eq!(cluster.nodes.len(), 6);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct ClusterBuilder {
    masters: usize,
    replicas_per_master: usize,
    node_timeout: Duration,
    binary: Option<String>,
}

impl Default for ClusterBuilder {
    fn default() -> Self {
        ClusterBuilder {
            masters: 3,
            replicas_per_master: 0,
            node_timeout: Duration::from_secs(5),
            binary: None,
        }
    }
}

impl ClusterBuilder {
    /// How many masters (default 3; at least 3).
    ///
    /// ```
    /// let b = pottery::testing::RedisCluster::builder().masters(5);
    /// # let _ = b;
    /// ```
    pub fn masters(mut self, n: usize) -> Self {
        self.masters = n;
        self
    }

    /// How many replicas follow each master (default 0).
    ///
    /// ```
    /// let b = pottery::testing::RedisCluster::builder().replicas_per_master(1);
    /// # let _ = b;
    /// ```
    pub fn replicas_per_master(mut self, n: usize) -> Self {
        self.replicas_per_master = n;
        self
    }

    /// `cluster-node-timeout` (default 5 s): how long a node may be unreachable before the
    /// cluster fails it over. A failover takes about this plus a second or two.
    ///
    /// ```
    /// let b = pottery::testing::RedisCluster::builder().node_timeout(std::time::Duration::from_secs(2));
    /// # let _ = b;
    /// ```
    pub fn node_timeout(mut self, timeout: Duration) -> Self {
        self.node_timeout = timeout;
        self
    }

    /// Run this server binary instead of `$REDIS_SERVER` or `redis-server`.
    ///
    /// ```
    /// let b = pottery::testing::RedisCluster::builder().binary("/usr/bin/redis-server");
    /// # let _ = b;
    /// ```
    pub fn binary(mut self, path: impl Into<String>) -> Self {
        self.binary = Some(path.into());
        self
    }

    /// Starts the nodes, joins them with `redis-cli --cluster create`, and waits until every
    /// node reports `cluster_state:ok` with all slots covered and every replica has synced
    /// with its master.
    ///
    /// ```no_run
    /// let cluster = pottery::testing::RedisCluster::builder().replicas_per_master(1).start()?;
    /// cluster.redis().ping()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start(self) -> io::Result<RedisCluster> {
        if self.masters < 3 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a Redis Cluster needs at least 3 masters",
            ));
        }
        let total = self.masters * (1 + self.replicas_per_master);
        let nodes = (0..total)
            .map(|_| {
                let mut b = RedisServer::builder().cluster_node();
                b.node_timeout = Some(self.node_timeout);
                if let Some(binary) = &self.binary {
                    b = b.binary(binary.clone());
                }
                b.start()
            })
            .collect::<io::Result<Vec<_>>>()?;
        let mut cmd = Command::new(cli_binary());
        cmd.arg("--cluster").arg("create");
        for node in &nodes {
            cmd.arg(format!("127.0.0.1:{}", node.port()));
        }
        cmd.arg("--cluster-replicas")
            .arg(self.replicas_per_master.to_string())
            .arg("--cluster-yes");
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot run `{}`: {e}", cli_binary())))?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "redis-cli --cluster create failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        let cluster = RedisCluster {
            nodes,
            node_timeout: self.node_timeout,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        poll_until(deadline, "the cluster to be ready", || {
            for node in &cluster.nodes {
                let info = node.cli(["CLUSTER", "INFO"]).unwrap_or_default();
                if !(info.contains("cluster_state:ok") && info.contains("cluster_slots_ok:16384")) {
                    return Err(format!("node {}: {}", node.port(), info.trim()));
                }
                let known = info_field(&info, "cluster_known_nodes");
                if known != Some(total.to_string().as_str()) {
                    return Err(format!("node {} knows {known:?} nodes", node.port()));
                }
            }
            let topology = cluster.topology().map_err(|e| e.to_string())?;
            let replicas = topology
                .iter()
                .filter(|n| matches!(n.role, ClusterRole::Replica { .. }))
                .count();
            if replicas != self.masters * self.replicas_per_master {
                return Err(format!("{replicas} replicas so far"));
            }
            for node in &topology {
                if let ClusterRole::Replica { .. } = node.role {
                    let info = cluster.nodes[node.index]
                        .cli(["INFO", "replication"])
                        .unwrap_or_default();
                    if info_field(&info, "master_link_status") != Some("up") {
                        return Err(format!("replica {} has not synced", node.port));
                    }
                }
            }
            Ok(())
        })?;
        Ok(cluster)
    }
}

/// Polls `check` every 20 ms until it is `Ok` or `deadline` passes (then a `TimedOut` error
/// that says what was awaited and the last reason it was not yet so).
fn poll_until<T>(
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
fn info_field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines().find_map(|line| {
        line.trim()
            .strip_prefix(field)
            .and_then(|rest| rest.strip_prefix(':'))
    })
}

/// A node of a [`RedisCluster`] as the cluster sees it (see [`RedisCluster::topology`]).
///
/// ```no_run
/// use pottery::testing::{ClusterRole, RedisCluster};
///
/// let cluster = RedisCluster::builder().replicas_per_master(1).start()?;
/// for node in cluster.topology()? {
///     match node.role {
///         ClusterRole::Master => assert!(!node.slots.is_empty()),
///         ClusterRole::Replica { master } => assert_ne!(master, node.index),
///     }
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterNode {
    /// Its position in [`RedisCluster::nodes`].
    pub index: usize,
    /// Its cluster node id.
    pub id: String,
    /// Its port.
    pub port: u16,
    /// Master, or replica of which node.
    pub role: ClusterRole,
    /// The slot ranges it serves (inclusive; empty for a replica).
    pub slots: Vec<(u16, u16)>,
    /// Whether the cluster has flagged it failed (`fail`).
    pub failed: bool,
}

/// A cluster node's role.
///
/// ```
/// use pottery::testing::ClusterRole;
/// let role = ClusterRole::Replica { master: 0 };
/// assert_ne!(role, ClusterRole::Master);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterRole {
    /// A master.
    Master,
    /// A replica of the node at this index of [`RedisCluster::nodes`].
    Replica {
        /// The index of the master it follows.
        master: usize,
    },
}

/// A Redis Cluster, with or without replicas, made with `redis-cli --cluster create`. Its
/// nodes are killed when it is dropped.
///
/// ```no_run
/// let cluster = pottery::testing::RedisCluster::start(3)?;
/// cluster.redis().ping()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct RedisCluster {
    /// The nodes: the first [`ClusterBuilder::masters`] of them start as masters.
    pub nodes: Vec<RedisServer>,
    node_timeout: Duration,
}

impl RedisCluster {
    /// Starts `n` (at least 3) masters without replicas, joins them, and waits for
    /// `cluster_state:ok` on every node. The same as
    /// `RedisCluster::builder().masters(n).start()`.
    ///
    /// ```no_run
    /// let cluster = pottery::testing::RedisCluster::start(3)?;
    /// assert_eq!(cluster.nodes.len(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start(n: usize) -> io::Result<RedisCluster> {
        ClusterBuilder::default().masters(n).start()
    }

    /// Options for a cluster with replicas, a shorter node timeout…
    ///
    /// ```no_run
    /// let cluster = pottery::testing::RedisCluster::builder().replicas_per_master(1).start()?;
    /// assert_eq!(cluster.nodes.len(), 6);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder() -> ClusterBuilder {
        ClusterBuilder::default()
    }

    /// The nodes' URLs.
    ///
    /// ```no_run
    /// # let cluster = pottery::testing::RedisCluster::start(3)?;
    /// assert_eq!(cluster.urls().len(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// A new cluster [`Redis`] handle.
    ///
    /// ```no_run
    /// # let cluster = pottery::testing::RedisCluster::start(3)?;
    /// assert!(cluster.redis().is_cluster());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn redis(&self) -> Redis {
        Redis::cluster(self.urls()).expect("the test cluster's URLs are valid")
    }

    /// The cluster's view of its nodes (`CLUSTER NODES`, asked of the first running node that
    /// answers), in the order of [`nodes`](Self::nodes). A node may see a failover a little
    /// later than another; [`wait_for_failover`](Self::wait_for_failover) waits until all
    /// agree.
    ///
    /// ```no_run
    /// let cluster = pottery::testing::RedisCluster::builder().replicas_per_master(1).start()?;
    /// let masters = cluster.topology()?.iter().filter(|n| n.role == pottery::testing::ClusterRole::Master).count();
    /// assert_eq!(masters, 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn topology(&self) -> io::Result<Vec<ClusterNode>> {
        let mut last_error = io::Error::other("no cluster node is running");
        for node in self.nodes.iter().filter(|n| n.is_running()) {
            match node.cli(["CLUSTER", "NODES"]) {
                Ok(text) => return self.parse_nodes(&text),
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    fn parse_nodes(&self, text: &str) -> io::Result<Vec<ClusterNode>> {
        let bad = |line: &str| io::Error::other(format!("unexpected CLUSTER NODES line: {line}"));
        // id, port, flags, master id, slots
        let mut rows = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 8 {
                return Err(bad(line));
            }
            let port = fields[1]
                .split(['@', ','])
                .next()
                .and_then(|a| a.rsplit_once(':'))
                .and_then(|(_, p)| p.parse::<u16>().ok())
                .ok_or_else(|| bad(line))?;
            let mut slots = Vec::new();
            for range in &fields[8..] {
                if range.starts_with('[') {
                    continue; // a slot being migrated
                }
                let (lo, hi) = range.split_once('-').unwrap_or((range, range));
                match (lo.parse::<u16>(), hi.parse::<u16>()) {
                    (Ok(lo), Ok(hi)) => slots.push((lo, hi)),
                    _ => return Err(bad(line)),
                }
            }
            rows.push((fields[0], port, fields[2], fields[3], slots));
        }
        let index_of_port = |port: u16| self.nodes.iter().position(|n| n.port() == port);
        let mut out = Vec::new();
        for (id, port, flags, master_id, slots) in &rows {
            let Some(index) = index_of_port(*port) else {
                continue; // not one of ours (cannot happen in a cluster we made)
            };
            let flags: Vec<&str> = flags.split(',').collect();
            let role = if flags.contains(&"slave") {
                let master = rows
                    .iter()
                    .find(|(mid, ..)| mid == master_id)
                    .and_then(|(_, mport, ..)| index_of_port(*mport))
                    .ok_or_else(|| {
                        io::Error::other(format!("replica {port} of unknown {master_id}"))
                    })?;
                ClusterRole::Replica { master }
            } else {
                ClusterRole::Master
            };
            out.push(ClusterNode {
                index,
                id: (*id).to_owned(),
                port: *port,
                role,
                slots: slots.clone(),
                failed: flags.contains(&"fail"),
            });
        }
        out.sort_by_key(|n| n.index);
        Ok(out)
    }

    /// The index in [`nodes`](Self::nodes) of the master serving `key`'s slot now.
    ///
    /// ```no_run
    /// let cluster = pottery::testing::RedisCluster::builder().replicas_per_master(1).start()?;
    /// let owner = cluster.master_for_key("users")?;
    /// assert_eq!(cluster.topology()?[owner].role, pottery::testing::ClusterRole::Master);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn master_for_key(&self, key: &str) -> io::Result<usize> {
        let slot = key_slot(key.as_bytes());
        self.topology()?
            .into_iter()
            .find(|n| {
                n.role == ClusterRole::Master
                    && !n.failed
                    && n.slots.iter().any(|&(lo, hi)| (lo..=hi).contains(&slot))
            })
            .map(|n| n.index)
            .ok_or_else(|| io::Error::other(format!("no master serves slot {slot}")))
    }

    /// Kills node `index` (SIGKILL), as a crash would. Its replica takes over after about the
    /// node timeout; see [`wait_for_failover`](Self::wait_for_failover).
    ///
    /// ```no_run
    /// let mut cluster = pottery::testing::RedisCluster::builder().replicas_per_master(1).start()?;
    /// let owner = cluster.master_for_key("users")?;
    /// cluster.kill_node(owner);
    /// assert!(!cluster.nodes[owner].is_running());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn kill_node(&mut self, index: usize) {
        self.nodes[index].stop();
    }

    /// Waits (polling, at most `timeout`) until every running node reports
    /// `cluster_state:ok` and sees every slot served by a running master that is not
    /// flagged failed: after [`kill_node`](Self::kill_node) of a master, until its replica
    /// has been promoted everywhere. Returns how long it waited.
    ///
    /// ```no_run
    /// use std::time::Duration;
    ///
    /// let mut cluster = pottery::testing::RedisCluster::builder()
    ///     .replicas_per_master(1)
    ///     .node_timeout(Duration::from_secs(1))
    ///     .start()?;
    /// let owner = cluster.master_for_key("users")?;
    /// cluster.kill_node(owner);
    /// cluster.wait_for_failover(Duration::from_secs(20))?;
    /// assert_ne!(cluster.master_for_key("users")?, owner);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_for_failover(&self, timeout: Duration) -> io::Result<Duration> {
        let started = Instant::now();
        poll_until(started + timeout, "the cluster to fail over", || {
            for node in self.nodes.iter().filter(|n| n.is_running()) {
                let info = node.cli(["CLUSTER", "INFO"]).map_err(|e| e.to_string())?;
                if info_field(&info, "cluster_state") != Some("ok") {
                    return Err(format!("node {}: cluster_state not ok", node.port()));
                }
                let view = node
                    .cli(["CLUSTER", "NODES"])
                    .map_err(|e| e.to_string())
                    .and_then(|t| self.parse_nodes(&t).map_err(|e| e.to_string()))?;
                let mut covered = 0usize;
                for n in &view {
                    if n.role == ClusterRole::Master && !n.slots.is_empty() {
                        if n.failed || !self.nodes[n.index].is_running() {
                            return Err(format!(
                                "node {} still sees dead master {} serving slots",
                                node.port(),
                                n.port
                            ));
                        }
                        covered += n
                            .slots
                            .iter()
                            .map(|&(lo, hi)| usize::from(hi - lo) + 1)
                            .sum::<usize>();
                    }
                }
                if covered != 16384 {
                    return Err(format!("node {} sees {covered} slots served", node.port()));
                }
            }
            Ok(started.elapsed())
        })
    }

    /// The configured `cluster-node-timeout`.
    ///
    /// ```no_run
    /// # let cluster = pottery::testing::RedisCluster::start(3)?;
    /// assert_eq!(cluster.node_timeout(), std::time::Duration::from_secs(5));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn node_timeout(&self) -> Duration {
        self.node_timeout
    }
}

/// The cluster slot of a key (CRC16 of the key, or of its `{hash tag}`, mod 16384).
fn key_slot(key: &[u8]) -> u16 {
    let tagged = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            rest.iter()
                .position(|&b| b == b'}')
                .filter(|&close| close > 0)
                .map(|close| &rest[..close])
        })
        .unwrap_or(key);
    let mut crc: u16 = 0;
    for &byte in tagged {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16384
}

/// Options for a [`SentinelGroup`].
///
/// ```no_run
/// use std::time::Duration;
///
/// let group = pottery::testing::SentinelGroup::builder()
///     .master_name("orders")
///     .password("pw")
///     .down_after(Duration::from_millis(1000))
///     .start()?;
/// assert_eq!(group.master_name(), "orders");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct SentinelBuilder {
    master_name: String,
    replicas: usize,
    sentinels: usize,
    quorum: usize,
    down_after: Duration,
    failover_timeout: Duration,
    password: Option<String>,
    tls: bool,
    binary: Option<String>,
}

impl Default for SentinelBuilder {
    fn default() -> Self {
        SentinelBuilder {
            master_name: "mymaster".to_owned(),
            replicas: 1,
            sentinels: 3,
            quorum: 2,
            down_after: Duration::from_millis(1000),
            failover_timeout: Duration::from_millis(3000),
            password: None,
            tls: false,
            binary: None,
        }
    }
}

impl SentinelBuilder {
    /// The name the sentinels know the master by (default `mymaster`).
    ///
    /// ```
    /// let b = pottery::testing::SentinelGroup::builder().master_name("orders");
    /// # let _ = b;
    /// ```
    pub fn master_name(mut self, name: &str) -> Self {
        self.master_name = name.to_owned();
        self
    }

    /// How many replicas follow the master (default 1).
    ///
    /// ```
    /// let b = pottery::testing::SentinelGroup::builder().replicas(2);
    /// # let _ = b;
    /// ```
    pub fn replicas(mut self, n: usize) -> Self {
        self.replicas = n;
        self
    }

    /// `down-after-milliseconds` (default 1 s): how long the master may be unreachable
    /// before a sentinel thinks it down.
    ///
    /// ```
    /// let b = pottery::testing::SentinelGroup::builder().down_after(std::time::Duration::from_millis(500));
    /// # let _ = b;
    /// ```
    pub fn down_after(mut self, timeout: Duration) -> Self {
        self.down_after = timeout;
        self
    }

    /// `failover-timeout` (default 3 s): how long a failover step may take, and (twice it)
    /// how long before a failed attempt is tried again.
    ///
    /// ```
    /// let b = pottery::testing::SentinelGroup::builder().failover_timeout(std::time::Duration::from_secs(5));
    /// # let _ = b;
    /// ```
    pub fn failover_timeout(mut self, timeout: Duration) -> Self {
        self.failover_timeout = timeout;
        self
    }

    /// One password for everything: the master and replicas (`requirepass`, `masterauth`)
    /// and the sentinels (`requirepass`, `sentinel auth-pass`, `sentinel sentinel-pass`).
    /// [`SentinelGroup::redis`] passes it on.
    ///
    /// ```
    /// let b = pottery::testing::SentinelGroup::builder().password("pw");
    /// # let _ = b;
    /// ```
    pub fn password(mut self, password: &str) -> Self {
        self.password = Some(password.to_owned());
        self
    }

    /// Serve TLS only, everywhere: the master and replicas (`tls-replication yes`) and the
    /// sentinels, with one CA (in [`SentinelGroup::tls`]) and a certificate for `127.0.0.1`
    /// and `localhost`. [`SentinelGroup::redis`] connects with TLS and trusts the CA.
    ///
    /// ```
    /// let b = pottery::testing::SentinelGroup::builder().tls();
    /// # let _ = b;
    /// ```
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Run this server binary (for the servers and the sentinels) instead of `$REDIS_SERVER`
    /// or `redis-server`.
    ///
    /// ```
    /// let b = pottery::testing::SentinelGroup::builder().binary("/usr/bin/redis-server");
    /// # let _ = b;
    /// ```
    pub fn binary(mut self, path: impl Into<String>) -> Self {
        self.binary = Some(path.into());
        self
    }

    /// A server (or, with `sentinel_conf`, a sentinel) of the group.
    fn server(&self, tls: Option<&TlsFiles>, sentinel_conf: Option<&str>) -> ServerBuilder {
        let mut b = RedisServer::builder();
        if let Some(binary) = &self.binary {
            b = b.binary(binary.clone());
        }
        if let Some(pw) = &self.password {
            b = b.password(pw);
            if sentinel_conf.is_none() {
                b = b.args(["--masterauth", pw]);
            }
        }
        if let Some(tls) = tls {
            b.shared_tls = Some(tls.clone());
            // Replicas reach their master, and sentinels everything, over TLS.
            b = b.args(["--tls-replication", "yes"]);
        }
        b.sentinel_conf = sentinel_conf.map(str::to_owned);
        b
    }

    /// Starts the master, its replicas (waiting until they have synced) and three sentinels
    /// (`redis-server <conf> --sentinel`, quorum 2), and waits until every sentinel knows the
    /// replicas and the other sentinels, so that a failover can be agreed on.
    ///
    /// ```no_run
    /// let group = pottery::testing::SentinelGroup::builder().start()?;
    /// group.redis().ping()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start(self) -> io::Result<SentinelGroup> {
        let tls_dir = if self.tls {
            Some(
                tempfile::Builder::new()
                    .prefix("pottery-sentinel-tls-")
                    .tempdir()?,
            )
        } else {
            None
        };
        let tls = tls_dir.as_ref().map(|d| make_tls(d.path())).transpose()?;
        let master = self.server(tls.as_ref(), None).start()?;
        let mut servers = vec![master];
        for _ in 0..self.replicas {
            let port = servers[0].port().to_string();
            let replica = self
                .server(tls.as_ref(), None)
                .args(["--replicaof", "127.0.0.1", port.as_str()])
                .start()?;
            servers.push(replica);
        }
        let deadline = Instant::now() + START_TIMEOUT;
        for replica in &servers[1..] {
            poll_until(deadline, "the replica to sync", || {
                let info = replica.cli(["INFO", "replication"]).unwrap_or_default();
                match info_field(&info, "master_link_status") {
                    Some("up") => Ok(()),
                    other => Err(format!("master_link_status {other:?}")),
                }
            })?;
        }
        let name = &self.master_name;
        let mut conf = format!(
            "sentinel monitor {name} 127.0.0.1 {} {}\n\
             sentinel down-after-milliseconds {name} {}\n\
             sentinel failover-timeout {name} {}\n\
             sentinel parallel-syncs {name} 1\n",
            servers[0].port(),
            self.quorum,
            self.down_after.as_millis().max(1),
            self.failover_timeout.as_millis().max(1),
        );
        if let Some(pw) = &self.password {
            conf.push_str(&format!("sentinel auth-pass {name} {pw}\n"));
            conf.push_str(&format!("sentinel sentinel-pass {pw}\n"));
        }
        let sentinels = (0..self.sentinels)
            .map(|_| self.server(tls.as_ref(), Some(&conf)).start())
            .collect::<io::Result<Vec<_>>>()?;
        let group = SentinelGroup {
            servers,
            sentinels,
            master_name: self.master_name.clone(),
            password: self.password.clone(),
            former_master: None,
            tls,
            _tls_dir: tls_dir,
        };
        let others = (group.sentinels.len() - 1).to_string();
        let replicas = self.replicas.to_string();
        poll_until(deadline, "the sentinels to know each other", || {
            for sentinel in &group.sentinels {
                let info = sentinel
                    .cli(["SENTINEL", "MASTER", name])
                    .map_err(|e| e.to_string())?;
                let fields: Vec<&str> = info.lines().map(str::trim).collect();
                let value = |key: &str| {
                    fields
                        .chunks(2)
                        .find(|kv| kv.first() == Some(&key))
                        .and_then(|kv| kv.get(1).copied())
                };
                if value("num-other-sentinels") != Some(others.as_str())
                    || value("num-slaves") != Some(replicas.as_str())
                {
                    return Err(format!(
                        "sentinel {} knows {:?} sentinels and {:?} replicas",
                        sentinel.port(),
                        value("num-other-sentinels"),
                        value("num-slaves")
                    ));
                }
            }
            Ok(())
        })?;
        Ok(group)
    }
}

/// A Sentinel-managed master: a master, its replica(s) and three sentinels (quorum 2, a
/// master thought down after 1 s), all killed on drop. Fails over in a few seconds when the
/// master is killed.
///
/// ```no_run
/// use std::time::Duration;
///
/// let mut group = pottery::testing::SentinelGroup::start()?;
/// let redis = group.redis(); // a Redis::sentinel handle
/// redis.ping()?;
/// let old = group.kill_master()?;
/// let new = group.wait_for_failover(Duration::from_secs(30))?;
/// assert_ne!(old, new);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct SentinelGroup {
    servers: Vec<RedisServer>,
    sentinels: Vec<RedisServer>,
    master_name: String,
    password: Option<String>,
    /// The master before the last [`SentinelGroup::kill_master`] or
    /// [`SentinelGroup::manual_failover`].
    former_master: Option<usize>,
    tls: Option<TlsFiles>,
    /// Where the shared TLS material lives (after the servers in drop order).
    _tls_dir: Option<tempfile::TempDir>,
}

impl SentinelGroup {
    /// Starts a master, one replica and three sentinels with the defaults of
    /// [`SentinelBuilder`].
    ///
    /// ```no_run
    /// let group = pottery::testing::SentinelGroup::start()?;
    /// assert_eq!(group.sentinel_urls().len(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start() -> io::Result<SentinelGroup> {
        SentinelBuilder::default().start()
    }

    /// Options: the master's name, a password, the timeouts…
    ///
    /// ```no_run
    /// let group = pottery::testing::SentinelGroup::builder().master_name("orders").start()?;
    /// # let _ = group;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder() -> SentinelBuilder {
        SentinelBuilder::default()
    }

    /// The sentinels' URLs (without credentials: give a password with
    /// [`crate::RedisBuilder::sentinel_password`]).
    ///
    /// ```no_run
    /// # let group = pottery::testing::SentinelGroup::start()?;
    /// assert!(group.sentinel_urls()[0].starts_with("redis://127.0.0.1:"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sentinel_urls(&self) -> Vec<String> {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        self.sentinels
            .iter()
            .map(|s| format!("{scheme}://127.0.0.1:{}", s.port()))
            .collect()
    }

    /// The TLS material (one CA for the whole group), for a group started with
    /// [`SentinelBuilder::tls`].
    ///
    /// ```no_run
    /// let group = pottery::testing::SentinelGroup::builder().tls().start()?;
    /// assert!(group.tls().unwrap().ca_pem.starts_with(b"-----BEGIN CERTIFICATE-----"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn tls(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
    }

    /// The name the sentinels know the master by.
    ///
    /// ```no_run
    /// # let group = pottery::testing::SentinelGroup::start()?;
    /// assert_eq!(group.master_name(), "mymaster");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn master_name(&self) -> &str {
        &self.master_name
    }

    /// The data servers: the first started as master, the others as its replicas (which is
    /// master now says [`master_index`](Self::master_index)).
    ///
    /// ```no_run
    /// # let group = pottery::testing::SentinelGroup::start()?;
    /// assert_eq!(group.servers().len(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn servers(&self) -> &[RedisServer] {
        &self.servers
    }

    /// The sentinel processes.
    ///
    /// ```no_run
    /// # let group = pottery::testing::SentinelGroup::start()?;
    /// assert_eq!(group.sentinels().len(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sentinels(&self) -> &[RedisServer] {
        &self.sentinels
    }

    /// The index in [`servers`](Self::servers) of the master, as the first running sentinel
    /// that answers names it.
    ///
    /// ```no_run
    /// # let group = pottery::testing::SentinelGroup::start()?;
    /// assert_eq!(group.master_index()?, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn master_index(&self) -> io::Result<usize> {
        let mut last_error = io::Error::other("no sentinel is running");
        for sentinel in self.sentinels.iter().filter(|s| s.is_running()) {
            match self.named_by(sentinel) {
                Ok(index) => return Ok(index),
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    /// The master's server (see [`master_index`](Self::master_index)).
    ///
    /// ```no_run
    /// # let group = pottery::testing::SentinelGroup::start()?;
    /// group.master()?.redis().ping()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn master(&self) -> io::Result<&RedisServer> {
        Ok(&self.servers[self.master_index()?])
    }

    /// The running servers other than the master: its replicas (and, right after a failover,
    /// perhaps an old master the sentinels have yet to turn into one).
    ///
    /// ```no_run
    /// # let group = pottery::testing::SentinelGroup::start()?;
    /// let replicas = group.replicas()?;
    /// assert_eq!(replicas.len(), 1);
    /// assert!(replicas[0].cli(["ROLE"])?.starts_with("slave"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn replicas(&self) -> io::Result<Vec<&RedisServer>> {
        let master = self.master_index()?;
        Ok(self
            .servers
            .iter()
            .enumerate()
            .filter(|&(i, s)| i != master && s.is_running())
            .map(|(_, s)| s)
            .collect())
    }

    fn named_by(&self, sentinel: &RedisServer) -> io::Result<usize> {
        let reply = sentinel.cli(["SENTINEL", "GET-MASTER-ADDR-BY-NAME", &self.master_name])?;
        let port = reply
            .lines()
            .nth(1)
            .and_then(|p| p.trim().parse::<u16>().ok())
            .ok_or_else(|| io::Error::other(format!("unexpected sentinel reply: {reply}")))?;
        self.servers
            .iter()
            .position(|s| s.port() == port)
            .ok_or_else(|| io::Error::other(format!("the sentinel names unknown port {port}")))
    }

    /// A new [`Redis::sentinel`] handle on the group (with its password and TLS, if it has
    /// them).
    ///
    /// ```no_run
    /// # let group = pottery::testing::SentinelGroup::start()?;
    /// let redis = group.redis();
    /// assert!(redis.is_sentinel());
    /// redis.ping()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn redis(&self) -> Redis {
        let mut b = Redis::sentinel_builder(self.sentinel_urls(), &self.master_name);
        if let Some(pw) = &self.password {
            b = b.sentinel_password(pw).master_password(pw);
        }
        if let Some(tls) = &self.tls {
            b = b.master_tls().tls_root_cert(tls.ca_pem.clone());
        }
        b.build().expect("the sentinel group's URLs are valid")
    }

    /// Kills the master (SIGKILL), as a crash would; returns its index in
    /// [`servers`](Self::servers).
    ///
    /// ```no_run
    /// let mut group = pottery::testing::SentinelGroup::start()?;
    /// let old = group.kill_master()?;
    /// assert!(!group.servers()[old].is_running());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn kill_master(&mut self) -> io::Result<usize> {
        let index = self.master_index()?;
        self.servers[index].stop();
        self.former_master = Some(index);
        Ok(index)
    }

    /// Asks a sentinel for a failover while the master runs (`SENTINEL FAILOVER`): a replica
    /// is promoted and the old master, still up, is turned into its replica a little later.
    /// Returns the old master's index in [`servers`](Self::servers); see
    /// [`wait_for_failover`](Self::wait_for_failover).
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// let mut group = pottery::testing::SentinelGroup::start()?;
    /// let old = group.manual_failover()?;
    /// let new = group.wait_for_failover(Duration::from_secs(30))?;
    /// assert_ne!(old, new);
    /// assert!(group.servers()[old].is_running());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn manual_failover(&mut self) -> io::Result<usize> {
        let index = self.master_index()?;
        let sentinel = self
            .sentinels
            .iter()
            .find(|s| s.is_running())
            .ok_or_else(|| io::Error::other("no sentinel is running"))?;
        let reply = sentinel.cli(["SENTINEL", "FAILOVER", &self.master_name])?;
        if !reply.trim().eq_ignore_ascii_case("ok") {
            return Err(io::Error::other(format!(
                "SENTINEL FAILOVER: {}",
                reply.trim()
            )));
        }
        self.former_master = Some(index);
        Ok(index)
    }

    /// Waits (polling, at most `timeout`) until every running sentinel names the same
    /// running server as master — another than the one [`kill_master`](Self::kill_master)
    /// killed or [`manual_failover`](Self::manual_failover) demoted — and that server says
    /// `ROLE` master; returns its index in [`servers`](Self::servers).
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// let mut group = pottery::testing::SentinelGroup::start()?;
    /// group.kill_master()?;
    /// let new = group.wait_for_failover(Duration::from_secs(30))?;
    /// assert!(group.servers()[new].is_running());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_for_failover(&self, timeout: Duration) -> io::Result<usize> {
        poll_until(
            Instant::now() + timeout,
            "the sentinels to fail over",
            || {
                let mut named = None;
                for sentinel in self.sentinels.iter().filter(|s| s.is_running()) {
                    let index = self.named_by(sentinel).map_err(|e| e.to_string())?;
                    if named.is_some_and(|n| n != index) {
                        return Err("the sentinels disagree".to_owned());
                    }
                    named = Some(index);
                }
                let index = named.ok_or("no sentinel is running")?;
                let server = &self.servers[index];
                if !server.is_running() || self.former_master == Some(index) {
                    return Err(format!("the sentinels still name the old master {index}"));
                }
                let role = server.cli(["ROLE"]).map_err(|e| e.to_string())?;
                if role.lines().next().map(str::trim) != Some("master") {
                    return Err(format!("server {index} is not master yet"));
                }
                Ok(index)
            },
        )
    }
}

/// `?protocol=resp3` when `$POTTERY_TEST_PROTOCOL` is `resp3`: then every test handle speaks
/// RESP3 (`make test` runs the integration suite that way once), else nothing (RESP2).
fn protocol_query() -> &'static str {
    static QUERY: OnceLock<&'static str> = OnceLock::new();
    QUERY.get_or_init(|| match std::env::var("POTTERY_TEST_PROTOCOL").as_deref() {
        Ok("resp3") => "?protocol=resp3",
        _ => "",
    })
}

/// One server shared by the whole test process, started on first use and killed when the
/// process ends. Tests sharing it should use distinct keys (random ones, say).
///
/// ```
/// let server = pottery::testing::shared_server();
/// server.redis().ping()?;
/// # Ok::<(), pottery::Error>(())
/// ```
pub fn shared_server() -> &'static RedisServer {
    static SERVER: OnceLock<RedisServer> = OnceLock::new();
    SERVER.get_or_init(|| RedisServer::start().expect("cannot start a shared redis-server"))
}

/// A 3-node cluster shared by the whole test process (see [`shared_server`]).
///
/// ```no_run
/// pottery::testing::shared_cluster().redis().ping()?;
/// # Ok::<(), pottery::Error>(())
/// ```
pub fn shared_cluster() -> &'static RedisCluster {
    static CLUSTER: OnceLock<RedisCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| RedisCluster::start(3).expect("cannot start a shared redis cluster"))
}

/// A handle on [`shared_server`]: what pottery's documentation examples run against.
///
/// ```
/// let redis = pottery::testing::doctest_redis();
/// redis.ping()?;
/// # Ok::<(), pottery::Error>(())
/// ```
pub fn doctest_redis() -> Redis {
    shared_server().redis()
}

#[doc(hidden)]
pub fn read_log(server: &RedisServer) -> String {
    let mut s = String::new();
    if let Ok(mut f) = std::fs::File::open(server.log_path()) {
        let _ = f.read_to_string(&mut s);
    }
    s
}

/// How a [`FaultyServer`] misbehaves.
///
/// ```
/// use pottery::testing::{FaultyServer, Misbehaviour};
///
/// let server = FaultyServer::start(Misbehaviour::Http)?;
/// assert_eq!(server.misbehaviour(), Misbehaviour::Http);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Misbehaviour {
    /// Accepts connections and never answers nor closes them: a hung host behind a live
    /// kernel.
    Silent,
    /// Answers every request with a byte that starts no RESP type (`0xff`) followed by
    /// random bytes, and keeps the connection open.
    Garbage,
    /// Answers the first request as an HTTP server does (`HTTP/1.1 400 Bad Request`, headers
    /// and a body) and closes the connection: a Redis URL pointing at a web server.
    Http,
}

/// A TCP server on a free loopback port that is not Redis and misbehaves as asked: for tests
/// that check what a client does when the server hangs, answers garbage, or is something
/// else. Threads and `std::net` only; stopped, and its connections closed, when dropped.
///
/// ```
/// use std::time::Duration;
/// use pottery::testing::FaultyServer;
///
/// let server = FaultyServer::silent()?;
/// let redis = pottery::Redis::builder(&server.url())
///     .response_timeout(Some(Duration::from_millis(200)))
///     .build()?;
/// assert!(matches!(redis.ping(), Err(pottery::Error::Redis { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct FaultyServer {
    misbehaviour: Misbehaviour,
    port: u16,
    shared: std::sync::Arc<FaultyShared>,
    acceptor: Option<std::thread::JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct FaultyShared {
    stop: std::sync::atomic::AtomicBool,
    accepted: std::sync::atomic::AtomicUsize,
    /// Every connection accepted, so that dropping the server closes them.
    streams: Mutex<Vec<std::net::TcpStream>>,
    workers: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

/// What an HTTP server says to a Redis command.
const HTTP_REPLY: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n\
Content-Length: 11\r\nConnection: close\r\n\r\nBad Request";

impl FaultyServer {
    /// Starts a server that misbehaves as `misbehaviour` says.
    ///
    /// ```
    /// use pottery::testing::{FaultyServer, Misbehaviour};
    ///
    /// let server = FaultyServer::start(Misbehaviour::Garbage)?;
    /// assert!(server.port() > 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn start(misbehaviour: Misbehaviour) -> io::Result<FaultyServer> {
        use std::sync::atomic::Ordering;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        // Polled, so that dropping the server stops the acceptor whatever state it is in.
        listener.set_nonblocking(true)?;
        let shared = std::sync::Arc::new(FaultyShared::default());
        let s = std::sync::Arc::clone(&shared);
        let acceptor = std::thread::Builder::new()
            .name("pottery-faulty-server".into())
            .spawn(move || {
                while !s.stop.load(Ordering::SeqCst) {
                    let stream = match listener.accept() {
                        Ok((stream, _)) => stream,
                        Err(_) => {
                            std::thread::sleep(Duration::from_millis(2));
                            continue;
                        }
                    };
                    let _ = stream.set_nonblocking(false);
                    s.accepted.fetch_add(1, Ordering::SeqCst);
                    if let Ok(kept) = stream.try_clone() {
                        lock(&s.streams).push(kept);
                    }
                    if misbehaviour == Misbehaviour::Silent {
                        continue;
                    }
                    let s2 = std::sync::Arc::clone(&s);
                    let worker = std::thread::Builder::new()
                        .name("pottery-faulty-conn".into())
                        .spawn(move || answer(stream, misbehaviour, &s2));
                    if let Ok(worker) = worker {
                        let mut workers = lock(&s.workers);
                        workers.retain(|w| !w.is_finished());
                        workers.push(worker);
                    }
                }
            })?;
        Ok(FaultyServer {
            misbehaviour,
            port,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// A server that accepts connections and never answers ([`Misbehaviour::Silent`]).
    ///
    /// ```
    /// let server = pottery::testing::FaultyServer::silent()?;
    /// # let _ = server;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn silent() -> io::Result<FaultyServer> {
        FaultyServer::start(Misbehaviour::Silent)
    }

    /// A server that answers garbage ([`Misbehaviour::Garbage`]).
    ///
    /// ```
    /// let server = pottery::testing::FaultyServer::garbage()?;
    /// let redis = pottery::Redis::from_url(&server.url())?;
    /// assert!(redis.ping().is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn garbage() -> io::Result<FaultyServer> {
        FaultyServer::start(Misbehaviour::Garbage)
    }

    /// A server that answers as an HTTP server does ([`Misbehaviour::Http`]).
    ///
    /// ```
    /// let server = pottery::testing::FaultyServer::http()?;
    /// let redis = pottery::Redis::from_url(&server.url())?;
    /// assert!(redis.ping().is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn http() -> io::Result<FaultyServer> {
        FaultyServer::start(Misbehaviour::Http)
    }

    /// How it misbehaves.
    ///
    /// ```
    /// let server = pottery::testing::FaultyServer::silent()?;
    /// assert_eq!(server.misbehaviour(), pottery::testing::Misbehaviour::Silent);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn misbehaviour(&self) -> Misbehaviour {
        self.misbehaviour
    }

    /// The port it listens on (loopback).
    ///
    /// ```
    /// let server = pottery::testing::FaultyServer::silent()?;
    /// assert_ne!(server.port(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A Redis URL for it: `redis://127.0.0.1:<port>/0`.
    ///
    /// ```
    /// let server = pottery::testing::FaultyServer::silent()?;
    /// assert_eq!(server.url(), format!("redis://127.0.0.1:{}/0", server.port()));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// How many connections it has accepted so far.
    ///
    /// ```
    /// let server = pottery::testing::FaultyServer::http()?;
    /// let _ = pottery::Redis::from_url(&server.url())?.ping();
    /// assert_eq!(server.connections(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn connections(&self) -> usize {
        self.shared
            .accepted
            .load(std::sync::atomic::Ordering::SeqCst)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Serves one connection of a [`FaultyServer`] that answers (garbage or HTTP).
fn answer(mut stream: std::net::TcpStream, how: Misbehaviour, shared: &FaultyShared) {
    use std::io::Write;
    use std::sync::atomic::Ordering;
    // Wake up now and then to notice that the server was dropped.
    let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
    let mut seed = u64::from(stream.peer_addr().map_or(0, |a| a.port()))
        ^ u64::from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .subsec_nanos(),
        )
        | 1;
    let mut buf = [0u8; 4096];
    while !shared.stop.load(Ordering::SeqCst) {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(_) => return,
        }
        match how {
            Misbehaviour::Http => {
                let _ = stream.write_all(HTTP_REPLY);
                let _ = stream.shutdown(std::net::Shutdown::Both);
                return;
            }
            _ => {
                // 0xff starts no RESP2 or RESP3 type; then random bytes (xorshift).
                let mut reply = vec![0xff];
                for _ in 0..63 {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    reply.push(seed.to_le_bytes()[0]);
                }
                reply.extend_from_slice(b"\r\n");
                if stream.write_all(&reply).is_err() {
                    return;
                }
            }
        }
    }
}

impl Drop for FaultyServer {
    fn drop(&mut self) {
        use std::sync::atomic::Ordering;
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        for stream in lock(&self.shared.streams).drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        for worker in lock(&self.shared.workers).drain(..) {
            let _ = worker.join();
        }
    }
}

/// A loopback port that is known to be closed: connecting to it is refused at once. The port
/// is held by a socket that is bound and never listens, so no other process can take it
/// while this value lives; it is freed when dropped.
///
/// ```
/// let closed = pottery::testing::RefusedPort::new()?;
/// let redis = pottery::Redis::from_url(&closed.url())?;
/// assert!(matches!(redis.ping(), Err(pottery::Error::Redis { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct RefusedPort {
    socket: std::os::fd::OwnedFd,
    port: u16,
}

impl RefusedPort {
    /// Binds a fresh loopback port without listening on it.
    ///
    /// ```
    /// let closed = pottery::testing::RefusedPort::new()?;
    /// assert!(std::net::TcpStream::connect(("127.0.0.1", closed.port())).is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> io::Result<RefusedPort> {
        use std::os::fd::{AsRawFd, FromRawFd};
        // SAFETY: plain socket calls on a descriptor we own; the address structs are
        // initialised before use and their sizes passed exactly.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            let socket = std::os::fd::OwnedFd::from_raw_fd(fd);
            let mut addr: libc::sockaddr_in = std::mem::zeroed();
            addr.sin_family = libc::AF_INET as libc::sa_family_t;
            addr.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
            addr.sin_port = 0;
            let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            if libc::bind(
                socket.as_raw_fd(),
                (&raw const addr).cast::<libc::sockaddr>(),
                len,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            let mut bound: libc::sockaddr_in = std::mem::zeroed();
            let mut bound_len = len;
            if libc::getsockname(
                socket.as_raw_fd(),
                (&raw mut bound).cast::<libc::sockaddr>(),
                &mut bound_len,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            Ok(RefusedPort {
                socket,
                port: u16::from_be(bound.sin_port),
            })
        }
    }

    /// The closed port.
    ///
    /// ```
    /// let closed = pottery::testing::RefusedPort::new()?;
    /// assert_ne!(closed.port(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn port(&self) -> u16 {
        let _ = &self.socket;
        self.port
    }

    /// A Redis URL for it: `redis://127.0.0.1:<port>/0`.
    ///
    /// ```
    /// let closed = pottery::testing::RefusedPort::new()?;
    /// assert!(closed.url().ends_with(&format!(":{}/0", closed.port())));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}
