//! A handle's near cache: the store, and the tracking connection that keeps it fresh.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{PushInfo, PushKind, Value};

use super::plan::{Read, Touched, resp2};
use super::store::Store;
use super::{HEARTBEAT_BOUND, HEARTBEAT_EVERY, NearCache, NearCacheStats, lock};

/// How long reads go uncached after a failed attempt to open the tracking connection.
const RECONNECT_AFTER: Duration = Duration::from_millis(100);

/// The live tracking connection, with its number.
struct Link {
    id: u64,
    conn: MultiplexedConnection,
}

pub(crate) struct Near {
    settings: NearCache,
    /// The same server and database as the handle, spoken in RESP3.
    client: redis::Client,
    connection_timeout: Duration,
    response_timeout: Option<Duration>,
    store: Mutex<Store>,
    link: Mutex<Option<Link>>,
    /// No new tracking connection is tried before this instant.
    retry_at: Mutex<Option<Instant>>,
    connecting: tokio::sync::Mutex<()>,
    links: AtomicU64,
    heartbeat_started: std::sync::Once,
    /// Set when the server refused RESP3 or tracking (an answer, not a failure to connect):
    /// the near cache then stays off and every read goes to the server.
    refused: std::sync::atomic::AtomicBool,
}

impl Near {
    /// A near cache for the server `client` reaches (no I/O).
    pub(crate) fn new(
        settings: NearCache,
        client: &redis::Client,
        connection_timeout: Duration,
        response_timeout: Option<Duration>,
    ) -> redis::RedisResult<Near> {
        let info = client.get_connection_info().clone();
        let settings3 = info
            .redis_settings()
            .clone()
            .set_protocol(redis::ProtocolVersion::RESP3);
        let client = redis::Client::open(info.set_redis_settings(settings3))?;
        Ok(Near {
            store: Mutex::new(Store::new(settings.max_entries, settings.max_bytes)),
            settings,
            client,
            connection_timeout,
            response_timeout,
            link: Mutex::new(None),
            retry_at: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
            links: AtomicU64::new(0),
            heartbeat_started: std::sync::Once::new(),
            refused: std::sync::atomic::AtomicBool::new(false),
        })
    }

    pub(crate) fn stats(&self) -> NearCacheStats {
        let s = lock(&self.store);
        NearCacheStats {
            hits: s.counters.hits,
            misses: s.counters.misses,
            invalidations: s.counters.invalidations,
            flushes: s.counters.flushes,
            entries: s.entries,
            bytes: s.bytes,
            evictions: s.counters.evictions,
            rejected_fills: s.counters.rejected_fills,
            connections: self.links.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn flush(&self) {
        lock(&self.store).flush();
    }

    /// The cached reply to the read `packed` of `key`, if any may be served now.
    pub(crate) fn get(&self, key: &[u8], packed: &[u8]) -> Option<Value> {
        // No tracking connection: nothing cached may be trusted (a flush emptied the store
        // when it was lost), and nothing is served.
        let now = Instant::now();
        lock(&self.store).get(key, packed, now)
    }

    /// Around this handle's own write: before it is sent and when its reply arrives.
    pub(crate) fn touch(&self, touched: &Touched) {
        let mut store = lock(&self.store);
        match touched {
            Touched::All => store.flush(),
            Touched::Keys(keys) => {
                for k in keys {
                    store.invalidate(k);
                }
            }
        }
    }

    /// A push from tracking connection number `id`.
    fn on_push(&self, id: u64, info: PushInfo) {
        match info.kind {
            PushKind::Invalidate => {
                let mut store = lock(&self.store);
                match info.data.into_iter().next() {
                    Some(Value::Array(keys)) | Some(Value::Set(keys)) => {
                        for k in keys {
                            if let Value::BulkString(k) = k {
                                store.invalidate(&k);
                            } else {
                                // Not a key name: trust nothing.
                                store.flush();
                            }
                        }
                    }
                    // A null (FLUSHALL, FLUSHDB, SWAPDB) or anything unexpected.
                    _ => store.flush(),
                }
            }
            PushKind::Disconnection => self.lose(id),
            _ => {}
        }
    }

    /// Tracking connection number `id` is lost (or not trusted): invalidations may have been
    /// missed, so everything goes.
    fn lose(&self, id: u64) {
        let mut link = lock(&self.link);
        if link.as_ref().is_some_and(|l| l.id == id) {
            *link = None;
        }
        drop(link);
        self.flush();
    }

    /// The tracking connection, opened if there is none (at most one attempt per
    /// [`RECONNECT_AFTER`]); `None` when it cannot be had now.
    async fn connection(self: &Arc<Self>) -> Option<(u64, MultiplexedConnection)> {
        if let Some(l) = lock(&self.link).as_ref() {
            return Some((l.id, l.conn.clone()));
        }
        if self.refused.load(Ordering::Relaxed)
            || lock(&self.retry_at).is_some_and(|at| Instant::now() < at)
        {
            return None;
        }
        let _one = self.connecting.lock().await;
        if let Some(l) = lock(&self.link).as_ref() {
            return Some((l.id, l.conn.clone()));
        }
        let id = self.links.fetch_add(1, Ordering::Relaxed) + 1;
        let weak: Weak<Near> = Arc::downgrade(self);
        let sender = move |info: PushInfo| -> Result<(), ()> {
            if let Some(near) = weak.upgrade() {
                near.on_push(id, info);
            }
            Ok(())
        };
        let config = redis::AsyncConnectionConfig::new()
            .set_push_sender(sender)
            .set_connection_timeout(Some(self.connection_timeout))
            .set_response_timeout(self.response_timeout);
        let client = self.client.clone();
        // On pottery's runtime: the connection's reader must outlive the caller's runtime
        // (a blocking caller's runs only while it waits).
        let opened = crate::exec::rt::spawn_global(async move {
            let mut conn = client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            redis::cmd("CLIENT")
                .arg("TRACKING")
                .arg("ON")
                .query_async::<()>(&mut conn)
                .await?;
            Ok::<_, redis::RedisError>(conn)
        })
        .await;
        match opened {
            Ok(Ok(conn)) => {
                // Whatever was cached came from an earlier connection (flushed when it was
                // lost; flushed again to be sure).
                self.flush();
                *lock(&self.link) = Some(Link {
                    id,
                    conn: conn.clone(),
                });
                *lock(&self.retry_at) = None;
                self.start_heartbeat();
                Some((id, conn))
            }
            Ok(Err(e))
                if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError) =>
            {
                // HELLO 3 or CLIENT TRACKING refused (a server before 6.0, a proxy, an ACL):
                // no near cache on this handle, ever (never tracking on RESP2 without a
                // redirect).
                tracing::warn!(error = %e, "near cache off: the server refused RESP3 or CLIENT TRACKING");
                self.refused.store(true, Ordering::Relaxed);
                None
            }
            _ => {
                *lock(&self.retry_at) = Some(Instant::now() + RECONNECT_AFTER);
                None
            }
        }
    }

    /// Pings the tracking connection every [`HEARTBEAT_EVERY`]; one not answered within
    /// [`HEARTBEAT_BOUND`] is given up. Ends when the near cache is dropped.
    fn start_heartbeat(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        self.heartbeat_started.call_once(|| {
            drop(crate::exec::rt::spawn_global(async move {
                loop {
                    tokio::time::sleep(HEARTBEAT_EVERY).await;
                    let Some(near) = weak.upgrade() else { return };
                    let link = lock(&near.link).as_ref().map(|l| (l.id, l.conn.clone()));
                    drop(near);
                    let Some((id, mut conn)) = link else { continue };
                    let ping = redis::cmd("PING");
                    let answered =
                        tokio::time::timeout(HEARTBEAT_BOUND, ping.query_async::<Value>(&mut conn))
                            .await;
                    if !matches!(answered, Ok(Ok(_))) {
                        let Some(near) = weak.upgrade() else { return };
                        near.lose(id);
                    }
                }
            }));
        });
    }

    /// Reads `read` from the server on the tracking connection (so the server tracks its
    /// key), caching the reply unless its key was invalidated meanwhile. `None` when the
    /// tracking connection cannot be had or the read failed: the caller then reads the usual
    /// way, uncached.
    pub(crate) async fn fill(self: &Arc<Self>, read: &Read, cmd: &redis::Cmd) -> Option<Value> {
        let (id, mut conn) = self.connection().await?;
        let seen = lock(&self.store).begin_fill(&read.key);
        // Ends the fill even if this future is dropped while the read is in flight.
        let mut guard = FillGuard {
            near: self,
            key: &read.key,
            seen: Some(seen),
        };
        let sent = Instant::now();
        let mut pipe = redis::pipe();
        pipe.add_command(cmd.clone())
            .cmd("PTTL")
            .arg(read.key.as_slice());
        let replies = pipe.query_async::<Vec<Value>>(&mut conn).await;
        let (value, pttl) = match replies {
            Ok(r) if r.len() == 2 => {
                let mut r = r.into_iter();
                (r.next()?, r.next()?)
            }
            Ok(_) => return None,
            Err(e) => {
                if crate::client::poisons(&e) || e.is_io_error() || e.is_timeout() {
                    self.lose(id);
                }
                return None;
            }
        };
        if matches!(value, Value::ServerError(_)) {
            return None;
        }
        let value = resp2(value);
        #[cfg(feature = "testing")]
        crate::testing::near_hook::before_insert(&read.key);
        // The key's own expiry, measured from before the read was sent, less a millisecond:
        // the server counts whole milliseconds (a PTTL of n may mean n - 1 and a fraction).
        let mut until = sent + self.settings.max_age;
        if let Value::Int(ms) = pttl
            && ms >= 0
        {
            // ms >= 0 here; a PTTL of 0 leaves nothing to serve (exact, not a clamp).
            let left =
                Duration::from_millis(ms.unsigned_abs()).saturating_sub(Duration::from_millis(1));
            until = until.min(sent + left);
        }
        if let Some(seen) = guard.seen.take() {
            lock(&self.store).end_fill(
                &read.key,
                seen,
                Some((read.packed.clone(), value.clone(), until)),
            );
        }
        Some(value)
    }
}

/// Ends a fill that did not insert (an error, or its future dropped).
struct FillGuard<'a> {
    near: &'a Near,
    key: &'a [u8],
    seen: Option<super::store::Snapshot>,
}

impl Drop for FillGuard<'_> {
    fn drop(&mut self) {
        if let Some(seen) = self.seen.take() {
            lock(&self.near.store).end_fill(self.key, seen, None);
        }
    }
}
