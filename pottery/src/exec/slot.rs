//! Redis Cluster slots: which keys one command may name together.

/// The `{hash tag}` of a key, if it has a non-empty one: what Redis Cluster hashes instead of
/// the whole key.
pub(crate) fn hash_tag(key: &[u8]) -> Option<&[u8]> {
    let open = key.iter().position(|b| *b == b'{')?;
    let len = key[open + 1..].iter().position(|b| *b == b'}')?;
    (len > 0).then(|| &key[open + 1..open + 1 + len])
}

/// The Redis Cluster slot of a key (CRC16/XMODEM of the key or its `{hash tag}`, mod 16384).
pub(crate) fn slot(key: &[u8]) -> u16 {
    let k = hash_tag(key).unwrap_or(key);
    let mut crc: u16 = 0;
    for byte in k {
        crc ^= u16::from(*byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16384
}

#[cfg(test)]
mod tests {
    use super::{hash_tag, slot};

    #[test]
    fn slots_and_hash_tags() {
        assert_eq!(hash_tag(b"{user1000}.following"), Some(&b"user1000"[..]));
        assert_eq!(hash_tag(b"foo{}{bar}"), None);
        assert_eq!(slot(b"123456789"), 12739);
    }
}
