//! What runs on this thread right now: the factories (innermost last), for cycle detection and
//! the dependency graph, and the test scope, if any.
//!
//! The typed hot path (`T::instance()`) must not pay for either when neither is in use: it reads
//! one relaxed counter, [`watched`], which is non-zero while any thread runs a factory or is
//! inside a scope. Only then does it look at this thread's state. Relaxed is enough: what a
//! thread needs to see is its own factory or scope, and its own writes are visible to it.

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::lifecycle::entry::Entry;
use crate::memory::node::{suspend, Suspended};

/// The test scope a thread is in, as this module keeps it: the scope layer's state, which this
/// module does not need to know (the `scope` module downcasts it back).
pub(crate) type AnyScope = Arc<dyn std::any::Any + Send + Sync>;

/// How many threads run a factory or are inside a scope right now (each counted once per frame).
static WATCH: AtomicUsize = AtomicUsize::new(0);

/// Entries are identified by address while they are being created (the creator holds an `Arc`).
pub(crate) type Key = usize;

pub(crate) fn key(entry: &Arc<Entry>) -> Key {
    Arc::as_ptr(entry) as Key
}

/// One factory running on this thread: a sync factory's call or one poll of an async factory's
/// future.
struct Frame {
    key: Key,
    entry: Arc<Entry>,
}

thread_local! {
    static FACTORIES: RefCell<Vec<Frame>> = const { RefCell::new(Vec::new()) };
    static SCOPE: RefCell<Option<AnyScope>> = const { RefCell::new(None) };
}

/// `true` when some thread runs a factory or is inside a scope: only then does this thread's own
/// state need a look.
#[inline(always)]
pub(crate) fn watched() -> bool {
    WATCH.load(Ordering::Relaxed) != 0
}

/// Makes `entry`'s factory this thread's innermost until dropped. A factory of an entry that is
/// not a scope's runs outside any scope, so that nothing it makes comes from a scope's fakes.
pub(crate) struct InFactory {
    suspended: Option<AnyScope>,
    /// `with_instance` takes a handle meanwhile, so that its dependency is recorded.
    _borrows: Suspended,
}

impl InFactory {
    pub(crate) fn enter(entry: &Arc<Entry>) -> Self {
        WATCH.fetch_add(1, Ordering::Relaxed);
        FACTORIES.with(|f| f.borrow_mut().push(Frame { key: key(entry), entry: Arc::clone(entry) }));
        let suspended = if entry.scoped { None } else { SCOPE.with(|s| s.borrow_mut().take()) };
        InFactory { suspended, _borrows: suspend() }
    }
}

impl Drop for InFactory {
    fn drop(&mut self) {
        if let Some(scope) = self.suspended.take() {
            SCOPE.with(|s| *s.borrow_mut() = Some(scope));
        }
        // Popped with no borrow held across user code, so a `Drop` of the entry is fine here.
        let frame = FACTORIES.with(|f| f.borrow_mut().pop());
        drop(frame);
        WATCH.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The factory running innermost on this thread, if any.
pub(crate) fn factory() -> Option<Key> {
    FACTORIES.with(|f| f.borrow().last().map(|f| f.key))
}

/// `true` while a factory is running on this thread.
pub(crate) fn in_factory() -> bool {
    FACTORIES.with(|f| !f.borrow().is_empty())
}

/// The outermost factory on this thread that is one of `keys`.
pub(crate) fn outermost_of(keys: &[Key]) -> Option<Key> {
    FACTORIES.with(|f| f.borrow().iter().map(|f| f.key).find(|k| keys.contains(k)))
}

/// Records `name` as a dependency of the factory running innermost on this thread, if any: the
/// dependency graph learns from what factories ask for.
#[inline]
pub(crate) fn record_dependency(name: &str) {
    if watched() {
        record_slow(name);
    }
}

#[cold]
fn record_slow(name: &str) {
    let entry = FACTORIES.with(|f| f.borrow().last().map(|f| Arc::clone(&f.entry)));
    if let Some(entry) = entry {
        if *entry.name != *name {
            entry.add_dependency(name);
        }
    }
}

/// The scope this thread is in, if any.
#[inline]
pub(crate) fn scope() -> Option<AnyScope> {
    if watched() {
        SCOPE.with(|s| s.borrow().clone())
    } else {
        None
    }
}

/// Puts this thread in `scope` until dropped (and back in the scope it was in before).
pub(crate) struct InScope {
    previous: Option<AnyScope>,
    /// `with_instance` takes a handle meanwhile, so that it finds the scope's entry.
    _borrows: Suspended,
}

impl InScope {
    pub(crate) fn enter(scope: AnyScope) -> Self {
        WATCH.fetch_add(1, Ordering::Relaxed);
        let previous = SCOPE.with(|s| s.borrow_mut().replace(scope));
        InScope { previous, _borrows: suspend() }
    }
}

impl Drop for InScope {
    fn drop(&mut self) {
        let left = SCOPE.with(|s| std::mem::replace(&mut *s.borrow_mut(), self.previous.take()));
        drop(left);
        WATCH.fetch_sub(1, Ordering::Relaxed);
    }
}
