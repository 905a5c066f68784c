//! The code `#[singleton]` generates is clean under the strictest lints a user may enable: this
//! file declares singletons of every shape (public and private, struct and enum, `factory`,
//! `try_factory`, `Default`, `name`, `eager`) under `deny`, so `cargo test` and
//! `cargo clippy --all-targets -- -D warnings` fail if the macro ever makes a user's lint run
//! noisy.

#![deny(warnings, missing_docs, rust_2018_idioms, unused_qualifications, clippy::all, clippy::pedantic)]

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use singleton_kit::{singleton, Instance};

/// A public singleton made by its `factory`.
#[singleton(factory = CacheManager::new)]
#[derive(Debug)]
pub struct CacheManager {
    entries: Mutex<HashMap<String, String>>,
}

impl CacheManager {
    fn new() -> Self {
        let mut entries = HashMap::new();
        entries.insert("greeting".to_owned(), "hello".to_owned());
        Self { entries: Mutex::new(entries) }
    }

    fn get(&self, key: &str) -> Option<String> {
        self.entries.lock().ok()?.get(key).cloned()
    }
}

/// A singleton with a sync health check and an async close hook.
#[singleton(factory = || Pooled, health = Pooled::check, on_shutdown = Pooled::close)]
#[derive(Debug)]
pub struct Pooled;

impl Pooled {
    #[allow(clippy::unnecessary_wraps)]
    fn check(&self) -> Result<(), fmt::Error> {
        let _ = self;
        Ok(())
    }

    async fn close(&self) {
        std::future::ready(self).await;
    }
}

/// A public singleton made by `Default`, under a name of its own.
#[singleton(name = "app_config")]
#[derive(Debug, Default)]
pub struct Config {
    /// The number of retries.
    pub retries: u32,
}

/// A private singleton made by `Default`: no `missing_docs` on what it generates.
#[singleton]
#[derive(Default)]
struct Counter(std::sync::atomic::AtomicU64);

/// A public enum singleton made by `Default`.
#[singleton]
#[derive(Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// The default mode.
    #[default]
    Normal,
    /// The other mode.
    Maintenance,
}

/// A private enum singleton made by a closure `factory`, created eagerly.
#[singleton(factory = || Region::EuWest, eager)]
#[derive(Debug, PartialEq, Eq)]
enum Region {
    UsEast,
    EuWest,
}

/// A crate-visible singleton made by a `try_factory`, with every option but `crate`.
#[singleton(try_factory = Validator::load, name = "validator", eager)]
#[derive(Debug)]
pub(crate) struct Validator {
    rules: Vec<&'static str>,
}

/// Why a [`Validator`] could not load.
#[derive(Debug)]
pub struct LoadError;

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no rules")
    }
}

impl std::error::Error for LoadError {}

impl Validator {
    fn load() -> Result<Self, LoadError> {
        let rules = vec!["no_empty_names"];
        if rules.is_empty() {
            return Err(LoadError);
        }
        Ok(Self { rules })
    }
}

/// A tuple struct singleton made by a `try_factory` whose error is a boxed error, through the
/// facade's path given explicitly.
#[singleton(try_factory = Marker::make, crate = ::singleton_kit)]
pub struct Marker(u8);

impl Marker {
    fn make() -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self("7".parse()?))
    }
}

/// An async singleton made by an `async fn`, and one by a fallible async closure.
#[singleton(factory = Pool::connect, async, eager)]
#[derive(Debug)]
pub struct Pool {
    size: usize,
}

impl Pool {
    async fn connect() -> Self {
        Self { size: Settings::try_instance().await.map_or(1, |s| s.0) }
    }
}

/// The pool's settings.
#[singleton(try_factory = || async { "4".parse().map(Settings) }, async)]
pub struct Settings(usize);

#[test]
fn generated_code_is_lint_clean_and_works() {
    let pool = futures::executor::block_on(Pool::instance());
    assert_eq!(pool.size, 4);
    assert_eq!(Pool::SINGLETON_NAME, "pool");
    let before = Counter::with_instance(|c| c.0.load(std::sync::atomic::Ordering::Relaxed));
    assert!(before < u64::MAX);

    let cache: Instance<CacheManager> = CacheManager::instance();
    assert_eq!(cache.get("greeting").as_deref(), Some("hello"));
    assert_eq!(CacheManager::SINGLETON_NAME, "cache_manager");

    assert_eq!(Config::instance().retries, 0);
    assert_eq!(Config::SINGLETON_NAME, "app_config");

    Counter::instance().0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(Counter::SINGLETON_NAME, "counter");

    assert_eq!(*Mode::instance(), Mode::Normal);
    assert_ne!(*Mode::instance(), Mode::Maintenance);
    assert_eq!(Mode::SINGLETON_NAME, "mode");

    assert_eq!(*Region::instance(), Region::EuWest);
    assert_ne!(*Region::instance(), Region::UsEast);
    assert_eq!(Region::SINGLETON_NAME, "region");

    let validator = Validator::try_instance().expect("the validator loads");
    assert_eq!(validator.rules, ["no_empty_names"]);
    assert_eq!(Validator::SINGLETON_NAME, "validator");
    assert_eq!(LoadError.to_string(), "no rules");

    assert_eq!(Marker::try_instance().expect("the marker parses").0, 7);
    assert_eq!(Marker::SINGLETON_NAME, "marker");
}
