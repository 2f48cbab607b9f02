//! Parsing: what the struct's and its fields' `#[redis(...)]` attributes say, typed.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{DeriveInput, Ident, LitStr, Path, Type};

/// What a field's `#[redis(...)]` says.
pub(super) struct Field {
    pub(super) ident: Ident,
    pub(super) ty: Type,
    /// The stored name.
    pub(super) name: String,
    pub(super) skip: bool,
    /// `#[redis(default)]` (`None` inside) or `#[redis(default = path)]`.
    pub(super) default: Option<Option<Path>>,
}

/// `Option<T>` → `T`.
pub(super) fn option_inner(ty: &Type) -> Option<&Type> {
    let Type::Path(p) = ty else { return None };
    if p.qself.is_some() {
        return None;
    }
    let last = p.path.segments.last()?;
    if last.ident != "Option" {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first() {
        Some(syn::GenericArgument::Type(t)) if args.args.len() == 1 => Some(t),
        _ => None,
    }
}

pub(super) fn single_ident(ty: &Type) -> Option<&Ident> {
    match ty {
        Type::Path(p) if p.qself.is_none() && p.path.segments.len() == 1 => {
            let seg = &p.path.segments[0];
            seg.arguments.is_none().then_some(&seg.ident)
        }
        _ => None,
    }
}

/// Integer types `HINCRBY` serves.
pub(super) fn is_integer(ty: &Type) -> bool {
    single_ident(ty).is_some_and(|i| {
        [
            "i8", "i16", "i32", "i64", "isize", "u8", "u16", "u32", "u64", "usize",
        ]
        .iter()
        .any(|n| i == n)
    })
}

pub(super) fn is_string(ty: &Type) -> bool {
    single_ident(ty).is_some_and(|i| i == "String")
}

pub(super) fn parse_field(f: &syn::Field) -> syn::Result<Field> {
    let ident = f.ident.clone().expect("named field");
    let mut rename: Option<LitStr> = None;
    let mut skip: Option<Span> = None;
    let mut default: Option<Option<Path>> = None;
    for attr in f.attrs.iter().filter(|a| a.path().is_ident("redis")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename") {
                if rename.is_some() {
                    return Err(meta.error("`rename` given twice"));
                }
                let lit: LitStr = meta.value()?.parse()?;
                if lit.value().is_empty() {
                    return Err(syn::Error::new(lit.span(), "a field name cannot be empty"));
                }
                rename = Some(lit);
            } else if meta.path.is_ident("skip") {
                skip = Some(meta.path.span());
            } else if meta.path.is_ident("default") {
                default = Some(if meta.input.peek(syn::Token![=]) {
                    Some(meta.value()?.parse()?)
                } else {
                    None
                });
            } else if meta.path.is_ident("key") {
                return Err(meta.error(
                    "`key` goes on the struct, not on a field: #[redis(key = \"user:{id}\")]",
                ));
            } else {
                return Err(meta.error(
                    "unknown field attribute; #[redis(...)] on a field takes \
                     `rename = \"...\"`, `skip`, `default` and `default = path::to::fn`",
                ));
            }
            Ok(())
        })?;
    }
    if let (Some(span), Some(r)) = (skip, &rename) {
        let mut e = syn::Error::new(span, "a skipped field is not stored: it cannot be renamed");
        e.combine(syn::Error::new(r.span(), "this rename"));
        return Err(e);
    }
    Ok(Field {
        name: rename.map_or_else(|| unraw(&ident), |r| r.value()),
        ident,
        ty: f.ty.clone(),
        skip: skip.is_some(),
        default,
    })
}

/// The field's name without `r#`.
pub(super) fn unraw(ident: &Ident) -> String {
    let s = ident.to_string();
    s.strip_prefix("r#").map(str::to_owned).unwrap_or(s)
}

/// `"user:{id}"` → (`"user:{}"`, [`id`]), checking the names against the fields.
pub(super) fn parse_template(lit: &LitStr, fields: &[Field]) -> syn::Result<(String, Vec<Ident>)> {
    let text = lit.value();
    let mut format = String::new();
    let mut names: Vec<Ident> = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                format.push_str("{{");
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                format.push_str("}}");
            }
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => name.push(c),
                        None => {
                            return Err(syn::Error::new(
                                lit.span(),
                                "unclosed `{` in the key template (write `{{` for a brace)",
                            ));
                        }
                    }
                }
                let name = name.trim();
                let Some(field) = fields.iter().find(|f| unraw(&f.ident) == name) else {
                    let known: Vec<String> = fields.iter().map(|f| unraw(&f.ident)).collect();
                    return Err(syn::Error::new(
                        lit.span(),
                        format!(
                            "the key template names `{{{name}}}`, but the struct has no field \
                             `{name}` (its fields: {})",
                            known.join(", ")
                        ),
                    ));
                };
                format.push_str("{}");
                names.push(field.ident.clone());
            }
            '}' => {
                return Err(syn::Error::new(
                    lit.span(),
                    "unmatched `}` in the key template (write `}}` for a brace)",
                ));
            }
            c => format.push(c),
        }
    }
    if names.is_empty() {
        return Err(syn::Error::new(
            lit.span(),
            "the key template names no field: write one as `{field}`, as in \"user:{id}\"",
        ));
    }
    Ok((format, names))
}

/// The struct's `#[redis(...)]`: its key template and the path to pottery.
pub(super) struct StructAttrs {
    pub(super) key: Option<LitStr>,
    pub(super) krate: Option<Path>,
}

pub(super) fn struct_attrs(input: &DeriveInput) -> syn::Result<StructAttrs> {
    let mut key: Option<LitStr> = None;
    let mut krate: Option<syn::Path> = None;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("redis")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("crate") {
                krate = Some(crate::common::crate_arg(&meta)?);
                Ok(())
            } else if meta.path.is_ident("key") {
                if key.is_some() {
                    return Err(meta.error("`key` given twice"));
                }
                key = Some(meta.value()?.parse()?);
                Ok(())
            } else {
                Err(meta.error(
                    "unknown struct attribute; #[redis(...)] on the struct takes \
                     `key = \"prefix:{field}\"` and `crate = <path to pottery>`",
                ))
            }
        })?;
    }

    Ok(StructAttrs { key, krate })
}
