//! Spans in OpenTelemetry's database-client terms, captured with a `tracing_subscriber` layer
//! around real operations: RedisDict insert/get, a counter update, an async get, a batch of
//! two operations, a Redlock lock and release, and a failing call. Checks the attribute
//! names and values, and that no key, field or value text appears in any span's name or
//! fields unless key names are asked for; the same for events (warnings included); and that a
//! Sentinel handle's spans name its master.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use pottery::testing::{RedisServer, SentinelGroup};
use pottery::{Batch, Redis, RedisCache, RedisCounter, RedisDict, Redlock};
use redis::ConnectionLike;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// One captured span: its name and every field recorded on it, as text.
#[derive(Clone, Debug, Default)]
struct Captured {
    name: String,
    fields: BTreeMap<String, String>,
}

/// Spans by id, in creation order, and events (their level and every field, the message
/// included, as text).
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<(u64, Captured)>>>, Arc<Mutex<Vec<Event>>>);

/// A captured event: its level and its fields.
type Event = (tracing::Level, BTreeMap<String, String>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        let mut span = Captured {
            name: attrs.metadata().name().to_owned(),
            ..Captured::default()
        };
        attrs.record(&mut Fields(&mut span.fields));
        self.0.lock().unwrap().push((id.into_u64(), span));
    }

    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        self.1
            .lock()
            .unwrap()
            .push((*event.metadata().level(), fields));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let mut spans = self.0.lock().unwrap();
        if let Some((_, span)) = spans.iter_mut().rev().find(|(i, _)| *i == id.into_u64()) {
            values.record(&mut Fields(&mut span.fields));
        }
    }
}

impl Capture {
    fn spans(&self) -> Vec<Captured> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(_, s)| s.clone())
            .collect()
    }

    /// The spans whose `db.operation.name` is `name`.
    fn named(&self, name: &str) -> Vec<Captured> {
        self.spans()
            .into_iter()
            .filter(|s| s.fields.get("db.operation.name").map(String::as_str) == Some(name))
            .collect()
    }
}

const SECRET_KEY: &str = "secretkeyname";
const SECRET_FIELD: &str = "secretfieldname";
const SECRET_VALUE: &str = "secretvaluetext";

/// Runs the operations the spans are checked on, with a subscriber capturing them.
fn capture(redis: &Redis) -> Capture {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    tracing::subscriber::with_default(subscriber, || {
        let dict: RedisDict<String, String> = RedisDict::new(redis, format!("{SECRET_KEY}:dict"));
        dict.insert(SECRET_FIELD.into(), SECRET_VALUE.into())
            .unwrap();
        assert_eq!(
            dict.get(SECRET_FIELD).unwrap().as_deref(),
            Some(SECRET_VALUE)
        );

        let counter: RedisCounter<String> =
            RedisCounter::new(redis, format!("{SECRET_KEY}:counter"));
        counter.update([SECRET_FIELD.to_owned()]).unwrap();

        // The async get, polled on this thread (the subscriber is this thread's default).
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let dict: pottery::aio::RedisDict<String, String> =
                pottery::aio::RedisDict::new(redis, format!("{SECRET_KEY}:dict"));
            assert_eq!(
                dict.get(SECRET_FIELD).await.unwrap().as_deref(),
                Some(SECRET_VALUE)
            );
        });

        let batch = Batch::new(redis);
        let old = batch
            .on(&dict)
            .insert(SECRET_FIELD.into(), "secretvalue2".into());
        let len = batch.on(&dict).len();
        batch.execute().unwrap();
        assert_eq!(old.get().unwrap().as_deref(), Some(SECRET_VALUE));
        assert_eq!(len.get().unwrap(), 1);

        let lock = Redlock::new(&format!("{SECRET_KEY}:lock"), [redis.clone()]);
        let guard = lock.lock().unwrap();
        guard.release().unwrap();

        // A failure: a dict call on a key that holds a string.
        let mut set = redis::cmd("SET");
        set.arg(format!("{SECRET_KEY}:string")).arg(SECRET_VALUE);
        redis.connection().unwrap().req_command(&set).unwrap();
        let wrong: RedisDict<String, String> =
            RedisDict::new(redis, format!("{SECRET_KEY}:string"));
        assert!(wrong.get(SECRET_FIELD).is_err());

        dict.clear().unwrap();
        counter.clear().unwrap();
    });
    capture
}

#[test]
fn spans_follow_opentelemetry_database_conventions() {
    let server = RedisServer::start().unwrap();
    let redis = server.redis();
    let capture = capture(&redis);
    let spans = capture.spans();
    assert!(!spans.is_empty(), "no span captured");

    for span in &spans {
        assert_eq!(span.name, "pottery", "{span:?}");
        let f = &span.fields;
        assert_eq!(f["db.system.name"], "redis", "{span:?}");
        assert_eq!(f["otel.kind"], "client", "{span:?}");
        assert!(f.contains_key("db.operation.name"), "{span:?}");
        assert_eq!(f["otel.name"], f["db.operation.name"], "{span:?}");
        assert_eq!(f["db.namespace"], "0", "{span:?}");
        assert_eq!(f["server.address"], "127.0.0.1", "{span:?}");
        assert_eq!(f["server.port"], server.port().to_string(), "{span:?}");
        // No user data by default: not the key, the field or the value, anywhere.
        for text in [&span.name].into_iter().chain(f.keys()).chain(f.values()) {
            for secret in [SECRET_KEY, SECRET_FIELD, SECRET_VALUE, "secretvalue2"] {
                assert!(!text.contains(secret), "{secret} in {span:?}");
            }
        }
        assert!(!f.contains_key("pottery.key"), "{span:?}");
    }

    let insert = capture.named("RedisDict.insert");
    assert_eq!(insert.len(), 1, "{spans:#?}");
    assert_eq!(insert[0].fields["db.redis.command"], "EVALSHA");
    assert_eq!(insert[0].fields["db.stored_procedure.name"], "hash_insert");
    assert!(!insert[0].fields.contains_key("error.type"));
    // The blocking and the async get.
    let gets = capture.named("RedisDict.get");
    assert_eq!(gets.len(), 3, "{spans:#?}"); // blocking, async, and the failing one
    assert_eq!(gets[0].fields["db.redis.command"], "HGET");
    assert_eq!(capture.named("RedisCounter.update").len(), 1, "{spans:#?}");

    let batch = capture.named("Batch.execute");
    assert_eq!(batch.len(), 1, "{spans:#?}");
    assert_eq!(batch[0].fields["db.operation.batch.size"], "2");

    assert_eq!(capture.named("Redlock.acquire").len(), 1, "{spans:#?}");
    assert_eq!(capture.named("Redlock.release").len(), 1, "{spans:#?}");

    let failed: Vec<_> = spans
        .iter()
        .filter(|s| s.fields.contains_key("error.type"))
        .collect();
    assert_eq!(failed.len(), 1, "{spans:#?}");
    assert_eq!(failed[0].fields["db.operation.name"], "RedisDict.get");
    assert_eq!(failed[0].fields["error.type"], "Data");
}

#[test]
fn key_names_are_recorded_only_when_asked_for() {
    let server = RedisServer::start().unwrap();
    let redis = Redis::builder(&server.url())
        .trace_key_names(true)
        .build()
        .unwrap();
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    tracing::subscriber::with_default(subscriber, || {
        let dict: RedisDict<String, String> = RedisDict::new(&redis, "visible-key");
        dict.insert(SECRET_FIELD.into(), SECRET_VALUE.into())
            .unwrap();
    });
    let insert = capture.named("RedisDict.insert");
    assert_eq!(insert.len(), 1);
    assert_eq!(insert[0].fields["pottery.key"], "visible-key");
    for text in insert[0].fields.values() {
        assert!(!text.contains(SECRET_FIELD) && !text.contains(SECRET_VALUE));
    }
}

/// Events, warnings included, carry no key name, field or value by default (the error's kind
/// stands for its text, which names the key), on the caller's thread and on pottery's runtime
/// threads; with key names asked for, the key is there. Captured by a process-wide subscriber
/// (the watchdog's warning comes from pottery's runtime): other tests of this file run under it
/// too, and none of them puts a secret into an event either.
#[test]
fn events_carry_no_user_data_by_default() {
    static GLOBAL: OnceLock<Capture> = OnceLock::new();
    let capture = GLOBAL.get_or_init(|| {
        let capture = Capture::default();
        let subscriber = tracing_subscriber::registry().with(capture.clone());
        tracing::subscriber::set_global_default(subscriber).unwrap();
        capture
    });
    let server = RedisServer::start().unwrap();
    let redis = server.redis();
    let set = |key: &str| {
        let mut set = redis::cmd("SET");
        set.arg(key).arg(SECRET_VALUE);
        redis.connection().unwrap().req_command(&set).unwrap();
    };

    // A watchdog whose lease is deleted warns (from pottery's runtime) that it lost it.
    let lock = Redlock::new(&format!("{SECRET_KEY}:watched"), [redis.clone()])
        .auto_release_time(Duration::from_millis(600));
    let guard = lock.lock_with_watchdog().unwrap();
    server.cli(["FLUSHALL"]).unwrap();
    assert!(
        guard.wait_lost(Duration::from_secs(10)),
        "the lease was lost"
    );
    drop(guard);

    // A cache on a key that holds a string warns, and calls the function.
    set(&format!("{SECRET_KEY}:cache"));
    let cache = RedisCache::new(&redis, format!("{SECRET_KEY}:cache"));
    assert_eq!(cache.get_or_compute(&(SECRET_FIELD,), || 7).unwrap(), 7);

    // The same with key names asked for: the key is named.
    let named = Redis::builder(&server.url())
        .trace_key_names(true)
        .build()
        .unwrap();
    set("visiblekey:cache");
    let cache = RedisCache::new(&named, "visiblekey:cache");
    assert_eq!(cache.get_or_compute(&(SECRET_FIELD,), || 7).unwrap(), 7);

    let events = capture.1.lock().unwrap().clone();
    let warned = |text: &str| {
        events
            .iter()
            .filter(|(level, f)| {
                *level == tracing::Level::WARN && f.get("message").is_some_and(|m| m.contains(text))
            })
            .map(|(_, f)| f.clone())
            .collect::<Vec<_>>()
    };
    let lost = warned("a watchdog lost its lease");
    assert!(!lost.is_empty(), "{events:#?}");
    assert!(lost.iter().all(|f| !f.contains_key("key")), "{lost:?}");
    assert_eq!(lost[0]["error"], "NotHeld", "{lost:?}");
    // Each cache call warns (it could not read, then could not store): with key names
    // asked for, naming the key, and otherwise not.
    let fallbacks = warned("calling the function");
    let (named, unnamed): (Vec<_>, Vec<_>) = fallbacks.iter().partition(|f| f.contains_key("key"));
    assert!(!named.is_empty() && !unnamed.is_empty(), "{events:#?}");
    for f in named {
        assert_eq!(f["key"], "visiblekey:cache", "{f:?}");
        assert!(f["error"].contains("visiblekey:cache"), "{f:?}");
    }
    for f in unnamed {
        assert_eq!(f["error"], "Data", "{f:?}");
    }
    for (_, fields) in &events {
        for text in fields.keys().chain(fields.values()) {
            for secret in [SECRET_KEY, SECRET_FIELD, SECRET_VALUE, "secretvalue2"] {
                assert!(!text.contains(secret), "{secret} in {fields:?}");
            }
        }
    }
}

/// A Sentinel handle's spans name the master its commands go to, not a sentinel: the first
/// operation's span (begun before the handle looked its master up), the next ones, async
/// ones and a batch's.
#[test]
fn a_sentinel_handles_spans_name_its_master() {
    let group = SentinelGroup::start().unwrap();
    let master = group.master().unwrap().port().to_string();
    let redis = group.redis();
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    tracing::subscriber::with_default(subscriber, || {
        let dict: RedisDict<String, String> = RedisDict::new(&redis, "sentinel-spans");
        dict.insert("a".into(), "1".into()).unwrap();
        assert_eq!(dict.get("a").unwrap().as_deref(), Some("1"));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let dict = dict.to_async();
            assert_eq!(dict.get("a").await.unwrap().as_deref(), Some("1"));
        });
        let batch = Batch::new(&redis);
        let len = batch.on(&dict).len();
        batch.execute().unwrap();
        assert_eq!(len.get().unwrap(), 1);
        dict.clear().unwrap();
    });
    let spans = capture.spans();
    for name in ["RedisDict.insert", "RedisDict.get", "Batch.execute"] {
        assert!(!capture.named(name).is_empty(), "{name}: {spans:#?}");
    }
    for span in &spans {
        assert_eq!(span.fields["server.address"], "127.0.0.1", "{span:?}");
        assert_eq!(span.fields["server.port"], master, "{span:?}");
    }
}
