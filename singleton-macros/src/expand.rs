//! Writes the code of `#[singleton]`.

use proc_macro2::{Delimiter, Group, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::Ident;

use crate::valid::Item;
use crate::{attr, fallback, valid};

pub fn singleton(args: TokenStream, input: TokenStream) -> TokenStream {
    // On any error, still emit the user's item, so one mistake gives one error rather than
    // "cannot find type" wherever the type is used.
    let item = Item::parse(input.clone());
    // Every mistake at once: in the arguments, and in how the options and the item fit together.
    let (args, errors) = attr::parse(args);
    let err = match (valid::check(&args, &item), errors) {
        (Ok(target), None) => return expand(&args, &item, &target),
        (Ok(_), Some(err)) | (Err(err), None) => err,
        (Err(err), Some(mut all)) => {
            all.combine(err);
            all
        }
    };
    // And stand-ins for `instance()` and the rest, so its uses add no errors of their own.
    let stand_in = fallback::stand_in(&args, &item, &args.krate());
    let tokens = with_error(input, err);
    quote!(#tokens #stand_in)
}

fn with_error(item: TokenStream, err: syn::Error) -> TokenStream {
    let err = err.into_compile_error();
    quote!(#item #err)
}

/// `<Of<T>>::factory(f)` (or `try_factory`), spanned over all of `f`, so a type error in the factory underlines the
/// whole expression the user wrote.
fn call_factory(private: &TokenStream, ident: &Ident, method: &str, factory: &TokenStream) -> TokenStream {
    let mut tokens = factory.clone().into_iter();
    let first = tokens.next().map_or_else(Span::call_site, |token| token.span());
    let last = tokens.last().map_or(first, |token| token.span());
    let method = format_ident!("{method}", span = first);
    // The call's span runs from its first token, the `<`, to its last, the `)`.
    let mut arg = Group::new(Delimiter::Parenthesis, factory.clone());
    arg.set_span(last);
    quote_spanned!(first=> <#private::Of<#ident>>::#method #arg)
}

/// `.with_health(..)` and `.with_on_shutdown(..)` for the options given: each a function that
/// turns the path into the core's check or hook once (choosing sync or async by the path's
/// signature; see the runtime's `lifecycle::hooks`), with the dispatching call spanned at the
/// path, so a wrong signature is reported there.
fn hooks(private: &TokenStream, ident: &Ident, args: &attr::Args) -> TokenStream {
    let mut out = TokenStream::new();
    for (option, method, kind, call, traits) in [
        (
            &args.health,
            quote!(with_health),
            quote!(Check),
            "health_check",
            quote!(ViaSyncCheck as _, ViaAsyncCheck as _, ViaNoCheck as _),
        ),
        (
            &args.on_shutdown,
            quote!(with_on_shutdown),
            quote!(Hook),
            "shutdown_hook",
            quote!(ViaSyncHook as _, ViaAsyncHook as _, ViaNoHook as _),
        ),
    ] {
        let Some((_, path)) = option else { continue };
        let span = path.clone().into_iter().next().map_or_else(Span::call_site, |token| token.span());
        let call = Ident::new(call, span);
        // Every token of the dispatching call at the path, so that rustc points its error there.
        let call =
            respan(quote!((&&#private::leak(<#private::HookOf<#ident, _>>::new(#path))).#call()), span);
        out.extend(quote! {
            .#method({
                fn __singleton_hook() -> #private::#kind {
                    static __ONCE: #private::OnceLock<#private::#kind> = #private::OnceLock::new();
                    *__ONCE.get_or_init(|| {
                        #[allow(unused_imports)]
                        use #private::{#traits};
                        #call
                    })
                }
                __singleton_hook
            })
        });
    }
    out
}

/// `tokens` with every span set to `span`.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut token| {
            if let proc_macro2::TokenTree::Group(group) = &token {
                let mut inner = Group::new(group.delimiter(), respan(group.stream(), span));
                inner.set_span(span);
                token = proc_macro2::TokenTree::Group(inner);
            } else {
                token.set_span(span);
            }
            token
        })
        .collect()
}

fn expand(args: &attr::Args, item: &Item, target: &valid::Target<'_>) -> TokenStream {
    let valid::Target { ident, vis } = *target;
    let krate = args.krate();
    let name = args.name_or_default(ident);
    let eager = args.eager.is_some();
    let private = quote!(#krate::__private);

    let is_async = args.asyncness.is_some();
    let prefix = if is_async { "async_" } else { "" };
    let make = match (&args.factory, &args.try_factory) {
        (Some((_, factory)), _) => call_factory(&private, ident, &format!("{prefix}factory"), factory),
        (None, Some((_, factory))) => call_factory(&private, ident, &format!("{prefix}try_factory"), factory),
        (None, None) => quote_spanned! {ident.span()=>
            <#private::Of<#ident>>::factory(<#ident as #private::DefaultFactory>::make)
        },
    };
    let hooks = hooks(&private, ident, args);
    // Fails here, once, at the type's name, when the type is not `Send + Sync + 'static`.
    let assert_type = quote_spanned! {ident.span()=>
        impl #private::SingletonType for #ident {
            #[inline]
            fn descriptor() -> &'static #private::Descriptor {
                __SINGLETON.descriptor()
            }
        }
    };

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

    let (make_fn, factory) = if is_async {
        (
            quote! {
                fn __singleton_make() -> #private::BoxFuture {
                    #make
                }
            },
            quote!(#private::Factory::Async(__singleton_make)),
        )
    } else {
        (
            quote! {
                fn __singleton_make()
                    -> ::core::result::Result<#private::SingletonValue, #private::BoxError>
                {
                    #make
                }
            },
            quote!(#private::Factory::Sync(__singleton_make)),
        )
    };
    let accessors = if is_async {
        let doc_instance = format!(
            "The `{}` singleton, created by its async factory on first use, exactly once: \
             ready at once when it exists.\n\n\
             # Panics\n\n\
             The future panics where [`try_instance`](Self::try_instance) gives `Err`: the factory \
             failed, or needs this singleton itself (a dependency cycle). The message names the \
             singleton and the cause.\n\n\
             # Cancel safety\n\n\
             Dropping the future loses nothing: a creation it was driving is driven on by the next \
             caller, and the factory is called once.",
            name.value()
        );
        let doc_try_instance = format!(
            "The `{}` singleton, created by its async factory on first use, exactly once.\n\n\
             # Errors\n\n\
             `Factory` when the factory fails (nothing is kept: the next call tries again), and \
             `Cycle` when creating it needs itself.\n\n\
             # Cancel safety\n\n\
             As [`instance`](Self::instance).",
            name.value()
        );
        quote! {
            #[doc = #doc_instance]
            #[inline]
            #vis fn instance() -> #krate::InstanceFuture<Self> {
                __SINGLETON.instance_async()
            }

            #[doc = #doc_try_instance]
            #[inline]
            #vis fn try_instance() -> #krate::TryInstanceFuture<Self> {
                __SINGLETON.try_instance_async()
            }
        }
    } else {
        let doc_with_instance = format!(
            "Runs `f` on the `{}` singleton (created first if needed), counted as one access, \
             without keeping a handle.\n\n\
             `f` may use any singleton operation, `delete` of this one included: the instance \
             stays valid until `f` returns, and is dropped then if it was let go of meanwhile. \
             The borrow takes no handle and does no atomic read-modify-write, so this is the \
             cheapest accessor.\n\n\
             # Panics\n\n\
             As [`instance`](Self::instance).",
            name.value()
        );
        quote! {
            #[doc = #doc_instance]
            #[inline]
            #[must_use]
            #[track_caller]
            #vis fn instance() -> #krate::Instance<Self> {
                __SINGLETON.instance()
            }

            #[doc = #doc_try_instance]
            #[inline]
            #vis fn try_instance()
                -> ::core::result::Result<#krate::Instance<Self>, #krate::SingletonError>
            {
                __SINGLETON.try_instance()
            }

            #[doc = #doc_with_instance]
            #[inline]
            #[track_caller]
            #vis fn with_instance<R>(f: impl ::core::ops::FnOnce(&Self) -> R) -> R {
                __SINGLETON.with_instance::<R>(f)
            }
        }
    };

    quote! {
        #item

        const _: () = {
            #assert_type

            #make_fn

            static __SINGLETON: #private::TypedDescriptor<#ident> = #private::Descriptor::new::<#ident>(
                #name,
                ::core::module_path!(),
                ::core::file!(),
                ::core::line!(),
                #eager,
                #factory,
            )#hooks;

            #private::inventory::submit!(#private::Registration::new(__SINGLETON.descriptor()));

            #[automatically_derived]
            impl #ident {
                #[doc = #doc_name]
                #vis const SINGLETON_NAME: &'static str = #name;

                #accessors
            }
        };
    }
}
