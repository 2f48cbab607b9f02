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
/// The newtype name by which pottery's encoder writes a [`Map`] in its read order.
pub(crate) const ORDERED_TOKEN: &str = "$pottery::codec::Ordered";
/// The newtype name by which pottery's encoder writes a [`Value::Escaped`] as it was read.
pub(crate) const ESCAPED_TOKEN: &str = "$pottery::codec::Escaped";

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
/// bytes back, objects included: Python sorts a dict's keys *before* turning them into strings,
/// so `{9: 'b', 10: 'a'}` is stored as `{"9": "b", "10": "a"}`, and a [`Map`] keeps that
/// order rather than re-sorting the strings. (Other serde formats see a `Value::Number` as a
/// string.)
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
    /// A string a Rust `String` cannot hold because it contains a lone UTF-16 surrogate
    /// (Python's `'\ud800'`, stored as `"\ud800"`): the text between its quotes, escapes and
    /// all, exactly as read, and written back unchanged. Two of them are equal when that text
    /// is. Decoding such a string into `String` fails with a [`CodecError`](super::CodecError)
    /// ("lone surrogate in string"), as before; object keys with one are refused even here.
    ///
    /// ```
    /// use pottery::codec::{decode, encode, Value};
    /// let v: Value = decode(br#"["a\ud800b"]"#)?;
    /// assert_eq!(v[0], Value::Escaped(r"a\ud800b".into()));
    /// assert_eq!(encode(&v)?, r#"["a\ud800b"]"#);
    /// assert!(decode::<Vec<String>>(br#"["a\ud800b"]"#).is_err());
    /// # Ok::<(), pottery::codec::CodecError>(())
    /// ```
    Escaped(String),
    /// An array (Python's list or tuple).
    Array(Vec<Value>),
    /// An object (Python's dict; its keys are strings in JSON), in the order it was read: see
    /// [`Map`].
    Object(Map),
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
            Value::Escaped(raw) => s.serialize_newtype_struct(ESCAPED_TOKEN, raw),
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
        let mut order = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, Value>()? {
            // A repeated key keeps its first place and its last value, as Python's json.loads.
            if members.insert(k.clone(), v).is_none() {
                order.push(k);
            }
        }
        Ok(Value::Object(Map {
            members,
            read_order: Some(order),
        }))
    }
    /// pottery's decoder hands over a number no Rust type holds as a unit variant named by
    /// its text (see `codec::de::Faithful`).
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        use de::VariantAccess;
        let (text, variant): (String, _) = data.variant()?;
        variant.unit_variant()?;
        // A string literal with a lone surrogate comes quoted; a number never does.
        match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
            Some(raw) => Ok(Value::Escaped(raw.to_owned())),
            None => Ok(Value::Number(text)),
        }
    }
}

/// The members of a [`Value::Object`]: a map from strings to values that remembers the order
/// it was read in.
///
/// Python's `json.dumps(sort_keys=True)` sorts a dict by its *original* keys, so a dict with
/// int keys is stored in numeric order (`{"9": "b", "10": "a"}`), which is not the order of
/// the key strings. A `Map` decoded from bytes is encoded back in the order it was read, so
/// that read → write gives the same bytes (the same dict field, set member or Bloom bits).
/// A `Map` built in Rust, or given a new key after it was read, is encoded as Python encodes a
/// dict with `str` keys: sorted by code point. Updating or removing members keeps the read
/// order. Equality ignores order, as Python's dict equality does. Iteration follows the order
/// in which the map would be encoded.
///
/// ```
/// use pottery::codec::{decode, encode, Map, Value};
///
/// let stored = br#"{"9": "b", "10": "a"}"#; // Python's json.dumps({9: 'b', 10: 'a'}, sort_keys=True)
/// let v: Value = decode(stored)?;
/// assert_eq!(encode(&v)?.as_bytes(), stored);
///
/// // Built in Rust: sorted as Python sorts str keys.
/// let mut m = Map::new();
/// m.insert("9".into(), Value::Str("b".into()));
/// m.insert("10".into(), Value::Str("a".into()));
/// assert_eq!(encode(&Value::Object(m.clone()))?, r#"{"10": "a", "9": "b"}"#);
/// assert_eq!(Value::Object(m), v); // the same dict
/// # Ok::<(), pottery::codec::CodecError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Map {
    members: BTreeMap<String, Value>,
    /// Every key, in the order read, while the map holds exactly the keys it was read with
    /// (fewer after a removal). `None` once built or extended in Rust.
    read_order: Option<Vec<String>>,
}

impl Map {
    /// An empty map (encoded `{}`).
    ///
    /// ```
    /// assert!(pottery::codec::Map::new().is_empty());
    /// ```
    pub fn new() -> Self {
        Map::default()
    }

    /// The number of members.
    ///
    /// ```
    /// let m: pottery::codec::Map = [("a".to_string(), pottery::codec::Value::Null)].into_iter().collect();
    /// assert_eq!(m.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the map has no members.
    ///
    /// ```
    /// assert!(pottery::codec::Map::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The value of `key`, if present.
    ///
    /// ```
    /// use pottery::codec::{decode, Value};
    /// let v: Value = decode(br#"{"a": 1}"#)?;
    /// let Value::Object(m) = v else { unreachable!() };
    /// assert_eq!(m.get("a"), Some(&Value::Int(1)));
    /// # Ok::<(), pottery::codec::CodecError>(())
    /// ```
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.members.get(key)
    }

    /// The value of `key` to change in place (the member keeps its place).
    ///
    /// ```
    /// use pottery::codec::{Map, Value};
    /// let mut m: Map = [("a".to_string(), Value::Int(1))].into_iter().collect();
    /// *m.get_mut("a").unwrap() = Value::Int(2);
    /// assert_eq!(m.get("a"), Some(&Value::Int(2)));
    /// ```
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.members.get_mut(key)
    }

    /// Whether `key` is a member.
    ///
    /// ```
    /// let m: pottery::codec::Map = [("a".to_string(), pottery::codec::Value::Null)].into_iter().collect();
    /// assert!(m.contains_key("a"));
    /// ```
    pub fn contains_key(&self, key: &str) -> bool {
        self.members.contains_key(key)
    }

    /// Sets `key` to `value`, returning the old value. A key already present keeps its place;
    /// a new key makes the map encode in sorted order (its read order no longer says where the
    /// new key would go).
    ///
    /// ```
    /// use pottery::codec::{encode, Map, Value};
    /// let mut m = Map::new();
    /// assert_eq!(m.insert("b".into(), Value::Int(1)), None);
    /// m.insert("a".into(), Value::Int(2));
    /// assert_eq!(encode(&Value::Object(m))?, r#"{"a": 2, "b": 1}"#);
    /// # Ok::<(), pottery::codec::CodecError>(())
    /// ```
    pub fn insert(&mut self, key: String, value: Value) -> Option<Value> {
        match self.members.get_mut(&key) {
            Some(old) => Some(std::mem::replace(old, value)),
            None => {
                self.read_order = None;
                self.members.insert(key, value)
            }
        }
    }

    /// Removes `key`, returning its value; the other members keep their order.
    ///
    /// ```
    /// use pottery::codec::{decode, encode, Value};
    /// let mut v: Value = decode(br#"{"9": 1, "10": 2, "11": 3}"#)?;
    /// let Value::Object(m) = &mut v else { unreachable!() };
    /// assert_eq!(m.remove("10"), Some(Value::Int(2)));
    /// assert_eq!(encode(&v)?, r#"{"9": 1, "11": 3}"#);
    /// # Ok::<(), pottery::codec::CodecError>(())
    /// ```
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let old = self.members.remove(key)?;
        if let Some(order) = &mut self.read_order {
            order.retain(|k| k != key);
        }
        Some(old)
    }

    /// The members, in the order they would be encoded.
    ///
    /// ```
    /// use pottery::codec::{decode, Value};
    /// let v: Value = decode(br#"{"9": 1, "10": 2}"#)?;
    /// let Value::Object(m) = v else { unreachable!() };
    /// assert_eq!(m.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["9", "10"]);
    /// # Ok::<(), pottery::codec::CodecError>(())
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Value)> + '_ {
        let ordered: Box<dyn Iterator<Item = (&String, &Value)> + '_> = match &self.read_order {
            Some(order) => Box::new(
                order
                    .iter()
                    .filter_map(|k| self.members.get_key_value(k.as_str())),
            ),
            None => Box::new(self.members.iter()),
        };
        ordered
    }

    /// The keys, in the order they would be encoded.
    ///
    /// ```
    /// let m: pottery::codec::Map = [("b".to_string(), pottery::codec::Value::Null)].into_iter().collect();
    /// assert_eq!(m.keys().collect::<Vec<_>>(), ["b"]);
    /// ```
    pub fn keys(&self) -> impl Iterator<Item = &String> + '_ {
        self.iter().map(|(k, _)| k)
    }

    /// The values, in the order they would be encoded.
    ///
    /// ```
    /// let m: pottery::codec::Map = [("b".to_string(), pottery::codec::Value::Null)].into_iter().collect();
    /// assert_eq!(m.values().count(), 1);
    /// ```
    pub fn values(&self) -> impl Iterator<Item = &Value> + '_ {
        self.iter().map(|(_, v)| v)
    }

    /// Whether the map keeps the order it was read in (and will be encoded in it), rather than
    /// being sorted.
    ///
    /// ```
    /// use pottery::codec::{decode, Value};
    /// let v: Value = decode(br#"{"9": 1, "10": 2}"#)?;
    /// let Value::Object(m) = v else { unreachable!() };
    /// assert!(m.keeps_read_order());
    /// # Ok::<(), pottery::codec::CodecError>(())
    /// ```
    pub fn keeps_read_order(&self) -> bool {
        self.read_order.is_some()
    }
}

impl PartialEq for Map {
    /// Equal members, whatever their order (as Python's dict equality).
    fn eq(&self, other: &Map) -> bool {
        self.members == other.members
    }
}

impl From<BTreeMap<String, Value>> for Map {
    fn from(members: BTreeMap<String, Value>) -> Map {
        Map {
            members,
            read_order: None,
        }
    }
}

impl FromIterator<(String, Value)> for Map {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Map {
        Map::from(iter.into_iter().collect::<BTreeMap<_, _>>())
    }
}

impl IntoIterator for Map {
    type Item = (String, Value);
    type IntoIter = std::vec::IntoIter<(String, Value)>;

    /// The members, in the order they would be encoded.
    fn into_iter(mut self) -> Self::IntoIter {
        match self.read_order.take() {
            Some(order) => order
                .into_iter()
                .filter_map(|k| self.members.remove_entry(&k))
                .collect::<Vec<_>>()
                .into_iter(),
            None => self.members.into_iter().collect::<Vec<_>>().into_iter(),
        }
    }
}

impl std::ops::Index<&str> for Map {
    type Output = Value;

    /// The value of `key`; [`Value::Null`] when absent, as [`Value`]'s own index.
    fn index(&self, key: &str) -> &Value {
        self.get(key).unwrap_or(&NULL)
    }
}

/// A map serialized in its read order.
struct InOrder<'a>(&'a Map);

impl Serialize for InOrder<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter())
    }
}

impl Serialize for Map {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.read_order.is_some() {
            s.serialize_newtype_struct(ORDERED_TOKEN, &InOrder(self))
        } else {
            self.members.serialize(s)
        }
    }
}
