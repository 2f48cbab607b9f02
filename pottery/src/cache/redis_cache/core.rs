//! The plans of a cache (lookups, stores, removals, the per-entry-ttl scripts and their
//! index of deadlines), its counters and circuit breaker, and the memoising call itself.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cache::{DEFAULT_TIMEOUT, timeout_ms};
use crate::client::Redis;
use crate::error::{Error, Result};
use crate::exec::plan::{Op, script};
use crate::exec::reply::{bulk, decode, encode, int};
use crate::shell::runner::Runner;

use super::CacheInfo;
use super::flight::{Flight, FlightId, Joined};
use super::policy::{AsIs, Memo, Store, Whole};

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

pub(super) const HASH: &str = "hash";

/// How many expired entries a store or a lookup of a cache with per-entry time to live
/// deletes at most (on servers without hash-field expiry): more than one, so that a cache in
/// steady use deletes expired entries faster than it makes them; few enough that a lookup
/// stays cheap while a backlog drains.
pub(super) const TRIM_BATCH: &str = "100";

/// How long a cache leaves Redis alone after failing to reach it.
pub(super) const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Counters shared by the clones of one cache (and, for the caches `#[redis_cache]` makes on
/// every call, by all those of one handle and key: kept by the handle).
#[derive(Default)]
pub(crate) struct Stats {
    pub(super) hits: AtomicU64,
    pub(super) misses: AtomicU64,
    /// Until when (ns since [`EPOCH`]) Redis is left alone after a connection failure.
    pub(super) down_until: AtomicU64,
}

pub(super) static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

pub(super) fn now_ns() -> u64 {
    u64::try_from(EPOCH.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Whether an error says the server could not be reached (as opposed to a reply).
pub(super) fn unreachable(e: &Error) -> bool {
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
    pub(super) deadlines: String,
    pub(super) timeout_ms: u64,
    /// Each entry's own time to live (0: entries live as long as the hash).
    pub(super) ttl_ms: u64,
    /// Cross-process single flight: how long one process may hold an entry's computation
    /// lease, and others wait for its value (`None`: off).
    pub(super) single_flight: Option<Duration>,
    pub(super) strict: bool,
    pub(super) retry_after: Duration,
    pub(super) stats: Arc<Stats>,
}

impl Core {
    pub(super) fn new(redis: &Redis, key: String) -> Self {
        Core {
            redis: redis.clone(),
            deadlines: crate::cache::companion_key(&key, "deadlines"),
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
    pub(super) fn both_keys(&self) -> Vec<Vec<u8>> {
        vec![
            self.key.clone().into_bytes(),
            self.deadlines.clone().into_bytes(),
        ]
    }

    /// The plan: `scripts/cache_get.lua` (`CACHE_GET`); `HGET`.
    pub(super) fn lookup_plan(&self, field: Vec<u8>) -> Op<'_, Option<Vec<u8>>> {
        if self.ttl_ms == 0 && self.redis.near().is_some() {
            crate::cache::refresh_expiry_near(&self.redis, &self.key, self.timeout_ms);
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

    /// The plan: `scripts/cache_set.lua` (`CACHE_SET`).
    pub(super) fn store_plan(&self, field: Vec<u8>, value: Vec<u8>) -> Op<'_, ()> {
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
    pub(super) fn len_plan(&self) -> Op<'_, usize> {
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
    pub(super) fn remove_plan(&self, field: Vec<u8>) -> Op<'_, bool> {
        Op::eval(
            &self.key,
            HASH,
            &CACHE_REMOVE,
            self.both_keys(),
            vec![field],
            |key, v| Ok(int(key, v)? == 1),
        )
    }

    /// The plan: `UNLINK`.
    pub(super) fn clear_plan(&self) -> Op<'_, ()> {
        let mut cmd = redis::cmd("UNLINK");
        cmd.arg(&self.key).arg(&self.deadlines);
        Op::cmd(&self.key, HASH, cmd, |_, _| Ok(()))
    }

    pub(super) fn reset(&self) {
        self.stats.hits.store(0, Ordering::Relaxed);
        self.stats.misses.store(0, Ordering::Relaxed);
        self.stats.down_until.store(0, Ordering::Relaxed);
    }

    pub(super) fn info(&self, currsize: usize) -> CacheInfo {
        CacheInfo {
            hits: self.stats.hits.load(Ordering::Relaxed),
            misses: self.stats.misses.load(Ordering::Relaxed),
            maxsize: None,
            currsize,
        }
    }

    /// A lookup or store of the memoising call: tried once unless the cache is strict, since
    /// calling the function beats waiting out a failover (see [`Core::fallback`]).
    pub(super) fn tried<'k, T>(&self, op: Op<'k, T>) -> Op<'k, T> {
        if self.strict {
            op
        } else {
            op.without_retries()
        }
    }

    pub(super) fn reachable(&self) -> bool {
        now_ns() >= self.stats.down_until.load(Ordering::Relaxed)
    }

    /// Deals with a failure of the cache (not of the function): an error in strict mode;
    /// otherwise a warning, and a pause before Redis is tried again if it was unreachable.
    pub(super) fn fallback(&self, what: &str, e: Error) -> Result<()> {
        if self.strict {
            return Err(e);
        }
        if unreachable(&e) {
            // A pause longer than u64 nanoseconds (584 years) is "for ever", as asked.
            let until = now_ns()
                .saturating_add(u64::try_from(self.retry_after.as_nanos()).unwrap_or(u64::MAX));
            self.stats.down_until.store(until, Ordering::Relaxed);
        }
        tracing::warn!(
            key = crate::observe::event_key(Some(&self.redis), &self.key),
            error = %crate::observe::event_error(Some(&self.redis), &e),
            "pottery cache: {what}; calling the function"
        );
        Ok(())
    }

    /// Deletes the entry at `field` (an encoded argument tuple): whether a live one was there.
    /// Errors are returned, whatever the mode, and the pause after a failure is not heeded: an
    /// invalidation must be tried.
    pub(crate) async fn remove_field<R: Runner>(&self, runner: &R, field: Vec<u8>) -> Result<bool> {
        runner.run(&self.redis, self.remove_plan(field)).await
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
        runner.run(&self.redis, self.store_plan(field, value)).await
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
            .run(&self.redis, self.tried(self.store_plan(field, encoded)))
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
    pub(super) async fn memo_in_span<R, P, Out, F, Fut>(
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
                let release = self.flight_release_plan(&field, uuid);
                let _ = runner.run(&self.redis, self.tried(release)).await;
            }
            drop(lead);
            return Ok(out);
        }
    }

    /// The key of an entry's cross-process computation lease, in the hash's cluster slot: the
    /// hash's own `{tag}` if it has one, else the hash key as the tag.
    pub(super) fn flight_key(&self, field: &[u8]) -> String {
        let field = String::from_utf8_lossy(field);
        crate::cache::companion_key(&self.key, &format!("flight:{field}"))
    }

    /// The plan: `scripts/cache_flight_release.lua` (`FLIGHT_RELEASE`).
    pub(super) fn flight_release_plan(&self, field: &[u8], uuid: String) -> Op<'_, ()> {
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
    pub(super) async fn other_processes<R: Runner, V: DeserializeOwned>(
        &self,
        runner: &R,
        field: &[u8],
        bound: Duration,
    ) -> Remote<V> {
        let deadline = Instant::now() + bound;
        let lease_key = self.flight_key(field);
        let uuid = crate::shell::keys::uuid4();
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

    pub(super) fn flight_id(&self, field: &[u8]) -> FlightId {
        (
            self.redis.shown().to_owned(),
            self.key.clone(),
            field.to_vec(),
        )
    }

    /// The lookup half of a memoised call: a hit, a miss, or Redis not answering. Failures go
    /// through [`Core::fallback`]. (The caller counts: a hit, or a miss when it computes.)
    pub(super) async fn lookup_state<R: Runner, V: DeserializeOwned>(
        &self,
        runner: &R,
        field: &[u8],
    ) -> Result<Lookup<V>> {
        let mut state = Lookup::Unavailable;
        if self.reachable() {
            match runner
                .run(&self.redis, self.tried(self.lookup_plan(field.to_vec())))
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
pub(super) enum Remote<V> {
    /// One of them stored it meanwhile.
    Stored(V),
    /// This process holds the computation lease (its uuid).
    Mine(String),
    /// Compute without a lease (waited long enough, or Redis failed).
    Anyway,
}

/// What a lookup found.
pub(super) enum Lookup<V> {
    Hit(V),
    /// Redis answered: no entry (or one that does not decode).
    Miss,
    /// Redis did not answer (or is being left alone after failing).
    Unavailable,
}
