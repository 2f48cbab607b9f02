//! Throwaway `redis-server` processes for tests — pottery's own and yours (feature `testing`).
//!
//! Every server listens on a free loopback port, keeps its files in a temporary directory,
//! persists nothing, and is killed when its value is dropped — and, should the test process
//! die first, by the kernel (`PR_SET_PDEATHSIG`), so no test leaves a server behind.
//!
//! Kinds: a plain server ([`RedisServer::start`]), one with a password or an ACL user, one with
//! TLS and certificates made on the spot ([`ServerBuilder`]), N independent masters
//! ([`Masters`]) and a Redis Cluster ([`RedisCluster`]). `redis-server` and `redis-cli` are
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
        let tls = if self.tls {
            Some(make_tls(dir.path())?)
        } else {
            None
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
            cmd.arg("--cluster-node-timeout").arg("5000");
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
            if log.contains("Ready to accept connections") {
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

    /// Its URL, with the credentials it was configured with.
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
        format!("{scheme}://{auth}127.0.0.1:{}/0", self.port)
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

/// A Redis Cluster of N masters (no replicas), made with `redis-cli --cluster create`.
///
/// ```no_run
/// let cluster = pottery::testing::RedisCluster::start(3)?;
/// cluster.redis().ping()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct RedisCluster {
    /// The nodes.
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts `n` (at least 3) cluster nodes, joins them, and waits for `cluster_state:ok` on
    /// every node.
    ///
    /// ```no_run
    /// let cluster = pottery::testing::RedisCluster::start(3)?;
    /// assert_eq!(cluster.nodes.len(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start(n: usize) -> io::Result<RedisCluster> {
        let nodes = (0..n)
            .map(|_| RedisServer::builder().cluster_node().start())
            .collect::<io::Result<Vec<_>>>()?;
        let mut cmd = Command::new(cli_binary());
        cmd.arg("--cluster").arg("create");
        for node in &nodes {
            cmd.arg(format!("127.0.0.1:{}", node.port()));
        }
        cmd.arg("--cluster-replicas").arg("0").arg("--cluster-yes");
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
        let deadline = Instant::now() + START_TIMEOUT;
        for node in &nodes {
            loop {
                let info = node.cli(["CLUSTER", "INFO"]).unwrap_or_default();
                if info.contains("cluster_state:ok") && info.contains("cluster_slots_ok:16384") {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("cluster did not reach cluster_state:ok: {info}"),
                    ));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(RedisCluster { nodes })
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
