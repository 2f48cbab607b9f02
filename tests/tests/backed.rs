//! `#[derive(RedisBacked)]` against real servers (one server and a cluster), and against
//! Python pottery's `RedisDict` on the same hash.

use pottery::testing::{RedisServer, shared_server};
use pottery::{Error, Redis, RedisBacked};
use pottery_tests::{run_python, targets, unique_key};
use redis::Commands;
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Address {
    city: String,
    zip: Option<String>,
}

fn default_plan() -> String {
    "free".into()
}

#[derive(RedisBacked, Debug, Clone, PartialEq)]
#[redis(key = "user:{id}")]
struct User {
    id: u64,
    name: String,
    #[redis(rename = "e-mail")]
    email: Option<String>,
    visits: i64,
    #[redis(default)]
    tags: Vec<String>,
    #[redis(default = default_plan)]
    plan: String,
    address: Address,
    #[redis(skip)]
    session: Option<u32>,
}

fn ada(id: u64) -> User {
    User {
        id,
        name: "Ada Lovelace — Zoë".into(),
        email: Some("ada@example.com".into()),
        visits: 3,
        tags: vec!["math".into(), "poetry".into()],
        plan: "pro".into(),
        address: Address {
            city: "London".into(),
            zip: None,
        },
        session: Some(7),
    }
}

fn raw(redis: &Redis) -> pottery::PooledConnection {
    redis.connection().unwrap()
}

#[test]
fn fields_are_listed_with_renames_and_without_skipped() {
    assert_eq!(
        User::FIELDS,
        ["id", "name", "e-mail", "visits", "tags", "plan", "address"]
    );
}

#[test]
fn save_load_delete_exists_on_every_target() {
    for (target, redis) in targets() {
        let key = unique_key("backed");
        let user = ada(1);
        assert_eq!(User::load(&redis, &key).unwrap(), None, "{target}");
        assert!(!User::exists(&redis, &key).unwrap(), "{target}");
        user.save(&redis, &key).unwrap();
        assert!(User::exists(&redis, &key).unwrap(), "{target}");
        let loaded = User::load(&redis, &key).unwrap().unwrap();
        // The skipped field is not stored: it comes back as its default.
        assert_eq!(
            loaded,
            User {
                session: None,
                ..user.clone()
            },
            "{target}"
        );
        assert!(User::delete(&redis, &key).unwrap(), "{target}");
        assert!(!User::delete(&redis, &key).unwrap(), "{target}");
        assert_eq!(User::load(&redis, &key).unwrap(), None, "{target}");
    }
}

#[test]
fn stored_bytes_are_pottery_json_under_json_field_names() {
    let redis = shared_server().redis();
    let key = unique_key("bytes");
    ada(9).save(&redis, &key).unwrap();
    let mut con = raw(&redis);
    let name: Vec<u8> = con.hget(&key, "\"name\"").unwrap();
    assert_eq!(name, br#""Ada Lovelace \u2014 Zo\u00eb""#.to_vec());
    let addr: String = con.hget(&key, "\"address\"").unwrap();
    assert_eq!(addr, r#"{"city": "London", "zip": null}"#);
    let email: String = con.hget(&key, "\"e-mail\"").unwrap();
    assert_eq!(email, r#""ada@example.com""#);
    let n: usize = con.hlen(&key).unwrap();
    assert_eq!(n, 7, "the skipped field is not stored");
    let _: () = con.del(&key).unwrap();
}

#[test]
fn missing_fields_error_or_default() {
    let redis = shared_server().redis();
    let key = unique_key("missing");
    let mut con = raw(&redis);
    // Only the required fields: the Option, the defaults and the skipped field fill in.
    let _: () = con
        .hset_multiple(
            &key,
            &[
                ("\"id\"", "5"),
                ("\"name\"", "\"Bob\""),
                ("\"visits\"", "0"),
                ("\"address\"", "{\"city\": \"Paris\", \"zip\": \"75001\"}"),
                ("\"unknown\"", "\"ignored\""),
            ],
        )
        .unwrap();
    let bob = User::load(&redis, &key).unwrap().unwrap();
    assert_eq!(bob.email, None);
    assert_eq!(bob.tags, Vec::<String>::new());
    assert_eq!(bob.plan, "free");
    assert_eq!(bob.address.zip.as_deref(), Some("75001"));

    // A null in an Option field is None too.
    let _: () = con.hset(&key, "\"e-mail\"", "null").unwrap();
    assert_eq!(User::load(&redis, &key).unwrap().unwrap().email, None);

    // A required field missing: an error naming the key and the field.
    let _: () = con.hdel(&key, "\"name\"").unwrap();
    match User::load(&redis, &key) {
        Err(Error::MissingField { key: k, field }) => {
            assert_eq!((k.as_str(), field.as_str()), (key.as_str(), "name"));
        }
        other => panic!("expected MissingField, got {other:?}"),
    }
    let err = User::load(&redis, &key).unwrap_err();
    assert!(err.to_string().contains(&key) && err.to_string().contains("`name`"));
    let _: () = con.del(&key).unwrap();
}

#[test]
fn undecodable_and_foreign_data_are_typed_errors() {
    let redis = shared_server().redis();
    let key = unique_key("bad");
    ada(2).save(&redis, &key).unwrap();
    let mut con = raw(&redis);
    let _: () = con.hset(&key, "\"visits\"", "\"many\"").unwrap();
    match User::load(&redis, &key) {
        Err(Error::Codec { key: k, source }) => {
            assert_eq!(k, key);
            assert!(source.message().contains("`visits`"), "{source}");
        }
        other => panic!("expected Codec, got {other:?}"),
    }
    let h = User::handle(&redis, key.clone());
    assert!(matches!(h.visits(), Err(Error::Codec { .. })));
    // HINCRBY on a field that is not an integer: the server refuses, nothing changes.
    assert!(matches!(h.incr_visits(1), Err(Error::Redis { .. })));
    assert_eq!(h.name().unwrap().as_deref(), Some("Ada Lovelace — Zoë"));

    let _: () = con.del(&key).unwrap();
    let _: () = con.rpush(&key, "x").unwrap();
    assert!(matches!(
        User::load(&redis, &key),
        Err(Error::WrongType {
            expected: "hash",
            ..
        })
    ));
    assert!(matches!(
        ada(2).save(&redis, &key),
        Err(Error::WrongType { .. })
    ));
    assert!(matches!(h.name(), Err(Error::WrongType { .. })));
    let _: () = con.del(&key).unwrap();
}

#[test]
fn handle_reads_and_writes_single_fields() {
    for (target, redis) in targets() {
        let key = unique_key("handle");
        let h = User::handle(&redis, key.clone());
        assert_eq!(h.redis_key(), key);
        assert_eq!(h.name().unwrap(), None, "{target}: no hash yet");
        assert_eq!(h.email().unwrap(), None);
        assert_eq!(h.plan().unwrap(), "free", "{target}: the default");
        assert_eq!(
            h.incr_visits(5).unwrap(),
            5,
            "{target}: missing counts as 0"
        );
        h.save(&ada(3)).unwrap();
        assert_eq!(h.visits().unwrap(), Some(3));
        assert_eq!(h.incr_visits(2).unwrap(), 5);
        assert_eq!(h.incr_visits(-10).unwrap(), -5);
        assert_eq!(h.incr_id(1).unwrap(), 4);
        h.set_name("Grace").unwrap();
        h.set_email(None).unwrap();
        h.set_tags(vec!["navy".to_string()]).unwrap();
        h.set_address(Address {
            city: "Arlington".into(),
            zip: Some("22201".into()),
        })
        .unwrap();
        assert_eq!(h.name().unwrap().as_deref(), Some("Grace"));
        assert_eq!(h.email().unwrap(), None);
        assert_eq!(h.tags().unwrap(), vec!["navy".to_string()]);
        let loaded = h.load().unwrap().unwrap();
        assert_eq!(loaded.name, "Grace");
        assert_eq!(loaded.id, 4);
        assert_eq!(loaded.visits, -5);
        assert_eq!(loaded.address.city, "Arlington");
        assert!(h.delete().unwrap());
        assert!(!h.exists().unwrap());
    }
}

#[test]
fn incr_out_of_the_field_type_is_an_error_not_a_wrap() {
    #[derive(RedisBacked)]
    struct Small {
        n: u8,
    }
    let redis = shared_server().redis();
    let key = unique_key("small");
    let h = Small::handle(&redis, key.clone());
    assert_eq!(h.incr_n(250).unwrap(), 250);
    match h.incr_n(10) {
        Err(Error::Codec { key: k, source }) => {
            assert_eq!(k, key);
            assert!(source.message().contains("260"), "{source}");
        }
        other => panic!("expected a range error, got {other:?}"),
    }
    assert_eq!(h.n().unwrap(), Some(250), "nothing was written");
    assert!(
        matches!(h.incr_n(-251), Err(Error::Codec { .. })),
        "below zero"
    );
    assert_eq!(h.incr_n(-50).unwrap(), 200);
    assert_eq!(h.incr_n(55).unwrap(), 255);
    let mut con = raw(&redis);
    let stored: i64 = con.hget(&key, "\"n\"").unwrap();
    assert_eq!(stored, 255);
    // The same hash field read as an i16: its own range.
    #[derive(RedisBacked)]
    struct Signed {
        n: i16,
    }
    let s = Signed::handle(&redis, key.clone());
    assert_eq!(s.incr_n(-300).unwrap(), -45);
    assert!(matches!(s.incr_n(-40_000), Err(Error::Codec { .. })));
    // A fresh field counts from zero, and a refused step leaves it absent.
    let fresh = Small::handle(&redis, unique_key("small-fresh"));
    assert!(matches!(fresh.incr_n(-1), Err(Error::Codec { .. })));
    assert!(!fresh.exists().unwrap(), "nothing was written");
    assert_eq!(fresh.incr_n(1).unwrap(), 1);
    assert!(fresh.delete().unwrap());
    assert!(h.delete().unwrap());
}

#[test]
fn each_handle_operation_is_one_round_trip() {
    let server = RedisServer::start().unwrap();
    let redis = server.redis();
    let h = User::handle(&redis, "user:1");
    h.save(&ada(1)).unwrap();
    let calls = |cmd: &str| -> u64 {
        let info = server.cli(["INFO", "commandstats"]).unwrap();
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("cmdstat_{cmd}:calls=")))
            .and_then(|rest| rest.split(',').next())
            .map_or(0, |n| n.parse().unwrap())
    };
    let total = || -> u64 {
        let info = server.cli(["INFO", "commandstats"]).unwrap();
        pottery_tests::command_calls(&info, |l| {
            l.starts_with("cmdstat_") && !l.starts_with("cmdstat_info")
        })
    };
    let before = total();
    let (hget, hset, hincrby, hgetall) = (
        calls("hget"),
        calls("hset"),
        calls("hincrby"),
        calls("hgetall"),
    );
    h.name().unwrap();
    h.set_name("x").unwrap();
    h.incr_visits(1).unwrap();
    h.load().unwrap();
    User::load_keyed(&redis, &1).unwrap();
    ada(1).save_keyed(&redis).unwrap();
    assert_eq!(calls("hget"), hget + 1);
    assert_eq!(calls("hset"), hset + 2);
    assert_eq!(calls("hincrby"), hincrby + 1);
    assert_eq!(calls("hgetall"), hgetall + 2);
    assert_eq!(total(), before + 6, "nothing else was sent");
}

#[test]
fn key_template_forms() {
    let redis = shared_server().redis();
    let id = rand::random::<u32>() as u64;
    assert_eq!(User::key_for(&id), format!("user:{id}"));
    let user = ada(id);
    assert_eq!(user.redis_key(), format!("user:{id}"));
    user.save_keyed(&redis).unwrap();
    assert!(User::exists_keyed(&redis, &id).unwrap());
    assert_eq!(
        User::load_keyed(&redis, &id).unwrap().unwrap().name,
        user.name
    );
    assert_eq!(
        User::handle_keyed(&redis, &id).visits().unwrap(),
        Some(user.visits)
    );
    assert!(User::delete_keyed(&redis, &id).unwrap());
    assert!(!User::exists_keyed(&redis, &id).unwrap());

    #[derive(RedisBacked, Debug, PartialEq)]
    #[redis(key = "{{tenant}}:{tenant}:doc:{name}")]
    struct Doc {
        tenant: String,
        name: String,
        size: usize,
    }
    assert_eq!(Doc::key_for("acme", "readme"), "{tenant}:acme:doc:readme");
    let doc = Doc {
        tenant: "acme".into(),
        name: unique_key("readme"),
        size: 10,
    };
    doc.save_keyed(&redis).unwrap();
    assert_eq!(
        Doc::load_keyed(&redis, "acme", &doc.name).unwrap().as_ref(),
        Some(&doc)
    );
    assert!(Doc::delete_keyed(&redis, "acme", &doc.name).unwrap());
}

#[test]
fn async_forms_on_every_target() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    for (target, redis) in targets() {
        rt.block_on(async {
            let key = unique_key("async");
            let user = ada(11);
            assert_eq!(User::load_async(&redis, &key).await.unwrap(), None);
            user.save_async(&redis, &key).await.unwrap();
            assert!(User::exists_async(&redis, &key).await.unwrap(), "{target}");
            let h = User::handle(&redis, key.clone());
            assert_eq!(h.visits_async().await.unwrap(), Some(3));
            assert_eq!(h.incr_visits_async(4).await.unwrap(), 7);
            h.set_name_async("Async Ada").await.unwrap();
            assert_eq!(h.name_async().await.unwrap().as_deref(), Some("Async Ada"));
            assert_eq!(h.plan_async().await.unwrap(), "pro");
            assert_eq!(
                h.email_async().await.unwrap().as_deref(),
                Some("ada@example.com")
            );
            let loaded = h.load_async().await.unwrap().unwrap();
            assert_eq!((loaded.name.as_str(), loaded.visits), ("Async Ada", 7));
            h.save_async(&user).await.unwrap();
            assert_eq!(
                User::load_async(&redis, &key).await.unwrap().unwrap().name,
                user.name
            );
            assert!(h.exists_async().await.unwrap());
            assert!(h.delete_async().await.unwrap());
            assert!(!User::delete_async(&redis, &key).await.unwrap());

            let id = rand::random::<u32>() as u64 + 1_000_000;
            let keyed = ada(id);
            keyed.save_keyed_async(&redis).await.unwrap();
            assert!(User::exists_keyed_async(&redis, &id).await.unwrap());
            assert_eq!(
                User::load_keyed_async(&redis, &id)
                    .await
                    .unwrap()
                    .unwrap()
                    .id,
                id
            );
            assert!(User::delete_keyed_async(&redis, &id).await.unwrap());
        });
    }
}

#[test]
fn async_forms_are_send() {
    fn send<T: Send>(_: T) {}
    let redis = shared_server().redis();
    let h = User::handle(&redis, "k");
    let user = ada(1);
    send(h.name_async());
    send(h.set_name_async("x"));
    send(h.incr_visits_async(1));
    send(h.load_async());
    send(h.save_async(&user));
    send(User::load_async(&redis, "k"));
    send(user.save_async(&redis, "k"));
    send(user.save_keyed_async(&redis));
    send(User::load_keyed_async(&redis, &1));
}

const PY_PRELUDE: &str = r#"
import json, os, sys
from redis import Redis
from pottery import RedisDict
redis = Redis.from_url(os.environ['REDIS_URL'])
args = json.loads(sys.stdin.read())
"#;

#[test]
fn python_reads_the_struct_as_a_dict() {
    let server = shared_server();
    let redis = server.redis();
    let id = rand::random::<u32>() as u64 + 2_000_000;
    ada(id).save_keyed(&redis).unwrap();
    let code = format!(
        "{PY_PRELUDE}d = RedisDict(redis=redis, key=args['key'])\n\
         print(json.dumps(d.to_dict(), sort_keys=True))"
    );
    let out = run_python(
        &code,
        &server.url(),
        &json!({"key": format!("user:{id}")}).to_string(),
    );
    let got: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        got,
        json!({
            "id": id,
            "name": "Ada Lovelace — Zoë",
            "e-mail": "ada@example.com",
            "visits": 3,
            "tags": ["math", "poetry"],
            "plan": "pro",
            "address": {"city": "London", "zip": null},
        })
    );
    User::delete_keyed(&redis, &id).unwrap();
}

#[test]
fn rust_loads_what_python_writes() {
    let server = shared_server();
    let redis = server.redis();
    let id = rand::random::<u32>() as u64 + 3_000_000;
    let code = format!(
        "{PY_PRELUDE}d = RedisDict(redis=redis, key=args['key'])\n\
         d.update({{'id': args['id'], 'name': 'Py Thon', 'e-mail': None, 'visits': 41,\n\
                   'address': {{'city': 'Amsterdam', 'zip': '1011'}}}})\n\
         print('ok')"
    );
    let stdin = json!({"key": format!("user:{id}"), "id": id}).to_string();
    assert_eq!(run_python(&code, &server.url(), &stdin).trim(), "ok");
    let user = User::load_keyed(&redis, &id).unwrap().unwrap();
    assert_eq!(
        user,
        User {
            id,
            name: "Py Thon".into(),
            email: None,
            visits: 41,
            tags: vec![],
            plan: "free".into(),
            address: Address {
                city: "Amsterdam".into(),
                zip: Some("1011".into()),
            },
            session: None,
        }
    );
    // And a Rust increment is what Python then reads.
    assert_eq!(User::handle_keyed(&redis, &id).incr_visits(1).unwrap(), 42);
    let code = format!("{PY_PRELUDE}print(RedisDict(redis=redis, key=args['key'])['visits'])");
    assert_eq!(run_python(&code, &server.url(), &stdin).trim(), "42");
    User::delete_keyed(&redis, &id).unwrap();
}

// ---- Issue 13: saving what changed, and updating atomically ----

/// A profile that 36 workers count visits on while 4 others each edit their own tag field.
#[derive(RedisBacked, Debug, Clone, PartialEq, Default)]
struct Profile {
    name: String,
    visits: i64,
    #[redis(default)]
    tag0: Vec<u32>,
    #[redis(default)]
    tag1: Vec<u32>,
    #[redis(default)]
    tag2: Vec<u32>,
    #[redis(default)]
    tag3: Vec<u32>,
}

impl Profile {
    fn tag_mut(&mut self, i: usize) -> &mut Vec<u32> {
        match i {
            0 => &mut self.tag0,
            1 => &mut self.tag1,
            2 => &mut self.tag2,
            _ => &mut self.tag3,
        }
    }
}

const COUNTERS: usize = 36;
const INCRS: usize = 50;
const EDITORS: usize = 4;
const EDITS: u32 = 10;

fn check_nothing_lost(target: &str, redis: &Redis, key: &str) {
    let p = Profile::load(redis, key).unwrap().unwrap();
    assert_eq!(
        p.visits,
        (COUNTERS * INCRS) as i64,
        "{target}: every increment survives"
    );
    for i in 0..EDITORS {
        let want: Vec<u32> = (0..EDITS).collect();
        assert_eq!(
            p.clone().tag_mut(i),
            &want,
            "{target}: every tag of editor {i}"
        );
    }
    assert_eq!(p.name, "Ada", "{target}");
}

/// The issue's workload: 36 workers calling `incr_visits` 50 times while 4 workers load, add
/// a tag to their own field and save, 10 times each. Before the fix `visits` ended at 1787
/// and tags were lost, because `save` rewrote every field.
#[test]
fn tracked_saves_beside_increments_lose_nothing() {
    for (target, redis) in targets() {
        let key = unique_key("issue13");
        Profile {
            name: "Ada".into(),
            ..Profile::default()
        }
        .save(&redis, &key)
        .unwrap();
        std::thread::scope(|s| {
            for _ in 0..COUNTERS {
                let h = Profile::handle(&redis, key.clone());
                s.spawn(move || {
                    for _ in 0..INCRS {
                        h.incr_visits(1).unwrap();
                    }
                });
            }
            for i in 0..EDITORS {
                let (redis, key) = (&redis, &key);
                s.spawn(move || {
                    for n in 0..EDITS {
                        let mut p = Profile::load_tracked(redis, key).unwrap().unwrap();
                        p.tag_mut(i).push(n);
                        p.save().unwrap();
                    }
                });
            }
        });
        check_nothing_lost(target, &redis, &key);
        Profile::delete(&redis, &key).unwrap();
    }
}

#[test]
fn tracked_saves_beside_increments_lose_nothing_async() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    for (target, redis) in targets() {
        let key = unique_key("issue13-async");
        rt.block_on(async {
            Profile {
                name: "Ada".into(),
                ..Profile::default()
            }
            .save_async(&redis, &key)
            .await
            .unwrap();
            let mut tasks = Vec::new();
            for _ in 0..COUNTERS {
                let h = Profile::handle(&redis, key.clone());
                tasks.push(tokio::spawn(async move {
                    for _ in 0..INCRS {
                        h.incr_visits_async(1).await.unwrap();
                    }
                }));
            }
            for i in 0..EDITORS {
                let h = Profile::handle(&redis, key.clone());
                tasks.push(tokio::spawn(async move {
                    for n in 0..EDITS {
                        let mut p = h.load_tracked_async().await.unwrap().unwrap();
                        p.tag_mut(i).push(n);
                        p.save_async().await.unwrap();
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
        });
        check_nothing_lost(target, &redis, &key);
        Profile::delete(&redis, &key).unwrap();
    }
}

/// How many times updates ran their closure: in all, and the most for one update.
#[derive(Default)]
struct Tries {
    most: std::sync::atomic::AtomicUsize,
    all: std::sync::atomic::AtomicUsize,
}

impl Tries {
    fn record(&self, calls: usize) {
        use std::sync::atomic::Ordering::Relaxed;
        self.most.fetch_max(calls, Relaxed);
        self.all.fetch_add(calls, Relaxed);
    }

    /// Checks that no closure ran twice.
    fn check_no_retry(&self, target: &str) {
        use std::sync::atomic::Ordering::Relaxed;
        let (all, most) = (self.all.load(Relaxed), self.most.load(Relaxed));
        assert_eq!(
            (all, most),
            (UPDATERS * UPDATES, 1),
            "{target}: {all} closure runs for {} updates, at most {most} for one",
            UPDATERS * UPDATES
        );
    }
}

const UPDATERS: usize = 8;
const UPDATES: usize = 50;

/// 8 writers each adding to the same field 50 times through `update` (a read-modify-write in
/// Rust, which plain load + save would lose), beside increments of another field. In one
/// process they take turns, so no closure runs twice; the increments of a field they do not
/// change make none of them retry either.
#[test]
fn update_under_contention_loses_nothing() {
    for (target, redis) in targets() {
        let key = unique_key("update");
        Profile::default().save(&redis, &key).unwrap();
        let tries = Tries::default();
        std::thread::scope(|s| {
            for w in 0..UPDATERS {
                let (redis, key, tries) = (&redis, &key, &tries);
                s.spawn(move || {
                    for n in 0..UPDATES {
                        let mut calls = 0;
                        let got = Profile::update(redis, key, |p| {
                            calls += 1;
                            p.tag0.push((w * UPDATES + n) as u32);
                            p.tag0.len()
                        });
                        tries.record(calls);
                        assert!(got.unwrap().unwrap() >= 1);
                    }
                });
            }
            for _ in 0..4 {
                let h = Profile::handle(&redis, key.clone());
                s.spawn(move || {
                    for _ in 0..INCRS {
                        h.incr_visits(1).unwrap();
                    }
                });
            }
        });
        tries.check_no_retry(target);
        let p = Profile::load(&redis, &key).unwrap().unwrap();
        assert_eq!(p.tag0.len(), UPDATERS * UPDATES, "{target}: no update lost");
        let mut seen = p.tag0.clone();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(
            seen.len(),
            UPDATERS * UPDATES,
            "{target}: each exactly once"
        );
        assert_eq!(
            p.visits,
            (4 * INCRS) as i64,
            "{target}: no increment undone"
        );
        Profile::delete(&redis, &key).unwrap();
    }
}

#[test]
fn update_under_contention_loses_nothing_async() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    for (target, redis) in targets() {
        let key = unique_key("update-async");
        rt.block_on(async {
            Profile::default().save_async(&redis, &key).await.unwrap();
            let tries = std::sync::Arc::new(Tries::default());
            let mut tasks = Vec::new();
            for _ in 0..UPDATERS {
                let h = Profile::handle(&redis, key.clone());
                let tries = tries.clone();
                tasks.push(tokio::spawn(async move {
                    for _ in 0..UPDATES {
                        let mut calls = 0;
                        let got = h.update_async(|p| {
                            calls += 1;
                            p.visits += 1
                        });
                        got.await.unwrap().unwrap();
                        tries.record(calls);
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            tries.check_no_retry(target);
        });
        let visits = Profile::handle(&redis, key.clone()).visits().unwrap();
        assert_eq!(visits, Some((UPDATERS * UPDATES) as i64), "{target}");
        Profile::delete(&redis, &key).unwrap();
    }
}

#[test]
fn tracked_save_writes_only_the_changed_fields() {
    for (target, redis) in targets() {
        let key = unique_key("tracked");
        ada(5).save(&redis, &key).unwrap();
        let mut user = User::load_tracked(&redis, &key).unwrap().unwrap();
        assert_eq!(
            *user,
            User {
                session: None,
                ..ada(5)
            },
            "{target}: derefs to the struct"
        );
        // Other writers, meanwhile: an increment, a field set, a raw write of an unknown field.
        let h = User::handle(&redis, key.clone());
        h.incr_visits(10).unwrap();
        h.set_plan("gold").unwrap();
        user.tags.push("chess".into());
        user.email = None;
        user.visits += 1;
        user.visits -= 1; // back to the loaded value: no change
        user.save().unwrap();
        let stored = User::load(&redis, &key).unwrap().unwrap();
        assert_eq!(stored.visits, 13, "{target}: the increment survives");
        assert_eq!(stored.plan, "gold", "{target}: the set survives");
        assert_eq!(stored.tags, ["math", "poetry", "chess"], "{target}");
        assert_eq!(stored.email, None, "{target}");
        // After a save, only later changes are written.
        h.set_tags(vec!["other".to_string()]).unwrap();
        user.name = "Countess".into();
        user.save().unwrap();
        let stored = User::load(&redis, &key).unwrap().unwrap();
        assert_eq!(
            stored.tags,
            ["other"],
            "{target}: saved tags are not sent again"
        );
        assert_eq!(stored.name, "Countess");

        // Deleted meanwhile: the save writes every field, so the struct loads again.
        assert!(User::delete(&redis, &key).unwrap());
        user.plan = "free".into();
        user.save().unwrap();
        assert_eq!(
            User::load(&redis, &key).unwrap().unwrap(),
            User {
                session: None,
                ..(*user).clone()
            },
            "{target}: no partial struct"
        );
        assert!(User::delete(&redis, &key).unwrap());
        // Nothing changed: nothing is sent, so nothing is re-created.
        user.save().unwrap();
        assert!(!User::exists(&redis, &key).unwrap(), "{target}");
        assert_eq!(User::load_tracked(&redis, &key).unwrap().map(|_| ()), None);
    }
}

#[test]
fn update_forms_and_edge_cases() {
    for (target, redis) in targets() {
        let key = unique_key("update-forms");
        assert_eq!(
            User::update(&redis, &key, |_| unreachable!("no value")).unwrap(),
            None::<()>,
            "{target}: no key, no call"
        );
        ada(6).save(&redis, &key).unwrap();
        assert_eq!(
            User::update(&redis, &key, |u| {
                u.visits *= 2;
                u.visits
            })
            .unwrap(),
            Some(6)
        );
        // A field missing from the hash (a default) is compared as missing.
        let mut con = raw(&redis);
        let _: () = con.hdel(&key, "\"tags\"").unwrap();
        User::update(&redis, &key, |u| {
            assert!(u.tags.is_empty());
            u.tags.push("new".into());
        })
        .unwrap();
        assert_eq!(User::handle(&redis, key.clone()).tags().unwrap(), ["new"]);

        // A concurrent write of a field the closure changes: it runs again on fresh data.
        let mut calls = 0;
        let h = User::handle(&redis, key.clone());
        let got = User::update(&redis, &key, |u| {
            calls += 1;
            if calls == 1 {
                h.incr_visits(100).unwrap(); // lands between the load and the write
            }
            u.visits += 1;
            u.visits
        })
        .unwrap();
        assert_eq!(
            (calls, got),
            (2, Some(107)),
            "{target}: retried once, nothing lost"
        );

        // A concurrent write of a field the closure does not change: no retry, not undone.
        let mut calls = 0;
        User::update(&redis, &key, |u| {
            calls += 1;
            h.incr_visits(1).unwrap();
            h.set_plan("gold").unwrap();
            u.name = "Ada II".into();
        })
        .unwrap();
        let stored = User::load(&redis, &key).unwrap().unwrap();
        assert_eq!(calls, 1, "{target}");
        assert_eq!(
            (stored.name.as_str(), stored.visits, stored.plan.as_str()),
            ("Ada II", 108, "gold")
        );

        // Deleted while the closure runs: nothing written, None.
        let got = User::update(&redis, &key, |u| {
            User::delete(&redis, &key).unwrap();
            u.name = "ghost".into();
        })
        .unwrap();
        assert_eq!(got, None, "{target}");
        assert!(
            !User::exists(&redis, &key).unwrap(),
            "{target}: not re-created"
        );

        // Keyed and handle forms.
        let id = rand::random::<u32>() as u64 + 4_000_000;
        ada(id).save_keyed(&redis).unwrap();
        assert_eq!(
            User::update_keyed(&redis, &id, |u| u.name.len()).unwrap(),
            Some("Ada Lovelace — Zoë".len())
        );
        User::update_keyed(&redis, &id, |u| u.visits = 40).unwrap();
        User::handle_keyed(&redis, &id)
            .update(|u| u.visits += 2)
            .unwrap();
        let mut t = User::load_tracked_keyed(&redis, &id).unwrap().unwrap();
        assert_eq!(t.visits, 42);
        t.visits = 0;
        t.save().unwrap();
        let mut t = User::handle_keyed(&redis, &id)
            .load_tracked()
            .unwrap()
            .unwrap();
        assert_eq!(t.visits, 0);
        t.plan = "team".into();
        t.save().unwrap();
        assert_eq!(User::handle_keyed(&redis, &id).plan().unwrap(), "team");
        assert!(User::delete_keyed(&redis, &id).unwrap());
    }
}

#[test]
fn update_gives_up_after_sixteen_conflicting_tries() {
    let redis = shared_server().redis();
    let key = unique_key("update-conflict");
    ada(7).save(&redis, &key).unwrap();
    let h = User::handle(&redis, key.clone());
    let mut calls = 0;
    let err = User::update(&redis, &key, |u| {
        calls += 1;
        h.incr_visits(1).unwrap(); // every try meets a change of the field it changes
        u.visits = -1;
    })
    .unwrap_err();
    assert_eq!(calls, 16);
    assert_eq!(err.key(), Some(key.as_str()));
    assert!(is_conflict(&err), "{err}");
    assert_eq!(h.visits().unwrap(), Some(3 + 16), "nothing written");
    h.delete().unwrap();
}

#[test]
fn tracked_and_update_on_a_foreign_type_are_typed_errors() {
    let redis = shared_server().redis();
    let key = unique_key("tracked-wrong");
    let mut con = raw(&redis);
    let _: () = con.rpush(&key, "x").unwrap();
    assert!(matches!(
        User::load_tracked(&redis, &key),
        Err(Error::WrongType { .. })
    ));
    assert!(matches!(
        User::update(&redis, &key, |u| u.visits += 1),
        Err(Error::WrongType { .. })
    ));
    let _: () = con.del(&key).unwrap();
    // A tracked value whose key became a list: the save is refused, nothing marked saved.
    ada(8).save(&redis, &key).unwrap();
    let mut user = User::load_tracked(&redis, &key).unwrap().unwrap();
    let _: () = con.del(&key).unwrap();
    let _: () = con.rpush(&key, "x").unwrap();
    user.name = "x".into();
    assert!(matches!(user.save(), Err(Error::WrongType { .. })));
    let _: () = con.del(&key).unwrap();
    user.save().unwrap();
    assert_eq!(
        User::handle(&redis, key.clone()).name().unwrap().as_deref(),
        Some("x")
    );
    User::delete(&redis, &key).unwrap();
}

/// What each tracked and update call sends, counted by the server.
#[test]
fn tracked_save_and_update_round_trips() {
    let server = RedisServer::start().unwrap();
    let redis = server.redis();
    let stats = || -> std::collections::HashMap<String, u64> {
        let info = server.cli(["INFO", "commandstats"]).unwrap();
        info.lines()
            .filter_map(|l| {
                let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(":calls=")?;
                Some((name.to_owned(), rest.split(',').next()?.parse().ok()?))
            })
            .filter(|(name, _)| name != "info")
            .collect()
    };
    let sent = |before: &std::collections::HashMap<String, u64>| -> Vec<(String, u64)> {
        let mut diff: Vec<(String, u64)> = stats()
            .into_iter()
            .filter_map(|(k, v)| {
                let d = v - before.get(&k).copied().unwrap_or(0);
                (d > 0).then_some((k, d))
            })
            .collect();
        diff.sort();
        diff
    };
    let owned = |v: &[(&str, u64)]| -> Vec<(String, u64)> {
        v.iter().map(|(k, n)| (k.to_string(), *n)).collect()
    };
    ada(1).save(&redis, "u").unwrap();
    // Warm both scripts up, so that the counts below are not the first EVALSHA's NOSCRIPT.
    let mut user = User::load_tracked(&redis, "u").unwrap().unwrap();
    user.visits += 1;
    user.save().unwrap();
    User::update(&redis, "u", |u| u.visits += 1).unwrap();

    let before = stats();
    let mut user = User::load_tracked(&redis, "u").unwrap().unwrap();
    assert_eq!(sent(&before), owned(&[("hgetall", 1)]));

    let before = stats();
    user.save().unwrap();
    user.visits += 1;
    user.visits -= 1; // back where it was: no change
    user.save().unwrap();
    assert_eq!(sent(&before), [], "an unchanged value sends nothing");

    let before = stats();
    user.tags.clear();
    user.save().unwrap();
    // One round trip (EVALSHA); inside it, one HSET.
    assert_eq!(
        sent(&before),
        owned(&[("evalsha", 1), ("exists", 1), ("hset", 1)])
    );

    let before = stats();
    User::update(&redis, "u", |u| u.name.clear()).unwrap();
    assert_eq!(
        sent(&before),
        owned(&[
            ("evalsha", 1),
            ("exists", 1),
            ("hget", 1),
            ("hgetall", 1),
            ("hset", 1)
        ]),
        "a load and one compare-and-set"
    );

    let before = stats();
    User::update(&redis, "u", |u| u.name.len()).unwrap();
    assert_eq!(
        sent(&before),
        owned(&[("hgetall", 1)]),
        "nothing changed: only the load"
    );
}

#[test]
fn tracked_and_update_async_forms() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    for (target, redis) in targets() {
        rt.block_on(async {
            let id = rand::random::<u32>() as u64 + 5_000_000;
            let key = User::key_for(&id);
            assert!(
                User::load_tracked_async(&redis, &key)
                    .await
                    .unwrap()
                    .is_none()
            );
            assert_eq!(
                User::update_async(&redis, &key, |u| u.visits += 1)
                    .await
                    .unwrap(),
                None
            );
            ada(id).save_keyed_async(&redis).await.unwrap();
            let mut t = User::load_tracked_keyed_async(&redis, &id)
                .await
                .unwrap()
                .unwrap();
            User::handle_keyed(&redis, &id)
                .incr_visits_async(5)
                .await
                .unwrap();
            t.name = "Async".into();
            t.save_async().await.unwrap();
            t.save_async().await.unwrap();
            let got = User::update_keyed_async(&redis, &id, |u| {
                u.tags.push("x".into());
                u.visits
            })
            .await
            .unwrap();
            assert_eq!(got, Some(8), "{target}: the increment was kept");
            let h = User::handle_keyed(&redis, &id);
            let mut t = h.load_tracked_async().await.unwrap().unwrap();
            assert_eq!((t.name.as_str(), t.tags.len()), ("Async", 3), "{target}");
            t.tags.clear();
            t.save_async().await.unwrap();
            assert_eq!(h.update_async(|u| u.tags.len()).await.unwrap(), Some(0));
            assert!(h.delete_async().await.unwrap());
        });
    }
}

#[test]
fn tracked_and_update_futures_are_send_and_static_with_owned_inputs() {
    fn send<T: Send>(_: T) {}
    fn send_static<T: Send + 'static>(_: T) {}
    let redis = shared_server().redis();
    let h = User::handle(&redis, "k");
    send(User::load_tracked_async(&redis, "k"));
    send(User::update_async(&redis, "k", |u| u.visits += 1));
    send(User::load_tracked_keyed_async(&redis, &1));
    send(User::update_keyed_async(&redis, &1, |u| u.visits));
    send(h.load_tracked_async());
    send(h.update_async(|u| u.name.clone()));
    let t = ada(1);
    send(t.save_async(&redis, "k"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut tracked = rt.block_on(async {
        ada(1).save_async(&redis, "k").await.unwrap();
        User::load_tracked_async(&redis, "k")
            .await
            .unwrap()
            .unwrap()
    });
    send(tracked.save_async());
    // Owned handles make 'static futures: spawnable.
    send_static(async move { h.update_async(|u| u.visits += 1).await });
    send_static(async move { tracked.save_async().await });
    User::delete(&redis, "k").unwrap();
}

/// Python's writes between a Rust load and its tracked save survive; Python reads the result.
#[test]
fn python_writes_survive_tracked_saves_and_updates() {
    let server = shared_server();
    let redis = server.redis();
    let id = rand::random::<u32>() as u64 + 6_000_000;
    ada(id).save_keyed(&redis).unwrap();
    let stdin = json!({"key": format!("user:{id}")}).to_string();
    let py_set = |field: &str, value: serde_json::Value| {
        let code = format!(
            "{PY_PRELUDE}d = RedisDict(redis=redis, key=args['key'])\n\
             d[{field:?}] = json.loads({:?})\nprint('ok')",
            value.to_string()
        );
        assert_eq!(run_python(&code, &server.url(), &stdin).trim(), "ok");
    };
    let mut user = User::load_tracked_keyed(&redis, &id).unwrap().unwrap();
    py_set("plan", json!("enterprise"));
    py_set("visits", json!(99));
    user.tags.push("rust".into());
    user.save().unwrap();
    User::update_keyed(&redis, &id, |u| {
        u.email = Some("countess@example.com".into());
    })
    .unwrap();
    let code = format!(
        "{PY_PRELUDE}d = RedisDict(redis=redis, key=args['key'])\n\
         print(json.dumps(d.to_dict(), sort_keys=True))"
    );
    let got: serde_json::Value =
        serde_json::from_str(run_python(&code, &server.url(), &stdin).trim()).unwrap();
    assert_eq!(
        got,
        json!({
            "id": id,
            "name": "Ada Lovelace — Zoë",
            "e-mail": "countess@example.com",
            "visits": 99,
            "tags": ["math", "poetry", "rust"],
            "plan": "enterprise",
            "address": {"city": "London", "zip": null},
        })
    );
    User::delete_keyed(&redis, &id).unwrap();
}

const PROCESSES: usize = 4;
const PROCESS_THREADS: usize = 4;
const PROCESS_UPDATES: usize = 25;

/// Whether an error is `update` giving up after conflicting tries.
fn is_conflict(e: &Error) -> bool {
    matches!(e, Error::Conflict { tries: 16, .. })
}

/// Updates from several processes at once: they do not share a line, so the compare-and-set
/// is what keeps every increment. An update that gives up (16 conflicting tries) must have
/// written nothing; the worker then tries again, so the total is exact either way.
#[test]
fn update_across_processes_loses_nothing() {
    let server = shared_server();
    let redis = server.redis();
    let key = unique_key("update-procs");
    Profile::default().save(&redis, &key).unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            std::process::Command::new(&exe)
                .args(["update_child", "--exact", "--ignored", "--nocapture"])
                .env("POTTERY_UPDATE_CHILD", format!("{}\n{key}", server.url()))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut runs = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        runs += stdout
            .lines()
            .find_map(|l| l.strip_prefix("closure runs: "))
            .unwrap_or_else(|| panic!("no report from the child: {stdout}"))
            .parse::<usize>()
            .unwrap();
    }
    let total = PROCESSES * PROCESS_THREADS * PROCESS_UPDATES;
    eprintln!("{total} updates from {PROCESSES} processes ran their closure {runs} times");
    assert_eq!(
        Profile::handle(&redis, key.clone()).visits().unwrap(),
        Some(total as i64),
        "every update counted exactly once ({runs} closure runs)"
    );
    Profile::delete(&redis, &key).unwrap();
}

/// One process of [`update_across_processes_loses_nothing`]; does nothing when run alone.
#[test]
#[ignore = "run in child processes by update_across_processes_loses_nothing"]
fn update_child() {
    let Ok(arg) = std::env::var("POTTERY_UPDATE_CHILD") else {
        return;
    };
    let (url, key) = arg.split_once('\n').unwrap();
    let redis = Redis::from_url(url).unwrap();
    let runs = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..PROCESS_THREADS {
            s.spawn(|| {
                for _ in 0..PROCESS_UPDATES {
                    loop {
                        let got = Profile::update(&redis, key, |p| {
                            runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            p.visits += 1
                        });
                        match got {
                            Ok(Some(())) => break,
                            Err(e) if is_conflict(&e) => continue,
                            other => panic!("{other:?}"),
                        }
                    }
                }
            });
        }
    });
    println!("closure runs: {}", runs.into_inner());
}
