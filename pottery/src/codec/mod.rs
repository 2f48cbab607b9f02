//! Python-compatible JSON: the one encoding pottery uses for every key, field, member and value.
//!
//! Python pottery stores everything as `json.dumps(x, sort_keys=True)`. Two processes only
//! find each other's hash fields, set members and Bloom bits if they produce the *same bytes*,
//! so [`encode`] reproduces CPython's encoder byte for byte:
//!
//! * separators `", "` and `": "`; `[]` and `{}` for empty containers;
//! * `ensure_ascii`: every character outside `0x20..=0x7e` is `\uXXXX` with lowercase hex,
//!   characters beyond the BMP become surrogate pairs, and `\" \\ \n \r \t \b \f` are short;
//! * object members sorted by their original key: strings in code-point order, numbers
//!   numerically (`{10: "a", 9: "b"}` is `{"9": "b", "10": "a"}`); struct fields sort by name;
//! * floats in Python's `repr`: `1.0`, `-0.0`, `1e+16`, `1e-05`, `0.0001`, `NaN`, `Infinity`.
//!
//! [`decode`] accepts anything Python writes (including `NaN` and `±Infinity`, which strict JSON
//! parsers refuse) and any other JSON.
//!
//! ```
//! use std::collections::HashMap;
//!
//! assert_eq!(pottery::codec::encode(&("é", 1e16, -0.0, vec![None, Some(true)]))?,
//!            r#"["\u00e9", 1e+16, -0.0, [null, true]]"#);
//! let numbers: HashMap<i32, &str> = [(10, "a"), (9, "b")].into();
//! assert_eq!(pottery::codec::encode(&numbers)?, r#"{"9": "b", "10": "a"}"#);
//!
//! let back: (String, f64, f64, Vec<Option<bool>>) =
//!     pottery::codec::decode(br#"["\u00e9", 1e+16, -Infinity, [null, true]]"#)?;
//! assert_eq!(back.2, f64::NEG_INFINITY);
//! # Ok::<(), pottery::codec::CodecError>(())
//! ```
//!
//! How Rust types map: `Option::None` and `()` are `null`; tuples, `Vec`s and sets are arrays;
//! maps and structs are objects (map keys must be strings, integers, floats, bools, chars or
//! unit enum variants, as in Python); enums are externally tagged like `serde_json`
//! (`"Unit"`, `{"Newtype": 1}`); `f32` is written with the shortest digits that read back as the
//! same `f32`. Integers of any size up to 128 bits are exact.

mod de;
mod float;
mod ser;
mod value;

pub use value::{Map, Value};

use std::fmt;

/// Why a value could not be encoded or decoded.
///
/// ```
/// let err = pottery::codec::decode::<i64>(b"not json").unwrap_err();
/// assert!(err.to_string().contains("line 1"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecError {
    message: String,
}

impl CodecError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        CodecError {
            message: message.into(),
        }
    }

    /// The human-readable reason.
    ///
    /// ```
    /// let err = pottery::codec::decode::<bool>(b"1").unwrap_err();
    /// assert!(err.message().contains("invalid type"));
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CodecError {}

impl serde::ser::Error for CodecError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        CodecError::new(msg.to_string())
    }
}

impl serde::de::Error for CodecError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        CodecError::new(msg.to_string())
    }
}

/// Encodes `value` exactly as Python's `json.dumps(value, sort_keys=True)` would.
///
/// ```
/// # use serde::Serialize;
/// #[derive(Serialize)]
/// struct User { name: String, age: u8, admin: bool }
///
/// let user = User { name: "Zoë".into(), age: 42, admin: false };
/// assert_eq!(pottery::codec::encode(&user)?,
///            r#"{"admin": false, "age": 42, "name": "Zo\u00eb"}"#);
/// # Ok::<(), pottery::codec::CodecError>(())
/// ```
pub fn encode<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, CodecError> {
    let mut out = String::new();
    value.serialize(ser::Ser::new(&mut out))?;
    Ok(out)
}

/// [`encode`] into `out`, replacing what it held: lets bulk calls reuse one buffer.
pub(crate) fn encode_into<T: serde::Serialize + ?Sized>(
    value: &T,
    out: &mut String,
) -> Result<(), CodecError> {
    out.clear();
    value.serialize(ser::Ser::new(out))
}

/// Like [`encode`], returning the UTF-8 (in fact ASCII) bytes that go on the wire.
///
/// ```
/// assert_eq!(pottery::codec::encode_bytes(&"a")?, b"\"a\"".to_vec());
/// # Ok::<(), pottery::codec::CodecError>(())
/// ```
pub fn encode_bytes<T: serde::Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    encode(value).map(String::into_bytes)
}

/// Decodes JSON as Python's `json.loads` reads it (`NaN`, `Infinity` and `-Infinity` included).
///
/// Integers beyond 64 bits (Python writes `2**64` as `18446744073709551616`) decode exactly
/// into `i128`/`u128`, and into a dynamic type whose visitor takes `visit_i128`/`visit_u128`.
/// A target that cannot hold a value exactly gets an error, never a rounded or replaced value
/// whose bytes would differ when written back:
///
/// | stored by Python | `f64` | `i64`, `u64` | `i128`, `u128` | [`Value`] | `serde_json::Value` |
/// |---|---|---|---|---|---|
/// | `NaN`, `Infinity` | exact | error | error | exact | error (it would read `null`) |
/// | `2**64` | exact (a power of two) | error | exact | exact | error |
/// | `2**64 + 1` | error | error | exact | exact | error |
/// | `2**200`, `1e400` | error | error | error | exact (as text) | error |
///
/// and for strings and objects (`String` and struct or map targets on the left):
///
/// | stored by Python | `String` | [`Value`] | `serde_json::Value` |
/// |---|---|---|---|
/// | `'\ud800'` (a lone surrogate), stored `"\ud800"` | error ("lone surrogate in string") | exact: [`Value::Escaped`], its escaped form, written back unchanged | error |
/// | `{'\ud800': 1}` (one in a key) | error | error | error |
/// | `{9: 'b', 10: 'a'}`, stored `{"9": "b", "10": "a"}` | (a map reads it) | exact: a [`Map`] keeps the read order | read, but written back `{"10": "a", "9": "b"}` |
///
/// Other self-describing targets (untagged enums, a dynamic type of your own) get NaN and the
/// infinities as `f64`, integers beyond 64 bits through `visit_i128`/`visit_u128`, and an error
/// for numbers beyond 128 bits.
///
/// [`Value`] is the dynamic type that keeps everything.
///
/// ```
/// use pottery::codec::decode;
/// assert_eq!(decode::<u128>(b"18446744073709551616")?, 1 << 64);
/// assert!(decode::<serde_json::Value>(b"18446744073709551616").is_err());
/// assert_eq!(decode::<f64>(b"18446744073709551616")?, 2f64.powi(64));
/// assert!(decode::<f64>(b"18446744073709551617").is_err());
/// assert!(decode::<f64>(b"1e400").is_err());
/// assert!(decode::<serde_json::Value>(b"NaN").is_err());
/// # Ok::<(), pottery::codec::CodecError>(())
/// ```
///
/// ```
/// let v: Vec<f64> = pottery::codec::decode(b"[1, 2.5, NaN]")?;
/// assert_eq!(v[..2], [1.0, 2.5]);
/// assert!(v[2].is_nan());
/// # Ok::<(), pottery::codec::CodecError>(())
/// ```
#[inline]
pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    // Integers and plain strings, the most common values, skip the parser (same result).
    if let Some(i) = de::small_int(bytes) {
        return T::deserialize(de::SmallInt(i));
    }
    decode_node(bytes)
}

/// The small integer `bytes` are the JSON of, if they are one that [`decode`] reads without
/// its parser.
#[inline]
pub(crate) fn small_int(bytes: &[u8]) -> Option<i64> {
    de::small_int(bytes)
}

/// [`decode`] of bytes that [`small_int`] read as `i`: the same result, without reading them
/// again.
#[inline]
pub(crate) fn decode_small_int<T: serde::de::DeserializeOwned>(i: i64) -> Result<T, CodecError> {
    T::deserialize(de::SmallInt(i))
}

/// [`decode`] of anything but a small integer (out of line: the integer's path is inlined).
#[inline(never)]
fn decode_node<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let node = match de::plain_str(bytes) {
        Some(node) => node,
        None => de::parse(bytes)?,
    };
    T::deserialize(node)
}

/// What pottery can store: any `Serialize + DeserializeOwned + Send` type, encoded as Python
/// pottery's JSON. It is implemented for every such type and only shortens bounds: a
/// `RedisDict<K, V>` takes `K: Storable, V: Storable`.
///
/// ```
/// fn store<T: pottery::codec::Storable>(value: &T) -> Vec<u8> {
///     pottery::codec::encode_bytes(value).unwrap()
/// }
/// assert_eq!(store(&vec![1, 2]), b"[1, 2]");
/// ```
pub trait Storable: serde::Serialize + serde::de::DeserializeOwned + Send {}

impl<T: serde::Serialize + serde::de::DeserializeOwned + Send> Storable for T {}
