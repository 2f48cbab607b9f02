//! What every structure's two shells share: `Clone`, `Debug`, `key`, `redis`, the conversion
//! to the other shell, and `new`/`random` for those made from a handle and a key.

/// `Clone` and `Debug` for a blocking or async shell around a `core` that has `key` and
/// `redis` (every structure has one of each).
macro_rules! shell_impls {
    ($ty:ident, $name:literal) => {
        $crate::shell::shell_impls!($ty<>, $name);
    };
    ($ty:ident < $($g:ident),* >, $name:literal) => {
        impl<$($g),*> Clone for $ty<$($g),*> {
            fn clone(&self) -> Self {
                $ty {
                    core: self.core.clone(),
                }
            }
        }

        impl<$($g),*> std::fmt::Debug for $ty<$($g),*> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct($name)
                    .field("key", &self.core.key)
                    .field("redis", &self.core.redis.shown())
                    .finish()
            }
        }
    };
}
pub(crate) use shell_impls;

/// What every structure's two shells share, written once: `key`, `redis` and the conversion
/// to the other shell (`handles`); `new` and `random` for the structures made from a handle
/// and a key alone (`attach`). `$make` is an example constructor call, `$ty` an example type.
macro_rules! shell_basics {
    (handles $blocking:ident, $aio_mod:ident::$aio:ident, [$($g:ident),*], $make:literal) => {
        impl<$($g),*> $blocking<$($g),*> {
            /// The Redis key.
            ///
            /// ```
            /// # let redis = pottery::testing::doctest_redis();
            #[doc = concat!("# let x = pottery::", $make, ";")]
            /// assert_eq!(x.key(), "k");
            /// # Ok::<(), pottery::Error>(())
            /// ```
            pub fn key(&self) -> &str {
                &self.core.key
            }

            /// The handle this structure uses.
            ///
            /// ```
            /// # let redis = pottery::testing::doctest_redis();
            #[doc = concat!("# let x = pottery::", $make, ";")]
            /// assert!(x.redis().same_handle(&redis));
            /// # Ok::<(), pottery::Error>(())
            /// ```
            pub fn redis(&self) -> &$crate::Redis {
                &self.core.redis
            }

            /// The async twin on the same key and handle (no I/O).
            ///
            /// ```
            /// # let redis = pottery::testing::doctest_redis();
            #[doc = concat!("# let x = pottery::", $make, ";")]
            /// let a = x.to_async();
            /// assert_eq!(a.key(), "k");
            /// # Ok::<(), pottery::Error>(())
            /// ```
            pub fn to_async(&self) -> $aio_mod::$aio<$($g),*> {
                $aio_mod::$aio {
                    core: self.core.clone(),
                }
            }
        }

        impl<$($g),*> $aio_mod::$aio<$($g),*> {
            /// The Redis key.
            ///
            /// ```
            /// # let redis = pottery::testing::doctest_redis();
            #[doc = concat!("# let x = pottery::aio::", $make, ";")]
            /// assert_eq!(x.key(), "k");
            /// # Ok::<(), pottery::Error>(())
            /// ```
            pub fn key(&self) -> &str {
                &self.core.key
            }

            /// The handle this structure uses.
            ///
            /// ```
            /// # let redis = pottery::testing::doctest_redis();
            #[doc = concat!("# let x = pottery::aio::", $make, ";")]
            /// assert!(x.redis().same_handle(&redis));
            /// # Ok::<(), pottery::Error>(())
            /// ```
            pub fn redis(&self) -> &$crate::Redis {
                &self.core.redis
            }

            /// The blocking twin on the same key and handle (no I/O).
            ///
            /// ```
            /// # let redis = pottery::testing::doctest_redis();
            #[doc = concat!("# let x = pottery::aio::", $make, ";")]
            /// let b = x.to_blocking();
            /// assert_eq!(b.key(), "k");
            /// # Ok::<(), pottery::Error>(())
            /// ```
            pub fn to_blocking(&self) -> $blocking<$($g),*> {
                $blocking {
                    core: self.core.clone(),
                }
            }
        }
    };
    (attach $blocking:ident, $aio_mod:ident::$aio:ident, [$($g:ident),*], [$($bound:tt)*], $ty:literal) => {
        impl<$($g),*> $blocking<$($g),*>
        where
            $($bound)*
        {
            /// Attaches to the structure at `key` (no I/O; the key need not exist).
            ///
            /// ```
            /// # let redis = pottery::testing::doctest_redis();
            #[doc = concat!("let x: pottery::", $ty, " = pottery::", stringify!($blocking), "::new(&redis, \"k\");")]
            /// assert_eq!(x.key(), "k");
            /// ```
            pub fn new(redis: &$crate::Redis, key: impl Into<String>) -> Self {
                $blocking {
                    core: Core::new(redis, key.into()),
                }
            }

            /// Attaches to a fresh key `pottery:<uuid4>` that no one uses yet (one
            /// `EXISTS`). Unlike Python pottery, dropping the structure does not delete the
            /// key: `clear` it when done.
            ///
            /// ```
            /// # let redis = pottery::testing::doctest_redis();
            #[doc = concat!("let x: pottery::", $ty, " = pottery::", stringify!($blocking), "::random(&redis)?;")]
            /// assert!(x.key().starts_with("pottery:"));
            /// # Ok::<(), pottery::Error>(())
            /// ```
            pub fn random(redis: &$crate::Redis) -> $crate::Result<Self> {
                Ok(Self::new(redis, $crate::shell::keys::random_key(redis)?))
            }
        }

        impl<$($g),*> $aio_mod::$aio<$($g),*>
        where
            $($bound)*
        {
            /// Attaches to the structure at `key` (no I/O; the key need not exist).
            ///
            /// ```
            /// # let redis = pottery::testing::doctest_redis();
            #[doc = concat!("let x: pottery::aio::", $ty, " = pottery::aio::", stringify!($blocking), "::new(&redis, \"k\");")]
            /// assert_eq!(x.key(), "k");
            /// ```
            pub fn new(redis: &$crate::Redis, key: impl Into<String>) -> Self {
                $aio_mod::$aio {
                    core: Core::new(redis, key.into()),
                }
            }

            /// Attaches to a fresh key `pottery:<uuid4>` that no one uses yet (one `EXISTS`).
            ///
            /// ```
            /// # let redis = pottery::testing::doctest_redis();
            /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
            #[doc = concat!("let x: pottery::aio::", $ty, " = pottery::aio::", stringify!($blocking), "::random(&redis).await?;")]
            /// assert!(x.key().starts_with("pottery:"));
            /// # Ok::<(), pottery::Error>(()) }).unwrap();
            /// ```
            pub async fn random(redis: &$crate::Redis) -> $crate::Result<Self> {
                Ok(Self::new(
                    redis,
                    $crate::shell::keys::random_key_async(redis).await?,
                ))
            }
        }
    };
}
pub(crate) use shell_basics;

/// `Clone` for a structure's `Core` (its key, connection and settings; `_types` is the marker
/// of its value types), whatever those types: a derive would ask them to be `Clone`.
macro_rules! clone_core {
    ($core:ident<$($g:ident),*> { $($field:ident),* }) => {
        impl<$($g),*> Clone for $core<$($g),*> {
            fn clone(&self) -> Self {
                $core {
                    $($field: Clone::clone(&self.$field),)*
                    _types: std::marker::PhantomData,
                }
            }
        }
    };
}
pub(crate) use clone_core;
