//! Model-based tests (issue 14): random operation sequences over every collection, each checked
//! against a std model after every operation (every return value, every error) and at the end
//! (the whole contents), on a single server and on a 3-master cluster, through the blocking and
//! the async API. proptest shrinks a failure to a minimal sequence and prints it.
//!
//! - `RedisDict<String, i64>` vs `HashMap`, `RedisSet<String>` vs `HashSet` (with set algebra
//!   against plain values, a set in the same slot and one in another slot),
//!   `RedisList<String>` vs `Vec` with Python's index rules, `RedisDeque<String>` vs `VecDeque`
//!   unbounded and with a `maxlen` (a push past it drops from the other end),
//!   `RedisCounter<String>` vs a counting `HashMap` (overflows predicted as errors that change
//!   nothing).
//! - Values reach the edges: empty strings, unicode and emoji, NUL, quotes, strings that look like
//!   JSON numbers or literals, `i64::MIN`/`MAX`, indices far out of range both ways.
//!
//! - A slice of the same sequences (40 per structure, the writes Python pottery 3.0.1 gets
//!   right: its known bugs are avoided by the translation) runs through Python pottery on a
//!   second key, and the stored bytes of both keys must be identical.
//!
//! The seed and the case counts are fixed; `POTTERY_MODEL_CASES=2000` runs more cases per
//! structure, target and API, `POTTERY_MODEL_SEED=<u64>` draws other sequences, and
//! `POTTERY_NEAR_CACHE=1` runs the single-server and the cluster cases on near-cached handles
//! (every read a structure can serve locally then goes through the near cache).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt::Debug;
use std::ops::Bound;

use futures_util::TryStreamExt;
use pottery::{Error, RedisCounter, RedisDeque, RedisDict, RedisList, RedisSet, aio};
use pottery_tests::{targets, unique_key};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

// ---------------------------------------------------------------------------------------------
// Running

/// The fixed seed (32 bytes for ChaCha), mixed with each run's name.
const SEED: &[u8; 32] = b"pottery-rs model-based suite 14!";
/// Cases per structure, target and API in the default run.
const DEFAULT_CASES: u32 = 192;
/// The longest sequence generated.
const MAX_OPS: usize = 40;

fn cases() -> u32 {
    std::env::var("POTTERY_MODEL_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

fn seed(name: &str) -> [u8; 32] {
    let extra = std::env::var("POTTERY_MODEL_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0);
    // FNV-1a of the run's name: each structure, target and API draws its own sequences.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ extra;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut seed = *SEED;
    for (s, b) in seed.iter_mut().zip(h.to_le_bytes()) {
        *s ^= b;
    }
    seed
}

/// Runs `test` on `cases()` sequences drawn from `strategy` with a deterministic RNG; on a
/// failure, panics with the shrunk sequence.
fn run<S>(name: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: Debug,
{
    let config = Config {
        cases: cases(),
        failure_persistence: None,
        max_shrink_iters: 2048,
        ..Config::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed(name));
    let mut runner = TestRunner::new_with_rng(config, rng);
    TALLY.set((0, 0));
    match runner.run(&strategy, test) {
        Ok(()) => {
            let (ops, errors) = TALLY.get();
            eprintln!(
                "{name}: {} sequences, {ops} operations ({errors} errors, each predicted), no discrepancy",
                cases()
            );
        }
        Err(TestError::Fail(why, minimal)) => {
            panic!("{name}: {why}\nminimal failing input: {minimal:#?}")
        }
        Err(TestError::Abort(why)) => panic!("{name}: aborted: {why}"),
    }
}

thread_local! {
    /// Operations run and errors returned (as the model predicted) in the current run.
    static TALLY: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().expect("a tokio runtime")
}

fn sequences<S: Strategy>(op: S) -> impl Strategy<Value = Vec<S::Value>> {
    prop::collection::vec(op, 0..=MAX_OPS)
}

// ---------------------------------------------------------------------------------------------
// Outcomes: what an operation returned, in a form the model can predict

#[derive(Debug, Clone, PartialEq, Eq)]
enum Fail {
    IndexOutOfRange(isize),
    MaxLenExceeded {
        maxlen: usize,
        len: usize,
    },
    /// A count that would leave i64 (HINCRBY's error, or the library's own check).
    Overflow,
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Out {
    Done,
    Bool(bool),
    Len(usize),
    Int(i64),
    Value(Option<String>),
    Count(Option<i64>),
    Pos(Option<usize>),
    Values(Vec<String>),
    Ints(Vec<i64>),
    Bools(Vec<bool>),
    Members(BTreeSet<String>),
    Sets(Vec<BTreeSet<String>>),
    Counts(BTreeMap<String, i64>),
    Pairs(Vec<(String, i64)>),
    Fail(Fail),
}

fn fail(e: Error) -> Fail {
    match e {
        Error::IndexOutOfRange { index, .. } => Fail::IndexOutOfRange(index),
        Error::MaxLenExceeded { maxlen, len, .. } => Fail::MaxLenExceeded { maxlen, len },
        e => {
            let text = e.to_string();
            if text.contains("overflow")
                || text.contains("does not fit an i64")
                || text.contains("would leave i64")
            {
                Fail::Overflow
            } else {
                Fail::Other(text)
            }
        }
    }
}

fn out<T>(r: pottery::Result<T>, f: impl FnOnce(T) -> Out) -> Out {
    match r {
        Ok(v) => f(v),
        Err(e) => Out::Fail(fail(e)),
    }
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

/// A std model of one structure.
trait Model {
    type Op: Debug;
    /// The operation that reads the whole contents.
    fn snapshot() -> Self::Op;
    /// Applies `op` and returns what the library must have returned. `real` is what it did
    /// return: the model reads it only where the answer is not determined (which member `pop`
    /// takes, how `most_common` orders ties) and checks it is one of the right answers.
    fn apply(&mut self, op: &Self::Op, real: &Out) -> Out;
    /// Operations not to send in this state (elements() of huge counts).
    fn skip(&self, _op: &Self::Op) -> bool {
        false
    }
}

/// Runs `ops` through `real` and `model`, comparing every outcome, the contents after every
/// error (an error must change nothing) and the contents at the end.
fn drive<M: Model>(
    mut model: M,
    ops: &[M::Op],
    mut real: impl FnMut(&M::Op) -> Out,
) -> Result<(), TestCaseError> {
    let snapshot = M::snapshot();
    for (i, op) in ops.iter().enumerate() {
        if model.skip(op) {
            continue;
        }
        let got = real(op);
        let want = model.apply(op, &got);
        prop_assert_eq!(&got, &want, "operation #{} {:?}", i, op);
        let failed = matches!(want, Out::Fail(_));
        TALLY.with(|t| {
            let (ops, errors) = t.get();
            t.set((ops + 1, errors + u64::from(failed)));
        });
        if failed {
            let got = real(&snapshot);
            let want = model.apply(&snapshot, &got);
            prop_assert_eq!(
                &got,
                &want,
                "contents after the failed operation #{} {:?}",
                i,
                op
            );
        }
    }
    let got = real(&snapshot);
    let want = model.apply(&snapshot, &got);
    prop_assert_eq!(got, want, "contents at the end");
    Ok(())
}

/// A call, blocking or awaited.
macro_rules! call {
    (blocking, $e:expr) => {
        $e
    };
    (aio, $e:expr) => {
        $e.await
    };
}

/// Every item of an iterator (blocking) or a stream (async).
macro_rules! collect {
    (blocking, $e:expr) => {
        $e.collect::<pottery::Result<Vec<_>>>()
    };
    (aio, $e:expr) => {
        $e.try_collect::<Vec<_>>().await
    };
}

// ---------------------------------------------------------------------------------------------
// Values

/// Strings at the edges: empty, JSON look-alikes, unicode (either side of the surrogates, so
/// code point order and UTF-16 order differ), emoji, NUL, quotes; few enough that
/// keys and values repeat, plus arbitrary short strings of any chars.
fn text() -> impl Strategy<Value = String> {
    const EDGE: [&str; 21] = [
        "",
        "1",
        "1.0",
        "true",
        "null",
        "0",
        "-1",
        "a",
        "b",
        "é",
        "😀",
        "\u{e000}",
        "\u{ffff}",
        "\u{10ffff}",
        "\"",
        "\\",
        " ",
        "\u{0}",
        "[]",
        "{}",
        "ß\u{fffd}",
    ];
    prop_oneof![
        4 => prop::sample::select(&EDGE[..]).prop_map(String::from),
        1 => prop::collection::vec(any::<char>(), 0..4).prop_map(String::from_iter),
    ]
}

/// i64 values at and near the limits, small ones, and any.
fn int() -> impl Strategy<Value = i64> {
    prop_oneof![
        2 => prop::sample::select(&[i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX][..]),
        2 => -1000i64..1000,
        1 => any::<i64>(),
    ]
}

/// Counter amounts: mostly small, often at the i64 limits (to make sums overflow).
fn amount() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => -3i64..=5,
        2 => prop::sample::select(
            &[
                i64::MIN,
                i64::MIN + 1,
                i64::MIN / 2,
                -(1 << 40),
                1 << 40,
                i64::MAX / 2 + 1,
                i64::MAX - 1,
                i64::MAX,
            ][..]
        ),
        1 => any::<i64>(),
    ]
}

/// Indices: mostly around the lengths the sequences reach, some far out of range both ways.
fn index() -> impl Strategy<Value = isize> {
    prop_oneof![
        6 => -8isize..8,
        1 => prop::sample::select(
            &[
                isize::MIN,
                isize::MIN + 1,
                -(1 << 53) - 1,
                -(1 << 32),
                1 << 32,
                (1 << 53) + 1,
                isize::MAX - 1,
                isize::MAX,
            ][..]
        ),
    ]
}

/// The start of a slice: `a..` or `..` (what range syntax can write).
fn start_bound() -> impl Strategy<Value = Bound<isize>> {
    prop_oneof![Just(Bound::Unbounded), index().prop_map(Bound::Included)]
}

/// The end of a slice: `..b`, `..=b` or `..` (`..isize::MIN` included: it once panicked).
fn end_bound() -> impl Strategy<Value = Bound<isize>> {
    prop_oneof![
        Just(Bound::Unbounded),
        index().prop_map(Bound::Included),
        index().prop_map(Bound::Excluded),
    ]
}

/// Deque rotations: the indices (`|n| > 2^53` included: they once rotated by a rounded amount).
fn rotation() -> impl Strategy<Value = isize> {
    index()
}

// ---------------------------------------------------------------------------------------------
// Python's index rules

/// The position `i` names in a sequence of `len` (negative counts from the end), if any.
fn position(i: isize, len: usize) -> Option<usize> {
    let (i, n) = (i as i128, len as i128);
    let p = if i < 0 { i + n } else { i };
    (0..n).contains(&p).then_some(p as usize)
}

/// Where Python's `list.insert(i, v)` puts `v`.
fn insert_position(i: isize, len: usize) -> usize {
    let (i, n) = (i as i128, len as i128);
    (if i < 0 { i + n } else { i }).clamp(0, n) as usize
}

/// The positions a slice covers: `a..b` is Python's `[a:b]`, `a..=b` runs to and including the
/// element at `b` (both counting from the end when negative), clamped to the sequence.
fn slice_range(start: Bound<isize>, end: Bound<isize>, len: usize) -> std::ops::Range<usize> {
    let n = len as i128;
    let at = |i: isize| if i < 0 { i as i128 + n } else { i as i128 };
    let lo = match start {
        Bound::Included(a) => at(a).clamp(0, n),
        Bound::Excluded(a) => (at(a) + 1).clamp(0, n),
        Bound::Unbounded => 0,
    };
    let hi = match end {
        Bound::Included(b) => (at(b) + 1).clamp(0, n),
        Bound::Excluded(b) => at(b).clamp(0, n),
        Bound::Unbounded => n,
    };
    lo as usize..hi.max(lo) as usize
}

// ---------------------------------------------------------------------------------------------
// RedisDict<String, i64> vs HashMap

#[derive(Debug, Clone)]
enum DictOp {
    Insert(String, i64),
    Set(String, i64),
    Get(String),
    Remove(String),
    ContainsKey(String),
    Len,
    IsEmpty,
    Extend(Vec<(String, i64)>),
    Snapshot,
    Iter,
    Keys,
    Values,
    Clear,
}

fn dict_op() -> impl Strategy<Value = DictOp> {
    prop_oneof![
        4 => (text(), int()).prop_map(|(k, v)| DictOp::Insert(k, v)),
        2 => (text(), int()).prop_map(|(k, v)| DictOp::Set(k, v)),
        3 => text().prop_map(DictOp::Get),
        2 => text().prop_map(DictOp::Remove),
        1 => text().prop_map(DictOp::ContainsKey),
        1 => Just(DictOp::Len),
        1 => Just(DictOp::IsEmpty),
        1 => prop::collection::vec((text(), int()), 0..5).prop_map(DictOp::Extend),
        1 => Just(DictOp::Snapshot),
        1 => Just(DictOp::Iter),
        1 => Just(DictOp::Keys),
        1 => Just(DictOp::Values),
        1 => Just(DictOp::Clear),
    ]
}

#[derive(Debug, Default)]
struct DictModel(HashMap<String, i64>);

impl Model for DictModel {
    type Op = DictOp;

    fn snapshot() -> DictOp {
        DictOp::Snapshot
    }

    fn apply(&mut self, op: &DictOp, _real: &Out) -> Out {
        let m = &mut self.0;
        match op {
            DictOp::Insert(k, v) => Out::Count(m.insert(k.clone(), *v)),
            DictOp::Set(k, v) => {
                m.insert(k.clone(), *v);
                Out::Done
            }
            DictOp::Get(k) => Out::Count(m.get(k).copied()),
            DictOp::Remove(k) => Out::Count(m.remove(k)),
            DictOp::ContainsKey(k) => Out::Bool(m.contains_key(k)),
            DictOp::Len => Out::Len(m.len()),
            DictOp::IsEmpty => Out::Bool(m.is_empty()),
            DictOp::Extend(items) => {
                m.extend(items.iter().cloned());
                Out::Done
            }
            DictOp::Snapshot => Out::Counts(m.clone().into_iter().collect()),
            DictOp::Iter => Out::Pairs(sorted(m.clone().into_iter().collect())),
            DictOp::Keys => Out::Values(sorted(m.keys().cloned().collect())),
            DictOp::Values => Out::Ints(sorted(m.values().copied().collect())),
            DictOp::Clear => {
                m.clear();
                Out::Done
            }
        }
    }
}

macro_rules! dict_real {
    ($d:expr, $op:expr, $mode:ident) => {{
        let d = $d;
        match $op {
            DictOp::Insert(k, v) => out(call!($mode, d.insert(k.clone(), *v)), Out::Count),
            DictOp::Set(k, v) => out(call!($mode, d.set(k.clone(), *v)), |()| Out::Done),
            DictOp::Get(k) => out(call!($mode, d.get(k.as_str())), Out::Count),
            DictOp::Remove(k) => out(call!($mode, d.remove(k.as_str())), Out::Count),
            DictOp::ContainsKey(k) => out(call!($mode, d.contains_key(k.as_str())), Out::Bool),
            DictOp::Len => out(call!($mode, d.len()), Out::Len),
            DictOp::IsEmpty => out(call!($mode, d.is_empty()), Out::Bool),
            DictOp::Extend(items) => out(call!($mode, d.extend(items.clone())), |()| Out::Done),
            DictOp::Snapshot => out(call!($mode, d.to_hash_map()), |m| {
                Out::Counts(m.into_iter().collect())
            }),
            DictOp::Iter => out(collect!($mode, d.iter()), |v| Out::Pairs(sorted(v))),
            DictOp::Keys => out(collect!($mode, d.keys()), |v| Out::Values(sorted(v))),
            DictOp::Values => out(collect!($mode, d.values()), |v| Out::Ints(sorted(v))),
            DictOp::Clear => out(call!($mode, d.clear()), |()| Out::Done),
        }
    }};
}

fn dict_blocking(d: &RedisDict<String, i64>, op: &DictOp) -> Out {
    dict_real!(d, op, blocking)
}

async fn dict_async(d: &aio::RedisDict<String, i64>, op: &DictOp) -> Out {
    dict_real!(d, op, aio)
}

#[test]
fn dict_blocking_matches_hash_map() {
    for (target, redis) in targets() {
        run(
            &format!("dict/{target}/blocking"),
            sequences(dict_op()),
            |ops| {
                let d = RedisDict::new(&redis, unique_key("model-dict"));
                let r = drive(DictModel::default(), &ops, |op| dict_blocking(&d, op));
                let _ = d.clear();
                r
            },
        );
    }
}

#[test]
fn dict_async_matches_hash_map() {
    let rt = runtime();
    for (target, redis) in targets() {
        run(
            &format!("dict/{target}/async"),
            sequences(dict_op()),
            |ops| {
                let d = aio::RedisDict::new(&redis, unique_key("model-dict"));
                let r = drive(DictModel::default(), &ops, |op| {
                    rt.block_on(dict_async(&d, op))
                });
                let _ = rt.block_on(d.clear());
                r
            },
        );
    }
}

// ---------------------------------------------------------------------------------------------
// RedisSet<String> vs HashSet

/// The other side of a set operation.
#[derive(Debug, Clone)]
enum Side {
    Values(Vec<String>),
    /// Another RedisSet in the same cluster slot (one server-side command).
    SameSlot,
    /// Another RedisSet in another slot (on a cluster, computed client-side).
    OtherSlot,
}

#[derive(Debug, Clone, Copy)]
enum Algebra {
    Union,
    Intersection,
    Difference,
    SymmetricDifference,
}

#[derive(Debug, Clone)]
enum SetOp {
    Insert(String),
    Remove(String),
    Contains(String),
    ContainsMany(Vec<String>),
    Pop,
    Extend(Vec<String>),
    Len,
    IsEmpty,
    Clear,
    Snapshot,
    Iter,
    /// Insert into the same-slot set (`true`) or the other-slot one.
    InsertOther(bool, String),
    Algebra(Algebra, Side),
    /// `*_store` into a destination set in the same slot.
    Store(Algebra, Side),
    IsSubset(Side),
    IsSuperset(Side),
    IsDisjoint(Side),
}

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![
        2 => prop::collection::vec(text(), 0..5).prop_map(Side::Values),
        1 => Just(Side::SameSlot),
        1 => Just(Side::OtherSlot),
    ]
}

fn algebra() -> impl Strategy<Value = Algebra> {
    prop::sample::select(
        &[
            Algebra::Union,
            Algebra::Intersection,
            Algebra::Difference,
            Algebra::SymmetricDifference,
        ][..],
    )
}

fn set_op() -> impl Strategy<Value = SetOp> {
    prop_oneof![
        4 => text().prop_map(SetOp::Insert),
        2 => text().prop_map(SetOp::Remove),
        2 => text().prop_map(SetOp::Contains),
        1 => prop::collection::vec(text(), 0..5).prop_map(SetOp::ContainsMany),
        1 => Just(SetOp::Pop),
        2 => prop::collection::vec(text(), 0..5).prop_map(SetOp::Extend),
        1 => Just(SetOp::Len),
        1 => Just(SetOp::IsEmpty),
        1 => Just(SetOp::Clear),
        1 => Just(SetOp::Snapshot),
        1 => Just(SetOp::Iter),
        3 => (any::<bool>(), text()).prop_map(|(same, v)| SetOp::InsertOther(same, v)),
        3 => (algebra(), side()).prop_map(|(a, s)| SetOp::Algebra(a, s)),
        2 => (algebra(), side()).prop_map(|(a, s)| SetOp::Store(a, s)),
        1 => side().prop_map(SetOp::IsSubset),
        1 => side().prop_map(SetOp::IsSuperset),
        1 => side().prop_map(SetOp::IsDisjoint),
    ]
}

#[derive(Debug, Default)]
struct SetModel {
    a: HashSet<String>,
    same: HashSet<String>,
    other: HashSet<String>,
    dest: HashSet<String>,
}

impl SetModel {
    fn side(&self, side: &Side) -> HashSet<String> {
        match side {
            Side::Values(v) => v.iter().cloned().collect(),
            Side::SameSlot => self.same.clone(),
            Side::OtherSlot => self.other.clone(),
        }
    }

    fn algebra(&self, op: Algebra, side: &Side) -> HashSet<String> {
        let b = self.side(side);
        let a = &self.a;
        match op {
            Algebra::Union => a.union(&b).cloned().collect(),
            Algebra::Intersection => a.intersection(&b).cloned().collect(),
            Algebra::Difference => a.difference(&b).cloned().collect(),
            Algebra::SymmetricDifference => a.symmetric_difference(&b).cloned().collect(),
        }
    }
}

impl Model for SetModel {
    type Op = SetOp;

    fn snapshot() -> SetOp {
        SetOp::Snapshot
    }

    fn apply(&mut self, op: &SetOp, real: &Out) -> Out {
        let set = |s: &HashSet<String>| s.iter().cloned().collect::<BTreeSet<_>>();
        match op {
            SetOp::Insert(v) => Out::Bool(self.a.insert(v.clone())),
            SetOp::Remove(v) => Out::Bool(self.a.remove(v)),
            SetOp::Contains(v) => Out::Bool(self.a.contains(v)),
            SetOp::ContainsMany(vs) => Out::Bools(vs.iter().map(|v| self.a.contains(v)).collect()),
            SetOp::Pop => match real {
                Out::Value(Some(x)) if self.a.remove(x) => real.clone(),
                _ if self.a.is_empty() => Out::Value(None),
                _ => Out::Fail(Fail::Other(format!("some member of {:?}", set(&self.a)))),
            },
            SetOp::Extend(vs) => {
                Out::Len(vs.iter().filter(|v| self.a.insert((*v).clone())).count())
            }
            SetOp::Len => Out::Len(self.a.len()),
            SetOp::IsEmpty => Out::Bool(self.a.is_empty()),
            SetOp::Clear => {
                self.a.clear();
                Out::Done
            }
            SetOp::Snapshot => Out::Sets(vec![
                set(&self.a),
                set(&self.same),
                set(&self.other),
                set(&self.dest),
            ]),
            SetOp::Iter => Out::Values(sorted(self.a.iter().cloned().collect())),
            SetOp::InsertOther(true, v) => Out::Bool(self.same.insert(v.clone())),
            SetOp::InsertOther(false, v) => Out::Bool(self.other.insert(v.clone())),
            SetOp::Algebra(op, s) => Out::Members(set(&self.algebra(*op, s))),
            SetOp::Store(op, s) => {
                self.dest = self.algebra(*op, s);
                Out::Len(self.dest.len())
            }
            SetOp::IsSubset(s) => Out::Bool(self.a.is_subset(&self.side(s))),
            SetOp::IsSuperset(s) => Out::Bool(self.a.is_superset(&self.side(s))),
            SetOp::IsDisjoint(s) => Out::Bool(self.a.is_disjoint(&self.side(s))),
        }
    }
}

/// The handles of one set case: the set under test, the two other operands and a destination.
struct Sets<S> {
    a: S,
    same: S,
    other: S,
    dest: S,
}

fn set_keys() -> [String; 4] {
    let tag = unique_key("model-set");
    [
        format!("{{{tag}}}:a"),
        format!("{{{tag}}}:same"),
        unique_key("model-set-other"),
        format!("{{{tag}}}:dest"),
    ]
}

/// Runs `$e` with `$o` bound to the operand `$side` names.
macro_rules! with_side {
    ($sets:expr, $side:expr, $o:ident => $e:expr) => {
        match $side {
            Side::Values(v) => {
                let $o = v.clone();
                $e
            }
            Side::SameSlot => {
                let $o = &$sets.same;
                $e
            }
            Side::OtherSlot => {
                let $o = &$sets.other;
                $e
            }
        }
    };
}

macro_rules! set_real {
    ($sets:expr, $op:expr, $mode:ident) => {{
        let sets = $sets;
        let a = &sets.a;
        let members = |m: HashSet<String>| Out::Members(m.into_iter().collect());
        match $op {
            SetOp::Insert(v) => out(call!($mode, a.insert(v.clone())), Out::Bool),
            SetOp::Remove(v) => out(call!($mode, a.remove(v.as_str())), Out::Bool),
            SetOp::Contains(v) => out(call!($mode, a.contains(v.as_str())), Out::Bool),
            SetOp::ContainsMany(vs) => out(call!($mode, a.contains_many(vs.clone())), Out::Bools),
            SetOp::Pop => out(call!($mode, a.pop()), Out::Value),
            SetOp::Extend(vs) => out(call!($mode, a.extend(vs.clone())), Out::Len),
            SetOp::Len => out(call!($mode, a.len()), Out::Len),
            SetOp::IsEmpty => out(call!($mode, a.is_empty()), Out::Bool),
            SetOp::Clear => out(call!($mode, a.clear()), |()| Out::Done),
            SetOp::Snapshot => {
                let mut all = Vec::new();
                for s in [&sets.a, &sets.same, &sets.other, &sets.dest] {
                    match call!($mode, s.to_hash_set()) {
                        Ok(m) => all.push(m.into_iter().collect()),
                        Err(e) => return Out::Fail(fail(e)),
                    }
                }
                Out::Sets(all)
            }
            SetOp::Iter => out(collect!($mode, a.iter()), |v| Out::Values(sorted(v))),
            SetOp::InsertOther(true, v) => out(call!($mode, sets.same.insert(v.clone())), Out::Bool),
            SetOp::InsertOther(false, v) => {
                out(call!($mode, sets.other.insert(v.clone())), Out::Bool)
            }
            SetOp::Algebra(op, side) => with_side!(sets, side, o => match op {
                Algebra::Union => out(call!($mode, a.union(o)), members),
                Algebra::Intersection => out(call!($mode, a.intersection(o)), members),
                Algebra::Difference => out(call!($mode, a.difference(o)), members),
                Algebra::SymmetricDifference => {
                    out(call!($mode, a.symmetric_difference(o)), members)
                }
            }),
            SetOp::Store(op, side) => with_side!(sets, side, o => match op {
                Algebra::Union => out(call!($mode, a.union_store(o, &sets.dest)), Out::Len),
                Algebra::Intersection => {
                    out(call!($mode, a.intersection_store(o, &sets.dest)), Out::Len)
                }
                Algebra::Difference => {
                    out(call!($mode, a.difference_store(o, &sets.dest)), Out::Len)
                }
                Algebra::SymmetricDifference => {
                    out(call!($mode, a.symmetric_difference_store(o, &sets.dest)), Out::Len)
                }
            }),
            SetOp::IsSubset(side) => with_side!(sets, side, o => out(call!($mode, a.is_subset(o)), Out::Bool)),
            SetOp::IsSuperset(side) => with_side!(sets, side, o => out(call!($mode, a.is_superset(o)), Out::Bool)),
            SetOp::IsDisjoint(side) => with_side!(sets, side, o => out(call!($mode, a.is_disjoint(o)), Out::Bool)),
        }
    }};
}

fn set_blocking(sets: &Sets<RedisSet<String>>, op: &SetOp) -> Out {
    set_real!(sets, op, blocking)
}

async fn set_async(sets: &Sets<aio::RedisSet<String>>, op: &SetOp) -> Out {
    set_real!(sets, op, aio)
}

#[test]
fn set_blocking_matches_hash_set() {
    for (target, redis) in targets() {
        run(
            &format!("set/{target}/blocking"),
            sequences(set_op()),
            |ops| {
                let [a, same, other, dest] = set_keys().map(|k| RedisSet::new(&redis, k));
                let sets = Sets {
                    a,
                    same,
                    other,
                    dest,
                };
                let r = drive(SetModel::default(), &ops, |op| set_blocking(&sets, op));
                for s in [&sets.a, &sets.same, &sets.other, &sets.dest] {
                    let _ = s.clear();
                }
                r
            },
        );
    }
}

#[test]
fn set_async_matches_hash_set() {
    let rt = runtime();
    for (target, redis) in targets() {
        run(&format!("set/{target}/async"), sequences(set_op()), |ops| {
            let [a, same, other, dest] = set_keys().map(|k| aio::RedisSet::new(&redis, k));
            let sets = Sets {
                a,
                same,
                other,
                dest,
            };
            let r = drive(SetModel::default(), &ops, |op| {
                rt.block_on(set_async(&sets, op))
            });
            for s in [&sets.a, &sets.same, &sets.other, &sets.dest] {
                let _ = rt.block_on(s.clear());
            }
            r
        });
    }
}

// ---------------------------------------------------------------------------------------------
// RedisList<String> vs Vec, and RedisDeque<String> vs VecDeque (with and without maxlen)

/// The operations of lists and deques; the deque-only ones are not generated for lists.
#[derive(Debug, Clone)]
enum SeqOp {
    /// `push` / `push_back`.
    Push(String),
    /// `pop` / `pop_back`.
    Pop,
    Extend(Vec<String>),
    Insert(isize, String),
    Get(isize),
    Set(isize, String),
    Remove(isize),
    RemoveValue(String),
    Slice(Bound<isize>, Bound<isize>),
    IndexOf(String),
    Contains(String),
    Len,
    IsEmpty,
    Clear,
    Snapshot,
    Iter,
    // Lists only.
    Sort,
    Reverse,
    // Deques only.
    PushFront(String),
    PopFront,
    Front,
    Back,
    ExtendFront(Vec<String>),
    Rotate(isize),
}

fn common_seq_op() -> impl Strategy<Value = SeqOp> {
    prop_oneof![
        4 => text().prop_map(SeqOp::Push),
        2 => Just(SeqOp::Pop),
        2 => prop::collection::vec(text(), 0..5).prop_map(SeqOp::Extend),
        3 => (index(), text()).prop_map(|(i, v)| SeqOp::Insert(i, v)),
        2 => index().prop_map(SeqOp::Get),
        2 => (index(), text()).prop_map(|(i, v)| SeqOp::Set(i, v)),
        2 => index().prop_map(SeqOp::Remove),
        1 => text().prop_map(SeqOp::RemoveValue),
        2 => (start_bound(), end_bound()).prop_map(|(a, b)| SeqOp::Slice(a, b)),
        1 => text().prop_map(SeqOp::IndexOf),
        1 => text().prop_map(SeqOp::Contains),
        1 => Just(SeqOp::Len),
        1 => Just(SeqOp::IsEmpty),
        1 => Just(SeqOp::Clear),
        1 => Just(SeqOp::Snapshot),
        1 => Just(SeqOp::Iter),
    ]
}

fn list_op() -> impl Strategy<Value = SeqOp> {
    prop_oneof![
        12 => common_seq_op(),
        1 => Just(SeqOp::Sort),
        1 => Just(SeqOp::Reverse),
    ]
}

fn deque_op() -> impl Strategy<Value = SeqOp> {
    prop_oneof![
        10 => common_seq_op(),
        3 => text().prop_map(SeqOp::PushFront),
        2 => Just(SeqOp::PopFront),
        1 => Just(SeqOp::Front),
        1 => Just(SeqOp::Back),
        1 => prop::collection::vec(text(), 0..5).prop_map(SeqOp::ExtendFront),
        2 => rotation().prop_map(SeqOp::Rotate),
    ]
}

/// A Python list, or a Python deque with an optional maxlen.
#[derive(Debug, Default)]
struct SeqModel {
    items: VecDeque<String>,
    maxlen: Option<usize>,
}

impl SeqModel {
    fn push_back(&mut self, v: &str) {
        if self.maxlen == Some(0) {
            return;
        }
        if Some(self.items.len()) == self.maxlen {
            self.items.pop_front();
        }
        self.items.push_back(v.to_owned());
    }

    fn push_front(&mut self, v: &str) {
        if self.maxlen == Some(0) {
            return;
        }
        if Some(self.items.len()) == self.maxlen {
            self.items.pop_back();
        }
        self.items.push_front(v.to_owned());
    }

    fn all(&self) -> Vec<String> {
        self.items.iter().cloned().collect()
    }
}

impl Model for SeqModel {
    type Op = SeqOp;

    fn snapshot() -> SeqOp {
        SeqOp::Snapshot
    }

    fn apply(&mut self, op: &SeqOp, _real: &Out) -> Out {
        let len = self.items.len();
        match op {
            SeqOp::Push(v) => {
                self.push_back(v);
                Out::Len(self.items.len())
            }
            SeqOp::Pop => Out::Value(self.items.pop_back()),
            SeqOp::Extend(vs) => {
                vs.iter().for_each(|v| self.push_back(v));
                Out::Len(self.items.len())
            }
            SeqOp::Insert(i, v) => match self.maxlen {
                Some(m) if len >= m => Out::Fail(Fail::MaxLenExceeded { maxlen: m, len: m }),
                _ => {
                    self.items.insert(insert_position(*i, len), v.clone());
                    Out::Done
                }
            },
            SeqOp::Get(i) => Out::Value(position(*i, len).map(|p| self.items[p].clone())),
            SeqOp::Set(i, v) => match position(*i, len) {
                Some(p) => {
                    self.items[p] = v.clone();
                    Out::Done
                }
                None => Out::Fail(Fail::IndexOutOfRange(*i)),
            },
            SeqOp::Remove(i) => match position(*i, len) {
                Some(p) => Out::Value(self.items.remove(p)),
                None => Out::Fail(Fail::IndexOutOfRange(*i)),
            },
            SeqOp::RemoveValue(v) => match self.items.iter().position(|x| x == v) {
                Some(p) => {
                    self.items.remove(p);
                    Out::Bool(true)
                }
                None => Out::Bool(false),
            },
            SeqOp::Slice(a, b) => Out::Values(self.all()[slice_range(*a, *b, len)].to_vec()),
            SeqOp::IndexOf(v) => Out::Pos(self.items.iter().position(|x| x == v)),
            SeqOp::Contains(v) => Out::Bool(self.items.contains(v)),
            SeqOp::Len => Out::Len(len),
            SeqOp::IsEmpty => Out::Bool(len == 0),
            SeqOp::Clear => {
                self.items.clear();
                Out::Done
            }
            SeqOp::Snapshot | SeqOp::Iter => Out::Values(self.all()),
            SeqOp::Sort => {
                // Python compares str by code point: Rust's byte order of UTF-8 is the same.
                self.items.make_contiguous().sort();
                Out::Done
            }
            SeqOp::Reverse => {
                self.items = self.items.drain(..).rev().collect();
                Out::Done
            }
            SeqOp::PushFront(v) => {
                self.push_front(v);
                Out::Len(self.items.len())
            }
            SeqOp::PopFront => Out::Value(self.items.pop_front()),
            SeqOp::Front => Out::Value(self.items.front().cloned()),
            SeqOp::Back => Out::Value(self.items.back().cloned()),
            SeqOp::ExtendFront(vs) => {
                vs.iter().for_each(|v| self.push_front(v));
                Out::Len(self.items.len())
            }
            SeqOp::Rotate(n) => {
                if len > 0 {
                    // Python's deque.rotate(n): n steps to the right, exactly, for any n.
                    let k = (*n as i128).rem_euclid(len as i128) as usize;
                    self.items.rotate_right(k);
                }
                Out::Done
            }
        }
    }
}

/// The operations both lists and deques have (`$d` is a list or a deque, blocking or async).
macro_rules! seq_common {
    ($d:expr, $op:expr, $mode:ident) => {{
        let d = $d;
        let value = |v: Option<String>| Out::Value(v);
        match $op {
            SeqOp::Insert(i, v) => out(call!($mode, d.insert(*i, v.clone())), |()| Out::Done),
            SeqOp::Get(i) => out(call!($mode, d.get(*i)), value),
            SeqOp::Set(i, v) => out(call!($mode, d.set(*i, v.clone())), |()| Out::Done),
            SeqOp::Remove(i) => out(call!($mode, d.remove(*i)), |v| Out::Value(Some(v))),
            SeqOp::RemoveValue(v) => out(call!($mode, d.remove_value(v.as_str())), Out::Bool),
            SeqOp::Slice(a, b) => out(call!($mode, d.slice((*a, *b))), Out::Values),
            SeqOp::IndexOf(v) => out(call!($mode, d.index_of(v.as_str())), Out::Pos),
            SeqOp::Contains(v) => out(call!($mode, d.contains(v.as_str())), Out::Bool),
            SeqOp::Len => out(call!($mode, d.len()), Out::Len),
            SeqOp::IsEmpty => out(call!($mode, d.is_empty()), Out::Bool),
            SeqOp::Clear => out(call!($mode, d.clear()), |()| Out::Done),
            SeqOp::Iter => out(collect!($mode, d.iter()), Out::Values),
            op => unreachable!("not an operation of both: {op:?}"),
        }
    }};
}

macro_rules! list_real {
    ($l:expr, $op:expr, $mode:ident) => {{
        let l = $l;
        match $op {
            SeqOp::Push(v) => out(call!($mode, l.push(v.clone())), Out::Len),
            SeqOp::Pop => out(call!($mode, l.pop()), Out::Value),
            SeqOp::Extend(vs) => out(call!($mode, l.extend(vs.clone())), Out::Len),
            SeqOp::Snapshot => out(call!($mode, l.to_vec()), Out::Values),
            SeqOp::Sort => out(call!($mode, l.sort()), |()| Out::Done),
            SeqOp::Reverse => out(call!($mode, l.reverse()), |()| Out::Done),
            op => seq_common!(l, op, $mode),
        }
    }};
}

macro_rules! deque_real {
    ($d:expr, $op:expr, $mode:ident) => {{
        let d = $d;
        match $op {
            SeqOp::Push(v) => out(call!($mode, d.push_back(v.clone())), Out::Len),
            SeqOp::Pop => out(call!($mode, d.pop_back()), Out::Value),
            SeqOp::Extend(vs) => out(call!($mode, d.extend(vs.clone())), Out::Len),
            SeqOp::Snapshot => out(call!($mode, d.to_vec_deque()), |v| {
                Out::Values(v.into_iter().collect())
            }),
            SeqOp::PushFront(v) => out(call!($mode, d.push_front(v.clone())), Out::Len),
            SeqOp::PopFront => out(call!($mode, d.pop_front()), Out::Value),
            SeqOp::Front => out(call!($mode, d.front()), Out::Value),
            SeqOp::Back => out(call!($mode, d.back()), Out::Value),
            SeqOp::ExtendFront(vs) => out(call!($mode, d.extend_front(vs.clone())), Out::Len),
            SeqOp::Rotate(n) => out(call!($mode, d.rotate(*n)), |()| Out::Done),
            op => seq_common!(d, op, $mode),
        }
    }};
}

fn list_blocking(l: &RedisList<String>, op: &SeqOp) -> Out {
    list_real!(l, op, blocking)
}

async fn list_async(l: &aio::RedisList<String>, op: &SeqOp) -> Out {
    list_real!(l, op, aio)
}

fn deque_blocking(d: &RedisDeque<String>, op: &SeqOp) -> Out {
    deque_real!(d, op, blocking)
}

async fn deque_async(d: &aio::RedisDeque<String>, op: &SeqOp) -> Out {
    deque_real!(d, op, aio)
}

#[test]
fn list_blocking_matches_vec() {
    for (target, redis) in targets() {
        run(
            &format!("list/{target}/blocking"),
            sequences(list_op()),
            |ops| {
                let l = RedisList::new(&redis, unique_key("model-list"));
                let r = drive(SeqModel::default(), &ops, |op| list_blocking(&l, op));
                let _ = l.clear();
                r
            },
        );
    }
}

#[test]
fn list_async_matches_vec() {
    let rt = runtime();
    for (target, redis) in targets() {
        run(
            &format!("list/{target}/async"),
            sequences(list_op()),
            |ops| {
                let l = aio::RedisList::new(&redis, unique_key("model-list"));
                let r = drive(SeqModel::default(), &ops, |op| {
                    rt.block_on(list_async(&l, op))
                });
                let _ = rt.block_on(l.clear());
                r
            },
        );
    }
}

#[test]
fn deque_blocking_matches_vec_deque() {
    for (target, redis) in targets() {
        run(
            &format!("deque/{target}/blocking"),
            sequences(deque_op()),
            |ops| {
                let d = RedisDeque::new(&redis, unique_key("model-deque"));
                let r = drive(SeqModel::default(), &ops, |op| deque_blocking(&d, op));
                let _ = d.clear();
                r
            },
        );
    }
}

#[test]
fn deque_async_matches_vec_deque() {
    let rt = runtime();
    for (target, redis) in targets() {
        run(
            &format!("deque/{target}/async"),
            sequences(deque_op()),
            |ops| {
                let d = aio::RedisDeque::new(&redis, unique_key("model-deque"));
                let r = drive(SeqModel::default(), &ops, |op| {
                    rt.block_on(deque_async(&d, op))
                });
                let _ = rt.block_on(d.clear());
                r
            },
        );
    }
}

#[test]
fn bounded_deque_blocking_matches_vec_deque_with_maxlen() {
    for (target, redis) in targets() {
        run(
            &format!("bounded-deque/{target}/blocking"),
            (0usize..=5, sequences(deque_op())),
            |(maxlen, ops)| {
                let d = RedisDeque::with_maxlen(&redis, unique_key("model-deque"), maxlen)
                    .expect("an empty deque within maxlen");
                let model = SeqModel {
                    items: VecDeque::new(),
                    maxlen: Some(maxlen),
                };
                let r = drive(model, &ops, |op| deque_blocking(&d, op));
                let _ = d.clear();
                r
            },
        );
    }
}

#[test]
fn bounded_deque_async_matches_vec_deque_with_maxlen() {
    let rt = runtime();
    for (target, redis) in targets() {
        run(
            &format!("bounded-deque/{target}/async"),
            (0usize..=5, sequences(deque_op())),
            |(maxlen, ops)| {
                let d = rt
                    .block_on(aio::RedisDeque::with_maxlen(
                        &redis,
                        unique_key("model-deque"),
                        maxlen,
                    ))
                    .expect("an empty deque within maxlen");
                let model = SeqModel {
                    items: VecDeque::new(),
                    maxlen: Some(maxlen),
                };
                let r = drive(model, &ops, |op| rt.block_on(deque_async(&d, op)));
                let _ = rt.block_on(d.clear());
                r
            },
        );
    }
}

// ---------------------------------------------------------------------------------------------
// RedisCounter<String> vs a counting HashMap

#[derive(Debug, Clone)]
enum CounterOp {
    Get(String),
    Set(String, i64),
    Incr(String, i64),
    Update(Vec<String>),
    UpdateCounts(Vec<(String, i64)>),
    Subtract(Vec<String>),
    SubtractCounts(Vec<(String, i64)>),
    Remove(String),
    Len,
    IsEmpty,
    Clear,
    Snapshot,
    Iter,
    MostCommon(Option<usize>),
    Elements,
    Total,
    /// `self <op> other` (0 add, 1 sub, 2 union, 3 intersection) with a fresh other counter
    /// holding these counts (one per key).
    Combine(u8, BTreeMap<String, i64>),
}

fn counter_op() -> impl Strategy<Value = CounterOp> {
    let counts = || prop::collection::vec((text(), amount()), 0..5);
    let keys = || prop::collection::vec(text(), 0..5);
    prop_oneof![
        3 => text().prop_map(CounterOp::Get),
        1 => (text(), amount()).prop_map(|(k, n)| CounterOp::Set(k, n)),
        4 => (text(), amount()).prop_map(|(k, n)| CounterOp::Incr(k, n)),
        2 => keys().prop_map(CounterOp::Update),
        3 => counts().prop_map(CounterOp::UpdateCounts),
        1 => keys().prop_map(CounterOp::Subtract),
        2 => counts().prop_map(CounterOp::SubtractCounts),
        1 => text().prop_map(CounterOp::Remove),
        1 => Just(CounterOp::Len),
        1 => Just(CounterOp::IsEmpty),
        1 => Just(CounterOp::Clear),
        1 => Just(CounterOp::Snapshot),
        1 => Just(CounterOp::Iter),
        2 => prop::option::of(0usize..6).prop_map(CounterOp::MostCommon),
        1 => Just(CounterOp::Elements),
        2 => Just(CounterOp::Total),
        3 => (0u8..4, prop::collection::btree_map(text(), amount(), 0..4))
            .prop_map(|(op, cs)| CounterOp::Combine(op, cs)),
    ]
}

/// Python's `Counter` operators on unbounded ints, then the i64 rule: a positive result
/// beyond i64 is an overflow error; non-positive results are dropped, however large.
fn python_combine(op: u8, mine: &HashMap<String, i64>, theirs: &BTreeMap<String, i64>) -> Out {
    let mut out = BTreeMap::new();
    let keys: BTreeSet<&String> = mine.keys().chain(theirs.keys()).collect();
    for k in keys {
        let a = i128::from(mine.get(k).copied().unwrap_or(0));
        let b = i128::from(theirs.get(k).copied().unwrap_or(0));
        let n = match (op, mine.contains_key(k)) {
            (0, true) => a + b,
            (0, false) | (2, false) => b,
            (1, true) => a - b,
            (1, false) => -b,
            (2, true) => a.max(b),
            (_, true) => a.min(b),
            (_, false) => 0,
        };
        if n > 0 {
            match i64::try_from(n) {
                Ok(n) => {
                    out.insert(k.clone(), n);
                }
                Err(_) => return Out::Fail(Fail::Overflow),
            }
        }
    }
    Out::Counts(out)
}

/// A counter of the same kind (blocking or async) on the same server, under another key.
trait NewLike {
    fn new_like(&self, key: String) -> Self;
}

impl NewLike for RedisCounter<String> {
    fn new_like(&self, key: String) -> Self {
        RedisCounter::new(self.redis(), key)
    }
}

impl NewLike for aio::RedisCounter<String> {
    fn new_like(&self, key: String) -> Self {
        aio::RedisCounter::new(self.redis(), key)
    }
}

#[derive(Debug, Default)]
struct CounterModel(HashMap<String, i64>);

impl CounterModel {
    /// Adds `sign * n` for each pair, all or nothing: repeats are merged first, and a merged
    /// or negated count, or a sum with a stored count, that leaves i64 is an overflow.
    fn add(&mut self, counts: impl IntoIterator<Item = (String, i64)>, sign: i64) -> Out {
        let mut merged: Vec<(String, i64)> = Vec::new();
        for (k, n) in counts {
            let Some(d) = n.checked_mul(sign) else {
                return Out::Fail(Fail::Overflow);
            };
            match merged.iter_mut().find(|(m, _)| *m == k) {
                Some((_, sum)) => match sum.checked_add(d) {
                    Some(s) => *sum = s,
                    None => return Out::Fail(Fail::Overflow),
                },
                None => merged.push((k, d)),
            }
        }
        for (k, d) in &merged {
            if self.0.get(k).is_some_and(|v| v.checked_add(*d).is_none()) {
                return Out::Fail(Fail::Overflow);
            }
        }
        for (k, d) in merged {
            *self.0.entry(k).or_insert(0) += d;
        }
        Out::Done
    }

    /// Whether `real` is a right answer to `most_common(n)`: the counts in descending order,
    /// each pair one of ours, no key twice (which of the tied keys at the cut is the library's
    /// rule, checked against its HSCAN order where it is called).
    fn most_common_ok(&self, n: Option<usize>, real: &[(String, i64)]) -> bool {
        let mut counts: Vec<i64> = self.0.values().copied().collect();
        counts.sort_by(|a, b| b.cmp(a));
        counts.truncate(n.unwrap_or(usize::MAX));
        let keys: HashSet<&String> = real.iter().map(|(k, _)| k).collect();
        real.iter().map(|(_, c)| *c).eq(counts)
            && keys.len() == real.len()
            && real.iter().all(|(k, c)| self.0.get(k) == Some(c))
    }
}

impl Model for CounterModel {
    type Op = CounterOp;

    fn snapshot() -> CounterOp {
        CounterOp::Snapshot
    }

    fn skip(&self, op: &CounterOp) -> bool {
        // elements() of huge counts would (rightly) try to hold them all.
        matches!(op, CounterOp::Elements)
            && self
                .0
                .values()
                .map(|n| i128::from((*n).max(0)))
                .sum::<i128>()
                > 10_000
    }

    fn apply(&mut self, op: &CounterOp, real: &Out) -> Out {
        let m = &mut self.0;
        match op {
            CounterOp::Get(k) => Out::Int(m.get(k).copied().unwrap_or(0)),
            CounterOp::Set(k, n) => {
                m.insert(k.clone(), *n);
                Out::Done
            }
            CounterOp::Incr(k, by) => match m.get(k).copied().unwrap_or(0).checked_add(*by) {
                Some(v) => {
                    m.insert(k.clone(), v);
                    Out::Int(v)
                }
                None => Out::Fail(Fail::Overflow),
            },
            CounterOp::Update(ks) => self.add(ks.iter().map(|k| (k.clone(), 1)), 1),
            CounterOp::UpdateCounts(cs) => self.add(cs.iter().cloned(), 1),
            CounterOp::Subtract(ks) => self.add(ks.iter().map(|k| (k.clone(), 1)), -1),
            CounterOp::SubtractCounts(cs) => self.add(cs.iter().cloned(), -1),
            CounterOp::Remove(k) => Out::Count(m.remove(k)),
            CounterOp::Len => Out::Len(m.len()),
            CounterOp::IsEmpty => Out::Bool(m.is_empty()),
            CounterOp::Clear => {
                m.clear();
                Out::Done
            }
            CounterOp::Snapshot => Out::Counts(m.clone().into_iter().collect()),
            CounterOp::Iter => Out::Pairs(sorted(m.clone().into_iter().collect())),
            CounterOp::MostCommon(n) => match real {
                Out::Pairs(r) if self.most_common_ok(*n, r) => real.clone(),
                _ => {
                    let mut all: Vec<(String, i64)> = self.0.clone().into_iter().collect();
                    all.sort_by(|(ka, a), (kb, b)| b.cmp(a).then(ka.cmp(kb)));
                    all.truncate(n.unwrap_or(usize::MAX));
                    Out::Pairs(all)
                }
            },
            CounterOp::Elements => Out::Values(sorted(
                m.iter()
                    .flat_map(|(k, n)| std::iter::repeat_n(k.clone(), (*n).max(0) as usize))
                    .collect(),
            )),
            CounterOp::Combine(op, theirs) => python_combine(*op, m, theirs),
            CounterOp::Total => {
                let sum: i128 = m.values().map(|n| i128::from(*n)).sum();
                match i64::try_from(sum) {
                    Ok(t) => Out::Int(t),
                    Err(_) => Out::Fail(Fail::Overflow),
                }
            }
        }
    }
}

/// Python's tie rule: `most_common` is the HSCAN order (the order `iter` streams) sorted
/// stably by descending count.
fn tie_rule(real: Vec<(String, i64)>, order: Vec<(String, i64)>, n: Option<usize>) -> Out {
    let mut expected = order.clone();
    expected.sort_by_key(|(_, c)| std::cmp::Reverse(*c));
    expected.truncate(n.unwrap_or(usize::MAX));
    if real == expected {
        Out::Pairs(real)
    } else {
        Out::Fail(Fail::Other(format!(
            "most_common({n:?}) = {real:?} is not the HSCAN order {order:?} sorted stably"
        )))
    }
}

macro_rules! counter_real {
    ($c:expr, $op:expr, $mode:ident) => {{
        let c = $c;
        match $op {
            CounterOp::Get(k) => out(call!($mode, c.get(k.as_str())), Out::Int),
            CounterOp::Set(k, n) => out(call!($mode, c.set(k.clone(), *n)), |()| Out::Done),
            CounterOp::Incr(k, by) => out(call!($mode, c.incr(k.as_str(), *by)), Out::Int),
            CounterOp::Update(ks) => out(call!($mode, c.update(ks.clone())), |()| Out::Done),
            CounterOp::UpdateCounts(cs) => {
                out(call!($mode, c.update_counts(cs.clone())), |()| Out::Done)
            }
            CounterOp::Subtract(ks) => out(call!($mode, c.subtract(ks.clone())), |()| Out::Done),
            CounterOp::SubtractCounts(cs) => {
                out(call!($mode, c.subtract_counts(cs.clone())), |()| Out::Done)
            }
            CounterOp::Remove(k) => out(call!($mode, c.remove(k.as_str())), Out::Count),
            CounterOp::Len => out(call!($mode, c.len()), Out::Len),
            CounterOp::IsEmpty => out(call!($mode, c.is_empty()), Out::Bool),
            CounterOp::Clear => out(call!($mode, c.clear()), |()| Out::Done),
            CounterOp::Snapshot => out(call!($mode, c.to_hash_map()), |m| {
                Out::Counts(m.into_iter().collect())
            }),
            CounterOp::Iter => out(collect!($mode, c.iter()), |v| Out::Pairs(sorted(v))),
            CounterOp::MostCommon(n) => {
                let real = call!($mode, c.most_common(*n));
                let order = collect!($mode, c.iter());
                match (real, order) {
                    (Ok(real), Ok(order)) => tie_rule(real, order, *n),
                    (Err(e), _) | (_, Err(e)) => Out::Fail(fail(e)),
                }
            }
            CounterOp::Elements => out(call!($mode, c.elements()), |v| Out::Values(sorted(v))),
            CounterOp::Total => out(call!($mode, c.total()), Out::Int),
            CounterOp::Combine(op, theirs) => {
                let other = c.new_like(unique_key("model-counter-other"));
                let result = match call!($mode, other.update_counts(theirs.clone())) {
                    Err(e) => Err(e),
                    Ok(()) => match op {
                        0 => call!($mode, c.add(&other)),
                        1 => call!($mode, c.sub(&other)),
                        2 => call!($mode, c.union(&other)),
                        _ => call!($mode, c.intersection(&other)),
                    },
                };
                let _ = call!($mode, other.clear());
                out(result, |m| Out::Counts(m.into_iter().collect()))
            }
        }
    }};
}

fn counter_blocking(c: &RedisCounter<String>, op: &CounterOp) -> Out {
    counter_real!(c, op, blocking)
}

async fn counter_async(c: &aio::RedisCounter<String>, op: &CounterOp) -> Out {
    counter_real!(c, op, aio)
}

#[test]
fn counter_blocking_matches_counting_map() {
    for (target, redis) in targets() {
        run(
            &format!("counter/{target}/blocking"),
            sequences(counter_op()),
            |ops| {
                let c = RedisCounter::new(&redis, unique_key("model-counter"));
                let r = drive(CounterModel::default(), &ops, |op| counter_blocking(&c, op));
                let _ = c.clear();
                r
            },
        );
    }
}

#[test]
fn counter_async_matches_counting_map() {
    let rt = runtime();
    for (target, redis) in targets() {
        run(
            &format!("counter/{target}/async"),
            sequences(counter_op()),
            |ops| {
                let c = aio::RedisCounter::new(&redis, unique_key("model-counter"));
                let r = drive(CounterModel::default(), &ops, |op| {
                    rt.block_on(counter_async(&c, op))
                });
                let _ = rt.block_on(c.clear());
                r
            },
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Known discrepancies: the shrunk sequences, replayed on both targets and both APIs

fn replay_list(ops: &[SeqOp]) {
    let rt = runtime();
    for (target, redis) in targets() {
        let l = RedisList::new(&redis, unique_key("model-known"));
        let r = drive(SeqModel::default(), ops, |op| list_blocking(&l, op));
        let _ = l.clear();
        r.unwrap_or_else(|e| panic!("{target}/blocking: {e}"));
        let l = aio::RedisList::new(&redis, unique_key("model-known"));
        let r = drive(SeqModel::default(), ops, |op| {
            rt.block_on(list_async(&l, op))
        });
        let _ = rt.block_on(l.clear());
        r.unwrap_or_else(|e| panic!("{target}/async: {e}"));
    }
}

fn replay_deque(ops: &[SeqOp]) {
    let rt = runtime();
    for (target, redis) in targets() {
        let d = RedisDeque::new(&redis, unique_key("model-known"));
        let r = drive(SeqModel::default(), ops, |op| deque_blocking(&d, op));
        let _ = d.clear();
        r.unwrap_or_else(|e| panic!("{target}/blocking: {e}"));
        let d = aio::RedisDeque::new(&redis, unique_key("model-known"));
        let r = drive(SeqModel::default(), ops, |op| {
            rt.block_on(deque_async(&d, op))
        });
        let _ = rt.block_on(d.clear());
        r.unwrap_or_else(|e| panic!("{target}/async: {e}"));
    }
}

/// Found by this suite: `deque_rotate.lua` read n as a Lua double, so `|n| > 2^53` rotated by a
/// rounded amount (`[ExtendFront(["", "1"]), Rotate(2^53 + 1)]` left `["1", ""]`).
#[test]
fn rotate_beyond_2_pow_53() {
    replay_deque(&[
        SeqOp::ExtendFront(vec![String::new(), "1".into()]),
        SeqOp::Rotate((1 << 53) + 1),
    ]);
}

/// Found by this suite: `lrange_bounds` computed `isize::MIN - 1` (a panic in debug builds, the
/// whole list in release builds); Python's `l[:-huge]` is `[]`.
#[test]
fn slice_to_excluded_isize_min() {
    replay_list(&[SeqOp::Slice(Bound::Unbounded, Bound::Excluded(isize::MIN))]);
}

// ---------------------------------------------------------------------------------------------
// The same sequences through Python pottery 3.0.1: the stored bytes must be the same

/// Sequences per structure replayed through Python pottery (one Python process for all).
const PYTHON_SEQUENCES: usize = 40;

/// Draws `n` sequences from `ops` with the fixed seed of `name` (no shrinking here: a
/// divergence prints the whole sequence).
fn draw<S: Strategy>(name: &str, ops: S, n: usize) -> Vec<Vec<S::Value>> {
    use proptest::strategy::ValueTree;
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed(name));
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    let strategy = sequences(ops);
    (0..n)
        .map(|_| {
            strategy
                .new_tree(&mut runner)
                .expect("a sequence")
                .current()
        })
        .collect()
}

/// What Python pottery runs for one operation, or `None` for an operation that changes
/// nothing stored or that Python pottery gets wrong (its known bugs, §9 of the compatibility
/// notes): then it is left out on both sides. Each Python call that raises is ignored; the
/// byte comparison at the end tells whether Rust then also left the data unchanged.
fn py_dict(op: &DictOp) -> Option<serde_json::Value> {
    use serde_json::json;
    Some(match op {
        DictOp::Insert(k, v) | DictOp::Set(k, v) => json!(["setitem", k, v]),
        DictOp::Remove(k) => json!(["pop", k]),
        DictOp::Extend(items) if !items.is_empty() => json!(["update", items]),
        DictOp::Clear => json!(["clear"]),
        _ => return None,
    })
}

fn py_set(op: &SetOp) -> Option<serde_json::Value> {
    use serde_json::json;
    Some(match op {
        SetOp::Insert(v) => json!(["add", v]),
        SetOp::Remove(v) => json!(["discard", v]),
        SetOp::Extend(vs) => json!(["update", vs]),
        SetOp::Clear => json!(["clear"]),
        _ => return None,
    })
}

fn py_seq(op: &SeqOp) -> Option<serde_json::Value> {
    use serde_json::json;
    Some(match op {
        SeqOp::Push(v) => json!(["append", v]),
        SeqOp::Pop => json!(["pop"]),
        // pottery's extend([]) sends an argument-less RPUSH (bug 4).
        SeqOp::Extend(vs) if !vs.is_empty() => json!(["extend", vs]),
        // pottery's insert with a negative index pushes to the front (bug 3): Python's own
        // rule is applied to the index first.
        SeqOp::Insert(i, v) => json!(["insert", i, v]),
        // pottery hands the index to LSET unchecked, and servers differ far out of range:
        // Valkey 9.1 takes `LSET k 4294967296 v` and `LSET k -9223372036854775808 v` as index
        // 0 of a short list, where Redis 7.0 says out of range (the index is truncated).
        // pottery-rs checks the index itself, in its script, and is not affected.
        SeqOp::Set(i, v) if i.unsigned_abs() < 1 << 20 => json!(["setitem", i, v]),
        // `del x[i]`: Python's deque has no pop(i) (pottery's RedisDeque.pop takes none).
        SeqOp::Remove(i) if i.unsigned_abs() < 1 << 20 => json!(["popi", i]),
        SeqOp::RemoveValue(v) => json!(["remove", v]),
        SeqOp::Clear => json!(["clear"]),
        SeqOp::Reverse => json!(["reverse"]),
        SeqOp::PushFront(v) => json!(["appendleft", v]),
        SeqOp::PopFront => json!(["popleft"]),
        SeqOp::ExtendFront(vs) if !vs.is_empty() => json!(["extendleft", vs]),
        // pottery's rotate is wrong for |n| > len (bug 6): n is reduced modulo len first.
        SeqOp::Rotate(n) => json!(["rotate", n]),
        _ => return None,
    })
}

fn py_counter(op: &CounterOp) -> Option<serde_json::Value> {
    use serde_json::json;
    // update/subtract with an iterable double-count (bug 1): the mapping form, key by key.
    Some(match op {
        CounterOp::Set(k, n) => json!(["setitem", k, n]),
        CounterOp::Incr(k, n) => json!(["incr", k, n]),
        CounterOp::Update(ks) => json!(["counts", ks.iter().map(|k| (k, 1)).collect::<Vec<_>>()]),
        CounterOp::UpdateCounts(cs) => json!(["counts", cs]),
        CounterOp::Subtract(ks) => {
            json!(["counts", ks.iter().map(|k| (k, -1)).collect::<Vec<_>>()])
        }
        CounterOp::SubtractCounts(cs) => {
            json!([
                "counts",
                cs.iter().map(|(k, n)| (k, -n)).collect::<Vec<_>>()
            ])
        }
        CounterOp::Remove(k) => json!(["delitem", k]),
        CounterOp::Clear => json!(["clear"]),
        _ => return None,
    })
}

/// Counter amounts within ±2^40, so that no sum of a sequence leaves i64 (where Python's
/// integers keep going and pottery-rs refuses the write).
fn tame(op: CounterOp) -> CounterOp {
    let t = |n: i64| n.clamp(-(1 << 40), 1 << 40);
    let ts = |cs: Vec<(String, i64)>| cs.into_iter().map(|(k, n)| (k, t(n))).collect();
    match op {
        CounterOp::Set(k, n) => CounterOp::Set(k, t(n)),
        CounterOp::Incr(k, n) => CounterOp::Incr(k, t(n)),
        CounterOp::UpdateCounts(cs) => CounterOp::UpdateCounts(ts(cs)),
        CounterOp::SubtractCounts(cs) => CounterOp::SubtractCounts(ts(cs)),
        other => other,
    }
}

const PY_REPLAY: &str = r#"
import json, os, sys
from redis import Redis
from pottery import RedisDict, RedisSet, RedisList, RedisDeque, RedisCounter
redis = Redis.from_url(os.environ['REDIS_URL'])
for line in sys.stdin:
    job = json.loads(line)
    kind, key = job['kind'], job['key']
    if kind == 'dict': x = RedisDict(redis=redis, key=key)
    elif kind == 'set': x = RedisSet(redis=redis, key=key)
    elif kind == 'list': x = RedisList(redis=redis, key=key)
    elif kind == 'deque': x = RedisDeque(redis=redis, key=key, maxlen=job['maxlen'])
    else: x = RedisCounter(redis=redis, key=key)
    for op in job['ops']:
        name, args = op[0], op[1:]
        try:
            if name == 'setitem': x[args[0]] = args[1]
            elif name == 'pop' and kind == 'dict': x.pop(args[0], None)
            elif name == 'update' and kind == 'dict': x.update(dict(args[0]))
            elif name == 'update': x.update(args[0])
            elif name == 'clear': x.clear()
            elif name == 'add': x.add(args[0])
            elif name == 'discard': x.discard(args[0])
            elif name == 'append': x.append(args[0])
            elif name == 'pop':
                if len(x): x.pop()
            elif name == 'extend': x.extend(args[0])
            elif name == 'insert':
                i = args[0]
                x.insert(max(0, i + len(x)) if i < 0 else i, args[1])
            elif name == 'popi':
                i = args[0]
                if -len(x) <= i < len(x): del x[i]
            elif name == 'remove': x.remove(args[0])
            elif name == 'reverse': x.reverse()
            elif name == 'appendleft': x.appendleft(args[0])
            elif name == 'popleft':
                if len(x): x.popleft()
            elif name == 'extendleft': x.extendleft(args[0])
            elif name == 'rotate':
                if len(x): x.rotate(args[0] % len(x))
            elif name == 'incr': x[args[0]] += args[1]
            elif name == 'counts':
                for k, n in args[0]: x.update({k: n})
            elif name == 'delitem': del x[args[0]]
            else: raise SystemExit('unknown op ' + name)
        except SystemExit:
            raise
        except Exception:
            pass
print('done')
"#;

/// The stored bytes of `key`, whatever its type (sorted where Redis has no order).
fn raw_contents(conn: &mut pottery::PooledConnection, key: &str) -> Vec<Vec<u8>> {
    use redis::Commands;
    let kind: String = redis::cmd("TYPE").arg(key).query(conn).unwrap();
    let mut out: Vec<Vec<u8>> = match kind.as_str() {
        "none" => Vec::new(),
        "hash" => {
            let m: HashMap<Vec<u8>, Vec<u8>> = conn.hgetall(key).unwrap();
            m.into_iter()
                .flat_map(|(f, v)| [[f.clone(), b"=".to_vec(), v].concat()])
                .collect()
        }
        "set" => conn.smembers(key).unwrap(),
        "list" => return conn.lrange(key, 0, -1).unwrap(),
        other => panic!("{key} is a {other}"),
    };
    out.sort();
    out
}

#[test]
fn python_pottery_stores_the_same_bytes_for_the_same_sequences() {
    let server = pottery::testing::shared_server();
    let redis = server.redis();
    let mut jobs = Vec::new();
    let mut ours = Vec::new();
    let mut record = |kind: &str,
                      maxlen: Option<usize>,
                      ops: Vec<serde_json::Value>,
                      key: String| {
        let py_key = format!("{key}:py");
        jobs.push(serde_json::json!({"kind": kind, "key": py_key, "maxlen": maxlen, "ops": ops}));
        ours.push((key, py_key));
    };
    for ops in draw("python/dict", dict_op(), PYTHON_SEQUENCES) {
        let d = RedisDict::new(&redis, unique_key("py-model-dict"));
        let ops: Vec<_> = ops.iter().filter(|op| py_dict(op).is_some()).collect();
        ops.iter().for_each(|op| drop(dict_blocking(&d, op)));
        record(
            "dict",
            None,
            ops.iter().filter_map(|op| py_dict(op)).collect(),
            d.key().into(),
        );
    }
    for ops in draw("python/set", set_op(), PYTHON_SEQUENCES) {
        let s = RedisSet::new(&redis, unique_key("py-model-set"));
        let ops: Vec<_> = ops.iter().filter(|op| py_set(op).is_some()).collect();
        for op in &ops {
            match op {
                SetOp::Insert(v) => drop(s.insert(v.clone())),
                SetOp::Remove(v) => drop(s.remove(v.as_str())),
                SetOp::Extend(vs) => drop(s.extend(vs.clone())),
                SetOp::Clear => drop(s.clear()),
                _ => unreachable!(),
            }
        }
        record(
            "set",
            None,
            ops.iter().filter_map(|op| py_set(op)).collect(),
            s.key().into(),
        );
    }
    for ops in draw("python/list", list_op(), PYTHON_SEQUENCES) {
        let l = RedisList::new(&redis, unique_key("py-model-list"));
        let ops: Vec<_> = ops.iter().filter(|op| py_seq(op).is_some()).collect();
        ops.iter().for_each(|op| drop(list_blocking(&l, op)));
        record(
            "list",
            None,
            ops.iter().filter_map(|op| py_seq(op)).collect(),
            l.key().into(),
        );
    }
    for (i, ops) in draw("python/deque", deque_op(), PYTHON_SEQUENCES)
        .into_iter()
        .enumerate()
    {
        // Unbounded, and maxlen 1 to 5 (maxlen 0 is pottery's bug 5).
        let maxlen = (i % 6 != 0).then_some(i % 6);
        let key = unique_key("py-model-deque");
        let q = match maxlen {
            Some(m) => RedisDeque::with_maxlen(&redis, key, m).unwrap(),
            None => RedisDeque::new(&redis, key),
        };
        let ops: Vec<_> = ops.iter().filter(|op| py_seq(op).is_some()).collect();
        ops.iter().for_each(|op| drop(deque_blocking(&q, op)));
        record(
            "deque",
            maxlen,
            ops.iter().filter_map(|op| py_seq(op)).collect(),
            q.key().into(),
        );
    }
    for ops in draw("python/counter", counter_op(), PYTHON_SEQUENCES) {
        let c = RedisCounter::new(&redis, unique_key("py-model-counter"));
        let ops: Vec<CounterOp> = ops
            .into_iter()
            .map(tame)
            .filter(|op| py_counter(op).is_some())
            .collect();
        ops.iter().for_each(|op| drop(counter_blocking(&c, op)));
        record(
            "counter",
            None,
            ops.iter().filter_map(py_counter).collect(),
            c.key().into(),
        );
    }
    let input: String = jobs.iter().map(|j| format!("{j}\n")).collect();
    let out = pottery_tests::run_python(PY_REPLAY, &server.url(), &input);
    assert_eq!(out.trim(), "done");
    let mut conn = redis.connection().unwrap();
    let (mut compared, mut ops) = (0, 0);
    for ((ours, theirs), job) in ours.iter().zip(&jobs) {
        let (a, b) = (
            raw_contents(&mut conn, ours),
            raw_contents(&mut conn, theirs),
        );
        assert!(
            a == b,
            "pottery-rs and Python pottery stored different bytes after {job}:\nours:   {:?}\npython: {:?}",
            a.iter()
                .map(|x| String::from_utf8_lossy(x))
                .collect::<Vec<_>>(),
            b.iter()
                .map(|x| String::from_utf8_lossy(x))
                .collect::<Vec<_>>(),
        );
        compared += 1;
        ops += job["ops"].as_array().map_or(0, Vec::len);
        let _: () = redis::cmd("DEL")
            .arg(ours)
            .arg(theirs)
            .query(&mut conn)
            .unwrap();
    }
    eprintln!("python replay: {compared} sequences, {ops} writes, byte-identical");
}
