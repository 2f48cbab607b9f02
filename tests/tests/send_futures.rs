//! Every future pottery returns or generates is `Send`, and `'static` when its inputs are owned:
//! checked at compile time by handing each to `require_send` (issue 13). Each call is made in
//! an `async move` block that owns a clone of the structure, as a spawned task would; the
//! blocks are never run (the test passes by compiling; the one assertion counts the checks).

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

use pottery::aio;
use pottery::{Redis, RedisBacked};
use serde::{Deserialize, Serialize};

static CHECKED: AtomicUsize = AtomicUsize::new(0);

fn require_send<F: Future + Send + 'static>(_: F) {
    CHECKED.fetch_add(1, Ordering::Relaxed);
}

/// `send!(x => x.method(args))`: the method's future, on an owned clone of `x`.
macro_rules! send {
    ($($v:ident),* => $e:expr) => {{
        $(let $v = $v.clone();)*
        require_send(async move {
            let _ = $e.await;
        });
    }};
}

#[pottery::redis_cache(redis = pottery::testing::doctest_redis(), key = "send:cached")]
async fn cached_string(s: String) -> String {
    s
}

#[pottery::redis_cache(redis = pottery::testing::doctest_redis(), key = "send:cached-result")]
async fn cached_result(n: u64) -> Result<u64, std::io::Error> {
    Ok(n)
}

#[pottery::synchronize(key = "send:sync", masters = [pottery::testing::doctest_redis()])]
async fn synced(s: String) -> Result<String, pottery::Error> {
    Ok(s)
}

#[pottery::timed]
async fn timed_fn(s: String) -> String {
    s
}

#[derive(Clone)]
struct App {
    redis: Redis,
    tenant: String,
}

impl App {
    #[pottery::redis_cache(redis = &self.redis, key = format!("send:{}", self.tenant))]
    async fn user(&self, id: u64) -> Result<String, std::io::Error> {
        Ok(id.to_string())
    }

    #[pottery::synchronize(key = format!("send:{id}"), masters = [self.redis.clone()])]
    async fn pay(&self, id: u64) -> Result<u64, pottery::Error> {
        Ok(id)
    }
}

#[derive(RedisBacked, Serialize, Deserialize, Clone, Debug, Default)]
#[redis(key = "send:user:{id}")]
struct User {
    id: u64,
    visits: i64,
    name: String,
}

#[test]
fn every_async_future_is_send_and_static() {
    let redis = Redis::from_url("redis://127.0.0.1:1").unwrap();
    let r = redis.clone();

    // The handle.
    send!(r => r.ping_async());
    send!(r => r.async_connection());

    // Dict.
    let d: aio::RedisDict<String, i64> = aio::RedisDict::new(&redis, "d");
    send!(r => aio::RedisDict::<String, i64>::create(&r, "d", [("a".to_owned(), 1)]));
    send!(r => aio::RedisDict::<String, i64>::random(&r));
    send!(d => d.insert("a".into(), 1));
    send!(d => d.set("a".into(), 1));
    send!(d => d.get("a"));
    send!(d => d.remove("a"));
    send!(d => d.pop("a", 0));
    send!(d => d.setdefault("a".into(), 1));
    send!(d => d.popitem());
    send!(d => d.contains_key("a"));
    send!(d => d.len());
    send!(d => d.is_empty());
    send!(d => d.extend([("a".to_owned(), 1)]));
    send!(d => d.to_hash_map());
    send!(d => d.clear());

    // Set.
    let s: aio::RedisSet<String> = aio::RedisSet::new(&redis, "s");
    let s2: aio::RedisSet<String> = aio::RedisSet::new(&redis, "s2");
    send!(r => aio::RedisSet::<String>::create(&r, "s", ["a".to_owned()]));
    send!(r => aio::RedisSet::<String>::random(&r));
    send!(s => s.insert("a".into()));
    send!(s => s.remove("a"));
    send!(s => s.contains("a"));
    send!(s => s.contains_many(["a", "b"]));
    send!(s => s.pop());
    send!(s => s.extend(["a".to_owned()]));
    send!(s => s.len());
    send!(s => s.is_empty());
    send!(s => s.clear());
    send!(s => s.to_hash_set());
    send!(s, s2 => s.union(&s2));
    send!(s, s2 => s.intersection(&s2));
    send!(s, s2 => s.difference(&s2));
    send!(s, s2 => s.symmetric_difference(&s2));
    send!(s, s2 => s.union_store(&s2, &s2));
    send!(s, s2 => s.intersection_store(&s2, &s2));
    send!(s, s2 => s.difference_store(&s2, &s2));
    send!(s, s2 => s.symmetric_difference_store(&s2, &s2));
    send!(s, s2 => s.is_subset(&s2));
    send!(s, s2 => s.is_superset(&s2));
    send!(s, s2 => s.is_disjoint(&s2));

    // List.
    let l: aio::RedisList<String> = aio::RedisList::new(&redis, "l");
    send!(r => aio::RedisList::<String>::create(&r, "l", ["a".to_owned()]));
    send!(r => aio::RedisList::<String>::random(&r));
    send!(l => l.get(0));
    send!(l => l.set(0, "a".into()));
    send!(l => l.remove(0));
    send!(l => l.remove_value("a"));
    send!(l => l.slice(0..2));
    send!(l => l.index_of("a"));
    send!(l => l.contains("a"));
    send!(l => l.len());
    send!(l => l.is_empty());
    send!(l => l.clear());
    send!(l => l.push("a".into()));
    send!(l => l.pop());
    send!(l => l.extend(["a".to_owned()]));
    send!(l => l.insert(0, "a".into()));
    send!(l => l.count("a"));
    send!(l => l.slice_step(.., 2));
    send!(l => l.to_vec());
    send!(l => l.sort());
    send!(l => l.reverse());

    // Deque.
    let q: aio::RedisDeque<String> = aio::RedisDeque::new(&redis, "q");
    send!(r => aio::RedisDeque::<String>::with_maxlen(&r, "q", 3));
    send!(r => aio::RedisDeque::<String>::create(&r, "q", ["a".to_owned()], None));
    send!(r => aio::RedisDeque::<String>::random(&r));
    send!(q => q.push_back("a".into()));
    send!(q => q.push_front("a".into()));
    send!(q => q.pop_back());
    send!(q => q.pop_front());
    send!(q => q.front());
    send!(q => q.back());
    send!(q => q.extend(["a".to_owned()]));
    send!(q => q.extend_front(["a".to_owned()]));
    send!(q => q.rotate(1));
    send!(q => q.insert(0, "a".into()));
    send!(q => q.to_vec_deque());
    send!(q => q.get(0));
    send!(q => q.len());

    // Counter.
    let c: aio::RedisCounter<String> = aio::RedisCounter::new(&redis, "c");
    let c2: aio::RedisCounter<String> = aio::RedisCounter::new(&redis, "c2");
    send!(r => aio::RedisCounter::<String>::create(&r, "c", [("a".to_owned(), 1)]));
    send!(r => aio::RedisCounter::<String>::random(&r));
    send!(c => c.get("a"));
    send!(c => c.set("a".into(), 1));
    send!(c => c.incr("a", 1));
    send!(c => c.update(["a".to_owned()]));
    send!(c => c.update_counts([("a".to_owned(), 2)]));
    send!(c => c.subtract(["a".to_owned()]));
    send!(c => c.subtract_counts([("a".to_owned(), 2)]));
    send!(c => c.remove("a"));
    send!(c => c.len());
    send!(c => c.is_empty());
    send!(c => c.clear());
    send!(c => c.to_hash_map());
    send!(c => c.most_common(Some(2)));
    send!(c => c.elements());
    send!(c => c.total());
    send!(c, c2 => c.add(&c2));
    send!(c, c2 => c.sub(&c2));
    send!(c, c2 => c.union(&c2));
    send!(c, c2 => c.intersection(&c2));

    // Bloom filter and HyperLogLog.
    let b: aio::BloomFilter<String> = aio::BloomFilter::new(&redis, "b", 100, 0.01).unwrap();
    send!(b => b.add("a"));
    send!(b => b.update(["a".to_owned()]));
    send!(b => b.contains("a"));
    send!(b => b.contains_many(["a", "b"]));
    send!(b => b.len());
    send!(b => b.is_empty());
    send!(b => b.clear());
    let h: aio::HyperLogLog<String> = aio::HyperLogLog::new(&redis, "h");
    let h2: aio::HyperLogLog<String> = aio::HyperLogLog::new(&redis, "h2");
    send!(h => h.add("a"));
    send!(h => h.update(["a".to_owned()]));
    send!(h => h.len());
    send!(h => h.is_empty());
    send!(h => h.contains("a"));
    send!(h => h.contains_many(["a", "b"]));
    send!(h, h2 => h.merge([&h2]));
    send!(h, h2 => h.union([&h2], "dest"));
    send!(h, h2 => h.union_len([&h2]));
    send!(h => h.clear());

    // Caches.
    send!(r => aio::CachedOrderedDict::<String, i64>::new(&r, "o", ["a".to_owned()]));
    send!(r => aio::CachedOrderedDict::<String, i64>::with_timeout(&r, "o", ["a".to_owned()], None));
    require_send({
        let r = redis.clone();
        async move {
            let mut o =
                aio::CachedOrderedDict::<String, i64>::new(&r, "o", ["a".to_owned()]).await?;
            o.insert("a".into(), 1).await?;
            o.extend([("b".to_owned(), 2)]).await?;
            o.setdefault("c".into(), 3).await.copied()
        }
    });
    let cache = aio::RedisCache::new(&redis, "k");
    send!(r => aio::RedisCache::random(&r));
    send!(cache => cache.get_or_compute(&(1,), || async { 5u32 }));
    send!(cache => cache.get_or_try_compute(&(1,), || async { Ok::<u32, std::io::Error>(5) }));
    send!(cache => cache.bypass(&(1,), || async { 5u32 }));
    send!(cache => cache.info());
    send!(cache => cache.clear());

    // Redlock and NextId.
    let lock = aio::Redlock::new("lock", [redis.clone()]);
    send!(lock => lock.lock());
    send!(lock => lock.lock_fenced());
    send!(lock => lock.lock_with_watchdog());
    send!(lock => lock.acquire());
    send!(lock => lock.try_acquire());
    send!(lock => lock.acquire_timeout(std::time::Duration::ZERO));
    send!(lock => lock.acquire_with_token());
    send!(lock => lock.locked());
    send!(lock => lock.extend());
    send!(lock => lock.release());
    require_send({
        let lock = lock.clone();
        async move {
            let g = lock.lock().await?;
            g.locked().await?;
            g.extend().await?;
            g.release().await?;
            let w = lock.lock_with_watchdog().await?;
            w.locked().await?;
            w.release().await
        }
    });
    send!(r => aio::synchronize("lock", [r], |l| l, || async { 1 }));
    let ids = aio::NextId::new("ids", [redis.clone()]);
    send!(ids => ids.next_id());
    send!(ids => ids.reset());

    // RateLimiter, Semaphore, ReliableQueue (issue 26).
    let limiter = aio::RateLimiter::new(&redis, "rl", 10, std::time::Duration::from_secs(1));
    send!(limiter => limiter.try_acquire(1));
    send!(limiter => limiter.acquire(1));
    send!(limiter => limiter.reset());
    let sem = aio::Semaphore::new(&redis, "sem", 2);
    send!(sem => sem.acquire());
    send!(sem => sem.acquire_with_watchdog());
    send!(sem => sem.try_acquire());
    send!(sem => sem.available());
    require_send({
        let sem = sem.clone();
        async move {
            let p = sem.acquire().await?;
            p.extend().await?;
            let lost = p.lost_signal();
            drop(lost);
            p.release().await
        }
    });
    let q: aio::ReliableQueue<String> = aio::ReliableQueue::new(&redis, "q");
    send!(q => q.push(&"a".to_string()));
    send!(q => q.push_many(&["a".to_string()]));
    send!(q => q.pop(std::time::Duration::ZERO));
    send!(q => q.len());
    send!(q => q.dead_letters(10));
    send!(q => q.requeue_dead_letters(10));
    require_send({
        let q = q.clone();
        async move {
            if let Some(d) = q.pop(std::time::Duration::ZERO).await? {
                d.extend().await?;
                d.ack().await?;
            }
            Ok::<(), pottery::Error>(())
        }
    });

    // RedisBacked: the trait's async forms, the key template's and the typed handle's.
    let user = User::default();
    send!(r, user => user.save_async(&r, "send:user:1"));
    send!(r => User::load_async(&r, "send:user:1"));
    send!(r => User::delete_async(&r, "send:user:1"));
    send!(r => User::exists_async(&r, "send:user:1"));
    send!(r => User::load_tracked_async(&r, "send:user:1"));
    send!(r => User::update_async(&r, "send:user:1", |u: &mut User| u.visits += 1));
    send!(r, user => user.save_keyed_async(&r));
    send!(r => User::load_keyed_async(&r, &1));
    send!(r => User::delete_keyed_async(&r, &1));
    send!(r => User::exists_keyed_async(&r, &1));
    send!(r => User::load_tracked_keyed_async(&r, &1));
    send!(r => User::update_keyed_async(&r, &1, |u: &mut User| u.visits += 1));
    let handle = User::handle_keyed(&redis, &1);
    send!(handle => handle.visits_async());
    send!(handle => handle.set_visits_async(3));
    send!(handle => handle.incr_visits_async(1));
    send!(handle => handle.load_async());
    send!(handle => handle.load_tracked_async());
    send!(handle => handle.update_async(|u: &mut User| u.visits += 1));
    send!(handle, user => handle.save_async(&user));
    send!(handle => handle.delete_async());
    send!(handle => handle.exists_async());
    require_send({
        let r = redis.clone();
        async move {
            if let Some(mut t) = User::load_tracked_async(&r, "send:user:1").await? {
                t.visits += 1;
                t.save_async().await?;
            }
            Ok::<(), pottery::Error>(())
        }
    });

    // Generated async functions and methods.
    require_send(cached_string(String::from("z")));
    require_send(cached_result(1));
    require_send(cached_string::cache_info_async());
    require_send(cached_string::cache_clear_async());
    require_send(cached_string::bypass(String::from("z")));
    require_send(cached_string::wrapped(String::from("z")));
    require_send(synced(String::from("z")));
    require_send(timed_fn(String::from("z")));
    let app = App {
        redis: redis.clone(),
        tenant: "t".into(),
    };
    send!(app => app.user(1));
    send!(app => app.pay(1));

    assert!(CHECKED.load(Ordering::Relaxed) > 150);
}
