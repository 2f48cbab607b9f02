//! The "redis_cache" guide: memoise a function in Redis. Runs against $REDIS_URL.

use pottery::{Redis, RedisCache};

fn expensive_function(n: u64) -> u64 {
    (1..=n).product()
}

fn main() -> Result<(), pottery::Error> {
    let redis = Redis::from_env()?;
    let cache = RedisCache::new(&redis, "expensive-function-cache-example");
    cache.clear()?;
    for n in [10, 10, 12] {
        let v = cache.get_or_compute(&(n,), || expensive_function(n))?;
        println!("{n}! = {v}");
    }
    println!("{:?}", cache.info()?);
    // After an update of what 10! was computed from: drop that entry alone.
    println!("10! removed: {}", cache.remove(&(10,))?);
    cache.clear()
}
