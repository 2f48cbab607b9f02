//! The servers tests share, and helpers for doctests and logs.

use std::io::Read;
use std::sync::OnceLock;

use crate::client::Redis;

#[cfg(feature = "cluster")]
use super::cluster::RedisCluster;
use super::server::RedisServer;

/// One server shared by the whole test process, started on first use and killed when the
/// process ends. Tests sharing it should use distinct keys (random ones, say).
///
/// ```
/// let server = pottery::testing::shared_server();
/// server.redis().ping()?;
/// # Ok::<(), pottery::Error>(())
/// ```
pub fn shared_server() -> &'static RedisServer {
    static SERVER: OnceLock<RedisServer> = OnceLock::new();
    SERVER.get_or_init(|| RedisServer::start().expect("cannot start a shared redis-server"))
}

/// A 3-node cluster shared by the whole test process (see [`shared_server`]).
///
/// ```no_run
/// pottery::testing::shared_cluster().redis().ping()?;
/// # Ok::<(), pottery::Error>(())
/// ```
#[cfg(feature = "cluster")]
pub fn shared_cluster() -> &'static RedisCluster {
    static CLUSTER: OnceLock<RedisCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| RedisCluster::start(3).expect("cannot start a shared redis cluster"))
}

/// A handle on [`shared_server`]: what pottery's documentation examples run against.
///
/// ```
/// let redis = pottery::testing::doctest_redis();
/// redis.ping()?;
/// # Ok::<(), pottery::Error>(())
/// ```
pub fn doctest_redis() -> Redis {
    shared_server().redis()
}

#[doc(hidden)]
pub fn read_log(server: &RedisServer) -> String {
    let mut s = String::new();
    if let Ok(mut f) = std::fs::File::open(server.log_path()) {
        let _ = f.read_to_string(&mut s);
    }
    s
}
