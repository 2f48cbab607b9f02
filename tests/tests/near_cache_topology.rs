//! The near cache beyond one RESP3-capable server (issue #24): the RESP2 `REDIRECT` mode
//! (a server that refuses `HELLO`), a cluster (a tracking connection per master, a slot
//! migration, a manual failover) and Sentinel (a failover). Each test checks that another
//! client's writes are seen within a bound (one invalidation delivery, or one topology check
//! of the heartbeat), never going back to an older value.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pottery::testing::{ClusterRole, RedisCluster, RedisServer, SentinelGroup};
use pottery::{NearCache, Redis, RedisDict, aio};
use pottery_tests::{poll, unique_key};

fn stats(redis: &Redis) -> pottery::NearCacheStats {
    redis.near_cache_stats().unwrap()
}

/// Reads `field` until it is `want`, within a bound; every value read on the way is `older`
/// or `want` (never anything else). A failed read (during a failover) is tried again.
fn seen(dict: &RedisDict<String, i64>, field: &str, older: Option<i64>, want: Option<i64>) -> bool {
    poll(10, || {
        let Ok(got) = dict.get(field) else {
            return false;
        };
        assert!(
            got == older || got == want,
            "read {got:?}: neither {older:?} nor {want:?}"
        );
        got == want
    })
}

/// Reads `field` until a read is served from memory (the near cache is on and tracking).
fn cached(redis: &Redis, dict: &RedisDict<String, i64>, field: &str) -> bool {
    let hits = stats(redis).hits;
    poll(10, || {
        let _ = dict.get(field);
        stats(redis).hits > hits
    })
}

/// The id of the client whose `CLIENT LIST` flags contain `flag`.
fn client_with_flag(conn: &mut redis::Connection, flag: char) -> Option<String> {
    let list: String = redis::cmd("CLIENT").arg("LIST").query(conn).unwrap();
    list.lines()
        .find(|l| {
            l.split(' ')
                .any(|f| f.starts_with("flags=") && f[6..].contains(flag))
        })
        .and_then(|l| l.split(' ').find_map(|f| f.strip_prefix("id=")))
        .map(str::to_owned)
}

/// A server that refuses `HELLO` (as before Redis 6, or behind some proxies): the near cache
/// tracks in RESP2 with `REDIRECT` to a subscribed connection. Reads are served locally,
/// another client's writes and a FLUSHALL are seen, and killing the redirect connection
/// flushes everything until tracking is back.
#[test]
fn resp2_redirect_mode() {
    let server = RedisServer::builder()
        .args(["--rename-command", "HELLO", ""])
        .start()
        .unwrap();
    // RESP2 URLs whatever POTTERY_TEST_PROTOCOL says: the server speaks nothing else.
    let url = format!("redis://127.0.0.1:{}/0", server.port());
    let mut conn = redis::Client::open(url.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    let hello: redis::RedisResult<redis::Value> = redis::cmd("HELLO").arg(3).query(&mut conn);
    assert!(hello.is_err(), "HELLO is refused: {hello:?}");
    let redis = Redis::builder(&url)
        .near_cache(NearCache::new())
        .build()
        .unwrap();
    let other = Redis::from_url(&url).unwrap();
    let key = unique_key("near-redirect");
    let dict = RedisDict::<String, i64>::new(&redis, &key);
    let theirs = RedisDict::<String, i64>::new(&other, &key);
    theirs.insert("v".into(), 1).unwrap();
    assert_eq!(dict.get("v").unwrap(), Some(1));
    assert!(
        cached(&redis, &dict, "v"),
        "served locally: {:?}",
        stats(&redis)
    );
    assert!(
        client_with_flag(&mut conn, 't').is_some(),
        "a tracking connection"
    );
    // Another client's writes, each seen.
    for i in 2..50 {
        theirs.insert("v".into(), i).unwrap();
        assert!(seen(&dict, "v", Some(i - 1), Some(i)), "write {i}");
    }
    // Read-your-writes.
    dict.insert("v".into(), 100).unwrap();
    assert_eq!(dict.get("v").unwrap(), Some(100));
    // A null invalidation (FLUSHALL) flushes.
    assert!(cached(&redis, &dict, "v"));
    let flushes = stats(&redis).flushes;
    redis::cmd("FLUSHALL").exec(&mut conn).unwrap();
    assert!(seen(&dict, "v", Some(100), None));
    assert!(stats(&redis).flushes > flushes);
    // The redirect connection (the subscriber, flags=P) killed: everything is flushed, the
    // next write is seen, and a new pair of connections takes over.
    theirs.insert("v".into(), 1).unwrap();
    assert!(seen(&dict, "v", None, Some(1)));
    assert!(cached(&redis, &dict, "v"));
    let subscriber = client_with_flag(&mut conn, 'P').expect("a redirect connection");
    let (flushes, made) = (stats(&redis).flushes, stats(&redis).connections);
    redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(&subscriber)
        .exec(&mut conn)
        .unwrap();
    assert!(
        poll(10, || stats(&redis).flushes > flushes),
        "{:?}",
        stats(&redis)
    );
    theirs.insert("v".into(), 2).unwrap();
    assert!(seen(&dict, "v", Some(1), Some(2)));
    assert!(cached(&redis, &dict, "v"));
    assert!(stats(&redis).connections > made);
    theirs.insert("v".into(), 3).unwrap();
    assert!(seen(&dict, "v", Some(2), Some(3)));
    // The tracking connection itself killed (RESP2: no notice; the heartbeat finds it).
    assert!(cached(&redis, &dict, "v"));
    let tracking = client_with_flag(&mut conn, 't').expect("a tracking connection");
    let flushes = stats(&redis).flushes;
    redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(&tracking)
        .exec(&mut conn)
        .unwrap();
    assert!(
        poll(10, || stats(&redis).flushes > flushes),
        "{:?}",
        stats(&redis)
    );
    theirs.insert("v".into(), 4).unwrap();
    assert!(seen(&dict, "v", Some(3), Some(4)));
    assert!(cached(&redis, &dict, "v"));
    theirs.insert("v".into(), 5).unwrap();
    assert!(seen(&dict, "v", Some(4), Some(5)));
}

/// The REDIRECT mode's server stops answering (paused past the heartbeat's bound): everything
/// is flushed, and reads are fresh once it is back.
#[test]
fn resp2_redirect_mode_unanswered_heartbeat_flushes() {
    let server = RedisServer::builder()
        .args(["--rename-command", "HELLO", ""])
        .start()
        .unwrap();
    let url = format!("redis://127.0.0.1:{}/0", server.port());
    let redis = Redis::builder(&url)
        .near_cache(NearCache::new())
        .build()
        .unwrap();
    let other = Redis::from_url(&url).unwrap();
    let key = unique_key("near-redirect-pause");
    let dict = RedisDict::<String, i64>::new(&redis, &key);
    let theirs = RedisDict::<String, i64>::new(&other, &key);
    theirs.insert("v".into(), 1).unwrap();
    assert!(seen(&dict, "v", None, Some(1)));
    assert!(cached(&redis, &dict, "v"));
    let flushes = stats(&redis).flushes;
    server.pause();
    let flushed = poll(10, || stats(&redis).flushes > flushes);
    server.resume();
    assert!(flushed, "no flush while the server did not answer");
    assert_eq!(stats(&redis).entries, 0);
    theirs.insert("v".into(), 2).unwrap();
    assert!(seen(&dict, "v", Some(1), Some(2)));
    assert!(cached(&redis, &dict, "v"));
}

/// On a cluster, one master's tracking connection killed flushes everything; reads are fresh
/// and cached again after it.
#[test]
fn cluster_lost_tracking_connection_flushes() {
    let cluster = pottery::testing::shared_cluster();
    let redis = Redis::cluster_builder(cluster.urls())
        .near_cache(NearCache::new())
        .build()
        .unwrap();
    let other = cluster.redis();
    let keys: Vec<String> = (0..3).map(|m| key_on(cluster, m, "near-lost")).collect();
    let dicts: Vec<_> = keys
        .iter()
        .map(|k| RedisDict::<String, i64>::new(&redis, k))
        .collect();
    let theirs: Vec<_> = keys
        .iter()
        .map(|k| RedisDict::<String, i64>::new(&other, k))
        .collect();
    for (d, t) in dicts.iter().zip(&theirs) {
        t.insert("v".into(), 1).unwrap();
        assert!(seen(d, "v", None, Some(1)));
        assert!(cached(&redis, d, "v"));
    }
    let mut probes = pottery_tests::node_connections(&cluster.urls());
    // Every tracking connection on master 0 (another test's handle may have one too: it
    // flushes as well, which its own checks allow).
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query(&mut probes[0])
        .unwrap();
    let tracking: Vec<String> = list
        .lines()
        .filter(|l| {
            l.split(' ')
                .any(|f| f.starts_with("flags=") && f[6..].contains('t'))
        })
        .filter_map(|l| l.split(' ').find_map(|f| f.strip_prefix("id=")))
        .map(str::to_owned)
        .collect();
    assert!(!tracking.is_empty(), "a tracking connection on master 0");
    let flushes = stats(&redis).flushes;
    for id in &tracking {
        // One that closed meanwhile is "No such client": fine.
        let _ = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("ID")
            .arg(id)
            .exec(&mut probes[0]);
    }
    assert!(
        poll(10, || stats(&redis).flushes > flushes),
        "{:?}",
        stats(&redis)
    );
    assert_eq!(stats(&redis).entries, 0);
    for (d, t) in dicts.iter().zip(&theirs) {
        t.insert("v".into(), 2).unwrap();
        assert!(seen(d, "v", Some(1), Some(2)));
        assert!(cached(&redis, d, "v"));
    }
}

/// A key owned by master `index` of `cluster` (by trying names).
fn key_on(cluster: &RedisCluster, index: usize, name: &str) -> String {
    (0..)
        .map(|i| unique_key(&format!("{name}-{i}")))
        .find(|k| cluster.master_for_key(k).unwrap() == index)
        .unwrap()
}

/// A cluster (3 masters, a replica each): another client's writes on every master are seen;
/// a slot migrated to another master (CLUSTER SETSLOT, MIGRATE) leaves no stale read — of a
/// cached value, or of a key that did not exist, in that slot — past a bound; nor does a
/// manual failover (CLUSTER FAILOVER on a replica).
#[test]
fn cluster_masters_migration_and_failover() {
    let cluster = RedisCluster::builder()
        .masters(3)
        .replicas_per_master(1)
        .start()
        .unwrap();
    let redis = Redis::cluster_builder(cluster.urls())
        .near_cache(NearCache::new())
        .build()
        .unwrap();
    let other = cluster.redis();
    let topology = cluster.topology().unwrap();
    let masters: Vec<usize> = topology
        .iter()
        .filter(|n| n.role == ClusterRole::Master)
        .map(|n| n.index)
        .collect();
    assert_eq!(masters.len(), 3);

    // Every master: cached, and another client's write seen.
    for &m in &masters {
        let key = key_on(&cluster, m, "near-cluster");
        let dict = RedisDict::<String, i64>::new(&redis, &key);
        let theirs = RedisDict::<String, i64>::new(&other, &key);
        theirs.insert("v".into(), 1).unwrap();
        assert!(seen(&dict, "v", None, Some(1)));
        assert!(
            cached(&redis, &dict, "v"),
            "master {m}: {:?}",
            stats(&redis)
        );
        for i in 2..20 {
            theirs.insert("v".into(), i).unwrap();
            assert!(
                seen(&dict, "v", Some(i - 1), Some(i)),
                "master {m}, write {i}"
            );
        }
    }
    assert!(stats(&redis).connections >= 3, "{:?}", stats(&redis));

    // A slot migrates from its master to another: a key in it (moved by MIGRATE) and a key
    // that does not exist, both cached, then written on the new owner by another client.
    let tag = unique_key("near-migrating");
    let moved_key = format!("{{{tag}}}:moved");
    let absent_key = format!("{{{tag}}}:absent");
    let moved = RedisDict::<String, i64>::new(&redis, &moved_key);
    let absent = RedisDict::<String, i64>::new(&redis, &absent_key);
    let theirs_moved = RedisDict::<String, i64>::new(&other, &moved_key);
    let theirs_absent = RedisDict::<String, i64>::new(&other, &absent_key);
    theirs_moved.insert("v".into(), 1).unwrap();
    assert!(seen(&moved, "v", None, Some(1)));
    assert!(cached(&redis, &moved, "v"));
    // A key that does not exist is not cached on a cluster (its slot could move unseen).
    let hits = stats(&redis).hits;
    for _ in 0..3 {
        assert_eq!(absent.get("v").unwrap(), None);
    }
    assert_eq!(
        stats(&redis).hits,
        hits,
        "an absent key is read from the server"
    );
    let mut probes = pottery_tests::node_connections(&cluster.urls());
    let slot: u16 = redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(&moved_key)
        .query(&mut probes[0])
        .unwrap();
    let source = cluster.master_for_key(&moved_key).unwrap();
    let target = *masters.iter().find(|&&m| m != source).unwrap();
    let (source_id, target_id) = (topology[source].id.clone(), topology[target].id.clone());
    let setslot = |p: &mut redis::Connection, state: &str, node: &str| {
        redis::cmd("CLUSTER")
            .arg("SETSLOT")
            .arg(slot)
            .arg(state)
            .arg(node)
            .exec(p)
            .unwrap();
    };
    let flushes = stats(&redis).flushes;
    setslot(&mut probes[target], "IMPORTING", &source_id);
    setslot(&mut probes[source], "MIGRATING", &target_id);
    redis::cmd("MIGRATE")
        .arg("127.0.0.1")
        .arg(topology[target].port)
        .arg("")
        .arg(0)
        .arg(5000)
        .arg("KEYS")
        .arg(&moved_key)
        .exec(&mut probes[source])
        .unwrap();
    for &m in &masters {
        setslot(&mut probes[m], "NODE", &target_id);
    }
    assert!(poll(10, || cluster.master_for_key(&moved_key).unwrap() == target));
    // The heartbeat sees the new slot map and flushes, with no read of this handle meeting a
    // MOVED.
    assert!(
        poll(10, || stats(&redis).flushes > flushes),
        "{:?}",
        stats(&redis)
    );
    theirs_moved.insert("v".into(), 2).unwrap();
    theirs_absent.insert("v".into(), 7).unwrap();
    assert!(seen(&absent, "v", None, Some(7)));
    assert!(seen(&moved, "v", Some(1), Some(2)));
    // Cached again from the new owner, and fresh.
    assert!(cached(&redis, &moved, "v"));
    theirs_moved.insert("v".into(), 3).unwrap();
    assert!(seen(&moved, "v", Some(2), Some(3)));

    // A manual failover of the master that owns a cached key: its replica takes over.
    let key = key_on(&cluster, masters[0], "near-failover");
    let dict = RedisDict::<String, i64>::new(&redis, &key);
    let theirs = RedisDict::<String, i64>::new(&other, &key);
    theirs.insert("v".into(), 1).unwrap();
    assert!(seen(&dict, "v", None, Some(1)));
    assert!(cached(&redis, &dict, "v"));
    let replica = topology
        .iter()
        .find(|n| n.role == ClusterRole::Replica { master: masters[0] })
        .unwrap()
        .index;
    redis::cmd("CLUSTER")
        .arg("FAILOVER")
        .exec(&mut probes[replica])
        .unwrap();
    assert!(
        poll(30, || cluster.master_for_key(&key).unwrap() == replica),
        "the replica took over"
    );
    // Another client's writes, through a handle that follows the failover.
    assert!(poll(30, || theirs.insert("v".into(), 2).is_ok()));
    assert!(seen(&dict, "v", Some(1), Some(2)));
    assert!(cached(&redis, &dict, "v"));
    theirs.insert("v".into(), 3).unwrap();
    assert!(seen(&dict, "v", Some(2), Some(3)));
}

/// Sentinel: a failover (SENTINEL FAILOVER) flushes everything, and reads are fresh from the
/// new master after it (cached again).
#[test]
fn sentinel_failover_flushes() {
    let mut group = SentinelGroup::builder()
        .replicas(1)
        .down_after(Duration::from_millis(1000))
        .start()
        .unwrap();
    let redis = Redis::sentinel_builder(group.sentinel_urls(), group.master_name())
        .near_cache(NearCache::new())
        .build()
        .unwrap();
    let other = group.redis();
    let key = unique_key("near-sentinel");
    let dict = RedisDict::<String, i64>::new(&redis, &key);
    let theirs = RedisDict::<String, i64>::new(&other, &key);
    theirs.insert("v".into(), 1).unwrap();
    assert!(seen(&dict, "v", None, Some(1)));
    assert!(cached(&redis, &dict, "v"));
    theirs.insert("v".into(), 2).unwrap();
    assert!(seen(&dict, "v", Some(1), Some(2)));
    assert!(cached(&redis, &dict, "v"));
    let flushes = stats(&redis).flushes;
    let old = group.manual_failover().unwrap();
    let new = group.wait_for_failover(Duration::from_secs(30)).unwrap();
    assert_ne!(old, new);
    assert!(
        poll(10, || stats(&redis).flushes > flushes),
        "the switch flushed: {:?}",
        stats(&redis)
    );
    assert!(poll(30, || theirs.insert("v".into(), 3).is_ok()));
    assert!(seen(&dict, "v", Some(2), Some(3)));
    assert!(cached(&redis, &dict, "v"));
    theirs.insert("v".into(), 4).unwrap();
    assert!(seen(&dict, "v", Some(3), Some(4)));
}

/// A cluster handle cloned into 12 async tasks, each reading a key on each of the three
/// masters while another client writes increasing versions of all three: no task ever reads
/// a version older than one it already read, and every task sees the last versions.
#[test]
fn cluster_async_readers_never_go_backwards() {
    let cluster = pottery::testing::shared_cluster();
    let redis = Redis::cluster_builder(cluster.urls())
        .near_cache(NearCache::new())
        .build()
        .unwrap();
    let other = cluster.redis();
    let keys: Vec<String> = (0..3).map(|m| key_on(cluster, m, "near-racing")).collect();
    let theirs: Vec<_> = keys
        .iter()
        .map(|k| RedisDict::<String, i64>::new(&other, k))
        .collect();
    for t in &theirs {
        t.insert("v".into(), 0).unwrap();
    }
    let n = 300;
    let done = Arc::new(AtomicBool::new(false));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let readers: Vec<_> = (0..12)
        .map(|_| {
            let dicts: Vec<_> = keys
                .iter()
                .map(|k| aio::RedisDict::<String, i64>::new(&redis.clone(), k))
                .collect();
            let done = Arc::clone(&done);
            rt.spawn(async move {
                let mut last = [0i64; 3];
                while !done.load(Ordering::Acquire) || last.iter().any(|v| *v < n) {
                    for (i, dict) in dicts.iter().enumerate() {
                        let got = dict.get("v").await.unwrap().unwrap();
                        assert!(
                            got >= last[i],
                            "key {i}: went back from {} to {got}",
                            last[i]
                        );
                        last[i] = got;
                    }
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for v in 1..=n {
        for t in &theirs {
            t.insert("v".into(), v).unwrap();
        }
    }
    done.store(true, Ordering::Release);
    rt.block_on(async {
        for r in readers {
            tokio::time::timeout(Duration::from_secs(20), r)
                .await
                .expect("readers see the last writes within 20 s")
                .unwrap();
        }
    });
    // The cache took part: once the writes are over, reads are served locally, and another
    // write is seen through the server's invalidation (or a flush). Polled: under load the
    // race above may end with no hit at all, and its last invalidations may still be on
    // their way.
    let mine: Vec<_> = keys
        .iter()
        .map(|k| RedisDict::<String, i64>::new(&redis, k))
        .collect();
    assert!(
        poll(20, || {
            mine.iter().all(|d| d.get("v").unwrap() == Some(n)) && stats(&redis).hits > 0
        }),
        "no local hit once the writes were over: {:?}",
        stats(&redis)
    );
    theirs[0].insert("v".into(), n + 1).unwrap();
    assert!(
        poll(20, || mine[0].get("v").unwrap() == Some(n + 1)),
        "another client's write unseen: {:?}",
        stats(&redis)
    );
    let s = stats(&redis);
    assert!(s.invalidations + s.flushes > 0, "{s:?}");
}

/// A cluster whose nodes refuse `HELLO`: a REDIRECT pair per master. Another client's writes
/// on every master are seen, and a master's subscriber killed flushes everything.
#[test]
fn cluster_resp2_redirect_mode() {
    let cluster = RedisCluster::builder()
        .args(["--rename-command", "HELLO", ""])
        .start()
        .unwrap();
    // RESP2 URLs whatever POTTERY_TEST_PROTOCOL says: the nodes speak nothing else.
    let urls: Vec<String> = cluster
        .nodes
        .iter()
        .map(|n| format!("redis://127.0.0.1:{}", n.port()))
        .collect();
    let redis = Redis::cluster_builder(&urls)
        .near_cache(NearCache::new())
        .build()
        .unwrap();
    let other = Redis::cluster(&urls).unwrap();
    let keys: Vec<String> = (0..3)
        .map(|m| key_on(&cluster, m, "near-redirect"))
        .collect();
    let dicts: Vec<_> = keys
        .iter()
        .map(|k| RedisDict::<String, i64>::new(&redis, k))
        .collect();
    let theirs: Vec<_> = keys
        .iter()
        .map(|k| RedisDict::<String, i64>::new(&other, k))
        .collect();
    for (d, t) in dicts.iter().zip(&theirs) {
        t.insert("v".into(), 1).unwrap();
        assert!(seen(d, "v", None, Some(1)));
        assert!(cached(&redis, d, "v"), "{:?}", stats(&redis));
        for i in 2..10 {
            t.insert("v".into(), i).unwrap();
            assert!(seen(d, "v", Some(i - 1), Some(i)), "write {i}");
        }
    }
    assert!(stats(&redis).connections >= 3, "{:?}", stats(&redis));
    let mut probes = pottery_tests::node_connections(&urls);
    let subscriber = client_with_flag(&mut probes[0], 'P').expect("a subscriber on master 0");
    let flushes = stats(&redis).flushes;
    redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(&subscriber)
        .exec(&mut probes[0])
        .unwrap();
    assert!(
        poll(10, || stats(&redis).flushes > flushes),
        "{:?}",
        stats(&redis)
    );
    for (d, t) in dicts.iter().zip(&theirs) {
        t.insert("v".into(), 100).unwrap();
        assert!(seen(d, "v", Some(9), Some(100)));
        assert!(cached(&redis, d, "v"));
    }
}
