//! A registry entry: one name, and the slot of its live instance.

use std::any::{Any, TypeId};
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use crate::memory::node::{Meta, Slot};
use once_cell::sync::OnceCell;

use crate::lifecycle::hooks::{Check, Hook};
use crate::{BoxError, Result, SingletonError};

/// A value of any `Send + Sync + 'static` type, with the type facts the registry keeps about it:
/// what [`Request::value`](crate::Request::value) carries for a `set` that arrives as data.
///
/// ```
/// use singleton_kit::SingletonValue;
///
/// let v = SingletonValue::new(42_u64);
/// assert_eq!(v.type_name(), "u64");
/// assert_eq!(v.downcast_ref::<u64>(), Some(&42));
/// assert!(v.downcast_ref::<u32>().is_none());
/// ```
pub struct SingletonValue {
    pub(crate) value: Box<dyn Any + Send + Sync>,
    pub(crate) type_id: TypeId,
    pub(crate) type_name: &'static str,
    pub(crate) size: usize,
}

impl SingletonValue {
    /// Wraps `value`.
    ///
    /// ```
    /// use singleton_kit::{SingletonCore, SingletonValue};
    ///
    /// let core = SingletonCore::new();
    /// core.set_value("region", SingletonValue::new(String::from("eu-west-1")))?;
    /// assert_eq!(core.get::<String>("region")?.expect("just set").as_str(), "eu-west-1");
    /// # Ok::<(), singleton_kit::SingletonError>(())
    /// ```
    pub fn new<T: Send + Sync + 'static>(value: T) -> Self {
        Self {
            value: Box::new(value),
            type_id: TypeId::of::<T>(),
            type_name: std::any::type_name::<T>(),
            size: std::mem::size_of::<T>(),
        }
    }

    /// The value's type name, as [`std::any::type_name`] gives it.
    ///
    /// ```
    /// use singleton_kit::SingletonValue;
    ///
    /// assert_eq!(SingletonValue::new(7_i64).type_name(), "i64");
    /// assert!(SingletonValue::new(vec![1_u8]).type_name().ends_with("Vec<u8>"));
    /// ```
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }

    /// `true` when the value is a `T`.
    ///
    /// ```
    /// use singleton_kit::SingletonValue;
    ///
    /// let v = SingletonValue::new(3_u16);
    /// assert!(v.is::<u16>());
    /// assert!(!v.is::<u32>());
    /// ```
    pub fn is<T: 'static>(&self) -> bool {
        self.type_id == TypeId::of::<T>()
    }

    /// The value, if it is a `T`.
    ///
    /// ```
    /// use singleton_kit::SingletonValue;
    ///
    /// let v = SingletonValue::new(vec!["a", "b"]);
    /// assert_eq!(v.downcast_ref::<Vec<&str>>().map(Vec::len), Some(2));
    /// assert_eq!(v.downcast_ref::<String>(), None);
    /// ```
    pub fn downcast_ref<T: 'static>(&self) -> Option<&T> {
        self.value.downcast_ref()
    }

    /// What the registry keeps for this value once it is stored.
    pub(crate) fn into_meta(self, init_duration: Option<Duration>) -> Meta {
        let value = NonNull::from(Box::leak(self.value));
        Meta {
            value,
            type_id: self.type_id,
            type_name: self.type_name,
            size: self.size,
            created_at: SystemTime::now(),
            init_duration,
            seq: CREATION_SEQ.fetch_add(1, Ordering::Relaxed),
        }
    }
}

impl fmt::Debug for SingletonValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SingletonValue").field("type_name", &self.type_name).finish_non_exhaustive()
    }
}

/// The order in which instances came to be, across every core: `clear` drops newest first.
static CREATION_SEQ: AtomicU64 = AtomicU64::new(0);

/// One name in a core. A `#[singleton]` type's entry lives as long as its core; an entry made
/// by `set` or `get_or_create` is removed by `delete` and `clear`.
pub(crate) struct Entry {
    pub(crate) name: Box<str>,
    /// The `#[singleton]` type that owns this name, if any: it fixes the type and the factory.
    pub(crate) registration: Option<&'static Descriptor>,
    pub(crate) slot: Slot,
    /// `false` once the entry is removed from its core's map (see
    /// [`detach_if_idle`](crate::lifecycle::creation::detach_if_idle)). Changed under the creation lock.
    pub(crate) attached: AtomicBool,
    /// `true` for an entry of a test scope rather than of a core.
    pub(crate) scoped: bool,
    /// The names the factory of the current instance asked for, in the order it first asked:
    /// this entry's edges in the dependency graph. Kept until the entry is created again or its
    /// instance is deleted.
    dependencies: Mutex<Vec<Box<str>>>,
    /// The `singleton` label of its metrics: a `#[singleton]` type's name, or what its core gave
    /// a run-time name (see the `metrics` module). Nothing with the feature off.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) metric_label: crate::lifecycle::events::Label,
}

impl Entry {
    pub(crate) fn new(name: &str, registration: Option<&'static Descriptor>) -> Self {
        Self {
            name: name.into(),
            registration,
            // Striped counters where the contention is: the typed hot path of a `#[singleton]`
            // type.
            slot: Slot::new(registration.is_some()),
            attached: AtomicBool::new(true),
            scoped: false,
            dependencies: Mutex::new(Vec::new()),
            metric_label: crate::lifecycle::events::initial_label(registration.map(|r| r.name)),
        }
    }

    /// A `#[singleton]` type's entry in the global core, whose borrows count on the per-thread
    /// counter `counter`.
    pub(crate) fn counted(registration: &'static Descriptor, counter: u32) -> Self {
        Self { slot: Slot::counted(counter), ..Self::new(registration.name, Some(registration)) }
    }

    /// The entry with the `singleton` label its core gives it.
    pub(crate) fn with_metric_label(mut self, label: crate::lifecycle::events::Label) -> Self {
        self.metric_label = label;
        self
    }

    /// A `#[singleton]` type's entry in a test scope.
    pub(crate) fn in_scope(registration: &'static Descriptor) -> Self {
        Self { scoped: true, ..Self::new(registration.name, Some(registration)) }
    }

    pub(crate) fn deps(&self) -> MutexGuard<'_, Vec<Box<str>>> {
        self.dependencies.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records that the factory making this entry's instance asked for `name`.
    pub(crate) fn add_dependency(&self, name: &str) {
        let mut deps = self.deps();
        if !deps.iter().any(|d| **d == *name) {
            deps.push(name.into());
        }
    }

    /// Forgets the edges: the instance is being made again, or is gone.
    pub(crate) fn clear_dependencies(&self) {
        self.deps().clear();
    }

    /// The names this entry's factory asked for.
    pub(crate) fn dependencies(&self) -> Vec<String> {
        self.deps().iter().map(ToString::to_string).collect()
    }

    /// `true` when this entry's factory asked for `name`.
    pub(crate) fn depends_on(&self, name: &str) -> bool {
        self.deps().iter().any(|d| **d == *name)
    }

    /// Refuses a value of the wrong type for a registered name.
    pub(crate) fn check_type(&self, type_id: TypeId, type_name: &'static str) -> Result<()> {
        match self.registration {
            Some(reg) if (reg.type_id)() != type_id => Err(SingletonError::TypeMismatch {
                name: self.name.to_string(),
                expected: type_name,
                found: (reg.type_name)(),
            }),
            _ => Ok(()),
        }
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("name", &self.name)
            .field("registered", &self.registration.is_some())
            .field("live", &self.slot.is_some())
            .finish()
    }
}

/// Not public API. The future of an async factory, boxed so that factories of different types (and factories
/// that await each other) share one type.
pub type BoxFuture = Pin<Box<dyn Future<Output = std::result::Result<SingletonValue, BoxError>> + Send>>;

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
    /// `health = path`, if given: what the attribute wrote around it.
    pub(crate) health: Option<fn() -> Check>,
    /// `on_shutdown = path`, if given.
    pub(crate) on_shutdown: Option<fn() -> Hook>,
    /// This type's entry in the global core, once looked up (see `Descriptor::entry`).
    pub(crate) entry: OnceCell<Arc<Entry>>,
    /// That entry's slot: a pointer that is null until set, so `with_instance` finds the slot
    /// with one load and one test (a `OnceCell` tests its state, then loads its value).
    pub(crate) slot: once_cell::race::OnceRef<'static, Slot>,
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
/// [`Scope::replace`](crate::registry::testing::Scope::replace), ask for.
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

/// A [`Descriptor`] made for the type `T`: what the attribute puts in its `static`.
///
/// Only [`Descriptor::new::<T>`](Descriptor::new) makes one, so `T` is the type the descriptor
/// registers, and its entry holds only `T`s: `set` and `get_or_create` refuse a value of another
/// type for a registered name, and so does the creation itself (a factory whose value is not a
/// `T`, which only a hand-made descriptor can have, fails with `TypeMismatch`). So `T::with_instance`
/// reads the instance with no type check on its path.
///
/// Not public API: the attribute writes it.
#[doc(hidden)]
pub struct TypedDescriptor<T: 'static> {
    descriptor: Descriptor,
    _type: PhantomData<fn() -> T>,
}

impl<T> TypedDescriptor<T> {
    /// The descriptor, for `inventory` and `Singleton::descriptor`.
    #[doc(hidden)]
    pub const fn descriptor(&'static self) -> &'static Descriptor {
        &self.descriptor
    }

    /// With the health check `health = path`.
    #[doc(hidden)]
    #[must_use]
    pub const fn with_health(mut self, check: fn() -> Check) -> Self {
        self.descriptor.health = Some(check);
        self
    }

    /// With the shutdown hook `on_shutdown = path`.
    #[doc(hidden)]
    #[must_use]
    pub const fn with_on_shutdown(mut self, hook: fn() -> Hook) -> Self {
        self.descriptor.on_shutdown = Some(hook);
        self
    }
}

impl<T> std::ops::Deref for TypedDescriptor<T> {
    type Target = Descriptor;

    fn deref(&self) -> &Descriptor {
        &self.descriptor
    }
}

impl Descriptor {
    /// A descriptor of `T`, typed: the attribute's `static` holds a [`TypedDescriptor<T>`].
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    #[allow(clippy::new_ret_no_self, reason = "the only way to make a `TypedDescriptor<T>`")]
    pub const fn new<T: Singleton>(
        name: &'static str,
        module_path: &'static str,
        file: &'static str,
        line: u32,
        eager: bool,
        factory: Factory,
    ) -> TypedDescriptor<T> {
        let descriptor = Self {
            name,
            type_name: std::any::type_name::<T>,
            type_id: TypeId::of::<T>,
            size: std::mem::size_of::<T>(),
            module_path,
            file,
            line,
            eager,
            factory,
            health: None,
            on_shutdown: None,
            entry: OnceCell::new(),
            slot: once_cell::race::OnceRef::new(),
        };
        TypedDescriptor { descriptor, _type: PhantomData }
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
}

impl fmt::Debug for Descriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Descriptor")
            .field("name", &self.name)
            .field("type_name", &(self.type_name)())
            .finish_non_exhaustive()
    }
}
