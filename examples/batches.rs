//! The "Batches and transactions" guide: a request handler's writes as one batch, and a transfer
//! as one transaction. Runs against $REDIS_URL.

use pottery::{Batch, Redis, RedisCounter, RedisDict, RedisList, RedisSet};

fn main() -> Result<(), pottery::Error> {
    let redis = Redis::from_env()?;
    let profiles: RedisDict<String, String> = RedisDict::random(&redis)?;
    let online: RedisSet<String> = RedisSet::random(&redis)?;
    let visits: RedisCounter<String> = RedisCounter::random(&redis)?;
    let feed: RedisList<String> = RedisList::random(&redis)?;

    // One round trip for four writes, each with its own result.
    let batch = Batch::new(&redis);
    let old_name = batch
        .on(&profiles)
        .insert("ada".into(), "Ada Lovelace".into());
    let first_login = batch.on(&online).insert("ada".into());
    let n = batch.on(&visits).incr("ada", 1);
    let feed_len = batch.on(&feed).push("ada logged in".into());
    batch.execute()?;
    println!(
        "old name = {:?}, first login = {}, visits = {}, feed length = {}",
        old_name.get()?,
        first_login.get()?,
        n.get()?,
        feed_len.get()?
    );

    // All or nothing: the two balances and the ledger change together.
    let balances: RedisCounter<String> = RedisCounter::new(&redis, "{bank}:example-balances");
    let ledger: RedisList<String> = RedisList::new(&redis, "{bank}:example-ledger");
    balances.set("ada".into(), 100)?;
    let tx = Batch::transaction(&redis);
    let left = tx.on(&balances).incr("ada", -30);
    let got = tx.on(&balances).incr("bob", 30);
    tx.on(&ledger).push("ada -> bob: 30".into());
    tx.execute()?;
    println!("ada has {}, bob has {}", left.get()?, got.get()?);

    for clear in [
        profiles.clear(),
        online.clear(),
        visits.clear(),
        feed.clear(),
    ] {
        clear?;
    }
    balances.clear()?;
    ledger.clear()
}
