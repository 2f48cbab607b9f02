use pottery::RedisBacked;

#[derive(RedisBacked)]
struct Point(i64, i64);

fn main() {}
