use pottery::redis_cache;

struct Opaque(u64);

#[redis_cache(key = "opaque")]
fn unwrap(o: Opaque) -> u64 {
    o.0
}

fn main() {}
