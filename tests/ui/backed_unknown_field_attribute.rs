use pottery::RedisBacked;

#[derive(RedisBacked)]
struct User {
    #[redis(alias = "n")]
    name: String,
}

fn main() {}
