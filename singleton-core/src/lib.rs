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
//!                        └──── T::instance(): Entry.slot.get() ◄───────────────┘
//!                                                  │
//!                       Node { instance, Meta (type, created_at, init time), striped counters }
//!                                                  └──► Stats, registered(), report()
//! ```
//!
//! The runtime is four layers, each a folder, each using only those below it: `memory` (nodes,
//! handles, borrows: the only `unsafe` code), `lifecycle` (entries, exactly-once creation, the
//! thread context, scopes' state, teardown, metrics events), `registry` (the core's map and
//! operations, the typed path, registration, `Scope`, the rate limit) and `surface` (operations as
//! data, JSON, stats, graph, metrics export, startup). `ARCHITECTURE.md` in the repository walks
//! through them.

#![warn(missing_docs)]

mod error;
mod lifecycle;
mod memory;
mod op;
mod order;
mod registry;
mod surface;
mod units;

pub use crate::registry::testing;

pub use crate::error::{BoxError, Result, SingletonError};
pub use crate::lifecycle::entry::Singleton;
pub use crate::lifecycle::entry::SingletonValue;
pub use crate::lifecycle::shutdown::{HookOutcome, HookReport, ShutdownReport};
pub use crate::memory::instance::{AnyInstance, Instance};
pub use crate::op::{OperationClass, SingletonOperation};
pub use crate::registry::core::{manager, shutdown, shutdown_async, SingletonCore};
pub use crate::registry::name::{validate_name, MAX_NAME_LEN};
pub use crate::registry::rate_limit::{Clock, InvalidRateLimit, ManualClock, MonotonicClock, RateLimit};
pub use crate::registry::registration::{registered, Registered};
pub use crate::registry::typed::{InstanceFuture, TryInstanceFuture};
pub use crate::surface::admin::{admin, Admin, AdminPolicy};
pub use crate::surface::graph::graph;
pub use crate::surface::graph::{Graph, GraphEdge, GraphNode};
pub use crate::surface::health::{
    health, CheckStatus, HealthCheck, HealthReport, HealthStatus, DEFAULT_HEALTH_TIMEOUT,
};
#[cfg(feature = "axum")]
pub use crate::surface::http;
#[cfg(feature = "json")]
pub use crate::surface::json::MAX_JSON_REQUEST_BYTES;
pub use crate::surface::list::{Listed, Source};
#[cfg(feature = "metrics")]
pub use crate::surface::metrics::export_metrics;
pub use crate::surface::operation::{Request, Response};
pub use crate::surface::startup::{
    init_eager, init_eager_async, report, validate, EagerError, EagerOutcome, EagerReport, Report,
    ValidationError,
};
pub use crate::surface::stats::{Stats, MEMORY_NOTE};

// Not public API. What the code that `#[singleton]` writes refers to.
#[doc(hidden)]
pub mod __private {
    use std::marker::PhantomData;

    pub use inventory;

    use std::future::Future;

    pub use crate::lifecycle::entry::BoxFuture;
    pub use crate::lifecycle::entry::{Descriptor, Factory, Singleton as SingletonType, TypedDescriptor};
    pub use crate::lifecycle::hooks::{
        leak, Check, Hook, HookOf, ViaAsyncCheck, ViaAsyncHook, ViaNoCheck, ViaNoHook, ViaSyncCheck,
        ViaSyncHook,
    };
    pub use crate::registry::registration::Registration;
    pub use crate::{BoxError, SingletonValue};
    pub use std::sync::OnceLock;

    /// The creation function of the `#[singleton]` type `T`, from the factory it was given. The
    /// factory is passed in rather than called by the generated code, so that a factory of the
    /// wrong type is an error about the factory, against these bounds.
    pub struct Of<T>(PhantomData<fn() -> T>);

    impl<T: SingletonType> Of<T> {
        /// `factory = f`, and no factory (`f` is `Default::default`).
        #[inline]
        pub fn factory<F, R>(f: F) -> Result<SingletonValue, BoxError>
        where
            F: FnOnce() -> R,
            R: FactoryOutput<T>,
        {
            Ok(SingletonValue::new(f().into_instance()))
        }

        /// `try_factory = f`.
        #[inline]
        pub fn try_factory<F, E>(f: F) -> Result<SingletonValue, BoxError>
        where
            F: FnOnce() -> Result<T, E>,
            E: FactoryError,
        {
            f().map(SingletonValue::new).map_err(FactoryError::into_box_error)
        }

        /// `factory = f, async`: `f()` is a future of `T`, boxed.
        #[inline]
        pub fn async_factory<F, R>(f: F) -> BoxFuture
        where
            F: FnOnce() -> R,
            R: AsyncFactoryOutput<T>,
        {
            let made = f();
            Box::pin(async move { Ok(SingletonValue::new(made.into_future().await)) })
        }

        /// `try_factory = f, async`: `f()` is a future of `Result<T, E>`, boxed.
        #[inline]
        pub fn async_try_factory<F, R, E>(f: F) -> BoxFuture
        where
            F: FnOnce() -> R,
            R: AsyncFactoryOutput<Result<T, E>>,
            E: FactoryError,
        {
            let made = f();
            Box::pin(async move {
                made.into_future().await.map(SingletonValue::new).map_err(FactoryError::into_box_error)
            })
        }
    }

    /// What a sync factory returns: the instance itself.
    #[diagnostic::on_unimplemented(
        message = "the factory returns `{Self}`, not `{T}`",
        label = "expected a factory returning `{T}`",
        note = "a `factory` is a `fn() -> {T}`; for a `fn() -> Result<{T}, E>` write `try_factory = ..`",
        note = "if the factory is an `async fn`, add `async`: `#[singleton(factory = .., async)]`"
    )]
    pub trait FactoryOutput<T> {
        /// The instance.
        fn into_instance(self) -> T;
    }

    impl<T> FactoryOutput<T> for T {
        #[inline]
        fn into_instance(self) -> T {
            self
        }
    }

    /// What the factory of an `async` singleton returns: a `Send + 'static` future of the
    /// instance (or of a `Result`, for `try_factory`).
    #[diagnostic::on_unimplemented(
        message = "the factory of an `async` singleton must return a `Send + 'static` future of `{T}`",
        label = "this returns `{Self}`",
        note = "make the factory an `async fn` (or a closure returning `async {{ .. }}`), or, if it is not async, remove `async` from `#[singleton(..)]`",
        note = "a future that holds a non-`Send` value across an `.await` (an `Rc`, a `MutexGuard`) is not `Send`"
    )]
    pub trait AsyncFactoryOutput<T>: Send + 'static {
        /// The future.
        type Future: Future<Output = T> + Send + 'static;
        /// Turns it into the future.
        fn into_future(self) -> Self::Future;
    }

    impl<T, R: Future<Output = T> + Send + 'static> AsyncFactoryOutput<T> for R {
        type Future = R;
        #[inline]
        fn into_future(self) -> R {
            self
        }
    }

    /// The error type of a `try_factory`: anything that converts into a [`BoxError`].
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot be the error of a `try_factory`: it does not implement `std::error::Error`",
        label = "this `try_factory` returns `Err({Self})`",
        note = "implement `std::error::Error` for `{Self}` (it must also be `Send + Sync + 'static`), or return `Result<_, Box<dyn std::error::Error + Send + Sync>>`"
    )]
    pub trait FactoryError {
        /// Boxes the error.
        fn into_box_error(self) -> BoxError;
    }

    impl<E: Into<BoxError>> FactoryError for E {
        #[inline]
        fn into_box_error(self) -> BoxError {
            self.into()
        }
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
