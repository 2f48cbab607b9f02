//! The `Redis` handle: where pottery's structures live, and the connections that reach it.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use once_cell::sync::OnceCell as SyncOnceCell;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::{ConnectionLike, RedisError, RedisFuture, RedisResult, Value};

use crate::error::{Error, Result};

/// The default `REDIS_URL`, as in Python pottery.
pub const DEFAULT_URL: &str = "redis://127.0.0.1:6379/0";

/// A handle on one Redis server or one Redis Cluster.
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
    idle: Mutex<Vec<SyncConn>>,
    /// One async connection per Tokio runtime: a connection's driver task lives on the runtime
    /// that made it, and dies with it.
    aio: Mutex<Vec<(tokio::runtime::Id, AsyncConn)>>,
    aio_init: tokio::sync::Mutex<()>,
    /// Async connection attempts finished so far, and the last one's failure (with its
    /// runtime and number), which callers that queued behind that attempt share.
    aio_attempts: std::sync::atomic::AtomicU64,
    aio_failure: Mutex<Option<(tokio::runtime::Id, u64, RedisError)>>,
}

/// How many runtimes' async connections a handle keeps (the oldest goes first).
const MAX_RUNTIMES: usize = 64;

// One per handle, behind an Arc: the size difference does not matter.
#[allow(clippy::large_enum_variant)]
enum Target {
    Single(redis::Client),
    Cluster(ClusterClient),
}

#[derive(Clone, Debug)]
struct Options {
    connection_timeout: Duration,
    response_timeout: Option<Duration>,
    max_idle: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            connection_timeout: Duration::from_secs(5),
            response_timeout: Some(Duration::from_secs(10)),
            max_idle: 16,
        }
    }
}

/// Configures a [`Redis`] handle: timeouts, pool size and TLS material.
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
    cluster: bool,
    opts: Options,
    root_cert: Option<Vec<u8>>,
    client_cert: Option<(Vec<u8>, Vec<u8>)>,
}

impl fmt::Debug for RedisBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBuilder")
            .field(
                "nodes",
                &self.nodes.iter().map(|n| redact(n)).collect::<Vec<_>>(),
            )
            .field("cluster", &self.cluster)
            .field("options", &self.opts)
            .field("root_cert", &self.root_cert.is_some())
            .field("client_cert", &self.client_cert.is_some())
            .finish()
    }
}

impl RedisBuilder {
    /// How long connecting may take, handshake (TLS, `AUTH`, `SELECT`) included (default 5 s).
    /// A call that has to connect first takes at most this plus its response timeout. Zero is
    /// refused by [`build`](Self::build) with [`Error::Config`]. (A blocking call on a
    /// cluster with an unresponsive node may take about twice that: it reconnects to every
    /// node and retries once, which is how MOVED and ASK redirects are followed.)
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

    /// Builds the handle. No I/O happens here; a bad URL or a zero timeout is an
    /// [`Error::Config`].
    ///
    /// ```
    /// # use std::time::Duration;
    /// assert!(pottery::Redis::builder("nonsense://x").build().is_err());
    /// let zero = pottery::Redis::builder("redis://127.0.0.1").connection_timeout(Duration::ZERO);
    /// assert!(matches!(zero.build(), Err(pottery::Error::Config { .. })));
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
        ensure_crypto_provider();
        let shown = if self.cluster {
            format!(
                "cluster[{}]",
                self.nodes
                    .iter()
                    .map(|n| redact(n))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            redact(self.nodes.first().map(String::as_str).unwrap_or(""))
        };
        let config_error = |e: RedisError| Error::Config {
            message: format!("{shown}: {}", scrub(&e.to_string(), &self.nodes)),
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
        let target = if self.cluster {
            if self.nodes.is_empty() {
                return Err(Error::Config {
                    message: "a cluster needs at least one node URL".into(),
                });
            }
            // redis-rs retries a cluster command 16 times by default, with waits growing to
            // minutes: a call to a paused node took 8.7 s (each retry waiting the response
            // timeout again) and the next one slept for many minutes. One retry keeps MOVED and
            // ASK redirects working; short waits keep the call within its timeouts.
            // Each node's handshake waits for two `CLIENT SETINFO` replies (and `AUTH`'s with
            // a password), each bounded by the connection timeout: split it between them.
            let auth = self.nodes.iter().any(|n| {
                redis::IntoConnectionInfo::into_connection_info(n.as_str())
                    .is_ok_and(|i| i.redis_settings().password().is_some())
            });
            let per_step = self.opts.connection_timeout / (2 + u32::from(auth));
            let mut b = ClusterClientBuilder::new(self.nodes.iter().map(String::as_str))
                .connection_timeout(per_step)
                .retries(1)
                .min_retry_wait(10)
                .max_retry_wait(100);
            if let Some(t) = self.opts.response_timeout {
                b = b.response_timeout(t);
            }
            if let Some(certs) = certs {
                b = b.certs(certs);
            }
            Target::Cluster(b.build().map_err(config_error)?)
        } else {
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
        };
        Ok(Redis::from_target(target, shown, self.opts))
    }
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
            cluster: false,
            opts: Options::default(),
            root_cert: None,
            client_cert: None,
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
            cluster: true,
            opts: Options::default(),
            root_cert: None,
            client_cert: None,
        }
    }

    /// Whether this handle talks to a Redis Cluster.
    ///
    /// ```
    /// assert!(!pottery::Redis::from_url("redis://127.0.0.1")?.is_cluster());
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn is_cluster(&self) -> bool {
        matches!(self.inner.target, Target::Cluster(_))
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
        let pooled = self
            .inner
            .idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => self.connect_sync()?,
        };
        Ok(PooledConnection {
            conn: Some(conn),
            inner: Arc::clone(&self.inner),
            broken: false,
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
            Target::Single(client) => {
                // redis-rs bounds the TCP connect and then *each* reply of the handshake
                // pipeline by the connection timeout, so a server that accepts and never
                // answers would take it once per handshake command. Leave out the cosmetic
                // `CLIENT SETINFO` pair (two replies) and split the timeout between the
                // commands that remain (`AUTH`/`HELLO`, `SELECT`), so connecting takes at most
                // the connection timeout in all.
                let info = client.get_connection_info().clone();
                let settings = info.redis_settings().clone().set_skip_set_lib_name();
                let handshake = u32::from(
                    settings.password().is_some()
                        || settings.protocol() != redis::ProtocolVersion::RESP2,
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
                Ok(SyncConn::Single(conn, opts.response_timeout))
            }
            Target::Cluster(client) => Ok(SyncConn::Cluster(Box::new(
                client.get_connection().map_err(fail)?,
            ))),
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
            Target::Cluster(client) => client
                .get_async_connection()
                .await
                .map(|c| AsyncConn::Cluster(Box::new(c))),
        };
        let n = inner.aio_attempts.fetch_add(1, Ordering::SeqCst) + 1;
        let conn = conn.map_err(|source| {
            *inner.aio_failure.lock().unwrap_or_else(|p| p.into_inner()) =
                Some((runtime, n, source.clone()));
            Error::Redis { key: None, source }
        })?;
        let mut cache = inner.aio.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_RUNTIMES {
            cache.remove(0);
        }
        cache.push((runtime, conn.clone()));
        Ok(AsyncConnection(conn))
    }

    fn cached_async(&self, runtime: tokio::runtime::Id) -> Option<AsyncConnection> {
        let cache = self.inner.aio.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .iter()
            .find(|(id, _)| *id == runtime)
            .map(|(_, conn)| AsyncConnection(conn.clone()))
    }

    /// A new pub/sub connection to this server (`None` for a cluster handle, whose
    /// notifications pottery does not follow).
    pub(crate) async fn pubsub_async(&self) -> Option<RedisResult<redis::aio::PubSub>> {
        match &self.inner.target {
            Target::Single(client) => Some(client.get_async_pubsub().await),
            Target::Cluster(_) => None,
        }
    }

    pub(crate) fn shown(&self) -> &str {
        &self.inner.shown
    }
}

impl fmt::Debug for Redis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redis({})", self.inner.shown)
    }
}

enum SyncConn {
    /// A connection and the read/write timeout its socket has now.
    Single(redis::Connection, Option<Duration>),
    Cluster(Box<redis::cluster::ClusterConnection>),
}

impl SyncConn {
    fn as_dyn(&mut self) -> &mut dyn ConnectionLike {
        match self {
            SyncConn::Single(c, _) => c,
            SyncConn::Cluster(c) => c.as_mut(),
        }
    }
    fn is_open(&self) -> bool {
        match self {
            SyncConn::Single(c, _) => c.is_open(),
            SyncConn::Cluster(c) => c.is_open(),
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

/// Whether a connection that saw this error must not be reused: the socket is gone, or a
/// reply may still be in flight after a timeout.
fn poisons(e: &RedisError) -> bool {
    e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_unrecoverable_error()
}

impl PooledConnection {
    fn conn(&mut self) -> &mut dyn ConnectionLike {
        // Present from construction until drop.
        match self.conn.as_mut() {
            Some(c) => c.as_dyn(),
            None => unreachable!("PooledConnection used after drop"),
        }
    }

    /// Gives the socket these read/write timeouts, unless it has them already (a pooled
    /// connection keeps the last ones set: no system call when they do not change).
    fn set_timeouts(&mut self, t: Option<Duration>) -> Result<()> {
        if let Some(SyncConn::Single(c, current)) = &mut self.conn
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

    fn note<T>(&mut self, r: RedisResult<T>) -> RedisResult<T> {
        if let Err(e) = &r
            && poisons(e)
        {
            self.broken = true;
        }
        let waited = match &self.conn {
            Some(SyncConn::Single(_, t)) => *t,
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
            Some(SyncConn::Single(c, _)) => c.get_db(),
            Some(SyncConn::Cluster(c)) => c.get_db(),
            None => 0,
        }
    }
    fn supports_pipelining(&self) -> bool {
        match &self.conn {
            Some(SyncConn::Single(c, _)) => c.supports_pipelining(),
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
            idle.push(conn);
        }
    }
}

#[derive(Clone)]
enum AsyncConn {
    Single(ConnectionManager),
    Cluster(Box<redis::cluster_async::ClusterConnection>),
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
        })
    }
}

impl redis::aio::ConnectionLike for AsyncConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> RedisFuture<'a, Value> {
        match &mut self.0 {
            AsyncConn::Single(c) => c.req_packed_command(cmd),
            AsyncConn::Cluster(c) => c.req_packed_command(cmd),
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
        }
    }
    fn get_db(&self) -> i64 {
        match &self.0 {
            AsyncConn::Single(c) => c.get_db(),
            AsyncConn::Cluster(c) => c.get_db(),
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
    use super::{redact, scrub};

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
