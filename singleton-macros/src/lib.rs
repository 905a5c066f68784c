//! The `#[singleton]` attribute of [singleton-kit](https://docs.rs/singleton-kit).
//!
//! This crate is an implementation detail: depend on `singleton-kit` and write
//! `use singleton_kit::singleton;`. Its documentation of the attribute is the one to read.

mod attr;
mod case;
mod expand;
mod fallback;
mod valid;

use proc_macro::TokenStream;

#[proc_macro_attribute]
pub fn singleton(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::singleton(args.into(), input.into()).into()
}
