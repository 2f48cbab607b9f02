use pottery::redis_cache;

#[redis_cache(key = "squares", retries = 5)]
fn square(n: u64) -> u64 {
    n * n
}

fn main() {}
