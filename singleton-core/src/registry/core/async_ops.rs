//! The async forms of GET and GET with a factory: an async `#[singleton]` awaited, or a creation in
//! progress joined.

use std::any::TypeId;
use std::sync::Arc;

use crate::lifecycle::context;
use crate::lifecycle::creation;
use crate::lifecycle::creation::{AsyncGet, Detached};
use crate::lifecycle::entry::{BoxFuture, SingletonValue};
use crate::memory::node::Ref;
use crate::{BoxError, Instance, Result, SingletonError, SingletonOperation};
use std::future::Future;

use super::{ForgetIfEmpty, Found, SingletonCore};

impl SingletonCore {
    /// GET from async code: as [`get`](Self::get), but an async `#[singleton]` type of that name
    /// that has no instance yet is created by its async factory (or the creation in progress is
    /// joined), where `get` answers `Err(NeedsAwait)`.
    ///
    /// ```
    /// use singleton_kit::{singleton, SingletonCore, SingletonError};
    ///
    /// #[singleton(name = "doc_get_async", factory = Token::fetch, async)]
    /// struct Token(String);
    ///
    /// impl Token {
    ///     async fn fetch() -> Token {
    ///         Token("t-1".into())
    ///     }
    /// }
    ///
    /// let core = SingletonCore::new();
    /// assert!(matches!(core.get::<Token>("doc_get_async"), Err(SingletonError::NeedsAwait { .. })));
    /// # futures::executor::block_on(async {
    /// let token = core.get_async::<Token>("doc_get_async").await?.expect("created by its factory");
    /// assert_eq!(token.0, "t-1");
    /// assert!(core.get::<Token>("doc_get_async")?.is_some()); // now the sync path has it too
    /// # Ok::<(), SingletonError>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get), except `NeedsAwait`.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future loses nothing: a creation it was driving is driven on by the next caller.
    pub async fn get_async<T: Send + Sync + 'static>(&self, name: &str) -> Result<Option<Instance<T>>> {
        let want = (TypeId::of::<T>(), std::any::type_name::<T>());
        match self.get_live_async(name, Some(want)).await? {
            Some(live) => Instance::from_ref(live, name).map(Some),
            None => Ok(None),
        }
    }

    /// GET with an async factory: the instance under `name`, created by awaiting `factory()` if
    /// there is none. Every caller that asks at once shares one creation: the factory is called
    /// once.
    ///
    /// ```
    /// use singleton_kit::SingletonCore;
    ///
    /// let core = SingletonCore::new();
    /// # futures::executor::block_on(async {
    /// let pool = core.get_or_create_async("pool", || async { vec!["conn-1", "conn-2"] }).await?;
    /// assert_eq!(pool.len(), 2);
    /// let again = core.get_or_create_async("pool", || async { Vec::<&str>::new() }).await?; // not run
    /// assert_eq!(again.len(), 2);
    /// # Ok::<(), singleton_kit::SingletonError>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// As [`get_or_create`](Self::get_or_create).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future loses nothing: a creation it started or was driving is driven on by
    /// another caller of the same name, or else by the next one; the factory is not called again.
    pub async fn get_or_create_async<T, F, Fut>(&self, name: &str, factory: F) -> Result<Instance<T>>
    where
        T: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = T> + Send + 'static,
    {
        self.get_or_try_create_async(name, move || {
            let made = factory();
            async move { Ok::<T, std::convert::Infallible>(made.await) }
        })
        .await
    }

    /// GET with a fallible async factory. A failed factory is not cached: the error is returned
    /// as `Err(Factory { name, source })` and the next call runs a factory again.
    ///
    /// ```
    /// use singleton_kit::{SingletonCore, SingletonError};
    ///
    /// let core = SingletonCore::new();
    /// # futures::executor::block_on(async {
    /// let failed = core.get_or_try_create_async::<u16, _, _, _>("port", || async { "x".parse::<u16>() });
    /// assert!(matches!(failed.await, Err(SingletonError::Factory { .. })));
    /// let port = core.get_or_try_create_async("port", || async { "8080".parse::<u16>() }).await?;
    /// assert_eq!(*port, 8080);
    /// # Ok::<(), SingletonError>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// As [`get_or_try_create`](Self::get_or_try_create).
    ///
    /// # Cancel safety
    ///
    /// As [`get_or_create_async`](Self::get_or_create_async).
    pub async fn get_or_try_create_async<T, E, F, Fut>(&self, name: &str, factory: F) -> Result<Instance<T>>
    where
        T: Send + Sync + 'static,
        E: Into<BoxError>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = std::result::Result<T, E>> + Send + 'static,
    {
        self.admit(SingletonOperation::Get, name)?;
        context::record_dependency(name);
        let mut make = Some(move || -> BoxFuture {
            let made = factory();
            Box::pin(async move { made.await.map(SingletonValue::new).map_err(Into::into) })
        });
        loop {
            let entry = match self.existing_or_entry(name)? {
                Ok(instance) => return Ok(instance),
                Err(entry) => entry,
            };
            // A factory that fails or panics, or a caller dropped before it started one, leaves no
            // empty entry behind.
            let mut forget = ForgetIfEmpty { core: self, name, entry: Some(&entry) };
            // A creation this call started ends with its outcome stored for this call, which
            // `poll_get` returns before it looks at the entry's place in the map; so `Detached`
            // comes back with the factory unused, unless a value's `Drop` panicked while the
            // creation ended (its outcome was then lost with the unwind).
            let Some(factory) = make.take() else {
                return Err(SingletonError::Factory {
                    name: name.to_owned(),
                    source: "the creation this call started ended in a panic in another call".into(),
                });
            };
            let mut get = AsyncGet::new(Arc::clone(&entry), factory);
            match std::future::poll_fn(|cx| get.poll_get(cx)).await {
                Ok(Ok(live)) => {
                    forget.entry = None;
                    return Instance::from_ref(live, name);
                }
                Ok(Err(err)) => return Err(err),
                // The entry was removed from the map meanwhile: look the name up again.
                Err(Detached) => make = get.take_make(),
            }
        }
    }

    /// The live instance under `name`, creating a registered one with its factory, sync or async.
    pub(crate) async fn get_live_async(
        &self,
        name: &str,
        want: Option<(TypeId, &'static str)>,
    ) -> Result<Option<Ref>> {
        match self.find(name, want)? {
            Found::Live(live) => Ok(live),
            Found::Make(entry) => creation::get_or_make_async(entry).await.map(Some),
        }
    }
}
