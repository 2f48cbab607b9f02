//! What `#[derive(RedisBacked)]` builds on: a struct stored as a Redis hash, one field per
//! struct field, each value in pottery's JSON — the layout of a Python pottery `RedisDict`
//! whose keys are the field names.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::Duration;

use redis::Value;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::batch::Pending;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::client::Redis;
use crate::codec::{self, CodecError};
use crate::error::{Error, Result};
use crate::exec::plan::{Op, script};
use crate::exec::reply::{bulk, int, unexpected};
use crate::shell::runner::{Async, Blocking, Runner, block_on_ready};
use crate::sync::lock;

const HASH: &str = "hash";

/// A struct stored as a Redis hash. Derive it with `#[derive(pottery::RedisBacked)]`; see the
/// crate documentation's "Structs as hashes" section for the attributes.
///
/// Each stored field is one hash field: its name (or its `#[redis(rename = "…")]`) encoded as
/// pottery JSON (`"name"`, quotes included), and its value encoded as pottery JSON — exactly
/// what Python pottery's `RedisDict` writes, so Python reads the struct as a dict and writes
/// dicts Rust loads.
///
/// Every method is one round trip, except [`RedisBacked::update`]: a load and a
/// compare-and-set, and one or two more per retry. Every write is atomic — readers see all of
/// it or none of it — and which fields it touches decides whether it can undo another writer's
/// work:
///
/// * [`RedisBacked::save`] writes **every** field. It is for a value that was not loaded
///   (a new user, say): saving a loaded value this way puts back the loaded values of fields
///   other writers changed meanwhile (an `incr_visits`, another task's `set_tags`).
/// * [`RedisBacked::load_tracked`] loads a value that remembers what it was loaded as; its
///   `save()` writes only the fields you changed, so other writers' changes to other fields
///   survive. Two writers changing the *same* field: the last one wins.
/// * [`RedisBacked::update`] is a read-modify-write that loses nothing: your closure runs on
///   the stored value, and the fields it changed are written only if nobody changed them
///   meanwhile; otherwise it runs again on fresh data.
/// * The derived handle's getters, `set_<field>` and `incr_<field>` read or write one field.
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
///
/// // Change what you loaded; save writes only the changed field.
/// let mut ada = User::load_tracked(&redis, "user:1")?.expect("saved above");
/// ada.email = Some("ada@example.com".into());
/// ada.save()?;
///
/// // Or read-modify-write in one go, safe against concurrent writers.
/// User::update(&redis, "user:1", |u| u.age += 1)?;
/// assert_eq!(User::load(&redis, "user:1")?.map(|u| u.age), Some(37));
///
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
    /// This is for a value that was not loaded, or that should replace what is stored: every
    /// field is written, so the stored values of fields other writers changed since you loaded
    /// (an `incr_<field>`, a `set_<field>`, another task's save) are overwritten with yours.
    /// To store the changes to a loaded value, load it with [`RedisBacked::load_tracked`] and
    /// call its `save()`, or use [`RedisBacked::update`].
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

    /// Loads the struct like [`RedisBacked::load`] (one `HGETALL`), as a [`Tracked`] value:
    /// it derefs to the struct, and remembers each field as loaded, so its
    /// [`save`](Tracked::save) writes only the fields you changed — in one round trip, or none
    /// when nothing changed. Other writers' changes to the other fields (an `incr_<field>`
    /// meanwhile) are kept.
    ///
    /// ```
    /// # use pottery::RedisBacked;
    /// #[derive(RedisBacked, Debug)]
    /// struct Page { title: String, views: u64 }
    /// # let redis = pottery::testing::doctest_redis();
    /// Page { title: "Home".into(), views: 0 }.save(&redis, "page:home")?;
    ///
    /// let mut page = Page::load_tracked(&redis, "page:home")?.expect("saved above");
    /// Page::handle(&redis, "page:home").incr_views(1)?; // another writer, meanwhile
    /// page.title = "Welcome".into();
    /// page.save()?; // HSET of `title` only: the view survives
    ///
    /// let stored = Page::load(&redis, "page:home")?.unwrap();
    /// assert_eq!((stored.title.as_str(), stored.views), ("Welcome", 1));
    /// # Page::delete(&redis, "page:home")?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    fn load_tracked(redis: &Redis, key: &str) -> Result<Option<Tracked<Self>>> {
        redis
            .run(load_op(key))?
            .map(|pairs| Tracked::from_pairs(redis, key, pairs))
            .transpose()
    }

    /// Changes the stored struct with `change`, losing nothing to concurrent writers: an
    /// optimistic read-modify-write. Returns what `change` returned, or `None` (without
    /// calling it) when the key does not exist.
    ///
    /// It loads the struct (one `HGETALL`), runs `change` on it, and sends one script that
    /// writes the fields `change` changed only if each of them still holds the value it was
    /// loaded with — a compare-and-set per field, checked and written atomically: two round
    /// trips. When `change` changes nothing, nothing is sent after the load. If a field it
    /// changed was changed meanwhile, the script writes nothing and returns the hash as it is
    /// now, and `change` runs again on that (so it must be callable more than once, and
    /// should have no other effects); further conflicts pause a few random milliseconds and
    /// reload. After 16 tries that all met a concurrent change, it gives up with an error
    /// naming the key, having written nothing ([`Error::Conflict`]).
    ///
    /// Updates of one key from this process (through any handle on the same server) take
    /// turns, first come first served, so they never make each other retry: only writers in
    /// other processes, and `incr_<field>`/`set_<field>` calls on the fields `change`
    /// changes, can. (`change` must therefore not update its own key: that inner update
    /// waits a second for a turn that will not come, then goes ahead without it.) Dropping
    /// an `update_async` future gives the turn to the next in line.
    ///
    /// Fields `change` did not change are not compared: a concurrent `incr_<field>` or
    /// `set_<field>` of another field neither makes it retry nor is undone. The result is as
    /// if the update had run before those writes. What is *not* checked is a field `change`
    /// only read: two updates that each read a field the other one writes can both succeed
    /// (write skew); keep a rule that spans fields in one update that changes all of them, or
    /// in one field.
    ///
    /// If the key is deleted while `change` runs, nothing is written and the result is
    /// `None`. Fields are compared as stored bytes, so a field another client rewrote with
    /// an equal value but different bytes counts as changed (one more try).
    ///
    /// ```
    /// # use pottery::RedisBacked;
    /// #[derive(RedisBacked)]
    /// struct Account { owner: String, balance: i64, history: Vec<i64> }
    /// # let redis = pottery::testing::doctest_redis();
    /// Account { owner: "Ada".into(), balance: 100, history: vec![] }.save(&redis, "acct:1")?;
    ///
    /// // Withdraw 30 if the balance allows it: returns whether it did.
    /// let done = Account::update(&redis, "acct:1", |a| {
    ///     if a.balance < 30 {
    ///         return false; // nothing changed: nothing is written
    ///     }
    ///     a.balance -= 30;
    ///     a.history.push(-30);
    ///     true
    /// })?;
    /// assert_eq!(done, Some(true));
    /// assert_eq!(Account::handle(&redis, "acct:1").balance()?, Some(70));
    /// assert_eq!(Account::update(&redis, "acct:nobody", |a| a.balance += 1)?, None);
    /// # Account::delete(&redis, "acct:1")?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    fn update<O>(
        redis: &Redis,
        key: &str,
        change: impl FnMut(&mut Self) -> O,
    ) -> Result<Option<O>> {
        block_on_ready(update_with(&Blocking, redis, key, change))
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

    /// [`RedisBacked::load_tracked`] on the async connection.
    ///
    /// ```
    /// # use pottery::RedisBacked;
    /// #[derive(RedisBacked)]
    /// struct Page { title: String, views: u64 }
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// Page { title: "Home".into(), views: 0 }.save_async(&redis, "apage").await?;
    /// let mut page = Page::load_tracked_async(&redis, "apage").await?.unwrap();
    /// page.views += 10;
    /// page.save_async().await?; // HSET of `views` only
    /// assert_eq!(Page::handle(&redis, "apage").views_async().await?, Some(10));
    /// # Page::delete_async(&redis, "apage").await?;
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    fn load_tracked_async<'a>(
        redis: &'a Redis,
        key: &'a str,
    ) -> impl Future<Output = Result<Option<Tracked<Self>>>> + Send + 'a {
        async move {
            redis
                .run_async(load_op(key))
                .await?
                .map(|pairs| Tracked::from_pairs(redis, key, pairs))
                .transpose()
        }
    }

    /// [`RedisBacked::update`] on the async connection; the pauses between tries are Tokio
    /// sleeps.
    ///
    /// ```
    /// # use pottery::RedisBacked;
    /// #[derive(RedisBacked)]
    /// struct Page { title: String, views: u64 }
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// Page { title: "Home".into(), views: 0 }.save_async(&redis, "upage").await?;
    /// let title = Page::update_async(&redis, "upage", |p| {
    ///     p.title.push_str(" sweet home");
    ///     p.title.clone()
    /// })
    /// .await?;
    /// assert_eq!(title.as_deref(), Some("Home sweet home"));
    /// # Page::delete_async(&redis, "upage").await?;
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    fn update_async<'a, O: Send + 'a>(
        redis: &'a Redis,
        key: &'a str,
        change: impl FnMut(&mut Self) -> O + Send + 'a,
    ) -> impl Future<Output = Result<Option<O>>> + Send + 'a
    where
        Self: 'a,
    {
        update_with(&Async, redis, key, change)
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

script!(BACKED_SAVE, "backed_save.lua", Idempotent);

/// A struct loaded with [`RedisBacked::load_tracked`]: the value, plus each stored field's
/// encoding as loaded, so that [`Tracked::save`] writes only the fields you changed.
///
/// It derefs (mutably) to the struct: read and change its fields as usual. Its own methods
/// are `save` and `save_async`; the rest are associated functions
/// ([`Tracked::key(&value)`](Tracked::key), [`Tracked::into_inner(value)`](Tracked::into_inner))
/// so that they never hide a method of your struct.
///
/// A change is detected by encoding: a field whose pottery JSON differs from the one it had
/// when loaded (or last saved) is changed. Setting a field to the value it had is no change.
///
/// ```
/// # use pottery::RedisBacked;
/// #[derive(RedisBacked, Debug, PartialEq)]
/// struct User { name: String, visits: u64, tags: Vec<String> }
/// # let redis = pottery::testing::doctest_redis();
/// User { name: "Ada".into(), visits: 0, tags: vec![] }.save(&redis, "tracked:ada")?;
///
/// let mut ada = User::load_tracked(&redis, "tracked:ada")?.expect("saved above");
/// assert_eq!(ada.name, "Ada"); // Deref to User
/// ada.tags.push("math".into());
/// ada.save()?; // one HSET of `tags`
/// ada.save()?; // nothing changed since: nothing is sent
/// # User::delete(&redis, "tracked:ada")?;
/// # Ok::<(), pottery::Error>(())
/// ```
#[derive(Clone)]
pub struct Tracked<T> {
    value: T,
    redis: Redis,
    key: String,
    /// Each stored field's encoding (in `FIELDS` order) as loaded or last saved; `None` for a
    /// value made with [`Tracked::new`] and not saved yet.
    saved: Option<Vec<Vec<u8>>>,
}

/// One save of a [`Tracked`]: the script's arguments, and the encodings it stores.
struct TrackedSave {
    args: Vec<Vec<u8>>,
    values: Vec<Vec<u8>>,
}

impl<T: RedisBacked> Tracked<T> {
    /// Tracks a value that was not loaded, to be stored at `key`: its first [`save`](Self::save)
    /// writes every field (as [`RedisBacked::save`] does), later ones what changed since.
    ///
    /// ```
    /// # use pottery::RedisBacked;
    /// use pottery::Tracked;
    /// #[derive(RedisBacked)]
    /// struct Point { x: i64, y: i64 }
    /// # let redis = pottery::testing::doctest_redis();
    /// let mut p = Tracked::new(&redis, "tracked:point", Point { x: 1, y: 2 });
    /// p.save()?; // every field
    /// p.x = 5;
    /// p.save()?; // `x` only
    /// assert_eq!(Point::handle(&redis, "tracked:point").x()?, Some(5));
    /// # Point::delete(&redis, "tracked:point")?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn new(redis: &Redis, key: impl Into<String>, value: T) -> Tracked<T> {
        Tracked {
            value,
            redis: redis.clone(),
            key: key.into(),
            saved: None,
        }
    }

    fn from_pairs(redis: &Redis, key: &str, pairs: Pairs) -> Result<Tracked<T>> {
        let value: T = read(key, pairs)?;
        let saved = field_values(save_args(&value, key)?);
        Ok(Tracked {
            value,
            redis: redis.clone(),
            key: key.to_owned(),
            saved: Some(saved),
        })
    }

    /// What a save sends now; `None` when nothing changed.
    fn plan(&self) -> Result<Option<TrackedSave>> {
        let args = save_args(&self.value, &self.key)?;
        let changed: Vec<bool> = args
            .chunks(2)
            .enumerate()
            .map(|(i, pair)| {
                self.saved
                    .as_ref()
                    .is_none_or(|saved| saved.get(i) != Some(&pair[1]))
            })
            .collect();
        let n = changed.iter().filter(|c| **c).count();
        if n == 0 {
            return Ok(None);
        }
        let values: Vec<Vec<u8>> = args.iter().skip(1).step_by(2).cloned().collect();
        // ARGV: the count, the changed pairs, then the others (written if the hash is gone).
        let mut first = Vec::with_capacity(2 * n + 1);
        let mut rest = Vec::with_capacity(args.len() - 2 * n);
        first.push(n.to_string().into_bytes());
        let mut it = args.into_iter();
        for changed in changed {
            let (Some(name), Some(value)) = (it.next(), it.next()) else {
                break;
            };
            let to = if changed { &mut first } else { &mut rest };
            to.push(name);
            to.push(value);
        }
        first.append(&mut rest);
        Ok(Some(TrackedSave {
            args: first,
            values,
        }))
    }

    /// Writes the fields changed since the value was loaded (or last saved) in one atomic
    /// script call; sends nothing when none changed. Other fields are left as they are in
    /// Redis, so concurrent changes to them (an `incr_<field>`, a `set_<field>`, another
    /// tracked save of other fields) are kept. A field that you and another writer both
    /// changed ends up as whichever was written last; use [`RedisBacked::update`] when that
    /// matters.
    ///
    /// If the hash no longer exists (it was deleted since the load), every field is written,
    /// as [`RedisBacked::save`] does, so a save never leaves part of a struct behind. On
    /// success the saved encodings become the new reference: saving again sends nothing until
    /// you change something else. On error nothing is marked saved.
    ///
    /// ```
    /// # use pottery::RedisBacked;
    /// #[derive(RedisBacked)]
    /// struct Point { x: i64, y: i64 }
    /// # let redis = pottery::testing::doctest_redis();
    /// Point { x: 1, y: 2 }.save(&redis, "tracked:save")?;
    /// let mut p = Point::load_tracked(&redis, "tracked:save")?.unwrap();
    /// p.y += 1;
    /// p.save()?; // HSET of `y` only
    /// # Point::delete(&redis, "tracked:save")?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn save(&mut self) -> Result<()> {
        let Some(plan) = self.plan()? else {
            return Ok(());
        };
        self.redis.run(tracked_save_op(&self.key, plan.args))?;
        self.saved = Some(plan.values);
        Ok(())
    }

    /// [`Tracked::save`] on the async connection.
    ///
    /// ```
    /// # use pottery::RedisBacked;
    /// #[derive(RedisBacked)]
    /// struct Point { x: i64, y: i64 }
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// Point { x: 1, y: 2 }.save_async(&redis, "tracked:asave").await?;
    /// let mut p = Point::load_tracked_async(&redis, "tracked:asave").await?.unwrap();
    /// p.x = 0;
    /// p.save_async().await?;
    /// # Point::delete_async(&redis, "tracked:asave").await?;
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    pub fn save_async(&mut self) -> impl Future<Output = Result<()>> + Send + '_ {
        let plan = self.plan();
        let Tracked {
            redis, key, saved, ..
        } = self;
        async move {
            let Some(plan) = plan? else {
                return Ok(());
            };
            redis.run_async(tracked_save_op(key, plan.args)).await?;
            *saved = Some(plan.values);
            Ok(())
        }
    }

    /// The stored names of the fields a save would write now (all of them for a value made
    /// with [`Tracked::new`] and not saved yet). An associated function: call it as
    /// `Tracked::changed(&value)`.
    ///
    /// ```
    /// # use pottery::RedisBacked;
    /// use pottery::Tracked;
    /// #[derive(RedisBacked)]
    /// struct Point { x: i64, #[redis(rename = "why")] y: i64 }
    /// # let redis = pottery::testing::doctest_redis();
    /// Point { x: 1, y: 2 }.save(&redis, "tracked:changed")?;
    /// let mut p = Point::load_tracked(&redis, "tracked:changed")?.unwrap();
    /// assert!(Tracked::changed(&p)?.is_empty());
    /// p.y = 3;
    /// p.x = 1; // the value it had: no change
    /// assert_eq!(Tracked::changed(&p)?, ["why"]);
    /// # Point::delete(&redis, "tracked:changed")?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn changed(this: &Self) -> Result<Vec<&'static str>> {
        let args = save_args(&this.value, &this.key)?;
        Ok(T::FIELDS
            .iter()
            .zip(args.chunks(2))
            .enumerate()
            .filter(|(i, (_, pair))| {
                this.saved
                    .as_ref()
                    .is_none_or(|saved| saved.get(*i) != Some(&pair[1]))
            })
            .map(|(_, (name, _))| *name)
            .collect())
    }
}

impl<T> Tracked<T> {
    /// The key the value was loaded from, and saves to. An associated function: call it as
    /// `Tracked::key(&value)`.
    ///
    /// ```
    /// # use pottery::RedisBacked;
    /// use pottery::Tracked;
    /// #[derive(RedisBacked)]
    /// struct Point { x: i64, y: i64 }
    /// # let redis = pottery::testing::doctest_redis();
    /// Point { x: 1, y: 2 }.save(&redis, "tracked:key")?;
    /// let p = Point::load_tracked(&redis, "tracked:key")?.unwrap();
    /// assert_eq!(Tracked::key(&p), "tracked:key");
    /// # Point::delete(&redis, "tracked:key")?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn key(this: &Self) -> &str {
        &this.key
    }

    /// The value, no longer tracked. An associated function: call it as
    /// `Tracked::into_inner(value)`.
    ///
    /// Why not a method: a `Tracked<T>` dereferences to your `T`, so `value.into_inner()` or
    /// `value.key()` would shadow methods of that name on your own type (a
    /// `Mutex`-holding struct's `into_inner`, say). std follows the same rule for the types
    /// that `Deref` to yours (`Box::into_inner`, `Rc::try_unwrap`, `Arc::into_inner`): methods,
    /// unless `Deref` makes one ambiguous.
    ///
    /// ```
    /// # use pottery::RedisBacked;
    /// use pottery::Tracked;
    /// #[derive(RedisBacked, Debug, PartialEq)]
    /// struct Point { x: i64, y: i64 }
    /// # let redis = pottery::testing::doctest_redis();
    /// Point { x: 1, y: 2 }.save(&redis, "tracked:inner")?;
    /// let p = Point::load_tracked(&redis, "tracked:inner")?.unwrap();
    /// assert_eq!(Tracked::into_inner(p), Point { x: 1, y: 2 });
    /// # Point::delete(&redis, "tracked:inner")?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn into_inner(this: Self) -> T {
        this.value
    }
}

impl<T> Deref for Tracked<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> DerefMut for Tracked<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

impl<T: fmt::Debug> fmt::Debug for Tracked<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracked")
            .field("key", &self.key)
            .field("value", &self.value)
            .finish()
    }
}

/// The values of `HSET` arguments (`name, value, name, value…`).
fn field_values(args: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    args.into_iter().skip(1).step_by(2).collect()
}

fn tracked_save_op(key: &str, args: Vec<Vec<u8>>) -> Op<'_, ()> {
    let keys = vec![key.as_bytes().to_vec()];
    Op::eval(key, HASH, &BACKED_SAVE, keys, args, |_, _| Ok(()))
}

script!(BACKED_UPDATE, "backed_update.lua", Once);

/// How many times [`RedisBacked::update`] tries before giving up.
const UPDATE_TRIES: u32 = 16;

/// Conflicts after which an update retries at once, on the fields the failed compare-and-set
/// returned (as fresh as a reload, and one round trip instead of two). Past them it pauses
/// first, so that writers that keep colliding spread out, and then reloads.
const UPDATE_EAGER: u32 = 1;

/// The pause before a reload, drawn from `[0, cap]`: the cap doubles from 500 µs with each
/// conflict past the eager ones, up to 10 ms (16 tries pause about 0.1 s at most).
fn update_pause(conflicts: u32) -> Duration {
    let doublings = conflicts.saturating_sub(UPDATE_EAGER + 1).min(5);
    let cap = (500u64 << doublings).min(10_000);
    Duration::from_micros(crate::exec::jitter::between(0, cap))
}

/// One run of an update's closure: what it returned, and the script's arguments when it
/// changed something.
struct UpdateTry<O> {
    out: O,
    args: Vec<Vec<u8>>,
}

/// Runs `change` on the struct in `pairs` and plans the compare-and-set of what it changed.
fn update_try<T: RedisBacked, O>(
    key: &str,
    pairs: Pairs,
    change: &mut impl FnMut(&mut T) -> O,
) -> Result<UpdateTry<O>> {
    // The stored bytes of each field as read, for the comparison.
    let names = T::FIELDS
        .iter()
        .map(|name| field_name(key, name))
        .collect::<Result<Vec<_>>>()?;
    let read_as: Vec<Option<Vec<u8>>> = names
        .iter()
        .map(|name| {
            pairs
                .iter()
                .find(|(f, _)| f == name)
                .map(|(_, v)| v.clone())
        })
        .collect();
    let mut value: T = read(key, pairs)?;
    let before = field_values(save_args(&value, key)?);
    let out = change(&mut value);
    let after = save_args(&value, key)?;
    let mut args = Vec::new();
    let mut after = after.into_iter();
    for (i, was) in read_as.into_iter().enumerate() {
        let (Some(name), Some(now)) = (after.next(), after.next()) else {
            break;
        };
        if before.get(i) == Some(&now) {
            continue;
        }
        let was = match was {
            Some(bytes) => [b"1".as_slice(), &bytes].concat(),
            None => b"0".to_vec(),
        };
        args.extend([name, was, now]);
    }
    Ok(UpdateTry { out, args })
}

/// The compare-and-set: `None` when written, else the hash as it is now (empty when gone).
fn update_op(key: &str, args: Vec<Vec<u8>>) -> Op<'_, Option<Pairs>> {
    let keys = vec![key.as_bytes().to_vec()];
    Op::eval(key, HASH, &BACKED_UPDATE, keys, args, |key, v| {
        let bad = |v: &Value| unexpected(key, "[1] or [0, field-value pairs]", v);
        let Value::Array(mut parts) = v else {
            return Err(bad(&v));
        };
        match parts.as_slice() {
            [Value::Int(1)] => Ok(None),
            [Value::Int(0), _] => Ok(Some(pairs(key, parts.pop().expect("two parts"))?)),
            _ => Err(bad(&Value::Array(parts))),
        }
    })
}

/// How long an update waits for its turn in the local line before going ahead without it
/// (a closure that updates its own key, say, would otherwise wait for itself forever).
const TURN_WAIT: Duration = Duration::from_secs(1);

/// The local lines: updates of one key in this process take turns, first come first served,
/// so they never make each other retry (only writers elsewhere can).
static LINES: LazyLock<Mutex<HashMap<String, Weak<Semaphore>>>> = LazyLock::new(Default::default);

fn line_for(redis: &Redis, key: &str) -> Arc<Semaphore> {
    let id = format!("{}\n{key}", redis.shown());
    let mut lines = lock(&LINES);
    if let Some(line) = lines.get(&id).and_then(Weak::upgrade) {
        return line;
    }
    if lines.len() >= 64 && lines.len().is_power_of_two() {
        lines.retain(|_, line| line.strong_count() > 0);
    }
    let line = Arc::new(Semaphore::new(1));
    lines.insert(id, Arc::downgrade(&line));
    line
}

/// This update's turn in the local line; `None` when it waited [`TURN_WAIT`] in vain.
async fn take_turn<R: Runner>(line: Arc<Semaphore>) -> Option<OwnedSemaphorePermit> {
    if let Ok(turn) = Arc::clone(&line).try_acquire_owned() {
        return Some(turn);
    }
    // The timer is made inside the runtime that polls it.
    let wait = async { tokio::time::timeout(TURN_WAIT, line.acquire_owned()).await };
    let turn = if R::BLOCKING {
        crate::exec::rt::block_on(wait)
    } else {
        wait.await
    };
    turn.ok()?.ok()
}

/// [`RedisBacked::update`] itself, on either runner.
async fn update_with<R: Runner, T: RedisBacked, O>(
    runner: &R,
    redis: &Redis,
    key: &str,
    mut change: impl FnMut(&mut T) -> O,
) -> Result<Option<O>> {
    let _turn = take_turn::<R>(line_for(redis, key)).await;
    let Some(mut pairs) = runner.run(redis, load_op(key)).await? else {
        return Ok(None);
    };
    let mut conflicts = 0;
    loop {
        let UpdateTry { out, args } = update_try(key, pairs, &mut change)?;
        if args.is_empty() {
            return Ok(Some(out));
        }
        match runner.run(redis, update_op(key, args)).await? {
            None => return Ok(Some(out)),
            Some(now) if now.is_empty() => return Ok(None),
            Some(now) => pairs = now,
        }
        conflicts += 1;
        if conflicts == UPDATE_TRIES {
            return Err(update_conflict(key, conflicts));
        }
        if conflicts > UPDATE_EAGER {
            let pause = update_pause(conflicts);
            crate::shell::runner::pause::<R>(pause).await;
            match runner.run(redis, load_op(key)).await? {
                Some(now) => pairs = now,
                None => return Ok(None),
            }
        }
    }
}

/// Every try of an update met a concurrent change of the fields it changes.
fn update_conflict(key: &str, tries: u32) -> Error {
    Error::Conflict {
        key: key.to_owned(),
        tries,
    }
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

script!(BACKED_INCR, "backed_incr.lua", Once);

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

/// What a derived `…HandleOps` batch view holds and calls: the one-field and whole-struct
/// operations of a handle, queued in a [`Batch`](crate::Batch) from the very plans its
/// blocking and async methods run.
#[doc(hidden)]
pub struct HandleOps<'q, 'a> {
    queue: &'q crate::batch::Queue<'a>,
    core: &'a HandleCore,
}

impl fmt::Debug for HandleOps<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandleOps")
            .field("key", &self.core.key)
            .finish()
    }
}

impl<'q, 'a> HandleOps<'q, 'a> {
    /// The view of `core` on `queue`.
    pub fn new(queue: &'q crate::batch::Queue<'a>, core: &'a HandleCore) -> Self {
        HandleOps { queue, core }
    }

    /// `HGET`, its result passed through `then` (a field's default, say).
    pub fn get<T, U>(&self, name: &'static str, then: fn(Option<T>) -> U) -> Pending<U>
    where
        T: DeserializeOwned + Send + 'a,
        U: Send + 'a,
    {
        let op = get_op::<T>(&self.core.key, name).map(|op| op.and_then(move |v| Ok(then(v))));
        self.queue.push(&self.core.redis, op)
    }

    /// `HSET` of one field.
    pub fn set<Q: Serialize + ?Sized>(&self, name: &str, value: &Q) -> Pending<()> {
        self.queue
            .push(&self.core.redis, set_op(&self.core.key, name, value))
    }

    /// `HINCRBY`: the new value.
    pub fn incr<T: IncrField + 'a>(&self, name: &'static str, by: i64) -> Pending<T> {
        self.queue
            .push(&self.core.redis, incr_op(&self.core.key, name, by))
    }

    /// [`RedisBacked::save`] on the handle's key.
    pub fn save<T: RedisBacked>(&self, value: &T) -> Pending<()> {
        self.queue
            .push(&self.core.redis, save_op(value, &self.core.key))
    }

    /// [`RedisBacked::load`] from the handle's key.
    pub fn load<T: RedisBacked + Send + 'a>(&self) -> Pending<Option<T>> {
        let op = load_op(&self.core.key)
            .and_then(|pairs| pairs.map(|p| read(&self.core.key, p)).transpose());
        self.queue.push(&self.core.redis, Ok(op))
    }

    /// [`RedisBacked::delete`] of the handle's key.
    pub fn delete(&self) -> Pending<bool> {
        self.queue
            .push(&self.core.redis, Ok(delete_op(&self.core.key)))
    }

    /// [`RedisBacked::exists`] of the handle's key.
    pub fn exists(&self) -> Pending<bool> {
        self.queue
            .push(&self.core.redis, Ok(exists_op(&self.core.key)))
    }
}
