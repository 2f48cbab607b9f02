use pottery::RedisBacked;

#[derive(RedisBacked)]
enum Shape {
    Circle { r: f64 },
    Square { side: f64 },
}

fn main() {}
