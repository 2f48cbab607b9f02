//! `#[redis_cache]`: the function, memoised through a `RedisCache`.
//!
//! Two shapes. A free function whose `key` and `redis` do not mention its arguments gets a
//! cache made once and a companion module of the same name (`cache_info`, `cache_clear`,
//! `bypass`, `wrapped`). A method (`&self`), or a function whose `key` / `redis` mention
//! `self` or an argument, has its body wrapped in place and the cache made per call from
//! those expressions (a literal key and a `redis` that mentions neither are still made once;
//! either way the handle keeps the cache's counters and circuit breaker per key).
//!
//! Both shapes get `<fn>_invalidate(args…)` and `<fn>_prime(args…, value)` next to the
//! function (methods of the same impl, with the same receiver, for a method), which compute
//! the entry from the same argument tuple as the call; `companions = false` leaves them out
//! (a method of a trait impl can have no items beside it).
//!
//! Parse ([`attr`]) → expand ([`expand`], with the [`companions`]).

mod attr;
mod companions;
mod expand;

use proc_macro2::TokenStream;

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let item: syn::ItemFn = syn::parse2(item)?;
    let args = attr::parse(args)?;
    let krate = args.krate.clone();
    let out = expand::expand(item, args)?;
    Ok(crate::common::with_crate(out, krate.as_ref()))
}
