//! `#[derive(RedisBacked)]`: a struct with named fields stored as a Redis hash, plus a typed
//! handle (`<Struct>Handle`) that reads and writes one field per round trip.
//!
//! Parse ([`attr`]: the `#[redis(...)]` attributes, typed) → check ([`model`]) → expand
//! ([`expand`]).

mod attr;
mod expand;
mod model;

use proc_macro2::TokenStream;

pub(crate) fn expand(input: TokenStream) -> syn::Result<TokenStream> {
    let input: syn::DeriveInput = syn::parse2(input)?;
    let model = model::model(&input)?;
    let out = expand::expand(&model)?;
    Ok(crate::common::with_crate(out, model.krate.as_ref()))
}
