//! README "Structs as hashes": `#[derive(RedisBacked)]`, read and written field by field.
//! Runs against $REDIS_URL.

use pottery::{Redis, RedisBacked};

#[derive(RedisBacked, Debug)]
#[redis(key = "example:user:{id}")]
struct User {
    id: u64,
    name: String,
    #[redis(rename = "e-mail")]
    email: Option<String>,
    visits: u32,
    #[redis(default)]
    tags: Vec<String>,
}

#[tokio::main]
async fn main() -> Result<(), pottery::Error> {
    let redis = Redis::from_env()?;
    let ada = User {
        id: 42,
        name: "Ada".into(),
        email: None,
        visits: 0,
        tags: vec!["math".into()],
    };
    ada.save_keyed(&redis)?;
    println!("saved at {}", ada.redis_key());

    let handle = User::handle_keyed(&redis, &42);
    handle.set_email(Some("ada@example.com".to_string()))?;
    for _ in 0..3 {
        handle.incr_visits(1)?;
    }
    println!("visits: {:?}", handle.visits()?);
    println!("loaded: {:?}", User::load_keyed(&redis, &42)?);

    // The same, async.
    println!("async name: {:?}", handle.name_async().await?);
    println!(
        "async load: {:?}",
        User::load_keyed_async(&redis, &42).await?
    );
    assert!(User::delete_keyed_async(&redis, &42).await?);
    Ok(())
}
