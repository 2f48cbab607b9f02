use pottery::RedisBacked;

#[derive(RedisBacked)]
#[redis(prefix = "user:")]
struct User {
    name: String,
}

fn main() {}
