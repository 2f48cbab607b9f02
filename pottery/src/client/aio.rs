//! Async connections: one multiplexed connection per Tokio runtime, shared by every task.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{Cmd, RedisError, RedisFuture, RedisResult, Value};

use super::IDLE_CHECK;
use super::Inner;
use super::MAX_RUNTIMES;
use super::Options;
use super::Redis;
#[cfg(feature = "sentinel")]
use super::SentinelTarget;
use super::Target;
use crate::error::{Error, Result};
use crate::sync::lock;

impl Redis {
    /// The shared async connection: multiplexed, and replaced by the next call once it is lost.
    /// Clone it freely.
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
        // Boxed, its type erased: connecting is rare, and its future is large (every call's
        // future would carry its size) and deep (every caller's proof that its future is
        // `Send` would go down through it, past the compiler's recursion limit in a user's
        // crate).
        let connecting: std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<AsyncConnection>> + Send + '_>,
        > = Box::pin(self.connect_async(runtime));
        connecting.await
    }

    /// Makes this runtime's async connection (unless a call queued before this one did).
    async fn connect_async(&self, runtime: tokio::runtime::Id) -> Result<AsyncConnection> {
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
        if let Some((rt, n, e)) = &*lock(&inner.aio_failure)
            && *rt == runtime
            && *n > seen
        {
            return Err(Error::Redis {
                key: None,
                source: e.clone(),
            });
        }
        let conn = match &inner.target {
            // One attempt per connect: retrying here would multiply the connection timeout a
            // call can take. After a failure, the next call (or the call's retry) tries again.
            Target::Single(client) => {
                connect_single_async(client, &inner.opts, Arc::downgrade(&self.inner)).await
            }
            #[cfg(feature = "cluster")]
            Target::Cluster(client, _) => client
                .get_async_connection()
                .await
                .map(|c| AsyncConn::Cluster(Box::new(c))),
            #[cfg(feature = "sentinel")]
            Target::Sentinel(t) => connect_sentinel_async(t, &inner.opts).await,
        };
        let n = inner.aio_attempts.fetch_add(1, Ordering::SeqCst) + 1;
        let conn = conn.map_err(|source| {
            *lock(&inner.aio_failure) = Some((runtime, n, source.clone()));
            Error::Redis { key: None, source }
        })?;
        let slot = Arc::new(AioSlot {
            runtime,
            conn: conn.clone(),
            used: AtomicU64::new(self.clock()),
        });
        let mut cache = lock(&inner.aio);
        cache.retain(|s| s.runtime != runtime);
        if cache.len() >= MAX_RUNTIMES {
            cache.remove(0);
        }
        cache.push(Arc::clone(&slot));
        *write(&inner.aio_last) = Some(slot);
        Ok(AsyncConnection(conn))
    }

    /// How many of pottery's commands this handle's async connections (single server or
    /// Sentinel) sent coalesced with others (see `coalesce`), over the connections it holds now.
    #[cfg(feature = "testing")]
    pub(crate) fn coalesced_commands(&self) -> u64 {
        lock(&self.inner.aio)
            .iter()
            .map(|slot| match &slot.conn {
                AsyncConn::Single(c) => c.state.coalescer.batched(),
                #[cfg(feature = "sentinel")]
                AsyncConn::Sentinel(c) => c.watch.coalescer.batched(),
                #[allow(unreachable_patterns)]
                _ => 0,
            })
            .sum()
    }

    /// This runtime's async connection, if it has one that may be used.
    pub(super) fn cached_async(&self, runtime: tokio::runtime::Id) -> Option<AsyncConnection> {
        self.with_slot(runtime, |slot| AsyncConnection(slot.conn.clone()))
    }

    /// `f` of this runtime's async connection slot, if it has one whose connection may be
    /// used: found under a read lock (shared by every caller, and `f` runs under it: no
    /// reference count is touched) when it is the one handed out last (one runtime: always).
    fn with_slot<R>(
        &self,
        runtime: tokio::runtime::Id,
        f: impl FnOnce(&AioSlot) -> R,
    ) -> Option<R> {
        {
            let last = read(&self.inner.aio_last);
            if let Some(slot) = last.as_deref()
                && slot.runtime == runtime
                && self.usable(&slot.conn)
            {
                return Some(f(slot));
            }
        }
        // Lock order: `aio`, then `aio_last` (no one waits for `aio` holding `aio_last`).
        let mut cache = lock(&self.inner.aio);
        // A connection that was lost is replaced, and so is a Sentinel handle's that failed or
        // that goes to a master an earlier lookup found (the next one goes to the master the
        // sentinels name).
        cache.retain(|s| self.usable(&s.conn));
        let slot = cache.iter().find(|s| s.runtime == runtime)?;
        *write(&self.inner.aio_last) = Some(Arc::clone(slot));
        Some(f(slot))
    }

    /// Whether `conn` may be used: one that was lost (see [`SingleConn`]) may not, nor a
    /// Sentinel handle's that failed or that goes to a master an earlier lookup found.
    fn usable(&self, conn: &AsyncConn) -> bool {
        #[cfg(feature = "sentinel")]
        if let (Target::Sentinel(t), AsyncConn::Sentinel(c)) = (&self.inner.target, conn) {
            return !c.watch.dead.load(Ordering::Relaxed) && c.watch.generation == t.generation();
        }
        match conn {
            AsyncConn::Single(c) => !c.state.lost.load(Ordering::Relaxed),
            #[allow(unreachable_patterns)]
            _ => true,
        }
    }

    /// Now, in nanoseconds since the handle was made (for [`AioSlot::used`]).
    fn clock(&self) -> u64 {
        self.clock_at(Instant::now())
    }

    /// `now` (a call's start: not before the handle was made), in nanoseconds since the
    /// handle was made (for [`AioSlot::used`]).
    fn clock_at(&self, now: Instant) -> u64 {
        // An instant before the handle's making is not a call's start: read the clock anew.
        let since = now
            .checked_duration_since(self.inner.epoch)
            .unwrap_or_else(|| self.inner.epoch.elapsed());
        // 584 years of nanoseconds fit: a handle that old reads as always just used.
        u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
    }

    /// This runtime's async connection, if it has one, with a use of it noted, and whether it
    /// had been idle for [`IDLE_CHECK`] or more: [`Redis::async_used`] and
    /// [`Redis::async_connection`] in one lookup (every async call starts here). `now` is the
    /// call's start if it was read already (for its duration, with feature `metrics`).
    pub(crate) fn async_connection_used(
        &self,
        now: Option<Instant>,
    ) -> (Option<AsyncConnection>, bool) {
        let Ok(runtime) = tokio::runtime::Handle::try_current().map(|h| h.id()) else {
            return (None, false);
        };
        let now = match now {
            Some(now) => self.clock_at(now),
            None => self.clock(),
        };
        self.with_slot(runtime, |slot| {
            (Some(AsyncConnection(slot.conn.clone())), slot.note_use(now))
        })
        .unwrap_or((None, false))
    }

    /// Notes a use of this runtime's async connection (`None`) or direct connection to the
    /// cluster master at `addr`; returns whether it had been idle for [`IDLE_CHECK`] or more.
    pub(crate) fn async_used(&self, addr: Option<&str>) -> bool {
        let Ok(runtime) = tokio::runtime::Handle::try_current().map(|h| h.id()) else {
            return false;
        };
        if addr.is_none() {
            // No connection yet: the one about to be made is fresh.
            let now = self.clock();
            return self
                .with_slot(runtime, |slot| slot.note_use(now))
                .unwrap_or(false);
        }
        let now = Instant::now();
        let mut used = lock(&self.inner.aio_used);
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

    /// Drops this runtime's async cluster connection (no-op for other handles): after a
    /// redirect or a dead node the next call makes a new one, which reads the slots anew.
    pub(crate) fn forget_async_cluster_connection(&self) {
        if !self.is_cluster() {
            return;
        }
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let runtime = handle.id();
            let mut cache = lock(&self.inner.aio);
            cache.retain(|s| s.runtime != runtime);
            let mut last = write(&self.inner.aio_last);
            if last.as_ref().is_some_and(|s| s.runtime == runtime) {
                *last = None;
            }
        }
    }

    /// A new pub/sub connection to this server (`None` for a cluster handle, whose
    /// notifications pottery does not follow).
    pub(crate) async fn pubsub_async(&self) -> Option<RedisResult<redis::aio::PubSub>> {
        match &self.inner.target {
            Target::Single(client) => Some(client.get_async_pubsub().await),
            #[cfg(feature = "cluster")]
            Target::Cluster(..) => None,
            #[cfg(feature = "sentinel")]
            Target::Sentinel(t) => Some(match t.master(self.inner.opts.connection_timeout).await {
                Ok((_, client)) => client.get_async_pubsub().await,
                Err(e) => Err(e),
            }),
        }
    }
}

/// A runtime's async connection, and when it was last used.
pub(crate) struct AioSlot {
    runtime: tokio::runtime::Id,
    conn: AsyncConn,
    /// When a call last used it ([`Redis::clock`]), to within [`USE_GRAIN`]: how long it has
    /// been idle.
    used: AtomicU64,
}

/// How stale [`AioSlot::used`] may be (in nanoseconds): a call within this of the last noted
/// use only reads it (no write to a line every caller reads). An idle spell is then measured
/// up to this much too long: a connection idle for a little less than [`IDLE_CHECK`] may be
/// checked, never one idle for longer left unchecked.
const USE_GRAIN: u64 = 1_000_000;

impl AioSlot {
    /// Notes a use at `now` ([`Redis::clock`]); returns whether the connection had been idle
    /// for [`IDLE_CHECK`] or more (to one caller only, when several find it idle at once).
    fn note_use(&self, now: u64) -> bool {
        let last = self.used.load(Ordering::Relaxed);
        // A concurrent call may have noted a later instant than this one's: the connection
        // was then just used (not idle), which `checked_sub` says.
        match now.checked_sub(last) {
            Some(idle) if idle >= USE_GRAIN => {
                // The one caller that moves the mark on reports the idle spell.
                self.used
                    .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
                    && Duration::from_nanos(idle) >= IDLE_CHECK
            }
            _ => false,
        }
    }
}

/// The slot handed out last, poisoned or not (it guards a plain value).
fn read(
    last: &RwLock<Option<Arc<AioSlot>>>,
) -> std::sync::RwLockReadGuard<'_, Option<Arc<AioSlot>>> {
    last.read().unwrap_or_else(PoisonError::into_inner)
}

/// See [`read`].
fn write(
    last: &RwLock<Option<Arc<AioSlot>>>,
) -> std::sync::RwLockWriteGuard<'_, Option<Arc<AioSlot>>> {
    last.write().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Clone)]
pub(super) enum AsyncConn {
    Single(SingleConn),
    #[cfg(feature = "cluster")]
    Cluster(Box<redis::cluster_async::ClusterConnection>),
    #[cfg(feature = "sentinel")]
    Sentinel(SentinelConn),
}

/// The async connection of a [`Redis`] handle (multiplexed; once lost, the handle's next call
/// makes a new one); implements `redis::aio::ConnectionLike`. Cheap to clone.
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
            #[cfg(feature = "cluster")]
            AsyncConn::Cluster(_) => "AsyncConnection(cluster)",
            #[cfg(feature = "sentinel")]
            AsyncConn::Sentinel(_) => "AsyncConnection(sentinel)",
        })
    }
}

impl AsyncConnection {
    /// `CLUSTER SLOTS`, from any node of a cluster.
    pub(super) async fn cluster_slots(&mut self) -> RedisResult<Value> {
        match &mut self.0 {
            #[cfg(feature = "cluster")]
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

    /// Sends one command and returns its reply, a server's error reply as `Err` (as
    /// `Cmd::query_async` does). On a single server the call's future is awaited in place (no
    /// boxed future per command, as `ConnectionLike` has).
    pub(crate) async fn send_command(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        let reply = match &mut self.0 {
            // Coalesced with the commands other tasks send at once (see `coalesce`).
            AsyncConn::Single(c) => super::coalesce::send(&c.state, &mut c.conn, cmd).await,
            #[cfg(feature = "sentinel")]
            AsyncConn::Sentinel(c) => super::coalesce::send(&c.watch, &mut c.conn, cmd).await,
            #[allow(unreachable_patterns)]
            _ => redis::aio::ConnectionLike::req_packed_command(self, cmd).await,
        };
        reply.and_then(Value::extract_error)
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
            #[cfg(feature = "cluster")]
            (AsyncConn::Cluster(c), Some(slot)) => {
                use redis::cluster_routing::{Route, SingleNodeRoutingInfo, SlotAddr};
                let route = SingleNodeRoutingInfo::SpecificNode(Route::new(slot, SlotAddr::Master));
                c.route_pipeline(pipe.clone(), 0, count, route).await
            }
            _ => redis::aio::ConnectionLike::req_packed_commands(self, pipe, 0, count).await,
        }
    }
}

impl AsyncConnection {
    /// A single-server connection that was lost becomes the handle's current one (made anew
    /// if need be); others are left as they are.
    async fn renew_if_lost(&mut self) -> RedisResult<()> {
        let handle = match &self.0 {
            AsyncConn::Single(c) if c.state.lost.load(Ordering::Relaxed) => {
                c.state.handle.upgrade()
            }
            _ => None,
        };
        if let Some(inner) = handle {
            let redis = Redis { inner };
            *self = Box::pin(redis.async_connection())
                .await
                .map_err(|e| match e {
                    Error::Redis { source, .. } => source,
                    other => RedisError::from((
                        redis::ErrorKind::Client,
                        "no new connection",
                        other.to_string(),
                    )),
                })?;
        }
        Ok(())
    }
}

impl redis::aio::ConnectionLike for AsyncConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> RedisFuture<'a, Value> {
        // A place, not a borrow: the single server's arm takes `self` whole.
        match self.0 {
            AsyncConn::Single(_) => Box::pin(async move {
                self.renew_if_lost().await?;
                match &mut self.0 {
                    AsyncConn::Single(c) => {
                        let r = c.conn.send_packed_command(cmd).await;
                        c.saw(&r);
                        r
                    }
                    // Renewed from a single server's handle: a single server's.
                    #[allow(unreachable_patterns)]
                    _ => redis::aio::ConnectionLike::req_packed_command(self, cmd).await,
                }
            }),
            #[cfg(feature = "cluster")]
            AsyncConn::Cluster(ref mut c) => c.req_packed_command(cmd),
            #[cfg(feature = "sentinel")]
            AsyncConn::Sentinel(ref mut c) => {
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
        // A place, not a borrow: the single server's arm takes `self` whole.
        match self.0 {
            AsyncConn::Single(_) => Box::pin(async move {
                self.renew_if_lost().await?;
                match &mut self.0 {
                    AsyncConn::Single(c) => {
                        let r = c.conn.send_packed_commands(pipeline, offset, count).await;
                        c.saw(&r);
                        r
                    }
                    // Renewed from a single server's handle: a single server's.
                    #[allow(unreachable_patterns)]
                    _ => {
                        redis::aio::ConnectionLike::req_packed_commands(
                            self, pipeline, offset, count,
                        )
                        .await
                    }
                }
            }),
            #[cfg(feature = "cluster")]
            AsyncConn::Cluster(ref mut c) => c.req_packed_commands(pipeline, offset, count),
            #[cfg(feature = "sentinel")]
            AsyncConn::Sentinel(ref mut c) => {
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
            AsyncConn::Single(c) => c.conn.get_db(),
            #[cfg(feature = "cluster")]
            AsyncConn::Cluster(c) => c.get_db(),
            #[cfg(feature = "sentinel")]
            AsyncConn::Sentinel(c) => c.conn.get_db(),
        }
    }
}

/// A multiplexed connection to a single server. It does not reconnect by itself: once a call
/// on it fails with an error after which redis-rs would replace it (the connection dropped or
/// closed, a reply that cannot be parsed: `is_unrecoverable_error`, the rule of redis-rs's
/// `ConnectionManager`), or a RESP3 connection's driver reports the disconnection, it is
/// marked lost, and the runtime's next call makes a new connection (one for all the callers
/// that ask at once; see `Redis::connect_async`). A timeout does not lose it: a late reply is
/// matched to its request and dropped.
///
/// A lost connection held by a user (from [`Redis::async_connection`]) is replaced by the
/// handle's current one at its next command, as redis-rs's `ConnectionManager` replaced its
/// own.
#[derive(Clone)]
pub(super) struct SingleConn {
    conn: MultiplexedConnection,
    /// Shared by the clones of one connection (one `Arc`: a call clones it).
    state: Arc<SingleState>,
}

/// What the clones of a [`SingleConn`] share.
struct SingleState {
    lost: AtomicBool,
    /// The handle that made it (weak: the handle keeps its connections).
    handle: Weak<Inner>,
    /// pottery's own commands on it, coalesced (see `coalesce`).
    coalescer: super::coalesce::Coalescer,
}

impl super::coalesce::Shares for SingleState {
    fn coalescer(&self) -> &super::coalesce::Coalescer {
        &self.coalescer
    }

    fn saw(&self, e: &RedisError) {
        if e.is_unrecoverable_error() {
            self.lost.store(true, Ordering::Relaxed);
        }
    }
}

impl SingleConn {
    /// Marks the connection lost if `r` says so.
    fn saw<T>(&self, r: &RedisResult<T>) {
        if let Err(e) = r
            && e.is_unrecoverable_error()
        {
            self.state.lost.store(true, Ordering::Relaxed);
        }
    }
}

/// A new async connection to a single server, within the connection timeout (one attempt).
async fn connect_single_async(
    client: &redis::Client,
    opts: &Options,
    handle: Weak<Inner>,
) -> RedisResult<AsyncConn> {
    let state = Arc::new(SingleState {
        lost: AtomicBool::new(false),
        handle,
        coalescer: super::coalesce::Coalescer::for_this_runtime(opts.coalesce),
    });
    let mut config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(opts.connection_timeout))
        .set_response_timeout(opts.response_timeout);
    if client
        .get_connection_info()
        .redis_settings()
        .protocol()
        .supports_resp3()
    {
        // A RESP3 connection's driver says when the connection is gone (redis-rs refuses a
        // push sender on RESP2, whose connections are found lost by a failed call).
        let seen = Arc::clone(&state);
        config = config.set_push_sender(move |push: redis::PushInfo| {
            if push.kind == redis::PushKind::Disconnection {
                seen.lost.store(true, Ordering::Relaxed);
            }
            Ok::<(), std::convert::Infallible>(())
        });
    }
    let conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    Ok(AsyncConn::Single(SingleConn { conn, state }))
}

#[cfg(feature = "sentinel")]
/// A multiplexed connection to the master a Sentinel lookup found. It does not reconnect by
/// itself (it would reconnect to the same, maybe demoted, node): once a call on it fails or
/// is answered `READONLY`, it is marked dead, the master is forgotten, and the handle makes a
/// new connection to the master the sentinels name next.
#[derive(Clone)]
pub(super) struct SentinelConn {
    pub(super) conn: MultiplexedConnection,
    pub(super) watch: Arc<ConnWatch>,
}

#[cfg(feature = "sentinel")]
pub(super) struct ConnWatch {
    pub(super) dead: AtomicBool,
    pub(super) generation: u64,
    pub(super) target: Arc<SentinelTarget>,
    /// pottery's own commands on it, coalesced (see `coalesce`).
    pub(super) coalescer: super::coalesce::Coalescer,
}

#[cfg(feature = "sentinel")]
impl super::coalesce::Shares for ConnWatch {
    fn coalescer(&self) -> &super::coalesce::Coalescer {
        &self.coalescer
    }

    fn saw(&self, e: &RedisError) {
        self.saw_error(e);
    }
}

#[cfg(feature = "sentinel")]
impl ConnWatch {
    pub(super) fn saw<T>(&self, r: &RedisResult<T>) {
        if let Err(e) = r {
            self.saw_error(e);
        }
    }

    /// Marks the connection dead, and its master forgotten, if `e` says it is stale.
    fn saw_error(&self, e: &RedisError) {
        if SentinelTarget::stale(e) {
            self.dead.store(true, Ordering::Relaxed);
            self.target.forget(self.generation);
        }
    }
}

#[cfg(feature = "sentinel")]
/// A new async connection to the master of a Sentinel handle.
pub(super) async fn connect_sentinel_async(
    target: &Arc<SentinelTarget>,
    opts: &Options,
) -> RedisResult<AsyncConn> {
    let known = target.current().is_some();
    let (generation, client) = target.master(opts.connection_timeout).await?;
    if !known && let Some(master) = target.peer() {
        // The span this runs in began before the master was known.
        master.record_on_current_span();
    }
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
                coalescer: super::coalesce::Coalescer::for_this_runtime(opts.coalesce),
            }),
        })),
        Err(e) => {
            target.forget(generation);
            Err(e)
        }
    }
}
