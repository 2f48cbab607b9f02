//! Procedural macros for [pottery](https://docs.rs/pottery): `#[redis_cache]`,
//! `#[synchronize]`, `#[timed]` and `#[derive(RedisBacked)]`.
//!
//! Use them through the `pottery` crate, which re-exports them
//! (`use pottery::{redis_cache, synchronize, timed};`); this crate only holds the compiler
//! plugins, and the code they generate calls into `pottery`.

use proc_macro::TokenStream;

mod backed;
mod common;
mod redis_cache;
mod synchronize;
mod timed;

/// Memoises a function in Redis with `pottery::RedisCache`. See the `pottery` crate's
/// documentation of `redis_cache`.
#[proc_macro_attribute]
pub fn redis_cache(args: TokenStream, item: TokenStream) -> TokenStream {
    redis_cache::expand(args.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Runs every call of a function under a fresh Redlock. See the `pottery` crate's
/// documentation of `synchronize`.
#[proc_macro_attribute]
pub fn synchronize(args: TokenStream, item: TokenStream) -> TokenStream {
    synchronize::expand(args.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Times every call of a function with `ContextTimer`. See the `pottery` crate's documentation
/// of `timed`.
#[proc_macro_attribute]
pub fn timed(args: TokenStream, item: TokenStream) -> TokenStream {
    timed::expand(args.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Stores a struct with named fields as a Redis hash and makes its typed handle. See the
/// `pottery` crate's documentation of `RedisBacked`.
#[proc_macro_derive(RedisBacked, attributes(redis))]
pub fn derive_redis_backed(item: TokenStream) -> TokenStream {
    backed::expand(item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
