//! A Redis Cluster with replicas: the test cluster's topology helpers, and a failover under
//! load (a writer thread and an async reader task through one `Redis::cluster` handle while
//! the master owning the key is SIGKILLed) that the handle follows without being rebuilt.

use std::time::Duration;

use pottery::RedisDict;
use pottery::testing::{ClusterRole, RedisCluster};
use pottery_tests::{failover, unique_key};

/// How long the cluster may take to fail over; the handle retries that long.
const FAILOVER_BOUND: Duration = Duration::from_secs(30);

#[test]
fn the_handle_follows_a_cluster_failover() {
    let mut cluster = RedisCluster::builder()
        .masters(3)
        // Two replicas each: after a failover the promoted master still has one to confirm
        // durable writes.
        .replicas_per_master(2)
        .node_timeout(Duration::from_millis(2000))
        .start()
        .unwrap();
    let topology = cluster.topology().unwrap();
    assert_eq!(topology.len(), 9);
    let masters: Vec<_> = topology
        .iter()
        .filter(|n| n.role == ClusterRole::Master)
        .collect();
    assert_eq!(masters.len(), 3);
    for node in &topology {
        if let ClusterRole::Replica { master } = node.role {
            assert_eq!(topology[master].role, ClusterRole::Master);
        }
    }

    // Durable writes: acknowledged means on the replica too, so nothing acknowledged is lost.
    // The retry budget covers the failover's worst case, the bound `wait_for_failover` waits:
    // a replica is elected about 3 s after the kill, but an election the masters split
    // is retried only 4 x node timeout later (measured in CI: 12.9 s, past the default 10 s,
    // and the writer saw the dead master's `Connection refused`).
    let redis = pottery::Redis::cluster_builder(cluster.urls())
        .connection_timeout(Duration::from_secs(1))
        .response_timeout(Some(Duration::from_secs(2)))
        .retry_timeout(FAILOVER_BOUND)
        .durable_writes(1, Duration::from_secs(1))
        .build()
        .unwrap();
    let key = unique_key("cluster-failover");
    let owner = cluster.master_for_key(&key).unwrap();
    let replicas: Vec<usize> = topology
        .iter()
        .filter(|n| n.role == ClusterRole::Replica { master: owner })
        .map(|n| n.index)
        .collect();
    assert_eq!(replicas.len(), 2);
    let report = failover::run(&redis, &key, || {
        cluster.kill_node(owner);
        cluster.wait_for_failover(FAILOVER_BOUND).unwrap();
    });
    eprintln!("cluster failover: {report:#?}");
    assert!(replicas.contains(&cluster.master_for_key(&key).unwrap()));
    report.assert_invisible();
    assert_eq!(report.lost, 0, "durable writes lost: {report:#?}");
    // With durable writes nothing acknowledged is lost, so the counter holds every
    // acknowledged increment.
    assert!(report.counter as usize >= report.incrs_acked, "{report:#?}");
    // The same handle keeps working for new structures too.
    let other: RedisDict<String, i64> = RedisDict::new(&redis, unique_key("after"));
    other.insert("x".into(), 1).unwrap();
}
