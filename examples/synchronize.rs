//! The "synchronize" guide: run a closure under a fresh Redlock. Runs against $REDIS_URL.

use pottery::Redis;

fn main() -> Result<(), pottery::Error> {
    let masters = vec![Redis::from_env()?];
    let receipt = pottery::synchronize("printer", masters, |lock| lock, || "printed")?;
    println!("{receipt} under the lock");
    Ok(())
}
