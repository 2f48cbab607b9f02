//! The "CachedOrderedDict" guide: compute only what Redis has not cached. Runs against $REDIS_URL.

use pottery::{CachedOrderedDict, Redis};

fn main() -> Result<(), pottery::Error> {
    let redis = Redis::from_env()?;
    let mut cubes: CachedOrderedDict<u32, u64> =
        CachedOrderedDict::new(&redis, "cubes-example", 1..=5)?;
    println!("to compute: {:?}", cubes.misses());
    for n in cubes.misses() {
        cubes.insert(n, u64::from(n).pow(3))?;
    }
    let again: CachedOrderedDict<u32, u64> =
        CachedOrderedDict::new(&redis, "cubes-example", 1..=5)?;
    println!("to compute the second time: {:?}", again.misses());
    for (n, cube) in again.iter() {
        println!("{n}^3 = {cube}");
    }
    Ok(())
}
