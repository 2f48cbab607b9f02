//! The "Sets" guide: RedisSet with server-side set algebra. Runs against $REDIS_URL.

use pottery::{Redis, RedisSet};

fn main() -> Result<(), pottery::Error> {
    let redis = Redis::from_env()?;
    let tag = uuid_like();
    let tasty: RedisSet<String> = RedisSet::new(&redis, format!("{{{tag}}}:tasty"));
    let red: RedisSet<String> = RedisSet::new(&redis, format!("{{{tag}}}:red"));
    tasty.extend(["apple", "pear", "plum"].map(String::from))?;
    red.extend(["apple", "cherry"].map(String::from))?;
    println!("tasty ∩ red = {:?}", tasty.intersection(&red)?);
    println!("tasty ∪ red = {:?}", tasty.union(&red)?);
    println!("tasty − red = {:?}", tasty.difference(&red)?);
    println!(
        "contains_many(plum, kiwi) = {:?}",
        tasty.contains_many(["plum", "kiwi"])?
    );
    tasty.clear()?;
    red.clear()
}

fn uuid_like() -> String {
    format!("example-{}", std::process::id())
}
