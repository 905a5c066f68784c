//! The handles to a singleton's instance.

use std::any::TypeId;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::ptr::NonNull;

use crate::memory::node::Ref;
use crate::{Result, SingletonError};

/// A handle to a singleton's instance: what `T::instance()` and
/// [`SingletonCore::get`](crate::SingletonCore::get) return.
///
/// It derefs to `T`, is cheap to [`Clone`], and is `Send + Sync + 'static` when `T` is. It stays
/// valid after its singleton is deleted, replaced or cleared: `T` is dropped once the core no
/// longer holds it and the last handle is gone.
///
/// ```
/// use singleton_kit::{Instance, SingletonCore};
///
/// let core = SingletonCore::new();
/// core.set("greeting", String::from("hello"))?;
/// let h: Instance<String> = core.get("greeting")?.expect("just set");
/// assert!(core.delete("greeting"));
/// assert_eq!(h.len(), 5); // still valid
/// # Ok::<(), singleton_kit::SingletonError>(())
/// ```
///
/// # Representation
///
/// A pointer to the `T` and a counted reference to the node that owns it. A `#[singleton]`
/// type's `T::instance()` counts the handle in the calling thread's own cell, with a load and a
/// store (biased counting: the `borrow::held` module); a handle dropped on another thread, and
/// every other handle, counts on one of the node's per-thread stripes (see the `node` module).
/// So taking, cloning and dropping handles on different threads writes different cache lines,
/// where an `Arc<T>` makes every thread write the same reference count: a handle taken on each
/// of two threads costs about what it costs on one, where an `Arc` clone costs several times
/// more on two (the figures, from `cargo run --release --example bench`, are in the README's
/// Performance table, the one place they are kept). Alternatives rejected: an arc-swap guard
/// (cannot be `'static`, so cannot be stored or sent), a `&'static T` (can never free `T`, which
/// breaks `delete`), and a thread-local cached handle (keeps a deleted `T` alive in every
/// thread that stops calling).
pub struct Instance<T: ?Sized> {
    data: NonNull<T>,
    node: Ref,
    _owns: PhantomData<T>,
}

// SAFETY: an `Instance<T>` shares a `T` between threads like an `Arc<T>`: it needs the same bounds.
unsafe impl<T: ?Sized + Send + Sync> Send for Instance<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send + Sync> Sync for Instance<T> {}

impl<T: 'static> Instance<T> {
    /// A handle from a counted reference, if the instance is a `T`; otherwise `Err` gives the
    /// reference back.
    #[inline]
    pub(crate) fn try_from_ref(node: Ref) -> std::result::Result<Self, Ref> {
        let meta = node.meta();
        if meta.type_id != TypeId::of::<T>() {
            return Err(node);
        }
        // SAFETY: `data` points at the boxed value, which is a `T` (checked just now), and stays
        // put until the node is freed, which `node` prevents.
        let data = unsafe { NonNull::new_unchecked(meta.data().cast::<T>().cast_mut()) };
        Ok(Self { data, node, _owns: PhantomData })
    }

    /// A handle from a counted reference to a value known to be a `T`.
    ///
    /// # Safety
    ///
    /// The node's value is a `T`.
    #[inline]
    pub(crate) unsafe fn from_ref_unchecked(node: Ref) -> Self {
        let meta = node.meta();
        debug_assert!(meta.type_id == TypeId::of::<T>(), "a {} read as a T", meta.type_name);
        // SAFETY: `data` points at the boxed value, a `T` (as the caller says), which stays put
        // until the node is freed, which `node` prevents.
        let data = unsafe { NonNull::new_unchecked(meta.data().cast::<T>().cast_mut()) };
        Self { data, node, _owns: PhantomData }
    }

    /// A handle from a counted reference, if the instance is a `T`; otherwise the reference is
    /// released without counting the access, and the error names `name`.
    #[inline]
    pub(crate) fn from_ref(node: Ref, name: &str) -> Result<Self> {
        Self::try_from_ref(node).map_err(|node| {
            let err = SingletonError::TypeMismatch {
                name: name.to_owned(),
                expected: std::any::type_name::<T>(),
                found: node.meta().type_name,
            };
            node.release_uncounted();
            err
        })
    }
}

impl<T: ?Sized> Instance<T> {
    /// `true` when both handles point at the same instance (not merely equal values).
    ///
    /// ```
    /// use singleton_kit::SingletonCore;
    ///
    /// let core = SingletonCore::new();
    /// let a = core.get_or_create("n", || 1_u32)?;
    /// let b = core.get_or_create("n", || 2_u32)?;
    /// assert!(singleton_kit::Instance::ptr_eq(&a, &b));
    /// # Ok::<(), singleton_kit::SingletonError>(())
    /// ```
    pub fn ptr_eq(this: &Self, other: &Self) -> bool {
        this.node.same_node(&other.node)
    }
}

impl<T: ?Sized> Clone for Instance<T> {
    #[inline]
    fn clone(&self) -> Self {
        Self { data: self.data, node: self.node.clone(), _owns: PhantomData }
    }
}

impl<T: ?Sized> Deref for Instance<T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the node, which owns the `T`, lives while `self.node` is counted.
        unsafe { self.data.as_ref() }
    }
}

impl<T: ?Sized> AsRef<T> for Instance<T> {
    fn as_ref(&self) -> &T {
        self
    }
}

impl<T: ?Sized> std::borrow::Borrow<T> for Instance<T> {
    fn borrow(&self) -> &T {
        self
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Instance<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for Instance<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

/// A handle to an instance of a type known only at run time: what a `get` through
/// [`SingletonCore::execute`](crate::SingletonCore::execute) returns. Like [`Instance`], it keeps
/// the instance alive.
///
/// ```
/// use singleton_kit::{Request, Response, SingletonCore};
///
/// let core = SingletonCore::new();
/// core.set("port", 8080_u16)?;
/// let Response::Value(Some(any)) = core.execute(Request::parse("get")?.name("port"))? else {
///     panic!("expected a value")
/// };
/// assert_eq!(any.type_name(), "u16");
/// assert_eq!(*any.downcast::<u16>().unwrap(), 8080);
/// # Ok::<(), singleton_kit::SingletonError>(())
/// ```
#[derive(Clone)]
pub struct AnyInstance {
    node: Ref,
    name: Box<str>,
}

impl AnyInstance {
    pub(crate) fn new(node: Ref, name: &str) -> Self {
        Self { node, name: name.into() }
    }

    /// The counted reference this handle holds, for the registry's own descriptions of it.
    #[cfg_attr(not(feature = "json"), allow(dead_code))]
    pub(crate) fn node(&self) -> &Ref {
        &self.node
    }

    /// The name it was asked for by.
    #[cfg_attr(not(feature = "json"), allow(dead_code))]
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The instance's type name, as [`std::any::type_name`] gives it.
    ///
    /// ```
    /// use singleton_kit::{Request, Response, SingletonCore};
    ///
    /// let core = SingletonCore::new();
    /// core.set("ratio", 0.5_f64)?;
    /// let Response::Value(Some(any)) = core.execute(Request::parse("get")?.name("ratio"))? else {
    ///     panic!("expected a value")
    /// };
    /// assert_eq!(any.type_name(), "f64");
    /// # Ok::<(), singleton_kit::SingletonError>(())
    /// ```
    pub fn type_name(&self) -> &'static str {
        self.node.meta().type_name
    }

    /// `true` when the instance is a `T`.
    ///
    /// ```
    /// use singleton_kit::{Request, Response, SingletonCore};
    ///
    /// let core = SingletonCore::new();
    /// core.set("retries", 3_u8)?;
    /// let Response::Value(Some(any)) = core.execute(Request::parse("get")?.name("retries"))? else {
    ///     panic!("expected a value")
    /// };
    /// assert!(any.is::<u8>());
    /// assert!(!any.is::<u32>());
    /// # Ok::<(), singleton_kit::SingletonError>(())
    /// ```
    pub fn is<T: 'static>(&self) -> bool {
        self.node.meta().type_id == TypeId::of::<T>()
    }

    /// A typed handle to the instance, if it is a `T`.
    ///
    /// ```
    /// use singleton_kit::{Instance, Request, Response, SingletonCore};
    ///
    /// let core = SingletonCore::new();
    /// core.set("hosts", vec!["a.example", "b.example"])?;
    /// let Response::Value(Some(any)) = core.execute(Request::parse("get")?.name("hosts"))? else {
    ///     panic!("expected a value")
    /// };
    /// let hosts: Instance<Vec<&str>> = any.downcast().expect("a Vec<&str>");
    /// assert_eq!(hosts.len(), 2);
    /// assert!(any.downcast::<String>().is_none());
    /// # Ok::<(), singleton_kit::SingletonError>(())
    /// ```
    pub fn downcast<T: 'static>(&self) -> Option<Instance<T>> {
        if !self.is::<T>() {
            return None;
        }
        Instance::from_ref(self.node.clone(), &self.name).ok()
    }
}

impl fmt::Debug for AnyInstance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnyInstance")
            .field("name", &self.name)
            .field("type_name", &self.type_name())
            .finish_non_exhaustive()
    }
}
