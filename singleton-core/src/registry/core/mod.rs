//! The registry: one map from name to entry, shared by the typed and the name-keyed paths.

mod async_ops;
mod bulk;
mod named;

use std::any::TypeId;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use once_cell::sync::Lazy;

use crate::lifecycle::context;
use crate::lifecycle::creation;
use crate::lifecycle::entry::{Descriptor, Entry};
use crate::memory::node::Ref;
use crate::registry::names::{Named, Names, NamesWriter};
use crate::registry::rate_limit::{Clock, Limiter, MonotonicClock, RateLimit};
use crate::registry::registration::Registration;
use crate::{validate_name, Instance, Result, SingletonError, SingletonOperation};

/// A registry of singletons with name-keyed management operations under a rate limit: the
/// seed design's `SingletonCore`.
///
/// The global one, which every `#[singleton]` type lives in, is [`manager()`]. Isolated cores
/// from [`new`](Self::new) / [`with_rate_limit`](Self::with_rate_limit) know the same
/// `#[singleton]` types (so `get` by name creates them with their factory) but hold instances of
/// their own: they suit tests and embedding.
///
/// | operation | result | when rate-limited |
/// |---|---|---|
/// | [`get`](Self::get) | `Ok(Some(instance))`, created by its `#[singleton]` factory if needed; `Ok(None)` if unknown | `Err(RateLimited)` |
/// | [`get_or_create`](Self::get_or_create), [`get_or_try_create`](Self::get_or_try_create) | the instance, created once | `Err(RateLimited)` |
/// | [`set`](Self::set) | `Ok(())`, replacing any instance | `Err(RateLimited)` |
/// | [`has`](Self::has), [`exists`](Self::exists) | `true` if an instance is stored | `false` |
/// | [`delete`](Self::delete) | `true` if an instance was removed | `false` |
/// | [`clear`](Self::clear), [`reset_all`](Self::reset_all) | how many were removed | `0` |
/// | [`stats`](Self::stats) | `Ok(Stats)` | `Err(RateLimited)` |
/// | [`reset`](Self::reset) | `true`: limiter window and refusal count cleared | `false` |
///
/// An invalid name (see [`validate_name`]) gives `Err(InvalidName)`, `false` or `0`, takes no
/// rate-limit slot and changes nothing. Each operation emits a `debug` event through `tracing`
/// (refusals at `warn`, creations at `info` with the factory's time), so a caller's span with a
/// `correlation_id` field tags them.
///
/// ```
/// use singleton_kit::SingletonCore;
///
/// let core = SingletonCore::new();
/// let pool = core.get_or_create("pool", || vec![1, 2, 3])?;
/// assert_eq!(pool.len(), 3);
/// assert!(core.has("pool"));
/// assert_eq!(core.stats()?.access_counts["pool"], 1);
/// assert!(core.delete("pool"));
/// assert!(!core.exists("pool"));
/// # Ok::<(), singleton_kit::SingletonError>(())
/// ```
pub struct SingletonCore {
    pub(crate) limiter: Limiter,
    /// Every name: the `#[singleton]` types', fixed, and those made at run time.
    pub(crate) names: Names,
    /// The `#[singleton]` types' entries, fixed when the core is made.
    by_type: HashMap<TypeId, Arc<Entry>>,
    /// The run-time names that have a metrics label of their own.
    metric_labels: crate::lifecycle::events::CoreLabels,
    /// Set while a shutdown of this core runs: a second one (re-entrant, or racing) does nothing.
    shutting_down: std::sync::atomic::AtomicBool,
}

/// A shutdown of a core in progress; ends when dropped.
pub(crate) struct Shutting<'a>(&'a SingletonCore);

impl<'a> Shutting<'a> {
    pub(crate) fn begin(core: &'a SingletonCore) -> Option<Self> {
        use std::sync::atomic::Ordering;
        core.shutting_down.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).ok()?;
        Some(Shutting(core))
    }
}

impl Drop for Shutting<'_> {
    fn drop(&mut self) {
        self.0.shutting_down.store(false, std::sync::atomic::Ordering::Release);
    }
}

static MANAGER: Lazy<SingletonCore> = Lazy::new(SingletonCore::global);

/// The global core: every `#[singleton]` type's instance lives here. The seed design's
/// `get_singleton_manager()`.
///
/// Its rate limit is the default, 1000 operations per second; change it with
/// [`SingletonCore::set_rate_limit`].
///
/// ```
/// use singleton_kit::{manager, singleton, Instance};
///
/// #[singleton(factory = || Counter(7))]
/// struct Counter(u32);
///
/// let typed = Counter::instance();
/// let by_name = manager().get::<Counter>("counter")?.expect("registered");
/// assert!(Instance::ptr_eq(&typed, &by_name));
/// # Ok::<(), singleton_kit::SingletonError>(())
/// ```
#[doc(alias = "get_singleton_manager")]
pub fn manager() -> &'static SingletonCore {
    &MANAGER
}

/// Lets go of every instance in the global core, dependents first, without the rate limit:
/// [`SingletonCore::shutdown`] on [`manager()`]. For a server's graceful stop or a Lambda
/// extension's shutdown event; idempotent.
///
/// ```
/// let released = singleton_kit::shutdown();
/// assert_eq!(singleton_kit::shutdown(), 0);
/// # let _ = released;
/// ```
pub fn shutdown() -> usize {
    manager().shutdown()
}

/// The graceful shutdown of the global core: [`SingletonCore::shutdown_async`] on [`manager()`].
/// For Lambda's shutdown phase (SIGTERM) or a server's graceful stop.
///
/// ```
/// use std::time::Duration;
///
/// let report = futures::executor::block_on(singleton_kit::shutdown_async(Duration::from_millis(400)));
/// println!("released {} in {:?}", report.released, report.duration);
/// ```
pub async fn shutdown_async(deadline: std::time::Duration) -> crate::ShutdownReport {
    manager().shutdown_async(deadline).await
}

impl Default for SingletonCore {
    fn default() -> Self {
        Self::new()
    }
}

impl SingletonCore {
    /// An isolated core with the default rate limit (1000 operations per second).
    pub fn new() -> Self {
        Self::with_rate_limit(RateLimit::default())
    }

    /// An isolated core with the given rate limit.
    ///
    /// ```
    /// use singleton_kit::{RateLimit, SingletonCore, SingletonError};
    ///
    /// let core = SingletonCore::with_rate_limit(RateLimit::per_second(1));
    /// assert!(core.set("a", 1_u8).is_ok());
    /// assert!(matches!(core.set("a", 2_u8), Err(SingletonError::RateLimited { .. })));
    /// ```
    pub fn with_rate_limit(limit: RateLimit) -> Self {
        Self::with_clock(limit, MonotonicClock::new())
    }

    /// An isolated core whose rate limiter reads `clock` (a [`ManualClock`](crate::ManualClock)
    /// in tests).
    ///
    /// ```
    /// use std::time::Duration;
    /// use singleton_kit::{ManualClock, RateLimit, SingletonCore, SingletonError};
    ///
    /// let clock = ManualClock::new();
    /// let core = SingletonCore::with_clock(RateLimit::per_second(1), clock.clone());
    /// core.set("token", 1_u32)?;
    /// clock.advance(Duration::from_millis(400));
    /// let err = core.set("token", 2_u32).unwrap_err(); // the second in one second
    /// let SingletonError::RateLimited { retry_after, .. } = err else { panic!("{err}") };
    /// assert_eq!(retry_after, Duration::from_millis(600)); // when the first leaves the window
    /// # Ok::<(), SingletonError>(())
    /// ```
    pub fn with_clock(limit: RateLimit, clock: impl Clock) -> Self {
        let entries = inventory::iter::<Registration>
            .into_iter()
            .map(|registration| Arc::new(Entry::new(registration.0.name, Some(registration.0))))
            .collect();
        Self::with_entries(limit, clock, entries)
    }

    /// The global core: its `#[singleton]` entries are the ones `T::with_instance` borrows from,
    /// and count those borrows on per-thread counters, one per entry.
    fn global() -> Self {
        let entries: Vec<Arc<Entry>> = inventory::iter::<Registration>
            .into_iter()
            .zip(0_u32..)
            .map(|(registration, counter)| Arc::new(Entry::counted(registration.0, counter)))
            .collect();
        crate::memory::node::set_counters(entries.len());
        Self::with_entries(RateLimit::default(), MonotonicClock::new(), entries)
    }

    fn with_entries(limit: RateLimit, clock: impl Clock, entries: Vec<Arc<Entry>>) -> Self {
        Self {
            limiter: Limiter::new(limit, Arc::new(clock)),
            names: Names::new(entries.iter().cloned()),
            by_type: entries.into_iter().filter_map(|e| Some(((e.registration?.type_id)(), e))).collect(),
            metric_labels: crate::lifecycle::events::CoreLabels::default(),
            shutting_down: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The rate limit in force.
    ///
    /// ```
    /// use singleton_kit::{RateLimit, SingletonCore};
    ///
    /// assert_eq!(SingletonCore::new().rate_limit(), RateLimit::default());
    /// let core = SingletonCore::with_rate_limit(RateLimit::per_second(50));
    /// assert_eq!(core.rate_limit().max_ops(), Some(50));
    /// ```
    pub fn rate_limit(&self) -> RateLimit {
        self.limiter.limit()
    }

    /// Changes the rate limit. Operations admitted under the previous limit (the newest
    /// `max_ops` of them) count against the new one; while unlimited, nothing is recorded.
    ///
    /// ```
    /// use singleton_kit::{RateLimit, SingletonCore, SingletonError};
    ///
    /// let core = SingletonCore::new();
    /// core.set_rate_limit(RateLimit::per_second(0)); // maintenance: refuse everything
    /// assert!(matches!(core.set("mode", "ro"), Err(SingletonError::RateLimited { .. })));
    /// core.set_rate_limit(RateLimit::unlimited());
    /// assert!(core.set("mode", "rw").is_ok());
    /// assert_eq!(core.rate_limit(), RateLimit::unlimited());
    /// ```
    pub fn set_rate_limit(&self, limit: RateLimit) {
        self.limiter.set_limit(limit);
    }

    pub(crate) fn registered_entry(&self, descriptor: &Descriptor) -> Option<Arc<Entry>> {
        self.by_type.get(&(descriptor.type_id)()).cloned()
    }

    /// A new entry for a name made at run time, with its metrics label.
    fn new_entry(&self, name: &str) -> Arc<Entry> {
        Arc::new(Entry::new(name, None).with_metric_label(self.metric_labels.label(name)))
    }

    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn metric_labels(&self) -> &crate::lifecycle::events::CoreLabels {
        &self.metric_labels
    }

    /// Exclusive access to the names that are not `#[singleton]` types'.
    pub(crate) fn write(&self) -> NamesWriter<'_> {
        self.names.write()
    }

    /// Checks the name, then takes a rate-limit slot, then logs the operation.
    #[inline]
    fn admit(&self, operation: SingletonOperation, name: &str) -> Result<()> {
        self.gate(operation, Some(name)).map_err(|denied| denied.into_error(operation, Some(name)))
    }

    /// Checks the name (`None`: the operation is on all singletons), then takes a rate-limit slot,
    /// then logs the operation. A refusal is [`Denied::Refused`], which carries only the wait: the
    /// methods that answer `false` or `0` drop it, building no error and allocating nothing.
    #[inline]
    pub(crate) fn gate(
        &self,
        operation: SingletonOperation,
        name: Option<&str>,
    ) -> std::result::Result<(), Denied> {
        debug_assert_eq!(operation.takes_name(), name.is_some());
        if let Some(name) = name {
            validate_name(name)?;
        }
        match self.limiter.try_acquire() {
            Ok(()) => {
                tracing::debug!(operation = operation.as_str(), singleton = name, "singleton operation");
                Ok(())
            }
            Err(retry_after) => {
                crate::lifecycle::events::refused(operation);
                tracing::warn!(
                    operation = operation.as_str(),
                    singleton = name,
                    retry_after_ms = retry_after.as_secs_f64() * 1e3,
                    "singleton operation refused by the rate limit"
                );
                Err(Denied::Refused(retry_after))
            }
        }
    }

    pub(crate) fn lookup(&self, name: &str) -> Result<Option<Arc<Entry>>> {
        self.names.with(name, |named| match named {
            None => Ok(None),
            Some(Named::One(entry)) => Ok(Some(Arc::clone(entry))),
            Some(Named::Ambiguous(all)) => Err(duplicate(name, all)),
        })
    }

    /// The entry for `name`, made (unregistered) if there is none.
    fn entry_or_insert(&self, name: &str) -> Result<Arc<Entry>> {
        if let Some(entry) = self.lookup(name)? {
            return Ok(entry);
        }
        let mut names = self.write();
        if let Some(Named::One(entry)) = names.get(name) {
            return Ok(Arc::clone(entry));
        }
        let entry = self.new_entry(name);
        names.insert(name, Named::One(Arc::clone(&entry)));
        Ok(entry)
    }

    /// The live instance under `name`, creating a registered one with its factory.
    #[inline]
    pub(crate) fn get_live(&self, name: &str, want: Option<(TypeId, &'static str)>) -> Result<Option<Ref>> {
        match self.find(name, want)? {
            Found::Live(live) => Ok(live),
            Found::Make(entry) => creation::get_or_make(&entry).map(Some),
        }
    }

    /// The first step of GET, sync or async: the live instance under `name` (or none), or the
    /// `#[singleton]` type's entry to create it in.
    #[inline]
    fn find(&self, name: &str, want: Option<(TypeId, &'static str)>) -> Result<Found> {
        self.admit(SingletonOperation::Get, name)?;
        context::record_dependency(name);
        // What the lookup found, small enough to come back in registers: building the result
        // (a `Result` with a `SingletonError` in it) inside the closure cost 13 ns per `get`.
        enum Look {
            Live(Ref),
            Missing,
            Make(Arc<Entry>),
            Ambiguous(Box<SingletonError>),
        }
        let look = self.names.with(name, |named| match named {
            None => Look::Missing,
            Some(Named::Ambiguous(all)) => Look::Ambiguous(Box::new(duplicate(name, all))),
            // The common case takes its handle while the map is loaded, cloning no `Arc`.
            Some(Named::One(entry)) => match entry.slot.get(true) {
                Some(live) => Look::Live(live),
                None => Look::Make(Arc::clone(entry)),
            },
        });
        let entry = match look {
            Look::Live(live) => return Ok(Found::Live(Some(live))),
            Look::Missing => return Ok(Found::Live(None)),
            Look::Make(entry) => entry,
            Look::Ambiguous(err) => return Err(*err),
        };
        if entry.registration.is_none() {
            return Ok(Found::Live(None));
        }
        if let Some((type_id, type_name)) = want {
            entry.check_type(type_id, type_name)?;
        }
        Ok(Found::Make(entry))
    }

    /// The instance under `name` (access + 1), or else the entry to create a `T` in (made if
    /// there is none): the first step of GET with a factory, sync or async.
    fn existing_or_entry<T: 'static>(
        &self,
        name: &str,
    ) -> Result<std::result::Result<Instance<T>, Arc<Entry>>> {
        let entry = self.entry_or_insert(name)?;
        if let Some(live) = entry.slot.get(true) {
            return Instance::from_ref(live, name).map(Ok);
        }
        entry.check_type(TypeId::of::<T>(), std::any::type_name::<T>())?;
        Ok(Err(entry))
    }

    /// Removes an entry that is not a `#[singleton]` type's, if it holds no instance and nobody
    /// is creating it or waiting for it.
    fn forget_if_empty(&self, name: &str, entry: &Arc<Entry>) {
        if entry.registration.is_some() {
            return;
        }
        let mut names = self.write();
        if let Some(Named::One(current)) = names.get(name) {
            if Arc::ptr_eq(current, entry) && !current.slot.is_some() && creation::detach_if_idle(current) {
                names.remove(name);
            }
        }
    }

    /// Calls `f` on every entry: the `#[singleton]` types' first, then the run-time names'.
    pub(crate) fn for_each_entry(&self, mut f: impl FnMut(&str, &Arc<Entry>)) {
        self.for_each_entry_dyn(&mut f);
    }

    /// [`Self::for_each_entry`], made once: each of its callers made its own copy of the walk
    /// and of `scc`'s iteration, about 3,300 LLVM lines of a user's debug build in all.
    fn for_each_entry_dyn(&self, f: &mut dyn FnMut(&str, &Arc<Entry>)) {
        let mut each = |name: &str, named: &Named| {
            for entry in named.entries() {
                f(name, entry);
            }
        };
        for (name, named) in self.names.fixed().iter() {
            each(name, named);
        }
        self.names.for_each_dynamic(&mut each);
    }

    /// The names whose factories asked for `name`, sorted.
    pub(crate) fn dependents_of(&self, name: &str) -> Vec<String> {
        let mut dependents = Vec::new();
        self.for_each_entry(|dependent, entry| {
            if entry.depends_on(name) {
                dependents.push(dependent.to_owned());
            }
        });
        crate::order::sort_by_name(&mut dependents, String::as_str);
        dependents.dedup();
        dependents
    }
}

/// Why an operation did not run: an error, or a refusal by the rate limit, which carries only the
/// wait until a slot frees (made into [`SingletonError::RateLimited`] only where it is returned).
pub(crate) enum Denied {
    Refused(Duration),
    Error(SingletonError),
}

impl From<SingletonError> for Denied {
    fn from(err: SingletonError) -> Self {
        Denied::Error(err)
    }
}

impl Denied {
    pub(crate) fn into_error(self, operation: SingletonOperation, name: Option<&str>) -> SingletonError {
        match self {
            Denied::Refused(retry_after) => SingletonError::RateLimited {
                operation: operation.as_str(),
                name: name.map(str::to_owned),
                retry_after,
            },
            Denied::Error(err) => err,
        }
    }
}

/// What the first step of GET found.
enum Found {
    /// The live instance, or `None` when the name has none and no factory.
    Live(Option<Ref>),
    /// A `#[singleton]` type's entry with no instance: its factory makes one.
    Make(Arc<Entry>),
}

/// Runs [`SingletonCore::forget_if_empty`] when a creation did not succeed, including when its
/// factory panicked.
struct ForgetIfEmpty<'a> {
    core: &'a SingletonCore,
    name: &'a str,
    entry: Option<&'a Arc<Entry>>,
}

impl Drop for ForgetIfEmpty<'_> {
    fn drop(&mut self) {
        if let Some(entry) = self.entry {
            self.core.forget_if_empty(self.name, entry);
        }
    }
}

pub(crate) fn duplicate(name: &str, all: &[Arc<Entry>]) -> SingletonError {
    SingletonError::DuplicateName {
        name: name.to_owned(),
        types: all.iter().filter_map(|e| e.registration.map(|r| (r.type_name)())).collect(),
    }
}

impl Drop for SingletonCore {
    /// An isolated core lets go of its instances as `clear` does: dependents first.
    fn drop(&mut self) {
        let mut entries = Vec::new();
        self.for_each_entry(|_, entry| entries.push(Arc::clone(entry)));
        creation::abandon(&entries);
        self.release_all();
    }
}

impl fmt::Debug for SingletonCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SingletonCore")
            .field("rate_limit", &self.rate_limit())
            .field("names", &self.names.len())
            .field("registered", &self.by_type.len())
            .finish_non_exhaustive()
    }
}
