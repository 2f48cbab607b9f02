//! Every future pottery returns or generates is `Send`, and `'static` when its inputs are owned:
//! checked at compile time by handing each to `require_send` (issue 13).

#[allow(dead_code)]
fn require_send<F: std::future::Future + Send + 'static>(_: F) {}
#[test]
fn check() {
    let redis = pottery::testing::doctest_redis();
    let cache = pottery::aio::RedisCache::new(&redis, "k");
    require_send(async move { cache.get_or_compute(&1u32, || async { 5u32 }).await });
    let d: pottery::aio::RedisDict<String, i64> = pottery::aio::RedisDict::new(&redis, "d");
    require_send(async move { d.get("x").await });
}

#[pottery::redis_cache(redis = pottery::testing::doctest_redis(), key = "zz")]
async fn cached_string(s: String) -> String {
    s
}

#[pottery::synchronize(key = "zz", masters = [pottery::testing::doctest_redis()])]
async fn synced(s: String) -> Result<String, pottery::Error> {
    Ok(s)
}

#[pottery::timed]
async fn timed_fn(s: String) -> String {
    s
}

#[test]
fn check_macros() {
    require_send(cached_string(String::from("z")));
    require_send(synced(String::from("z")));
    require_send(timed_fn(String::from("z")));
}
