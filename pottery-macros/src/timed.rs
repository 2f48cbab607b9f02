//! `#[timed]`: a timer started at the top of the body, reporting when dropped.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::{ItemFn, LitStr, Path};

use crate::common::{crate_arg, unknown, with_crate};

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let mut item: ItemFn = syn::parse2(item)?;
    let mut name: Option<LitStr> = None;
    let mut callback: Option<Path> = None;
    let mut krate: Option<Path> = None;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("crate") {
            krate = Some(crate_arg(&meta)?);
            Ok(())
        } else if meta.path.is_ident("name") {
            name = Some(meta.value()?.parse()?);
            Ok(())
        } else if meta.path.is_ident("callback") {
            callback = Some(meta.value()?.parse()?);
            Ok(())
        } else {
            Err(unknown(
                meta.path.span(),
                "timed",
                "`name = \"...\"`, `callback = path::to::function` and `crate = <path to pottery>`",
            ))
        }
    });
    syn::parse::Parser::parse2(parser, args)?;
    let name =
        name.unwrap_or_else(|| LitStr::new(&item.sig.ident.to_string(), item.sig.ident.span()));
    let callback = match callback {
        // Coerced here, so a callback of the wrong type is reported at the user's path.
        Some(path) => {
            quote_spanned!(path.span()=> ::core::option::Option::Some(#path as fn(&'static str, ::core::time::Duration)))
        }
        None => quote!(::core::option::Option::None),
    };
    let stmt: syn::Stmt = syn::parse_quote! {
        let __pottery_timed = ::__pottery_crate::private::Timed::start(#name, #callback);
    };
    item.block.stmts.insert(0, stmt);
    Ok(with_crate(quote!(#item), krate.as_ref()))
}

use syn::spanned::Spanned;
