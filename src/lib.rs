#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

#[doc(inline)]
pub use singleton_core::*;

/// Makes a struct or enum a singleton: a lazily created, exactly-once instance registered in the
/// global core ([`manager()`]).
///
/// The type must be concrete (no generic parameters) and `Send + Sync + 'static`. The attribute
/// keeps the type as written and adds, with the type's own visibility:
///
/// - `fn instance() -> Instance<Self>` — the instance, created by the factory on first use,
///   exactly once; it panics, naming the singleton and the cause, where `try_instance` would
///   return `Err`;
/// - `fn try_instance() -> Result<Instance<Self>, SingletonError>`;
/// - `fn with_instance<R>(f: impl FnOnce(&Self) -> R) -> R` — runs `f` on the instance, counted as
///   one access, without keeping a handle (not for `async` singletons). The cheapest accessor: it
///   writes only memory of the calling thread, with no atomic read-modify-write, where
///   `instance()` takes and drops a handle (two). `f` may `delete` or replace the singleton; the
///   instance it sees is then dropped when `f` returns;
/// - `const SINGLETON_NAME: &'static str`, and an impl of [`Singleton`].
///
/// # Options
///
/// **No factory**: the instance is `Default::default()`.
///
/// ```
/// use singleton_kit::singleton;
///
/// #[singleton]
/// #[derive(Default)]
/// pub struct Config {
///     pub verbose: bool,
/// }
///
/// assert!(!Config::instance().verbose);
/// assert_eq!(Config::SINGLETON_NAME, "config");
/// ```
///
/// **`factory = path`**: a `fn() -> Self` (a path, or a closure) makes the instance. It stands for
/// `Ok((path)())` as the creation function.
///
/// ```
/// use singleton_kit::singleton;
///
/// #[singleton(factory = HttpClient::new)]
/// pub struct HttpClient {
///     pub base_url: String,
/// }
///
/// impl HttpClient {
///     fn new() -> Self {
///         Self { base_url: "https://example.com".into() }
///     }
/// }
///
/// assert_eq!(HttpClient::instance().base_url, "https://example.com");
/// assert_eq!(HttpClient::SINGLETON_NAME, "http_client");
/// ```
///
/// **`try_factory = path`**: a `fn() -> Result<Self, E>` with
/// `E: Into<Box<dyn Error + Send + Sync>>`. A failure is `Err(Factory { name, source })` from
/// `try_instance`; nothing is kept, so the next call tries again.
///
/// ```
/// use singleton_kit::{singleton, SingletonError};
///
/// #[singleton(try_factory = Port::from_env)]
/// pub struct Port(pub u16);
///
/// impl Port {
///     fn from_env() -> Result<Self, std::num::ParseIntError> {
///         std::env::var("SINGLETON_KIT_DOC_PORT").unwrap_or_else(|_| "x".into()).parse().map(Port)
///     }
/// }
///
/// let Err(err) = Port::try_instance() else { panic!("no port was set") };
/// assert!(matches!(err, SingletonError::Factory { ref name, .. } if name == "port"));
/// ```
///
/// **`name = "..."`**: the name in the registry, for the name-keyed operations and the listings.
/// The default is the type's name in snake_case (`HTTPClient` → `http_client`).
///
/// **`eager`**: [`init_eager()`] creates it at startup instead of on first use.
///
/// ```
/// use singleton_kit::{manager, singleton};
///
/// #[singleton(name = "rules", eager, factory = || Rules(vec!["no-root"]))]
/// pub struct Rules(Vec<&'static str>);
///
/// singleton_kit::init_eager().expect("eager singletons");
/// assert!(manager().has("rules"));
/// ```
///
/// **`async`**, with `factory` or `try_factory`: the factory returns a `Send + 'static` future
/// of the instance (an `async fn`, or a closure returning `async { .. }`). `instance()` and
/// `try_instance()` then return futures ([`InstanceFuture`], [`TryInstanceFuture`]): every task
/// that asks at once shares one creation, which a cancelled caller hands on to the next. The
/// factory's future is boxed by a generated function, so async factories may await each other.
///
/// ```
/// use singleton_kit::{singleton, Instance};
///
/// #[singleton(factory = Client::connect, async)]
/// pub struct Client {
///     pub endpoint: String,
/// }
///
/// impl Client {
///     async fn connect() -> Self {
///         Self { endpoint: "https://sqs.eu-west-1.amazonaws.com".into() }
///     }
/// }
///
/// # futures::executor::block_on(async {
/// let client: Instance<Client> = Client::instance().await;
/// assert!(client.endpoint.starts_with("https://"));
/// # });
/// ```
///
/// It stands for this creation function, and accessors that await it:
///
/// ```
/// # #[singleton_kit::singleton(factory = Client::connect, async)]
/// # struct Client;
/// # impl Client { async fn connect() -> Self { Client } }
/// use singleton_kit::__private::{BoxFuture, Of};
///
/// fn make() -> BoxFuture {
///     Of::<Client>::async_factory(Client::connect)  // Box::pin(async { Ok(Client::connect().await) })
/// }
/// # let _ = make;
/// ```
///
/// **`health = path`** and **`on_shutdown = path`**: the singleton's own health check and close
/// hook. `health` names a `fn(&Self) -> Result<(), E>` or an `async fn(&self) -> Result<(), E>`
/// (whose future is `Send`), with `E: Into<Box<dyn Error + Send + Sync>>`; [`health()`] runs
/// it for a created instance. `on_shutdown` names a `fn(&Self)` or an `async fn(&self)`;
/// [`shutdown_async()`] runs it, dependents first, within a deadline (the sync [`shutdown()`]
/// runs the sync ones). Sync and async are told apart by the function's signature; a wrong one
/// is a compile error at the path. Either works on sync and async singletons. Hooks never run in
/// `clear`, `delete` or `set`, nor for a test scope's instances.
///
/// ```
/// use std::time::Duration;
/// use singleton_kit::{singleton, CheckStatus, HookOutcome};
///
/// #[singleton(name = "doc_pool", factory = || Pool, health = Pool::ping, on_shutdown = Pool::close)]
/// pub struct Pool;
///
/// impl Pool {
///     async fn ping(&self) -> Result<(), std::io::Error> {
///         Ok(()) // e.g. `SELECT 1`
///     }
///     async fn close(&self) {
///         // e.g. `pool.close().await`: what a `Drop` cannot await
///     }
/// }
///
/// let _ = Pool::instance();
/// futures::executor::block_on(async {
///     let health = singleton_kit::health().await;
///     assert!(health.checks.iter().any(|c| c.name == "doc_pool" && c.status == CheckStatus::Up));
///     let report = singleton_kit::shutdown_async(Duration::from_millis(400)).await;
///     assert!(report.hooks.iter().any(|h| h.name == "doc_pool" && h.outcome == HookOutcome::Closed));
/// });
/// ```
///
/// **`crate = path`**: where singleton-kit is, when the dependency is renamed or re-exported
/// (default `::singleton_kit`): with `kit = { package = "singleton-kit", ... }` in
/// `Cargo.toml`, write `#[kit::singleton(crate = kit)]`.
///
/// # Compile errors
///
/// Each points at the offending token and says what to write instead: a generic parameter, a
/// type that is not `Send + Sync + 'static`, an unknown option (the message lists the valid
/// ones), a repeated option, `factory` together with `try_factory`, an empty or otherwise invalid
/// `name`, no factory on a type without `Default`, an `async fn` factory without `async` (or
/// `async` with a factory that returns no future, or none), and the attribute on anything but a
/// struct or an enum. The item is still emitted, so one mistake gives one error.
///
/// ```compile_fail
/// use singleton_kit::singleton;
///
/// #[singleton]
/// pub struct Cache<T>(Vec<T>); // error: a `#[singleton]` type cannot be generic
/// ```
#[doc(inline)]
pub use singleton_macros::singleton;

// Not public API: the attribute's generated code reaches the runtime through this path.
#[doc(hidden)]
pub use singleton_core::__private;
