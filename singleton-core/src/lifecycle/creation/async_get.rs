//! An async request for an entry's instance: one caller of the shared creation, which starts
//! it, joins it, or polls its future on when nobody else does.

use std::panic;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use super::{
    abandoned, factory_error, graph, key, log_outcome, run_factory, wake_all, Detached, Edge, Finishing,
    Graph, Key, Running,
};
use crate::lifecycle::context;
use crate::lifecycle::entry::{BoxFuture, Entry};
use crate::lifecycle::events::Outcome;
use crate::memory::node::Ref;
use crate::{Result, SingletonError};

/// One request for an entry's instance from async code: a caller of the shared creation.
///
/// Poll it with [`poll_get`](Self::poll_get). Dropping it before it is ready (cancelling) is
/// always safe: its registration is removed, and the other callers are woken to poll the shared
/// future on.
pub(crate) struct AsyncGet<M> {
    entry: Arc<Entry>,
    /// Starts the creation; taken by the caller that starts it.
    make: Option<M>,
    /// This caller's id among the waiters of the entry's creation, once it registered.
    waiter: Option<u64>,
    edge: Edge,
}

impl<M> AsyncGet<M>
where
    M: FnOnce() -> BoxFuture,
{
    pub(crate) fn new(entry: Arc<Entry>, make: M) -> Self {
        Self { entry, make: Some(make), waiter: None, edge: Edge(None) }
    }

    /// The factory, if this caller did not start a creation with it (after `Err(Detached)`, it
    /// never did).
    pub(crate) fn take_make(&mut self) -> Option<M> {
        self.make.take()
    }

    /// The instance (a reference with an access counted) once there is one, the creation's
    /// error, or `Err(Detached)`.
    pub(crate) fn poll_get(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<std::result::Result<Result<Ref>, Detached>> {
        let k = key(&self.entry);
        loop {
            if let Some(live) = self.entry.slot.get(true) {
                self.unregister();
                return Poll::Ready(Ok(Ok(live)));
            }
            let mut g = graph();
            if self.entry.slot.is_some() {
                continue;
            }
            if let Some(outcome) = self.waiter.and_then(|w| g.outcomes.remove(&w)) {
                self.leave(&mut g, k);
                return Poll::Ready(Ok(outcome));
            }
            if !self.entry.attached.load(Ordering::Relaxed) {
                self.leave(&mut g, k);
                return Poll::Ready(Err(Detached));
            }
            let waiter = match self.waiter {
                Some(w) => w,
                None => {
                    let w = g.id();
                    self.waiter = Some(w);
                    w
                }
            };
            if !g.running.contains_key(&k) {
                let Some(make) = self.make.take() else {
                    // Only the caller that started a creation has no factory left. Whoever ends
                    // its creation stores the outcome for it in `outcomes` (read above), and
                    // `abandon` does too: this is not reached.
                    debug_assert!(false, "a starter's creation ended with no outcome for it");
                    self.leave(&mut g, k);
                    return Poll::Ready(Ok(Err(abandoned(&self.entry.name))));
                };
                let id = g.id();
                let run = Running {
                    id,
                    entry: Arc::clone(&self.entry),
                    name: self.entry.name.clone(),
                    started: Instant::now(),
                    wakers: vec![(waiter, cx.waker().clone())],
                    is_async: true,
                    starter: Some(waiter),
                    future: None,
                };
                g.running.insert(k, run);
                self.edge.add(&mut g, k);
                drop(g);
                self.entry.clear_dependencies();
                // The factory is called (its future made) in the creation's context, with no lock.
                let (made, cycle) = run_factory(&self.entry, make);
                return match made {
                    Ok(future) => self.drive(future, id, cx),
                    Err(payload) => self.failed(id, payload, cycle),
                };
            }
            if let Some(me) = context::factory() {
                if let Some(path) = g.cycle(me, k) {
                    self.leave(&mut g, k);
                    return Poll::Ready(Ok(Err(SingletonError::Cycle { path })));
                }
            }
            self.edge.add(&mut g, k);
            let run = g.running.get_mut(&k).expect("checked");
            let id = run.id;
            match run.wakers.iter_mut().find(|(w, _)| *w == waiter) {
                Some((_, w)) => w.clone_from(cx.waker()),
                None => run.wakers.push((waiter, cx.waker().clone())),
            }
            // Nobody polls the creation's future right now: this caller does.
            return match run.future.take() {
                Some(future) => {
                    drop(g);
                    self.drive(future, id, cx)
                }
                None => Poll::Pending,
            };
        }
    }

    /// Polls the shared creation `id`'s future once, in its context.
    fn drive(
        &mut self,
        mut future: BoxFuture,
        id: u64,
        _cx: &mut Context<'_>,
    ) -> Poll<std::result::Result<Result<Ref>, Detached>> {
        let k = key(&self.entry);
        let waker = Waker::from(Arc::new(Notify { key: k, id }));
        let mut ncx = Context::from_waker(&waker);
        let (polled, cycle) = run_factory(&self.entry, || future.as_mut().poll(&mut ncx));
        let value = match polled {
            Ok(Poll::Pending) => {
                let mut g = graph();
                if let Some(run) = g.running.get_mut(&k).filter(|r| r.id == id) {
                    run.future = Some(future);
                }
                return Poll::Pending;
            }
            Ok(Poll::Ready(value)) => value,
            Err(payload) => {
                drop(future);
                return self.failed(id, payload, cycle);
            }
        };
        drop(future);
        // From here the creation ends even if something below panics.
        let finishing = Finishing { k, id };
        let took = finishing.took();
        let metric = if value.is_ok() { Outcome::Ok } else { Outcome::Error };
        let result = match value {
            // Stored before the creation ends, so a waiter that wakes finds it.
            // Refused if not of the registered type, as a sync creation does.
            Ok(value) => match self.entry.check_type(value.type_id, value.type_name) {
                Ok(()) => Ok(self.entry.slot.fill(value.into_meta(Some(took)))),
                Err(err) => Err(err),
            },
            Err(source) => {
                self.entry.clear_dependencies();
                Err(factory_error(&self.entry.name, source))
            }
        };
        // The caller that started the creation is told how it ended, unless that is this one
        // (or it is gone). It gets the instance this creation made, even if a `delete` took it
        // out of the slot meanwhile: its creation succeeded, and a handle outlives a `delete`.
        let for_starter = Some(match &result {
            Ok(live) => Ok(live.clone_counted()),
            Err(err) => Err(share(&self.entry.name, err)),
        });
        self.end(finishing, for_starter, metric, took);
        log_outcome(&self.entry, &result, took);
        Poll::Ready(Ok(result))
    }

    /// Ends the creation this caller drove: stores `for_starter` for the caller that started it
    /// (if that caller is still waiting and is not this one; else lets go of it with no lock
    /// held), removes this caller's registration, wakes the others, and then records the metric.
    fn end(
        &mut self,
        finishing: Finishing,
        for_starter: Option<Result<Ref>>,
        metric: Outcome,
        took: Duration,
    ) {
        let k = finishing.k;
        let mut g = graph();
        let starter = g.running.get(&k).filter(|r| r.id == finishing.id).and_then(|r| r.starter);
        let unclaimed = match (starter, for_starter) {
            (Some(starter), Some(outcome)) if Some(starter) != self.waiter => {
                g.outcomes.insert(starter, outcome);
                None
            }
            (_, outcome) => outcome,
        };
        let wakers = finishing.finish(&mut g);
        self.leave(&mut g, k);
        drop(g);
        forget_outcome(unclaimed);
        wake_all(wakers);
        // The recorder is called with no lock held, after the creation ended.
        crate::lifecycle::events::creation(&self.entry.metric_label, metric, took);
    }

    /// The factory (or a poll of its future) panicked: nothing is stored, the next caller starts
    /// afresh. A cycle that unwound out of it is this caller's error; any other panic goes on.
    fn failed(
        &mut self,
        id: u64,
        payload: Box<dyn std::any::Any + Send>,
        cycle: Option<Vec<String>>,
    ) -> Poll<std::result::Result<Result<Ref>, Detached>> {
        let k = key(&self.entry);
        let finishing = Finishing { k, id };
        self.entry.clear_dependencies();
        let outcome = if cycle.is_some() { Outcome::Error } else { Outcome::Panic };
        let err = cycle.map(|path| SingletonError::Cycle { path });
        // The caller that started it has no factory left to retry with: it learns why.
        let for_starter = match &err {
            Some(err) => share(&self.entry.name, err),
            None => SingletonError::Factory {
                name: self.entry.name.to_string(),
                source: format!("the factory panicked: {}", crate::error::panic_message(payload.as_ref()))
                    .into(),
            },
        };
        let took = finishing.took();
        self.end(finishing, Some(Err(for_starter)), outcome, took);
        match err {
            Some(err) => {
                tracing::warn!(singleton = &*self.entry.name, error = %err, "singleton creation failed");
                Poll::Ready(Ok(Err(err)))
            }
            None => {
                tracing::warn!(singleton = &*self.entry.name, "singleton factory panicked");
                panic::resume_unwind(payload)
            }
        }
    }

    /// Removes this caller's registration and edge (under the lock). An outcome stored for it
    /// cannot be left by then: it is taken before.
    fn leave(&mut self, g: &mut Graph, k: Key) {
        self.edge.remove(g);
        if let Some(w) = self.waiter.take() {
            debug_assert!(!g.outcomes.contains_key(&w));
            if let Some(run) = g.running.get_mut(&k) {
                run.wakers.retain(|(id, _)| *id != w);
                // Whoever ends the creation must not store an outcome for a caller that is gone.
                if run.starter == Some(w) {
                    run.starter = None;
                }
            }
        }
    }

    fn unregister(&mut self) {
        if self.waiter.is_some() || self.edge.0.is_some() {
            let k = key(&self.entry);
            let mut g = graph();
            let stale = self.waiter.and_then(|w| g.outcomes.remove(&w));
            self.leave(&mut g, k);
            drop(g);
            forget_outcome(stale);
        }
    }
}

impl<M> Drop for AsyncGet<M> {
    /// Cancelled: let the others know, so that one of them polls the shared future on.
    fn drop(&mut self) {
        let Some(w) = self.waiter.take() else { return };
        let k = key(&self.entry);
        let mut g = graph();
        self.edge.remove(&mut g);
        let stale = g.outcomes.remove(&w);
        let mut wake = Vec::new();
        if let Some(run) = g.running.get_mut(&k) {
            run.wakers.retain(|(id, _)| *id != w);
            if run.starter == Some(w) {
                run.starter = None;
            }
            if run.future.is_some() {
                wake = run.wakers.iter().map(|(_, w)| w.clone()).collect();
            }
        }
        drop(g);
        forget_outcome(stale);
        for waker in wake {
            waker.wake();
        }
    }
}

/// Lets go of an outcome that its caller will never return, with no lock held (dropping a
/// reference may drop the instance): its access is not counted.
fn forget_outcome(outcome: Option<Result<Ref>>) {
    if let Some(Ok(live)) = outcome {
        live.release_uncounted();
    }
}

/// The waker an async creation's future is polled with: wakes every caller of that creation.
struct Notify {
    key: Key,
    id: u64,
}

impl Wake for Notify {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let wakers: Vec<Waker> = match graph().running.get(&self.key) {
            Some(run) if run.id == self.id => run.wakers.iter().map(|(_, w)| w.clone()).collect(),
            _ => return,
        };
        for waker in wakers {
            waker.wake();
        }
    }
}

/// A copy of a creation's error for another caller: a cycle as it is, any other error as a
/// factory error with the same message.
fn share(name: &str, err: &SingletonError) -> SingletonError {
    match err {
        SingletonError::Cycle { path } => SingletonError::Cycle { path: path.clone() },
        SingletonError::Factory { name, source } => {
            SingletonError::Factory { name: name.clone(), source: source.to_string().into() }
        }
        other => SingletonError::Factory { name: name.to_owned(), source: other.to_string().into() },
    }
}
