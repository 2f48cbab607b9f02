//! The checked model of a `#[derive(RedisBacked)]` struct: a struct with named fields, not
//! generic, with at least one stored field and no two stored under one name.

use std::collections::BTreeSet;

use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, LitStr, Path};

use super::attr::{Field, parse_field, struct_attrs};

/// What the expansion works from.
pub(super) struct Model<'a> {
    pub(super) input: &'a DeriveInput,
    pub(super) fields: Vec<Field>,
    pub(super) key: Option<LitStr>,
    pub(super) krate: Option<Path>,
}

impl Model<'_> {
    /// The fields stored in the hash (not skipped).
    pub(super) fn stored(&self) -> Vec<&Field> {
        self.fields.iter().filter(|f| !f.skip).collect()
    }
}

pub(super) fn model(input: &DeriveInput) -> syn::Result<Model<'_>> {
    let fields = match &input.data {
        Data::Struct(s) => match &s.fields {
            Fields::Named(named) => &named.named,
            Fields::Unnamed(u) => {
                return Err(syn::Error::new(
                    u.span(),
                    "#[derive(RedisBacked)] needs named fields: each field is a hash field \
                     named after it, and tuple fields have no names",
                ));
            }
            Fields::Unit => {
                return Err(syn::Error::new(
                    input.ident.span(),
                    "#[derive(RedisBacked)] needs a struct with named fields; a unit struct \
                     has nothing to store",
                ));
            }
        },
        Data::Enum(e) => {
            return Err(syn::Error::new(
                e.enum_token.span(),
                "#[derive(RedisBacked)] works on structs with named fields, not enums: a \
                 hash has one fixed set of fields",
            ));
        }
        Data::Union(u) => {
            return Err(syn::Error::new(
                u.union_token.span(),
                "#[derive(RedisBacked)] works on structs with named fields, not unions",
            ));
        }
    };
    if !input.generics.params.is_empty() {
        return Err(syn::Error::new(
            input.generics.span(),
            "#[derive(RedisBacked)] does not support generic structs",
        ));
    }

    let super::attr::StructAttrs { key, krate } = struct_attrs(input)?;
    let fields: Vec<Field> = fields.iter().map(parse_field).collect::<syn::Result<_>>()?;
    let stored: Vec<&Field> = fields.iter().filter(|f| !f.skip).collect();
    if stored.is_empty() {
        return Err(syn::Error::new(
            input.ident.span(),
            "#[derive(RedisBacked)]: every field is skipped, so there is nothing to store",
        ));
    }
    let mut seen = BTreeSet::new();
    for f in &stored {
        if !seen.insert(f.name.clone()) {
            return Err(syn::Error::new(
                f.ident.span(),
                format!("two fields are stored under the name `{}`", f.name),
            ));
        }
    }

    Ok(Model {
        input,
        fields,
        key,
        krate,
    })
}
