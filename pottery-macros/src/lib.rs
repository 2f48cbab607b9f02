//! Procedural macros for [pottery](https://docs.rs/pottery).
//!
//! Use them through the `pottery` crate, which re-exports them; this crate only holds
//! the compiler plugins. The macros themselves (`#[redis_cache]`, `#[synchronize]`,
//! `#[timed]`, `#[derive(RedisBacked)]`) are being built; see the project's issues.
