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

/// When a near-cached cache's expiry was last refreshed (per handle and cache key).
#[derive(Default)]
struct ExpiryRefresh(std::sync::Mutex<Option<std::time::Instant>>);

/// On a near-cached handle, where a cache's lookups are plain reads served from memory: the
/// sliding expiry's `PEXPIRE`, sent in the background at most once per tenth of the timeout
/// (per handle and cache key), so that local hits keep the hash alive.
pub(crate) fn refresh_expiry_near(redis: &crate::Redis, key: &str, timeout_ms: u64) {
    if timeout_ms == 0 {
        return;
    }
    let last = redis.shared_state::<ExpiryRefresh>(key);
    let every = Duration::from_millis(timeout_ms / 10);
    {
        let mut at = crate::sync::lock(&last.0);
        if at.is_some_and(|t| t.elapsed() < every) {
            return;
        }
        *at = Some(std::time::Instant::now());
    }
    let (redis, key) = (redis.clone(), key.to_owned());
    crate::exec::rt::spawn(async move {
        let mut cmd = redis::cmd("PEXPIRE");
        cmd.arg(&key).arg(timeout_ms);
        let op = crate::exec::plan::Op::cmd(&key, "hash", cmd, |_, _| Ok(())).without_retries();
        if let Err(e) = redis.run_async(op).await {
            tracing::warn!(
                key = crate::observe::event_key(Some(&redis), &key),
                error = %crate::observe::event_error(Some(&redis), &e),
                "could not refresh a cache's expiry"
            );
        }
    });
}

/// A key for `key`'s companion data (`suffix`, such as `deadlines`) in `key`'s cluster slot,
/// so that one script can use both: `<key>:<suffix>` when `key` has a `{hash tag}`, else
/// `{<key>}:<suffix>` (the whole key as the tag), else — a key with a `}` and no tag, which
/// cannot be a tag itself — `{<n>}:<key>:<suffix>` with the smallest number `n` in `key`'s slot.
pub(crate) fn companion_key(key: &str, suffix: &str) -> String {
    use crate::exec::slot::{hash_tag, slot};
    if hash_tag(key.as_bytes()).is_some() {
        return format!("{key}:{suffix}");
    }
    if !key.is_empty() && !key.contains('}') {
        return format!("{{{key}}}:{suffix}");
    }
    let wanted = slot(key.as_bytes());
    // 16384 slots: a number in each is found within a few tens of thousands of tries.
    let tag = (0u64..)
        .map(|n| n.to_string())
        .find(|n| slot(n.as_bytes()) == wanted)
        .unwrap_or_default();
    format!("{{{tag}}}:{key}:{suffix}")
}

#[cfg(test)]
mod tests {
    use super::companion_key;
    use crate::exec::slot::slot;

    #[test]
    fn companion_keys_share_the_slot() {
        for key in ["prices", "{user:1}:cache", "a}b", "a{}b", "", "{}", "x{"] {
            let companion = companion_key(key, "deadlines");
            assert_eq!(
                slot(companion.as_bytes()),
                slot(key.as_bytes()),
                "{key} -> {companion}"
            );
        }
        assert_eq!(companion_key("prices", "deadlines"), "{prices}:deadlines");
        assert_eq!(companion_key("{u}:c", "deadlines"), "{u}:c:deadlines");
    }
}
