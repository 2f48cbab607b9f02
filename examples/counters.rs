//! The "Counters" guide: RedisCounter, Python's Counter on a hash. Runs against $REDIS_URL.

use pottery::{Redis, RedisCounter};

fn main() -> Result<(), pottery::Error> {
    let redis = Redis::from_env()?;
    let c: RedisCounter<char> = RedisCounter::random(&redis)?;
    c.update("gallahad".chars())?;
    println!("counts = {:?}", c.to_hash_map()?);
    println!("most_common(2) = {:?}", c.most_common(Some(2))?);
    c.subtract("aa".chars())?;
    println!("after subtract('aa'): a = {}", c.get(&'a')?);
    println!("incr('z', 5) = {}", c.incr(&'z', 5)?);
    println!("total = {}", c.total()?);
    c.clear()
}
