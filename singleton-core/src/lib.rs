//! The runtime of [singleton-kit](https://docs.rs/singleton-kit): the registry of singletons,
//! their typed slots, the rate limiter, statistics and the startup listing.
//!
//! Use it through the `singleton-kit` crate, which re-exports all of this together with the
//! `#[singleton]` attribute.
//!
//! The data path is one-directional:
//!
//! ```text
//! #[singleton] ──► static Descriptor (name, fn pointers) ──► inventory ──► SingletonCore
//!                        │ caches its Entry once                               │ name → Entry
//!                        └────── T::instance(): load Entry.live ◄───────────────┘
//!                                                  │
//!                                  Live { instance, created_at, init time, access counter }
//!                                                  └──► Stats, registered(), report()
//! ```

#![warn(missing_docs)]

mod core;
mod counter;
mod creation;
mod entry;
mod error;
mod instance;
mod name;
mod operation;
mod rate_limit;
mod registration;
mod startup;
mod stats;

pub use crate::core::{manager, SingletonCore};
pub use crate::entry::SingletonValue;
pub use crate::error::{BoxError, Result, SingletonError};
pub use crate::instance::Instance;
pub use crate::name::{validate_name, MAX_NAME_LEN};
pub use crate::operation::{Request, Response, SingletonOperation};
pub use crate::rate_limit::{Clock, ManualClock, MonotonicClock, RateLimit};
pub use crate::registration::{registered, Registered};
pub use crate::startup::{
    init_eager, report, validate, EagerError, EagerOutcome, EagerReport, Report, ValidationError,
};
pub use crate::stats::{Stats, MEMORY_NOTE};

// Not public API. What the code that `#[singleton]` writes refers to.
#[doc(hidden)]
pub mod __private {
    pub use inventory;

    pub use crate::registration::{Descriptor, Registration, SingletonType};
    pub use crate::{BoxError, SingletonValue};

    /// The factory result of a `factory = path` singleton.
    #[inline]
    pub fn erase<T: Send + Sync + 'static>(value: T) -> Result<SingletonValue, BoxError> {
        Ok(SingletonValue::new(value))
    }

    /// The factory result of a `try_factory = path` singleton.
    #[inline]
    pub fn try_erase<T, E>(result: Result<T, E>) -> Result<SingletonValue, BoxError>
    where
        T: Send + Sync + 'static,
        E: Into<BoxError>,
    {
        result.map(SingletonValue::new).map_err(Into::into)
    }

    /// A `#[singleton]` without `factory` or `try_factory` is made by `Default`.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` has no factory and does not implement `Default`",
        label = "no `factory` given and no `Default` implementation",
        note = "derive or implement `Default`, or name a factory: `#[singleton(factory = {Self}::new)]`"
    )]
    pub trait DefaultFactory: Sized {
        /// Makes the instance.
        fn make() -> Self;
    }

    impl<T: Default> DefaultFactory for T {
        #[inline]
        fn make() -> Self {
            T::default()
        }
    }
}
