//! MurmurHash3, x86 32-bit variant: the hash Python's `mmh3.hash` computes and pottery's
//! Bloom filter uses (result read as a signed `i32`, as `mmh3.hash` returns it).

const C1: u32 = 0xcc9e_2d51;
const C2: u32 = 0x1b87_3593;

fn mix_block(k: u32) -> u32 {
    k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2)
}

fn finalize(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// MurmurHash3_x86_32 of `data` with `seed`, as a signed 32-bit integer.
pub(crate) fn murmur3_x86_32(data: &[u8], seed: u32) -> i32 {
    let mut h = seed;
    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        h ^= mix_block(k);
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        let mut k = 0u32;
        for (i, byte) in tail.iter().enumerate() {
            k |= u32::from(*byte) << (8 * i);
        }
        h ^= mix_block(k);
    }
    // The length is mixed in modulo 2^32, as the reference algorithm does.
    h ^= data.len() as u32;
    finalize(h) as i32
}

#[cfg(test)]
mod tests {
    use super::murmur3_x86_32;

    #[test]
    fn known_values() {
        // Published test values of MurmurHash3_x86_32 (as unsigned) and the reference's
        // raw hashes of `"rajiv"` for seeds 0..7.
        assert_eq!(murmur3_x86_32(b"", 0), 0);
        assert_eq!(murmur3_x86_32(b"", 1) as u32, 0x514e_28b7);
        assert_eq!(murmur3_x86_32(b"", 0xffff_ffff) as u32, 0x81f1_6f39);
        assert_eq!(murmur3_x86_32(b"\0\0\0\0", 0) as u32, 0x2362_f9de);
        assert_eq!(murmur3_x86_32(b"aaaa", 0x9747_b28c) as u32, 0x5a97_808a);
        assert_eq!(murmur3_x86_32(b"abc", 0x9747_b28c) as u32, 0xc84a_62dd);
        assert_eq!(
            murmur3_x86_32(b"Hello, world!", 0x9747_b28c) as u32,
            0x2488_4cba
        );
        let raw: Vec<i32> = (0..7).map(|s| murmur3_x86_32(b"\"rajiv\"", s)).collect();
        assert_eq!(
            raw,
            [
                -768575023,
                1683896911,
                -249379491,
                -1433106958,
                331278886,
                -553776956,
                2087259416
            ]
        );
    }
}
