use pottery::redis_cache;

struct Opaque(u64);

#[redis_cache(key = "opaque-result")]
fn load(id: u64) -> Result<Opaque, std::io::Error> {
    Ok(Opaque(id))
}

fn main() {}
