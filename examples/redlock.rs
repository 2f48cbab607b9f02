//! The "Redlock" guide: a lock over the masters in $REDIS_URL (one here; five in production).

use std::time::Duration;

use pottery::{Redis, Redlock};

fn main() -> Result<(), pottery::Error> {
    let masters = vec![Redis::from_env()?];
    let printer_lock = Redlock::new("printer", masters).auto_release_time(Duration::from_secs(10));
    {
        let guard = printer_lock.lock()?;
        println!("holding {}: {:?} left", printer_lock.key(), guard.locked()?);
    }
    println!(
        "after the guard, this instance holds {:?}",
        printer_lock.locked()?
    );
    let token = printer_lock.acquire_with_token()?;
    println!("fencing token {token}");
    printer_lock.release()
}
