//! The codec against fixed vectors and against CPython's own `json.dumps`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use pottery::codec::{decode, encode};
use pottery_tests::run_python;
use rand::prelude::*;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Point {
    y: i32,
    x: i32,
    label: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
enum Shape {
    Empty,
    Circle(f64),
    Rect(u32, u32),
    Named { name: String, sides: u8 },
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Meters(f64);

macro_rules! vectors {
    ($($value:expr => $want:expr,)*) => {{
        let mut n = 0;
        $(
            n += 1;
            assert_eq!(encode(&$value).unwrap(), $want, "encoding {}", stringify!($value));
        )*
        n
    }};
}

#[test]
fn fixed_vectors() {
    let int_keys: HashMap<i32, &str> = [(10, "a"), (9, "b"), (-1, "c")].into();
    let u64_keys: BTreeMap<u64, u8> = [(100, 1), (20, 2), (3, 3)].into();
    let float_keys: Vec<(f64, i32)> = vec![(2.5, 1), (-1.0, 2), (1e20, 3)];
    let bool_keys: HashMap<bool, i32> = [(true, 1), (false, 0)].into();
    let unicode_keys: BTreeMap<&str, i32> = [("é", 1), ("z", 2), ("A", 3), ("😀", 4)].into();
    let set: BTreeSet<i32> = [3, 1, 2].into();
    let n = vectors! {
        () => "null",
        None::<i32> => "null",
        Some(5) => "5",
        true => "true",
        false => "false",
        0 => "0",
        -17i8 => "-17",
        u64::MAX => "18446744073709551615",
        i64::MIN => "-9223372036854775808",
        i128::MAX => "170141183460469231731687303715884105727",
        u128::MAX => "340282366920938463463374607431768211455",
        1.0 => "1.0",
        -0.0 => "-0.0",
        0.0 => "0.0",
        0.1 => "0.1",
        1e16 => "1e+16",
        1e15 => "1000000000000000.0",
        1e-5 => "1e-05",
        0.0001 => "0.0001",
        1.5e300 => "1.5e+300",
        5e-324 => "5e-324",
        123456789.123 => "123456789.123",
        f64::NAN => "NaN",
        f64::INFINITY => "Infinity",
        f64::NEG_INFINITY => "-Infinity",
        0.1f32 => "0.1",
        "" => "\"\"",
        "plain" => "\"plain\"",
        "quote\" backslash\\ slash/" => r#""quote\" backslash\\ slash/""#,
        "\n\r\t\u{8}\u{c}" => r#""\n\r\t\b\f""#,
        "\u{1}\u{1f}\u{7f}" => r#""\u0001\u001f\u007f""#,
        "é" => r#""\u00e9""#,
        "日本" => r#""\u65e5\u672c""#,
        "😀" => r#""\ud83d\ude00""#,
        "\u{2028}" => r#""\u2028""#,
        'x' => "\"x\"",
        vec![1, 2, 3] => "[1, 2, 3]",
        Vec::<i32>::new() => "[]",
        (1, "a", 2.0) => r#"[1, "a", 2.0]"#,
        vec![vec![1], vec![]] => "[[1], []]",
        BTreeMap::<String, i32>::new() => "{}",
        int_keys => r#"{"-1": "c", "9": "b", "10": "a"}"#,
        u64_keys => r#"{"3": 3, "20": 2, "100": 1}"#,
        float_keys.into_iter().collect::<VecMap<f64, i32>>() => r#"{"-1.0": 2, "2.5": 1, "1e+20": 3}"#,
        bool_keys => r#"{"false": 0, "true": 1}"#,
        unicode_keys => r#"{"A": 3, "z": 2, "\u00e9": 1, "\ud83d\ude00": 4}"#,
        set => "[1, 2, 3]",
        Point { y: 2, x: 1, label: None } => r#"{"label": null, "x": 1, "y": 2}"#,
        Shape::Empty => r#""Empty""#,
        Shape::Circle(1.0) => r#"{"Circle": 1.0}"#,
        Shape::Rect(2, 3) => r#"{"Rect": [2, 3]}"#,
        Shape::Named { name: "tri".into(), sides: 3 } => r#"{"Named": {"name": "tri", "sides": 3}}"#,
        Meters(2.0) => "2.0",
        serde_json::json!({"b": [1, 2.5, null], "a": {"d": true, "c": "x"}}) => r#"{"a": {"c": "x", "d": true}, "b": [1, 2.5, null]}"#,
        b"ab".as_slice() => "[97, 98]",
    };
    assert!(n >= 40, "only {n} vectors");
}

/// A map that keeps insertion order, to feed keys of any type to the encoder.
struct VecMap<K, V>(Vec<(K, V)>);

impl<K, V> FromIterator<(K, V)> for VecMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        VecMap(iter.into_iter().collect())
    }
}

impl<K: Serialize, V: Serialize> Serialize for VecMap<K, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

#[test]
fn unencodable_maps_are_errors_not_panics() {
    let mixed: VecMap<serde_json::Value, i32> =
        vec![(serde_json::json!("a"), 1), (serde_json::json!(1), 2)]
            .into_iter()
            .collect();
    assert!(encode(&mixed).unwrap_err().message().contains("TypeError"));
    let tuple_keys: HashMap<(i32, i32), i32> = [((1, 2), 3)].into();
    assert!(encode(&tuple_keys).is_err());
    let vec_keys: VecMap<Vec<i32>, i32> = vec![(vec![1], 1)].into_iter().collect();
    assert!(encode(&vec_keys).is_err());
}

#[test]
fn decoder_reads_python_and_other_json() {
    let v: Vec<f64> = decode(b"[NaN, Infinity, -Infinity, 1, -0.0]").unwrap();
    assert!(v[0].is_nan());
    assert_eq!(v[1..], [f64::INFINITY, f64::NEG_INFINITY, 1.0, -0.0]);
    // Python reads 1e400 as inf and writes it back as Infinity: an error here, never a
    // replaced value (pottery::codec::Value keeps it).
    assert!(decode::<Vec<f64>>(b"[1e400]").is_err());
    let m: HashMap<i64, String> = decode(br#"{"-1": "c", "10": "a"}"#).unwrap();
    assert_eq!(m[&10], "a");
    let b: HashMap<bool, u8> = decode(br#"{"true": 1}"#).unwrap();
    assert_eq!(b[&true], 1);
    let p: Point = decode(br#"{ "x" : 1 ,"y":2, "label":"\u00e9\ud83d\ude00" }"#).unwrap();
    assert_eq!(p.label.as_deref(), Some("é😀"));
    let shapes: Vec<Shape> = decode(
        br#"["Empty", {"Circle": 2.0}, {"Rect": [1, 2]}, {"Named": {"name": "sq", "sides": 4}}]"#,
    )
    .unwrap();
    assert_eq!(
        shapes[3],
        Shape::Named {
            name: "sq".into(),
            sides: 4
        }
    );
    let big: u128 = decode(b"340282366920938463463374607431768211455").unwrap();
    assert_eq!(big, u128::MAX);
    // 10**39 has no exact float (it would be rounded); 2**200 has one.
    assert!(decode::<f64>(b"1000000000000000000000000000000000000000").is_err());
    let huge: f64 =
        decode(b"1606938044258990275541962092341162602522202993782792835301376").unwrap();
    assert_eq!(huge, 2f64.powi(200));
    let n: f64 = decode(b"3").unwrap();
    assert_eq!(n, 3.0);
    let any: serde_json::Value = decode(br#"{"a": [1, "x", null, true]}"#).unwrap();
    assert_eq!(any, serde_json::json!({"a": [1, "x", null, true]}));
    let unit: () = decode(b"null").unwrap();
    assert_eq!(unit, ());
}

#[test]
fn decoder_rejects_garbage_without_panicking() {
    let bad: &[&[u8]] = &[
        b"",
        b"{",
        b"[1,",
        b"[1 2]",
        b"\"abc",
        b"nul",
        b"01",
        b"1.",
        b"-",
        b"1e",
        b"{\"a\" 1}",
        b"{1: 2}",
        b"\"\\ud800\"",
        b"\"\\ud800\\u0041\"",
        b"\"\\x\"",
        b"[1] x",
        b"\xff\xfe",
        b"\"\xff\"",
        b"NaNa",
        b"\"\\u12G4\"",
    ];
    for input in bad {
        assert!(
            decode::<serde_json::Value>(input).is_err(),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
    let deep = "[".repeat(100_000);
    assert!(decode::<serde_json::Value>(deep.as_bytes()).is_err());
    assert!(decode::<i8>(b"300").is_err());
    assert!(decode::<u32>(b"-1").is_err());
    assert!(decode::<String>(b"1").is_err());
    assert!(decode::<i64>(b"1.0").is_err());
}

/// A random Python-shaped value, with a description Python rebuilds it from.
#[derive(Debug, Clone)]
enum G {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    List(Vec<G>),
    Dict(Vec<(String, G)>),
    IntDict(Vec<(i64, G)>),
}

impl Serialize for G {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            G::Null => s.serialize_unit(),
            G::Bool(b) => s.serialize_bool(*b),
            G::Int(i) => s.serialize_i128(*i),
            G::Float(f) => s.serialize_f64(*f),
            G::Str(x) => s.serialize_str(x),
            G::List(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for i in items {
                    seq.serialize_element(i)?;
                }
                seq.end()
            }
            G::Dict(items) => {
                let mut m = s.serialize_map(Some(items.len()))?;
                for (k, v) in items {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
            G::IntDict(items) => {
                let mut m = s.serialize_map(Some(items.len()))?;
                for (k, v) in items {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for G {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<G, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = G;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<G, E> {
                Ok(G::Null)
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<G, E> {
                Ok(G::Bool(b))
            }
            fn visit_i64<E: de::Error>(self, i: i64) -> Result<G, E> {
                Ok(G::Int(i.into()))
            }
            fn visit_u64<E: de::Error>(self, i: u64) -> Result<G, E> {
                Ok(G::Int(i.into()))
            }
            fn visit_i128<E: de::Error>(self, i: i128) -> Result<G, E> {
                Ok(G::Int(i))
            }
            fn visit_f64<E: de::Error>(self, f: f64) -> Result<G, E> {
                Ok(G::Float(f))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<G, E> {
                Ok(G::Str(s))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<G, E> {
                Ok(G::Str(s.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<G, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = a.next_element()? {
                    v.push(x);
                }
                Ok(G::List(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<G, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = a.next_entry()? {
                    v.push(x);
                }
                Ok(G::Dict(v))
            }
        }
        d.deserialize_any(V)
    }
}

impl G {
    /// A plain-JSON description that Python turns back into the same object without any
    /// float or string formatting in between.
    fn describe(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            G::Null => json!(["n"]),
            G::Bool(b) => json!(["b", b]),
            G::Int(i) => json!(["i", i.to_string()]),
            G::Float(f) => json!(["f", format!("{:016x}", f.to_bits())]),
            G::Str(s) => json!(["s", s.chars().map(u32::from).collect::<Vec<_>>()]),
            G::List(items) => json!(["l", items.iter().map(G::describe).collect::<Vec<_>>()]),
            G::Dict(items) => json!([
                "d",
                items
                    .iter()
                    .map(|(k, v)| json!([G::Str(k.clone()).describe(), v.describe()]))
                    .collect::<Vec<_>>()
            ]),
            G::IntDict(items) => json!([
                "d",
                items
                    .iter()
                    .map(|(k, v)| json!([G::Int((*k).into()).describe(), v.describe()]))
                    .collect::<Vec<_>>()
            ]),
        }
    }

    /// The same value as it comes back from JSON (int keys become strings).
    fn normalized(&self) -> G {
        match self {
            G::List(items) => G::List(items.iter().map(G::normalized).collect()),
            G::Dict(items) => {
                let mut items: Vec<_> = items
                    .iter()
                    .map(|(k, v)| (k.clone(), v.normalized()))
                    .collect();
                items.sort_by(|a, b| a.0.cmp(&b.0));
                G::Dict(items)
            }
            G::IntDict(items) => {
                let mut items: Vec<_> = items.iter().map(|(k, v)| (*k, v.normalized())).collect();
                items.sort_by_key(|(k, _)| *k);
                G::Dict(items.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }
            // Beyond 64 bits too, a dynamic type that takes an i128 gets the exact value.
            other => other.clone(),
        }
    }

    fn same(&self, other: &G) -> bool {
        match (self, other) {
            (G::Float(a), G::Float(b)) => a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
            (G::List(a), G::List(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same(y))
            }
            (G::Dict(a), G::Dict(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|((k1, v1), (k2, v2))| k1 == k2 && v1.same(v2))
            }
            (G::Null, G::Null) => true,
            (G::Bool(a), G::Bool(b)) => a == b,
            (G::Int(a), G::Int(b)) => a == b,
            (G::Str(a), G::Str(b)) => a == b,
            _ => false,
        }
    }
}

fn random_char(rng: &mut impl Rng) -> char {
    match rng.random_range(0..10) {
        0..=4 => rng.random_range(' '..='~'),
        5 => rng.random_range('\u{0}'..='\u{1f}'),
        6 => *['"', '\\', '/', '\u{7f}', '\u{2028}', '\u{fffd}', '\u{feff}']
            .choose(rng)
            .unwrap(),
        7 => rng.random_range('\u{80}'..='\u{7ff}'),
        8 => rng.random_range('\u{800}'..='\u{d7ff}'),
        _ => rng.random_range('\u{10000}'..='\u{10ffff}'),
    }
}

fn random_string(rng: &mut impl Rng) -> String {
    let n = rng.random_range(0..12);
    (0..n).map(|_| random_char(rng)).collect()
}

fn random_float(rng: &mut impl Rng) -> f64 {
    match rng.random_range(0..6) {
        0 => f64::from_bits(rng.random()),
        1 => rng.random_range(-1e6..1e6),
        2 => (rng.random_range(-100000i64..100000) as f64) / 10f64.powi(rng.random_range(0..8)),
        3 => 10f64.powi(rng.random_range(-20..25)) * if rng.random() { 1.0 } else { -1.0 },
        4 => rng.random::<f64>() * 10f64.powi(rng.random_range(-8..20)),
        _ => *[
            0.0,
            -0.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e16,
            1e-5,
            9999999999999998.0,
            0.1,
            f64::MIN_POSITIVE,
            f64::MAX,
        ]
        .choose(rng)
        .unwrap(),
    }
}

fn random_value(rng: &mut impl Rng, depth: u32) -> G {
    let top = if depth >= 3 { 5 } else { 8 };
    match rng.random_range(0..top) {
        0 => G::Null,
        1 => G::Bool(rng.random()),
        2 => G::Int(match rng.random_range(0..3) {
            0 => rng.random_range(-1000..1000),
            1 => rng.random::<i64>().into(),
            _ => rng.random::<i128>(),
        }),
        3 => G::Float(random_float(rng)),
        4 => G::Str(random_string(rng)),
        5 => G::List(
            (0..rng.random_range(0..5))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        6 => {
            let mut keys: Vec<String> = (0..rng.random_range(0..5))
                .map(|_| random_string(rng))
                .collect();
            keys.sort();
            keys.dedup();
            keys.shuffle(rng);
            G::Dict(
                keys.into_iter()
                    .map(|k| (k, random_value(rng, depth + 1)))
                    .collect(),
            )
        }
        _ => {
            let mut keys: Vec<i64> = (0..rng.random_range(0..5))
                .map(|_| rng.random_range(-50..50))
                .collect();
            keys.sort();
            keys.dedup();
            keys.shuffle(rng);
            G::IntDict(
                keys.into_iter()
                    .map(|k| (k, random_value(rng, depth + 1)))
                    .collect(),
            )
        }
    }
}

const PY_DUMPS: &str = r#"
import json, struct, sys
import pottery  # pottery's monkey-patch of json.dumps must not change anything here

def build(d):
    t = d[0]
    if t == 'n': return None
    if t == 'b': return d[1]
    if t == 'i': return int(d[1])
    if t == 'f': return struct.unpack('>d', bytes.fromhex(d[1]))[0]
    if t == 's': return ''.join(chr(c) for c in d[1])
    if t == 'l': return [build(x) for x in d[1]]
    if t == 'd': return {build(k): build(v) for k, v in d[1]}
    raise ValueError(t)

for line in sys.stdin:
    print(json.dumps(build(json.loads(line)), sort_keys=True))
"#;

#[test]
fn randomised_against_python_json_dumps() {
    let seed: u64 = std::env::var("CODEC_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    let mut rng = StdRng::seed_from_u64(seed);
    let values: Vec<G> = (0..3000).map(|_| random_value(&mut rng, 0)).collect();
    let input: String = values
        .iter()
        .map(|v| format!("{}\n", v.describe()))
        .collect();
    let output = run_python(PY_DUMPS, "redis://127.0.0.1:1/0", &input);
    let lines: Vec<&str> = output.lines().collect();
    assert_eq!(lines.len(), values.len());
    for (value, python) in values.iter().zip(lines) {
        let ours = encode(value).unwrap();
        assert_eq!(ours, python, "CODEC_SEED={seed}: {value:?}");
        // decode(encode(x)) == x
        let back: G = decode(ours.as_bytes()).unwrap();
        assert!(
            back.same(&value.normalized()),
            "CODEC_SEED={seed}: {value:?} came back as {back:?}"
        );
    }
}

#[test]
fn typed_round_trips() {
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..2000 {
        let p = Point {
            y: rng.random(),
            x: rng.random(),
            label: rng.random::<bool>().then(|| random_string(&mut rng)),
        };
        assert_eq!(decode::<Point>(encode(&p).unwrap().as_bytes()).unwrap(), p);
        let f = random_float(&mut rng);
        let back: f64 = decode(encode(&f).unwrap().as_bytes()).unwrap();
        assert!(
            back.to_bits() == f.to_bits() || (f.is_nan() && back.is_nan()),
            "{f:?}"
        );
        let g = f as f32;
        let back: f32 = decode(encode(&g).unwrap().as_bytes()).unwrap();
        assert!(
            back.to_bits() == g.to_bits() || (g.is_nan() && back.is_nan()),
            "{g:?}"
        );
        let m: HashMap<i16, Vec<Option<char>>> = (0..rng.random_range(0..4))
            .map(|_| (rng.random(), vec![Some(random_char(&mut rng)), None]))
            .collect();
        assert_eq!(
            decode::<HashMap<i16, Vec<Option<char>>>>(encode(&m).unwrap().as_bytes()).unwrap(),
            m
        );
    }
}

#[test]
fn integers_beyond_64_bits_are_exact_or_an_error_never_rounded() {
    // What Python pottery writes for 2**64, 2**70, -(2**63)-1 and 2**127.
    for (text, exact) in [
        ("18446744073709551616", 1i128 << 64),
        ("1180591620717411303424", 1i128 << 70),
        ("-9223372036854775809", -(1i128 << 63) - 1),
    ] {
        assert_eq!(decode::<i128>(text.as_bytes()).unwrap(), exact);
        // A dynamic type that takes i128 keeps it, and writes back the same bytes.
        let g: G = decode(text.as_bytes()).unwrap();
        assert!(g.same(&G::Int(exact)), "{text}: {g:?}");
        assert_eq!(encode(&g).unwrap(), text);
        // serde_json::Value cannot hold it: an error, not 1.8446744073709552e+19.
        let err = decode::<serde_json::Value>(text.as_bytes()).unwrap_err();
        assert!(err.message().contains("out of range"), "{err}");
        let err = decode::<Vec<serde_json::Value>>(format!("[1, {text}]").as_bytes());
        assert!(err.is_err());
    }
    let max: u128 = decode(b"340282366920938463463374607431768211455").unwrap();
    assert_eq!(
        encode(&max).unwrap(),
        "340282366920938463463374607431768211455"
    );
    assert!(decode::<serde_json::Value>(b"340282366920938463463374607431768211455").is_err());
    // Floats take them only when exact.
    assert_eq!(
        decode::<f64>(b"18446744073709551616").unwrap(),
        2f64.powi(64)
    );
    assert!(decode::<f64>(b"18446744073709551617").is_err());
    assert!(decode::<f64>(b"170141183460469231731687303715884105727").is_err());
    assert!(decode::<f32>(b"340282366920938463463374607431768211455").is_err());
    // Up to 64 bits nothing changes.
    assert_eq!(
        decode::<serde_json::Value>(b"18446744073709551615").unwrap(),
        serde_json::json!(u64::MAX)
    );
    assert_eq!(
        decode::<serde_json::Value>(b"-9223372036854775808").unwrap(),
        serde_json::json!(i64::MIN)
    );
}

#[test]
fn every_number_python_writes_keeps_its_bytes_through_codec_value() {
    use pottery::codec::Value;
    // What Python's json.dumps writes for nan, inf, -inf, 2**64, -(2**63)-1, 2**127, 2**200
    // (and 1e400, which other writers produce), alone and nested.
    let two_200 = "1606938044258990275541962092341162602522202993782792835301376";
    let cases = [
        "NaN",
        "Infinity",
        "-Infinity",
        "18446744073709551616",
        "-9223372036854775809",
        "170141183460469231731687303715884105728",
        "340282366920938463463374607431768211455",
        two_200,
        "1e400",
        "-1e400",
        "1.0",
        "-0.0",
        "1e+16",
        "[1, 1.0, true, \"1\", null, NaN, {\"a\": [Infinity]}]",
        "{\"a\": -2, \"big\": 1606938044258990275541962092341162602522202993782792835301376, \"\\u00e9\": 1}",
    ];
    for text in cases {
        let v: Value = decode(text.as_bytes()).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(encode(&v).unwrap(), text, "{v:?}");
    }
    let v: Value = decode(two_200.as_bytes()).unwrap();
    assert_eq!(v, Value::Number(two_200.into()));
    assert_eq!(decode::<Value>(b"-5").unwrap(), Value::Int(-5));
    assert!(matches!(decode::<Value>(b"NaN").unwrap(), Value::Float(f) if f.is_nan()));
    // serde_json::Value would read NaN and the infinities as null: an error names them.
    for text in ["NaN", "Infinity", "[1, -Infinity]", "{\"a\": NaN}"] {
        let err = decode::<serde_json::Value>(text.as_bytes()).unwrap_err();
        assert!(err.message().contains("serde_json::Value"), "{text}: {err}");
    }
    // Numbers beyond every Rust number type: an error for typed targets, never a rounding.
    for text in ["1000000000000000000000000000000000000001", "1e400"] {
        assert!(decode::<f64>(text.as_bytes()).is_err(), "{text}");
    }
    for text in [two_200, "1e400"] {
        assert!(decode::<i128>(text.as_bytes()).is_err(), "{text}");
        assert!(
            decode::<serde_json::Value>(text.as_bytes()).is_err(),
            "{text}"
        );
    }
    // f64 and self-describing types of the user's own still take NaN and the infinities.
    assert!(decode::<f64>(b"NaN").unwrap().is_nan());
    assert_eq!(decode::<f64>(b"-Infinity").unwrap(), f64::NEG_INFINITY);
    #[derive(Deserialize, Debug)]
    #[serde(untagged)]
    enum Num {
        I(i64),
        F(f64),
    }
    assert!(matches!(decode::<Num>(b"NaN").unwrap(), Num::F(f) if f.is_nan()));
    assert!(matches!(decode::<Num>(b"7").unwrap(), Num::I(7)));
    // A Value::Number that is not a number is refused when encoded.
    assert!(encode(&Value::Number("1; DROP".into())).is_err());
}

/// read → write is the identity on objects in any order Python writes (int keys sort
/// numerically, mixed int/float keys too), nested or not; objects built in Rust are sorted as
/// Python sorts str keys.
#[test]
fn value_objects_keep_the_order_they_were_read_in() {
    use pottery::codec::{Map, Value, decode, encode};
    for stored in [
        r#"{"9": "b", "10": "a"}"#,
        r#"{"-5": 1.5, "100": []}"#,
        r#"{"1": 1, "1.5": 0, "10": 2}"#,
        r#"[{"1": null, "2": {"9": 2, "10": 1}}, {"x": {"9007199254740992.0": 0, "9007199254740993": 1}}]"#,
        r#"{"b": 1, "a": 2}"#,
        r#"{}"#,
    ] {
        let v: Value = decode(stored.as_bytes()).unwrap();
        assert_eq!(encode(&v).unwrap(), stored);
    }
    // A repeated key keeps its first place and its last value, as json.loads.
    let v: Value = decode(br#"{"9": 1, "10": 2, "9": 3}"#).unwrap();
    assert_eq!(encode(&v).unwrap(), r#"{"9": 3, "10": 2}"#);
    // Built in Rust: code point order, as Python's json.dumps of a str-keyed dict.
    let m: Map = [("9", 1), ("10", 2), ("é", 3)]
        .into_iter()
        .map(|(k, n)| (k.to_string(), Value::Int(n)))
        .collect();
    assert_eq!(
        encode(&Value::Object(m)).unwrap(),
        r#"{"10": 2, "9": 1, "\u00e9": 3}"#
    );
    // A new key in a map read: sorted from then on; an updated one keeps the read order.
    let Value::Object(mut m) = decode::<Value>(br#"{"9": 1, "10": 2}"#).unwrap() else {
        unreachable!()
    };
    m.insert("9".into(), Value::Int(5));
    assert_eq!(encode(&m).unwrap(), r#"{"9": 5, "10": 2}"#);
    m.insert("11".into(), Value::Null);
    assert_eq!(encode(&m).unwrap(), r#"{"10": 2, "11": null, "9": 5}"#);
}

/// Python compares int and float keys exactly when it sorts them.
#[test]
fn int_and_float_keys_sort_exactly() {
    use std::collections::BTreeMap;
    #[derive(serde::Serialize, PartialEq, Eq, PartialOrd, Ord)]
    #[serde(untagged)]
    enum K {
        I(i64),
        F(OrdF),
    }
    #[derive(PartialEq, Eq, PartialOrd, Ord)]
    struct OrdF(u64);
    impl serde::Serialize for OrdF {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_f64(f64::from_bits(self.0))
        }
    }
    let two53 = 9_007_199_254_740_992f64;
    // json.dumps({2**53 + 1: 'a', 2.0**53: 'b'}, sort_keys=True)
    let m: BTreeMap<K, &str> = [
        (K::I(2i64.pow(53) + 1), "a"),
        (K::F(OrdF(two53.to_bits())), "b"),
    ]
    .into();
    assert_eq!(
        pottery::codec::encode(&m).unwrap(),
        r#"{"9007199254740992.0": "b", "9007199254740993": "a"}"#
    );
}

/// Lone surrogates: an error for String, kept (escaped) by Value, and never a way to write
/// something that is not a JSON string.
#[test]
fn lone_surrogates_round_trip_through_value_only() {
    use pottery::codec::Value;
    for stored in [
        r#""\ud800""#,
        r#""\udc00""#,
        r#""a\ud800\u00e9""#,
        r#""\ud800\ud800\udc00""#,
        r#"["\udbff", {"k": "\ud800x"}]"#,
    ] {
        let v: Value = decode(stored.as_bytes()).unwrap();
        assert_eq!(encode(&v).unwrap(), stored);
        let err = decode::<serde_json::Value>(stored.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("lone surrogate"), "{err}");
    }
    let v: Value = decode(br#""\ud800\ud800\udc00""#).unwrap();
    assert_eq!(v, Value::Escaped(r"\ud800\ud800\udc00".into()));
    assert!(decode::<String>(br#""\ud800""#).is_err());
    // Keys with one are refused (a Map's keys are Strings).
    assert!(decode::<Value>(br#"{"\ud800": 1}"#).is_err());
    // An Escaped must be the inside of a JSON string.
    for bad in [r#"a", "b"#, "\"", "\\", "\u{1}", "\\x"] {
        assert!(encode(&Value::Escaped(bad.into())).is_err(), "{bad:?}");
    }
}
