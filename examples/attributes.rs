//! README "redis_cache", "synchronize" and "#[timed]": the attributes on plain and async
//! functions. Runs against $REDIS_URL (the attributes' default handle).

use std::time::Duration;

use pottery::{redis_cache, synchronize, timed};

/// Memoised in the hash `fib-cache` for 60 s after its last use.
#[redis_cache(key = "fib-cache", timeout = 60)]
fn slow_square(n: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(50));
    n * n
}

#[redis_cache(key = "title-cache")]
async fn title(id: u32) -> String {
    format!("title #{id}")
}

/// One process at a time, across every machine using this Redis.
#[synchronize(key = "ledger", auto_release_time = 2000)]
fn append(entry: &str) -> Result<usize, pottery::Error> {
    Ok(entry.len())
}

#[synchronize(key = "ledger", timeout = 1)]
async fn append_async(entry: String) -> Result<usize, pottery::Error> {
    Ok(entry.len())
}

#[timed(callback = report)]
fn render() -> usize {
    (0..10u64).map(slow_square).count()
}

fn report(function: &'static str, took: Duration) {
    println!("{function} took {took:?}");
}

#[tokio::main]
async fn main() -> Result<(), pottery::Error> {
    slow_square::cache_clear()?;
    println!("slow_square(12) = {}", slow_square(12)); // computed
    println!("slow_square(12) = {}", slow_square(12)); // from Redis
    let info = slow_square::cache_info()?;
    println!("hits {} misses {}", info.hits, info.misses);
    println!("{}", title(7).await);
    title::cache_clear()?;

    println!("appended {} bytes", append("hello")?);
    println!("appended {} bytes", append_async("world".into()).await?);

    slow_square::cache_clear()?;
    render();
    slow_square::cache_clear()?;
    Ok(())
}
