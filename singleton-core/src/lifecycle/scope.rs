//! What a test scope holds: its own entry for each `#[singleton]` type it made or replaced, and
//! the names it made, in order. The public face is `testing::Scope`; the typed path finds the
//! scope a thread is in through [`current`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::lifecycle::context::{self, InScope};
use crate::lifecycle::entry::{Descriptor, Entry};
use crate::lifecycle::teardown;

/// What a scope holds; shared with the threads that are in it.
#[derive(Default)]
pub(crate) struct ScopeState {
    /// The scope's entry for each `#[singleton]` type it made or replaced, by descriptor.
    entries: Mutex<HashMap<usize, Arc<Entry>>>,
    /// Each name made or replaced in the scope, once, in that order.
    created: Mutex<Vec<&'static str>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ScopeState {
    /// The scope's entry for a `#[singleton]` type, made empty on first use.
    pub(crate) fn entry_for(&self, descriptor: &'static Descriptor) -> Arc<Entry> {
        let key = std::ptr::from_ref(descriptor) as usize;
        Arc::clone(lock(&self.entries).entry(key).or_insert_with(|| Arc::new(Entry::in_scope(descriptor))))
    }

    /// Each name made or replaced in the scope, once, in that order.
    pub(crate) fn created(&self) -> Vec<&'static str> {
        lock(&self.created).clone()
    }

    /// Notes that `name` was made (or replaced) in the scope.
    pub(crate) fn note(&self, name: &'static str) {
        let mut created = lock(&self.created);
        if !created.contains(&name) {
            created.push(name);
        }
    }
}

/// The scope this thread is in, if any.
#[inline]
pub(crate) fn current() -> Option<Arc<ScopeState>> {
    context::scope().and_then(|any| any.downcast::<ScopeState>().ok())
}

/// Puts this thread in `scope` until the guard is dropped.
pub(crate) fn enter(scope: &Arc<ScopeState>) -> InScope {
    InScope::enter(Arc::clone(scope) as context::AnyScope)
}

impl Drop for ScopeState {
    /// Lets go of what was made or replaced in the scope, dependents first: when the `Scope`
    /// and every future of its `run_async` are gone.
    fn drop(&mut self) {
        let entries: Vec<Arc<Entry>> =
            self.entries.get_mut().unwrap_or_else(PoisonError::into_inner).drain().map(|(_, e)| e).collect();
        crate::lifecycle::creation::abandon(&entries);
        teardown::release(|| entries.clone(), |_, _| {});
    }
}
