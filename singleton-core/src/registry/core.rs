//! The registry: one map from name to entry, shared by the typed and the name-keyed paths.

use std::any::TypeId;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use once_cell::sync::Lazy;

use std::future::Future;

use crate::lifecycle::context;
use crate::lifecycle::creation;
use crate::lifecycle::creation::{AsyncGet, Detached};
use crate::lifecycle::entry::{BoxFuture, Descriptor, Entry, SingletonValue};
use crate::lifecycle::teardown::{self, take};
use crate::memory::instance::AnyInstance;
use crate::memory::node::Ref;
use crate::memory::node::Retired;
use crate::registry::names::{Named, Names, NamesWriter};
use crate::registry::rate_limit::{Clock, Limiter, MonotonicClock, RateLimit};
use crate::registry::registration::Registration;
use crate::surface::graph::{Graph, GraphEdge, GraphNode};
use crate::surface::operation::{Request, Response};
use crate::surface::stats::{Row, Stats};
use crate::{validate_name, BoxError, Instance, Result, SingletonError, SingletonOperation};

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
    limiter: Limiter,
    /// Every name: the `#[singleton]` types', fixed, and those made at run time.
    names: Names,
    /// The `#[singleton]` types' entries, fixed when the core is made.
    by_type: HashMap<TypeId, Arc<Entry>>,
    /// The run-time names that have a metrics label of their own.
    metric_labels: crate::lifecycle::events::CoreLabels,
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

/// The dependency graph of the global core: [`SingletonCore::graph`] on [`manager()`].
///
/// ```
/// let graph = singleton_kit::graph();
/// println!("{}", graph.to_dot()); // render with `dot -Tsvg`
/// ```
pub fn graph() -> Graph {
    manager().graph()
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
    fn write(&self) -> NamesWriter<'_> {
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
    fn gate(&self, operation: SingletonOperation, name: Option<&str>) -> std::result::Result<(), Denied> {
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

    fn lookup(&self, name: &str) -> Result<Option<Arc<Entry>>> {
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
    fn get_live(&self, name: &str, want: Option<(TypeId, &'static str)>) -> Result<Option<Ref>> {
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

    /// GET: the instance stored under `name` (access count + 1). A `#[singleton]` type of that
    /// name that has no instance yet is created by its factory. `Ok(None)` when neither.
    ///
    /// ```
    /// use singleton_kit::{singleton, SingletonCore, SingletonError};
    ///
    /// #[singleton(name = "doc_core_get", factory = || Limits { max_conns: 8 })]
    /// struct Limits { max_conns: u32 }
    ///
    /// let core = SingletonCore::new();
    /// let limits = core.get::<Limits>("doc_core_get")?.expect("created by its factory");
    /// assert_eq!(limits.max_conns, 8);
    /// assert!(core.get::<u32>("nothing_here")?.is_none());
    /// assert!(matches!(core.get::<u32>("doc_core_get"), Err(SingletonError::TypeMismatch { .. })));
    /// # Ok::<(), SingletonError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// `InvalidName`, `RateLimited`, `TypeMismatch` (the name holds another type),
    /// `DuplicateName`, and a registered factory's `Factory` or `Cycle`.
    #[inline]
    pub fn get<T: Send + Sync + 'static>(&self, name: &str) -> Result<Option<Instance<T>>> {
        let want = (TypeId::of::<T>(), std::any::type_name::<T>());
        match self.get_live(name, Some(want))? {
            Some(live) => Instance::from_ref(live, name).map(Some),
            None => Ok(None),
        }
    }

    /// GET with a factory: the instance under `name`, created by `factory` if there is none.
    ///
    /// Racing callers run the factory once and all get the instance it made. No lock that other
    /// names need is held while it runs.
    ///
    /// A factory that [`set`](Self::set)s its own name meanwhile loses to that `set`: the value
    /// the `set` stored stays, this call returns it, and the factory's own result is dropped.
    ///
    /// ```
    /// use singleton_kit::SingletonCore;
    ///
    /// let core = SingletonCore::new();
    /// let got = core.get_or_create("mode", || {
    ///     core.set("mode", "set inside").unwrap();
    ///     "made by the factory" // dropped: the `set` won
    /// })?;
    /// assert_eq!(*got, "set inside");
    /// assert_eq!(*core.get::<&str>("mode")?.expect("stored"), "set inside");
    /// # Ok::<(), singleton_kit::SingletonError>(())
    /// ```
    ///
    /// ```
    /// use singleton_kit::{Instance, SingletonCore};
    ///
    /// let core = SingletonCore::new();
    /// let workers = core.get_or_create("workers", || 4_usize)?;
    /// let again = core.get_or_create("workers", || 8_usize)?; // not run: "workers" exists
    /// assert_eq!(*again, 4);
    /// assert!(Instance::ptr_eq(&workers, &again));
    /// assert_eq!(core.stats()?.access_counts["workers"], 2);
    /// # Ok::<(), singleton_kit::SingletonError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get); a factory that panics leaves nothing behind and the panic goes on.
    pub fn get_or_create<T, F>(&self, name: &str, factory: F) -> Result<Instance<T>>
    where
        T: Send + Sync + 'static,
        F: FnOnce() -> T,
    {
        self.get_or_try_create(name, || Ok::<T, std::convert::Infallible>(factory()))
    }

    /// GET with a fallible factory. A failed factory is not cached: the error is returned as
    /// `Err(Factory { name, source })` and the next call runs a factory again.
    ///
    /// ```
    /// use singleton_kit::{SingletonCore, SingletonError};
    ///
    /// let core = SingletonCore::new();
    /// let err = core.get_or_try_create::<u32, _, _>("port", || "x".parse::<u32>()).unwrap_err();
    /// assert!(matches!(err, SingletonError::Factory { .. }));
    /// assert_eq!(*core.get_or_try_create("port", || "8080".parse::<u32>())?, 8080);
    /// # Ok::<(), SingletonError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`get_or_create`](Self::get_or_create), and `Factory` when the factory fails.
    pub fn get_or_try_create<T, E, F>(&self, name: &str, factory: F) -> Result<Instance<T>>
    where
        T: Send + Sync + 'static,
        E: Into<BoxError>,
        F: FnOnce() -> std::result::Result<T, E>,
    {
        self.admit(SingletonOperation::Get, name)?;
        context::record_dependency(name);
        let mut make = move || factory().map(SingletonValue::new).map_err(Into::into);
        loop {
            let entry = match self.existing_or_entry(name)? {
                Ok(instance) => return Ok(instance),
                Err(entry) => entry,
            };
            // A factory that fails or panics leaves no empty entry behind.
            let mut forget = ForgetIfEmpty { core: self, name, entry: Some(&entry) };
            match creation::get_or_create(&entry, make) {
                Ok(Ok(live)) => {
                    forget.entry = None;
                    return Instance::from_ref(live, name);
                }
                Ok(Err(err)) => return Err(err),
                // The entry was removed from the map meanwhile: look the name up again.
                Err(back) => make = back,
            }
        }
    }

    /// GET from async code: as [`get`](Self::get), but an async `#[singleton]` type of that name
    /// that has no instance yet is created by its async factory (or the creation in progress is
    /// joined), where `get` answers `Err(NeedsAwait)`.
    ///
    /// ```
    /// use singleton_kit::{singleton, SingletonCore, SingletonError};
    ///
    /// #[singleton(name = "doc_get_async", factory = Token::fetch, async)]
    /// struct Token(String);
    ///
    /// impl Token {
    ///     async fn fetch() -> Token {
    ///         Token("t-1".into())
    ///     }
    /// }
    ///
    /// let core = SingletonCore::new();
    /// assert!(matches!(core.get::<Token>("doc_get_async"), Err(SingletonError::NeedsAwait { .. })));
    /// # futures::executor::block_on(async {
    /// let token = core.get_async::<Token>("doc_get_async").await?.expect("created by its factory");
    /// assert_eq!(token.0, "t-1");
    /// assert!(core.get::<Token>("doc_get_async")?.is_some()); // now the sync path has it too
    /// # Ok::<(), SingletonError>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get), except `NeedsAwait`.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future loses nothing: a creation it was driving is driven on by the next caller.
    pub async fn get_async<T: Send + Sync + 'static>(&self, name: &str) -> Result<Option<Instance<T>>> {
        let want = (TypeId::of::<T>(), std::any::type_name::<T>());
        match self.get_live_async(name, Some(want)).await? {
            Some(live) => Instance::from_ref(live, name).map(Some),
            None => Ok(None),
        }
    }

    /// The live instance under `name`, creating a registered one with its factory, sync or async.
    async fn get_live_async(&self, name: &str, want: Option<(TypeId, &'static str)>) -> Result<Option<Ref>> {
        match self.find(name, want)? {
            Found::Live(live) => Ok(live),
            Found::Make(entry) => creation::get_or_make_async(entry).await.map(Some),
        }
    }

    /// [`execute`](Self::execute) from async code: a `get` of an async `#[singleton]` that has no
    /// instance yet creates it (where `execute` answers `Err(NeedsAwait)`).
    pub(crate) async fn execute_async(&self, request: Request) -> Result<Response> {
        use tracing::Instrument as _;
        if request.operation != SingletonOperation::Get {
            return self.execute(request);
        }
        let span = match &request.correlation_id {
            Some(id) => tracing::info_span!("singleton_operation", correlation_id = %id),
            None => tracing::Span::none(),
        };
        let Some(name) = request.name.as_deref() else {
            return Err(SingletonError::MissingArgument { operation: "get", argument: "a name" });
        };
        let live = self.get_live_async(name, None).instrument(span).await?;
        Ok(Response::Value(live.map(|live| AnyInstance::new(live, name))))
    }

    /// GET with an async factory: the instance under `name`, created by awaiting `factory()` if
    /// there is none. Every caller that asks at once shares one creation: the factory is called
    /// once.
    ///
    /// ```
    /// use singleton_kit::SingletonCore;
    ///
    /// let core = SingletonCore::new();
    /// # futures::executor::block_on(async {
    /// let pool = core.get_or_create_async("pool", || async { vec!["conn-1", "conn-2"] }).await?;
    /// assert_eq!(pool.len(), 2);
    /// let again = core.get_or_create_async("pool", || async { Vec::<&str>::new() }).await?; // not run
    /// assert_eq!(again.len(), 2);
    /// # Ok::<(), singleton_kit::SingletonError>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// As [`get_or_create`](Self::get_or_create).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future loses nothing: a creation it started or was driving is driven on by
    /// another caller of the same name, or else by the next one; the factory is not called again.
    pub async fn get_or_create_async<T, F, Fut>(&self, name: &str, factory: F) -> Result<Instance<T>>
    where
        T: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = T> + Send + 'static,
    {
        self.get_or_try_create_async(name, move || {
            let made = factory();
            async move { Ok::<T, std::convert::Infallible>(made.await) }
        })
        .await
    }

    /// GET with a fallible async factory. A failed factory is not cached: the error is returned
    /// as `Err(Factory { name, source })` and the next call runs a factory again.
    ///
    /// ```
    /// use singleton_kit::{SingletonCore, SingletonError};
    ///
    /// let core = SingletonCore::new();
    /// # futures::executor::block_on(async {
    /// let failed = core.get_or_try_create_async::<u16, _, _, _>("port", || async { "x".parse::<u16>() });
    /// assert!(matches!(failed.await, Err(SingletonError::Factory { .. })));
    /// let port = core.get_or_try_create_async("port", || async { "8080".parse::<u16>() }).await?;
    /// assert_eq!(*port, 8080);
    /// # Ok::<(), SingletonError>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// As [`get_or_try_create`](Self::get_or_try_create).
    ///
    /// # Cancel safety
    ///
    /// As [`get_or_create_async`](Self::get_or_create_async).
    pub async fn get_or_try_create_async<T, E, F, Fut>(&self, name: &str, factory: F) -> Result<Instance<T>>
    where
        T: Send + Sync + 'static,
        E: Into<BoxError>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = std::result::Result<T, E>> + Send + 'static,
    {
        self.admit(SingletonOperation::Get, name)?;
        context::record_dependency(name);
        let mut make = Some(move || -> BoxFuture {
            let made = factory();
            Box::pin(async move { made.await.map(SingletonValue::new).map_err(Into::into) })
        });
        loop {
            let entry = match self.existing_or_entry(name)? {
                Ok(instance) => return Ok(instance),
                Err(entry) => entry,
            };
            // A factory that fails or panics, or a caller dropped before it started one, leaves no
            // empty entry behind.
            let mut forget = ForgetIfEmpty { core: self, name, entry: Some(&entry) };
            // A creation this call started ends with its outcome stored for this call, which
            // `poll_get` returns before it looks at the entry's place in the map; so `Detached`
            // comes back with the factory unused, unless a value's `Drop` panicked while the
            // creation ended (its outcome was then lost with the unwind).
            let Some(factory) = make.take() else {
                return Err(SingletonError::Factory {
                    name: name.to_owned(),
                    source: "the creation this call started ended in a panic in another call".into(),
                });
            };
            let mut get = AsyncGet::new(Arc::clone(&entry), factory);
            match std::future::poll_fn(|cx| get.poll_get(cx)).await {
                Ok(Ok(live)) => {
                    forget.entry = None;
                    return Instance::from_ref(live, name);
                }
                Ok(Err(err)) => return Err(err),
                // The entry was removed from the map meanwhile: look the name up again.
                Err(Detached) => make = get.take_make(),
            }
        }
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

    /// SET: stores `value` under `name`, replacing any instance. Its creation time is now and its
    /// access count 0. Handles to the replaced instance stay valid.
    ///
    /// A `set` wins over a creation of the same name that is running at the time (a factory
    /// of [`get_or_create`](Self::get_or_create), even one that makes this very `set`): the
    /// creation's result is dropped and its caller gets the value stored here.
    ///
    /// ```
    /// use singleton_kit::SingletonCore;
    ///
    /// let core = SingletonCore::new();
    /// core.set("region", String::from("eu-west-1"))?;
    /// let old = core.get::<String>("region")?.expect("just set");
    /// core.set("region", String::from("us-east-1"))?;
    /// assert_eq!(*core.get::<String>("region")?.expect("replaced"), "us-east-1");
    /// assert_eq!(*old, "eu-west-1"); // the old handle still reads the replaced instance
    /// # Ok::<(), singleton_kit::SingletonError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// `InvalidName`, `RateLimited`, `DuplicateName`, and `TypeMismatch` when a `#[singleton]`
    /// type of another type owns the name.
    pub fn set<T: Send + Sync + 'static>(&self, name: &str, value: T) -> Result<()> {
        self.set_value(name, SingletonValue::new(value))
    }

    /// SET with a type-erased value (what [`execute`](Self::execute) uses).
    ///
    /// ```
    /// use singleton_kit::{SingletonCore, SingletonValue};
    ///
    /// let core = SingletonCore::new();
    /// let value = SingletonValue::new(30_u64);
    /// assert_eq!(value.type_name(), "u64");
    /// core.set_value("timeout_secs", value)?;
    /// assert_eq!(*core.get::<u64>("timeout_secs")?.expect("just set"), 30);
    /// # Ok::<(), singleton_kit::SingletonError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`set`](Self::set).
    pub fn set_value(&self, name: &str, value: SingletonValue) -> Result<()> {
        self.admit(SingletonOperation::Set, name)?;
        let mut names = self.write();
        let entry = match names.get(name) {
            Some(Named::One(entry)) => Arc::clone(entry),
            Some(Named::Ambiguous(all)) => return Err(duplicate(name, all)),
            None => {
                let entry = self.new_entry(name);
                names.insert(name, Named::One(Arc::clone(&entry)));
                entry
            }
        };
        let outcome = match entry.check_type(value.type_id, value.type_name) {
            Ok(()) => {
                // The new value was not made by the factory: it asked for nothing.
                entry.clear_dependencies();
                Ok(entry.slot.swap(Some(value.into_meta(None))))
            }
            Err(err) => Err((err, value)),
        };
        drop(names);
        // User values (the replaced instance, or the refused one) are dropped with no lock held:
        // their `Drop` may use the core.
        match outcome {
            Ok(replaced) => {
                if let Some(replaced) = &replaced {
                    self.released(&entry, replaced);
                }
                drop(replaced);
                Ok(())
            }
            Err((err, refused)) => {
                drop(refused);
                Err(err)
            }
        }
    }

    /// HAS: `true` when an instance is stored under `name`; `false` when not, when the name is
    /// invalid or ambiguous, or when rate-limited.
    ///
    /// ```
    /// use singleton_kit::SingletonCore;
    ///
    /// let core = SingletonCore::new();
    /// assert!(!core.has("cache"));
    /// core.set("cache", vec![0_u8; 16])?;
    /// assert!(core.has("cache"));
    /// assert!(!core.has("")); // an invalid name is never there
    /// # Ok::<(), singleton_kit::SingletonError>(())
    /// ```
    pub fn has(&self, name: &str) -> bool {
        self.has_as(SingletonOperation::Has, name)
    }

    /// EXISTS: the legacy name of [`has`](Self::has).
    ///
    /// ```
    /// use singleton_kit::SingletonCore;
    ///
    /// let core = SingletonCore::new();
    /// core.set("feature_flags", ["beta"])?;
    /// assert!(core.exists("feature_flags"));
    /// assert_eq!(core.exists("missing"), core.has("missing"));
    /// # Ok::<(), singleton_kit::SingletonError>(())
    /// ```
    pub fn exists(&self, name: &str) -> bool {
        self.has_as(SingletonOperation::Exists, name)
    }

    fn has_as(&self, operation: SingletonOperation, name: &str) -> bool {
        self.try_has(operation, name).unwrap_or(false)
    }

    /// HAS that says why it could not answer: what `execute` runs.
    fn try_has(&self, operation: SingletonOperation, name: &str) -> std::result::Result<bool, Denied> {
        self.gate(operation, Some(name))?;
        self.names.with(name, |named| match named {
            None => Ok(false),
            Some(Named::One(entry)) => Ok(entry.slot.is_some()),
            Some(Named::Ambiguous(all)) => Err(duplicate(name, all).into()),
        })
    }

    /// DELETE: removes the instance under `name`. `true` when there was one; `false` when not, when
    /// the name is invalid or ambiguous, or when rate-limited.
    ///
    /// Handles stay valid. A `#[singleton]` type's next `instance()` creates a fresh one.
    ///
    /// ```
    /// use singleton_kit::SingletonCore;
    ///
    /// let core = SingletonCore::new();
    /// core.set("session", 7_u32)?;
    /// let handle = core.get::<u32>("session")?.expect("just set");
    /// assert!(core.delete("session"));
    /// assert!(!core.delete("session")); // nothing left to delete
    /// assert_eq!(*handle, 7); // handles stay valid
    /// # Ok::<(), singleton_kit::SingletonError>(())
    /// ```
    pub fn delete(&self, name: &str) -> bool {
        self.try_delete(name).unwrap_or(false)
    }

    /// DELETE that says why it could not answer: what `execute` runs.
    fn try_delete(&self, name: &str) -> std::result::Result<bool, Denied> {
        self.gate(SingletonOperation::Delete, Some(name))?;
        let mut names = self.write();
        let entry = match names.get(name) {
            None => return Ok(false),
            Some(Named::Ambiguous(all)) => return Err(duplicate(name, all).into()),
            Some(Named::One(entry)) => entry,
        };
        let entry = Arc::clone(entry);
        let removed = take(&entry);
        if removed.is_some() && entry.registration.is_none() && creation::detach_if_idle(&entry) {
            names.remove(name);
        }
        drop(names);
        let Some(removed) = removed else { return Ok(false) };
        self.released(&entry, &removed);
        // A `Drop` that panics is caught and logged: it does not unwind through the core.
        teardown::let_go(&entry.name, removed);
        Ok(true)
    }

    /// The core lets go of `entry`'s instance `retired`: its accesses join the running total of
    /// the entry's metrics label, so that `singleton_accesses_total` never goes down.
    fn released(&self, entry: &Entry, retired: &Retired) {
        self.metric_labels.released(&entry.metric_label, || retired.accesses());
    }

    /// CLEAR: removes every instance, `#[singleton]` types' included, and returns how many. The
    /// core lets go of them dependents first: an instance is dropped before the ones its factory
    /// asked for, and among unrelated ones the newest first, so an instance is dropped before the
    /// ones created before it, which it may use. A `Drop` that panics is caught and logged, and
    /// still counts. `0` when rate-limited.
    ///
    /// ```
    /// use singleton_kit::SingletonCore;
    ///
    /// let core = SingletonCore::new();
    /// core.set("db", "postgres://localhost")?;
    /// core.set("cache", vec![1_u64, 2, 3])?;
    /// assert_eq!(core.clear(), 2);
    /// assert!(!core.has("db") && !core.has("cache"));
    /// assert_eq!(core.clear(), 0);
    /// # Ok::<(), singleton_kit::SingletonError>(())
    /// ```
    pub fn clear(&self) -> usize {
        self.clear_as(SingletonOperation::Clear)
    }

    /// RESET_ALL: the legacy name of [`clear`](Self::clear).
    ///
    /// ```
    /// use singleton_kit::SingletonCore;
    ///
    /// let core = SingletonCore::new();
    /// core.set("a", 1_u8)?;
    /// core.set("b", 2_u8)?;
    /// assert_eq!(core.reset_all(), 2);
    /// assert_eq!(core.stats()?.total_singletons, 0);
    /// # Ok::<(), singleton_kit::SingletonError>(())
    /// ```
    pub fn reset_all(&self) -> usize {
        self.clear_as(SingletonOperation::ResetAll)
    }

    fn clear_as(&self, operation: SingletonOperation) -> usize {
        self.try_clear(operation).unwrap_or(0)
    }

    /// CLEAR that says why it could not answer: what `execute` runs.
    fn try_clear(&self, operation: SingletonOperation) -> std::result::Result<usize, Denied> {
        self.gate(operation, None)?;
        Ok(self.release_all())
    }

    /// Lets go of every instance, one at a time: dependents before what they depend on,
    /// unrelated ones newest first, each dropped while what it depends on is still in its slot
    /// (see [`teardown`](crate::lifecycle::teardown)). Then the run-time names left empty leave the map.
    fn release_all(&self) -> usize {
        let all = || {
            let mut all = Vec::new();
            self.for_each_entry(|_, entry| all.push(Arc::clone(entry)));
            all
        };
        let count = teardown::release(all, |entry, retired| self.released(entry, retired));
        // Keep the entries that hold an instance again, or are being created or waited for now.
        self.write().retain(|named| !named.entries().iter().all(creation::detach_if_idle));
        count
    }

    /// SHUTDOWN: lets go of every instance as [`clear`](Self::clear) does — dependents first,
    /// a panicking `Drop` caught and logged — but without the rate limit, for a server's graceful
    /// stop or a Lambda extension's shutdown event. Returns how many it let go; `0` when called
    /// again.
    ///
    /// ```
    /// use singleton_kit::{RateLimit, SingletonCore};
    ///
    /// let core = SingletonCore::with_rate_limit(RateLimit::per_second(1));
    /// core.set("db", "postgres://localhost")?; // takes the one slot
    /// core.set_value("cache", singleton_kit::SingletonValue::new(0_u8)).unwrap_err(); // refused
    /// assert_eq!(core.clear(), 0); // refused too
    /// assert_eq!(core.shutdown(), 1); // not rate-limited
    /// assert_eq!(core.shutdown(), 0); // idempotent
    /// # Ok::<(), singleton_kit::SingletonError>(())
    /// ```
    pub fn shutdown(&self) -> usize {
        tracing::debug!("singleton core shutdown");
        self.release_all()
    }

    /// GET_STATS: a snapshot of every live instance, in the seed design's shape.
    ///
    /// ```
    /// use singleton_kit::SingletonCore;
    ///
    /// let core = SingletonCore::new();
    /// core.set("flags", [true; 4])?;
    /// let _ = core.get::<[bool; 4]>("flags")?;
    /// let stats = core.stats()?;
    /// assert_eq!(stats.singleton_names, ["flags"]);
    /// assert_eq!(stats.access_counts["flags"], 1);
    /// assert_eq!(stats.estimated_memory_bytes, 4);
    /// # Ok::<(), singleton_kit::SingletonError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// `RateLimited`.
    pub fn stats(&self) -> Result<Stats> {
        let op = SingletonOperation::GetStats;
        self.gate(op, None).map_err(|denied| denied.into_error(op, None))?;
        let mut rows = Vec::new();
        let mut add = |name: &str, named: &Named| match named {
            Named::One(entry) => rows.extend(row(name, entry)),
            Named::Ambiguous(all) => {
                // One name, several types: each row is told apart by its type.
                for entry in all {
                    let label = format!("{name} ({})", entry.registration.map_or("?", |r| (r.type_name)()));
                    rows.extend(row(&label, entry));
                }
            }
        };
        for (name, named) in self.names.fixed().iter() {
            add(name, named);
        }
        self.names.for_each_dynamic(&mut add);
        Ok(Stats::build(rows, self.limiter.refused()))
    }

    /// The dependency graph: every registered `#[singleton]` type (created or not) and every live
    /// entry made at run time, with an edge for each singleton a factory asked for. Not counted
    /// against the rate limit (it is not one of the seed's operations).
    ///
    /// ```
    /// use singleton_kit::SingletonCore;
    ///
    /// let core = SingletonCore::new();
    /// core.get_or_try_create("service", || core.get_or_create("client", || "http").map(|c| c.len()))?;
    /// let graph = core.graph();
    /// assert_eq!(graph.dependencies_of("service"), ["client"]);
    /// let service = graph.nodes.iter().find(|n| n.name == "service").unwrap();
    /// assert!(service.created && service.init_ms.is_some());
    /// # Ok::<(), singleton_kit::SingletonError>(())
    /// ```
    pub fn graph(&self) -> Graph {
        let mut nodes = Vec::new();
        let mut edges = Vec::new();
        self.for_each_entry(|name, entry| {
            let live = entry.slot.get(false);
            if live.is_none() && entry.registration.is_none() {
                return;
            }
            let meta = live.as_ref().map(Ref::meta);
            nodes.push(GraphNode {
                name: name.to_owned(),
                type_name: match (entry.registration, meta) {
                    (Some(r), _) => (r.type_name)(),
                    (None, Some(m)) => m.type_name,
                    (None, None) => "?",
                },
                created: live.is_some(),
                eager: entry.registration.is_some_and(|r| r.eager),
                is_async: entry.registration.is_some_and(Descriptor::is_async),
                init_ms: meta.and_then(|m| m.init_duration).map(crate::surface::stats::millis),
            });
            edges.extend(entry.dependencies().into_iter().map(|to| GraphEdge { from: name.to_owned(), to }));
        });
        Graph::new(nodes, edges)
    }

    /// Calls `f` on every entry: the `#[singleton]` types' first, then the run-time names'.
    pub(crate) fn for_each_entry(&self, mut f: impl FnMut(&str, &Arc<Entry>)) {
        let mut each = |name: &str, named: &Named| {
            for entry in named.entries() {
                f(name, entry);
            }
        };
        for (name, named) in self.names.fixed().iter() {
            each(name, named);
        }
        self.names.for_each_dynamic(each);
    }

    /// The names whose factories asked for `name`, sorted.
    pub(crate) fn dependents_of(&self, name: &str) -> Vec<String> {
        let mut dependents = Vec::new();
        self.for_each_entry(|dependent, entry| {
            if entry.depends_on(name) {
                dependents.push(dependent.to_owned());
            }
        });
        dependents.sort();
        dependents.dedup();
        dependents
    }

    /// The live entries made at run time (`set`, `get_or_create`), with their dependencies.
    pub(crate) fn runtime_entries(&self) -> Vec<(Row, Vec<String>)> {
        let mut rows = Vec::new();
        self.for_each_entry(|name, entry| {
            if entry.registration.is_none() {
                if let Some(r) = row(name, entry) {
                    rows.push((r, entry.dependencies()));
                }
            }
        });
        rows.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        rows
    }

    /// RESET: clears the rate limiter's window and `rate_limited_count`; instances stay. `false`
    /// when rate-limited (the reset itself takes a slot first).
    ///
    /// ```
    /// use std::time::Duration;
    /// use singleton_kit::{ManualClock, RateLimit, SingletonCore};
    ///
    /// let clock = ManualClock::new();
    /// let core = SingletonCore::with_clock(RateLimit::per_second(1), clock.clone());
    /// core.set("a", 1_u8)?;
    /// assert!(core.set("a", 2_u8).is_err()); // refused, and counted
    /// clock.advance(Duration::from_secs(1));
    /// assert!(core.reset()); // takes the freed slot, then clears the window and the count
    /// assert_eq!(core.stats()?.rate_limited_count, 0);
    /// # Ok::<(), singleton_kit::SingletonError>(())
    /// ```
    pub fn reset(&self) -> bool {
        self.try_reset().is_ok()
    }

    /// RESET that says why it could not: what `execute` runs.
    fn try_reset(&self) -> std::result::Result<bool, Denied> {
        self.gate(SingletonOperation::Reset, None)?;
        self.limiter.reset();
        Ok(true)
    }

    /// Runs one operation given as data: the entry point of an admin endpoint or a Lambda event.
    ///
    /// Unlike the methods, which keep the seed design's `false` and `0`, every operation here
    /// says why it could not run: an invalid name, a missing argument and a rate-limit refusal
    /// are `Err` for `has`, `exists`, `delete`, `clear`, `reset_all` and `reset` too (as is an
    /// ambiguous name, `DuplicateName`). The rate limit is consulted once, as by the methods.
    ///
    /// When the request carries a correlation id, the operation's `tracing` events are emitted in
    /// a `singleton_operation` span with a `correlation_id` field.
    ///
    /// ```
    /// use singleton_kit::{Request, Response, SingletonCore, SingletonError};
    ///
    /// let core = SingletonCore::new();
    /// core.set("db_url", String::from("postgres://localhost"))?;
    /// let has = core.execute(Request::parse("has")?.name("db_url").correlation_id("req-1"))?;
    /// assert!(matches!(has, Response::Bool(true)));
    /// assert!(matches!(core.execute(Request::parse("clear")?)?, Response::Count(1)));
    /// let no_name = core.execute(Request::parse("delete")?);
    /// assert!(matches!(no_name, Err(SingletonError::MissingArgument { .. })));
    /// let blank = core.execute(Request::parse("has")?.name(" ")); // `core.has(" ")` is `false`
    /// assert!(matches!(blank, Err(SingletonError::InvalidName { .. })));
    /// # Ok::<(), SingletonError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The operation's own errors; `InvalidName`, `RateLimited` and `DuplicateName` for every
    /// operation that can meet them; `MissingArgument` when `get`, `set`, `has`, `delete` or
    /// `exists` comes without a name, or `set` without a value.
    pub fn execute(&self, request: Request) -> Result<Response> {
        let span = match &request.correlation_id {
            Some(id) => tracing::info_span!("singleton_operation", correlation_id = %id),
            None => tracing::Span::none(),
        };
        let _entered = span.enter();
        let op = request.operation;
        if op.takes_name() && request.name.is_none() {
            return Err(SingletonError::MissingArgument { operation: op.as_str(), argument: "a name" });
        }
        // Read only by the operations that take a name, which have one.
        let name = request.name.as_deref().unwrap_or_default();
        let deny = |denied: Denied| denied.into_error(op, op.takes_name().then_some(name));
        Ok(match op {
            SingletonOperation::Get => {
                Response::Value(self.get_live(name, None)?.map(|live| AnyInstance::new(live, name)))
            }
            SingletonOperation::Set => {
                let value = request
                    .value
                    .ok_or(SingletonError::MissingArgument { operation: op.as_str(), argument: "a value" })?;
                self.set_value(name, value)?;
                Response::Stored
            }
            SingletonOperation::Has | SingletonOperation::Exists => {
                Response::Bool(self.try_has(op, name).map_err(deny)?)
            }
            SingletonOperation::Delete => Response::Bool(self.try_delete(name).map_err(deny)?),
            SingletonOperation::Clear | SingletonOperation::ResetAll => {
                Response::Count(self.try_clear(op).map_err(deny)?)
            }
            SingletonOperation::GetStats => Response::Stats(Box::new(self.stats()?)),
            SingletonOperation::Reset => Response::Bool(self.try_reset().map_err(deny)?),
        })
    }
}

/// Why an operation did not run: an error, or a refusal by the rate limit, which carries only the
/// wait until a slot frees (made into [`SingletonError::RateLimited`] only where it is returned).
enum Denied {
    Refused(Duration),
    Error(SingletonError),
}

impl From<SingletonError> for Denied {
    fn from(err: SingletonError) -> Self {
        Denied::Error(err)
    }
}

impl Denied {
    fn into_error(self, operation: SingletonOperation, name: Option<&str>) -> SingletonError {
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

fn row(name: &str, entry: &Entry) -> Option<Row> {
    let live = entry.slot.get(false)?;
    let meta = live.meta();
    Some(Row {
        name: name.to_owned(),
        type_name: meta.type_name,
        created_at: meta.created_at,
        accesses: live.accesses(),
        size: meta.size,
        init_duration: meta.init_duration,
    })
}

fn duplicate(name: &str, all: &[Arc<Entry>]) -> SingletonError {
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
