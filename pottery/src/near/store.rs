//! The local store: cached replies by key, each key's invalidation generation and reads in
//! flight, flush generations, and second-chance (CLOCK) eviction under the entry and byte
//! caps. No I/O here.
//!
//! It is sharded so that hits scale across threads: a key and all its cached reads live in
//! one of [`SHARDS`] shards (chosen by the key's hash), each behind its own `RwLock`; a hit
//! takes its shard's read lock, so hits on any keys proceed in parallel, and writes nothing
//! shared but that lock and its shard's hit counter. A read is found by two hashes computed
//! once per lookup (one keyed pass over the key's bytes, one over the read's identity), used
//! as they are by the shard's tables. The caps are global (two atomics, written by inserts,
//! evictions and invalidations only), so `entries` never exceeds `max_entries`.
//!
//! Each shard also has an *epoch*, bumped (under its write lock) whenever an entry of the
//! shard is removed or replaced: an invalidation, a flush, an eviction by the caps, an entry
//! past its deadline, a reply that replaces another. A copy of an entry taken under the read
//! lock with the epoch then current is the entry as long as the epoch has not moved: that is
//! how the per-thread front tables ([`super::front`]) serve hits without taking the lock.

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasherDefault;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use redis::Value;

use super::hash::{Mixed, hash, random_word};

type Map<V> = HashMap<u64, V, BuildHasherDefault<Mixed>>;

/// How many shards: enough that threads hitting different keys rarely share one.
pub(crate) const SHARDS: usize = 32;
const _: () = assert!(SHARDS <= 256, "a Stamp holds the shard index in a u8");

/// How often the coarse clock is advanced (by a task of pottery's I/O runtime).
pub(crate) const TICK: Duration = Duration::from_millis(500);

/// An entry whose deadline is further than this past the coarse clock is served without
/// reading the precise clock: two ticks (the clock is at most one tick behind while pottery's
/// I/O runtime runs on time).
const SLACK: Duration = Duration::from_millis(1000);

/// One cached reply: a read's reply (in RESP2 shape) for one key.
struct Entry {
    /// The read's identity ([`crate::near::plan::write_ident`]).
    ident: Box<[u8]>,
    value: Value,
    /// Its place in the eviction queue (a record whose id differs is stale).
    id: u64,
    size: usize,
    /// Never served at or after this time (nanoseconds since the store's base): the entry's
    /// age cap or its key's own expiry.
    until: u64,
    /// `until` is the key's own expiry: always checked against the precise clock.
    exact: bool,
    /// Set by a hit: the entry gets a second chance when the clock hand meets it.
    referenced: AtomicBool,
}

/// Everything about one key.
struct Slot {
    key: Box<[u8]>,
    /// Bumped by every invalidation of the key: a read that started under another generation
    /// must not insert its reply.
    generation: u64,
    /// Fills of this key in flight (the slot outlives its entries while any is).
    in_flight: u32,
    /// Cached replies by the hash of their identity.
    entries: Map<Entry>,
}

#[derive(Default)]
struct Inner {
    /// Slots by the hash of their key.
    slots: Map<Slot>,
    /// Bumped by every flush of this shard.
    flushes: u64,
    /// The clock: (key hash, identity hash, entry id), oldest first.
    clock: VecDeque<(u64, u64, u64)>,
    entries: usize,
    invalidations: u64,
    evictions: u64,
    rejected_fills: u64,
}

/// A value on a cache line of its own.
#[repr(align(128))]
#[derive(Default)]
struct Line<T>(T);

/// One shard, on cache lines of its own.
#[repr(align(128))]
#[derive(Default)]
struct Shard {
    /// Bumped under the write lock whenever an entry of this shard is removed or replaced
    /// (see the module docs); on a line of its own, which hits on the lock do not write.
    epoch: Line<AtomicU64>,
    inner: RwLock<Inner>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl Shard {
    /// Called with the write lock held, after an entry was removed or replaced.
    fn bump(&self) {
        self.epoch.0.fetch_add(1, Release);
    }
}

/// Where a served entry was when it was copied: the shard's epoch then, and the entry's
/// deadline. A copy may be served again while [`Store::still`] says so.
#[derive(Clone, Copy)]
pub(crate) struct Stamp {
    epoch: u64,
    until: u64,
    exact: bool,
    /// The entry's shard.
    shard: u8,
}

/// One thread's count of front-table hits of one store: written by that thread only.
#[repr(align(128))]
#[derive(Default)]
pub(crate) struct ThreadHits(AtomicU64);

impl ThreadHits {
    /// One more (only the owning thread writes it: a load and a store, no locked
    /// instruction).
    #[inline]
    pub(crate) fn one(&self) {
        self.0.store(self.0.load(Relaxed) + 1, Relaxed);
    }
}

/// The per-thread hit counters of a store: those of live threads, and what threads that
/// ended had counted.
#[derive(Default)]
pub(crate) struct Hits {
    inner: Mutex<HitsInner>,
}

#[derive(Default)]
struct HitsInner {
    retired: u64,
    live: Vec<Arc<ThreadHits>>,
}

impl Hits {
    fn lock(&self) -> std::sync::MutexGuard<'_, HitsInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new thread's counter, counted from now on.
    pub(crate) fn register(&self) -> Arc<ThreadHits> {
        let counter = Arc::new(ThreadHits::default());
        self.lock().live.push(Arc::clone(&counter));
        counter
    }

    /// A thread ended: its count is kept, its counter dropped (under the lock the totals
    /// take, so nothing is counted twice or lost).
    pub(crate) fn retire(&self, counter: &Arc<ThreadHits>) {
        let mut inner = self.lock();
        if let Some(i) = inner.live.iter().position(|c| Arc::ptr_eq(c, counter)) {
            let gone = inner.live.swap_remove(i);
            inner.retired += gone.0.load(Relaxed);
        }
    }

    fn total(&self) -> u64 {
        let inner = self.lock();
        inner.retired + inner.live.iter().map(|c| c.0.load(Relaxed)).sum::<u64>()
    }
}

/// Where a read of one key was when it was sent (see [`Store::begin_fill`]).
pub(crate) struct Snapshot {
    generation: u64,
    flushes: u64,
    /// `false` when another key holds the key's hash (never seen in practice): nothing of
    /// this key is cached then.
    tracked: bool,
}

/// When an entry stops being served.
pub(crate) struct Deadline {
    /// `None`: never (an age cap too long to count).
    pub at: Option<Instant>,
    /// `at` is the key's own expiry (not only the age cap).
    pub exact: bool,
}

/// Totals over the shards.
#[derive(Default)]
pub(crate) struct Counters {
    pub hits: u64,
    pub misses: u64,
    pub invalidations: u64,
    pub flushes: u64,
    pub evictions: u64,
    pub rejected_fills: u64,
    pub entries: usize,
    pub bytes: usize,
}

pub(crate) struct Store {
    /// This store's number, unique in the process (never 0): what front-table slots are
    /// tagged with.
    id: u64,
    shards: Box<[Shard]>,
    /// Front-table hits, counted per thread.
    hits: Arc<Hits>,
    /// Secrets of the key hash and of the identity hash.
    secrets: [[u64; 2]; 2],
    max_entries: usize,
    max_bytes: usize,
    /// Entries and bytes, reservations of inserts under way included.
    entries: AtomicUsize,
    bytes: AtomicUsize,
    flushes: AtomicU64,
    next_id: AtomicU64,
    /// Where eviction starts looking (a shard index).
    hand: AtomicUsize,
    base: Instant,
    /// The coarse clock: nanoseconds since `base`, never ahead of the precise clock.
    tick: AtomicU64,
}

/// A reply's approximate footprint in bytes.
pub(crate) fn value_size(v: &Value) -> usize {
    32 + match v {
        Value::BulkString(b) => b.len(),
        Value::SimpleString(s) => s.len(),
        Value::Array(items) | Value::Set(items) => items.iter().map(value_size).sum(),
        Value::Map(pairs) => pairs
            .iter()
            .map(|(k, v)| value_size(k) + value_size(v))
            .sum(),
        _ => 0,
    }
}

fn read(l: &RwLock<Inner>) -> RwLockReadGuard<'_, Inner> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write(l: &RwLock<Inner>) -> RwLockWriteGuard<'_, Inner> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

fn nanos(d: Duration) -> u64 {
    // 584 years.
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Inner {
    /// Drops the slot of `hk` if nothing is cached or in flight for it.
    fn forget_if_idle(&mut self, hk: u64) {
        if self
            .slots
            .get(&hk)
            .is_some_and(|s| s.in_flight == 0 && s.entries.is_empty())
        {
            self.slots.remove(&hk);
        }
    }

    /// Evicts one entry (second chance for those hit since the hand last passed); its size.
    fn evict_one(&mut self) -> Option<usize> {
        while let Some((hk, hi, id)) = self.clock.pop_front() {
            let Some(slot) = self.slots.get_mut(&hk) else {
                continue;
            };
            let Some(e) = slot.entries.get_mut(&hi) else {
                continue;
            };
            if e.id != id {
                continue;
            }
            if *e.referenced.get_mut() {
                *e.referenced.get_mut() = false;
                self.clock.push_back((hk, hi, id));
                continue;
            }
            let size = e.size;
            slot.entries.remove(&hi);
            self.entries -= 1;
            self.evictions += 1;
            self.forget_if_idle(hk);
            return Some(size);
        }
        None
    }
}

impl Store {
    pub(crate) fn new(max_entries: usize, max_bytes: usize) -> Store {
        static IDS: AtomicU64 = AtomicU64::new(1);
        Store {
            id: IDS.fetch_add(1, Relaxed),
            hits: Arc::default(),
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            secrets: [
                [random_word(), random_word()],
                [random_word(), random_word()],
            ],
            max_entries,
            max_bytes,
            entries: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            flushes: AtomicU64::new(0),
            next_id: AtomicU64::new(0),
            hand: AtomicUsize::new(0),
            base: Instant::now(),
            tick: AtomicU64::new(0),
        }
    }

    fn key_hash(&self, key: &[u8]) -> u64 {
        hash(self.secrets[0], key)
    }

    /// This store's number (unique in the process, never 0).
    #[inline]
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Where front-table hits are counted.
    pub(crate) fn hits(&self) -> &Arc<Hits> {
        &self.hits
    }

    /// The hashes of `key` and of the read `ident` (what [`Store::lookup`] takes).
    pub(crate) fn hashes(&self, key: &[u8], ident: &[u8]) -> (u64, u64) {
        (self.key_hash(key), hash(self.secrets[1], ident))
    }

    /// Whether a copy stamped `stamp` of an entry may be served now: nothing in its shard
    /// was removed or replaced since (one load), and its deadline is not past.
    #[inline]
    pub(crate) fn still(&self, stamp: &Stamp) -> bool {
        self.shards
            .get(usize::from(stamp.shard))
            .is_some_and(|shard| shard.epoch.0.load(Acquire) == stamp.epoch)
            && self.servable_at(stamp.until, stamp.exact)
    }

    fn shard(&self, hk: u64) -> &Shard {
        &self.shards[shard_index(hk)]
    }

    fn now(&self) -> u64 {
        nanos(self.base.elapsed())
    }

    /// Advances the coarse clock to now.
    pub(crate) fn advance(&self) {
        self.tick.fetch_max(self.now(), Relaxed);
    }

    fn servable(&self, e: &Entry) -> bool {
        self.servable_at(e.until, e.exact)
    }

    #[inline]
    fn servable_at(&self, until: u64, exact: bool) -> bool {
        // Far enough past the coarse clock that it cannot be stale yet (a sum that does not
        // fit, centuries away, falls through to the precise clock).
        if !exact
            && self
                .tick
                .load(Relaxed)
                .checked_add(nanos(SLACK))
                .is_some_and(|soon| until > soon)
        {
            return true;
        }
        self.now() < until
    }

    /// The cached reply to the read `ident` of `key`, passed to `read` (under the shard's
    /// read lock: `read` must be quick and call nothing that could use the near cache); its
    /// result when the entry may be served now and `read` accepts it (a hit), else `None`
    /// (counted as a miss when there was nothing to serve and `count_miss` is set).
    pub(crate) fn get<R>(
        &self,
        key: &[u8],
        ident: &[u8],
        count_miss: bool,
        read: impl FnOnce(&Value) -> Option<R>,
    ) -> Option<R> {
        let (hk, hi) = self.hashes(key, ident);
        self.lookup(hk, hi, key, ident, count_miss, |v, _| read(v))
    }

    /// [`Store::get`] with the hashes of `key` and `ident` ([`Store::hashes`]) given, and
    /// the entry's [`Stamp`] passed to `read` (for a copy that outlives the lock).
    pub(crate) fn lookup<R>(
        &self,
        hk: u64,
        hi: u64,
        key: &[u8],
        ident: &[u8],
        count_miss: bool,
        read: impl FnOnce(&Value, Stamp) -> Option<R>,
    ) -> Option<R> {
        let shard = self.shard(hk);
        let inner = read_guard(shard);
        let found = inner
            .slots
            .get(&hk)
            .filter(|s| *s.key == *key)
            .and_then(|s| s.entries.get(&hi))
            .filter(|e| *e.ident == *ident);
        let missed = |shard: &Shard| {
            if count_miss {
                shard.misses.fetch_add(1, Relaxed);
            }
            None
        };
        let Some(e) = found else {
            drop(inner);
            return missed(shard);
        };
        if !self.servable(e) {
            let id = e.id;
            drop(inner);
            self.expire(hk, hi, id);
            return missed(shard);
        }
        // The epoch only moves under the write lock: as of this entry.
        let stamp = Stamp {
            epoch: shard.epoch.0.load(Relaxed),
            until: e.until,
            exact: e.exact,
            // Fewer than 256 shards.
            shard: shard_index(hk) as u8,
        };
        let out = read(&e.value, stamp)?;
        if !e.referenced.load(Relaxed) {
            e.referenced.store(true, Relaxed);
        }
        drop(inner);
        shard.hits.fetch_add(1, Relaxed);
        Some(out)
    }

    /// Removes entry `id` past its deadline.
    fn expire(&self, hk: u64, hi: u64, id: u64) {
        let shard = self.shard(hk);
        let mut inner = write(&shard.inner);
        let Some(slot) = inner.slots.get_mut(&hk) else {
            return;
        };
        let size = match slot.entries.get(&hi) {
            Some(e) if e.id == id && !self.servable(e) => e.size,
            _ => return,
        };
        slot.entries.remove(&hi);
        inner.entries -= 1;
        inner.forget_if_idle(hk);
        shard.bump();
        drop(inner);
        self.release(1, size);
    }

    /// Marks a read of `key` in flight, before it is sent.
    pub(crate) fn begin_fill(&self, key: &[u8]) -> Snapshot {
        let hk = self.key_hash(key);
        let mut guard = write(&self.shard(hk).inner);
        let inner = &mut *guard;
        let slot = inner.slots.entry(hk).or_insert_with(|| Slot {
            key: key.into(),
            generation: 0,
            in_flight: 0,
            entries: Map::default(),
        });
        if *slot.key != *key {
            return Snapshot {
                generation: 0,
                flushes: 0,
                tracked: false,
            };
        }
        slot.in_flight += 1;
        Snapshot {
            generation: slot.generation,
            flushes: inner.flushes,
            tracked: true,
        }
    }

    /// Whether an entry for the read `ident` of `key` is held (servable or not; nothing
    /// counted).
    pub(crate) fn holds(&self, key: &[u8], ident: &[u8]) -> bool {
        let (hk, hi) = self.hashes(key, ident);
        read_guard(self.shard(hk))
            .slots
            .get(&hk)
            .filter(|s| *s.key == *key)
            .and_then(|s| s.entries.get(&hi))
            .is_some_and(|e| *e.ident == *ident)
    }

    /// Counts a miss of a read of `key` that was not looked up.
    pub(crate) fn miss(&self, key: &[u8]) {
        self.shard(self.key_hash(key)).misses.fetch_add(1, Relaxed);
    }

    /// Takes back the miss just counted for a read of `key` that is answered from the store
    /// after all (its lookup counts it as a hit): each read is counted once.
    pub(crate) fn unmiss(&self, key: &[u8]) {
        let shard = self.shard(self.key_hash(key));
        // Counted by this read's lookup a moment ago, so never below zero (an update that
        // finds zero changes nothing).
        let _ = shard
            .misses
            .fetch_update(Relaxed, Relaxed, |m| m.checked_sub(1));
    }

    /// Room for one more entry of `size` bytes, evicting as needed; `false` when there can
    /// be none.
    fn reserve(&self, size: usize) -> bool {
        if size > self.max_bytes || self.max_entries == 0 {
            return false;
        }
        loop {
            let entry = self.entries.fetch_update(Relaxed, Relaxed, |e| {
                (e < self.max_entries).then_some(e + 1)
            });
            if entry.is_ok() {
                let bytes = self.bytes.fetch_update(Relaxed, Relaxed, |b| {
                    b.checked_add(size).filter(|t| *t <= self.max_bytes)
                });
                if bytes.is_ok() {
                    return true;
                }
                self.entries.fetch_sub(1, Relaxed);
            }
            if !self.evict_one() {
                return false;
            }
        }
    }

    fn release(&self, entries: usize, bytes: usize) {
        if entries > 0 {
            self.entries.fetch_sub(entries, Relaxed);
            self.bytes.fetch_sub(bytes, Relaxed);
        }
    }

    /// Evicts one entry from some shard (each shard's own clock, shards in turn).
    fn evict_one(&self) -> bool {
        let start = self.hand.fetch_add(1, Relaxed);
        for i in 0..SHARDS {
            let shard = &self.shards[(start + i) % SHARDS];
            let mut inner = write(&shard.inner);
            let freed = inner.evict_one();
            if freed.is_some() {
                shard.bump();
            }
            drop(inner);
            if let Some(size) = freed {
                self.release(1, size);
                return true;
            }
        }
        false
    }

    /// Ends a read begun with [`Store::begin_fill`]; with its reply (the read's identity,
    /// the value, its deadline), inserts it unless an invalidation of the key or a flush
    /// arrived since the read was begun.
    pub(crate) fn end_fill(
        &self,
        key: &[u8],
        seen: Snapshot,
        reply: Option<(Vec<u8>, Value, Deadline)>,
    ) {
        if !seen.tracked {
            return;
        }
        let hk = self.key_hash(key);
        let shard = self.shard(hk);
        let (size, reserved) = match &reply {
            Some((ident, value, _)) => {
                let size = 96 + key.len() + ident.len() + value_size(value);
                (size, self.reserve(size))
            }
            None => (0, false),
        };
        let mut guard = write(&shard.inner);
        let inner = &mut *guard;
        let Some(slot) = inner.slots.get_mut(&hk).filter(|s| *s.key == *key) else {
            drop(guard);
            self.release(usize::from(reserved), size);
            return;
        };
        slot.in_flight = slot.in_flight.saturating_sub(1);
        let fresh = slot.generation == seen.generation && inner.flushes == seen.flushes;
        let Some((ident, value, deadline)) = reply else {
            inner.forget_if_idle(hk);
            return;
        };
        if !fresh || !reserved {
            if !fresh {
                inner.rejected_fills += 1;
            }
            inner.forget_if_idle(hk);
            drop(guard);
            self.release(usize::from(reserved), size);
            return;
        }
        let hi = hash(self.secrets[1], &ident);
        let id = self.next_id.fetch_add(1, Relaxed);
        let until = deadline.at.map_or(u64::MAX, |at| {
            at.checked_duration_since(self.base).map_or(0, nanos)
        });
        let old = slot.entries.insert(
            hi,
            Entry {
                ident: ident.into(),
                value,
                id,
                size,
                until,
                exact: deadline.exact,
                referenced: AtomicBool::new(false),
            },
        );
        let replaced = match old {
            // Another reply to the same read (or, never seen, another read with the same
            // hash) is replaced.
            Some(old) => {
                shard.bump();
                old.size
            }
            None => {
                inner.entries += 1;
                0
            }
        };
        inner.clock.push_back((hk, hi, id));
        // Stale records (of entries invalidated since) are dropped now and then, so the
        // clock stays proportional to the entries.
        if inner.clock.len() > 2 * inner.entries + 64 {
            let slots = &inner.slots;
            inner.clock.retain(|(hk, hi, id)| {
                slots
                    .get(hk)
                    .and_then(|s| s.entries.get(hi))
                    .is_some_and(|e| e.id == *id)
            });
        }
        drop(guard);
        if replaced > 0 {
            self.release(1, replaced);
        }
    }

    /// The server (or this handle, around its own write) says `key` changed.
    pub(crate) fn invalidate(&self, key: &[u8]) {
        let hk = self.key_hash(key);
        let shard = self.shard(hk);
        let mut guard = write(&shard.inner);
        let inner = &mut *guard;
        let Some(slot) = inner.slots.get_mut(&hk).filter(|s| *s.key == *key) else {
            return;
        };
        slot.generation += 1;
        let (mut n, mut bytes) = (0, 0);
        for (_, e) in slot.entries.drain() {
            n += 1;
            bytes += e.size;
        }
        if n > 0 {
            inner.invalidations += 1;
            shard.bump();
        }
        inner.entries -= n;
        inner.forget_if_idle(hk);
        drop(guard);
        self.release(n, bytes);
    }

    /// Everything may have changed: drops every entry, and every read in flight will not
    /// insert.
    pub(crate) fn flush(&self) {
        self.flushes.fetch_add(1, Relaxed);
        for shard in self.shards.iter() {
            let mut inner = write(&shard.inner);
            inner.flushes += 1;
            let (mut n, mut bytes) = (0, 0);
            inner.slots.retain(|_, s| {
                for (_, e) in s.entries.drain() {
                    n += 1;
                    bytes += e.size;
                }
                s.in_flight > 0
            });
            inner.clock.clear();
            inner.entries = 0;
            shard.bump();
            drop(inner);
            self.release(n, bytes);
        }
    }

    /// The totals.
    pub(crate) fn counters(&self) -> Counters {
        let mut c = Counters {
            hits: self.hits.total(),
            flushes: self.flushes.load(Relaxed),
            entries: self.entries.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            ..Counters::default()
        };
        for shard in self.shards.iter() {
            c.hits += shard.hits.load(Relaxed);
            c.misses += shard.misses.load(Relaxed);
            let inner = read(&shard.inner);
            c.invalidations += inner.invalidations;
            c.evictions += inner.evictions;
            c.rejected_fills += inner.rejected_fills;
        }
        c
    }
}

/// The shard of a key hashed `hk`: bits the tables do not use for buckets (the low ones) nor
/// tags (the top seven).
fn shard_index(hk: u64) -> usize {
    (hk >> 32) as usize % SHARDS
}

fn read_guard(shard: &Shard) -> RwLockReadGuard<'_, Inner> {
    read(&shard.inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn later() -> Deadline {
        Deadline {
            at: Some(Instant::now() + Duration::from_secs(60)),
            exact: false,
        }
    }

    fn get(s: &Store, key: &[u8], read: &[u8]) -> Option<Value> {
        s.get(key, read, true, |v| Some(v.clone()))
    }

    fn fill(s: &Store, key: &[u8], read: &[u8], v: i64) {
        let seen = s.begin_fill(key);
        s.end_fill(key, seen, Some((read.to_vec(), Value::Int(v), later())));
    }

    fn slots(s: &Store) -> usize {
        s.shards.iter().map(|sh| read(&sh.inner).slots.len()).sum()
    }

    /// A reply is not inserted when its key was invalidated, or everything flushed, while it
    /// was in flight; the slot is forgotten when nothing is left.
    #[test]
    fn invalidation_or_flush_in_flight_rejects_the_reply() {
        let s = Store::new(100, 1 << 20);
        let seen = s.begin_fill(b"k");
        s.invalidate(b"k");
        s.end_fill(b"k", seen, Some((b"r".to_vec(), Value::Int(1), later())));
        assert_eq!(get(&s, b"k", b"r"), None);
        let seen = s.begin_fill(b"k");
        s.flush();
        s.end_fill(b"k", seen, Some((b"r".to_vec(), Value::Int(1), later())));
        assert_eq!(get(&s, b"k", b"r"), None);
        assert_eq!(s.counters().rejected_fills, 2);
        assert_eq!(slots(&s), 0);
        assert_eq!(s.counters().entries, 0);
        fill(&s, b"k", b"r", 2);
        assert_eq!(get(&s, b"k", b"r"), Some(Value::Int(2)));
        // Another key's invalidation does not matter.
        let seen = s.begin_fill(b"j");
        s.invalidate(b"k");
        s.end_fill(b"j", seen, Some((b"r".to_vec(), Value::Int(3), later())));
        assert_eq!(get(&s, b"j", b"r"), Some(Value::Int(3)));
        assert_eq!(get(&s, b"k", b"r"), None);
        // Two reads of one key are two entries; an invalidation drops both.
        fill(&s, b"k", b"a", 4);
        fill(&s, b"k", b"b", 5);
        assert_eq!(get(&s, b"k", b"a"), Some(Value::Int(4)));
        assert_eq!(get(&s, b"k", b"b"), Some(Value::Int(5)));
        s.invalidate(b"k");
        assert_eq!(get(&s, b"k", b"a"), None);
        assert_eq!(get(&s, b"k", b"b"), None);
        let c = s.counters();
        assert_eq!((c.hits, c.entries), (4, 1));
    }

    /// The caps hold after every insert; hit entries get a second chance; totals add up.
    #[test]
    fn caps_and_second_chance() {
        let s = Store::new(3, 1 << 20);
        for i in 0..3 {
            fill(&s, format!("k{i}").as_bytes(), b"r", i);
        }
        assert!(get(&s, b"k0", b"r").is_some());
        fill(&s, b"k3", b"r", 3);
        assert_eq!(s.counters().entries, 3);
        assert!(get(&s, b"k3", b"r").is_some(), "just inserted: kept");
        for i in 0..1000 {
            fill(&s, format!("x{i}").as_bytes(), b"r", i);
            assert!(s.counters().entries <= 3);
        }
        for sh in s.shards.iter() {
            let inner = read(&sh.inner);
            assert!(inner.clock.len() <= 2 * inner.entries + 64);
        }
        let small = Store::new(100, 1000);
        for i in 0..100 {
            fill(&small, format!("k{i}").as_bytes(), b"r", i);
            assert!(small.counters().bytes <= 1000);
        }
        let sum: usize = small
            .shards
            .iter()
            .map(|sh| {
                read(&sh.inner)
                    .slots
                    .values()
                    .flat_map(|s| s.entries.values())
                    .map(|e| e.size)
                    .sum::<usize>()
            })
            .sum();
        assert_eq!(sum, small.counters().bytes);
        let none = Store::new(0, 1000);
        fill(&none, b"k", b"r", 1);
        assert_eq!(none.counters().entries, 0);
        assert_eq!(slots(&none), 0);
    }

    /// Second chance within a shard: an entry hit since the hand passed stays.
    #[test]
    fn second_chance_in_a_shard() {
        let s = Store::new(2, 1 << 20);
        // Two reads of one key share a shard.
        fill(&s, b"k", b"a", 1);
        fill(&s, b"k", b"b", 2);
        assert!(get(&s, b"k", b"a").is_some());
        fill(&s, b"k", b"c", 3);
        assert!(get(&s, b"k", b"a").is_some(), "hit: kept");
        assert!(get(&s, b"k", b"b").is_none(), "oldest unhit: evicted");
        assert_eq!(s.counters().evictions, 1);
    }

    /// An entry is not served at or after its deadline, exact or not.
    #[test]
    fn deadlines() {
        let s = Store::new(10, 1 << 20);
        for exact in [true, false] {
            let seen = s.begin_fill(b"k");
            let at = Some(Instant::now() + Duration::from_millis(20));
            s.end_fill(
                b"k",
                seen,
                Some((b"r".to_vec(), Value::Int(1), Deadline { at, exact })),
            );
            assert!(get(&s, b"k", b"r").is_some());
            std::thread::sleep(Duration::from_millis(25));
            assert!(get(&s, b"k", b"r").is_none(), "exact: {exact}");
            assert_eq!(s.counters().entries, 0);
        }
    }

    /// The keyed hash: lengths and every byte count, and two stores differ.
    #[test]
    fn hashes() {
        let k = [
            [0x1234_5678_9abc_def1, 0x0fed_cba9_8765_4321],
            [0xdead_beef_cafe_f00d, 0x0123_4567_89ab_cdef],
        ];
        let inputs: Vec<Vec<u8>> = vec![
            vec![],
            vec![0],
            vec![0, 0],
            b"abcdefgh".to_vec(),
            b"abcdefgh\0".to_vec(),
            b"abcdefghijklmnop".to_vec(),
            b"abcdefghijklmnopq".to_vec(),
            b"abcdefghijklmnoq".to_vec(),
            b"abc".to_vec(),
            b"abd".to_vec(),
            b"abcde".to_vec(),
            b"abcdf".to_vec(),
            b"bbcde".to_vec(),
            (0..100).collect(),
            (1..101).collect(),
        ];
        let mut seen = std::collections::HashSet::new();
        for i in &inputs {
            assert!(seen.insert(hash(k[0], i)), "{i:?}");
        }
        assert_ne!(hash(k[0], b"x"), hash(k[1], b"x"));
    }

    /// Hits on many threads at once (a smoke test of the sharded locks).
    #[test]
    fn parallel_hits() {
        let s = Store::new(1000, 1 << 20);
        for i in 0..100 {
            fill(&s, b"h", format!("f{i}").as_bytes(), i);
        }
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for i in 0..10_000 {
                        let f = format!("f{}", i % 100);
                        assert_eq!(get(&s, b"h", f.as_bytes()), Some(Value::Int(i % 100)));
                    }
                });
            }
        });
        assert_eq!(s.counters().hits, 40_000);
    }
}
