//! `RedisList` (a `Vec` face) and `RedisDeque` (a `VecDeque` face with an optional maxlen) on
//! a Redis list, wire-compatible with pottery's `RedisList` and `RedisDeque`.
//!
//! Every operation is one round trip; the ones in the middle of the list (`insert`, `remove`,
//! `set`, `sort`, `reverse`, `rotate`) are Lua scripts that move elements by position, never by
//! a sentinel value, so they are atomic and correct whatever the list holds.
//!
#![doc = include_str!("../guide/list.md")]

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};

use redis::Value;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::client::Redis;
use crate::codec::Storable;
use crate::error::{Error, Result};
use crate::exec::plan::{Op, script};
use crate::exec::reply::{decode, decode_opt, encode, encode_arg, int, members};
use crate::shell::keys::create_op;

script!(LIST_INSERT, "list_insert.lua", Once);
script!(LIST_REMOVE_AT, "list_remove_at.lua", Once);
script!(LIST_SET, "list_set.lua", Idempotent);
script!(LIST_SLICE, "list_slice.lua", Read);
script!(LIST_REORDER, "list_reorder.lua", Once);
script!(DEQUE_PUSH, "deque_push.lua", Once);
script!(DEQUE_ROTATE, "deque_rotate.lua", Once);

const LIST: &str = "list";
/// Elements fetched per LRANGE page while iterating.
const PAGE: isize = 512;

fn decode_list<T: DeserializeOwned>(key: &str, v: Value) -> Result<Vec<T>> {
    members(key, v)?.iter().map(|m| decode(key, m)).collect()
}

fn usize_of(key: &str, v: Value) -> Result<usize> {
    crate::exec::reply::length(key, v)
}

/// `LRANGE` bounds for a Python-style slice; `None` when it is empty whatever the list.
fn lrange_bounds(range: &impl RangeBounds<isize>) -> Option<(isize, isize)> {
    let start = match range.start_bound() {
        Bound::Included(&a) => a,
        Bound::Excluded(&a) => a.checked_add(1)?,
        Bound::Unbounded => 0,
    };
    let stop = match range.end_bound() {
        Bound::Included(&b) => b,
        Bound::Excluded(&0) => return None,
        // An end excluded at isize::MIN is before any element: empty.
        Bound::Excluded(&b) => b.checked_sub(1)?,
        Bound::Unbounded => -1,
    };
    Some((start, stop))
}

/// The operations of lists and deques, as plans.
pub(crate) struct Core<T> {
    redis: Redis,
    key: String,
    /// For deques: the maximum length (not stored in Redis, as in pottery).
    maxlen: Option<usize>,
    _types: PhantomData<fn() -> T>,
}

crate::shell::clone_core!(Core<T> { redis, key, maxlen });

impl<T: Serialize + DeserializeOwned> Core<T> {
    fn new(redis: &Redis, key: String, maxlen: Option<usize>) -> Self {
        Core {
            redis: redis.clone(),
            key,
            maxlen,
            _types: PhantomData,
        }
    }

    fn keys(&self) -> Vec<Vec<u8>> {
        vec![self.key.clone().into_bytes()]
    }

    fn cmd(&self, name: &str) -> redis::Cmd {
        // Sized for the name, the key and a value of some size (see the dict's).
        let mut cmd = redis::Cmd::with_capacity(3, name.len() + self.key.len() + 64);
        cmd.arg(name).arg(&self.key);
        cmd
    }

    fn encode_all(&self, values: impl IntoIterator<Item = T>) -> Result<Vec<Vec<u8>>> {
        values.into_iter().map(|v| encode(&self.key, &v)).collect()
    }

    fn maxlen_arg(&self) -> Vec<u8> {
        self.maxlen
            .map_or_else(|| "-1".to_owned(), |m| m.to_string())
            .into_bytes()
    }

    fn create_plan(&self, values: impl IntoIterator<Item = T>) -> Result<Op<'_, ()>> {
        let mut values = self.encode_all(values)?;
        if let Some(m) = self.maxlen {
            // A bounded deque keeps the last maxlen, as Python's deque(iterable, maxlen).
            // How many to drop from the front: none when there are at most `m` (exact).
            let drop = values.len().saturating_sub(m);
            values.drain(..drop);
        }
        Ok(create_op(&self.key, LIST, "RPUSH", values))
    }

    /// Pushes at the back (`side = "R"`) or the front (`"L"`), trimming to maxlen atomically.
    /// The plan: `scripts/deque_push.lua` (`DEQUE_PUSH`); `LLEN`.
    fn push_plan(&self, side: &str, values: impl IntoIterator<Item = T>) -> Result<Op<'_, usize>> {
        if self.maxlen.is_none() {
            // Encoded straight into the command.
            let mut cmd = self.cmd(if side == "L" { "LPUSH" } else { "RPUSH" });
            let mut any = false;
            for v in values {
                encode_arg(&mut cmd, &self.key, &v)?;
                any = true;
            }
            if !any {
                return Ok(Op::cmd(&self.key, LIST, self.cmd("LLEN"), usize_of));
            }
            return Ok(Op::cmd(&self.key, LIST, cmd, usize_of));
        }
        let values = self.encode_all(values)?;
        if values.is_empty() {
            return Ok(Op::cmd(&self.key, LIST, self.cmd("LLEN"), usize_of));
        }
        let mut args = vec![side.as_bytes().to_vec(), self.maxlen_arg()];
        args.extend(values);
        Ok(Op::eval(
            &self.key,
            LIST,
            &DEQUE_PUSH,
            self.keys(),
            args,
            usize_of,
        ))
    }

    fn pop_plan(&self, side: &str) -> Op<'_, Option<T>> {
        Op::cmd(
            &self.key,
            LIST,
            self.cmd(if side == "L" { "LPOP" } else { "RPOP" }),
            crate::exec::reply::decode_written,
        )
    }

    /// The plan: `LINDEX`.
    fn get_plan(&self, i: isize) -> Op<'_, Option<T>> {
        let mut cmd = self.cmd("LINDEX");
        cmd.arg(i);
        Op::cmd(&self.key, LIST, cmd, decode_opt)
    }

    /// The plan: `scripts/list_set.lua` (`LIST_SET`); an index out of range is an error.
    fn set_plan(&self, i: isize, v: &T) -> Result<Op<'_, ()>> {
        let args = vec![i.to_string().into_bytes(), encode(&self.key, v)?];
        Ok(
            Op::eval(&self.key, LIST, &LIST_SET, self.keys(), args, |key, v| {
                Ok(int(key, v)? == 1)
            })
            .and_then(move |ok| {
                if ok {
                    Ok(())
                } else {
                    Err(self.out_of_range(i))
                }
            }),
        )
    }

    /// The new length, or `None` when a bounded deque is full.
    ///
    /// The plan: `scripts/list_insert.lua` (`LIST_INSERT`).
    fn insert_plan(&self, i: isize, v: &T) -> Result<Op<'_, Option<usize>>> {
        let args = vec![
            i.to_string().into_bytes(),
            encode(&self.key, v)?,
            self.maxlen_arg(),
        ];
        Ok(Op::eval(
            &self.key,
            LIST,
            &LIST_INSERT,
            self.keys(),
            args,
            |key, v| Ok(usize::try_from(int(key, v)?).ok()),
        ))
    }

    /// The plan: `scripts/list_remove_at.lua` (`LIST_REMOVE_AT`); an index out of range is an
    /// error.
    fn remove_at_plan(&self, i: isize) -> Op<'_, T>
    where
        T: Send,
    {
        let args = vec![i.to_string().into_bytes()];
        Op::eval(
            &self.key,
            LIST,
            &LIST_REMOVE_AT,
            self.keys(),
            args,
            crate::exec::reply::decode_written,
        )
        .and_then(move |v| v.ok_or_else(|| self.out_of_range(i)))
    }

    /// The plan: `LREM`.
    fn remove_value_plan<Q: Serialize + ?Sized>(&self, v: &Q) -> Result<Op<'_, bool>> {
        let mut cmd = self.cmd("LREM");
        cmd.arg(1).arg(encode(&self.key, v)?);
        Ok(Op::cmd(&self.key, LIST, cmd, |key, v| Ok(int(key, v)? > 0)))
    }

    /// The plan: `LRANGE`.
    fn range_plan(&self, start: isize, stop: isize) -> Op<'_, Vec<T>> {
        let mut cmd = self.cmd("LRANGE");
        cmd.arg(start).arg(stop);
        Op::cmd(&self.key, LIST, cmd, decode_list)
    }

    fn slice_plan(&self, range: impl RangeBounds<isize>) -> Op<'_, Vec<T>> {
        match lrange_bounds(&range) {
            Some((start, stop)) => self.range_plan(start, stop),
            None => Op::ready(&self.key, Vec::new()),
        }
    }

    /// The plan: `LPOS`.
    fn index_of_plan<Q: Serialize + ?Sized>(&self, v: &Q) -> Result<Op<'_, Option<usize>>> {
        let mut cmd = self.cmd("LPOS");
        cmd.arg(encode(&self.key, v)?);
        Ok(Op::cmd(&self.key, LIST, cmd, |key, v| match v {
            Value::Nil => Ok(None),
            v => Ok(usize::try_from(int(key, v)?).ok()),
        }))
    }

    /// The plan: `LPOS`.
    fn count_plan<Q: Serialize + ?Sized>(&self, v: &Q) -> Result<Op<'_, usize>> {
        let mut cmd = self.cmd("LPOS");
        cmd.arg(encode(&self.key, v)?).arg("COUNT").arg(0);
        Ok(Op::cmd(&self.key, LIST, cmd, |key, v| match v {
            Value::Array(positions) => Ok(positions.len()),
            Value::Nil => Ok(0),
            other => Err(crate::exec::reply::unexpected(
                key,
                "an array of positions",
                &other,
            )),
        }))
    }

    /// Python's `list[start:stop:step]`: for a positive step one `LRANGE`, every `step`-th
    /// element kept; for a negative one a script that applies CPython's `slice.indices` rules
    /// (it needs the length) and walks back from `start`.
    /// The plan: `scripts/list_slice.lua` (`LIST_SLICE`); `LRANGE`.
    fn slice_step_plan(
        &self,
        range: impl RangeBounds<isize>,
        step: isize,
    ) -> Result<Op<'_, Vec<T>>> {
        if step == 0 {
            return Err(crate::error::Error::Config {
                message: format!(
                    "slice step of the list at key `{}` cannot be zero",
                    self.key
                ),
            });
        }
        if step < 0 {
            let (start, start_excluded) = match range.start_bound() {
                Bound::Included(a) => (a.to_string(), false),
                Bound::Excluded(a) => (a.to_string(), true),
                Bound::Unbounded => (String::new(), false),
            };
            let (stop, stop_included) = match range.end_bound() {
                Bound::Included(b) => (b.to_string(), true),
                Bound::Excluded(b) => (b.to_string(), false),
                Bound::Unbounded => (String::new(), false),
            };
            let flag = |b: bool| if b { b"1".to_vec() } else { b"0".to_vec() };
            let args = vec![
                start.into_bytes(),
                stop.into_bytes(),
                flag(stop_included),
                flag(start_excluded),
                step.to_string().into_bytes(),
            ];
            return Ok(Op::eval(
                &self.key,
                LIST,
                &LIST_SLICE,
                self.keys(),
                args,
                decode_list,
            ));
        }
        let Some((start, stop)) = lrange_bounds(&range) else {
            return Ok(Op::ready(&self.key, Vec::new()));
        };
        let step = step.unsigned_abs();
        let mut cmd = self.cmd("LRANGE");
        cmd.arg(start).arg(stop);
        Ok(Op::cmd_with(&self.key, LIST, cmd, move |key, v| {
            let raw = members(key, v)?;
            raw.iter().step_by(step).map(|m| decode(key, m)).collect()
        }))
    }

    /// The plan: `scripts/list_reorder.lua` (`LIST_REORDER`).
    fn reorder_plan(&self, how: &str) -> Op<'_, ()> {
        let args = vec![how.as_bytes().to_vec()];
        Op::eval(&self.key, LIST, &LIST_REORDER, self.keys(), args, |_, _| {
            Ok(())
        })
    }

    /// The plan: `scripts/deque_rotate.lua` (`DEQUE_ROTATE`).
    fn rotate_plan(&self, n: isize) -> Op<'_, ()> {
        let args = vec![n.to_string().into_bytes()];
        Op::eval(&self.key, LIST, &DEQUE_ROTATE, self.keys(), args, |_, _| {
            Ok(())
        })
    }

    /// The plan: `LLEN`.
    fn len_plan(&self) -> Op<'_, usize> {
        Op::cmd(&self.key, LIST, self.cmd("LLEN"), usize_of)
    }

    /// The plan: `UNLINK`.
    fn clear_plan(&self) -> Op<'_, ()> {
        Op::cmd(&self.key, LIST, self.cmd("UNLINK"), |_, _| Ok(()))
    }

    /// [`insert_plan`](Self::insert_plan) where a full bounded deque is an error.
    fn insert_within_maxlen_plan(&self, i: isize, v: &T) -> Result<Op<'_, ()>> {
        Ok(self.insert_plan(i, v)?.and_then(move |r| match r {
            Some(_) => Ok(()),
            None => Err(self.full(self.maxlen.unwrap_or(0))),
        }))
    }

    fn out_of_range(&self, index: isize) -> Error {
        Error::IndexOutOfRange {
            key: self.key.clone(),
            index,
        }
    }

    fn full(&self, len: usize) -> Error {
        Error::MaxLenExceeded {
            key: self.key.clone(),
            maxlen: self.maxlen.unwrap_or(0),
            len,
        }
    }
}

/// Streams a list by `LRANGE` pages (shared by both shells' iterators).
struct Pages<T> {
    next: isize,
    page: VecDeque<T>,
    done: bool,
}

impl<T> Pages<T> {
    fn new() -> Self {
        Pages {
            next: 0,
            page: VecDeque::new(),
            done: false,
        }
    }

    fn needs_page(&self) -> bool {
        self.page.is_empty() && !self.done
    }

    fn accept(&mut self, page: Result<Vec<T>>) -> Result<()> {
        match page {
            Ok(items) => {
                self.done = (items.len() as isize) < PAGE;
                self.next += PAGE;
                self.page.extend(items);
                Ok(())
            }
            Err(e) => {
                self.done = true;
                Err(e)
            }
        }
    }
}

crate::shell::ops! {
    // How to find an operation: `RedisList::get` in the docs -> its `fn get` entry
    // below (same name; the body builds the plan) -> the plan builder it calls,
    // `Core::get_plan` (above), whose doc line names the request: the command, or the
    // `scripts/*.lua` it runs.
    impl<T: Storable>
        /// A list's operations in a [`Batch`](crate::Batch) or an
        /// [`aio::Batch`](crate::aio::Batch): each queues the plan of the [`RedisList`] method of
        /// the same name and gives its result in a [`Pending`](crate::Pending).
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # let l: pottery::RedisList<u32> = pottery::RedisList::random(&redis)?;
        /// let batch = pottery::Batch::new(&redis);
        /// let len = batch.on(&l).extend([1, 2, 3]);
        /// let last = batch.on(&l).pop();
        /// let all = batch.on(&l).to_vec();
        /// batch.execute()?;
        /// assert_eq!((len.get()?, last.get()?, all.get()?), (3, Some(3), vec![1, 2]));
        /// # l.clear()?;
        /// # Ok::<(), pottery::Error>(())
        /// ```
        RedisList<T> and aio::RedisList<T>, batch ListOps(Core<T>);
        /// A deque's operations in a [`Batch`](crate::Batch) or an
        /// [`aio::Batch`](crate::aio::Batch): each queues the plan of the [`RedisDeque`] method of
        /// the same name (trimming to the deque's `maxlen`) and gives its result in a
        /// [`Pending`](crate::Pending).
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # pottery::RedisDeque::<u32>::new(&redis, "doc-deque-batch").clear()?;
        /// let d: pottery::RedisDeque<u32> = pottery::RedisDeque::with_maxlen(&redis, "doc-deque-batch", 2)?;
        /// let batch = pottery::Batch::new(&redis);
        /// batch.on(&d).extend([1, 2, 3]);
        /// let front = batch.on(&d).pop_front();
        /// batch.execute()?;
        /// assert_eq!(front.get()?, Some(2));
        /// # d.clear()?;
        /// # Ok::<(), pottery::Error>(())
        /// ```
        RedisDeque<T> and aio::RedisDeque<T>, batch DequeOps(Core<T>)
    {
        example x: This<u8> = random(&redis), clear;

        /// The element at `i` (negative counts from the end), in one `LINDEX`.
        #[example]
        /// x.extend([1, 2, 3])?;
        /// assert_eq!((x.get(0)?, x.get(-1)?, x.get(3)?), (Some(1), Some(3), None));
        fn get(&self, i: isize) -> Option<T> {
            self.core.get_plan(i)
        }

        /// Replaces the element at `i`; [`Error::IndexOutOfRange`] when there is none.
        #[example]
        /// x.extend([1, 2, 3])?;
        /// x.set(-1, 9)?;
        /// assert_eq!(x.get(2)?, Some(9));
        /// assert!(matches!(x.set(5, 0), Err(pottery::Error::IndexOutOfRange { index: 5, .. })));
        fn set(&self, i: isize, v: T) -> () {
            self.core.set_plan(i, &v)
        }

        /// Removes and returns the element at `i` (Python's `pop(i)`), atomically;
        /// [`Error::IndexOutOfRange`] when there is none.
        ///
        /// When the removed element is not pottery JSON of type `T` (another client wrote it), the
        /// write still happened: the error is
        /// [`Error::UndecodableAfterWrite`](crate::Error::UndecodableAfterWrite), which says so and
        /// carries the raw bytes.
        #[example]
        /// x.extend([1, 2, 3])?;
        /// assert_eq!(x.remove(1)?, 2);
        /// assert_eq!(x.len()?, 2);
        fn remove(&self, i: isize) -> T {
            self.core.remove_at_plan(i)
        }

        /// Removes the first element stored with the same bytes as `v`; `true` if one was found.
        /// `1`, `true` and `1.0` are different elements here, unlike Python's `list.remove`.
        #[example]
        /// x.extend([1, 2, 1])?;
        /// assert!(x.remove_value(&1)?);
        /// assert_eq!(x.slice(..)?, [2, 1]);
        fn remove_value<Q>(&self, v: &Q) -> bool
        where
            T: std::borrow::Borrow<Q>,
            Q: Serialize + ?Sized,
        {
            self.core.remove_value_plan(v)
        }

        /// The elements in a Python-style slice (`1..3`, `-2..`, `..=4`), in one `LRANGE`.
        #[example]
        /// x.extend([1, 2, 3, 4])?;
        /// assert_eq!(x.slice(1..3)?, [2, 3]);
        /// assert_eq!(x.slice(-2..)?, [3, 4]);
        /// assert_eq!(x.slice(..-1)?, [1, 2, 3]);
        fn slice(&self, range: impl RangeBounds<isize>) -> Vec<T> {
            self.core.slice_plan(range)
        }

        /// The position of the first element stored with the same bytes as `v` (`LPOS`): `1`,
        /// `true` and `1.0` are different elements here, unlike Python's `list.index`.
        #[example]
        /// x.extend([5, 6, 6])?;
        /// assert_eq!(x.index_of(&6)?, Some(1));
        /// assert_eq!(x.index_of(&7)?, None);
        fn index_of<Q>(&self, v: &Q) -> Option<usize>
        where
            T: std::borrow::Borrow<Q>,
            Q: Serialize + ?Sized,
        {
            self.core.index_of_plan(v)
        }

        /// How many elements are stored with the same bytes as `v`: one `LPOS … COUNT 0`.
        ///
        /// This compares encodings, not Python values: `1`, `true` and `1.0` encode differently,
        /// so on a list Python wrote as `[1, True, 1.0]` this counts 1 for `&1`, where Python's
        /// `list.count(1)` gives 3 (pottery's own `count` is Python's, by `==`).
        #[example]
        /// x.extend([5, 6, 6])?;
        /// assert_eq!(x.count(&6)?, 2);
        /// assert_eq!(x.count(&7)?, 0);
        fn count<Q>(&self, v: &Q) -> usize
        where
            T: std::borrow::Borrow<Q>,
            Q: Serialize + ?Sized,
        {
            self.core.count_plan(v)
        }

        /// Python's `x[start:stop:step]`: `x[::2]` is `slice_step(.., 2)`, `x[::-1]` is
        /// `slice_step(.., -1)`, `x[4::-2]` is `slice_step(4.., -2)`. The range's start is
        /// Python's `start` and its end Python's `stop` (excluded, or included with `..=`),
        /// negative indices counting from the end; with a negative step the slice runs from
        /// `start` down, as in Python. One round trip (`LRANGE`, or a script for a negative
        /// step, which needs the length). A zero step is [`Error::Config`](crate::Error::Config),
        /// where Python raises `ValueError`. For `x[4:1:-2]`, where a literal `4..1` would trip
        /// clippy's `reversed_empty_ranges`, give the bounds as a pair:
        /// `slice_step((Bound::Included(4), Bound::Excluded(1)), -2)`.
        #[example]
        /// x.extend([0, 1, 2, 3, 4, 5])?;
        /// assert_eq!(x.slice_step(.., 2)?, [0, 2, 4]);
        /// assert_eq!(x.slice_step(1..-1, 3)?, [1, 4]);
        /// assert_eq!(x.slice_step(.., -1)?, [5, 4, 3, 2, 1, 0]);
        /// assert_eq!(x.slice_step(4.., -2)?, [4, 2, 0]);
        /// use std::ops::Bound::{Excluded, Included};
        /// assert_eq!(x.slice_step((Included(4), Excluded(1)), -2)?, [4, 2]);
        /// assert_eq!(x.slice_step(-2.., -3)?, [4, 1]);
        /// assert!(x.slice_step(.., 0).is_err());
        fn slice_step(&self, range: impl RangeBounds<isize>, step: isize) -> Vec<T> {
            self.core.slice_step_plan(range, step)
        }

        /// Whether an element equals `v` (`LPOS`).
        #[example]
        /// x.extend([5])?;
        /// assert!(x.contains(&5)?);
        fn contains<Q>(&self, v: &Q) -> bool
        where
            T: std::borrow::Borrow<Q>,
            Q: Serialize + ?Sized,
        {
            Ok(self.core.index_of_plan(v)?.and_then(|i| Ok(i.is_some())))
        }

        /// How many elements (`LLEN`).
        #[example]
        /// assert_eq!(x.len()?, 0);
        fn len(&self) -> usize {
            self.core.len_plan()
        }

        /// Whether there are no elements.
        #[example]
        /// assert!(x.is_empty()?);
        fn is_empty(&self) -> bool {
            self.core.len_plan().and_then(|n| Ok(n == 0))
        }

        /// Deletes the list (`UNLINK`).
        #[example]
        /// x.extend([1])?;
        /// x.clear()?;
        /// assert!(x.is_empty()?);
        fn clear(&self) -> () {
            self.core.clear_plan()
        }
    }
}

crate::shell::ops! {
    // How to find an operation: `RedisList::push` in the docs -> its `fn push` entry
    // below (same name; the body builds the plan) -> the plan builder it calls,
    // `Core::push_plan` (above), whose doc line names the request: the command, or the
    // `scripts/*.lua` it runs.
    impl<T: Storable> RedisList<T> and aio::RedisList<T>, batch ListOps {
        example l: This<u8> = random(&redis), clear;

        /// Appends `v` (`RPUSH`); returns the new length.
        #[example]
        /// assert_eq!(l.push(7)?, 1);
        fn push(&self, v: T) -> usize {
            self.core.push_plan("R", [v])
        }

        /// Removes and returns the last element (`RPOP`).
        ///
        /// When the removed element is not pottery JSON of type `T` (another client wrote it), the
        /// write still happened: the error is
        /// [`Error::UndecodableAfterWrite`](crate::Error::UndecodableAfterWrite), which says so and
        /// carries the raw bytes.
        #[example]
        /// l.extend([1, 2])?;
        /// assert_eq!(l.pop()?, Some(2));
        fn pop(&self) -> Option<T> {
            self.core.pop_plan("R")
        }

        /// Appends every value in one `RPUSH` (none: nothing sent); returns the new length.
        #[example]
        /// assert_eq!(l.extend([1, 2, 3])?, 3);
        /// assert_eq!(l.extend(Vec::new())?, 3);
        fn extend(&self, values: impl IntoIterator<Item = T>) -> usize {
            self.core.push_plan("R", values)
        }

        /// Inserts `v` before position `i` with Python's `list.insert` semantics for every `i`
        /// (negative counts from the end; past either end clamps), atomically.
        #[example]
        /// l.extend([9, 16, 25])?;
        /// l.insert(-1, 4)?;   // pottery would push to the front here; Python inserts before 25
        /// assert_eq!(l.to_vec()?, [9, 16, 4, 25]);
        /// l.insert(100, 0)?;
        /// assert_eq!(l.get(-1)?, Some(0));
        fn insert(&self, i: isize, v: T) -> () {
            Ok(self.core.insert_plan(i, &v)?.and_then(|_| Ok(())))
        }

        /// Every element in one `LRANGE`.
        #[example]
        /// l.extend([1, 2])?;
        /// assert_eq!(l.to_vec()?, [1, 2]);
        fn to_vec(&self) -> Vec<T> {
            self.core.range_plan(0, -1)
        }

        /// Sorts in place, atomically: numbers numerically, strings by code point (as Python
        /// compares `str`), equal elements keep their order. Other or mixed elements are an error
        /// and leave the list unchanged.
        #[example(bare)]
        /// # let l: pottery::RedisList<f64> = pottery::RedisList::random(&redis)?;
        /// l.extend([3.5, -1.0, 2.0])?;
        /// l.sort()?;
        /// assert_eq!(l.to_vec()?, [-1.0, 2.0, 3.5]);
        /// # l.clear()?;
        fn sort(&self) -> () {
            self.core.reorder_plan("sort")
        }

        /// Reverses in place, atomically.
        #[example]
        /// l.extend([1, 2, 3])?;
        /// l.reverse()?;
        /// assert_eq!(l.to_vec()?, [3, 2, 1]);
        fn reverse(&self) -> () {
            self.core.reorder_plan("reverse")
        }
    }
}

crate::shell::ops! {
    // How to find an operation: `RedisDeque::push_back` in the docs -> its `fn push_back` entry
    // below (same name; the body builds the plan) -> the plan builder it calls,
    // `Core::push_plan` (above), whose doc line names the request: the command, or the
    // `scripts/*.lua` it runs.
    impl<T: Storable> RedisDeque<T> and aio::RedisDeque<T>, batch DequeOps {
        example d: This<u8> = random(&redis), clear;

        /// Appends at the back, trimming the front to maxlen in the same step; returns the length.
        #[example]
        /// d.push_back(1)?;
        /// assert_eq!(d.back()?, Some(1));
        fn push_back(&self, v: T) -> usize {
            self.core.push_plan("R", [v])
        }

        /// Prepends at the front, trimming the back to maxlen in the same step.
        #[example]
        /// d.push_front(1)?;
        /// d.push_front(2)?;
        /// assert_eq!(d.front()?, Some(2));
        fn push_front(&self, v: T) -> usize {
            self.core.push_plan("L", [v])
        }

        /// Removes and returns the back element (`RPOP`).
        ///
        /// When the removed element is not pottery JSON of type `T` (another client wrote it), the
        /// write still happened: the error is
        /// [`Error::UndecodableAfterWrite`](crate::Error::UndecodableAfterWrite), which says so and
        /// carries the raw bytes.
        #[example]
        /// d.extend([1, 2])?;
        /// assert_eq!(d.pop_back()?, Some(2));
        fn pop_back(&self) -> Option<T> {
            self.core.pop_plan("R")
        }

        /// Removes and returns the front element (`LPOP`).
        ///
        /// When the removed element is not pottery JSON of type `T` (another client wrote it), the
        /// write still happened: the error is
        /// [`Error::UndecodableAfterWrite`](crate::Error::UndecodableAfterWrite), which says so and
        /// carries the raw bytes.
        #[example]
        /// d.extend([1, 2])?;
        /// assert_eq!(d.pop_front()?, Some(1));
        fn pop_front(&self) -> Option<T> {
            self.core.pop_plan("L")
        }

        /// The front element (`LINDEX 0`).
        #[example]
        /// assert_eq!(d.front()?, None);
        fn front(&self) -> Option<T> {
            self.core.get_plan(0)
        }

        /// The back element (`LINDEX -1`).
        #[example]
        /// assert_eq!(d.back()?, None);
        fn back(&self) -> Option<T> {
            self.core.get_plan(-1)
        }

        /// Appends every value at the back in one atomic step (trimming to maxlen).
        #[example(bare)]
        /// # let d: pottery::RedisDeque<char> = pottery::RedisDeque::random(&redis)?;
        /// d.extend("abc".chars())?;
        /// assert_eq!(d.to_vec_deque()?, ['a', 'b', 'c']);
        /// # d.clear()?;
        fn extend(&self, values: impl IntoIterator<Item = T>) -> usize {
            self.core.push_plan("R", values)
        }

        /// Prepends every value, one after the other, like Python's `extendleft`: `"abc"` gives
        /// `c, b, a`.
        #[example(bare)]
        /// # let d: pottery::RedisDeque<char> = pottery::RedisDeque::random(&redis)?;
        /// d.extend_front("abc".chars())?;
        /// assert_eq!(d.to_vec_deque()?, ['c', 'b', 'a']);
        /// # d.clear()?;
        fn extend_front(&self, values: impl IntoIterator<Item = T>) -> usize {
            self.core.push_plan("L", values)
        }

        /// Rotates `n` steps to the right (negative: left), for any `n`, atomically.
        #[example]
        /// d.extend([1, 2, 3])?;
        /// d.rotate(4)?;   // pottery leaves [1, 2, 3] here (its issue #849)
        /// assert_eq!(d.to_vec_deque()?, [3, 1, 2]);
        /// d.rotate(-1)?;
        /// assert_eq!(d.to_vec_deque()?, [1, 2, 3]);
        fn rotate(&self, n: isize) -> () {
            self.core.rotate_plan(n)
        }

        /// Inserts `v` before position `i` (Python semantics, as [`RedisList::insert`]);
        /// [`Error::MaxLenExceeded`] when the deque is full.
        #[example(bare)]
        /// # pottery::RedisDeque::<u8>::new(&redis, "d-insert").clear()?;
        /// let d = pottery::RedisDeque::create(&redis, "d-insert", [1u8, 3], Some(3))?;
        /// d.insert(1, 2)?;
        /// assert_eq!(d.to_vec_deque()?, [1, 2, 3]);
        /// assert!(matches!(d.insert(0, 0), Err(pottery::Error::MaxLenExceeded { .. })));
        /// # d.clear()?;
        fn insert(&self, i: isize, v: T) -> () {
            self.core.insert_within_maxlen_plan(i, &v)
        }

        /// Every element in one `LRANGE`.
        #[example]
        /// d.extend([1, 2])?;
        /// assert_eq!(d.to_vec_deque()?, [1, 2]);
        fn to_vec_deque(&self) -> VecDeque<T> {
            self.core.range_plan(0, -1).and_then(|v| Ok(v.into()))
        }
    }
}

/// A Redis list seen as a `Vec<T>`: Python pottery's `RedisList`.
///
/// Indexes are `isize`, negative ones counting from the end as in Python. Elements are
/// `codec::encode(v)`, so Python's `RedisList` on the same key sees the same list.
///
/// ```
/// use pottery::{Redis, RedisList};
///
/// let redis = Redis::from_env()?;
/// # let redis = pottery::testing::doctest_redis();
/// # RedisList::<i64>::new(&redis, "squares-doc").clear()?;
/// let squares = RedisList::create(&redis, "squares-doc", [1, 4, 9, 16, 25])?;
/// assert_eq!(squares.get(0)?, Some(1));
/// assert_eq!(squares.get(-1)?, Some(25));
/// assert_eq!(squares.slice(-3..)?, [9, 16, 25]);
/// squares.insert(-1, 20)?;               // Python's list.insert: before the last element
/// assert_eq!(squares.to_vec()?, [1, 4, 9, 16, 20, 25]);
/// assert_eq!(squares.remove(1)?, 4);     // Python's list.pop(1)
/// # squares.clear()?;
/// # Ok::<(), pottery::Error>(())
/// ```
pub struct RedisList<T> {
    core: Core<T>,
}

/// A Redis list seen as a `VecDeque<T>`, optionally bounded: Python pottery's `RedisDeque`.
///
/// With a `maxlen`, every push trims the other end in the same atomic round trip, and
/// `maxlen = 0` keeps nothing, as Python's `deque`. The maxlen lives in this value, not in
/// Redis (as in pottery): give the same one to every process.
///
/// ```
/// use pottery::{Redis, RedisDeque};
///
/// let redis = Redis::from_env()?;
/// # let redis = pottery::testing::doctest_redis();
/// # RedisDeque::<char>::new(&redis, "recent-doc").clear()?;
/// let recent: RedisDeque<char> = RedisDeque::with_maxlen(&redis, "recent-doc", 3)?;
/// recent.extend("abcde".chars())?;
/// assert_eq!(recent.to_vec_deque()?, ['c', 'd', 'e']);
/// recent.push_front('z')?;
/// assert_eq!(recent.to_vec_deque()?, ['z', 'c', 'd']);
/// recent.rotate(1)?;
/// assert_eq!(recent.to_vec_deque()?, ['d', 'z', 'c']);
/// # recent.clear()?;
/// # Ok::<(), pottery::Error>(())
/// ```
pub struct RedisDeque<T> {
    core: Core<T>,
}

crate::shell::shell_impls!(RedisList<T>, "RedisList");
crate::shell::shell_impls!(RedisDeque<T>, "RedisDeque");
crate::shell::shell_basics!(handles RedisList, aio::RedisList, [T], "RedisList::<u32>::new(&redis, \"k\")");
crate::shell::shell_basics!(handles RedisDeque, aio::RedisDeque, [T], "RedisDeque::<u32>::new(&redis, \"k\")");

/// The methods lists and deques share, on the blocking side.
macro_rules! common_sync {
    ($ty:ident) => {
        /// Streams the elements front to back by `LRANGE` pages (no snapshot: concurrent
        /// changes shift positions).
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        #[doc = concat!("let x: pottery::", stringify!($ty), "<u32> = pottery::", stringify!($ty), "::random(&redis)?;")]
        /// x.extend(0..1000)?;
        /// assert_eq!(x.iter().map(|e| e.unwrap()).sum::<u32>(), 499500);
        /// # x.clear()?;
        /// # Ok::<(), pottery::Error>(())
        /// ```
        pub fn iter(&self) -> impl Iterator<Item = Result<T>> + '_ {
            let mut pages = Pages::new();
            std::iter::from_fn(move || {
                if pages.needs_page() {
                    let page = self.core.redis.run(self.core.range_plan(pages.next, pages.next + PAGE - 1));
                    if let Err(e) = pages.accept(page) {
                        return Some(Err(e));
                    }
                }
                pages.page.pop_front().map(Ok)
            })
        }
    };
}

impl<T: Serialize + DeserializeOwned> RedisList<T> {
    /// Attaches to the list at `key` (no I/O).
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// let l: pottery::RedisList<String> = pottery::RedisList::new(&redis, "names");
    /// # let _ = l;
    /// ```
    pub fn new(redis: &Redis, key: impl Into<String>) -> Self {
        RedisList {
            core: Core::new(redis, key.into(), None),
        }
    }

    /// Creates the list holding `values`, atomically, or fails with [`Error::KeyExists`].
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # pottery::RedisList::<u8>::new(&redis, "l-create").clear()?;
    /// let l = pottery::RedisList::create(&redis, "l-create", [1u8, 2])?;
    /// assert!(pottery::RedisList::create(&redis, "l-create", [3u8]).is_err());
    /// # l.clear()?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn create(
        redis: &Redis,
        key: impl Into<String>,
        values: impl IntoIterator<Item = T>,
    ) -> Result<Self> {
        let l = RedisList::new(redis, key);
        redis.run(l.core.create_plan(values)?)?;
        Ok(l)
    }

    /// Attaches to a fresh `pottery:<uuid4>` key.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// let l: pottery::RedisList<u8> = pottery::RedisList::random(&redis)?;
    /// assert!(l.key().starts_with("pottery:"));
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn random(redis: &Redis) -> Result<Self> {
        Ok(RedisList::new(
            redis,
            crate::shell::keys::random_key(redis)?,
        ))
    }

    common_sync!(RedisList);
}

impl<T: Serialize + DeserializeOwned> RedisDeque<T> {
    /// Attaches to the list at `key` as an unbounded deque (no I/O).
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// let d: pottery::RedisDeque<u8> = pottery::RedisDeque::new(&redis, "jobs");
    /// assert_eq!(d.maxlen(), None);
    /// ```
    pub fn new(redis: &Redis, key: impl Into<String>) -> Self {
        RedisDeque {
            core: Core::new(redis, key.into(), None),
        }
    }

    /// Attaches as a deque of at most `maxlen` elements; [`Error::MaxLenExceeded`] if the list
    /// is already longer (one `LLEN`).
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let long: pottery::RedisDeque<u8> = pottery::RedisDeque::random(&redis)?;
    /// long.extend([1, 2, 3])?;
    /// assert!(matches!(pottery::RedisDeque::<u8>::with_maxlen(&redis, long.key(), 2),
    ///                  Err(pottery::Error::MaxLenExceeded { maxlen: 2, len: 3, .. })));
    /// let ok = pottery::RedisDeque::<u8>::with_maxlen(&redis, long.key(), 3)?;
    /// assert_eq!(ok.maxlen(), Some(3));
    /// # long.clear()?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn with_maxlen(redis: &Redis, key: impl Into<String>, maxlen: usize) -> Result<Self> {
        let d = RedisDeque {
            core: Core::new(redis, key.into(), Some(maxlen)),
        };
        let len = redis.run(d.core.len_plan())?;
        if len > maxlen {
            return Err(d.core.full(len));
        }
        Ok(d)
    }

    /// Creates the deque holding `values` (the last `maxlen` of them when bounded),
    /// atomically, or fails with [`Error::KeyExists`].
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # pottery::RedisDeque::<u8>::new(&redis, "d-create").clear()?;
    /// let d = pottery::RedisDeque::create(&redis, "d-create", [1u8, 2, 3], Some(2))?;
    /// assert_eq!(d.to_vec_deque()?, [2, 3]);
    /// # d.clear()?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn create(
        redis: &Redis,
        key: impl Into<String>,
        values: impl IntoIterator<Item = T>,
        maxlen: Option<usize>,
    ) -> Result<Self> {
        let d = RedisDeque {
            core: Core::new(redis, key.into(), maxlen),
        };
        redis.run(d.core.create_plan(values)?)?;
        Ok(d)
    }

    /// Attaches to a fresh `pottery:<uuid4>` key, unbounded.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// let d: pottery::RedisDeque<u8> = pottery::RedisDeque::random(&redis)?;
    /// assert!(d.key().starts_with("pottery:"));
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn random(redis: &Redis) -> Result<Self> {
        Ok(RedisDeque::new(
            redis,
            crate::shell::keys::random_key(redis)?,
        ))
    }

    /// The maximum length, if bounded.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let d: pottery::RedisDeque<u8> = pottery::RedisDeque::random(&redis)?;
    /// assert_eq!(d.maxlen(), None);
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn maxlen(&self) -> Option<usize> {
        self.core.maxlen
    }

    common_sync!(RedisDeque);
}

/// The async twins: [`aio::RedisList`](crate::aio::RedisList) and
/// [`aio::RedisDeque`](crate::aio::RedisDeque).
pub mod aio {
    use super::*;
    use futures_util::Stream;

    /// Async [`RedisList`](crate::RedisList): the same methods as `async fn`s.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let l: pottery::aio::RedisList<u8> = pottery::aio::RedisList::random(&redis).await?;
    /// l.extend([9, 16, 25]).await?;
    /// l.insert(-1, 4).await?;
    /// assert_eq!(l.to_vec().await?, [9, 16, 4, 25]);
    /// assert_eq!(l.remove(0).await?, 9);
    /// l.clear().await?;
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    pub struct RedisList<T> {
        pub(super) core: Core<T>,
    }

    /// Async [`RedisDeque`](crate::RedisDeque): the same methods as `async fn`s.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let d: pottery::aio::RedisDeque<u8> = pottery::aio::RedisDeque::random(&redis).await?;
    /// let d = pottery::aio::RedisDeque::with_maxlen(&redis, d.key(), 2).await?;
    /// d.extend([1, 2, 3]).await?;
    /// assert_eq!(d.to_vec_deque().await?, [2, 3]);
    /// d.clear().await?;
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    pub struct RedisDeque<T> {
        pub(super) core: Core<T>,
    }

    crate::shell::shell_impls!(RedisList<T>, "aio::RedisList");
    crate::shell::shell_impls!(RedisDeque<T>, "aio::RedisDeque");

    macro_rules! common_async {
        () => {
            /// See [`crate::RedisList::iter`]; a `Stream`.
            pub fn iter(&self) -> impl Stream<Item = Result<T>> + Send + '_ {
                futures_util::stream::unfold(Pages::new(), move |mut pages| async move {
                    if pages.needs_page() {
                        let page = self
                            .core
                            .redis
                            .run_async(self.core.range_plan(pages.next, pages.next + PAGE - 1))
                            .await;
                        if let Err(e) = pages.accept(page) {
                            return Some((Err(e), pages));
                        }
                    }
                    let item = pages.page.pop_front()?;
                    Some((Ok(item), pages))
                })
            }
        };
    }

    impl<T: Storable> RedisList<T> {
        /// Attaches to the list at `key` (no I/O).
        pub fn new(redis: &Redis, key: impl Into<String>) -> Self {
            RedisList {
                core: Core::new(redis, key.into(), None),
            }
        }

        /// See [`crate::RedisList::create`].
        pub async fn create(
            redis: &Redis,
            key: impl Into<String>,
            values: impl IntoIterator<Item = T>,
        ) -> Result<Self> {
            let l = RedisList::new(redis, key);
            redis.run_async(l.core.create_plan(values)?).await?;
            Ok(l)
        }

        /// Attaches to a fresh `pottery:<uuid4>` key.
        pub async fn random(redis: &Redis) -> Result<Self> {
            Ok(RedisList::new(
                redis,
                crate::shell::keys::random_key_async(redis).await?,
            ))
        }

        common_async!();
    }

    impl<T: Storable> RedisDeque<T> {
        /// Attaches as an unbounded deque (no I/O).
        pub fn new(redis: &Redis, key: impl Into<String>) -> Self {
            RedisDeque {
                core: Core::new(redis, key.into(), None),
            }
        }

        /// See [`crate::RedisDeque::with_maxlen`].
        pub async fn with_maxlen(
            redis: &Redis,
            key: impl Into<String>,
            maxlen: usize,
        ) -> Result<Self> {
            let d = RedisDeque {
                core: Core::new(redis, key.into(), Some(maxlen)),
            };
            let len = redis.run_async(d.core.len_plan()).await?;
            if len > maxlen {
                return Err(d.core.full(len));
            }
            Ok(d)
        }

        /// See [`crate::RedisDeque::create`].
        pub async fn create(
            redis: &Redis,
            key: impl Into<String>,
            values: impl IntoIterator<Item = T>,
            maxlen: Option<usize>,
        ) -> Result<Self> {
            let d = RedisDeque {
                core: Core::new(redis, key.into(), maxlen),
            };
            redis.run_async(d.core.create_plan(values)?).await?;
            Ok(d)
        }

        /// Attaches to a fresh `pottery:<uuid4>` key, unbounded.
        pub async fn random(redis: &Redis) -> Result<Self> {
            Ok(RedisDeque::new(
                redis,
                crate::shell::keys::random_key_async(redis).await?,
            ))
        }

        /// The maximum length, if bounded.
        pub fn maxlen(&self) -> Option<usize> {
            self.core.maxlen
        }

        common_async!();
    }
}
