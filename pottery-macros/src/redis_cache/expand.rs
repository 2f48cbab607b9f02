//! Expansion: the wrapper (in place for methods and per-call caches, with a companion module
//! for free functions), the storing policy, and the companions.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Expr, GenericArgument, Ident, ItemFn, PathArguments, ReturnType, Type};

use super::attr::CacheArgs;
use super::companions::{Companions, companion_vis, companions};
use crate::common::{
    Receiver, hidden, inner_fn, mentions, no_generics, outer_sig, receiver_and_args,
};

/// `Name<A, ..>`'s last path segment name and type arguments.
fn generic_of<'t>(ty: &'t Type, name: &str) -> Option<Vec<&'t Type>> {
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    if last.ident != name {
        return None;
    }
    match &last.arguments {
        PathArguments::AngleBracketed(a) => Some(
            a.args
                .iter()
                .filter_map(|g| match g {
                    GenericArgument::Type(t) => Some(t),
                    _ => None,
                })
                .collect(),
        ),
        _ => None,
    }
}

/// Which part of the result is stored, from the return type as written: `Ok` of a `Result`,
/// `Some` of an `Option` (unless `cache_none`), both for `Result<Option<T>, E>`, else all.
pub(super) fn policy(ret: &Type, cache_none: bool) -> TokenStream {
    let is_option = |t: &Type| generic_of(t, "Option").is_some_and(|a| a.len() == 1);
    if let Some(args) = generic_of(ret, "Result")
        && !args.is_empty()
    {
        if !cache_none && is_option(args[0]) {
            return quote!(::__pottery_crate::private::OkSome);
        }
        return quote!(::__pottery_crate::private::OkOnly);
    }
    if !cache_none && is_option(ret) {
        return quote!(::__pottery_crate::private::SomeOnly);
    }
    quote!(::__pottery_crate::private::Whole)
}

pub(super) fn expand(item: ItemFn, args: CacheArgs) -> syn::Result<TokenStream> {
    let CacheArgs {
        key,
        redis,
        timeout,
        ttl,
        single_flight,
        cache_none,
        skip,
        companions: with_companions,
        krate: _,
    } = args;
    let sig = &item.sig;
    no_generics(
        sig,
        "redis_cache",
        "every instantiation would share one cache whose entries have different types",
    )?;
    let (receiver, arguments) = receiver_and_args(sig, "redis_cache")?;
    for s in &skip {
        if !arguments.iter().any(|(n, _)| n == s) {
            return Err(syn::Error::new(
                s.span(),
                format!("`skip` names `{s}`, which is not an argument of this function"),
            ));
        }
    }
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
    let all_names: Vec<&Ident> = arguments.iter().map(|(n, _)| n).collect();
    let per_call = receiver == Receiver::Shared
        || key
            .as_ref()
            .is_some_and(|k| mentions(&quote!(#k), &all_names))
        || redis
            .as_ref()
            .is_some_and(|r| mentions(&quote!(#r), &all_names));
    let entry: Vec<_> = arguments
        .iter()
        .filter(|(n, _)| !skip.contains(n))
        .collect();
    // Arguments that do not serialize are reported at their types.
    let arg_checks: Vec<_> = entry
        .iter()
        .map(
            |(_, t)| quote_spanned!(t.span()=> ::__pottery_crate::private::cache_argument::<#t>();),
        )
        .collect();
    let entry_names: Vec<_> = entry.iter().map(|(n, _)| n).collect();
    let args_tuple = if entry_names.is_empty() {
        quote!([(); 0])
    } else {
        quote!((#(&#entry_names,)*))
    };
    let key_tokens = |k: &Option<Expr>, fallback: TokenStream| match k {
        Some(k) => quote_spanned!(k.span()=> ::core::option::Option::Some(
            ::core::convert::AsRef::<str>::as_ref(&#k)
        )),
        None => fallback,
    };
    let redis_tokens = match &redis {
        Some(e) => quote_spanned!(e.span()=> ::__pottery_crate::private::IntoRedis::into_redis(#e)),
        None => quote!(::__pottery_crate::default_redis()),
    };
    let timeout = timeout.unwrap_or_else(|| {
        quote!(::core::option::Option::Some(
            ::core::time::Duration::from_secs(60)
        ))
    });
    let ttl = ttl.unwrap_or_else(|| quote!(::core::option::Option::None));
    let single_flight = if single_flight {
        quote!(::core::option::Option::Some(
            ::core::time::Duration::from_secs(10)
        ))
    } else {
        quote!(::core::option::Option::None)
    };
    // Errors about the return type's traits point at the user's return type.
    let policy = policy(&ret, cache_none);
    let ret_span = ret.span();
    let policy = quote_spanned!(ret_span=> #policy);
    let is_async = sig.asyncness.is_some();

    if per_call {
        // In place: the body runs as a closure (or an async block) inside the wrapper.
        let make_once = !key
            .as_ref()
            .is_some_and(|k| mentions(&quote!(#k), &all_names))
            && !redis
                .as_ref()
                .is_some_and(|r| mentions(&quote!(#r), &all_names));
        // Without a key, a per-call cache still needs a stable one: the function's path.
        let default_key = quote!(::core::option::Option::Some(::core::concat!(
            ::core::module_path!(), "::", #name_str
        )));
        let key_expr = key_tokens(&key, default_key);
        let make = quote!(::__pottery_crate::private::make_cache(#name_str, #key_expr, #redis_tokens, #timeout, #ttl, #single_flight));
        let setup = if make_once {
            quote! {
                static __POTTERY_CACHE: ::std::sync::OnceLock<::core::option::Option<::__pottery_crate::RedisCache>> =
                    ::std::sync::OnceLock::new();
                let __cache = __POTTERY_CACHE.get_or_init(|| #make).as_ref();
            }
        } else {
            quote! {
                let __cache_made = #make;
                let __cache = __cache_made.as_ref();
            }
        };
        let body = &item.block;
        let attrs = &item.attrs;
        let vis = &item.vis;
        let call = if is_async {
            quote_spanned!(ret_span=> ::__pottery_crate::private::cached_async::<#policy, #ret, _>(
                __field, move || async move #body
            ).await)
        } else {
            quote_spanned!(ret_span=> ::__pottery_crate::private::cached::<#policy, #ret>(
                __field, move || -> #ret #body
            ))
        };
        let outer = outer_sig(sig);
        let params: Vec<TokenStream> = outer
            .inputs
            .iter()
            .map(|a| match a {
                syn::FnArg::Receiver(r) => quote!(#r),
                syn::FnArg::Typed(t) => quote!(#t),
            })
            .collect();
        let companions = with_companions.then(|| {
            companions(&Companions {
                item: &item,
                name_str: &name_str,
                params,
                setup: setup.clone(),
                args_tuple: &args_tuple,
                policy: &policy,
                ret: &ret,
            })
        });
        return Ok(quote! {
            #(#attrs)*
            #[allow(clippy::redundant_closure_call)]
            #vis #outer {
                #(#arg_checks)*
                #setup
                let __field = ::__pottery_crate::private::cache_field(#name_str, __cache, &#args_tuple);
                #call
            }

            #companions
        });
    }

    let vis = &item.vis;
    let attrs: Vec<_> = item.attrs.iter().collect();
    let inner_name = hidden("cached", name);
    let inner = inner_fn(&item, &inner_name);
    let outer = outer_sig(sig);
    let names: Vec<_> = arguments.iter().map(|(n, _)| n).collect();
    let typed: Vec<_> = arguments.iter().map(|(n, t)| quote!(#n: #t)).collect();
    let key = key_tokens(&key, quote!(::core::option::Option::None));
    let cvis = companion_vis(vis);
    let (memo, bypass, call) = if is_async {
        (
            quote_spanned!(ret_span=> ::__pottery_crate::private::cached_async::<#policy, #ret, _>(
                __field, move || super::#inner_name(#(#names),*)
            ).await),
            quote_spanned!(ret_span=> ::__pottery_crate::private::cached_bypass_async::<#policy, #ret, _>(
                __field, move || super::#inner_name(#(#names),*)
            ).await),
            quote!(super::#inner_name(#(#names),*).await),
        )
    } else {
        (
            quote_spanned!(ret_span=> ::__pottery_crate::private::cached::<#policy, #ret>(
                __field, move || super::#inner_name(#(#names),*)
            )),
            quote_spanned!(ret_span=> ::__pottery_crate::private::cached_bypass::<#policy, #ret>(
                __field, move || super::#inner_name(#(#names),*)
            )),
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
    let fn_companions = with_companions.then(|| {
        companions(&Companions {
            item: &item,
            name_str: &name_str,
            params: typed.clone(),
            setup: quote!(let __cache = #name::cache();),
            args_tuple: &args_tuple,
            policy: &policy,
            ret: &ret,
        })
    });
    let async_companions = is_async.then(|| {
        quote! {
            /// [`cache_info`] without blocking the runtime.
            #cvis async fn cache_info_async() -> ::__pottery_crate::Result<::__pottery_crate::CacheInfo> {
                match cache() {
                    ::core::option::Option::Some(c) => c.to_async().info().await,
                    ::core::option::Option::None => ::core::result::Result::Ok(::core::default::Default::default()),
                }
            }

            /// [`cache_clear`] without blocking the runtime.
            #cvis async fn cache_clear_async() -> ::__pottery_crate::Result<()> {
                match cache() {
                    ::core::option::Option::Some(c) => c.to_async().clear().await,
                    ::core::option::Option::None => ::core::result::Result::Ok(()),
                }
            }
        }
    });

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
            #cvis fn cache() -> ::core::option::Option<&'static ::__pottery_crate::RedisCache> {
                static CACHE: ::std::sync::OnceLock<::core::option::Option<::__pottery_crate::RedisCache>> =
                    ::std::sync::OnceLock::new();
                CACHE
                    .get_or_init(|| ::__pottery_crate::private::make_cache(#name_str, #key, #redis_tokens, #timeout, #ttl, #single_flight))
                    .as_ref()
            }

            /// Hits and misses of this process, and the entries in Redis (pottery's
            /// `cache_info()`).
            #cvis fn cache_info() -> ::__pottery_crate::Result<::__pottery_crate::CacheInfo> {
                match cache() {
                    ::core::option::Option::Some(c) => c.info(),
                    ::core::option::Option::None => ::core::result::Result::Ok(::core::default::Default::default()),
                }
            }

            /// Deletes every entry and resets the counters (pottery's `cache_clear()`).
            #cvis fn cache_clear() -> ::__pottery_crate::Result<()> {
                match cache() {
                    ::core::option::Option::Some(c) => c.clear(),
                    ::core::option::Option::None => ::core::result::Result::Ok(()),
                }
            }

            #async_companions

            pub(super) #asyncness fn __call(#(#typed),*) -> #ret {
                #(#arg_checks)*
                let __cache = cache();
                let __field = ::__pottery_crate::private::cache_field(#name_str, __cache, &#args_tuple);
                #memo
            }

            /// Calls the function and stores its result, counting neither a hit nor a miss
            /// (pottery's `__bypass__`).
            #cvis #asyncness fn bypass(#(#typed),*) -> #ret {
                let __cache = cache();
                let __field = ::__pottery_crate::private::cache_field(#name_str, __cache, &#args_tuple);
                #bypass
            }

            /// The function without the cache (pottery's `__wrapped__`).
            #cvis #asyncness fn wrapped(#(#typed),*) -> #ret {
                #call
            }
        }

        #fn_companions
    })
}
