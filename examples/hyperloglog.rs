//! The "HyperLogLogs" guide: count distinct values in a few KiB. Runs against $REDIS_URL.

use pottery::{HyperLogLog, Redis};

fn main() -> Result<(), pottery::Error> {
    let redis = Redis::from_env()?;
    let visitors: HyperLogLog<u64> = HyperLogLog::new(&redis, "visitors-example");
    visitors.clear()?;
    visitors.update((0..100_000).map(|i| i % 25_000))?;
    println!(
        "about {} distinct visitors (25,000 really)",
        visitors.len()?
    );
    println!("visitor 7 seen: {}", visitors.contains(&7)?);
    visitors.clear()
}
