//! The handle to a singleton's instance.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

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
/// An `Instance<T>` is an [`Arc<T>`]: the handle must keep `T` alive on its own after the
/// core lets go, and `Arc` does exactly that with one word and no `unsafe`. The alternatives
/// compared (see `benches/` and the README's performance table) were a guard of `arc-swap`
/// (cannot be `'static`, so cannot be stored or sent) and a `&'static T` (cannot ever free `T`,
/// which breaks `delete`). Cloning bumps one shared reference count.
pub struct Instance<T: ?Sized> {
    inner: Arc<T>,
}

impl<T: ?Sized> Instance<T> {
    pub(crate) fn from_arc(inner: Arc<T>) -> Self {
        Self { inner }
    }

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
        Arc::ptr_eq(&this.inner, &other.inner)
    }

    /// The instance as an [`Arc`], for APIs that want one.
    pub fn into_arc(this: Self) -> Arc<T> {
        this.inner
    }
}

impl<T: ?Sized> Clone for Instance<T> {
    fn clone(&self) -> Self {
        Self { inner: Arc::clone(&self.inner) }
    }
}

impl<T: ?Sized> Deref for Instance<T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T: ?Sized> AsRef<T> for Instance<T> {
    fn as_ref(&self) -> &T {
        &self.inner
    }
}

impl<T: ?Sized> std::borrow::Borrow<T> for Instance<T> {
    fn borrow(&self) -> &T {
        &self.inner
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Instance<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.inner, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for Instance<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.inner, f)
    }
}
