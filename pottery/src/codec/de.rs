//! The decoder: a JSON parser that also reads Python's `NaN`, `Infinity` and `-Infinity`,
//! into a small tree that implements `serde::Deserializer`.

use serde::de::{self, IntoDeserializer, Visitor};
use serde::forward_to_deserialize_any;

use super::CodecError;

type Result<T> = std::result::Result<T, CodecError>;

/// A parsed JSON value.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Null,
    Bool(bool),
    Int(i128),
    UInt(u128),
    Float(f64),
    /// A number no Rust number type holds: an integer beyond 128 bits, or a float beyond
    /// `f64`'s range (`1e400`). Kept as written.
    Huge(String),
    Str(String),
    /// A string with a lone UTF-16 surrogate (Python's `'\ud800'`), which a Rust `String`
    /// cannot hold: the text between its quotes, escapes and all, as read.
    Escaped(String),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

/// Nesting deeper than this is refused rather than risking the stack.
const MAX_DEPTH: usize = 512;

/// A string literal as parsed.
enum Text {
    Plain(String),
    Escaped(String),
}

pub(crate) fn parse(bytes: &[u8]) -> Result<Node> {
    let mut p = Parser { s: bytes, i: 0 };
    p.ws();
    let node = p.value(0)?;
    p.ws();
    if p.i != p.s.len() {
        return Err(p.err("trailing characters"));
    }
    Ok(node)
}

/// What [`parse`] makes of `bytes` when they are a common scalar written with nothing around
/// it — an integer of at most 18 digits ([`small_int`]), or a string without escapes — read
/// without the parser; `None` for anything else (then [`parse`] reads it, and reports its
/// errors).
#[cfg(test)]
fn scalar(bytes: &[u8]) -> Option<Node> {
    small_int(bytes)
        .map(|i| Node::Int(i128::from(i)))
        .or_else(|| plain_str(bytes))
}

/// The integer `bytes` are when they are one of at most 18 digits (which always fits an
/// `i64`) with nothing around it: what [`parse`] reads as `Node::Int`.
#[inline]
pub(crate) fn small_int(bytes: &[u8]) -> Option<i64> {
    let (negative, digits) = match bytes {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, bytes),
    };
    // JSON has no leading zeros.
    if digits.is_empty() || digits.len() > 18 || (digits.len() > 1 && digits[0] == b'0') {
        return None;
    }
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n * 10 + i64::from(d - b'0');
    }
    Some(if negative { -n } else { n })
}

/// The string `bytes` are when they are a string literal without escapes with nothing
/// around it: what [`parse`] reads as `Node::Str`.
pub(crate) fn plain_str(bytes: &[u8]) -> Option<Node> {
    let [b'"', inner @ .., b'"'] = bytes else {
        return None;
    };
    if inner.iter().any(|&b| b == b'"' || b == b'\\') {
        return None;
    }
    std::str::from_utf8(inner)
        .ok()
        .map(|s| Node::Str(s.to_owned()))
}

/// `Node::Int` of an `i64`, without the node: the same answers to every request (see
/// `Node`'s deserializer), for the most common stored value.
pub(crate) struct SmallInt(pub(crate) i64);

impl<'de> de::Deserializer<'de> for SmallInt {
    type Error = CodecError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_i64(self.0)
    }

    fn deserialize_i128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_i128(i128::from(self.0))
    }

    fn deserialize_u128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_i128(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        Node::Int(i128::from(self.0)).deserialize_newtype_struct(name, visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        Node::Int(i128::from(self.0)).deserialize_enum(name, variants, visitor)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 u8 u16 u32 u64 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn err(&self, what: &str) -> CodecError {
        // Line and column, 1-based, like Python's json errors.
        let before = &self.s[..self.i.min(self.s.len())];
        let line = before.iter().filter(|b| **b == b'\n').count() + 1;
        let col = before.iter().rev().take_while(|b| **b != b'\n').count() + 1;
        CodecError::new(format!(
            "{what} at line {line} column {col} (char {})",
            self.i
        ))
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.i) {
            self.i += 1;
        }
    }

    fn eat(&mut self, lit: &str) -> bool {
        if self.s[self.i..].starts_with(lit.as_bytes()) {
            self.i += lit.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<Node> {
        if depth > MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        match self.s.get(self.i) {
            None => Err(self.err("expecting value")),
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => Ok(match self.string()? {
                Text::Plain(s) => Node::Str(s),
                Text::Escaped(s) => Node::Escaped(s),
            }),
            Some(b'n') if self.eat("null") => Ok(Node::Null),
            Some(b't') if self.eat("true") => Ok(Node::Bool(true)),
            Some(b'f') if self.eat("false") => Ok(Node::Bool(false)),
            Some(b'N') if self.eat("NaN") => Ok(Node::Float(f64::NAN)),
            Some(b'I') if self.eat("Infinity") => Ok(Node::Float(f64::INFINITY)),
            Some(b'-') if self.eat("-Infinity") => Ok(Node::Float(f64::NEG_INFINITY)),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.err("expecting value")),
        }
    }

    fn number(&mut self) -> Result<Node> {
        let start = self.i;
        if self.s.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        let digits = |p: &mut Self| {
            let from = p.i;
            while let Some(b'0'..=b'9') = p.s.get(p.i) {
                p.i += 1;
            }
            p.i - from
        };
        let int_start = self.i;
        let n = digits(self);
        if n == 0 || (n > 1 && self.s[int_start] == b'0') {
            self.i = start;
            return Err(self.err("invalid number"));
        }
        let mut is_float = false;
        if self.s.get(self.i) == Some(&b'.') {
            self.i += 1;
            is_float = true;
            if digits(self) == 0 {
                return Err(self.err("invalid number"));
            }
        }
        if let Some(b'e' | b'E') = self.s.get(self.i) {
            self.i += 1;
            is_float = true;
            if let Some(b'+' | b'-') = self.s.get(self.i) {
                self.i += 1;
            }
            if digits(self) == 0 {
                return Err(self.err("invalid number"));
            }
        }
        // The slice is ASCII digits and signs only.
        let text = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
        if !is_float {
            if let Ok(i) = text.parse::<i128>() {
                return Ok(Node::Int(i));
            }
            if let Ok(u) = text.parse::<u128>() {
                return Ok(Node::UInt(u));
            }
            return Ok(Node::Huge(text.to_owned()));
        }
        match text.parse::<f64>() {
            // Python reads `1e400` as `inf`, and writes it back as `Infinity`: a different value.
            Ok(f) if f.is_infinite() => Ok(Node::Huge(text.to_owned())),
            Ok(f) => Ok(Node::Float(f)),
            Err(_) => Err(self.err("invalid number")),
        }
    }

    fn hex4(&mut self) -> Result<u16> {
        let h = self
            .s
            .get(self.i..self.i + 4)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u16::from_str_radix(h, 16).ok())
            .ok_or_else(|| self.err("invalid \\uXXXX escape"))?;
        self.i += 4;
        Ok(h)
    }

    /// A string literal: its text, or, when it holds a lone surrogate, its escaped form.
    fn string(&mut self) -> Result<Text> {
        self.i += 1; // opening quote
        let start = self.i;
        let mut out = String::new();
        let mut lone = false;
        loop {
            // Copy the run of plain bytes in one go.
            let run = self.i;
            while let Some(&b) = self.s.get(self.i) {
                if b == b'"' || b == b'\\' {
                    break;
                }
                self.i += 1;
            }
            let chunk = std::str::from_utf8(&self.s[run..self.i])
                .map_err(|_| self.err("invalid UTF-8 in string"))?;
            out.push_str(chunk);
            match self.s.get(self.i) {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    let end = self.i;
                    self.i += 1;
                    if lone {
                        // Valid UTF-8: checked chunk by chunk, and escapes are ASCII.
                        let raw = std::str::from_utf8(&self.s[start..end])
                            .map_err(|_| self.err("invalid UTF-8 in string"))?;
                        return Ok(Text::Escaped(raw.to_owned()));
                    }
                    return Ok(Text::Plain(out));
                }
                Some(_) => {
                    self.i += 1;
                    let esc = *self
                        .s
                        .get(self.i)
                        .ok_or_else(|| self.err("unterminated string"))?;
                    self.i += 1;
                    match esc {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            if (0xd800..0xdc00).contains(&hi) {
                                let next = self.i;
                                if self.eat("\\u") {
                                    let lo = self.hex4()?;
                                    if (0xdc00..0xe000).contains(&lo) {
                                        let cp = 0x10000
                                            + ((u32::from(hi) - 0xd800) << 10)
                                            + (u32::from(lo) - 0xdc00);
                                        match char::from_u32(cp) {
                                            Some(c) => out.push(c),
                                            None => lone = true,
                                        }
                                        continue;
                                    }
                                    // Not a low surrogate: read that escape on its own.
                                    self.i = next;
                                }
                                lone = true;
                            } else {
                                match char::from_u32(u32::from(hi)) {
                                    Some(c) => out.push(c),
                                    None => lone = true,
                                }
                            }
                        }
                        _ => return Err(self.err("invalid escape")),
                    }
                }
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Node> {
        let items = self.items(b']', |p| p.value(depth + 1))?;
        Ok(Node::Array(items))
    }

    fn object(&mut self, depth: usize) -> Result<Node> {
        let members = self.items(b'}', |p| {
            if p.s.get(p.i) != Some(&b'"') {
                return Err(p.err("expecting property name enclosed in double quotes"));
            }
            let key = match p.string()? {
                Text::Plain(s) => s,
                Text::Escaped(_) => return Err(p.err("lone surrogate in object key")),
            };
            p.ws();
            if !p.eat(":") {
                return Err(p.err("expecting ':' delimiter"));
            }
            p.ws();
            Ok((key, p.value(depth + 1)?))
        })?;
        Ok(Node::Object(members))
    }

    /// The comma-separated items of an array or object, from its opening bracket (at `self.i`)
    /// to its `close`, each read by `item` (white space around them skipped).
    fn items<T>(
        &mut self,
        close: u8,
        mut item: impl FnMut(&mut Self) -> Result<T>,
    ) -> Result<Vec<T>> {
        let close_str = if close == b']' { "]" } else { "}" };
        self.i += 1;
        let mut items = Vec::new();
        self.ws();
        if self.eat(close_str) {
            return Ok(items);
        }
        loop {
            self.ws();
            items.push(item(self)?);
            self.ws();
            if self.eat(",") {
                continue;
            }
            if self.eat(close_str) {
                return Ok(items);
            }
            return Err(self.err(if close == b']' {
                "expecting ',' or ']'"
            } else {
                "expecting ',' or '}'"
            }));
        }
    }
}

impl<'de> de::Deserializer<'de> for Node {
    type Error = CodecError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Node::Null => visitor.visit_unit(),
            Node::Bool(b) => visitor.visit_bool(b),
            // Beyond 64 bits a self-describing target gets the exact value as an i128/u128:
            // kept by targets that take one, an error for those that cannot hold it
            // (serde_json::Value, untagged enums), never a rounded float whose bytes would
            // differ when written back.
            Node::Int(i) => match i64::try_from(i) {
                Ok(i) => visitor.visit_i64(i),
                Err(_) => match u64::try_from(i) {
                    Ok(u) => visitor.visit_u64(u),
                    Err(_) => visitor.visit_i128(i),
                },
            },
            Node::UInt(u) => visitor.visit_u128(u),
            // serde_json::Value cannot hold NaN or an infinity: it would read `null`, and
            // write that back. (Recognised by what its visitor expects; other self-describing
            // targets — untagged enums, a type of your own — get the float.)
            Node::Float(f) if !f.is_finite() && expects_json_value(&visitor) => {
                Err(CodecError::new(format!(
                    "{} cannot be held by serde_json::Value (it would read as null); decode it \
                     into f64 or pottery::codec::Value",
                    python_float(f)
                )))
            }
            Node::Float(f) => visitor.visit_f64(f),
            Node::Huge(text) => Err(CodecError::new(format!(
                "number {text} does not fit any Rust number type; decode it into \
                 pottery::codec::Value to keep it"
            ))),
            Node::Str(s) => visitor.visit_string(s),
            Node::Escaped(raw) => Err(CodecError::new(format!(
                "lone surrogate in string \"{raw}\": a Rust String cannot hold it; decode it \
                 into pottery::codec::Value to keep it"
            ))),
            Node::Array(items) => {
                let len = items.len();
                let mut seq = de::value::SeqDeserializer::new(items.into_iter());
                let value = visitor.visit_seq(&mut seq)?;
                seq.end().map_err(|_| {
                    CodecError::new(format!("array of {len} elements has too many elements"))
                })?;
                Ok(value)
            }
            Node::Object(members) => {
                let mut map = de::value::MapDeserializer::new(
                    members.into_iter().map(|(k, v)| (KeyDe(k), v)),
                );
                let value = visitor.visit_map(&mut map)?;
                map.end()?;
                Ok(value)
            }
        }
    }

    fn deserialize_i128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Node::Int(i) => visitor.visit_i128(i),
            Node::UInt(u) => visitor.visit_u128(u),
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_u128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_i128(visitor)
    }

    /// A float target takes an integer beyond 64 bits only when the float holds it exactly
    /// (`2**64` does, `2**64 + 1` does not).
    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let inexact = |text: String| {
            Err(CodecError::new(format!(
                "integer {text} does not fit a float exactly"
            )))
        };
        match self {
            Node::Int(i) if i64::try_from(i).is_err() && u64::try_from(i).is_err() => {
                let f = i as f64;
                // `as` saturates: 2^127 would come back as i128::MAX, hence the guard.
                if f as i128 == i && f != 2f64.powi(127) {
                    visitor.visit_f64(f)
                } else {
                    inexact(i.to_string())
                }
            }
            Node::UInt(u) => {
                let f = u as f64;
                if f as u128 == u && f != 2f64.powi(128) {
                    visitor.visit_f64(f)
                } else {
                    inexact(u.to_string())
                }
            }
            // NaN and the infinities are f64 values: exact.
            Node::Float(f) => visitor.visit_f64(f),
            // An integer beyond 128 bits: taken when the float holds it exactly (`2**200`).
            Node::Huge(text) => match text.parse::<f64>() {
                Ok(f) if f.is_finite() && format!("{f:.0}") == text => visitor.visit_f64(f),
                Ok(f) if f.is_finite() => inexact(text),
                _ => Err(CodecError::new(format!(
                    "number {text} is out of the range of a float"
                ))),
            },
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Node::Null => visitor.visit_none(),
            other => visitor.visit_some(other),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        if name == super::value::VALUE_TOKEN {
            return visitor.visit_newtype_struct(Faithful(self));
        }
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        match self {
            Node::Str(s) => visitor.visit_enum(s.into_deserializer()),
            Node::Object(mut members) if members.len() == 1 => {
                let (variant, value) = members.pop().unwrap_or((String::new(), Node::Null));
                visitor.visit_enum(EnumDe { variant, value })
            }
            _ => Err(CodecError::new(
                "expected an enum: a string or an object with one member",
            )),
        }
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 u8 u16 u32 u64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

/// Whether `visitor` is serde_json's `Value` visitor (known by what it expects).
fn expects_json_value<'de, V: Visitor<'de>>(visitor: &V) -> bool {
    struct Expecting<'a, V>(&'a V);
    impl<'de, V: Visitor<'de>> std::fmt::Display for Expecting<'_, V> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            self.0.expecting(f)
        }
    }
    Expecting(visitor).to_string() == "any valid JSON value"
}

/// Python's spelling of a non-finite float.
fn python_float(f: f64) -> &'static str {
    if f.is_nan() {
        "NaN"
    } else if f > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    }
}

/// A node read by [`pottery::codec::Value`](super::Value), which keeps every number exactly:
/// integers as `i128` (`visit_i128`), NaN and the infinities as floats, and numbers no Rust type
/// holds as their text (`visit_enum` with the text as a unit variant: nothing else this
/// deserializer produces calls it from `deserialize_any`).
struct Faithful(Node);

impl<'de> de::Deserializer<'de> for Faithful {
    type Error = CodecError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.0 {
            Node::Int(i) => visitor.visit_i128(i),
            Node::UInt(u) => visitor.visit_enum(u.to_string().into_deserializer()),
            Node::Huge(text) => visitor.visit_enum(text.into_deserializer()),
            // The whole literal, quotes included: a variant no number text can be.
            Node::Escaped(raw) => visitor.visit_enum(format!("\"{raw}\"").into_deserializer()),
            Node::Float(f) => visitor.visit_f64(f),
            other => other.deserialize_any(visitor),
        }
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map struct
        enum identifier ignored_any
    }
}

impl IntoDeserializer<'_, CodecError> for Node {
    type Deserializer = Node;
    fn into_deserializer(self) -> Node {
        self
    }
}

struct EnumDe {
    variant: String,
    value: Node,
}

impl<'de> de::EnumAccess<'de> for EnumDe {
    type Error = CodecError;
    type Variant = Node;
    fn variant_seed<S: de::DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Node)> {
        let v = seed.deserialize(self.variant.into_deserializer())?;
        Ok((v, self.value))
    }
}

impl<'de> de::VariantAccess<'de> for Node {
    type Error = CodecError;
    fn unit_variant(self) -> Result<()> {
        match self {
            Node::Null => Ok(()),
            _ => Err(CodecError::new("expected a unit variant")),
        }
    }
    fn newtype_variant_seed<S: de::DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value> {
        seed.deserialize(self)
    }
    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value> {
        de::Deserializer::deserialize_seq(self, visitor)
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        de::Deserializer::deserialize_map(self, visitor)
    }
}

/// An object member name: a string that integer, float and bool keys are parsed from, as
/// Python's `json.dumps` turned them into strings.
struct KeyDe(String);

impl KeyDe {
    fn parse<T: std::str::FromStr>(&self, what: &str) -> Result<T> {
        self.0
            .parse()
            .map_err(|_| CodecError::new(format!("object key {:?} is not {what}", self.0)))
    }
}

macro_rules! key_number {
    ($($method:ident $ty:ty => $visit:ident,)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            visitor.$visit(self.parse::<$ty>(concat!("a valid ", stringify!($ty)))?)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for KeyDe {
    type Error = CodecError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_string(self.0)
    }

    key_number! {
        deserialize_i8 i8 => visit_i8,
        deserialize_i16 i16 => visit_i16,
        deserialize_i32 i32 => visit_i32,
        deserialize_i64 i64 => visit_i64,
        deserialize_i128 i128 => visit_i128,
        deserialize_u8 u8 => visit_u8,
        deserialize_u16 u16 => visit_u16,
        deserialize_u32 u32 => visit_u32,
        deserialize_u64 u64 => visit_u64,
        deserialize_u128 u128 => visit_u128,
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_f32(key_float(&self.0)? as f32)
    }
    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_f64(key_float(&self.0)?)
    }
    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.0.as_str() {
            "true" => visitor.visit_bool(true),
            "false" => visitor.visit_bool(false),
            other => Err(CodecError::new(format!(
                "object key {other:?} is not a bool"
            ))),
        }
    }
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        if self.0 == "null" {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }
    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        if self.0 == "null" {
            visitor.visit_unit()
        } else {
            Err(CodecError::new(format!(
                "object key {:?} is not null",
                self.0
            )))
        }
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_newtype_struct(self)
    }
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_enum(self.0.into_deserializer())
    }

    forward_to_deserialize_any! {
        char str string bytes byte_buf unit_struct seq tuple tuple_struct map struct
        identifier ignored_any
    }
}

impl IntoDeserializer<'_, CodecError> for KeyDe {
    type Deserializer = KeyDe;
    fn into_deserializer(self) -> KeyDe {
        self
    }
}

fn key_float(s: &str) -> Result<f64> {
    match s {
        "NaN" => Ok(f64::NAN),
        "Infinity" => Ok(f64::INFINITY),
        "-Infinity" => Ok(f64::NEG_INFINITY),
        _ => s
            .parse()
            .map_err(|_| CodecError::new(format!("object key {s:?} is not a float"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scalar shortcut reads exactly what the parser reads, and leaves everything else
    /// (white space, escapes, floats, long or malformed numbers, bad UTF-8) to it.
    #[test]
    fn scalar_is_the_parser() {
        let inputs: &[&[u8]] = &[
            b"0",
            b"-0",
            b"7",
            b"-7",
            b"123456789012345678",
            b"-123456789012345678",
            b"1234567890123456789",
            b"99999999999999999999",
            b"01",
            b"-01",
            b"-",
            b"",
            b"1.5",
            b"1e3",
            b" 1",
            b"1 ",
            b"+1",
            b"1a",
            b"NaN",
            b"null",
            b"true",
            b"\"\"",
            b"\"abc\"",
            b"\"a b\"",
            b"\"\\n\"",
            b"\"a\"b\"",
            b"\"",
            b"\"\xc3\xa9\"",
            b"\"\xff\"",
            b"\"\t\"",
            b" \"a\"",
            b"\"a\" ",
            b"[1]",
            b"{}",
        ];
        for input in inputs {
            // `None`: left to the parser, errors and all.
            if let Some(fast) = scalar(input) {
                assert_eq!(
                    format!("{fast:?}"),
                    format!("{:?}", parse(input).expect("the parser reads it too")),
                    "{:?}",
                    String::from_utf8_lossy(input)
                );
            }
        }
        for common in [&b"42"[..], b"-42", b"0", b"\"abc\"", b"\"\""] {
            assert!(scalar(common).is_some(), "{common:?}");
        }
    }

    /// `SmallInt` answers every target as `Node::Int` does.
    #[test]
    fn small_int_is_the_node() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        enum E {
            A,
            B(i64),
        }
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct New(i64);
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        #[serde(untagged)]
        enum U {
            S(String),
            I(i64),
        }
        fn both<T: serde::de::DeserializeOwned + std::fmt::Debug>(i: i64) {
            let fast = format!("{:?}", T::deserialize(SmallInt(i)));
            let node = format!("{:?}", T::deserialize(Node::Int(i128::from(i))));
            assert_eq!(fast, node, "{i} as {}", std::any::type_name::<T>());
        }
        for i in [
            0,
            1,
            -1,
            255,
            256,
            -129,
            i64::from(i32::MAX) + 1,
            999_999_999_999_999_999,
        ] {
            both::<i64>(i);
            both::<i8>(i);
            both::<u8>(i);
            both::<u32>(i);
            both::<u64>(i);
            both::<i128>(i);
            both::<u128>(i);
            both::<f64>(i);
            both::<f32>(i);
            both::<Option<i64>>(i);
            both::<Option<Option<u8>>>(i);
            both::<bool>(i);
            both::<String>(i);
            both::<()>(i);
            both::<Vec<i64>>(i);
            both::<E>(i);
            both::<New>(i);
            both::<U>(i);
            both::<super::super::Value>(i);
            both::<serde_json::Value>(i);
            both::<std::collections::HashMap<String, i64>>(i);
        }
    }
}
