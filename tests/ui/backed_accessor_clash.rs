use pottery::RedisBacked;

#[derive(RedisBacked)]
struct Job {
    id: u64,
    load: f64,
}

fn main() {}
