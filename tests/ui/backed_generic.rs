use pottery::RedisBacked;

#[derive(RedisBacked)]
struct Wrapper<T> {
    value: T,
}

fn main() {}
