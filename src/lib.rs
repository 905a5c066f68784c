#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

#[doc(inline)]
pub use singleton_core::*;

#[doc(inline)]
pub use singleton_macros::singleton;

// Not public API: the attribute's generated code reaches the runtime through this path.
#[doc(hidden)]
pub use singleton_core::__private;
