use pottery::RedisBacked;

#[derive(RedisBacked)]
#[redis(key = 42)]
struct User {
    id: u64,
}

fn main() {}
