//! A registry entry: one name, and the live instance it holds (if any) with its statistics.

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;

use crate::counter::StripedCounter;
use crate::registration::Descriptor;
use crate::{Instance, Result, SingletonError};

/// A value of any `Send + Sync + 'static` type, with the type facts the registry keeps about it.
///
/// It is what [`Request::value`](crate::Request::value) carries for a `set` that arrives as data,
/// and what a type-erased `get` through [`SingletonCore::execute`](crate::SingletonCore::execute)
/// returns.
///
/// ```
/// use singleton_kit::SingletonValue;
///
/// let v = SingletonValue::new(42_u64);
/// assert_eq!(v.type_name(), "u64");
/// assert_eq!(*v.downcast::<u64>().unwrap(), 42);
/// ```
#[derive(Clone)]
pub struct SingletonValue {
    pub(crate) any: Arc<dyn Any + Send + Sync>,
    pub(crate) type_id: TypeId,
    pub(crate) type_name: &'static str,
    pub(crate) size: usize,
}

impl SingletonValue {
    /// Wraps `value`.
    pub fn new<T: Send + Sync + 'static>(value: T) -> Self {
        Self::from_arc(Arc::new(value))
    }

    pub(crate) fn from_arc<T: Send + Sync + 'static>(value: Arc<T>) -> Self {
        Self {
            any: value,
            type_id: TypeId::of::<T>(),
            type_name: std::any::type_name::<T>(),
            size: std::mem::size_of::<T>(),
        }
    }

    /// The value's type name, as [`std::any::type_name`] gives it.
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }

    /// `true` when the value is a `T`.
    pub fn is<T: 'static>(&self) -> bool {
        self.type_id == TypeId::of::<T>()
    }

    /// The value as an [`Instance<T>`], or `None` when it is not a `T`.
    pub fn downcast<T: Send + Sync + 'static>(&self) -> Option<Instance<T>> {
        Arc::clone(&self.any).downcast::<T>().ok().map(Instance::from_arc)
    }
}

impl fmt::Debug for SingletonValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SingletonValue").field("type_name", &self.type_name).finish_non_exhaustive()
    }
}

/// The order in which instances came to be, across every core: `clear` drops newest first.
static CREATION_SEQ: AtomicU64 = AtomicU64::new(0);

/// A live instance and what the registry knows about it. Replaced whole by `set` and by
/// re-creation, so its counts start at zero with it.
pub(crate) struct Live {
    pub(crate) value: SingletonValue,
    pub(crate) created_at: SystemTime,
    /// How long the factory ran; `None` for a value stored with `set`.
    pub(crate) init_duration: Option<Duration>,
    pub(crate) seq: u64,
    pub(crate) accesses: StripedCounter,
}

impl Live {
    pub(crate) fn new(value: SingletonValue, init_duration: Option<Duration>) -> Self {
        Self {
            value,
            created_at: SystemTime::now(),
            init_duration,
            seq: CREATION_SEQ.fetch_add(1, Ordering::Relaxed),
            accesses: StripedCounter::default(),
        }
    }

    /// A counted handle of type `T`.
    #[inline]
    pub(crate) fn access<T: Send + Sync + 'static>(&self, name: &str) -> Result<Instance<T>> {
        let handle = self.value.downcast::<T>().ok_or_else(|| SingletonError::TypeMismatch {
            name: name.to_owned(),
            expected: std::any::type_name::<T>(),
            found: self.value.type_name,
        })?;
        self.accesses.add(1);
        Ok(handle)
    }
}

/// One name in a core. A `#[singleton]` type's entry lives as long as its core; an entry made
/// by `set` or `get_or_create` is removed by `delete` and `clear`.
pub(crate) struct Entry {
    pub(crate) name: Box<str>,
    /// The `#[singleton]` type that owns this name, if any: it fixes the type and the factory.
    pub(crate) registration: Option<&'static Descriptor>,
    pub(crate) live: ArcSwapOption<Live>,
}

impl Entry {
    pub(crate) fn new(name: &str, registration: Option<&'static Descriptor>) -> Self {
        Self { name: name.into(), registration, live: ArcSwapOption::empty() }
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
            .field("live", &self.live.load().is_some())
            .finish()
    }
}
