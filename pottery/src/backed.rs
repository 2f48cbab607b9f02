//! What `#[derive(RedisBacked)]` builds on: a struct stored as a Redis hash, one field per
//! struct field, each value in pottery's JSON — the layout of a Python pottery `RedisDict`
//! whose keys are the field names.

use std::future::Future;

use redis::Value;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{self, CodecError};
use crate::collections::{bulk, int, unexpected};
use crate::error::{Error, Result};
use crate::op::{Op, script};
use crate::redis::Redis;

const HASH: &str = "hash";

/// A struct stored as a Redis hash. Derive it with `#[derive(pottery::RedisBacked)]`; see the
/// crate documentation's "Structs as hashes" section for the attributes.
///
/// Each stored field is one hash field: its name (or its `#[redis(rename = "…")]`) encoded as
/// pottery JSON (`"name"`, quotes included), and its value encoded as pottery JSON — exactly
/// what Python pottery's `RedisDict` writes, so Python reads the struct as a dict and writes
/// dicts Rust loads. Every method is one round trip.
///
/// The `_async` methods do the same on the [`Redis`] handle's async connection.
///
/// ```
/// use pottery::RedisBacked;
///
/// #[derive(RedisBacked, Debug, PartialEq)]
/// struct User {
///     name: String,
///     age: u32,
///     email: Option<String>,
/// }
///
/// # let redis = pottery::testing::doctest_redis();
/// let ada = User { name: "Ada".into(), age: 36, email: None };
/// ada.save(&redis, "user:1")?;
/// assert_eq!(User::load(&redis, "user:1")?, Some(ada));
/// assert!(User::exists(&redis, "user:1")?);
/// assert!(User::delete(&redis, "user:1")?);
/// assert_eq!(User::load(&redis, "user:1")?, None);
/// assert_eq!(User::FIELDS, ["name", "age", "email"]);
/// # Ok::<(), pottery::Error>(())
/// ```
pub trait RedisBacked: Sized {
    /// The stored field names (renames applied, skipped fields left out), in declaration
    /// order.
    const FIELDS: &'static [&'static str];

    #[doc(hidden)]
    fn __pottery_write(&self, out: &mut FieldWriter<'_>) -> Result<()>;

    #[doc(hidden)]
    fn __pottery_read(fields: &mut FieldReader<'_>) -> Result<Self>;

    /// Writes every stored field in one `HSET` (atomic: readers see all of it or none of it).
    /// Fields of the hash that the struct does not have are left alone.
    ///
    /// ```
    /// # use pottery::RedisBacked;
    /// #[derive(RedisBacked)]
    /// struct Point { x: i64, y: i64 }
    /// # let redis = pottery::testing::doctest_redis();
    /// Point { x: 1, y: 2 }.save(&redis, "point")?;
    /// # Point::delete(&redis, "point")?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    fn save(&self, redis: &Redis, key: &str) -> Result<()> {
        redis.run(save_op(self, key)?)
    }

    /// Reads the struct in one `HGETALL`: `None` when the key does not exist. A stored field
    /// that is missing from the hash is [`Error::MissingField`] unless the field is an `Option`
    /// (then `None`) or has `#[redis(default)]`; an undecodable one is [`Error::Codec`] naming
    /// the key and the field. Hash fields the struct does not have are ignored.
    ///
    /// ```
    /// # use pottery::RedisBacked;
    /// #[derive(RedisBacked, Debug, PartialEq)]
    /// struct Point { x: i64, y: i64 }
    /// # let redis = pottery::testing::doctest_redis();
    /// assert_eq!(Point::load(&redis, "nowhere")?, None);
    /// # Ok::<(), pottery::Error>(())
    /// ```
    fn load(redis: &Redis, key: &str) -> Result<Option<Self>> {
        redis
            .run(load_op(key))?
            .map(|pairs| read(key, pairs))
            .transpose()
    }

    /// Deletes the key (`DEL`); whether it existed.
    ///
    /// ```
    /// # use pottery::RedisBacked;
    /// #[derive(RedisBacked)]
    /// struct Point { x: i64, y: i64 }
    /// # let redis = pottery::testing::doctest_redis();
    /// assert!(!Point::delete(&redis, "nowhere")?);
    /// # Ok::<(), pottery::Error>(())
    /// ```
    fn delete(redis: &Redis, key: &str) -> Result<bool> {
        redis.run(delete_op(key))
    }

    /// Whether the key exists (`EXISTS`).
    ///
    /// ```
    /// # use pottery::RedisBacked;
    /// #[derive(RedisBacked)]
    /// struct Point { x: i64, y: i64 }
    /// # let redis = pottery::testing::doctest_redis();
    /// assert!(!Point::exists(&redis, "nowhere")?);
    /// # Ok::<(), pottery::Error>(())
    /// ```
    fn exists(redis: &Redis, key: &str) -> Result<bool> {
        redis.run(exists_op(key))
    }

    /// [`RedisBacked::save`] on the async connection.
    ///
    /// ```
    /// # use pottery::RedisBacked;
    /// #[derive(RedisBacked, Debug, PartialEq)]
    /// struct Point { x: i64, y: i64 }
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// Point { x: 1, y: 2 }.save_async(&redis, "apoint").await?;
    /// assert_eq!(Point::load_async(&redis, "apoint").await?, Some(Point { x: 1, y: 2 }));
    /// assert!(Point::exists_async(&redis, "apoint").await?);
    /// assert!(Point::delete_async(&redis, "apoint").await?);
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    fn save_async<'a>(
        &self,
        redis: &'a Redis,
        key: &'a str,
    ) -> impl Future<Output = Result<()>> + Send + 'a {
        let op = save_op(self, key);
        async move { redis.run_async(op?).await }
    }

    /// [`RedisBacked::load`] on the async connection.
    ///
    /// ```
    /// # use pottery::RedisBacked;
    /// #[derive(RedisBacked, Debug)]
    /// struct Point { x: i64, y: i64 }
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// assert!(Point::load_async(&redis, "nowhere").await?.is_none());
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    fn load_async<'a>(
        redis: &'a Redis,
        key: &'a str,
    ) -> impl Future<Output = Result<Option<Self>>> + Send + 'a {
        async move {
            redis
                .run_async(load_op(key))
                .await?
                .map(|pairs| read(key, pairs))
                .transpose()
        }
    }

    /// [`RedisBacked::delete`] on the async connection.
    ///
    /// ```
    /// # use pottery::RedisBacked;
    /// #[derive(RedisBacked)]
    /// struct Point { x: i64, y: i64 }
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// assert!(!Point::delete_async(&redis, "nowhere").await?);
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    fn delete_async<'a>(
        redis: &'a Redis,
        key: &'a str,
    ) -> impl Future<Output = Result<bool>> + Send + 'a {
        redis.run_async(delete_op(key))
    }

    /// [`RedisBacked::exists`] on the async connection.
    ///
    /// ```
    /// # use pottery::RedisBacked;
    /// #[derive(RedisBacked)]
    /// struct Point { x: i64, y: i64 }
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// assert!(!Point::exists_async(&redis, "nowhere").await?);
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    fn exists_async<'a>(
        redis: &'a Redis,
        key: &'a str,
    ) -> impl Future<Output = Result<bool>> + Send + 'a {
        redis.run_async(exists_op(key))
    }
}

/// A field name as stored: pottery JSON of the name.
fn field_name(key: &str, name: &str) -> Result<Vec<u8>> {
    codec::encode_bytes(name).map_err(|e| Error::codec(key, e))
}

fn field_codec_error(key: &str, field: &str, e: CodecError) -> Error {
    Error::codec(key, CodecError::new(format!("field `{field}`: {e}")))
}

/// Collects the `HSET` arguments of a save. Used by the derived code.
#[doc(hidden)]
pub struct FieldWriter<'k> {
    key: &'k str,
    args: Vec<Vec<u8>>,
}

impl FieldWriter<'_> {
    /// Adds one field.
    pub fn field<T: Serialize + ?Sized>(&mut self, name: &str, value: &T) -> Result<()> {
        let value = codec::encode_bytes(value).map_err(|e| field_codec_error(self.key, name, e))?;
        self.args.push(field_name(self.key, name)?);
        self.args.push(value);
        Ok(())
    }
}

/// The fields of a loaded hash, taken one by one. Used by the derived code.
#[doc(hidden)]
pub struct FieldReader<'k> {
    key: &'k str,
    pairs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl FieldReader<'_> {
    fn take(&mut self, name: &str) -> Result<Option<Vec<u8>>> {
        let stored = field_name(self.key, name)?;
        Ok(self
            .pairs
            .iter()
            .position(|(f, _)| *f == stored)
            .map(|i| self.pairs.swap_remove(i).1))
    }

    fn decode<T: DeserializeOwned>(&self, name: &str, bytes: &[u8]) -> Result<T> {
        codec::decode(bytes).map_err(|e| field_codec_error(self.key, name, e))
    }

    /// A field that must be there.
    pub fn required<T: DeserializeOwned>(&mut self, name: &str) -> Result<T> {
        match self.take(name)? {
            Some(bytes) => self.decode(name, &bytes),
            None => Err(Error::MissingField {
                key: self.key.to_owned(),
                field: name.to_owned(),
            }),
        }
    }

    /// A field that falls back to `default()` when missing.
    pub fn or_else<T: DeserializeOwned>(
        &mut self,
        name: &str,
        default: impl FnOnce() -> T,
    ) -> Result<T> {
        match self.take(name)? {
            Some(bytes) => self.decode(name, &bytes),
            None => Ok(default()),
        }
    }
}

fn save_args<T: RedisBacked>(value: &T, key: &str) -> Result<Vec<Vec<u8>>> {
    let mut out = FieldWriter {
        key,
        args: Vec::with_capacity(2 * T::FIELDS.len()),
    };
    value.__pottery_write(&mut out)?;
    Ok(out.args)
}

fn save_args_op(key: &str, args: Vec<Vec<u8>>) -> Op<'_, ()> {
    let mut cmd = redis::cmd("HSET");
    cmd.arg(key).arg(args);
    Op::cmd(key, HASH, cmd, |_, _| Ok(()))
}

fn save_op<'k, T: RedisBacked>(value: &T, key: &'k str) -> Result<Op<'k, ()>> {
    Ok(save_args_op(key, save_args(value, key)?))
}

/// [`RedisBacked::save_async`] with an owned key (the derived `save_keyed_async`).
#[doc(hidden)]
pub fn save_owned_async<'a, T: RedisBacked>(
    value: &T,
    redis: &'a Redis,
    key: String,
) -> impl Future<Output = Result<()>> + Send + 'a {
    let args = save_args(value, &key);
    async move { redis.run_async(save_args_op(&key, args?)).await }
}

type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

fn pairs(key: &str, value: Value) -> Result<Pairs> {
    let items = match value {
        Value::Array(items) => items,
        Value::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        other => return Err(unexpected(key, "field-value pairs", &other)),
    };
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(f), Some(v)) = (it.next(), it.next()) {
        out.push((
            bulk(key, f)?.unwrap_or_default(),
            bulk(key, v)?.unwrap_or_default(),
        ));
    }
    Ok(out)
}

fn load_op(key: &str) -> Op<'_, Option<Pairs>> {
    let mut cmd = redis::cmd("HGETALL");
    cmd.arg(key);
    Op::cmd(key, HASH, cmd, |key, v| {
        let pairs = pairs(key, v)?;
        Ok((!pairs.is_empty()).then_some(pairs))
    })
}

fn read<T: RedisBacked>(key: &str, pairs: Pairs) -> Result<T> {
    T::__pottery_read(&mut FieldReader { key, pairs })
}

fn delete_op(key: &str) -> Op<'_, bool> {
    let mut cmd = redis::cmd("DEL");
    cmd.arg(key);
    Op::cmd(key, "", cmd, |key, v| Ok(int(key, v)? > 0))
}

fn exists_op(key: &str) -> Op<'_, bool> {
    let mut cmd = redis::cmd("EXISTS");
    cmd.arg(key);
    Op::cmd(key, "", cmd, |key, v| Ok(int(key, v)? > 0))
}

/// What a derived `…Handle` holds: the handle and the key. Its methods are the one-field
/// operations the derived getters and setters call.
#[doc(hidden)]
#[derive(Clone, Debug)]
pub struct HandleCore {
    redis: Redis,
    key: String,
}

fn get_op<'k, T: DeserializeOwned + Send + 'k>(
    key: &'k str,
    name: &'k str,
) -> Result<Op<'k, Option<T>>> {
    let mut cmd = redis::cmd("HGET");
    cmd.arg(key).arg(field_name(key, name)?);
    Ok(Op::cmd_with(key, HASH, cmd, move |key, v| {
        bulk(key, v)?
            .map(|b| codec::decode(&b).map_err(|e| field_codec_error(key, name, e)))
            .transpose()
    }))
}

fn set_op<'k, Q: Serialize + ?Sized>(key: &'k str, name: &str, value: &Q) -> Result<Op<'k, ()>> {
    let value = codec::encode_bytes(value).map_err(|e| field_codec_error(key, name, e))?;
    let mut cmd = redis::cmd("HSET");
    cmd.arg(key).arg(field_name(key, name)?).arg(value);
    Ok(Op::cmd(key, HASH, cmd, |_, _| Ok(())))
}

script!(BACKED_INCR, "backed_incr.lua");

/// Integer field types: their range, when narrower than `HINCRBY`'s (i64).
#[doc(hidden)]
pub trait IncrField: TryFrom<i64> + Send {
    /// `(lowest, highest)` when narrower than i64.
    const BOUNDS: Option<(i64, i64)>;
}

macro_rules! incr_field {
    ($($t:ty => $bounds:expr),* $(,)?) => {$(
        impl IncrField for $t {
            const BOUNDS: Option<(i64, i64)> = $bounds;
        }
    )*};
}

incr_field! {
    i8 => Some((i8::MIN as i64, i8::MAX as i64)),
    i16 => Some((i16::MIN as i64, i16::MAX as i64)),
    i32 => Some((i32::MIN as i64, i32::MAX as i64)),
    i64 => None,
    isize => if isize::BITS >= 64 { None } else { Some((isize::MIN as i64, isize::MAX as i64)) },
    u8 => Some((0, u8::MAX as i64)),
    u16 => Some((0, u16::MAX as i64)),
    u32 => Some((0, u32::MAX as i64)),
    u64 => Some((0, i64::MAX)),
    usize => Some((0, i64::MAX)),
}

fn out_of_range<T>(key: &str, name: &str, what: impl std::fmt::Display) -> Error {
    field_codec_error(
        key,
        name,
        CodecError::new(format!(
            "{what} does not fit the field's type ({}); nothing was written",
            std::any::type_name::<T>()
        )),
    )
}

fn incr_op<'k, T: IncrField + 'k>(key: &'k str, name: &'k str, step: i64) -> Result<Op<'k, T>> {
    let field = field_name(key, name)?;
    let Some((lo, hi)) = T::BOUNDS else {
        let mut cmd = redis::cmd("HINCRBY");
        cmd.arg(key).arg(field).arg(step);
        return Ok(Op::cmd_with(key, HASH, cmd, move |key, v| {
            let n = int(key, v)?;
            T::try_from(n).map_err(|_| out_of_range::<T>(key, name, n))
        }));
    };
    let args = vec![
        field,
        step.to_string().into_bytes(),
        lo.to_string().into_bytes(),
        hi.to_string().into_bytes(),
    ];
    let keys = vec![key.as_bytes().to_vec()];
    Ok(Op::eval_with(
        key,
        HASH,
        &BACKED_INCR,
        keys,
        args,
        move |key, v| {
            let bad = |v: &Value| unexpected(key, "[flag, value]", v);
            let Value::Array(parts) = &v else {
                return Err(bad(&v));
            };
            match parts.as_slice() {
                [Value::Int(1), Value::Int(n)] => {
                    T::try_from(*n).map_err(|_| out_of_range::<T>(key, name, n))
                }
                [Value::Int(0), refused] => {
                    let refused = bulk(key, refused.clone())?.unwrap_or_default();
                    Err(out_of_range::<T>(
                        key,
                        name,
                        String::from_utf8_lossy(&refused),
                    ))
                }
                _ => Err(bad(&v)),
            }
        },
    ))
}

impl HandleCore {
    /// A handle on `key`.
    pub fn new(redis: &Redis, key: String) -> HandleCore {
        HandleCore {
            redis: redis.clone(),
            key,
        }
    }

    /// The key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The Redis handle.
    pub fn redis(&self) -> &Redis {
        &self.redis
    }

    /// `HGET`: the field's value, `None` when it (or the key) is missing.
    pub fn get<T: DeserializeOwned + Send>(&self, name: &str) -> Result<Option<T>> {
        self.redis.run(get_op(&self.key, name)?)
    }

    /// [`HandleCore::get`], async.
    pub async fn get_async<T: DeserializeOwned + Send>(&self, name: &str) -> Result<Option<T>> {
        self.redis.run_async(get_op(&self.key, name)?).await
    }

    /// `HSET` of one field.
    pub fn set<Q: Serialize + ?Sized>(&self, name: &str, value: &Q) -> Result<()> {
        self.redis.run(set_op(&self.key, name, value)?)
    }

    /// [`HandleCore::set`], async.
    pub async fn set_async<Q: Serialize + ?Sized>(&self, name: &str, value: &Q) -> Result<()> {
        let op = set_op(&self.key, name, value)?;
        self.redis.run_async(op).await
    }

    /// `HINCRBY`: the new value.
    pub fn incr<T: IncrField>(&self, name: &str, by: i64) -> Result<T> {
        self.redis.run(incr_op(&self.key, name, by)?)
    }

    /// [`HandleCore::incr`], async.
    pub async fn incr_async<T: IncrField>(&self, name: &str, by: i64) -> Result<T> {
        self.redis.run_async(incr_op(&self.key, name, by)?).await
    }
}
