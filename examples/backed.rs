//! The "Structs as hashes" guide: `#[derive(RedisBacked)]`, read and written field by field, and
//! changed safely beside other writers (a tracked save, an update). Runs against $REDIS_URL.

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

    // Change a loaded value: save writes only what changed, so a visit counted meanwhile stays.
    let mut user = User::load_tracked_keyed(&redis, &42)?.expect("saved above");
    handle.incr_visits(1)?;
    user.tags.push("poetry".into());
    user.save()?;
    println!("after a tracked save: {:?}", User::load_keyed(&redis, &42)?);

    // Or read-modify-write in one call, retried if another process changed the same fields.
    let tags = User::update_keyed(&redis, &42, |u| {
        u.tags.push("engines".into());
        u.tags.len()
    })?;
    println!("tags after update: {tags:?}");

    // The same, async.
    println!("async name: {:?}", handle.name_async().await?);
    println!(
        "async load: {:?}",
        User::load_keyed_async(&redis, &42).await?
    );
    let visits = User::update_keyed_async(&redis, &42, |u| {
        u.visits += 10;
        u.visits
    })
    .await?;
    println!("async update: visits = {visits:?}");
    assert!(User::delete_keyed_async(&redis, &42).await?);
    Ok(())
}
