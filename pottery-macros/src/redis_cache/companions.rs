//! The companions: `<fn>_invalidate(args…)` and `<fn>_prime(args…, value)`, next to the
//! function, computing the entry as the call does.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Ident, ItemFn, Type, Visibility};

/// The visibility of the companions: as visible as the function.
pub(super) fn companion_vis(vis: &Visibility) -> TokenStream {
    match vis {
        Visibility::Public(_) => quote!(pub),
        Visibility::Inherited => quote!(pub(super)),
        Visibility::Restricted(r) if r.path.is_ident("crate") => quote!(pub(crate)),
        Visibility::Restricted(r) if r.path.is_ident("self") => quote!(pub(super)),
        Visibility::Restricted(_) => quote!(pub(crate)),
    }
}

/// What the `_invalidate` and `_prime` companions are made of.
pub(super) struct Companions<'a> {
    pub(super) item: &'a ItemFn,
    pub(super) name_str: &'a str,
    /// The companions' parameters: the receiver (if any) and every argument of the function,
    /// so that `key` and `redis` expressions evaluate as in the call.
    pub(super) params: Vec<TokenStream>,
    /// Makes `__cache: Option<&RedisCache>`, as the call does.
    pub(super) setup: TokenStream,
    /// The entry's arguments: the very tokens the call encodes.
    pub(super) args_tuple: &'a TokenStream,
    pub(super) policy: &'a TokenStream,
    pub(super) ret: &'a Type,
}

/// `<fn>_invalidate(args…)` and `<fn>_prime(args…, value)`: remove or store the entry a call
/// with these arguments reads, through the same cache and the same argument tuple.
pub(super) fn companions(c: &Companions<'_>) -> TokenStream {
    let sig = &c.item.sig;
    let name = &sig.ident;
    let vis = &c.item.vis;
    let invalidate = Ident::new(&format!("{}_invalidate", name.unraw()), name.span());
    let prime = Ident::new(&format!("{}_prime", name.unraw()), name.span());
    let (params, setup, args_tuple, policy, ret, name_str) = (
        &c.params,
        &c.setup,
        c.args_tuple,
        c.policy,
        c.ret,
        c.name_str,
    );
    // The value's name, unless an argument has it.
    let taken = |v: &str| {
        sig.inputs.iter().any(|a| match a {
            syn::FnArg::Typed(t) => matches!(t.pat.as_ref(), syn::Pat::Ident(p) if p.ident == v),
            syn::FnArg::Receiver(_) => false,
        })
    };
    let value = ["value", "new_value", "cached_value"]
        .into_iter()
        .find(|v| !taken(v))
        .unwrap_or("__pottery_value");
    let value = Ident::new(value, proc_macro2::Span::call_site());
    // The field exactly as the call computes it (the same helper, the same tokens: a
    // misuse is also reported once, not once per companion).
    let field = quote!(let __field = ::__pottery_crate::private::cache_field(#name_str, __cache, &#args_tuple););
    let (asyncness, remove, store) = if sig.asyncness.is_some() {
        (
            quote!(async),
            quote!(::__pottery_crate::private::cache_remove_async(__field).await),
            quote_spanned!(ret.span()=> ::__pottery_crate::private::cache_prime_async(__field, #value).await),
        )
    } else {
        (
            quote!(),
            quote!(::__pottery_crate::private::cache_remove(__field)),
            quote_spanned!(ret.span()=> ::__pottery_crate::private::cache_prime(__field, #value)),
        )
    };
    // What the call stores: errors about the return type's traits point at it, as the call's.
    let stored =
        quote_spanned!(ret.span()=> <#policy as ::__pottery_crate::private::Store<#ret>>::Stored);
    let invalidate_doc = format!(
        "Deletes the cached result of [`{name}`] for these arguments, so that the next call \
         computes it again: whether one was there. Errors (Redis unreachable, no handle) are \
         returned. Made by `#[redis_cache]`."
    );
    let prime_doc = format!(
        "Stores `{value}` as the cached result of [`{name}`] for these arguments, replacing \
         any: the next call returns it without computing. Errors are returned. Made by \
         `#[redis_cache]`."
    );
    quote! {
        #[doc = #invalidate_doc]
        #[allow(unused_variables, dead_code, clippy::too_many_arguments)]
        #vis #asyncness fn #invalidate(#(#params),*) -> ::__pottery_crate::Result<bool> {
            #setup
            #field
            #remove
        }

        #[doc = #prime_doc]
        #[allow(unused_variables, dead_code, clippy::too_many_arguments)]
        #vis #asyncness fn #prime(
            #(#params,)*
            #value: &#stored,
        ) -> ::__pottery_crate::Result<()> {
            #setup
            #field
            #store
        }
    }
}
