use pottery::RedisBacked;

#[derive(RedisBacked)]
struct User {
    name: String,
    #[redis(rename = "name")]
    nickname: String,
}

fn main() {}
