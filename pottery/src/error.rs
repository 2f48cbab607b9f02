//! The one error type of pottery.

use std::fmt;

use crate::codec::CodecError;

/// What went wrong, and at which key.
///
/// Variants are named after Python pottery's exceptions (`KeyExistsError` is
/// [`Error::KeyExists`], `QuorumNotAchieved` is [`Error::QuorumNotAchieved`], …) plus
/// [`Error::Redis`] for anything the server or the connection reported, [`Error::Codec`] for
/// data that does not encode or decode, and [`Error::WrongType`] for a key that holds another
/// kind of Redis value. Every variant that concerns a key names it, and [`Error::key`] returns
/// it. No variant ever contains a password.
///
/// ```
/// use pottery::Error;
///
/// let err = Error::KeyExists { key: "tel".into() };
/// assert_eq!(err.key(), Some("tel"));
/// assert_eq!(err.to_string(), "key `tel` already exists");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Creating a structure with initial data on a key that already exists
    /// (pottery's `KeyExistsError`).
    KeyExists {
        /// The key.
        key: String,
    },
    /// Every random key tried was already taken (pottery's `RandomKeyError`).
    RandomKey {
        /// The last key tried.
        key: String,
        /// How many keys were tried.
        tries: u32,
    },
    /// The server or the connection failed (refused, timed out, a server error reply…).
    Redis {
        /// The key the operation was about, if it was about one.
        key: Option<String>,
        /// What redis-rs reported.
        source: redis::RedisError,
    },
    /// A value could not be encoded, or bytes read from Redis are not pottery JSON of the
    /// expected type (for example written by another client).
    Codec {
        /// The key the data belongs to.
        key: String,
        /// Why it failed.
        source: CodecError,
    },
    /// The key holds a different kind of Redis value (a list where a hash was expected…).
    WrongType {
        /// The key.
        key: String,
        /// The Redis type the operation needs (`"hash"`, `"list"`, …).
        expected: &'static str,
    },
    /// An index past either end of a list.
    IndexOutOfRange {
        /// The key.
        key: String,
        /// The index asked for.
        index: isize,
    },
    /// A bounded deque would exceed its `maxlen`: attaching to a longer list, or inserting
    /// into a full deque (pottery's `IndexError`s for those).
    MaxLenExceeded {
        /// The key.
        key: String,
        /// The deque's maximum length.
        maxlen: usize,
        /// Its length at the time.
        len: usize,
    },
    /// A distributed primitive could not get a majority of masters to agree
    /// (pottery's `QuorumNotAchieved`).
    QuorumNotAchieved {
        /// The Redis key (for example `redlock:printer`).
        key: String,
        /// The masters, passwords redacted.
        masters: Vec<String>,
    },
    /// So many masters failed that a quorum cannot be reached (pottery's `QuorumIsImpossible`).
    QuorumIsImpossible {
        /// The Redis key.
        key: String,
        /// The masters, passwords redacted.
        masters: Vec<String>,
        /// What each failing master reported.
        errors: Vec<redis::RedisError>,
    },
    /// A lock was extended more times than allowed (pottery's `TooManyExtensions`).
    TooManyExtensions {
        /// The Redis key.
        key: String,
        /// The masters, passwords redacted.
        masters: Vec<String>,
    },
    /// Extending a lock that is not held (pottery's `ExtendUnlockedLock`).
    ExtendUnlockedLock {
        /// The Redis key.
        key: String,
        /// The masters, passwords redacted.
        masters: Vec<String>,
    },
    /// Releasing a lock that is not held (pottery's `ReleaseUnlockedLock`).
    ReleaseUnlockedLock {
        /// The Redis key.
        key: String,
        /// The masters, passwords redacted.
        masters: Vec<String>,
    },
    /// Waiting for a lock ran out (or a single attempt found it taken) while the masters
    /// answered: another holder has it. Not an outage — compare [`Error::QuorumNotAchieved`]
    /// and [`Error::QuorumIsImpossible`], which say the masters did not answer. (Python
    /// pottery raises `QuorumNotAchieved` for both.)
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// use pottery::Redlock;
    /// let holder = Redlock::new("doc-busy", [redis.clone()]);
    /// let _guard = holder.lock()?;
    /// let other = Redlock::new("doc-busy", [redis]).context_manager_blocking(false);
    /// let err = other.lock().unwrap_err();
    /// assert!(err.is_lock_busy(), "{err}");
    /// assert!(err.to_string().contains("held by another holder"), "{err}");
    /// # Ok::<(), pottery::Error>(())
    /// ```
    LockBusy {
        /// The Redis key (for example `redlock:printer`).
        key: String,
        /// The masters, passwords redacted.
        masters: Vec<String>,
        /// How long the call waited (zero for a single attempt).
        waited: std::time::Duration,
    },
    /// A [`RateLimiter`](crate::RateLimiter)'s `acquire` ran out of time: the next admission
    /// lies beyond its timeout. Contention, not an outage ([`ErrorKind::LockBusy`]: HTTP 429).
    ///
    /// ```
    /// let err = pottery::Error::RateLimited {
    ///     key: "ratelimit:api".into(),
    ///     waited: std::time::Duration::ZERO,
    ///     retry_after: std::time::Duration::from_secs(3),
    /// };
    /// assert!(err.is_lock_busy() && err.is_retryable());
    /// assert_eq!(err.key(), Some("ratelimit:api"));
    /// ```
    RateLimited {
        /// The Redis key (for example `ratelimit:api`).
        key: String,
        /// How long the call waited.
        waited: std::time::Duration,
        /// How long until the units would be admitted, as the last refusal said.
        retry_after: std::time::Duration,
    },
    /// A lock's release or extension was sent, but too few masters answered before the retry
    /// window closed (or the lease ended) to know whether it took effect. A release that did
    /// not reach a master is harmless: the lease there ends by itself within
    /// `auto_release_time`. Never reported as [`Error::ReleaseUnlockedLock`], which means the
    /// masters said the lease was not held.
    ///
    /// ```
    /// let err = pottery::Error::LockOutcomeUnknown {
    ///     key: "redlock:printer".into(),
    ///     masters: vec!["redis://127.0.0.1:6379".into()],
    ///     action: "release",
    ///     errors: vec![],
    /// };
    /// assert!(err.is_maybe_applied());
    /// assert!(err.to_string().contains("may or may not have taken effect"));
    /// ```
    LockOutcomeUnknown {
        /// The Redis key.
        key: String,
        /// The masters, passwords redacted.
        masters: Vec<String>,
        /// `"release"` or `"extension"`.
        action: &'static str,
        /// What the masters that did not settle last reported.
        errors: Vec<redis::RedisError>,
    },
    /// One command must reach two keys (a `PFMERGE`, say) that live on different servers or,
    /// on a cluster, in different slots. Put them on one server, or give them one `{hash tag}`.
    CrossSlot {
        /// The key the operation is about.
        key: String,
        /// The key it cannot reach in the same command.
        other: String,
    },
    /// A struct field is missing from the hash it is loaded from
    /// (see [`RedisBacked`](crate::RedisBacked)).
    MissingField {
        /// The key.
        key: String,
        /// The stored name of the field.
        field: String,
    },
    /// [`RedisBacked::update`](crate::RedisBacked::update) gave up: every try found a field
    /// it changes changed by another writer meanwhile. Nothing was written.
    Conflict {
        /// The key.
        key: String,
        /// How many times the update ran and met a conflict.
        tries: u32,
    },
    /// A connection URL or option is invalid. The message never contains a password.
    Config {
        /// What is wrong.
        message: String,
    },
    /// A write **was applied**, but the value it replaced or removed (the old value of
    /// `dict.insert`, the element of `remove`, `pop`, `pop_front`…) is not pottery JSON of the
    /// expected type, for example because another client wrote it. Its bytes are in `raw`, so
    /// nothing is lost: log them, or write them back.
    ///
    /// (Checking decodability inside the script, before writing, cannot be done for every Rust
    /// type in Lua, so these operations write and then report.)
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// use redis::Commands;
    ///
    /// let d: pottery::RedisDict<String, i64> = pottery::RedisDict::random(&redis)?;
    /// let _: () = redis.connection()?.hset(d.key(), "\"n\"", "not json")?;
    /// match d.remove("n") {
    ///     Err(pottery::Error::UndecodableAfterWrite { raw, .. }) => assert_eq!(raw, b"not json"),
    ///     other => panic!("{other:?}"),
    /// }
    /// assert_eq!(d.get("n")?, None); // removed, as the error says
    /// # Ok::<(), pottery::Error>(())
    /// ```
    UndecodableAfterWrite {
        /// The key.
        key: String,
        /// The bytes that were replaced or removed.
        raw: Vec<u8>,
        /// Why they do not decode.
        source: CodecError,
    },
    /// The connection failed after a write that must not be applied twice (an increment, a
    /// push, a pop…) was sent: the server may or may not have applied it, so it was not
    /// retried. Read the data to find out. Idempotent writes and reads are retried instead
    /// (see [`RedisBuilder::retry_timeout`](crate::RedisBuilder::retry_timeout)).
    ///
    /// ```
    /// let err = pottery::Error::MaybeApplied {
    ///     key: "hits".into(),
    ///     source: redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset)),
    /// };
    /// assert!(err.to_string().contains("may or may not have been applied"));
    /// ```
    MaybeApplied {
        /// The key.
        key: String,
        /// How the connection failed.
        source: redis::RedisError,
    },
    /// A write was applied on the master, but fewer replicas than
    /// [`RedisBuilder::durable_writes`](crate::RedisBuilder::durable_writes) asks for
    /// confirmed it in time: it may be lost if the master fails over now.
    ///
    /// ```
    /// let err = pottery::Error::NotDurable { key: "tel".into(), acked: 0, wanted: 1 };
    /// assert!(err.to_string().contains("0 of 1 replicas"));
    /// ```
    NotDurable {
        /// The key.
        key: String,
        /// How many replicas confirmed the write.
        acked: usize,
        /// How many were asked for.
        wanted: usize,
    },
    /// The result of an operation queued in a [`Batch`](crate::Batch) was asked for before
    /// the batch ran: it was not executed yet, the batch was dropped without
    /// [`execute`](crate::Batch::execute), or `execute` failed before sending it.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// let d: pottery::RedisDict<String, i64> = pottery::RedisDict::new(&redis, "doc-never");
    /// let batch = pottery::Batch::new(&redis);
    /// let old = batch.on(&d).insert("a".into(), 1);
    /// drop(batch);
    /// assert!(matches!(old.get(), Err(pottery::Error::NotExecuted { .. })));
    /// assert_eq!(d.get("a")?, None);
    /// # Ok::<(), pottery::Error>(())
    /// ```
    NotExecuted {
        /// The key of the operation.
        key: String,
    },
}

impl Error {
    /// The key the error is about, if any.
    ///
    /// ```
    /// let err = pottery::Error::WrongType { key: "tel".into(), expected: "hash" };
    /// assert_eq!(err.key(), Some("tel"));
    /// ```
    pub fn key(&self) -> Option<&str> {
        match self {
            Error::KeyExists { key }
            | Error::RandomKey { key, .. }
            | Error::Codec { key, .. }
            | Error::WrongType { key, .. }
            | Error::IndexOutOfRange { key, .. }
            | Error::MaxLenExceeded { key, .. }
            | Error::QuorumNotAchieved { key, .. }
            | Error::QuorumIsImpossible { key, .. }
            | Error::TooManyExtensions { key, .. }
            | Error::ExtendUnlockedLock { key, .. }
            | Error::ReleaseUnlockedLock { key, .. }
            | Error::LockBusy { key, .. }
            | Error::RateLimited { key, .. }
            | Error::LockOutcomeUnknown { key, .. }
            | Error::CrossSlot { key, .. }
            | Error::MissingField { key, .. }
            | Error::Conflict { key, .. }
            | Error::UndecodableAfterWrite { key, .. }
            | Error::MaybeApplied { key, .. }
            | Error::NotDurable { key, .. }
            | Error::NotExecuted { key } => Some(key),
            Error::Redis { key, .. } => key.as_deref(),
            Error::Config { .. } => None,
        }
    }

    /// Whether the server did not answer (or a connection could not be made) within the
    /// configured timeout: the operation may or may not have been applied.
    ///
    /// ```
    /// use std::time::Duration;
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap(); // accepts, never answers
    /// let url = format!("redis://{}", listener.local_addr().unwrap());
    /// let redis = pottery::Redis::builder(&url)
    ///     .connection_timeout(Duration::from_millis(200))
    ///     .response_timeout(Some(Duration::from_millis(200)))
    ///     .build()?;
    /// let err = redis.ping().unwrap_err();
    /// assert!(err.is_timeout(), "{err}");
    /// assert!(err.to_string().contains("timed out"), "{err}");
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Redis { source, .. } if source.is_timeout())
    }

    /// What kind of failure this is, for mapping errors to responses (an HTTP status, a
    /// retry, a log level) without matching every variant.
    ///
    /// ```
    /// use pottery::{Error, ErrorKind};
    /// let err = Error::KeyExists { key: "tel".into() };
    /// assert_eq!(err.kind(), ErrorKind::Conflict);
    /// let status = match err.kind() {
    ///     ErrorKind::LockBusy | ErrorKind::Conflict => 409,
    ///     ErrorKind::Unavailable => 503,
    ///     ErrorKind::Invalid => 400,
    ///     _ => 500,
    /// };
    /// assert_eq!(status, 409);
    /// ```
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::LockBusy { .. } | Error::RateLimited { .. } => ErrorKind::LockBusy,
            Error::MaybeApplied { .. } | Error::LockOutcomeUnknown { .. } => {
                ErrorKind::MaybeApplied
            }
            Error::NotDurable { .. } => ErrorKind::NotDurable,
            Error::QuorumNotAchieved { .. } => ErrorKind::Unavailable,
            Error::QuorumIsImpossible { errors, .. } => {
                if errors.iter().all(redis_transient) {
                    ErrorKind::Unavailable
                } else {
                    ErrorKind::Server
                }
            }
            Error::Redis { source, .. } if redis_transient(source) => ErrorKind::Unavailable,
            Error::Redis { .. } => ErrorKind::Server,
            Error::ExtendUnlockedLock { .. }
            | Error::ReleaseUnlockedLock { .. }
            | Error::TooManyExtensions { .. } => ErrorKind::NotHeld,
            Error::KeyExists { .. } | Error::RandomKey { .. } | Error::Conflict { .. } => {
                ErrorKind::Conflict
            }
            Error::IndexOutOfRange { .. }
            | Error::MaxLenExceeded { .. }
            | Error::CrossSlot { .. }
            | Error::Config { .. } => ErrorKind::Invalid,
            Error::Codec { .. }
            | Error::WrongType { .. }
            | Error::MissingField { .. }
            | Error::UndecodableAfterWrite { .. } => ErrorKind::Data,
            Error::NotExecuted { .. } => ErrorKind::NotExecuted,
        }
    }

    /// Whether a lock was held by another holder when waiting for it ran out
    /// ([`Error::LockBusy`]): contention, not an outage.
    ///
    /// ```
    /// let err = pottery::Error::LockBusy {
    ///     key: "redlock:a".into(),
    ///     masters: vec![],
    ///     waited: std::time::Duration::from_secs(2),
    /// };
    /// assert!(err.is_lock_busy() && err.is_retryable());
    /// ```
    pub fn is_lock_busy(&self) -> bool {
        self.kind() == ErrorKind::LockBusy
    }

    /// Whether a write may or may not have been applied ([`Error::MaybeApplied`],
    /// [`Error::LockOutcomeUnknown`]): read the data to find out before doing it again.
    ///
    /// ```
    /// let err = pottery::Error::MaybeApplied {
    ///     key: "hits".into(),
    ///     source: redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset)),
    /// };
    /// assert!(err.is_maybe_applied() && !err.is_retryable());
    /// ```
    pub fn is_maybe_applied(&self) -> bool {
        self.kind() == ErrorKind::MaybeApplied
    }

    /// Whether the same call may succeed later unchanged: the server or a majority of masters
    /// could not be reached or was failing over ([`ErrorKind::Unavailable`]), or a lock was
    /// busy. (pottery already retried within its retry window.)
    ///
    /// ```
    /// let err = pottery::Error::Redis {
    ///     key: Some("tel".into()),
    ///     source: redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
    /// };
    /// assert!(err.is_retryable());
    /// assert!(!pottery::Error::KeyExists { key: "tel".into() }.is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind(), ErrorKind::Unavailable | ErrorKind::LockBusy)
    }

    /// Wraps a redis-rs error, recognising `WRONGTYPE` replies.
    pub(crate) fn redis(key: &str, expected: &'static str, source: redis::RedisError) -> Error {
        if source.code() == Some("WRONGTYPE") {
            return Error::WrongType {
                key: key.to_owned(),
                expected,
            };
        }
        Error::Redis {
            key: Some(key.to_owned()),
            source,
        }
    }

    pub(crate) fn codec(key: &str, source: CodecError) -> Error {
        Error::Codec {
            key: key.to_owned(),
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::KeyExists { key } => write!(f, "key `{key}` already exists"),
            Error::RandomKey { key, tries } => write!(
                f,
                "no free random key after {tries} tries (the last one tried was `{key}`)"
            ),
            // A blocking socket's timeout reads as the OS's "Resource temporarily unavailable
            // (os error 11)": say what it means.
            Error::Redis {
                key: Some(key),
                source,
            } if source.is_timeout() && !says_timed_out(source) => write!(
                f,
                "redis error on key `{key}`: timed out waiting for the server ({source})"
            ),
            Error::Redis { key: None, source }
                if source.is_timeout() && !says_timed_out(source) =>
            {
                write!(
                    f,
                    "redis error: timed out waiting for the server ({source})"
                )
            }
            Error::Redis {
                key: Some(key),
                source,
            } => write!(f, "redis error on key `{key}`: {source}"),
            Error::Redis { key: None, source } => write!(f, "redis error: {source}"),
            Error::Codec { key, source } => {
                write!(
                    f,
                    "undecodable or unencodable data at key `{key}`: {source}"
                )
            }
            Error::WrongType { key, expected } => write!(
                f,
                "key `{key}` holds the wrong kind of value (expected a {expected})"
            ),
            Error::IndexOutOfRange { key, index } => {
                write!(
                    f,
                    "index {index} is out of range for the list at key `{key}`"
                )
            }
            Error::QuorumNotAchieved { key, masters } => {
                write!(f, "no quorum for `{key}` among {} master(s)", masters.len())
            }
            Error::QuorumIsImpossible {
                key,
                masters,
                errors,
            } => {
                write!(
                    f,
                    "quorum for `{key}` is impossible: {} of {} master(s) failed",
                    errors.len(),
                    masters.len()
                )?;
                write_errors(f, errors)
            }
            Error::MaxLenExceeded { key, maxlen, len } => write!(
                f,
                "the deque at key `{key}` holds {len} element(s), and its maxlen is {maxlen}"
            ),
            Error::TooManyExtensions { key, .. } => {
                write!(f, "the lock `{key}` was extended too many times")
            }
            Error::ExtendUnlockedLock { key, .. } => {
                write!(f, "cannot extend the lock `{key}`: it is not held")
            }
            Error::ReleaseUnlockedLock { key, .. } => {
                write!(f, "cannot release the lock `{key}`: it is not held")
            }
            Error::LockBusy { key, waited, .. } if waited.is_zero() => write!(
                f,
                "the lock `{key}` is held by another holder (not an outage: the masters \
                 answered)"
            ),
            Error::LockBusy { key, waited, .. } => write!(
                f,
                "timed out after {waited:.2?} waiting for the lock `{key}`: it is held by \
                 another holder (not an outage: the masters answered)"
            ),
            Error::LockOutcomeUnknown {
                key,
                masters,
                action,
                errors,
            } => {
                write!(
                    f,
                    "the {action} of the lock `{key}` may or may not have taken effect: {} of \
                     {} master(s) did not answer in time (a lease left on a master ends by \
                     itself)",
                    errors.len(),
                    masters.len()
                )?;
                write_errors(f, errors)
            }
            Error::CrossSlot { key, other } => write!(
                f,
                "keys `{key}` and `{other}` are not on one server and cluster slot, so one \
                 command cannot reach both"
            ),
            Error::MissingField { key, field } => {
                write!(f, "the hash at key `{key}` has no field `{field}`")
            }
            Error::Conflict { key, tries } => write!(
                f,
                "the update of `{key}` gave up: each of its {tries} tries found a field it \
                 changes changed by another writer; nothing was written"
            ),
            Error::Config { message } => write!(f, "invalid configuration: {message}"),
            Error::UndecodableAfterWrite { key, raw, source } => write!(
                f,
                "the write at key `{key}` was applied, but the {} byte(s) it replaced or \
                 removed do not decode: {source} (the bytes are in the error)",
                raw.len()
            ),
            Error::MaybeApplied { key, source } => write!(
                f,
                "the connection failed after the write on key `{key}` was sent: it may or may \
                 not have been applied, and is not retried since it must not be applied twice \
                 ({source})"
            ),
            Error::NotDurable { key, acked, wanted } => write!(
                f,
                "the write on key `{key}` was applied on the master, but only {acked} of \
                 {wanted} replicas confirmed it in time"
            ),
            Error::RateLimited {
                key,
                waited,
                retry_after,
            } => write!(
                f,
                "rate limit at key `{key}`: not admitted after waiting {waited:?} (the next \
                 admission is {retry_after:?} away, beyond the timeout)"
            ),
            Error::NotExecuted { key } => write!(
                f,
                "the operation on key `{key}` is in a batch that has not run (not executed \
                 yet, dropped, or its execute failed before sending it)"
            ),
        }
    }
}

/// What kind of failure an [`Error`] is ([`Error::kind`]): a small, stable set to map onto
/// responses, retries and log levels.
///
/// ```
/// let err = pottery::Error::Config { message: "bad url".into() };
/// assert_eq!(err.kind(), pottery::ErrorKind::Invalid);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A lock is held by another holder ([`Error::LockBusy`]). HTTP: 409 or 429.
    LockBusy,
    /// The server, or a majority of masters, could not be reached in time, or was failing
    /// over: nothing is known to have been applied (reads, and writes pottery retried or knew
    /// unsent). HTTP: 503.
    Unavailable,
    /// A write may or may not have been applied ([`Error::MaybeApplied`],
    /// [`Error::LockOutcomeUnknown`]). HTTP: 503, and check before repeating.
    MaybeApplied,
    /// A write was applied on the master but not confirmed by enough replicas
    /// ([`Error::NotDurable`]).
    NotDurable,
    /// The lease is not held (any more), or was extended too often.
    NotHeld,
    /// The data is not as the call needs it to be: a key that exists, a concurrent update,
    /// no free random key. HTTP: 409.
    Conflict,
    /// An argument or setting that can never work (an index out of range, a full deque,
    /// keys in different slots, a bad URL). HTTP: 400 (or 500 for settings).
    Invalid,
    /// Stored data is not of the expected type or encoding (written by another client, a
    /// wrong key type). HTTP: 500.
    Data,
    /// A server error reply that no retry mends (`NOPERM`, a script error…). HTTP: 500.
    Server,
    /// A batch's operation that did not run ([`Error::NotExecuted`]).
    NotExecuted,
}

/// Server errors that say "not now" rather than "no".
pub(crate) fn transient_server_error(kind: redis::ServerErrorKind) -> bool {
    use redis::ServerErrorKind;
    matches!(
        kind,
        ServerErrorKind::BusyLoading
            | ServerErrorKind::TryAgain
            | ServerErrorKind::ClusterDown
            | ServerErrorKind::MasterDown
            | ServerErrorKind::ReadOnly
            | ServerErrorKind::Moved
            | ServerErrorKind::Ask
    )
}

/// Whether a redis-rs error says "not now" rather than "no".
pub(crate) fn redis_transient(e: &redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.kind() == redis::ErrorKind::ClusterConnectionNotFound
        || matches!(e.kind(), redis::ErrorKind::Server(k) if transient_server_error(k))
        || e.code() == Some("BUSY")
}

/// Each master's error after a summary, `; ` apart.
fn write_errors(f: &mut fmt::Formatter<'_>, errors: &[redis::RedisError]) -> fmt::Result {
    errors.iter().try_for_each(|e| write!(f, "; {e}"))
}

/// Whether the error's own text already says it is a timeout.
fn says_timed_out(e: &redis::RedisError) -> bool {
    e.to_string().contains("timed out")
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Redis { source, .. } | Error::MaybeApplied { source, .. } => Some(source),
            Error::Codec { source, .. } | Error::UndecodableAfterWrite { source, .. } => {
                Some(source)
            }
            _ => None,
        }
    }
}

/// A redis-rs error from a raw command (on [`Redis::connection`](crate::Redis::connection), say)
/// becomes [`Error::Redis`] with no key, so `?` works in functions returning
/// `pottery::Result`.
///
/// ```
/// # let redis = pottery::testing::doctest_redis();
/// fn visits(redis: &pottery::Redis) -> pottery::Result<i64> {
///     let mut conn = redis.connection()?;
///     Ok(redis::cmd("INCR").arg("doc-visits").query(&mut conn)?)
/// }
/// assert!(visits(&redis)? >= 1);
/// # Ok::<(), pottery::Error>(())
/// ```
impl From<redis::RedisError> for Error {
    fn from(source: redis::RedisError) -> Self {
        Error::Redis { key: None, source }
    }
}

/// `Result<T, pottery::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
