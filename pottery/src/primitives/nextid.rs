//! NextId: distributed, monotonically increasing ids over N masters, wire-compatible with
//! pottery's `NextID` (antirez's algorithm), with in-process group commit.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use redis::Value;
use tokio::sync::oneshot;

use super::{Fanout, fan_out, names, quorum};
use crate::error::{Error, Result};
use crate::op::{Op, script};
use crate::redis::Redis;
use crate::rt;

script!(SET_ID, "nextid_set.lua");
script!(ADVANCE, "nextid_advance.lua");

/// Key prefix, as pottery.
pub const KEY_PREFIX: &str = "nextid";
const STRING: &str = "string";

fn current_value(key: &str, v: Value) -> Result<u64> {
    match crate::collections::bulk(key, v)? {
        None => Ok(0),
        Some(b) => std::str::from_utf8(&b)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| {
                Error::codec(
                    key,
                    crate::codec::CodecError::new(format!(
                        "not a decimal id: {:?}",
                        String::from_utf8_lossy(&b)
                    )),
                )
            }),
    }
}

fn set_reply(_: &str, v: Value) -> Result<Option<u64>> {
    Ok(match v {
        Value::Int(n) => u64::try_from(n).ok(),
        _ => None,
    })
}

/// Callers waiting for an id, and whether one of them is running a round for all.
#[derive(Default)]
struct Waiting {
    queue: Vec<oneshot::Sender<Result<u64>>>,
    leader: bool,
}

pub(crate) struct Core {
    key: String,
    masters: Vec<Redis>,
    num_tries: u32,
    master_timeout: Duration,
    raise_on_redis_errors: bool,
    waiting: Mutex<Waiting>,
    /// The last id this process stored on a majority (0: none yet). A round first tries to
    /// compare-and-set from it directly — one round trip instead of two — and falls back to
    /// pottery's GET-then-set when another process has moved on.
    last: AtomicU64,
}

impl Core {
    fn check_masters_up<T>(&self, fanout: &Fanout<T>) -> Result<()> {
        if self.raise_on_redis_errors && fanout.errors.len() > self.masters.len() / 2 {
            return Err(Error::QuorumIsImpossible {
                key: self.key.clone(),
                masters: names(&self.masters),
                errors: fanout.errors.clone(),
            });
        }
        Ok(())
    }

    fn not_achieved(&self) -> Error {
        Error::QuorumNotAchieved {
            key: self.key.clone(),
            masters: names(&self.masters),
        }
    }

    /// One try of pottery's algorithm for `k` ids at once: the largest current value among a
    /// majority, then a compare-and-set of `current + k` on a majority. Returns the first id.
    async fn round(&self, k: u64) -> Result<Option<u64>> {
        let cached = self.last.load(Ordering::SeqCst);
        if cached > 0 {
            let (set, last) = self.compare_and_set(cached, k, true).await?;
            if set.yes.len() >= quorum(self.masters.len()) {
                self.last.store(last, Ordering::SeqCst);
                return Ok(Some(cached + 1));
            }
        }
        let n = self.masters.len();
        let got = fan_out(
            &self.masters,
            self.master_timeout,
            |_| {
                let mut cmd = redis::cmd("GET");
                cmd.arg(&self.key);
                Op::cmd(&self.key, STRING, cmd, current_value)
            },
            |_| true,
            Some(quorum(n)),
        )
        .await;
        if got.yes.len() < quorum(n) {
            self.check_masters_up(&got)?;
            return Ok(None);
        }
        let current = got.yes.iter().copied().max().unwrap_or(0);
        let (set, last) = self.compare_and_set(current, k, false).await?;
        if set.yes.len() >= quorum(n) {
            self.last.store(last, Ordering::SeqCst);
            return Ok(Some(current + 1));
        }
        self.check_masters_up(&set)?;
        Ok(None)
    }

    /// Stores `current + k` on every master where the value is smaller (pottery's script), or
    /// with `exact` only where it is exactly `current` (the fast path).
    async fn compare_and_set(
        &self,
        current: u64,
        k: u64,
        exact: bool,
    ) -> Result<(Fanout<Option<u64>>, u64)> {
        let last = current.checked_add(k).ok_or_else(|| self.not_achieved())?;
        let (script, args) = if exact {
            (
                &ADVANCE,
                vec![
                    current.to_string().into_bytes(),
                    last.to_string().into_bytes(),
                ],
            )
        } else {
            (&SET_ID, vec![last.to_string().into_bytes()])
        };
        let set = fan_out(
            &self.masters,
            self.master_timeout,
            |_| {
                Op::eval(
                    &self.key,
                    STRING,
                    script,
                    vec![self.key.clone().into_bytes()],
                    args.clone(),
                    set_reply,
                )
            },
            |v| *v == Some(last),
            Some(quorum(self.masters.len())),
        )
        .await;
        Ok((set, last))
    }

    /// `k` ids, trying `num_tries` times with a jittered, growing pause between tries.
    async fn ids(&self, k: u64) -> Result<u64> {
        for attempt in 0..self.num_tries.max(1) {
            if let Some(first) = self.round(k).await? {
                return Ok(first);
            }
            let cap = 2u64.saturating_pow(attempt).saturating_mul(5).min(200);
            let pause = rand::rng().random_range(0..=cap);
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        Err(self.not_achieved())
    }

    /// The next id. Concurrent callers in this process share rounds: whoever finds no round
    /// running becomes the leader and runs rounds for everybody queued, one compare-and-set
    /// handing out as many ids as there are callers, in queue order.
    async fn next_id(&self) -> Result<u64> {
        let (tx, rx) = oneshot::channel();
        let lead = {
            let mut w = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
            w.queue.push(tx);
            !std::mem::replace(&mut w.leader, true)
        };
        if lead {
            loop {
                let batch = {
                    let mut w = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
                    if w.queue.is_empty() {
                        w.leader = false;
                        break;
                    }
                    std::mem::take(&mut w.queue)
                };
                match self.ids(batch.len() as u64).await {
                    Ok(first) => {
                        for (i, waiter) in batch.into_iter().enumerate() {
                            let _ = waiter.send(Ok(first + i as u64));
                        }
                    }
                    Err(e) => {
                        // The first caller gets the error itself; the others the same verdict.
                        let mut batch = batch.into_iter();
                        if let Some(first) = batch.next() {
                            let _ = first.send(Err(e));
                        }
                        for waiter in batch {
                            let _ = waiter.send(Err(self.not_achieved()));
                        }
                    }
                }
            }
        }
        rx.await.unwrap_or_else(|_| Err(self.not_achieved()))
    }

    async fn reset(&self) -> Result<()> {
        self.last.store(0, Ordering::SeqCst);
        let fanout = fan_out(
            &self.masters,
            self.master_timeout,
            |_| {
                let mut cmd = redis::cmd("DEL");
                cmd.arg(&self.key);
                Op::cmd(&self.key, STRING, cmd, |_, _| Ok(()))
            },
            |_| true,
            None,
        )
        .await;
        // As pottery: every master must forget the sequence.
        if fanout.yes.len() == self.masters.len() {
            return Ok(());
        }
        self.check_masters_up(&fanout)?;
        Err(self.not_achieved())
    }
}

macro_rules! builder_methods {
    () => {
        /// How many rounds one id may take before [`Error::QuorumNotAchieved`] (default 3).
        /// Rounds after the first wait a random, growing pause (up to 200 ms).
        pub fn num_tries(self, n: u32) -> Self {
            self.with(|c| c.num_tries = n)
        }

        /// How long one master may take to answer (default 500 ms).
        pub fn master_timeout(self, timeout: Duration) -> Self {
            self.with(|c| c.master_timeout = timeout)
        }

        /// Fail with [`Error::QuorumIsImpossible`] when more than half the masters fail.
        pub fn raise_on_redis_errors(self, raise: bool) -> Self {
            self.with(|c| c.raise_on_redis_errors = raise)
        }

        fn with(self, f: impl FnOnce(&mut Core)) -> Self {
            let mut core = Arc::try_unwrap(self.core).unwrap_or_else(|shared| Core {
                key: shared.key.clone(),
                masters: shared.masters.clone(),
                num_tries: shared.num_tries,
                master_timeout: shared.master_timeout,
                raise_on_redis_errors: shared.raise_on_redis_errors,
                waiting: Mutex::new(Waiting::default()),
                last: AtomicU64::new(0),
            });
            f(&mut core);
            Self {
                core: Arc::new(core),
            }
        }

        /// The Redis key: `nextid:<key>`.
        pub fn key(&self) -> &str {
            &self.core.key
        }
    };
}

fn new_core(key: &str, masters: impl IntoIterator<Item = Redis>) -> Core {
    Core {
        key: format!("{KEY_PREFIX}:{key}"),
        masters: masters.into_iter().collect(),
        num_tries: 3,
        master_timeout: Duration::from_millis(500),
        raise_on_redis_errors: false,
        waiting: Mutex::new(Waiting::default()),
        last: AtomicU64::new(0),
    }
}

/// Distributed ids that only go up: pottery's `NextID`, over one or many masters.
///
/// The last id lives in `nextid:<key>` (default key `current`, so `nextid:current`) on every
/// master as a decimal string. An id is the largest value a majority holds, plus one, stored
/// on a majority with a compare-and-set: unique and increasing across every process using the
/// key (Python ones included), with possible gaps. Two additions keep it fast: threads of one
/// process that ask at the same time share one round (one compare-and-set hands out one id
/// per waiting caller), and a process that issued the last id advances from it directly when a
/// majority still holds exactly that value — one round trip instead of two — falling back to
/// pottery's GET-then-set round as soon as another process (or a reset) has moved the value.
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

    /// The async twin.
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

    /// The next id; [`Error::QuorumNotAchieved`] when no majority agreed in `num_tries` rounds.
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

    /// Deletes the sequence on every master (all must succeed, as in pottery): the next id is 1.
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

    /// Async [`NextId`](crate::NextId).
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
        pub fn new(key: &str, masters: impl IntoIterator<Item = Redis>) -> Self {
            NextId {
                core: Arc::new(new_core(key, masters)),
            }
        }

        builder_methods!();

        /// See [`crate::NextId::next_id`].
        pub async fn next_id(&self) -> Result<u64> {
            self.core.next_id().await
        }

        /// See [`crate::NextId::reset`].
        pub async fn reset(&self) -> Result<()> {
            self.core.reset().await
        }
    }
}
