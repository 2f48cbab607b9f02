//! What part of a function's result a cache stores (`#[redis_cache]` picks the policy from the
//! return type).

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Which part of a function's result a cache stores. Used by `#[redis_cache]` (which picks the
/// policy from the return type) and by [`RedisCache::get_or_try_compute`].
#[doc(hidden)]
pub trait Store<Out> {
    /// What is stored.
    type Stored: Serialize;
    /// The part to store, if any.
    fn stored(out: &Out) -> Option<&Self::Stored>;
}

/// A [`Store`] policy that can also turn a stored value back into a result.
#[doc(hidden)]
pub trait Memo<Out>: Store<Out> {
    /// The result for a hit.
    fn hit(v: Self::Stored) -> Out;
}

/// The whole result is stored (any type; what pottery does).
#[doc(hidden)]
pub struct Whole;
/// For bypass: the whole result, which needs only `Serialize`.
#[doc(hidden)]
pub struct AsIs;
/// `Option<T>`: `Some` is stored, `None` is not.
#[doc(hidden)]
pub struct SomeOnly;
/// `Result<T, E>`: `Ok` is stored, `Err` is not (and `E` needs no trait).
#[doc(hidden)]
pub struct OkOnly;
/// `Result<Option<T>, E>`: `Ok(Some)` is stored.
#[doc(hidden)]
pub struct OkSome;

impl<V: Serialize> Store<V> for AsIs {
    type Stored = V;
    fn stored(out: &V) -> Option<&V> {
        Some(out)
    }
}

impl<V: Serialize + DeserializeOwned> Store<V> for Whole {
    type Stored = V;
    fn stored(out: &V) -> Option<&V> {
        Some(out)
    }
}
impl<V: Serialize + DeserializeOwned> Memo<V> for Whole {
    fn hit(v: V) -> V {
        v
    }
}

impl<T: Serialize + DeserializeOwned> Store<Option<T>> for SomeOnly {
    type Stored = T;
    fn stored(out: &Option<T>) -> Option<&T> {
        out.as_ref()
    }
}
impl<T: Serialize + DeserializeOwned> Memo<Option<T>> for SomeOnly {
    fn hit(v: T) -> Option<T> {
        Some(v)
    }
}

impl<T: Serialize + DeserializeOwned, E> Store<std::result::Result<T, E>> for OkOnly {
    type Stored = T;
    fn stored(out: &std::result::Result<T, E>) -> Option<&T> {
        out.as_ref().ok()
    }
}
impl<T: Serialize + DeserializeOwned, E> Memo<std::result::Result<T, E>> for OkOnly {
    fn hit(v: T) -> std::result::Result<T, E> {
        Ok(v)
    }
}

impl<T: Serialize + DeserializeOwned, E> Store<std::result::Result<Option<T>, E>> for OkSome {
    type Stored = T;
    fn stored(out: &std::result::Result<Option<T>, E>) -> Option<&T> {
        out.as_ref().ok().and_then(Option::as_ref)
    }
}
impl<T: Serialize + DeserializeOwned, E> Memo<std::result::Result<Option<T>, E>> for OkSome {
    fn hit(v: T) -> std::result::Result<Option<T>, E> {
        Ok(Some(v))
    }
}
