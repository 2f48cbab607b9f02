//! A cached read's argument after its key, as the front table takes it: the bytes of its
//! pottery JSON, or — for a plain string, the common case (`RedisDict::get("name")`) — the
//! string itself, whose JSON is it between double quotes (so a hit neither writes the
//! argument out nor reads back bytes just written).

use serde::Serialize;
use serde::ser::{self, Impossible};

/// A read's argument, as pottery's JSON.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Arg<'a> {
    /// The JSON `"` + these bytes + `"`: a string of printable ASCII with no `"` nor `\`
    /// (which the encoder writes as it is, between quotes).
    Quoted(&'a [u8]),
    /// The encoded bytes.
    Json(&'a [u8]),
}

impl Arg<'_> {
    /// The length of the JSON.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        match self {
            Arg::Quoted(s) => s.len() + 2,
            Arg::Json(b) => b.len(),
        }
    }

    /// The bytes that tell it apart, hashed by the front table: a string's inside (quoted or
    /// encoded alike, so that both forms of one argument hash the same), else the JSON, with
    /// whether it is a string.
    #[inline]
    pub(crate) fn hashed(&self) -> (&[u8], bool) {
        match *self {
            Arg::Quoted(s) => (s, true),
            Arg::Json([b'"', inner @ .., b'"']) => (inner, true),
            Arg::Json(b) => (b, false),
        }
    }

    /// Writes the JSON into `out` (which holds `self.len()` bytes).
    #[cfg(test)]
    pub(crate) fn write_to(&self, out: &mut [u8]) {
        match *self {
            Arg::Quoted(s) => {
                let n = s.len();
                out[0] = b'"';
                out[1..=n].copy_from_slice(s);
                out[n + 1] = b'"';
            }
            Arg::Json(b) => out.copy_from_slice(b),
        }
    }

    /// Appends the JSON to `out`, after its length (as [`super::plan::push_ident`] does).
    pub(crate) fn push_ident(&self, out: &mut Vec<u8>) {
        match *self {
            Arg::Quoted(s) => {
                // A piece longer than 4 GiB is not a command argument Redis takes.
                let n = u32::try_from(self.len()).unwrap_or(u32::MAX);
                out.extend_from_slice(&n.to_le_bytes());
                out.push(b'"');
                out.extend_from_slice(s);
                out.push(b'"');
            }
            Arg::Json(b) => super::plan::push_ident(out, b),
        }
    }
}

/// What [`with_plain`] made of a value.
pub(crate) enum Taken<R> {
    /// A plain string: `f` of it.
    Plain(R),
    /// Anything else: its JSON is to be encoded ([`crate::codec::encode_into`]).
    Encode,
    /// A value that serialized a plain string and then failed anyway (its `Serialize` is
    /// odd): `f` ran, and no lookup is to be made of it again.
    Failed,
}

/// `f` of `value` if it serializes as a plain string, whose JSON is it between quotes (pottery's
/// encoding, [`crate::codec::encode_into`], without writing it out); else what to do. `f` is
/// called from one place only, so that it is inlined (with the lookup it makes).
#[inline]
pub(crate) fn with_plain<A: Serialize + ?Sized, R>(
    value: &A,
    f: impl FnOnce(&[u8]) -> R,
) -> Taken<R> {
    let mut f = Some(f);
    match value.serialize(Capture(&mut f)) {
        Ok(r) => Taken::Plain(r),
        Err(NotPlain) if f.is_some() => Taken::Encode,
        Err(NotPlain) => Taken::Failed,
    }
}

/// Whether the encoder writes `s` as it is between quotes ([`crate::codec::ser`]'s
/// `write_str`: printable ASCII, no `"`, no `\`).
#[inline]
fn plain(s: &str) -> bool {
    s.bytes()
        .all(|b| matches!(b, b' '..=b'~') && b != b'"' && b != b'\\')
}

/// A serializer that takes a plain string (and calls the function on it) and refuses
/// anything else (which is then encoded). Like the encoder, it is human-readable and
/// collects `Display` values as strings.
struct Capture<'f, F>(&'f mut Option<F>);

/// Not a plain string.
#[derive(Debug)]
struct NotPlain;

impl std::fmt::Display for NotPlain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not a plain string")
    }
}

impl std::error::Error for NotPlain {}

impl ser::Error for NotPlain {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        NotPlain
    }
}

/// Serializer methods that refuse their input.
macro_rules! refuse {
    ($($name:ident($($t:ty),*);)*) => {
        $(
            fn $name(self, $(_: $t),*) -> Result<R, NotPlain> {
                Err(NotPlain)
            }
        )*
    };
}

impl<F: FnOnce(&[u8]) -> R, R> ser::Serializer for Capture<'_, F> {
    type Ok = R;
    type Error = NotPlain;
    type SerializeSeq = Impossible<R, NotPlain>;
    type SerializeTuple = Impossible<R, NotPlain>;
    type SerializeTupleStruct = Impossible<R, NotPlain>;
    type SerializeTupleVariant = Impossible<R, NotPlain>;
    type SerializeMap = Impossible<R, NotPlain>;
    type SerializeStruct = Impossible<R, NotPlain>;
    type SerializeStructVariant = Impossible<R, NotPlain>;

    #[inline]
    fn serialize_str(self, v: &str) -> Result<R, NotPlain> {
        if !plain(v) {
            return Err(NotPlain);
        }
        let f = self.0.take().ok_or(NotPlain)?;
        Ok(f(v.as_bytes()))
    }

    refuse! {
        serialize_bool(bool);
        serialize_i8(i8);
        serialize_i16(i16);
        serialize_i32(i32);
        serialize_i64(i64);
        serialize_i128(i128);
        serialize_u8(u8);
        serialize_u16(u16);
        serialize_u32(u32);
        serialize_u64(u64);
        serialize_u128(u128);
        serialize_f32(f32);
        serialize_f64(f64);
        serialize_char(char);
        serialize_bytes(&[u8]);
        serialize_none();
        serialize_unit();
        serialize_unit_struct(&'static str);
        serialize_unit_variant(&'static str, u32, &'static str);
    }

    fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<R, NotPlain> {
        Err(NotPlain)
    }
    // Transparent, as in the encoder: a newtype of a plain string (a typed id) is plain.
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<R, NotPlain> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<R, NotPlain> {
        Err(NotPlain)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, NotPlain> {
        Err(NotPlain)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, NotPlain> {
        Err(NotPlain)
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, NotPlain> {
        Err(NotPlain)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, NotPlain> {
        Err(NotPlain)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, NotPlain> {
        Err(NotPlain)
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, NotPlain> {
        Err(NotPlain)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, NotPlain> {
        Err(NotPlain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON an argument is taken as.
    fn json<A: Serialize + ?Sized>(value: &A) -> Option<(Vec<u8>, bool)> {
        let mut buf = String::new();
        with_arg(value, &mut buf, |arg| {
            let mut out = vec![0; arg.len()];
            arg.write_to(&mut out);
            let mut ident = Vec::new();
            arg.push_ident(&mut ident);
            let mut expect = Vec::new();
            super::super::plan::push_ident(&mut expect, &out);
            assert_eq!(ident, expect);
            // Its JSON taken as JSON is told apart as it is (what the front table compares).
            assert_eq!(Arg::Json(&out).hashed(), arg.hashed());
            (out, matches!(arg, Arg::Quoted(_)))
        })
    }

    /// `f` of `value`'s JSON as the near cache takes it: [`with_plain`], else encoded.
    fn with_arg<A: Serialize + ?Sized, R>(
        value: &A,
        buf: &mut String,
        f: impl Fn(Arg<'_>) -> R,
    ) -> Option<R> {
        match with_plain(value, |s| f(Arg::Quoted(s))) {
            Taken::Plain(r) => Some(r),
            Taken::Encode => {
                crate::codec::encode_into(value, buf).ok()?;
                Some(f(Arg::Json(buf.as_bytes())))
            }
            Taken::Failed => None,
        }
    }

    /// Every argument is taken as its encoding; plain strings without writing it.
    #[test]
    fn is_the_encoding() {
        #[derive(Serialize)]
        struct New(String);
        #[derive(Serialize)]
        struct Pair {
            a: u8,
        }
        #[derive(Serialize)]
        enum E {
            A,
            B(u8),
        }
        let enc = |v: &dyn erased::Ser| v.encode();
        let cases: Vec<(Box<dyn erased::Ser>, bool)> = vec![
            (Box::new("k1"), true),
            (Box::new(String::from("k1")), true),
            (Box::new(""), true),
            (Box::new(" ~!#$%&'()*+,-./09:;<=>?@AZ[]^_`az{|}"), true),
            (Box::new("a\"b"), false),
            (Box::new("a\\b"), false),
            (Box::new("a\nb"), false),
            (Box::new("é"), false),
            (Box::new("\u{7f}"), false),
            (Box::new(1i64), false),
            (Box::new(-1i8), false),
            (Box::new(1.5f64), false),
            (Box::new('k'), false),
            (Box::new(true), false),
            (Box::new(None::<String>), false),
            (Box::new(Some("k1")), false),
            (Box::new(New("k1".into())), true),
            (Box::new(New("a\"b".into())), false),
            (Box::new(vec!["k1"]), false),
            (Box::new(Pair { a: 1 }), false),
            (Box::new(E::A), false),
            (Box::new(E::B(1)), false),
            (Box::new(std::net::Ipv4Addr::LOCALHOST), true),
        ];
        for (v, quoted) in cases {
            let expect = enc(&*v).into_bytes();
            let got = v.taken();
            assert_eq!(got, Some((expect.clone(), quoted)), "{expect:?}");
        }
    }

    /// A value that serializes a plain string and then fails is not looked up twice, and an
    /// unencodable one not at all.
    #[test]
    fn odd_values() {
        struct Odd;
        impl Serialize for Odd {
            fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str("k1")?;
                Err(ser::Error::custom("odd"))
            }
        }
        let calls = std::cell::Cell::new(0);
        let mut buf = String::new();
        assert_eq!(
            with_arg(&Odd, &mut buf, |_| calls.set(calls.get() + 1)),
            None
        );
        assert_eq!(calls.get(), 1);
        let nan = std::collections::HashMap::from([(vec![1], 1)]);
        assert_eq!(crate::codec::encode(&nan).ok(), None);
        assert_eq!(
            with_arg(&nan, &mut buf, |_| calls.set(calls.get() + 1)),
            None
        );
        assert_eq!(calls.get(), 1);
    }

    /// Values of different types behind one object, for the table above.
    mod erased {
        pub(super) trait Ser {
            fn encode(&self) -> String;
            fn taken(&self) -> Option<(Vec<u8>, bool)>;
        }
        impl<T: serde::Serialize> Ser for T {
            fn encode(&self) -> String {
                crate::codec::encode(self).unwrap()
            }
            fn taken(&self) -> Option<(Vec<u8>, bool)> {
                super::json(self)
            }
        }
    }
}
