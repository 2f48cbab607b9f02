//! The watchdog: a task that keeps a lease alive until its guard is released or dropped.
//!
//! Extensions are scheduled from the lease's start, every third of its length (not from the
//! previous extension's end, which a slow master would stretch), and an extension counts as
//! soon as a majority confirmed it (the stragglers finish in the background). The watchdog is
//! not bound by `num_extensions`: that cap is pottery's, for manual [`extend`] calls. When an
//! extension fails or the lease runs out, the lease is marked lost and the guard's waiters on
//! [`LostSignal`] are woken.
//!
//! [`extend`]: crate::RedlockGuard::extend

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::lease::Lease;
use crate::sync::lock;

/// What a guard and its watchdog share.
#[derive(Default)]
pub(crate) struct Watch {
    pub(crate) stop: AtomicBool,
    lost: AtomicBool,
    pub(crate) wake: Notify,
    lost_notify: Notify,
}

impl Watch {
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    pub(crate) fn lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    pub(crate) fn mark_lost(&self) {
        self.lost.store(true, Ordering::SeqCst);
        self.lost_notify.notify_waiters();
    }

    /// A future that completes once the lease is lost.
    pub(crate) fn signal(self: &Arc<Self>) -> LostSignal {
        let watch = Arc::clone(self);
        LostSignal {
            inner: Box::pin(async move {
                loop {
                    let notified = watch.lost_notify.notified();
                    tokio::pin!(notified);
                    // Registered before the flag is read: a loss in between is not missed.
                    notified.as_mut().enable();
                    if watch.lost() {
                        return;
                    }
                    notified.await;
                }
            }),
        }
    }
}

/// Completes when a watchdog guard's lease is lost: an extension was refused (another holder
/// took the lock after a stall, the masters forgot it) or could not reach a majority before
/// the lease ran out. It never completes while the lease is held, nor after a release. `Send`
/// and `'static`: select on it beside the work the lease protects.
///
/// ```
/// # let redis = pottery::testing::doctest_redis();
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let lock = pottery::aio::Redlock::new("doc-lost-signal", [redis]);
/// let guard = lock.lock_with_watchdog().await?;
/// let lost = guard.lost_signal();
/// tokio::select! {
///     _ = lost => unreachable!("nobody takes the lock from us"),
///     _ = tokio::time::sleep(std::time::Duration::from_millis(50)) => {}
/// }
/// guard.release().await?;
/// # Ok::<(), pottery::Error>(()) }).unwrap();
/// ```
#[must_use = "a signal does nothing unless awaited"]
pub struct LostSignal {
    inner: Pin<Box<dyn Future<Output = ()> + Send + 'static>>,
}

impl Future for LostSignal {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.inner.as_mut().poll(cx)
    }
}

impl fmt::Debug for LostSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LostSignal")
    }
}

/// Extends the lease every third of its length, counted from its start, until told to stop;
/// marks it lost when an extension fails, or when none succeeded before the lease ran out.
pub(super) async fn watchdog(lease: Arc<Lease>, watch: Arc<Watch>) {
    let period = lease.core.ttl / 3;
    let mut next = Instant::now() + period;
    loop {
        let _ = tokio::time::timeout_at(next.into(), watch.wake.notified()).await;
        if watch.stop.load(Ordering::SeqCst) {
            return;
        }
        // Bounded by the lease's end: past it, nothing is left to extend.
        let until = *lock(&lease.until);
        let left = until.saturating_duration_since(Instant::now());
        match tokio::time::timeout(
            left.max(Duration::from_millis(1)),
            lease.extend_by_watchdog(),
        )
        .await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                if !watch.stop.load(Ordering::SeqCst) {
                    let redis = lease.core.masters.first();
                    tracing::warn!(
                        key = crate::observe::event_key(redis, &lease.core.key),
                        error = %crate::observe::event_error(redis, &e),
                        "a watchdog lost its lease"
                    );
                    watch.mark_lost();
                }
                return;
            }
            Err(_) => {
                if !watch.stop.load(Ordering::SeqCst) {
                    tracing::warn!(
                        key =
                            crate::observe::event_key(lease.core.masters.first(), &lease.core.key),
                        "a watchdog's lease ran out before an extension was confirmed"
                    );
                    watch.mark_lost();
                }
                return;
            }
        }
        // The next extension a third of a lease after this one was due (not after it ended):
        // a slow master does not stretch the period.
        next += period;
        let now = Instant::now();
        if next < now {
            next = now;
        }
    }
}
