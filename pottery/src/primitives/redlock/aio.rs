//! The async twin: [`aio::Redlock`](crate::aio::Redlock).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::acquire::{Taken, acquire};
use super::core::{Core, Wait, new_core};
use super::lease::Lease;
use super::lease::Slot;
use super::watchdog::{LostSignal, Watch, watchdog};
use crate::client::Redis;
use crate::error::{Error, Result};
use crate::exec::rt;
use crate::primitives::names;
use crate::sync::lock;

/// Async [`Redlock`](crate::Redlock): the same API with `async fn`s, every future `Send`
/// (and `'static` on an owned clone), safe to drop at any await point: an attempt
/// cancelled midway gives back what it was granted.
///
/// ```
/// # let redis = pottery::testing::doctest_redis();
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let lock = pottery::aio::Redlock::new("doc-async", [redis]);
/// let tasks: Vec<_> = (0..8)
///     .map(|_| {
///         let lock = lock.clone();
///         tokio::spawn(async move {
///             let guard = lock.lock().await?;
///             guard.release().await
///         })
///     })
///     .collect();
/// for t in tasks {
///     t.await.unwrap()?;
/// }
/// # Ok::<(), pottery::Error>(()) }).unwrap();
/// ```
pub struct Redlock {
    pub(super) core: Arc<Core>,
    pub(super) held: Slot,
}

lock_shell!("aio::Redlock", to_blocking, crate::Redlock, "Redlock");

impl Redlock {
    builder_methods!();

    /// See [`crate::Redlock::lock`].
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let lock = pottery::aio::Redlock::new("doc-alock", [redis]);
    /// let guard = lock.lock().await?;
    /// guard.release().await?;
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    pub async fn lock(&self) -> Result<RedlockGuard> {
        self.guarded(false).await
    }

    /// See [`crate::Redlock::lock_fenced`].
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let lock = pottery::aio::Redlock::new("doc-alock-fenced", [redis]);
    /// let guard = lock.lock_fenced().await?;
    /// assert!(guard.token().is_some());
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    pub async fn lock_fenced(&self) -> Result<RedlockGuard> {
        self.guarded(true).await
    }

    async fn guarded(&self, fenced: bool) -> Result<RedlockGuard> {
        match acquire(&self.core, self.core.wait_mode(), fenced).await? {
            Ok(lease) => Ok(RedlockGuard {
                lease: Some(Arc::new(lease)),
            }),
            Err(why) => Err(self.core.missed(why)),
        }
    }

    /// See [`crate::Redlock::lock_with_watchdog`]; the extender is a Tokio task. It holds the
    /// lease until the guard is released or dropped: the shape of leader election, where the
    /// leader works until it is told it lost the lease.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let election = pottery::aio::Redlock::new("doc-leader", [redis])
    ///     .auto_release_time(Duration::from_secs(2));
    /// // Each replica runs this loop; one at a time leads.
    /// let leader = election.lock_with_watchdog().await?;
    /// let mut rounds = 0;
    /// let lost = leader.lost_signal();
    /// tokio::pin!(lost);
    /// loop {
    ///     tokio::select! {
    ///         _ = &mut lost => break, // another replica leads now: stop at once
    ///         _ = tokio::time::sleep(Duration::from_millis(10)) => {
    ///             rounds += 1; // the leader's work
    ///             if rounds == 3 { break; }
    ///         }
    ///     }
    /// }
    /// leader.release().await?; // step down
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    ///
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let lock = pottery::aio::Redlock::new("doc-awd", [redis]);
    /// let guard = lock.lock_with_watchdog().await?;
    /// assert!(!guard.lost());
    /// guard.release().await?;
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    pub async fn lock_with_watchdog(&self) -> Result<WatchdogGuard> {
        let guard = self.lock().await?;
        let watch = Arc::new(Watch::default());
        let lease = guard
            .lease
            .clone()
            .ok_or_else(|| self.core.not_achieved())?;
        let task = crate::exec::rt::spawn_here(watchdog(lease, Arc::clone(&watch)));
        Ok(WatchdogGuard { guard, watch, task })
    }

    /// See [`crate::Redlock::acquire`].
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let lock = pottery::aio::Redlock::new("doc-aacquire", [redis]);
    /// assert!(lock.acquire().await?);
    /// lock.release().await?;
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    pub async fn acquire(&self) -> Result<bool> {
        Ok(self.hold(acquire(&self.core, Wait::For(None), false).await?))
    }

    /// See [`crate::Redlock::try_acquire`].
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let lock = pottery::aio::Redlock::new("doc-atry", [redis]);
    /// assert!(lock.try_acquire().await?);
    /// lock.release().await?;
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    pub async fn try_acquire(&self) -> Result<bool> {
        Ok(self.hold(acquire(&self.core, Wait::Once, false).await?))
    }

    /// See [`crate::Redlock::acquire_timeout`].
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let lock = pottery::aio::Redlock::new("doc-atimeout", [redis]);
    /// assert!(lock.acquire_timeout(std::time::Duration::from_secs(1)).await?);
    /// lock.release().await?;
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    pub async fn acquire_timeout(&self, timeout: Duration) -> Result<bool> {
        let wait = Wait::For(Some(timeout));
        Ok(self.hold(acquire(&self.core, wait, false).await?))
    }

    /// See [`crate::Redlock::acquire_with_token`].
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let lock = pottery::aio::Redlock::new("doc-atoken", [redis]);
    /// let token = lock.acquire_with_token().await?;
    /// assert!(token >= 1);
    /// lock.release().await?;
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    pub async fn acquire_with_token(&self) -> Result<u64> {
        match acquire(&self.core, self.core.wait_mode(), true).await? {
            Ok(lease) => {
                let token = lease.token.unwrap_or(0);
                self.hold(Ok(lease));
                Ok(token)
            }
            Err(why) => Err(self.core.missed(why)),
        }
    }

    /// See [`crate::Redlock::locked`].
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let lock = pottery::aio::Redlock::new("doc-alocked", [redis]);
    /// assert_eq!(lock.locked().await?, std::time::Duration::ZERO);
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    pub async fn locked(&self) -> Result<Duration> {
        match self.slot()? {
            Some(lease) => lease.locked().await,
            None => Ok(Duration::ZERO),
        }
    }

    /// See [`crate::Redlock::extend`].
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let lock = pottery::aio::Redlock::new("doc-aextend", [redis]);
    /// lock.acquire().await?;
    /// lock.extend().await?;
    /// # lock.release().await?;
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    pub async fn extend(&self) -> Result<()> {
        match self.slot()? {
            Some(lease) => lease.extend().await,
            None => Err(self.extend_unlocked()),
        }
    }

    /// See [`crate::Redlock::release`].
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let lock = pottery::aio::Redlock::new("doc-arelease", [redis]);
    /// assert!(lock.release().await.is_err());
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    pub async fn release(&self) -> Result<()> {
        match self.take_slot()? {
            Some(lease) => lease.release().await,
            None => Err(self.release_unlocked()),
        }
    }
}

/// Async [`RedlockGuard`](crate::RedlockGuard): owns one lease; dropping it releases the
/// lease through a spawned task.
///
/// ```
/// # let redis = pottery::testing::doctest_redis();
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// # let lock = pottery::aio::Redlock::new("doc-aguard", [redis]);
/// let guard: pottery::aio::RedlockGuard = lock.lock().await?;
/// assert!(guard.locked().await? > std::time::Duration::ZERO);
/// guard.release().await?;
/// # Ok::<(), pottery::Error>(()) }).unwrap();
/// ```
#[must_use = "the lock is released when the guard is dropped"]
pub struct RedlockGuard {
    pub(super) lease: Option<Arc<Lease>>,
}

impl fmt::Debug for RedlockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("aio::RedlockGuard")
            .field("lease", &self.lease)
            .finish()
    }
}

impl RedlockGuard {
    fn lease(&self) -> Result<&Arc<Lease>> {
        self.lease.as_ref().ok_or_else(|| Error::Config {
            message: "the guard was released".into(),
        })
    }

    /// Releases now, reporting errors; see [`crate::RedlockGuard::release`].
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let lock = pottery::aio::Redlock::new("doc-aguard-release", [redis]);
    /// lock.lock().await?.release().await?;
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    pub async fn release(mut self) -> Result<()> {
        match self.lease.take() {
            Some(lease) => lease.release().await,
            None => Ok(()),
        }
    }

    /// See [`crate::RedlockGuard::locked`].
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let lock = pottery::aio::Redlock::new("doc-aguard-locked", [redis]);
    /// let guard = lock.lock().await?;
    /// assert!(guard.locked().await? > std::time::Duration::ZERO);
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    pub async fn locked(&self) -> Result<Duration> {
        self.lease()?.locked().await
    }

    /// See [`crate::RedlockGuard::extend`].
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let lock = pottery::aio::Redlock::new("doc-aguard-extend", [redis]);
    /// let guard = lock.lock().await?;
    /// guard.extend().await?;
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    pub async fn extend(&self) -> Result<()> {
        self.lease()?.extend().await
    }

    /// See [`crate::RedlockGuard::token`].
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let lock = pottery::aio::Redlock::new("doc-aguard-token", [redis]);
    /// assert_eq!(lock.lock().await?.token(), None);
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    pub fn token(&self) -> Option<u64> {
        self.lease.as_ref().and_then(|l| l.token)
    }
}

impl Drop for RedlockGuard {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take() {
            rt::spawn(async move {
                let _ = lease.release().await;
            });
        }
    }
}

/// Async [`WatchdogGuard`](crate::WatchdogGuard).
///
/// ```
/// # let redis = pottery::testing::doctest_redis();
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// # let lock = pottery::aio::Redlock::new("doc-awd-guard", [redis]);
/// let guard: pottery::aio::WatchdogGuard = lock.lock_with_watchdog().await?;
/// assert!(guard.locked().await? > std::time::Duration::ZERO);
/// guard.release().await?;
/// # Ok::<(), pottery::Error>(()) }).unwrap();
/// ```
#[must_use = "the lock is released when the guard is dropped"]
pub struct WatchdogGuard {
    pub(super) guard: RedlockGuard,
    pub(super) watch: Arc<Watch>,
    pub(super) task: tokio::task::JoinHandle<()>,
}

impl fmt::Debug for WatchdogGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("aio::WatchdogGuard")
            .field("guard", &self.guard)
            .field("lost", &self.lost())
            .finish()
    }
}

impl WatchdogGuard {
    /// See [`crate::WatchdogGuard::lost`].
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let lock = pottery::aio::Redlock::new("doc-awd-lost", [redis]);
    /// assert!(!lock.lock_with_watchdog().await?.lost());
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    pub fn lost(&self) -> bool {
        self.watch.lost()
    }

    /// A future that completes when the lease is lost (see [`LostSignal`]): select on it
    /// beside the work the lease protects.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let lock = pottery::aio::Redlock::new("doc-awd-signal", [redis]);
    /// let guard = lock.lock_with_watchdog().await?;
    /// tokio::select! {
    ///     _ = guard.lost_signal() => unreachable!(),
    ///     _ = tokio::time::sleep(std::time::Duration::from_millis(20)) => {}
    /// }
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    pub fn lost_signal(&self) -> LostSignal {
        self.watch.signal()
    }

    /// See [`crate::WatchdogGuard::locked`].
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let lock = pottery::aio::Redlock::new("doc-awd-locked", [redis]);
    /// let guard = lock.lock_with_watchdog().await?;
    /// assert!(guard.locked().await? > std::time::Duration::ZERO);
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    pub async fn locked(&self) -> Result<Duration> {
        self.guard.locked().await
    }

    /// See [`crate::WatchdogGuard::token`].
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let lock = pottery::aio::Redlock::new("doc-awd-token", [redis]);
    /// assert_eq!(lock.lock_with_watchdog().await?.token(), None);
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    pub fn token(&self) -> Option<u64> {
        self.guard.token()
    }

    /// Stops the watchdog and releases, reporting errors.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let lock = pottery::aio::Redlock::new("doc-awd-release", [redis]);
    /// lock.lock_with_watchdog().await?.release().await?;
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    pub async fn release(mut self) -> Result<()> {
        self.watch.stop();
        self.task.abort();
        match self.guard.lease.take() {
            Some(lease) => lease.release().await,
            None => Ok(()),
        }
    }
}

impl Drop for WatchdogGuard {
    fn drop(&mut self) {
        self.watch.stop();
        self.task.abort();
    }
}

/// Async [`synchronize`](crate::synchronize()): runs the future `f()` under a lease of a
/// lock on `key`.
///
/// ```
/// # let redis = pottery::testing::doctest_redis();
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let n = pottery::aio::synchronize("doc-async-sync", [redis], |l| l, || async { 7 }).await?;
/// assert_eq!(n, 7);
/// # Ok::<(), pottery::Error>(()) }).unwrap();
/// ```
pub async fn synchronize<T, Fut>(
    key: &str,
    masters: impl IntoIterator<Item = Redis>,
    configure: impl FnOnce(Redlock) -> Redlock,
    f: impl FnOnce() -> Fut,
) -> Result<T>
where
    Fut: std::future::Future<Output = T>,
{
    super::synchronized_async(&configure(Redlock::new(key, masters)), f).await
}

/// Async [`synchronized`](super::synchronized); a lease that expired before the body finished is a warning.
#[doc(hidden)]
pub async fn synchronized_async<T, Fut>(lock: &Redlock, f: impl FnOnce() -> Fut) -> Result<T>
where
    Fut: std::future::Future<Output = T>,
{
    let guard = lock.lock().await?;
    let out = f().await;
    guard.release().await.or_else(|e| match e {
        // The body ran; a lease that expired meanwhile is worth a warning, not a failure.
        Error::ReleaseUnlockedLock { .. } => {
            tracing::warn!(
                key = crate::observe::event_key(lock.core.masters.first(), lock.key()),
                "lease expired before synchronize finished"
            );
            Ok(())
        }
        other => Err(other),
    })?;
    Ok(out)
}
