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
        info.lines()
            .filter(|l| l.starts_with("cmdstat_") && !l.starts_with("cmdstat_info"))
            .filter_map(|l| {
                l.split("calls=")
                    .nth(1)?
                    .split(',')
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .sum()
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
