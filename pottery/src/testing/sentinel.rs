//! A Sentinel-managed master with a replica and three sentinels.

use std::io::{self};
use std::time::{Duration, Instant};

use crate::client::Redis;

use super::process::{START_TIMEOUT, info_field, poll_until};
use super::server::{RedisServer, ServerBuilder};
use super::tls::{TlsFiles, make_tls};

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
    pub(super) master_name: String,
    pub(super) replicas: usize,
    pub(super) sentinels: usize,
    pub(super) quorum: usize,
    pub(super) down_after: Duration,
    pub(super) failover_timeout: Duration,
    pub(super) password: Option<String>,
    pub(super) tls: bool,
    pub(super) binary: Option<String>,
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

    setters! {
        Self;
        /// How many replicas follow the master (default 1).
        ///
        /// ```
        /// let b = pottery::testing::SentinelGroup::builder().replicas(2);
        /// # let _ = b;
        /// ```
        fn replicas(n: usize);

        /// `down-after-milliseconds` (default 1 s): how long the master may be unreachable
        /// before a sentinel thinks it down.
        ///
        /// ```
        /// let b = pottery::testing::SentinelGroup::builder().down_after(std::time::Duration::from_millis(500));
        /// # let _ = b;
        /// ```
        fn down_after(timeout: Duration);

        /// `failover-timeout` (default 3 s): how long a failover step may take, and (twice it)
        /// how long before a failed attempt is tried again.
        ///
        /// ```
        /// let b = pottery::testing::SentinelGroup::builder().failover_timeout(std::time::Duration::from_secs(5));
        /// # let _ = b;
        /// ```
        fn failover_timeout(timeout: Duration);
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
    pub(super) fn server(
        &self,
        tls: Option<&TlsFiles>,
        sentinel_conf: Option<&str>,
    ) -> ServerBuilder {
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
    pub(super) servers: Vec<RedisServer>,
    pub(super) sentinels: Vec<RedisServer>,
    pub(super) master_name: String,
    pub(super) password: Option<String>,
    /// The master before the last [`SentinelGroup::kill_master`] or
    /// [`SentinelGroup::manual_failover`].
    pub(super) former_master: Option<usize>,
    pub(super) tls: Option<TlsFiles>,
    /// Where the shared TLS material lives (after the servers in drop order).
    pub(super) _tls_dir: Option<tempfile::TempDir>,
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

    pub(super) fn named_by(&self, sentinel: &RedisServer) -> io::Result<usize> {
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
