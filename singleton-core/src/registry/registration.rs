//! What `#[singleton]` registers through `inventory`, and the list of it at startup.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::lifecycle::creation;
use crate::lifecycle::entry::Descriptor;
use crate::{manager, Result};

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
    crate::order::sort_by_names(&mut all, |r| (r.name(), r.type_name()));
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
