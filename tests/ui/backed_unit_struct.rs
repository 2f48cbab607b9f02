use pottery::RedisBacked;

#[derive(RedisBacked)]
struct Nothing;

fn main() {}
