//! Reads `#[singleton(...)]`'s arguments into [`Args`].

use proc_macro2::{Span, TokenStream};
use syn::meta::ParseNestedMeta;
use syn::{Expr, LitStr, Path, Token};

/// The options, as written. Each keeps the span of its key, for errors about it.
#[derive(Default)]
pub struct Args {
    pub factory: Option<(Span, Expr)>,
    pub try_factory: Option<(Span, Expr)>,
    pub name: Option<LitStr>,
    pub eager: Option<Span>,
    pub krate: Option<Path>,
}

const OPTIONS: &str = "`factory`, `try_factory`, `name`, `eager`, `crate`";

/// Parses the arguments, reporting every mistake at once rather than the first.
pub fn parse(tokens: TokenStream) -> syn::Result<Args> {
    let mut args = Args::default();
    let mut errors: Option<syn::Error> = None;
    let parser = syn::meta::parser(|meta| {
        if let Err(err) = option(&mut args, &meta) {
            combine(&mut errors, err);
            // Skip the value of an option we could not take, to read the ones after it.
            if meta.input.peek(Token![=]) {
                let _ = meta.value()?.parse::<Expr>()?;
            }
        }
        Ok(())
    });
    syn::parse::Parser::parse2(parser, tokens)?;
    match errors {
        Some(err) => Err(err),
        None => Ok(args),
    }
}

fn option(args: &mut Args, meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    let key = meta.path.get_ident().map(ToString::to_string).unwrap_or_default();
    let span = syn::spanned::Spanned::span(&meta.path);
    let repeated = || syn::Error::new(span, format!("`{key}` is given more than once"));
    match key.as_str() {
        "factory" => {
            let expr = meta.value()?.parse()?;
            put(&mut args.factory, (span, expr)).map_err(|()| repeated())
        }
        "try_factory" => {
            let expr = meta.value()?.parse()?;
            put(&mut args.try_factory, (span, expr)).map_err(|()| repeated())
        }
        "name" => {
            let lit: LitStr = meta.value()?.parse()?;
            put(&mut args.name, lit).map_err(|()| repeated())
        }
        "crate" => {
            let path: Path = meta.value()?.call(Path::parse_mod_style)?;
            put(&mut args.krate, path).map_err(|()| repeated())
        }
        "eager" => {
            if meta.input.peek(Token![=]) {
                return Err(meta.error("`eager` takes no value: write `eager` alone"));
            }
            put(&mut args.eager, span).map_err(|()| repeated())
        }
        _ => Err(meta.error(format!("unknown `singleton` option; expected one of {OPTIONS}"))),
    }
}

fn put<T>(slot: &mut Option<T>, value: T) -> Result<(), ()> {
    if slot.is_some() {
        return Err(());
    }
    *slot = Some(value);
    Ok(())
}

pub fn combine(errors: &mut Option<syn::Error>, err: syn::Error) {
    match errors {
        Some(all) => all.combine(err),
        None => *errors = Some(err),
    }
}
