//! Reads `#[singleton(...)]`'s arguments into [`Args`].

use proc_macro2::{Spacing, Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::meta::ParseNestedMeta;
use syn::parse::ParseStream;
use syn::{LitStr, Path, Token};

/// The options, as written. Each keeps the span of its key, for errors about it.
#[derive(Default)]
pub struct Args {
    pub factory: Option<(Span, TokenStream)>,
    pub try_factory: Option<(Span, TokenStream)>,
    pub name: Option<LitStr>,
    pub eager: Option<Span>,
    pub asyncness: Option<Span>,
    pub krate: Option<Path>,
    pub health: Option<(Span, TokenStream)>,
    pub on_shutdown: Option<(Span, TokenStream)>,
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

/// The options' names, in the order the error about an unknown one lists them.
const KEYS: [&str; 8] =
    ["factory", "try_factory", "name", "eager", "async", "health", "on_shutdown", "crate"];

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
            let expr = value_tokens(meta)?;
            put(&mut args.factory, (span, expr)).map_err(|()| repeated())
        }
        "try_factory" => {
            let expr = value_tokens(meta)?;
            put(&mut args.try_factory, (span, expr)).map_err(|()| repeated())
        }
        "health" => {
            let expr = value_tokens(meta)?;
            put(&mut args.health, (span, expr)).map_err(|()| repeated())
        }
        "on_shutdown" => {
            let expr = value_tokens(meta)?;
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
    let expr = expression(value)?;
    let mut tokens = expr.clone().into_iter();
    let example = match (tokens.next(), tokens.next()) {
        (Some(TokenTree::Ident(ident)), None) => ident.to_string(),
        _ => "cache".to_owned(),
    };
    Err(syn::Error::new_spanned(expr, format!("`name` takes a string literal: write `name = \"{example}\"`")))
}

/// The value of `key = value`: the tokens up to the next `,` at its top level.
fn value_tokens(meta: &ParseNestedMeta<'_>) -> syn::Result<TokenStream> {
    let value = meta.value()?;
    let tokens = expression(value)?;
    if tokens.is_empty() {
        return Err(value.error("expected a path or a closure after `=`"));
    }
    Ok(tokens)
}

/// An expression's tokens, up to a `,` outside any group and any `<...>` of generic arguments
/// (`Builder::<A, B>::new`, `<T as Default>::default`), without parsing it: the attribute only
/// hands it to the generated code, where rustc reads it, so `syn` need not know every expression
/// (its `full` feature, which costs every user's build about a second, stays off). An arrow
/// (`->`, `=>`) is not a closing `>`. A `<` left open was a comparison or a shift
/// (`|| if n < 3 { A } else { B }`), so a `,` followed by an option ends the value there too.
fn expression(input: ParseStream<'_>) -> syn::Result<TokenStream> {
    let mut tokens = TokenStream::new();
    let (mut angles, mut arrow) = (0_usize, false);
    loop {
        if input.is_empty() || (input.peek(Token![,]) && (angles == 0 || option_follows(input))) {
            break;
        }
        let token: TokenTree = input.parse()?;
        let joint = match &token {
            TokenTree::Punct(punct) => {
                match punct.as_char() {
                    '<' => angles += 1,
                    '>' if !arrow => angles = angles.saturating_sub(1),
                    _ => {}
                }
                matches!(punct.as_char(), '-' | '=') && punct.spacing() == Spacing::Joint
            }
            _ => false,
        };
        arrow = joint;
        tokens.extend([token]);
    }
    Ok(tokens)
}

/// Whether the `,` at `input` is followed by an option: one of [`KEYS`], then `=`, `,` or the end.
/// Never so inside generic arguments, where a `,` is followed by a type, a lifetime, a const or
/// an associated type's name.
fn option_follows(input: ParseStream<'_>) -> bool {
    let Some((_, rest)) = input.cursor().punct() else { return false };
    let Some((key, rest)) = rest.ident() else { return false };
    KEYS.contains(&key.to_string().as_str())
        && (rest.eof() || rest.punct().is_some_and(|(punct, _)| matches!(punct.as_char(), '=' | ',')))
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
    let options = KEYS.map(|key| format!("`{key}`")).join(", ");
    meta.error(format!("unknown `singleton` option `{key}`; expected one of {options}"))
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

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::parse;

    fn tokens(value: Option<&(proc_macro2::Span, proc_macro2::TokenStream)>) -> String {
        value.map(|(_, tokens)| tokens.to_string()).unwrap_or_default()
    }

    #[test]
    fn a_comparison_in_a_factory_does_not_swallow_the_next_options() {
        let (args, errors) = parse(quote!(factory = || if N < 3 { A(1) } else { A(2) }, name = "a", eager));
        assert!(errors.is_none());
        assert_eq!(tokens(args.factory.as_ref()), quote!(|| if N < 3 { A(1) } else { A(2) }).to_string());
        assert_eq!(args.name.map(|name| name.value()).as_deref(), Some("a"));
        assert!(args.eager.is_some());

        let (args, errors) = parse(quote!(try_factory = || A::new(1 << N), async));
        assert!(errors.is_none());
        assert_eq!(tokens(args.try_factory.as_ref()), quote!(|| A::new(1 << N)).to_string());
        assert!(args.asyncness.is_some());
    }

    #[test]
    fn commas_in_generic_arguments_stay_in_the_value() {
        let (args, errors) = parse(quote!(
            factory = Pair::<u8, u16>::make,
            health = <Pool as Check<u8, Output = ()>>::ping,
            on_shutdown = || -> Pair<u8, u16> { Pair::new() },
            crate = kit
        ));
        assert!(errors.is_none());
        assert_eq!(tokens(args.factory.as_ref()), quote!(Pair::<u8, u16>::make).to_string());
        assert_eq!(tokens(args.health.as_ref()), quote!(<Pool as Check<u8, Output = ()>>::ping).to_string());
        assert_eq!(
            tokens(args.on_shutdown.as_ref()),
            quote!(|| -> Pair<u8, u16> { Pair::new() }).to_string()
        );
        assert!(args.krate.is_some());
    }
}
