//! The local store: cached replies by key, each key's invalidation generation and reads in
//! flight, a global flush generation, and second-chance (CLOCK) eviction under the entry and
//! byte caps. No I/O here: everything is decided under one mutex.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use redis::Value;

/// One cached reply: a read command's reply (in RESP2 shape) for one key.
struct Entry {
    value: Value,
    /// Its place in the eviction queue (a record whose id differs is stale).
    id: u64,
    size: usize,
    /// Never served at or after this instant (the entry's age cap or the key's own expiry).
    until: Instant,
    /// Set by a hit: the entry gets a second chance when the clock hand meets it.
    referenced: bool,
}

/// Everything about one key.
#[derive(Default)]
struct Slot {
    /// Bumped by every invalidation of the key: a read that started under another generation
    /// must not insert its reply.
    generation: u64,
    /// Fills of this key in flight (the slot outlives its entries while any is).
    in_flight: u32,
    /// Cached replies by packed read command.
    entries: HashMap<Vec<u8>, Entry>,
}

/// What a read saw before it was sent (see [`Store::begin_fill`]).
pub(crate) struct Snapshot {
    generation: u64,
    flushes: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub hits: u64,
    pub misses: u64,
    pub invalidations: u64,
    pub flushes: u64,
    pub evictions: u64,
    pub rejected_fills: u64,
}

pub(crate) struct Store {
    max_entries: usize,
    max_bytes: usize,
    slots: HashMap<Vec<u8>, Slot>,
    /// Bumped by every flush (also the loss of the tracking connection).
    flush_generation: u64,
    /// The clock: (key, packed command, entry id), oldest first.
    clock: VecDeque<(Vec<u8>, Vec<u8>, u64)>,
    next_id: u64,
    pub(crate) entries: usize,
    pub(crate) bytes: usize,
    pub(crate) counters: Counters,
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

impl Store {
    pub(crate) fn new(max_entries: usize, max_bytes: usize) -> Store {
        Store {
            max_entries,
            max_bytes,
            slots: HashMap::new(),
            flush_generation: 0,
            clock: VecDeque::new(),
            next_id: 0,
            entries: 0,
            bytes: 0,
            counters: Counters::default(),
        }
    }

    /// The cached reply to `packed` on `key`, if one may be served at `now`.
    pub(crate) fn get(&mut self, key: &[u8], packed: &[u8], now: Instant) -> Option<Value> {
        let Some(slot) = self.slots.get_mut(key) else {
            self.counters.misses += 1;
            return None;
        };
        match slot.entries.get_mut(packed) {
            Some(e) if e.until > now => {
                e.referenced = true;
                self.counters.hits += 1;
                Some(e.value.clone())
            }
            Some(_) => {
                if let Some(e) = slot.entries.remove(packed) {
                    self.entries -= 1;
                    self.bytes -= e.size;
                }
                self.forget_if_idle(key);
                self.counters.misses += 1;
                None
            }
            None => {
                self.counters.misses += 1;
                None
            }
        }
    }

    /// Marks a read of `key` in flight, before it is sent.
    pub(crate) fn begin_fill(&mut self, key: &[u8]) -> Snapshot {
        let slot = self.slots.entry(key.to_vec()).or_default();
        slot.in_flight += 1;
        Snapshot {
            generation: slot.generation,
            flushes: self.flush_generation,
        }
    }

    /// Ends a read begun with [`Store::begin_fill`]; with its reply, inserts it unless an
    /// invalidation of the key or a flush arrived since the read was begun.
    pub(crate) fn end_fill(
        &mut self,
        key: &[u8],
        seen: Snapshot,
        reply: Option<(Vec<u8>, Value, Instant)>,
    ) {
        let Some(slot) = self.slots.get_mut(key) else {
            return;
        };
        slot.in_flight = slot.in_flight.saturating_sub(1);
        let fresh = slot.generation == seen.generation && self.flush_generation == seen.flushes;
        match reply {
            Some((packed, value, until)) if fresh => {
                self.insert(key, packed, value, until);
            }
            Some(_) => {
                self.counters.rejected_fills += 1;
                self.forget_if_idle(key);
            }
            None => self.forget_if_idle(key),
        }
    }

    fn insert(&mut self, key: &[u8], packed: Vec<u8>, value: Value, until: Instant) {
        let size = 64 + 2 * (key.len() + packed.len()) + value_size(&value);
        if size > self.max_bytes || self.max_entries == 0 {
            self.forget_if_idle(key);
            return;
        }
        // Replace an entry for the same read first.
        self.remove_entry(key, &packed);
        while self.entries >= self.max_entries || self.bytes + size > self.max_bytes {
            if !self.evict_one() {
                break;
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        let slot = self.slots.entry(key.to_vec()).or_default();
        slot.entries.insert(
            packed.clone(),
            Entry {
                value,
                id,
                size,
                until,
                referenced: false,
            },
        );
        self.entries += 1;
        self.bytes += size;
        self.clock.push_back((key.to_vec(), packed, id));
        // Stale records (of entries invalidated since) are dropped now and then, so the
        // clock stays proportional to the entries.
        if self.clock.len() > 2 * self.entries + 1024 {
            let slots = &self.slots;
            self.clock.retain(|(k, p, id)| {
                slots
                    .get(k)
                    .and_then(|s| s.entries.get(p))
                    .is_some_and(|e| e.id == *id)
            });
        }
    }

    /// Evicts one entry (second chance for those hit since the hand last passed).
    fn evict_one(&mut self) -> bool {
        while let Some((key, packed, id)) = self.clock.pop_front() {
            let Some(slot) = self.slots.get_mut(&key) else {
                continue;
            };
            let Some(e) = slot.entries.get_mut(&packed) else {
                continue;
            };
            if e.id != id {
                continue;
            }
            if e.referenced {
                e.referenced = false;
                self.clock.push_back((key, packed, id));
                continue;
            }
            self.remove_entry(&key, &packed);
            self.forget_if_idle(&key);
            self.counters.evictions += 1;
            return true;
        }
        false
    }

    fn remove_entry(&mut self, key: &[u8], packed: &[u8]) {
        if let Some(e) = self
            .slots
            .get_mut(key)
            .and_then(|s| s.entries.remove(packed))
        {
            self.entries -= 1;
            self.bytes -= e.size;
        }
    }

    fn forget_if_idle(&mut self, key: &[u8]) {
        if self
            .slots
            .get(key)
            .is_some_and(|s| s.in_flight == 0 && s.entries.is_empty())
        {
            self.slots.remove(key);
        }
    }

    /// The server (or this handle, around its own write) says `key` changed.
    pub(crate) fn invalidate(&mut self, key: &[u8]) {
        let Some(slot) = self.slots.get_mut(key) else {
            return;
        };
        slot.generation += 1;
        let (mut n, mut bytes) = (0, 0);
        for (_, e) in slot.entries.drain() {
            n += 1;
            bytes += e.size;
        }
        if n > 0 {
            self.counters.invalidations += 1;
        }
        self.entries -= n;
        self.bytes -= bytes;
        self.forget_if_idle(key);
    }

    /// Everything may have changed: drops every entry, and every read in flight will not
    /// insert.
    pub(crate) fn flush(&mut self) {
        self.flush_generation += 1;
        self.counters.flushes += 1;
        self.slots.retain(|_, s| {
            s.entries.clear();
            s.in_flight > 0
        });
        self.clock.clear();
        self.entries = 0;
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    fn fill(s: &mut Store, key: &[u8], read: &[u8], v: i64) {
        let seen = s.begin_fill(key);
        s.end_fill(key, seen, Some((read.to_vec(), Value::Int(v), later())));
    }

    /// A reply is not inserted when its key was invalidated, or everything flushed, while it
    /// was in flight; the slot is forgotten when nothing is left.
    #[test]
    fn invalidation_or_flush_in_flight_rejects_the_reply() {
        let mut s = Store::new(100, 1 << 20);
        let seen = s.begin_fill(b"k");
        s.invalidate(b"k");
        s.end_fill(b"k", seen, Some((b"r".to_vec(), Value::Int(1), later())));
        assert_eq!(s.get(b"k", b"r", Instant::now()), None);
        let seen = s.begin_fill(b"k");
        s.flush();
        s.end_fill(b"k", seen, Some((b"r".to_vec(), Value::Int(1), later())));
        assert_eq!(s.get(b"k", b"r", Instant::now()), None);
        assert_eq!(s.counters.rejected_fills, 2);
        assert!(s.slots.is_empty());
        fill(&mut s, b"k", b"r", 2);
        assert_eq!(s.get(b"k", b"r", Instant::now()), Some(Value::Int(2)));
        // Another key's invalidation does not matter.
        let seen = s.begin_fill(b"j");
        s.invalidate(b"k");
        s.end_fill(b"j", seen, Some((b"r".to_vec(), Value::Int(3), later())));
        assert_eq!(s.get(b"j", b"r", Instant::now()), Some(Value::Int(3)));
        assert_eq!(s.get(b"k", b"r", Instant::now()), None);
    }

    /// The caps hold after every insert; hit entries get a second chance; totals add up.
    #[test]
    fn caps_and_second_chance() {
        let mut s = Store::new(3, 1 << 20);
        for i in 0..3 {
            fill(&mut s, format!("k{i}").as_bytes(), b"r", i);
        }
        assert!(s.get(b"k0", b"r", Instant::now()).is_some());
        fill(&mut s, b"k3", b"r", 3);
        assert_eq!(s.entries, 3);
        assert!(s.get(b"k0", b"r", Instant::now()).is_some(), "hit: kept");
        assert!(
            s.get(b"k1", b"r", Instant::now()).is_none(),
            "oldest unhit: evicted"
        );
        for i in 0..1000 {
            fill(&mut s, format!("x{i}").as_bytes(), b"r", i);
            assert!(s.entries <= 3);
            assert!(s.clock.len() <= 2 * s.entries + 1024);
        }
        let mut small = Store::new(100, 1000);
        for i in 0..100 {
            fill(&mut small, format!("k{i}").as_bytes(), b"r", i);
            assert!(small.bytes <= 1000);
        }
        let sum: usize = small
            .slots
            .values()
            .flat_map(|s| s.entries.values())
            .map(|e| e.size)
            .sum();
        assert_eq!(sum, small.bytes);
        let mut none = Store::new(0, 1000);
        fill(&mut none, b"k", b"r", 1);
        assert_eq!(none.entries, 0);
    }

    /// An entry is not served at or after its deadline.
    #[test]
    fn deadlines() {
        let mut s = Store::new(10, 1 << 20);
        let now = Instant::now();
        let seen = s.begin_fill(b"k");
        s.end_fill(
            b"k",
            seen,
            Some((b"r".to_vec(), Value::Int(1), now + Duration::from_millis(5))),
        );
        assert!(s.get(b"k", b"r", now).is_some());
        assert!(s.get(b"k", b"r", now + Duration::from_millis(5)).is_none());
        assert_eq!(s.entries, 0);
    }
}
