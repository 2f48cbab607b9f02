//! `#[redis_cache]`: the function, memoised through a `RedisCache` made once, with companions
//! in a module of the same name.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Expr, ItemFn, LitInt, LitStr, ReturnType, Visibility};

use crate::common::{hidden, inner_fn, no_generics, outer_sig, plain_args, unknown};

/// The visibility of the companions: as visible as the function.
fn companion_vis(vis: &Visibility) -> TokenStream {
    match vis {
        Visibility::Public(_) => quote!(pub),
        Visibility::Inherited => quote!(pub(super)),
        Visibility::Restricted(r) if r.path.is_ident("crate") => quote!(pub(crate)),
        Visibility::Restricted(r) if r.path.is_ident("self") => quote!(pub(super)),
        Visibility::Restricted(_) => quote!(pub(crate)),
    }
}

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let item: ItemFn = syn::parse2(item)?;
    let mut key: Option<LitStr> = None;
    let mut redis: Option<Expr> = None;
    let mut timeout: Option<TokenStream> = None;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("key") {
            key = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("redis") {
            redis = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("timeout") {
            let value = meta.value()?;
            if value.peek(syn::Ident) {
                let none: syn::Ident = value.parse()?;
                if none != "none" {
                    return Err(syn::Error::new(
                        none.span(),
                        "`timeout` is a number of seconds, or `none` to keep entries forever",
                    ));
                }
                timeout = Some(quote!(::core::option::Option::None));
            } else {
                let secs: LitInt = value.parse()?;
                let n: u64 = secs.base10_parse()?;
                timeout = Some(quote!(::core::option::Option::Some(
                    ::core::time::Duration::from_secs(#n)
                )));
            }
        } else {
            return Err(unknown(
                meta.path.span(),
                "redis_cache",
                "`key = \"...\"`, `redis = <expr>` and `timeout = <seconds> | none`",
            ));
        }
        Ok(())
    });
    syn::parse::Parser::parse2(parser, args)?;

    let sig = &item.sig;
    no_generics(
        sig,
        "redis_cache",
        "every instantiation would share one cache whose entries have different types",
    )?;
    let arguments = plain_args(sig, "redis_cache")?;
    let ret = match &sig.output {
        ReturnType::Type(_, ty) => ty.as_ref().clone(),
        ReturnType::Default => {
            return Err(syn::Error::new(
                sig.span(),
                "#[redis_cache] needs a function that returns a value to cache",
            ));
        }
    };
    let name = &sig.ident;
    let name_str = name.to_string();
    let vis = &item.vis;
    let attrs: Vec<_> = item.attrs.iter().collect();
    let inner_name = hidden("cached", name);
    let inner = inner_fn(&item, &inner_name);
    let outer = outer_sig(sig);
    let names: Vec<_> = arguments.iter().map(|(n, _)| n).collect();
    let typed: Vec<_> = arguments.iter().map(|(n, t)| quote!(#n: #t)).collect();
    let key = match &key {
        Some(k) => quote!(::core::option::Option::Some(#k)),
        None => quote!(::core::option::Option::None),
    };
    let redis = match &redis {
        Some(e) => quote_spanned!(e.span()=> ::pottery::private::IntoRedis::into_redis(#e)),
        None => quote!(::pottery::default_redis()),
    };
    let timeout = timeout.unwrap_or_else(|| {
        quote!(::core::option::Option::Some(
            ::core::time::Duration::from_secs(60)
        ))
    });
    let cvis = companion_vis(vis);
    // Arguments that do not serialize are reported at their types.
    let arg_checks: Vec<_> = arguments
        .iter()
        .map(|(_, t)| quote_spanned!(t.span()=> ::pottery::private::cache_argument::<#t>();))
        .collect();
    let args_tuple = if names.is_empty() {
        quote!([(); 0])
    } else {
        quote!((#(&#names,)*))
    };
    // Errors about the return type's traits point at the user's return type.
    let ret_span = ret.span();
    let (lookup, store, call) = if sig.asyncness.is_some() {
        (
            quote_spanned!(ret_span=> ::pottery::private::cache_lookup_async::<#ret>(#name_str, __cache, __field.as_deref()).await),
            quote!(::pottery::private::cache_store_async(#name_str, __cache, __field, &__value).await),
            quote!(super::#inner_name(#(#names),*).await),
        )
    } else {
        (
            quote_spanned!(ret_span=> ::pottery::private::cache_lookup::<#ret>(#name_str, __cache, __field.as_deref())),
            quote!(::pottery::private::cache_store(#name_str, __cache, __field, &__value)),
            quote!(super::#inner_name(#(#names),*)),
        )
    };
    let asyncness = &sig.asyncness;
    let dot_await = asyncness.map(|_| quote!(.await));
    let doc = format!(
        "The cache of [`{name}`]: its counters, `cache_clear`, `bypass` (call and store, \
         counting nothing) and `wrapped` (the function without the cache). Made by \
         `#[redis_cache]`."
    );

    Ok(quote! {
        #(#attrs)*
        #vis #outer {
            #name::__call(#(#names),*)#dot_await
        }

        #[doc(hidden)]
        #inner

        #[doc = #doc]
        #[allow(dead_code)]
        #vis mod #name {
            #[allow(unused_imports)]
            use super::*;

            /// The `RedisCache` behind the function (`None` if no Redis handle could be made).
            #cvis fn cache() -> ::core::option::Option<&'static ::pottery::RedisCache> {
                static CACHE: ::std::sync::OnceLock<::core::option::Option<::pottery::RedisCache>> =
                    ::std::sync::OnceLock::new();
                CACHE
                    .get_or_init(|| ::pottery::private::make_cache(#name_str, #key, #redis, #timeout))
                    .as_ref()
            }

            /// Hits and misses of this process, and the entries in Redis (pottery's
            /// `cache_info()`).
            #cvis fn cache_info() -> ::pottery::Result<::pottery::CacheInfo> {
                match cache() {
                    ::core::option::Option::Some(c) => c.info(),
                    ::core::option::Option::None => ::core::result::Result::Ok(::core::default::Default::default()),
                }
            }

            /// Deletes every entry and resets the counters (pottery's `cache_clear()`).
            #cvis fn cache_clear() -> ::pottery::Result<()> {
                match cache() {
                    ::core::option::Option::Some(c) => c.clear(),
                    ::core::option::Option::None => ::core::result::Result::Ok(()),
                }
            }

            pub(super) #asyncness fn __call(#(#typed),*) -> #ret {
                #(#arg_checks)*
                let __cache = cache();
                let __field = ::pottery::private::cache_field(#name_str, __cache, &#args_tuple);
                if let ::core::option::Option::Some(__hit) = #lookup {
                    return __hit;
                }
                let __value: #ret = #call;
                #store;
                __value
            }

            /// Calls the function and stores its result, counting neither a hit nor a miss
            /// (pottery's `__bypass__`).
            #cvis #asyncness fn bypass(#(#typed),*) -> #ret {
                let __cache = cache();
                let __field = ::pottery::private::cache_field(#name_str, __cache, &#args_tuple);
                let __value: #ret = #call;
                #store;
                __value
            }

            /// The function without the cache (pottery's `__wrapped__`).
            #cvis #asyncness fn wrapped(#(#typed),*) -> #ret {
                #call
            }
        }
    })
}
