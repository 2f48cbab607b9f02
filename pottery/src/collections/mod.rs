//! Redis-backed containers with std's shape.

pub mod counter;
pub mod dict;
pub mod list;
pub mod set;
