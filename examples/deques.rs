//! The "Deques" guide: a bounded RedisDeque. Runs against $REDIS_URL.

use pottery::{Redis, RedisDeque};

fn main() -> Result<(), pottery::Error> {
    let redis = Redis::from_env()?;
    let key = RedisDeque::<char>::random(&redis)?.key().to_owned();
    let d: RedisDeque<char> = RedisDeque::with_maxlen(&redis, key, 4)?;
    d.extend("ghi".chars())?;
    d.push_back('j')?;
    d.push_front('f')?;
    println!("maxlen 4 after pushes: {:?}", d.to_vec_deque()?);
    d.extend_front("ab".chars())?;
    println!("after extend_front(\"ab\"): {:?}", d.to_vec_deque()?);
    d.rotate(1)?;
    println!("after rotate(1): {:?}", d.to_vec_deque()?);
    d.clear()
}
