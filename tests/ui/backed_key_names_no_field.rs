use pottery::RedisBacked;

#[derive(RedisBacked)]
#[redis(key = "the-user")]
struct User {
    id: u64,
}

fn main() {}
