//! The `Redis` handle: where pottery's structures live, and the connections that reach it.
// Without `cluster` or `sentinel` their handles' code is compiled out; what the rest shares
// with it (imports, a Sentinel connection's generation, ...) may go unused.
#![cfg_attr(
    not(all(feature = "cluster", feature = "sentinel")),
    allow(unused_imports, unused_variables, unused_mut, dead_code)
)]

mod aio;
mod builder;
mod cluster;
mod coalesce;
pub(crate) mod near;
mod pool;
mod redact;
pub(crate) mod run;
#[cfg(feature = "sentinel")]
mod sentinel;
pub(crate) mod tls;

pub use self::aio::AsyncConnection;
pub use self::builder::RedisBuilder;
pub(crate) use self::cluster::SlotOwners;
pub use self::pool::PooledConnection;
pub(crate) use self::pool::{IDLE_CHECK, poisons};

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[cfg(feature = "cluster")]
use redis::cluster::ClusterClient;
use redis::{RedisError, Value};

use self::builder::Kind;
use self::cluster::NodeTemplate;
use self::pool::SyncConn;
#[cfg(feature = "sentinel")]
use self::sentinel::SentinelTarget;
use crate::error::{Error, Result};
use crate::sync::lock;

/// How many runtimes' async connections a handle keeps (the oldest goes first).
const MAX_RUNTIMES: usize = 64;

/// A user name (`None`: the default user) and a password.
type Credentials = (Option<String>, String);

/// The settings only a Sentinel handle has.
#[derive(Clone, Default)]
pub(crate) struct SentinelOptions {
    /// Set by a `sentinel_*`/`master_*`/`db` method, for the error on a non-Sentinel builder.
    pub(super) touched: Option<&'static str>,
    pub(super) sentinel_auth: Option<Credentials>,
    pub(super) master_auth: Option<Credentials>,
    pub(super) db: i64,
    /// `Some(insecure)`: the master serves TLS.
    pub(super) master_tls: Option<bool>,
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

/// Where a handle's spans say the server is.
#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
#[derive(Clone, Debug, Default)]
pub(crate) struct Peer {
    pub address: String,
    pub port: Option<u16>,
    pub db: i64,
}

impl Peer {
    /// Names this peer as the server of the current span: a Sentinel handle's first
    /// connection to a master it had to look up, inside a span begun before the master was
    /// known (the span's other fields are the observe module's).
    #[cfg(feature = "sentinel")]
    pub(crate) fn record_on_current_span(&self) {
        #[cfg(feature = "tracing")]
        {
            let span = tracing::Span::current();
            if !span.is_disabled() {
                span.record("server.address", self.address());
                span.record("server.port", self.port);
            }
        }
    }

    /// From a connection's settings (no credentials are read).
    pub(crate) fn of(info: &redis::ConnectionInfo, db: i64) -> Peer {
        let (address, port) = match info.addr() {
            redis::ConnectionAddr::Tcp(host, port)
            | redis::ConnectionAddr::TcpTls { host, port, .. } => (host.clone(), Some(*port)),
            redis::ConnectionAddr::Unix(path) => (path.display().to_string(), None),
            other => (format!("{other}"), None),
        };
        Peer { address, port, db }
    }

    /// The server's host (or socket path); none for a Sentinel handle that has not found its
    /// master yet.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) fn address(&self) -> Option<&str> {
        (!self.address.is_empty()).then_some(self.address.as_str())
    }
}

/// A handle's [`Peer`]: its own, or (a Sentinel handle's) the master it last found.
#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
pub(crate) enum PeerRef<'a> {
    Fixed(&'a Peer),
    #[cfg(feature = "sentinel")]
    Master(Arc<Peer>),
}

impl std::ops::Deref for PeerRef<'_> {
    type Target = Peer;
    fn deref(&self) -> &Peer {
        match self {
            PeerRef::Fixed(peer) => peer,
            #[cfg(feature = "sentinel")]
            PeerRef::Master(peer) => peer,
        }
    }
}

/// The default `REDIS_URL`, as in Python pottery.
pub const DEFAULT_URL: &str = "redis://127.0.0.1:6379/0";

/// A handle on one Redis server, one Redis Cluster, or the master that Redis Sentinel names
/// ([`Redis::sentinel`]).
///
/// Cheap to clone (an `Arc`), `Send + Sync`, and creating one does no I/O: the first operation
/// connects. Blocking code borrows a connection from a small pool per call, so many threads work
/// in parallel without sharing one socket and without connecting per operation; async code
/// shares one multiplexed connection per Tokio runtime (the cluster's async connection on a
/// cluster), replaced by the next call once it is lost.
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
    /// Where spans say the server is.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    peer: Peer,
    opts: Options,
    /// Idle blocking connections, each with the time it was put back.
    idle: Mutex<Vec<(SyncConn, Instant)>>,
    /// One async connection per Tokio runtime: a connection's driver task lives on the runtime
    /// that made it, and dies with it.
    aio: Mutex<Vec<Arc<aio::AioSlot>>>,
    /// The slot handed out last (most calls find theirs here, under a read lock only).
    aio_last: std::sync::RwLock<Option<Arc<aio::AioSlot>>>,
    /// What [`aio::AioSlot::used`] counts from.
    epoch: Instant,
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
    /// When each direct connection to a cluster master was last used, by runtime and address:
    /// how long it has been idle (a runtime's own async connection keeps it in its slot).
    aio_used: Mutex<Vec<(tokio::runtime::Id, Option<String>, Instant)>>,
    /// State that outlives the values made from this handle, by type and name (a cache's
    /// circuit breaker and counters, by cache key): see [`Redis::shared_state`].
    shared: Mutex<SharedStates>,
    /// The near cache, when the builder asked for one (see [`crate::near`]).
    near: Option<Arc<crate::near::Near>>,
}

/// [`Inner::shared`]: one value per type and name.
type SharedStates =
    std::collections::HashMap<(std::any::TypeId, String), Arc<dyn std::any::Any + Send + Sync>>;

/// How many shared states a handle keeps before it forgets those nobody holds.
const SHARED_STATES_KEPT: usize = 4096;

// One per handle, behind an Arc: the size difference does not matter.
#[allow(clippy::large_enum_variant)]
enum Target {
    Single(redis::Client),
    #[cfg(feature = "cluster")]
    Cluster(ClusterClient, Box<NodeTemplate>),
    #[cfg(feature = "sentinel")]
    Sentinel(Arc<SentinelTarget>),
}

#[derive(Clone, Debug)]
struct Options {
    connection_timeout: Duration,
    response_timeout: Option<Duration>,
    max_idle: usize,
    retry_timeout: Duration,
    durable: Option<(usize, Duration)>,
    /// Whether spans record key names.
    trace_keys: bool,
    /// Whether async connections coalesce concurrent commands (see `coalesce`).
    coalesce: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            connection_timeout: Duration::from_secs(5),
            response_timeout: Some(Duration::from_secs(10)),
            max_idle: 16,
            retry_timeout: Duration::from_secs(10),
            durable: None,
            trace_keys: false,
            coalesce: true,
        }
    }
}

impl Redis {
    fn from_target(target: Target, shown: String, opts: Options) -> Redis {
        Redis::from_parts(target, shown, opts, None)
    }

    fn from_parts(
        target: Target,
        shown: String,
        opts: Options,
        near: Option<Arc<crate::near::Near>>,
    ) -> Redis {
        let peer = match &target {
            Target::Single(client) => {
                let info = client.get_connection_info();
                Peer::of(info, info.redis_settings().db())
            }
            #[cfg(feature = "cluster")]
            Target::Cluster(_, template) => Peer::of(&template.info, 0),
            #[cfg(feature = "sentinel")]
            // Until it finds its master: no address (see `Redis::peer`).
            Target::Sentinel(t) => Peer {
                db: t.master_settings.db(),
                ..Peer::default()
            },
        };
        let redis = Redis {
            inner: Arc::new(Inner {
                target,
                shown,
                peer,
                opts,
                idle: Mutex::new(Vec::new()),
                aio: Mutex::new(Vec::new()),
                aio_last: std::sync::RwLock::new(None),
                epoch: Instant::now(),
                aio_init: tokio::sync::Mutex::new(()),
                aio_attempts: std::sync::atomic::AtomicU64::new(0),
                aio_failure: Mutex::new(None),
                slot_owners: Mutex::new(None),
                nodes_aio: Mutex::new(Vec::new()),
                aio_used: Mutex::new(Vec::new()),
                shared: Mutex::new(SharedStates::new()),
                near,
            }),
        };
        if let Some(near) = redis.near() {
            near.attach(&redis);
        }
        redis
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
    #[cfg(feature = "cluster")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cluster")))]
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
            near: None,
        }
    }

    /// Starts configuring a handle on a Redis Cluster.
    ///
    /// ```
    /// let cluster = pottery::Redis::cluster_builder(["redis://127.0.0.1:7000"]).build()?;
    /// # let _ = cluster;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    #[cfg(feature = "cluster")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cluster")))]
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
            near: None,
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
    #[cfg(feature = "sentinel")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sentinel")))]
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
    #[cfg(feature = "sentinel")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sentinel")))]
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
            near: None,
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
        #[cfg(feature = "sentinel")]
        return matches!(self.inner.target, Target::Sentinel(_));
        #[cfg(not(feature = "sentinel"))]
        false
    }

    /// Whether this handle talks to a Redis Cluster.
    ///
    /// ```
    /// assert!(!pottery::Redis::from_url("redis://127.0.0.1")?.is_cluster());
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn is_cluster(&self) -> bool {
        #[cfg(feature = "cluster")]
        return matches!(self.inner.target, Target::Cluster(..));
        #[cfg(not(feature = "cluster"))]
        false
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

    #[inline]
    pub(crate) fn near_state(&self) -> Option<&Arc<crate::near::Near>> {
        self.inner.near.as_ref()
    }

    /// Where spans say the server is: the server, a cluster's first node, or the master a
    /// Sentinel handle last found (no address before it found one).
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) fn peer(&self) -> PeerRef<'_> {
        #[cfg(feature = "sentinel")]
        if let Target::Sentinel(t) = &self.inner.target
            && let Some(master) = t.peer()
        {
            return PeerRef::Master(master);
        }
        PeerRef::Fixed(&self.inner.peer)
    }

    /// Whether spans record key names ([`RedisBuilder::trace_key_names`]).
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) fn traces_key_names(&self) -> bool {
        self.inner.opts.trace_keys
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
        let mut states = lock(&self.inner.shared);
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

    /// How long a reply may take (see [`RedisBuilder::response_timeout`]).
    pub(crate) fn response_timeout(&self) -> Option<Duration> {
        self.inner.opts.response_timeout
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

static DEFAULT: std::sync::OnceLock<Redis> = std::sync::OnceLock::new();

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
    if let Some(redis) = DEFAULT.get() {
        return Ok(redis.clone());
    }
    // Making a handle does no I/O: two threads racing here both make one, and one is kept.
    let made = Redis::from_env()?;
    Ok(DEFAULT.get_or_init(|| made).clone())
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
    use super::SHARED_STATES_KEPT;
    use super::pool::name_timeout;
    use super::redact::{redact, scrub};
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
        let named = name_timeout(
            eagain,
            Some(std::time::Duration::from_millis(400)),
            "no reply",
        );
        assert_eq!(named.to_string(), "timed out: no reply within 400ms");
        assert!(named.is_timeout() && named.is_io_error());
        let other =
            redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        let kept = name_timeout(other, None, "no reply");
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
