use pottery::RedisBacked;

#[derive(RedisBacked)]
struct User {
    #[redis(key = "user:{id}")]
    id: u64,
}

fn main() {}
