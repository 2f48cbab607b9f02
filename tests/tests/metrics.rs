//! Metrics through the `metrics` facade, captured with a recorder of the test's own around
//! real operations: `db.client.operation.duration` by operation (and `error.type`), lock
//! contention, cache hits and misses. No key, field or value text in any metric name or label.

use std::sync::{Arc, Mutex};

use metrics::{
    Counter, CounterFn, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use pottery::testing::RedisServer;
use pottery::{RedisCache, RedisDict, Redlock};

/// (metric name, labels, value) in the order recorded.
type Log = Arc<Mutex<Vec<(String, Vec<(String, String)>, f64)>>>;

#[derive(Default)]
struct Capture(Log);

struct Handle(Key, Log);

impl Handle {
    fn push(&self, value: f64) {
        let labels = self
            .0
            .labels()
            .map(|l| (l.key().to_owned(), l.value().to_owned()))
            .collect();
        self.1
            .lock()
            .unwrap()
            .push((self.0.name().to_owned(), labels, value));
    }
}

impl HistogramFn for Handle {
    fn record(&self, value: f64) {
        self.push(value);
    }
}

impl CounterFn for Handle {
    fn increment(&self, value: u64) {
        self.push(value as f64);
    }
    fn absolute(&self, value: u64) {
        self.push(value as f64);
    }
}

impl Recorder for Capture {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(Arc::new(Handle(key.clone(), Arc::clone(&self.0))))
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(Arc::new(Handle(key.clone(), Arc::clone(&self.0))))
    }
}

const SECRET: &str = "secretmetrickey";

#[test]
fn operations_locks_and_caches_are_measured() {
    let server = RedisServer::start().unwrap();
    let redis = server.redis();
    let capture = Capture::default();
    metrics::with_local_recorder(&capture, || {
        let dict: RedisDict<String, i64> = RedisDict::new(&redis, format!("{SECRET}:dict"));
        dict.insert(SECRET.into(), 1).unwrap();
        assert_eq!(dict.get(SECRET).unwrap(), Some(1));
        let mut set = redis::cmd("SET");
        set.arg(format!("{SECRET}:string")).arg(1);
        set.exec(&mut redis.connection().unwrap()).unwrap();
        let wrong: RedisDict<String, i64> = RedisDict::new(&redis, format!("{SECRET}:string"));
        assert!(wrong.get(SECRET).is_err());

        let cache = RedisCache::new(&redis, format!("{SECRET}:cache"));
        for _ in 0..2 {
            assert_eq!(cache.get_or_compute(&(SECRET,), || 7).unwrap(), 7);
        }

        let lock = Redlock::new(&format!("{SECRET}:lock"), [redis.clone()]);
        let rival = Redlock::new(&format!("{SECRET}:lock"), [redis.clone()]);
        assert!(lock.acquire().unwrap());
        assert!(!rival.try_acquire().unwrap());
        lock.release().unwrap();
    });
    let log = capture.0.lock().unwrap().clone();
    let named = |metric: &str, op: &str| {
        log.iter()
            .filter(|(n, labels, _)| {
                n == metric
                    && labels
                        .iter()
                        .any(|(k, v)| k == "db.operation.name" && v == op)
            })
            .cloned()
            .collect::<Vec<_>>()
    };
    let inserts = named("db.client.operation.duration", "RedisDict.insert");
    assert_eq!(inserts.len(), 1, "{log:#?}");
    assert!(
        inserts[0].2 > 0.0 && inserts[0].2 < 60.0,
        "seconds: {log:#?}"
    );
    assert!(
        inserts[0]
            .1
            .contains(&("db.system.name".into(), "redis".into()))
    );
    let gets = named("db.client.operation.duration", "RedisDict.get");
    assert_eq!(gets.len(), 2, "{log:#?}");
    assert!(gets[1].1.contains(&("error.type".into(), "Data".into())));
    assert_eq!(
        named("db.client.operation.duration", "Redlock.acquire").len(),
        2
    );
    assert_eq!(
        named("db.client.operation.duration", "RedisCache.call").len(),
        2
    );
    let count = |metric: &str| {
        log.iter()
            .filter(|(n, _, _)| n == metric)
            .map(|(_, _, v)| v)
            .sum::<f64>()
    };
    assert_eq!(count("pottery.lock.busy"), 1.0, "{log:#?}");
    assert_eq!(count("pottery.cache.misses"), 1.0, "{log:#?}");
    assert_eq!(count("pottery.cache.hits"), 1.0, "{log:#?}");
    for (name, labels, _) in &log {
        for text in std::iter::once(name).chain(labels.iter().flat_map(|(k, v)| [k, v])) {
            assert!(!text.contains(SECRET), "{text} in {log:#?}");
        }
    }
}
