//! Redis Sentinel: finding the master, following `+switch-master`, and the async connection
//! that reconnects to the current master.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{RedisError, RedisResult};

use super::SentinelOptions;
use super::poisons;
use crate::sync::lock;

/// A Sentinel target for these sentinel URLs and settings: redis-rs's Sentinel client (it asks
/// the sentinels for the master named `name`, checks with `ROLE` that the node is a master, and
/// gives a client for it), and what the `+switch-master` watch needs.
pub(super) fn sentinel_target(
    urls: &[String],
    name: &str,
    opts: &SentinelOptions,
    certs: Option<super::tls::Certs>,
) -> RedisResult<SentinelTarget> {
    let invalid =
        |message: &'static str| RedisError::from((redis::ErrorKind::InvalidClientConfig, message));
    if urls.is_empty() {
        return Err(invalid("a Sentinel handle needs at least one sentinel URL"));
    }
    let infos = urls
        .iter()
        .map(|u| redis::IntoConnectionInfo::into_connection_info(u.as_str()))
        .collect::<RedisResult<Vec<_>>>()?;
    if infos.iter().any(|i| i.redis_settings().db() != 0) {
        return Err(invalid(
            "sentinel URLs name no database (use .db(n) for the master's)",
        ));
    }
    #[cfg(feature = "tls-rustls")]
    let tls_sentinels = infos
        .iter()
        .any(|i| matches!(i.addr(), redis::ConnectionAddr::TcpTls { .. }));
    // The protocol in the sentinel URLs (`?protocol=resp3`) is used for the master too.
    let protocol = infos.first().map_or(redis::ProtocolVersion::RESP2, |i| {
        i.redis_settings().protocol()
    });
    let mut b = SentinelClientBuilder::new(
        infos.iter().map(|i| i.addr().clone()),
        name,
        SentinelServerType::Master,
    )?
    .set_client_to_sentinel_protocol(protocol)
    .set_client_to_redis_protocol(protocol)
    .set_client_to_redis_db(opts.db);
    let mut sentinel_settings = redis::RedisConnectionInfo::default().set_protocol(protocol);
    let mut master_settings = redis::RedisConnectionInfo::default()
        .set_protocol(protocol)
        .set_db(opts.db);
    // Credentials for the sentinels: the builder's, else the first URL that has a password.
    let from_url = infos.iter().find_map(|i| {
        let s = i.redis_settings();
        s.password()
            .map(|pw| (s.username().map(str::to_owned), pw.to_owned()))
    });
    if let Some((user, pw)) = opts.sentinel_auth.clone().or(from_url) {
        if let Some(user) = user {
            sentinel_settings = sentinel_settings.set_username(&user);
            b = b.set_client_to_sentinel_username(user);
        }
        sentinel_settings = sentinel_settings.set_password(&pw);
        b = b.set_client_to_sentinel_password(pw);
    }
    if let Some((user, pw)) = &opts.master_auth {
        if let Some(user) = user {
            master_settings = master_settings.set_username(user);
            b = b.set_client_to_redis_username(user);
        }
        master_settings = master_settings.set_password(pw);
        b = b.set_client_to_redis_password(pw);
    }
    #[cfg(feature = "tls-rustls")]
    if tls_sentinels && let Some(certs) = &certs {
        b = b.set_client_to_sentinel_certificates(certs.clone());
    }
    if let Some(insecure) = opts.master_tls {
        b = b.set_client_to_redis_tls_mode(if insecure {
            redis::TlsMode::Insecure
        } else {
            redis::TlsMode::Secure
        });
        #[cfg(feature = "tls-rustls")]
        if let Some(certs) = &certs {
            b = b.set_client_to_redis_certificates(certs.clone());
        }
    }
    let sentinels = infos
        .into_iter()
        .map(|info| {
            let tls = matches!(info.addr(), redis::ConnectionAddr::TcpTls { .. });
            let info = info.set_redis_settings(sentinel_settings.clone());
            super::tls::client(info, certs.as_ref().filter(|_| tls))
        })
        .collect::<RedisResult<Vec<_>>>()?;
    Ok(SentinelTarget {
        name: name.to_owned(),
        lookup: tokio::sync::Mutex::new(b.build()?),
        master: Mutex::new(Master::default()),
        sentinels,
        master_settings,
        master_tls: opts.master_tls,
        certs: certs.filter(|_| opts.master_tls.is_some()),
        watching: AtomicBool::new(false),
        on_change: std::sync::OnceLock::new(),
    })
}

/// A Sentinel handle's way to its master: redis-rs's Sentinel client, the master it last
/// found, and a watch of the sentinels' `+switch-master` announcements.
///
/// Connections remember which master (`generation`) they were made to. One that fails
/// (refused, dropped, timed out) or answers `READONLY` (its node is a replica now) forgets that
/// master, so the next connection asks the sentinels again. And when a sentinel announces a
/// new master, the handle takes it at once: its idle connections to the old one are dropped
/// and new ones go to the new master, even while the old master still runs and accepts writes
/// (after a manual failover it does, until the sentinels turn it into a replica).
pub(super) struct SentinelTarget {
    pub(super) name: String,
    /// Lookups, one at a time. They run on pottery's own runtime (the client caches async
    /// connections to the sentinels, whose driver tasks must outlive any caller's runtime).
    pub(super) lookup: tokio::sync::Mutex<SentinelClient>,
    pub(super) master: Mutex<Master>,
    /// Clients for the sentinels (credentials and TLS applied), for the watch.
    pub(super) sentinels: Vec<redis::Client>,
    /// How to reach a master at an address a sentinel announces.
    pub(super) master_settings: redis::RedisConnectionInfo,
    pub(super) master_tls: Option<bool>,
    pub(super) certs: Option<super::tls::Certs>,
    /// Whether the watch has been started (by the first lookup).
    pub(super) watching: AtomicBool,
    /// Called after the master is switched or forgotten (the near cache flushes).
    pub(super) on_change: std::sync::OnceLock<Box<dyn Fn() + Send + Sync>>,
}

#[derive(Default)]
pub(super) struct Master {
    /// Bumped whenever the master changes (a lookup, an announcement).
    pub(super) generation: u64,
    pub(super) client: Option<redis::Client>,
    /// Where spans say the server is, made once for the master of `generation`.
    peer: Option<(u64, Arc<super::Peer>)>,
}

/// The host and port a client connects to.
pub(super) fn address_of(client: &redis::Client) -> Option<(String, u16)> {
    match client.get_connection_info().addr() {
        redis::ConnectionAddr::Tcp(host, port)
        | redis::ConnectionAddr::TcpTls { host, port, .. } => Some((host.clone(), *port)),
        _ => None,
    }
}

impl SentinelTarget {
    pub(super) fn current(&self) -> Option<(u64, redis::Client)> {
        let m = lock(&self.master);
        m.client.clone().map(|c| (m.generation, c))
    }

    /// Where spans say the server is: the master last found, if any.
    pub(super) fn peer(&self) -> Option<Arc<super::Peer>> {
        let mut guard = lock(&self.master);
        let m = &mut *guard;
        let client = m.client.as_ref()?;
        match &m.peer {
            Some((generation, peer)) if *generation == m.generation => Some(Arc::clone(peer)),
            _ => {
                let peer = Arc::new(super::Peer::of(
                    client.get_connection_info(),
                    self.master_settings.db(),
                ));
                m.peer = Some((m.generation, Arc::clone(&peer)));
                Some(peer)
            }
        }
    }

    pub(super) fn generation(&self) -> u64 {
        lock(&self.master).generation
    }

    /// Forgets the master that connections of `generation` go to (a newer one is kept).
    pub(super) fn forget(&self, generation: u64) {
        let mut m = lock(&self.master);
        if m.generation == generation && m.client.is_some() {
            tracing::debug!(master = %self.name, "forgetting the master (generation {generation})");
            m.client = None;
            drop(m);
            self.changed();
        }
    }

    fn changed(&self) {
        if let Some(f) = self.on_change.get() {
            f();
        }
    }

    /// A sentinel announced `host:port` as the new master.
    pub(super) fn switch_to(&self, host: &str, port: u16) {
        let addr = match self.master_tls {
            None => redis::ConnectionAddr::Tcp(host.to_owned(), port),
            Some(insecure) => redis::ConnectionAddr::TcpTls {
                host: host.to_owned(),
                port,
                insecure,
                tls_params: None,
            },
        };
        let info = match redis::IntoConnectionInfo::into_connection_info(addr) {
            Ok(info) => info.set_redis_settings(self.master_settings.clone()),
            Err(_) => return,
        };
        let client = super::tls::client(info, self.certs.as_ref());
        let mut m = lock(&self.master);
        if m.client.as_ref().and_then(address_of) == Some((host.to_owned(), port)) {
            return; // known already (every sentinel announces it)
        }
        tracing::debug!(master = %self.name, "a sentinel announced the new master {host}:{port}");
        m.generation += 1;
        // On a client that cannot be made, fall back to asking the sentinels.
        m.client = client.ok();
        drop(m);
        self.changed();
    }

    /// The master, asking the sentinels (within `within`) unless it is known.
    pub(super) async fn master(
        self: &Arc<Self>,
        within: Duration,
    ) -> RedisResult<(u64, redis::Client)> {
        if !self.watching.swap(true, Ordering::Relaxed) {
            drop(crate::exec::rt::spawn_global(watch_switches(
                Arc::downgrade(self),
            )));
        }
        if let Some(found) = self.current() {
            return Ok(found);
        }
        let me = Arc::clone(self);
        let lookup = crate::exec::rt::spawn_global(async move {
            let found = tokio::time::timeout(within, async {
                let mut sentinels = me.lookup.lock().await;
                // Another caller may have found it while this one waited.
                if let Some(found) = me.current() {
                    return Ok(found);
                }
                let before = me.generation();
                let client = sentinels.async_get_client().await?;
                let mut m = lock(&me.master);
                if m.generation != before
                    && let Some(announced) = &m.client
                {
                    // A sentinel announced a new master meanwhile: newer than this answer.
                    return Ok((m.generation, announced.clone()));
                }
                m.generation += 1;
                m.client = Some(client.clone());
                Ok((m.generation, client))
            })
            .await;
            found.unwrap_or_else(|_| {
                Err(RedisError::from(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the sentinels did not name a reachable master in time",
                )))
            })
        });
        lookup.await.unwrap_or_else(|e| {
            Err(RedisError::from(std::io::Error::other(format!(
                "sentinel lookup failed: {e}"
            ))))
        })
    }

    /// Whether a connection to the master that saw `e` should be dropped and the master
    /// looked up again.
    pub(super) fn stale(e: &RedisError) -> bool {
        poisons(e) || is_readonly(e)
    }
}

/// Follows every sentinel's `+switch-master` channel (as Jedis does) while the handle lives,
/// and switches the handle to each new master of its name announced there. A sentinel that
/// cannot be reached is tried again every second.
pub(super) async fn watch_switches(target: std::sync::Weak<SentinelTarget>) {
    let Some(t) = target.upgrade() else { return };
    let sentinels = t.sentinels.clone();
    drop(t);
    let watches = sentinels.into_iter().map(|sentinel| {
        let target = target.clone();
        async move {
            while target.strong_count() > 0 {
                watch_one(&target, &sentinel).await;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    });
    crate::exec::race::join_all(watches).await;
}

/// One sentinel's `+switch-master` messages, until its connection drops or the handle goes.
pub(super) async fn watch_one(target: &std::sync::Weak<SentinelTarget>, sentinel: &redis::Client) {
    use futures_util::StreamExt;
    let connect = async {
        let mut pubsub = sentinel.get_async_pubsub().await?;
        pubsub.subscribe("+switch-master").await?;
        Ok::<_, RedisError>(pubsub)
    };
    let Ok(Ok(pubsub)) = tokio::time::timeout(Duration::from_secs(5), connect).await else {
        return;
    };
    let mut messages = pubsub.into_on_message();
    loop {
        match tokio::time::timeout(Duration::from_secs(1), messages.next()).await {
            Err(_) if target.strong_count() == 0 => return,
            Err(_) => {}
            Ok(None) => return,
            Ok(Some(msg)) => {
                let Some(t) = target.upgrade() else { return };
                // "<name> <old ip> <old port> <new ip> <new port>"
                let payload: String = msg.get_payload().unwrap_or_default();
                let fields: Vec<&str> = payload.split_whitespace().collect();
                if let [name, _, _, host, port] = fields[..]
                    && name == t.name
                    && let Ok(port) = port.parse::<u16>()
                {
                    t.switch_to(host, port);
                }
            }
        }
    }
}

/// `READONLY`: the node is a replica (a demoted master, after a failover).
pub(super) fn is_readonly(e: &RedisError) -> bool {
    e.code() == Some("READONLY")
        || e.detail()
            .is_some_and(|d| d.contains("READONLY You can't write"))
}
