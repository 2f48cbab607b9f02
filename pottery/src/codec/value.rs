//! [`Value`]: a dynamic JSON value that keeps every number Python can write.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::ser::{Serialize, Serializer};

/// The newtype name by which pottery's decoder recognises a [`Value`] (and hands it numbers
/// exactly).
pub(crate) const VALUE_TOKEN: &str = "$pottery::codec::Value";
/// The newtype name by which pottery's encoder writes a [`Value::Number`] as it was read.
pub(crate) const NUMBER_TOKEN: &str = "$pottery::codec::Number";

/// Any value Python pottery can store, read without losing anything.
///
/// `serde_json::Value` cannot hold what Python's `json` writes for `float('nan')`,
/// `float('inf')`, `2**64` or `2**200`: it turns NaN and the infinities into `null` and
/// integers beyond 64 bits into rounded floats, and written back those are different bytes — a
/// different dict field or set member than the one Python wrote. pottery's decoder therefore
/// refuses to decode them into `serde_json::Value` (a typed [`CodecError`](super::CodecError)),
/// and offers this type instead, which keeps them:
///
/// * integers up to 128 bits as [`Value::Int`], NaN and `±Infinity` as [`Value::Float`];
/// * numbers no Rust number type holds (an integer beyond 128 bits, `1e400`, or above
///   `i128::MAX`) as [`Value::Number`], their text, written back unchanged.
///
/// Encoded with [`encode`](super::encode), a `Value` read from Python's bytes gives the same
/// bytes back. (Other serde formats see a `Value::Number` as a string.)
///
/// ```
/// use pottery::codec::{decode, encode, Value};
///
/// let stored = br#"{"big": 1606938044258990275541962092341162602522202993782792835301376, "n": [1, 1.0, true], "nan": NaN}"#;
/// let v: Value = decode(stored)?;
/// assert_eq!(v["big"], Value::Number("1606938044258990275541962092341162602522202993782792835301376".into()));
/// assert!(matches!(v["nan"], Value::Float(f) if f.is_nan()));
/// assert_eq!(v["n"][0], Value::Int(1));
/// assert_eq!(encode(&v)?.as_bytes(), stored);
///
/// // serde_json::Value would have read NaN as null: an error instead.
/// assert!(decode::<serde_json::Value>(b"NaN").is_err());
/// # Ok::<(), pottery::codec::CodecError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// `null` (Python's `None`).
    #[default]
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer that fits `i128`.
    Int(i128),
    /// A float, NaN and the infinities included.
    Float(f64),
    /// A number no Rust number type holds, as written (`2**200`, `1e400`).
    Number(String),
    /// A string.
    Str(String),
    /// An array (Python's list or tuple).
    Array(Vec<Value>),
    /// An object (Python's dict; its keys are strings in JSON).
    Object(BTreeMap<String, Value>),
}

/// Whether `text` is a JSON number (as `Value::Number` must hold).
pub(crate) fn is_number_text(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let from = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > from
    };
    if !digits(&mut i) {
        return false;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return false;
        }
    }
    i == b.len()
}

static NULL: Value = Value::Null;

impl std::ops::Index<&str> for Value {
    type Output = Value;

    /// The member `key` of an object; [`Value::Null`] for anything else, as in `serde_json`.
    fn index(&self, key: &str) -> &Value {
        match self {
            Value::Object(members) => members.get(key).unwrap_or(&NULL),
            _ => &NULL,
        }
    }
}

impl std::ops::Index<usize> for Value {
    type Output = Value;

    /// The element `i` of an array; [`Value::Null`] for anything else, as in `serde_json`.
    fn index(&self, i: usize) -> &Value {
        match self {
            Value::Array(items) => items.get(i).unwrap_or(&NULL),
            _ => &NULL,
        }
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => match i64::try_from(*i) {
                Ok(i) => s.serialize_i64(i),
                Err(_) => s.serialize_i128(*i),
            },
            Value::Float(f) => s.serialize_f64(*f),
            Value::Number(text) => s.serialize_newtype_struct(NUMBER_TOKEN, text),
            Value::Str(text) => s.serialize_str(text),
            Value::Array(items) => items.serialize(s),
            Value::Object(members) => members.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_newtype_struct(VALUE_TOKEN, ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Int(i.into()))
    }
    fn visit_u64<E>(self, u: u64) -> Result<Value, E> {
        Ok(Value::Int(u.into()))
    }
    fn visit_i128<E>(self, i: i128) -> Result<Value, E> {
        Ok(Value::Int(i))
    }
    fn visit_u128<E>(self, u: u128) -> Result<Value, E> {
        Ok(i128::try_from(u).map_or_else(|_| Value::Number(u.to_string()), Value::Int))
    }
    fn visit_f64<E>(self, f: f64) -> Result<Value, E> {
        Ok(Value::Float(f))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::Str(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::Str(s))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = BTreeMap::new();
        while let Some((k, v)) = map.next_entry::<String, Value>()? {
            members.insert(k, v);
        }
        Ok(Value::Object(members))
    }
    /// pottery's decoder hands over a number no Rust type holds as a unit variant named by
    /// its text (see `codec::de::Faithful`).
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        use de::VariantAccess;
        let (text, variant): (String, _) = data.variant()?;
        variant.unit_variant()?;
        Ok(Value::Number(text))
    }
}
