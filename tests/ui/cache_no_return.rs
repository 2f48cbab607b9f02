use pottery::redis_cache;

#[redis_cache(key = "log")]
fn log(line: String) {
    println!("{line}");
}

fn main() {}
