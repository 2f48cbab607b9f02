//! One server ([`RedisServer`], configured by [`ServerBuilder`]) and N independent masters
//! ([`Masters`]).

use std::io;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::client::Redis;

use super::process::protocol_query;
use super::process::{START_TIMEOUT, cli_binary, free_port, server_binary, spawn};
use super::tls::{TlsFiles, make_tls};

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
    pub(super) binary: Option<String>,
    pub(super) password: Option<String>,
    pub(super) acl_user: Option<(String, String)>,
    pub(super) tls: bool,
    pub(super) cluster: bool,
    pub(super) node_timeout: Option<Duration>,
    /// Run as a sentinel with this configuration file's contents.
    pub(super) sentinel_conf: Option<String>,
    /// TLS material shared with other servers (a [`SentinelGroup`]'s), instead of this
    /// server's own.
    pub(super) shared_tls: Option<TlsFiles>,
    pub(super) args: Vec<String>,
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

    /// Run as a cluster node (`cluster-enabled yes`); see [`RedisCluster`](super::RedisCluster).
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
            held: None,
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
    pub(super) child: Option<Child>,
    pub(super) port: u16,
    pub(super) dir: tempfile::TempDir,
    pub(super) tls: Option<TlsFiles>,
    pub(super) options: ServerBuilder,
    /// While stopped: its port, bound and not listening (connections are refused, and no
    /// other server can be given the port).
    pub(super) held: Option<super::faulty::RefusedPort>,
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

    pub(super) fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    pub(super) fn command(&self) -> Command {
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

    pub(super) fn launch(&mut self) -> io::Result<()> {
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

    pub(super) fn kill(&mut self) {
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
        self.held = super::faulty::RefusedPort::bind(self.port).ok();
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
        self.held = None;
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

    pub(super) fn signal(&self, sig: libc::c_int) {
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
