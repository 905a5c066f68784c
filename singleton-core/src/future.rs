//! The futures of async singletons: what an async `#[singleton]` type's `instance()` and
//! `try_instance()` return.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::registration::{Descriptor, Singleton, SlowGet};
use crate::{Instance, Result};

/// The future of an async singleton's `try_instance()`: the instance, created by its async factory
/// on first use, exactly once, or the reason it could not be.
///
/// Once the singleton exists, the first poll is ready: it reads the instance as the sync
/// `instance()` does. Otherwise every task that asks shares **one** creation: one task polls the
/// factory's future at a time, the others are woken when it ends.
///
/// The future is `Send` and `'static`, so it can be awaited in spawned tasks. It needs no
/// particular runtime: waiting tasks are woken through their wakers.
///
/// # Cancel safety
///
/// Dropping it at any point loses nothing: a creation it was driving is driven on by another task
/// that waits for the same singleton, or else by the next one that asks. The factory is called
/// once. (A creation driven on from another runtime than the one it started in may fail, if its
/// timers or sockets belong to the first; that is an error like any other, and the next caller
/// starts afresh.)
///
/// ```
/// use singleton_kit::{singleton, SingletonError};
///
/// #[singleton(try_factory = Secrets::load, async)]
/// struct Secrets(Vec<String>);
///
/// impl Secrets {
///     async fn load() -> Result<Self, std::io::Error> {
///         Ok(Secrets(vec!["token".into()]))
///     }
/// }
///
/// # futures::executor::block_on(async {
/// let secrets = Secrets::try_instance().await?;
/// assert_eq!(secrets.0, ["token"]);
/// # Ok::<(), SingletonError>(())
/// # }).unwrap();
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct TryInstanceFuture<T> {
    descriptor: &'static Descriptor,
    /// The request past the fast path, boxed: the future stays two words, cheap to make and to
    /// return on the fast path.
    slow: Option<Box<SlowGet>>,
    _of: PhantomData<fn() -> T>,
}

impl<T> TryInstanceFuture<T> {
    #[inline]
    pub(crate) fn new(descriptor: &'static Descriptor) -> Self {
        Self { descriptor, slow: None, _of: PhantomData }
    }
}

impl<T: Singleton> Future for TryInstanceFuture<T> {
    type Output = Result<Instance<T>>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if this.slow.is_none() {
            if let Some(instance) = this.descriptor.existing() {
                return Poll::Ready(Ok(instance));
            }
        }
        this.poll_slow(cx)
    }
}

impl<T: Singleton> TryInstanceFuture<T> {
    /// Everything but the fast path, kept out of line so that the ready case stays small.
    #[cold]
    #[inline(never)]
    fn poll_slow(&mut self, cx: &mut Context<'_>) -> Poll<Result<Instance<T>>> {
        self.descriptor.poll_instance(&mut self.slow, cx)
    }
}

impl<T> fmt::Debug for TryInstanceFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TryInstanceFuture").field("singleton", &self.descriptor.name).finish_non_exhaustive()
    }
}

/// The future of an async singleton's `instance()`: as [`TryInstanceFuture`], but it panics, with
/// the singleton's name and the cause, where that one gives `Err`.
///
/// ```
/// use singleton_kit::{singleton, Instance};
///
/// #[singleton(factory = Db::connect, async)]
/// struct Db { url: String }
///
/// impl Db {
///     async fn connect() -> Db {
///         Db { url: "postgres://localhost".into() }
///     }
/// }
///
/// # futures::executor::block_on(async {
/// let db: Instance<Db> = Db::instance().await;
/// let again = Db::instance().await; // ready at once: the same instance
/// assert!(Instance::ptr_eq(&db, &again));
/// assert_eq!(db.url, "postgres://localhost");
/// # });
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct InstanceFuture<T> {
    inner: TryInstanceFuture<T>,
}

impl<T> InstanceFuture<T> {
    #[inline]
    pub(crate) fn new(descriptor: &'static Descriptor) -> Self {
        Self { inner: TryInstanceFuture::new(descriptor) }
    }
}

impl<T: Singleton> Future for InstanceFuture<T> {
    type Output = Instance<T>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut self.get_mut().inner;
        // The fast path returns the handle itself: a `Result` holding a `SingletonError` would
        // be returned through memory.
        if this.slow.is_none() {
            if let Some(instance) = this.descriptor.existing() {
                return Poll::Ready(instance);
            }
        }
        match this.poll_slow(cx) {
            Poll::Ready(Ok(instance)) => Poll::Ready(instance),
            Poll::Ready(Err(err)) => this.descriptor.fail(err),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T> fmt::Debug for InstanceFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstanceFuture")
            .field("singleton", &self.inner.descriptor.name)
            .finish_non_exhaustive()
    }
}

/// Polls every future until all are ready, and returns their outputs in order: independent
/// futures overlap, with no runtime to spawn them on.
pub(crate) async fn join_all<O>(futures: Vec<Pin<Box<dyn Future<Output = O> + Send + '_>>>) -> Vec<O> {
    let mut pending: Vec<Option<Pin<Box<dyn Future<Output = O> + Send + '_>>>> =
        futures.into_iter().map(Some).collect();
    let mut outputs: Vec<Option<O>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(move |cx| {
        let mut all = true;
        for (slot, out) in pending.iter_mut().zip(outputs.iter_mut()) {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => {
                        *out = Some(value);
                        *slot = None;
                    }
                    Poll::Pending => all = false,
                }
            }
        }
        if all {
            Poll::Ready(outputs.iter_mut().map(|o| o.take().expect("every future is ready")).collect())
        } else {
            Poll::Pending
        }
    })
    .await
}
