//! A Redis Cluster with replicas: the test cluster's topology helpers, and a failover under
//! load (a writer thread and an async reader task through one `Redis::cluster` handle while
//! the master owning the key is SIGKILLed) that the handle follows without being rebuilt.

use std::time::Duration;

use pottery::RedisDict;
use pottery::testing::{ClusterRole, RedisCluster};
use pottery_tests::{failover, unique_key};

#[test]
fn the_handle_follows_a_cluster_failover() {
    let mut cluster = RedisCluster::builder()
        .masters(3)
        .replicas_per_master(1)
        .node_timeout(Duration::from_millis(2000))
        .start()
        .unwrap();
    let topology = cluster.topology().unwrap();
    assert_eq!(topology.len(), 6);
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

    let redis = pottery::Redis::cluster_builder(cluster.urls())
        .connection_timeout(Duration::from_secs(1))
        .response_timeout(Some(Duration::from_secs(2)))
        .build()
        .unwrap();
    let key = unique_key("cluster-failover");
    let owner = cluster.master_for_key(&key).unwrap();
    let replica = topology
        .iter()
        .find(|n| n.role == ClusterRole::Replica { master: owner })
        .map(|n| n.index)
        .unwrap();
    let report = failover::run(&redis, &key, || {
        cluster.kill_node(owner);
        cluster.wait_for_failover(Duration::from_secs(30)).unwrap();
    });
    eprintln!("cluster failover: {report:#?}");
    assert_eq!(cluster.master_for_key(&key).unwrap(), replica);
    assert!(report.writes_after_recovery >= 50, "{report:#?}");
    assert!(report.reads_after_recovery >= 1, "{report:#?}");
    assert_eq!(report.lost_after_recovery, 0, "{report:#?}");
    // The same handle keeps working for new structures too.
    let other: RedisDict<String, i64> = RedisDict::new(&redis, unique_key("after"));
    other.insert("x".into(), 1).unwrap();
}
