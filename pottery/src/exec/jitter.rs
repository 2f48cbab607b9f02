//! Random pauses, for spreading callers out (retries, polls, backoff): never for anything
//! that must be unpredictable (lock tokens and random keys come from the OS through
//! `getrandom`, in `shell::keys`).
//!
//! Each draw hashes a process-wide counter with std's randomly keyed SipHash
//! (`RandomState`, seeded from the OS once per thread): uniform enough for jitter, and no
//! dependency of its own.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

/// 64 random bits.
fn bits() -> u64 {
    static DRAWS: AtomicU64 = AtomicU64::new(0);
    std::hash::RandomState::new().hash_one(DRAWS.fetch_add(1, Ordering::Relaxed))
}

/// A number drawn from `lo..=hi` (`lo` when the range is empty: a bug of ours).
pub(crate) fn between(lo: u64, hi: u64) -> u64 {
    let Some(span) = hi.checked_sub(lo) else {
        return lo;
    };
    match span.checked_add(1) {
        // Multiply-shift: the high half of a 128-bit product is below `span + 1`, so the sum
        // is at most `hi`.
        Some(n) => lo + ((u128::from(bits()) * u128::from(n)) >> 64) as u64,
        None => bits(),
    }
}

/// A number drawn from [0, 1).
pub(crate) fn unit() -> f64 {
    // 53 bits: every value is exact in an f64.
    (bits() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_stay_in_their_ranges_and_cover_them() {
        let mut seen = [false; 4];
        for _ in 0..1_000 {
            let n = between(3, 6);
            assert!((3..=6).contains(&n), "{n}");
            seen[(n - 3) as usize] = true;
            assert!(between(0, 499) < 500);
            assert!((50..200).contains(&between(50, 199)));
            let u = unit();
            assert!((0.0..1.0).contains(&u), "{u}");
        }
        assert_eq!(seen, [true; 4], "every value of 3..=6 drawn in 1,000 tries");
        assert_eq!(between(7, 7), 7);
        assert_eq!(between(8, 7), 8, "an empty range gives its start");
        let _any = between(0, u64::MAX);
    }
}
