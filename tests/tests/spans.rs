//! Spans in OpenTelemetry's database-client terms, captured with a `tracing_subscriber` layer
//! around real operations: RedisDict insert/get, a counter update, an async get, a batch of
//! two operations, a Redlock lock and release, and a failing call. Checks the attribute
//! names and values, and that no key, field or value text appears in any span's name or
//! fields unless key names are asked for.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use pottery::testing::RedisServer;
use pottery::{Batch, Redis, RedisCounter, RedisDict, Redlock};
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

/// Spans by id, in creation order.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<(u64, Captured)>>>);

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
