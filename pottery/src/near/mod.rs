//! The near cache: reads served from this process's memory, kept fresh by the server's
//! invalidations (`CLIENT TRACKING`).
//!
//! Turn it on with [`RedisBuilder::near_cache`](crate::RedisBuilder::near_cache). Every
//! structure made from that handle then reads through it: a read whose reply is cached is
//! answered locally, without a round trip; any other read goes to the server that owns its
//! key on a dedicated *tracking connection* (RESP3 whatever protocol your URL speaks, or
//! the RESP2 `REDIRECT` mode below), so that the server remembers the key and sends an
//! invalidation when any client changes it; writes always go to the server.
//!
//! # Where it works
//!
//! * **One server**: one tracking connection.
//! * **A cluster**: one tracking connection per master, found from the slot map (`CLUSTER
//!   SLOTS`); a read is filled only from the master that owns its key's slot in the map the
//!   cache holds. Everything is flushed, and the map read anew, when the map changes (a slot
//!   migrated, a failover, a node added: the heartbeat compares it every [`HEARTBEAT_EVERY`]),
//!   when a fill or a batch of this handle is answered `MOVED`, `ASK`, `TRYAGAIN` or
//!   `CLUSTERDOWN`, and when any master's tracking connection is lost. A key that does not
//!   exist is not cached on a cluster: its slot could move to another master with no
//!   invalidation from the old one (a key that exists is deleted there by the `MIGRATE` that
//!   moves it, which invalidates it).
//! * **Sentinel**: tracking on the current master. A master switch (a sentinel's
//!   `+switch-master`, or the handle forgetting its master after a failed connection) flushes
//!   everything at once and drops the old master's tracking connection; the next fill tracks on
//!   the new master.
//! * **Servers that refuse `HELLO 3`** (before Redis 6, some proxies): the RESP2 `REDIRECT`
//!   mode. A second connection per server, on a thread of its own, subscribes to
//!   `__redis__:invalidate` (and a channel of its own, for the markers below), and the
//!   tracking connection (RESP2) runs `CLIENT TRACKING ON REDIRECT <its id>`. On a cluster
//!   each fill's marker `PUBLISH` reaches every node (the cluster bus carries it). Tracking is never enabled on a RESP2 connection without a redirect
//!   (the server would accept it and send nothing). The heartbeat asks `CLIENT TRACKINGINFO`
//!   there, so a broken redirect (the subscriber killed: the server then drops invalidations
//!   silently) flushes everything within [`HEARTBEAT_EVERY`] + [`HEARTBEAT_BOUND`]; the
//!   subscriber flushes at once when its own connection fails, and pings when quiet. A server
//!   that refuses `CLIENT TRACKING` too turns the near cache off for the handle: every read
//!   goes to the server.
//!
//! # The freshness rule
//!
//! A read never returns a value older than the last write acknowledged to any client before
//! the read started, plus the delivery of that write's invalidation (on loopback, well under a
//! millisecond); and this handle's own writes are visible to its next read at once
//! (read-your-writes). How:
//!
//! * before a read is sent its key is marked in flight (with the key's invalidation
//!   generation and the global flush generation); its reply is inserted only if no
//!   invalidation of the key and no flush arrived meanwhile. Invalidations are applied by the
//!   tracking connection's reader as it parses them, before any reply behind them is handed
//!   over, so an invalidation that the server sent before a reply is always seen first. (In
//!   the RESP2 `REDIRECT` mode invalidations come on the other connection; each fill's
//!   pipeline ends with a `PUBLISH` of a marker to the subscriber's own channel, queued
//!   behind every invalidation sent before the read ran, and the reply is inserted only once
//!   the subscriber has applied everything up to it: the same order, at no extra round trip.
//!   Where that `PUBLISH` is refused, nothing is cached);
//! * a blocking read that misses is answered on one of the handle's pooled connections, as on
//!   a handle without a near cache, and the cache is filled behind it: once that reply is
//!   in, the same read is sent on the tracking connection from pottery's I/O runtime, under
//!   the rule above. (Waiting for the tracking connection would cost a blocking caller two
//!   thread wake-ups, to the connection's task and back: about a fifth of a loopback round
//!   trip. The server runs such a read twice.) Until that fill ends, the reading thread is
//!   not answered from the cache for that key without waiting for it first: the fill was sent
//!   after the reply the thread was given, so once the tracking connection answers it every
//!   invalidation the server sent before that reply has been applied, and no older reply
//!   (another fill's, read before the last write) can be served to that thread. A read that
//!   finds nothing cached does not wait: it goes to the server the same way. So a thread
//!   that reads a key twice finds it cached the second time, and never goes back to an
//!   older version of a key than one it was given. (With 256 such fills in flight on the
//!   handle, or 16 of one thread, a blocking miss is read on the tracking connection itself
//!   instead, as an async one is.) An async miss on a current-thread runtime is read the same
//!   way, its task awaiting where a blocking caller waits (the runtime's tasks share its
//!   thread's fills); on a multi-threaded runtime it is read on the tracking connection
//!   itself, whose task runs beside it there;
//!   [`crate::testing::near_settled`] waits for such fills, for tests that count entries;
//! * this handle's writes invalidate their keys locally before they are sent and again when
//!   their reply arrives (scripts by their declared keys, commands by their arguments; a
//!   command whose keys are not known, such as `FLUSHDB` or `SWAPDB`, flushes everything);
//!   batches and transactions likewise;
//!   (Writes you send yourself on a connection from
//!   [`Redis::connection`](crate::Redis::connection) are not seen by the near cache until
//!   their invalidation arrives, like another client's);
//! * a null invalidation (`FLUSHALL`, `FLUSHDB`, `SWAPDB`) flushes everything;
//! * losing a tracking connection (a disconnect, `CLIENT KILL`, `tracking-redir-broken`, a
//!   heartbeat not answered within [`HEARTBEAT_BOUND`] — one is sent every
//!   [`HEARTBEAT_EVERY`]) flushes everything, and reads go to the server uncached until a
//!   new tracking connection is up; so does a change of topology (see above). A RESP2
//!   tracking connection that is lost gives no notice: the heartbeat finds it within
//!   [`HEARTBEAT_EVERY`] + [`HEARTBEAT_BOUND`];
//! * an entry is never served past its key's own expiry (each fill reads the key's `PTTL` in
//!   the same round trip; such an entry's hits read the clock) nor longer than
//!   [`NearCache::max_age`] after it was read (see there for the clock that checks it).
//!
//! Where no invalidation can come, the bound is the heartbeat's (about [`HEARTBEAT_EVERY`] +
//! [`HEARTBEAT_BOUND`]) instead of one delivery, because nothing else says so sooner:
//!
//! * a RESP2 tracking connection (the `REDIRECT` mode) lost without a word: the server tells
//!   the subscriber nothing when the tracking client goes, and redis-rs reports the end of a
//!   connection only on RESP3 ones. Its loss is found by the next fill sent on it (an I/O
//!   error flushes at once) or by the heartbeat's `CLIENT TRACKINGINFO`; the subscriber's own
//!   connection failing flushes at once;
//! * on a cluster, a topology change that no invalidation accompanies and no read of this
//!   handle meets as `MOVED`: a slot handed over by `CLUSTER SETSLOT ... NODE` with keys that
//!   were not moved by `MIGRATE` (no key is deleted on the old owner, so its tracking sends
//!   nothing, and the servers push no topology events to clients). The heartbeat compares
//!   the slot map (`CLUSTER SLOTS`) and flushes on any change.
//!
//! # What benefits
//!
//! Invalidation is per key: any write to a hash drops every cached read of that hash. So the
//! near cache pays off for read-mostly keys — configuration dicts, feature-flag sets,
//! [`RedisCache`](crate::RedisCache)s, `#[derive(RedisBacked)]` records read far more often
//! than written, a [`CachedOrderedDict`](crate::CachedOrderedDict)'s hash. A hash that some
//! client writes continuously (a counter, a queue) gains nothing: each of its reads is a miss.
//!
//! Served locally: the single-key reads `GET`, `STRLEN`, `HGET`, `HMGET`, `HGETALL`,
//! `HEXISTS`, `HLEN`, `HKEYS`, `HVALS`, `HSTRLEN`, `SCARD`, `SISMEMBER`, `SMISMEMBER`,
//! `SMEMBERS`, `LRANGE`, `LINDEX`, `LLEN`, `EXISTS` and `TYPE` that pottery's structures send:
//! `RedisDict` and `RedisSet` reads and snapshots, `RedisList` reads, `RedisBacked` loads and
//! getters, `CachedOrderedDict` lookups, and lookups of a `RedisCache` without per-entry time
//! to live (see [`RedisCache`](crate::RedisCache) for how its sliding expiry is kept).
//! Memory: [`NearCache::max_entries`] and [`NearCache::max_bytes`] bound it (second-chance
//! eviction); [`crate::testing::near_hook`] lets a test write between a fill's reply and its
//! insertion.
//!
//! # What a hit costs
//!
//! A hit is answered before any span, retry loop or boxed future. The store is sharded (32
//! shards by the key's hash, each behind its own read-write lock, with its own hit and miss
//! counters), so hits from many threads proceed in parallel; a read is found with one keyed
//! hash pass over the key and one over the read's identity (its command's name and
//! arguments, not the packed command). `RedisDict::get`, `RedisDict::contains_key` and
//! `RedisSet::contains` (blocking and async) look before they build their command: the
//! field is encoded into a reused buffer and the cached reply is copied out and decoded after
//! the lock is released, so a hit of a small value allocates nothing but what decoding it
//! makes. These three also keep, per thread, a small table of copies of the replies they hit
//! (256 slots of at most 176 bytes of argument and value: 64 KiB per thread that
//! reads through a near cache, not counted in [`NearCacheStats::bytes`]): a copy is served
//! without taking the shard's lock or writing anything another thread reads, and stops being
//! served the moment anything in its shard is invalidated, flushed, evicted, expired or
//! replaced (each bumps the shard's epoch, which the copy checks), so the freshness rule
//! above holds for it unchanged. Other cached reads build their command first and hand out a
//! copy of the cached reply.
//! Iteration (`HSCAN`, `SSCAN`), random reads, `TTL`, scripts that read several keys, and
//! reads inside a batch always go to the server.
//!
//! Async misses on a multi-threaded runtime are read on the tracking connection itself and
//! cached before they return; blocking misses, and async ones on a current-thread runtime,
//! are read on the handle's own connections and filled behind (see the freshness rule
//! above). Either way a miss costs what a read without the near cache costs.
//!
//! ```
//! # let server = pottery::testing::RedisServer::start().unwrap();
//! use pottery::{NearCache, Redis, RedisDict};
//!
//! let redis = Redis::builder(&server.url()).near_cache(NearCache::new()).build()?;
//! let config = RedisDict::<String, String>::new(&redis, "config");
//! config.insert("mode".into(), "fast".into())?;
//! assert_eq!(config.get("mode")?.as_deref(), Some("fast")); // from the server; cached behind it
//! assert_eq!(config.get("mode")?.as_deref(), Some("fast")); // from memory
//! assert!(redis.near_cache_stats().unwrap().hits >= 1);
//! # Ok::<(), pottery::Error>(())
//! ```

mod arg;
mod front;
mod hash;
mod hook;
mod link;
mod own;
mod plan;
mod redirect;
mod store;

use std::sync::Arc;
use std::time::Duration;

use crate::sync::lock;

pub(crate) use self::front::Reader;
pub(crate) use self::hook::{
    Decode, Hit, Probe, Probed, TouchAgain, bulk, hit, int, run_async, run_blocking,
};
pub(crate) use self::link::{Near, is_redirect};
pub(crate) use self::plan::{Plan, Touched, batch_touched, plan};

/// How often the tracking connection is sent a heartbeat `PING`.
pub const HEARTBEAT_EVERY: Duration = Duration::from_millis(500);

/// How long a heartbeat `PING` may take before the tracking connection is given up (and the
/// near cache flushed).
pub const HEARTBEAT_BOUND: Duration = Duration::from_secs(1);

/// Settings of a near cache (see the [module docs](crate::near) for what it serves and how it
/// stays fresh). It works on every kind of handle: one server, a cluster (a tracking
/// connection per master; a slot map change, `MOVED`/`ASK` or a lost master connection
/// flushes everything) and Sentinel (tracking the current master; a switch flushes
/// everything), over RESP3 or, where the server refuses `HELLO 3`, the RESP2 `REDIRECT` mode.
///
/// ```
/// use std::time::Duration;
///
/// let near = pottery::NearCache::new()
///     .max_entries(50_000)
///     .max_bytes(32 << 20)
///     .max_age(Duration::from_secs(30));
/// let redis = pottery::Redis::builder("redis://127.0.0.1").near_cache(near).build()?;
/// # let _ = redis;
/// # Ok::<(), pottery::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NearCache {
    pub(crate) max_entries: usize,
    pub(crate) max_bytes: usize,
    pub(crate) max_age: Duration,
}

impl Default for NearCache {
    fn default() -> Self {
        NearCache::new()
    }
}

impl NearCache {
    /// The defaults: 10,000 entries, 64 MiB, and one minute's age at most.
    ///
    /// ```
    /// let near = pottery::NearCache::new();
    /// # let _ = near;
    /// ```
    pub fn new() -> NearCache {
        NearCache {
            max_entries: 10_000,
            max_bytes: 64 << 20,
            max_age: Duration::from_secs(60),
        }
    }

    setters! {
        NearCache;
        /// At most this many cached replies (one per distinct read of a key: `HGET h a` and
        /// `HGET h b` are two). Past it, entries not read since the eviction clock last passed
        /// them go first (second-chance eviction, with a clock per shard of the store, the
        /// shards taken in turn).
        ///
        /// ```
        /// let near = pottery::NearCache::new().max_entries(1_000);
        /// # let _ = near;
        /// ```
        fn max_entries(n: usize);

        /// At most about this many bytes of cached replies, keys and bookkeeping. A reply larger
        /// than this is not cached.
        ///
        /// ```
        /// let near = pottery::NearCache::new().max_bytes(8 << 20);
        /// # let _ = near;
        /// ```
        fn max_bytes(n: usize);

        /// How long an entry may be served after the read that filled it, however quiet the
        /// server's invalidations: a cap on trusting the tracking connection without new traffic
        /// (the heartbeat already flushes on a silent connection within about
        /// [`HEARTBEAT_EVERY`] + [`HEARTBEAT_BOUND`]).
        ///
        /// Hits do not read the clock for it while the cap is more than a second away: they
        /// compare it with a clock that pottery's I/O runtime advances every 500 ms (and each
        /// fill), and read the precise clock within that second. So the cap is exact unless
        /// that runtime is held up for more than half a second (then it holds at its pace,
        /// as the heartbeat does). An entry whose key expires first is checked against the
        /// precise clock at every hit.
        ///
        /// ```
        /// let near = pottery::NearCache::new().max_age(std::time::Duration::from_secs(5));
        /// # let _ = near;
        /// ```
        fn max_age(age: Duration);
    }
}

/// What a handle's near cache has done ([`Redis::near_cache_stats`](crate::Redis::near_cache_stats)).
///
/// ```
/// let stats = pottery::NearCacheStats::default();
/// assert_eq!((stats.hits, stats.misses, stats.entries), (0, 0, 0));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NearCacheStats {
    /// Reads answered from memory.
    pub hits: u64,
    /// Cacheable reads that went to the server.
    pub misses: u64,
    /// Keys whose cached replies were dropped by an invalidation (the server's, or this
    /// handle's around its own write).
    pub invalidations: u64,
    /// Times everything was dropped (a null invalidation, a lost tracking connection).
    pub flushes: u64,
    /// Cached replies now.
    pub entries: usize,
    /// Their approximate size in bytes.
    pub bytes: usize,
    /// Entries evicted by the caps.
    pub evictions: u64,
    /// Replies not cached because their key was invalidated (or everything flushed) while
    /// they were in flight.
    pub rejected_fills: u64,
    /// Tracking connections made (attempts included; one per server while the first ones
    /// live: 1 on a single server or Sentinel, one per master read from on a cluster).
    pub connections: u64,
}

impl crate::Redis {
    /// What this handle's near cache has done, or `None` when it has none.
    ///
    /// ```
    /// let plain = pottery::Redis::from_url("redis://127.0.0.1")?;
    /// assert!(plain.near_cache_stats().is_none());
    /// let near = pottery::Redis::builder("redis://127.0.0.1")
    ///     .near_cache(pottery::NearCache::new())
    ///     .build()?;
    /// assert_eq!(near.near_cache_stats().map(|s| s.entries), Some(0));
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn near_cache_stats(&self) -> Option<NearCacheStats> {
        self.near().map(|n| n.stats())
    }

    /// Drops everything this handle's near cache holds (no I/O; a no-op without one).
    ///
    /// ```
    /// let redis = pottery::Redis::builder("redis://127.0.0.1")
    ///     .near_cache(pottery::NearCache::new())
    ///     .build()?;
    /// redis.near_cache_flush();
    /// assert_eq!(redis.near_cache_stats().map(|s| s.flushes), Some(1));
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn near_cache_flush(&self) {
        if let Some(n) = self.near() {
            n.flush();
        }
    }

    #[inline]
    pub(crate) fn near(&self) -> Option<&Arc<Near>> {
        self.near_state()
    }
}
