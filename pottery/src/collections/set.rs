//! `RedisSet`: a `HashSet` face on a Redis set, wire-compatible with pottery's `RedisSet`.
//!
#![doc = include_str!("../guide/set.md")]

use std::collections::HashSet;
use std::hash::Hash;
use std::marker::PhantomData;

use redis::Value;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::client::Redis;
use crate::codec::CodecError;
use crate::codec::Storable;
use crate::error::{Error, Result};
use crate::exec::plan::{Op, script};
use crate::exec::reply::{decode, encode, encode_arg, int, members, scan_page};
use crate::shell::keys::{create_op, same_place};
use crate::shell::runner::Runner;

script!(SET_COMPARE, "set_compare.lua", Read);
script!(SET_SYMDIFF, ["sadd_prelude.lua", "set_symdiff.lua"], Once);
script!(
    REPLACE_SET,
    ["sadd_prelude.lua", "replace_set.lua"],
    Idempotent
);

const SET: &str = "set";
const PAGE: usize = 512;

/// The other side of a set operation: another `RedisSet` (blocking or async), or any values.
/// Built by [`IntoSetOperand`]; you do not name it.
#[doc(hidden)]
pub struct Operand<'a> {
    inner: OperandInner<'a>,
}

enum OperandInner<'a> {
    Set { redis: &'a Redis, key: &'a str },
    Items(std::result::Result<Vec<Vec<u8>>, CodecError>),
}

/// What set operations accept: `&RedisSet<T>`, `&aio::RedisSet<T>`, or any
/// `IntoIterator<Item = T>` (a `Vec<T>`, a `HashSet<T>`, an array…).
///
/// ```
/// # let redis = pottery::testing::doctest_redis();
/// use pottery::RedisSet;
/// # RedisSet::<i32>::new(&redis, "a").clear()?; RedisSet::<i32>::new(&redis, "b").clear()?;
/// let a = RedisSet::create(&redis, "a", [1, 2, 3])?;
/// let b = RedisSet::create(&redis, "b", [3, 4])?;
/// assert_eq!(a.union(&b)?, [1, 2, 3, 4].into());   // another RedisSet: one SUNION
/// assert_eq!(a.union([9])?, [1, 2, 3, 9].into());   // plain values
/// # a.clear()?; b.clear()?;
/// # Ok::<(), pottery::Error>(())
/// ```
pub trait IntoSetOperand<'a, T> {
    /// Converts into the operand.
    #[doc(hidden)]
    fn into_operand(self) -> Operand<'a>;
}

impl<'a, T> IntoSetOperand<'a, T> for &'a RedisSet<T> {
    fn into_operand(self) -> Operand<'a> {
        self.core.operand()
    }
}

impl<'a, T> IntoSetOperand<'a, T> for &'a aio::RedisSet<T> {
    fn into_operand(self) -> Operand<'a> {
        self.core.operand()
    }
}

impl<'a, T: Serialize, I: IntoIterator<Item = T>> IntoSetOperand<'a, T> for I {
    fn into_operand(self) -> Operand<'a> {
        let items = self
            .into_iter()
            .map(|v| crate::codec::encode_bytes(&v))
            .collect();
        Operand {
            inner: OperandInner::Items(items),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Algebra {
    Union,
    Intersection,
    Difference,
    SymmetricDifference,
}

impl Algebra {
    fn command(self) -> &'static str {
        match self {
            Algebra::Union => "SUNION",
            Algebra::Intersection => "SINTER",
            Algebra::Difference => "SDIFF",
            Algebra::SymmetricDifference => "",
        }
    }

    fn apply(self, mine: HashSet<Vec<u8>>, other: HashSet<Vec<u8>>) -> HashSet<Vec<u8>> {
        match self {
            Algebra::Union => mine.union(&other).cloned().collect(),
            Algebra::Intersection => mine.intersection(&other).cloned().collect(),
            Algebra::Difference => mine.difference(&other).cloned().collect(),
            Algebra::SymmetricDifference => mine.symmetric_difference(&other).cloned().collect(),
        }
    }
}

struct Core<T> {
    redis: Redis,
    key: String,
    /// What stands for the key in the near cache's front tables.
    reader: crate::near::Reader,
    _types: PhantomData<fn() -> T>,
}

crate::shell::clone_core!(Core<T> { redis, key, reader });

fn member_set(key: &str, v: Value) -> Result<HashSet<Vec<u8>>> {
    Ok(members(key, v)?.into_iter().collect())
}

impl<T> Core<T> {
    fn operand(&self) -> Operand<'_> {
        Operand {
            inner: OperandInner::Set {
                redis: &self.redis,
                key: &self.key,
            },
        }
    }

    fn cmd(&self, name: &str) -> redis::Cmd {
        // Sized for the name, the key and a member of some size (see the dict's).
        let mut cmd = redis::Cmd::with_capacity(3, name.len() + self.key.len() + 64);
        cmd.arg(name).arg(&self.key);
        cmd
    }

    /// The plan: `SMEMBERS`.
    fn smembers_plan(&self) -> Op<'_, HashSet<Vec<u8>>> {
        Op::cmd(&self.key, SET, self.cmd("SMEMBERS"), member_set)
    }

    /// The plan: `SCARD`.
    fn len_plan(&self) -> Op<'_, usize> {
        Op::cmd(&self.key, SET, self.cmd("SCARD"), |key, v| {
            crate::exec::reply::length(key, v)
        })
    }

    /// The plan: `UNLINK`.
    fn clear_plan(&self) -> Op<'_, ()> {
        Op::cmd(&self.key, SET, self.cmd("UNLINK"), |_, _| Ok(()))
    }

    /// The plan: `SSCAN`.
    fn scan_plan(&self, cursor: u64) -> Op<'_, (u64, Vec<Vec<u8>>)> {
        let mut cmd = self.cmd("SSCAN");
        cmd.arg(cursor).arg("COUNT").arg(PAGE);
        Op::cmd(&self.key, SET, cmd, scan_page)
    }

    /// The plan: `scripts/replace_set.lua` (`REPLACE_SET`).
    fn replace_plan(&self, members: Vec<Vec<u8>>) -> Op<'_, usize> {
        Op::eval_key(
            &self.key,
            SET,
            &REPLACE_SET,
            members,
            crate::exec::reply::length,
        )
    }

    fn items(&self, operand: OperandInner<'_>) -> Result<HashSet<Vec<u8>>> {
        match operand {
            OperandInner::Items(items) => Ok(items
                .map_err(|e| Error::codec(&self.key, e))?
                .into_iter()
                .collect()),
            OperandInner::Set { .. } => Ok(HashSet::new()),
        }
    }

    /// The members of `self (op) other`, computed on the server when one command can name
    /// both keys, otherwise from the members of each (one round trip per set).
    async fn algebra<R: Runner>(
        &self,
        r: &R,
        op: Algebra,
        other: Operand<'_>,
    ) -> Result<HashSet<Vec<u8>>> {
        match other.inner {
            OperandInner::Set { redis, key }
                if same_place(&[(&self.redis, &self.key), (redis, key)]) =>
            {
                if op == Algebra::SymmetricDifference {
                    let keys = vec![self.key.clone().into_bytes(), key.as_bytes().to_vec()];
                    let plan = Op::eval(&self.key, SET, &SET_SYMDIFF, keys, vec![], member_set);
                    return r.run(&self.redis, plan).await;
                }
                let mut cmd = self.cmd(op.command());
                cmd.arg(key);
                r.run(&self.redis, Op::cmd(&self.key, SET, cmd, member_set))
                    .await
            }
            OperandInner::Set { redis, key } => {
                let mine = r.run(&self.redis, self.smembers_plan()).await?;
                let plan = Op::cmd(key, SET, cmd_with_key("SMEMBERS", key), member_set);
                let theirs = r.run(redis, plan).await?;
                Ok(op.apply(mine, theirs))
            }
            items @ OperandInner::Items(_) => {
                let theirs = self.items(items)?;
                if op == Algebra::Intersection {
                    let asked: Vec<Vec<u8>> = theirs.into_iter().collect();
                    let found = r
                        .run(&self.redis, self.contains_many_plan(asked.clone()))
                        .await?;
                    return Ok(asked
                        .into_iter()
                        .zip(found)
                        .filter_map(|(m, yes)| yes.then_some(m))
                        .collect());
                }
                let mine = r.run(&self.redis, self.smembers_plan()).await?;
                Ok(op.apply(mine, theirs))
            }
        }
    }

    /// Writes `self (op) other` into `dest`, atomically; returns its size.
    async fn algebra_store<R: Runner>(
        &self,
        r: &R,
        op: Algebra,
        other: Operand<'_>,
        dest: &Core<T>,
    ) -> Result<usize> {
        if let OperandInner::Set { redis, key } = &other.inner
            && same_place(&[
                (&self.redis, &self.key),
                (redis, key),
                (&dest.redis, &dest.key),
            ])
        {
            let keys = vec![
                dest.key.clone().into_bytes(),
                self.key.clone().into_bytes(),
                key.as_bytes().to_vec(),
            ];
            let count = crate::exec::reply::length;
            if op == Algebra::SymmetricDifference {
                let keys = vec![keys[1].clone(), keys[2].clone(), keys[0].clone()];
                return r
                    .run(
                        &self.redis,
                        Op::eval(&dest.key, SET, &SET_SYMDIFF, keys, vec![], count),
                    )
                    .await;
            }
            let mut cmd = redis::cmd(&format!("{}STORE", op.command()));
            cmd.arg(keys);
            return r
                .run(&self.redis, Op::cmd(&dest.key, SET, cmd, count))
                .await;
        }
        let result = self.algebra(r, op, other).await?;
        r.run(&dest.redis, dest.replace_plan(result.into_iter().collect()))
            .await
    }

    /// `(|self − other|, |other − self|, |self ∩ other|)`.
    async fn compare<R: Runner>(&self, r: &R, other: Operand<'_>) -> Result<(usize, usize, usize)> {
        match other.inner {
            OperandInner::Set { redis, key }
                if same_place(&[(&self.redis, &self.key), (redis, key)]) =>
            {
                let keys = vec![self.key.clone().into_bytes(), key.as_bytes().to_vec()];
                let plan = Op::eval(&self.key, SET, &SET_COMPARE, keys, vec![], |key, v| {
                    let counts = match v {
                        Value::Array(items) => items
                            .into_iter()
                            .map(|i| crate::exec::reply::length(key, i))
                            .collect::<Result<Vec<_>>>()?,
                        other => {
                            return Err(crate::exec::reply::unexpected(
                                key,
                                "three counts",
                                &other,
                            ));
                        }
                    };
                    match counts[..] {
                        [a, b, c] => Ok((a, b, c)),
                        _ => Err(crate::exec::reply::unexpected(
                            key,
                            "three counts",
                            &Value::Nil,
                        )),
                    }
                });
                r.run(&self.redis, plan).await
            }
            other => {
                let theirs = match other {
                    OperandInner::Set { redis, key } => {
                        let plan = Op::cmd(key, SET, cmd_with_key("SMEMBERS", key), member_set);
                        r.run(redis, plan).await?
                    }
                    items => self.items(items)?,
                };
                let mine = r.run(&self.redis, self.smembers_plan()).await?;
                Ok((
                    mine.difference(&theirs).count(),
                    theirs.difference(&mine).count(),
                    mine.intersection(&theirs).count(),
                ))
            }
        }
    }

    /// The plan: `SMISMEMBER`.
    fn contains_many_plan(&self, encoded: Vec<Vec<u8>>) -> Op<'_, Vec<bool>> {
        if encoded.is_empty() {
            return Op::ready(&self.key, Vec::new());
        }
        let mut cmd = self.cmd("SMISMEMBER");
        cmd.arg(encoded);
        Op::cmd(&self.key, SET, cmd, |key, v| match v {
            Value::Array(items) => items.into_iter().map(|i| Ok(int(key, i)? == 1)).collect(),
            other => Err(crate::exec::reply::unexpected(
                key,
                "an array of 0/1",
                &other,
            )),
        })
    }
}

fn cmd_with_key(name: &str, key: &str) -> redis::Cmd {
    let mut cmd = redis::cmd(name);
    cmd.arg(key);
    cmd
}

impl<T: Serialize + DeserializeOwned> Core<T> {
    fn new(redis: &Redis, key: String) -> Self {
        Core {
            redis: redis.clone(),
            key,
            reader: crate::near::Reader::new(),
            _types: PhantomData,
        }
    }

    fn encode_all<Q: Serialize>(&self, items: impl IntoIterator<Item = Q>) -> Result<Vec<Vec<u8>>> {
        items.into_iter().map(|v| encode(&self.key, &v)).collect()
    }

    fn create_plan(&self, items: impl IntoIterator<Item = T>) -> Result<Op<'_, ()>> {
        Ok(create_op(&self.key, SET, "SADD", self.encode_all(items)?))
    }

    /// `SISMEMBER` ([`Core::one_plan`]) after a look in the near cache (a hit builds no
    /// command).
    fn contains_read<'s, 'q, Q: Serialize + ?Sized>(
        &'s self,
        v: &'q Q,
    ) -> crate::near::Probed<
        's,
        'q,
        Q,
        impl FnOnce() -> Result<Op<'s, bool>> + use<'s, 'q, T, Q>,
        impl crate::near::Decode<bool> + use<'s, 'q, T, Q>,
    > {
        crate::near::Probed {
            reader: self.reader,
            key: &self.key,
            name: "SISMEMBER",
            arg: v,
            decode: crate::near::int(|_, n| Ok(n == 1)),
            build: move || self.one_plan("SISMEMBER", v),
        }
    }

    fn one_plan<Q: Serialize + ?Sized>(&self, name: &str, v: &Q) -> Result<Op<'_, bool>> {
        let mut cmd = self.cmd(name);
        encode_arg(&mut cmd, &self.key, v)?;
        Ok(Op::cmd(&self.key, SET, cmd, |key, v| Ok(int(key, v)? == 1)))
    }

    /// The plan: `SADD`.
    fn extend_plan(&self, items: impl IntoIterator<Item = T>) -> Result<Op<'_, usize>> {
        let args = self.encode_all(items)?;
        if args.is_empty() {
            return Ok(Op::ready(&self.key, 0));
        }
        let mut cmd = self.cmd("SADD");
        cmd.arg(args);
        Ok(Op::cmd(&self.key, SET, cmd, crate::exec::reply::length))
    }

    /// The plan: `SPOP`.
    fn pop_plan(&self) -> Op<'_, Option<T>> {
        Op::cmd(
            &self.key,
            SET,
            self.cmd("SPOP"),
            crate::exec::reply::decode_written,
        )
    }
}

fn decode_set<T: DeserializeOwned + Eq + Hash>(
    key: &str,
    raw: HashSet<Vec<u8>>,
) -> Result<HashSet<T>> {
    raw.iter().map(|m| decode(key, m)).collect()
}

crate::shell::ops! {
    // How to find an operation: `RedisSet::insert` in the docs -> its `fn insert` entry
    // below (same name; the body builds the plan) -> the plan builder it calls,
    // `Core::one_plan` (above), whose doc line names the request: the command, or the
    // `scripts/*.lua` it runs.
    impl<T: Storable>
        /// A set's operations in a [`Batch`](crate::Batch) or an [`aio::Batch`](crate::aio::Batch):
        /// each queues the plan of the [`RedisSet`] method of the same name and gives its result
        /// in a [`Pending`](crate::Pending).
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # let s: pottery::RedisSet<u32> = pottery::RedisSet::random(&redis)?;
        /// let batch = pottery::Batch::new(&redis);
        /// let added = batch.on(&s).insert(1);
        /// let again = batch.on(&s).insert(1);
        /// let found = batch.on(&s).contains_many([1, 2]);
        /// batch.execute()?;
        /// assert_eq!((added.get()?, again.get()?), (true, false));
        /// assert_eq!(found.get()?, [true, false]);
        /// # s.clear()?;
        /// # Ok::<(), pottery::Error>(())
        /// ```
        RedisSet<T> and aio::RedisSet<T>, batch SetOps(Core<T>)
    {
        example s: This<u32> = random(&redis), clear;

        /// Adds `v`; `true` if it was not there (`SADD`).
        #[example]
        /// assert!(s.insert(1)?);
        /// assert!(!s.insert(1)?);
        fn insert(&self, v: T) -> bool {
            self.core.one_plan("SADD", &v)
        }

        /// Removes `v`; `true` if it was there (`SREM`).
        #[example(bare)]
        /// # let s: pottery::RedisSet<String> = pottery::RedisSet::random(&redis)?;
        /// s.insert("a".into())?;
        /// assert!(s.remove("a")?);
        /// assert!(!s.remove("a")?);
        fn remove<Q>(&self, v: &Q) -> bool
        where
            T: std::borrow::Borrow<Q>,
            Q: Serialize + ?Sized,
        {
            self.core.one_plan("SREM", v)
        }

        /// Whether `v` is a member (`SISMEMBER`).
        #[example(bare)]
        /// # let s: pottery::RedisSet<String> = pottery::RedisSet::random(&redis)?;
        /// s.insert("a".into())?;
        /// assert!(s.contains("a")?);
        /// # s.clear()?;
        fn contains<Q>(&self, v: &Q) -> bool
        where
            T: std::borrow::Borrow<Q>,
            Q: Serialize + ?Sized,
        {
            self.core.contains_read(v)
        }

        /// Membership of each value, in order, in one `SMISMEMBER`.
        #[example]
        /// s.extend([1, 2])?;
        /// assert_eq!(s.contains_many([2, 3, 1])?, [true, false, true]);
        fn contains_many<Q>(&self, values: impl IntoIterator<Item = Q>) -> Vec<bool>
        where
            Q: Serialize,
        {
            Ok(self.core.contains_many_plan(self.core.encode_all(values)?))
        }

        /// Removes and returns an arbitrary member (`SPOP`).
        ///
        /// When the removed member is not pottery JSON of type `T` (another client wrote it), the
        /// write still happened: the error is
        /// [`Error::UndecodableAfterWrite`](crate::Error::UndecodableAfterWrite), which says so and
        /// carries the raw bytes.
        #[example]
        /// s.insert(7)?;
        /// assert_eq!(s.pop()?, Some(7));
        /// assert_eq!(s.pop()?, None);
        fn pop(&self) -> Option<T> {
            self.core.pop_plan()
        }

        /// Adds every value in one `SADD` (none: no I/O); returns how many were new.
        #[example]
        /// assert_eq!(s.extend([1, 2, 2, 3])?, 3);
        /// assert_eq!(s.extend(Vec::new())?, 0);
        fn extend(&self, values: impl IntoIterator<Item = T>) -> usize {
            self.core.extend_plan(values)
        }

        /// How many members (`SCARD`).
        #[example]
        /// assert_eq!(s.len()?, 0);
        fn len(&self) -> usize {
            self.core.len_plan()
        }

        /// Every member in one `SMEMBERS`.
        #[example]
        /// s.extend([1, 2])?;
        /// assert_eq!(s.to_hash_set()?, [1, 2].into());
        fn to_hash_set(&self) -> HashSet<T>
        where
            T: Eq + Hash,
        {
            let key = &self.core.key;
            self.core.smembers_plan().and_then(move |raw| decode_set(key, raw))
        }

        /// Deletes the set (`UNLINK`).
        #[example]
        /// s.insert(1)?;
        /// s.clear()?;
        /// assert!(s.is_empty()?);
        fn clear(&self) -> () {
            self.core.clear_plan()
        }

        /// Whether the set is empty (a missing key is an empty set).
        #[example]
        /// assert!(s.is_empty()?);
        fn is_empty(&self) -> bool {
            self.core.len_plan().and_then(|n| Ok(n == 0))
        }

        /// `self ∪ other`: one `SUNION` when `other` is a `RedisSet` that one command can reach
        /// (same server; on a cluster, same slot — use `{hash tags}`), else computed here.
        #[example]
        /// s.extend([1, 2])?;
        /// assert_eq!(s.union([2, 3])?, [1, 2, 3].into());
        #[steps(r)]
        fn union<'a>(&self, other: impl IntoSetOperand<'a, T>) -> HashSet<T>
        where
            T: Eq + Hash,
        {
            let members = self.core.algebra(r, Algebra::Union, other.into_operand()).await?;
            decode_set(&self.core.key, members)
        }

        /// `self ∩ other` (`SINTER`; with plain values one `SMISMEMBER`).
        #[example]
        /// s.extend([1, 2])?;
        /// assert_eq!(s.intersection([2, 3])?, [2].into());
        #[steps(r)]
        fn intersection<'a>(&self, other: impl IntoSetOperand<'a, T>) -> HashSet<T>
        where
            T: Eq + Hash,
        {
            let members = self.core.algebra(r, Algebra::Intersection, other.into_operand()).await?;
            decode_set(&self.core.key, members)
        }

        /// `self − other` (`SDIFF`).
        #[example]
        /// s.extend([1, 2])?;
        /// assert_eq!(s.difference([2, 3])?, [1].into());
        #[steps(r)]
        fn difference<'a>(&self, other: impl IntoSetOperand<'a, T>) -> HashSet<T>
        where
            T: Eq + Hash,
        {
            let members = self.core.algebra(r, Algebra::Difference, other.into_operand()).await?;
            decode_set(&self.core.key, members)
        }

        /// `(self − other) ∪ (other − self)` (one Lua call when one command can reach both).
        #[example]
        /// s.extend([1, 2])?;
        /// assert_eq!(s.symmetric_difference([2, 3])?, [1, 3].into());
        #[steps(r)]
        fn symmetric_difference<'a>(&self, other: impl IntoSetOperand<'a, T>) -> HashSet<T>
        where
            T: Eq + Hash,
        {
            let members = self
                .core
                .algebra(r, Algebra::SymmetricDifference, other.into_operand())
                .await?;
            decode_set(&self.core.key, members)
        }

        /// Writes `self ∪ other` into `dest`, replacing it atomically; returns its size.
        /// One `SUNIONSTORE` when one command can reach all three keys.
        #[example(bare)]
        /// # let a: pottery::RedisSet<u32> = pottery::RedisSet::random(&redis)?;
        /// # let dest: pottery::RedisSet<u32> = pottery::RedisSet::random(&redis)?;
        /// a.extend([1, 2])?;
        /// assert_eq!(a.union_store([3], &dest)?, 3);
        /// assert_eq!(dest.to_hash_set()?, [1, 2, 3].into());
        /// # a.clear()?; dest.clear()?;
        #[steps(r)]
        fn union_store<'a>(&self, other: impl IntoSetOperand<'a, T>, dest: &Self) -> usize {
            self.core.algebra_store(r, Algebra::Union, other.into_operand(), &dest.core).await
        }

        /// Writes `self ∩ other` into `dest` (see [`union_store`](Self::union_store)).
        #[example(bare)]
        /// # let a: pottery::RedisSet<u32> = pottery::RedisSet::random(&redis)?;
        /// # let dest: pottery::RedisSet<u32> = pottery::RedisSet::random(&redis)?;
        /// a.extend([1, 2])?;
        /// assert_eq!(a.intersection_store([2, 3], &dest)?, 1);
        /// # a.clear()?; dest.clear()?;
        #[steps(r)]
        fn intersection_store<'a>(&self, other: impl IntoSetOperand<'a, T>, dest: &Self) -> usize {
            self.core
                .algebra_store(r, Algebra::Intersection, other.into_operand(), &dest.core)
                .await
        }

        /// Writes `self − other` into `dest` (see [`union_store`](Self::union_store)).
        #[example(bare)]
        /// # let a: pottery::RedisSet<u32> = pottery::RedisSet::random(&redis)?;
        /// # let dest: pottery::RedisSet<u32> = pottery::RedisSet::random(&redis)?;
        /// a.extend([1, 2])?;
        /// assert_eq!(a.difference_store([2, 3], &dest)?, 1);
        /// # a.clear()?; dest.clear()?;
        #[steps(r)]
        fn difference_store<'a>(&self, other: impl IntoSetOperand<'a, T>, dest: &Self) -> usize {
            self.core.algebra_store(r, Algebra::Difference, other.into_operand(), &dest.core).await
        }

        /// Writes the symmetric difference into `dest` (see [`union_store`](Self::union_store)).
        #[example(bare)]
        /// # let a: pottery::RedisSet<u32> = pottery::RedisSet::random(&redis)?;
        /// # let dest: pottery::RedisSet<u32> = pottery::RedisSet::random(&redis)?;
        /// a.extend([1, 2])?;
        /// assert_eq!(a.symmetric_difference_store([2, 3], &dest)?, 2);
        /// # a.clear()?; dest.clear()?;
        #[steps(r)]
        fn symmetric_difference_store<'a>(
            &self,
            other: impl IntoSetOperand<'a, T>,
            dest: &Self,
        ) -> usize {
            self.core
                .algebra_store(r, Algebra::SymmetricDifference, other.into_operand(), &dest.core)
                .await
        }

        /// Whether every member of `self` is in `other`.
        #[example]
        /// s.extend([1, 2])?;
        /// assert!(s.is_subset([1, 2, 3])?);
        /// assert!(!s.is_subset([1])?);
        #[steps(r)]
        fn is_subset<'a>(&self, other: impl IntoSetOperand<'a, T>) -> bool {
            Ok(self.core.compare(r, other.into_operand()).await?.0 == 0)
        }

        /// Whether every member of `other` is in `self`.
        #[example]
        /// s.extend([1, 2])?;
        /// assert!(s.is_superset([1])?);
        #[steps(r)]
        fn is_superset<'a>(&self, other: impl IntoSetOperand<'a, T>) -> bool {
            Ok(self.core.compare(r, other.into_operand()).await?.1 == 0)
        }

        /// Whether `self` and `other` share no member.
        #[example]
        /// s.extend([1, 2])?;
        /// assert!(s.is_disjoint([3])?);
        #[steps(r)]
        fn is_disjoint<'a>(&self, other: impl IntoSetOperand<'a, T>) -> bool {
            Ok(self.core.compare(r, other.into_operand()).await?.2 == 0)
        }
    }
}

/// A Redis set seen as a `HashSet<T>`: Python pottery's `RedisSet`.
///
/// Members are `codec::encode(v)`, as pottery stores them, so identity is by encoding: `1`,
/// `1.0` and `"1"` are three members. Every method is one round trip, except the set algebra
/// across servers or cluster slots, which reads each set once.
///
/// ```
/// use pottery::{Redis, RedisSet};
///
/// let redis = Redis::from_env()?;
/// # let redis = pottery::testing::doctest_redis();
/// let fruits: RedisSet<String> = RedisSet::new(&redis, "fruits-doc");
/// # fruits.clear()?;
/// assert!(fruits.insert("apple".into())?);
/// assert!(!fruits.insert("apple".into())?);
/// fruits.extend(["pear".to_string(), "plum".to_string()])?;
/// assert!(fruits.contains("pear")?);
/// assert_eq!(fruits.contains_many(["plum", "kiwi"])?, [true, false]);
/// assert_eq!(fruits.len()?, 3);
/// # fruits.clear()?;
/// # Ok::<(), pottery::Error>(())
/// ```
pub struct RedisSet<T> {
    core: Core<T>,
}

crate::shell::shell_impls!(RedisSet<T>, "RedisSet");
crate::shell::shell_basics!(handles RedisSet, aio::RedisSet, [T], "RedisSet::<u32>::new(&redis, \"k\")");
crate::shell::shell_basics!(attach RedisSet, aio::RedisSet, [T], [T: Serialize + DeserializeOwned], "RedisSet<u32>");

impl<T: Serialize + DeserializeOwned> RedisSet<T> {
    /// Creates the set holding `items`, atomically, or fails with [`Error::KeyExists`].
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # pottery::RedisSet::<u32>::new(&redis, "primes").clear()?;
    /// let s = pottery::RedisSet::create(&redis, "primes", [2u32, 3, 5])?;
    /// assert!(matches!(pottery::RedisSet::create(&redis, "primes", [7u32]), Err(pottery::Error::KeyExists { .. })));
    /// # s.clear()?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn create(
        redis: &Redis,
        key: impl Into<String>,
        items: impl IntoIterator<Item = T>,
    ) -> Result<Self> {
        let set = RedisSet::new(redis, key);
        redis.run(set.core.create_plan(items)?)?;
        Ok(set)
    }

    /// Streams the members with `SSCAN`, one page in memory at a time (SCAN semantics: no
    /// snapshot, rare repeats while Redis resizes the set).
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let s: pottery::RedisSet<u32> = pottery::RedisSet::random(&redis)?;
    /// s.extend(0..100)?;
    /// let sum: u32 = s.iter().map(|m| m.unwrap()).sum();
    /// assert_eq!(sum, 4950);
    /// # s.clear()?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = Result<T>> + '_ {
        let core = &self.core;
        crate::shell::scan::iter(
            &core.redis,
            1,
            |c| core.scan_plan(c),
            |s| s.next_one(&core.key),
        )
    }
}

/// The async twin: [`aio::RedisSet`](crate::aio::RedisSet).
pub mod aio {
    use super::*;
    use futures_util::Stream;

    /// Async [`RedisSet`](crate::RedisSet): the same methods as `async fn`s, running the same
    /// plans (and the same set-algebra code) on the handle's multiplexed connection.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use futures_util::TryStreamExt;
    /// use pottery::aio::RedisSet;
    ///
    /// let s: RedisSet<u32> = RedisSet::random(&redis).await?;
    /// assert!(s.insert(1).await?);
    /// s.extend([2, 3]).await?;
    /// assert!(s.contains(&2).await?);
    /// assert_eq!(s.contains_many([3, 4]).await?, [true, false]);
    /// assert_eq!(s.union([4]).await?, [1, 2, 3, 4].into());
    /// let all: Vec<u32> = s.iter().try_collect().await?;
    /// assert_eq!(all.len(), 3);
    /// assert!(s.remove(&1).await?);
    /// assert_eq!(s.len().await?, 2);
    /// s.clear().await?;
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    pub struct RedisSet<T> {
        pub(super) core: Core<T>,
    }

    crate::shell::shell_impls!(RedisSet<T>, "aio::RedisSet");

    impl<T: Storable> RedisSet<T> {
        /// Creates the set atomically, or fails with [`Error::KeyExists`].
        pub async fn create(
            redis: &Redis,
            key: impl Into<String>,
            items: impl IntoIterator<Item = T>,
        ) -> Result<Self> {
            let set = RedisSet::new(redis, key);
            redis.run_async(set.core.create_plan(items)?).await?;
            Ok(set)
        }

        /// See [`crate::RedisSet::iter`]; a `Stream`.
        pub fn iter(&self) -> impl Stream<Item = Result<T>> + Send + '_ {
            let core = &self.core;
            let plan = |c| core.scan_plan(c);
            crate::shell::scan::stream(&core.redis, 1, plan, |s| s.next_one(&core.key))
        }
    }
}
