//! Exactly-once creation, sync and async, with cycle detection instead of deadlock.
//!
//! Every creation, typed or name-keyed, sync or async, in any core, goes through this module.
//! One global bookkeeping lock records the creations in progress (one per entry), which entry each
//! creation is waiting for, and the tasks waiting for each creation. The lock is held only to read
//! and change that record, never while a factory runs or its future is polled, so factories may
//! ask for other singletons and unrelated singletons are created in parallel.
//!
//! # Who waits for whom
//!
//! While a factory runs (a sync factory's call, or each poll of an async factory's future), its
//! creation is the calling thread's *context* (a thread-local stack, since factories nest). When
//! code in that context asks for another singleton that is being created, the record gets an edge
//! "this creation waits for that one" for as long as the request lasts. Before it waits, the
//! request follows the edges from the creation it would wait for; if they lead back to its own
//! context, waiting could never end, and the request fails with [`SingletonError::Cycle`] instead.
//! Because the edges join creations rather than threads, the same rule covers a factory that asks
//! for itself, a cycle across threads, and a cycle across async tasks, which may move between
//! threads at every poll.
//!
//! # Async creations: one shared future
//!
//! An async creation is one boxed future, kept in the record while nobody polls it. Whoever asks
//! for the singleton registers its waker and, if the future is not being polled right now, takes it
//! out and polls it (with a waker that wakes every registered caller), then puts it back. So the
//! factory is called once however many tasks ask, and a caller that is dropped (cancelled) at any
//! `.await` loses nothing: its drop wakes the other callers, one of which polls the same future on;
//! with no caller left, the future waits in the record for the next one. A factory whose future
//! fails or panics stores nothing, and the next request starts afresh.
//!
//! Sync callers never wait for an async creation (they get [`SingletonError::NeedsAwait`]); async
//! callers may wait for a sync creation, woken when it ends.

use std::cell::Cell;
use std::collections::HashMap;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::Waker;
use std::time::{Duration, Instant};

use once_cell::sync::Lazy;

use crate::lifecycle::entry::{BoxFuture, Entry, Factory, SingletonValue};
use crate::memory::node::Ref;
use crate::{BoxError, Result, SingletonError};

use crate::lifecycle::context::{self, key, InFactory, Key};

mod async_get;
pub(crate) use async_get::AsyncGet;

#[derive(Default)]
struct Graph {
    /// The creations in progress, by entry.
    running: HashMap<Key, Running>,
    /// Which entries each running creation is asking for right now (a multiset).
    edges: HashMap<Key, Vec<Key>>,
    /// How many threads are blocked waiting for each entry's creation.
    blocked: HashMap<Key, usize>,
    /// How an async creation ended when another caller than the one that started it was polling
    /// it: for the caller that started it (by its waiter id), which has no factory left to retry
    /// with. A stored reference carries the access that caller will count.
    outcomes: HashMap<u64, Result<Ref>>,
    /// Ids for creations and waiters.
    next_id: u64,
}

struct Running {
    id: u64,
    /// Held so that the entry, and so its address (the key), cannot be reused while the record
    /// lasts.
    entry: Arc<Entry>,
    name: Box<str>,
    started: Instant,
    /// Tasks waiting for this creation, by waiter id.
    wakers: Vec<(u64, Waker)>,
    /// `true` for an async creation: a sync caller never waits for it, whether or not the call
    /// that started it is still alive.
    is_async: bool,
    /// An async creation's starting caller, while it waits: it has no factory left to retry
    /// with, so whoever ends the creation stores its outcome for it.
    starter: Option<u64>,
    /// An async creation's future while nobody polls it.
    future: Option<BoxFuture>,
}

impl Graph {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn add_edge(&mut self, from: Key, to: Key) {
        self.edges.entry(from).or_default().push(to);
    }

    fn remove_edge(&mut self, from: Key, to: Key) {
        if let Some(all) = self.edges.get_mut(&from) {
            if let Some(at) = all.iter().position(|k| *k == to) {
                all.swap_remove(at);
            }
            if all.is_empty() {
                self.edges.remove(&from);
            }
        }
    }

    /// If the creation of `want` (running) waits, through the edges, for the creation `me`, the
    /// cycle's names: from `want` to `me` and back to `want`, rotated to start at the outermost
    /// creation of this thread's context that is on the cycle.
    fn cycle(&self, me: Key, want: Key) -> Option<Vec<String>> {
        let mut parent: HashMap<Key, Key> = HashMap::new();
        let mut stack = vec![want];
        let mut found = want == me;
        while let Some(at) = stack.pop() {
            if found {
                break;
            }
            for &next in self.edges.get(&at).map_or(&[][..], Vec::as_slice) {
                if !self.running.contains_key(&next) || next == want || parent.contains_key(&next) {
                    continue;
                }
                parent.insert(next, at);
                if next == me {
                    found = true;
                    break;
                }
                stack.push(next);
            }
        }
        if !found {
            return None;
        }
        let mut keys = vec![me];
        while let Some(&up) = parent.get(keys.last().expect("not empty")) {
            keys.push(up);
        }
        keys.reverse(); // want, ..., me
        let outermost = context::outermost_of(&keys);
        if let Some(at) = outermost.and_then(|o| keys.iter().position(|k| *k == o)) {
            keys.rotate_left(at);
        }
        let mut path: Vec<String> = keys.iter().map(|k| self.running[k].name.to_string()).collect();
        path.push(path[0].clone());
        Some(path)
    }

    /// Ends the creation of `k` (if it is still creation `id`), and returns who to wake.
    fn finish(&mut self, k: Key, id: u64) -> Vec<Waker> {
        match self.running.get(&k) {
            Some(run) if run.id == id => {}
            _ => return Vec::new(),
        }
        let run = self.running.remove(&k).expect("checked");
        run.wakers.into_iter().map(|(_, w)| w).collect()
    }
}

static GRAPH: Lazy<Mutex<Graph>> = Lazy::new(Mutex::default);

/// Ends a creation however the code that runs it ends: if anything between starting it and
/// ending it panics (a value's `Drop` run by `fill`, say), the creation still ends and its
/// waiters are woken, rather than waiting for good.
struct Finishing {
    k: Key,
    id: u64,
}

impl Finishing {
    /// How long the creation has run so far.
    fn took(&self) -> Duration {
        graph()
            .running
            .get(&self.k)
            .filter(|r| r.id == self.id)
            .map_or(Duration::ZERO, |r| r.started.elapsed())
    }

    /// Ends it now, under the caller's lock; returns who to wake.
    fn finish(self, g: &mut Graph) -> Vec<Waker> {
        let wakers = g.finish(self.k, self.id);
        std::mem::forget(self);
        wakers
    }
}

impl Drop for Finishing {
    fn drop(&mut self) {
        let wakers = graph().finish(self.k, self.id);
        wake_all(wakers);
    }
}
/// Woken whenever a creation ends, successfully or not.
static CREATED: Condvar = Condvar::new();

fn graph() -> MutexGuard<'static, Graph> {
    // Every change to the record is made of single map operations with no user code between
    // them, so it is consistent even if a thread panicked while holding the lock.
    GRAPH.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Wakes the callers of creations that ended, with no lock held.
fn wake_all(wakers: Vec<Waker>) {
    for waker in wakers {
        waker.wake();
    }
    CREATED.notify_all();
}

thread_local! {
    /// A cycle found below a factory that could only report it by panicking (an infallible
    /// factory calling `instance()`); the creation that catches the unwind turns it back into
    /// `Err(Cycle)`.
    static PENDING_CYCLE: Cell<Option<Vec<String>>> = const { Cell::new(None) };
}

pub(crate) use crate::lifecycle::context::in_factory;

/// Unwinds out of the running factory with a cycle, without printing a second panic message;
/// the creation that catches the unwind returns `Err(Cycle)`.
pub(crate) fn unwind_with_cycle(path: Vec<String>, message: String) -> ! {
    PENDING_CYCLE.with(|p| p.set(Some(path)));
    panic::resume_unwind(Box::new(message))
}

/// Runs `f` (a factory call or a poll) in `entry`'s context, catching a panic; also returns a
/// cycle that unwound out of it.
fn run_factory<R>(
    entry: &Arc<Entry>,
    f: impl FnOnce() -> R,
) -> (std::thread::Result<R>, Option<Vec<String>>) {
    let context = InFactory::enter(entry);
    PENDING_CYCLE.with(Cell::take);
    let outcome = panic::catch_unwind(AssertUnwindSafe(f));
    drop(context);
    // Only an unwind out of this factory reports a cycle: one that the factory caught and
    // recovered from must not stay behind for the next creation.
    let cycle = PENDING_CYCLE.with(Cell::take);
    (outcome, cycle)
}

/// An edge from this thread's context to the entry it asks for, removed when dropped.
struct Edge(Option<(Key, Key)>);

impl Edge {
    fn add(&mut self, g: &mut Graph, to: Key) {
        if self.0.is_none() {
            if let Some(from) = context::factory() {
                g.add_edge(from, to);
                self.0 = Some((from, to));
            }
        }
    }

    fn remove(&mut self, g: &mut Graph) {
        if let Some((from, to)) = self.0.take() {
            g.remove_edge(from, to);
        }
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        if self.0.is_some() {
            self.remove(&mut graph());
        }
    }
}

/// Returns a `#[singleton]` type's live instance (a reference with an access counted), creating
/// it with the type's sync factory if there is none. An async type's is `Err(NeedsAwait)`.
pub(crate) fn get_or_make(entry: &Arc<Entry>) -> Result<Ref> {
    let registration = entry.registration.expect("only a #[singleton] type's entry has a factory");
    let Some(create) = registration.sync_factory() else {
        return match entry.slot.get(true) {
            Some(live) => Ok(live),
            None => Err(SingletonError::NeedsAwait { name: entry.name.to_string() }),
        };
    };
    match get_or_create(entry, create) {
        Ok(result) => result,
        Err(_) => unreachable!("a #[singleton] type's entry is never detached"),
    }
}

/// [`get_or_make`] from async code: an async type's factory is awaited, or its creation in
/// progress joined.
pub(crate) async fn get_or_make_async(entry: Arc<Entry>) -> Result<Ref> {
    let registration = entry.registration.expect("only a #[singleton] type's entry has a factory");
    let Factory::Async(make) = registration.factory else {
        return get_or_make(&entry);
    };
    let mut get = AsyncGet::new(entry, make);
    match std::future::poll_fn(|cx| get.poll_get(cx)).await {
        Ok(result) => result,
        Err(Detached) => unreachable!("a #[singleton] type's entry is never detached"),
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
    let k = key(entry);
    // Declared before the lock guards below, so it is dropped after them.
    let mut edge = Edge(None);
    let id = loop {
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
        let Some(run) = g.running.get(&k) else {
            let id = g.id();
            let run = Running {
                id,
                entry: Arc::clone(entry),
                name: entry.name.clone(),
                started: Instant::now(),
                wakers: Vec::new(),
                is_async: false,
                starter: None,
                future: None,
            };
            g.running.insert(k, run);
            edge.add(&mut g, k);
            entry.clear_dependencies();
            break id;
        };
        if let Some(me) = context::factory() {
            if let Some(path) = g.cycle(me, k) {
                return Ok(Err(SingletonError::Cycle { path }));
            }
        }
        if run.is_async {
            // Its future runs only when an async caller polls it: waiting here could be for ever
            // (and would park a thread an async runtime needs to drive it).
            return Ok(Err(SingletonError::NeedsAwait { name: entry.name.to_string() }));
        }
        edge.add(&mut g, k);
        *g.blocked.entry(k).or_default() += 1;
        g = CREATED.wait(g).unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = g.blocked.get_mut(&k) {
            *n -= 1;
            if *n == 0 {
                g.blocked.remove(&k);
            }
        }
    };

    // Declared after `edge`, so it is dropped (and the creation ended) before the edge goes.
    let finishing = Finishing { k, id };
    let started = Instant::now();
    let (outcome, pending_cycle) = run_factory(entry, make);
    let took = started.elapsed();
    let metric = crate::lifecycle::events::Outcome::of(&outcome, pending_cycle.is_some());
    if !matches!(outcome, Ok(Ok(_))) {
        entry.clear_dependencies();
    }
    let result = match outcome {
        // Stored before the creation ends, so a waiter that wakes finds it.
        // A value of another type than the registered one (only a hand-made descriptor's
        // factory can make one) is refused: `with_instance` relies on it.
        Ok(Ok(value)) => match entry.check_type(value.type_id, value.type_name) {
            Ok(()) => Ok(entry.slot.fill(value.into_meta(Some(took)))),
            Err(err) => Err(err),
        },
        Ok(Err(source)) => Err(factory_error(&entry.name, source)),
        Err(payload) => match pending_cycle {
            Some(path) => Err(SingletonError::Cycle { path }),
            None => {
                drop(finishing);
                crate::lifecycle::events::creation(&entry.metric_label, metric, took);
                panic::resume_unwind(payload)
            }
        },
    };
    let wakers = {
        let mut g = graph();
        edge.remove(&mut g);
        finishing.finish(&mut g)
    };
    wake_all(wakers);
    // The recorder is called with no lock held, after the creation ended.
    crate::lifecycle::events::creation(&entry.metric_label, metric, took);
    log_outcome(entry, &result, took);
    Ok(result)
}

fn log_outcome(entry: &Entry, result: &Result<Ref>, took: Duration) {
    match result {
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
}

/// The entry was removed from its core's map: the caller looks the name up again.
pub(crate) struct Detached;

/// Ends the parked async creations of `entries`, whose core or scope is going away: nobody can
/// ask for them any more, so their futures are dropped (with no lock held) instead of waiting in
/// the record for good. A creation that a caller is polling right now ends as usual.
pub(crate) fn abandon<'a>(entries: impl IntoIterator<Item = &'a Arc<Entry>>) {
    let mut ended = Vec::new();
    let mut wakers = Vec::new();
    {
        let mut g = graph();
        for entry in entries {
            let k = key(entry);
            let parked =
                g.running.get(&k).is_some_and(|r| Arc::ptr_eq(&r.entry, entry) && r.future.is_some());
            if parked {
                let run = g.running.remove(&k).expect("checked");
                wakers.extend(run.wakers.iter().map(|(_, w)| w.clone()));
                // The caller that started it, if it still waits, has no factory to retry with.
                if let Some(starter) = run.starter {
                    g.outcomes.insert(starter, Err(abandoned(&run.name)));
                }
                ended.push(run);
            }
        }
    }
    // The futures (and the requests inside them) let go of their records here.
    drop(ended);
    wake_all(wakers);
}

/// How a creation ends for its starting caller when the core or scope it runs in goes away.
fn abandoned(name: &str) -> SingletonError {
    SingletonError::Factory {
        name: name.to_owned(),
        source: "the creation was abandoned: its core or test scope went away before it ended".into(),
    }
}

/// Marks an entry as removed from its core's map, if it holds no instance and nobody is creating
/// it or waiting for it; returns whether it did. A caller that finds the entry detached looks the
/// name up again, so no creation can end up in an entry the core no longer knows.
///
/// The emptiness is checked here, under the creation lock: a creation stores its instance before
/// it ends, so an entry seen empty and not being created here is empty for good.
pub(crate) fn detach_if_idle(entry: &Arc<Entry>) -> bool {
    let g = graph();
    let k = key(entry);
    let busy = g.running.contains_key(&k) || g.blocked.contains_key(&k);
    let idle = !busy && !entry.slot.is_some();
    if idle {
        entry.attached.store(false, Ordering::Relaxed);
    }
    idle
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
