//! The "Dicts" guide: a RedisDict, as Python pottery's README shows it. Runs against $REDIS_URL.

use pottery::{Redis, RedisDict};

fn main() -> Result<(), pottery::Error> {
    let redis = Redis::from_env()?;
    let tel: RedisDict<String, i64> = RedisDict::random(&redis)?;
    tel.extend([("jack".to_string(), 4098), ("sape".to_string(), 4139)])?;
    tel.insert("guido".into(), 4127)?;
    println!("tel = {:?}", tel.to_hash_map()?);
    println!("tel[jack] = {:?}", tel.get("jack")?);
    tel.remove("sape")?;
    tel.insert("irv".into(), 4127)?;
    let mut names: Vec<String> = tel.keys().collect::<Result<_, _>>()?;
    names.sort();
    println!(
        "sorted keys = {names:?}; 'guido' in tel = {}",
        tel.contains_key("guido")?
    );
    tel.clear()
}
