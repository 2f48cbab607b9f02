use pottery::redis_cache;

#[redis_cache(key = "identity")]
fn identity<T: serde::Serialize + serde::de::DeserializeOwned>(t: T) -> T {
    t
}

fn main() {}
