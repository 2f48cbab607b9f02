//! The settings of a lock, written once for the blocking and the async type.

/// Settings shared by the blocking and the async lock, set with chainable methods named as in
/// pottery.
macro_rules! builder_methods {
    () => {
        /// How long a lease lasts before it frees itself (default 10 s, as pottery). Between
        /// 10 ms and 2³² ms; anything else makes every call fail with [`Error::Config`].
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// let lock = pottery::Redlock::new("doc-ttl", [redis])
        ///     .auto_release_time(std::time::Duration::from_secs(2));
        /// # let _ = lock;
        /// ```
        pub fn auto_release_time(self, ttl: Duration) -> Self {
            self.with(|c| c.ttl = ttl)
        }

        /// How many times a holder may extend one lease by hand (default 3, as pottery); a
        /// watchdog is not limited.
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// let lock = pottery::Redlock::new("doc-n-ext", [redis]).num_extensions(10);
        /// # let _ = lock;
        /// ```
        pub fn num_extensions(self, n: u32) -> Self {
            self.with(|c| c.num_extensions = Some(n))
        }

        /// No limit on manual extensions ([`extend`](Self::extend)). A watchdog
        /// ([`lock_with_watchdog`](Self::lock_with_watchdog)) is never limited: it holds until
        /// its guard is released.
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// let lock = pottery::Redlock::new("doc-unlimited", [redis]).unlimited_extensions();
        /// # let _ = lock;
        /// ```
        pub fn unlimited_extensions(self) -> Self {
            self.with(|c| c.num_extensions = None)
        }

        /// Whether `lock()` waits for the lock (default true) or tries once.
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// let lock = pottery::Redlock::new("doc-nb", [redis]).context_manager_blocking(false);
        /// # let _ = lock;
        /// ```
        pub fn context_manager_blocking(self, blocking: bool) -> Self {
            self.with(|c| c.blocking = blocking)
        }

        /// How long a blocking `lock()` waits (default: forever).
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// let lock = pottery::Redlock::new("doc-cm-timeout", [redis])
        ///     .context_manager_timeout(Some(std::time::Duration::from_secs(1)));
        /// # let _ = lock;
        /// ```
        pub fn context_manager_timeout(self, timeout: Option<Duration>) -> Self {
            self.with(|c| c.timeout = timeout)
        }

        /// Fail with [`Error::QuorumIsImpossible`] as soon as more than half the masters fail,
        /// instead of answering "not acquired" (default false, as pottery).
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// let lock = pottery::Redlock::new("doc-raise", [redis]).raise_on_redis_errors(true);
        /// # let _ = lock;
        /// ```
        pub fn raise_on_redis_errors(self, raise: bool) -> Self {
            self.with(|c| c.raise_on_redis_errors = raise)
        }

        /// How long one master may take to answer before it counts as failed (default
        /// 500 ms, well under the lease).
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// let lock = pottery::Redlock::new("doc-mt", [redis])
        ///     .master_timeout(std::time::Duration::from_millis(200));
        /// # let _ = lock;
        /// ```
        pub fn master_timeout(self, timeout: Duration) -> Self {
            self.with(|c| c.master_timeout = timeout)
        }

        /// How long a waiting call goes on while too many masters are unreachable for a
        /// majority (default 5 s); then it fails with [`Error::QuorumIsImpossible`]. Errors
        /// that waiting cannot mend (authentication, `NOPERM`, a database out of range, a
        /// corrupt lock key) fail at once.
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// let lock = pottery::Redlock::new("doc-unreachable", [redis])
        ///     .unreachable_timeout(std::time::Duration::from_secs(1));
        /// # let _ = lock;
        /// ```
        pub fn unreachable_timeout(self, timeout: Duration) -> Self {
            self.with(|c| c.unreachable_timeout = timeout)
        }

        fn with(mut self, f: impl FnOnce(&mut Core)) -> Self {
            f(Arc::make_mut(&mut self.core));
            self
        }

        /// The Redis key: `redlock:<key>`.
        ///
        /// ```
        /// # let redis = pottery::testing::doctest_redis();
        /// assert_eq!(pottery::Redlock::new("printer", [redis]).key(), "redlock:printer");
        /// ```
        pub fn key(&self) -> &str {
            &self.core.key
        }

        /// The imperative lease, once the settings are known to be usable.
        fn slot(&self) -> Result<Option<Arc<Lease>>> {
            self.core.check()?;
            Ok(lock(&self.held).clone())
        }

        fn hold(&self, lease: Taken) -> bool {
            match lease {
                Ok(lease) => {
                    *lock(&self.held) = Some(Arc::new(lease));
                    true
                }
                Err(_) => false,
            }
        }

        fn take_slot(&self) -> Result<Option<Arc<Lease>>> {
            self.core.check()?;
            Ok(lock(&self.held).take())
        }

        fn extend_unlocked(&self) -> Error {
            Error::ExtendUnlockedLock {
                key: self.core.key.clone(),
                masters: names(&self.core.masters),
            }
        }

        fn release_unlocked(&self) -> Error {
            Error::ReleaseUnlockedLock {
                key: self.core.key.clone(),
                masters: names(&self.core.masters),
            }
        }
    };
}

/// What the blocking and the async lock share besides their settings: `Clone` (a new
/// instance: same description, no imperative lease of its own), `Debug`, `new`, and the
/// conversion to the other shell (which shares the imperative lease).
macro_rules! lock_shell {
    ($path:literal, $to:ident, $other:path, $other_path:literal) => {
        /// A new instance: same key, masters and settings, no lease of its own.
        impl Clone for Redlock {
            fn clone(&self) -> Self {
                Redlock {
                    core: Arc::clone(&self.core),
                    held: Slot::default(),
                }
            }
        }

        impl fmt::Debug for Redlock {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct($path)
                    .field("key", &self.core.key)
                    .field("masters", &names(&self.core.masters))
                    .finish()
            }
        }

        impl Redlock {
            /// A lock on `redlock:<key>` over these masters (no I/O).
            ///
            /// ```
            /// # let redis = pottery::testing::doctest_redis();
            #[doc = concat!("let lock = pottery::", $path, "::new(\"printer\", [redis]);")]
            /// assert_eq!(lock.key(), "redlock:printer");
            /// ```
            pub fn new(key: &str, masters: impl IntoIterator<Item = Redis>) -> Self {
                Redlock {
                    core: Arc::new(new_core(key, masters)),
                    held: Slot::default(),
                }
            }

            #[doc = concat!("The [`", $other_path, "`](crate::", $other_path, ") twin, sharing this instance's imperative lease.")]
            ///
            /// ```
            /// # let redis = pottery::testing::doctest_redis();
            #[doc = concat!("let lock = pottery::", $path, "::new(\"printer\", [redis]);")]
            #[doc = concat!("assert_eq!(lock.", stringify!($to), "().key(), lock.key());")]
            /// ```
            pub fn $to(&self) -> $other {
                $other {
                    core: Arc::clone(&self.core),
                    held: Arc::clone(&self.held),
                }
            }
        }
    };
}
