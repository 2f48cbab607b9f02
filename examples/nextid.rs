//! The "NextId" guide: ids that only go up. Runs against $REDIS_URL.

use pottery::{NextId, Redis};

fn main() -> Result<(), pottery::Error> {
    let masters = vec![Redis::from_env()?];
    let tweet_ids = NextId::new("tweet-ids-example", masters);
    tweet_ids.reset()?;
    for _ in 0..3 {
        println!("next id: {}", tweet_ids.next_id()?);
    }
    tweet_ids.reset()
}
