//! Expansion: the `RedisBacked` impl, the typed handle with its field accessors, its batch
//! view, and the key template's associated functions.

use std::collections::BTreeSet;

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::Ident;
use syn::spanned::Spanned;

use super::attr::{is_integer, is_string, option_inner, parse_template, unraw};
use super::model::Model;

pub(super) fn expand(m: &Model<'_>) -> syn::Result<TokenStream> {
    let input = m.input;
    let fields = &m.fields;
    let stored = m.stored();
    let ident = &input.ident;
    let vis = &input.vis;
    let handle = format_ident!("{}Handle", ident);
    let redis_ty = quote!(::__pottery_crate::Redis);
    let result = quote!(::__pottery_crate::Result);

    // The trait: FIELDS, write and read.
    let names = stored.iter().map(|f| &f.name);
    let writes = stored.iter().map(|f| {
        let (id, name, ty) = (&f.ident, &f.name, &f.ty);
        quote_spanned!(ty.span()=> out.field(#name, &self.#id)?;)
    });
    let reads = fields.iter().map(|f| {
        let (id, name, ty) = (&f.ident, &f.name, &f.ty);
        let value = if f.skip {
            quote_spanned!(ty.span()=> ::core::default::Default::default())
        } else {
            match (&f.default, option_inner(ty)) {
                (Some(Some(path)), _) => quote_spanned!(ty.span()=> fields.or_else(#name, #path)?),
                (Some(None), _) => quote_spanned!(ty.span()=>
                    fields.or_else(#name, ::core::default::Default::default)?),
                (None, Some(_)) => quote_spanned!(ty.span()=>
                    fields.or_else(#name, || ::core::option::Option::None)?),
                (None, None) => quote_spanned!(ty.span()=> fields.required(#name)?),
            }
        };
        quote!(#id: #value)
    });

    // The handle's accessors (one getter, setter and, for integers, incrementer per stored
    // field) and their batch twins.
    let (field_methods, batch_methods) = accessors(m, &handle)?;

    let struct_doc_handle = format!(
        "A handle on one `{ident}` stored at a key: one round trip per field read or write, \
         without loading the struct."
    );
    let handle_doc = format!(
        "A typed handle on a `{ident}` stored as a Redis hash (made by `{ident}::handle`): a \
         getter per stored field (`HGET`), `set_<field>` (`HSET`) and, for integer fields, \
         `incr_<field>` (`HINCRBY`) — one round trip each — and the whole-struct `load`, \
         `load_tracked`, `update`, `save`, `delete` and `exists` on its key, plus `_async` \
         forms of all of them."
    );

    // The handle's batch view.
    let ops = format_ident!("{}Ops", handle);
    let ops_doc = format!(
        "`{handle}`'s operations in a `pottery::Batch` (from `batch.on(&handle)`): each queues \
         the plan of the handle's method of the same name and gives its result in a \
         `pottery::Pending` once the batch ran."
    );
    let doc_queued_load = format!("Queues [`{handle}::load`].");
    let doc_queued_save = format!("Queues [`{handle}::save`].");
    let doc_queued_delete = format!("Queues [`{handle}::delete`].");
    let doc_queued_exists = format!("Queues [`{handle}::exists`].");

    // The key template's associated functions, if any.
    let keyed = keyed(m, &handle)?;

    let redis = Ident::new("redis", Span::mixed_site());
    let change = Ident::new("change", Span::mixed_site());
    let out = Ident::new("O", Span::mixed_site());
    Ok(quote! {
        #[automatically_derived]
        impl ::__pottery_crate::RedisBacked for #ident {
            const FIELDS: &'static [&'static str] = &[#(#names),*];

            fn __pottery_write(&self, out: &mut ::__pottery_crate::private::FieldWriter<'_>) -> #result<()> {
                #(#writes)*
                ::core::result::Result::Ok(())
            }

            fn __pottery_read(fields: &mut ::__pottery_crate::private::FieldReader<'_>) -> #result<Self> {
                ::core::result::Result::Ok(Self { #(#reads),* })
            }
        }

        #[automatically_derived]
        impl #ident {
            #[doc = #struct_doc_handle]
            #vis fn handle(#redis: &#redis_ty, key: impl ::core::convert::Into<::std::string::String>) -> #handle {
                #handle { core: ::__pottery_crate::private::HandleCore::new(#redis, key.into()) }
            }
        }

        #keyed

        #[doc = #handle_doc]
        #[derive(Clone, Debug)]
        #vis struct #handle {
            core: ::__pottery_crate::private::HandleCore,
        }

        #[automatically_derived]
        impl #handle {
            /// The key.
            #vis fn redis_key(&self) -> &str {
                self.core.key()
            }
            /// The Redis handle.
            #vis fn redis(&self) -> &#redis_ty {
                self.core.redis()
            }
            /// Loads the whole struct (one `HGETALL`).
            #vis fn load(&self) -> #result<::core::option::Option<#ident>> {
                <#ident as ::__pottery_crate::RedisBacked>::load(self.core.redis(), self.core.key())
            }
            /// [`Self::load`], async.
            #vis async fn load_async(&self) -> #result<::core::option::Option<#ident>> {
                <#ident as ::__pottery_crate::RedisBacked>::load_async(self.core.redis(), self.core.key()).await
            }
            /// [`RedisBacked::load_tracked`](::__pottery_crate::RedisBacked::load_tracked) here: the
            /// struct, remembering what it was loaded as, so its `save()` writes only the
            /// fields you changed.
            #vis fn load_tracked(&self) -> #result<::core::option::Option<::__pottery_crate::Tracked<#ident>>> {
                <#ident as ::__pottery_crate::RedisBacked>::load_tracked(self.core.redis(), self.core.key())
            }
            /// [`Self::load_tracked`], async.
            #vis async fn load_tracked_async(&self) -> #result<::core::option::Option<::__pottery_crate::Tracked<#ident>>> {
                <#ident as ::__pottery_crate::RedisBacked>::load_tracked_async(self.core.redis(), self.core.key()).await
            }
            /// [`RedisBacked::update`](::__pottery_crate::RedisBacked::update) here: changes the stored
            /// struct with `change`, writing the fields it changed only if nobody changed them
            /// meanwhile (else it runs again on fresh data); `None` when the key does not exist.
            #vis fn update<#out>(&self, #change: impl ::core::ops::FnMut(&mut #ident) -> #out) -> #result<::core::option::Option<#out>> {
                <#ident as ::__pottery_crate::RedisBacked>::update(self.core.redis(), self.core.key(), #change)
            }
            /// [`Self::update`], async.
            #vis async fn update_async<#out: ::core::marker::Send>(&self, #change: impl ::core::ops::FnMut(&mut #ident) -> #out + ::core::marker::Send) -> #result<::core::option::Option<#out>> {
                <#ident as ::__pottery_crate::RedisBacked>::update_async(self.core.redis(), self.core.key(), #change).await
            }
            /// Saves a whole struct here (one `HSET` of every field: see
            /// [`RedisBacked::save`](::__pottery_crate::RedisBacked::save)).
            #vis fn save(&self, value: &#ident) -> #result<()> {
                <#ident as ::__pottery_crate::RedisBacked>::save(value, self.core.redis(), self.core.key())
            }
            /// [`Self::save`], async.
            #vis fn save_async<'a>(&'a self, value: &#ident)
                -> impl ::core::future::Future<Output = #result<()>> + ::core::marker::Send + 'a
            {
                ::__pottery_crate::private::save_owned_async(value, self.core.redis(), self.core.key().to_owned())
            }
            /// Deletes the key; whether it existed.
            #vis fn delete(&self) -> #result<bool> {
                <#ident as ::__pottery_crate::RedisBacked>::delete(self.core.redis(), self.core.key())
            }
            /// [`Self::delete`], async.
            #vis async fn delete_async(&self) -> #result<bool> {
                <#ident as ::__pottery_crate::RedisBacked>::delete_async(self.core.redis(), self.core.key()).await
            }
            /// Whether the key exists.
            #vis fn exists(&self) -> #result<bool> {
                <#ident as ::__pottery_crate::RedisBacked>::exists(self.core.redis(), self.core.key())
            }
            /// [`Self::exists`], async.
            #vis async fn exists_async(&self) -> #result<bool> {
                <#ident as ::__pottery_crate::RedisBacked>::exists_async(self.core.redis(), self.core.key()).await
            }
            #(#field_methods)*
        }

        #[doc = #ops_doc]
        #[derive(Debug)]
        #vis struct #ops<'q, 'a> {
            core: ::__pottery_crate::private::HandleOps<'q, 'a>,
        }

        #[automatically_derived]
        impl ::__pottery_crate::private::DerivedHandle for #handle {}

        #[automatically_derived]
        impl ::__pottery_crate::Batchable for #handle {
            type Ops<'q, 'a> = #ops<'q, 'a> where Self: 'a, 'a: 'q;

            fn queue_on<'q, 'a>(&'a self, queue: &'q ::__pottery_crate::private::Queue<'a>) -> Self::Ops<'q, 'a> {
                #ops { core: ::__pottery_crate::private::HandleOps::new(queue, &self.core) }
            }
        }

        #[automatically_derived]
        impl<'q, 'a> #ops<'q, 'a> {
            #[doc = #doc_queued_load]
            #vis fn load(&self) -> ::__pottery_crate::Pending<::core::option::Option<#ident>> {
                self.core.load::<#ident>()
            }
            #[doc = #doc_queued_save]
            #vis fn save(&self, value: &#ident) -> ::__pottery_crate::Pending<()> {
                self.core.save(value)
            }
            #[doc = #doc_queued_delete]
            #vis fn delete(&self) -> ::__pottery_crate::Pending<bool> {
                self.core.delete()
            }
            #[doc = #doc_queued_exists]
            #vis fn exists(&self) -> ::__pottery_crate::Pending<bool> {
                self.core.exists()
            }
            #(#batch_methods)*
        }
    })
}

/// A getter, a setter and (for integer fields) an incrementer per stored field, blocking and
/// async, and their batch twins; an error where one would clash with another method.
fn accessors(m: &Model<'_>, handle: &Ident) -> syn::Result<(Vec<TokenStream>, Vec<TokenStream>)> {
    let stored = m.stored();
    let vis = &m.input.vis;
    let result = quote!(::__pottery_crate::Result);
    // The handle's methods, checked for clashes.
    let mut methods: BTreeSet<String> = [
        "redis_key",
        "redis",
        "load",
        "load_tracked",
        "update",
        "save",
        "delete",
        "exists",
    ]
    .iter()
    .flat_map(|m| [m.to_string(), format!("{m}_async")])
    .collect();
    let mut field_methods = Vec::new();
    let mut batch_methods = Vec::new();
    for f in &stored {
        let (id, name, ty) = (&f.ident, &f.name, &f.ty);
        let base = unraw(id);
        let get_async = format_ident!("{}_async", base);
        let set = format_ident!("set_{}", base);
        let set_async = format_ident!("set_{}_async", base);
        let mut mine = vec![
            base.clone(),
            get_async.to_string(),
            set.to_string(),
            set_async.to_string(),
        ];
        // Trait errors (a field type that is not Serialize, say) point at the field's type.
        let span = ty.span();
        // `then`: what the getter makes of `HGET`'s `Option<#ty>`, as a function (for the
        // batch view, which queues the same plan).
        let (out_ty, get, then, doc_get) = match (&f.default, option_inner(ty)) {
            (Some(default), _) => {
                let default = match default {
                    Some(path) => quote!(#path),
                    None => quote!(::core::default::Default::default),
                };
                (
                    quote!(#ty),
                    quote!(.map(|v| v.unwrap_or_else(#default))),
                    quote!(|v: ::core::option::Option<#ty>| v.unwrap_or_else(#default)),
                    format!("The field `{name}` (`HGET`); its default when it is missing."),
                )
            }
            (None, Some(inner)) => (
                quote!(::core::option::Option<#inner>),
                quote!(.map(::core::option::Option::flatten)),
                quote!(::core::option::Option::flatten),
                format!("The field `{name}` (`HGET`); `None` when it is missing or null."),
            ),
            (None, None) => (
                quote!(::core::option::Option<#ty>),
                quote!(),
                quote!(|v: ::core::option::Option<#ty>| v),
                format!("The field `{name}` (`HGET`); `None` when it (or the hash) is missing."),
            ),
        };
        let doc_queued_get = format!("Queues [`{handle}::{base}`].");
        let doc_queued_set = format!("Queues [`{handle}::{set}`].");
        batch_methods.push(quote_spanned! {span=>
            #[doc = #doc_queued_get]
            #vis fn #id(&self) -> ::__pottery_crate::Pending<#out_ty> {
                self.core.get::<#ty, #out_ty>(#name, #then)
            }
            #[doc = #doc_queued_set]
            #vis fn #set(&self, value: impl ::core::convert::Into<#ty>) -> ::__pottery_crate::Pending<()> {
                let value: #ty = value.into();
                self.core.set(#name, &value)
            }
        });
        let doc_get_async = format!("[`Self::{base}`], async.");
        let doc_set = format!("Sets the field `{name}` (one `HSET`).");
        let doc_set_async = format!("[`Self::{set}`], async.");
        let get_body = quote_spanned!(span=> self.core.get::<#ty>(#name) #get);
        let get_async_body = quote_spanned!(span=> self.core.get_async::<#ty>(#name).await #get);
        let set_body = quote_spanned!(span=> self.core.set(#name, &value));
        let set_async_body = quote_spanned!(span=> self.core.set_async(#name, &value).await);
        let mut m = quote! {
            #[doc = #doc_get]
            #vis fn #id(&self) -> #result<#out_ty> {
                #get_body
            }
            #[doc = #doc_get_async]
            #vis async fn #get_async(&self) -> #result<#out_ty> {
                #get_async_body
            }
            #[doc = #doc_set]
            #vis fn #set(&self, value: impl ::core::convert::Into<#ty>) -> #result<()> {
                let value: #ty = value.into();
                #set_body
            }
            #[doc = #doc_set_async]
            #vis async fn #set_async(&self, value: impl ::core::convert::Into<#ty>) -> #result<()> {
                let value: #ty = value.into();
                #set_async_body
            }
        };
        if is_integer(ty) {
            let incr = format_ident!("incr_{}", base);
            let incr_async = format_ident!("incr_{}_async", base);
            mine.push(incr.to_string());
            mine.push(incr_async.to_string());
            let doc_incr = format!(
                "Adds `by` (negative to subtract) to the field `{name}` on the server, atomically, \
                 and returns the new value: one `HINCRBY` (a script around it for types \
                 narrower than `i64`, so a result outside the field's type is refused with \
                 nothing written). A missing field counts as 0."
            );
            let doc_incr_async = format!("[`Self::{incr}`], async.");
            let doc_queued_incr = format!("Queues [`{handle}::{incr}`].");
            batch_methods.push(quote! {
                #[doc = #doc_queued_incr]
                #vis fn #incr(&self, by: i64) -> ::__pottery_crate::Pending<#ty> {
                    self.core.incr(#name, by)
                }
            });
            m.extend(quote! {
                #[doc = #doc_incr]
                #vis fn #incr(&self, by: i64) -> #result<#ty> {
                    self.core.incr(#name, by)
                }
                #[doc = #doc_incr_async]
                #vis async fn #incr_async(&self, by: i64) -> #result<#ty> {
                    self.core.incr_async(#name, by).await
                }
            });
        }
        for name in mine {
            if !methods.insert(name.clone()) {
                return Err(syn::Error::new(
                    id.span(),
                    format!(
                        "this field's accessors would clash with `{handle}::{name}`; rename the \
                         Rust field (a `#[redis(rename = \"...\")]` keeps the stored name)"
                    ),
                ));
            }
        }
        field_methods.push(m);
    }

    Ok((field_methods, batch_methods))
}

/// `key_for`, `redis_key` and the `*_keyed` functions of a struct with a key template.
fn keyed(m: &Model<'_>, handle: &Ident) -> syn::Result<TokenStream> {
    let (fields, ident, vis) = (&m.fields, &m.input.ident, &m.input.vis);
    let redis_ty = quote!(::__pottery_crate::Redis);
    let result = quote!(::__pottery_crate::Result);
    Ok(match &m.key {
        None => quote!(),
        Some(lit) => {
            let (format, used) = parse_template(lit, fields)?;
            let mut params = Vec::new();
            let mut args = Vec::new();
            let mut from_self = Vec::new();
            let mut seen = BTreeSet::new();
            for id in &used {
                if !seen.insert(id.to_string()) {
                    continue;
                }
                let f = fields.iter().find(|f| &f.ident == id).expect("checked");
                let ty = &f.ty;
                let ty = if is_string(ty) {
                    quote!(&str)
                } else {
                    quote!(&#ty)
                };
                params.push(quote!(#id: #ty));
                args.push(quote!(#id));
                from_self.push(quote!(&self.#id));
            }
            let template = lit.value();
            let redis = Ident::new("redis", Span::mixed_site());
            let change = Ident::new("change", Span::mixed_site());
            let out = Ident::new("O", Span::mixed_site());
            let doc_key_for = format!("The key of the `{ident}` with these fields: `{template}`.");
            quote! {
                #[automatically_derived]
                impl #ident {
                    #[doc = #doc_key_for]
                    #vis fn key_for(#(#params),*) -> ::std::string::String {
                        ::std::format!(#format, #(#used),*)
                    }
                    /// This value's key, from its fields and the `#[redis(key = ...)]` template.
                    #vis fn redis_key(&self) -> ::std::string::String {
                        Self::key_for(#(#from_self),*)
                    }
                    /// [`RedisBacked::save`](::__pottery_crate::RedisBacked::save) at this value's own key.
                    #vis fn save_keyed(&self, #redis: &#redis_ty) -> #result<()> {
                        <Self as ::__pottery_crate::RedisBacked>::save(self, #redis, &self.redis_key())
                    }
                    /// [`Self::save_keyed`], async.
                    #vis fn save_keyed_async<'a>(&self, #redis: &'a #redis_ty)
                        -> impl ::core::future::Future<Output = #result<()>> + ::core::marker::Send + 'a
                    {
                        ::__pottery_crate::private::save_owned_async(self, #redis, self.redis_key())
                    }
                    /// [`RedisBacked::load`](::__pottery_crate::RedisBacked::load) from the key these fields make.
                    #vis fn load_keyed(#redis: &#redis_ty, #(#params),*) -> #result<::core::option::Option<Self>> {
                        <Self as ::__pottery_crate::RedisBacked>::load(#redis, &Self::key_for(#(#args),*))
                    }
                    /// [`Self::load_keyed`], async.
                    #vis async fn load_keyed_async(#redis: &#redis_ty, #(#params),*) -> #result<::core::option::Option<Self>> {
                        let key = Self::key_for(#(#args),*);
                        <Self as ::__pottery_crate::RedisBacked>::load_async(#redis, &key).await
                    }
                    /// [`RedisBacked::delete`](::__pottery_crate::RedisBacked::delete) of the key these fields make.
                    #vis fn delete_keyed(#redis: &#redis_ty, #(#params),*) -> #result<bool> {
                        <Self as ::__pottery_crate::RedisBacked>::delete(#redis, &Self::key_for(#(#args),*))
                    }
                    /// [`Self::delete_keyed`], async.
                    #vis async fn delete_keyed_async(#redis: &#redis_ty, #(#params),*) -> #result<bool> {
                        let key = Self::key_for(#(#args),*);
                        <Self as ::__pottery_crate::RedisBacked>::delete_async(#redis, &key).await
                    }
                    /// [`RedisBacked::exists`](::__pottery_crate::RedisBacked::exists) of the key these fields make.
                    #vis fn exists_keyed(#redis: &#redis_ty, #(#params),*) -> #result<bool> {
                        <Self as ::__pottery_crate::RedisBacked>::exists(#redis, &Self::key_for(#(#args),*))
                    }
                    /// [`Self::exists_keyed`], async.
                    #vis async fn exists_keyed_async(#redis: &#redis_ty, #(#params),*) -> #result<bool> {
                        let key = Self::key_for(#(#args),*);
                        <Self as ::__pottery_crate::RedisBacked>::exists_async(#redis, &key).await
                    }
                    /// [`RedisBacked::load_tracked`](::__pottery_crate::RedisBacked::load_tracked) from the key these fields make.
                    #vis fn load_tracked_keyed(#redis: &#redis_ty, #(#params),*) -> #result<::core::option::Option<::__pottery_crate::Tracked<Self>>> {
                        <Self as ::__pottery_crate::RedisBacked>::load_tracked(#redis, &Self::key_for(#(#args),*))
                    }
                    /// [`Self::load_tracked_keyed`], async.
                    #vis async fn load_tracked_keyed_async(#redis: &#redis_ty, #(#params),*) -> #result<::core::option::Option<::__pottery_crate::Tracked<Self>>> {
                        let key = Self::key_for(#(#args),*);
                        <Self as ::__pottery_crate::RedisBacked>::load_tracked_async(#redis, &key).await
                    }
                    /// [`RedisBacked::update`](::__pottery_crate::RedisBacked::update) of the struct at the key these fields make.
                    #vis fn update_keyed<#out>(#redis: &#redis_ty, #(#params,)* #change: impl ::core::ops::FnMut(&mut Self) -> #out) -> #result<::core::option::Option<#out>> {
                        <Self as ::__pottery_crate::RedisBacked>::update(#redis, &Self::key_for(#(#args),*), #change)
                    }
                    /// [`Self::update_keyed`], async.
                    #vis async fn update_keyed_async<#out: ::core::marker::Send>(#redis: &#redis_ty, #(#params,)* #change: impl ::core::ops::FnMut(&mut Self) -> #out + ::core::marker::Send) -> #result<::core::option::Option<#out>> {
                        let key = Self::key_for(#(#args),*);
                        <Self as ::__pottery_crate::RedisBacked>::update_async(#redis, &key, #change).await
                    }
                    /// A handle on the key these fields make.
                    #vis fn handle_keyed(#redis: &#redis_ty, #(#params),*) -> #handle {
                        Self::handle(#redis, Self::key_for(#(#args),*))
                    }
                }
            }
        }
    })
}
