use pottery::redis_cache;

#[redis_cache(key = "squares", ttl = "5 minutes")]
fn square(n: u64) -> u64 {
    n * n
}

#[redis_cache(key = "cubes", timeout = 1e40)]
fn cube(n: u64) -> u64 {
    n * n * n
}

fn main() {}
