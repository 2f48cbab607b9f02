use pottery::RedisBacked;

#[derive(RedisBacked)]
struct User {
    id: u64,
    #[redis(skip, rename = "s")]
    session: u32,
}

fn main() {}
