//! A tour of pottery-rs against `$REDIS_URL` (default `redis://127.0.0.1:6379/0`).
//!
//! `make demo` starts a throwaway redis-server and runs this against it.

use pottery::{Redis, RedisCounter, RedisDeque, RedisDict, RedisList, RedisSet};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug)]
struct User {
    name: String,
    karma: i64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let redis = Redis::from_env()?;
    println!("connected to {redis:?}");
    redis.ping()?;

    // A dict on a fresh pottery:<uuid4> key, removed at the end.
    let tel: RedisDict<String, i64> = RedisDict::random(&redis)?;
    println!("\n== RedisDict at {}", tel.key());
    tel.extend([("jack".to_string(), 4098), ("sape".to_string(), 4139)])?;
    tel.insert("guido".into(), 4127)?;
    println!("tel = {:?}", tel.to_hash_map()?);
    println!("tel[\"jack\"] = {:?}", tel.get("jack")?);
    println!(
        "insert jack=4099 returned the old value {:?}",
        tel.insert("jack".into(), 4099)?
    );
    println!(
        "remove sape -> {:?}; len = {}",
        tel.remove("sape")?,
        tel.len()?
    );
    for entry in tel.iter() {
        let (name, number) = entry?;
        println!("  {name}: {number}");
    }

    let users: RedisDict<u64, User> = RedisDict::random(&redis)?;
    users.insert(
        42,
        User {
            name: "Zoë".into(),
            karma: 7,
        },
    )?;
    let mut conn = redis.connection()?;
    let raw: Vec<u8> = redis::cmd("HGET")
        .arg(users.key())
        .arg("42")
        .query(&mut conn)?;
    println!(
        "\nstruct values are stored as Python pottery stores dicts: {}",
        String::from_utf8_lossy(&raw)
    );

    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let scores = tel.to_async();
        scores.insert("ada".into(), 1815).await?;
        println!(
            "\n== the async twin sees the same hash: len = {}",
            scores.len().await?
        );
        Ok::<_, pottery::Error>(())
    })?;

    println!("\n== RedisSet, RedisList, RedisCounter, RedisDeque");
    let set: RedisSet<u32> = RedisSet::random(&redis)?;
    set.extend([1, 2, 3])?;
    println!("set ∪ [3, 4] = {:?}", set.union([3, 4])?);
    let list: RedisList<i64> = RedisList::random(&redis)?;
    list.extend([9, 16, 25])?;
    list.insert(-1, 4)?;
    println!("list.insert(-1, 4) -> {:?}", list.to_vec()?);
    let counter: RedisCounter<char> = RedisCounter::random(&redis)?;
    counter.update("abracadabra".chars())?;
    println!("most common letters: {:?}", counter.most_common(Some(2))?);
    let deque: RedisDeque<u32> =
        RedisDeque::with_maxlen(&redis, list.key().to_owned() + ":deque", 3)?;
    deque.extend(1..=5)?;
    println!(
        "deque(maxlen=3) after extend(1..=5): {:?}",
        deque.to_vec_deque()?
    );

    tel.clear()?;
    users.clear()?;
    set.clear()?;
    list.clear()?;
    counter.clear()?;
    deque.clear()?;
    println!("\ncleaned up; bye");
    Ok(())
}
