//! The near cache's hashing: a store's keyed hash of keys and reads, the words the front
//! table reads pieces as, and the table hasher for keys that already are hashes.

use std::hash::Hasher;

/// Table hasher for keys that already are hashes: used as they are.
#[derive(Default)]
pub(super) struct Mixed(u64);

impl Hasher for Mixed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed here; any other input still gets a hash.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// The folded multiply of two words (the mixing step of wyhash and foldhash).
#[inline]
pub(crate) fn fold(x: u64, y: u64) -> u64 {
    let r = u128::from(x) * u128::from(y);
    (r as u64) ^ ((r >> 64) as u64)
}

/// The first eight bytes of `b` (at least eight), little-endian.
#[inline]
pub(crate) fn r8(b: &[u8]) -> u64 {
    <[u8; 8]>::try_from(&b[..8]).map_or(0, u64::from_le_bytes)
}

/// The first four bytes of `b` (at least four), little-endian.
#[inline]
fn r4(b: &[u8]) -> u64 {
    <[u8; 4]>::try_from(&b[..4]).map_or(0, |w| u64::from(u32::from_le_bytes(w)))
}

/// The last (at most 16) bytes as two words: overlapping reads that cover every byte, which
/// with the length (hashed too) tell any two inputs apart.
#[inline]
pub(crate) fn tail(b: &[u8]) -> (u64, u64) {
    let n = b.len();
    if n >= 8 {
        (r8(b), r8(&b[n - 8..]))
    } else if n >= 4 {
        (r4(b), r4(&b[n - 4..]))
    } else if n > 0 {
        let x = (u64::from(b[0]) << 16) | (u64::from(b[n / 2]) << 8) | u64::from(b[n - 1]);
        (x, 0)
    } else {
        (0, 0)
    }
}

/// A keyed hash of `bytes`: 16 bytes per multiply, with secrets drawn at random per store
/// (so that keys and fields chosen by someone else cannot be made to collide on purpose).
pub(crate) fn hash(secret: [u64; 2], bytes: &[u8]) -> u64 {
    let mut h = secret[1];
    let mut rest = bytes;
    while rest.len() > 16 {
        h = fold(r8(rest) ^ secret[0], r8(&rest[8..]) ^ h);
        rest = &rest[16..];
    }
    let (a, b) = tail(rest);
    h = fold(a ^ secret[0], b ^ h);
    fold(
        h ^ 0x5899_65cc_7537_4cc3,
        bytes.len() as u64 ^ 0xa076_1d64_78bd_642f ^ secret[0],
    )
}

/// A random word for a store's secrets (never 0).
pub(super) fn random_word() -> u64 {
    let mut b = [0u8; 8];
    if getrandom::getrandom(&mut b).is_err() {
        // No OS randomness: the time and an address still differ between processes.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        return fold(t as u64 ^ (&b as *const _ as u64), 0x8ebc_6af0_9c88_c6e3);
    }
    u64::from_le_bytes(b) | 1
}
