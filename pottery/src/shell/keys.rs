//! Keys a structure makes up (random keys, scratch keys), its atomic create-if-absent, and
//! whether one command can reach several keys.

use crate::client::Redis;
use crate::error::{Error, Result};
use crate::exec::Op;
use crate::exec::reply::int;
use crate::exec::slot::{hash_tag, slot};

/// Prefix of the keys pottery makes up (`pottery:<uuid4>`), as in Python pottery.
pub const RANDOM_KEY_PREFIX: &str = "pottery:";

/// How many random keys to try before giving up, as in Python pottery.
const RANDOM_KEY_TRIES: u32 = 3;

/// Plans one try at a free random key: `EXISTS pottery:<uuid4>`.
pub(crate) fn random_key_op(candidate: &str) -> Op<'_, bool> {
    let mut cmd = redis::cmd("EXISTS");
    cmd.arg(candidate);
    Op::cmd(candidate, "key", cmd, |key, v| Ok(int(key, v)? == 0))
}

pub(crate) fn random_candidate() -> String {
    format!("{RANDOM_KEY_PREFIX}{}", uuid4())
}

/// A random (version 4) UUID, `xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx` in lowercase hex, as
/// Python's `str(uuid.uuid4())`: 122 bits from the operating system's CSPRNG (Redlock and
/// semaphore tokens must be unpredictable). The OS generator failing is not something a server,
/// a user or another client can cause; like `uuid::Uuid::new_v4`, this panics then.
pub(crate) fn uuid4() -> String {
    let mut b = [0u8; 16];
    if let Err(e) = getrandom::getrandom(&mut b) {
        panic!("pottery: the operating system's random number generator failed: {e}");
    }
    b[6] = (b[6] & 0x0f) | 0x40; // version 4
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 9562 variant
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(HEX[usize::from(byte >> 4)] as char);
        out.push(HEX[usize::from(byte & 0x0f)] as char);
    }
    out
}

/// A key in the same cluster slot as `key`, unique to this call (`pottery:scratch:{tag}:<uuid4>`),
/// for scripts that need a scratch key beside the one they work on.
pub(crate) fn scratch_key(key: &str) -> String {
    let id = uuid4();
    let tag = match hash_tag(key.as_bytes()) {
        Some(tag) => String::from_utf8_lossy(tag).into_owned(),
        // No usable tag, and no braces to get in the way: the whole key is the tag.
        None if !key.contains(['{', '}']) => key.to_owned(),
        // Braces but no usable tag (rare): find a brace-free tag that hashes to the same slot.
        None => {
            let want = slot(key.as_bytes());
            (0u32..)
                .map(|n| format!("s{n}"))
                .find(|t| slot(t.as_bytes()) == want)
                .unwrap_or_default()
        }
    };
    format!("{RANDOM_KEY_PREFIX}scratch:{{{tag}}}:{id}")
}

/// A key no one uses yet: `pottery:<uuid4>`, checked with EXISTS (three tries, as pottery).
pub(crate) fn random_key(redis: &Redis) -> Result<String> {
    let mut last = String::new();
    for _ in 0..RANDOM_KEY_TRIES {
        last = random_candidate();
        if redis.run(random_key_op(&last))? {
            return Ok(last);
        }
    }
    Err(Error::RandomKey {
        key: last,
        tries: RANDOM_KEY_TRIES,
    })
}

/// Async [`random_key`].
pub(crate) async fn random_key_async(redis: &Redis) -> Result<String> {
    let mut last = String::new();
    for _ in 0..RANDOM_KEY_TRIES {
        last = random_candidate();
        if redis.run_async(random_key_op(&last)).await? {
            return Ok(last);
        }
    }
    Err(Error::RandomKey {
        key: last,
        tries: RANDOM_KEY_TRIES,
    })
}

/// Plans the atomic create-if-absent of a container: `command` (HSET, SADD, RPUSH) with `args`
/// runs only if the key does not exist; otherwise [`Error::KeyExists`].
pub(crate) fn create_op<'k>(
    key: &'k str,
    expected: &'static str,
    command: &str,
    args: Vec<Vec<u8>>,
) -> Op<'k, ()> {
    let mut argv = Vec::with_capacity(args.len() + 1);
    argv.push(command.as_bytes().to_vec());
    argv.extend(args);
    Op::eval(
        key,
        expected,
        &CREATE,
        vec![key.as_bytes().to_vec()],
        argv,
        |key, v| match int(key, v)? {
            1 => Ok(()),
            _ => Err(Error::KeyExists {
                key: key.to_owned(),
            }),
        },
    )
}

crate::exec::plan::script!(CREATE, "create.lua", Once);

/// Whether one command can name all these keys: same server (and database), and on a cluster
/// the same slot.
pub(crate) fn same_place(keys: &[(&Redis, &str)]) -> bool {
    let Some((first, first_key)) = keys.first() else {
        return true;
    };
    keys.iter().all(|(r, k)| {
        (r.same_handle(first) || r.shown() == first.shown())
            && (!first.is_cluster() || slot(k.as_bytes()) == slot(first_key.as_bytes()))
    })
}

#[cfg(test)]
mod tests {
    use super::{scratch_key, uuid4};
    use crate::exec::slot::slot;

    #[test]
    fn uuid4_is_a_version_4_uuid_and_unique() {
        let a = uuid4();
        let bytes = a.as_bytes();
        assert_eq!(a.len(), 36, "{a}");
        for (i, c) in a.char_indices() {
            if matches!(i, 8 | 13 | 18 | 23) {
                assert_eq!(c, '-', "{a}");
            } else {
                assert!(c.is_ascii_digit() || ('a'..='f').contains(&c), "{a}");
            }
        }
        assert_eq!(bytes[14], b'4', "version: {a}");
        assert!(
            matches!(bytes[19], b'8' | b'9' | b'a' | b'b'),
            "variant: {a}"
        );
        let many: std::collections::HashSet<String> = (0..1000).map(|_| uuid4()).collect();
        assert_eq!(many.len(), 1000);
    }

    #[test]
    fn scratch_keys_share_the_slot() {
        for key in [
            "plain", "{tag}x", "a{b}c{d}", "a}b", "{}x", "x{", "{{}x}", "é{ü}",
        ] {
            let scratch = scratch_key(key);
            assert_eq!(
                slot(scratch.as_bytes()),
                slot(key.as_bytes()),
                "{key} -> {scratch}"
            );
            assert!(scratch.starts_with("pottery:scratch:{"));
            assert_ne!(scratch, scratch_key(key), "unique per call");
        }
    }
}
