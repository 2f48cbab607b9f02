//! The RESP2 `REDIRECT` mode's subscriber: where `HELLO 3` is refused, invalidations come as
//! messages on `__redis__:invalidate` to a connection whose id the tracking connection names
//! (`CLIENT TRACKING ON REDIRECT <id>`). That connection is a blocking one on a thread of its
//! own: its id is asked (`CLIENT ID`) before it subscribes, which redis-rs's async pub/sub
//! cannot do.
//!
//! The order RESP3 gives for free (an invalidation the server sent before a reply is read
//! before it) is restored with markers: each fill's pipeline ends with a `PUBLISH` of a
//! sequence number to the subscriber's own channel, which the server queues behind every
//! invalidation it sent before the read ran; the fill inserts its reply only once the
//! subscriber has applied everything up to its marker.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use redis::{RedisError, RedisResult, Value};

use super::{HEARTBEAT_BOUND, HEARTBEAT_EVERY, lock};

/// The channel the server publishes redirected invalidations on.
const CHANNEL: &str = "__redis__:invalidate";

/// A subscriber's markers: its own channel, the next sequence number, and those it has seen
/// (after applying every message before them).
pub(super) struct Marks {
    pub(super) channel: String,
    next: AtomicU64,
    got: Mutex<HashSet<u64>>,
    seen: tokio::sync::watch::Sender<u64>,
}

/// Markers not waited for (their fill gave up) are forgotten past this many.
const MARKS_KEPT: usize = 4096;

impl Marks {
    fn new() -> Marks {
        static SUBSCRIBERS: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Marks {
            // Unique across processes and servers (a cluster's PUBLISH reaches every node).
            channel: format!(
                "__pottery:near:{}:{}:{nanos}",
                std::process::id(),
                SUBSCRIBERS.fetch_add(1, Ordering::Relaxed)
            ),
            next: AtomicU64::new(0),
            got: Mutex::new(HashSet::new()),
            seen: tokio::sync::watch::Sender::new(0),
        }
    }

    /// A new marker's number.
    pub(super) fn next(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn got(&self, seq: u64) {
        let mut got = lock(&self.got);
        if got.len() >= MARKS_KEPT {
            got.clear();
        }
        got.insert(seq);
        drop(got);
        self.seen.send_modify(|n| *n += 1);
    }

    /// Waits (at most `within`) until the subscriber has seen marker `seq`, and every
    /// message before it; `false` when it has not.
    pub(super) async fn wait(&self, seq: u64, within: Duration) -> bool {
        let mut changes = self.seen.subscribe();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if lock(&self.got).remove(&seq) {
                return true;
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                _ => return lock(&self.got).remove(&seq),
            }
        }
    }
}

/// What the subscriber reports to (the near cache): invalidations, and the loss of tracking
/// connection number `id`.
pub(super) trait Listener: Send + Sync + 'static {
    /// The keys in `payload` changed (`None`: everything may have).
    fn invalidated(&self, payload: Option<Value>);
    /// Tracking connection `id` can no longer be trusted.
    fn lose(&self, id: u64);
}

/// Starts the subscriber of tracking connection number `id` on the server `client` reaches
/// (RESP2), and returns its connection's id once it is subscribed. It applies every
/// invalidation to `near`; when its connection fails or does not answer a `PING` within
/// [`HEARTBEAT_BOUND`] after [`HEARTBEAT_EVERY`] of silence, it loses the tracking connection
/// (everything is flushed). It ends when `stop` is set or the near cache is dropped.
pub(super) async fn start<L: Listener>(
    near: Weak<L>,
    id: u64,
    client: redis::Client,
    connection_timeout: Duration,
    stop: Arc<AtomicBool>,
) -> RedisResult<(i64, Arc<Marks>)> {
    let (ready, subscribed) = tokio::sync::oneshot::channel::<RedisResult<i64>>();
    let stopped = Arc::clone(&stop);
    let marks = Arc::new(Marks::new());
    let thread_marks = Arc::clone(&marks);
    std::thread::Builder::new()
        .name("pottery-near-redirect".into())
        .spawn(move || {
            let mut conn = match connect(&client, connection_timeout) {
                Ok(c) => c,
                Err(e) => {
                    let _ = ready.send(Err(e));
                    return;
                }
            };
            let client_id = conn.1;
            // One PubSub for the thread's life: dropping it unsubscribes.
            let mut pubsub = conn.0.as_pubsub();
            if let Err(e) = pubsub.subscribe(&[CHANNEL, thread_marks.channel.as_str()]) {
                let _ = ready.send(Err(e));
                return;
            }
            let _ = ready.send(Ok(client_id));
            listen(&mut pubsub, &near, id, &stopped, &thread_marks);
        })
        .map_err(RedisError::from)?;
    match tokio::time::timeout(2 * connection_timeout, subscribed).await {
        Ok(Ok(r)) => r.map(|client_id| (client_id, marks)),
        _ => {
            stop.store(true, Ordering::SeqCst);
            Err(RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "near cache: the REDIRECT subscriber did not subscribe in time",
            )))
        }
    }
}

/// A connection to subscribe with, and its id.
fn connect(
    client: &redis::Client,
    connection_timeout: Duration,
) -> RedisResult<(redis::Connection, i64)> {
    let mut conn = client.get_connection_with_timeout(connection_timeout)?;
    conn.set_read_timeout(Some(connection_timeout))?;
    conn.set_write_timeout(Some(connection_timeout))?;
    let client_id: i64 = redis::cmd("CLIENT").arg("ID").query(&mut conn)?;
    Ok((conn, client_id))
}

fn listen<L: Listener>(
    pubsub: &mut redis::PubSub<'_>,
    near: &Weak<L>,
    id: u64,
    stop: &AtomicBool,
    marks: &Marks,
) {
    let lost = |near: &Weak<L>| {
        if let Some(near) = near.upgrade() {
            near.lose(id);
        }
    };
    loop {
        if stop.load(Ordering::SeqCst) || near.strong_count() == 0 {
            return;
        }
        if pubsub.set_read_timeout(Some(HEARTBEAT_EVERY)).is_err() {
            return lost(near);
        }
        match pubsub.get_message() {
            Ok(msg) => {
                if msg.get_channel_name() == marks.channel {
                    match msg.get_payload::<u64>() {
                        Ok(seq) => marks.got(seq),
                        // Not one of ours: nothing can be trusted.
                        Err(_) => return lost(near),
                    }
                    continue;
                }
                if msg.get_channel_name() != CHANNEL {
                    continue;
                }
                let Some(near) = near.upgrade() else { return };
                match msg.get_payload::<Value>() {
                    Ok(Value::Nil) | Err(_) => near.invalidated(None),
                    Ok(keys) => near.invalidated(Some(keys)),
                }
            }
            Err(e) if e.is_timeout() => {
                if stop.load(Ordering::SeqCst) || near.strong_count() == 0 {
                    return;
                }
                // Quiet: the connection must still answer.
                let answered = pubsub.set_read_timeout(Some(HEARTBEAT_BOUND)).is_ok()
                    && pubsub.ping::<Value>().is_ok();
                if !answered {
                    return lost(near);
                }
            }
            Err(_) => return lost(near),
        }
    }
}
