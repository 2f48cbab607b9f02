//! `#[synchronize]`: every call runs under a lease of a Redlock. The lock is made once when
//! its `key` and `masters` mention neither `self` nor an argument, else per call (a lock per
//! account: `key = format!("account:{id}")`).

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Expr, Ident, ItemFn, LitBool, ReturnType, Type};

use crate::common::{
    Unit, crate_arg, duration_arg, mentions, outer_sig, receiver_and_args, unknown, with_crate,
};

/// Whether the type is spelled `Result<..>` (std's, `io::Result`, `anyhow::Result`, …).
fn is_result(ty: &Type) -> bool {
    match ty {
        Type::Path(p) => p.path.segments.last().is_some_and(|s| s.ident == "Result"),
        _ => false,
    }
}

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let item: ItemFn = syn::parse2(item)?;
    let mut key: Option<Expr> = None;
    let mut masters: Option<Expr> = None;
    let mut ttl: Option<TokenStream> = None;
    let mut blocking: Option<LitBool> = None;
    let mut timeout: Option<TokenStream> = None;
    let mut krate: Option<syn::Path> = None;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("crate") {
            krate = Some(crate_arg(&meta)?);
        } else if meta.path.is_ident("key") {
            key = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("masters") {
            masters = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("auto_release_time") {
            ttl = Some(duration_arg(&meta, "auto_release_time", Unit::Millis)?);
        } else if meta.path.is_ident("blocking") {
            blocking = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("timeout") {
            timeout = Some(duration_arg(&meta, "timeout", Unit::Seconds)?);
        } else {
            return Err(unknown(
                meta.path.span(),
                "synchronize",
                "`key = <&str expr>`, `masters = <expr>`, `auto_release_time = <ms or \
                 Duration>`, `blocking = <bool>`, `timeout = <seconds or Duration>` and `crate = <path to pottery>`",
            ));
        }
        Ok(())
    });
    syn::parse::Parser::parse2(parser, args)?;
    let Some(key) = key else {
        return Err(syn::Error::new(
            proc_macro2::Span::call_site(),
            "#[synchronize] needs a lock name: #[synchronize(key = \"...\")], or an expression \
             such as `key = format!(\"account:{id}\")`",
        ));
    };
    let sig = &item.sig;
    let (_, arguments) = receiver_and_args(sig, "synchronize")?;
    let ret = match &sig.output {
        ReturnType::Type(_, ty) if is_result(ty) => ty.as_ref().clone(),
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
    let ret_span = ret.span();
    // An error type without `From<pottery::Error>` is reported at the return type.
    let lock_failed = quote_spanned!(ret_span=>
        ::core::result::Result::Err(::core::convert::From::from(__e)));
    let names: Vec<&Ident> = arguments.iter().map(|(n, _)| n).collect();
    let per_call = mentions(&quote!(#key), &names)
        || masters
            .as_ref()
            .is_some_and(|m| mentions(&quote!(#m), &names));
    let vis = &item.vis;
    let attrs: Vec<_> = item.attrs.iter().collect();
    let outer = outer_sig(sig);
    let masters = match &masters {
        Some(e) => quote_spanned!(e.span()=> #e),
        None => quote!(::__pottery_crate::private::default_masters()),
    };
    let key = quote_spanned!(key.span()=> ::core::convert::AsRef::<str>::as_ref(&#key));
    let mut configure = quote!(__lock);
    if let Some(ttl) = &ttl {
        configure = quote!(#configure.auto_release_time(#ttl));
    }
    if let Some(b) = &blocking {
        configure = quote!(#configure.context_manager_blocking(#b));
    }
    if let Some(t) = &timeout {
        configure = quote!(#configure.context_manager_timeout(::core::option::Option::Some(#t)));
    }
    let is_async = sig.asyncness.is_some();
    let lock_type = if is_async {
        quote!(::__pottery_crate::aio::Redlock)
    } else {
        quote!(::__pottery_crate::Redlock)
    };
    let make = quote!({
        let __lock = #lock_type::new(#key, #masters);
        #configure
    });
    let setup = if per_call {
        quote!(let __lock = &#make;)
    } else {
        quote! {
            static __POTTERY_LOCK: ::std::sync::OnceLock<#lock_type> = ::std::sync::OnceLock::new();
            let __lock = __POTTERY_LOCK.get_or_init(|| #make);
        }
    };
    let body = &item.block;
    let run = if is_async {
        quote!(::__pottery_crate::private::synchronized_async(__lock, move || async move #body).await)
    } else {
        quote!(::__pottery_crate::private::synchronized(__lock, move || -> #ret #body))
    };
    Ok(with_crate(
        quote! {
        #(#attrs)*
        // `From::from` is spanned on the user's return type (for a clear error); when the
        // error type is pottery's own, the conversion is the identity.
        #[allow(clippy::useless_conversion, clippy::redundant_closure_call)]
        #vis #outer {
            #setup
            match #run {
                ::core::result::Result::Ok(__out) => __out,
                ::core::result::Result::Err(__e) => #lock_failed,
            }
        }
        },
        krate.as_ref(),
    ))
}
