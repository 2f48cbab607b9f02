use pottery::RedisBacked;

// The handle has `update` (and `load_tracked`) methods: a field of that name clashes.
#[derive(RedisBacked)]
struct Feed {
    id: u64,
    update: String,
}

fn main() {}
