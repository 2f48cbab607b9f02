use pottery::RedisBacked;

struct Connection;

#[derive(RedisBacked)]
struct User {
    id: u64,
    #[redis(skip)]
    conn: Connection,
}

fn main() {}
