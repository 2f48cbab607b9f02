//! A handle's near cache: the store, and the tracking connections that keep it fresh (one
//! per server: the one server, the Sentinel's current master, each cluster master).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{PushInfo, PushKind, Value};

use super::own::{
    BACKGROUND_MAX, Background, Done, OWN_MAX, OwnFill, Room, UNDER_WAY, own_fill_of,
    own_fill_of_read, own_fills, settle_own, settle_own_async, with_own,
};
use super::plan::{Read, Touched, resp2};
use super::redirect;
use super::store::{Deadline, Store, TICK};
use super::{HEARTBEAT_BOUND, HEARTBEAT_EVERY, NearCache, NearCacheStats, lock};
use crate::client::near::{Layout, WeakRedis};
use crate::client::{Redis, SlotOwners};

/// How long reads go uncached after a failed attempt to open a tracking connection.
const RECONNECT_AFTER: Duration = Duration::from_millis(100);

/// A live tracking connection, with its number.
struct Link {
    id: u64,
    conn: MultiplexedConnection,
    /// In the RESP2 `REDIRECT` mode, the subscriber's stop flag (set when the link goes) and
    /// markers.
    redirect: Option<(Arc<AtomicBool>, Arc<redirect::Marks>)>,
}

/// What a fill needs of a link: its number, its connection, and in the `REDIRECT` mode its
/// subscriber's markers.
struct Tracking {
    id: u64,
    conn: MultiplexedConnection,
    marks: Option<Arc<redirect::Marks>>,
}

impl Link {
    fn tracking(&self) -> Tracking {
        Tracking {
            id: self.id,
            conn: self.conn.clone(),
            marks: self.redirect.as_ref().map(|(_, m)| Arc::clone(m)),
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        if let Some((stop, _)) = &self.redirect {
            stop.store(true, Ordering::SeqCst);
        }
    }
}

/// How to reach a server when a tracking connection to it must be opened.
enum Reach {
    /// The single-server handle's server.
    Single,
    /// The cluster node at the address.
    Node,
    /// A Sentinel handle's master.
    Client(Box<redis::Client>),
}

/// What every cached entry was read under: on a cluster the slot map (an entry came from its
/// slot's owner in it), on Sentinel the master's generation. A change flushes everything.
enum Topology {
    Unknown,
    Slots(Arc<SlotOwners>),
    Master(u64),
}

pub(crate) struct Near {
    settings: NearCache,
    connection_timeout: Duration,
    response_timeout: Option<Duration>,
    store: Store,
    /// The handle this near cache belongs to (set once it is built).
    handle: OnceLock<WeakRedis>,
    /// Tracking connections by server (`host:port`; `""` for a single-server handle).
    servers: Mutex<HashMap<String, Link>>,
    topology: Mutex<Topology>,
    /// No new tracking connection is tried before this instant.
    retry_at: Mutex<Option<Instant>>,
    connecting: tokio::sync::Mutex<()>,
    links: AtomicU64,
    heartbeat_started: std::sync::Once,
    /// Set when a server refused both RESP3 and the RESP2 `REDIRECT` mode (an answer, not a
    /// failure to connect): the near cache then stays off and every read goes to the server.
    refused: AtomicBool,
    /// Background fills in flight or about to be (at most [`BACKGROUND_MAX`]).
    background: AtomicUsize,
}

impl Near {
    /// A near cache with these settings (no I/O; [`Near::attach`] gives it its handle).
    pub(crate) fn new(
        settings: NearCache,
        connection_timeout: Duration,
        response_timeout: Option<Duration>,
    ) -> Near {
        Near {
            store: Store::new(settings.max_entries, settings.max_bytes),
            settings,
            connection_timeout,
            response_timeout,
            handle: OnceLock::new(),
            servers: Mutex::new(HashMap::new()),
            topology: Mutex::new(Topology::Unknown),
            retry_at: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
            links: AtomicU64::new(0),
            heartbeat_started: std::sync::Once::new(),
            refused: AtomicBool::new(false),
            background: AtomicUsize::new(0),
        }
    }

    /// Gives the near cache its handle (a Sentinel master switch then flushes at once).
    pub(crate) fn attach(self: &Arc<Self>, redis: &Redis) {
        let _ = self.handle.set(redis.downgrade());
        if redis.layout() == Layout::Sentinel {
            let weak = Arc::downgrade(self);
            redis.on_master_change(Box::new(move || {
                if let Some(near) = weak.upgrade() {
                    near.topology_changed();
                }
            }));
        }
    }

    pub(crate) fn stats(&self) -> NearCacheStats {
        let s = self.store.counters();
        NearCacheStats {
            hits: s.hits,
            misses: s.misses,
            invalidations: s.invalidations,
            flushes: s.flushes,
            entries: s.entries,
            bytes: s.bytes,
            evictions: s.evictions,
            rejected_fills: s.rejected_fills,
            connections: self.links.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn flush(&self) {
        self.store.flush();
    }

    /// The store (for the front tables' lookups).
    #[inline]
    pub(super) fn store(&self) -> &Store {
        &self.store
    }

    /// The cached reply to the read `ident` of `key`, if any may be served now. (No tracking
    /// connection: nothing cached may be trusted — a flush emptied the store when it was
    /// lost — and nothing is served.)
    pub(crate) fn get(&self, key: &[u8], ident: &[u8]) -> Option<Value> {
        self.store.get(key, ident, true, |v| Some(v.clone()))
    }

    /// Around this handle's own write: before it is sent and when its reply arrives.
    pub(crate) fn touch(&self, touched: &Touched) {
        match touched {
            Touched::All => self.store.flush(),
            Touched::Keys(keys) => {
                for k in keys {
                    self.store.invalidate(k);
                }
            }
        }
    }

    /// The topology changed, or may have (a master switch, a slot that moved): everything is
    /// flushed, and the next fill finds its server anew. On Sentinel the tracking connection
    /// to the old master goes too.
    pub(crate) fn topology_changed(&self) {
        let old = std::mem::replace(&mut *lock(&self.topology), Topology::Unknown);
        if matches!(old, Topology::Master(_)) {
            drop(std::mem::take(&mut *lock(&self.servers)));
        }
        self.flush();
    }

    /// An invalidation: the keys named in `payload`, or everything for a null (`FLUSHALL`,
    /// `FLUSHDB`, `SWAPDB`) or anything unexpected.
    pub(super) fn invalidated(&self, payload: Option<Value>) {
        let store = &self.store;
        match payload {
            Some(Value::Array(keys)) | Some(Value::Set(keys)) => {
                for k in keys {
                    if let Value::BulkString(k) = k {
                        store.invalidate(&k);
                    } else {
                        // Not a key name: trust nothing.
                        store.flush();
                    }
                }
            }
            _ => store.flush(),
        }
    }

    /// A push from tracking connection number `id`.
    fn on_push(&self, id: u64, info: PushInfo) {
        match info.kind {
            PushKind::Invalidate => self.invalidated(info.data.into_iter().next()),
            PushKind::Disconnection => self.lose(id),
            PushKind::Other(ref kind) if kind == "tracking-redir-broken" => self.lose(id),
            _ => {}
        }
    }

    /// Tracking connection number `id` is lost (or not trusted): invalidations may have been
    /// missed, so everything goes.
    pub(super) fn lose(&self, id: u64) {
        let gone = {
            let mut links = lock(&self.servers);
            let addr = links
                .iter()
                .find(|(_, l)| l.id == id)
                .map(|(a, _)| a.clone());
            addr.and_then(|a| links.remove(&a))
        };
        drop(gone);
        self.flush();
    }

    /// The server that owns `key` now (its `host:port`, `""` on a single-server handle),
    /// and a client of it; `None` when it cannot be told now (the read then goes the usual
    /// way, uncached).
    async fn server(&self, redis: &Redis, key: &[u8]) -> Option<(String, Reach)> {
        match redis.layout() {
            Layout::Single => Some((String::new(), Reach::Single)),
            Layout::Cluster => {
                let known = match &*lock(&self.topology) {
                    Topology::Slots(owners) => Some(Arc::clone(owners)),
                    _ => None,
                };
                let owners = match known {
                    Some(o) => o,
                    None => {
                        let read = Arc::new(redis.read_slot_owners().await?);
                        let mut topology = lock(&self.topology);
                        match &*topology {
                            Topology::Slots(o) => Arc::clone(o),
                            _ => {
                                *topology = Topology::Slots(Arc::clone(&read));
                                read
                            }
                        }
                    }
                };
                let owner = owners.owner(crate::exec::slot::slot(key))?;
                Some((owners.address(owner)?.to_owned(), Reach::Node))
            }
            Layout::Sentinel => {
                let (generation, client) = redis.sentinel_master().await?.ok()?;
                let (host, port) = match client.get_connection_info().addr() {
                    redis::ConnectionAddr::Tcp(host, port)
                    | redis::ConnectionAddr::TcpTls { host, port, .. } => (host.clone(), *port),
                    _ => return None,
                };
                let mut topology = lock(&self.topology);
                match &*topology {
                    Topology::Master(g) if *g == generation => {}
                    Topology::Master(_) => {
                        // Another master than the entries came from.
                        drop(topology);
                        self.topology_changed();
                        topology = lock(&self.topology);
                        *topology = Topology::Master(generation);
                    }
                    _ => *topology = Topology::Master(generation),
                }
                Some((format!("{host}:{port}"), Reach::Client(Box::new(client))))
            }
        }
    }

    /// The tracking connection to the server at `addr`, opened (reaching it by `reach`) if
    /// there is none (at most one attempt per [`RECONNECT_AFTER`]); `None` when it cannot be
    /// had now.
    async fn connection(
        self: &Arc<Self>,
        redis: &Redis,
        addr: &str,
        reach: Reach,
    ) -> Option<Tracking> {
        if let Some(l) = lock(&self.servers).get(addr) {
            return Some(l.tracking());
        }
        if self.refused.load(Ordering::Relaxed)
            || lock(&self.retry_at).is_some_and(|at| Instant::now() < at)
        {
            return None;
        }
        let _one = self.connecting.lock().await;
        if let Some(l) = lock(&self.servers).get(addr) {
            return Some(l.tracking());
        }
        let client = match reach {
            Reach::Single => redis.single_client()?,
            Reach::Node => redis.node_client(addr).ok()?,
            Reach::Client(c) => *c,
        };
        let id = self.links.fetch_add(1, Ordering::Relaxed) + 1;
        match self.open(id, client).await {
            Ok(link) => {
                let tracking = link.tracking();
                lock(&self.servers).insert(addr.to_owned(), link);
                *lock(&self.retry_at) = None;
                self.start_heartbeat();
                Some(tracking)
            }
            Err(e) if is_refusal(&e) => {
                // Neither RESP3 nor CLIENT TRACKING with REDIRECT (a server before 6.0, a
                // proxy, an ACL): no near cache on this handle, ever.
                tracing::warn!(error = %e, "near cache off: the server refused CLIENT TRACKING");
                self.refused.store(true, Ordering::Relaxed);
                None
            }
            Err(_) => {
                *lock(&self.retry_at) = Some(Instant::now() + RECONNECT_AFTER);
                None
            }
        }
    }

    /// Opens tracking connection number `id` to the server `client` reaches: in RESP3 (the
    /// server pushes invalidations on it), or where `HELLO 3` is refused in RESP2 with
    /// `REDIRECT` to a connection subscribed to `__redis__:invalidate` (never tracking on
    /// RESP2 without one: the server would accept it and send nothing).
    async fn open(self: &Arc<Self>, id: u64, client: redis::Client) -> redis::RedisResult<Link> {
        let weak: Weak<Near> = Arc::downgrade(self);
        let sender = move |info: PushInfo| -> Result<(), ()> {
            if let Some(near) = weak.upgrade() {
                near.on_push(id, info);
            }
            Ok(())
        };
        let config = redis::AsyncConnectionConfig::new()
            .set_push_sender(sender)
            .set_connection_timeout(Some(self.connection_timeout))
            .set_response_timeout(self.response_timeout);
        let resp3 = with_protocol(&client, redis::ProtocolVersion::RESP3)?;
        match open_tracking(resp3, config, None).await {
            Ok(conn) => Ok(Link {
                id,
                conn,
                redirect: None,
            }),
            Err(e) if is_refusal(&e) => {
                tracing::debug!(error = %e, "near cache: RESP3 tracking refused, trying REDIRECT");
                self.open_redirect(id, client).await
            }
            Err(e) => Err(e),
        }
    }

    /// The RESP2 `REDIRECT` mode: a subscriber thread (its connection's id learned before it
    /// subscribes), then tracking on a RESP2 connection redirected to it.
    async fn open_redirect(
        self: &Arc<Self>,
        id: u64,
        client: redis::Client,
    ) -> redis::RedisResult<Link> {
        let resp2 = with_protocol(&client, redis::ProtocolVersion::RESP2)?;
        let stop = Arc::new(AtomicBool::new(false));
        // Stops the subscriber on every way out but its link's (an error, this future
        // dropped while connecting).
        let mut armed = StopOnDrop(Some(Arc::clone(&stop)));
        let subscriber = redirect::start(
            Arc::downgrade(self),
            id,
            resp2.clone(),
            self.connection_timeout,
            Arc::clone(&stop),
        )
        .await;
        let (redirect_id, marks) = subscriber?;
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.connection_timeout))
            .set_response_timeout(self.response_timeout);
        let conn = open_tracking(resp2, config, Some(redirect_id)).await?;
        // From here the link stops it when it goes.
        armed.0 = None;
        Ok(Link {
            id,
            conn,
            redirect: Some((stop, marks)),
        })
    }

    /// Every [`HEARTBEAT_EVERY`]: each tracking connection is pinged (in the `REDIRECT` mode
    /// asked `CLIENT TRACKINGINFO`, whose `broken_redirect` means invalidations are lost), one
    /// not answered within [`HEARTBEAT_BOUND`] is given up; and the topology is checked (a
    /// cluster's slot map, a Sentinel handle's master). Ends when the near cache is dropped.
    fn start_heartbeat(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        self.heartbeat_started.call_once(|| {
            // The coarse clock hits read (see `Store::get`).
            let ticking = weak.clone();
            drop(crate::exec::rt::spawn_global(async move {
                loop {
                    tokio::time::sleep(TICK).await;
                    let Some(near) = ticking.upgrade() else {
                        return;
                    };
                    near.store.advance();
                }
            }));
            drop(crate::exec::rt::spawn_global(async move {
                loop {
                    tokio::time::sleep(HEARTBEAT_EVERY).await;
                    let Some(near) = weak.upgrade() else { return };
                    let links: Vec<(u64, MultiplexedConnection, bool)> = lock(&near.servers)
                        .values()
                        .map(|l| (l.id, l.conn.clone(), l.redirect.is_some()))
                        .collect();
                    let handle = near.handle.get().cloned();
                    drop(near);
                    let checks = links
                        .into_iter()
                        .map(|(id, mut conn, redirected)| async move {
                            (id, alive(&mut conn, redirected).await)
                        });
                    for (id, ok) in crate::exec::race::join_all(checks).await {
                        if !ok {
                            let Some(near) = weak.upgrade() else { return };
                            near.lose(id);
                        }
                    }
                    if let Some(redis) = handle.and_then(|h| h.upgrade()) {
                        let Some(near) = weak.upgrade() else { return };
                        near.check_topology(&redis).await;
                    }
                }
            }));
        });
    }

    /// Flushes when the topology is not what the entries were read under.
    async fn check_topology(&self, redis: &Redis) {
        match redis.layout() {
            Layout::Single => {}
            Layout::Cluster => {
                if matches!(&*lock(&self.topology), Topology::Unknown) {
                    return;
                }
                let read = tokio::time::timeout(HEARTBEAT_BOUND, redis.read_slot_owners()).await;
                let Ok(Some(now)) = read else { return };
                let moved = match &*lock(&self.topology) {
                    Topology::Slots(known) => **known != now,
                    _ => false,
                };
                if moved {
                    tracing::debug!("near cache: the cluster's slot map changed, flushing");
                    self.topology_changed();
                }
            }
            Layout::Sentinel => {
                let now = redis.sentinel_generation();
                let switched = match &*lock(&self.topology) {
                    Topology::Master(g) => now != Some(*g),
                    _ => false,
                };
                if switched {
                    self.topology_changed();
                }
            }
        }
    }

    /// Room for a background fill of a blocking miss ([`Near::fill_in_background`]): `None`
    /// when [`BACKGROUND_MAX`] are in flight, or this thread has [`OWN_MAX`] under way, or
    /// the server refused tracking.
    pub(crate) fn background_room(&self) -> Option<Room<'_>> {
        if self.refused.load(Ordering::Relaxed) {
            return None;
        }
        let full = with_own(|own| {
            // Those that ended are forgotten: an unanswered one only costs this thread its
            // next cached read of that key, which is not worth a place.
            own.retain(|o| o.done.state() == UNDER_WAY);
            own.len() >= OWN_MAX
        })
        .unwrap_or(true);
        if full {
            return None;
        }
        self.background
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < BACKGROUND_MAX).then_some(n + 1)
            })
            .ok()?;
        Some(Room {
            count: &self.background,
        })
    }

    /// A blocking miss, after the caller read `read` (`cmd`) on a pooled connection: fills
    /// the cache with it in the background, on pottery's I/O runtime, under [`Near::fill`]'s
    /// rules. (A blocking caller waiting for a fill on the tracking connection pays two
    /// thread wake-ups, to the connection's task and back: about a quarter of a loopback
    /// round trip. This way a miss costs what a read without the near cache costs, and the
    /// server runs the read twice.)
    ///
    /// The caller's read was answered by the server before this fill is sent, so once the
    /// tracking connection answers the fill, every invalidation the server sent before the
    /// caller's read ran has been applied. Until then, this thread's reads of the key are not
    /// answered from the cache without waiting for it ([`own_fill_of`], [`settle_own`]; a
    /// read that finds nothing cached does not wait, it reads from the server likewise):
    /// another fill's older reply, inserted before those invalidations arrive, could
    /// otherwise take this thread back past the version it was just given.
    pub(crate) fn fill_in_background(
        self: &Arc<Self>,
        room: Room<'_>,
        read: Read,
        cmd: redis::Cmd,
    ) {
        let near = Arc::clone(self);
        // The room's count passes to the task's end.
        std::mem::forget(room);
        let done = Arc::new(Done::default());
        let own = OwnFill {
            store: self.store.id(),
            read: read.clone(),
            done: Arc::clone(&done),
        };
        let end = Background { near, done };
        drop(crate::exec::rt::spawn_global(async move {
            let answered = end.near.fill(&read, &cmd).await.is_some();
            end.done.end(answered);
        }));
        let _ = with_own(|o| o.push(own));
    }

    /// The count of background fills in flight or about to be.
    pub(super) fn background(&self) -> &AtomicUsize {
        &self.background
    }

    /// Whether no background fill is under way (for [`crate::testing::near_settled`]).
    #[cfg(feature = "testing")]
    pub(crate) fn settled(&self) -> bool {
        self.background.load(Ordering::Relaxed) == 0
    }

    /// For a blocking read of `read` by a thread that has a background fill of the same read
    /// under way: waits for that fill and every other fill of the key this thread has under
    /// way (at most [`HEARTBEAT_BOUND`] in all: [`settle_own`]), then the cached reply if
    /// there is one (counted as a hit, not a miss). `None` when this thread has no such fill,
    /// or one was not answered in time, or nothing is cached then. (Waiting for the one fill
    /// alone could serve a reply older than another field this thread was given since.)
    pub(crate) fn after_own_fill(&self, read: &Read) -> Option<Value> {
        let store = self.store.id();
        if !own_fill_of_read(store, read)? || !settle_own(store, &read.key) {
            return None;
        }
        self.served_after_fills(read)
    }

    /// The cached reply to `read` once this thread's fills of its key were waited for,
    /// counted as a hit (its miss was counted already, and is taken back).
    fn served_after_fills(&self, read: &Read) -> Option<Value> {
        let value = self
            .store
            .get(&read.key, &read.ident, false, |v| Some(v.clone()))?;
        self.store.unmiss(&read.key);
        Some(value)
    }

    /// An async miss of `read` on a current-thread runtime, whose thread has background
    /// fills of its key (see [`Near::fill_in_background`]): when `read` is cached, or one of
    /// them is of `read` itself, awaits them all, then the cached reply if there is one
    /// (counted as a hit, not a miss). `None` otherwise, and when one was not answered in
    /// time. (The hit looked for before did not wait: it may not block the runtime's thread.)
    pub(crate) async fn after_own_fills_async(&self, read: &Read) -> Option<Value> {
        let store = self.store.id();
        if !own_fills() || !own_fill_of(store, &read.key) {
            return None;
        }
        if !own_fill_of_read(store, read)? && !self.store.holds(&read.key, &read.ident) {
            return None;
        }
        if !settle_own_async(store, &read.key).await {
            return None;
        }
        self.served_after_fills(read)
    }

    /// Reads `read` from the server that owns its key, on that server's tracking connection
    /// (so the server tracks the key), caching the reply unless its key was invalidated, or
    /// everything flushed, meanwhile. `None` when the tracking connection cannot be had or
    /// the read failed: the caller then reads the usual way, uncached.
    pub(crate) async fn fill(self: &Arc<Self>, read: &Read, cmd: &redis::Cmd) -> Option<Value> {
        if self.refused.load(Ordering::Relaxed) {
            return None;
        }
        // Marked in flight before the server is chosen: a topology change (which flushes)
        // from now on keeps this reply out.
        let seen = self.store.begin_fill(&read.key);
        // Ends the fill even if this future is dropped while the read is in flight.
        let mut guard = FillGuard {
            near: self,
            key: &read.key,
            seen: Some(seen),
        };
        let redis = self.handle.get()?.upgrade()?;
        let (addr, reach) = self.server(&redis, &read.key).await?;
        let Tracking {
            id,
            mut conn,
            marks,
        } = self.connection(&redis, &addr, reach).await?;
        let sent = Instant::now();
        self.store.advance();
        let mut pipe = redis::pipe();
        pipe.add_command(cmd.clone())
            .cmd("PTTL")
            .arg(read.key.as_slice());
        // REDIRECT mode: a marker behind every invalidation sent before the read ran.
        let mark = marks.as_ref().map(|m| {
            let seq = m.next();
            pipe.cmd("PUBLISH").arg(&m.channel).arg(seq);
            seq
        });
        let replies = pipe.query_async::<Vec<Value>>(&mut conn).await;
        let (value, pttl) = match replies {
            Ok(r) if r.len() == 2 + usize::from(mark.is_some()) => {
                let mut r = r.into_iter();
                let (value, pttl) = (r.next()?, r.next()?);
                if let (Some(seq), Some(m)) = (mark, &marks) {
                    match r.next() {
                        // Heard by the subscriber: wait until it has applied everything up
                        // to the marker (about when this reply came).
                        Some(Value::Int(n)) if n >= 1 => {
                            if !m.wait(seq, HEARTBEAT_BOUND).await {
                                // Not heard in time: not cached (read again the usual way).
                                return None;
                            }
                        }
                        // Nobody subscribed (the subscriber is gone) or refused: the order
                        // cannot be told, and the subscriber may be lost.
                        Some(Value::Int(_)) => {
                            self.lose(id);
                            return None;
                        }
                        _ => return None,
                    }
                }
                (value, pttl)
            }
            Ok(_) => return None,
            Err(e) => {
                if is_redirect(&e) {
                    // The slot is not this master's (any more): the map is stale.
                    redis.forget_slot_owners();
                } else if crate::client::poisons(&e) || e.is_io_error() || e.is_timeout() {
                    self.lose(id);
                }
                return None;
            }
        };
        if let Value::ServerError(e) = &value {
            if is_redirect(&redis::RedisError::from(e.clone())) {
                redis.forget_slot_owners();
            }
            return None;
        }
        let value = resp2(value);
        #[cfg(feature = "testing")]
        crate::testing::near_hook::before_insert(&read.key);
        // The key's own expiry, measured from before the read was sent, less a millisecond:
        // the server counts whole milliseconds (a PTTL of n may mean n - 1 and a fraction).
        // (An age cap or an expiry too far off to count is never reached.)
        let mut deadline = Deadline {
            at: sent.checked_add(self.settings.max_age),
            exact: false,
        };
        if let Value::Int(ms) = pttl
            && ms >= 0
        {
            // ms >= 0 here; a PTTL of 0 leaves nothing to serve (exact, not a clamp).
            let left =
                Duration::from_millis(ms.unsigned_abs()).saturating_sub(Duration::from_millis(1));
            if let Some(expiry) = sent.checked_add(left)
                && deadline.at.is_none_or(|age| expiry <= age)
            {
                deadline = Deadline {
                    at: Some(expiry),
                    exact: true,
                };
            }
        }
        // On a cluster a key that does not exist is not cached: its slot may move to another
        // master without a word to this one's tracking (a key that exists is deleted by the
        // MIGRATE that moves it, which invalidates it), and a write there would go unseen
        // until the heartbeat finds the new slot map.
        let absent = matches!(pttl, Value::Int(-2));
        if absent && redis.layout() == Layout::Cluster {
            return Some(value);
        }
        if let Some(seen) = guard.seen.take() {
            self.store.end_fill(
                &read.key,
                seen,
                Some((read.ident.clone(), value.clone(), deadline)),
            );
        }
        Some(value)
    }
}

/// Whether a tracking connection answers its heartbeat within [`HEARTBEAT_BOUND`] (and, in the
/// `REDIRECT` mode, its redirect is not broken).
async fn alive(conn: &mut MultiplexedConnection, redirected: bool) -> bool {
    if !redirected {
        let ping = redis::cmd("PING");
        let answered = tokio::time::timeout(HEARTBEAT_BOUND, ping.query_async::<Value>(conn)).await;
        return matches!(answered, Ok(Ok(_)));
    }
    let mut info = redis::cmd("CLIENT");
    info.arg("TRACKINGINFO");
    match tokio::time::timeout(HEARTBEAT_BOUND, info.query_async::<Value>(conn)).await {
        Ok(Ok(v)) => !mentions(&v, "broken_redirect") && !mentions(&v, "off"),
        // A server before 6.2 has no TRACKINGINFO: it answered, which is what a PING asks.
        Ok(Err(e)) => is_refusal(&e),
        Err(_) => false,
    }
}

/// Whether `word` is among the strings of `v` (at any depth).
fn mentions(v: &Value, word: &str) -> bool {
    match v {
        Value::BulkString(b) => b == word.as_bytes(),
        Value::SimpleString(s) => s == word,
        Value::Array(items) | Value::Set(items) => items.iter().any(|i| mentions(i, word)),
        Value::Map(pairs) => pairs
            .iter()
            .any(|(k, v)| mentions(k, word) || mentions(v, word)),
        _ => false,
    }
}

/// The server answered with a refusal (an unknown command, a wrong argument, an ACL), not a
/// failure to connect.
fn is_refusal(e: &redis::RedisError) -> bool {
    matches!(
        e.kind(),
        redis::ErrorKind::RESP3NotSupported
            | redis::ErrorKind::Server(
                redis::ServerErrorKind::ResponseError | redis::ServerErrorKind::NoPerm
            )
    )
}

/// A cluster's redirect (the key's slot is another master's, or moving).
pub(crate) fn is_redirect(e: &redis::RedisError) -> bool {
    matches!(
        e.kind(),
        redis::ErrorKind::Server(
            redis::ServerErrorKind::Moved
                | redis::ServerErrorKind::Ask
                | redis::ServerErrorKind::TryAgain
                | redis::ServerErrorKind::ClusterDown
        )
    )
}

fn spawn_failed(e: impl std::fmt::Display) -> redis::RedisError {
    redis::RedisError::from(std::io::Error::other(format!(
        "near cache: the connecting task failed: {e}"
    )))
}

/// A connection to `client` with `config`, tracking on (redirected to `redirect`, the RESP2
/// mode, if given). Opened on pottery's runtime: the connection's reader must outlive the
/// caller's runtime (a blocking caller's runs only while it waits).
async fn open_tracking(
    client: redis::Client,
    config: redis::AsyncConnectionConfig,
    redirect: Option<i64>,
) -> redis::RedisResult<MultiplexedConnection> {
    crate::exec::rt::spawn_global(async move {
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let mut tracking = redis::cmd("CLIENT");
        tracking.arg("TRACKING").arg("ON");
        if let Some(id) = redirect {
            tracking.arg("REDIRECT").arg(id);
        }
        tracking.query_async::<()>(&mut conn).await?;
        Ok::<_, redis::RedisError>(conn)
    })
    .await
    .unwrap_or_else(|e| Err(spawn_failed(e)))
}

/// `client`'s server and settings, spoken in `protocol`.
fn with_protocol(
    client: &redis::Client,
    protocol: redis::ProtocolVersion,
) -> redis::RedisResult<redis::Client> {
    let info = client.get_connection_info().clone();
    let settings = info.redis_settings().clone().set_protocol(protocol);
    redis::Client::open(info.set_redis_settings(settings))
}

/// Stops a `REDIRECT` subscriber when dropped, unless disarmed.
struct StopOnDrop(Option<Arc<AtomicBool>>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Some(stop) = self.0.take() {
            stop.store(true, Ordering::SeqCst);
        }
    }
}

/// Ends a fill that did not insert (an error, or its future dropped).
struct FillGuard<'a> {
    near: &'a Near,
    key: &'a [u8],
    seen: Option<super::store::Snapshot>,
}

impl Drop for FillGuard<'_> {
    fn drop(&mut self) {
        if let Some(seen) = self.seen.take() {
            self.near.store.end_fill(self.key, seen, None);
        }
    }
}

impl super::redirect::Listener for Near {
    fn invalidated(&self, payload: Option<Value>) {
        Near::invalidated(self, payload);
    }

    fn lose(&self, id: u64) {
        Near::lose(self, id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `CLIENT TRACKINGINFO` as RESP2 and RESP3 give it: a broken redirect is found at any
    /// depth, and a healthy reply mentions neither `broken_redirect` nor `off`.
    #[test]
    fn tracking_info_flags() {
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let healthy = Value::Array(vec![
            bulk("flags"),
            Value::Array(vec![bulk("on")]),
            bulk("redirect"),
            Value::Int(7),
            bulk("prefixes"),
            Value::Array(vec![]),
        ]);
        assert!(!mentions(&healthy, "broken_redirect") && !mentions(&healthy, "off"));
        let broken = Value::Map(vec![(
            Value::SimpleString("flags".into()),
            Value::Set(vec![bulk("on"), bulk("broken_redirect")]),
        )]);
        assert!(mentions(&broken, "broken_redirect"));
    }

    /// A refusal is the server's answer; a redirect is a cluster's; neither is the other.
    #[test]
    fn refusals_and_redirects() {
        let refused = redis::RedisError::from((
            redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError),
            "unknown command",
        ));
        let moved = redis::RedisError::from((
            redis::ErrorKind::Server(redis::ServerErrorKind::Moved),
            "moved",
        ));
        let io = redis::RedisError::from(std::io::Error::other("reset"));
        assert!(is_refusal(&refused) && !is_redirect(&refused));
        assert!(is_redirect(&moved) && !is_refusal(&moved));
        assert!(!is_refusal(&io) && !is_redirect(&io));
    }
}
