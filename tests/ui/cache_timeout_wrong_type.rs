use pottery::redis_cache;

#[redis_cache(key = "squares", timeout = "one minute")]
fn square(n: u64) -> u64 {
    n * n
}

fn main() {}
