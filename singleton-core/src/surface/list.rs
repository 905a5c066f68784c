//! The `list` operation: every registered `#[singleton]` (created or not) and every live
//! run-time entry of a core, with its state, as data and JSON. It reads the slots without
//! taking an access, and creates nothing.

use std::time::{Duration, SystemTime};

use serde::ser::{Serialize, SerializeStruct, Serializer};

use crate::lifecycle::entry::{Descriptor, Entry};
use crate::memory::node::Ref;
use crate::surface::stats::{millis, unix_seconds};
use crate::{Registered, Result, SingletonOperation};

/// Where a listed singleton's instance comes from.
///
/// ```
/// use singleton_kit::Source;
///
/// assert_eq!(Source::GetOrCreate.as_str(), "get_or_create");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Source {
    /// A `#[singleton]` type, made (or to be made) by its factory.
    Attribute,
    /// A value stored with `set` (also a `#[singleton]` replaced by `set`): no factory made it.
    Set,
    /// A run-time entry made by `get_or_create` (or its async and fallible forms).
    GetOrCreate,
}

impl Source {
    /// The name the JSON uses: `"attribute"`, `"set"` or `"get_or_create"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Attribute => "attribute",
            Self::Set => "set",
            Self::GetOrCreate => "get_or_create",
        }
    }
}

/// One singleton of a core, as [`SingletonCore::list`](crate::SingletonCore::list) sees it.
///
/// It serializes as `{"name", "type", "kind": "sync"|"async", "source":
/// "attribute"|"set"|"get_or_create", "eager", "state": "pending"|"created", "access_count",
/// "created_at", "init_ms", "dependencies"}`: `created_at` in Unix seconds and `init_ms` in
/// milliseconds, both `null` while pending, and `init_ms` also `null` for a value stored with
/// `set`, which no factory made. [`Registered`] serializes to the same object.
///
/// ```
/// use singleton_kit::{singleton, SingletonCore, Source};
///
/// #[singleton(name = "doc_listed_pool", factory = || Pool(4))]
/// struct Pool(u8);
///
/// let core = SingletonCore::new();
/// core.set("region", "eu-west-1")?;
/// let list = core.list()?;
/// let pool = list.iter().find(|l| l.name == "doc_listed_pool").unwrap();
/// assert!(!pool.created && pool.source == Source::Attribute); // listing created nothing
/// let region = list.iter().find(|l| l.name == "region").unwrap();
/// assert_eq!((region.source, region.access_count), (Source::Set, 0));
/// let json = serde_json::to_value(region).unwrap();
/// assert_eq!(json["state"], "created");
/// assert_eq!(json["init_ms"], serde_json::Value::Null);
/// # Ok::<(), singleton_kit::SingletonError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Listed {
    /// Its name.
    pub name: String,
    /// Its type's name, as [`std::any::type_name`] gives it.
    pub type_name: &'static str,
    /// `true` for `#[singleton(async)]`.
    pub is_async: bool,
    /// Where its instance comes from.
    pub source: Source,
    /// `true` for `#[singleton(eager)]`.
    pub eager: bool,
    /// `true` when it has an instance; `false` while pending.
    pub created: bool,
    /// How often its current instance was accessed (0 while pending).
    pub access_count: u64,
    /// When its instance was created or stored.
    pub created_at: Option<SystemTime>,
    /// How long its factory ran; `None` while pending and for a value stored with `set`.
    pub init_duration: Option<Duration>,
    /// The names its factory asked for.
    pub dependencies: Vec<String>,
}

impl Listed {
    /// The listing of `entry`, named `name`: `None` for a run-time entry with no instance.
    pub(crate) fn of(name: &str, entry: &Entry) -> Option<Self> {
        let live = entry.slot.get(false);
        if live.is_none() && entry.registration.is_none() {
            return None;
        }
        let meta = live.as_ref().map(Ref::meta);
        let source = match (entry.registration, meta.map(|m| m.init_duration.is_some())) {
            (_, Some(false)) => Source::Set,
            (Some(_), _) => Source::Attribute,
            (None, _) => Source::GetOrCreate,
        };
        Some(Listed {
            name: name.to_owned(),
            type_name: match (entry.registration, meta) {
                (Some(r), _) => (r.type_name)(),
                (None, Some(m)) => m.type_name,
                (None, None) => "?",
            },
            is_async: entry.registration.is_some_and(Descriptor::is_async),
            source,
            eager: entry.registration.is_some_and(|r| r.eager),
            created: live.is_some(),
            access_count: live.as_ref().map_or(0, Ref::accesses),
            created_at: meta.map(|m| m.created_at),
            init_duration: meta.and_then(|m| m.init_duration),
            dependencies: entry.dependencies(),
        })
    }
}

impl Serialize for Listed {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_struct("Listed", 10)?;
        out.serialize_field("name", &self.name)?;
        out.serialize_field("type", self.type_name)?;
        out.serialize_field("kind", if self.is_async { "async" } else { "sync" })?;
        out.serialize_field("source", self.source.as_str())?;
        out.serialize_field("eager", &self.eager)?;
        out.serialize_field("state", if self.created { "created" } else { "pending" })?;
        out.serialize_field("access_count", &self.access_count)?;
        out.serialize_field("created_at", &self.created_at.map(unix_seconds))?;
        out.serialize_field("init_ms", &self.init_duration.map(millis))?;
        out.serialize_field("dependencies", &self.dependencies)?;
        out.end()
    }
}

impl Serialize for Registered {
    /// As the [`Listed`] object of this singleton in the global core.
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let listed = Listed::of(self.name(), self.0.entry()).expect("a registered type is always listed");
        listed.serialize(serializer)
    }
}

impl crate::SingletonCore {
    /// LIST: every registered `#[singleton]` type (created or not) and every live entry made at
    /// run time (`set`, `get_or_create`), sorted by name, with its state. It creates nothing and
    /// counts no access; it takes one rate-limit slot. A test scope's instances are not listed.
    ///
    /// ```
    /// use singleton_kit::SingletonCore;
    ///
    /// let core = SingletonCore::new();
    /// core.get_or_create("pool", || vec![0_u8; 4])?;
    /// let pool = core.list()?.into_iter().find(|l| l.name == "pool").unwrap();
    /// assert!(pool.created && pool.init_duration.is_some());
    /// assert_eq!(pool.access_count, 1); // the get_or_create; the listing counted none
    /// # Ok::<(), singleton_kit::SingletonError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// `RateLimited`.
    pub fn list(&self) -> Result<Vec<Listed>> {
        let op = SingletonOperation::List;
        self.gate(op, None).map_err(|denied| denied.into_error(op, None))?;
        let mut all = Vec::new();
        self.for_each_entry(|name, entry| all.extend(Listed::of(name, entry)));
        crate::order::sort_by_names(&mut all, |l| (&l.name, l.type_name));
        Ok(all)
    }
}
