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
