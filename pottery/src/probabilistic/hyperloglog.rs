//! `HyperLogLog`: pottery's HyperLogLog (Redis `PF*` commands on JSON-encoded values).
//!
#![doc = include_str!("../guide/hyperloglog.md")]

use std::borrow::Borrow;
use std::marker::PhantomData;

use redis::Value;
use serde::Serialize;

use crate::client::Redis;
use crate::error::{Error, Result};
use crate::exec::plan::{Op, script};
use crate::exec::reply::{encode, encode_into, int, unexpected};
use crate::shell::keys::{same_place, scratch_key};
use crate::shell::runner::Runner;

script!(HLL_CONTAINS, "hll_contains.lua", Read);

const HLL: &str = "HyperLogLog";

/// The plans of a HyperLogLog; shared by the blocking and the async shells.
pub(crate) struct Core<T> {
    pub(crate) redis: Redis,
    pub(crate) key: String,
    _types: PhantomData<fn(T)>,
}

crate::shell::clone_core!(Core<T> { redis, key });

impl<T> Core<T> {
    fn new(redis: &Redis, key: String) -> Self {
        Core {
            redis: redis.clone(),
            key,
            _types: PhantomData,
        }
    }

    fn encoded<Q: Serialize + ?Sized>(
        &self,
        values: impl IntoIterator<Item = impl Borrow<Q>>,
    ) -> Result<Vec<Vec<u8>>> {
        values
            .into_iter()
            .map(|v| encode(&self.key, v.borrow()))
            .collect()
    }

    /// One `PFADD` of every value: `true` if the estimate may have changed (some value was
    /// certainly new). An empty call creates an empty HLL, as pottery's does.
    /// The plan: `PFADD`.
    fn update_plan<Q: Serialize + ?Sized>(
        &self,
        values: impl IntoIterator<Item = impl Borrow<Q>>,
    ) -> Result<Op<'_, bool>> {
        let mut cmd = redis::cmd("PFADD");
        cmd.arg(&self.key);
        let mut buf = String::new();
        for v in values {
            encode_into(&self.key, v.borrow(), &mut buf)?;
            cmd.arg(buf.as_bytes());
        }
        Ok(Op::cmd(&self.key, HLL, cmd, |key, v| Ok(int(key, v)? == 1)))
    }

    /// The plan: `PFCOUNT`.
    fn len_plan(&self) -> Op<'_, usize> {
        let mut cmd = redis::cmd("PFCOUNT");
        cmd.arg(&self.key);
        Op::cmd(&self.key, HLL, cmd, |key, v| {
            crate::exec::reply::length(key, v)
        })
    }

    /// One script: copy, add, check, with a scratch key in the same slot that it deletes.
    /// The plan: `scripts/hll_contains.lua` (`HLL_CONTAINS`).
    fn contains_many_plan<Q: Serialize + ?Sized>(
        &self,
        values: impl IntoIterator<Item = impl Borrow<Q>>,
    ) -> Result<Op<'_, Vec<bool>>> {
        let args = self.encoded::<Q>(values)?;
        if args.is_empty() {
            return Ok(Op::ready(&self.key, Vec::new()));
        }
        let keys = vec![
            self.key.clone().into_bytes(),
            scratch_key(&self.key).into_bytes(),
        ];
        Ok(Op::eval(
            &self.key,
            HLL,
            &HLL_CONTAINS,
            keys,
            args,
            |key, v| {
                let Value::Array(items) = v else {
                    return Err(unexpected(key, "an array", &v));
                };
                items.into_iter().map(|b| Ok(int(key, b)? == 1)).collect()
            },
        ))
    }

    /// Checks that one command can reach this key and `others`.
    fn reachable<'a>(&self, others: impl IntoIterator<Item = &'a Core<T>>) -> Result<Vec<String>>
    where
        T: 'a,
    {
        let mut keys = Vec::new();
        for other in others {
            if !same_place(&[(&self.redis, &self.key), (&other.redis, &other.key)]) {
                return Err(Error::CrossSlot {
                    key: self.key.clone(),
                    other: other.key.clone(),
                });
            }
            keys.push(other.key.clone());
        }
        Ok(keys)
    }

    /// This key and `others`, for a `PFMERGE`, once checked to be reachable by one command.
    fn sources<'a>(&self, others: impl IntoIterator<Item = &'a Core<T>>) -> Result<Vec<String>>
    where
        T: 'a,
    {
        let mut sources = vec![self.key.clone()];
        sources.extend(self.reachable(others)?);
        Ok(sources)
    }

    /// `PFMERGE dest sources…`.
    /// The plan: `PFMERGE`.
    fn merge_into_plan<'s>(&'s self, dest: &'s str, sources: Vec<String>) -> Op<'s, ()> {
        let mut cmd = redis::cmd("PFMERGE");
        cmd.arg(dest).arg(sources);
        Op::cmd(dest, HLL, cmd, |_, _| Ok(()))
    }

    /// `PFCOUNT key others…`: the size of the union, writing nothing.
    /// The plan: `PFCOUNT`.
    fn union_len_plan(&self, others: Vec<String>) -> Op<'_, usize> {
        let mut cmd = redis::cmd("PFCOUNT");
        cmd.arg(&self.key).arg(others);
        Op::cmd(&self.key, HLL, cmd, |key, v| {
            crate::exec::reply::length(key, v)
        })
    }

    /// The plan: `UNLINK`.
    fn clear_plan(&self) -> Op<'_, ()> {
        let mut cmd = redis::cmd("UNLINK");
        cmd.arg(&self.key);
        Op::cmd(&self.key, HLL, cmd, |_, _| Ok(()))
    }
}

crate::shell::ops! {
    // How to find an operation: `HyperLogLog::add` in the docs -> its `fn add` entry
    // below (same name; the body builds the plan) -> the plan builder it calls,
    // `Core::update_plan` (above), whose doc line names the request: the command, or the
    // `scripts/*.lua` it runs.
    impl<T: Serialize>
        /// A HyperLogLog's operations in a [`Batch`](crate::Batch) or an
        /// [`aio::Batch`](crate::aio::Batch): each queues the plan of the [`HyperLogLog`] method
        /// of the same name and gives its result in a [`Pending`](crate::Pending).
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # let h: pottery::HyperLogLog<u32> = pottery::HyperLogLog::random(&redis)?;
        /// let batch = pottery::Batch::new(&redis);
        /// batch.on(&h).update([1, 2, 3]);
        /// let n = batch.on(&h).len();
        /// let found = batch.on(&h).contains_many([1, 4]);
        /// batch.execute()?;
        /// assert_eq!(n.get()?, 3);
        /// assert_eq!(found.get()?, [true, false]);
        /// # h.clear()?;
        /// # Ok::<(), pottery::Error>(())
        /// ```
        HyperLogLog<T> and aio::HyperLogLog<T>, batch HyperLogLogOps(Core<T>)
    {
        example h: This<u32> = random(&redis), clear;

        /// Adds `v` (`PFADD`); `true` if the estimate may have changed.
        #[example(bare)]
        /// # let h: pottery::HyperLogLog<&str> = pottery::HyperLogLog::random(&redis)?;
        /// assert!(h.add("a")?);
        /// assert!(!h.add("a")?);
        /// # h.clear()?;
        #[example(async, bare)]
        /// # let h: pottery::aio::HyperLogLog<u8> = pottery::aio::HyperLogLog::new(&redis, "hll-add-async");
        /// # h.clear().await?;
        /// assert!(h.add(&1).await?);
        /// # h.clear().await?;
        fn add<Q>(&self, v: &Q) -> bool
        where
            T: Borrow<Q>,
            Q: Serialize + ?Sized,
        {
            self.core.update_plan::<Q>([v])
        }

        /// Adds every value with one `PFADD`; `true` if the estimate may have changed.
        #[example]
        /// h.update(0..1000)?;
        /// assert!((990..=1010).contains(&h.len()?));
        #[example(async, bare)]
        /// # let h: pottery::aio::HyperLogLog<u8> = pottery::aio::HyperLogLog::new(&redis, "hll-upd-async");
        /// # h.clear().await?;
        /// assert!(h.update([1, 2]).await?);
        /// # h.clear().await?;
        fn update(&self, values: impl IntoIterator<Item = T>) -> bool {
            self.core.update_plan::<T>(values)
        }

        /// The estimated number of distinct values (`PFCOUNT`).
        #[example]
        /// assert_eq!(h.len()?, 0);
        #[example(async, bare)]
        /// # let h: pottery::aio::HyperLogLog<u8> = pottery::aio::HyperLogLog::new(&redis, "hll-len-async");
        /// # h.clear().await?;
        /// assert_eq!(h.len().await?, 0);
        fn len(&self) -> usize {
            self.core.len_plan()
        }

        /// Whether `v` may have been added (`false` means certainly not). Atomic, one round trip,
        /// no key left behind.
        #[example(bare)]
        /// # let h: pottery::HyperLogLog<String> = pottery::HyperLogLog::random(&redis)?;
        /// h.add("a")?;
        /// assert!(h.contains("a")?);
        /// # h.clear()?;
        #[example(async, bare)]
        /// # let h: pottery::aio::HyperLogLog<u8> = pottery::aio::HyperLogLog::new(&redis, "hll-has-async");
        /// # h.clear().await?;
        /// assert!(!h.contains(&1).await?);
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
        /// h.update([1, 2])?;
        /// assert_eq!(h.contains_many([1, 3, 2])?, [true, false, true]);
        #[example(async, bare)]
        /// # let h: pottery::aio::HyperLogLog<u8> = pottery::aio::HyperLogLog::new(&redis, "hll-many-async");
        /// # h.clear().await?;
        /// h.add(&1).await?;
        /// assert_eq!(h.contains_many([1, 2]).await?, [true, false]);
        /// # h.clear().await?;
        fn contains_many<Q>(&self, values: impl IntoIterator<Item = Q>) -> Vec<bool>
        where
            Q: Serialize,
        {
            self.core.contains_many_plan::<Q>(values)
        }

        /// Deletes the HyperLogLog (`UNLINK`).
        #[example]
        /// h.add(&1)?;
        /// h.clear()?;
        /// assert_eq!(h.len()?, 0);
        #[example(async, bare)]
        /// # let h: pottery::aio::HyperLogLog<u8> = pottery::aio::HyperLogLog::new(&redis, "hll-clear-async");
        /// h.clear().await?;
        fn clear(&self) -> () {
            self.core.clear_plan()
        }

        /// Whether nothing was added.
        #[example]
        /// assert!(h.is_empty()?);
        #[example(async, bare)]
        /// # let h: pottery::aio::HyperLogLog<u8> = pottery::aio::HyperLogLog::new(&redis, "hll-empty-async");
        /// # h.clear().await?;
        /// assert!(h.is_empty().await?);
        fn is_empty(&self) -> bool {
            self.core.len_plan().and_then(|n| Ok(n == 0))
        }

        /// Merges `others` into this HyperLogLog (`PFMERGE`, one round trip). They must be on the
        /// same server and, on a cluster, in the same slot; otherwise [`Error::CrossSlot`].
        #[example(bare)]
        /// # let a: pottery::HyperLogLog<u32> = pottery::HyperLogLog::random(&redis)?;
        /// # let b: pottery::HyperLogLog<u32> = pottery::HyperLogLog::random(&redis)?;
        /// a.update([1, 2])?;
        /// b.update([2, 3])?;
        /// a.merge([&b])?;
        /// assert_eq!(a.len()?, 3);
        /// # a.clear()?; b.clear()?;
        #[example(async, bare)]
        /// # let a: pottery::aio::HyperLogLog<u8> = pottery::aio::HyperLogLog::new(&redis, "hll-ma-async");
        /// # let b: pottery::aio::HyperLogLog<u8> = pottery::aio::HyperLogLog::new(&redis, "hll-mb-async");
        /// # a.clear().await?; b.clear().await?;
        /// a.add(&1).await?;
        /// b.add(&2).await?;
        /// a.merge([&b]).await?;
        /// assert_eq!(a.len().await?, 2);
        /// # a.clear().await?; b.clear().await?;
        #[steps(r)]
        fn merge<'a>(&self, others: impl IntoIterator<Item = &'a Self>) -> ()
        where
            T: 'a,
            Self: 'a,
        {
            let sources = self.core.sources(others.into_iter().map(|o| &o.core))?;
            r.run(&self.core.redis, self.core.merge_into_plan(&self.core.key, sources)).await
        }

        /// Stores the union of this HyperLogLog and `others` at `dest` (`PFMERGE`, one round trip;
        /// `dest` keeps what it had too) and returns it. Same placement rule as
        /// [`merge`](Self::merge).
        #[example(bare)]
        /// # let a: pottery::HyperLogLog<u32> = pottery::HyperLogLog::random(&redis)?;
        /// # let b: pottery::HyperLogLog<u32> = pottery::HyperLogLog::random(&redis)?;
        /// a.update([1, 2])?;
        /// b.update([2, 3])?;
        /// let both = a.union([&b], "both-doc")?;
        /// assert_eq!(both.len()?, 3);
        /// assert_eq!(a.len()?, 2);
        /// # a.clear()?; b.clear()?; both.clear()?;
        #[example(async, bare)]
        /// # let a: pottery::aio::HyperLogLog<u8> = pottery::aio::HyperLogLog::new(&redis, "hll-ua-async");
        /// # a.clear().await?;
        /// a.add(&1).await?;
        /// let copy = a.union([], "hll-ub-async").await?;
        /// assert_eq!(copy.len().await?, 1);
        /// # a.clear().await?; copy.clear().await?;
        #[steps(r)]
        fn union<'a>(
            &self,
            others: impl IntoIterator<Item = &'a Self>,
            dest: impl Into<String>,
        ) -> Self
        where
            T: 'a,
            Self: 'a,
        {
            let out = Self::new(&self.core.redis, dest);
            let sources = self.core.sources(others.into_iter().map(|o| &o.core))?;
            self.core.reachable([&out.core])?;
            r.run(&self.core.redis, self.core.merge_into_plan(&out.core.key, sources)).await?;
            Ok(out)
        }

        /// The estimated size of the union with `others`, writing nothing (`PFCOUNT k1 k2 …`).
        #[example(bare)]
        /// # let a: pottery::HyperLogLog<u32> = pottery::HyperLogLog::random(&redis)?;
        /// # let b: pottery::HyperLogLog<u32> = pottery::HyperLogLog::random(&redis)?;
        /// a.update([1, 2])?;
        /// b.update([2, 3])?;
        /// assert_eq!(a.union_len([&b])?, 3);
        /// # a.clear()?; b.clear()?;
        #[example(async, bare)]
        /// # let a: pottery::aio::HyperLogLog<u8> = pottery::aio::HyperLogLog::new(&redis, "hll-la-async");
        /// # a.clear().await?;
        /// a.add(&1).await?;
        /// assert_eq!(a.union_len([]).await?, 1);
        /// # a.clear().await?;
        #[steps(r)]
        fn union_len<'a>(&self, others: impl IntoIterator<Item = &'a Self>) -> usize
        where
            T: 'a,
            Self: 'a,
        {
            let others = self.core.reachable(others.into_iter().map(|o| &o.core))?;
            r.run(&self.core.redis, self.core.union_len_plan(others)).await
        }
    }
}

/// A HyperLogLog: the approximate number of distinct values added, in at most 12 KiB,
/// compatible with Python pottery's `HyperLogLog` (values are `PFADD`ed as their JSON).
///
/// The count is within about 1 % (Redis's standard error is 0.81 %). Membership is pottery's
/// trick — copy the HLL, add the value, see whether it changed — done atomically in one script
/// that leaves no key behind; it has no false negatives and some false positives.
///
/// ```
/// use pottery::{HyperLogLog, Redis};
///
/// let redis = Redis::from_env()?;
/// # let redis = pottery::testing::doctest_redis();
/// let google: HyperLogLog<&str> = HyperLogLog::new(&redis, "google-doc");
/// # google.clear()?;
/// google.update(["sergey", "larry", "sergey"])?;
/// assert_eq!(google.len()?, 2);
/// assert!(google.contains("larry")?);
/// assert!(!google.contains("eric")?);
/// # google.clear()?;
/// # Ok::<(), pottery::Error>(())
/// ```
pub struct HyperLogLog<T> {
    core: Core<T>,
}

crate::shell::shell_impls!(HyperLogLog<T>, "HyperLogLog");
crate::shell::shell_basics!(handles HyperLogLog, aio::HyperLogLog, [T], "HyperLogLog::<String>::new(&redis, \"k\")");
crate::shell::shell_basics!(attach HyperLogLog, aio::HyperLogLog, [T], [T: Serialize], "HyperLogLog<String>");

impl<T: Serialize> HyperLogLog<T> {}

/// The async twin: [`aio::HyperLogLog`](crate::aio::HyperLogLog).
pub mod aio {
    use super::*;

    /// Async [`HyperLogLog`](crate::HyperLogLog): the same methods, as `async fn`s.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let h: pottery::aio::HyperLogLog<&str> = pottery::aio::HyperLogLog::new(&redis, "hll-async-doc");
    /// # h.clear().await?;
    /// h.update(["a", "b", "a"]).await?;
    /// assert_eq!(h.len().await?, 2);
    /// assert_eq!(h.contains_many(["a", "z"]).await?, [true, false]);
    /// # h.clear().await?;
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    pub struct HyperLogLog<T> {
        pub(super) core: Core<T>,
    }

    crate::shell::shell_impls!(HyperLogLog<T>, "aio::HyperLogLog");

    impl<T: Serialize> HyperLogLog<T> {}
}
