//! Probabilistic structures: a Bloom filter and a HyperLogLog, bit-compatible with pottery.

pub mod bloom;
pub mod hyperloglog;
mod murmur;
