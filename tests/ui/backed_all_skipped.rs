use pottery::RedisBacked;

#[derive(RedisBacked)]
struct Cache {
    #[redis(skip)]
    hits: u64,
}

fn main() {}
