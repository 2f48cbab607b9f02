//! Interop with Python pottery 3.0.1 on the same server: each side reads what the other
//! writes, and both write the same bytes for the same data.

use std::collections::HashMap;

use pottery::RedisDict;
use pottery::testing::shared_server;
use pottery_tests::{run_python, unique_key};
use redis::Commands;
use serde::{Deserialize, Serialize};
use serde_json::json;

const PY_PRELUDE: &str = r#"
import json, math, os, sys
from redis import Redis
from pottery import RedisDict
redis = Redis.from_url(os.environ['REDIS_URL'])
args = json.loads(sys.stdin.read())
"#;

/// The values Python writes: unicode, floats, nested lists and objects, None and bools.
const PY_DATA: &str = r#"
data = {
    'unicode': 'héllo wörld — 日本語 😀',
    'float': 2.0625,
    'big float': 1e16,
    'small float': 1e-05,
    'negative zero': -0.0,
    'int': 42,
    'big int': 2**100,
    'nested': {'list': [1, 2.5, 'three', None, True, False], 'obj': {'z': 1, 'a': [{}]}},
    'none': None,
    'true': True,
    'false': False,
    'empty list': [],
    'control': 'tab\tnewline\nquote"backslash\\',
}
"#;

fn rust_data() -> Vec<(String, serde_json::Value)> {
    vec![
        ("unicode".into(), json!("héllo wörld — 日本語 😀")),
        ("float".into(), json!(2.0625)),
        ("big float".into(), json!(1e16)),
        ("small float".into(), json!(1e-05)),
        ("negative zero".into(), json!(-0.0)),
        ("int".into(), json!(42)),
        ("big int".into(), serde_json::Value::Null), // replaced below: 2**100 needs u128
        (
            "nested".into(),
            json!({"list": [1, 2.5, "three", null, true, false], "obj": {"z": 1, "a": [{}]}}),
        ),
        ("none".into(), json!(null)),
        ("true".into(), json!(true)),
        ("false".into(), json!(false)),
        ("empty list".into(), json!([])),
        ("control".into(), json!("tab\tnewline\nquote\"backslash\\")),
    ]
}

/// Values of any shape, including the 2**100 integer that serde_json::Value cannot hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
enum Any {
    Big(u128),
    Json(serde_json::Value),
}

fn rust_any_data() -> Vec<(String, Any)> {
    rust_data()
        .into_iter()
        .map(|(k, v)| {
            if k == "big int" {
                (k, Any::Big(1u128 << 100))
            } else {
                (k, Any::Json(v))
            }
        })
        .collect()
}

#[test]
fn python_writes_rust_reads() {
    let server = shared_server();
    let key = unique_key("py-writes");
    let code = format!(
        "{PY_PRELUDE}{PY_DATA}\nRedisDict(data, redis=redis, key=args['key'])\nprint('ok')"
    );
    assert_eq!(
        run_python(&code, &server.url(), &json!({"key": key}).to_string()).trim(),
        "ok"
    );
    let d: RedisDict<String, serde_json::Value> = RedisDict::new(&server.redis(), key.clone());
    // 2**100 does not fit a serde_json::Value: reading it is an error, not a rounded float.
    assert!(matches!(
        d.get("big int"),
        Err(pottery::Error::Codec { .. })
    ));
    assert!(d.to_hash_map().is_err());
    let want: HashMap<String, serde_json::Value> = rust_data().into_iter().collect();
    assert_eq!(d.len().unwrap(), want.len());
    let mut got = HashMap::new();
    for (k, v) in &want {
        if k != "big int" {
            let value = d.get(k).unwrap();
            assert_eq!(value.as_ref(), Some(v), "{k}");
            got.insert(k.clone(), value.unwrap());
        }
    }
    assert!(got["negative zero"].as_f64().unwrap().is_sign_negative());
    // 2**100 is exact in a u128.
    let ints: RedisDict<String, u128> = RedisDict::new(&server.redis(), key);
    assert_eq!(ints.get("big int").unwrap(), Some(1u128 << 100));
    assert_eq!(
        d.get("unicode").unwrap(),
        Some(json!("héllo wörld — 日本語 😀"))
    );
    d.clear().unwrap();
}

#[test]
fn rust_writes_python_reads() {
    let server = shared_server();
    let key = unique_key("rust-writes");
    let d: RedisDict<String, Any> = RedisDict::new(&server.redis(), key.clone());
    d.extend(rust_any_data()).unwrap();
    let code = format!(
        "{PY_PRELUDE}{PY_DATA}\nd = RedisDict(redis=redis, key=args['key'])\n\
         got = d.to_dict()\n\
         assert got == data, (got, data)\n\
         assert math.copysign(1, got['negative zero']) == -1\n\
         assert d['big int'] == 2**100 and isinstance(d['float'], float)\n\
         print(len(got))"
    );
    let out = run_python(&code, &server.url(), &json!({"key": key}).to_string());
    assert_eq!(out.trim(), "13");
    d.clear().unwrap();
}

#[test]
fn both_sides_write_identical_bytes() {
    let server = shared_server();
    let py_key = unique_key("bytes-py");
    let rs_key = unique_key("bytes-rs");
    let code = format!(
        "{PY_PRELUDE}{PY_DATA}\nd = RedisDict(redis=redis, key=args['key'])\n\
         d.update(data)\n\
         d2 = RedisDict(redis=redis, key=args['key'] + ':ints')\n\
         d2.update({{10: 'ten', 9: 'nine', -1: [1.0, float('nan'), float('inf'), -float('inf')]}})\n\
         print('ok')"
    );
    run_python(&code, &server.url(), &json!({"key": py_key}).to_string());
    let redis = server.redis();
    let d: RedisDict<String, Any> = RedisDict::new(&redis, rs_key.clone());
    d.extend(rust_any_data()).unwrap();
    let ints: RedisDict<i64, serde_json::Value> = RedisDict::new(&redis, format!("{rs_key}:ints"));
    ints.insert(10, json!("ten")).unwrap();
    ints.insert(9, json!("nine")).unwrap();
    // NaN and infinities: a typed value, since serde_json::Value cannot hold them.
    let floats: RedisDict<i64, Vec<f64>> = RedisDict::new(&redis, format!("{rs_key}:ints"));
    floats
        .insert(-1, vec![1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY])
        .unwrap();

    let mut conn = redis.connection().unwrap();
    for (a, b) in [
        (py_key.clone(), rs_key.clone()),
        (format!("{py_key}:ints"), format!("{rs_key}:ints")),
    ] {
        let from_python: HashMap<Vec<u8>, Vec<u8>> = conn.hgetall(&a).unwrap();
        let from_rust: HashMap<Vec<u8>, Vec<u8>> = conn.hgetall(&b).unwrap();
        assert!(!from_python.is_empty());
        assert_eq!(from_python, from_rust, "{a} vs {b}");
        let _: () = conn.del(&[a, b]).unwrap();
    }
    // And Python reads the NaN Rust wrote as a NaN.
    let check = format!(
        "{PY_PRELUDE}\nimport math\nd = RedisDict(redis=redis, key=args['key'])\nd[-1] = [float('nan')]\nprint(math.isnan(d[-1][0]))"
    );
    let out = run_python(
        &check,
        &server.url(),
        &json!({"key": unique_key("nan")}).to_string(),
    );
    assert_eq!(out.trim(), "True");
}

#[tokio::test]
async fn async_twin_interoperates_too() {
    let server = shared_server();
    let key = unique_key("py-async");
    let d: pottery::aio::RedisDict<String, Vec<Option<f64>>> =
        pottery::aio::RedisDict::new(&server.redis(), key.clone());
    d.insert("series".into(), vec![Some(0.5), None, Some(1e22)])
        .await
        .unwrap();
    let code = format!(
        "{PY_PRELUDE}\nd = RedisDict(redis=redis, key=args['key'])\nassert d['series'] == [0.5, None, 1e22]\nd['from python'] = [None, -2.5]\nprint('ok')"
    );
    assert_eq!(
        run_python(&code, &server.url(), &json!({"key": key}).to_string()).trim(),
        "ok"
    );
    assert_eq!(
        d.get("from python").await.unwrap(),
        Some(vec![None, Some(-2.5)])
    );
    d.clear().await.unwrap();
}

const PY_COLLECTIONS: &str = r#"
from pottery import RedisSet, RedisList, RedisDeque, RedisCounter
k = args['key']
"#;

#[test]
fn sets_lists_deques_counters_both_ways_and_byte_identical() {
    use pottery::{RedisCounter, RedisDeque, RedisList, RedisSet};
    let server = shared_server();
    let redis = server.redis();
    let py = unique_key("py-coll");
    let rs = unique_key("rs-coll");

    // Python writes; Rust reads.
    let code = format!(
        "{PY_PRELUDE}{PY_COLLECTIONS}
RedisSet(['a', 1, 2.5, None, 'é'], redis=redis, key=k + ':set')
RedisList([1, 'two', [3], {{'four': 4}}, 0, 0], redis=redis, key=k + ':list')
RedisDeque('abc', maxlen=5, redis=redis, key=k + ':deque').appendleft('z')
RedisCounter('abracadabra', redis=redis, key=k + ':counter')
print('ok')"
    );
    assert_eq!(
        run_python(&code, &server.url(), &json!({"key": py}).to_string()).trim(),
        "ok"
    );
    let set: RedisSet<serde_json::Value> = RedisSet::new(&redis, format!("{py}:set"));
    let want: std::collections::HashSet<String> = ["\"a\"", "1", "2.5", "null", "\"\\u00e9\""]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut conn0 = redis.connection().unwrap();
    let got: std::collections::HashSet<String> = conn0.smembers(set.key()).unwrap();
    assert_eq!(got, want);
    assert!(set.contains(&json!("é")).unwrap());
    assert!(set.contains(&json!(2.5)).unwrap());
    let list: RedisList<serde_json::Value> = RedisList::new(&redis, format!("{py}:list"));
    assert_eq!(
        list.to_vec().unwrap(),
        [
            json!(1),
            json!("two"),
            json!([3]),
            json!({"four": 4}),
            json!(0),
            json!(0)
        ]
    );
    let deque: RedisDeque<String> =
        RedisDeque::with_maxlen(&redis, format!("{py}:deque"), 5).unwrap();
    assert_eq!(deque.to_vec_deque().unwrap(), ["z", "a", "b", "c"]);
    let counter: RedisCounter<String> = RedisCounter::new(&redis, format!("{py}:counter"));
    assert_eq!(counter.get("a").unwrap(), 5);
    assert_eq!(
        counter.most_common(Some(1)).unwrap(),
        [("a".to_string(), 5)]
    );

    // Rust writes the same data; the bytes are the same.
    let rset: RedisSet<serde_json::Value> = RedisSet::new(&redis, format!("{rs}:set"));
    rset.extend([json!("a"), json!(1), json!(2.5), json!(null), json!("é")])
        .unwrap();
    let rlist: RedisList<serde_json::Value> = RedisList::new(&redis, format!("{rs}:list"));
    rlist
        .extend([
            json!(1),
            json!("two"),
            json!([3]),
            json!({"four": 4}),
            json!(0),
            json!(0),
        ])
        .unwrap();
    let rdeque: RedisDeque<String> =
        RedisDeque::with_maxlen(&redis, format!("{rs}:deque"), 5).unwrap();
    rdeque.extend(["a", "b", "c"].map(String::from)).unwrap();
    rdeque.push_front("z".into()).unwrap();
    let rcounter: RedisCounter<String> = RedisCounter::new(&redis, format!("{rs}:counter"));
    rcounter
        .update("abracadabra".chars().map(String::from))
        .unwrap();
    let mut conn = redis.connection().unwrap();
    let smembers = |conn: &mut pottery::PooledConnection,
                    k: String|
     -> std::collections::HashSet<Vec<u8>> { conn.smembers(k).unwrap() };
    assert_eq!(
        smembers(&mut conn, format!("{py}:set")),
        smembers(&mut conn, format!("{rs}:set"))
    );
    for suffix in ["list", "deque"] {
        let a: Vec<Vec<u8>> = conn.lrange(format!("{py}:{suffix}"), 0, -1).unwrap();
        let b: Vec<Vec<u8>> = conn.lrange(format!("{rs}:{suffix}"), 0, -1).unwrap();
        assert_eq!(a, b, "{suffix}");
    }
    let a: HashMap<Vec<u8>, Vec<u8>> = conn.hgetall(format!("{py}:counter")).unwrap();
    let b: HashMap<Vec<u8>, Vec<u8>> = conn.hgetall(format!("{rs}:counter")).unwrap();
    assert_eq!(a, b);

    // Python reads what Rust wrote, and sees Rust's later changes.
    rlist.insert(-1, json!("inserted")).unwrap();
    rcounter.incr("z", 3).unwrap();
    let check = format!(
        "{PY_PRELUDE}{PY_COLLECTIONS}
assert RedisSet(redis=redis, key=k + ':set').to_set() == {{'a', 1, 2.5, None, 'é'}}
assert RedisList(redis=redis, key=k + ':list').to_list() == [1, 'two', [3], {{'four': 4}}, 0, 'inserted', 0]
assert list(RedisDeque(redis=redis, key=k + ':deque', maxlen=5)) == ['z', 'a', 'b', 'c']
c = RedisCounter(redis=redis, key=k + ':counter')
assert c['a'] == 5 and c['z'] == 3, c.to_counter()
c['a'] += 1
print('ok')"
    );
    assert_eq!(
        run_python(&check, &server.url(), &json!({"key": rs}).to_string()).trim(),
        "ok"
    );
    assert_eq!(rcounter.get("a").unwrap(), 6);
    for base in [&py, &rs] {
        for suffix in ["set", "list", "deque", "counter"] {
            let _: () = conn.del(format!("{base}:{suffix}")).unwrap();
        }
    }
}

#[test]
fn numbers_beyond_rust_types_round_trip_through_codec_value() {
    use pottery::codec::Value;
    let server = shared_server();
    let key = unique_key("py-numbers");
    let code = format!(
        "{PY_PRELUDE}\nRedisDict({{'nan': float('nan'), 'inf': float('inf'), 2**200: -(2**70), \
         'big': [2**64, -(2**63) - 1, 2**127], 'x': 1.0}}, redis=redis, key=args['key'])\nprint('ok')"
    );
    let url = server.url();
    assert_eq!(
        run_python(&code, &url, &json!({"key": key}).to_string()).trim(),
        "ok"
    );
    let mut conn = server.redis().connection().unwrap();
    let before: HashMap<Vec<u8>, Vec<u8>> = conn.hgetall(&key).unwrap();
    let d: RedisDict<Value, Value> = RedisDict::new(&server.redis(), key.clone());
    let all: Vec<(Value, Value)> = d.iter().collect::<Result<_, _>>().unwrap();
    assert_eq!(all.len(), 5);
    // serde_json::Value refuses them rather than reading null or a rounded float.
    let json_view: RedisDict<String, serde_json::Value> =
        RedisDict::new(&server.redis(), key.clone());
    assert!(json_view.get("nan").is_err());
    // Written back under a new key: the same fields and values, byte for byte.
    let copy_key = unique_key("py-numbers-copy");
    let copy: RedisDict<Value, Value> = RedisDict::new(&server.redis(), copy_key.clone());
    copy.extend(all).unwrap();
    let after: HashMap<Vec<u8>, Vec<u8>> = conn.hgetall(&copy_key).unwrap();
    assert_eq!(after, before);
    // And Python reads the copy as it wrote the original.
    let check = format!(
        "{PY_PRELUDE}\nd = RedisDict(redis=redis, key=args['key']).to_dict()\n\
         assert d[2**200] == -(2**70) and d['big'] == [2**64, -(2**63) - 1, 2**127], d\n\
         assert math.isnan(d['nan']) and d['inf'] == math.inf and d['x'] == 1.0\nprint('ok')"
    );
    assert_eq!(
        run_python(&check, &url, &json!({"key": copy_key}).to_string()).trim(),
        "ok"
    );
    d.clear().unwrap();
    copy.clear().unwrap();
}

/// Counter arithmetic at the edges of i64: for every operator, Rust gives exactly Python's
/// result, or (when Python's result holds a count beyond i64) a typed error naming the key,
/// the field and the exact count, never a capped or wrapped number.
#[test]
fn counter_arithmetic_at_i64_edges_is_pythons_or_refused() {
    use pottery::{Error, RedisCounter};
    let server = shared_server();
    let redis = server.redis();
    let max = i64::MAX;
    let min = i64::MIN;
    type Counts = Vec<(&'static str, i64)>;
    let cases: Vec<(Counts, Counts)> = vec![
        (vec![("x", max)], vec![("x", 3), ("y", min)]),
        (vec![("x", min)], vec![("x", -1)]),
        (vec![("x", max), ("y", min)], vec![("x", max), ("y", max)]),
        (vec![("x", -5), ("z", max)], vec![("x", min), ("z", min)]),
        (vec![("x", 1)], vec![("x", min), ("w", min + 1)]),
    ];
    for (i, (c, o)) in cases.into_iter().enumerate() {
        let ck = unique_key("py-ctr-c");
        let ok = unique_key("py-ctr-o");
        let code = format!(
            "{PY_PRELUDE}from pottery import RedisCounter
c = RedisCounter(dict(args['c']), redis=redis, key=args['ck'])
o = RedisCounter(dict(args['o']), redis=redis, key=args['ok'])
out = {{}}
for name, r in (('add', c + o), ('sub', c - o), ('union', c | o), ('intersection', c & o)):
    out[name] = {{k: str(v) for k, v in r.items()}}
print(json.dumps(out))"
        );
        let input = json!({"c": c, "o": o, "ck": ck, "ok": ok}).to_string();
        let py: HashMap<String, HashMap<String, String>> =
            serde_json::from_str(run_python(&code, &server.url(), &input).trim()).unwrap();
        let rc: RedisCounter<String> = RedisCounter::new(&redis, ck.clone());
        let ro: RedisCounter<String> = RedisCounter::new(&redis, ok.clone());
        for (name, got) in [
            ("add", rc.add(&ro)),
            ("sub", rc.sub(&ro)),
            ("union", rc.union(&ro)),
            ("intersection", rc.intersection(&ro)),
        ] {
            let want = &py[name];
            let fits: Option<HashMap<String, i64>> = want
                .iter()
                .map(|(k, v)| v.parse::<i64>().ok().map(|v| (k.clone(), v)))
                .collect();
            match (fits, got) {
                (Some(want), Ok(got)) => assert_eq!(got, want, "case {i} {name}"),
                (None, Err(err)) => {
                    assert!(matches!(err, Error::Codec { .. }), "case {i} {name}: {err}");
                    assert_eq!(err.key(), Some(ck.as_str()));
                    let big = want.values().find(|v| v.parse::<i64>().is_err()).unwrap();
                    assert!(err.to_string().contains(big.as_str()), "{err} lacks {big}");
                }
                (want, got) => panic!("case {i} {name}: Python {want:?}, Rust {got:?}"),
            }
        }
        rc.clear().unwrap();
        ro.clear().unwrap();
    }
}

/// Python sorts a dict by its original keys before they become strings, so int-keyed dicts
/// are stored in numeric order (`{"9": "b", "10": "a"}`). `codec::Value` reads and writes
/// them back byte for byte: as a dict value, a set member and a Bloom filter item.
#[test]
fn int_keyed_objects_round_trip_byte_for_byte_through_value() {
    use pottery::codec::{Value, encode};
    use pottery::{BloomFilter, RedisSet};
    let server = shared_server();
    let redis = server.redis();
    let k = unique_key("py-intkeys");
    let code = format!(
        "{PY_PRELUDE}from pottery import RedisSet, BloomFilter
k = args['key']
objs = [{{9: 'b', 10: 'a'}}, [{{2: {{10: 1, 9: 2}}, 1: None}}, {{'x': {{100: [], -5: 1.5}}}}], {{1.5: 0, 1: 1, 10: 2}}]
d = RedisDict(redis=redis, key=k + ':dict')
s = RedisSet(redis=redis, key=k + ':set')
b = BloomFilter(num_elements=100, false_positives=0.01, redis=redis, key=k + ':bloom')
for i, o in enumerate(objs):
    d[i] = o
    s.add(o)
    b.update([o])
print(json.dumps([json.dumps(o, sort_keys=True) for o in objs]))"
    );
    let out = run_python(&code, &server.url(), &json!({"key": k}).to_string());
    let python_bytes: Vec<String> = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(python_bytes[0], r#"{"9": "b", "10": "a"}"#);

    // Dict values: read as Value, encoded back, the same bytes; written under a new key, the
    // same hash.
    let d: RedisDict<i64, Value> = RedisDict::new(&redis, format!("{k}:dict"));
    let copy: RedisDict<i64, Value> = RedisDict::new(&redis, format!("{k}:dict-copy"));
    for (i, want) in python_bytes.iter().enumerate() {
        let v = d.get(&(i as i64)).unwrap().unwrap();
        assert_eq!(&encode(&v).unwrap(), want);
        copy.insert(i as i64, v).unwrap();
    }
    let mut conn = redis.connection().unwrap();
    let a: HashMap<Vec<u8>, Vec<u8>> = conn.hgetall(format!("{k}:dict")).unwrap();
    let b: HashMap<Vec<u8>, Vec<u8>> = conn.hgetall(format!("{k}:dict-copy")).unwrap();
    assert_eq!(a, b);

    // Set members: every member read is found again, and written to a new set gives the same
    // members.
    let s: RedisSet<Value> = RedisSet::new(&redis, format!("{k}:set"));
    let members: Vec<Value> = s.iter().collect::<Result<_, _>>().unwrap();
    assert_eq!(members.len(), 3);
    for m in &members {
        assert!(s.contains(m).unwrap(), "{m:?}");
    }
    let s2: RedisSet<Value> = RedisSet::new(&redis, format!("{k}:set-copy"));
    s2.extend(members.clone()).unwrap();
    let a: std::collections::HashSet<Vec<u8>> = conn.smembers(format!("{k}:set")).unwrap();
    let b: std::collections::HashSet<Vec<u8>> = conn.smembers(format!("{k}:set-copy")).unwrap();
    assert_eq!(a, b);

    // Bloom items: the values read set exactly Python's bits.
    let bloom: BloomFilter<Value> =
        BloomFilter::new(&redis, format!("{k}:bloom-copy"), 100, 0.01).unwrap();
    for m in &members {
        bloom.add(m).unwrap();
    }
    let a: Vec<u8> = conn.get(format!("{k}:bloom")).unwrap();
    let b: Vec<u8> = conn.get(format!("{k}:bloom-copy")).unwrap();
    assert_eq!(a, b);
    for key in [
        "dict",
        "dict-copy",
        "set",
        "set-copy",
        "bloom",
        "bloom-copy",
    ] {
        let _: () = conn.del(format!("{k}:{key}")).unwrap();
    }
}

/// Python's str may hold a lone surrogate ('\ud800', stored as "\ud800"). A Rust String
/// cannot: reading one into String is a typed error naming the key, and `codec::Value`
/// carries it (its escaped form) so it is read, compared and written back unchanged.
#[test]
fn lone_surrogates_are_refused_by_string_and_kept_by_value() {
    use pottery::codec::{Value, encode};
    use pottery::{Error, RedisSet};
    let server = shared_server();
    let redis = server.redis();
    let k = unique_key("py-surrogate");
    let code = format!(
        "{PY_PRELUDE}from pottery import RedisSet
k = args['key']
d = RedisDict(redis=redis, key=k + ':dict')
d['\\ud800'] = ['a\\udfffb', '\\ud83d\\ude00', 1]
d['plain'] = 'x\\udc00'
RedisSet(['\\ud800', 'ok'], redis=redis, key=k + ':set')
print('ok')"
    );
    assert_eq!(
        run_python(&code, &server.url(), &json!({"key": k}).to_string()).trim(),
        "ok"
    );
    let strings: RedisDict<String, String> = RedisDict::new(&redis, format!("{k}:dict"));
    let err = strings.get("plain").unwrap_err();
    assert!(matches!(err, Error::Codec { .. }), "{err}");
    assert_eq!(err.key(), Some(format!("{k}:dict").as_str()));
    assert!(err.to_string().contains("lone surrogate"), "{err}");

    let d: RedisDict<Value, Value> = RedisDict::new(&redis, format!("{k}:dict"));
    let all: Vec<(Value, Value)> = d.iter().collect::<Result<_, _>>().unwrap();
    let field = Value::Escaped(r"\ud800".into());
    let (_, v) = all.iter().find(|(f, _)| *f == field).unwrap();
    assert_eq!(v[0], Value::Escaped(r"a\udfffb".into()));
    assert_eq!(v[1], Value::Str("😀".into()));
    assert_eq!(
        d.get(&Value::Str("plain".into())).unwrap(),
        Some(Value::Escaped(r"x\udc00".into()))
    );
    assert!(d.contains_key(&field).unwrap());
    let copy: RedisDict<Value, Value> = RedisDict::new(&redis, format!("{k}:dict-copy"));
    copy.extend(all).unwrap();
    let mut conn = redis.connection().unwrap();
    let a: HashMap<Vec<u8>, Vec<u8>> = conn.hgetall(format!("{k}:dict")).unwrap();
    let b: HashMap<Vec<u8>, Vec<u8>> = conn.hgetall(format!("{k}:dict-copy")).unwrap();
    assert_eq!(a, b);

    let s: RedisSet<Value> = RedisSet::new(&redis, format!("{k}:set"));
    assert!(s.contains(&Value::Escaped(r"\ud800".into())).unwrap());
    assert_eq!(
        encode(&Value::Escaped(r"\ud800".into())).unwrap(),
        r#""\ud800""#
    );
    // Python reads the copy as it wrote the original.
    let check = format!(
        "{PY_PRELUDE}d = RedisDict(redis=redis, key=args['key'])
assert d['\\ud800'] == ['a\\udfffb', '\\U0001f600', 1] and d['plain'] == 'x\\udc00', d.to_dict()
print('ok')"
    );
    assert_eq!(
        run_python(
            &check,
            &server.url(),
            &json!({"key": format!("{k}:dict-copy")}).to_string()
        )
        .trim(),
        "ok"
    );
    for key in ["dict", "dict-copy", "set"] {
        let _: () = conn.del(format!("{k}:{key}")).unwrap();
    }
}
