//! Observability: a client span per operation and per batch, in OpenTelemetry's
//! database-client terms, through the `tracing` facade (feature `tracing`, on by default).
//!
//! Every span is named `pottery` (a `tracing` span's name is fixed where it is written) and
//! carries `otel.name` (the name an OpenTelemetry bridge such as `tracing-opentelemetry` gives
//! the span) and `otel.kind = "client"`, and:
//!
//! | field | value |
//! | --- | --- |
//! | `db.system.name` | `"redis"` |
//! | `db.operation.name` | the pottery operation (`RedisDict.insert`, `Redlock.acquire`, `Batch.execute`), else the command (`HGET`) |
//! | `db.redis.command` | the command sent: `HSET`, `EVALSHA`, … |
//! | `db.stored_procedure.name` | the Lua script run by `EVALSHA` (`hash_insert`), if any |
//! | `db.namespace` | the database index (`"0"`) |
//! | `server.address`, `server.port` | the server's (a cluster's first node; for a Sentinel handle, the master it last found: see below); never credentials |
//! | `db.operation.batch.size` | a batch's operation count |
//! | `error.type` | on failure: the [`ErrorKind`](crate::ErrorKind) (`LockBusy`, `Unavailable`, …) |
//! | `pottery.key` | the key, only with [`RedisBuilder::trace_key_names`](crate::RedisBuilder::trace_key_names) |
//!
//! With feature `metrics`, through the `metrics` facade (pottery installs no recorder):
//! `db.client.operation.duration` (histogram, seconds, by `db.operation.name` and
//! `error.type`; `Redlock.acquire`'s is the lock's wait), and the counters
//! `pottery.lock.busy` (acquisitions that found the lock held: contention),
//! `pottery.cache.hits`, `pottery.cache.misses`, `pottery.cache.single_flight_waits` and
//! `pottery.client.retries`.
//!
//! A Sentinel handle's spans name the master its connections go to: the one it last found
//! (asked of the sentinels, or announced by one after a failover). A span begun before the
//! handle knew its master gets the master's address when the lookup made inside it finds one
//! (recorded then, after the span's start); a span whose operation needed no connection
//! then, such as a lock's acquisition span above its commands' spans, has none.
//!
//! Key names, fields and values are user data: none is recorded unless asked for, in spans
//! or in events (warnings included: an event names the error's kind, and the key and the
//! error's text only with
//! [`RedisBuilder::trace_key_names`](crate::RedisBuilder::trace_key_names)). Retries
//! (`retrying`), lock waits, NextId rounds and cache hits, misses and single-flight waits are
//! events inside these spans. With no subscriber installed a span costs a check of a static
//! flag. A read answered by the near cache (see [`crate::near`]) is no database operation: it
//! makes no span and no duration ([`Redis::near_cache_stats`](crate::Redis::near_cache_stats)
//! counts it).

#[cfg(feature = "tracing")]
use crate::client::Peer;
use crate::client::Redis;
use crate::error::{Error, ErrorKind};
use crate::exec::plan::{Op, Req};

/// The span an operation runs in (disabled when nobody listens, or without feature `tracing`).
#[cfg(feature = "tracing")]
type TSpan = tracing::Span;

/// The span an operation runs in: nothing without feature `tracing`.
#[cfg(not(feature = "tracing"))]
#[derive(Clone, Debug)]
struct TSpan;

/// An operation being observed: its span, and with feature `metrics` when it started and its
/// name (for `db.client.operation.duration`).
pub(crate) struct Span {
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    span: TSpan,
    #[cfg(feature = "metrics")]
    started: (std::time::Instant, std::borrow::Cow<'static, str>),
}

impl Span {
    #[allow(unused_variables)]
    fn new(span: TSpan, name: impl FnOnce() -> std::borrow::Cow<'static, str>) -> Span {
        Span {
            span,
            #[cfg(feature = "metrics")]
            started: (std::time::Instant::now(), name()),
        }
    }
}

/// When `span`'s operation started, if that was read (with feature `metrics`, for its
/// duration).
pub(crate) fn started(span: &Span) -> Option<std::time::Instant> {
    #[cfg(feature = "metrics")]
    return Some(span.started.0);
    #[cfg(not(feature = "metrics"))]
    {
        let _ = span;
        None
    }
}

/// The command a request sends: `HSET`, `EVALSHA`, or none.
fn command(req: &Req) -> &str {
    match req {
        Req::Nothing => "",
        Req::Eval { .. } => "EVALSHA",
        Req::Cmd(cmd) => match cmd.args_iter().next() {
            Some(redis::Arg::Simple(name)) => std::str::from_utf8(name).unwrap_or(""),
            _ => "",
        },
    }
}

#[cfg(feature = "tracing")]
macro_rules! client_span {
    ($redis:expr, $name:expr) => {{
        let peer = $redis.peer();
        tracing::info_span!(
            target: "pottery",
            "pottery",
            otel.name = $name,
            otel.kind = "client",
            db.system.name = "redis",
            db.operation.name = $name,
            db.redis.command = tracing::field::Empty,
            db.stored_procedure.name = tracing::field::Empty,
            db.namespace = peer.db,
            server.address = peer.address(),
            server.port = peer.port,
            db.operation.batch.size = tracing::field::Empty,
            error.type = tracing::field::Empty,
            pottery.key = tracing::field::Empty,
        )
    }};
}

/// A span for a pottery operation that is not one plan (a lock's acquisition, a NextId call,
/// a cache lookup) on `redis` (for several masters, the first): its plans' spans are its
/// children.
#[cfg(feature = "tracing")]
fn operation_span(redis: Option<&Redis>, name: &'static str, key: &str) -> TSpan {
    static NOWHERE: std::sync::OnceLock<Peer> = std::sync::OnceLock::new();
    struct Nowhere;
    impl Nowhere {
        fn peer(&self) -> &'static Peer {
            NOWHERE.get_or_init(Peer::default)
        }
    }
    let span = match redis {
        Some(redis) => client_span!(redis, name),
        None => client_span!(Nowhere, name),
    };
    if !span.is_disabled() && redis.is_some_and(Redis::traces_key_names) {
        span.record("pottery.key", key);
    }
    span
}

/// A span for a pottery operation that is not one plan: nothing without feature `tracing`.
#[cfg(not(feature = "tracing"))]
fn operation_span(_redis: Option<&Redis>, _name: &'static str, _key: &str) -> TSpan {
    TSpan
}

/// The span `op` runs in.
#[cfg(feature = "tracing")]
fn op_span<T>(redis: &Redis, op: &Op<'_, T>) -> TSpan {
    if tracing::level_enabled!(tracing::Level::INFO) {
        let cmd = command(&op.req);
        let name = if op.name.is_empty() { cmd } else { op.name };
        let span = client_span!(redis, name);
        if !span.is_disabled() {
            span.record("db.redis.command", cmd);
            if let Req::Eval { script, .. } = &op.req {
                span.record("db.stored_procedure.name", script.name());
            }
            if redis.traces_key_names() {
                span.record("pottery.key", op.key);
            }
        }
        span
    } else {
        TSpan::none()
    }
}

/// The span `op` runs in: nothing without feature `tracing`.
#[cfg(not(feature = "tracing"))]
fn op_span<T>(_redis: &Redis, _op: &Op<'_, T>) -> TSpan {
    TSpan
}

/// The span a batch of `size` operations runs in.
#[cfg(feature = "tracing")]
fn batch_span(redis: &Redis, size: usize, atomic: bool) -> TSpan {
    let span = client_span!(
        redis,
        if atomic {
            "Batch.execute MULTI"
        } else {
            "Batch.execute"
        }
    );
    span.record("db.operation.batch.size", size);
    span
}

/// The span a batch runs in: nothing without feature `tracing`.
#[cfg(not(feature = "tracing"))]
fn batch_span(_redis: &Redis, _size: usize, _atomic: bool) -> TSpan {
    TSpan
}

/// A span (and a duration, with `metrics`) for a pottery operation that is not one plan (a
/// lock's acquisition, a NextId call, a cache call) on `redis` (for several masters, the
/// first).
pub(crate) fn operation(redis: Option<&Redis>, name: &'static str, key: &str) -> Span {
    Span::new(operation_span(redis, name, key), || name.into())
}

/// The span (and duration, with `metrics`) of `op`.
pub(crate) fn op<T>(redis: &Redis, op: &Op<'_, T>) -> Span {
    Span::new(op_span(redis, op), || {
        if op.name.is_empty() {
            command(&op.req).to_owned().into()
        } else {
            op.name.into()
        }
    })
}

/// The span (and duration, with `metrics`) of a batch of `size` operations.
pub(crate) fn batch(redis: &Redis, size: usize, atomic: bool) -> Span {
    Span::new(batch_span(redis, size, atomic), || "Batch.execute".into())
}

/// The name of an error's kind, for `error.type`.
fn kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::LockBusy => "LockBusy",
        ErrorKind::Unavailable => "Unavailable",
        ErrorKind::MaybeApplied => "MaybeApplied",
        ErrorKind::NotDurable => "NotDurable",
        ErrorKind::NotHeld => "NotHeld",
        ErrorKind::Conflict => "Conflict",
        ErrorKind::Invalid => "Invalid",
        ErrorKind::Data => "Data",
        ErrorKind::Server => "Server",
        ErrorKind::NotExecuted => "NotExecuted",
    }
}

/// Records a failure on `span` (`error.type`).
/// With `metrics`, records `db.client.operation.duration` (seconds) by `db.operation.name`
/// and, on failure, `error.type`.
pub(crate) fn finish<T>(span: &Span, result: &Result<T, Error>) {
    if let Err(e) = result {
        error_type(span, e.kind());
    }
    #[cfg(feature = "metrics")]
    {
        let (started, name) = &span.started;
        let seconds = started.elapsed().as_secs_f64();
        match result {
            Ok(_) => metrics::histogram!(
                "db.client.operation.duration",
                "db.system.name" => "redis",
                "db.operation.name" => name.clone(),
            )
            .record(seconds),
            Err(e) => metrics::histogram!(
                "db.client.operation.duration",
                "db.system.name" => "redis",
                "db.operation.name" => name.clone(),
                "error.type" => kind_name(e.kind()),
            )
            .record(seconds),
        }
    }
}

/// Records a failure of this kind on `span` (`error.type`).
pub(crate) fn error_type(span: &Span, kind: ErrorKind) {
    #[cfg(feature = "tracing")]
    if !span.span.is_disabled() {
        span.span.record("error.type", kind_name(kind));
    }
    #[cfg(not(feature = "tracing"))]
    let _ = (span, kind, kind_name);
}

/// `future`, polled inside `span` when somebody listens to it, else as it is (no wrapper to
/// enter and leave a disabled span at every poll).
pub(crate) fn instrumented<F: std::future::Future>(
    span: &Span,
    future: F,
) -> impl std::future::Future<Output = F::Output> {
    #[cfg(feature = "tracing")]
    return if span.span.is_disabled() {
        futures_util::future::Either::Left(future)
    } else {
        futures_util::future::Either::Right(tracing::Instrument::instrument(
            future,
            span.span.clone(),
        ))
    };
    #[cfg(not(feature = "tracing"))]
    {
        let _ = span;
        future
    }
}

/// Runs `f` inside `span`.
pub(crate) fn in_span<R>(span: &Span, f: impl FnOnce() -> R) -> R {
    #[cfg(feature = "tracing")]
    return span.span.in_scope(f);
    #[cfg(not(feature = "tracing"))]
    {
        let _ = span;
        f()
    }
}

/// `future`, polled inside `span`.
pub(crate) async fn instrument<F: std::future::Future>(span: &Span, future: F) -> F::Output {
    #[cfg(feature = "tracing")]
    return tracing::Instrument::instrument(future, span.span.clone()).await;
    #[cfg(not(feature = "tracing"))]
    {
        let _ = span;
        future.await
    }
}

/// An event inside the current span (a lock wait, a NextId round, a cache hit): a `debug!`
/// with feature `tracing`, nothing without.
macro_rules! event {
    ($($arg:tt)*) => {
        #[cfg(feature = "tracing")]
        tracing::debug!(target: "pottery", $($arg)*);
    };
}
pub(crate) use event;

/// A key as a warning or other event shows it: only when `redis` records key names
/// ([`RedisBuilder::trace_key_names`](crate::RedisBuilder::trace_key_names)); otherwise the
/// field is left out (`None` records nothing).
pub(crate) fn event_key<'a>(redis: Option<&Redis>, key: &'a str) -> Option<&'a str> {
    redis.is_some_and(Redis::traces_key_names).then_some(key)
}

/// An error as a warning or other event shows it. An error's text names its key, and a
/// decoder's or a script's may quote data: by default only its kind (`Data`, `Unavailable`,
/// ...) and, for a connection failure or a timeout, redis-rs's text (no user data); with
/// [`RedisBuilder::trace_key_names`](crate::RedisBuilder::trace_key_names) on `redis`, the
/// error's text, except a decoder's words about the data.
pub(crate) fn event_error<'a>(redis: Option<&Redis>, error: &'a Error) -> EventError<'a> {
    EventError {
        error,
        keys: redis.is_some_and(Redis::traces_key_names),
    }
}

/// See [`event_error`].
pub(crate) struct EventError<'a> {
    error: &'a Error,
    keys: bool,
}

impl std::fmt::Display for EventError<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.error {
            Error::Codec { key, .. } if self.keys => {
                write!(f, "undecodable or unencodable data at key `{key}`")
            }
            e if self.keys => write!(f, "{e}"),
            Error::Redis { source, .. }
                if source.is_io_error()
                    || source.is_timeout()
                    || source.is_connection_dropped()
                    || source.is_connection_refusal() =>
            {
                write!(f, "{}: {source}", kind_name(self.error.kind()))
            }
            e => f.write_str(kind_name(e.kind())),
        }
    }
}

/// Counts one occurrence (a cache hit, a retry, a busy lock): a `metrics` counter with feature
/// `metrics`, nothing without.
macro_rules! count {
    ($name:literal) => {
        #[cfg(feature = "metrics")]
        metrics::counter!($name).increment(1);
    };
}
pub(crate) use count;
