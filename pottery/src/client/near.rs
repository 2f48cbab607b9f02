//! What the near cache needs of its handle: the server that owns a key (the one server, the
//! Sentinel's current master, the cluster master of the key's slot), and news of a master
//! switch.

use std::sync::{Arc, Weak};

use redis::RedisResult;

use super::{Inner, Redis, SlotOwners, Target};

/// A handle that does not keep itself alive (the near cache lives inside it).
#[derive(Clone)]
pub(crate) struct WeakRedis(Weak<Inner>);

impl WeakRedis {
    pub(crate) fn upgrade(&self) -> Option<Redis> {
        self.0.upgrade().map(|inner| Redis { inner })
    }
}

/// Where a handle's keys live, as the near cache sees it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Layout {
    Single,
    Cluster,
    Sentinel,
}

impl Redis {
    pub(crate) fn downgrade(&self) -> WeakRedis {
        WeakRedis(Arc::downgrade(&self.inner))
    }

    pub(crate) fn layout(&self) -> Layout {
        match &self.inner.target {
            Target::Single(_) => Layout::Single,
            #[cfg(feature = "cluster")]
            Target::Cluster(..) => Layout::Cluster,
            #[cfg(feature = "sentinel")]
            Target::Sentinel(_) => Layout::Sentinel,
        }
    }

    /// A single-server handle's client.
    pub(crate) fn single_client(&self) -> Option<redis::Client> {
        match &self.inner.target {
            Target::Single(client) => Some(client.clone()),
            #[allow(unreachable_patterns)] // a build without cluster and sentinel
            _ => None,
        }
    }

    /// On a cluster, the slot map read now (`CLUSTER SLOTS`, not the one batches keep).
    pub(crate) async fn read_slot_owners(&self) -> Option<SlotOwners> {
        if !self.is_cluster() {
            return None;
        }
        let mut conn = self.async_connection().await.ok()?;
        SlotOwners::parse(&conn.cluster_slots().await.ok()?)
    }

    /// On a cluster, a client of the node at `addr` (`host:port`), with the handle's
    /// credentials and TLS.
    pub(crate) fn node_client(&self, addr: &str) -> RedisResult<redis::Client> {
        match &self.inner.target {
            #[cfg(feature = "cluster")]
            Target::Cluster(_, template) => template.client(addr),
            _ => Err(redis::RedisError::from((
                redis::ErrorKind::Client,
                "not a cluster handle",
            ))),
        }
    }

    /// On a Sentinel handle, the current master and its generation (asking the sentinels
    /// within the connection timeout unless it is known).
    pub(crate) async fn sentinel_master(&self) -> Option<RedisResult<(u64, redis::Client)>> {
        match &self.inner.target {
            #[cfg(feature = "sentinel")]
            Target::Sentinel(t) => Some(t.master(self.inner.opts.connection_timeout).await),
            _ => None,
        }
    }

    /// On a Sentinel handle, the generation of the master it knows (bumped by every switch).
    pub(crate) fn sentinel_generation(&self) -> Option<u64> {
        match &self.inner.target {
            #[cfg(feature = "sentinel")]
            Target::Sentinel(t) => Some(t.generation()),
            _ => None,
        }
    }

    /// On a Sentinel handle, calls `f` whenever the master changes or is forgotten (after the
    /// change: a lookup made from `f` or later finds the new one). One callback per handle.
    pub(crate) fn on_master_change(&self, f: Box<dyn Fn() + Send + Sync>) {
        match &self.inner.target {
            #[cfg(feature = "sentinel")]
            Target::Sentinel(t) => {
                let _ = t.on_change.set(f);
            }
            _ => drop(f),
        }
    }
}
