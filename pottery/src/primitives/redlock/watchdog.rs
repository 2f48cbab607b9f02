//! The watchdog: a task that extends a lease every third of its length.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tokio::sync::Notify;

use super::core::lock_mutex;
use super::lease::Lease;
use crate::error::Error;

// ---------------------------------------------------------------------------------------------
// The watchdog

#[derive(Default)]
pub(super) struct Watch {
    pub(super) stop: AtomicBool,
    pub(super) lost: AtomicBool,
    pub(super) wake: Notify,
}

impl Watch {
    pub(super) fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }
}

/// Extends the lease every third of its length until told to stop; marks it lost when an
/// extension fails or when the last allowed extension runs out.
pub(super) async fn watchdog(lease: Arc<Lease>, watch: Arc<Watch>) {
    let period = lease.core.ttl / 3;
    loop {
        let _ = tokio::time::timeout(period, watch.wake.notified()).await;
        if watch.stop.load(Ordering::SeqCst) {
            return;
        }
        match lease.extend().await {
            Ok(()) => {}
            Err(Error::TooManyExtensions { .. }) => {
                // No more extensions: the lease ends when it ends.
                let left = lock_mutex(&lease.until).saturating_duration_since(Instant::now());
                let _ = tokio::time::timeout(left, watch.wake.notified()).await;
                if !watch.stop.load(Ordering::SeqCst) {
                    watch.lost.store(true, Ordering::SeqCst);
                }
                return;
            }
            Err(_) => {
                watch.lost.store(true, Ordering::SeqCst);
                return;
            }
        }
    }
}
