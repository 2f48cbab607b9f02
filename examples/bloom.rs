//! The "Bloom filters" guide: have I seen this? Runs against $REDIS_URL.

use pottery::{BloomFilter, Redis};

fn main() -> Result<(), pottery::Error> {
    let redis = Redis::from_env()?;
    let dilberts: BloomFilter<&str> = BloomFilter::new(&redis, "dilberts-example", 100, 0.01)?;
    dilberts.clear()?;
    dilberts.update(["rajiv", "raj", "dan"])?;
    for name in ["rajiv", "luis"] {
        println!("{name} seen: {}", dilberts.contains(name)?);
    }
    println!(
        "about {} names in {} bits with {} hashes",
        dilberts.len()?,
        dilberts.size(),
        dilberts.num_hashes()
    );
    dilberts.clear()
}
