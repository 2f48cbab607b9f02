//! `RedisBuilder`: every setting of a handle, and the TLS set-up.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::RedisError;
#[cfg(feature = "cluster")]
use redis::cluster::ClusterClientBuilder;

use super::DEFAULT_URL;
use super::Options;
use super::Redis;
use super::SentinelOptions;
use super::Target;
use super::cluster::NodeTemplate;
use super::redact::redact;
use super::redact::scrub;
#[cfg(feature = "sentinel")]
use super::sentinel::sentinel_target;
use crate::error::{Error, Result};

/// Configures a [`Redis`] handle: timeouts, pool size and TLS material, and for a Sentinel
/// handle ([`Redis::sentinel_builder`]) the sentinels' and the master's credentials, the
/// master's database and whether it serves TLS.
///
/// ```
/// use std::time::Duration;
/// use pottery::Redis;
///
/// let redis = Redis::builder("redis://127.0.0.1:6379/0")
///     .connection_timeout(Duration::from_secs(1))
///     .response_timeout(Some(Duration::from_millis(500)))
///     .max_idle_connections(4)
///     .build()?;
/// # let _ = redis;
/// # Ok::<(), pottery::Error>(())
/// ```
#[derive(Clone)]
#[must_use]
pub struct RedisBuilder {
    pub(super) nodes: Vec<String>,
    pub(super) kind: Kind,
    pub(super) opts: Options,
    pub(super) root_cert: Option<Vec<u8>>,
    pub(super) client_cert: Option<(Vec<u8>, Vec<u8>)>,
    pub(super) sentinel: SentinelOptions,
    pub(super) near: Option<crate::near::NearCache>,
}

/// What a builder's URLs point at.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Kind {
    Single,
    #[cfg(feature = "cluster")]
    Cluster,
    /// Sentinels, watching the master of this name.
    #[cfg(feature = "sentinel")]
    Sentinel(String),
}

impl fmt::Debug for RedisBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBuilder")
            .field(
                "nodes",
                &self.nodes.iter().map(|n| redact(n)).collect::<Vec<_>>(),
            )
            .field("kind", &self.kind)
            .field("options", &self.opts)
            .field("root_cert", &self.root_cert.is_some())
            .field("client_cert", &self.client_cert.is_some())
            .field("sentinel", &self.sentinel)
            .finish()
    }
}

impl RedisBuilder {
    /// How long connecting may take, handshake (TLS, `AUTH`, `SELECT`) included (default 5 s).
    /// A call that has to connect first takes at most this plus its response timeout. Zero is
    /// refused by [`build`](Self::build) with [`Error::Config`]. (A blocking call on a
    /// cluster with an unresponsive node may take about twice that: a new cluster connection
    /// connects to every node. Redirects and failovers are followed within
    /// [`retry_timeout`](Self::retry_timeout).)
    ///
    /// ```
    /// # use std::time::Duration;
    /// let b = pottery::Redis::builder("redis://127.0.0.1").connection_timeout(Duration::from_secs(2));
    /// # let _ = b;
    /// ```
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.opts.connection_timeout = timeout;
        self
    }

    /// How long one reply may take before the call fails (default 10 s; `None` waits forever).
    /// `Some(Duration::ZERO)` is refused by [`build`](Self::build) with [`Error::Config`].
    ///
    /// ```
    /// # use std::time::Duration;
    /// let b = pottery::Redis::builder("redis://127.0.0.1").response_timeout(Some(Duration::from_secs(1)));
    /// # let _ = b;
    /// ```
    pub fn response_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.opts.response_timeout = timeout;
        self
    }

    /// Whether a handle's async connection coalesces the commands that tasks send at once
    /// (default on): a command sent while others are in flight on the connection goes out with
    /// the others sent at that moment, as one pipeline (one write, one read by the server),
    /// each still answered on its own; a command sent while none is in flight goes at once.
    /// Under many concurrent tasks it carries well over the rate of a connection that sends
    /// each command on its own; off, every command is written on its own, as redis-rs does.
    /// Single-server and Sentinel handles on a multi-threaded Tokio runtime (a cluster
    /// handle's connection routes each command itself; on a current-thread runtime the
    /// connection's driver, on the senders' thread, writes what they sent together already).
    ///
    /// ```
    /// let b = pottery::Redis::builder("redis://127.0.0.1").coalesce(false);
    /// # let _ = b;
    /// ```
    pub fn coalesce(mut self, on: bool) -> Self {
        self.opts.coalesce = on;
        self
    }

    /// How long an operation keeps retrying while the server cannot take it — a refused
    /// connection (a restart, a master that died and is being replaced), a cluster or a
    /// Sentinel group failing over (`CLUSTERDOWN`, `TRYAGAIN`, `READONLY`, `MASTERDOWN`), a
    /// server still `LOADING` its data — so that callers see latency, not errors (default
    /// 10 s; `Duration::ZERO` turns retries off), counted from the operation's first failure.
    /// Waits between attempts grow from 25 ms to 500 ms.
    ///
    /// Size it to the deployment's slowest failover, or callers see its tail as errors. In a
    /// Redis Cluster a replica usually takes over `cluster-node-timeout` plus a second or two
    /// after its master dies, but when the masters split their votes the election is retried
    /// only 4 × `cluster-node-timeout` later (about 13 s with a 2 s node timeout). Sentinels
    /// retry a failed failover after twice their `failover-timeout`.
    ///
    /// A retry never applies a write twice. Every operation has a class, documented in the
    /// crate docs ("Failovers and retries"): a *read* or an *idempotent* write (`HSET` of a
    /// value, `SADD`, `DEL`, …) is retried whenever its outcome is unknown (the connection
    /// broke after the request was sent); any other write (`HINCRBY`, pushes, pops, the
    /// scripts that return an old value) only when it was certainly not executed, and
    /// otherwise fails with [`Error::MaybeApplied`]. (After a second or more of idling, such a
    /// write first checks its connection with one round trip, so that a connection the server
    /// closed meanwhile is replaced rather than reported as a maybe.) A call that waits its
    /// full response timeout for a reply is not retried: it fails with a timeout
    /// ([`Error::is_timeout`]), whose outcome is unknown too.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let b = pottery::Redis::builder("redis://127.0.0.1").retry_timeout(Duration::from_secs(30));
    /// # let _ = b;
    /// ```
    pub fn retry_timeout(mut self, timeout: Duration) -> Self {
        self.opts.retry_timeout = timeout;
        self
    }

    /// Durable writes: every write returns only after `replicas` replicas acknowledged it
    /// (`WAIT`, sent in the same round trip as the write), waiting at most `timeout` for them;
    /// so an acknowledged write survives the failover of its master. When fewer replicas
    /// confirm in time the call fails with [`Error::NotDurable`] — the write *was* applied on
    /// the master, and may be lost if it fails over now. Reads are unaffected. `replicas == 0`
    /// turns it off (the default). A zero `timeout` would wait forever and is refused by
    /// [`build`](Self::build).
    ///
    /// ```
    /// # use std::time::Duration;
    /// let b = pottery::Redis::builder("redis://127.0.0.1")
    ///     .durable_writes(1, Duration::from_millis(500));
    /// # let _ = b;
    /// ```
    pub fn durable_writes(mut self, replicas: usize, timeout: Duration) -> Self {
        self.opts.durable = (replicas > 0).then_some((replicas, timeout));
        self
    }

    /// How many idle blocking connections to keep for reuse (default 16). More threads than
    /// this still work; the extra connections are closed after use.
    ///
    /// ```
    /// let b = pottery::Redis::builder("redis://127.0.0.1").max_idle_connections(32);
    /// # let _ = b;
    /// ```
    pub fn max_idle_connections(mut self, n: usize) -> Self {
        self.opts.max_idle = n;
        self
    }

    /// Record key names in spans (field `pottery.key`; feature `tracing`). Off by default:
    /// key names are user data (an account number, an e-mail address). Values and hash
    /// fields are never recorded.
    ///
    /// ```
    /// let b = pottery::Redis::builder("redis://127.0.0.1").trace_key_names(true);
    /// # let _ = b;
    /// ```
    pub fn trace_key_names(mut self, on: bool) -> Self {
        self.opts.trace_keys = on;
        self
    }

    /// Trust this CA certificate (PEM) for `rediss://` instead of the system's roots.
    ///
    /// Needs a TLS feature (`tls-rustls-ring`, `tls-rustls-aws-lc-rs`, `tls-native-tls`, or
    /// `tls-rustls` with a provider of your own): without one, [`build`](Self::build) is an
    /// [`Error::Config`] naming them. With `tls-native-tls` alone, for a single server only.
    ///
    /// ```
    /// # fn pem() -> Vec<u8> { Vec::new() }
    /// let b = pottery::Redis::builder("rediss://127.0.0.1:6380").tls_root_cert(pem());
    /// # let _ = b;
    /// ```
    pub fn tls_root_cert(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.root_cert = Some(pem.into());
        self
    }

    /// Present this client certificate and private key (both PEM) for mutual TLS. Needs a
    /// TLS feature, as [`tls_root_cert`](Self::tls_root_cert) does.
    ///
    /// ```
    /// # fn pem() -> Vec<u8> { Vec::new() }
    /// let b = pottery::Redis::builder("rediss://127.0.0.1:6380").tls_client_cert(pem(), pem());
    /// # let _ = b;
    /// ```
    pub fn tls_client_cert(
        mut self,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        self.client_cert = Some((cert_pem.into(), key_pem.into()));
        self
    }

    /// Log in to the sentinels with this password, as the default user (Sentinel's own
    /// `requirepass`). Credentials in the sentinel URLs work too; this overrides them.
    /// Sentinel handles only: on another builder, [`build`](Self::build) returns
    /// [`Error::Config`].
    ///
    /// ```
    /// let b = pottery::Redis::sentinel_builder(["redis://127.0.0.1:26379"], "mymaster")
    ///     .sentinel_password("sentinel-secret");
    /// # let _ = b;
    /// ```
    #[cfg(feature = "sentinel")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sentinel")))]
    pub fn sentinel_password(mut self, password: &str) -> Self {
        self.sentinel.touched = Some("sentinel_password");
        self.sentinel.sentinel_auth = Some((None, password.to_owned()));
        self
    }

    /// Log in to the sentinels as this ACL user. Sentinel handles only.
    ///
    /// ```
    /// let b = pottery::Redis::sentinel_builder(["redis://127.0.0.1:26379"], "mymaster")
    ///     .sentinel_user("watcher", "pw");
    /// # let _ = b;
    /// ```
    #[cfg(feature = "sentinel")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sentinel")))]
    pub fn sentinel_user(mut self, user: &str, password: &str) -> Self {
        self.sentinel.touched = Some("sentinel_user");
        self.sentinel.sentinel_auth = Some((Some(user.to_owned()), password.to_owned()));
        self
    }

    /// Log in to the master with this password, as the default user (`requirepass`). Sentinel
    /// handles only (a plain handle takes the password in its URL).
    ///
    /// ```
    /// let b = pottery::Redis::sentinel_builder(["redis://127.0.0.1:26379"], "mymaster")
    ///     .master_password("s3cret");
    /// # let _ = b;
    /// ```
    #[cfg(feature = "sentinel")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sentinel")))]
    pub fn master_password(mut self, password: &str) -> Self {
        self.sentinel.touched = Some("master_password");
        self.sentinel.master_auth = Some((None, password.to_owned()));
        self
    }

    /// Log in to the master as this ACL user. Sentinel handles only.
    ///
    /// ```
    /// let b = pottery::Redis::sentinel_builder(["redis://127.0.0.1:26379"], "mymaster")
    ///     .master_user("alice", "wonderland");
    /// # let _ = b;
    /// ```
    #[cfg(feature = "sentinel")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sentinel")))]
    pub fn master_user(mut self, user: &str, password: &str) -> Self {
        self.sentinel.touched = Some("master_user");
        self.sentinel.master_auth = Some((Some(user.to_owned()), password.to_owned()));
        self
    }

    /// Use this database on the master (default 0). Sentinel handles only (a plain handle
    /// takes it in its URL, `redis://host/3`).
    ///
    /// ```
    /// let b = pottery::Redis::sentinel_builder(["redis://127.0.0.1:26379"], "mymaster").db(3);
    /// # let _ = b;
    /// ```
    #[cfg(feature = "sentinel")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sentinel")))]
    pub fn db(mut self, db: i64) -> Self {
        self.sentinel.touched = Some("db");
        self.sentinel.db = db;
        self
    }

    /// The master (and whichever replica becomes master) serves TLS: connect with TLS and
    /// check its certificate against [`tls_root_cert`](Self::tls_root_cert), or the system's
    /// roots. Whether the *sentinels* use TLS is said by their URLs (`rediss://`). Sentinel
    /// handles only.
    ///
    /// ```
    /// # fn ca_pem() -> Vec<u8> { Vec::new() }
    /// let b = pottery::Redis::sentinel_builder(["rediss://127.0.0.1:26379"], "mymaster")
    ///     .master_tls()
    ///     .tls_root_cert(ca_pem());
    /// # let _ = b;
    /// ```
    #[cfg(feature = "sentinel")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sentinel")))]
    pub fn master_tls(mut self) -> Self {
        self.sentinel.touched = Some("master_tls");
        self.sentinel.master_tls = Some(false);
        self
    }

    /// Like [`master_tls`](Self::master_tls), without checking the master's certificate
    /// (for tests and private networks only). Sentinel handles only.
    ///
    /// ```
    /// let b = pottery::Redis::sentinel_builder(["redis://127.0.0.1:26379"], "mymaster")
    ///     .master_tls_insecure();
    /// # let _ = b;
    /// ```
    #[cfg(feature = "sentinel")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sentinel")))]
    pub fn master_tls_insecure(mut self) -> Self {
        self.sentinel.touched = Some("master_tls_insecure");
        self.sentinel.master_tls = Some(true);
        self
    }

    /// Serves reads from this process's memory, invalidated by the server (a near cache:
    /// see [`crate::near`] for what is served and the freshness rule). On every kind of
    /// handle: one server, a cluster (a tracking connection per master) or Sentinel (tracking
    /// the current master).
    ///
    /// ```
    /// let redis = pottery::Redis::builder("redis://127.0.0.1")
    ///     .near_cache(pottery::NearCache::new().max_entries(1_000))
    ///     .build()?;
    /// assert!(redis.near_cache_stats().is_some());
    /// let cluster = pottery::Redis::cluster_builder(["redis://127.0.0.1:7000"])
    ///     .near_cache(pottery::NearCache::new())
    ///     .build()?;
    /// assert!(cluster.near_cache_stats().is_some());
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn near_cache(mut self, near: crate::near::NearCache) -> RedisBuilder {
        self.near = Some(near);
        self
    }

    /// Builds the handle. No I/O happens here; a bad URL or a zero timeout is an
    /// [`Error::Config`].
    ///
    /// ```
    /// # use std::time::Duration;
    /// assert!(pottery::Redis::builder("nonsense://x").build().is_err());
    /// let zero = pottery::Redis::builder("redis://127.0.0.1").connection_timeout(Duration::ZERO);
    /// assert!(matches!(zero.build(), Err(pottery::Error::Config { .. })));
    /// let misplaced = pottery::Redis::builder("redis://127.0.0.1").master_password("pw");
    /// assert!(matches!(misplaced.build(), Err(pottery::Error::Config { .. })));
    /// ```
    pub fn build(self) -> Result<Redis> {
        if self.opts.connection_timeout.is_zero() {
            return Err(Error::Config {
                message: "the connection timeout must be more than zero".into(),
            });
        }
        if self.opts.response_timeout.is_some_and(|t| t.is_zero()) {
            return Err(Error::Config {
                message: "the response timeout must be more than zero (None waits forever)".into(),
            });
        }
        if self.opts.durable.is_some_and(|(_, t)| t.is_zero()) {
            return Err(Error::Config {
                message: "the durable-writes timeout must be more than zero (WAIT 0 waits \
                          forever)"
                    .into(),
            });
        }
        #[cfg(feature = "sentinel")]
        let sentinel = matches!(self.kind, Kind::Sentinel(_));
        #[cfg(not(feature = "sentinel"))]
        let sentinel = false;
        if let (Some(option), false) = (self.sentinel.touched, sentinel) {
            return Err(Error::Config {
                message: format!(
                    "`{option}` is a Sentinel setting: use Redis::sentinel_builder (a plain or \
                     cluster handle takes credentials and the database in its URLs)"
                ),
            });
        }
        let mut needs = super::tls::Needs::of_urls(&self.nodes);
        needs.certs = self.root_cert.is_some() || self.client_cert.is_some();
        needs.certs_for_many = needs.certs && self.kind != Kind::Single;
        if let Some(insecure) = self.sentinel.master_tls {
            needs.tls = true;
            needs.insecure |= insecure;
        }
        super::tls::check(needs)?;
        let shown_nodes = || {
            self.nodes
                .iter()
                .map(|n| redact(n))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let shown = match &self.kind {
            #[cfg(feature = "cluster")]
            Kind::Cluster => format!("cluster[{}]", shown_nodes()),
            #[cfg(feature = "sentinel")]
            Kind::Sentinel(name) => format!("sentinel[{}]/{name}", shown_nodes()),
            Kind::Single => redact(self.nodes.first().map(String::as_str).unwrap_or("")),
        };
        let mut secrets = self.nodes.clone();
        for (_, pw) in [&self.sentinel.sentinel_auth, &self.sentinel.master_auth]
            .into_iter()
            .flatten()
        {
            // In the form `scrub` reads: a URL whose password is this one.
            secrets.push(format!("redis://:{pw}@x"));
        }
        let config_error = |e: RedisError| Error::Config {
            message: format!("{shown}: {}", scrub(&e.to_string(), &secrets)),
        };
        let certs = super::tls::certs(self.root_cert.as_ref(), self.client_cert.as_ref());
        let target = match &self.kind {
            #[cfg(feature = "cluster")]
            Kind::Cluster => {
                if self.nodes.is_empty() {
                    return Err(Error::Config {
                        message: "a cluster needs at least one node URL".into(),
                    });
                }
                // redis-rs retries a cluster command 16 times by default, with waits growing
                // to minutes: a call to a paused node took 8.7 s (each retry waiting the
                // response timeout again) and the next one slept for many minutes. And its
                // retries resend a command after a connection error, so a write that must not
                // repeat (HINCRBY) was applied twice in a failover test. No retries here:
                // pottery's own (see `op.rs`) follow redirects and failovers by each
                // operation's class, on a fresh connection that reads the slots anew. Each node's handshake waits for two `CLIENT SETINFO` replies (and
                // `AUTH`'s with a password), each bounded by the connection timeout: split it
                // between them.
                let auth = self.nodes.iter().any(|n| {
                    redis::IntoConnectionInfo::into_connection_info(n.as_str())
                        .is_ok_and(|i| i.redis_settings().password().is_some())
                });
                let per_step = self.opts.connection_timeout / (2 + u32::from(auth));
                let mut b = ClusterClientBuilder::new(self.nodes.iter().map(String::as_str))
                    .connection_timeout(per_step)
                    .retries(0)
                    .min_retry_wait(10)
                    .max_retry_wait(100);
                if let Some(t) = self.opts.response_timeout {
                    b = b.response_timeout(t);
                }
                let first = redis::IntoConnectionInfo::into_connection_info(self.nodes[0].as_str())
                    .map_err(config_error)?;
                let template = NodeTemplate {
                    info: first,
                    certs: certs.clone(),
                };
                #[cfg(feature = "tls-rustls")]
                if let Some(certs) = certs {
                    b = b.certs(certs);
                }
                Target::Cluster(b.build().map_err(config_error)?, Box::new(template))
            }
            #[cfg(feature = "sentinel")]
            Kind::Sentinel(name) => {
                let target = sentinel_target(&self.nodes, name, &self.sentinel, certs)
                    .map_err(config_error)?;
                Target::Sentinel(Arc::new(target))
            }
            Kind::Single => {
                let url = self
                    .nodes
                    .first()
                    .map(String::as_str)
                    .unwrap_or(DEFAULT_URL);
                Target::Single(super::tls::client(url, certs.as_ref()).map_err(config_error)?)
            }
        };
        let near = self.near.as_ref().map(|settings| {
            Arc::new(crate::near::Near::new(
                settings.clone(),
                self.opts.connection_timeout,
                self.opts.response_timeout,
            ))
        });
        Ok(Redis::from_parts(target, shown, self.opts, near))
    }
}
