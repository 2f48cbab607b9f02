//! A Redis Cluster, with or without replicas.

use std::io::{self};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::client::Redis;

use super::process::{START_TIMEOUT, cli_binary, info_field, poll_until};
use super::server::RedisServer;

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
    pub(super) masters: usize,
    pub(super) replicas_per_master: usize,
    pub(super) node_timeout: Duration,
    pub(super) binary: Option<String>,
    pub(super) args: Vec<String>,
}

impl Default for ClusterBuilder {
    fn default() -> Self {
        ClusterBuilder {
            masters: 3,
            replicas_per_master: 0,
            node_timeout: Duration::from_secs(5),
            binary: None,
            args: Vec::new(),
        }
    }
}

impl ClusterBuilder {
    setters! {
        Self;
        /// How many masters (default 3; at least 3).
        ///
        /// ```
        /// let b = pottery::testing::RedisCluster::builder().masters(5);
        /// # let _ = b;
        /// ```
        fn masters(n: usize);

        /// How many replicas follow each master (default 0).
        ///
        /// ```
        /// let b = pottery::testing::RedisCluster::builder().replicas_per_master(1);
        /// # let _ = b;
        /// ```
        fn replicas_per_master(n: usize);

        /// `cluster-node-timeout` (default 5 s): how long a node may be unreachable before the
        /// cluster fails it over. A failover takes about this plus a second or two.
        ///
        /// ```
        /// let b = pottery::testing::RedisCluster::builder().node_timeout(std::time::Duration::from_secs(2));
        /// # let _ = b;
        /// ```
        fn node_timeout(timeout: Duration);
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

    /// Pass extra `redis-server` arguments to every node, such as `["--rename-command",
    /// "HELLO", ""]` (a cluster whose nodes refuse RESP3).
    ///
    /// ```
    /// let b = pottery::testing::RedisCluster::builder().args(["--maxmemory", "10mb"]);
    /// # let _ = b;
    /// ```
    pub fn args(mut self, args: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
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
                b.args(self.args.clone()).start()
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
    pub(super) node_timeout: Duration,
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

    pub(super) fn parse_nodes(&self, text: &str) -> io::Result<Vec<ClusterNode>> {
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
        let slot = crate::exec::slot::slot(key.as_bytes());
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
