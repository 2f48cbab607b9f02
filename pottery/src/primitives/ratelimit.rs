//! RateLimiter: a distributed rate limiter (GCRA, the generic cell rate algorithm) decided in
//! one script on the server's clock.
//!
//! # Layout
//! One string key, `ratelimit:<key>`, holds the *theoretical arrival time* (TAT): the server
//! time, in microseconds, at which the limiter would be back to empty if nothing more were
//! admitted. A decision for `n` units reads it, admits when `TAT + n·T − burst·T ≤ now`
//! (`T = period / rate`, `now` from the server's `TIME`) and then stores `TAT + n·T`, expiring
//! when the bucket is full again: an idle limiter holds no key. Client clocks play no part, so
//! processes on machines whose clocks disagree share one limit.
//!
//! # Guarantees
//! Over any span of server time `d`, at most `burst + d / T` units are admitted (`burst` at
//! once, then one per `T`). A denied call is told how long until `n` units would be admitted
//! (`retry_after`), which stays true unless somebody else is admitted meanwhile.

use std::time::{Duration, Instant};

use redis::Value;

use crate::client::Redis;
use crate::error::{Error, Result};
use crate::exec::plan::{Op, script};
use crate::exec::reply::{int, unexpected};
use crate::exec::rt;

script!(GCRA, "ratelimit_gcra.lua", Once);

/// Key prefix: a limiter named `api` is stored at `ratelimit:api`.
pub const KEY_PREFIX: &str = "ratelimit";
const STRING: &str = "string";
/// How long [`RateLimiter::acquire`] waits at most, unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The answer to a request for units: whether they were admitted, and when to come back.
///
/// ```
/// # let redis = pottery::testing::doctest_redis();
/// use std::time::Duration;
/// let limiter = pottery::RateLimiter::new(&redis, "doc-decision", 10, Duration::from_secs(1)).burst(2);
/// # limiter.reset()?;
/// let d = limiter.try_acquire(2)?;
/// assert!(d.allowed);
/// assert_eq!(d.remaining, 0);
/// assert_eq!(d.retry_after, None);
/// let d = limiter.try_acquire(1)?;
/// assert!(!d.allowed);
/// assert!(d.retry_after.unwrap() <= Duration::from_millis(100));
/// # limiter.reset()?;
/// # Ok::<(), pottery::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Decision {
    /// Whether the units were admitted (and counted).
    pub allowed: bool,
    /// How many single units could be admitted right after this decision.
    pub remaining: u64,
    /// For a denied request: how long until the same request would be admitted (if nobody
    /// else is admitted meanwhile). `None` when admitted.
    pub retry_after: Option<Duration>,
    /// How long until the limiter is back to its full burst, if nothing more is admitted.
    pub reset_after: Duration,
}

/// The limiter's description, shared by both shells.
#[derive(Clone)]
pub(crate) struct Core {
    pub(crate) redis: Redis,
    /// The Redis key (`ratelimit:<name>`).
    pub(crate) key: String,
    rate: u64,
    period: Duration,
    burst: Option<u64>,
    timeout: Duration,
}

fn decision(key: &str, v: Value) -> Result<Decision> {
    let Value::Array(items) = v else {
        return Err(unexpected(key, "an array of 4 integers", &v));
    };
    let [allowed, remaining, retry, reset]: [Value; 4] = items
        .try_into()
        .map_err(|items: Vec<Value>| unexpected(key, "4 integers", &Value::Array(items)))?;
    let us = |v: Value| -> Result<i64> { int(key, v) };
    let (allowed, remaining, retry, reset) = (us(allowed)?, us(remaining)?, us(retry)?, us(reset)?);
    let micros = |n: i64| Duration::from_micros(crate::exec::reply::time_left(n));
    Ok(Decision {
        allowed: allowed == 1,
        remaining: crate::exec::reply::count(key, remaining)?,
        retry_after: (allowed != 1).then(|| micros(retry)),
        reset_after: micros(reset),
    })
}

impl Core {
    fn new(redis: &Redis, name: &str, rate: u64, period: Duration) -> Core {
        Core {
            redis: redis.clone(),
            key: format!("{KEY_PREFIX}:{name}"),
            rate,
            period,
            burst: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    fn burst(&self) -> u64 {
        self.burst.unwrap_or(self.rate)
    }

    fn config(&self, problem: impl std::fmt::Display) -> Error {
        Error::Config {
            message: format!("RateLimiter `{}`: {problem}", self.key),
        }
    }

    /// The emission interval in microseconds, once the settings are checked.
    fn interval_us(&self, n: u64) -> Result<f64> {
        if self.rate == 0 {
            return Err(self.config("rate is 0"));
        }
        if self.period.is_zero() {
            return Err(self.config("period is zero"));
        }
        if self.burst() == 0 {
            return Err(self.config("burst is 0"));
        }
        if n > self.burst() {
            return Err(self.config(format_args!(
                "{n} units asked for, more than the burst of {} (never admitted)",
                self.burst()
            )));
        }
        let interval = self.period.as_secs_f64() * 1e6 / self.rate as f64;
        // Keep arrival times within what a double holds to the microsecond.
        if !(interval.is_finite() && interval * (self.burst() as f64) < 1e15) {
            return Err(self.config("period × burst / rate is too long"));
        }
        Ok(interval)
    }

    /// One decision for `n` units: the GCRA script, on the server's clock.
    /// The plan: `scripts/ratelimit_gcra.lua` (`GCRA`).
    pub(crate) fn try_acquire_plan(&self, n: u64) -> Result<Op<'_, Decision>> {
        let interval = self.interval_us(n)?;
        Ok(Op::eval(
            &self.key,
            STRING,
            &GCRA,
            vec![self.key.clone().into_bytes()],
            vec![
                interval.to_string().into_bytes(),
                self.burst().to_string().into_bytes(),
                n.to_string().into_bytes(),
            ],
            decision,
        ))
    }

    /// The plan: `DEL`.
    fn reset_plan(&self) -> Op<'_, ()> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(&self.key);
        Op::cmd(&self.key, STRING, cmd, |_, _| Ok(()))
    }

    /// One decision, run on the blocking connection inside a blocking shell, else async.
    async fn decide(&self, n: u64) -> Result<Decision> {
        let op = self.try_acquire_plan(n)?;
        if rt::in_blocking_shell() {
            self.redis.run(op)
        } else {
            self.redis.run_async(op).await
        }
    }

    /// Decisions until `n` units are admitted, sleeping each refusal's `retry_after`, until
    /// the timeout; gives up at once when the next admission lies beyond it.
    pub(crate) async fn acquire(&self, n: u64) -> Result<Decision> {
        let started = Instant::now();
        let deadline = started + self.timeout;
        loop {
            let d = self.decide(n).await?;
            let Some(wait) = d.retry_after.filter(|_| !d.allowed) else {
                return Ok(d);
            };
            // A little later than told, so that callers told the same instant spread out.
            let jitter = Duration::from_micros(crate::exec::jitter::between(0, 499));
            let at = Instant::now() + wait + jitter;
            if at > deadline {
                return Err(Error::RateLimited {
                    key: self.key.clone(),
                    waited: started.elapsed(),
                    retry_after: wait,
                });
            }
            tokio::time::sleep_until(at.into()).await;
        }
    }
}

macro_rules! limiter_builders {
    () => {
        /// A limiter admitting `rate` units per `period` on average, at key
        /// `ratelimit:<name>`, with a burst of `rate` (change it with
        /// [`burst`](Self::burst)). Nothing is checked or sent yet: a rate or period of zero
        /// makes every call an [`Error::Config`](crate::Error::Config).
        pub fn new(redis: &Redis, name: &str, rate: u64, period: Duration) -> Self {
            Self {
                core: Core::new(redis, name, rate, period),
            }
        }

        /// How many units may be admitted at once (at least 1; by default `rate`): after an
        /// idle spell the limiter admits `burst` units at once, then one per
        /// `period / rate`. A request for more than `burst` units is an
        /// [`Error::Config`](crate::Error::Config) (it could never be admitted).
        #[must_use]
        pub fn burst(mut self, burst: u64) -> Self {
            self.core.burst = Some(burst);
            self
        }

        /// How long [`acquire`](Self::acquire) waits at most (default 10 s).
        #[must_use]
        pub fn timeout(mut self, timeout: Duration) -> Self {
            self.core.timeout = timeout;
            self
        }

        /// The Redis key (`ratelimit:<name>`).
        pub fn key(&self) -> &str {
            &self.core.key
        }
    };
}

/// A distributed rate limiter: `rate` units per `period` with a `burst`, shared by every
/// thread, task and process using the same name and Redis. Each decision is one script on
/// the server's clock (GCRA); see the [module docs](crate::ratelimit) for the key layout.
///
/// ```
/// # let redis = pottery::testing::doctest_redis();
/// use std::time::Duration;
/// use pottery::RateLimiter;
///
/// let limiter = RateLimiter::new(&redis, "doc-api", 100, Duration::from_secs(1)).burst(5);
/// # limiter.reset()?;
/// let admitted = (0..10).filter(|_| limiter.try_acquire(1).unwrap().allowed).count();
/// assert_eq!(admitted, 5);
/// limiter.acquire(1)?; // waits ~10 ms for the next unit
/// # limiter.reset()?;
/// # Ok::<(), pottery::Error>(())
/// ```
pub struct RateLimiter {
    pub(crate) core: Core,
}

crate::shell::shell_impls!(RateLimiter, "RateLimiter");

impl RateLimiter {
    limiter_builders!();

    /// Waits until `n` units are admitted: sleeps each refusal's `retry_after` and asks
    /// again, bounded by the [`timeout`](Self::timeout). Fails at once with
    /// [`Error::RateLimited`] when the next admission lies beyond the timeout.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// use std::time::Duration;
    /// let limiter = pottery::RateLimiter::new(&redis, "doc-acquire", 1, Duration::from_secs(60))
    ///     .burst(1)
    ///     .timeout(Duration::from_millis(100));
    /// # limiter.reset()?;
    /// assert!(limiter.acquire(1)?.allowed);
    /// let err = limiter.acquire(1).unwrap_err(); // the next unit is a minute away
    /// assert!(matches!(err, pottery::Error::RateLimited { .. }), "{err}");
    /// # limiter.reset()?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn acquire(&self, n: u64) -> Result<Decision> {
        rt::block_on(self.core.acquire(n))
    }
}

crate::shell::ops! {
    // How to find an operation: `RateLimiter::try_acquire` in the docs -> its `fn try_acquire` entry
    // below (same name; the body builds the plan) -> the plan builder it calls,
    // `Core::try_acquire_plan` (above), whose doc line names the request: the command, or the
    // `scripts/*.lua` it runs.
    impl
        /// A rate limiter's operations in a [`Batch`](crate::Batch) or an
        /// [`aio::Batch`](crate::aio::Batch): decisions queued with other work, one round trip
        /// for the lot.
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// use std::time::Duration;
        /// let a = pottery::RateLimiter::new(&redis, "doc-batch-a", 10, Duration::from_secs(1));
        /// let b = pottery::RateLimiter::new(&redis, "doc-batch-b", 10, Duration::from_secs(1));
        /// # a.reset()?; b.reset()?;
        /// let batch = pottery::Batch::new(&redis);
        /// let da = batch.on(&a).try_acquire(3);
        /// let db = batch.on(&b).try_acquire(10);
        /// batch.execute()?;
        /// assert_eq!(da.get()?.remaining, 7);
        /// assert_eq!(db.get()?.remaining, 0);
        /// # a.reset()?; b.reset()?;
        /// # Ok::<(), pottery::Error>(())
        /// ```
        RateLimiter and aio::RateLimiter, batch RateLimiterOps(Core)
    {

        /// One decision for `n` units (0 only looks), in one round trip: admitted and counted,
        /// or refused with the time until it would be admitted. Never waits.
        /// An [`Error::Config`](crate::Error::Config) for a rate or period of zero, or `n`
        /// above the burst.
        #[example(bare)]
        /// use std::time::Duration;
        /// let limiter = pottery::RateLimiter::new(&redis, "doc-try", 3, Duration::from_secs(1));
        /// # limiter.reset()?;
        /// assert!(limiter.try_acquire(3)?.allowed);
        /// let refused = limiter.try_acquire(1)?;
        /// assert!(!refused.allowed && refused.retry_after.is_some());
        /// let err = limiter.try_acquire(4).unwrap_err(); // above the burst of 3
        /// assert!(matches!(err, pottery::Error::Config { .. }));
        /// # limiter.reset()?;
        #[example(async, bare)]
        /// use std::time::Duration;
        /// let limiter = pottery::aio::RateLimiter::new(&redis, "doc-try-async", 3, Duration::from_secs(1));
        /// # limiter.reset().await?;
        /// assert!(limiter.try_acquire(2).await?.allowed);
        /// # limiter.reset().await?;
        fn try_acquire(&self, n: u64) -> Decision {
            self.core.try_acquire_plan(n)
        }

        /// Forgets every admission: the limiter is back to its full burst (deletes its key).
        #[example(bare)]
        /// use std::time::Duration;
        /// let limiter = pottery::RateLimiter::new(&redis, "doc-reset", 1, Duration::from_secs(60));
        /// limiter.reset()?;
        /// assert!(limiter.try_acquire(1)?.allowed);
        /// limiter.reset()?;
        /// assert!(limiter.try_acquire(1)?.allowed);
        /// # limiter.reset()?;
        #[example(async, bare)]
        /// use std::time::Duration;
        /// let limiter = pottery::aio::RateLimiter::new(&redis, "doc-reset-async", 1, Duration::from_secs(60));
        /// limiter.reset().await?;
        fn reset(&self) -> () {
            self.core.reset_plan()
        }
    }
}

/// The async twin: [`aio::RateLimiter`](crate::aio::RateLimiter).
pub mod aio {
    use super::*;

    /// Async [`RateLimiter`](crate::RateLimiter): the same decisions, awaited. Its futures
    /// are `Send` and hold no state of the limiter: dropping one at any point loses nothing
    /// but (at worst) a decision that was counted.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use std::time::Duration;
    /// let limiter = pottery::aio::RateLimiter::new(&redis, "doc-aio-limiter", 1000, Duration::from_secs(1)).burst(1);
    /// # limiter.reset().await?;
    /// for _ in 0..3 {
    ///     limiter.acquire(1).await?; // one per millisecond
    /// }
    /// # limiter.reset().await?;
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    pub struct RateLimiter {
        pub(crate) core: Core,
    }

    crate::shell::shell_impls!(RateLimiter, "aio::RateLimiter");

    impl RateLimiter {
        limiter_builders!();

        /// The async form of [`RateLimiter::acquire`](crate::RateLimiter::acquire): waits
        /// (on the runtime's timer) until `n` units are admitted, bounded by the timeout.
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// use std::time::Duration;
        /// let limiter = pottery::aio::RateLimiter::new(&redis, "doc-aio-acquire", 100, Duration::from_secs(1)).burst(1);
        /// # limiter.reset().await?;
        /// assert!(limiter.acquire(1).await?.allowed);
        /// assert!(limiter.acquire(1).await?.allowed); // ~10 ms later
        /// # limiter.reset().await?;
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub async fn acquire(&self, n: u64) -> Result<Decision> {
            self.core.acquire(n).await
        }
    }
}
