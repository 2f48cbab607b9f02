//! A tour of pottery-rs against `$REDIS_URL` (default `redis://127.0.0.1:6379/0`).
//!
//! `make demo` starts a throwaway redis-server and runs this against it.

use pottery::{Redis, RedisDict};
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

    tel.clear()?;
    users.clear()?;
    println!("\ncleaned up; bye");
    Ok(())
}
