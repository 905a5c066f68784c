//! The typed path: what `T::instance()`, `T::try_instance()` and `T::with_instance(f)` run, sync
//! and async, in the global core or in the thread's test scope, and the futures an async type's
//! accessors return.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::lifecycle::context;
use crate::lifecycle::creation;
use crate::lifecycle::creation::{AsyncGet, Detached};
use crate::lifecycle::entry::{BoxFuture, Descriptor, Entry, Factory, Singleton, TypedDescriptor};
use crate::lifecycle::scope::ScopeState;
use crate::memory::node::{take_held, Borrow, Ref, Slot};
use crate::{manager, Instance, Result, SingletonError};

/// The state of an async request for a `#[singleton]` type's instance past its fast path: the
/// shared creation it joined, in the global core or in the scope it was made in.
pub(crate) struct SlowGet {
    get: AsyncGet<fn() -> BoxFuture>,
    scope: Option<Arc<ScopeState>>,
}

impl Descriptor {
    /// This type's entry in the global core.
    #[inline]
    pub(crate) fn entry(&'static self) -> &'static Arc<Entry> {
        self.entry.get_or_init(|| {
            // A descriptor that `inventory` did not collect (a platform it does not support)
            // still gets a working entry of its own; it is only missing from the listings.
            manager().registered_entry(self).unwrap_or_else(|| Arc::new(Entry::new(self.name, Some(self))))
        })
    }

    /// This type's entry's slot in the global core.
    #[inline]
    pub(crate) fn slot(&'static self) -> &'static Slot {
        self.slot.get_or_init(|| &self.entry().slot)
    }

    /// The live instance, if there is one: the hot path, kept small so that it inlines and
    /// returns its handle in registers (a `Result` with a `SingletonError` in it is returned
    /// through memory, which measured 3× slower).
    #[inline(always)]
    pub(crate) fn existing<T: Singleton>(&'static self) -> Option<Instance<T>> {
        // One relaxed load while no factory runs and no test scope is in use anywhere.
        if context::watched() {
            return self.existing_watched();
        }
        Self::typed(self.entry().slot.get(true)?)
    }

    /// [`existing`](Self::existing) with no type check and the striped class known: a handle
    /// counted in this thread's own cell, with no read-modify-write, else one counted on the
    /// node's stripe for this thread. The typed hot path (`instance()`, an async ready poll).
    ///
    /// # Safety
    ///
    /// `self` was made for `T`: its entry then holds only `T`s (see [`TypedDescriptor`]).
    #[inline(always)]
    pub(crate) unsafe fn existing_unchecked<T: Singleton>(&'static self) -> Option<Instance<T>> {
        if context::watched() {
            return self.existing_watched();
        }
        let slot = self.slot();
        let live = match take_held(slot) {
            Some(live) => live,
            None => slot.get_of(true, true)?,
        };
        // SAFETY: the value is a `T`, as the caller says.
        Some(unsafe { Instance::from_ref_unchecked(live) })
    }

    #[inline(always)]
    fn typed<T: Singleton>(live: Ref) -> Option<Instance<T>> {
        match Instance::try_from_ref(live) {
            Ok(instance) => Some(instance),
            Err(live) => {
                // Unreachable for a registered type (`set` checks types), but never wrong.
                live.release_uncounted();
                None
            }
        }
    }

    /// [`existing`](Self::existing) while a factory runs or a scope is in use somewhere: the
    /// running factory records this type as its dependency, and a scope is looked in.
    #[cold]
    #[inline(never)]
    pub(crate) fn existing_watched<T: Singleton>(&'static self) -> Option<Instance<T>> {
        context::record_dependency(self.name);
        Self::typed(self.here().0.slot.get(true)?)
    }

    /// This type's entry for the calling code: in the thread's test scope, if it is in one, else
    /// in the global core.
    fn here(&'static self) -> (Arc<Entry>, Option<Arc<ScopeState>>) {
        match crate::lifecycle::scope::current() {
            Some(scope) => (scope.entry_for(self), Some(scope)),
            None => (Arc::clone(self.entry()), None),
        }
    }

    /// The instance, created by the factory on first use. What `T::try_instance()` calls.
    #[doc(hidden)]
    #[inline]
    pub fn try_instance<T: Singleton>(&'static self) -> Result<Instance<T>> {
        match self.existing() {
            Some(instance) => Ok(instance),
            None => self.create(),
        }
    }

    #[cold]
    #[inline(never)]
    pub(crate) fn create<T: Singleton>(&'static self) -> Result<Instance<T>> {
        let (entry, scope) = self.here();
        let live = creation::get_or_make(&entry)?;
        if let Some(scope) = scope {
            scope.note(self.name);
        }
        Instance::from_ref(live, self.name)
    }

    /// The instance, created by the factory on first use. What `T::instance()` calls.
    ///
    /// Panics where `try_instance` returns `Err`, with the singleton's name and the cause.
    #[doc(hidden)]
    #[inline]
    #[track_caller]
    pub fn instance<T: Singleton>(&'static self) -> Instance<T> {
        match self.existing() {
            Some(instance) => instance,
            None => self.create_or_fail(),
        }
    }

    /// [`TypedDescriptor::with_instance`] with a handle: when the instance must be made
    /// first, the thread is in a scope or a factory, or its borrows nest too deep.
    #[cold]
    #[inline(never)]
    #[track_caller]
    pub(crate) fn with_handle<T: Singleton, R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        let instance = self.instance::<T>();
        f(&instance)
    }

    #[cold]
    #[inline(never)]
    #[track_caller]
    pub(crate) fn create_or_fail<T: Singleton>(&'static self) -> Instance<T> {
        match self.create() {
            Ok(instance) => instance,
            Err(err) => self.fail(err),
        }
    }

    /// Panics with the singleton's name and the cause (from an `instance()` that failed).
    #[cold]
    #[track_caller]
    pub(crate) fn fail(&self, err: SingletonError) -> ! {
        let message = format!("singleton `{}` ({}): {err}", self.name, (self.type_name)());
        match err {
            // Inside another singleton's factory: let that creation report the cycle.
            SingletonError::Cycle { path } if creation::in_factory() => {
                creation::unwind_with_cycle(path, message)
            }
            _ => panic!("{message}"),
        }
    }

    /// One poll of an async request for the instance: the fast path reads the slot; the first
    /// miss starts (or joins) the shared creation.
    #[inline]
    pub(crate) fn poll_instance<T: Singleton>(
        &'static self,
        slow: &mut Option<Box<SlowGet>>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Instance<T>>> {
        if slow.is_none() {
            // SAFETY: the futures that poll here are made by `TypedDescriptor<T>` only
            // (`instance_async`, `try_instance_async`), so `self` was made for `T`.
            if let Some(instance) = unsafe { self.existing_unchecked() } {
                return Poll::Ready(Ok(instance));
            }
            let Factory::Async(make) = self.factory else {
                // A sync type asked for from async code: its factory runs here.
                return Poll::Ready(self.create());
            };
            let (entry, scope) = self.here();
            *slow = Some(Box::new(SlowGet { get: AsyncGet::new(entry, make), scope }));
        }
        let SlowGet { get, scope } = &mut **slow.as_mut().expect("set above");
        match get.poll_get(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(result)) => {
                if let (Ok(_), Some(scope)) = (&result, scope) {
                    scope.note(self.name);
                }
                *slow = None;
                Poll::Ready(result.and_then(|live| Instance::from_ref(live, self.name)))
            }
            Poll::Ready(Err(Detached)) => unreachable!("a #[singleton] type's entry is never detached"),
        }
    }

    /// The current instance, without counting an access.
    pub(crate) fn live(&'static self) -> Option<Ref> {
        self.entry().slot.get(false)
    }
}

/// The future of an async singleton's `try_instance()`: the instance, created by its async factory
/// on first use, exactly once, or the reason it could not be.
///
/// Once the singleton exists, the first poll is ready: it reads the instance as the sync
/// `instance()` does. Otherwise every task that asks shares **one** creation: one task polls the
/// factory's future at a time, the others are woken when it ends.
///
/// The future is `Send` and `'static`, so it can be awaited in spawned tasks. It needs no
/// particular runtime: waiting tasks are woken through their wakers.
///
/// # Cancel safety
///
/// Dropping it at any point loses nothing: a creation it was driving is driven on by another task
/// that waits for the same singleton, or else by the next one that asks. The factory is called
/// once. (A creation driven on from another runtime than the one it started in may fail, if its
/// timers or sockets belong to the first; that is an error like any other, and the next caller
/// starts afresh.)
///
/// ```
/// use singleton_kit::{singleton, SingletonError};
///
/// #[singleton(try_factory = Secrets::load, async)]
/// struct Secrets(Vec<String>);
///
/// impl Secrets {
///     async fn load() -> Result<Self, std::io::Error> {
///         Ok(Secrets(vec!["token".into()]))
///     }
/// }
///
/// # futures::executor::block_on(async {
/// let secrets = Secrets::try_instance().await?;
/// assert_eq!(secrets.0, ["token"]);
/// # Ok::<(), SingletonError>(())
/// # }).unwrap();
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct TryInstanceFuture<T> {
    descriptor: &'static Descriptor,
    /// The request past the fast path, boxed: the future stays two words, cheap to make and to
    /// return on the fast path.
    slow: Option<Box<SlowGet>>,
    _of: PhantomData<fn() -> T>,
}

impl<T> TryInstanceFuture<T> {
    /// A request of `descriptor`'s instance, which must be a `T`: `descriptor` was made for `T`
    /// (only `TypedDescriptor<T>` calls this), which the poll relies on.
    #[inline]
    pub(crate) fn new(descriptor: &'static Descriptor) -> Self {
        Self { descriptor, slow: None, _of: PhantomData }
    }
}

impl<T: Singleton> Future for TryInstanceFuture<T> {
    type Output = Result<Instance<T>>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if this.slow.is_none() {
            if let Some(instance) = this.descriptor.existing() {
                return Poll::Ready(Ok(instance));
            }
        }
        this.poll_slow(cx)
    }
}

impl<T: Singleton> TryInstanceFuture<T> {
    /// Everything but the fast path, kept out of line so that the ready case stays small.
    #[cold]
    #[inline(never)]
    fn poll_slow(&mut self, cx: &mut Context<'_>) -> Poll<Result<Instance<T>>> {
        self.descriptor.poll_instance(&mut self.slow, cx)
    }
}

impl<T> fmt::Debug for TryInstanceFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TryInstanceFuture").field("singleton", &self.descriptor.name).finish_non_exhaustive()
    }
}

/// The future of an async singleton's `instance()`: as [`TryInstanceFuture`], but it panics, with
/// the singleton's name and the cause, where that one gives `Err`.
///
/// ```
/// use singleton_kit::{singleton, Instance};
///
/// #[singleton(factory = Db::connect, async)]
/// struct Db { url: String }
///
/// impl Db {
///     async fn connect() -> Db {
///         Db { url: "postgres://localhost".into() }
///     }
/// }
///
/// # futures::executor::block_on(async {
/// let db: Instance<Db> = Db::instance().await;
/// let again = Db::instance().await; // ready at once: the same instance
/// assert!(Instance::ptr_eq(&db, &again));
/// assert_eq!(db.url, "postgres://localhost");
/// # });
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct InstanceFuture<T> {
    inner: TryInstanceFuture<T>,
}

impl<T> InstanceFuture<T> {
    /// As [`TryInstanceFuture::new`]: `descriptor` was made for `T`.
    #[inline]
    pub(crate) fn new(descriptor: &'static Descriptor) -> Self {
        Self { inner: TryInstanceFuture::new(descriptor) }
    }
}

impl<T: Singleton> Future for InstanceFuture<T> {
    type Output = Instance<T>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut self.get_mut().inner;
        // The fast path returns the handle itself: a `Result` holding a `SingletonError` would
        // be returned through memory.
        if this.slow.is_none() {
            if let Some(instance) = this.descriptor.existing() {
                return Poll::Ready(instance);
            }
        }
        match this.poll_slow(cx) {
            Poll::Ready(Ok(instance)) => Poll::Ready(instance),
            Poll::Ready(Err(err)) => this.descriptor.fail(err),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T> fmt::Debug for InstanceFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstanceFuture")
            .field("singleton", &self.inner.descriptor.name)
            .finish_non_exhaustive()
    }
}

impl<T: Singleton> TypedDescriptor<T> {
    /// The live instance, if there is one (see [`Descriptor::existing_unchecked`]).
    #[inline(always)]
    fn existing(&'static self) -> Option<Instance<T>> {
        // SAFETY: this descriptor was made for `T` (only `Descriptor::new::<T>` makes a
        // `TypedDescriptor<T>`).
        unsafe { self.descriptor().existing_unchecked() }
    }

    /// The instance, created by the factory on first use: what `T::instance()` calls.
    ///
    /// Panics where `try_instance` returns `Err`, with the singleton's name and the cause.
    #[doc(hidden)]
    #[inline]
    #[track_caller]
    pub fn instance(&'static self) -> Instance<T> {
        match self.existing() {
            Some(instance) => instance,
            None => self.descriptor().create_or_fail(),
        }
    }

    /// The instance, created by the async factory on first use: what an async type's
    /// `T::try_instance()` returns. The one maker of a `TryInstanceFuture<T>`, with
    /// [`instance_async`](Self::instance_async): its poll relies on `T` being this type.
    #[doc(hidden)]
    #[inline]
    pub fn try_instance_async(&'static self) -> TryInstanceFuture<T> {
        TryInstanceFuture::new(self.descriptor())
    }

    /// The instance, created by the async factory on first use: what an async type's
    /// `T::instance()` returns. It panics where `try_instance_async` gives `Err`.
    #[doc(hidden)]
    #[inline]
    pub fn instance_async(&'static self) -> InstanceFuture<T> {
        InstanceFuture::new(self.descriptor())
    }

    /// The instance, created by the factory on first use: what `T::try_instance()` calls.
    #[doc(hidden)]
    #[inline]
    pub fn try_instance(&'static self) -> Result<Instance<T>> {
        match self.existing() {
            Some(instance) => Ok(instance),
            None => self.descriptor().create(),
        }
    }

    /// Runs `f` on the instance, created first if needed: what `T::with_instance(f)` calls. One
    /// access is counted, on this thread's counter of the type; no handle is taken unless the
    /// instance must be made first, the thread runs a factory or is in a scope, or its borrows
    /// nest deeper than the marks.
    #[doc(hidden)]
    #[inline]
    #[track_caller]
    pub fn with_instance<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        // No look at `context::watched()`: a thread that runs a factory or is in a scope has its
        // borrows suspended, so `begin` sends it to the handle path with the same check that
        // finds its marks all in use.
        let slot = self.slot();
        if let Some(borrow) = Borrow::begin(slot) {
            if !borrow.count_here(slot) {
                // A descriptor `inventory` did not collect has no counter: a handle counts.
                drop(borrow);
                return self.descriptor().with_handle(f);
            }
            // SAFETY: `data` points at the boxed value, which is not dropped while the borrow
            // lasts (the borrow outlives `f`'s use). It is a `T`: this descriptor registers `T`
            // (only `Descriptor::new::<T>` makes a `TypedDescriptor<T>`), and its entry, the one
            // the global core keeps for `T`'s type id or its own, holds only values of the
            // registered type (`set`, `get_or_create` and the creation check it).
            return f(unsafe { &*borrow.meta().data().cast::<T>() });
        }
        self.descriptor().with_handle(f)
    }
}
