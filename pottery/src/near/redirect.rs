//! The RESP2 `REDIRECT` mode's subscriber: where `HELLO 3` is refused, invalidations come as
//! messages on `__redis__:invalidate` to a connection whose id the tracking connection names
//! (`CLIENT TRACKING ON REDIRECT <id>`). That connection is a blocking one on a thread of its
//! own: its id is asked (`CLIENT ID`) before it subscribes, which redis-rs's async pub/sub
//! cannot do.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use redis::{RedisError, RedisResult, Value};

use super::link::Near;
use super::{HEARTBEAT_BOUND, HEARTBEAT_EVERY};

/// The channel the server publishes redirected invalidations on.
const CHANNEL: &str = "__redis__:invalidate";

/// Starts the subscriber of tracking connection number `id` on the server `client` reaches
/// (RESP2), and returns its connection's id once it is subscribed. It applies every
/// invalidation to `near`; when its connection fails or does not answer a `PING` within
/// [`HEARTBEAT_BOUND`] after [`HEARTBEAT_EVERY`] of silence, it loses the tracking connection
/// (everything is flushed). It ends when `stop` is set or the near cache is dropped.
pub(super) async fn start(
    near: Weak<Near>,
    id: u64,
    client: redis::Client,
    connection_timeout: Duration,
    stop: Arc<AtomicBool>,
) -> RedisResult<i64> {
    let (ready, subscribed) = tokio::sync::oneshot::channel::<RedisResult<i64>>();
    let stopped = Arc::clone(&stop);
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
            if let Err(e) = pubsub.subscribe(CHANNEL) {
                let _ = ready.send(Err(e));
                return;
            }
            let _ = ready.send(Ok(client_id));
            listen(&mut pubsub, &near, id, &stopped);
        })
        .map_err(RedisError::from)?;
    match tokio::time::timeout(2 * connection_timeout, subscribed).await {
        Ok(Ok(r)) => r,
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

fn listen(pubsub: &mut redis::PubSub<'_>, near: &Weak<Near>, id: u64, stop: &AtomicBool) {
    let lost = |near: &Weak<Near>| {
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
