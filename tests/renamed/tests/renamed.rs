//! The macros under a renamed dependency: `my_pottery = { package = "pottery", … }`, with
//! `crate = my_pottery` (as serde's `#[serde(crate = "…")]`). Without it the generated code
//! would name `::pottery`, which this crate does not have.

use std::sync::OnceLock;

use my_pottery::testing::RedisServer;
use my_pottery::{Redis, RedisBacked, redis_cache, synchronize, timed};

fn server() -> &'static RedisServer {
    static SERVER: OnceLock<RedisServer> = OnceLock::new();
    SERVER.get_or_init(|| RedisServer::start().expect("redis-server starts"))
}

fn redis() -> Redis {
    server().redis()
}

#[redis_cache(crate = my_pottery, key = "renamed:squares", redis = redis())]
fn square(n: u64) -> u64 {
    n * n
}

#[synchronize(crate = my_pottery, key = "renamed:lock", masters = [redis()])]
fn locked(n: u64) -> my_pottery::Result<u64> {
    Ok(n + 1)
}

#[synchronize(crate = "my_pottery", key = "renamed:async-lock", masters = [redis()])]
async fn locked_async(n: u64) -> my_pottery::Result<u64> {
    Ok(n + 2)
}

#[timed(crate = my_pottery)]
fn timed_sum(a: u64, b: u64) -> u64 {
    a + b
}

#[derive(RedisBacked, Debug, PartialEq)]
#[redis(crate = my_pottery, key = "renamed:point:{name}")]
struct Point {
    name: String,
    x: i64,
}

#[test]
fn macros_work_under_a_renamed_dependency() {
    square::cache_clear().unwrap();
    assert_eq!(square(7), 49);
    assert_eq!(square(7), 49);
    assert_eq!(square::cache_info().unwrap().hits, 1);
    assert!(square_invalidate(7).unwrap());
    assert_eq!(locked(1).unwrap(), 2);
    let rt = tokio::runtime::Runtime::new().unwrap();
    assert_eq!(rt.block_on(locked_async(1)).unwrap(), 3);
    assert_eq!(timed_sum(2, 3), 5);
    let p = Point {
        name: "a".into(),
        x: 3,
    };
    p.save(&redis(), "renamed:point:a").unwrap();
    assert_eq!(Point::load(&redis(), "renamed:point:a").unwrap(), Some(p));
}
