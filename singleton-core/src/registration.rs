//! What `#[singleton]` registers through `inventory`, and the list of it at startup.

use std::any::TypeId;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use once_cell::sync::OnceCell;

use std::task::{Context, Poll};

use crate::context;
use crate::creation::{AsyncGet, BoxFuture, Detached};
use crate::entry::{Entry, SingletonValue};
use crate::future::{InstanceFuture, TryInstanceFuture};
use crate::node::{Borrow, Ref};
use crate::testing::ScopeState;
use crate::{creation, manager, BoxError, Instance, Result, SingletonError};

/// The static description of one `#[singleton]` type, made at compile time.
///
/// It holds only constants and `fn` pointers (the factory, the type's name and id), so the
/// attribute can build it in a `static` and submit it to `inventory` with no code running before
/// `main`. It also caches the type's entry in the global core, so that `T::instance()` finds it
/// with one load.
///
/// Not public API: the attribute writes it; read it through [`Registered`].
#[doc(hidden)]
pub struct Descriptor {
    pub(crate) name: &'static str,
    pub(crate) type_name: fn() -> &'static str,
    pub(crate) type_id: fn() -> TypeId,
    pub(crate) size: usize,
    pub(crate) module_path: &'static str,
    pub(crate) file: &'static str,
    pub(crate) line: u32,
    pub(crate) eager: bool,
    pub(crate) factory: Factory,
    entry: OnceCell<Arc<Entry>>,
}

/// How a `#[singleton]` type's instance is made: the function the attribute writes around the
/// factory it was given.
///
/// Not public API: the attribute writes it.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub enum Factory {
    /// `factory = f` or `try_factory = f`, or `Default`: runs to completion when called.
    Sync(fn() -> std::result::Result<SingletonValue, BoxError>),
    /// With `async`: returns the factory's future, boxed, so that factories that await each
    /// other's instances do not form a cycle of opaque types.
    Async(fn() -> BoxFuture),
}

/// A `#[singleton]` type: implemented by the attribute for each type it is placed on (and not to
/// be implemented by hand). It is what APIs that take any singleton type, such as
/// [`Scope::replace`](crate::testing::Scope::replace), ask for.
///
/// The attribute writes the impl at the type's name, so a type that is not
/// `Send + Sync + 'static` fails there, once, instead of at every generated use.
///
/// ```
/// use singleton_kit::{singleton, Singleton};
///
/// #[singleton(factory = || Cache(Vec::new()))]
/// struct Cache(Vec<u8>);
///
/// fn name_of<T: Singleton>() -> &'static str {
///     T::singleton_name()
/// }
/// assert_eq!(name_of::<Cache>(), "cache");
/// ```
pub trait Singleton: Send + Sync + 'static {
    /// Not public API: the type's registration.
    #[doc(hidden)]
    fn descriptor() -> &'static Descriptor;

    /// The singleton's name in the registry (what `SINGLETON_NAME` holds).
    fn singleton_name() -> &'static str {
        Self::descriptor().name
    }
}

/// The state of an async request for a `#[singleton]` type's instance past its fast path: the
/// shared creation it joined, in the global core or in the scope it was made in.
pub(crate) struct SlowGet {
    get: AsyncGet<fn() -> BoxFuture>,
    scope: Option<Arc<ScopeState>>,
}

/// A `#[singleton]` type, as `inventory` collects it.
#[doc(hidden)]
pub struct Registration(pub(crate) &'static Descriptor);

inventory::collect!(Registration);

impl Registration {
    #[doc(hidden)]
    pub const fn new(descriptor: &'static Descriptor) -> Self {
        Self(descriptor)
    }
}

impl Descriptor {
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    pub const fn new<T: Singleton>(
        name: &'static str,
        module_path: &'static str,
        file: &'static str,
        line: u32,
        eager: bool,
        factory: Factory,
    ) -> Self {
        Self {
            name,
            type_name: std::any::type_name::<T>,
            type_id: TypeId::of::<T>,
            size: std::mem::size_of::<T>(),
            module_path,
            file,
            line,
            eager,
            factory,
            entry: OnceCell::new(),
        }
    }

    /// The sync factory, unless the type is async.
    pub(crate) fn sync_factory(&self) -> Option<fn() -> std::result::Result<SingletonValue, BoxError>> {
        match self.factory {
            Factory::Sync(f) => Some(f),
            Factory::Async(_) => None,
        }
    }

    /// `true` for `#[singleton(async)]`.
    pub(crate) fn is_async(&self) -> bool {
        matches!(self.factory, Factory::Async(_))
    }

    /// This type's entry in the global core.
    #[inline]
    pub(crate) fn entry(&'static self) -> &'static Arc<Entry> {
        self.entry.get_or_init(|| {
            // A descriptor that `inventory` did not collect (a platform it does not support)
            // still gets a working entry of its own; it is only missing from the listings.
            manager().registered_entry(self).unwrap_or_else(|| Arc::new(Entry::new(self.name, Some(self))))
        })
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
    fn existing_watched<T: Singleton>(&'static self) -> Option<Instance<T>> {
        context::record_dependency(self.name);
        Self::typed(self.here().0.slot.get(true)?)
    }

    /// This type's entry for the calling code: in the thread's test scope, if it is in one, else
    /// in the global core.
    fn here(&'static self) -> (Arc<Entry>, Option<Arc<ScopeState>>) {
        match context::scope() {
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
    fn create<T: Singleton>(&'static self) -> Result<Instance<T>> {
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

    /// Runs `f` on the instance, created first if needed: what `T::with_instance(f)` calls. One
    /// access is counted; the handle taken for the call is let go when `f` returns.
    #[doc(hidden)]
    #[inline]
    #[track_caller]
    pub fn with_instance<T: Singleton, R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        if !context::watched() {
            let slot = &self.entry().slot;
            if let Some(borrow) = Borrow::begin(slot) {
                let meta = borrow.meta();
                if meta.type_id == TypeId::of::<T>() {
                    borrow.count(slot.counter);
                    // SAFETY: `data` points at the boxed value, a `T` (checked just now), which
                    // is not dropped while the borrow lasts; the borrow outlives `f`'s use.
                    return f(unsafe { &*meta.data().cast::<T>() });
                }
            }
        }
        self.with_handle(f)
    }

    /// [`with_instance`](Self::with_instance) with a handle: when the instance must be made
    /// first, the thread is in a scope or a factory, or its borrows nest too deep.
    #[cold]
    #[inline(never)]
    #[track_caller]
    fn with_handle<T: Singleton, R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        let instance = self.instance::<T>();
        f(&instance)
    }

    #[cold]
    #[inline(never)]
    #[track_caller]
    fn create_or_fail<T: Singleton>(&'static self) -> Instance<T> {
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

    /// The instance, created by the async factory on first use: what an async type's
    /// `T::try_instance()` returns.
    #[doc(hidden)]
    #[inline]
    pub fn try_instance_async<T: Singleton>(&'static self) -> TryInstanceFuture<T> {
        TryInstanceFuture::new(self)
    }

    /// The instance, created by the async factory on first use: what an async type's
    /// `T::instance()` returns. It panics where `try_instance_async` gives `Err`.
    #[doc(hidden)]
    #[inline]
    pub fn instance_async<T: Singleton>(&'static self) -> InstanceFuture<T> {
        InstanceFuture::new(self)
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
            if let Some(instance) = self.existing() {
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
    fn live(&'static self) -> Option<Ref> {
        self.entry().slot.get(false)
    }
}

impl fmt::Debug for Descriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Descriptor")
            .field("name", &self.name)
            .field("type_name", &(self.type_name)())
            .finish_non_exhaustive()
    }
}

/// Every `#[singleton]` type linked into the binary, from any crate, sorted by name (then by
/// type name, when two types claim one name).
///
/// A crate's singletons are listed when the crate is linked into the binary. Cargo passes every
/// dependency to the linker, but a dependency that the binary's code never mentions can be
/// dropped: mention it once, e.g. `use my_singletons as _;` at the binary's root.
///
/// ```
/// use singleton_kit::singleton;
///
/// #[singleton]
/// #[derive(Default)]
/// struct Settings;
///
/// let all = singleton_kit::registered();
/// let settings = all.iter().find(|r| r.name() == "settings").expect("registered");
/// assert!(settings.type_name().ends_with("Settings"));
/// assert!(!settings.is_created());
/// let _ = Settings::instance();
/// assert!(settings.is_created());
/// ```
pub fn registered() -> Vec<Registered> {
    let mut all: Vec<Registered> =
        inventory::iter::<Registration>.into_iter().map(|r| Registered(r.0)).collect();
    all.sort_unstable_by(|a, b| a.name().cmp(b.name()).then_with(|| a.type_name().cmp(b.type_name())));
    all
}

/// One `#[singleton]` type: where it was declared, and its live state in the global core.
///
/// ```
/// use singleton_kit::singleton;
///
/// #[singleton(name = "doc_registered", factory = || Retries(3))]
/// struct Retries(u32);
///
/// let r = singleton_kit::registered().into_iter().find(|r| r.name() == "doc_registered").unwrap();
/// assert!(r.type_name().ends_with("Retries") && !r.is_eager() && r.size_of() == 4);
/// assert!(!r.is_created() && r.created_at().is_none() && r.access_count() == 0);
/// let _ = Retries::instance();
/// assert!(r.is_created() && r.access_count() == 1 && r.created_at().is_some());
/// assert!(r.init_duration().is_some()); // how long the factory ran
/// println!("declared in {} at {}:{}", r.module_path(), r.file(), r.line());
/// ```
#[derive(Clone, Copy)]
pub struct Registered(pub(crate) &'static Descriptor);

impl Registered {
    /// The singleton's name (`name = "..."`, or the type name in snake_case).
    pub fn name(&self) -> &'static str {
        self.0.name
    }

    /// The type's full path, as [`std::any::type_name`] gives it.
    pub fn type_name(&self) -> &'static str {
        (self.0.type_name)()
    }

    /// The module the type is declared in.
    pub fn module_path(&self) -> &'static str {
        self.0.module_path
    }

    /// The source file of the declaration.
    pub fn file(&self) -> &'static str {
        self.0.file
    }

    /// The line of the `#[singleton]` attribute.
    pub fn line(&self) -> u32 {
        self.0.line
    }

    /// `true` for `#[singleton(eager)]`: [`init_eager`](crate::init_eager) creates it.
    pub fn is_eager(&self) -> bool {
        self.0.eager
    }

    /// The shallow size of one instance (`size_of`), in bytes.
    pub fn size_of(&self) -> usize {
        self.0.size
    }

    /// `true` for `#[singleton(async)]`: the instance is made by an async factory and reached with
    /// `.await`.
    pub fn is_async(&self) -> bool {
        self.0.is_async()
    }

    /// The names this singleton's factory asked for when it made the current instance (typed or
    /// by name), in the order it first asked; empty when there is no instance.
    ///
    /// ```
    /// use singleton_kit::singleton;
    ///
    /// #[singleton(name = "doc_deps_region", factory = || Region("eu-west-1"))]
    /// struct Region(&'static str);
    /// #[singleton(name = "doc_deps_client", factory = || Client(Region::instance().0))]
    /// struct Client(&'static str);
    ///
    /// let _ = Client::instance();
    /// let all = singleton_kit::registered();
    /// let client = all.iter().find(|r| r.name() == "doc_deps_client").unwrap();
    /// let region = all.iter().find(|r| r.name() == "doc_deps_region").unwrap();
    /// assert_eq!(client.dependencies(), ["doc_deps_region"]);
    /// assert_eq!(region.dependents(), ["doc_deps_client"]);
    /// ```
    pub fn dependencies(&self) -> Vec<String> {
        self.0.entry().dependencies()
    }

    /// The names of the singletons of the global core whose factories asked for this one.
    pub fn dependents(&self) -> Vec<String> {
        manager().dependents_of(self.0.name)
    }

    /// `true` when the global core holds an instance.
    pub fn is_created(&self) -> bool {
        self.0.entry().slot.is_some()
    }

    /// How often the current instance was accessed; 0 when there is none.
    pub fn access_count(&self) -> u64 {
        self.0.live().map_or(0, |l| l.accesses())
    }

    /// When the current instance was created (or stored with `set`).
    pub fn created_at(&self) -> Option<SystemTime> {
        self.0.live().map(|l| l.meta().created_at)
    }

    /// How long the factory of the current instance ran; `None` when there is no instance or it
    /// was stored with `set`.
    pub fn init_duration(&self) -> Option<Duration> {
        self.0.live().and_then(|l| l.meta().init_duration)
    }

    /// Creates the instance if there is none, and returns how long that took (`None` when it
    /// already existed).
    pub(crate) fn create(&self) -> Result<Option<Duration>> {
        let entry = self.0.entry();
        if entry.slot.is_some() {
            return Ok(None);
        }
        let live = creation::get_or_make(entry)?;
        let made = live.meta().init_duration;
        live.release_uncounted();
        Ok(made)
    }

    /// [`create`](Self::create) from async code: an async type's factory is awaited.
    pub(crate) async fn create_async(&self) -> Result<Option<Duration>> {
        let entry = self.0.entry();
        if entry.slot.is_some() {
            return Ok(None);
        }
        let live = creation::get_or_make_async(Arc::clone(entry)).await?;
        let made = live.meta().init_duration;
        live.release_uncounted();
        Ok(made)
    }
}

impl fmt::Debug for Registered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registered")
            .field("name", &self.name())
            .field("type_name", &self.type_name())
            .field("file", &self.file())
            .field("line", &self.line())
            .field("eager", &self.is_eager())
            .field("async", &self.is_async())
            .field("created", &self.is_created())
            .finish()
    }
}
