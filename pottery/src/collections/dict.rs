//! `RedisDict`: a `HashMap` face on a Redis hash, wire-compatible with pottery's `RedisDict`.
//!
#![doc = include_str!("../guide/dict.md")]

use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;

use redis::Value;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::client::Redis;
use crate::codec::Storable;
use crate::error::Result;
use crate::exec::plan::{Op, script};
use crate::exec::reply::{decode, decode_opt, encode, encode_arg, int, scan_page};
use crate::shell::keys::create_op;
use crate::shell::runner::{Async, Blocking, Runner, block_on_ready};
use crate::shell::scan::Scan;

script!(HASH_INSERT, "hash_insert.lua", Once);
script!(HASH_REMOVE, "hash_remove.lua", Once);
script!(HASH_SETDEFAULT, "hash_setdefault.lua", Idempotent);
script!(HASH_POPITEM, "hash_popitem.lua", Once);
script!(HASH_CAS, "hash_cas.lua", Once);

const HASH: &str = "hash";
/// Fields asked for per HSCAN page.
const PAGE: usize = 512;

/// The operations of a dict, as plans; shared by the blocking and the async shells.
pub(crate) struct Core<K, V> {
    pub(crate) redis: Redis,
    pub(crate) key: String,
    /// What stands for the key in the near cache's front tables.
    reader: crate::near::Reader,
    _types: PhantomData<fn() -> (K, V)>,
}

crate::shell::clone_core!(Core<K, V> { redis, key, reader });

impl<K, V> Core<K, V>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
{
    pub(crate) fn new(redis: &Redis, key: String) -> Self {
        Core {
            redis: redis.clone(),
            key,
            reader: crate::near::Reader::new(),
            _types: PhantomData,
        }
    }

    pub(crate) fn cmd(&self, name: &str) -> redis::Cmd {
        // Sized for the name, the key and a field and value of some size: growing it argument
        // by argument cost two or three allocations per call.
        let mut cmd = redis::Cmd::with_capacity(4, name.len() + self.key.len() + 64);
        cmd.arg(name).arg(&self.key);
        cmd
    }

    pub(crate) fn field<Q: Serialize + ?Sized>(&self, k: &Q) -> Result<Vec<u8>> {
        encode(&self.key, k)
    }

    pub(crate) fn pairs(&self, items: impl IntoIterator<Item = (K, V)>) -> Result<Vec<Vec<u8>>> {
        let mut args = Vec::new();
        for (k, v) in items {
            args.push(encode(&self.key, &k)?);
            args.push(encode(&self.key, &v)?);
        }
        Ok(args)
    }

    pub(crate) fn create_plan(
        &self,
        items: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Op<'_, ()>> {
        Ok(create_op(&self.key, HASH, "HSET", self.pairs(items)?))
    }

    /// The plan: `scripts/hash_insert.lua` (`HASH_INSERT`).
    pub(crate) fn insert_plan(&self, k: &K, v: &V) -> Result<Op<'_, Option<V>>> {
        let args = vec![self.field(k)?, encode(&self.key, v)?];
        Ok(Op::eval_key(
            &self.key,
            HASH,
            &HASH_INSERT,
            args,
            crate::exec::reply::decode_written,
        ))
    }

    /// The plan: `HSET`.
    pub(crate) fn set_plan(&self, k: &K, v: &V) -> Result<Op<'_, ()>> {
        let mut cmd = self.cmd("HSET");
        encode_arg(&mut cmd, &self.key, k)?;
        encode_arg(&mut cmd, &self.key, v)?;
        Ok(Op::cmd(&self.key, HASH, cmd, |_, _| Ok(())))
    }

    /// The plan: `HGET`.
    pub(crate) fn get_plan<Q: Serialize + ?Sized>(&self, k: &Q) -> Result<Op<'_, Option<V>>> {
        let mut cmd = self.cmd("HGET");
        encode_arg(&mut cmd, &self.key, k)?;
        Ok(Op::cmd(&self.key, HASH, cmd, decode_opt))
    }

    /// [`Core::get_plan`], after a look in the near cache (a hit builds no command).
    pub(crate) fn get_read<'s, 'q, Q: Serialize + ?Sized>(
        &'s self,
        k: &'q Q,
    ) -> crate::near::Probed<
        's,
        'q,
        Q,
        impl FnOnce() -> Result<Op<'s, Option<V>>> + use<'s, 'q, K, V, Q>,
        impl crate::near::Decode<Option<V>> + use<'s, 'q, K, V, Q>,
    > {
        crate::near::Probed {
            reader: self.reader,
            key: &self.key,
            name: "HGET",
            arg: k,
            decode: crate::near::bulk(|key, bytes| match bytes {
                None => Ok(None),
                Some(b) => b.decode(key).map(Some),
            }),
            build: move || self.get_plan(k),
        }
    }

    /// The plan: `HMGET`.
    pub(crate) fn get_many_plan<Q: Serialize>(
        &self,
        keys: impl IntoIterator<Item = Q>,
    ) -> Result<Op<'_, Vec<Option<V>>>> {
        let mut cmd = self.cmd("HMGET");
        let mut buf = String::new();
        let mut empty = true;
        for k in keys {
            crate::exec::reply::encode_into(&self.key, &k, &mut buf)?;
            cmd.arg(buf.as_bytes());
            empty = false;
        }
        if empty {
            return Ok(Op::ready(&self.key, Vec::new()));
        }
        Ok(Op::cmd(&self.key, HASH, cmd, |key, v| match v {
            Value::Array(items) => items.into_iter().map(|i| decode_opt(key, i)).collect(),
            other => Err(crate::exec::reply::unexpected(
                key,
                "an array of values",
                &other,
            )),
        }))
    }

    /// The plan: `scripts/hash_remove.lua` (`HASH_REMOVE`).
    pub(crate) fn remove_plan<Q: Serialize + ?Sized>(&self, k: &Q) -> Result<Op<'_, Option<V>>> {
        let args = vec![self.field(k)?];
        Ok(Op::eval_key(
            &self.key,
            HASH,
            &HASH_REMOVE,
            args,
            crate::exec::reply::decode_written,
        ))
    }

    /// The plan: `scripts/hash_setdefault.lua` (`HASH_SETDEFAULT`).
    pub(crate) fn setdefault_plan(&self, k: &K, default: &V) -> Result<Op<'_, V>> {
        let args = vec![self.field(k)?, encode(&self.key, default)?];
        Ok(Op::eval_key(
            &self.key,
            HASH,
            &HASH_SETDEFAULT,
            args,
            |key, v| {
                let bad = |v: &Value| crate::exec::reply::unexpected(key, "[flag, value]", v);
                let Value::Array(parts) = &v else {
                    return Err(bad(&v));
                };
                match parts.as_slice() {
                    [Value::Int(_), value] => {
                        let raw =
                            crate::exec::reply::bulk(key, value.clone())?.ok_or_else(|| bad(&v))?;
                        decode(key, &raw)
                    }
                    _ => Err(bad(&v)),
                }
            },
        ))
    }

    /// The plan: `scripts/hash_popitem.lua` (`HASH_POPITEM`).
    pub(crate) fn popitem_plan(&self) -> Op<'_, Option<(K, V)>> {
        Op::eval_key(&self.key, HASH, &HASH_POPITEM, Vec::new(), |key, v| {
            let parts = match v {
                Value::Nil => return Ok(None),
                Value::Array(parts) if parts.len() == 2 => parts,
                other => {
                    return Err(crate::exec::reply::unexpected(
                        key,
                        "[field, value] or nil",
                        &other,
                    ));
                }
            };
            let mut it = parts.into_iter();
            let (f, v) = (it.next(), it.next());
            let f = crate::exec::reply::decode_written(key, f.unwrap_or(Value::Nil))?;
            let v = crate::exec::reply::decode_written(key, v.unwrap_or(Value::Nil))?;
            Ok(f.zip(v))
        })
    }

    /// [`Core::contains_key_plan`], after a look in the near cache (a hit builds no command).
    pub(crate) fn contains_key_read<'s, 'q, Q: Serialize + ?Sized>(
        &'s self,
        k: &'q Q,
    ) -> crate::near::Probed<
        's,
        'q,
        Q,
        impl FnOnce() -> Result<Op<'s, bool>> + use<'s, 'q, K, V, Q>,
        impl crate::near::Decode<bool> + use<'s, 'q, K, V, Q>,
    > {
        crate::near::Probed {
            reader: self.reader,
            key: &self.key,
            name: "HEXISTS",
            arg: k,
            decode: crate::near::int(|_, n| Ok(n == 1)),
            build: move || self.contains_key_plan(k),
        }
    }

    /// The plan: `HEXISTS`.
    pub(crate) fn contains_key_plan<Q: Serialize + ?Sized>(&self, k: &Q) -> Result<Op<'_, bool>> {
        let mut cmd = self.cmd("HEXISTS");
        cmd.arg(self.field(k)?);
        Ok(Op::cmd(
            &self.key,
            HASH,
            cmd,
            |key, v| Ok(int(key, v)? == 1),
        ))
    }

    /// The plan: `HLEN`.
    pub(crate) fn len_plan(&self) -> Op<'_, usize> {
        Op::cmd(&self.key, HASH, self.cmd("HLEN"), |key, v| {
            crate::exec::reply::length(key, v)
        })
    }

    /// The plan: `HSET`.
    pub(crate) fn extend_plan(
        &self,
        items: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Op<'_, ()>> {
        // Encoded straight into the command through one reused buffer: no allocation per item.
        let mut cmd = self.cmd("HSET");
        let mut buf = String::new();
        let mut empty = true;
        for (k, v) in items {
            crate::exec::reply::encode_into(&self.key, &k, &mut buf)?;
            cmd.arg(buf.as_bytes());
            crate::exec::reply::encode_into(&self.key, &v, &mut buf)?;
            cmd.arg(buf.as_bytes());
            empty = false;
        }
        if empty {
            return Ok(Op::ready(&self.key, ()));
        }
        Ok(Op::cmd(&self.key, HASH, cmd, |_, _| Ok(())))
    }

    /// The plan: `HGETALL`.
    pub(crate) fn to_hash_map_plan(&self) -> Op<'_, HashMap<K, V>>
    where
        K: Eq + Hash,
    {
        Op::cmd(&self.key, HASH, self.cmd("HGETALL"), |key, v| {
            let items = match v {
                Value::Array(items) => items,
                Value::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
                other => {
                    return Err(crate::exec::reply::unexpected(
                        key,
                        "field-value pairs",
                        &other,
                    ));
                }
            };
            let mut out = HashMap::with_capacity(items.len() / 2);
            let mut it = items.into_iter();
            while let (Some(f), Some(v)) = (it.next(), it.next()) {
                let f = crate::exec::reply::bulk(key, f)?.unwrap_or_default();
                let v = crate::exec::reply::bulk(key, v)?.unwrap_or_default();
                out.insert(
                    decode(key, &f)?,
                    crate::exec::reply::decode_value_of(key, &f, &v)?,
                );
            }
            Ok(out)
        })
    }

    /// The plan: `UNLINK`.
    pub(crate) fn clear_plan(&self) -> Op<'_, ()> {
        Op::cmd(&self.key, HASH, self.cmd("UNLINK"), |_, _| Ok(()))
    }

    /// The plan: `HSCAN`.
    pub(crate) fn scan_plan(&self, cursor: u64) -> Op<'_, (u64, Vec<Vec<u8>>)> {
        let mut cmd = self.cmd("HSCAN");
        cmd.arg(cursor).arg("COUNT").arg(PAGE);
        Op::cmd(&self.key, HASH, cmd, scan_page)
    }
}

crate::shell::ops! {
    // How to find an operation: `RedisDict::insert` in the docs -> its `fn insert` entry
    // below (same name; the body builds the plan) -> the plan builder it calls,
    // `Core::insert_plan` (above), whose doc line names the request: the command, or the
    // `scripts/*.lua` it runs.
    impl<K: Storable, V: Storable>
        /// A dict's operations in a [`Batch`](crate::Batch) or an [`aio::Batch`](crate::aio::Batch)
        /// (from [`Batch::on`](crate::Batch::on)): each queues the plan of the
        /// [`RedisDict`] method of the same name and gives its result, when the batch ran, in a
        /// [`Pending`](crate::Pending).
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # let d: pottery::RedisDict<String, i64> = pottery::RedisDict::random(&redis)?;
        /// let batch = pottery::Batch::new(&redis);
        /// let ops = batch.on(&d);
        /// let old = ops.insert("a".into(), 1);
        /// let both = ops.get_many(["a", "b"]);
        /// batch.execute()?;
        /// assert_eq!(old.get()?, None);
        /// assert_eq!(both.get()?, [Some(1), None]);
        /// # d.clear()?;
        /// # Ok::<(), pottery::Error>(())
        /// ```
        RedisDict<K, V> and aio::RedisDict<K, V>, batch DictOps(Core<K, V>)
    {
        example d: This<String, i64> = random(&redis), clear;

        /// Sets `k` to `v`, returning the previous value (atomically, one round trip).
        ///
        /// When the previous value is not pottery JSON of type `V` (another client wrote it), the
        /// write still happened: the error is
        /// [`Error::UndecodableAfterWrite`](crate::Error::UndecodableAfterWrite), which says so and
        /// carries the raw bytes.
        #[example]
        /// assert_eq!(d.insert("a".into(), 1)?, None);
        /// assert_eq!(d.insert("a".into(), 2)?, Some(1));
        #[example(async)]
        /// assert_eq!(d.insert("a".into(), 1).await?, None);
        /// assert_eq!(d.insert("a".into(), 2).await?, Some(1));
        fn insert(&self, k: K, v: V) -> Option<V> {
            self.core.insert_plan(&k, &v)
        }

        /// Sets `k` to `v` without reading the previous value: one plain `HSET`, which is what
        /// Python pottery's `d[k] = v` sends. Cheaper than [`insert`](Self::insert) for the server
        /// (no script), which shows when many clients write at once.
        #[example]
        /// d.set("a".into(), 1)?;
        /// d.set("a".into(), 2)?;
        /// assert_eq!(d.get("a")?, Some(2));
        #[example(async)]
        /// d.set("a".into(), 1).await?;
        /// assert_eq!(d.get("a").await?, Some(1));
        fn set(&self, k: K, v: V) -> () {
            self.core.set_plan(&k, &v)
        }

        /// The value at `k`, if any. Takes borrowed keys: `get("jack")` on a `RedisDict<String, _>`.
        #[example]
        /// d.insert("a".into(), 1)?;
        /// assert_eq!(d.get("a")?, Some(1));
        /// assert_eq!(d.get("b")?, None);
        #[example(async)]
        /// assert_eq!(d.get("nobody").await?, None);
        fn get<Q>(&self, k: &Q) -> Option<V>
        where
            K: Borrow<Q>,
            Q: Serialize + ?Sized,
        {
            self.core.get_read(k)
        }

        /// The values of several keys in one round trip (`HMGET`), in the order asked, `None`
        /// for the absent ones.
        #[example]
        /// d.insert("a".into(), 1)?;
        /// d.insert("c".into(), 3)?;
        /// assert_eq!(d.get_many(["a", "b", "c"])?, [Some(1), None, Some(3)]);
        #[example(async)]
        /// d.insert("a".into(), 1).await?;
        /// assert_eq!(d.get_many(["a", "b"]).await?, [Some(1), None]);
        fn get_many<Q>(&self, keys: impl IntoIterator<Item = Q>) -> Vec<Option<V>>
        where
            Q: Serialize,
        {
            self.core.get_many_plan(keys)
        }

        /// Removes `k`, returning its value if it was there (atomically, one round trip).
        ///
        /// When the removed value is not pottery JSON of type `V` (another client wrote it), the
        /// write still happened: the error is
        /// [`Error::UndecodableAfterWrite`](crate::Error::UndecodableAfterWrite), which says so and
        /// carries the raw bytes.
        #[example]
        /// d.insert("a".into(), 1)?;
        /// assert_eq!(d.remove("a")?, Some(1));
        /// assert_eq!(d.remove("a")?, None);
        #[example(async)]
        /// d.insert("a".into(), 1).await?;
        /// assert_eq!(d.remove("a").await?, Some(1));
        fn remove<Q>(&self, k: &Q) -> Option<V>
        where
            K: Borrow<Q>,
            Q: Serialize + ?Sized,
        {
            self.core.remove_plan(k)
        }

        /// Python's `setdefault(k, default)`: the value at `k`, after storing `default` there if
        /// it had none (atomically: `HSETNX` and `HGET` in one script, one round trip).
        ///
        /// When the value already there does not decode, nothing was written and the error is
        /// [`Error::Codec`](crate::Error::Codec).
        #[example]
        /// assert_eq!(d.setdefault("a".into(), 1)?, 1);
        /// assert_eq!(d.setdefault("a".into(), 2)?, 1);
        /// assert_eq!(d.get("a")?, Some(1));
        #[example(async)]
        /// assert_eq!(d.setdefault("a".into(), 1).await?, 1);
        /// assert_eq!(d.setdefault("a".into(), 2).await?, 1);
        fn setdefault(&self, k: K, default: V) -> V {
            self.core.setdefault_plan(&k, &default)
        }

        /// Python pottery's `popitem()`: removes one entry and returns it, `None` when the dict is
        /// empty. The entry is the first `HSCAN` returns, as in pottery; the read and the delete
        /// are one script (pottery takes three round trips, not atomically).
        ///
        /// When the entry does not decode, it was removed all the same: the error is
        /// [`Error::UndecodableAfterWrite`](crate::Error::UndecodableAfterWrite), with the bytes
        /// of the part (field or value) that failed.
        #[example]
        /// d.insert("a".into(), 1)?;
        /// assert_eq!(d.popitem()?, Some(("a".to_string(), 1)));
        /// assert_eq!(d.popitem()?, None);
        #[example(async)]
        /// d.insert("a".into(), 1).await?;
        /// assert_eq!(d.popitem().await?, Some(("a".to_string(), 1)));
        /// assert_eq!(d.popitem().await?, None);
        fn popitem(&self) -> Option<(K, V)> {
            self.core.popitem_plan()
        }

        /// Whether `k` is present (`HEXISTS`).
        #[example]
        /// d.insert("a".into(), 1)?;
        /// assert!(d.contains_key("a")?);
        /// assert!(!d.contains_key("b")?);
        #[example(async)]
        /// assert!(!d.contains_key("a").await?);
        fn contains_key<Q>(&self, k: &Q) -> bool
        where
            K: Borrow<Q>,
            Q: Serialize + ?Sized,
        {
            self.core.contains_key_read(k)
        }

        /// How many entries (`HLEN`).
        #[example]
        /// assert_eq!(d.len()?, 0);
        /// d.insert("a".into(), 1)?;
        /// assert_eq!(d.len()?, 1);
        #[example(async)]
        /// assert_eq!(d.len().await?, 0);
        fn len(&self) -> usize {
            self.core.len_plan()
        }

        /// Inserts every pair with one `HSET`, whatever their number; nothing is sent for none.
        #[example]
        /// d.extend([("a".to_string(), 1), ("b".to_string(), 2)])?;
        /// d.extend(Vec::new())?;
        /// assert_eq!(d.len()?, 2);
        #[example(async)]
        /// d.extend([("a".to_string(), 1), ("b".to_string(), 2)]).await?;
        /// assert_eq!(d.len().await?, 2);
        fn extend(&self, items: impl IntoIterator<Item = (K, V)>) -> () {
            self.core.extend_plan(items)
        }

        /// All entries in one `HGETALL`: an atomic snapshot.
        #[example]
        /// d.extend([("a".to_string(), 1)])?;
        /// assert_eq!(d.to_hash_map()?, [("a".to_string(), 1)].into());
        #[example(async)]
        /// d.insert("a".into(), 1).await?;
        /// assert_eq!(d.to_hash_map().await?.len(), 1);
        fn to_hash_map(&self) -> HashMap<K, V>
        where
            K: Eq + Hash,
        {
            self.core.to_hash_map_plan()
        }

        /// Deletes the hash (`UNLINK`).
        #[example]
        /// d.insert("a".into(), 1)?;
        /// d.clear()?;
        /// assert!(d.is_empty()?);
        #[example(async)]
        /// d.clear().await?;
        fn clear(&self) -> () {
            self.core.clear_plan()
        }

        /// Python's `pop(k, default)`: removes `k` and returns its value, or `default` when it was
        /// absent (one round trip, as [`remove`](Self::remove), whose errors it shares).
        #[example]
        /// d.insert("a".into(), 1)?;
        /// assert_eq!(d.pop("a", 0)?, 1);
        /// assert_eq!(d.pop("a", 0)?, 0);
        #[example(async)]
        /// assert_eq!(d.pop("a", -1).await?, -1);
        fn pop<Q>(&self, k: &Q, default: V) -> V
        where
            K: Borrow<Q>,
            Q: Serialize + ?Sized,
        {
            Ok(self.core.remove_plan(k)?.and_then(move |v| Ok(v.unwrap_or(default))))
        }

        /// Whether the dict has no entries (a missing key is an empty dict).
        #[example]
        /// assert!(d.is_empty()?);
        #[example(async)]
        /// assert!(d.is_empty().await?);
        fn is_empty(&self) -> bool {
            self.core.len_plan().and_then(|n| Ok(n == 0))
        }
    }
}

/// What a step of an entry operation saw.
pub(crate) enum Seen {
    /// The field is absent.
    Absent,
    /// The field holds these bytes.
    Present(Vec<u8>),
    /// Our write went in.
    Stored,
}

/// A modifier given to `and_modify`.
type Modify<'a, V> = Box<dyn FnMut(&mut V) + Send + 'a>;
/// The default of `or_insert_with`, computed at most once.
type MakeDefault<'a, V> = Box<dyn FnOnce() -> V + Send + 'a>;

/// The entry API's algorithm, written once as a state machine that the blocking and async
/// shells drive: an optimistic compare-and-set loop. Without a modifier it is one round trip
/// (the `setdefault` script); with one, a read and a compare-and-set, repeated only when
/// another client changed the field in between (each repeat means someone else's write went
/// in, so the loop always makes progress).
pub(crate) struct EntryPlan<'a, K, V> {
    core: &'a Core<K, V>,
    field: Vec<u8>,
    modify: Option<Modify<'a, V>>,
    default: Option<MakeDefault<'a, V>>,
    /// The default, encoded (once computed).
    default_bytes: Option<Vec<u8>>,
    /// The value our pending write stores.
    pending: Option<V>,
    /// Whether the default is costly to make: then read first, and make it only if absent.
    lazy: bool,
}

fn seen_reply(key: &str, v: Value) -> Result<Seen> {
    let bad = |v: &Value| crate::exec::reply::unexpected(key, "[flag, value?]", v);
    match v {
        Value::Nil => Ok(Seen::Absent),
        Value::BulkString(b) => Ok(Seen::Present(b)),
        Value::Array(parts) => match parts.as_slice() {
            [Value::Int(1), ..] => Ok(Seen::Stored),
            [Value::Int(0)] => Ok(Seen::Absent),
            [Value::Int(0), value] => match crate::exec::reply::bulk(key, value.clone())? {
                Some(b) => Ok(Seen::Present(b)),
                None => Ok(Seen::Absent),
            },
            _ => Err(bad(&Value::Array(parts))),
        },
        other => Err(bad(&other)),
    }
}

impl<'a, K, V> EntryPlan<'a, K, V>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
{
    pub(crate) fn new(core: &'a Core<K, V>, k: &K) -> Result<Self> {
        Ok(EntryPlan {
            core,
            field: core.field(k)?,
            modify: None,
            default: None,
            default_bytes: None,
            pending: None,
            lazy: false,
        })
    }

    pub(crate) fn and_modify(mut self, f: impl FnMut(&mut V) + Send + 'a) -> Self {
        self.modify = Some(Box::new(f));
        self
    }

    /// The default: a value at hand (`lazy` false: sent at once with `HSETNX`), or one to make
    /// only if the field turns out absent (`lazy` true: read first).
    pub(crate) fn or_insert_with(mut self, f: impl FnOnce() -> V + Send + 'a, lazy: bool) -> Self {
        self.default = Some(Box::new(f));
        self.lazy = lazy;
        self
    }

    /// The first request: a plain read when there is a modifier or a lazy default, else the
    /// insert-if-absent.
    pub(crate) fn first(&mut self) -> Result<Op<'a, Seen>> {
        if self.modify.is_some() || self.lazy {
            let mut cmd = self.core.cmd("HGET");
            cmd.arg(&self.field);
            return Ok(Op::cmd(&self.core.key, HASH, cmd, seen_reply));
        }
        self.insert_default()
    }

    fn insert_default(&mut self) -> Result<Op<'a, Seen>> {
        let core = self.core;
        let bytes = match &self.default_bytes {
            Some(b) => b.clone(),
            None => {
                let make = self.default.take().ok_or_else(|| crate::Error::Config {
                    message: "an entry needs a default".into(),
                })?;
                let b = encode(&core.key, &make())?;
                self.default_bytes = Some(b.clone());
                b
            }
        };
        self.pending = Some(decode(&core.key, &bytes)?);
        Ok(Op::eval(
            &core.key,
            HASH,
            &HASH_SETDEFAULT,
            vec![core.key.clone().into_bytes()],
            vec![self.field.clone(), bytes],
            seen_reply,
        ))
    }

    /// The next request after `seen`, or `None` when done (the value is then in [`Self::done`]).
    pub(crate) fn next(&mut self, seen: Seen) -> Result<Option<Op<'a, Seen>>> {
        let core = self.core;
        match seen {
            Seen::Stored => Ok(None),
            Seen::Absent => self.insert_default().map(Some),
            Seen::Present(old) => {
                let mut value: V = decode(&core.key, &old)?;
                let Some(modify) = self.modify.as_mut() else {
                    self.pending = Some(value);
                    return Ok(None);
                };
                modify(&mut value);
                let new = encode(&core.key, &value)?;
                self.pending = Some(value);
                Ok(Some(Op::eval(
                    &core.key,
                    HASH,
                    &HASH_CAS,
                    vec![core.key.clone().into_bytes()],
                    vec![self.field.clone(), old, new],
                    seen_reply,
                )))
            }
        }
    }

    /// The value the entry holds now.
    pub(crate) fn done(self) -> Result<V> {
        self.pending.ok_or_else(|| {
            crate::exec::reply::unexpected(&self.core.key, "an entry value", &Value::Nil)
        })
    }
}

/// A field of a [`RedisDict`], for in-place manipulation: `HashMap::entry`'s shape, over
/// Redis. Made by [`RedisDict::entry`]; nothing is sent until `or_insert`, `or_insert_with` or
/// `or_default`.
///
/// It is safe against other clients: the default goes in only if the field is still absent
/// (`HSETNX`), and a modification is a compare-and-set that is retried on the value another
/// client wrote meanwhile — so `and_modify(|n| *n += 1)` from many processes loses no
/// increment. (For plain integers, [`RedisCounter`](crate::RedisCounter) does that in one
/// round trip.)
///
/// ```
/// # let redis = pottery::testing::doctest_redis();
/// # let d: pottery::RedisDict<String, Vec<String>> = pottery::RedisDict::random(&redis)?;
/// d.entry("fruit".into()).or_default()?;
/// let now = d.entry("fruit".into()).and_modify(|v| v.push("fig".into())).or_default()?;
/// assert_eq!(now, ["fig"]);
/// # d.clear()?;
/// # Ok::<(), pottery::Error>(())
/// ```
#[must_use = "an entry does nothing until or_insert, or_insert_with or or_default"]
pub struct Entry<'a, K, V> {
    plan: Result<EntryPlan<'a, K, V>>,
    key: K,
}

impl<'a, K, V> Entry<'a, K, V>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
{
    /// The entry's key.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let d: pottery::RedisDict<String, i64> = pottery::RedisDict::new(&redis, "k");
    /// assert_eq!(d.entry("a".into()).key(), "a");
    /// ```
    pub fn key(&self) -> &K {
        &self.key
    }

    /// Applies `f` to the value if the field has one, when the entry is resolved (and again
    /// to the newer value if another client changed it in between).
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let d: pottery::RedisDict<String, i64> = pottery::RedisDict::random(&redis)?;
    /// assert_eq!(d.entry("hits".into()).and_modify(|n| *n += 1).or_insert(1)?, 1);
    /// assert_eq!(d.entry("hits".into()).and_modify(|n| *n += 1).or_insert(1)?, 2);
    /// # d.clear()?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn and_modify(self, f: impl FnMut(&mut V) + Send + 'a) -> Self {
        Entry {
            plan: self.plan.map(|p| p.and_modify(f)),
            key: self.key,
        }
    }

    /// The value at the key (modified by [`and_modify`](Self::and_modify) if it had one),
    /// after storing `default` there if it had none. Without a modifier this is
    /// [`RedisDict::setdefault`]: one round trip.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let d: pottery::RedisDict<String, i64> = pottery::RedisDict::random(&redis)?;
    /// assert_eq!(d.entry("a".into()).or_insert(3)?, 3);
    /// assert_eq!(d.entry("a".into()).or_insert(4)?, 3);
    /// # d.clear()?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn or_insert(self, default: V) -> Result<V>
    where
        V: Send + 'a,
    {
        self.resolve(move || default, false)
    }

    /// [`or_insert`](Self::or_insert) with a default computed only if the field is absent.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let d: pottery::RedisDict<String, String> = pottery::RedisDict::random(&redis)?;
    /// assert_eq!(d.entry("a".into()).or_insert_with(|| "x".repeat(3))?, "xxx");
    /// # d.clear()?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn or_insert_with(self, default: impl FnOnce() -> V + Send + 'a) -> Result<V> {
        self.resolve(default, true)
    }

    fn resolve(self, default: impl FnOnce() -> V + Send + 'a, lazy: bool) -> Result<V> {
        block_on_ready(self.resolve_on(&Blocking, default, lazy))
    }

    /// Resolves the entry with either runner (the async entry's too): its plan's steps, one
    /// round trip each, until it is done.
    pub(crate) async fn resolve_on<R: Runner>(
        self,
        runner: &R,
        default: impl FnOnce() -> V + Send + 'a,
        lazy: bool,
    ) -> Result<V> {
        let mut plan = self.plan?.or_insert_with(default, lazy);
        let redis = plan.core.redis.clone();
        let mut op = plan.first()?;
        loop {
            let seen = runner.run(&redis, op).await?;
            match plan.next(seen)? {
                Some(next) => op = next,
                None => return plan.done(),
            }
        }
    }

    /// [`or_insert`](Self::or_insert) with `V::default()`.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let d: pottery::RedisDict<String, u32> = pottery::RedisDict::random(&redis)?;
    /// assert_eq!(d.entry("a".into()).or_default()?, 0);
    /// # d.clear()?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn or_default(self) -> Result<V>
    where
        V: Default,
    {
        self.resolve(V::default, false)
    }
}

/// A Redis hash seen as a `HashMap<K, V>`: Python pottery's `RedisDict`.
///
/// Each field is `codec::encode(k)` and each value `codec::encode(v)`, exactly as pottery
/// stores them, so a Python `RedisDict(redis=..., key=...)` on the same key reads and writes the
/// same data. Every method is one round trip (or none); `insert` and `remove` return the old
/// value atomically (a Lua script); `extend` is one `HSET` whatever its size.
///
/// ```
/// use pottery::{Redis, RedisDict};
///
/// let redis = Redis::from_env()?;
/// # let redis = pottery::testing::doctest_redis();
/// let tel: RedisDict<String, i64> = RedisDict::new(&redis, "tel-doc");
/// # tel.clear()?;
/// tel.insert("jack".into(), 4098)?;
/// tel.insert("sape".into(), 4139)?;
/// assert_eq!(tel.get("jack")?, Some(4098));
/// assert_eq!(tel.insert("jack".into(), 4127)?, Some(4098));
/// assert_eq!(tel.len()?, 2);
/// # tel.clear()?;
/// # Ok::<(), pottery::Error>(())
/// ```
pub struct RedisDict<K, V> {
    core: Core<K, V>,
}

crate::shell::shell_impls!(RedisDict<K, V>, "RedisDict");
crate::shell::shell_basics!(handles RedisDict, aio::RedisDict, [K, V], "RedisDict::<String, i64>::new(&redis, \"k\")");
crate::shell::shell_basics!(attach RedisDict, aio::RedisDict, [K, V], [K: Serialize + DeserializeOwned, V: Serialize + DeserializeOwned], "RedisDict<String, i64>");

impl<K, V> RedisDict<K, V>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
{
    /// Creates the hash at `key` holding `items`, atomically, failing with
    /// [`Error::KeyExists`](crate::Error::KeyExists) if the key already exists (pottery's init-with-data).
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// use pottery::{Error, RedisDict};
    /// # RedisDict::<String, i64>::new(&redis, "ages").clear()?;
    /// let ages = RedisDict::create(&redis, "ages", [("ada".to_string(), 36)])?;
    /// assert_eq!(ages.get("ada")?, Some(36));
    /// let again = RedisDict::create(&redis, "ages", [("bob".to_string(), 1)]);
    /// assert!(matches!(again, Err(Error::KeyExists { .. })));
    /// # ages.clear()?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn create(
        redis: &Redis,
        key: impl Into<String>,
        items: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self> {
        let dict = RedisDict::new(redis, key);
        redis.run(dict.core.create_plan(items)?)?;
        Ok(dict)
    }

    /// The field at `k`, for in-place manipulation (`HashMap::entry`'s shape); see [`Entry`].
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let words: pottery::RedisDict<String, u64> = pottery::RedisDict::random(&redis)?;
    /// for w in ["a", "b", "a"] {
    ///     words.entry(w.into()).and_modify(|n| *n += 1).or_insert(1)?;
    /// }
    /// assert_eq!(words.get("a")?, Some(2));
    /// # words.clear()?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn entry(&self, k: K) -> Entry<'_, K, V> {
        Entry {
            plan: EntryPlan::new(&self.core, &k),
            key: k,
        }
    }

    /// Streams the entries with `HSCAN`, one page in memory at a time.
    ///
    /// Like Python pottery's iteration this has `SCAN` semantics: there is no snapshot, an entry
    /// present throughout is returned, and one may in rare cases be returned twice while Redis
    /// resizes the hash. Use [`to_hash_map`](Self::to_hash_map) for a snapshot.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let d: pottery::RedisDict<String, i64> = pottery::RedisDict::random(&redis)?;
    /// d.extend([("a".to_string(), 1), ("b".to_string(), 2)])?;
    /// let mut total = 0;
    /// for entry in d.iter() {
    ///     let (_name, n) = entry?;
    ///     total += n;
    /// }
    /// assert_eq!(total, 3);
    /// # d.clear()?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn iter(&self) -> Iter<'_, K, V> {
        Iter {
            dict: self,
            scan: Scan::new(2),
        }
    }

    /// Streams the keys (see [`iter`](Self::iter)).
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let d: pottery::RedisDict<String, i64> = pottery::RedisDict::random(&redis)?;
    /// d.insert("a".into(), 1)?;
    /// let keys: Vec<String> = d.keys().collect::<Result<_, _>>()?;
    /// assert_eq!(keys, ["a"]);
    /// # d.clear()?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn keys(&self) -> impl Iterator<Item = Result<K>> + '_ {
        self.iter().map(|r| r.map(|(k, _)| k))
    }

    /// Streams the values (see [`iter`](Self::iter)).
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # let d: pottery::RedisDict<String, i64> = pottery::RedisDict::random(&redis)?;
    /// d.insert("a".into(), 1)?;
    /// let values: Vec<i64> = d.values().collect::<Result<_, _>>()?;
    /// assert_eq!(values, [1]);
    /// # d.clear()?;
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn values(&self) -> impl Iterator<Item = Result<V>> + '_ {
        self.iter().map(|r| r.map(|(_, v)| v))
    }
}

/// The iterator of [`RedisDict::iter`]: yields `Result<(K, V)>`, fetching HSCAN pages as it
/// goes. After an error it ends.
///
/// ```
/// # let redis = pottery::testing::doctest_redis();
/// # let d: pottery::RedisDict<u32, u32> = pottery::RedisDict::random(&redis)?;
/// d.extend((0..1000).map(|i| (i, i * i)))?;
/// let it: pottery::dict::Iter<'_, u32, u32> = d.iter();
/// assert_eq!(it.count(), 1000);
/// # d.clear()?;
/// # Ok::<(), pottery::Error>(())
/// ```
pub struct Iter<'a, K, V> {
    dict: &'a RedisDict<K, V>,
    scan: Scan,
}

impl<K, V> fmt::Debug for Iter<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter")
            .field("key", &self.dict.core.key)
            .field("cursor", &self.scan.cursor)
            .finish()
    }
}

impl<K, V> Iterator for Iter<'_, K, V>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
{
    type Item = Result<(K, V)>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.scan.needs_page() {
            let core = &self.dict.core;
            let page = core.redis.run(core.scan_plan(self.scan.cursor));
            if let Err(e) = self.scan.accept(page) {
                return Some(Err(e));
            }
        }
        self.scan.next_pair(&self.dict.core.key)
    }
}

/// The async twin: [`aio::RedisDict`](crate::aio::RedisDict).
pub mod aio {
    use super::*;
    use futures_util::Stream;

    /// Async [`dict::Entry`](crate::dict::Entry): the same algorithm, resolved with `.await`.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let d: pottery::aio::RedisDict<String, Vec<u8>> = pottery::aio::RedisDict::random(&redis).await?;
    /// let e = d.entry("k".into());
    /// assert_eq!(e.key(), "k");
    /// assert_eq!(e.and_modify(|v| v.push(1)).or_default().await?, Vec::<u8>::new());
    /// # d.clear().await?;
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    #[must_use = "an entry does nothing until or_insert, or_insert_with or or_default is awaited"]
    pub struct Entry<'a, K, V>(super::Entry<'a, K, V>);

    impl<'a, K, V> Entry<'a, K, V>
    where
        K: Serialize + DeserializeOwned,
        V: Serialize + DeserializeOwned,
    {
        /// See [`crate::dict::Entry::key`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # let d: pottery::aio::RedisDict<String, i64> = pottery::aio::RedisDict::new(&redis, "k");
        /// assert_eq!(d.entry("a".into()).key(), "a");
        /// ```
        pub fn key(&self) -> &K {
            self.0.key()
        }

        /// See [`crate::dict::Entry::and_modify`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// # let d: pottery::aio::RedisDict<String, i64> = pottery::aio::RedisDict::random(&redis).await?;
        /// d.insert("a".into(), 1).await?;
        /// assert_eq!(d.entry("a".into()).and_modify(|n| *n += 1).or_insert(0).await?, 2);
        /// # d.clear().await?;
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub fn and_modify(self, f: impl FnMut(&mut V) + Send + 'a) -> Self {
            Entry(self.0.and_modify(f))
        }

        /// See [`crate::dict::Entry::or_insert`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// # let d: pottery::aio::RedisDict<String, i64> = pottery::aio::RedisDict::random(&redis).await?;
        /// assert_eq!(d.entry("a".into()).or_insert(3).await?, 3);
        /// # d.clear().await?;
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub async fn or_insert(self, default: V) -> Result<V>
        where
            V: Send + 'a,
        {
            self.resolve(move || default, false).await
        }

        /// See [`crate::dict::Entry::or_insert_with`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// # let d: pottery::aio::RedisDict<String, i64> = pottery::aio::RedisDict::random(&redis).await?;
        /// assert_eq!(d.entry("a".into()).or_insert_with(|| 6 * 7).await?, 42);
        /// # d.clear().await?;
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub async fn or_insert_with(self, default: impl FnOnce() -> V + Send + 'a) -> Result<V> {
            self.resolve(default, true).await
        }

        async fn resolve(self, default: impl FnOnce() -> V + Send + 'a, lazy: bool) -> Result<V> {
            self.0.resolve_on(&Async, default, lazy).await
        }

        /// See [`crate::dict::Entry::or_default`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// # let d: pottery::aio::RedisDict<String, i64> = pottery::aio::RedisDict::random(&redis).await?;
        /// assert_eq!(d.entry("a".into()).or_default().await?, 0);
        /// # d.clear().await?;
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub async fn or_default(self) -> Result<V>
        where
            V: Default + Send + 'a,
        {
            self.resolve(V::default, false).await
        }
    }

    /// Async [`RedisDict`](crate::RedisDict): the same methods, as `async fn`s, running the
    /// same plans on the handle's multiplexed connection.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use pottery::aio::RedisDict;
    ///
    /// let tel: RedisDict<String, i64> = RedisDict::new(&redis, "tel-async-doc");
    /// # tel.clear().await?;
    /// tel.insert("jack".into(), 4098).await?;
    /// assert_eq!(tel.get("jack").await?, Some(4098));
    /// # tel.clear().await?;
    /// # Ok::<(), pottery::Error>(()) }).unwrap();
    /// ```
    pub struct RedisDict<K, V> {
        pub(super) core: Core<K, V>,
    }

    crate::shell::shell_impls!(RedisDict<K, V>, "aio::RedisDict");

    impl<K, V> RedisDict<K, V>
    where
        K: Serialize + DeserializeOwned,
        V: Serialize + DeserializeOwned,
    {
        /// Creates the hash atomically, or fails with [`Error::KeyExists`](crate::Error::KeyExists).
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// let d = pottery::aio::RedisDict::create(&redis, "ages-async-doc", [("ada".to_string(), 36)]).await?;
        /// assert_eq!(d.get("ada").await?, Some(36));
        /// # d.clear().await?;
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub async fn create(
            redis: &Redis,
            key: impl Into<String>,
            items: impl IntoIterator<Item = (K, V)>,
        ) -> Result<Self> {
            let dict = RedisDict::new(redis, key);
            redis.run_async(dict.core.create_plan(items)?).await?;
            Ok(dict)
        }

        /// See [`crate::RedisDict::entry`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// # let d: pottery::aio::RedisDict<String, i64> = pottery::aio::RedisDict::random(&redis).await?;
        /// assert_eq!(d.entry("n".into()).and_modify(|n| *n *= 2).or_insert(1).await?, 1);
        /// assert_eq!(d.entry("n".into()).and_modify(|n| *n *= 2).or_insert(1).await?, 2);
        /// # d.clear().await?;
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub fn entry(&self, k: K) -> Entry<'_, K, V> {
            Entry(super::Entry {
                plan: EntryPlan::new(&self.core, &k),
                key: k,
            })
        }

        /// Streams the entries with `HSCAN`, one page in memory at a time (see
        /// [`crate::RedisDict::iter`]).
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// use futures_util::TryStreamExt;
        /// # let d: pottery::aio::RedisDict<String, i64> = pottery::aio::RedisDict::random(&redis).await?;
        /// d.extend([("a".to_string(), 1), ("b".to_string(), 2)]).await?;
        /// let total = d.iter().try_fold(0, |sum, (_, n)| async move { Ok(sum + n) }).await?;
        /// assert_eq!(total, 3);
        /// # d.clear().await?;
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub fn iter(&self) -> impl Stream<Item = Result<(K, V)>> + Send + '_
        where
            K: Send,
            V: Send,
        {
            let core = &self.core;
            let plan = |c| core.scan_plan(c);
            crate::shell::scan::stream(&core.redis, 2, plan, |s| s.next_pair(&core.key))
        }

        /// Streams the keys.
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// use futures_util::TryStreamExt;
        /// # let d: pottery::aio::RedisDict<String, i64> = pottery::aio::RedisDict::random(&redis).await?;
        /// d.insert("a".into(), 1).await?;
        /// let keys: Vec<String> = d.keys().try_collect().await?;
        /// assert_eq!(keys, ["a"]);
        /// # d.clear().await?;
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub fn keys(&self) -> impl Stream<Item = Result<K>> + Send + '_
        where
            K: Send,
            V: Send,
        {
            use futures_util::StreamExt;
            self.iter().map(|r| r.map(|(k, _)| k))
        }

        /// Streams the values.
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// use futures_util::TryStreamExt;
        /// # let d: pottery::aio::RedisDict<String, i64> = pottery::aio::RedisDict::random(&redis).await?;
        /// d.insert("a".into(), 1).await?;
        /// let values: Vec<i64> = d.values().try_collect().await?;
        /// assert_eq!(values, [1]);
        /// # d.clear().await?;
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub fn values(&self) -> impl Stream<Item = Result<V>> + Send + '_
        where
            K: Send,
            V: Send,
        {
            use futures_util::StreamExt;
            self.iter().map(|r| r.map(|(_, v)| v))
        }
    }
}
