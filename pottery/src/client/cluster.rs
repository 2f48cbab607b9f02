//! Cluster routing: the slot map, and direct connections to masters (for batches and `ASK`).

use std::sync::Arc;
use std::time::Duration;

use redis::{RedisError, RedisResult, Value};

use super::MAX_RUNTIMES;
use super::Redis;
use super::Target;
use crate::sync::lock;

/// How to reach one node of a cluster directly: the first node's settings (credentials, TLS,
/// protocol), at another address.
pub(super) struct NodeTemplate {
    pub(super) info: redis::ConnectionInfo,
    pub(super) certs: Option<super::tls::Certs>,
}

impl NodeTemplate {
    /// A client of the node at `addr` (`host:port`).
    pub(super) fn client(&self, addr: &str) -> RedisResult<redis::Client> {
        let bad = || {
            RedisError::from((
                redis::ErrorKind::Client,
                "not a node address",
                addr.to_owned(),
            ))
        };
        let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        let host = host.to_owned();
        let to = match self.info.addr() {
            redis::ConnectionAddr::TcpTls {
                insecure,
                tls_params,
                ..
            } => redis::ConnectionAddr::TcpTls {
                host,
                port,
                insecure: *insecure,
                tls_params: tls_params.clone(),
            },
            _ => redis::ConnectionAddr::Tcp(host, port),
        };
        let info = self.info.clone().set_addr(to);
        super::tls::client(info, self.certs.as_ref())
    }
}

/// Which master owns each hash slot, as `CLUSTER SLOTS` said: an index per distinct master,
/// and their addresses.
#[derive(PartialEq, Eq, Debug)]
pub(crate) struct SlotOwners(Vec<u16>, Vec<String>);

impl SlotOwners {
    /// Nobody (a slot `CLUSTER SLOTS` did not list).
    const NOBODY: u16 = u16::MAX;

    /// The address (`host:port`) of the master of index `owner`.
    pub(crate) fn address(&self, owner: u16) -> Option<&str> {
        self.1.get(usize::from(owner)).map(String::as_str)
    }

    /// The index of the master that owns `slot`, if known.
    pub(crate) fn owner(&self, slot: u16) -> Option<u16> {
        self.0
            .get(usize::from(slot))
            .copied()
            .filter(|o| *o != Self::NOBODY)
    }

    /// From a `CLUSTER SLOTS` reply: `[[start, end, [host, port, ..], replicas..], ..]`.
    pub(super) fn parse(reply: &Value) -> Option<SlotOwners> {
        let Value::Array(ranges) = reply else {
            return None;
        };
        let mut owners = vec![Self::NOBODY; 16384];
        let mut masters: Vec<String> = Vec::new();
        for range in ranges {
            let Value::Array(parts) = range else {
                return None;
            };
            let (Some(Value::Int(start)), Some(Value::Int(end)), Some(Value::Array(master))) =
                (parts.first(), parts.get(1), parts.get(2))
            else {
                return None;
            };
            let host = match master.first()? {
                Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
                Value::SimpleString(s) => s.clone(),
                _ => return None,
            };
            let Some(Value::Int(port)) = master.get(1) else {
                return None;
            };
            let name = format!("{host}:{port}");
            let index = match masters.iter().position(|m| *m == name) {
                Some(i) => i,
                None => {
                    masters.push(name);
                    masters.len() - 1
                }
            };
            let index = u16::try_from(index).ok()?;
            let (start, end) = (usize::try_from(*start).ok()?, usize::try_from(*end).ok()?);
            for slot in owners.get_mut(start..=end)? {
                *slot = index;
            }
        }
        Some(SlotOwners(owners, masters))
    }
}

impl Redis {
    /// On a cluster, which master owns each slot (read once with `CLUSTER SLOTS`, then kept
    /// until [`forget_slot_owners`](Self::forget_slot_owners)); `None` elsewhere, or when
    /// the map cannot be read (a batch then sends one pipeline per slot).
    pub(crate) async fn slot_owners(&self) -> Option<Arc<SlotOwners>> {
        if !self.is_cluster() {
            return None;
        }
        let known = lock(&self.inner.slot_owners).clone();
        if known.is_some() {
            return known;
        }
        let mut conn = self.async_connection().await.ok()?;
        let owners = Arc::new(SlotOwners::parse(&conn.cluster_slots().await.ok()?)?);
        *lock(&self.inner.slot_owners) = Some(Arc::clone(&owners));
        Some(owners)
    }

    /// A direct connection to the cluster node at `addr` (`host:port`, as `CLUSTER SLOTS`
    /// names it), with the handle's credentials, TLS and timeouts: a batch sends a master's
    /// pipeline on it, and sees each reply as it is (redis-rs's cluster connection turns a
    /// pipeline with one `MOVED` in it into one error, losing the other replies).
    pub(crate) async fn node_connection(
        &self,
        addr: &str,
    ) -> RedisResult<redis::aio::MultiplexedConnection> {
        let Some(template) = self.cluster_template() else {
            return Err(RedisError::from((
                redis::ErrorKind::Client,
                "not a cluster handle",
            )));
        };
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| RedisError::from((redis::ErrorKind::Client, "no Tokio runtime")))?
            .id();
        if let Some((_, _, conn)) = lock(&self.inner.nodes_aio)
            .iter()
            .find(|(rt, a, _)| *rt == runtime && a == addr)
        {
            return Ok(conn.clone());
        }
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.inner.opts.connection_timeout))
            .set_response_timeout(self.inner.opts.response_timeout);
        let conn = template
            .client(addr)?
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let mut cache = lock(&self.inner.nodes_aio);
        cache.retain(|(rt, a, _)| !(*rt == runtime && a == addr));
        if cache.len() >= MAX_RUNTIMES * 4 {
            cache.remove(0);
        }
        cache.push((runtime, addr.to_owned(), conn.clone()));
        Ok(conn)
    }

    /// A new blocking connection to the cluster node at `addr` (`host:port`), with the
    /// handle's credentials, TLS, protocol and timeouts (replies bounded by `timeout` when
    /// given): for the rare request that must go to one node, such as one an `ASK` redirect
    /// sends to the importing master.
    pub(crate) fn node_blocking_connection(
        &self,
        addr: &str,
        timeout: Option<Duration>,
    ) -> RedisResult<redis::Connection> {
        let Some(template) = self.cluster_template() else {
            return Err(RedisError::from((
                redis::ErrorKind::Client,
                "not a cluster handle",
            )));
        };
        let conn = template
            .client(addr)?
            .get_connection_with_timeout(self.inner.opts.connection_timeout)?;
        let replies = timeout.or(self.inner.opts.response_timeout);
        conn.set_read_timeout(replies)?;
        conn.set_write_timeout(replies)?;
        Ok(conn)
    }

    /// Drops the direct connection to `addr` (after it failed) for this runtime.
    pub(crate) fn forget_node_connection(&self, addr: &str) {
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let runtime = handle.id();
            lock(&self.inner.nodes_aio).retain(|(rt, a, _)| !(*rt == runtime && a == addr));
        }
    }

    /// The template of a cluster handle's direct node connections.
    fn cluster_template(&self) -> Option<&NodeTemplate> {
        match &self.inner.target {
            #[cfg(feature = "cluster")]
            Target::Cluster(_, template) => Some(template),
            _ => None,
        }
    }

    /// Drops the slot map: the next batch reads it anew (a slot moved: a near cache forgets
    /// everything, and reads the map anew too).
    pub(crate) fn forget_slot_owners(&self) {
        *lock(&self.inner.slot_owners) = None;
        if let Some(near) = self.near() {
            near.topology_changed();
        }
    }
}
