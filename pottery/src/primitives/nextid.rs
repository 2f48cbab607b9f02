//! NextId: distributed, monotonically increasing ids over N masters, wire-compatible with
//! pottery's `NextID` (antirez's algorithm), with in-process group commit.
//!
//! # Why ids never repeat
//! Every write to `nextid:<key>`, by this library or by Python pottery, only ever raises the
//! value on a master. A round of ours (the `nextid_claim` script) sets each master to
//! `max(current, base) + k` and returns the new value `N`; it owns the ids `(N − k, N]` only
//! when a majority of masters returned the same `N`. Take two successful rounds `A` and `B`:
//! their majorities share a master `m`. Say `m` ran `A` first; then `m` held at least `N_A` when
//! it ran `B`, so `N_B − k_B ≥ N_A`: `B`'s ids lie above all of `A`'s. pottery's round (read the
//! largest value `v` of a majority, store `v + 1` where the value is below it, own `v + 1` when a
//! majority stored it) meets ours the same way: on the shared master, whichever ran second saw
//! the other's value and lies above it. Nothing else is assumed — not the base a caller sends
//! (any base is safe), not the number of handles, threads or processes — except that a master
//! keeps what it acknowledged: one restarted without its data (no AOF with `appendfsync
//! always`) can forget a value and break the argument, as it does for pottery.
//!
//! # Why a caller's ids increase
//! A handle's later round is sent after its earlier round was applied on a majority, so the
//! shared master runs them in that order.
//!
//! # Liveness
//! Callers of one handle share rounds (group commit): one caller at a time leads a round that
//! claims an id for every caller waiting, then hands the lead to the next waiter (so nobody
//! leads forever). A round whose majority disagreed (another process's round interleaved, a
//! master lagging) is retried at once with the largest value seen, then with a jittered backoff,
//! until an id is had or the handle's `timeout` passes.
//!
#![doc = include_str!("../guide/nextid.md")]

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use redis::Value;
use tokio::sync::oneshot;

use super::{as_redis_error, echo, fan_out, is_transient, names, quorum};
use crate::client::Redis;
use crate::codec::CodecError;
use crate::error::{Error, Result};
use crate::exec::plan::{Op, script};
use crate::exec::rt;
use crate::sync::lock;

script!(CLAIM, "nextid_claim.lua", Once);

/// Key prefix, as pottery.
pub const KEY_PREFIX: &str = "nextid";
const STRING: &str = "string";
/// The largest id: ids are `u64`s that fit a Redis integer.
const MAX_ID: u64 = i64::MAX as u64;

fn claim_reply(key: &str, v: Value) -> Result<u64> {
    let bytes = match v {
        Value::BulkString(b) => b,
        Value::SimpleString(s) => s.into_bytes(),
        Value::Int(n) => n.to_string().into_bytes(),
        other => {
            return Err(Error::codec(
                key,
                CodecError::new(format!("unexpected reply to an id claim: {other:?}")),
            ));
        }
    };
    std::str::from_utf8(&bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            Error::codec(
                key,
                CodecError::new(format!(
                    "not a decimal id: {:?}",
                    String::from_utf8_lossy(&bytes)
                )),
            )
        })
}

/// A script's refusal, as the error it stands for.
fn refusal(key: &str, e: Error) -> Error {
    let code = match &e {
        Error::Redis { source, .. } => source.code().map(str::to_owned),
        _ => None,
    };
    match code.as_deref() {
        Some("NOTANID") => Error::codec(
            key,
            CodecError::new(
                "the counter holds a value that is not an id (a decimal integer from 0 to 2^63-1)",
            ),
        ),
        Some("EXHAUSTED") => Error::codec(
            key,
            CodecError::new("the counter is at 2^63-1: no ids are left"),
        ),
        _ => e,
    }
}

/// How one leader's turn at the queue ended for a waiter.
enum Msg {
    /// Your id (or the round's error).
    Id(Result<u64>),
    /// Lead the next round.
    Lead,
}

/// Callers waiting for an id, and whether one of them is leading a round.
#[derive(Default)]
struct Waiting {
    queue: VecDeque<oneshot::Sender<Msg>>,
    leader: bool,
}

#[derive(Clone)]
pub(crate) struct Core {
    key: String,
    masters: Vec<Redis>,
    num_tries: Option<u32>,
    timeout: Duration,
    master_timeout: Duration,
    raise_on_redis_errors: bool,
    shared: Arc<Shared>,
}

/// What callers of one handle (and its clones) share.
#[derive(Default)]
struct Shared {
    waiting: Mutex<Waiting>,
}

enum Round {
    /// The first id of the claimed range.
    Got(u64),
    /// The majority did not agree; try again from this base (the largest value seen).
    Retry(u64),
    /// Too many masters failed.
    Unreachable(Vec<Error>),
}

impl Core {
    fn waiting(&self) -> MutexGuard<'_, Waiting> {
        lock(&self.shared.waiting)
    }

    fn not_achieved(&self) -> Error {
        Error::QuorumNotAchieved {
            key: self.key.clone(),
            masters: names(&self.masters),
        }
    }

    fn check(&self) -> Result<()> {
        let problem = if self.masters.is_empty() {
            Some("no masters")
        } else if self.master_timeout.is_zero() {
            Some("master_timeout is zero")
        } else {
            None
        };
        crate::primitives::refuse_settings("NextId", &self.key, problem)
    }

    /// One round for `k` ids from `base`: the claim script on every master at once, settled
    /// when a majority returned one value or can no longer.
    async fn round(&self, k: u64, base: u64) -> Result<Round> {
        crate::observe::event!(ids = k, "NextId: a round");
        let (n, q) = (self.masters.len(), quorum(self.masters.len()));
        let top = match base.checked_add(k) {
            Some(top) if top <= MAX_ID => top,
            _ => {
                return Err(Error::codec(
                    &self.key,
                    CodecError::new("the counter is at 2^63-1: no ids are left"),
                ));
            }
        };
        let args = vec![
            base.to_string().into_bytes(),
            top.to_string().into_bytes(),
            k.to_string().into_bytes(),
        ];
        let mut fanout = fan_out(
            &self.masters,
            self.master_timeout,
            |_| {
                Op::eval(
                    &self.key,
                    STRING,
                    &CLAIM,
                    vec![self.key.clone().into_bytes()],
                    args.clone(),
                    claim_reply,
                )
            },
            |f| {
                let best = f
                    .replies
                    .iter()
                    .map(|v| f.count(|w| w == v))
                    .max()
                    .unwrap_or(0);
                best >= q || best + f.pending < q
            },
        )
        .await;
        if let Some(&last) = fanout
            .replies
            .iter()
            .find(|v| fanout.count(|w| w == *v) >= q)
        {
            // The script returns at least base + k; anything less is not its reply.
            return match k.checked_sub(1).and_then(|j| last.checked_sub(j)) {
                Some(first) => Ok(Round::Got(first)),
                None => Err(Error::codec(
                    &self.key,
                    CodecError::new(format!(
                        "a majority returned {last}, below the {k} ids claimed"
                    )),
                )),
            };
        }
        fanout.errors = fanout
            .errors
            .into_iter()
            .map(|e| refusal(&self.key, e))
            .collect();
        if let Some(e) = fanout.permanent_failure(n, q) {
            return Err(e);
        }
        if fanout.unreachable(n, q) {
            return Ok(Round::Unreachable(fanout.errors));
        }
        Ok(Round::Retry(
            fanout.replies.iter().copied().max().unwrap_or(base),
        ))
    }

    /// `k` consecutive ids: rounds until one succeeds, `num_tries` rounds were made, or
    /// `timeout` passed. A round starts from base 0 (each master adds `k` to what it holds:
    /// masters in step agree at once, and a sequence reset starts again from 1, as pottery's
    /// does); after a disagreement it starts from the largest value seen, which brings every
    /// master to one value. The first retry is immediate; later ones wait a random, growing
    /// pause.
    async fn ids(&self, k: u64) -> Result<u64> {
        self.check()?;
        let deadline = Instant::now() + self.timeout;
        let mut base = 0;
        for attempt in 0u32.. {
            match self.round(k, base).await? {
                Round::Got(first) => return Ok(first),
                Round::Retry(seen) => base = base.max(seen),
                Round::Unreachable(errors) if self.raise_on_redis_errors => {
                    return Err(self.impossible(&errors));
                }
                Round::Unreachable(_) => {}
            }
            let now = Instant::now();
            if self.num_tries.is_some_and(|n| attempt + 1 >= n) || now >= deadline {
                break;
            }
            if attempt > 0 {
                let cap = 2u64.saturating_pow(attempt.min(16)).min(100);
                let pause = Duration::from_millis(crate::exec::jitter::between(0, cap));
                tokio::time::sleep(pause.min(deadline - now)).await;
            }
        }
        Err(self.not_achieved())
    }

    fn impossible(&self, errors: &[Error]) -> Error {
        Error::QuorumIsImpossible {
            key: self.key.clone(),
            masters: names(&self.masters),
            errors: errors.iter().map(as_redis_error).collect(),
        }
    }

    /// The next id. Callers of this handle share rounds: the one that finds nobody leading
    /// leads a round for itself and everybody queued, hands out the ids in queue order, and
    /// passes the lead to the next caller waiting.
    async fn next_id(&self) -> Result<u64> {
        let span = crate::observe::operation(self.masters.first(), "NextId.next_id", &self.key);
        let result = crate::observe::instrument(&span, self.next_id_in_span()).await;
        crate::observe::finish(&span, &result);
        result
    }

    /// [`Core::next_id`], in its span.
    async fn next_id_in_span(&self) -> Result<u64> {
        loop {
            let (tx, rx) = oneshot::channel();
            let lead = {
                let mut w = self.waiting();
                if w.leader {
                    w.queue.push_back(tx);
                    false
                } else {
                    w.leader = true;
                    true
                }
            };
            if !lead {
                match rx.await {
                    Ok(Msg::Id(id)) => return id,
                    Ok(Msg::Lead) => {}
                    // The leader's future was dropped with our place in its round: queue again.
                    Err(_) => continue,
                }
            }
            // Leading. Whatever happens to this future, the lead passes on.
            let _handover = Handover(self);
            let batch = std::mem::take(&mut self.waiting().queue);
            let k = 1 + batch.len() as u64;
            let result = self.ids(k).await;
            for (i, waiter) in batch.into_iter().enumerate() {
                let theirs = match &result {
                    Ok(first) => Ok(first + 1 + i as u64),
                    Err(e) => Err(echo(e)),
                };
                let _ = waiter.send(Msg::Id(theirs));
            }
            return result;
        }
    }

    async fn reset(&self) -> Result<()> {
        self.check()?;
        let mut fanout = fan_out(
            &self.masters,
            self.master_timeout,
            |_| {
                let mut cmd = redis::cmd("DEL");
                cmd.arg(&self.key);
                Op::cmd(&self.key, STRING, cmd, |_, _| Ok(()))
            },
            |_| false,
        )
        .await;
        // As pottery: every master must forget the sequence.
        if fanout.replies.len() == self.masters.len() {
            return Ok(());
        }
        let n = self.masters.len();
        if let Some(e) = fanout.permanent_failure(n, n) {
            return Err(e);
        }
        if self.raise_on_redis_errors && fanout.errors.iter().all(is_transient) {
            return Err(self.impossible(&fanout.errors));
        }
        Err(self.not_achieved())
    }
}

/// Passes the lead to the next waiting caller (or frees it) when the leader is done or its
/// future is dropped.
struct Handover<'a>(&'a Core);

impl Drop for Handover<'_> {
    fn drop(&mut self) {
        let mut w = self.0.waiting();
        while let Some(next) = w.queue.pop_front() {
            if next.send(Msg::Lead).is_ok() {
                return;
            }
        }
        w.leader = false;
    }
}

macro_rules! builder_methods {
    () => {
        /// At most this many rounds for one id, as pottery's `num_tries` (default: no limit
        /// but the [`timeout`](Self::timeout)).
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// let ids = pottery::NextId::new("doc-tries", [redis]).num_tries(3);
        /// # let _ = ids;
        /// ```
        pub fn num_tries(self, n: u32) -> Self {
            self.with(|c| c.num_tries = Some(n))
        }

        /// How long one call may keep trying while other processes contend or masters are
        /// down (default 5 s); then [`Error::QuorumNotAchieved`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// let ids = pottery::NextId::new("doc-id-timeout", [redis])
        ///     .timeout(std::time::Duration::from_secs(1));
        /// # let _ = ids;
        /// ```
        pub fn timeout(self, timeout: Duration) -> Self {
            self.with(|c| c.timeout = timeout)
        }

        /// How long one master may take to answer (default 500 ms).
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// let ids = pottery::NextId::new("doc-id-mt", [redis])
        ///     .master_timeout(std::time::Duration::from_millis(200));
        /// # let _ = ids;
        /// ```
        pub fn master_timeout(self, timeout: Duration) -> Self {
            self.with(|c| c.master_timeout = timeout)
        }

        /// Fail with [`Error::QuorumIsImpossible`] as soon as more than half the masters fail.
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// let ids = pottery::NextId::new("doc-id-raise", [redis]).raise_on_redis_errors(true);
        /// # let _ = ids;
        /// ```
        pub fn raise_on_redis_errors(self, raise: bool) -> Self {
            self.with(|c| c.raise_on_redis_errors = raise)
        }

        fn with(self, f: impl FnOnce(&mut Core)) -> Self {
            let mut core = Arc::unwrap_or_clone(self.core);
            f(&mut core);
            Self {
                core: Arc::new(core),
            }
        }

        /// The Redis key: `nextid:<key>`.
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// assert_eq!(pottery::NextId::new("current", [redis]).key(), "nextid:current");
        /// ```
        pub fn key(&self) -> &str {
            &self.core.key
        }
    };
}

fn new_core(key: &str, masters: impl IntoIterator<Item = Redis>) -> Core {
    Core {
        key: format!("{KEY_PREFIX}:{key}"),
        masters: masters.into_iter().collect(),
        num_tries: None,
        timeout: Duration::from_secs(5),
        master_timeout: Duration::from_millis(500),
        raise_on_redis_errors: false,
        shared: Arc::default(),
    }
}

/// Distributed ids that only go up: pottery's `NextID`, over one or many masters.
///
/// The last id lives in `nextid:<key>` (default key `current`, so `nextid:current`) on every
/// master as a decimal string, and Python pottery processes can share the sequence. Ids are
/// unique across every handle, thread, task and process using the key, increase for each
/// caller, may have gaps, and go up to 2⁶³ − 1. One round trip per id when the masters agree;
/// threads and tasks of one handle that ask at once share a round. Share one handle (it is
/// cheap to clone, and clones share rounds); several handles, in one process or many, are
/// safe too — they contend, and retry until their `timeout`.
///
/// Masters must keep what they acknowledged: restart a crashed master from an AOF written
/// with `appendfsync always`, or keep it out for longer than callers take to notice.
///
/// ```
/// # let redis = pottery::testing::doctest_redis();
/// let mut tweet_ids = pottery::NextId::new("tweet-ids-doc", [redis]);
/// # tweet_ids.reset()?;
/// assert_eq!(tweet_ids.next_id()?, 1);
/// assert_eq!(tweet_ids.next_id()?, 2);
/// let more: Vec<u64> = tweet_ids.by_ref().take(3).collect::<Result<_, _>>()?;
/// assert_eq!(more, [3, 4, 5]);
/// # Ok::<(), pottery::Error>(())
/// ```
#[derive(Clone)]
pub struct NextId {
    core: Arc<Core>,
}

impl fmt::Debug for NextId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NextId")
            .field("key", &self.core.key)
            .field("masters", &names(&self.core.masters))
            .finish()
    }
}

impl NextId {
    /// Ids at `nextid:<key>` over these masters (no I/O).
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// assert_eq!(pottery::NextId::new("current", [redis]).key(), "nextid:current");
    /// ```
    pub fn new(key: &str, masters: impl IntoIterator<Item = Redis>) -> Self {
        NextId {
            core: Arc::new(new_core(key, masters)),
        }
    }

    builder_methods!();

    /// The async twin (sharing rounds with this handle).
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// let ids = pottery::NextId::new("current", [redis]);
    /// assert_eq!(ids.to_async().key(), ids.key());
    /// ```
    pub fn to_async(&self) -> aio::NextId {
        aio::NextId {
            core: Arc::clone(&self.core),
        }
    }

    /// The next id. [`Error::QuorumNotAchieved`] when no majority agreed within `timeout`
    /// (or `num_tries` rounds) — masters down, or contention that outlasted it;
    /// [`Error::QuorumIsImpossible`] at once when masters fail and `raise_on_redis_errors` is
    /// set; [`Error::Codec`] naming the key when a master's counter is not an id.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let ids = pottery::NextId::new("doc-next", [redis]);
    /// let a = ids.next_id()?;
    /// assert!(ids.next_id()? > a);
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn next_id(&self) -> Result<u64> {
        rt::block_on(self.core.next_id())
    }

    /// Deletes the sequence on every master (all must succeed, as in pottery): the next id of
    /// any handle is 1.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let ids = pottery::NextId::new("doc-reset", [redis]);
    /// ids.next_id()?;
    /// ids.reset()?;
    /// assert_eq!(ids.next_id()?, 1);
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn reset(&self) -> Result<()> {
        rt::block_on(self.core.reset())
    }
}

/// Endless ids, each a `Result` (like Python's `next(ids)`).
impl Iterator for NextId {
    type Item = Result<u64>;
    fn next(&mut self) -> Option<Result<u64>> {
        Some(self.next_id())
    }
}

/// The async twin: [`aio::NextId`](crate::aio::NextId).
pub mod aio {
    use super::*;

    /// Async [`NextId`](crate::NextId); its futures are `Send` and `'static` on an owned
    /// clone, and may be dropped at any await point (a round in flight passes to the next
    /// caller).
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let ids = pottery::aio::NextId::new("doc-async-ids", [redis]);
    /// ids.reset().await?;
    /// assert_eq!(ids.next_id().await?, 1);
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    #[derive(Clone)]
    pub struct NextId {
        pub(super) core: Arc<Core>,
    }

    impl fmt::Debug for NextId {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("aio::NextId")
                .field("key", &self.core.key)
                .finish()
        }
    }

    impl NextId {
        /// Ids at `nextid:<key>` over these masters (no I/O).
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// assert_eq!(pottery::aio::NextId::new("current", [redis]).key(), "nextid:current");
        /// ```
        pub fn new(key: &str, masters: impl IntoIterator<Item = Redis>) -> Self {
            crate::NextId::new(key, masters).to_async()
        }

        builder_methods!();

        /// See [`crate::NextId::next_id`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// # let ids = pottery::aio::NextId::new("doc-anext", [redis]);
        /// let a = ids.next_id().await?;
        /// assert!(ids.next_id().await? > a);
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub async fn next_id(&self) -> Result<u64> {
            self.core.next_id().await
        }

        /// See [`crate::NextId::reset`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// # let ids = pottery::aio::NextId::new("doc-areset", [redis]);
        /// ids.reset().await?;
        /// assert_eq!(ids.next_id().await?, 1);
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub async fn reset(&self) -> Result<()> {
            self.core.reset().await
        }
    }
}
