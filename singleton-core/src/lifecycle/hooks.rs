//! What the attribute's `health = path` and `on_shutdown = path` become: a check or a hook the
//! core can call with a handle to the instance, sync or async.
//!
//! # Telling sync from async
//!
//! The attribute cannot see a function's signature, so the generated code hands the path to
//! [`HookOf::new`] and lets method resolution choose (autoref specialization): `(&&hook).health_check()`
//! finds [`ViaSyncCheck`] when the path is a `fn(&T) -> Result<(), E>`, else [`ViaAsyncCheck`]
//! when it is an `async fn(&T) -> Result<(), E>` with a `Send` future, else [`ViaNoCheck`], whose
//! method demands a trait no type has: the compile error then says what to write. Hooks the same.
//! The chosen impl is turned into a `&'static dyn` once (the path is zero-sized, so leaking it
//! allocates nothing) and kept by the generated function in a `OnceLock`.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use crate::memory::instance::AnyInstance;
use crate::BoxError;

/// Not public API. The future of an async health check or shutdown hook.
pub type HookFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Not public API. A health check, sync or async.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub enum Check {
    /// `fn(&Self) -> Result<(), E>`: runs inline.
    Sync(&'static dyn SyncCheck),
    /// `async fn(&self) -> Result<(), E>`: its future owns a handle to the instance.
    Async(&'static dyn AsyncCheck),
}

/// Not public API. A shutdown hook, sync or async.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub enum Hook {
    /// `fn(&Self)`: runs inline.
    Sync(&'static dyn SyncHook),
    /// `async fn(&self)`: its future owns a handle to the instance.
    Async(&'static dyn AsyncHook),
}

/// Not public API.
#[doc(hidden)]
pub trait SyncCheck: Sync {
    /// Runs the check on `instance`.
    fn run(&self, instance: &AnyInstance) -> Result<(), BoxError>;
}

/// Not public API.
#[doc(hidden)]
pub trait AsyncCheck: Sync {
    /// The check's future, owning `instance`.
    fn start(&self, instance: AnyInstance) -> HookFuture<Result<(), BoxError>>;
}

/// Not public API.
#[doc(hidden)]
pub trait SyncHook: Sync {
    /// Runs the hook on `instance`.
    fn run(&self, instance: &AnyInstance);
}

/// Not public API.
#[doc(hidden)]
pub trait AsyncHook: Sync {
    /// The hook's future, owning `instance`.
    fn start(&self, instance: AnyInstance) -> HookFuture<()>;
}

/// Not public API. The function given as `health = path` or `on_shutdown = path`, for a
/// singleton of type `T`.
#[doc(hidden)]
pub struct HookOf<T, F> {
    f: F,
    _type: PhantomData<fn(&T)>,
}

impl<T, F> HookOf<T, F> {
    /// Wraps the path.
    pub fn new(f: F) -> Self {
        Self { f, _type: PhantomData }
    }
}

/// Not public API. Leaks `value` (a zero-sized path allocates nothing).
#[doc(hidden)]
pub fn leak<W>(value: W) -> &'static W {
    Box::leak(Box::new(value))
}

fn typed<T: Send + Sync + 'static>(instance: &AnyInstance) -> crate::Instance<T> {
    instance.downcast::<T>().expect("a singleton's hook is given its own instance")
}

/// Not public API. What a health check returns: `Result<(), E>` with `E: Into<BoxError>`.
#[doc(hidden)]
pub trait CheckResult {
    /// As the core keeps it.
    fn into_check_result(self) -> Result<(), BoxError>;
}

impl<E: Into<BoxError>> CheckResult for Result<(), E> {
    fn into_check_result(self) -> Result<(), BoxError> {
        self.map_err(Into::into)
    }
}

/// Not public API. An async function of `&'a T` whose future is `Send`, for every `'a`.
#[doc(hidden)]
pub trait AsyncFnRef<'a, T: 'a>: Copy + Send + Sync + 'static {
    /// What its future gives.
    type Out;
    /// Its future.
    type Fut: Future<Output = Self::Out> + Send + 'a;
    /// Calls it.
    fn call(self, t: &'a T) -> Self::Fut;
}

impl<'a, T: 'a, F, Fut> AsyncFnRef<'a, T> for F
where
    F: FnOnce(&'a T) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future + Send + 'a,
{
    type Out = Fut::Output;
    type Fut = Fut;
    fn call(self, t: &'a T) -> Fut {
        self(t)
    }
}

impl<T, F, E> SyncCheck for HookOf<T, F>
where
    T: Send + Sync + 'static,
    F: Fn(&T) -> Result<(), E> + Sync,
    E: Into<BoxError>,
{
    fn run(&self, instance: &AnyInstance) -> Result<(), BoxError> {
        (self.f)(&typed::<T>(instance)).map_err(Into::into)
    }
}

impl<T, F> AsyncCheck for HookOf<T, F>
where
    T: Send + Sync + 'static,
    F: for<'a> AsyncFnRef<'a, T>,
    for<'a> <F as AsyncFnRef<'a, T>>::Out: CheckResult,
{
    fn start(&self, instance: AnyInstance) -> HookFuture<Result<(), BoxError>> {
        let f = self.f;
        Box::pin(async move {
            let t = typed::<T>(&instance);
            f.call(&t).await.into_check_result()
        })
    }
}

impl<T, F> SyncHook for HookOf<T, F>
where
    T: Send + Sync + 'static,
    F: Fn(&T) + Sync,
{
    fn run(&self, instance: &AnyInstance) {
        (self.f)(&typed::<T>(instance));
    }
}

impl<T, F> AsyncHook for HookOf<T, F>
where
    T: Send + Sync + 'static,
    F: for<'a> AsyncFnRef<'a, T, Out = ()>,
{
    fn start(&self, instance: AnyInstance) -> HookFuture<()> {
        let f = self.f;
        Box::pin(async move {
            let t = typed::<T>(&instance);
            f.call(&t).await;
        })
    }
}

/// Not public API. Chosen first: a sync check.
#[doc(hidden)]
pub trait ViaSyncCheck {
    /// The check.
    fn health_check(self) -> Check;
}

impl<'x, T, F, E> ViaSyncCheck for &'x &'x &'static HookOf<T, F>
where
    T: Send + Sync + 'static,
    F: Fn(&T) -> Result<(), E> + Sync,
    E: Into<BoxError>,
{
    fn health_check(self) -> Check {
        Check::Sync(**self)
    }
}

/// Not public API. Chosen next: an async check.
#[doc(hidden)]
pub trait ViaAsyncCheck {
    /// The check.
    fn health_check(self) -> Check;
}

impl<T, F> ViaAsyncCheck for &&'static HookOf<T, F>
where
    T: Send + Sync + 'static,
    F: for<'a> AsyncFnRef<'a, T>,
    for<'a> <F as AsyncFnRef<'a, T>>::Out: CheckResult,
{
    fn health_check(self) -> Check {
        Check::Async(*self)
    }
}

/// Not public API. What `health = path` must name.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`health` must name a `fn(&Self) -> Result<(), E>`, or an `async fn(&self) -> Result<(), E>` whose future is `Send` (with `E: Into<Box<dyn Error + Send + Sync>>`)",
    label = "not a health check of this type"
)]
pub trait HealthCheckSignature {}

/// Not public API. Chosen last, when neither applies: a compile error that says what to write.
#[doc(hidden)]
pub trait ViaNoCheck {
    /// Never callable: its bound has no impl.
    fn health_check(self) -> Check
    where
        Self: HealthCheckSignature;
}

impl<T, F> ViaNoCheck for &'static HookOf<T, F> {
    fn health_check(self) -> Check
    where
        Self: HealthCheckSignature,
    {
        unreachable!("no type implements HealthCheckSignature")
    }
}

/// Not public API. Chosen first: a sync hook.
#[doc(hidden)]
pub trait ViaSyncHook {
    /// The hook.
    fn shutdown_hook(self) -> Hook;
}

impl<'x, T, F> ViaSyncHook for &'x &'x &'static HookOf<T, F>
where
    T: Send + Sync + 'static,
    F: Fn(&T) + Sync,
{
    fn shutdown_hook(self) -> Hook {
        Hook::Sync(**self)
    }
}

/// Not public API. Chosen next: an async hook.
#[doc(hidden)]
pub trait ViaAsyncHook {
    /// The hook.
    fn shutdown_hook(self) -> Hook;
}

impl<T, F> ViaAsyncHook for &&'static HookOf<T, F>
where
    T: Send + Sync + 'static,
    F: for<'a> AsyncFnRef<'a, T, Out = ()>,
{
    fn shutdown_hook(self) -> Hook {
        Hook::Async(*self)
    }
}

/// Not public API. What `on_shutdown = path` must name.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`on_shutdown` must name a `fn(&Self)`, or an `async fn(&self)` whose future is `Send`",
    label = "not a shutdown hook of this type"
)]
pub trait ShutdownHookSignature {}

/// Not public API. Chosen last: a compile error that says what to write.
#[doc(hidden)]
pub trait ViaNoHook {
    /// Never callable: its bound has no impl.
    fn shutdown_hook(self) -> Hook
    where
        Self: ShutdownHookSignature;
}

impl<T, F> ViaNoHook for &'static HookOf<T, F> {
    fn shutdown_hook(self) -> Hook
    where
        Self: ShutdownHookSignature,
    {
        unreachable!("no type implements ShutdownHookSignature")
    }
}
