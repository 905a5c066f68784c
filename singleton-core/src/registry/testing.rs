//! Test scopes: a world of `#[singleton]` instances of a test's own, so that tests that run at
//! once (as `cargo test` runs them, threads of one process) can replace singletons without
//! touching each other.
//!
//! ```
//! use singleton_kit::singleton;
//! use singleton_kit::testing::Scope;
//!
//! #[singleton(factory = || Repo { kind: "postgres" })]
//! struct Repo { kind: &'static str }
//!
//! #[singleton(factory = || Service { repo: Repo::instance().kind })]
//! struct Service { repo: &'static str }
//!
//! let scope = Scope::new();
//! scope.replace(Repo { kind: "mock" });
//! scope.run(|| {
//!     assert_eq!(Repo::instance().kind, "mock");
//!     assert_eq!(Service::instance().repo, "mock"); // made in the scope, from the fake
//! });
//! assert_eq!(Service::instance().repo, "postgres"); // the global one never saw the fake
//! assert_eq!(scope.created(), ["repo", "service"]);
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::lifecycle::entry::{Singleton, SingletonValue};
use crate::lifecycle::scope::{self, ScopeState};

/// A world of `#[singleton]` instances of its own, for a test.
///
/// Inside [`run`](Self::run), and while the future given to [`run_async`](Self::run_async) is
/// polled (on whatever thread polls it), every `#[singleton]` type's typed accessors —
/// `instance()`, `try_instance()` and `with_instance`, sync and async — resolve in the scope: a
/// type [replaced](Self::replace) in it gives its replacement, and any other type is created
/// **in the scope** by its own factory, once per scope (so its factory sees the replacements, and
/// nothing built from a fake reaches the global registry). Outside, and on every other thread,
/// the global instances are untouched, uncounted and unchanged, so scopes on different threads
/// are independent: two tests running at once can replace the same singleton with different
/// values, and each sees only its own.
///
/// What a scope does not cover:
///
/// - The name-keyed operations of [`manager()`](crate::manager) (`get`, `set`, ...) reach the
///   global registry, in a scope or not: test those on an isolated
///   [`SingletonCore`](crate::SingletonCore). A global singleton that such an operation creates
///   is made outside the scope.
/// - Threads and tasks started from inside a scope do not inherit it: run them in the scope
///   themselves (`scope.run` in the thread, `scope.run_async` around the task's future).
///
/// Dropping the scope drops what was made or replaced in it (dependents before what they use),
/// unless a handle taken in it still holds an instance; a future from
/// [`run_async`](Self::run_async) that is still alive keeps the scope's instances until it is
/// dropped too.
///
/// With no scope active anywhere, the typed accessors pay one relaxed atomic load for this
/// feature.
///
/// ```
/// use singleton_kit::singleton;
/// use singleton_kit::testing::Scope;
///
/// #[singleton(factory = || Clock(1_700_000_000))]
/// struct Clock(u64);
///
/// let fixed = Scope::new();
/// fixed.replace(Clock(42));
/// let inside = fixed.run(|| Clock::instance().0);
/// assert_eq!(inside, 42);
/// assert_eq!(Clock::instance().0, 1_700_000_000);
/// ```
pub struct Scope {
    state: Arc<ScopeState>,
}

impl Scope {
    /// An empty scope: every `#[singleton]` is made afresh in it on first use.
    ///
    /// ```
    /// use singleton_kit::singleton;
    /// use singleton_kit::testing::Scope;
    ///
    /// #[singleton]
    /// #[derive(Default)]
    /// struct Hits(std::sync::atomic::AtomicU32);
    ///
    /// Hits::instance().0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    /// let fresh = Scope::new().run(|| Hits::instance().0.load(std::sync::atomic::Ordering::Relaxed));
    /// assert_eq!(fresh, 0); // the scope's own instance
    /// ```
    pub fn new() -> Self {
        Self { state: Arc::new(ScopeState::default()) }
    }

    /// Makes `value` the scope's instance of its `#[singleton]` type `T` (inferred from the value).
    ///
    /// After instances were made in the scope, it replaces the scope's instance: new calls see the
    /// new value; handles taken before keep the old one.
    ///
    /// ```
    /// use singleton_kit::singleton;
    /// use singleton_kit::testing::Scope;
    ///
    /// #[singleton(factory = || Flags { beta: false })]
    /// struct Flags { beta: bool }
    ///
    /// let scope = Scope::new();
    /// let before = scope.run(Flags::instance); // made in the scope by its factory
    /// scope.replace(Flags { beta: true });
    /// assert!(scope.run(|| Flags::instance().beta));
    /// assert!(!before.beta); // an old handle keeps the old instance
    /// ```
    pub fn replace<T: Singleton>(&self, value: T) {
        let descriptor = T::descriptor();
        let entry = self.state.entry_for(descriptor);
        let old = entry.slot.swap(Some(SingletonValue::new(value).into_meta(None)));
        entry.clear_dependencies();
        self.state.note(descriptor.name);
        drop(old);
    }

    /// Runs `f` in the scope, on this thread.
    ///
    /// ```
    /// use singleton_kit::singleton;
    /// use singleton_kit::testing::Scope;
    ///
    /// #[singleton(factory = || Greeting("hello"))]
    /// struct Greeting(&'static str);
    ///
    /// let scope = Scope::new();
    /// scope.replace(Greeting("hi"));
    /// assert_eq!(scope.run(|| Greeting::instance().0), "hi");
    /// ```
    pub fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        let _in = scope::enter(&self.state);
        f()
    }

    /// Runs `future` in the scope: the scope is in force during each of its polls, on whatever
    /// thread polls it, across its `.await` points. Tasks it spawns do not inherit the scope.
    ///
    /// ```
    /// use singleton_kit::singleton;
    /// use singleton_kit::testing::Scope;
    ///
    /// #[singleton(factory = Db::connect, async)]
    /// struct Db { fake: bool }
    ///
    /// impl Db {
    ///     async fn connect() -> Db {
    ///         Db { fake: false }
    ///     }
    /// }
    ///
    /// let scope = Scope::new();
    /// scope.replace(Db { fake: true });
    /// futures::executor::block_on(scope.run_async(async {
    ///     assert!(Db::instance().await.fake);
    /// }));
    /// ```
    pub fn run_async<F: Future>(&self, future: F) -> Scoped<F> {
        Scoped { state: Arc::clone(&self.state), future: Box::pin(future) }
    }

    /// Each name made or replaced in the scope, once, in the order it was first made or replaced.
    ///
    /// ```
    /// use singleton_kit::singleton;
    /// use singleton_kit::testing::Scope;
    ///
    /// #[singleton(factory = || Mailer)]
    /// struct Mailer;
    /// #[singleton(factory = || { let _ = Mailer::instance(); Signup })]
    /// struct Signup;
    ///
    /// let scope = Scope::new();
    /// scope.run(|| drop(Signup::instance()));
    /// assert_eq!(scope.created(), ["mailer", "signup"]); // Mailer was made first
    /// ```
    pub fn created(&self) -> Vec<&'static str> {
        self.state.created()
    }
}

impl Default for Scope {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope").field("created", &self.created()).finish()
    }
}

/// The future of [`Scope::run_async`]: `F`, polled in the scope.
///
/// `F` is boxed: a scope is a testing tool, one allocation per `run_async` costs nothing there,
/// and it keeps `Scoped` free of pin projections (it is `Unpin` whatever `F` is).
#[must_use = "futures do nothing unless awaited"]
pub struct Scoped<F> {
    state: Arc<ScopeState>,
    future: Pin<Box<F>>,
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        let _in = scope::enter(&this.state);
        this.future.as_mut().poll(cx)
    }
}

impl<F> fmt::Debug for Scoped<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scoped").finish_non_exhaustive()
    }
}
