//! What the attribute macros share: reading the function they are put on.

use proc_macro2::{Ident, Span, TokenStream};
use quote::quote;
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, Pat, PatType, Signature};

/// How a function takes `self`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Receiver {
    /// A free function (or an associated function without `self`).
    None,
    /// `&self` or `self`: supported.
    Shared,
}

/// The function's receiver and plain arguments (names and types). Errors (spanned on the
/// user's code) for `&mut self` and for patterns other than a name.
pub(crate) fn receiver_and_args(
    sig: &Signature,
    macro_name: &str,
) -> syn::Result<(Receiver, Vec<(Ident, syn::Type)>)> {
    let mut receiver = Receiver::None;
    let mut out = Vec::new();
    for arg in &sig.inputs {
        match arg {
            FnArg::Receiver(r) => {
                if matches!(r.kind, syn::ReceiverKind::Reference(_, _, Some(_))) {
                    return Err(syn::Error::new(
                        r.span(),
                        format!(
                            "#[{macro_name}] does not support `&mut self`: the call may run \
                             concurrently with others on shared state; take `&self` (with \
                             interior mutability) instead"
                        ),
                    ));
                }
                receiver = Receiver::Shared;
            }
            FnArg::Typed(PatType { pat, ty, .. }) => match pat.as_ref() {
                Pat::Ident(p) if p.subpat.is_none() => {
                    out.push((p.ident.clone(), ty.as_ref().clone()))
                }
                other => {
                    return Err(syn::Error::new(
                        other.span(),
                        format!(
                            "#[{macro_name}] needs every argument to be a plain name, like `n: u64`"
                        ),
                    ));
                }
            },
        }
    }
    Ok((receiver, out))
}

/// Whether `tokens` mention `self` or one of `names` (then an expression must be evaluated
/// per call, inside the function).
pub(crate) fn mentions(tokens: &TokenStream, names: &[&Ident]) -> bool {
    tokens.clone().into_iter().any(|t| match t {
        proc_macro2::TokenTree::Ident(i) => i == "self" || names.iter().any(|n| i == **n),
        proc_macro2::TokenTree::Group(g) => mentions(&g.stream(), names),
        _ => false,
    })
}

/// Refuses generic functions, naming the macro.
pub(crate) fn no_generics(sig: &Signature, macro_name: &str, why: &str) -> syn::Result<()> {
    if sig.generics.params.is_empty() {
        Ok(())
    } else {
        Err(syn::Error::new(
            sig.generics.span(),
            format!("#[{macro_name}] does not support generic functions: {why}"),
        ))
    }
}

/// The inner function: the user's function, unchanged but for its name and visibility.
pub(crate) fn inner_fn(item: &ItemFn, name: &Ident) -> TokenStream {
    let mut inner = item.clone();
    inner.sig.ident = name.clone();
    inner.vis = syn::Visibility::Inherited;
    inner.attrs.retain(|a| !a.path().is_ident("doc"));
    quote!(#[allow(clippy::too_many_arguments)] #inner)
}

/// The signature the wrapper shows: the user's, with `mut` dropped from argument names (the
/// wrapper only passes them on).
pub(crate) fn outer_sig(sig: &Signature) -> Signature {
    let mut sig = sig.clone();
    for arg in sig.inputs.iter_mut() {
        if let FnArg::Typed(PatType { pat, .. }) = arg
            && let Pat::Ident(p) = pat.as_mut()
        {
            p.mutability = None;
            p.by_ref = None;
        }
    }
    sig
}

/// A hidden name derived from the function's.
pub(crate) fn hidden(prefix: &str, name: &Ident) -> Ident {
    Ident::new(&format!("__pottery_{prefix}_{name}"), Span::mixed_site())
}

/// An error at `span` for an attribute argument this macro does not know.
pub(crate) fn unknown(span: Span, macro_name: &str, known: &str) -> syn::Error {
    syn::Error::new(
        span,
        format!("unknown argument to #[{macro_name}]; it takes {known}"),
    )
}

/// The unit a bare number means in a duration argument.
#[derive(Clone, Copy)]
pub(crate) enum Unit {
    Seconds,
    Millis,
}

/// A duration argument (`timeout`, `ttl`, `auto_release_time`): a number literal in `unit`
/// (as pottery spells it: seconds, or milliseconds for a lock's lease), or any expression of
/// type `Duration` (`Duration::from_secs(2)`, a `const`). Returns an expression of type
/// `::core::time::Duration`; a number that no `Duration` holds, or a literal that is not a
/// number, is an error spanned on it.
pub(crate) fn duration_arg(
    meta: &syn::meta::ParseNestedMeta<'_>,
    name: &str,
    unit: Unit,
) -> syn::Result<TokenStream> {
    let expr: syn::Expr = meta.value()?.parse()?;
    duration_expr(&expr, name, unit)
}

/// [`duration_arg`] for an expression already parsed.
pub(crate) fn duration_expr(expr: &syn::Expr, name: &str, unit: Unit) -> syn::Result<TokenStream> {
    let unit_name = match unit {
        Unit::Seconds => "seconds",
        Unit::Millis => "milliseconds",
    };
    let lit = match expr {
        syn::Expr::Lit(l) => &l.lit,
        other => {
            // Checked by the compiler: a type error here points at the expression.
            return Ok(quote::quote_spanned!(other.span()=> {
                let __pottery_duration: ::core::time::Duration = #other;
                __pottery_duration
            }));
        }
    };
    let bad = || {
        syn::Error::new(
            lit.span(),
            format!(
                "`{name}` is a number of {unit_name} (like `{name} = 2`) or a `Duration` \
                 expression (like `{name} = Duration::from_secs(2)`)"
            ),
        )
    };
    let value: f64 = match lit {
        syn::Lit::Int(i) => i.base10_parse::<u64>().map_err(|_| bad())? as f64,
        syn::Lit::Float(f) => f.base10_parse::<f64>().map_err(|_| bad())?,
        _ => return Err(bad()),
    };
    let secs = match unit {
        Unit::Seconds => value,
        Unit::Millis => value / 1000.0,
    };
    // Past a century is a mistake (and from_secs_f64 would panic on what it cannot hold).
    if !secs.is_finite() || !(0.0..=3.2e9).contains(&secs) {
        return Err(syn::Error::new(
            lit.span(),
            format!(
                "`{name}` of {} {unit_name} is out of range (at most about a century)",
                quote::quote!(#lit)
            ),
        ));
    }
    let nanos = (secs * 1e9).round() as u64;
    Ok(quote::quote_spanned!(lit.span()=> ::core::time::Duration::from_nanos(#nanos)))
}

/// The marker the expansions write where the path to the `pottery` crate goes
/// (`::__pottery_crate::Redis`); [`with_crate`] puts the real path there.
const CRATE_MARKER: &str = "__pottery_crate";

/// Parses a `crate = path` argument: where the generated code finds `pottery` when the
/// dependency is renamed (`my_pottery = { package = "pottery", … }`), as serde's
/// `#[serde(crate = "…")]`.
pub(crate) fn crate_arg(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<syn::Path> {
    let value = meta.value()?;
    if value.peek(syn::LitStr) {
        let s: syn::LitStr = value.parse()?;
        return s.parse();
    }
    value.parse()
}

/// Replaces every `::__pottery_crate` marker in the generated code with `krate` (`::pottery`
/// when not given). User code never contains the marker, so only generated paths change.
pub(crate) fn with_crate(tokens: TokenStream, krate: Option<&syn::Path>) -> TokenStream {
    let krate = match krate {
        Some(path) => quote!(#path),
        None => quote!(::pottery),
    };
    rewrite(tokens, &krate)
}

fn rewrite(tokens: TokenStream, krate: &TokenStream) -> TokenStream {
    use proc_macro2::{Group, TokenTree};
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    let mut out = Vec::with_capacity(trees.len());
    let mut i = 0;
    while i < trees.len() {
        if let (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b)), Some(TokenTree::Ident(id))) =
            (trees.get(i), trees.get(i + 1), trees.get(i + 2))
            && a.as_char() == ':'
            && b.as_char() == ':'
            && id == CRATE_MARKER
        {
            // The path takes the marker's span: an error about what it names points where
            // the expansion meant it to (the user's return type, say).
            out.extend(krate.clone().into_iter().map(|mut t| {
                t.set_span(id.span());
                t
            }));
            i += 3;
            continue;
        }
        match &trees[i] {
            TokenTree::Group(g) => {
                let mut inner = Group::new(g.delimiter(), rewrite(g.stream(), krate));
                inner.set_span(g.span());
                out.push(TokenTree::Group(inner));
            }
            other => out.push(other.clone()),
        }
        i += 1;
    }
    out.into_iter().collect()
}
