use pottery::redis_cache;

#[redis_cache(key = "k", skip = [client])]
fn load(id: u64) -> u64 {
    id
}

fn main() {}
