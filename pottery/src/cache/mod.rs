//! Caches: [`RedisCache`](crate::RedisCache) (memoisation, the runtime of `#[redis_cache]`) and
//! [`CachedOrderedDict`](crate::CachedOrderedDict).

pub mod ordered_dict;
pub mod redis_cache;

use std::time::Duration;

/// pottery's default sliding timeout for both caches.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// A timeout as the milliseconds the scripts take (0: no expiry). A timeout under a
/// millisecond (zero included) is one millisecond: it must expire, not live forever.
pub(crate) fn timeout_ms(timeout: Option<Duration>) -> u64 {
    timeout.map_or(0, |t| {
        u64::try_from(t.as_millis()).unwrap_or(u64::MAX).max(1)
    })
}
