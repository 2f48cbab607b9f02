use pottery::RedisBacked;

#[derive(RedisBacked)]
#[redis(key = "user:{uid}")]
struct User {
    id: u64,
    name: String,
}

fn main() {}
