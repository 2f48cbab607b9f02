//! `RedisCounter`: Python's `collections.Counter` on a Redis hash, wire-compatible with
//! pottery's `RedisCounter`.
//!
#![doc = include_str!("../guide/counter.md")]

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

use redis::Value;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::dict::Core;
use crate::client::Redis;
use crate::codec::CodecError;
use crate::codec::Storable;
use crate::error::{Error, Result};
use crate::exec::plan::{Op, script};
use crate::exec::reply::{bulk, decode, encode, encode_arg, int, unexpected};
use crate::shell::runner::Runner;

script!(COUNTER_UPDATE, "counter_update.lua", Once);
script!(COUNTER_SCAN, "counter_scan.lua", Read);

const HASH: &str = "hash";

impl<K: Serialize + DeserializeOwned> Core<K, i64> {
    /// The plan: `HINCRBY`.
    fn incr_plan<Q: Serialize + ?Sized>(&self, k: &Q, by: i64) -> Result<Op<'_, i64>> {
        let mut cmd = self.cmd("HINCRBY");
        encode_arg(&mut cmd, &self.key, k)?;
        cmd.arg(by);
        Ok(Op::cmd(&self.key, HASH, cmd, int))
    }

    /// The plan: `scripts/counter_update.lua` (`COUNTER_UPDATE`).
    fn add_counts_plan(
        &self,
        counts: impl IntoIterator<Item = (K, i64)>,
        sign: i64,
    ) -> Result<Op<'_, ()>> {
        // Merge repeats first, so each field gets one HINCRBY. A merged or negated count that
        // leaves i64 is refused here, before anything is sent.
        let key = &self.key;
        let too_big = |what: &str| {
            Error::codec(
                key,
                CodecError::new(format!("{what} does not fit an i64; nothing was written")),
            )
        };
        let mut merged: Vec<(Vec<u8>, i64)> = Vec::new();
        let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
        for (k, n) in counts {
            let field = encode(key, &k)?;
            let delta = n
                .checked_mul(sign)
                .ok_or_else(|| too_big(&format!("the negated count {n}")))?;
            match index.get(&field) {
                Some(&i) => {
                    merged[i].1 = merged[i].1.checked_add(delta).ok_or_else(|| {
                        too_big(&format!(
                            "the sum of the counts given for {}",
                            String::from_utf8_lossy(&field)
                        ))
                    })?
                }
                None => {
                    index.insert(field.clone(), merged.len());
                    merged.push((field, delta));
                }
            }
        }
        if merged.is_empty() {
            return Ok(Op::ready(key, ()));
        }
        let args = merged
            .into_iter()
            .flat_map(|(f, n)| [f, n.to_string().into_bytes()])
            .collect();
        Ok(Op::eval(
            key,
            HASH,
            &COUNTER_UPDATE,
            vec![key.clone().into_bytes()],
            args,
            counter_update_reply,
        ))
    }
}

impl<K: Serialize + DeserializeOwned> Core<K, i64> {
    /// Every count in HSCAN order (Python's reading order), as one snapshot.
    /// The plan: `scripts/counter_scan.lua` (`COUNTER_SCAN`).
    fn scan_ordered_plan(&self) -> Op<'_, Vec<(K, i64)>> {
        Op::eval_key(&self.key, HASH, &COUNTER_SCAN, Vec::new(), |key, v| {
            let Value::Array(items) = v else {
                return Err(unexpected(key, "field-value pairs", &v));
            };
            let mut out = Vec::with_capacity(items.len() / 2);
            let mut it = items.into_iter();
            while let (Some(f), Some(n)) = (it.next(), it.next()) {
                let f = bulk(key, f)?.unwrap_or_default();
                let n = bulk(key, n)?.unwrap_or_default();
                out.push((
                    decode(key, &f)?,
                    crate::exec::reply::decode_value_of(key, &f, &n)?,
                ));
            }
            Ok(out)
        })
    }
}

crate::shell::ops! {
    // How to find an operation: `RedisCounter::get` in the docs -> its `fn get` entry
    // below (same name; the body builds the plan) -> the plan builder it calls,
    // `Core::get_plan` (the dict's, in dict.rs), whose doc line names the request: the
    // command, or the `scripts/*.lua` it runs.
    impl<K: Storable>
        /// A counter's operations in a [`Batch`](crate::Batch) or an
        /// [`aio::Batch`](crate::aio::Batch): each queues the plan of the [`RedisCounter`] method
        /// of the same name and gives its result in a [`Pending`](crate::Pending).
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # let c: pottery::RedisCounter<String> = pottery::RedisCounter::random(&redis)?;
        /// let batch = pottery::Batch::new(&redis);
        /// let n = batch.on(&c).incr("hits", 2);
        /// let none = batch.on(&c).get("misses");
        /// batch.execute()?;
        /// assert_eq!((n.get()?, none.get()?), (2, 0));
        /// # c.clear()?;
        /// # Ok::<(), pottery::Error>(())
        /// ```
        RedisCounter<K> and aio::RedisCounter<K>, batch CounterOps(Core<K, i64>)
    {
        example c: This<char> = random(&redis), clear;

        /// The count of `k`; 0 when absent (`HGET`).
        #[example(bare)]
        /// # let c: pottery::RedisCounter<String> = pottery::RedisCounter::random(&redis)?;
        /// assert_eq!(c.get("nobody")?, 0);
        fn get<Q>(&self, k: &Q) -> i64
        where
            K: Borrow<Q>,
            Q: Serialize + ?Sized,
        {
            Ok(self.core.get_plan(k)?.and_then(|n| Ok(n.unwrap_or(0))))
        }

        /// Sets the count of `k` (`HSET`; 0 keeps the field, as in pottery).
        #[example(bare)]
        /// # let c: pottery::RedisCounter<String> = pottery::RedisCounter::random(&redis)?;
        /// c.set("x".into(), 5)?;
        /// assert_eq!(c.get("x")?, 5);
        /// # c.clear()?;
        fn set(&self, k: K, n: i64) -> () {
            self.core.extend_plan([(k, n)])
        }

        /// Adds `by` to the count of `k` and returns the new count (`HINCRBY`, atomic).
        #[example(bare)]
        /// # let c: pottery::RedisCounter<String> = pottery::RedisCounter::random(&redis)?;
        /// assert_eq!(c.incr("x", 1)?, 1);
        /// assert_eq!(c.incr("x", -3)?, -2);
        /// # c.clear()?;
        fn incr<Q>(&self, k: &Q, by: i64) -> i64
        where
            K: Borrow<Q>,
            Q: Serialize + ?Sized,
        {
            self.core.incr_plan(k, by)
        }

        /// Counts each element once more (Python's `update(iterable)`), atomically.
        #[example]
        /// c.update("abca".chars())?;
        /// c.update("a".chars())?;
        /// assert_eq!(c.get(&'a')?, 3);
        fn update(&self, elements: impl IntoIterator<Item = K>) -> () {
            self.core.add_counts_plan(elements.into_iter().map(|k| (k, 1)), 1)
        }

        /// Adds these counts (Python's `update(mapping)`), atomically: all of them or none.
        ///
        /// Every field is checked in the script before the first write: when a stored count is not
        /// a decimal `i64` (say `007`, written by another client) or a sum would leave `i64`, the
        /// call fails with [`Error::Codec`](crate::Error::Codec), whose message ends "nothing was
        /// written", and no count changed. (Python has unbounded ints; Redis counts are `i64`.)
        #[example(bare)]
        /// # let c: pottery::RedisCounter<String> = pottery::RedisCounter::random(&redis)?;
        /// c.set("full".to_string(), i64::MAX)?;
        /// let err = c.update_counts([("new".to_string(), 1), ("full".to_string(), 1)]).unwrap_err();
        /// assert!(err.to_string().ends_with("nothing was written"));
        /// assert_eq!(c.get("new")?, 0);
        /// # c.clear()?;
        /// # Ok::<(), pottery::Error>(())
        /// ```
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # let c: pottery::RedisCounter<String> = pottery::RedisCounter::random(&redis)?;
        /// c.update_counts([("a".to_string(), 2), ("b".to_string(), 5)])?;
        /// assert_eq!(c.get("b")?, 5);
        /// # c.clear()?;
        fn update_counts(&self, counts: impl IntoIterator<Item = (K, i64)>) -> () {
            self.core.add_counts_plan(counts, 1)
        }

        /// Counts each element once less (Python's `subtract(iterable)`), atomically.
        #[example]
        /// c.subtract("aab".chars())?;
        /// assert_eq!(c.get(&'a')?, -2);
        fn subtract(&self, elements: impl IntoIterator<Item = K>) -> () {
            self.core.add_counts_plan(elements.into_iter().map(|k| (k, 1)), -1)
        }

        /// Subtracts these counts (Python's `subtract(mapping)`), atomically: all of them or none,
        /// checked as [`update_counts`](Self::update_counts) does.
        #[example(bare)]
        /// # let c: pottery::RedisCounter<String> = pottery::RedisCounter::random(&redis)?;
        /// c.subtract_counts([("a".to_string(), 2)])?;
        /// assert_eq!(c.get("a")?, -2);
        /// # c.clear()?;
        fn subtract_counts(&self, counts: impl IntoIterator<Item = (K, i64)>) -> () {
            self.core.add_counts_plan(counts, -1)
        }

        /// Removes `k`, returning its count if it had one.
        #[example(bare)]
        /// # let c: pottery::RedisCounter<String> = pottery::RedisCounter::random(&redis)?;
        /// c.incr("a", 4)?;
        /// assert_eq!(c.remove("a")?, Some(4));
        /// assert_eq!(c.remove("a")?, None);
        fn remove<Q>(&self, k: &Q) -> Option<i64>
        where
            K: Borrow<Q>,
            Q: Serialize + ?Sized,
        {
            self.core.remove_plan(k)
        }

        /// How many distinct keys (`HLEN`).
        #[example]
        /// c.update("aab".chars())?;
        /// assert_eq!(c.len()?, 2);
        fn len(&self) -> usize {
            self.core.len_plan()
        }

        /// Every count, in one `HGETALL`.
        #[example]
        /// c.update("aab".chars())?;
        /// assert_eq!(c.to_hash_map()?, [('a', 2), ('b', 1)].into());
        fn to_hash_map(&self) -> HashMap<K, i64>
        where
            K: Eq + Hash,
        {
            self.core.to_hash_map_plan()
        }

        /// Deletes the counter (`UNLINK`).
        #[example]
        /// c.update("a".chars())?;
        /// c.clear()?;
        /// assert!(c.is_empty()?);
        fn clear(&self) -> () {
            self.core.clear_plan()
        }

        /// Whether no key is counted.
        #[example]
        /// assert!(c.is_empty()?);
        fn is_empty(&self) -> bool {
            self.core.len_plan().and_then(|n| Ok(n == 0))
        }

        /// The `n` most common keys and their counts, most common first (all when `None`).
        ///
        /// Equal counts keep the order in which `HSCAN` returns the keys (the order of
        /// [`iter`](Self::iter)), which is the order Python's `Counter(counter).most_common`
        /// keeps, so the two pick the same keys when ties straddle the cut. One round trip (a
        /// script that runs the scan), one snapshot.
        #[example]
        /// c.update("abracadabra".chars())?;
        /// assert_eq!(c.most_common(Some(1))?, [('a', 5)]);
        /// let top3 = c.most_common(Some(3))?;
        /// assert_eq!(top3.iter().map(|(_, n)| *n).collect::<Vec<_>>(), [5, 2, 2]); // b and r tie
        /// assert_eq!(c.most_common(None)?.len(), 5);
        fn most_common(&self, n: Option<usize>) -> Vec<(K, i64)>
        where
            K: Eq + Hash,
        {
            self.core.scan_ordered_plan().and_then(move |all| Ok(most_common(all, n)))
        }

        /// Each key repeated as many times as its count (non-positive counts give none), keys in
        /// the order `HSCAN` returns them, as Python's `elements()` over a pottery counter.
        /// [`Error::Codec`](crate::Error::Codec) when the counts add up to more elements than
        /// memory can hold (the space is reserved before anything is copied).
        #[example]
        /// c.update("aab".chars())?;
        /// let mut e = c.elements()?;
        /// e.sort();
        /// assert_eq!(e, ['a', 'a', 'b']);
        fn elements(&self) -> Vec<K>
        where
            K: Eq + Hash + Clone,
        {
            let key = &self.core.key;
            self.core.scan_ordered_plan().and_then(move |all| elements(key, all))
        }

        /// The sum of all counts, exact: [`Error::Codec`](crate::Error::Codec) when it does not fit
        /// an `i64` (Python's `total()` returns an unbounded int; we never return a wrapped one).
        #[example]
        /// c.update("aab".chars())?;
        /// assert_eq!(c.total()?, 3);
        fn total(&self) -> i64
        where
            K: Eq + Hash,
        {
            let key = &self.core.key;
            self.core.to_hash_map_plan().and_then(move |all| total(key, all.values()))
        }

        /// `self + other`, keeping positive counts (Python's `Counter.__add__`).
        #[example(bare)]
        /// # let a: pottery::RedisCounter<char> = pottery::RedisCounter::random(&redis)?;
        /// # let b: pottery::RedisCounter<char> = pottery::RedisCounter::random(&redis)?;
        /// a.update("aab".chars())?;
        /// b.update_counts([('a', 1), ('b', -5)])?;
        /// assert_eq!(a.add(&b)?, [('a', 3)].into());
        /// # a.clear()?; b.clear()?;
        #[steps(r)]
        fn add(&self, other: &Self) -> HashMap<K, i64>
        where
            K: Eq + Hash,
        {
            both(r, &self.core, &other.core)
                .await
                .and_then(|(a, b)| combine(&self.core.key, Combine::Add, a, b))
        }

        /// `self - other`, keeping positive counts (Python's `Counter.__sub__`).
        #[example(bare)]
        /// # let a: pottery::RedisCounter<char> = pottery::RedisCounter::random(&redis)?;
        /// # let b: pottery::RedisCounter<char> = pottery::RedisCounter::random(&redis)?;
        /// a.update("aab".chars())?;
        /// b.update("a".chars())?;
        /// assert_eq!(a.sub(&b)?, [('a', 1), ('b', 1)].into());
        /// # a.clear()?; b.clear()?;
        #[steps(r)]
        fn sub(&self, other: &Self) -> HashMap<K, i64>
        where
            K: Eq + Hash,
        {
            both(r, &self.core, &other.core)
                .await
                .and_then(|(a, b)| combine(&self.core.key, Combine::Sub, a, b))
        }

        /// The larger count of each key, keeping positive counts (Python's `Counter.__or__`).
        #[example(bare)]
        /// # let a: pottery::RedisCounter<char> = pottery::RedisCounter::random(&redis)?;
        /// # let b: pottery::RedisCounter<char> = pottery::RedisCounter::random(&redis)?;
        /// a.update("aab".chars())?;
        /// b.update("bbc".chars())?;
        /// assert_eq!(a.union(&b)?, [('a', 2), ('b', 2), ('c', 1)].into());
        /// # a.clear()?; b.clear()?;
        #[steps(r)]
        fn union(&self, other: &Self) -> HashMap<K, i64>
        where
            K: Eq + Hash,
        {
            both(r, &self.core, &other.core)
                .await
                .and_then(|(a, b)| combine(&self.core.key, Combine::Union, a, b))
        }

        /// The smaller count of each key, keeping positive counts (Python's `Counter.__and__`).
        #[example(bare)]
        /// # let a: pottery::RedisCounter<char> = pottery::RedisCounter::random(&redis)?;
        /// # let b: pottery::RedisCounter<char> = pottery::RedisCounter::random(&redis)?;
        /// a.update("aab".chars())?;
        /// b.update("bbc".chars())?;
        /// assert_eq!(a.intersection(&b)?, [('b', 1)].into());
        /// # a.clear()?; b.clear()?;
        #[steps(r)]
        fn intersection(&self, other: &Self) -> HashMap<K, i64>
        where
            K: Eq + Hash,
        {
            both(r, &self.core, &other.core)
                .await
                .and_then(|(a, b)| combine(&self.core.key, Combine::Intersection, a, b))
        }
    }
}

/// The reply of `counter_update.lua`: `{1}`, or `{0, field, stored value, reason}` when it
/// refused the update and wrote nothing.
fn counter_update_reply(key: &str, v: Value) -> Result<()> {
    let Value::Array(parts) = &v else {
        return Err(unexpected(key, "a counter update reply", &v));
    };
    match parts.as_slice() {
        [Value::Int(1)] => Ok(()),
        [Value::Int(0), field, stored, reason] => {
            let text = |v: &Value| {
                Ok::<_, Error>(
                    String::from_utf8_lossy(&bulk(key, v.clone())?.unwrap_or_default())
                        .into_owned(),
                )
            };
            let (field, stored, reason) = (text(field)?, text(stored)?, text(reason)?);
            let why = if reason == "overflow" {
                format!("adding to the count {stored} of field {field} would leave i64")
            } else {
                format!("the count of field {field} is {stored:?}, not a decimal i64")
            };
            Err(Error::codec(
                key,
                CodecError::new(format!("{why}; nothing was written")),
            ))
        }
        _ => Err(unexpected(key, "a counter update reply", &v)),
    }
}

/// Counts of another counter, both read (one round trip each).
async fn both<K, R>(
    r: &R,
    a: &Core<K, i64>,
    b: &Core<K, i64>,
) -> Result<(HashMap<K, i64>, HashMap<K, i64>)>
where
    K: Serialize + DeserializeOwned + Eq + Hash + Send,
    R: Runner,
{
    let mine = r.run(&a.redis, a.to_hash_map_plan()).await?;
    let theirs = r.run(&b.redis, b.to_hash_map_plan()).await?;
    Ok((mine, theirs))
}

/// How two counters combine, as Python's `Counter` operators do: only positive results.
#[derive(Clone, Copy)]
enum Combine {
    Add,
    Sub,
    Union,
    Intersection,
}

fn combine<K: Eq + Hash + Serialize>(
    key: &str,
    op: Combine,
    mine: HashMap<K, i64>,
    mut theirs: HashMap<K, i64>,
) -> Result<HashMap<K, i64>> {
    // Exact arithmetic in i128 (two i64s cannot leave it), then Python's rule: keep the positive
    // results. A positive result beyond i64 is refused, naming the field and the exact count; a
    // negative one is dropped, as Python drops it, so it is no reason to fail.
    let mut out = HashMap::new();
    let mut keep = |k: K, n: i128| -> Result<()> {
        if n <= 0 {
            return Ok(());
        }
        match i64::try_from(n) {
            Ok(n) => {
                out.insert(k, n);
                Ok(())
            }
            Err(_) => Err(count_out_of_range(key, &k, n)),
        }
    };
    for (k, a) in mine {
        let b = theirs.remove(&k);
        let (a, b0) = (i128::from(a), i128::from(b.unwrap_or(0)));
        let n = match op {
            Combine::Add => a + b0,
            Combine::Sub => a - b0,
            Combine::Union => a.max(b0),
            Combine::Intersection => a.min(b0),
        };
        keep(k, n)?;
    }
    for (k, b) in theirs {
        let b = i128::from(b);
        let n = match op {
            Combine::Add | Combine::Union => b,
            Combine::Sub => -b,
            Combine::Intersection => 0,
        };
        keep(k, n)?;
    }
    Ok(out)
}

/// The error for a count Python would hold but an `i64` cannot: names the key, the field (as
/// stored) and the exact count.
fn count_out_of_range<K: Serialize>(key: &str, k: &K, n: i128) -> Error {
    let field = crate::codec::encode(k).unwrap_or_else(|e| format!("<{e}>"));
    Error::codec(
        key,
        CodecError::new(format!(
            "the count of field {field} would be {n}, which does not fit an i64 \
             (Python's counts are unbounded; RedisCounter's are i64)"
        )),
    )
}

/// Most common first; ties keep the order read (a stable sort, as Python's `most_common`).
fn most_common<K>(mut all: Vec<(K, i64)>, n: Option<usize>) -> Vec<(K, i64)> {
    all.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    if let Some(n) = n {
        all.truncate(n);
    }
    all
}

/// The exact sum of the counts, or a [`Error::Codec`] when it does not fit an `i64` (never a
/// wrapped or saturated value). The sum is taken in `i128`, which cannot overflow for any
/// number of fields a hash can hold.
fn total<'a>(key: &str, counts: impl IntoIterator<Item = &'a i64>) -> Result<i64> {
    let sum: i128 = counts.into_iter().map(|n| i128::from(*n)).sum();
    i64::try_from(sum).map_err(|_| {
        Error::codec(
            key,
            CodecError::new(format!(
                "the total of the counts, {sum}, does not fit an i64"
            )),
        )
    })
}

/// Each key repeated by its count, or a [`Error::Codec`] when that many elements cannot be held
/// in memory (counts go up to 2^63 − 1: a count of 2^40 would otherwise fill memory for hours).
fn elements<K: Clone>(key: &str, counts: Vec<(K, i64)>) -> Result<Vec<K>> {
    let total: i128 = counts.iter().map(|(_, n)| i128::from((*n).max(0))).sum();
    let mut out = Vec::new();
    let room = usize::try_from(total)
        .ok()
        .and_then(|n| out.try_reserve_exact(n).ok());
    if room.is_none() {
        return Err(Error::codec(
            key,
            CodecError::new(format!(
                "the counts add up to {total} elements, more than can be held in memory"
            )),
        ));
    }
    for (k, n) in counts {
        for _ in 0..n.max(0) {
            out.push(k.clone());
        }
    }
    Ok(out)
}

/// A Redis hash of counts: Python's `Counter`, as pottery's `RedisCounter` stores it (field =
/// `codec::encode(k)`, value = the decimal count).
///
/// Unlike pottery, every update is atomic and correct on existing keys: `incr` is one
/// `HINCRBY`; `update`/`subtract` are one Lua call that adds all counts or none (pottery reads,
/// then writes, and double-counts iterable updates on existing keys). A count that would leave
/// `i64`, or a stored value that is not a decimal `i64`, fails the whole call with
/// [`Error::Codec`](crate::Error::Codec) before anything is written.
///
/// # Counts are `i64`; Python's are unbounded
///
/// Redis's `HINCRBY` works on 64-bit integers, and so do these counts. Where Python would
/// produce or hold a count outside `i64::MIN..=i64::MAX`, every method refuses with
/// [`Error::Codec`](crate::Error::Codec) naming the key (and the field, where one is at
/// fault), never an `Ok` with a capped or wrapped number:
///
/// * a stored count beyond `i64` (Python's `c['x'] = 2**63`): `get`, `iter`, `to_hash_map`,
///   `most_common`, `elements`, `total` and the operators fail; `update_counts` and friends
///   write nothing. Read such a hash as a [`RedisDict`](crate::RedisDict)`<K, i128>` (or
///   [`codec::Value`](crate::codec::Value) for any size);
/// * a sum beyond `i64`: `update_counts`, `subtract_counts` and `incr` (the server refuses)
///   write nothing; `total` fails;
/// * `add`/`sub` whose positive result is beyond `i64` (`{x: 2**63-1} + {x: 3}`): fails with
///   the exact count Python would give in the message. Results Python drops (non-positive
///   ones) are dropped here too, however large, so they are no reason to fail.
///
/// ```
/// # let redis = pottery::testing::doctest_redis();
/// # let a: pottery::RedisCounter<char> = pottery::RedisCounter::random(&redis)?;
/// # let b: pottery::RedisCounter<char> = pottery::RedisCounter::random(&redis)?;
/// a.set('x', i64::MAX)?;
/// b.set('x', 3)?;
/// let err = a.add(&b).unwrap_err();
/// assert!(err.to_string().contains("9223372036854775810"));
/// assert_eq!(err.key(), Some(a.key()));
/// # a.clear()?; b.clear()?;
/// # Ok::<(), pottery::Error>(())
/// ```
///
/// ```
/// use pottery::{Redis, RedisCounter};
///
/// let redis = Redis::from_env()?;
/// # let redis = pottery::testing::doctest_redis();
/// let c: RedisCounter<char> = RedisCounter::new(&redis, "letters-doc");
/// # c.clear()?;
/// c.update("gallahad".chars())?;
/// assert_eq!(c.get(&'a')?, 3);
/// assert_eq!(c.get(&'z')?, 0);
/// assert_eq!(c.incr(&'z', 2)?, 2);
/// assert_eq!(c.most_common(Some(1))?, [('a', 3)]);
/// # c.clear()?;
/// # Ok::<(), pottery::Error>(())
/// ```
pub struct RedisCounter<K> {
    core: Core<K, i64>,
}

crate::shell::shell_impls!(RedisCounter<K>, "RedisCounter");
crate::shell::shell_basics!(handles RedisCounter, aio::RedisCounter, [K], "RedisCounter::<String>::new(&redis, \"k\")");
crate::shell::shell_basics!(attach RedisCounter, aio::RedisCounter, [K], [K: Serialize + DeserializeOwned], "RedisCounter<String>");

impl<K: Serialize + DeserializeOwned> RedisCounter<K> {
    /// Creates the counter with these counts, atomically, or fails with
    /// [`Error::KeyExists`](crate::Error::KeyExists).
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # pottery::RedisCounter::<String>::new(&redis, "votes").clear()?;
    /// let c = pottery::RedisCounter::create(&redis, "votes", [("yes".to_string(), 3)])?;
    /// assert_eq!(c.get("yes")?, 3);
    /// # c.clear()?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn create(
        redis: &Redis,
        key: impl Into<String>,
        counts: impl IntoIterator<Item = (K, i64)>,
    ) -> Result<Self> {
        let c = RedisCounter::new(redis, key);
        redis.run(c.core.create_plan(counts)?)?;
        Ok(c)
    }

    /// Streams `(key, count)` with `HSCAN`.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let c: pottery::RedisCounter<char> = pottery::RedisCounter::random(&redis)?;
    /// c.update("aab".chars())?;
    /// assert_eq!(c.iter().count(), 2);
    /// # c.clear()?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = Result<(K, i64)>> + '_ {
        let core = &self.core;
        crate::shell::scan::iter(
            &core.redis,
            2,
            |c| core.scan_plan(c),
            |s| s.next_pair(&core.key),
        )
    }
}

/// The async twin: [`aio::RedisCounter`](crate::aio::RedisCounter).
pub mod aio {
    use super::*;
    use futures_util::Stream;

    /// Async [`RedisCounter`](crate::RedisCounter): the same methods as `async fn`s.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let c: pottery::aio::RedisCounter<String> = pottery::aio::RedisCounter::random(&redis).await?;
    /// assert_eq!(c.incr("hits", 1).await?, 1);
    /// c.update(["hits".to_string(), "misses".to_string()]).await?;
    /// assert_eq!(c.get("hits").await?, 2);
    /// assert_eq!(c.most_common(Some(1)).await?, [("hits".to_string(), 2)]);
    /// c.clear().await?;
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    pub struct RedisCounter<K> {
        pub(super) core: Core<K, i64>,
    }

    crate::shell::shell_impls!(RedisCounter<K>, "aio::RedisCounter");

    impl<K: Storable> RedisCounter<K> {
        /// See [`crate::RedisCounter::create`].
        pub async fn create(
            redis: &Redis,
            key: impl Into<String>,
            counts: impl IntoIterator<Item = (K, i64)>,
        ) -> Result<Self> {
            let c = RedisCounter::new(redis, key);
            redis.run_async(c.core.create_plan(counts)?).await?;
            Ok(c)
        }

        /// See [`crate::RedisCounter::iter`]; a `Stream`.
        pub fn iter(&self) -> impl Stream<Item = Result<(K, i64)>> + Send + '_ {
            let core = &self.core;
            let plan = |c| core.scan_plan(c);
            crate::shell::scan::stream(&core.redis, 2, plan, |s| s.next_pair(&core.key))
        }
    }
}
