//! Waiting: the local FIFO line of one process's callers of a key, and release notifications
//! through one shared pub/sub connection per master.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::client::Redis;
use crate::exec::rt;
use crate::sync::lock;

/// How often a local waiter looks whether the turn's owner overran its lease.
const OVERRUN_CHECK: Duration = Duration::from_millis(250);

// ---------------------------------------------------------------------------------------------
// The local line: one per key and set of masters in this process

/// Waiters of this process on one lock. The semaphore's single permit is the "turn": its
/// owner is the one local caller that contends with other processes (or holds the lease), and
/// the semaphore queues the others in FIFO order.
pub(super) struct Local {
    pub(super) turn: Arc<Semaphore>,
    /// When the turn's owner's lease ends (local estimate), while it holds one. A waiter that
    /// sees it pass stops waiting for the turn and contends anyway: a guard kept past its lease
    /// does not block the process.
    pub(super) held_until: Mutex<Option<Instant>>,
}

pub(super) static LOCALS: LazyLock<Mutex<HashMap<String, Weak<Local>>>> =
    LazyLock::new(Default::default);

pub(super) fn local_for(key: &str, masters: &[Redis]) -> Arc<Local> {
    // The key and the masters' names, one per line, built in one string.
    let mut id = String::from(key);
    for m in masters {
        use std::fmt::Write as _;
        let _ = write!(id, "\n{m:?}");
    }
    let mut map = lock(&LOCALS);
    if let Some(local) = map.get(&id).and_then(Weak::upgrade) {
        return local;
    }
    if map.len() >= 64 && map.len().is_power_of_two() {
        map.retain(|_, w| w.strong_count() > 0);
    }
    let local = Arc::new(Local {
        turn: Arc::new(Semaphore::new(1)),
        held_until: Mutex::new(None),
    });
    map.insert(id, Arc::downgrade(&local));
    local
}

pub(super) enum Turn {
    Mine(OwnedSemaphorePermit),
    /// The owner's lease ran out while it kept the turn.
    Overrun,
    TimedOut,
}

impl Local {
    pub(super) fn overrun(&self) -> bool {
        lock(&self.held_until).is_some_and(|u| u <= Instant::now())
    }

    pub(super) fn set_held_until(&self, until: Option<Instant>) {
        *lock(&self.held_until) = until;
    }

    /// The turn now, `Some(None)` when its owner overran its lease, `None` when it is taken.
    pub(super) fn try_turn(&self) -> Option<Option<OwnedSemaphorePermit>> {
        match Arc::clone(&self.turn).try_acquire_owned() {
            Ok(p) => Some(Some(p)),
            Err(_) if self.overrun() => Some(None),
            Err(_) => None,
        }
    }

    pub(super) async fn wait_turn(&self, deadline: Option<Instant>) -> Turn {
        if let Ok(p) = Arc::clone(&self.turn).try_acquire_owned() {
            return Turn::Mine(p);
        }
        let acquire = Arc::clone(&self.turn).acquire_owned();
        tokio::pin!(acquire);
        loop {
            // Look at the owner's lease when it should end, and at least every 250 ms (it may
            // not have one yet, or may have extended it): cheaper than waking every waiter at
            // each change.
            let recheck = Instant::now() + OVERRUN_CHECK;
            let at = lock(&self.held_until).map_or(recheck, |u| u.min(recheck));
            tokio::select! {
                biased;
                permit = &mut acquire => {
                    return match permit {
                        Ok(p) => Turn::Mine(p),
                        Err(_) => Turn::Overrun,
                    };
                }
                _ = tokio::time::sleep_until(at.into()) => {
                    if self.overrun() {
                        return Turn::Overrun;
                    }
                }
                _ = sleep_until(deadline) => return Turn::TimedOut,
            }
        }
    }
}

/// Sleeps until `at`, or forever for `None`.
pub(super) async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Release notifications from every master that can send them, through the process's shared
/// subscriber connections.
pub(crate) struct Wakeups {
    pub(crate) listening: Vec<Listening>,
}

impl Wakeups {
    pub(crate) async fn subscribe(key: &str, masters: &[Redis], timeout: Duration) -> Wakeups {
        let listens = masters.iter().map(|m| async move {
            let subscribed = async {
                let subscriber = Subscriber::of(m).await?;
                Some(subscriber.listen(key).await)
            };
            tokio::time::timeout(timeout, subscribed)
                .await
                .ok()
                .flatten()
        });
        let listening = crate::exec::race::join_all(listens).await;
        Wakeups {
            listening: listening.into_iter().flatten().collect(),
        }
    }

    /// How many releases each channel has seen so far (taken before an attempt).
    pub(crate) fn marks(&self) -> Vec<u64> {
        self.listening
            .iter()
            .map(|l| l.channel.fired.load(Ordering::SeqCst))
            .collect()
    }

    /// Until a release is announced after `marks` were taken, or `pause` has passed.
    pub(crate) async fn wait(&self, marks: &[u64], pause: Duration) {
        let fired = || {
            self.listening
                .iter()
                .zip(marks)
                .any(|(l, m)| l.channel.fired.load(Ordering::SeqCst) != *m)
        };
        if self.listening.is_empty() {
            tokio::time::sleep(pause).await;
            return;
        }
        let mut notified: Vec<_> = self
            .listening
            .iter()
            .map(|l| Box::pin(l.channel.notify.notified()))
            .collect();
        for n in &mut notified {
            n.as_mut().enable();
        }
        if fired() {
            return;
        }
        let _ = tokio::time::timeout(pause, futures_util::future::select_all(notified)).await;
    }
}

/// One pub/sub connection per master in this process, shared by every waiter on every key:
/// waiting costs no connection of its own. Its driver and dispatcher run on pottery's runtime;
/// when the connection drops, every channel is woken (the waiters look, and poll) and the next
/// waiter connects anew.
pub(super) struct Subscriber {
    pub(super) sink: redis::aio::PubSubSink,
    pub(super) channels: Mutex<HashMap<String, Arc<Channel>>>,
    /// Serialises SUBSCRIBE and UNSUBSCRIBE.
    pub(super) ops: tokio::sync::Mutex<()>,
    pub(super) alive: AtomicBool,
}

/// One channel (one lock key) of a [`Subscriber`].
#[derive(Default)]
pub(super) struct Channel {
    /// Releases seen: a waiter that compares it before and after an attempt misses none.
    pub(super) fired: AtomicU64,
    pub(super) notify: Notify,
    pub(super) listeners: AtomicUsize,
    pub(super) subscribed: AtomicBool,
}

pub(super) static SUBSCRIBERS: LazyLock<Mutex<HashMap<String, Arc<Subscriber>>>> =
    LazyLock::new(Default::default);

impl Subscriber {
    /// The shared subscriber of `master`, connecting it if needed; `None` for a cluster handle
    /// or when it cannot connect (the waiters poll).
    pub(super) async fn of(master: &Redis) -> Option<Arc<Subscriber>> {
        let id = format!("{master:?}");
        if let Some(s) = lock(&SUBSCRIBERS).get(&id)
            && s.alive.load(Ordering::SeqCst)
        {
            return Some(Arc::clone(s));
        }
        let connect = {
            let master = master.clone();
            rt::spawn_global(async move { master.pubsub_async().await })
        };
        let pubsub = connect.await.ok()??.ok()?;
        let (sink, stream) = pubsub.split();
        let made = Arc::new(Subscriber {
            sink,
            channels: Mutex::default(),
            ops: tokio::sync::Mutex::new(()),
            alive: AtomicBool::new(true),
        });
        let mut all = lock(&SUBSCRIBERS);
        if let Some(s) = all.get(&id)
            && s.alive.load(Ordering::SeqCst)
        {
            // Another waiter connected meanwhile: use that one (ours closes as it drops).
            return Some(Arc::clone(s));
        }
        all.insert(id.clone(), Arc::clone(&made));
        drop(all);
        rt::spawn_global(dispatch(id, Arc::downgrade(&made), stream));
        Some(made)
    }

    /// Starts listening on `key`'s channel (subscribing if nobody here listens yet).
    pub(super) async fn listen(self: &Arc<Self>, key: &str) -> Listening {
        let channel = {
            let mut channels = lock(&self.channels);
            let channel = Arc::clone(channels.entry(key.to_owned()).or_default());
            channel.listeners.fetch_add(1, Ordering::SeqCst);
            channel
        };
        let listening = Listening {
            subscriber: Arc::clone(self),
            channel: Arc::clone(&channel),
            key: key.to_owned(),
        };
        let _ops = self.ops.lock().await;
        if !channel.subscribed.load(Ordering::SeqCst)
            && self.sink.clone().subscribe(key).await.is_ok()
        {
            channel.subscribed.store(true, Ordering::SeqCst);
        }
        listening
    }
}

/// Delivers the messages of one subscriber connection to its channels, until it drops.
pub(super) async fn dispatch(
    id: String,
    subscriber: Weak<Subscriber>,
    mut stream: redis::aio::PubSubStream,
) {
    while let Some(msg) = stream.next().await {
        let Some(s) = subscriber.upgrade() else {
            return;
        };
        let channel = lock(&s.channels).get(msg.get_channel_name()).cloned();
        if let Some(channel) = channel {
            channel.fired.fetch_add(1, Ordering::SeqCst);
            channel.notify.notify_waiters();
        }
    }
    // The connection dropped: wake everybody (they look again, and poll), and let the next
    // waiter connect anew.
    if let Some(s) = subscriber.upgrade() {
        s.alive.store(false, Ordering::SeqCst);
        let mut all = lock(&SUBSCRIBERS);
        if all.get(&id).is_some_and(|current| Arc::ptr_eq(current, &s)) {
            all.remove(&id);
        }
        drop(all);
        for channel in lock(&s.channels).values() {
            channel.fired.fetch_add(1, Ordering::SeqCst);
            channel.notify.notify_waiters();
        }
    }
}

/// A waiter's interest in one channel; the last one to go unsubscribes (in the background).
pub(crate) struct Listening {
    pub(super) subscriber: Arc<Subscriber>,
    pub(super) channel: Arc<Channel>,
    pub(super) key: String,
}

impl Drop for Listening {
    fn drop(&mut self) {
        if self.channel.listeners.fetch_sub(1, Ordering::SeqCst) != 1 {
            return;
        }
        let (subscriber, channel, key) = (
            Arc::clone(&self.subscriber),
            Arc::clone(&self.channel),
            std::mem::take(&mut self.key),
        );
        rt::spawn_global(async move {
            let _ops = subscriber.ops.lock().await;
            {
                let mut channels = lock(&subscriber.channels);
                if channel.listeners.load(Ordering::SeqCst) != 0 {
                    return;
                }
                if channels
                    .get(&key)
                    .is_some_and(|current| Arc::ptr_eq(current, &channel))
                {
                    channels.remove(&key);
                }
            }
            if channel.subscribed.swap(false, Ordering::SeqCst) {
                let _ = subscriber.sink.clone().unsubscribe(&key).await;
            }
        });
    }
}
