//! Blocking connections: a small pool per handle, timeouts, and the idle-connection check.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::{ConnectionLike, RedisError, RedisResult, Value};

use super::Inner;
use super::Options;
use super::Redis;
use super::Target;
#[cfg(feature = "sentinel")]
use super::sentinel::SentinelTarget;
use crate::error::{Error, Result};
use crate::sync::lock;

impl Redis {
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
    pub(super) fn pooled(&self) -> Result<PooledConnection> {
        let pooled = {
            let mut idle = lock(&self.inner.idle);
            #[cfg(feature = "sentinel")]
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

    pub(super) fn connect_sync(&self) -> Result<SyncConn> {
        let opts = &self.inner.opts;
        let fail = |source: RedisError| Error::Redis { key: None, source };
        match &self.inner.target {
            Target::Single(client) => connect_single(client, opts, 0),
            #[cfg(feature = "cluster")]
            Target::Cluster(client, _) => Ok(SyncConn::Cluster(Box::new(
                client.get_connection().map_err(fail)?,
            ))),
            #[cfg(feature = "sentinel")]
            Target::Sentinel(t) => {
                let known = t.current().is_some();
                let (generation, client) =
                    crate::exec::rt::block_on(t.master(opts.connection_timeout)).map_err(fail)?;
                if !known && let Some(master) = t.peer() {
                    // The span this runs in began before the master was known.
                    master.record_on_current_span();
                }
                connect_single(&client, opts, generation).inspect_err(|_| t.forget(generation))
            }
        }
    }
}

/// A blocking connection to one server, its handshake within the connection timeout.
pub(super) fn connect_single(
    client: &redis::Client,
    opts: &Options,
    generation: u64,
) -> Result<SyncConn> {
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

pub(super) enum SyncConn {
    /// A connection, the read/write timeout its socket has now, and (for a Sentinel handle)
    /// the lookup that found its server.
    Single(redis::Connection, Option<Duration>, u64),
    #[cfg(feature = "cluster")]
    Cluster(Box<redis::cluster::ClusterConnection>),
}

impl SyncConn {
    pub(super) fn as_dyn(&mut self) -> &mut dyn ConnectionLike {
        match self {
            SyncConn::Single(c, _, _) => c,
            #[cfg(feature = "cluster")]
            SyncConn::Cluster(c) => c.as_mut(),
        }
    }
    pub(super) fn is_open(&self) -> bool {
        match self {
            SyncConn::Single(c, _, _) => c.is_open(),
            #[cfg(feature = "cluster")]
            SyncConn::Cluster(c) => c.is_open(),
        }
    }
    pub(super) fn generation(&self) -> u64 {
        match self {
            SyncConn::Single(_, _, generation) => *generation,
            #[cfg(feature = "cluster")]
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
    pub(super) conn: Option<SyncConn>,
    pub(super) inner: Arc<Inner>,
    pub(super) broken: bool,
    /// How long it sat in the pool before this use (zero for a new connection).
    pub(super) idle: Duration,
}

impl fmt::Debug for PooledConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PooledConnection({})", self.inner.shown)
    }
}

/// A blocking socket read or write that ran into its timeout fails with `WouldBlock`, which
/// reads "Resource temporarily unavailable (os error 11)": say what happened instead (still an
/// I/O timeout error, so `is_timeout` and `is_io_error` hold).
pub(super) fn name_timeout(e: RedisError, waited: Option<Duration>, what: &str) -> RedisError {
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
    pub(super) fn conn(&mut self) -> &mut dyn ConnectionLike {
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
        self.sat_idle() && !self.conn().check_connection() && {
            self.broken = true;
            true
        }
    }

    /// Whether the connection sat idle in the pool for [`IDLE_CHECK`] or more (then
    /// [`PooledConnection::died_while_idle`] asks it).
    pub(crate) fn sat_idle(&self) -> bool {
        self.idle >= IDLE_CHECK
    }

    /// Gives the socket these read/write timeouts, unless it has them already (a pooled
    /// connection keeps the last ones set: no system call when they do not change).
    pub(super) fn set_timeouts(&mut self, t: Option<Duration>) -> Result<()> {
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
            #[cfg(feature = "cluster")]
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

    pub(super) fn note<T>(&mut self, r: RedisResult<T>) -> RedisResult<T> {
        if let Err(e) = &r {
            match &self.inner.target {
                #[cfg(feature = "sentinel")]
                Target::Sentinel(t) => {
                    if SentinelTarget::stale(e) {
                        self.broken = true;
                        if let Some(c) = &self.conn {
                            t.forget(c.generation());
                        }
                    }
                }
                _ => self.broken |= poisons(e),
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
            #[cfg(feature = "cluster")]
            Some(SyncConn::Cluster(c)) => c.get_db(),
            None => 0,
        }
    }
    fn supports_pipelining(&self) -> bool {
        match &self.conn {
            Some(SyncConn::Single(c, _, _)) => c.supports_pipelining(),
            #[cfg(feature = "cluster")]
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
        let mut idle = lock(&self.inner.idle);
        if self.broken || !conn.is_open() {
            // The server went away or the socket is in an unknown state: the idle
            // connections are most likely dead too, so start afresh next time.
            idle.clear();
        } else if idle.len() < self.inner.opts.max_idle {
            idle.push((conn, Instant::now()));
        }
    }
}
