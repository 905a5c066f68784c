//! Exactly-once creation, with cycle detection instead of deadlock.
//!
//! Every creation, typed or name-keyed, in any core, goes through [`get_or_create`]. One global
//! bookkeeping lock records which thread is creating which entry (its *claim*), the stack of
//! creations each thread has in progress, and which entry each waiting thread waits for. The lock
//! is held only to read and change that record, never while a factory runs, so factories may ask
//! for other singletons and unrelated singletons are created in parallel.
//!
//! Before a thread waits for an entry that another thread is creating, it follows the wait-for
//! chain (owner → what the owner waits for → its owner → …). If the chain comes back to the
//! thread itself, waiting would deadlock: the creation fails with [`SingletonError::Cycle`]
//! instead. A thread that asks for an entry it is itself creating is the one-thread case of the
//! same rule, so a self-referencing factory fails instead of recursing until the stack overflows.

use std::cell::Cell;
use std::collections::HashMap;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, ThreadId};
use std::time::Instant;

use once_cell::sync::Lazy;

use crate::entry::{Entry, SingletonValue};
use crate::node::Ref;
use crate::{BoxError, Result, SingletonError};

/// Entries are identified by address while they are being created (the creator holds an `Arc`).
type Key = usize;

fn key(entry: &Arc<Entry>) -> Key {
    Arc::as_ptr(entry) as Key
}

#[derive(Default)]
struct Graph {
    /// Which thread is creating which entry.
    owners: HashMap<Key, ThreadId>,
    threads: HashMap<ThreadId, ThreadState>,
}

#[derive(Default)]
struct ThreadState {
    /// Creations in progress on this thread, outermost first.
    stack: Vec<(Key, Box<str>)>,
    /// The entry this thread is waiting for another thread to create.
    waiting_for: Option<Key>,
}

static GRAPH: Lazy<Mutex<Graph>> = Lazy::new(Mutex::default);
/// Woken whenever a creation ends, successfully or not.
static CREATED: Condvar = Condvar::new();

fn graph() -> MutexGuard<'static, Graph> {
    // Every change to the graph is a single map operation, so it is consistent even if a
    // thread panicked while holding the lock.
    GRAPH.lock().unwrap_or_else(PoisonError::into_inner)
}

thread_local! {
    /// How many factories are running on this thread (nested creations).
    static FACTORY_DEPTH: Cell<usize> = const { Cell::new(0) };
    /// A cycle found below a factory that could only report it by panicking (an infallible
    /// factory calling `instance()`); the creation that catches the unwind turns it back into
    /// `Err(Cycle)`.
    static PENDING_CYCLE: Cell<Option<Vec<String>>> = const { Cell::new(None) };
}

/// `true` while a factory is running on this thread.
pub(crate) fn in_factory() -> bool {
    FACTORY_DEPTH.with(Cell::get) > 0
}

/// Unwinds out of the running factory with a cycle, without printing a second panic message;
/// the creation that catches the unwind returns `Err(Cycle)`.
pub(crate) fn unwind_with_cycle(path: Vec<String>, message: String) -> ! {
    PENDING_CYCLE.with(|p| p.set(Some(path)));
    panic::resume_unwind(Box::new(message))
}

/// Returns a `#[singleton]` type's live instance (a reference with an access counted), creating
/// it with the type's factory if there is none.
pub(crate) fn get_or_make(entry: &Arc<Entry>) -> Result<Ref> {
    let registration = entry.registration.expect("only a #[singleton] type's entry has a factory");
    match get_or_create(entry, registration.create) {
        Ok(result) => result,
        Err(_) => unreachable!("a #[singleton] type's entry is never detached"),
    }
}

/// Returns the entry's live instance (a reference with an access counted), creating it with
/// `make` if there is none.
///
/// `make` runs at most once per creation, on the calling thread, with no lock held. If it fails
/// or panics, nothing is stored and the next caller tries again.
///
/// `Err(make)` when the entry was [detached](detach_if_idle) from its core's map before this
/// call could claim it: the caller looks the name up again.
pub(crate) fn get_or_create<M>(entry: &Arc<Entry>, make: M) -> std::result::Result<Result<Ref>, M>
where
    M: FnOnce() -> std::result::Result<SingletonValue, BoxError>,
{
    let me = thread::current().id();
    let k = key(entry);
    loop {
        // Handles are taken with no lock held: taking one can release a node that was retired
        // meanwhile, and that runs the value's `Drop`, which may use singletons.
        if let Some(live) = entry.slot.get(true) {
            return Ok(Ok(live));
        }
        let mut g = graph();
        if entry.slot.is_some() {
            continue;
        }
        if !entry.attached.load(Ordering::Relaxed) {
            return Err(make);
        }
        match g.owners.get(&k).copied() {
            None => {
                g.owners.insert(k, me);
                g.threads.entry(me).or_default().stack.push((k, entry.name.clone()));
                break;
            }
            Some(owner) => {
                if let Some(path) = find_cycle(&g, me, owner, k, &entry.name) {
                    return Ok(Err(SingletonError::Cycle { path }));
                }
                g.threads.entry(me).or_default().waiting_for = Some(k);
                g = CREATED.wait(g).unwrap_or_else(PoisonError::into_inner);
                forget_wait(&mut g, me);
            }
        }
    }

    FACTORY_DEPTH.with(|d| d.set(d.get() + 1));
    PENDING_CYCLE.with(Cell::take);
    let started = Instant::now();
    let outcome = panic::catch_unwind(AssertUnwindSafe(make));
    let took = started.elapsed();
    FACTORY_DEPTH.with(|d| d.set(d.get() - 1));
    // Only an unwind out of this factory reports a cycle: one that the factory caught and
    // recovered from must not stay behind for the next creation.
    let pending_cycle = PENDING_CYCLE.with(Cell::take);
    crate::metrics::creation(entry, crate::metrics::Outcome::of(&outcome, pending_cycle.is_some()), took);

    let result = match outcome {
        // Stored before the claim ends, so a waiter that wakes finds it.
        Ok(Ok(value)) => Ok(entry.slot.fill(value.into_meta(Some(took)))),
        Ok(Err(source)) => Err(factory_error(&entry.name, source)),
        Err(payload) => match pending_cycle {
            Some(path) => Err(SingletonError::Cycle { path }),
            None => {
                release(me, k);
                panic::resume_unwind(payload)
            }
        },
    };
    release(me, k);
    match &result {
        // The instance is ours unless a `set` stored one while the factory ran (then that wins).
        Ok(live) if live.meta().init_duration == Some(took) => tracing::info!(
            singleton = &*entry.name,
            r#type = live.meta().type_name,
            init_ms = took.as_secs_f64() * 1e3,
            "singleton created"
        ),
        Ok(_) => {
            tracing::debug!(singleton = &*entry.name, "singleton created, but a value set meanwhile won")
        }
        Err(err) => tracing::warn!(singleton = &*entry.name, error = %err, "singleton creation failed"),
    }
    Ok(result)
}

/// Marks an entry as removed from its core's map, if it holds no instance and nobody is creating
/// it or waiting for it; returns whether it did. A caller that finds the entry detached looks the
/// name up again, so no creation can end up in an entry the core no longer knows.
///
/// The emptiness is checked here, under the creation lock: a creation stores its instance before
/// it gives up its claim, so an entry seen empty and unclaimed here is empty for good.
pub(crate) fn detach_if_idle(entry: &Arc<Entry>) -> bool {
    let g = graph();
    let k = key(entry);
    let busy = g.owners.contains_key(&k) || g.threads.values().any(|t| t.waiting_for == Some(k));
    let idle = !busy && !entry.slot.is_some();
    if idle {
        entry.attached.store(false, Ordering::Relaxed);
    }
    idle
}

/// Ends this thread's claim on the entry and wakes the waiters.
fn release(me: ThreadId, k: Key) {
    let mut g = graph();
    g.owners.remove(&k);
    if let Some(state) = g.threads.get_mut(&me) {
        state.stack.pop();
        if state.stack.is_empty() && state.waiting_for.is_none() {
            g.threads.remove(&me);
        }
    }
    drop(g);
    CREATED.notify_all();
}

fn forget_wait(g: &mut Graph, me: ThreadId) {
    if let Some(state) = g.threads.get_mut(&me) {
        state.waiting_for = None;
        if state.stack.is_empty() {
            g.threads.remove(&me);
        }
    }
}

/// Follows the wait-for chain from `owner` (who is creating the entry `want`, named `name`).
/// If it leads back to `me`, returns the cycle's names in creation order, starting and ending
/// with the first singleton on the cycle that `me` is creating (`name` itself when `me` is the
/// owner), so each thread reports the cycle as seen from its own creations.
fn find_cycle(g: &Graph, me: ThreadId, owner: ThreadId, want: Key, name: &str) -> Option<Vec<String>> {
    let mut cycle = Vec::new();
    let (mut owner, mut want) = (owner, want);
    // Each thread appears at most once on a chain without a cycle through `me`.
    for _ in 0..=g.threads.len() {
        let state = g.threads.get(&owner)?;
        let from = state.stack.iter().position(|(k, _)| *k == want)?;
        let mine = cycle.len();
        cycle.extend(state.stack[from..].iter().map(|(_, n)| n.to_string()));
        if owner == me {
            debug_assert_eq!(cycle.first().map(String::as_str), Some(name));
            cycle.rotate_left(mine);
            let first = cycle[0].clone();
            cycle.push(first);
            return Some(cycle);
        }
        want = state.waiting_for?;
        owner = *g.owners.get(&want)?;
    }
    None
}

/// A factory's error, naming the singleton. A cycle found below the factory and passed up with
/// `?` stays a cycle: the path already names every singleton on it.
fn factory_error(name: &str, source: BoxError) -> SingletonError {
    match source.downcast::<SingletonError>() {
        Ok(inner) if matches!(*inner, SingletonError::Cycle { .. }) => *inner,
        Ok(inner) => SingletonError::Factory { name: name.to_owned(), source: inner },
        Err(source) => SingletonError::Factory { name: name.to_owned(), source },
    }
}
