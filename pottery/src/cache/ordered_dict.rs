//! `CachedOrderedDict`: an ordered local dict of the values a Redis hash holds for given keys.
//!
#![doc = include_str!("../guide/ordered_dict.md")]

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

use redis::Value;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{DEFAULT_TIMEOUT, timeout_ms};
use crate::client::Redis;
use crate::codec::Storable;
use crate::error::Result;
use crate::exec::plan::{Op, script};
use crate::exec::reply::{bulk, decode, encode, unexpected};

script!(CACHE_LOAD, "cache_load.lua", Idempotent);
script!(CACHE_SET, "cache_set.lua", Idempotent);
script!(CACHE_SETDEFAULT, "cache_setdefault.lua", Idempotent);

const HASH: &str = "hash";

/// The local data and the plans; shared by the blocking and the async shells.
pub(crate) struct Core<K, V> {
    pub(crate) redis: Redis,
    pub(crate) key: String,
    timeout_ms: u64,
    /// Every key in order; `None` is a miss.
    entries: Vec<(K, Option<V>)>,
    index: HashMap<K, usize>,
}

impl<K, V> Core<K, V>
where
    K: Serialize + Eq + Hash + Clone,
    V: Serialize + DeserializeOwned,
{
    /// The keys, deduplicated in their first order, all misses for now.
    fn new(redis: &Redis, key: String, timeout: Option<Duration>, keys: Vec<K>) -> Self {
        let mut core = Core {
            redis: redis.clone(),
            key,
            timeout_ms: timeout_ms(timeout),
            entries: Vec::with_capacity(keys.len()),
            index: HashMap::with_capacity(keys.len()),
        };
        for k in keys {
            core.slot(k);
        }
        core
    }

    /// The position of `k`, appended as a miss if it is new.
    fn slot(&mut self, k: K) -> usize {
        if let Some(i) = self.index.get(&k) {
            return *i;
        }
        let i = self.entries.len();
        self.index.insert(k.clone(), i);
        self.entries.push((k, None));
        i
    }

    fn ttl_arg(&self) -> Vec<u8> {
        self.timeout_ms.to_string().into_bytes()
    }

    /// One script: `HMGET` of every key (undecodable entries count as misses) and the expiry.
    fn load(&self) -> Result<Op<'_, Vec<Option<Vec<u8>>>>> {
        let mut args = vec![self.ttl_arg()];
        for (k, _) in &self.entries {
            args.push(encode(&self.key, k)?);
        }
        if args.len() == 1 {
            return Ok(Op::ready(&self.key, Vec::new()));
        }
        // On a near-cached handle: one HMGET, served from memory when cached, and the
        // sliding expiry refreshed in the background (see `RedisCache`).
        if self.redis.near().is_some() {
            super::refresh_expiry_near(&self.redis, &self.key, self.timeout_ms);
            let mut hmget = redis::cmd("HMGET");
            hmget.arg(&self.key).arg(&args[1..]);
            return Ok(Op::cmd_with(&self.key, HASH, hmget, |key, v| match v {
                Value::Array(items) => items.into_iter().map(|i| bulk(key, i)).collect(),
                other => Err(unexpected(key, "an array", &other)),
            }));
        }
        Ok(Op::eval(
            &self.key,
            HASH,
            &CACHE_LOAD,
            vec![self.key.clone().into_bytes()],
            args,
            |key, v| match v {
                Value::Array(items) => items.into_iter().map(|i| bulk(key, i)).collect(),
                other => Err(unexpected(key, "an array", &other)),
            },
        ))
    }

    fn apply_load(&mut self, found: Vec<Option<Vec<u8>>>) {
        for ((_, slot), bytes) in self.entries.iter_mut().zip(found) {
            *slot = bytes.and_then(|b| match decode(&self.key, &b) {
                Ok(v) => Some(v),
                Err(e) => {
                    // A cache entry of another shape is a miss, to be recomputed and written.
                    tracing::warn!(
                        key = crate::observe::event_key(Some(&self.redis), &self.key),
                        error = %crate::observe::event_error(Some(&self.redis), &e),
                        "pottery cache: a cached value does not decode; counted as a miss"
                    );
                    None
                }
            });
        }
    }

    /// One script: `HSET` of the pairs and the expiry.
    fn store<'a>(&'a self, pairs: impl IntoIterator<Item = (&'a K, &'a V)>) -> Result<Op<'a, ()>> {
        let mut args = vec![self.ttl_arg()];
        for (k, v) in pairs {
            args.push(encode(&self.key, k)?);
            args.push(encode(&self.key, v)?);
        }
        if args.len() == 1 {
            return Ok(Op::ready(&self.key, ()));
        }
        Ok(Op::eval(
            &self.key,
            HASH,
            &CACHE_SET,
            vec![self.key.clone().into_bytes()],
            args,
            |_, _| Ok(()),
        ))
    }

    fn apply_insert(&mut self, k: K, v: V) -> Option<V> {
        let i = self.slot(k);
        self.entries[i].1.replace(v)
    }

    /// One script: `HSETNX`, the expiry, and the value the field holds afterwards.
    fn setdefault(&self, k: &K, default: &V) -> Result<Op<'_, V>>
    where
        V: Send,
    {
        let args = vec![
            self.ttl_arg(),
            encode(&self.key, k)?,
            encode(&self.key, default)?,
        ];
        Ok(Op::eval(
            &self.key,
            HASH,
            &CACHE_SETDEFAULT,
            vec![self.key.clone().into_bytes()],
            args,
            |key, v| match bulk(key, v)? {
                Some(b) => decode(key, &b),
                None => Err(unexpected(key, "the stored value", &Value::Nil)),
            },
        ))
    }

    fn apply_setdefault(&mut self, k: K, stored: V) -> &V {
        let i = self.slot(k);
        self.entries[i].1.insert(stored)
    }

    fn get<Q>(&self, k: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.index.get(k).and_then(|i| self.entries[*i].1.as_ref())
    }

    fn misses(&self) -> Vec<K> {
        self.entries
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| k.clone())
            .collect()
    }

    fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.entries
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
    }
}

/// An ordered, local dict of the values a Redis hash caches for the keys you ask for: Python
/// pottery's `CachedOrderedDict`, and its layout (fields and values are pottery JSON), so a
/// Python process and a Rust process share one cache.
///
/// [`new`](Self::new) reads every key's cached value in one round trip; the keys Redis did not
/// have are [`misses`](Self::misses). Compute those, [`insert`](Self::insert) them (written
/// through to Redis), then read everything locally, in the order the keys were given. The hash
/// expires `timeout` after its last load or write (default 60 s, sliding). A cached value that
/// does not decode as `V` counts as a miss.
///
/// On a handle with a [near cache](crate::near) the load is an `HMGET` served from memory
/// when this process read the same keys before and nobody wrote the hash since; the sliding
/// expiry is then refreshed in the background at most once per tenth of the timeout (as
/// [`RedisCache`](crate::RedisCache)'s is).
///
/// ```
/// use pottery::{CachedOrderedDict, Redis};
///
/// let redis = Redis::from_env()?;
/// # let redis = pottery::testing::doctest_redis();
/// # redis::cmd("DEL").arg("squares-doc").exec(&mut redis.connection()?)?;
/// fn expensive(n: u32) -> u64 { u64::from(n) * u64::from(n) }
///
/// let mut squares: CachedOrderedDict<u32, u64> = CachedOrderedDict::new(&redis, "squares-doc", 0..5)?;
/// for n in squares.misses() {                       // the first time, all five
///     squares.insert(n, expensive(n))?;
/// }
/// let again: CachedOrderedDict<u32, u64> = CachedOrderedDict::new(&redis, "squares-doc", 0..5)?;
/// assert!(again.misses().is_empty());               // now all cached
/// assert_eq!(again.values().copied().collect::<Vec<_>>(), [0, 1, 4, 9, 16]);
/// # redis::cmd("DEL").arg("squares-doc").exec(&mut redis.connection()?)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct CachedOrderedDict<K, V> {
    core: Core<K, V>,
}

impl<K: std::fmt::Debug, V: std::fmt::Debug> std::fmt::Debug for CachedOrderedDict<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedOrderedDict")
            .field("key", &self.core.key)
            .field("redis", &self.core.redis.shown())
            .field("entries", &self.core.entries)
            .finish()
    }
}

/// The local accessors of [`CachedOrderedDict`] and [`aio::CachedOrderedDict`] (no I/O),
/// written once. `$make` makes the examples' dict `d` on `od-local-doc`, for the keys
/// `[3, 1, 2]`, with `1 -> 10` stored in Redis.
macro_rules! local_accessors {
    ($ty:ident, $make:literal) => {
        impl<K, V> $ty<K, V>
        where
            K: Serialize + Eq + Hash + Clone,
            V: Serialize + DeserializeOwned,
        {
            /// The Redis key.
            ///
            /// ```
            /// # let redis = pottery::testing::doctest_redis();
            /// # redis::cmd("HSET").arg("od-local-doc").arg("1").arg("10").exec(&mut redis.connection()?)?;
            #[doc = concat!("# let d = ", $make, ";")]
            /// assert_eq!(d.key(), "od-local-doc");
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn key(&self) -> &str {
                &self.core.key
            }

            /// The keys Redis had no (decodable) value for, in order. Owned, so you can
            /// [`insert`](Self::insert) while going through them.
            ///
            /// ```
            /// # let redis = pottery::testing::doctest_redis();
            /// # redis::cmd("HSET").arg("od-local-doc").arg("1").arg("10").exec(&mut redis.connection()?)?;
            #[doc = concat!("# let d = ", $make, ";")]
            /// assert_eq!(d.misses(), [3, 2]); // 1 has a value in Redis
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn misses(&self) -> Vec<K> {
                self.core.misses()
            }

            /// The local value at `k` (no I/O).
            ///
            /// ```
            /// # let redis = pottery::testing::doctest_redis();
            /// # redis::cmd("HSET").arg("od-local-doc").arg("1").arg("10").exec(&mut redis.connection()?)?;
            #[doc = concat!("# let d = ", $make, ";")]
            /// assert_eq!(d.get(&1), Some(&10));
            /// assert_eq!(d.get(&3), None);
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn get<Q>(&self, k: &Q) -> Option<&V>
            where
                K: Borrow<Q>,
                Q: Hash + Eq + ?Sized,
            {
                self.core.get(k)
            }

            /// Whether `k` has a local value.
            ///
            /// ```
            /// # let redis = pottery::testing::doctest_redis();
            /// # redis::cmd("HSET").arg("od-local-doc").arg("1").arg("10").exec(&mut redis.connection()?)?;
            #[doc = concat!("# let d = ", $make, ";")]
            /// assert!(d.contains_key(&1) && !d.contains_key(&3));
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn contains_key<Q>(&self, k: &Q) -> bool
            where
                K: Borrow<Q>,
                Q: Hash + Eq + ?Sized,
            {
                self.core.get(k).is_some()
            }

            /// How many keys have a value (misses not counted).
            ///
            /// ```
            /// # let redis = pottery::testing::doctest_redis();
            /// # redis::cmd("HSET").arg("od-local-doc").arg("1").arg("10").exec(&mut redis.connection()?)?;
            #[doc = concat!("# let d = ", $make, ";")]
            /// assert_eq!(d.len(), 1);
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn len(&self) -> usize {
                self.core.iter().count()
            }

            /// Whether no key has a value.
            ///
            /// ```
            /// # let redis = pottery::testing::doctest_redis();
            /// # redis::cmd("HSET").arg("od-local-doc").arg("1").arg("10").exec(&mut redis.connection()?)?;
            #[doc = concat!("# let d = ", $make, ";")]
            /// assert!(!d.is_empty());
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn is_empty(&self) -> bool {
                self.core.iter().next().is_none()
            }

            /// The keys with values and their values, in order (local, no I/O).
            ///
            /// ```
            /// # let redis = pottery::testing::doctest_redis();
            /// # redis::cmd("HSET").arg("od-local-doc").arg("1").arg("10").exec(&mut redis.connection()?)?;
            #[doc = concat!("# let d = ", $make, ";")]
            /// assert_eq!(d.iter().collect::<Vec<_>>(), [(&1, &10)]);
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
                self.core.iter()
            }

            /// The keys with values, in order.
            ///
            /// ```
            /// # let redis = pottery::testing::doctest_redis();
            /// # redis::cmd("HSET").arg("od-local-doc").arg("1").arg("10").exec(&mut redis.connection()?)?;
            #[doc = concat!("# let d = ", $make, ";")]
            /// assert_eq!(d.keys().collect::<Vec<_>>(), [&1]);
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn keys(&self) -> impl Iterator<Item = &K> {
                self.core.iter().map(|(k, _)| k)
            }

            /// The values, in order.
            ///
            /// ```
            /// # let redis = pottery::testing::doctest_redis();
            /// # redis::cmd("HSET").arg("od-local-doc").arg("1").arg("10").exec(&mut redis.connection()?)?;
            #[doc = concat!("# let d = ", $make, ";")]
            /// assert_eq!(d.values().collect::<Vec<_>>(), [&10]);
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn values(&self) -> impl Iterator<Item = &V> {
                self.core.iter().map(|(_, v)| v)
            }
        }
    };
}

local_accessors!(
    CachedOrderedDict,
    "pottery::CachedOrderedDict::<u8, u8>::new(&redis, \"od-local-doc\", [3, 1, 2])?"
);

impl<K, V> CachedOrderedDict<K, V>
where
    K: Serialize + Eq + Hash + Clone,
    V: Serialize + DeserializeOwned,
{
    /// Loads the cached values of `dict_keys` from the hash at `key` (one round trip; it also
    /// slides the 60 s timeout).
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// let d: pottery::CachedOrderedDict<String, f64> =
    ///     pottery::CachedOrderedDict::new(&redis, "rates-doc", ["usd".to_string(), "eur".to_string()])?;
    /// assert_eq!(d.misses().len(), 2);
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn new(
        redis: &Redis,
        key: impl Into<String>,
        dict_keys: impl IntoIterator<Item = K>,
    ) -> Result<Self> {
        CachedOrderedDict::with_timeout(redis, key, dict_keys, Some(DEFAULT_TIMEOUT))
    }

    /// [`new`](Self::new) with another sliding timeout (`None` or zero: never expire).
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// let d: pottery::CachedOrderedDict<u8, u8> =
    ///     pottery::CachedOrderedDict::with_timeout(&redis, "k-doc", [1], None)?;
    /// assert_eq!(d.misses(), [1]);
    /// # Ok::<(), pottery::Error>(())
    /// ```
    pub fn with_timeout(
        redis: &Redis,
        key: impl Into<String>,
        dict_keys: impl IntoIterator<Item = K>,
        timeout: Option<Duration>,
    ) -> Result<Self> {
        let mut core = Core::new(redis, key.into(), timeout, dict_keys.into_iter().collect());
        let found = redis.run(core.load()?)?;
        core.apply_load(found);
        Ok(CachedOrderedDict { core })
    }

    /// Stores `v` at `k`, locally and in Redis (one round trip, with the expiry); returns the
    /// previous local value. A new key goes at the end of the order.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # redis::cmd("DEL").arg("i-doc").exec(&mut redis.connection()?)?;
    /// let mut d: pottery::CachedOrderedDict<u8, u8> = pottery::CachedOrderedDict::new(&redis, "i-doc", [1])?;
    /// assert_eq!(d.insert(1, 10)?, None);
    /// assert_eq!(d.insert(1, 11)?, Some(10));
    /// # redis::cmd("DEL").arg("i-doc").exec(&mut redis.connection()?)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn insert(&mut self, k: K, v: V) -> Result<Option<V>> {
        self.core.redis.run(self.core.store([(&k, &v)])?)?;
        Ok(self.core.apply_insert(k, v))
    }

    /// Stores every pair, locally and in Redis, in one round trip.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # redis::cmd("DEL").arg("e-doc").exec(&mut redis.connection()?)?;
    /// let mut d: pottery::CachedOrderedDict<u8, u8> = pottery::CachedOrderedDict::new(&redis, "e-doc", [1, 2])?;
    /// d.extend([(1, 10), (2, 20)])?;
    /// assert!(d.misses().is_empty());
    /// # redis::cmd("DEL").arg("e-doc").exec(&mut redis.connection()?)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn extend(&mut self, items: impl IntoIterator<Item = (K, V)>) -> Result<()> {
        let items: Vec<(K, V)> = items.into_iter().collect();
        self.core
            .redis
            .run(self.core.store(items.iter().map(|(k, v)| (k, v)))?)?;
        for (k, v) in items {
            self.core.apply_insert(k, v);
        }
        Ok(())
    }

    /// The value Redis holds at `k`, storing `default` there first if it holds none — atomic,
    /// one round trip, and it never overwrites a cached value (pottery's `setdefault` does when
    /// the key is not in the local dict).
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # redis::cmd("DEL").arg("sd-doc").exec(&mut redis.connection()?)?;
    /// let mut d: pottery::CachedOrderedDict<u8, u8> = pottery::CachedOrderedDict::new(&redis, "sd-doc", [])?;
    /// assert_eq!(*d.setdefault(1, 10)?, 10);
    /// assert_eq!(*d.setdefault(1, 99)?, 10);
    /// # redis::cmd("DEL").arg("sd-doc").exec(&mut redis.connection()?)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn setdefault(&mut self, k: K, default: V) -> Result<&V>
    where
        V: Send,
    {
        let stored = self.core.redis.run(self.core.setdefault(&k, &default)?)?;
        Ok(self.core.apply_setdefault(k, stored))
    }
}

/// The async twin: [`aio::CachedOrderedDict`](crate::aio::CachedOrderedDict).
pub mod aio {
    use super::*;

    /// Async [`CachedOrderedDict`](crate::CachedOrderedDict): loading and writing are
    /// `async`; reading is local, as in the blocking one.
    ///
    /// ```
    /// # let redis = pottery::testing::doctest_redis();
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # redis::cmd("DEL").arg("cod-async-doc").exec(&mut redis.connection()?)?;
    /// let mut d: pottery::aio::CachedOrderedDict<u8, u8> =
    ///     pottery::aio::CachedOrderedDict::new(&redis, "cod-async-doc", [1, 2]).await?;
    /// for k in d.misses() {
    ///     d.insert(k, k * 10).await?;
    /// }
    /// assert_eq!(d.get(&2), Some(&20));
    /// # redis::cmd("DEL").arg("cod-async-doc").exec(&mut redis.connection()?)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
    /// ```
    pub struct CachedOrderedDict<K, V> {
        core: Core<K, V>,
    }

    impl<K: std::fmt::Debug, V: std::fmt::Debug> std::fmt::Debug for CachedOrderedDict<K, V> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("aio::CachedOrderedDict")
                .field("key", &self.core.key)
                .field("redis", &self.core.redis.shown())
                .field("entries", &self.core.entries)
                .finish()
        }
    }

    local_accessors!(
        CachedOrderedDict,
        "tokio::runtime::Runtime::new()?.block_on(pottery::aio::CachedOrderedDict::<u8, u8>::new(&redis, \"od-local-doc\", [3, 1, 2]))?"
    );

    impl<K, V> CachedOrderedDict<K, V>
    where
        K: Serialize + Eq + Hash + Clone + Send + Sync,
        V: Storable + Sync,
    {
        /// See [`crate::CachedOrderedDict::new`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// let d: pottery::aio::CachedOrderedDict<u8, u8> =
        ///     pottery::aio::CachedOrderedDict::new(&redis, "cod-new-async-doc", [1]).await?;
        /// assert_eq!(d.misses(), [1]);
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub async fn new(
            redis: &Redis,
            key: impl Into<String>,
            dict_keys: impl IntoIterator<Item = K>,
        ) -> Result<Self> {
            CachedOrderedDict::with_timeout(redis, key, dict_keys, Some(DEFAULT_TIMEOUT)).await
        }

        /// See [`crate::CachedOrderedDict::with_timeout`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// let d: pottery::aio::CachedOrderedDict<u8, u8> =
        ///     pottery::aio::CachedOrderedDict::with_timeout(&redis, "cod-wt-async-doc", [1], None).await?;
        /// assert_eq!(d.len(), 0);
        /// # Ok::<(), pottery::Error>(()) }).unwrap();
        /// ```
        pub async fn with_timeout(
            redis: &Redis,
            key: impl Into<String>,
            dict_keys: impl IntoIterator<Item = K>,
            timeout: Option<Duration>,
        ) -> Result<Self> {
            let mut core = Core::new(redis, key.into(), timeout, dict_keys.into_iter().collect());
            let found = redis.run_async(core.load()?).await?;
            core.apply_load(found);
            Ok(CachedOrderedDict { core })
        }

        /// See [`crate::CachedOrderedDict::insert`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// # redis::cmd("DEL").arg("cod-ins-async-doc").exec(&mut redis.connection()?)?;
        /// # let mut d: pottery::aio::CachedOrderedDict<u8, u8> = pottery::aio::CachedOrderedDict::new(&redis, "cod-ins-async-doc", []).await?;
        /// assert_eq!(d.insert(1, 1).await?, None);
        /// # redis::cmd("DEL").arg("cod-ins-async-doc").exec(&mut redis.connection()?)?;
        /// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
        /// ```
        pub async fn insert(&mut self, k: K, v: V) -> Result<Option<V>> {
            self.core
                .redis
                .run_async(self.core.store([(&k, &v)])?)
                .await?;
            Ok(self.core.apply_insert(k, v))
        }

        /// See [`crate::CachedOrderedDict::extend`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// # redis::cmd("DEL").arg("cod-ext-async-doc").exec(&mut redis.connection()?)?;
        /// # let mut d: pottery::aio::CachedOrderedDict<u8, u8> = pottery::aio::CachedOrderedDict::new(&redis, "cod-ext-async-doc", []).await?;
        /// d.extend([(1, 1), (2, 2)]).await?;
        /// assert_eq!(d.len(), 2);
        /// # redis::cmd("DEL").arg("cod-ext-async-doc").exec(&mut redis.connection()?)?;
        /// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
        /// ```
        pub async fn extend(&mut self, items: impl IntoIterator<Item = (K, V)>) -> Result<()> {
            let items: Vec<(K, V)> = items.into_iter().collect();
            self.core
                .redis
                .run_async(self.core.store(items.iter().map(|(k, v)| (k, v)))?)
                .await?;
            for (k, v) in items {
                self.core.apply_insert(k, v);
            }
            Ok(())
        }

        /// See [`crate::CachedOrderedDict::setdefault`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// # redis::cmd("DEL").arg("cod-sd-async-doc").exec(&mut redis.connection()?)?;
        /// # let mut d: pottery::aio::CachedOrderedDict<u8, u8> = pottery::aio::CachedOrderedDict::new(&redis, "cod-sd-async-doc", []).await?;
        /// assert_eq!(*d.setdefault(1, 5).await?, 5);
        /// assert_eq!(*d.setdefault(1, 6).await?, 5);
        /// # redis::cmd("DEL").arg("cod-sd-async-doc").exec(&mut redis.connection()?)?;
        /// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
        /// ```
        pub async fn setdefault(&mut self, k: K, default: V) -> Result<&V> {
            let stored = self
                .core
                .redis
                .run_async(self.core.setdefault(&k, &default)?)
                .await?;
            Ok(self.core.apply_setdefault(k, stored))
        }
    }
}
