//! Layer 3, registry: the core's map of names and the operations on it, the typed path of
//! `#[singleton]` types, what `inventory` collects, test scopes, and the rate limit that gates
//! the name-keyed operations.
//!
//! - `core`: `SingletonCore` and `manager()`, its operations split by concern.
//! - `names`, `name`: the name maps, and the rules a name obeys.
//! - `registration`: what `#[singleton]` registers, and `registered()`.
//! - `typed`: `T::instance()`, `try_instance()`, `with_instance`, and the async futures.
//! - `testing`: `Scope`, the public face of a test scope.
//! - `rate_limit`: the sliding-window limiter.

pub(crate) mod core;
pub(crate) mod name;
pub(crate) mod names;
pub(crate) mod rate_limit;
pub(crate) mod registration;
pub mod testing;
pub(crate) mod typed;
