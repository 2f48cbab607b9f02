//! The `Redis` handle: where pottery's structures live, and the connections that reach it.

pub(crate) mod run;

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use once_cell::sync::OnceCell as SyncOnceCell;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{ConnectionLike, RedisError, RedisFuture, RedisResult, Value};

use crate::error::{Error, Result};

/// The default `REDIS_URL`, as in Python pottery.
pub const DEFAULT_URL: &str = "redis://127.0.0.1:6379/0";

/// A handle on one Redis server, one Redis Cluster, or the master that Redis Sentinel names
/// ([`Redis::sentinel`]).
///
/// Cheap to clone (an `Arc`), `Send + Sync`, and creating one does no I/O: the first operation
/// connects. Blocking code borrows a connection from a small pool per call, so many threads work
/// in parallel without sharing one socket and without connecting per operation; async code
/// shares one multiplexed, auto-reconnecting connection (redis-rs's `ConnectionManager`, or the
/// cluster's async connection).
///
/// URLs: `redis://[user:password@]host[:port][/db]`, `rediss://…` for TLS (add `#insecure` to
/// skip certificate checks, or give a CA with [`RedisBuilder::tls_root_cert`]), and
/// `redis+unix:///path/to/socket`. `Debug` shows the address with any password replaced by
/// `***`.
///
/// ```
/// use pottery::Redis;
///
/// let redis = Redis::from_url("redis://alice:s3cret@127.0.0.1:6379/1")?;
/// assert_eq!(format!("{redis:?}"), "Redis(redis://alice:***@127.0.0.1:6379/1)");
/// let same_server = redis.clone();
/// # let _ = same_server;
/// # Ok::<(), pottery::Error>(())
/// ```
#[derive(Clone)]
pub struct Redis {
    inner: Arc<Inner>,
}

struct Inner {
    target: Target,
    shown: String,
    opts: Options,
    /// Idle blocking connections, each with the time it was put back.
    idle: Mutex<Vec<(SyncConn, Instant)>>,
    /// One async connection per Tokio runtime: a connection's driver task lives on the runtime
    /// that made it, and dies with it.
    aio: Mutex<Vec<(tokio::runtime::Id, AsyncConn)>>,
    aio_init: tokio::sync::Mutex<()>,
    /// Async connection attempts finished so far, and the last one's failure (with its
    /// runtime and number), which callers that queued behind that attempt share.
    aio_attempts: std::sync::atomic::AtomicU64,
    aio_failure: Mutex<Option<(tokio::runtime::Id, u64, RedisError)>>,
    /// On a cluster: which master owns each slot, as last read (for batches, which send one
    /// pipeline per master); dropped when a batch meets a slot that moved.
    slot_owners: Mutex<Option<Arc<SlotOwners>>>,
    /// On a cluster: direct connections to masters (for batches), per runtime and address.
    nodes_aio: Mutex<
        Vec<(
            tokio::runtime::Id,
            String,
            redis::aio::MultiplexedConnection,
        )>,
    >,
    /// When each async connection was last used, by runtime and (for a direct connection to a
    /// cluster master) address: how long it has been idle.
    aio_used: Mutex<Vec<(tokio::runtime::Id, Option<String>, Instant)>>,
    /// State that outlives the values made from this handle, by type and name (a cache's
    /// circuit breaker and counters, by cache key): see [`Redis::shared_state`].
    shared: Mutex<SharedStates>,
}

/// [`Inner::shared`]: one value per type and name.
type SharedStates =
    std::collections::HashMap<(std::any::TypeId, String), Arc<dyn std::any::Any + Send + Sync>>;

/// How many shared states a handle keeps before it forgets those nobody holds.
const SHARED_STATES_KEPT: usize = 4096;

/// How to reach one node of a cluster directly: the first node's settings (credentials, TLS,
/// protocol), at another address.
struct NodeTemplate {
    info: redis::ConnectionInfo,
    certs: Option<redis::TlsCertificates>,
}

impl NodeTemplate {
    /// A client of the node at `addr` (`host:port`).
    fn client(&self, addr: &str) -> RedisResult<redis::Client> {
        let bad = || {
            RedisError::from((
                redis::ErrorKind::Client,
                "not a node address",
                addr.to_owned(),
            ))
        };
        let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        let host = host.to_owned();
        let to = match self.info.addr() {
            redis::ConnectionAddr::TcpTls {
                insecure,
                tls_params,
                ..
            } => redis::ConnectionAddr::TcpTls {
                host,
                port,
                insecure: *insecure,
                tls_params: tls_params.clone(),
            },
            _ => redis::ConnectionAddr::Tcp(host, port),
        };
        let info = self.info.clone().set_addr(to);
        match &self.certs {
            Some(certs) => redis::Client::build_with_tls(info, certs.clone()),
            None => redis::Client::open(info),
        }
    }
}

/// Which master owns each hash slot, as `CLUSTER SLOTS` said: an index per distinct master,
/// and their addresses.
pub(crate) struct SlotOwners(Vec<u16>, Vec<String>);

impl SlotOwners {
    /// Nobody (a slot `CLUSTER SLOTS` did not list).
    const NOBODY: u16 = u16::MAX;

    /// The address (`host:port`) of the master of index `owner`.
    pub(crate) fn address(&self, owner: u16) -> Option<&str> {
        self.1.get(usize::from(owner)).map(String::as_str)
    }

    /// The index of the master that owns `slot`, if known.
    pub(crate) fn owner(&self, slot: u16) -> Option<u16> {
        self.0
            .get(usize::from(slot))
            .copied()
            .filter(|o| *o != Self::NOBODY)
    }

    /// From a `CLUSTER SLOTS` reply: `[[start, end, [host, port, ..], replicas..], ..]`.
    fn parse(reply: &Value) -> Option<SlotOwners> {
        let Value::Array(ranges) = reply else {
            return None;
        };
        let mut owners = vec![Self::NOBODY; 16384];
        let mut masters: Vec<String> = Vec::new();
        for range in ranges {
            let Value::Array(parts) = range else {
                return None;
            };
            let (Some(Value::Int(start)), Some(Value::Int(end)), Some(Value::Array(master))) =
                (parts.first(), parts.get(1), parts.get(2))
            else {
                return None;
            };
            let host = match master.first()? {
                Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
                Value::SimpleString(s) => s.clone(),
                _ => return None,
            };
            let Some(Value::Int(port)) = master.get(1) else {
                return None;
            };
            let name = format!("{host}:{port}");
            let index = match masters.iter().position(|m| *m == name) {
                Some(i) => i,
                None => {
                    masters.push(name);
                    masters.len() - 1
                }
            };
            let index = u16::try_from(index).ok()?;
            let (start, end) = (usize::try_from(*start).ok()?, usize::try_from(*end).ok()?);
            for slot in owners.get_mut(start..=end)? {
                *slot = index;
            }
        }
        Some(SlotOwners(owners, masters))
    }
}

/// How many runtimes' async connections a handle keeps (the oldest goes first).
const MAX_RUNTIMES: usize = 64;

// One per handle, behind an Arc: the size difference does not matter.
#[allow(clippy::large_enum_variant)]
enum Target {
    Single(redis::Client),
    Cluster(ClusterClient, Box<NodeTemplate>),
    Sentinel(Arc<SentinelTarget>),
}

#[derive(Clone, Debug)]
struct Options {
    connection_timeout: Duration,
    response_timeout: Option<Duration>,
    max_idle: usize,
    retry_timeout: Duration,
    durable: Option<(usize, Duration)>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            connection_timeout: Duration::from_secs(5),
            response_timeout: Some(Duration::from_secs(10)),
            max_idle: 16,
            retry_timeout: Duration::from_secs(10),
            durable: None,
        }
    }
}

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
    nodes: Vec<String>,
    kind: Kind,
    opts: Options,
    root_cert: Option<Vec<u8>>,
    client_cert: Option<(Vec<u8>, Vec<u8>)>,
    sentinel: SentinelOptions,
}

/// What a builder's URLs point at.
#[derive(Clone, Debug, PartialEq)]
enum Kind {
    Single,
    Cluster,
    /// Sentinels, watching the master of this name.
    Sentinel(String),
}

/// A user name (`None`: the default user) and a password.
type Credentials = (Option<String>, String);

/// The settings only a Sentinel handle has.
#[derive(Clone, Default)]
struct SentinelOptions {
    /// Set by a `sentinel_*`/`master_*`/`db` method, for the error on a non-Sentinel builder.
    touched: Option<&'static str>,
    sentinel_auth: Option<Credentials>,
    master_auth: Option<Credentials>,
    db: i64,
    /// `Some(insecure)`: the master serves TLS.
    master_tls: Option<bool>,
}

impl fmt::Debug for SentinelOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let user = |a: &Option<Credentials>| a.as_ref().map(|(u, _)| u.clone().unwrap_or_default());
        f.debug_struct("SentinelOptions")
            .field("sentinel_user", &user(&self.sentinel_auth))
            .field(
                "sentinel_password",
                &self.sentinel_auth.as_ref().map(|_| "***"),
            )
            .field("master_user", &user(&self.master_auth))
            .field("master_password", &self.master_auth.as_ref().map(|_| "***"))
            .field("db", &self.db)
            .field("master_tls", &self.master_tls)
            .finish()
    }
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

    /// How long an operation keeps retrying while the server cannot take it — a refused
    /// connection (a restart, a master that died and is being replaced), a cluster or a
    /// Sentinel group failing over (`CLUSTERDOWN`, `TRYAGAIN`, `READONLY`, `MASTERDOWN`), a
    /// server still `LOADING` its data — so that callers see latency, not errors (default
    /// 10 s; `Duration::ZERO` turns retries off). Waits between attempts grow from 25 ms to
    /// 500 ms.
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

    /// Trust this CA certificate (PEM) for `rediss://` instead of the system's roots.
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

    /// Present this client certificate and private key (both PEM) for mutual TLS.
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
    pub fn master_tls_insecure(mut self) -> Self {
        self.sentinel.touched = Some("master_tls_insecure");
        self.sentinel.master_tls = Some(true);
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
        if let (Some(option), Kind::Single | Kind::Cluster) = (self.sentinel.touched, &self.kind) {
            return Err(Error::Config {
                message: format!(
                    "`{option}` is a Sentinel setting: use Redis::sentinel_builder (a plain or \
                     cluster handle takes credentials and the database in its URLs)"
                ),
            });
        }
        ensure_crypto_provider();
        let shown_nodes = || {
            self.nodes
                .iter()
                .map(|n| redact(n))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let shown = match &self.kind {
            Kind::Cluster => format!("cluster[{}]", shown_nodes()),
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
        let certs = (self.root_cert.is_some() || self.client_cert.is_some()).then(|| {
            redis::TlsCertificates {
                client_tls: self.client_cert.clone().map(|(client_cert, client_key)| {
                    redis::ClientTlsConfig {
                        client_cert,
                        client_key,
                    }
                }),
                root_cert: self.root_cert.clone(),
            }
        });
        let target = match &self.kind {
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
                if let Some(certs) = certs {
                    b = b.certs(certs);
                }
                Target::Cluster(b.build().map_err(config_error)?, Box::new(template))
            }
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
                let client = match certs {
                    Some(certs) => redis::Client::build_with_tls(url, certs),
                    None => redis::Client::open(url),
                };
                Target::Single(client.map_err(config_error)?)
            }
        };
        Ok(Redis::from_target(target, shown, self.opts))
    }
}

/// A Sentinel target for these sentinel URLs and settings: redis-rs's Sentinel client (it asks
/// the sentinels for the master named `name`, checks with `ROLE` that the node is a master, and
/// gives a client for it), and what the `+switch-master` watch needs.
fn sentinel_target(
    urls: &[String],
    name: &str,
    opts: &SentinelOptions,
    certs: Option<redis::TlsCertificates>,
) -> RedisResult<SentinelTarget> {
    let invalid =
        |message: &'static str| RedisError::from((redis::ErrorKind::InvalidClientConfig, message));
    if urls.is_empty() {
        return Err(invalid("a Sentinel handle needs at least one sentinel URL"));
    }
    let infos = urls
        .iter()
        .map(|u| redis::IntoConnectionInfo::into_connection_info(u.as_str()))
        .collect::<RedisResult<Vec<_>>>()?;
    if infos.iter().any(|i| i.redis_settings().db() != 0) {
        return Err(invalid(
            "sentinel URLs name no database (use .db(n) for the master's)",
        ));
    }
    let tls_sentinels = infos
        .iter()
        .any(|i| matches!(i.addr(), redis::ConnectionAddr::TcpTls { .. }));
    // The protocol in the sentinel URLs (`?protocol=resp3`) is used for the master too.
    let protocol = infos.first().map_or(redis::ProtocolVersion::RESP2, |i| {
        i.redis_settings().protocol()
    });
    let mut b = SentinelClientBuilder::new(
        infos.iter().map(|i| i.addr().clone()),
        name,
        SentinelServerType::Master,
    )?
    .set_client_to_sentinel_protocol(protocol)
    .set_client_to_redis_protocol(protocol)
    .set_client_to_redis_db(opts.db);
    let mut sentinel_settings = redis::RedisConnectionInfo::default().set_protocol(protocol);
    let mut master_settings = redis::RedisConnectionInfo::default()
        .set_protocol(protocol)
        .set_db(opts.db);
    // Credentials for the sentinels: the builder's, else the first URL that has a password.
    let from_url = infos.iter().find_map(|i| {
        let s = i.redis_settings();
        s.password()
            .map(|pw| (s.username().map(str::to_owned), pw.to_owned()))
    });
    if let Some((user, pw)) = opts.sentinel_auth.clone().or(from_url) {
        if let Some(user) = user {
            sentinel_settings = sentinel_settings.set_username(&user);
            b = b.set_client_to_sentinel_username(user);
        }
        sentinel_settings = sentinel_settings.set_password(&pw);
        b = b.set_client_to_sentinel_password(pw);
    }
    if let Some((user, pw)) = &opts.master_auth {
        if let Some(user) = user {
            master_settings = master_settings.set_username(user);
            b = b.set_client_to_redis_username(user);
        }
        master_settings = master_settings.set_password(pw);
        b = b.set_client_to_redis_password(pw);
    }
    if tls_sentinels && let Some(certs) = &certs {
        b = b.set_client_to_sentinel_certificates(certs.clone());
    }
    if let Some(insecure) = opts.master_tls {
        b = b.set_client_to_redis_tls_mode(if insecure {
            redis::TlsMode::Insecure
        } else {
            redis::TlsMode::Secure
        });
        if let Some(certs) = &certs {
            b = b.set_client_to_redis_certificates(certs.clone());
        }
    }
    let sentinels = infos
        .into_iter()
        .map(|info| {
            let tls = matches!(info.addr(), redis::ConnectionAddr::TcpTls { .. });
            let info = info.set_redis_settings(sentinel_settings.clone());
            match (&certs, tls) {
                (Some(certs), true) => redis::Client::build_with_tls(info, certs.clone()),
                _ => redis::Client::open(info),
            }
        })
        .collect::<RedisResult<Vec<_>>>()?;
    Ok(SentinelTarget {
        name: name.to_owned(),
        lookup: tokio::sync::Mutex::new(b.build()?),
        master: Mutex::new(Master::default()),
        sentinels,
        master_settings,
        master_tls: opts.master_tls,
        certs: certs.filter(|_| opts.master_tls.is_some()),
        watching: AtomicBool::new(false),
    })
}

/// A Sentinel handle's way to its master: redis-rs's Sentinel client, the master it last
/// found, and a watch of the sentinels' `+switch-master` announcements.
///
/// Connections remember which master (`generation`) they were made to. One that fails
/// (refused, dropped, timed out) or answers `READONLY` (its node is a replica now) forgets that
/// master, so the next connection asks the sentinels again. And when a sentinel announces a
/// new master, the handle takes it at once: its idle connections to the old one are dropped
/// and new ones go to the new master, even while the old master still runs and accepts writes
/// (after a manual failover it does, until the sentinels turn it into a replica).
struct SentinelTarget {
    name: String,
    /// Lookups, one at a time. They run on pottery's own runtime (the client caches async
    /// connections to the sentinels, whose driver tasks must outlive any caller's runtime).
    lookup: tokio::sync::Mutex<SentinelClient>,
    master: Mutex<Master>,
    /// Clients for the sentinels (credentials and TLS applied), for the watch.
    sentinels: Vec<redis::Client>,
    /// How to reach a master at an address a sentinel announces.
    master_settings: redis::RedisConnectionInfo,
    master_tls: Option<bool>,
    certs: Option<redis::TlsCertificates>,
    /// Whether the watch has been started (by the first lookup).
    watching: AtomicBool,
}

#[derive(Default)]
struct Master {
    /// Bumped whenever the master changes (a lookup, an announcement).
    generation: u64,
    client: Option<redis::Client>,
}

/// The host and port a client connects to.
fn address_of(client: &redis::Client) -> Option<(String, u16)> {
    match client.get_connection_info().addr() {
        redis::ConnectionAddr::Tcp(host, port)
        | redis::ConnectionAddr::TcpTls { host, port, .. } => Some((host.clone(), *port)),
        _ => None,
    }
}

impl SentinelTarget {
    fn current(&self) -> Option<(u64, redis::Client)> {
        let m = self.master.lock().unwrap_or_else(|p| p.into_inner());
        m.client.clone().map(|c| (m.generation, c))
    }

    fn generation(&self) -> u64 {
        self.master
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .generation
    }

    /// Forgets the master that connections of `generation` go to (a newer one is kept).
    fn forget(&self, generation: u64) {
        let mut m = self.master.lock().unwrap_or_else(|p| p.into_inner());
        if m.generation == generation && m.client.is_some() {
            tracing::debug!(master = %self.name, "forgetting the master (generation {generation})");
            m.client = None;
        }
    }

    /// A sentinel announced `host:port` as the new master.
    fn switch_to(&self, host: &str, port: u16) {
        let addr = match self.master_tls {
            None => redis::ConnectionAddr::Tcp(host.to_owned(), port),
            Some(insecure) => redis::ConnectionAddr::TcpTls {
                host: host.to_owned(),
                port,
                insecure,
                tls_params: None,
            },
        };
        let info = match redis::IntoConnectionInfo::into_connection_info(addr) {
            Ok(info) => info.set_redis_settings(self.master_settings.clone()),
            Err(_) => return,
        };
        let client = match &self.certs {
            Some(certs) => redis::Client::build_with_tls(info, certs.clone()),
            None => redis::Client::open(info),
        };
        let mut m = self.master.lock().unwrap_or_else(|p| p.into_inner());
        if m.client.as_ref().and_then(address_of) == Some((host.to_owned(), port)) {
            return; // known already (every sentinel announces it)
        }
        tracing::debug!(master = %self.name, "a sentinel announced the new master {host}:{port}");
        m.generation += 1;
        // On a client that cannot be made, fall back to asking the sentinels.
        m.client = client.ok();
    }

    /// The master, asking the sentinels (within `within`) unless it is known.
    async fn master(self: &Arc<Self>, within: Duration) -> RedisResult<(u64, redis::Client)> {
        if !self.watching.swap(true, Ordering::Relaxed) {
            drop(crate::exec::rt::spawn_global(watch_switches(
                Arc::downgrade(self),
            )));
        }
        if let Some(found) = self.current() {
            return Ok(found);
        }
        let me = Arc::clone(self);
        let lookup = crate::exec::rt::spawn_global(async move {
            let found = tokio::time::timeout(within, async {
                let mut sentinels = me.lookup.lock().await;
                // Another caller may have found it while this one waited.
                if let Some(found) = me.current() {
                    return Ok(found);
                }
                let before = me.generation();
                let client = sentinels.async_get_client().await?;
                let mut m = me.master.lock().unwrap_or_else(|p| p.into_inner());
                if m.generation != before
                    && let Some(announced) = &m.client
                {
                    // A sentinel announced a new master meanwhile: newer than this answer.
                    return Ok((m.generation, announced.clone()));
                }
                m.generation += 1;
                m.client = Some(client.clone());
                Ok((m.generation, client))
            })
            .await;
            found.unwrap_or_else(|_| {
                Err(RedisError::from(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the sentinels did not name a reachable master in time",
                )))
            })
        });
        lookup.await.unwrap_or_else(|e| {
            Err(RedisError::from(std::io::Error::other(format!(
                "sentinel lookup failed: {e}"
            ))))
        })
    }

    /// Whether a connection to the master that saw `e` should be dropped and the master
    /// looked up again.
    fn stale(e: &RedisError) -> bool {
        poisons(e) || is_readonly(e)
    }
}

/// Follows every sentinel's `+switch-master` channel (as Jedis does) while the handle lives,
/// and switches the handle to each new master of its name announced there. A sentinel that
/// cannot be reached is tried again every second.
async fn watch_switches(target: std::sync::Weak<SentinelTarget>) {
    let Some(t) = target.upgrade() else { return };
    let sentinels = t.sentinels.clone();
    drop(t);
    let watches = sentinels.into_iter().map(|sentinel| {
        let target = target.clone();
        async move {
            while target.strong_count() > 0 {
                watch_one(&target, &sentinel).await;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    });
    futures_util::future::join_all(watches).await;
}

/// One sentinel's `+switch-master` messages, until its connection drops or the handle goes.
async fn watch_one(target: &std::sync::Weak<SentinelTarget>, sentinel: &redis::Client) {
    use futures_util::StreamExt;
    let connect = async {
        let mut pubsub = sentinel.get_async_pubsub().await?;
        pubsub.subscribe("+switch-master").await?;
        Ok::<_, RedisError>(pubsub)
    };
    let Ok(Ok(pubsub)) = tokio::time::timeout(Duration::from_secs(5), connect).await else {
        return;
    };
    let mut messages = pubsub.into_on_message();
    loop {
        match tokio::time::timeout(Duration::from_secs(1), messages.next()).await {
            Err(_) if target.strong_count() == 0 => return,
            Err(_) => {}
            Ok(None) => return,
            Ok(Some(msg)) => {
                let Some(t) = target.upgrade() else { return };
                // "<name> <old ip> <old port> <new ip> <new port>"
                let payload: String = msg.get_payload().unwrap_or_default();
                let fields: Vec<&str> = payload.split_whitespace().collect();
                if let [name, _, _, host, port] = fields[..]
                    && name == t.name
                    && let Ok(port) = port.parse::<u16>()
                {
                    t.switch_to(host, port);
                }
            }
        }
    }
}

/// `READONLY`: the node is a replica (a demoted master, after a failover).
fn is_readonly(e: &RedisError) -> bool {
    e.code() == Some("READONLY")
        || e.detail()
            .is_some_and(|d| d.contains("READONLY You can't write"))
}

fn ensure_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err means the application already chose a provider, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// `url` with its password, if any, replaced by `***`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<unparseable URL>".to_owned();
    };
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:***@{host}{path}"),
                // A lone userinfo may be a password (some clients read it so): hide it.
                None => format!("{scheme}://***@{host}{path}"),
            }
        }
        None => format!("{scheme}://{authority}{path}"),
    }
}

/// Removes any password that appears in the given URLs from `text`.
fn scrub(text: &str, urls: &[String]) -> String {
    let mut out = text.to_owned();
    for url in urls {
        if let Some((_, rest)) = url.split_once("://") {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
            if let Some((userinfo, _)) = authority.rsplit_once('@') {
                let password = userinfo.split_once(':').map_or(userinfo, |(_, p)| p);
                if !password.is_empty() {
                    out = out.replace(password, "***");
                }
            }
        }
    }
    out
}

impl Redis {
    fn from_target(target: Target, shown: String, opts: Options) -> Redis {
        Redis {
            inner: Arc::new(Inner {
                target,
                shown,
                opts,
                idle: Mutex::new(Vec::new()),
                aio: Mutex::new(Vec::new()),
                aio_init: tokio::sync::Mutex::new(()),
                aio_attempts: std::sync::atomic::AtomicU64::new(0),
                aio_failure: Mutex::new(None),
                slot_owners: Mutex::new(None),
                nodes_aio: Mutex::new(Vec::new()),
                aio_used: Mutex::new(Vec::new()),
                shared: Mutex::new(SharedStates::new()),
            }),
        }
    }

    /// A handle on the server at `url` (no I/O until the first operation).
    ///
    /// ```
    /// let redis = pottery::Redis::from_url("redis://127.0.0.1:6379/0")?;
    /// # let _ = redis;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn from_url(url: &str) -> Result<Redis> {
        Redis::builder(url).build()
    }

    /// A handle on `$REDIS_URL`, or on `redis://127.0.0.1:6379/0` when it is unset, as Python
    /// pottery does.
    ///
    /// ```
    /// let redis = pottery::Redis::from_env()?;
    /// # let _ = redis;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn from_env() -> Result<Redis> {
        let url = std::env::var("REDIS_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
        Redis::from_url(&url)
    }

    /// Wraps a `redis::Client` you already configured.
    ///
    /// ```
    /// let client = redis::Client::open("redis://127.0.0.1/")?;
    /// let redis = pottery::Redis::from_client(client);
    /// # let _ = redis;
    /// # Ok::<(), redis::RedisError>(())
    /// ```
    pub fn from_client(client: redis::Client) -> Redis {
        let info = client.get_connection_info();
        let settings = info.redis_settings();
        let auth = match (settings.username(), settings.password()) {
            (Some(u), Some(_)) => format!("{u}:***@"),
            (None, Some(_)) => ":***@".to_owned(),
            (Some(u), None) => format!("{u}@"),
            (None, None) => String::new(),
        };
        let shown = match info.addr() {
            redis::ConnectionAddr::Tcp(host, port) => {
                format!("redis://{auth}{host}:{port}/{}", settings.db())
            }
            redis::ConnectionAddr::TcpTls { host, port, .. } => {
                format!("rediss://{auth}{host}:{port}/{}", settings.db())
            }
            redis::ConnectionAddr::Unix(path) => {
                format!("redis+unix://{auth}{}?db={}", path.display(), settings.db())
            }
            other => format!("{other}"),
        };
        Redis::from_target(Target::Single(client), shown, Options::default())
    }

    /// A handle on a Redis Cluster, given one or more of its nodes' URLs.
    ///
    /// ```
    /// let cluster = pottery::Redis::cluster(["redis://127.0.0.1:7000", "redis://127.0.0.1:7001"])?;
    /// assert!(cluster.is_cluster());
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn cluster<I, S>(nodes: I) -> Result<Redis>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Redis::cluster_builder(nodes).build()
    }

    /// Starts configuring a handle on one server.
    ///
    /// ```
    /// let redis = pottery::Redis::builder("redis://127.0.0.1").build()?;
    /// # let _ = redis;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn builder(url: &str) -> RedisBuilder {
        RedisBuilder {
            nodes: vec![url.to_owned()],
            kind: Kind::Single,
            opts: Options::default(),
            root_cert: None,
            client_cert: None,
            sentinel: SentinelOptions::default(),
        }
    }

    /// Starts configuring a handle on a Redis Cluster.
    ///
    /// ```
    /// let cluster = pottery::Redis::cluster_builder(["redis://127.0.0.1:7000"]).build()?;
    /// # let _ = cluster;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn cluster_builder<I, S>(nodes: I) -> RedisBuilder
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        RedisBuilder {
            nodes: nodes.into_iter().map(|n| n.as_ref().to_owned()).collect(),
            kind: Kind::Cluster,
            opts: Options::default(),
            root_cert: None,
            client_cert: None,
            sentinel: SentinelOptions::default(),
        }
    }

    /// A handle on the master that Redis Sentinel names `master_name`, given one or more
    /// sentinels' URLs (`redis://[user:password@]host:port`, `rediss://…` for TLS). No I/O
    /// until the first operation, which asks the sentinels (in order) for the master, checks
    /// with `ROLE` that it is one, and connects.
    ///
    /// After a failover the handle finds the new master by itself. It follows every
    /// sentinel's `+switch-master` announcements (a background task on pottery's runtime, one
    /// pub/sub connection per sentinel, ending soon after the last clone of the handle is
    /// dropped): when a new master is announced, idle connections to the old one are dropped
    /// and new ones go to the new master, even if the old master still runs. And a connection
    /// that fails or is answered `READONLY` (a demoted master) is dropped, and the next call
    /// asks the sentinels again. The calls made while the master is down fail (they are not
    /// retried).
    /// For passwords, a database, TLS to the master or timeouts, use
    /// [`Redis::sentinel_builder`].
    ///
    /// ```
    /// let redis = pottery::Redis::sentinel(
    ///     ["redis://127.0.0.1:26379", "redis://127.0.0.1:26380", "redis://127.0.0.1:26381"],
    ///     "mymaster",
    /// )?;
    /// assert!(redis.is_sentinel());
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn sentinel<I, S>(sentinels: I, master_name: &str) -> Result<Redis>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Redis::sentinel_builder(sentinels, master_name).build()
    }

    /// Starts configuring a Sentinel handle (see [`Redis::sentinel`]): credentials for the
    /// sentinels and for the master, the master's database and TLS, and the usual timeouts.
    /// Asking the sentinels for the master is bounded by the connection timeout, and so is
    /// connecting to it; a call that has to do both takes at most twice that plus its response
    /// timeout.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let redis = pottery::Redis::sentinel_builder(["redis://127.0.0.1:26379"], "mymaster")
    ///     .sentinel_password("sentinel-secret")
    ///     .master_user("app", "app-secret")
    ///     .db(2)
    ///     .connection_timeout(Duration::from_secs(1))
    ///     .build()?;
    /// assert_eq!(format!("{redis:?}"), "Redis(sentinel[redis://127.0.0.1:26379]/mymaster)");
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn sentinel_builder<I, S>(sentinels: I, master_name: &str) -> RedisBuilder
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        RedisBuilder {
            nodes: sentinels
                .into_iter()
                .map(|n| n.as_ref().to_owned())
                .collect(),
            kind: Kind::Sentinel(master_name.to_owned()),
            opts: Options::default(),
            root_cert: None,
            client_cert: None,
            sentinel: SentinelOptions::default(),
        }
    }

    /// Whether this handle finds its master through Redis Sentinel.
    ///
    /// ```
    /// assert!(!pottery::Redis::from_url("redis://127.0.0.1")?.is_sentinel());
    /// assert!(pottery::Redis::sentinel(["redis://127.0.0.1:26379"], "mymaster")?.is_sentinel());
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn is_sentinel(&self) -> bool {
        matches!(self.inner.target, Target::Sentinel(_))
    }

    /// Whether this handle talks to a Redis Cluster.
    ///
    /// ```
    /// assert!(!pottery::Redis::from_url("redis://127.0.0.1")?.is_cluster());
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn is_cluster(&self) -> bool {
        matches!(self.inner.target, Target::Cluster(..))
    }

    /// Whether two handles are the same handle (clones of one another).
    ///
    /// ```
    /// let a = pottery::Redis::from_url("redis://127.0.0.1")?;
    /// assert!(a.same_handle(&a.clone()));
    /// assert!(!a.same_handle(&pottery::Redis::from_url("redis://127.0.0.1")?));
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn same_handle(&self, other: &Redis) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Sends `PING` (one round trip): a way to check the server is there.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// redis.ping()?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn ping(&self) -> Result<()> {
        let mut conn = self.connection()?;
        redis::cmd("PING")
            .query::<Value>(&mut conn)
            .map(drop)
            .map_err(|source| Error::Redis { key: None, source })
    }

    /// Async [`Redis::ping`].
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// redis.ping_async().await?;
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    pub async fn ping_async(&self) -> Result<()> {
        let mut conn = self.async_connection().await?;
        redis::cmd("PING")
            .query_async::<Value>(&mut conn)
            .await
            .map(drop)
            .map_err(|source| Error::Redis { key: None, source })
    }

    /// Borrows a blocking connection from the pool, for commands pottery does not wrap. It goes
    /// back to the pool when dropped (unless it failed).
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// let mut conn = redis.connection()?;
    /// let _: () = redis::cmd("SET").arg("greeting").arg("hello").query(&mut conn)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn connection(&self) -> Result<PooledConnection> {
        let mut conn = self.pooled()?;
        conn.set_timeouts(self.inner.opts.response_timeout)?;
        Ok(conn)
    }

    /// A connection from the pool (or a new one), with whatever timeouts it has.
    fn pooled(&self) -> Result<PooledConnection> {
        let pooled = {
            let mut idle = self.inner.idle.lock().unwrap_or_else(|p| p.into_inner());
            if let Target::Sentinel(t) = &self.inner.target {
                // Connections to a master found by an earlier lookup: it may be a replica now.
                let generation = t.generation();
                idle.retain(|(c, _)| c.generation() == generation);
            }
            idle.pop()
        };
        let (conn, idle) = match pooled {
            Some((conn, since)) => (conn, since.elapsed()),
            None => (self.connect_sync()?, Duration::ZERO),
        };
        Ok(PooledConnection {
            conn: Some(conn),
            inner: Arc::clone(&self.inner),
            broken: false,
            idle,
        })
    }

    /// A pooled connection whose replies may take at most `timeout` (never more than the
    /// handle's response timeout). Its socket keeps these timeouts until a call wants others.
    pub(crate) fn connection_within(&self, timeout: Duration) -> Result<PooledConnection> {
        let mut conn = self.pooled()?;
        let t = Some(
            self.inner
                .opts
                .response_timeout
                .map_or(timeout, |r| r.min(timeout)),
        );
        conn.set_timeouts(t)?;
        Ok(conn)
    }

    fn connect_sync(&self) -> Result<SyncConn> {
        let opts = &self.inner.opts;
        let fail = |source: RedisError| Error::Redis { key: None, source };
        match &self.inner.target {
            Target::Single(client) => connect_single(client, opts, 0),
            Target::Cluster(client, _) => Ok(SyncConn::Cluster(Box::new(
                client.get_connection().map_err(fail)?,
            ))),
            Target::Sentinel(t) => {
                let (generation, client) =
                    crate::exec::rt::block_on(t.master(opts.connection_timeout)).map_err(fail)?;
                connect_single(&client, opts, generation).inspect_err(|_| t.forget(generation))
            }
        }
    }

    /// The shared async connection: multiplexed and reconnecting. Clone it freely.
    ///
    /// It is created on first use in each Tokio runtime (a connection's driver task lives on
    /// the runtime that made it), so one handle serves several runtimes one after another —
    /// `#[tokio::test]`s sharing a handle, say — without failing calls.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let mut conn = redis.async_connection().await?;
    /// let n: i64 = redis::cmd("INCR").arg("visits").query_async(&mut conn).await?;
    /// assert!(n >= 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
    /// ```
    pub async fn async_connection(&self) -> Result<AsyncConnection> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::Config {
                message: "async pottery calls need a Tokio runtime".into(),
            })?
            .id();
        if let Some(conn) = self.cached_async(runtime) {
            return Ok(conn);
        }
        // One connection per runtime, even when many tasks ask at once.
        let inner = &self.inner;
        let seen = inner.aio_attempts.load(Ordering::SeqCst);
        let _making = inner.aio_init.lock().await;
        if let Some(conn) = self.cached_async(runtime) {
            return Ok(conn);
        }
        // An attempt for this runtime failed while we queued behind it: share its error
        // instead of trying again. (Each attempt may take the whole connection timeout: a
        // hundred callers queued on an unresponsive server took a hundred timeouts, one
        // after another.)
        if let Some((rt, n, e)) = &*inner.aio_failure.lock().unwrap_or_else(|p| p.into_inner())
            && *rt == runtime
            && *n > seen
        {
            return Err(Error::Redis {
                key: None,
                source: e.clone(),
            });
        }
        let conn = match &inner.target {
            Target::Single(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(inner.opts.connection_timeout))
                    .set_response_timeout(inner.opts.response_timeout)
                    // One attempt per connect: retries would multiply the connection
                    // timeout a call can take. After a failure, the next call (or the
                    // manager's own reconnect) tries again.
                    .set_number_of_retries(0)
                    .set_min_delay(Duration::from_millis(50))
                    .set_max_delay(Duration::from_secs(1));
                ConnectionManager::new_with_config(client.clone(), config)
                    .await
                    .map(AsyncConn::Single)
            }
            Target::Cluster(client, _) => client
                .get_async_connection()
                .await
                .map(|c| AsyncConn::Cluster(Box::new(c))),
            Target::Sentinel(t) => connect_sentinel_async(t, &inner.opts).await,
        };
        let n = inner.aio_attempts.fetch_add(1, Ordering::SeqCst) + 1;
        let conn = conn.map_err(|source| {
            *inner.aio_failure.lock().unwrap_or_else(|p| p.into_inner()) =
                Some((runtime, n, source.clone()));
            Error::Redis { key: None, source }
        })?;
        let mut cache = inner.aio.lock().unwrap_or_else(|p| p.into_inner());
        cache.retain(|(id, _)| *id != runtime);
        if cache.len() >= MAX_RUNTIMES {
            cache.remove(0);
        }
        cache.push((runtime, conn.clone()));
        Ok(AsyncConnection(conn))
    }

    fn cached_async(&self, runtime: tokio::runtime::Id) -> Option<AsyncConnection> {
        let mut cache = self.inner.aio.lock().unwrap_or_else(|p| p.into_inner());
        if let Target::Sentinel(t) = &self.inner.target {
            // A Sentinel handle's connection that failed, or that goes to a master an earlier
            // lookup found, is replaced: the next one goes to the master the sentinels name.
            let generation = t.generation();
            cache.retain(|(_, conn)| match conn {
                AsyncConn::Sentinel(c) => {
                    !c.watch.dead.load(Ordering::Relaxed) && c.watch.generation == generation
                }
                _ => true,
            });
        }
        cache
            .iter()
            .find(|(id, _)| *id == runtime)
            .map(|(_, conn)| AsyncConnection(conn.clone()))
    }

    /// Drops this runtime's async cluster connection (no-op for other handles): after a
    /// redirect or a dead node the next call makes a new one, which reads the slots anew.
    /// On a cluster, which master owns each slot (read once with `CLUSTER SLOTS`, then kept
    /// until [`forget_slot_owners`](Self::forget_slot_owners)); `None` elsewhere, or when
    /// the map cannot be read (a batch then sends one pipeline per slot).
    pub(crate) async fn slot_owners(&self) -> Option<Arc<SlotOwners>> {
        if !self.is_cluster() {
            return None;
        }
        let known = self
            .inner
            .slot_owners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if known.is_some() {
            return known;
        }
        let mut conn = self.async_connection().await.ok()?;
        let owners = Arc::new(SlotOwners::parse(&conn.cluster_slots().await.ok()?)?);
        *self
            .inner
            .slot_owners
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(Arc::clone(&owners));
        Some(owners)
    }

    /// A direct connection to the cluster node at `addr` (`host:port`, as `CLUSTER SLOTS`
    /// names it), with the handle's credentials, TLS and timeouts: a batch sends a master's
    /// pipeline on it, and sees each reply as it is (redis-rs's cluster connection turns a
    /// pipeline with one `MOVED` in it into one error, losing the other replies).
    pub(crate) async fn node_connection(
        &self,
        addr: &str,
    ) -> RedisResult<redis::aio::MultiplexedConnection> {
        let Target::Cluster(_, template) = &self.inner.target else {
            return Err(RedisError::from((
                redis::ErrorKind::Client,
                "not a cluster handle",
            )));
        };
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| RedisError::from((redis::ErrorKind::Client, "no Tokio runtime")))?
            .id();
        if let Some((_, _, conn)) = self
            .inner
            .nodes_aio
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(rt, a, _)| *rt == runtime && a == addr)
        {
            return Ok(conn.clone());
        }
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.inner.opts.connection_timeout))
            .set_response_timeout(self.inner.opts.response_timeout);
        let conn = template
            .client(addr)?
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let mut cache = self
            .inner
            .nodes_aio
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        cache.retain(|(rt, a, _)| !(*rt == runtime && a == addr));
        if cache.len() >= MAX_RUNTIMES * 4 {
            cache.remove(0);
        }
        cache.push((runtime, addr.to_owned(), conn.clone()));
        Ok(conn)
    }

    /// A new blocking connection to the cluster node at `addr` (`host:port`), with the
    /// handle's credentials, TLS, protocol and timeouts (replies bounded by `timeout` when
    /// given): for the rare request that must go to one node, such as one an `ASK` redirect
    /// sends to the importing master.
    pub(crate) fn node_blocking_connection(
        &self,
        addr: &str,
        timeout: Option<Duration>,
    ) -> RedisResult<redis::Connection> {
        let Target::Cluster(_, template) = &self.inner.target else {
            return Err(RedisError::from((
                redis::ErrorKind::Client,
                "not a cluster handle",
            )));
        };
        let conn = template
            .client(addr)?
            .get_connection_with_timeout(self.inner.opts.connection_timeout)?;
        let replies = timeout.or(self.inner.opts.response_timeout);
        conn.set_read_timeout(replies)?;
        conn.set_write_timeout(replies)?;
        Ok(conn)
    }

    /// Drops the direct connection to `addr` (after it failed) for this runtime.
    pub(crate) fn forget_node_connection(&self, addr: &str) {
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let runtime = handle.id();
            self.inner
                .nodes_aio
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .retain(|(rt, a, _)| !(*rt == runtime && a == addr));
        }
    }

    /// Drops the slot map: the next batch reads it anew.
    pub(crate) fn forget_slot_owners(&self) {
        *self
            .inner
            .slot_owners
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Notes a use of this runtime's async connection (`None`) or direct connection to the
    /// cluster master at `addr`; returns whether it had been idle for [`IDLE_CHECK`] or more.
    pub(crate) fn async_used(&self, addr: Option<&str>) -> bool {
        let Ok(runtime) = tokio::runtime::Handle::try_current().map(|h| h.id()) else {
            return false;
        };
        let now = Instant::now();
        let mut used = self
            .inner
            .aio_used
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match used
            .iter_mut()
            .find(|(r, a, _)| *r == runtime && a.as_deref() == addr)
        {
            Some((_, _, last)) => {
                let idle = now.duration_since(*last) >= IDLE_CHECK;
                *last = now;
                idle
            }
            None => {
                if used.len() >= MAX_RUNTIMES * 8 {
                    used.remove(0);
                }
                used.push((runtime, addr.map(str::to_owned), now));
                false
            }
        }
    }

    pub(crate) fn forget_async_cluster_connection(&self) {
        if !matches!(self.inner.target, Target::Cluster(..)) {
            return;
        }
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let runtime = handle.id();
            let mut cache = self.inner.aio.lock().unwrap_or_else(|p| p.into_inner());
            cache.retain(|(id, _)| *id != runtime);
        }
    }

    /// A new pub/sub connection to this server (`None` for a cluster handle, whose
    /// notifications pottery does not follow).
    pub(crate) async fn pubsub_async(&self) -> Option<RedisResult<redis::aio::PubSub>> {
        match &self.inner.target {
            Target::Single(client) => Some(client.get_async_pubsub().await),
            Target::Cluster(..) => None,
            Target::Sentinel(t) => Some(match t.master(self.inner.opts.connection_timeout).await {
                Ok((_, client)) => client.get_async_pubsub().await,
                Err(e) => Err(e),
            }),
        }
    }

    pub(crate) fn shown(&self) -> &str {
        &self.inner.shown
    }

    /// The state of type `T` named `name` that this handle (and its clones) keeps for values
    /// made afresh from it — a cache that `#[redis_cache]` builds on every call finds its
    /// circuit breaker and counters here. Made with `T::default()` the first time. Past
    /// [`SHARED_STATES_KEPT`] names, states that nobody else holds are forgotten (they start
    /// afresh when asked for again).
    pub(crate) fn shared_state<T>(&self, name: &str) -> Arc<T>
    where
        T: std::any::Any + Default + Send + Sync,
    {
        let mut states = self.inner.shared.lock().unwrap_or_else(|p| p.into_inner());
        let id = (std::any::TypeId::of::<T>(), name.to_owned());
        if let Some(state) = states
            .get(&id)
            .and_then(|s| Arc::clone(s).downcast::<T>().ok())
        {
            return state;
        }
        if states.len() >= SHARED_STATES_KEPT {
            states.retain(|_, state| Arc::strong_count(state) > 1);
        }
        let state = Arc::new(T::default());
        states.insert(
            id,
            Arc::clone(&state) as Arc<dyn std::any::Any + Send + Sync>,
        );
        state
    }

    /// How long operations keep retrying (see [`RedisBuilder::retry_timeout`]).
    pub(crate) fn retry_timeout(&self) -> Duration {
        self.inner.opts.retry_timeout
    }

    /// Replicas every write waits for, and for how long (see
    /// [`RedisBuilder::durable_writes`]).
    pub(crate) fn durable(&self) -> Option<(usize, Duration)> {
        self.inner.opts.durable
    }
}

impl fmt::Debug for Redis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redis({})", self.inner.shown)
    }
}

/// A blocking connection to one server, its handshake within the connection timeout.
fn connect_single(client: &redis::Client, opts: &Options, generation: u64) -> Result<SyncConn> {
    let fail = |source: RedisError| Error::Redis { key: None, source };
    // redis-rs bounds the TCP connect and then *each* reply of the handshake pipeline by the
    // connection timeout, so a server that accepts and never answers would take it once per
    // handshake command. Leave out the cosmetic `CLIENT SETINFO` pair (two replies) and split
    // the timeout between the commands that remain (`AUTH`/`HELLO`, `SELECT`), so connecting
    // takes at most the connection timeout in all.
    let info = client.get_connection_info().clone();
    let settings = info.redis_settings().clone().set_skip_set_lib_name();
    let handshake = u32::from(
        settings.password().is_some() || settings.protocol() != redis::ProtocolVersion::RESP2,
    ) + u32::from(settings.db() != 0);
    let per_step = opts.connection_timeout / handshake.max(1);
    let conn = redis::Client::open(info.set_redis_settings(settings))
        .and_then(|c| c.get_connection_with_timeout(per_step))
        .map_err(|e| {
            fail(name_timeout(
                e,
                Some(per_step),
                "connecting (with its handshake) took too long: no reply",
            ))
        })?;
    conn.set_read_timeout(opts.response_timeout).map_err(fail)?;
    conn.set_write_timeout(opts.response_timeout)
        .map_err(fail)?;
    Ok(SyncConn::Single(conn, opts.response_timeout, generation))
}

enum SyncConn {
    /// A connection, the read/write timeout its socket has now, and (for a Sentinel handle)
    /// the lookup that found its server.
    Single(redis::Connection, Option<Duration>, u64),
    Cluster(Box<redis::cluster::ClusterConnection>),
}

impl SyncConn {
    fn as_dyn(&mut self) -> &mut dyn ConnectionLike {
        match self {
            SyncConn::Single(c, _, _) => c,
            SyncConn::Cluster(c) => c.as_mut(),
        }
    }
    fn is_open(&self) -> bool {
        match self {
            SyncConn::Single(c, _, _) => c.is_open(),
            SyncConn::Cluster(c) => c.is_open(),
        }
    }
    fn generation(&self) -> u64 {
        match self {
            SyncConn::Single(_, _, generation) => *generation,
            SyncConn::Cluster(_) => 0,
        }
    }
}

/// A blocking connection borrowed from a [`Redis`] handle's pool; implements
/// `redis::ConnectionLike`, so redis-rs commands run on it. Returned to the pool on drop.
///
/// ```
/// # let redis = pottery::testing::doctest_redis();
/// use redis::Commands;
/// let mut conn = redis.connection()?;
/// conn.set::<_, _, ()>("answer", 42)?;
/// assert_eq!(conn.get::<_, i64>("answer")?, 42);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct PooledConnection {
    conn: Option<SyncConn>,
    inner: Arc<Inner>,
    broken: bool,
    /// How long it sat in the pool before this use (zero for a new connection).
    idle: Duration,
}

impl fmt::Debug for PooledConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PooledConnection({})", self.inner.shown)
    }
}

/// A blocking socket read or write that ran into its timeout fails with `WouldBlock`, which
/// reads "Resource temporarily unavailable (os error 11)": say what happened instead (still an
/// I/O timeout error, so `is_timeout` and `is_io_error` hold).
fn name_timeout(e: RedisError, waited: Option<Duration>, what: &str) -> RedisError {
    use std::error::Error as _;
    type Shared = Arc<dyn std::error::Error + Send + Sync>;
    let would_block = e
        .source()
        .and_then(|s| {
            s.downcast_ref::<std::io::Error>().or_else(|| {
                s.downcast_ref::<Shared>()
                    .and_then(|a| a.downcast_ref::<std::io::Error>())
            })
        })
        .is_some_and(|io| io.kind() == std::io::ErrorKind::WouldBlock);
    if !would_block {
        return e;
    }
    let message = match waited {
        Some(t) => format!("timed out: {what} within {t:?}"),
        None => format!("timed out: {what}"),
    };
    RedisError::from(std::io::Error::new(std::io::ErrorKind::TimedOut, message))
}

/// How long a pooled blocking connection may sit idle before a write that must not repeat is
/// sent on it without first checking it with a `PING` (one more round trip, only then): a
/// server's `timeout`, a proxy or a restart may have closed it meanwhile, and a write sent on
/// a dead connection has an unknown outcome ([`Error::MaybeApplied`](crate::Error::MaybeApplied))
/// though it never left.
pub(crate) const IDLE_CHECK: Duration = Duration::from_secs(1);

/// Whether a connection that saw this error must not be reused: the socket is gone, or a
/// reply may still be in flight after a timeout.
pub(crate) fn poisons(e: &RedisError) -> bool {
    use redis::{ErrorKind, ServerErrorKind};
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_unrecoverable_error()
        // A cluster connection with a stale slot map: the next one reads the slots anew.
        || matches!(
            e.kind(),
            ErrorKind::ClusterConnectionNotFound
                | ErrorKind::Server(
                    ServerErrorKind::Moved
                        | ServerErrorKind::Ask
                        | ServerErrorKind::TryAgain
                        | ServerErrorKind::ClusterDown
                        | ServerErrorKind::MasterDown
                        | ServerErrorKind::ReadOnly
                )
        )
}

impl PooledConnection {
    fn conn(&mut self) -> &mut dyn ConnectionLike {
        // Present from construction until drop.
        match self.conn.as_mut() {
            Some(c) => c.as_dyn(),
            None => unreachable!("PooledConnection used after drop"),
        }
    }

    /// Whether the connection may have died while it sat idle in the pool (closed by the
    /// server's `timeout`, a proxy, a restart): idle for [`IDLE_CHECK`] or more, and then not
    /// answering a `PING`. Such a connection is dropped, with the rest of the pool.
    pub(crate) fn died_while_idle(&mut self) -> bool {
        self.idle >= IDLE_CHECK && !self.conn().check_connection() && {
            self.broken = true;
            true
        }
    }

    /// Gives the socket these read/write timeouts, unless it has them already (a pooled
    /// connection keeps the last ones set: no system call when they do not change).
    fn set_timeouts(&mut self, t: Option<Duration>) -> Result<()> {
        if let Some(SyncConn::Single(c, current, _)) = &mut self.conn
            && *current != t
        {
            let set = c.set_read_timeout(t).and_then(|()| c.set_write_timeout(t));
            if let Err(source) = set {
                self.broken = true;
                return Err(Error::Redis { key: None, source });
            }
            *current = t;
        }
        Ok(())
    }

    /// `WAIT replicas timeout` on this connection, on a cluster at the master of `key`'s slot
    /// (where the write before it went).
    pub(crate) fn wait_for_replicas(
        &mut self,
        key: &str,
        replicas: usize,
        timeout: Duration,
    ) -> RedisResult<Value> {
        let wait = crate::exec::plan::wait_command(replicas, timeout);
        let r = match self.conn.as_mut() {
            Some(SyncConn::Cluster(c)) => {
                use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
                let route = Route::with_key(key.as_bytes(), SlotAddr::Master);
                c.route_command(
                    &wait,
                    RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route)),
                )
            }
            _ => wait.query(self),
        };
        self.note(r)
    }

    fn note<T>(&mut self, r: RedisResult<T>) -> RedisResult<T> {
        if let Err(e) = &r {
            if let Target::Sentinel(t) = &self.inner.target {
                if SentinelTarget::stale(e) {
                    self.broken = true;
                    if let Some(c) = &self.conn {
                        t.forget(c.generation());
                    }
                }
            } else if poisons(e) {
                self.broken = true;
            }
        }
        let waited = match &self.conn {
            Some(SyncConn::Single(_, t, _)) => *t,
            _ => None,
        };
        r.map_err(|e| name_timeout(e, waited, "no reply"))
    }
}

impl ConnectionLike for PooledConnection {
    fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<Value> {
        let r = self.conn().req_packed_command(cmd);
        self.note(r)
    }
    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        let r = self.conn().req_packed_commands(cmd, offset, count);
        self.note(r)
    }
    fn req_command(&mut self, cmd: &redis::Cmd) -> RedisResult<Value> {
        let r = self.conn().req_command(cmd);
        self.note(r)
    }
    fn get_db(&self) -> i64 {
        match &self.conn {
            Some(SyncConn::Single(c, _, _)) => c.get_db(),
            Some(SyncConn::Cluster(c)) => c.get_db(),
            None => 0,
        }
    }
    fn supports_pipelining(&self) -> bool {
        match &self.conn {
            Some(SyncConn::Single(c, _, _)) => c.supports_pipelining(),
            Some(SyncConn::Cluster(c)) => c.supports_pipelining(),
            None => false,
        }
    }
    fn check_connection(&mut self) -> bool {
        let ok = self.conn().check_connection();
        self.broken |= !ok;
        ok
    }
    fn is_open(&self) -> bool {
        self.conn.as_ref().is_some_and(SyncConn::is_open)
    }
}

impl Drop for PooledConnection {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        let mut idle = self.inner.idle.lock().unwrap_or_else(|p| p.into_inner());
        if self.broken || !conn.is_open() {
            // The server went away or the socket is in an unknown state: the idle
            // connections are most likely dead too, so start afresh next time.
            idle.clear();
        } else if idle.len() < self.inner.opts.max_idle {
            idle.push((conn, Instant::now()));
        }
    }
}

#[derive(Clone)]
enum AsyncConn {
    Single(ConnectionManager),
    Cluster(Box<redis::cluster_async::ClusterConnection>),
    Sentinel(SentinelConn),
}

/// A multiplexed connection to the master a Sentinel lookup found. It does not reconnect by
/// itself (it would reconnect to the same, maybe demoted, node): once a call on it fails or
/// is answered `READONLY`, it is marked dead, the master is forgotten, and the handle makes a
/// new connection to the master the sentinels name next.
#[derive(Clone)]
struct SentinelConn {
    conn: MultiplexedConnection,
    watch: Arc<ConnWatch>,
}

struct ConnWatch {
    dead: AtomicBool,
    generation: u64,
    target: Arc<SentinelTarget>,
}

impl ConnWatch {
    fn saw<T>(&self, r: &RedisResult<T>) {
        if let Err(e) = r
            && SentinelTarget::stale(e)
        {
            self.dead.store(true, Ordering::Relaxed);
            self.target.forget(self.generation);
        }
    }
}

/// A new async connection to the master of a Sentinel handle.
async fn connect_sentinel_async(
    target: &Arc<SentinelTarget>,
    opts: &Options,
) -> RedisResult<AsyncConn> {
    let (generation, client) = target.master(opts.connection_timeout).await?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(opts.connection_timeout))
        .set_response_timeout(opts.response_timeout);
    match client
        .get_multiplexed_async_connection_with_config(&config)
        .await
    {
        Ok(conn) => Ok(AsyncConn::Sentinel(SentinelConn {
            conn,
            watch: Arc::new(ConnWatch {
                dead: AtomicBool::new(false),
                generation,
                target: Arc::clone(target),
            }),
        })),
        Err(e) => {
            target.forget(generation);
            Err(e)
        }
    }
}

/// The async connection of a [`Redis`] handle (multiplexed, reconnecting); implements
/// `redis::aio::ConnectionLike`. Cheap to clone.
///
/// ```
/// # let redis = pottery::testing::doctest_redis();
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use redis::AsyncCommands;
/// let mut conn = redis.async_connection().await?;
/// conn.set::<_, _, ()>("answer", 42).await?;
/// assert_eq!(conn.get::<_, i64>("answer").await?, 42);
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct AsyncConnection(AsyncConn);

impl fmt::Debug for AsyncConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            AsyncConn::Single(_) => "AsyncConnection(single)",
            AsyncConn::Cluster(_) => "AsyncConnection(cluster)",
            AsyncConn::Sentinel(_) => "AsyncConnection(sentinel)",
        })
    }
}

impl AsyncConnection {
    /// `CLUSTER SLOTS`, from any node of a cluster.
    async fn cluster_slots(&mut self) -> RedisResult<Value> {
        match &mut self.0 {
            AsyncConn::Cluster(c) => {
                use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
                let mut cmd = redis::cmd("CLUSTER");
                cmd.arg("SLOTS");
                c.route_command(cmd, RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random))
                    .await
            }
            _ => Err(RedisError::from((
                redis::ErrorKind::Client,
                "not a cluster connection",
            ))),
        }
    }

    /// Sends a pipeline and returns its `count` replies, server errors among them as values
    /// (a batch's). On a cluster it goes to the master of `slot`: every command of the
    /// pipeline must be in that slot.
    pub(crate) async fn send_pipeline(
        &mut self,
        pipe: &redis::Pipeline,
        count: usize,
        slot: Option<u16>,
    ) -> RedisResult<Vec<Value>> {
        match (&mut self.0, slot) {
            (AsyncConn::Cluster(c), Some(slot)) => {
                use redis::cluster_routing::{Route, SingleNodeRoutingInfo, SlotAddr};
                let route = SingleNodeRoutingInfo::SpecificNode(Route::new(slot, SlotAddr::Master));
                c.route_pipeline(pipe.clone(), 0, count, route).await
            }
            _ => redis::aio::ConnectionLike::req_packed_commands(self, pipe, 0, count).await,
        }
    }
}

impl redis::aio::ConnectionLike for AsyncConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> RedisFuture<'a, Value> {
        match &mut self.0 {
            AsyncConn::Single(c) => c.req_packed_command(cmd),
            AsyncConn::Cluster(c) => c.req_packed_command(cmd),
            AsyncConn::Sentinel(c) => {
                let watch = Arc::clone(&c.watch);
                let reply = c.conn.req_packed_command(cmd);
                Box::pin(async move {
                    let r = reply.await;
                    watch.saw(&r);
                    r
                })
            }
        }
    }
    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.0 {
            AsyncConn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            AsyncConn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
            AsyncConn::Sentinel(c) => {
                let watch = Arc::clone(&c.watch);
                let reply = c.conn.req_packed_commands(pipeline, offset, count);
                Box::pin(async move {
                    let r = reply.await;
                    watch.saw(&r);
                    r
                })
            }
        }
    }
    fn get_db(&self) -> i64 {
        match &self.0 {
            AsyncConn::Single(c) => c.get_db(),
            AsyncConn::Cluster(c) => c.get_db(),
            AsyncConn::Sentinel(c) => c.conn.get_db(),
        }
    }
}

static DEFAULT: SyncOnceCell<Redis> = SyncOnceCell::new();

/// The process-wide default handle: the one given to [`set_default_redis`], or else
/// [`Redis::from_env`] (`$REDIS_URL`), made on first use. The macros use it when they are not
/// given a handle.
///
/// ```
/// let redis = pottery::default_redis()?;
/// assert!(redis.same_handle(&pottery::default_redis()?));
/// # Ok::<(), pottery::Error>(())
/// ```
pub fn default_redis() -> Result<Redis> {
    DEFAULT.get_or_try_init(Redis::from_env).cloned()
}

/// Sets the process-wide default handle. It can be set once, before [`default_redis`] is first
/// called; otherwise the handle is given back as `Err`.
///
/// ```
/// let mine = pottery::Redis::from_url("redis://127.0.0.1:6379/3")?;
/// match pottery::set_default_redis(mine) {
///     Ok(()) => assert!(format!("{:?}", pottery::default_redis()?).ends_with("/3)")),
///     Err(_already_set) => {}
/// }
/// # Ok::<(), pottery::Error>(())
/// ```
pub fn set_default_redis(redis: Redis) -> std::result::Result<(), Redis> {
    DEFAULT.set(redis)
}

#[cfg(test)]
mod tests {
    use super::{SHARED_STATES_KEPT, redact, scrub};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// One state per type and name, shared by clones of the handle; past the limit, only
    /// states nobody holds are forgotten.
    #[test]
    fn shared_states_per_name_and_type() {
        let redis = super::Redis::from_url("redis://127.0.0.1:1").unwrap();
        let a = redis.shared_state::<AtomicU64>("a");
        a.store(7, Ordering::Relaxed);
        let again = redis.clone().shared_state::<AtomicU64>("a");
        assert!(Arc::ptr_eq(&a, &again));
        assert_eq!(
            redis.shared_state::<AtomicU64>("b").load(Ordering::Relaxed),
            0
        );
        assert_eq!(
            redis
                .shared_state::<std::sync::Mutex<u8>>("a")
                .lock()
                .map(|g| *g)
                .ok(),
            Some(0)
        );
        for n in 0..SHARED_STATES_KEPT * 2 {
            redis.shared_state::<AtomicU64>(&n.to_string());
        }
        assert!(
            Arc::ptr_eq(&a, &redis.shared_state::<AtomicU64>("a")),
            "held: kept"
        );
        let other = super::Redis::from_url("redis://127.0.0.1:1").unwrap();
        assert!(
            !Arc::ptr_eq(&a, &other.shared_state::<AtomicU64>("a")),
            "per handle"
        );
    }

    #[test]
    fn a_read_timeout_says_so() {
        let eagain = redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::WouldBlock));
        let named = super::name_timeout(
            eagain,
            Some(std::time::Duration::from_millis(400)),
            "no reply",
        );
        assert_eq!(named.to_string(), "timed out: no reply within 400ms");
        assert!(named.is_timeout() && named.is_io_error());
        let other =
            redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        let kept = super::name_timeout(other, None, "no reply");
        assert!(kept.is_connection_refusal());
    }

    #[test]
    fn redaction() {
        assert_eq!(
            redact("redis://127.0.0.1:6379/0"),
            "redis://127.0.0.1:6379/0"
        );
        assert_eq!(redact("redis://:pw@h:1/2"), "redis://:***@h:1/2");
        assert_eq!(redact("rediss://u:p@w@h"), "rediss://u:***@h");
        assert_eq!(redact("redis://u@h"), "redis://***@h");
        assert_eq!(redact("garbage"), "<unparseable URL>");
        assert_eq!(
            scrub("bad redis://u:hunter2@h", &["redis://u:hunter2@h".into()]),
            "bad redis://u:***@h"
        );
    }
}
