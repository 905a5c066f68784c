//! The rules that involve more than one token: option combinations, the item's shape, the name.

use proc_macro2::{Delimiter, TokenStream, TokenTree};
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, GenericParam, Generics, LitStr};

use crate::attr::{combine, Args};

/// The item the attribute is on: a struct, enum or union (read as `syn`'s `DeriveInput`, with
/// no need for `syn`'s `full` feature), or anything else, kept as written for the error.
pub enum Item {
    Type(Box<DeriveInput>),
    Other(TokenStream),
}

impl Item {
    pub fn parse(input: TokenStream) -> Self {
        match syn::parse2::<DeriveInput>(input.clone()) {
            Ok(item) => Item::Type(Box::new(item)),
            Err(_) => Item::Other(input),
        }
    }
}

impl ToTokens for Item {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        match self {
            Item::Type(item) => item.to_tokens(tokens),
            Item::Other(other) => other.to_tokens(tokens),
        }
    }
}

/// What `#[singleton]` is placed on.
pub struct Target<'a> {
    pub ident: &'a syn::Ident,
    pub vis: &'a syn::Visibility,
}

/// Checks the options and the item together, reporting every problem at once.
pub fn check<'a>(args: &Args, item: &'a Item) -> syn::Result<Target<'a>> {
    let mut errors = None;
    if let (Some(_), Some((try_span, _))) = (&args.factory, &args.try_factory) {
        combine(
            &mut errors,
            syn::Error::new(*try_span, "`factory` and `try_factory` cannot both be given: keep one"),
        );
    }
    if let (Some(span), None, None) = (args.asyncness, &args.factory, &args.try_factory) {
        combine(
            &mut errors,
            syn::Error::new(
                span,
                "`async` needs the async factory to await: write `factory = Type::connect` \
                 (an `async fn() -> Self`) or `try_factory = ..` next to it, or remove `async`",
            ),
        );
    }
    if let Some(name) = &args.name {
        if let Err(err) = check_name(name) {
            combine(&mut errors, err);
        }
    }
    let target = match item {
        Item::Type(t) if !matches!(t.data, Data::Union(_)) => Some((&t.ident, &t.vis, &t.generics)),
        other => {
            combine(&mut errors, wrong_item(other));
            None
        }
    };
    if let Some((ident, _, generics)) = target {
        for err in check_generics(generics) {
            combine(&mut errors, err);
        }
        // The default name follows the runtime's rules too (an identifier can only break the
        // length rule).
        if args.name.is_none() {
            let default = crate::case::snake_case(&ident.to_string());
            if default.len() > singleton_names::MAX_NAME_LEN {
                combine(
                    &mut errors,
                    syn::Error::new(
                        ident.span(),
                        format!(
                            "this type's default name (its name in snake_case) is {} bytes, longer than \
                             the 256 a singleton name may have: give a shorter one with `name = \"...\"`",
                            default.len()
                        ),
                    ),
                );
            }
        }
    }
    match (errors, target) {
        (Some(err), _) => Err(err),
        (None, Some((ident, vis, _))) => Ok(Target { ident, vis }),
        (None, None) => unreachable!("an item that is not a struct or enum is an error"),
    }
}

/// A singleton has one instance per type, and that instance lives for the whole program.
fn check_generics(generics: &Generics) -> Vec<syn::Error> {
    let mut errors = Vec::new();
    if let Some(lifetime) = generics.lifetimes().next() {
        let lifetime = &lifetime.lifetime;
        errors.push(syn::Error::new(
            lifetime.span(),
            format!("a singleton is `'static`: own the data, e.g. `String` instead of `&{lifetime} str`"),
        ));
    }
    let param = generics.params.iter().find(|param| !matches!(param, GenericParam::Lifetime(_)));
    if let Some(param) = param {
        errors.push(syn::Error::new(
            param.span(),
            "a `#[singleton]` type cannot be generic: a singleton has one instance per type, \
             so declare a concrete type (e.g. `struct IntCache(Cache<i32>);`)",
        ));
    }
    if errors.is_empty() {
        if let Some(clause) = &generics.where_clause {
            errors.push(syn::Error::new(
                clause.where_token.span,
                "a `#[singleton]` type cannot have a `where` clause: remove it",
            ));
        }
    }
    errors
}

fn wrong_item(item: &Item) -> syn::Error {
    let (span, what) = match item {
        Item::Type(t) => match &t.data {
            Data::Union(union) => (union.union_token.span, "a union"),
            _ => (t.ident.span(), "this item"),
        },
        Item::Other(tokens) => kind(tokens),
    };
    syn::Error::new(span, format!("`#[singleton]` goes on a struct or an enum, not on {what}"))
}

/// The keyword that says what kind of item `tokens` is (after its attributes, visibility and
/// qualifiers), with its span.
fn kind(tokens: &TokenStream) -> (proc_macro2::Span, &'static str) {
    let mut tokens = tokens.clone().into_iter().peekable();
    let mut first = None;
    while let Some(token) = tokens.next() {
        first.get_or_insert_with(|| token.span());
        let TokenTree::Ident(word) = &token else {
            if matches!(&token, TokenTree::Punct(p) if p.as_char() == '#') {
                tokens.next(); // the attribute's `[...]`
            }
            continue;
        };
        let next = match tokens.peek() {
            Some(TokenTree::Ident(next)) => next.to_string(),
            _ => String::new(),
        };
        let what = match word.to_string().as_str() {
            "fn" => "a function",
            "trait" => "a trait",
            "union" => "a union",
            "impl" => "an impl block",
            "type" => "a type alias",
            "mod" => "a module",
            "pub" => {
                if matches!(tokens.peek(), Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Parenthesis)
                {
                    tokens.next(); // `pub(crate)`
                }
                continue;
            }
            // A qualifier of `const fn` or `extern "C" fn`, not `const X: T = ..;` nor `extern crate x;`.
            "const" if !matches!(next.as_str(), "fn" | "unsafe" | "async" | "extern") => break,
            "extern" if next == "crate" => break,
            "unsafe" | "async" | "const" | "extern" | "auto" | "default" => continue,
            _ => break,
        };
        return (word.span(), what);
    }
    // Any other item, at its first token (as syn's `Item::span()` gave it).
    (first.unwrap_or_else(proc_macro2::Span::call_site), "this item")
}

/// The runtime's naming rules (`singleton_core::validate_name`), checked at compile time.
fn check_name(lit: &LitStr) -> syn::Result<()> {
    use singleton_names::Problem;
    let Some(problem) = singleton_names::problem(&lit.value()) else {
        return Ok(());
    };
    let message = match problem {
        Problem::Empty => "`name` cannot be empty: write a name such as `name = \"cache\"`, or leave `name` out to use the type's name in snake_case",
        Problem::Blank => "`name` cannot be only whitespace",
        Problem::LeadingWhitespace | Problem::TrailingWhitespace => "`name` cannot start or end with whitespace",
        Problem::TooLong => "`name` cannot be longer than 256 bytes",
        Problem::Control => "`name` cannot hold control characters",
        Problem::Format => "`name` cannot hold invisible format characters (zero-width or bidirectional controls such as U+200B or U+202E)",
        Problem::Separator => "`name` cannot hold line or paragraph separators",
        _ => problem.reason(),
    };
    Err(syn::Error::new(lit.span(), message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_refused_as_the_runtime_refuses_them() {
        let check = |name: &str| check_name(&LitStr::new(name, proc_macro2::Span::call_site()));
        for bad in [
            "",
            " ",
            "cache ",
            " cache",
            "a\nb",
            "cache\u{200B}",
            "a\u{202E}b",
            "\u{2066}x",
            "\u{FEFF}x",
            "a\u{AD}b",
            "a\u{2028}b",
        ] {
            assert!(check(bad).is_err(), "{bad:?}");
        }
        for good in ["cache", "café", "キャッシュ", "cache manager", "*"] {
            assert!(check(good).is_ok(), "{good:?}");
        }
    }
}
