//! The encoder: a `serde::Serializer` that writes CPython's `json.dumps(x, sort_keys=True)`.

use std::cmp::Ordering;
use std::fmt::Write;

use serde::ser::{self, Impossible, Serialize};

use super::CodecError;
use super::float::{write_f32, write_f64};

type Result<T> = std::result::Result<T, CodecError>;

/// Appends `s` as a JSON string literal with Python's `ensure_ascii=True` escaping.
#[inline]
pub(crate) fn write_str(out: &mut String, s: &str) {
    // The common case, printable ASCII with nothing to escape, in one copy (what
    // `write_escaped` writes for it, character by character).
    if s.bytes()
        .all(|b| matches!(b, b' '..=b'~') && b != b'"' && b != b'\\')
    {
        out.reserve(s.len() + 2);
        out.push('"');
        out.push_str(s);
        out.push('"');
        return;
    }
    write_escaped(out, s);
}

/// [`write_str`] of a string with something to escape.
#[inline(never)]
fn write_escaped(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// Whether `raw` is the inside of a JSON string literal: parsed as one it is a string (lone
/// surrogates allowed), and it ends no earlier than its closing quote.
fn is_escaped_string_body(raw: &str) -> bool {
    let literal = format!("\"{raw}\"");
    !raw.chars().any(char::is_control)
        && matches!(
            super::de::parse(literal.as_bytes()),
            Ok(super::de::Node::Str(_) | super::de::Node::Escaped(_))
        )
}

pub(crate) struct Ser<'a> {
    pub(crate) out: &'a mut String,
    /// Write the next map's members in the order given instead of sorting them (set for a
    /// [`Map`](super::Map) read from bytes, so that it is written back as it was read).
    pub(crate) ordered: bool,
}

impl<'a> Ser<'a> {
    #[inline]
    pub(crate) fn new(out: &'a mut String) -> Self {
        Ser {
            out,
            ordered: false,
        }
    }
}

impl<'a> ser::Serializer for Ser<'a> {
    type Ok = ();
    type Error = CodecError;
    type SerializeSeq = SeqSer<'a>;
    type SerializeTuple = SeqSer<'a>;
    type SerializeTupleStruct = SeqSer<'a>;
    type SerializeTupleVariant = SeqSer<'a>;
    type SerializeMap = MapSer<'a>;
    type SerializeStruct = MapSer<'a>;
    type SerializeStructVariant = MapSer<'a>;

    fn serialize_bool(self, v: bool) -> Result<()> {
        self.out.push_str(if v { "true" } else { "false" });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<()> {
        self.serialize_i64(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result<()> {
        self.serialize_i64(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result<()> {
        self.serialize_i64(v.into())
    }
    fn serialize_i64(self, v: i64) -> Result<()> {
        self.out.push_str(itoa::Buffer::new().format(v));
        Ok(())
    }
    fn serialize_i128(self, v: i128) -> Result<()> {
        self.out.push_str(itoa::Buffer::new().format(v));
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<()> {
        self.serialize_u64(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<()> {
        self.serialize_u64(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<()> {
        self.serialize_u64(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result<()> {
        self.out.push_str(itoa::Buffer::new().format(v));
        Ok(())
    }
    fn serialize_u128(self, v: u128) -> Result<()> {
        self.out.push_str(itoa::Buffer::new().format(v));
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<()> {
        write_f32(self.out, v);
        Ok(())
    }
    fn serialize_f64(self, v: f64) -> Result<()> {
        write_f64(self.out, v);
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<()> {
        write_str(self.out, v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    #[inline]
    fn serialize_str(self, v: &str) -> Result<()> {
        write_str(self.out, v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<()> {
        let mut seq = ser::Serializer::serialize_seq(self, Some(v.len()))?;
        for b in v {
            ser::SerializeSeq::serialize_element(&mut seq, b)?;
        }
        ser::SerializeSeq::end(seq)
    }
    fn serialize_none(self) -> Result<()> {
        self.out.push_str("null");
        Ok(())
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<()> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<()> {
        self.serialize_none()
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<()> {
        self.serialize_none()
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<()> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        name: &'static str,
        v: &T,
    ) -> Result<()> {
        if name == super::value::NUMBER_TOKEN {
            // A number kept as text by `pottery::codec::Value`: written as it was read.
            let mut quoted = String::new();
            v.serialize(Ser::new(&mut quoted))?;
            let text = quoted.trim_matches('"');
            if !super::value::is_number_text(text) {
                return Err(CodecError::new(format!("{text:?} is not a JSON number")));
            }
            self.out.push_str(text);
            return Ok(());
        }
        if name == super::value::ESCAPED_TOKEN {
            // A string with a lone surrogate, kept by `pottery::codec::Value` in its escaped
            // form: written as it was read, once checked to be the inside of one JSON string
            // literal (no control characters, no unescaped quote), so nothing else can be
            // smuggled in.
            let mut quoted = String::new();
            v.serialize(Ser::new(&mut quoted))?;
            let raw: String = super::decode(quoted.as_bytes())?;
            if !is_escaped_string_body(&raw) {
                return Err(CodecError::new(format!(
                    "{raw:?} is not the escaped text of a JSON string"
                )));
            }
            self.out.push('"');
            self.out.push_str(&raw);
            self.out.push('"');
            return Ok(());
        }
        if name == super::value::ORDERED_TOKEN {
            // A `codec::Map` in the order it was read: no sorting.
            return v.serialize(Ser {
                out: self.out,
                ordered: true,
            });
        }
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<()> {
        self.out.push('{');
        write_str(self.out, variant);
        self.out.push_str(": ");
        value.serialize(Ser::new(self.out))?;
        self.out.push('}');
        Ok(())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<SeqSer<'a>> {
        self.out.push('[');
        Ok(SeqSer {
            out: self.out,
            first: true,
            close: "]",
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqSer<'a>> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<SeqSer<'a>> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<SeqSer<'a>> {
        self.out.push('{');
        write_str(self.out, variant);
        self.out.push_str(": [");
        Ok(SeqSer {
            out: self.out,
            first: true,
            close: "]}",
        })
    }
    fn serialize_map(self, len: Option<usize>) -> Result<MapSer<'a>> {
        let mut map = MapSer::new(self.out, len.unwrap_or(0), "}");
        map.keep_order = self.ordered;
        Ok(map)
    }
    fn serialize_struct(self, _: &'static str, len: usize) -> Result<MapSer<'a>> {
        Ok(MapSer::new(self.out, len, "}"))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<MapSer<'a>> {
        self.out.push('{');
        write_str(self.out, variant);
        self.out.push_str(": ");
        Ok(MapSer::new(self.out, len, "}}"))
    }
}

pub(crate) struct SeqSer<'a> {
    out: &'a mut String,
    first: bool,
    close: &'static str,
}

impl SeqSer<'_> {
    fn element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<()> {
        if !self.first {
            self.out.push_str(", ");
        }
        self.first = false;
        value.serialize(Ser::new(self.out))
    }
    fn finish(self) -> Result<()> {
        self.out.push_str(self.close);
        Ok(())
    }
}

/// The four serde sequence traits, all served by [`SeqSer::element`] and [`SeqSer::finish`].
macro_rules! seq_impls {
    ($($tr:ident :: $method:ident),*) => {$(
        impl ser::$tr for SeqSer<'_> {
            type Ok = ();
            type Error = CodecError;
            fn $method<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<()> {
                self.element(value)
            }
            fn end(self) -> Result<()> {
                self.finish()
            }
        }
    )*};
}
seq_impls!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

/// The original key of an object member, which is what Python sorts by.
#[derive(Debug, Clone)]
enum SortKey {
    Str(String),
    Int(i128),
    Float(f64),
    Null,
}

impl SortKey {
    fn kind(&self) -> u8 {
        match self {
            SortKey::Str(_) => 0,
            SortKey::Int(_) | SortKey::Float(_) => 1,
            SortKey::Null => 2,
        }
    }
    fn as_f64(&self) -> f64 {
        match self {
            SortKey::Int(i) => *i as f64,
            SortKey::Float(f) => *f,
            _ => f64::NAN,
        }
    }
    fn cmp(&self, other: &SortKey) -> Ordering {
        match (self, other) {
            (SortKey::Str(a), SortKey::Str(b)) => a.cmp(b),
            (SortKey::Int(a), SortKey::Int(b)) => a.cmp(b),
            // Python compares an int and a float exactly; `as f64` would round 2^53 + 1.
            (SortKey::Int(a), SortKey::Float(b)) => int_float_cmp(*a, *b),
            (SortKey::Float(a), SortKey::Int(b)) => int_float_cmp(*b, *a).reverse(),
            // Python's `<` on NaN is always False, so NaN keys keep their place; treat as equal.
            (a, b) => a
                .as_f64()
                .partial_cmp(&b.as_f64())
                .unwrap_or(Ordering::Equal),
        }
    }
}

/// `i` against `f`, exactly (NaN compares equal: Python's `<` on it is always False).
fn int_float_cmp(i: i128, f: f64) -> Ordering {
    const TWO_127: f64 = 170_141_183_460_469_231_731_687_303_715_884_105_728.0;
    if f.is_nan() {
        return Ordering::Equal;
    }
    if f >= TWO_127 {
        return Ordering::Less;
    }
    if f < -TWO_127 {
        return Ordering::Greater;
    }
    let whole = f.trunc();
    // Exact: `whole` is integral and within i128.
    #[allow(clippy::cast_possible_truncation)]
    let w = whole as i128;
    i.cmp(&w)
        .then_with(|| 0f64.partial_cmp(&(f - whole)).unwrap_or(Ordering::Equal))
}

struct Entry {
    sort: SortKey,
    key: String,
    value: String,
}

pub(crate) struct MapSer<'a> {
    out: &'a mut String,
    entries: Vec<Entry>,
    pending: Option<(SortKey, String)>,
    close: &'static str,
    keep_order: bool,
}

impl<'a> MapSer<'a> {
    fn new(out: &'a mut String, len: usize, close: &'static str) -> Self {
        MapSer {
            out,
            entries: Vec::with_capacity(len),
            pending: None,
            close,
            keep_order: false,
        }
    }

    fn push(
        &mut self,
        sort: SortKey,
        key: String,
        value: &(impl Serialize + ?Sized),
    ) -> Result<()> {
        let mut text = String::new();
        value.serialize(Ser::new(&mut text))?;
        self.entries.push(Entry {
            sort,
            key,
            value: text,
        });
        Ok(())
    }

    fn finish(mut self) -> Result<()> {
        if let Some(first) = self.entries.first() {
            let kind = first.sort.kind();
            if self.entries.len() > 1 && self.entries.iter().any(|e| e.sort.kind() != kind) {
                return Err(CodecError::new(
                    "map keys of different types cannot be sorted (Python's json.dumps with \
                     sort_keys=True raises TypeError)",
                ));
            }
            if self.entries.len() > 1 && kind == 2 {
                return Err(CodecError::new("a map cannot hold more than one null key"));
            }
        }
        if !self.keep_order {
            self.entries.sort_by(|a, b| a.sort.cmp(&b.sort));
        }
        self.out.push('{');
        for (i, e) in self.entries.iter().enumerate() {
            if i > 0 {
                self.out.push_str(", ");
            }
            self.out.push_str(&e.key);
            self.out.push_str(": ");
            self.out.push_str(&e.value);
        }
        self.out.push_str(self.close);
        Ok(())
    }
}

impl ser::SerializeMap for MapSer<'_> {
    type Ok = ();
    type Error = CodecError;
    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<()> {
        self.pending = Some(key.serialize(KeySer)?);
        Ok(())
    }
    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<()> {
        let (sort, key) = self
            .pending
            .take()
            .ok_or_else(|| CodecError::new("map value serialized before its key"))?;
        self.push(sort, key, value)
    }
    fn end(self) -> Result<()> {
        self.finish()
    }
}

impl ser::SerializeStruct for MapSer<'_> {
    type Ok = ();
    type Error = CodecError;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, name: &'static str, v: &T) -> Result<()> {
        let mut key = String::with_capacity(name.len() + 2);
        write_str(&mut key, name);
        self.push(SortKey::Str(name.to_owned()), key, v)
    }
    fn end(self) -> Result<()> {
        self.finish()
    }
}

impl ser::SerializeStructVariant for MapSer<'_> {
    type Ok = ();
    type Error = CodecError;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, name: &'static str, v: &T) -> Result<()> {
        ser::SerializeStruct::serialize_field(self, name, v)
    }
    fn end(self) -> Result<()> {
        self.finish()
    }
}

/// Serializes a map key: what Python would sort by, and the quoted member name it writes.
struct KeySer;

fn key_error(what: &str) -> CodecError {
    CodecError::new(format!(
        "keys must be str, int, float, bool or None, not {what}"
    ))
}

fn str_key(s: &str) -> (SortKey, String) {
    let mut key = String::with_capacity(s.len() + 2);
    write_str(&mut key, s);
    (SortKey::Str(s.to_owned()), key)
}

fn int_key(v: i128) -> (SortKey, String) {
    (SortKey::Int(v), format!("\"{v}\""))
}

impl ser::Serializer for KeySer {
    type Ok = (SortKey, String);
    type Error = CodecError;
    type SerializeSeq = Impossible<Self::Ok, CodecError>;
    type SerializeTuple = Impossible<Self::Ok, CodecError>;
    type SerializeTupleStruct = Impossible<Self::Ok, CodecError>;
    type SerializeTupleVariant = Impossible<Self::Ok, CodecError>;
    type SerializeMap = Impossible<Self::Ok, CodecError>;
    type SerializeStruct = Impossible<Self::Ok, CodecError>;
    type SerializeStructVariant = Impossible<Self::Ok, CodecError>;

    fn serialize_bool(self, v: bool) -> Result<Self::Ok> {
        // Python's True is the int 1 when sorting.
        Ok((SortKey::Int(v.into()), format!("\"{v}\"")))
    }
    fn serialize_i8(self, v: i8) -> Result<Self::Ok> {
        Ok(int_key(v.into()))
    }
    fn serialize_i16(self, v: i16) -> Result<Self::Ok> {
        Ok(int_key(v.into()))
    }
    fn serialize_i32(self, v: i32) -> Result<Self::Ok> {
        Ok(int_key(v.into()))
    }
    fn serialize_i64(self, v: i64) -> Result<Self::Ok> {
        Ok(int_key(v.into()))
    }
    fn serialize_i128(self, v: i128) -> Result<Self::Ok> {
        Ok(int_key(v))
    }
    fn serialize_u8(self, v: u8) -> Result<Self::Ok> {
        Ok(int_key(v.into()))
    }
    fn serialize_u16(self, v: u16) -> Result<Self::Ok> {
        Ok(int_key(v.into()))
    }
    fn serialize_u32(self, v: u32) -> Result<Self::Ok> {
        Ok(int_key(v.into()))
    }
    fn serialize_u64(self, v: u64) -> Result<Self::Ok> {
        Ok(int_key(v.into()))
    }
    fn serialize_u128(self, v: u128) -> Result<Self::Ok> {
        match i128::try_from(v) {
            Ok(i) => Ok(int_key(i)),
            Err(_) => Ok((SortKey::Float(v as f64), format!("\"{v}\""))),
        }
    }
    fn serialize_f32(self, v: f32) -> Result<Self::Ok> {
        let mut text = String::from("\"");
        write_f32(&mut text, v);
        text.push('"');
        Ok((SortKey::Float(v.into()), text))
    }
    fn serialize_f64(self, v: f64) -> Result<Self::Ok> {
        let mut text = String::from("\"");
        write_f64(&mut text, v);
        text.push('"');
        Ok((SortKey::Float(v), text))
    }
    fn serialize_char(self, v: char) -> Result<Self::Ok> {
        Ok(str_key(v.encode_utf8(&mut [0; 4])))
    }
    fn serialize_str(self, v: &str) -> Result<Self::Ok> {
        Ok(str_key(v))
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<Self::Ok> {
        Err(key_error("bytes"))
    }
    fn serialize_none(self) -> Result<Self::Ok> {
        Ok((SortKey::Null, "\"null\"".to_owned()))
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<Self::Ok> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Self::Ok> {
        self.serialize_none()
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<Self::Ok> {
        self.serialize_none()
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, v: &'static str) -> Result<Self::Ok> {
        Ok(str_key(v))
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<Self::Ok> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<Self::Ok> {
        Err(key_error("an enum variant with data"))
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq> {
        Err(key_error("a sequence"))
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple> {
        Err(key_error("a tuple"))
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct> {
        Err(key_error("a tuple struct"))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant> {
        Err(key_error("an enum variant with data"))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap> {
        Err(key_error("a map"))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct> {
        Err(key_error("a struct"))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant> {
        Err(key_error("an enum variant with data"))
    }
}
