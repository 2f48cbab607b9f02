//! A Redis Cluster with replicas: the test cluster's topology helpers, and a failover under
//! load (a writer thread and an async reader task through one `Redis::cluster` handle while
//! the master owning the key is SIGKILLed) that the handle follows without being rebuilt.
//! And a slot migrating (resharding) under single calls and batches, which follow `ASK`.

use std::time::Duration;

use pottery::testing::{ClusterRole, RedisCluster};
use pottery::{Batch, Redis, RedisCounter, RedisDict, RedisList};
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

#[test]
fn calls_and_batches_follow_ask_while_a_slot_migrates() {
    // Resharding a live cluster: while a slot migrates, the keys already moved are on the
    // importing master, and the migrating one answers `ASK` for them. Every call and batch
    // must follow the redirect (`ASKING` + the request on the importing master) at once.
    // They used to treat `ASK` like a failover and wait for the migration to end: with a
    // 300 ms retry window each such call failed with the `ASK` error, however long the
    // migration took.
    let cluster = RedisCluster::start(3).unwrap();
    let redis = Redis::cluster_builder(cluster.urls())
        .retry_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let mut probes = pottery_tests::node_connections(&cluster.urls());
    let tag = unique_key("migrating");
    let key = |name: &str| format!("{{{tag}}}:{name}");
    let moved: RedisDict<String, i64> = RedisDict::new(&redis, key("moved"));
    let stays: RedisDict<String, i64> = RedisDict::new(&redis, key("stays"));
    let hits: RedisCounter<String> = RedisCounter::new(&redis, key("hits"));
    let fresh: RedisList<String> = RedisList::new(&redis, key("fresh"));
    let elsewhere: RedisDict<String, i64> = RedisDict::new(&redis, unique_key("elsewhere"));
    moved.set("n".into(), 1).unwrap();
    hits.incr("n", 1).unwrap();
    stays.set("n".into(), 1).unwrap();

    // The slot starts migrating, and two of its keys move to the importing master.
    let slot: u16 = redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(moved.key())
        .query(&mut probes[0])
        .unwrap();
    let topology = cluster.topology().unwrap();
    let source = cluster.master_for_key(moved.key()).unwrap();
    let target = topology
        .iter()
        .find(|n| n.role == ClusterRole::Master && n.index != source)
        .unwrap()
        .index;
    let (source_id, target_id) = (topology[source].id.clone(), topology[target].id.clone());
    let setslot = |p: &mut redis::Connection, state: &str, node: &str| {
        let _: () = redis::cmd("CLUSTER")
            .arg("SETSLOT")
            .arg(slot)
            .arg(state)
            .arg(node)
            .query(p)
            .unwrap();
    };
    setslot(&mut probes[target], "IMPORTING", &source_id);
    setslot(&mut probes[source], "MIGRATING", &target_id);
    let _: () = redis::cmd("MIGRATE")
        .arg("127.0.0.1")
        .arg(topology[target].port)
        .arg("")
        .arg(0)
        .arg(5000)
        .arg("KEYS")
        .arg(moved.key())
        .arg(hits.key())
        .query(&mut probes[source])
        .unwrap();

    // Single calls, blocking: a read, a script, a write that must not repeat, a new key (on
    // the importing master), a key not yet moved (on the migrating one).
    assert_eq!(moved.get("n").unwrap(), Some(1));
    assert_eq!(moved.insert("n".into(), 2).unwrap(), Some(1));
    assert_eq!(hits.incr("n", 1).unwrap(), 2);
    assert_eq!(fresh.push("a".into()).unwrap(), 1);
    assert_eq!(stays.insert("n".into(), 2).unwrap(), Some(1));
    // And async.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        assert_eq!(moved.to_async().get("n").await.unwrap(), Some(2));
        assert_eq!(moved.to_async().setdefault("m".into(), 5).await.unwrap(), 5);
        assert_eq!(hits.to_async().incr("n", 1).await.unwrap(), 3);
        assert_eq!(fresh.to_async().push("b".into()).await.unwrap(), 2);
    });

    // Batches, blocking and async: the moved keys' operations go to the importing master,
    // the others to their masters, in one execute.
    let b = Batch::new(&redis);
    let old = b.on(&moved).insert("n".into(), 3);
    let n = b.on(&hits).incr("n", 1);
    let pushed = b.on(&fresh).push("c".into());
    let kept = b.on(&stays).insert("n".into(), 3);
    let other = b.on(&elsewhere).insert("n".into(), 4);
    b.execute().unwrap();
    assert_eq!(old.get().unwrap(), Some(2));
    assert_eq!(n.get().unwrap(), 4);
    assert_eq!(pushed.get().unwrap(), 3);
    assert_eq!(kept.get().unwrap(), Some(2));
    assert_eq!(other.get().unwrap(), None);
    let (moved, stays) = (moved.to_async(), stays.to_async());
    rt.block_on(async {
        let b = pottery::aio::Batch::new(&redis);
        let read = b.on(&moved).get("n");
        let defaulted = b.on(&moved).setdefault("m".into(), 6);
        let kept = b.on(&stays).get("n");
        b.execute().await.unwrap();
        assert_eq!(read.get().unwrap(), Some(3));
        assert_eq!(defaulted.get().unwrap(), 5);
        assert_eq!(kept.get().unwrap(), Some(3));
    });

    // Still mid-migration, and every write landed where the slot's keys are: the moved keys
    // and the new list on the importing master, the key not moved on the migrating one.
    // (Asked of each node without redirects: its keys in the slot.)
    let exists = |p: &mut redis::Connection, key: &str| -> bool {
        redis::cmd("CLUSTER")
            .arg("GETKEYSINSLOT")
            .arg(slot)
            .arg(100)
            .query::<Vec<String>>(p)
            .unwrap()
            .iter()
            .any(|k| k == key)
    };
    for k in [moved.key(), hits.key(), fresh.key()] {
        assert!(
            exists(&mut probes[target], k),
            "{k} on the importing master"
        );
        assert!(
            !exists(&mut probes[source], k),
            "{k} not on the migrating one"
        );
    }
    assert!(exists(&mut probes[source], stays.key()));
    let hits = hits.key();
    let (hits_stored,): (Option<String>,) = redis::pipe()
        .cmd("ASKING")
        .ignore()
        .cmd("HGET")
        .arg(hits)
        .arg("\"n\"")
        .query(&mut probes[target])
        .unwrap();
    assert_eq!(
        hits_stored.as_deref(),
        Some("4"),
        "each increment applied once"
    );
    let nodes: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query(&mut probes[source])
        .unwrap();
    assert!(
        nodes.contains(&format!("[{slot}->-{target_id}]")),
        "{nodes}"
    );
}
