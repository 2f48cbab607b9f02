//! Guides to the parts of pottery that are not one type: connecting, errors and retries,
//! structs as hashes, batches, timers, and what differs from Python pottery. Each type's own
//! guide is its module's documentation ([`dict`](crate::dict), [`redlock`](crate::redlock),
//! [`redis_cache`](mod@crate::redis_cache), …). Every example here is a doctest.

#[doc = include_str!("connecting.md")]
pub mod connecting {}

#[doc = include_str!("errors.md")]
pub mod errors {}

#[doc = include_str!("structs.md")]
pub mod structs {}

#[doc = include_str!("batches.md")]
pub mod batches {}

#[doc = include_str!("timers.md")]
pub mod timers {}

#[doc = include_str!("beyond.md")]
pub mod beyond {}

#[doc = include_str!("compatibility.md")]
pub mod compatibility {}
