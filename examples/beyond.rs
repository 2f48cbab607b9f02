//! README "Beyond pottery": a rate limiter, a semaphore and a reliable queue. Runs against
//! $REDIS_URL.

use std::time::Duration;

use pottery::{RateLimiter, Redis, ReliableQueue, Semaphore};

fn main() -> Result<(), pottery::Error> {
    let redis = Redis::from_env()?;

    // 5 requests per second with a burst of 2: the first two pass, then one per 200 ms.
    let api = RateLimiter::new(&redis, "example-api", 5, Duration::from_secs(1)).burst(2);
    api.reset()?;
    for i in 0..4 {
        let d = api.acquire(1)?;
        println!("request {i} admitted, {} left in the burst", d.remaining);
    }
    api.reset()?;

    // At most two holders at once.
    let gpus = Semaphore::new(&redis, "example-gpus", 2).lease(Duration::from_secs(10));
    let a = gpus.acquire()?;
    let b = gpus.acquire()?;
    println!(
        "tokens {} and {}; free now: {}",
        a.token(),
        b.token(),
        gpus.available()?
    );
    drop(a);
    b.release()?;

    // Jobs delivered at least once.
    let jobs: ReliableQueue<String> = ReliableQueue::new(&redis, "example-jobs")
        .visibility_timeout(Duration::from_secs(30))
        .max_deliveries(3);
    jobs.clear()?;
    jobs.push_many(&["resize 1".to_string(), "resize 2".to_string()])?;
    while let Some(job) = jobs.pop(Duration::from_millis(100))? {
        println!(
            "processing {:?} (delivery {})",
            job.value(),
            job.deliveries()
        );
        job.ack()?;
    }
    jobs.clear()
}
