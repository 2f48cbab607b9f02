use pottery::RedisBacked;

#[derive(RedisBacked)]
struct User {
    #[redis(rename = id)]
    id: u64,
}

fn main() {}
