//! `#[synchronize]`: every call runs under a fresh Redlock.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Expr, ItemFn, Lit, LitBool, LitInt, LitStr, ReturnType, Type};

use crate::common::{hidden, inner_fn, outer_sig, plain_args, unknown};

/// Whether the type is spelled `Result<..>` (std's, `io::Result`, `anyhow::Result`, …).
fn is_result(ty: &Type) -> bool {
    match ty {
        Type::Path(p) => p.path.segments.last().is_some_and(|s| s.ident == "Result"),
        _ => false,
    }
}

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let item: ItemFn = syn::parse2(item)?;
    let mut key: Option<LitStr> = None;
    let mut masters: Option<Expr> = None;
    let mut ttl_ms: Option<LitInt> = None;
    let mut blocking: Option<LitBool> = None;
    let mut timeout: Option<Lit> = None;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("key") {
            key = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("masters") {
            masters = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("auto_release_time") {
            ttl_ms = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("blocking") {
            blocking = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("timeout") {
            let lit: Lit = meta.value()?.parse()?;
            if !matches!(lit, Lit::Int(_) | Lit::Float(_)) {
                return Err(syn::Error::new(
                    lit.span(),
                    "`timeout` is a number of seconds",
                ));
            }
            timeout = Some(lit);
        } else {
            return Err(unknown(
                meta.path.span(),
                "synchronize",
                "`key = \"...\"`, `masters = <expr>`, `auto_release_time = <ms>`, \
                 `blocking = <bool>` and `timeout = <seconds>`",
            ));
        }
        Ok(())
    });
    syn::parse::Parser::parse2(parser, args)?;
    let Some(key) = key else {
        return Err(syn::Error::new(
            proc_macro2::Span::call_site(),
            "#[synchronize] needs a lock name: #[synchronize(key = \"...\")]",
        ));
    };
    let sig = &item.sig;
    let arguments = plain_args(sig, "synchronize")?;
    let ret_span = match &sig.output {
        ReturnType::Type(_, ty) if is_result(ty) => ty.span(),
        ReturnType::Type(_, ty) => {
            return Err(syn::Error::new(
                ty.span(),
                "#[synchronize] needs a function returning `Result<T, E>` with \
                 `E: From<pottery::Error>`: not getting the lock is returned as an `Err`",
            ));
        }
        ReturnType::Default => {
            return Err(syn::Error::new(
                sig.span(),
                "#[synchronize] needs a function returning `Result<T, E>` with \
                 `E: From<pottery::Error>`: not getting the lock is returned as an `Err`",
            ));
        }
    };
    // An error type without `From<pottery::Error>` is reported at the return type.
    let lock_failed = quote_spanned!(ret_span=>
        ::core::result::Result::Err(::core::convert::From::from(__e)));
    let names: Vec<_> = arguments.iter().map(|(n, _)| n).collect();
    let inner_name = hidden("synchronized", &sig.ident);
    let inner = inner_fn(&item, &inner_name);
    let outer = outer_sig(sig);
    let vis = &item.vis;
    let attrs: Vec<_> = item.attrs.iter().collect();
    let masters = match &masters {
        Some(e) => quote_spanned!(e.span()=> #e),
        None => quote!(match ::pottery::default_redis() {
            ::core::result::Result::Ok(__r) => ::std::vec![__r],
            ::core::result::Result::Err(__e) =>
                return #lock_failed,
        }),
    };
    let mut configure = quote!(__lock);
    if let Some(ms) = &ttl_ms {
        configure = quote!(#configure.auto_release_time(::core::time::Duration::from_millis(#ms)));
    }
    if let Some(b) = &blocking {
        configure = quote!(#configure.context_manager_blocking(#b));
    }
    if let Some(t) = &timeout {
        configure = quote!(#configure.context_manager_timeout(::core::option::Option::Some(
            ::core::time::Duration::from_secs_f64(#t as f64)
        )));
    }
    let body = if sig.asyncness.is_some() {
        quote! {
            match ::pottery::aio::synchronize(#key, #masters, |__lock| #configure, || #inner_name(#(#names),*)).await {
                ::core::result::Result::Ok(__out) => __out,
                ::core::result::Result::Err(__e) => #lock_failed,
            }
        }
    } else {
        quote! {
            match ::pottery::synchronize(#key, #masters, |__lock| #configure, || #inner_name(#(#names),*)) {
                ::core::result::Result::Ok(__out) => __out,
                ::core::result::Result::Err(__e) => #lock_failed,
            }
        }
    };
    Ok(quote! {
        #(#attrs)*
        // `From::from` is spanned on the user's return type (for a clear error); when the
        // error type is pottery's own, the conversion is the identity.
        #[allow(clippy::useless_conversion)]
        #vis #outer {
            #inner
            #body
        }
    })
}
