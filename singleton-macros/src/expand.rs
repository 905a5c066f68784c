//! Writes the code of `#[singleton]`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Item, LitStr};

use crate::{attr, case, valid};

pub fn singleton(args: TokenStream, input: TokenStream) -> TokenStream {
    // On any error, still emit the user's item, so one mistake gives one error rather than
    // "cannot find type" wherever the type is used.
    match syn::parse2::<Item>(input.clone()) {
        Ok(item) => match attr::parse(args).and_then(|args| expand(&args, &item)) {
            Ok(tokens) => tokens,
            Err(err) => with_error(input, err),
        },
        Err(err) => with_error(input, err),
    }
}

fn with_error(item: TokenStream, err: syn::Error) -> TokenStream {
    let err = err.into_compile_error();
    quote!(#item #err)
}

fn expand(args: &attr::Args, item: &Item) -> syn::Result<TokenStream> {
    let valid::Target { ident, vis } = valid::check(args, item)?;
    let krate = match &args.krate {
        Some(path) => path.to_token_stream(),
        None => quote!(::singleton_kit),
    };
    let name = match &args.name {
        Some(lit) => lit.clone(),
        None => LitStr::new(&case::snake_case(&ident.to_string()), ident.span()),
    };
    let eager = args.eager.is_some();
    let private = quote!(#krate::__private);

    let make = match (&args.factory, &args.try_factory) {
        (Some((_, factory)), _) => {
            quote_spanned!(factory.span()=> #private::erase::<#ident>((#factory)()))
        }
        (None, Some((_, factory))) => {
            quote_spanned!(factory.span()=> #private::try_erase::<#ident, _>((#factory)()))
        }
        (None, None) => quote_spanned! {ident.span()=>
            #private::erase::<#ident>(<#ident as #private::DefaultFactory>::make())
        },
    };
    // Fails here, once, at the type's name, when the type is not `Send + Sync + 'static`.
    let assert_type = quote_spanned!(ident.span()=> impl #private::SingletonType for #ident {});

    let doc_name = format!("The name of this singleton in the registry: `{}`.", name.value());
    let doc_instance = format!(
        "The `{}` singleton, created by its factory on first use, exactly once.\n\n\
         # Panics\n\n\
         Where [`try_instance`](Self::try_instance) returns `Err`: the factory failed, or needs this \
         singleton itself (a dependency cycle). The message names the singleton and the cause.",
        name.value()
    );
    let doc_try_instance = format!(
        "The `{}` singleton, created by its factory on first use, exactly once.\n\n\
         # Errors\n\n\
         `Factory` when the factory fails (nothing is kept: the next call tries again), and \
         `Cycle` when creating it needs itself.",
        name.value()
    );

    Ok(quote! {
        #item

        #[allow(non_upper_case_globals, clippy::all, clippy::pedantic)]
        const _: () = {
            #assert_type

            fn __singleton_make()
                -> ::core::result::Result<#private::SingletonValue, #private::BoxError>
            {
                #make
            }

            static __SINGLETON: #private::Descriptor = #private::Descriptor::new::<#ident>(
                #name,
                ::core::module_path!(),
                ::core::file!(),
                ::core::line!(),
                #eager,
                __singleton_make,
            );

            #private::inventory::submit!(#private::Registration::new(&__SINGLETON));

            #[automatically_derived]
            impl #ident {
                #[doc = #doc_name]
                #vis const SINGLETON_NAME: &'static str = #name;

                #[doc = #doc_instance]
                #[inline]
                #[must_use]
                #[track_caller]
                #vis fn instance() -> #krate::Instance<Self> {
                    __SINGLETON.instance::<Self>()
                }

                #[doc = #doc_try_instance]
                #[inline]
                #vis fn try_instance()
                    -> ::core::result::Result<#krate::Instance<Self>, #krate::SingletonError>
                {
                    __SINGLETON.try_instance::<Self>()
                }
            }
        };
    })
}
