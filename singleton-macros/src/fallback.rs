//! What `#[singleton]` adds next to its error: stand-ins for the items it would have generated.

use crate::valid::Item;
use proc_macro2::TokenStream;
use quote::quote;

use crate::attr;

/// The generated associated items with the same signatures and unreachable bodies, so the uses
/// of `T::instance()` elsewhere type-check and the attribute's own error is the only one.
/// Nothing when the item is not a struct or an enum. (thiserror's `fallback.rs` does the same.)
pub fn stand_in(args: &attr::Args, item: &Item, krate: &TokenStream) -> TokenStream {
    let Item::Type(item) = item else { return TokenStream::new() };
    let (ident, vis, generics) = (&item.ident, &item.vis, &item.generics);
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    let name = args.name_or_default(ident);
    let accessors = if args.asyncness.is_some() {
        quote! {
            #vis fn instance() -> #krate::InstanceFuture<Self> {
                ::core::unreachable!()
            }

            #vis fn try_instance() -> #krate::TryInstanceFuture<Self> {
                ::core::unreachable!()
            }
        }
    } else {
        quote! {
            #vis fn instance() -> #krate::Instance<Self> {
                ::core::unreachable!()
            }

            #vis fn try_instance()
                -> ::core::result::Result<#krate::Instance<Self>, #krate::SingletonError>
            {
                ::core::unreachable!()
            }

            #vis fn with_instance<R>(f: impl ::core::ops::FnOnce(&Self) -> R) -> R {
                ::core::unreachable!()
            }
        }
    };
    quote! {
        #[automatically_derived]
        #[allow(missing_docs, clippy::all, clippy::pedantic)]
        impl #impl_generics #ident #ty_generics #where_clause {
            #vis const SINGLETON_NAME: &'static str = #name;

            #accessors
        }
    }
}
