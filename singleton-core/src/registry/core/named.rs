//! The name-keyed operations one name at a time: GET, GET with a factory, SET, HAS/EXISTS, DELETE.

use std::any::TypeId;
use std::sync::Arc;

use super::{duplicate, Denied, ForgetIfEmpty, SingletonCore};
use crate::lifecycle::context;
use crate::lifecycle::creation;
use crate::lifecycle::entry::{Entry, SingletonValue};
use crate::lifecycle::teardown::{self, take};
use crate::memory::node::Retired;
use crate::registry::names::Named;
use crate::{BoxError, Instance, Result, SingletonOperation};

impl SingletonCore {
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
    pub(crate) fn try_has(
        &self,
        operation: SingletonOperation,
        name: &str,
    ) -> std::result::Result<bool, Denied> {
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
    pub(crate) fn try_delete(&self, name: &str) -> std::result::Result<bool, Denied> {
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
    pub(super) fn released(&self, entry: &Entry, retired: &Retired) {
        self.metric_labels.released(&entry.metric_label, || retired.accesses());
    }
}
