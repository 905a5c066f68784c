//! Reads `#[singleton(...)]`'s arguments into [`Args`].

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::meta::ParseNestedMeta;
use syn::{Expr, LitStr, Path, Token};

/// The options, as written. Each keeps the span of its key, for errors about it.
#[derive(Default)]
pub struct Args {
    pub factory: Option<(Span, Expr)>,
    pub try_factory: Option<(Span, Expr)>,
    pub name: Option<LitStr>,
    pub eager: Option<Span>,
    pub asyncness: Option<Span>,
    pub krate: Option<Path>,
    pub health: Option<(Span, Expr)>,
    pub on_shutdown: Option<(Span, Expr)>,
}

impl Args {
    /// Where singleton-kit is: `crate = path`, or the facade.
    pub fn krate(&self) -> TokenStream {
        match &self.krate {
            Some(path) => path.to_token_stream(),
            None => quote::quote!(::singleton_kit),
        }
    }

    /// The registry name: `name = "..."`, or the type's name in snake_case.
    pub fn name_or_default(&self, ident: &syn::Ident) -> LitStr {
        match &self.name {
            Some(lit) => lit.clone(),
            None => LitStr::new(&crate::case::snake_case(&ident.to_string()), ident.span()),
        }
    }
}

const OPTIONS: &str = "`factory`, `try_factory`, `name`, `eager`, `async`, `health`, `on_shutdown`, `crate`";

/// Parses the arguments, reading every option it can and reporting every mistake at once.
///
/// Returns the options it read even when some were wrong, so the later checks still run on them
/// and their errors are reported together with these.
pub fn parse(tokens: TokenStream) -> (Args, Option<syn::Error>) {
    let mut args = Args::default();
    let mut errors: Option<syn::Error> = None;
    let parser = syn::meta::parser(|meta| {
        if let Err(err) = option(&mut args, &meta) {
            combine(&mut errors, err);
            // Skip the rest of an option we could not take, to read the ones after it.
            while !meta.input.is_empty() && !meta.input.peek(Token![,]) {
                meta.input.parse::<TokenTree>()?;
            }
        }
        Ok(())
    });
    if let Err(err) = syn::parse::Parser::parse2(parser, tokens) {
        combine(&mut errors, err);
    }
    (args, errors)
}

fn option(args: &mut Args, meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    let Some(key) = meta.path.get_ident().map(ToString::to_string) else {
        let path = meta.path.segments.iter().map(|s| s.ident.to_string()).collect::<Vec<_>>();
        return Err(unknown(meta, &path.join("::")));
    };
    let span = syn::spanned::Spanned::span(&meta.path);
    let repeated = || syn::Error::new(span, format!("`{key}` is given more than once: keep one"));
    match key.as_str() {
        "factory" => {
            let expr = meta.value()?.parse()?;
            put(&mut args.factory, (span, expr)).map_err(|()| repeated())
        }
        "try_factory" => {
            let expr = meta.value()?.parse()?;
            put(&mut args.try_factory, (span, expr)).map_err(|()| repeated())
        }
        "health" => {
            let expr = meta.value()?.parse()?;
            put(&mut args.health, (span, expr)).map_err(|()| repeated())
        }
        "on_shutdown" => {
            let expr = meta.value()?.parse()?;
            put(&mut args.on_shutdown, (span, expr)).map_err(|()| repeated())
        }
        "name" => {
            let lit = name(meta)?;
            put(&mut args.name, lit).map_err(|()| repeated())
        }
        "crate" => {
            let path = krate(meta)?;
            put(&mut args.krate, path).map_err(|()| repeated())
        }
        "eager" => {
            if meta.input.peek(Token![=]) {
                return Err(meta.error("`eager` takes no value: write `eager` alone"));
            }
            put(&mut args.eager, span).map_err(|()| repeated())
        }
        "async" => {
            if meta.input.peek(Token![=]) {
                return Err(meta.error("`async` takes no value: write `async` alone"));
            }
            put(&mut args.asyncness, span).map_err(|()| repeated())
        }
        _ => Err(unknown(meta, &key)),
    }
}

/// `name = "..."`. Anything but a string literal is an error that shows the literal to write.
fn name(meta: &ParseNestedMeta<'_>) -> syn::Result<LitStr> {
    let value = meta.value()?;
    if value.peek(LitStr) {
        return value.parse();
    }
    let expr: Expr = value.parse()?;
    let example = match &expr {
        Expr::Path(path) if path.path.get_ident().is_some() => path.to_token_stream().to_string(),
        _ => "cache".to_owned(),
    };
    Err(syn::Error::new_spanned(expr, format!("`name` takes a string literal: write `name = \"{example}\"`")))
}

/// `crate = path`. A string literal is an error that shows the path to write.
fn krate(meta: &ParseNestedMeta<'_>) -> syn::Result<Path> {
    let value = meta.value()?;
    if value.peek(LitStr) {
        let lit: LitStr = value.parse()?;
        let example = match lit.parse_with(Path::parse_mod_style) {
            Ok(path) => path.to_token_stream().to_string().replace(' ', ""),
            Err(_) => "singleton_kit".to_owned(),
        };
        return Err(syn::Error::new(
            lit.span(),
            format!("`crate` takes a path, not a string: write `crate = {example}`"),
        ));
    }
    value.call(Path::parse_mod_style)
}

fn unknown(meta: &ParseNestedMeta<'_>, key: &str) -> syn::Error {
    meta.error(format!("unknown `singleton` option `{key}`; expected one of {OPTIONS}"))
}

fn put<T>(slot: &mut Option<T>, value: T) -> Result<(), ()> {
    if slot.is_some() {
        return Err(());
    }
    *slot = Some(value);
    Ok(())
}

/// Adds `err` to the errors found so far.
pub fn combine(errors: &mut Option<syn::Error>, err: syn::Error) {
    match errors {
        Some(all) => all.combine(err),
        None => *errors = Some(err),
    }
}
