use pottery::RedisBacked;

struct Opaque;

#[derive(RedisBacked)]
struct User {
    id: u64,
    secret: Opaque,
}

fn main() {}
