//! `BloomFilter`: pottery's Bloom filter, bit for bit, at one round trip per call.
//!
#![doc = include_str!("../guide/bloom.md")]

use std::borrow::Borrow;
use std::marker::PhantomData;

use redis::Value;
use serde::Serialize;

use super::murmur::murmur3_x86_32;
use crate::client::Redis;
use crate::error::{Error, Result};
use crate::exec::plan::Op;
use crate::exec::reply::{encode, encode_into, int, unexpected};

const STRING: &str = "string";

/// The number of bits `m` of a filter sized for `num_elements` at `false_positives`, by
/// pottery's formula: `ceil(-n ln p / (ln 2)²)`.
fn size_for(num_elements: u64, false_positives: f64) -> u64 {
    let ln2 = std::f64::consts::LN_2;
    ((-(num_elements as f64) * false_positives.ln()) / (ln2 * ln2)).ceil() as u64
}

/// The number of hash functions `k`, by pottery's formula: `ceil(m / n · ln 2)`.
fn hashes_for(size: u64, num_elements: u64) -> u32 {
    ((size as f64 / num_elements as f64) * std::f64::consts::LN_2).ceil() as u32
}

/// The constructor `new` of both shells (each with its own docs): one definition.
macro_rules! new_filter {
    ($(#[$doc:meta])*) => {
        $(#[$doc])*
        pub fn new(
            redis: &Redis,
            key: impl Into<String>,
            num_elements: u64,
            false_positives: f64,
        ) -> Result<Self> {
            Ok(BloomFilter {
                core: Core::new(redis, key.into(), num_elements, false_positives)?,
            })
        }
    };
}

/// The plans of a Bloom filter; shared by the blocking and the async shells.
pub(crate) struct Core<T> {
    pub(crate) redis: Redis,
    pub(crate) key: String,
    num_elements: u64,
    false_positives: f64,
    size: u64,
    num_hashes: u32,
    _types: PhantomData<fn(T)>,
}

crate::shell::clone_core!(Core<T> { redis, key, num_elements, false_positives, size, num_hashes });

impl<T> Core<T> {
    fn new(redis: &Redis, key: String, num_elements: u64, false_positives: f64) -> Result<Self> {
        if num_elements == 0 || !(false_positives > 0.0 && false_positives < 1.0) {
            return Err(Error::Config {
                message: format!(
                    "Bloom filter `{key}`: num_elements must be at least 1 and false_positives \
                     strictly between 0 and 1 (got {num_elements} and {false_positives})"
                ),
            });
        }
        // Above 1/2 the formulas call for fewer than one hash function; rounded up to one,
        // the filter delivers a worse rate than asked (0.99 for 0.9), and near 1 it is a
        // single bit that answers "yes" to everything.
        if false_positives > 0.5 {
            return Err(Error::Config {
                message: format!(
                    "Bloom filter `{key}`: a false_positives rate above 0.5 cannot be delivered \
                     (the sizing calls for fewer than one hash function); got {false_positives}"
                ),
            });
        }
        let size = size_for(num_elements, false_positives);
        // Bit offsets above 2^32 - 1 are beyond what Redis strings hold (512 MiB).
        if size > u64::from(u32::MAX) {
            return Err(Error::Config {
                message: format!(
                    "Bloom filter `{key}` would need {size} bits, more than a Redis string holds"
                ),
            });
        }
        Ok(Core {
            redis: redis.clone(),
            key,
            num_elements,
            false_positives,
            size,
            num_hashes: hashes_for(size, num_elements),
            _types: PhantomData,
        })
    }

    /// The bit offsets of one encoded value: signed MurmurHash3 with seeds `0..k`, floor-modulo
    /// `m` (Python's `%`), exactly as pottery computes them.
    fn offsets<'a>(&'a self, encoded: &'a [u8]) -> impl Iterator<Item = u64> + 'a {
        let m = self.size as i64;
        (0..self.num_hashes).map(move |seed| {
            // rem_euclid of a positive modulus is Python's floor-modulo.
            i64::from(murmur3_x86_32(encoded, seed)).rem_euclid(m) as u64
        })
    }

    fn bitfield<Q: Serialize + ?Sized>(
        &self,
        command: &str,
        sub: &[&str],
        values: impl IntoIterator<Item = impl Borrow<Q>>,
    ) -> Result<(redis::Cmd, usize)> {
        let mut cmd = redis::cmd(command);
        cmd.arg(&self.key);
        let mut count = 0;
        let mut buf = String::new();
        for v in values {
            encode_into(&self.key, v.borrow(), &mut buf)?;
            for offset in self.offsets(buf.as_bytes()) {
                cmd.arg(sub).arg(offset);
                if command == "BITFIELD" {
                    cmd.arg(1);
                }
            }
            count += 1;
        }
        Ok((cmd, count))
    }

    /// `BITFIELD key SET u1 off 1 …` for every bit of every value: atomic, one command. The
    /// reply holds each bit's old value; a value was certainly new if one of its bits was 0.
    fn update_plan<Q: Serialize + ?Sized>(
        &self,
        values: impl IntoIterator<Item = impl Borrow<Q>>,
    ) -> Result<Op<'_, usize>> {
        let (cmd, count) = self.bitfield("BITFIELD", &["SET", "u1"], values)?;
        if count == 0 {
            return Ok(Op::ready(&self.key, 0));
        }
        let k = self.num_hashes as usize;
        Ok(Op::cmd_with(&self.key, STRING, cmd, move |key, v| {
            Ok(chunked_bits(key, v, k)?
                .into_iter()
                .filter(|all_set| !all_set)
                .count())
        }))
    }

    /// `BITFIELD_RO key GET u1 off …`: read-only, one command for any number of values.
    fn contains_many_plan<Q: Serialize + ?Sized>(
        &self,
        values: impl IntoIterator<Item = impl Borrow<Q>>,
    ) -> Result<Op<'_, Vec<bool>>> {
        let (cmd, count) = self.bitfield("BITFIELD_RO", &["GET", "u1"], values)?;
        if count == 0 {
            return Ok(Op::ready(&self.key, Vec::new()));
        }
        let k = self.num_hashes as usize;
        Ok(Op::cmd_with(&self.key, STRING, cmd, move |key, v| {
            chunked_bits(key, v, k)
        }))
    }

    /// pottery's estimate `floor(-m / k · ln(1 - X / m))` with `X = BITCOUNT`.
    /// The plan: `BITCOUNT`.
    fn len_plan(&self) -> Op<'_, usize> {
        let mut cmd = redis::cmd("BITCOUNT");
        cmd.arg(&self.key);
        let (m, k) = (self.size as f64, f64::from(self.num_hashes));
        Op::cmd_with(&self.key, STRING, cmd, move |key, v| {
            // Bits past m (written by someone else) cannot be ours: count at most m.
            // A full filter saturates at the estimate for m - 1 bits set: the largest count
            // its bits can tell apart (the exact estimate would be infinite).
            let set = (int(key, v)?.max(0) as f64).min(m - 1.0);
            Ok(estimate(m, k, set))
        })
    }

    /// The plan: `UNLINK`.
    fn clear_plan(&self) -> Op<'_, ()> {
        let mut cmd = redis::cmd("UNLINK");
        cmd.arg(&self.key);
        Op::cmd(&self.key, STRING, cmd, |_, _| Ok(()))
    }
}

/// The estimate of how many values set `set` of `m` bits with `k` hashes. Callers pass at most
/// `m - 1` bits, so a saturated filter gives `floor(m / k · ln m)` instead of pottery's
/// `ValueError` from `log(0)`.
fn estimate(m: f64, k: f64, set: f64) -> usize {
    // `as` saturates, and the result is never negative.
    (-m / k * (1.0 - set / m).ln()).floor() as usize
}

/// Groups a BITFIELD reply by `k` (one group per value): whether all of a group's bits are 1.
fn chunked_bits(key: &str, value: Value, k: usize) -> Result<Vec<bool>> {
    let Value::Array(bits) = value else {
        return Err(unexpected(key, "an array of bits", &value));
    };
    let bits = bits
        .into_iter()
        .map(|b| int(key, b))
        .collect::<Result<Vec<_>>>()?;
    Ok(bits.chunks(k).map(|c| c.iter().all(|b| *b == 1)).collect())
}

crate::shell::ops! {
    // How to find an operation: `BloomFilter::add` in the docs -> its `fn add` entry
    // below (same name; the body builds the plan) -> the plan builder it calls,
    // `Core::update_plan` (above), whose doc line names the request: the command, or the
    // `scripts/*.lua` it runs.
    impl<T: Serialize>
        /// A Bloom filter's operations in a [`Batch`](crate::Batch) or an
        /// [`aio::Batch`](crate::aio::Batch): each queues the plan of the [`BloomFilter`] method
        /// of the same name and gives its result in a [`Pending`](crate::Pending).
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # let f: pottery::BloomFilter<String> = pottery::BloomFilter::random(&redis, 100, 0.01)?;
        /// let batch = pottery::Batch::new(&redis);
        /// let new = batch.on(&f).add("raj");
        /// let seen = batch.on(&f).contains("raj");
        /// batch.execute()?;
        /// assert!(new.get()? && seen.get()?);
        /// # f.clear()?;
        /// # Ok::<(), pottery::Error>(())
        /// ```
        BloomFilter<T> and aio::BloomFilter<T>, batch BloomOps(Core<T>)
    {
        example f: This<u32> = random(&redis, 100, 0.01), clear;

        /// Adds `v`; `true` if it was certainly not in the filter before (one of its bits was 0).
        #[example(bare)]
        /// # let f: pottery::BloomFilter<&str> = pottery::BloomFilter::random(&redis, 100, 0.01)?;
        /// assert!(f.add("rajiv")?);
        /// assert!(!f.add("rajiv")?);
        /// # f.clear()?;
        #[example(async, bare)]
        /// # let f: pottery::aio::BloomFilter<u8> = pottery::aio::BloomFilter::new(&redis, "bf-add-async", 100, 0.01)?;
        /// # f.clear().await?;
        /// assert!(f.add(&7).await?);
        /// # f.clear().await?;
        fn add<Q>(&self, v: &Q) -> bool
        where
            T: Borrow<Q>,
            Q: Serialize + ?Sized,
        {
            Ok(self.core.update_plan::<Q>([v])?.and_then(|n| Ok(n == 1)))
        }

        /// Adds every value in one atomic round trip; returns how many were certainly new.
        #[example]
        /// assert_eq!(f.update(0..50)?, 50);
        /// assert_eq!(f.update(0..50)?, 0);
        #[example(async, bare)]
        /// # let f: pottery::aio::BloomFilter<u8> = pottery::aio::BloomFilter::new(&redis, "bf-upd-async", 100, 0.01)?;
        /// # f.clear().await?;
        /// assert_eq!(f.update([1, 2, 3]).await?, 3);
        /// # f.clear().await?;
        fn update(&self, values: impl IntoIterator<Item = T>) -> usize {
            self.core.update_plan::<T>(values)
        }

        /// Whether `v` may be in the filter (`false` means certainly not).
        #[example(bare)]
        /// # let f: pottery::BloomFilter<String> = pottery::BloomFilter::random(&redis, 100, 0.01)?;
        /// f.add("raj")?;
        /// assert!(f.contains("raj")?);
        /// # f.clear()?;
        #[example(async, bare)]
        /// # let f: pottery::aio::BloomFilter<u8> = pottery::aio::BloomFilter::new(&redis, "bf-has-async", 100, 0.01)?;
        /// # f.clear().await?;
        /// assert!(!f.contains(&1).await?);
        fn contains<Q>(&self, v: &Q) -> bool
        where
            T: Borrow<Q>,
            Q: Serialize + ?Sized,
        {
            Ok(self.core
                .contains_many_plan::<Q>([v])?
                .and_then(|found| Ok(found.first().copied().unwrap_or(false))))
        }

        /// [`contains`](Self::contains) for many values, in order, in one round trip.
        #[example]
        /// f.update([1, 2])?;
        /// assert_eq!(f.contains_many([2, 1, 99])?, [true, true, false]);
        #[example(async, bare)]
        /// # let f: pottery::aio::BloomFilter<u8> = pottery::aio::BloomFilter::new(&redis, "bf-many-async", 100, 0.01)?;
        /// # f.clear().await?;
        /// f.add(&1).await?;
        /// assert_eq!(f.contains_many([1, 2]).await?, [true, false]);
        /// # f.clear().await?;
        fn contains_many<Q>(&self, values: impl IntoIterator<Item = Q>) -> Vec<bool>
        where
            Q: Serialize,
        {
            self.core.contains_many_plan::<Q>(values)
        }

        /// pottery's estimate of how many distinct values were added (one `BITCOUNT`). A saturated
        /// filter (every bit set) gives the largest estimate its bits can tell apart,
        /// `floor(m / k · ln m)` (the one for `m - 1` bits set): at least that many values went in,
        /// and [`contains`](Self::contains) now answers `true` for everything. pottery raises
        /// `ValueError` there; an earlier pottery-rs returned `usize::MAX`.
        #[example]
        /// f.update(0..10)?;
        /// assert!((9..=11).contains(&f.len()?)); // an estimate
        #[example(async, bare)]
        /// # let f: pottery::aio::BloomFilter<u8> = pottery::aio::BloomFilter::new(&redis, "bf-len-async", 100, 0.01)?;
        /// # f.clear().await?;
        /// f.update([1, 2]).await?;
        /// assert_eq!(f.len().await?, 2);
        /// # f.clear().await?;
        fn len(&self) -> usize {
            self.core.len_plan()
        }

        /// Deletes the filter (`UNLINK`).
        #[example]
        /// f.add(&1)?;
        /// f.clear()?;
        /// assert!(!f.contains(&1)?);
        #[example(async, bare)]
        /// # let f: pottery::aio::BloomFilter<u8> = pottery::aio::BloomFilter::new(&redis, "bf-clear-async", 100, 0.01)?;
        /// f.clear().await?;
        fn clear(&self) -> () {
            self.core.clear_plan()
        }

        /// Whether no bit is set.
        #[example]
        /// assert!(f.is_empty()?);
        #[example(async, bare)]
        /// # let f: pottery::aio::BloomFilter<u8> = pottery::aio::BloomFilter::new(&redis, "bf-empty-async", 100, 0.01)?;
        /// # f.clear().await?;
        /// assert!(f.is_empty().await?);
        fn is_empty(&self) -> bool {
            self.core.len_plan().and_then(|n| Ok(n == 0))
        }
    }
}

/// A Bloom filter in a Redis string, bit-compatible with Python pottery's `BloomFilter`.
///
/// A Bloom filter answers "have I seen this value?" with no false negatives and a tunable rate
/// of false positives, in `size()` bits whatever the values. pottery-rs sets exactly the bits
/// pottery sets (signed MurmurHash3 x86_32 of the value's JSON with seeds `0..k`, floor-modulo
/// `m`), so a Python process and a Rust process configured with the same `num_elements` and
/// `false_positives` share one filter. Those two numbers are not stored in Redis: every user of
/// a filter must configure them alike.
///
/// Every call is one round trip: `add`/`update` are one `BITFIELD … SET` (atomic, for any
/// number of values) and `contains`/`contains_many` one `BITFIELD_RO … GET`.
///
/// ```
/// use pottery::{BloomFilter, Redis};
///
/// let redis = Redis::from_env()?;
/// # let redis = pottery::testing::doctest_redis();
/// let dilberts: BloomFilter<&str> = BloomFilter::new(&redis, "dilberts-doc", 100, 0.01)?;
/// # dilberts.clear()?;
/// assert_eq!((dilberts.size(), dilberts.num_hashes()), (959, 7));
/// dilberts.add("rajiv")?;
/// dilberts.update(["raj", "dan"])?;
/// assert!(dilberts.contains("rajiv")?);
/// assert!(!dilberts.contains("luis")?);
/// assert_eq!(dilberts.contains_many(["dan", "eric"])?, [true, false]);
/// assert_eq!(dilberts.len()?, 3);
/// # dilberts.clear()?;
/// # Ok::<(), pottery::Error>(())
/// ```
pub struct BloomFilter<T> {
    core: Core<T>,
}

crate::shell::shell_impls!(BloomFilter<T>, "BloomFilter");
crate::shell::shell_basics!(handles BloomFilter, aio::BloomFilter, [T], "BloomFilter::<String>::new(&redis, \"k\", 100, 0.01)?");

impl<T: Serialize> BloomFilter<T> {
    new_filter! {
        /// Attaches to the filter at `key`, sized for `num_elements` values at a
        /// `false_positives` rate (no I/O). [`Error::Config`] if `num_elements` is 0, the rate is
        /// not more than 0 and at most 0.5, or the filter would not fit in a Redis string. (Above
        /// 0.5 pottery's formulas ask for less than one hash function: the filter would deliver a
        /// worse rate than asked, and near 1 it is one bit that answers "yes" to everything.)
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// let f: pottery::BloomFilter<u64> = pottery::BloomFilter::new(&redis, "seen", 1_000_000, 0.001)?;
        /// assert_eq!((f.size(), f.num_hashes()), (14_377_588, 10));
        /// assert!(pottery::BloomFilter::<u64>::new(&redis, "seen", 10, 1.5).is_err());
        /// # Ok::<(), pottery::Error>(())
        /// ```
    }

    /// Attaches to a fresh `pottery:<uuid4>` key (not deleted on drop: call `clear`).
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// let f: pottery::BloomFilter<u64> = pottery::BloomFilter::random(&redis, 100, 0.01)?;
    /// assert!(f.key().starts_with("pottery:"));
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn random(redis: &Redis, num_elements: u64, false_positives: f64) -> Result<Self> {
        let key = crate::shell::keys::random_key(redis)?;
        BloomFilter::new(redis, key, num_elements, false_positives)
    }

    /// The number of bits, `m` (pottery's `size()`).
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// let f: pottery::BloomFilter<u64> = pottery::BloomFilter::new(&redis, "k", 1000, 0.1)?;
    /// assert_eq!(f.size(), 4793);
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn size(&self) -> u64 {
        self.core.size
    }

    /// The number of hash functions, `k` (pottery's `num_hashes()`).
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// let f: pottery::BloomFilter<u64> = pottery::BloomFilter::new(&redis, "k", 1000, 0.1)?;
    /// assert_eq!(f.num_hashes(), 4);
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn num_hashes(&self) -> u32 {
        self.core.num_hashes
    }

    /// The capacity and false-positive rate the filter was sized for.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// let f: pottery::BloomFilter<u64> = pottery::BloomFilter::new(&redis, "k", 1000, 0.1)?;
    /// assert_eq!(f.params(), (1000, 0.1));
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn params(&self) -> (u64, f64) {
        (self.core.num_elements, self.core.false_positives)
    }

    /// The bit offsets `v` sets: what pottery computes for the same value and parameters.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// let f: pottery::BloomFilter<&str> = pottery::BloomFilter::new(&redis, "k", 100, 0.01)?;
    /// assert_eq!(f.offsets("rajiv")?, [183, 319, 787, 585, 8, 471, 711]);
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn offsets<Q>(&self, v: &Q) -> Result<Vec<u64>>
    where
        T: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let encoded = encode(&self.core.key, v)?;
        Ok(self.core.offsets(&encoded).collect())
    }
}

/// The async twin: [`aio::BloomFilter`](crate::aio::BloomFilter).
pub mod aio {
    use super::*;

    /// Async [`BloomFilter`](crate::BloomFilter): the same methods, as `async fn`s.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let f: pottery::aio::BloomFilter<&str> =
    ///     pottery::aio::BloomFilter::new(&redis, "dilberts-async-doc", 100, 0.01)?;
    /// # f.clear().await?;
    /// f.update(["rajiv", "raj"]).await?;
    /// assert_eq!(f.contains_many(["raj", "dan"]).await?, [true, false]);
    /// # f.clear().await?;
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    pub struct BloomFilter<T> {
        pub(super) core: Core<T>,
    }

    crate::shell::shell_impls!(BloomFilter<T>, "aio::BloomFilter");

    impl<T: Serialize> BloomFilter<T> {
        new_filter! {
            /// See [`crate::BloomFilter::new`].
            ///
            /// ```
            /// # let redis = pottery::testing::doctest_redis();
            /// let f: pottery::aio::BloomFilter<u8> = pottery::aio::BloomFilter::new(&redis, "k", 100, 0.01)?;
            /// assert_eq!(f.size(), 959);
            /// # Ok::<(), pottery::Error>(())
            /// ```
        }

        /// The number of bits, `m`.
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # let f: pottery::aio::BloomFilter<u8> = pottery::aio::BloomFilter::new(&redis, "k", 100, 0.01)?;
        /// assert_eq!(f.size(), 959);
        /// # Ok::<(), pottery::Error>(())
        /// ```
        pub fn size(&self) -> u64 {
            self.core.size
        }

        /// The number of hash functions, `k`.
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # let f: pottery::aio::BloomFilter<u8> = pottery::aio::BloomFilter::new(&redis, "k", 100, 0.01)?;
        /// assert_eq!(f.num_hashes(), 7);
        /// # Ok::<(), pottery::Error>(())
        /// ```
        pub fn num_hashes(&self) -> u32 {
            self.core.num_hashes
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{estimate, hashes_for, size_for};

    #[test]
    fn pottery_sizes() {
        for (n, p, m, k) in [
            (100, 0.1, 480, 4),
            (1000, 0.1, 4793, 4),
            (100, 0.01, 959, 7),
            (1000, 0.01, 9586, 7),
            (1000, 0.001, 14378, 10),
            (5000, 0.01, 47926, 7),
            (1_000_000, 0.001, 14_377_588, 10),
        ] {
            assert_eq!(size_for(n, p), m, "m for ({n}, {p})");
            assert_eq!(hashes_for(m, n), k, "k for ({n}, {p})");
        }
    }

    #[test]
    fn estimate_saturates() {
        assert_eq!(estimate(959.0, 7.0, 0.0), 0);
        assert_eq!(estimate(959.0, 7.0, 958.0), 940);
    }
}
