//! Parsing `#[redis_cache(...)]`'s arguments into [`CacheArgs`].

use proc_macro2::TokenStream;
use quote::quote;
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Expr, Ident, LitBool, Path};

use crate::common::{Unit, crate_arg, duration_arg, duration_expr, unknown};

/// What `#[redis_cache(...)]` says, typed (durations already as `Option<Duration>`
/// expressions).
pub(super) struct CacheArgs {
    pub(super) key: Option<Expr>,
    pub(super) redis: Option<Expr>,
    pub(super) timeout: Option<TokenStream>,
    pub(super) ttl: Option<TokenStream>,
    pub(super) single_flight: bool,
    pub(super) cache_none: bool,
    pub(super) skip: Vec<Ident>,
    pub(super) companions: bool,
    pub(super) krate: Option<Path>,
}

pub(super) fn parse(args: TokenStream) -> syn::Result<CacheArgs> {
    let mut krate: Option<Path> = None;
    let mut key: Option<Expr> = None;
    let mut redis: Option<Expr> = None;
    let mut timeout: Option<TokenStream> = None;
    let mut cache_none = false;
    let mut ttl: Option<TokenStream> = None;
    let mut single_flight = false;
    let mut with_companions = true;
    let mut skip: Vec<Ident> = Vec::new();
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("crate") {
            krate = Some(crate_arg(&meta)?);
        } else if meta.path.is_ident("key") {
            key = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("redis") {
            redis = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("ttl") {
            let d = duration_arg(&meta, "ttl", Unit::Seconds)?;
            ttl = Some(quote!(::core::option::Option::Some(#d)));
        } else if meta.path.is_ident("single_flight") {
            let b: LitBool = meta.value()?.parse()?;
            single_flight = b.value;
        } else if meta.path.is_ident("companions") {
            let b: LitBool = meta.value()?.parse()?;
            with_companions = b.value;
        } else if meta.path.is_ident("cache_none") {
            let b: LitBool = meta.value()?.parse()?;
            cache_none = b.value;
        } else if meta.path.is_ident("skip") {
            let value = meta.value()?;
            let content;
            syn::bracketed!(content in value);
            let names = content.parse_terminated(Ident::parse_any, syn::Token![,])?;
            skip.extend(names);
        } else if meta.path.is_ident("timeout") {
            let expr: Expr = meta.value()?.parse()?;
            let forever = matches!(&expr, Expr::Path(p) if p.path.is_ident("none") || p.path.is_ident("None"));
            timeout = Some(if forever {
                quote!(::core::option::Option::None)
            } else {
                let d = duration_expr(&expr, "timeout", Unit::Seconds)?;
                quote!(::core::option::Option::Some(#d))
            });
        } else {
            return Err(unknown(
                meta.path.span(),
                "redis_cache",
                "`key = <&str expr>`, `redis = <expr>`, `timeout = <seconds or Duration> | none`, \
                 `ttl = <seconds or Duration>`, `single_flight = <bool>`, `cache_none = <bool>`, \
                 `skip = [<argument>, ..]`, `companions = <bool>` and `crate = <path to pottery>`",
            ));
        }
        Ok(())
    });
    syn::parse::Parser::parse2(parser, args)?;
    Ok(CacheArgs {
        key,
        redis,
        timeout,
        ttl,
        single_flight,
        cache_none,
        skip,
        companions: with_companions,
        krate,
    })
}
