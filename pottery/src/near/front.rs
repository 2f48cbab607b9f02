//! The per-thread front table: copies of recently hit entries, served without touching
//! anything another thread writes.
//!
//! A hit in the sharded store takes its shard's read lock, which writes the lock word: from
//! many tasks on one thread that is cheap, from several threads that share it, a cache line
//! that moves between cores. Each thread that reads through [`Probed`](super::Probed) reads
//! (`RedisDict::get`, `RedisDict::contains_key`, `RedisSet::contains`) keeps a small table of
//! its own in front of the store: [`SLOTS`] slots, [`WAYS`]-way set associative, each holding
//! the store's number, the reading structure's number (a [`Reader`], which stands for its
//! key), the command's name and the argument (its [`Read`]), the reply (nil, an integer, or a
//! bulk string), and the entry's [`Stamp`] (its shard's epoch when it was copied, and its
//! deadline). A hit checks the stamp ([`Store::still`]: one `Acquire` load of the shard's
//! epoch and the coarse clock) and counts itself in a counter only its thread writes.
//!
//! Freshness is the store's: every removal or replacement of an entry (an invalidation, a
//! flush — a lost tracking connection, a null invalidation, a topology change, this handle's
//! own writes —, an eviction by the caps, an entry past its deadline) bumps its shard's epoch
//! under the shard's write lock, so every thread's copies of that shard's entries stop being
//! served at once. A copy is also served at most [`BUDGET`] times before the store is asked
//! again (which keeps the entry's second chance in the eviction clock, and refreshes the
//! copy).
//!
//! A slot is found by one unkeyed hash of the read's pieces, read where the caller has them
//! (no buffer is made of them per lookup: [`front_hash`]); a collision, chosen or not, costs
//! a lookup in the store, never a wrong reply: the slot's store number, reader number,
//! command name and argument are compared in full ([`Slot::holds`]). The key is not read at
//! a hit: a structure's number is unique in the process and its key never changes, so the
//! number is the key (two structures on one key keep a copy each). The name is a `&'static`
//! string compared by its address and length, which are its bytes (the same bytes at another
//! address make another read: a second copy, never a wrong one). A plain string
//! argument is compared and hashed as it is, without being encoded ([`Arg::Quoted`]: its
//! JSON is it between quotes), so a hit writes nothing but its count.
//!
//! Memory: the table is allocated on a thread's first lookup: [`SLOTS`] slots of
//! [`SLOT_BYTES`] bytes of argument and value plus about 64 of bookkeeping (about 66 KiB per
//! thread), whatever the stores' sizes; a reply whose argument and value together exceed
//! [`SLOT_BYTES`] is not copied (it is served from the store). None of it
//! counts in the store's `entries` and `bytes`.

use std::sync::{Arc, Weak};

use super::arg::Arg;
use super::hash::{fold, hash, tail};
use super::store::{Hits, Stamp, Store, ThreadHits};

/// Ways per set.
pub(crate) const WAYS: usize = 4;
/// Sets.
const SETS: usize = 64;
/// Slots per thread.
pub(crate) const SLOTS: usize = WAYS * SETS;
/// The most bytes of key, identity and value a slot holds.
pub(crate) const SLOT_BYTES: usize = 176;
/// Hits a copy serves before the store is asked again.
pub(crate) const BUDGET: u16 = 256;

/// The front hash's fixed secrets (see the module docs: no secret is needed).
const SECRET: [u64; 4] = [
    0x2d35_8dcc_aa6c_78a5,
    0x8bb8_4b93_962e_acc9,
    0x4b33_a62e_d433_d4a3,
    0x4d5a_2da5_1de1_aa47,
];

/// A copied reply.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    Nil,
    /// A bulk string (its bytes follow the key and identity in the slot).
    Bytes,
    /// A bulk string that is pottery's JSON of this small integer (read when it was copied,
    /// not at every hit: [`crate::codec::small_int`]).
    Small(i64),
    Int(i64),
}

/// Laid out as written, on four whole cache lines: the bookkeeping fills the first and a
/// little of the second, so a hit on a short read (argument and value within about 48 bytes)
/// touches two.
#[repr(C, align(64))]
struct Slot {
    /// The store's number (0: empty).
    store: u64,
    /// The reading structure's number ([`Reader`]): its key, in the store.
    reader: u64,
    /// The command's name, by its place in the program (a `&'static` name: its address and
    /// length, in `lens`, are its bytes).
    name: usize,
    stamp: Stamp,
    kind: Kind,
    /// This thread's counter of its store's hits (one load away from the slot).
    count: Option<Arc<ThreadHits>>,
    /// Hits left before the store is asked again.
    left: u16,
    /// Bytes of argument and value in `data` (each at most [`SLOT_BYTES`], which fits a
    /// byte).
    lens: Lens,
    /// The argument, then the value's bytes.
    data: [u8; SLOT_BYTES],
}

const _: () = assert!(SLOT_BYTES <= 255, "a slot's lengths are bytes");
const _: () = assert!(
    std::mem::size_of::<Slot>() == 256,
    "a slot is four cache lines: its bookkeeping and the first bytes of its data in the first"
);

/// The lengths of a slot's pieces, and the argument's form.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Lens {
    name: u8,
    /// The argument as [`Arg::hashed`] gives it: a string's inside (`quoted`) or the JSON.
    arg: u8,
    quoted: bool,
    value: u8,
}

/// A structure's number as a near-cache reader: unique in the process (never 0), given to a
/// structure when it is made and kept by its clones, so that it stands for that structure's
/// key in its handle's store. The front table compares it instead of the key's bytes (a
/// structure's key and handle never change).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Reader(u64);

impl Reader {
    /// A number no other structure has.
    pub(crate) fn new() -> Reader {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        // A u64 counted up by one per structure made does not run out.
        Reader(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
    }
}

/// A read as the front table holds it, in pieces (no buffer is made of them per lookup): its
/// key, its command's name (`HGET`) and its one argument after the key. Its identity in the
/// store is the name and the argument's JSON ([`super::plan::push_ident`] each).
#[derive(Clone, Copy)]
pub(crate) struct Read<'a> {
    /// The reading structure ([`Reader`]), which stands for the key in the front table.
    pub(crate) reader: Reader,
    pub(crate) key: &'a [u8],
    pub(crate) name: &'static [u8],
    pub(crate) arg: Arg<'a>,
}

impl Read<'_> {
    /// The pieces' lengths, if argument and `value` fit a slot (and the name is at most
    /// 255 bytes, as every command's is).
    fn lens(&self, value: usize) -> Option<Lens> {
        let (arg, quoted) = self.arg.hashed();
        if arg.len() + value > SLOT_BYTES {
            return None;
        }
        Some(Lens {
            name: u8::try_from(self.name.len()).ok()?,
            // Each at most the total.
            arg: arg.len() as u8,
            quoted,
            value: value as u8,
        })
    }

    /// The name's address and length: its identity (a `&'static` name).
    #[inline]
    fn name_id(&self) -> (usize, usize) {
        (self.name.as_ptr() as usize, self.name.len())
    }
}

/// One store's counter for this thread.
struct Reg {
    store: u64,
    count: Arc<ThreadHits>,
    sink: Weak<Hits>,
}

/// The table itself, allocated on first use.
struct Table {
    /// Per slot, the front hash of what it holds (0: empty); a set's tags share a line.
    tags: [u64; SLOTS],
    /// [`SLOTS`] of them (made on the heap, not moved there).
    slots: Box<[Slot]>,
    /// The next way to replace, per set.
    hand: [u8; SETS],
}

/// A thread's front table.
pub(crate) struct Front {
    table: Option<Box<Table>>,
    regs: Vec<Reg>,
}

/// One piece of a read as two words: up to 16 bytes as they are (overlapping words that
/// cover every one, read where the caller has them), a longer piece hashed.
#[inline]
fn words(b: &[u8], secret: u64) -> (u64, u64) {
    if b.len() > 16 {
        return (hash([secret, SECRET[3]], b), 0);
    }
    tail(b)
}

/// The front hash of `read` of `store` (never 0): the argument read where it is, the
/// reader's number, the name's address and the store's number, mixed by one folded
/// (full-width) multiply with the lengths (no wrapping arithmetic). Both forms of one
/// argument (a plain string, its JSON) hash alike.
#[inline(always)]
pub(crate) fn front_hash(store: &Store, read: &Read<'_>) -> u64 {
    let (arg, quoted) = read.arg.hashed();
    let (a0, a1) = words(arg, SECRET[2]);
    let (name, name_len) = read.name_id();
    let lens = (name_len as u64).rotate_left(16)
        ^ (arg.len() as u64).rotate_left(32)
        ^ u64::from(quoted).rotate_left(48);
    // The argument's words (what varies most) on both sides.
    fold(
        read.reader.0 ^ a1 ^ SECRET[0],
        (name as u64) ^ a0 ^ lens ^ store.id() ^ SECRET[1],
    ) | 1
}

/// `a == b`: short slices (the common case) compared as two overlapping words that cover
/// every byte, without a call.
#[inline]
fn same(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n <= 16 {
        let (x, y) = tail(a);
        let (u, v) = tail(b);
        return (x ^ u) | (y ^ v) == 0;
    }
    a == b
}

#[inline]
fn set_of(h: u64) -> usize {
    (h >> 58) as usize % SETS
}

impl Slot {
    /// Whether the slot holds `read` of the store numbered `id`. The argument is compared in
    /// the form [`Arg::hashed`] gives, which tells JSONs apart as they are (a string's inside
    /// is its JSON between quotes, and nothing else is marked a string).
    #[inline]
    fn holds(&self, id: u64, read: &Read<'_>) -> bool {
        let a = usize::from(self.lens.arg);
        let (arg, quoted) = read.arg.hashed();
        self.store == id
            && self.reader == read.reader.0
            && (self.name, usize::from(self.lens.name)) == read.name_id()
            && self.lens.quoted == quoted
            && same(&self.data[..a], arg)
    }

    /// The value's bytes.
    #[inline]
    fn value(&self) -> &[u8] {
        let start = usize::from(self.lens.arg);
        &self.data[start..start + usize::from(self.lens.value)]
    }
}

impl Front {
    pub(crate) const fn new() -> Front {
        Front {
            table: None,
            regs: Vec::new(),
        }
    }

    /// The copy of `read` (front hash `h`) of `store`, if it may be served now and is a bulk
    /// string or nil (`bulk`) or an integer (not `bulk`); counted as a hit then. A copy that
    /// may not be served is dropped.
    #[inline(always)]
    pub(crate) fn get(
        &mut self,
        store: &Store,
        h: u64,
        read: &Read<'_>,
        bulk: bool,
    ) -> Option<(Kind, &[u8])> {
        let table = self.table.as_deref_mut()?;
        let set = set_of(h);
        let id = store.id();
        // The ways whose tag matches, compared without a branch per way.
        let tags = &table.tags[set * WAYS..(set + 1) * WAYS];
        let mut matching = tags
            .iter()
            .enumerate()
            .fold(0u32, |m, (w, t)| m | (u32::from(*t == h) << w));
        let i = loop {
            if matching == 0 {
                return None;
            }
            let i = set * WAYS + matching.trailing_zeros() as usize;
            if table.slots[i].holds(id, read) {
                break i;
            }
            // Another read with the same hash (never seen in practice).
            matching &= matching - 1;
        };
        let slot = &mut table.slots[i];
        if bulk != matches!(slot.kind, Kind::Nil | Kind::Bytes | Kind::Small(_)) {
            return None;
        }
        if slot.left == 0 || !store.still(&slot.stamp) {
            table.tags[i] = 0;
            slot.store = 0;
            return None;
        }
        slot.left -= 1;
        slot.count.as_ref()?.one();
        Some((slot.kind, slot.value()))
    }

    /// Copies a reply just served by `store` (stamped `stamp`) for `read` (front hash `h`),
    /// unless it is too large.
    pub(crate) fn put(
        &mut self,
        store: &Store,
        h: u64,
        read: &Read<'_>,
        stamp: Stamp,
        kind: Kind,
        value: &[u8],
    ) {
        let Some(lens) = read.lens(value.len()) else {
            return;
        };
        let arg = read.arg.hashed().0;
        let len = arg.len() + value.len();
        let count = self.counter(store);
        let table = self.table.get_or_insert_with(|| {
            Box::new(Table {
                tags: [0; SLOTS],
                slots: (0..SLOTS)
                    .map(|_| Slot {
                        store: 0,
                        reader: 0,
                        name: 0,
                        stamp,
                        kind: Kind::Nil,
                        lens: Lens {
                            name: 0,
                            arg: 0,
                            quoted: false,
                            value: 0,
                        },
                        count: None,
                        left: 0,
                        data: [0; SLOT_BYTES],
                    })
                    .collect(),
                hand: [0; SETS],
            })
        });
        let set = set_of(h);
        let id = store.id();
        let same = |i: usize| table.tags[i] == h && table.slots[i].holds(id, read);
        // The same read's old copy, else a free way, else the hand's.
        let way = (0..WAYS)
            .find(|w| same(set * WAYS + w))
            .or_else(|| (0..WAYS).find(|w| table.tags[set * WAYS + w] == 0))
            .unwrap_or_else(|| {
                let hand = &mut table.hand[set];
                *hand = (*hand + 1) % WAYS as u8;
                usize::from(*hand)
            });
        let i = set * WAYS + way;
        let slot = &mut table.slots[i];
        let a = arg.len();
        slot.data[..a].copy_from_slice(arg);
        slot.data[a..len].copy_from_slice(value);
        slot.store = id;
        slot.reader = read.reader.0;
        slot.name = read.name_id().0;
        slot.stamp = stamp;
        slot.kind = kind;
        slot.lens = lens;
        slot.count = Some(count);
        slot.left = BUDGET;
        table.tags[i] = h;
    }

    /// This thread's counter of `store`'s hits (registered with the store on first use).
    fn counter(&mut self, store: &Store) -> Arc<ThreadHits> {
        let id = store.id();
        if let Some(r) = self.regs.iter().find(|r| r.store == id) {
            return Arc::clone(&r.count);
        }
        let reg = Reg {
            store: id,
            count: store.hits().register(),
            sink: Arc::downgrade(store.hits()),
        };
        let count = Arc::clone(&reg.count);
        // A store that is gone gives its place (its number never comes back, so no slot
        // still tagged with it can be served).
        match self.regs.iter_mut().find(|r| r.sink.strong_count() == 0) {
            Some(dead) => *dead = reg,
            None => self.regs.push(reg),
        }
        count
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        // The thread ends: its counts stay with their stores.
        for r in &self.regs {
            if let Some(sink) = r.sink.upgrade() {
                sink.retire(&r.count);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::Value;
    use std::time::{Duration, Instant};

    fn fill(s: &Store, key: &[u8], arg: &[u8], v: i64) {
        let ident = ident(arg);
        let seen = s.begin_fill(key);
        let deadline = super::super::store::Deadline {
            at: Some(Instant::now() + Duration::from_secs(60)),
            exact: false,
        };
        s.end_fill(key, seen, Some((ident, Value::Int(v), deadline)));
    }

    /// A read through the front table as `Probed::peek` does it: the front copy, else the
    /// store's entry (then copied). Its name is `R`, its argument `arg`.
    fn read(front: &mut Front, s: &Store, key: &[u8], arg: &[u8]) -> Option<(i64, bool)> {
        let read = Read {
            reader: reader_of(key),
            key,
            name: b"R",
            arg: Arg::Json(arg),
        };
        let h = front_hash(s, &read);
        if let Some((Kind::Int(n), _)) = front.get(s, h, &read, false) {
            return Some((n, true));
        }
        let ident = ident(arg);
        let (hk, hi) = s.hashes(key, &ident);
        let (n, stamp) = s.lookup(hk, hi, key, &ident, false, |v, stamp| match v {
            Value::Int(n) => Some((*n, stamp)),
            _ => None,
        })?;
        front.put(s, h, &read, stamp, Kind::Int(n), &[]);
        Some((n, false))
    }

    /// The reader of `key` (at most 7 bytes): one per key, as one structure per key would
    /// have.
    fn reader_of(key: &[u8]) -> Reader {
        assert!(key.len() <= 7);
        let mut b = [0u8; 8];
        b[..key.len()].copy_from_slice(key);
        b[7] = key.len() as u8;
        Reader(u64::from_le_bytes(b))
    }

    /// The store's identity of the read `R arg`.
    fn ident(arg: &[u8]) -> Vec<u8> {
        let mut ident = Vec::new();
        crate::near::plan::push_ident(&mut ident, b"R");
        crate::near::plan::push_ident(&mut ident, arg);
        ident
    }

    /// Copies are served until their shard's epoch moves (an invalidation, a flush, an
    /// eviction, a replacement), never across stores, and counted once each.
    #[test]
    fn copies_follow_the_store() {
        let s = Store::new(3, 1 << 20);
        let other = Store::new(100, 1 << 20);
        let mut front = Front::new();
        fill(&s, b"k", b"r", 1);
        fill(&other, b"k", b"r", 2);
        assert_eq!(read(&mut front, &s, b"k", b"r"), Some((1, false)));
        assert_eq!(read(&mut front, &s, b"k", b"r"), Some((1, true)));
        assert_eq!(read(&mut front, &other, b"k", b"r"), Some((2, false)));
        assert_eq!(read(&mut front, &other, b"k", b"r"), Some((2, true)));
        assert_eq!(read(&mut front, &s, b"k", b"r"), Some((1, true)));
        s.invalidate(b"k");
        assert_eq!(read(&mut front, &s, b"k", b"r"), None);
        assert_eq!(read(&mut front, &other, b"k", b"r"), Some((2, true)));
        fill(&s, b"k", b"r", 3);
        assert_eq!(read(&mut front, &s, b"k", b"r"), Some((3, false)));
        assert_eq!(read(&mut front, &s, b"k", b"r"), Some((3, true)));
        s.flush();
        assert_eq!(read(&mut front, &s, b"k", b"r"), None);
        // Evicted by the cap: the copy goes too.
        fill(&s, b"k", b"r", 4);
        assert_eq!(read(&mut front, &s, b"k", b"r"), Some((4, false)));
        // Fills until the clock has evicted k (its shard's turn comes with the hand).
        let mut i = 0;
        while s
            .get(b"k", &ident(b"r"), false, |v| Some(v.clone()))
            .is_some()
        {
            assert!(i < 10_000, "k never evicted");
            fill(&s, format!("x{i}").as_bytes(), b"r", i);
            i += 1;
        }
        assert_eq!(read(&mut front, &s, b"k", b"r"), None);
        // Each read counted once: store hits in the shards, front hits per thread.
        let hits = |s: &Store| s.counters().hits;
        assert_eq!(hits(&other), 3);
        let before = hits(&s);
        fill(&s, b"y", b"r", 5);
        for _ in 0..1000 {
            assert_eq!(read(&mut front, &s, b"y", b"r").map(|r| r.0), Some(5));
        }
        assert_eq!(hits(&s), before + 1000);
        // The thread's table goes: its counts stay.
        drop(front);
        assert_eq!(hits(&s), before + 1000);
    }

    /// Reads that differ in any piece never share a copy, even under one hash (a collision,
    /// forged here): fields that differ only in escaping, a string and an integer, long
    /// arguments differing in one byte, other readers (structures), other names — one name
    /// at another address included (its address and length are what it is compared by, so
    /// the same bytes elsewhere are another read: a second copy, never a wrong one). The
    /// two forms of one argument (a plain string, its JSON) are one read, with one hash.
    #[test]
    fn pieces_are_compared_exactly() {
        let s = Store::new(3, 1 << 20);
        fill(&s, b"x", b"1", 0);
        let ident = ident(b"1");
        let (hk, hi) = s.hashes(b"x", &ident);
        let stamp = s
            .lookup(hk, hi, b"x", &ident, false, |_, stamp| Some(stamp))
            .unwrap();
        const LONG_B: &[u8] = &[b'b'; 20];
        const LONG_C: &[u8] = b"bbbbbbbbbbbbbbbbbbbc";
        static NAMES: &[u8] = b"HGETHGETX";
        let (hget, hget_elsewhere): (&'static [u8], &'static [u8]) = (&NAMES[..4], &NAMES[4..8]);
        let read = |reader: u64, name: &'static [u8], arg| Read {
            reader: Reader(reader),
            key: b"k",
            name,
            arg,
        };
        let reads: Vec<Read<'_>> = vec![
            read(1, hget, Arg::Quoted(b"k1")),
            read(1, hget, Arg::Json(b"\"k1\"")),
            read(1, hget, Arg::Json(b"1")),
            read(1, hget, Arg::Quoted(b"1")),
            read(1, hget, Arg::Json(b"\"a\\\"b\"")),
            read(1, hget, Arg::Json(b"\"a\\\\b\"")),
            read(1, hget, Arg::Quoted(b"ab")),
            read(1, hget, Arg::Json(b"\"1\"")),
            read(1, &NAMES[1..4], Arg::Quoted(b"k1")),
            read(1, b"HEXISTS", Arg::Quoted(b"k1")),
            read(1, hget_elsewhere, Arg::Quoted(b"k1")),
            read(2, hget, Arg::Quoted(b"k1")),
            read(1, hget, Arg::Quoted(b"")),
            read(1, hget, Arg::Json(b"\"\"")),
            read(1, hget, Arg::Json(b"")),
            read(1, hget, Arg::Quoted(LONG_B)),
            read(1, hget, Arg::Quoted(LONG_C)),
            read(1, hget, Arg::Json(b"\"bbbbbbbbbbbbbbbbbbbb\"")),
        ];
        // What identifies a read in the front table: its reader, its name's place and
        // length, and its argument's JSON.
        let identity = |r: &Read<'_>| {
            let mut json = vec![0; r.arg.len()];
            r.arg.write_to(&mut json);
            (r.reader, r.name_id(), json)
        };
        let mut shared = 0;
        for (i, a) in reads.iter().enumerate() {
            for (j, b) in reads.iter().enumerate() {
                let mut front = Front::new();
                let h = 0x0123_4567_89ab_cdef;
                front.put(&s, h, a, stamp, Kind::Int(i as i64), &[]);
                assert_eq!(
                    front.get(&s, h, a, false),
                    Some((Kind::Int(i as i64), &[][..]))
                );
                let one = identity(a) == identity(b);
                let got = front.get(&s, h, b, false).map(|(k, _)| k);
                assert_eq!(got, one.then_some(Kind::Int(i as i64)), "{i} {j}");
                if one {
                    assert_eq!(front_hash(&s, a), front_hash(&s, b), "{i} {j}");
                    shared += usize::from(i != j);
                }
            }
        }
        // The quoted and encoded forms of "k1", "1", "" and the long string, each way.
        assert_eq!(shared, 8);
    }

    /// The word comparison is `==`.
    #[test]
    fn same_is_eq() {
        let a: Vec<u8> = (0..40).collect();
        for n in 0..=40 {
            for m in 0..=40 {
                assert_eq!(same(&a[..n], &a[..m]), n == m);
            }
            for i in 0..n {
                let mut b = a[..n].to_vec();
                assert!(same(&a[..n], &b));
                b[i] ^= 1;
                assert!(!same(&a[..n], &b), "{n} {i}");
            }
        }
    }
}
