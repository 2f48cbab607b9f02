//! `RedisCache`: memoisation in a Redis hash, the runtime behind `#[redis_cache]`.
//!
#![doc = include_str!("../guide/redis_cache.md")]

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{DEFAULT_TIMEOUT, timeout_ms};
use crate::client::Redis;
use crate::error::{Error, Result};
use crate::exec::plan::{Op, script};
use crate::exec::reply::{bulk, decode, encode, int};
use crate::shell::runner::{Async, Blocking, Runner, block_on_ready};
use crate::sync::lock;

script!(CACHE_GET, "cache_get.lua", Idempotent);
script!(CACHE_SET, "cache_set.lua", Idempotent);
script!(
    CACHE_GET_TTL,
    ["cache_ttl_prelude.lua", "cache_get_ttl.lua"],
    Idempotent
);
script!(
    CACHE_SET_TTL,
    ["cache_ttl_prelude.lua", "cache_set_ttl.lua"],
    Idempotent
);
script!(CACHE_LEN, ["cache_ttl_prelude.lua", "cache_len.lua"], Read);
script!(
    CACHE_REMOVE,
    ["cache_ttl_prelude.lua", "cache_remove.lua"],
    Idempotent
);
script!(FLIGHT_RELEASE, "cache_flight_release.lua", Once);
script!(FLIGHT_TAKE, "cache_flight_take.lua", Once);

const HASH: &str = "hash";

/// How many expired entries a store or a lookup of a cache with per-entry time to live
/// deletes at most (on servers without hash-field expiry): more than one, so that a cache in
/// steady use deletes expired entries faster than it makes them; few enough that a lookup
/// stays cheap while a backlog drains.
const TRIM_BATCH: &str = "100";

/// How long a cache leaves Redis alone after failing to reach it.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// What a cache has seen: pottery's `CacheInfo`.
///
/// `hits` and `misses` count this process's calls through this cache (as pottery's do);
/// `currsize` is how many live entries the Redis hash holds now, from every process (`HLEN`,
/// less entries whose own [time to live](RedisCache::ttl) has passed and that are not deleted
/// yet); `maxsize` is always `None` (entries leave by the sliding timeout, not by size).
///
/// ```
/// let info = pottery::CacheInfo::default();
/// assert_eq!((info.hits, info.misses, info.maxsize, info.currsize), (0, 0, None, 0));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheInfo {
    /// Calls answered from the cache.
    pub hits: u64,
    /// Calls that ran the function (including those made while Redis was unreachable).
    pub misses: u64,
    /// Always `None`: the cache has no size limit.
    pub maxsize: Option<usize>,
    /// Live entries in the Redis hash.
    pub currsize: usize,
}

/// Counters shared by the clones of one cache (and, for the caches `#[redis_cache]` makes on
/// every call, by all those of one handle and key: kept by the handle).
#[derive(Default)]
pub(crate) struct Stats {
    hits: AtomicU64,
    misses: AtomicU64,
    /// Until when (ns since [`EPOCH`]) Redis is left alone after a connection failure.
    down_until: AtomicU64,
}

static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

fn now_ns() -> u64 {
    u64::try_from(EPOCH.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Whether an error says the server could not be reached (as opposed to a reply).
fn unreachable(e: &Error) -> bool {
    match e {
        Error::Redis { source, .. } | Error::MaybeApplied { source, .. } => {
            source.is_io_error()
                || source.is_timeout()
                || source.is_connection_dropped()
                || source.is_connection_refusal()
        }
        _ => false,
    }
}

/// The plans and the memoising algorithm, shared by the blocking and the async shells.
#[derive(Clone)]
pub(crate) struct Core {
    pub(crate) redis: Redis,
    pub(crate) key: String,
    /// The index of entries' deadlines (a sorted set in the hash's slot), for per-entry time
    /// to live on servers without hash-field expiry.
    deadlines: String,
    timeout_ms: u64,
    /// Each entry's own time to live (0: entries live as long as the hash).
    ttl_ms: u64,
    /// Cross-process single flight: how long one process may hold an entry's computation
    /// lease, and others wait for its value (`None`: off).
    single_flight: Option<Duration>,
    strict: bool,
    retry_after: Duration,
    stats: Arc<Stats>,
}

impl Core {
    fn new(redis: &Redis, key: String) -> Self {
        Core {
            redis: redis.clone(),
            deadlines: super::companion_key(&key, "deadlines"),
            key,
            timeout_ms: timeout_ms(Some(DEFAULT_TIMEOUT)),
            ttl_ms: 0,
            single_flight: None,
            strict: false,
            retry_after: DEFAULT_RETRY_AFTER,
            stats: Arc::default(),
        }
    }

    /// The hash and its index of deadlines: the keys of the per-entry-ttl scripts.
    fn both_keys(&self) -> Vec<Vec<u8>> {
        vec![
            self.key.clone().into_bytes(),
            self.deadlines.clone().into_bytes(),
        ]
    }

    fn lookup(&self, field: Vec<u8>) -> Op<'_, Option<Vec<u8>>> {
        if self.ttl_ms == 0 && self.redis.near().is_some() {
            super::refresh_expiry_near(&self.redis, &self.key, self.timeout_ms);
            let mut hget = redis::cmd("HGET");
            hget.arg(&self.key).arg(field);
            return Op::cmd(&self.key, HASH, hget, bulk);
        }
        if self.ttl_ms > 0 {
            return Op::eval(
                &self.key,
                HASH,
                &CACHE_GET_TTL,
                self.both_keys(),
                vec![
                    field,
                    self.timeout_ms.to_string().into_bytes(),
                    TRIM_BATCH.into(),
                ],
                bulk,
            );
        }
        Op::eval(
            &self.key,
            HASH,
            &CACHE_GET,
            vec![self.key.clone().into_bytes()],
            vec![field, self.timeout_ms.to_string().into_bytes()],
            bulk,
        )
    }

    fn store(&self, field: Vec<u8>, value: Vec<u8>) -> Op<'_, ()> {
        if self.ttl_ms > 0 {
            return Op::eval(
                &self.key,
                HASH,
                &CACHE_SET_TTL,
                self.both_keys(),
                vec![
                    self.timeout_ms.to_string().into_bytes(),
                    field,
                    self.ttl_ms.to_string().into_bytes(),
                    value,
                    TRIM_BATCH.into(),
                ],
                |_, _| Ok(()),
            );
        }
        Op::eval(
            &self.key,
            HASH,
            &CACHE_SET,
            vec![self.key.clone().into_bytes()],
            vec![self.timeout_ms.to_string().into_bytes(), field, value],
            |_, _| Ok(()),
        )
    }

    /// The live entries: `HLEN`, less the entries whose deadline passed and that are not
    /// deleted yet.
    fn len(&self) -> Op<'_, usize> {
        Op::eval(
            &self.key,
            HASH,
            &CACHE_LEN,
            self.both_keys(),
            Vec::new(),
            crate::exec::reply::length,
        )
    }

    /// Deletes the entry at `field`: whether a live one was there.
    fn remove(&self, field: Vec<u8>) -> Op<'_, bool> {
        Op::eval(
            &self.key,
            HASH,
            &CACHE_REMOVE,
            self.both_keys(),
            vec![field],
            |key, v| Ok(int(key, v)? == 1),
        )
    }

    fn clear(&self) -> Op<'_, ()> {
        let mut cmd = redis::cmd("UNLINK");
        cmd.arg(&self.key).arg(&self.deadlines);
        Op::cmd(&self.key, HASH, cmd, |_, _| Ok(()))
    }

    fn reset(&self) {
        self.stats.hits.store(0, Ordering::Relaxed);
        self.stats.misses.store(0, Ordering::Relaxed);
        self.stats.down_until.store(0, Ordering::Relaxed);
    }

    fn info(&self, currsize: usize) -> CacheInfo {
        CacheInfo {
            hits: self.stats.hits.load(Ordering::Relaxed),
            misses: self.stats.misses.load(Ordering::Relaxed),
            maxsize: None,
            currsize,
        }
    }

    /// A lookup or store of the memoising call: tried once unless the cache is strict, since
    /// calling the function beats waiting out a failover (see [`Core::fallback`]).
    fn tried<'k, T>(&self, op: Op<'k, T>) -> Op<'k, T> {
        if self.strict {
            op
        } else {
            op.without_retries()
        }
    }

    fn reachable(&self) -> bool {
        now_ns() >= self.stats.down_until.load(Ordering::Relaxed)
    }

    /// Deals with a failure of the cache (not of the function): an error in strict mode;
    /// otherwise a warning, and a pause before Redis is tried again if it was unreachable.
    fn fallback(&self, what: &str, e: Error) -> Result<()> {
        if self.strict {
            return Err(e);
        }
        if unreachable(&e) {
            let until = now_ns()
                .saturating_add(u64::try_from(self.retry_after.as_nanos()).unwrap_or(u64::MAX));
            self.stats.down_until.store(until, Ordering::Relaxed);
        }
        tracing::warn!(key = %self.key, error = %e, "pottery cache: {what}; calling the function");
        Ok(())
    }

    /// Deletes the entry at `field` (an encoded argument tuple): whether a live one was there.
    /// Errors are returned, whatever the mode, and the pause after a failure is not heeded: an
    /// invalidation must be tried.
    pub(crate) async fn remove_field<R: Runner>(&self, runner: &R, field: Vec<u8>) -> Result<bool> {
        runner.run(&self.redis, self.remove(field)).await
    }

    /// Stores `value` at `field` (an encoded argument tuple), with the cache's timeout and time
    /// to live. Errors are returned, whatever the mode.
    pub(crate) async fn store_field<R: Runner, V: Serialize + ?Sized>(
        &self,
        runner: &R,
        field: Vec<u8>,
        value: &V,
    ) -> Result<()> {
        let value = encode(&self.key, value)?;
        runner.run(&self.redis, self.store(field, value)).await
    }

    /// Stores `value` at `field`; failures go through [`Core::fallback`].
    pub(crate) async fn save<R: Runner, V: Serialize>(
        &self,
        runner: &R,
        field: Vec<u8>,
        value: &V,
    ) -> Result<()> {
        let encoded = match encode(&self.key, value) {
            Ok(v) => v,
            Err(e) => return self.fallback("the result does not encode", e),
        };
        if !self.reachable() {
            return Ok(());
        }
        match runner
            .run(&self.redis, self.tried(self.store(field, encoded)))
            .await
        {
            Ok(()) => Ok(()),
            Err(e) => self.fallback("cannot store the result", e),
        }
    }

    /// The memoising call: one round trip on a hit (lookup and sliding expiry in one script),
    /// two on a miss. Redis failures and undecodable entries fall back to calling `f`.
    pub(crate) async fn get_or_compute<R, A, V, F, Fut>(
        &self,
        runner: &R,
        args: &A,
        f: F,
    ) -> Result<V>
    where
        R: Runner,
        A: Serialize + ?Sized,
        V: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
    {
        self.memo::<R, Whole, V, F, Fut>(runner, encode(&self.key, args), f)
            .await
    }

    /// The memoising call under a [`Memo`] policy (which part of the result is stored), with
    /// the arguments already encoded.
    ///
    /// Callers in this process that miss one entry at once compute it once: the first leads,
    /// the others wait for it and read what it stored; when it stored nothing (an `Err`, a
    /// panic, a dropped future) the next one computes.
    pub(crate) async fn memo<R, P, Out, F, Fut>(
        &self,
        runner: &R,
        field: Result<Vec<u8>>,
        f: F,
    ) -> Result<Out>
    where
        R: Runner,
        P: Memo<Out>,
        P::Stored: DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Out>,
    {
        let span = crate::observe::operation(Some(&self.redis), "RedisCache.call", &self.key);
        let result = crate::observe::instrument(
            &span,
            self.memo_in_span::<R, P, Out, F, Fut>(runner, field, f),
        )
        .await;
        crate::observe::finish(&span, &result);
        result
    }

    /// [`Core::memo`], in its span.
    async fn memo_in_span<R, P, Out, F, Fut>(
        &self,
        runner: &R,
        field: Result<Vec<u8>>,
        f: F,
    ) -> Result<Out>
    where
        R: Runner,
        P: Memo<Out>,
        P::Stored: DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Out>,
    {
        let field = match field {
            Ok(field) => field,
            Err(e) => {
                self.fallback("the arguments do not encode", e)?;
                self.stats.misses.fetch_add(1, Ordering::Relaxed);
                return Ok(f().await);
            }
        };
        let mut f = Some(f);
        loop {
            let lead = match self.lookup_state::<R, P::Stored>(runner, &field).await? {
                Lookup::Hit(v) => {
                    self.stats.hits.fetch_add(1, Ordering::Relaxed);
                    crate::observe::event!(cache = "hit", "pottery cache: hit");
                    crate::observe::count!("pottery.cache.hits");
                    return Ok(P::hit(v));
                }
                // Redis is not answering: no point in lining up for it.
                Lookup::Unavailable => None,
                Lookup::Miss => match Flight::join(self.flight_id(&field)) {
                    Joined::Lead(lead) => Some(lead),
                    Joined::Follow(flight) => {
                        crate::observe::event!(
                            cache = "single_flight_wait",
                            "pottery cache: waiting for this process's computation"
                        );
                        crate::observe::count!("pottery.cache.single_flight_waits");
                        flight.wait::<R>().await;
                        continue;
                    }
                },
            };
            let mut lease = None;
            if let (Some(bound), Some(_)) = (self.single_flight, &lead) {
                match self
                    .other_processes::<R, P::Stored>(runner, &field, bound)
                    .await
                {
                    Remote::Stored(v) => {
                        self.stats.hits.fetch_add(1, Ordering::Relaxed);
                        crate::observe::event!(
                            cache = "hit",
                            "pottery cache: hit, stored by another process's computation"
                        );
                        crate::observe::count!("pottery.cache.hits");
                        return Ok(P::hit(v));
                    }
                    Remote::Mine(uuid) => lease = Some(uuid),
                    Remote::Anyway => {}
                }
            }
            let Some(f) = f.take() else {
                unreachable!("the computation runs once: every path after it returns")
            };
            self.stats.misses.fetch_add(1, Ordering::Relaxed);
            crate::observe::event!(cache = "miss", "pottery cache: miss; computing");
            crate::observe::count!("pottery.cache.misses");
            let out = f().await;
            if let Some(stored) = P::stored(&out) {
                self.save(runner, field.clone(), stored).await?;
            }
            if let Some(uuid) = lease {
                let release = self.flight_release(&field, uuid);
                let _ = runner.run(&self.redis, self.tried(release)).await;
            }
            drop(lead);
            return Ok(out);
        }
    }

    /// The key of an entry's cross-process computation lease, in the hash's cluster slot: the
    /// hash's own `{tag}` if it has one, else the hash key as the tag.
    fn flight_key(&self, field: &[u8]) -> String {
        let field = String::from_utf8_lossy(field);
        super::companion_key(&self.key, &format!("flight:{field}"))
    }

    fn flight_release(&self, field: &[u8], uuid: String) -> Op<'_, ()> {
        Op::eval(
            &self.key,
            "string",
            &FLIGHT_RELEASE,
            vec![self.flight_key(field).into_bytes()],
            vec![uuid.into_bytes()],
            |_, _| Ok(()),
        )
    }

    /// With single flight across processes: takes the entry's computation lease, or waits
    /// (polling, 2 ms growing to 10 ms apart, 50 ms after a second) for the process holding it
    /// to store the value —
    /// at most `bound`, after which this process computes too.
    async fn other_processes<R: Runner, V: DeserializeOwned>(
        &self,
        runner: &R,
        field: &[u8],
        bound: Duration,
    ) -> Remote<V> {
        let deadline = Instant::now() + bound;
        let lease_key = self.flight_key(field);
        let uuid = uuid::Uuid::new_v4().to_string();
        let started = Instant::now();
        let mut pause = Duration::from_millis(2);
        let lease_ms = u64::try_from(bound.as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
            .to_string();
        loop {
            let take = Op::eval(
                &self.key,
                HASH,
                &FLIGHT_TAKE,
                vec![
                    self.key.clone().into_bytes(),
                    lease_key.clone().into_bytes(),
                ],
                vec![
                    field.to_vec(),
                    uuid.clone().into_bytes(),
                    lease_ms.clone().into_bytes(),
                ],
                int,
            );
            match runner.run(&self.redis, self.tried(take)).await {
                Ok(1) => return Remote::Mine(uuid),
                Ok(2) => match self.lookup_state::<R, V>(runner, field).await {
                    Ok(Lookup::Hit(v)) => return Remote::Stored(v),
                    // There, but expired or undecodable: compute (and overwrite it).
                    Ok(Lookup::Miss | Lookup::Unavailable) | Err(_) => return Remote::Anyway,
                },
                Ok(_) => {}
                Err(_) => return Remote::Anyway,
            }
            let now = Instant::now();
            if now >= deadline {
                return Remote::Anyway;
            }
            let pause_now = pause.min(deadline - now);
            crate::shell::runner::pause::<R>(pause_now).await;
            // Look often while a computation is likely to finish (10 ms apart for the first
            // second), then back off to 50 ms.
            let cap = if started.elapsed() < Duration::from_secs(1) {
                10
            } else {
                50
            };
            pause = pause.mul_f64(1.5).min(Duration::from_millis(cap));
        }
    }

    fn flight_id(&self, field: &[u8]) -> FlightId {
        (
            self.redis.shown().to_owned(),
            self.key.clone(),
            field.to_vec(),
        )
    }

    /// The lookup half of a memoised call: a hit, a miss, or Redis not answering. Failures go
    /// through [`Core::fallback`]. (The caller counts: a hit, or a miss when it computes.)
    async fn lookup_state<R: Runner, V: DeserializeOwned>(
        &self,
        runner: &R,
        field: &[u8],
    ) -> Result<Lookup<V>> {
        let mut state = Lookup::Unavailable;
        if self.reachable() {
            match runner
                .run(&self.redis, self.tried(self.lookup(field.to_vec())))
                .await
            {
                Ok(Some(bytes)) => match decode(&self.key, &bytes) {
                    Ok(v) => return Ok(Lookup::Hit(v)),
                    // Overwritten with the fresh result by the store that follows.
                    Err(e) => {
                        self.fallback("a cached value does not decode", e)?;
                        state = Lookup::Miss;
                    }
                },
                Ok(None) => state = Lookup::Miss,
                Err(e) => self.fallback("cannot read the cache", e)?,
            }
        }
        Ok(state)
    }

    /// Calls `f` and stores its result, counting neither a hit nor a miss.
    pub(crate) async fn bypass<R, A, V, F, Fut>(&self, runner: &R, args: &A, f: F) -> Result<V>
    where
        R: Runner,
        A: Serialize + ?Sized,
        V: Serialize,
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
    {
        self.bypass_field::<R, AsIs, V, F, Fut>(runner, encode(&self.key, args), f)
            .await
    }

    /// [`Core::bypass`] under a [`Memo`] policy, with the arguments already encoded.
    pub(crate) async fn bypass_field<R, P, Out, F, Fut>(
        &self,
        runner: &R,
        field: Result<Vec<u8>>,
        f: F,
    ) -> Result<Out>
    where
        R: Runner,
        P: Store<Out>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Out>,
    {
        let out = f().await;
        match field {
            Ok(field) => {
                if let Some(stored) = P::stored(&out) {
                    self.save(runner, field, stored).await?;
                }
            }
            Err(e) => self.fallback("the arguments do not encode", e)?,
        }
        Ok(out)
    }
}

/// What other processes did about a missing entry.
enum Remote<V> {
    /// One of them stored it meanwhile.
    Stored(V),
    /// This process holds the computation lease (its uuid).
    Mine(String),
    /// Compute without a lease (waited long enough, or Redis failed).
    Anyway,
}

/// What a lookup found.
enum Lookup<V> {
    Hit(V),
    /// Redis answered: no entry (or one that does not decode).
    Miss,
    /// Redis did not answer (or is being left alone after failing).
    Unavailable,
}

/// Which part of a function's result a cache stores. Used by `#[redis_cache]` (which picks the
/// policy from the return type) and by [`RedisCache::get_or_try_compute`].
#[doc(hidden)]
pub trait Store<Out> {
    /// What is stored.
    type Stored: Serialize;
    /// The part to store, if any.
    fn stored(out: &Out) -> Option<&Self::Stored>;
}

/// A [`Store`] policy that can also turn a stored value back into a result.
#[doc(hidden)]
pub trait Memo<Out>: Store<Out> {
    /// The result for a hit.
    fn hit(v: Self::Stored) -> Out;
}

/// The whole result is stored (any type; what pottery does).
#[doc(hidden)]
pub struct Whole;
/// For bypass: the whole result, which needs only `Serialize`.
#[doc(hidden)]
pub struct AsIs;
/// `Option<T>`: `Some` is stored, `None` is not.
#[doc(hidden)]
pub struct SomeOnly;
/// `Result<T, E>`: `Ok` is stored, `Err` is not (and `E` needs no trait).
#[doc(hidden)]
pub struct OkOnly;
/// `Result<Option<T>, E>`: `Ok(Some)` is stored.
#[doc(hidden)]
pub struct OkSome;

impl<V: Serialize> Store<V> for AsIs {
    type Stored = V;
    fn stored(out: &V) -> Option<&V> {
        Some(out)
    }
}

impl<V: Serialize + DeserializeOwned> Store<V> for Whole {
    type Stored = V;
    fn stored(out: &V) -> Option<&V> {
        Some(out)
    }
}
impl<V: Serialize + DeserializeOwned> Memo<V> for Whole {
    fn hit(v: V) -> V {
        v
    }
}

impl<T: Serialize + DeserializeOwned> Store<Option<T>> for SomeOnly {
    type Stored = T;
    fn stored(out: &Option<T>) -> Option<&T> {
        out.as_ref()
    }
}
impl<T: Serialize + DeserializeOwned> Memo<Option<T>> for SomeOnly {
    fn hit(v: T) -> Option<T> {
        Some(v)
    }
}

impl<T: Serialize + DeserializeOwned, E> Store<std::result::Result<T, E>> for OkOnly {
    type Stored = T;
    fn stored(out: &std::result::Result<T, E>) -> Option<&T> {
        out.as_ref().ok()
    }
}
impl<T: Serialize + DeserializeOwned, E> Memo<std::result::Result<T, E>> for OkOnly {
    fn hit(v: T) -> std::result::Result<T, E> {
        Ok(v)
    }
}

impl<T: Serialize + DeserializeOwned, E> Store<std::result::Result<Option<T>, E>> for OkSome {
    type Stored = T;
    fn stored(out: &std::result::Result<Option<T>, E>) -> Option<&T> {
        out.as_ref().ok().and_then(Option::as_ref)
    }
}
impl<T: Serialize + DeserializeOwned, E> Memo<std::result::Result<Option<T>, E>> for OkSome {
    fn hit(v: T) -> std::result::Result<Option<T>, E> {
        Ok(Some(v))
    }
}

/// One cache entry of one server, for the in-process single flight.
type FlightId = (String, String, Vec<u8>);

static FLIGHTS: LazyLock<Mutex<HashMap<FlightId, Arc<Flight>>>> = LazyLock::new(Default::default);

/// A computation of one missing entry in this process, that other callers wait for.
#[derive(Default)]
struct Flight {
    done: Mutex<bool>,
    landed: Condvar,
    notify: tokio::sync::Notify,
}

enum Joined {
    /// Compute; the flight ends when this is dropped (however the computation ends).
    Lead(Leading),
    /// Somebody else computes: wait, then look again.
    Follow(Arc<Flight>),
}

struct Leading {
    id: Option<FlightId>,
    flight: Arc<Flight>,
}

impl Drop for Leading {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            lock(&FLIGHTS).remove(&id);
        }
        *lock(&self.flight.done) = true;
        self.flight.landed.notify_all();
        self.flight.notify.notify_waiters();
    }
}

impl Flight {
    fn join(id: FlightId) -> Joined {
        let mut flights = lock(&FLIGHTS);
        if let Some(flight) = flights.get(&id) {
            return Joined::Follow(Arc::clone(flight));
        }
        let flight = Arc::new(Flight::default());
        flights.insert(id.clone(), Arc::clone(&flight));
        Joined::Lead(Leading {
            id: Some(id),
            flight,
        })
    }

    fn is_done(&self) -> bool {
        *lock(&self.done)
    }

    /// Until the leader is done: blocking the thread for a blocking runner, else awaiting.
    async fn wait<R: Runner>(&self) {
        if R::BLOCKING {
            let mut done = lock(&self.done);
            while !*done {
                done = self.landed.wait(done).unwrap_or_else(|p| p.into_inner());
            }
            return;
        }
        let notified = self.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if !self.is_done() {
            notified.await;
        }
    }
}

/// Memoises a function's results in a Redis hash shared by every process that uses the same
/// key: Python pottery's `redis_cache`, and the runtime behind `#[redis_cache]`.
///
/// * The hash field is the arguments' JSON (pass them as a tuple: `(a, b)` is stored as
///   `[a, b]`), so it is the same in every process and language, and two different arguments
///   never share an entry. (Python pottery's fields are CPython `hash()` values, which collide —
///   `f(-1)` and `f(-2)` share one — and change per process for strings; its entries cannot
///   be shared with pottery-rs, and this is on purpose.)
/// * The whole hash expires `timeout` after the last hit, miss or bypass (default 60 s, a
///   sliding `PEXPIRE` sent in the same script as the lookup or the store).
/// * A hit is one round trip; a miss is two (the lookup, then the store).
/// * **The cache never makes the function fail.** When Redis cannot be reached, or a stored
///   value does not decode as the function's result type, the function is called and its
///   value returned (and stored, in the second case), with a `tracing` warning. After a
///   connection failure the cache leaves Redis alone for [`retry_after`](Self::retry_after)
///   (1 s), so a dead server does not add a timeout to every call; and the cache's lookups
///   and stores are tried once, not retried through a failover like other operations
///   ([`RedisBuilder::retry_timeout`](crate::RedisBuilder::retry_timeout)): calling the
///   function beats waiting. With [`strict(true)`](Self::strict) those failures are errors
///   instead, after the handle's retries.
///
/// On a handle with a [near cache](crate::near), a cache without per-entry time to live is
/// read through it: a lookup is an `HGET` served from memory when cached. Its sliding expiry
/// is then kept by a `PEXPIRE` sent in the background, at most once per tenth of the timeout
/// per handle and cache (and at the first lookup), so the hash expires between 0.9 × and 1 ×
/// `timeout` after the last lookup from this process (each refresh also invalidates the
/// cached entries: the next lookups read the server once). A cache with per-entry
/// [`ttl`](Self::ttl) always reads the server: an entry is never served past its deadline.
///
/// Clones share the hit and miss counters (and the pause after a connection failure). The
/// caches `#[redis_cache]` makes share theirs per handle and key, even when made afresh on
/// every call of a `&self` method.
///
/// ```
/// use pottery::{Redis, RedisCache};
///
/// let redis = Redis::from_env()?;
/// # let redis = pottery::testing::doctest_redis();
/// let cache = RedisCache::new(&redis, "expensive-function-cache-doc");
/// # cache.clear()?;
/// fn expensive_function(n: u64) -> u64 { n * n }
///
/// let n = 5;
/// assert_eq!(cache.get_or_compute(&(n,), || expensive_function(n))?, 25); // a miss: computed
/// assert_eq!(cache.get_or_compute(&(n,), || -> u64 { unreachable!() })?, 25); // a hit: from Redis
/// let info = cache.info()?;
/// assert_eq!((info.hits, info.misses, info.currsize), (1, 1, 1));
/// # cache.clear()?;
/// # Ok::<(), pottery::Error>(())
/// ```
#[derive(Clone)]
pub struct RedisCache {
    core: Core,
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache")
            .field("key", &self.core.key)
            .field("redis", &self.core.redis.shown())
            .field("timeout_ms", &self.core.timeout_ms)
            .finish()
    }
}

/// The settings and accessors of [`RedisCache`] and [`aio::RedisCache`], written once.
macro_rules! cache_shell {
    ($ty:ident, $path:literal) => {
        impl $ty {
            /// A cache in the hash at `key` (no I/O), with the default 60 s sliding timeout.
            ///
            /// ```
            #[doc = concat!("# use ", $path, " as This;")]
            /// # let redis = pottery::testing::doctest_redis();
            /// let cache = This::new(&redis, "prices");
            /// assert_eq!(cache.key(), "prices");
            /// ```
            pub fn new(redis: &Redis, key: impl Into<String>) -> Self {
                RedisCache {
                    core: Core::new(redis, key.into()),
                }
            }

            /// Sets the sliding timeout: the hash expires this long after its last use. `None` (or
            /// zero) keeps it forever.
            ///
            /// ```
            #[doc = concat!("# use ", $path, " as This;")]
            /// # let redis = pottery::testing::doctest_redis();
            /// let forever = This::new(&redis, "k").timeout(None);
            /// let short = This::new(&redis, "k").timeout(Some(std::time::Duration::from_secs(5)));
            /// assert_eq!(short.get_timeout(), Some(std::time::Duration::from_secs(5)));
            /// assert_eq!(forever.get_timeout(), None);
            /// ```
            #[must_use]
            pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
                self.core.timeout_ms = timeout_ms(timeout);
                self
            }

            /// Gives each entry its own time to live: it expires `ttl` after it was stored, however
            /// busy the hash is (a hit never extends it), and is then computed again. Where the
            /// server expires hash fields (`HPEXPIRE`: Redis ≥ 7.4, Valkey ≥ 9.0) the store script
            /// sets a field TTL and the value is stored as it is; elsewhere the deadline is kept with
            /// the value (`<deadline ms>|<value>`, by the server's clock) and checked by the lookup
            /// script, which deletes an expired entry. There the field also goes into an index of
            /// deadlines (a sorted set in the hash's cluster slot: `{<key>}:deadlines`, or
            /// `<key>:deadlines` when the key has a `{hash tag}`), from which every store and lookup
            /// deletes up to 100 entries whose deadline has passed, as the server's expiry would:
            /// the hash holds the live entries and a small margin, however many expire unread. The
            /// index slides and is cleared with the hash. Either way a hit stays one round trip. The
            /// hash's own sliding [`timeout`](Self::timeout) still applies. `None` (the default):
            /// entries live as long as the hash, as in pottery.
            ///
            /// ```
            #[doc = concat!("# use ", $path, " as This;")]
            /// # let redis = pottery::testing::doctest_redis();
            /// let fresh = This::new(&redis, "prices").ttl(Some(std::time::Duration::from_secs(30)));
            /// # let _ = fresh;
            /// ```
            #[must_use]
            pub fn ttl(mut self, ttl: Option<Duration>) -> Self {
                self.core.ttl_ms = ttl.map_or(0, |t| timeout_ms(Some(t)).max(1));
                self
            }

            /// One computation per missing entry across processes too (within one process it always
            /// is): the first caller to miss takes a short lease on the entry in Redis
            /// (`<key>:flight:<field>`, `bound` long) and computes; callers in other processes wait for
            /// the value it stores, polling, for at most `bound`, then compute themselves. A computation
            /// that fails or stores nothing frees the lease (or it expires) and the next caller
            /// computes. `None` (the default): off.
            ///
            /// ```
            #[doc = concat!("# use ", $path, " as This;")]
            /// # let redis = pottery::testing::doctest_redis();
            /// let reports = This::new(&redis, "reports")
            ///     .single_flight(Some(std::time::Duration::from_secs(10)));
            /// # let _ = reports;
            /// ```
            #[must_use]
            pub fn single_flight(mut self, bound: Option<Duration>) -> Self {
                self.core.single_flight = bound;
                self
            }

            /// The sliding timeout.
            ///
            /// ```
            #[doc = concat!("# use ", $path, " as This;")]
            /// # let redis = pottery::testing::doctest_redis();
            /// assert_eq!(This::new(&redis, "k").get_timeout(), Some(std::time::Duration::from_secs(60)));
            /// ```
            pub fn get_timeout(&self) -> Option<Duration> {
                (self.core.timeout_ms > 0).then(|| Duration::from_millis(self.core.timeout_ms))
            }

            /// Makes cache failures (Redis unreachable, an undecodable entry, arguments or a result
            /// that do not encode) errors instead of falling back to the function. Off by default.
            ///
            /// ```
            #[doc = concat!("# use ", $path, " as This;")]
            /// # let redis = pottery::testing::doctest_redis();
            /// let cache = This::new(&redis, "k").strict(true);
            /// # let _ = cache;
            /// ```
            #[must_use]
            pub fn strict(mut self, strict: bool) -> Self {
                self.core.strict = strict;
                self
            }

            /// How long the cache leaves Redis alone after failing to reach it (default 1 s); the
            /// function is simply called meanwhile.
            ///
            /// ```
            #[doc = concat!("# use ", $path, " as This;")]
            /// # let redis = pottery::testing::doctest_redis();
            /// let cache = This::new(&redis, "k").retry_after(std::time::Duration::from_millis(200));
            /// # let _ = cache;
            /// ```
            #[must_use]
            pub fn retry_after(mut self, pause: Duration) -> Self {
                self.core.retry_after = pause;
                self
            }

            /// The Redis key.
            ///
            /// ```
            #[doc = concat!("# use ", $path, " as This;")]
            /// # let redis = pottery::testing::doctest_redis();
            /// assert_eq!(This::new(&redis, "k").key(), "k");
            /// ```
            pub fn key(&self) -> &str {
                &self.core.key
            }
        }
    };
}

cache_shell!(RedisCache, "pottery::RedisCache");

impl RedisCache {
    /// A cache at a fresh `pottery:<uuid4>` key (pottery's `redis_cache(key=None)`).
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// let cache = pottery::RedisCache::random(&redis)?;
    /// assert!(cache.key().starts_with("pottery:"));
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn random(redis: &Redis) -> Result<Self> {
        Ok(RedisCache::new(
            redis,
            crate::shell::keys::random_key(redis)?,
        ))
    }

    /// The async twin, sharing this cache's counters.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// let cache = pottery::RedisCache::new(&redis, "k");
    /// assert_eq!(cache.to_async().key(), "k");
    /// ```
    pub fn to_async(&self) -> aio::RedisCache {
        aio::RedisCache {
            core: self.core.clone(),
        }
    }

    /// The cached result for `args`, or `f()`'s, stored for next time.
    ///
    /// `Err` only in [`strict`](Self::strict) mode; otherwise cache failures fall back to `f`.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let cache = pottery::RedisCache::random(&redis)?;
    /// let greeting = cache.get_or_compute(&("ada", 36), || format!("hello ada, 36"))?;
    /// assert_eq!(greeting, "hello ada, 36");
    /// # cache.clear()?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn get_or_compute<A, V>(&self, args: &A, f: impl FnOnce() -> V) -> Result<V>
    where
        A: Serialize + ?Sized,
        V: Serialize + DeserializeOwned,
    {
        block_on_ready(
            self.core
                .get_or_compute(&Blocking, args, || std::future::ready(f())),
        )
    }

    /// [`get_or_compute`](Self::get_or_compute) for a fallible function: only `Ok` values
    /// are stored; an `Err` is returned as it is, stored nowhere, and the next call computes
    /// again. `E` needs no trait. The outer `Result` is the cache's own (an error only in
    /// [`strict`](Self::strict) mode).
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let cache = pottery::RedisCache::random(&redis)?;
    /// let failed: Result<u32, std::io::Error> =
    ///     cache.get_or_try_compute(&(7,), || Err(std::io::Error::other("db down")))?;
    /// assert!(failed.is_err());                          // not stored
    /// let loaded = cache.get_or_try_compute(&(7,), || Ok::<_, std::io::Error>(49))?;
    /// assert_eq!(loaded.unwrap(), 49);                   // computed, and stored
    /// let cached = cache.get_or_try_compute(&(7,), || Err::<u32, _>(std::io::Error::other("unused")))?;
    /// assert_eq!(cached.unwrap(), 49);                   // a hit
    /// # cache.clear()?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn get_or_try_compute<A, V, E>(
        &self,
        args: &A,
        f: impl FnOnce() -> std::result::Result<V, E>,
    ) -> Result<std::result::Result<V, E>>
    where
        A: Serialize + ?Sized,
        V: Serialize + DeserializeOwned,
    {
        block_on_ready(self.core.memo::<Blocking, OkOnly, _, _, _>(
            &Blocking,
            encode(&self.core.key, args),
            || std::future::ready(f()),
        ))
    }

    /// For `#[redis_cache]`: the hash field for `args`.
    #[doc(hidden)]
    pub fn encode_args<A: Serialize + ?Sized>(&self, args: &A) -> Result<Vec<u8>> {
        encode(&self.core.key, args)
    }

    pub(crate) fn core(&self) -> &Core {
        &self.core
    }

    /// This cache with the counters and circuit breaker its handle keeps for its key, so that
    /// the caches `#[redis_cache]` makes on every call (for `&self` methods) share them.
    pub(crate) fn with_handle_state(mut self) -> Self {
        self.core.stats = self.core.redis.shared_state::<Stats>(&self.core.key);
        self
    }

    /// Calls `f` and stores its result for `args`, counting neither a hit nor a miss
    /// (pottery's `__bypass__`).
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let cache = pottery::RedisCache::random(&redis)?;
    /// cache.bypass(&(1,), || 10)?;
    /// assert_eq!(cache.get_or_compute(&(1,), || 99)?, 10);
    /// # cache.clear()?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn bypass<A, V>(&self, args: &A, f: impl FnOnce() -> V) -> Result<V>
    where
        A: Serialize + ?Sized,
        V: Serialize,
    {
        block_on_ready(
            self.core
                .bypass(&Blocking, args, || std::future::ready(f())),
        )
    }

    /// Hits and misses of this process, and the live entries in Redis (one round trip: a
    /// script of `HLEN` less the expired entries not yet deleted).
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let cache = pottery::RedisCache::random(&redis)?;
    /// assert_eq!(cache.info()?, pottery::CacheInfo::default());
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn info(&self) -> Result<CacheInfo> {
        let currsize = self.core.redis.run(self.core.len())?;
        Ok(self.core.info(currsize))
    }

    /// Deletes every entry (`UNLINK` of the hash and its index of deadlines) and resets the
    /// counters.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let cache = pottery::RedisCache::random(&redis)?;
    /// cache.get_or_compute(&(1,), || 1)?;
    /// cache.clear()?;
    /// assert_eq!(cache.info()?, pottery::CacheInfo::default());
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn clear(&self) -> Result<()> {
        self.core.reset();
        self.core.redis.run(self.core.clear())
    }
}

crate::shell::views! {
    /// A cache's plain reads and writes in a [`Batch`](crate::Batch) or an
    /// [`aio::Batch`](crate::aio::Batch) (from [`Batch::on`](crate::Batch::on)): warm a
    /// cache with many entries, or read many at once, in one round trip.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let cache = pottery::RedisCache::random(&redis)?;
    /// let batch = pottery::Batch::new(&redis);
    /// for n in 1..=3u64 {
    ///     batch.on(&cache).store(&(n,), &(n * n));
    /// }
    /// let nine = batch.on(&cache).get::<_, u64>(&(3,));
    /// batch.execute()?;
    /// assert_eq!(nine.get()?, Some(9));
    /// assert_eq!(cache.get_or_compute(&(2,), || 0u64)?, 4); // a hit: stored by the batch
    /// # cache.clear()?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    CacheOps<> on Core, for [RedisCache, aio::RedisCache] where [];
}

crate::shell::ops! {
    Core, [] where [] batch where [] for [CacheOps, RedisCache, aio::RedisCache];

    /// The value stored for `args`, if any: what [`get_or_compute`](Self::get_or_compute)
    /// would return on a hit, read without computing anything and without counting a hit or a
    /// miss in [`info`](Self::info). Like a hit, it restarts the entry's sliding timeout.
    /// `V` is the type the function returns (for [`get_or_try_compute`](Self::get_or_try_compute),
    /// the type inside `Ok`).
    fn get<A, V>(args: &A) -> Option<V>
        where [A: Serialize + ?Sized, V: DeserializeOwned + Send + 'static]
        = |core| Ok(core
            .lookup(encode(&core.key, args)?)
            .and_then(move |raw| raw.map(|b| decode(&core.key, &b)).transpose())),
    example {
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # let cache = pottery::RedisCache::random(&redis)?;
        /// assert_eq!(cache.get::<_, u64>(&(5,))?, None);
        /// cache.get_or_compute(&(5,), || 25u64)?;
        /// assert_eq!(cache.get::<_, u64>(&(5,))?, Some(25));
        /// # cache.clear()?;
        /// # Ok::<(), pottery::Error>(())
        /// ```
    }
    aio {
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// # let cache = pottery::aio::RedisCache::random(&redis).await?;
        /// assert_eq!(cache.get::<_, u64>(&(5,)).await?, None);
        /// # cache.clear().await?;
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
    };

    /// Stores `value` as the result for `args`, replacing any (what
    /// [`bypass`](Self::bypass) does with a value at hand): the entry then lives as a
    /// computed one would, with the cache's timeout and time to live.
    fn store<A, V>(args: &A, value: &V) -> () where [A: Serialize + ?Sized, V: Serialize + ?Sized]
        = |core| Ok(core.store(encode(&core.key, args)?, encode(&core.key, value)?)),
    example {
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # let cache = pottery::RedisCache::random(&redis)?;
        /// cache.store(&(5,), &25u64)?;
        /// assert_eq!(cache.get_or_compute(&(5,), || -> u64 { unreachable!() })?, 25);
        /// # cache.clear()?;
        /// # Ok::<(), pottery::Error>(())
        /// ```
    }
    aio {
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// # let cache = pottery::aio::RedisCache::random(&redis).await?;
        /// cache.store(&(5,), &25u64).await?;
        /// assert_eq!(cache.get::<_, u64>(&(5,)).await?, Some(25));
        /// # cache.clear().await?;
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
    };

    /// Deletes the entry for `args`, so that the next call computes it again (after an
    /// update of what it was computed from, say): whether a live entry was there. One round
    /// trip; the other entries, the hash's timeout and the counters are left alone. Errors
    /// are returned, whatever [`strict`](Self::strict) says: an invalidation that did not
    /// happen must not pass for one that did.
    fn remove<A>(args: &A) -> bool where [A: Serialize + ?Sized]
        = |core| Ok(core.remove(encode(&core.key, args)?)),
    example {
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # let cache = pottery::RedisCache::random(&redis)?;
        /// cache.get_or_compute(&(5,), || 25u64)?;
        /// assert!(cache.remove(&(5,))?);
        /// assert!(!cache.remove(&(5,))?);                  // nothing left to remove
        /// assert_eq!(cache.get_or_compute(&(5,), || 26u64)?, 26); // computed again
        /// # cache.clear()?;
        /// # Ok::<(), pottery::Error>(())
        /// ```
    }
    aio {
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// # let cache = pottery::aio::RedisCache::random(&redis).await?;
        /// cache.store(&(5,), &25u64).await?;
        /// assert!(cache.remove(&(5,)).await?);
        /// assert_eq!(cache.get::<_, u64>(&(5,)).await?, None);
        /// # cache.clear().await?;
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
    };
}

/// The async twin: [`aio::RedisCache`](crate::aio::RedisCache).
pub mod aio {
    use super::*;

    /// Async [`RedisCache`](crate::RedisCache): the function is an `async` closure.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let cache = pottery::aio::RedisCache::new(&redis, "async-cache-doc");
    /// # cache.clear().await?;
    /// let v: u64 = cache.get_or_compute(&(3,), || async { 3 * 3 }).await?;
    /// assert_eq!(v, 9);
    /// assert_eq!(cache.info().await?.misses, 1);
    /// # cache.clear().await?;
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    #[derive(Clone)]
    pub struct RedisCache {
        pub(super) core: Core,
    }

    impl std::fmt::Debug for RedisCache {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("aio::RedisCache")
                .field("key", &self.core.key)
                .field("redis", &self.core.redis.shown())
                .field("timeout_ms", &self.core.timeout_ms)
                .finish()
        }
    }

    cache_shell!(RedisCache, "pottery::aio::RedisCache");

    impl RedisCache {
        /// See [`crate::RedisCache::random`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// let cache = pottery::aio::RedisCache::random(&redis).await?;
        /// assert!(cache.key().starts_with("pottery:"));
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub async fn random(redis: &Redis) -> Result<Self> {
            Ok(RedisCache::new(
                redis,
                crate::shell::keys::random_key_async(redis).await?,
            ))
        }

        /// The blocking twin, sharing this cache's counters.
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// assert_eq!(pottery::aio::RedisCache::new(&redis, "k").to_blocking().key(), "k");
        /// ```
        pub fn to_blocking(&self) -> crate::RedisCache {
            crate::RedisCache {
                core: self.core.clone(),
            }
        }

        /// See [`crate::RedisCache::get_or_compute`]; `f` returns a future.
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// # let cache = pottery::aio::RedisCache::new(&redis, "async-goc-doc");
        /// # cache.clear().await?;
        /// let v: String = cache.get_or_compute(&("x",), || async { "y".to_string() }).await?;
        /// assert_eq!(v, "y");
        /// # cache.clear().await?;
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub async fn get_or_compute<A, V, F, Fut>(&self, args: &A, f: F) -> Result<V>
        where
            A: Serialize + ?Sized,
            V: Serialize + DeserializeOwned,
            F: FnOnce() -> Fut,
            Fut: Future<Output = V>,
        {
            self.core.get_or_compute(&Async, args, f).await
        }

        /// See [`crate::RedisCache::get_or_try_compute`]; `f` returns a future.
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// # let cache = pottery::aio::RedisCache::random(&redis).await?;
        /// let r = cache
        ///     .get_or_try_compute(&(1,), || async { Err::<u32, _>(std::io::Error::other("down")) })
        ///     .await?;
        /// assert!(r.is_err());
        /// let r = cache.get_or_try_compute(&(1,), || async { Ok::<u32, std::io::Error>(2) }).await?;
        /// assert_eq!(r.unwrap(), 2);
        /// # cache.clear().await?;
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub async fn get_or_try_compute<A, V, E, F, Fut>(
            &self,
            args: &A,
            f: F,
        ) -> Result<std::result::Result<V, E>>
        where
            A: Serialize + ?Sized,
            V: Serialize + DeserializeOwned,
            F: FnOnce() -> Fut,
            Fut: Future<Output = std::result::Result<V, E>>,
        {
            self.core
                .memo::<Async, OkOnly, _, _, _>(&Async, encode(&self.core.key, args), f)
                .await
        }

        /// See [`crate::RedisCache::bypass`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// # let cache = pottery::aio::RedisCache::new(&redis, "async-bypass-doc");
        /// assert_eq!(cache.bypass(&(1,), || async { 2 }).await?, 2);
        /// # cache.clear().await?;
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub async fn bypass<A, V, F, Fut>(&self, args: &A, f: F) -> Result<V>
        where
            A: Serialize + ?Sized,
            V: Serialize,
            F: FnOnce() -> Fut,
            Fut: Future<Output = V>,
        {
            self.core.bypass(&Async, args, f).await
        }

        /// See [`crate::RedisCache::info`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// # let cache = pottery::aio::RedisCache::new(&redis, "async-info-doc");
        /// # cache.clear().await?;
        /// assert_eq!(cache.info().await?.currsize, 0);
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub async fn info(&self) -> Result<CacheInfo> {
            let currsize = self.core.redis.run_async(self.core.len()).await?;
            Ok(self.core.info(currsize))
        }

        /// See [`crate::RedisCache::clear`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// # let cache = pottery::aio::RedisCache::new(&redis, "async-clear-doc");
        /// cache.clear().await?;
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub async fn clear(&self) -> Result<()> {
            self.core.reset();
            self.core.redis.run_async(self.core.clear()).await
        }
    }
}
