//! Graceful shutdown: the `on_shutdown` hooks of a core's instances, dependents first, within a
//! deadline, before the instances are let go (which `teardown` does).
//!
//! # The schedule
//!
//! A singleton's hook starts once the hooks of everything that depends on it have ended, so a
//! client is closed while its config and pool are still open. Hooks free to start at the same
//! time run concurrently, all polled in the calling task (so a hook may use the caller's runtime).
//! If only a cycle of dependencies is left, its newest member starts first, as teardown breaks
//! cycles. A sync hook runs inline and is not cut short. At the deadline, the async hooks still
//! running are abandoned (their futures dropped, so they hold nothing) and reported `timed_out`,
//! and those not started are `not_started`. A hook that panics is caught and reported `panicked`.
//!
//! # The timer
//!
//! The deadline is a `futures_timer::Delay`: a small crate with no runtime of its own (one
//! global timer thread), so shutdown works under tokio's multi-thread and current-thread
//! runtimes and under `futures::executor::block_on` alike, as the rest of the core does. A timer
//! from the caller's runtime would tie the core to it.

use std::collections::HashMap;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use serde::ser::{Serialize, SerializeStruct, Serializer};

use crate::lifecycle::hooks::{Hook, HookFuture};
use crate::lifecycle::join::CatchUnwind;
use crate::memory::instance::AnyInstance;
use crate::units::millis;

/// How one instance's shutdown went, in a [`ShutdownReport`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HookOutcome {
    /// Its `on_shutdown` hook ran to its end.
    Closed,
    /// Its async hook was still running at the deadline, and was abandoned.
    TimedOut,
    /// Its hook panicked (caught).
    Panicked,
    /// The deadline passed before its hook could start (its dependents' hooks were still
    /// running).
    NotStarted,
    /// It has no `on_shutdown` hook (every run-time entry, and `#[singleton]` types without one).
    NoHook,
}

impl HookOutcome {
    /// The name the JSON uses: `"closed"`, `"timed_out"`, `"panicked"`, `"not_started"` or
    /// `"no_hook"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::TimedOut => "timed_out",
            Self::Panicked => "panicked",
            Self::NotStarted => "not_started",
            Self::NoHook => "no_hook",
        }
    }
}

/// One instance in a [`ShutdownReport`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct HookReport {
    /// The singleton's name.
    pub name: String,
    /// How its hook went.
    pub outcome: HookOutcome,
    /// How long its hook ran (zero when it had none or did not start).
    pub duration: Duration,
}

/// What [`SingletonCore::shutdown_async`](crate::SingletonCore::shutdown_async) did: one item per
/// instance the core held, sorted by name, and how many instances it then let go.
///
/// It serializes as `{"released": <count>, "ms": <total>, "hooks": [{"name", "outcome", "ms"}]}`.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// How many instances were let go after the hooks.
    pub released: usize,
    /// How long the whole shutdown took.
    pub duration: Duration,
    /// Each instance the core held, sorted by name.
    pub hooks: Vec<HookReport>,
}

impl Serialize for HookReport {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_struct("HookReport", 3)?;
        out.serialize_field("name", &self.name)?;
        out.serialize_field("outcome", self.outcome.as_str())?;
        out.serialize_field("ms", &millis(self.duration))?;
        out.end()
    }
}

impl Serialize for ShutdownReport {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_struct("ShutdownReport", 3)?;
        out.serialize_field("released", &self.released)?;
        out.serialize_field("ms", &millis(self.duration))?;
        out.serialize_field("hooks", &self.hooks)?;
        out.end()
    }
}

/// One live instance to be shut down: its name, what it depends on, its creation order, and its
/// hook with a handle to it.
pub(crate) struct Planned {
    pub(crate) name: Box<str>,
    pub(crate) dependencies: Vec<Box<str>>,
    pub(crate) seq: u64,
    pub(crate) hook: Option<(Hook, AnyInstance)>,
}

/// The dependency order of a plan: for each instance, the instances it depends on (within the
/// plan), and how many of its dependents have not ended yet.
struct Order {
    needs: Vec<Vec<usize>>,
    waiting: Vec<usize>,
}

impl Order {
    fn of(plan: &[Planned]) -> Self {
        let index: HashMap<&str, usize> = plan.iter().enumerate().map(|(i, p)| (&*p.name, i)).collect();
        let mut needs = vec![Vec::new(); plan.len()];
        let mut waiting = vec![0; plan.len()];
        for (i, p) in plan.iter().enumerate() {
            for dep in &p.dependencies {
                if let Some(&j) = index.get(&**dep) {
                    if j != i && !needs[i].contains(&j) {
                        needs[i].push(j);
                        waiting[j] += 1;
                    }
                }
            }
        }
        Self { needs, waiting }
    }

    /// `i` ended: what it depends on waits for one dependent fewer.
    fn ended(&mut self, i: usize) {
        for &j in &self.needs[i] {
            self.waiting[j] -= 1;
        }
    }
}

/// Runs a sync hook inline, catching a panic.
fn run_sync(hook: &dyn crate::lifecycle::hooks::SyncHook, instance: &AnyInstance, name: &str) -> HookOutcome {
    match panic::catch_unwind(AssertUnwindSafe(|| hook.run(instance))) {
        Ok(()) => HookOutcome::Closed,
        Err(payload) => {
            let message = crate::error::panic_message(payload.as_ref());
            tracing::error!(singleton = name, panic = %message, "on_shutdown hook panicked");
            HookOutcome::Panicked
        }
    }
}

/// Runs the hooks of `plan` in dependency order, within `deadline`; returns each instance's
/// outcome, in the plan's order.
pub(crate) async fn run(mut plan: Vec<Planned>, deadline: Duration) -> Vec<HookReport> {
    let n = plan.len();
    let mut order = Order::of(&plan);
    let mut outcome: Vec<Option<(HookOutcome, Duration)>> = vec![None; n];
    let mut started = vec![false; n];
    type Running = (usize, Instant, Pin<Box<CatchUnwind<HookFuture<()>>>>);
    let mut running: Vec<Running> = Vec::new();
    let mut timer = futures_timer::Delay::new(deadline);
    std::future::poll_fn(|cx| loop {
        // Start what is free to start: newest first, as teardown orders them.
        let mut ready: Vec<usize> = (0..n).filter(|&i| !started[i] && order.waiting[i] == 0).collect();
        if ready.is_empty() && running.is_empty() {
            // Only cycles are left (or nothing): the newest of them starts.
            ready.extend((0..n).filter(|&i| !started[i]).max_by_key(|&i| plan[i].seq));
        }
        if ready.is_empty() && running.is_empty() {
            return Poll::Ready(());
        }
        crate::order::sort_newest_first(&mut ready, |&i| plan[i].seq);
        let mut ended_now = false;
        for i in ready {
            started[i] = true;
            let at = Instant::now();
            match plan[i].hook.take() {
                None => {
                    outcome[i] = Some((HookOutcome::NoHook, Duration::ZERO));
                    order.ended(i);
                    ended_now = true;
                }
                Some((Hook::Sync(hook), instance)) => {
                    let result = run_sync(hook, &instance, &plan[i].name);
                    drop(instance);
                    outcome[i] = Some((result, at.elapsed()));
                    order.ended(i);
                    ended_now = true;
                }
                Some((Hook::Async(hook), instance)) => {
                    match panic::catch_unwind(AssertUnwindSafe(|| hook.start(instance))) {
                        Ok(future) => running.push((i, at, Box::pin(CatchUnwind(future)))),
                        Err(_) => {
                            outcome[i] = Some((HookOutcome::Panicked, at.elapsed()));
                            order.ended(i);
                            ended_now = true;
                        }
                    }
                }
            }
        }
        // Poll the running hooks; those that end free what they depend on.
        let mut k = 0;
        while k < running.len() {
            let (i, at, future) = &mut running[k];
            match future.as_mut().poll(cx) {
                Poll::Pending => k += 1,
                Poll::Ready(result) => {
                    let i = *i;
                    let result = match result {
                        Ok(()) => HookOutcome::Closed,
                        Err(payload) => {
                            let message = crate::error::panic_message(payload.as_ref());
                            tracing::error!(singleton = &*plan[i].name, panic = %message, "on_shutdown hook panicked");
                            HookOutcome::Panicked
                        }
                    };
                    outcome[i] = Some((result, at.elapsed()));
                    running.swap_remove(k);
                    order.ended(i);
                    ended_now = true;
                }
            }
        }
        if ended_now {
            continue;
        }
        // Nothing ended: wait for a hook, or for the deadline.
        if Pin::new(&mut timer).poll(cx).is_ready() {
            for (i, at, _) in running.drain(..) {
                tracing::warn!(singleton = &*plan[i].name, ?deadline, "on_shutdown hook abandoned at the deadline");
                outcome[i] = Some((HookOutcome::TimedOut, at.elapsed()));
            }
            for i in 0..n {
                if !started[i] {
                    started[i] = true;
                    outcome[i] = Some((HookOutcome::NotStarted, Duration::ZERO));
                }
            }
            return Poll::Ready(());
        }
        return Poll::Pending;
    })
    .await;
    plan.into_iter()
        .zip(outcome)
        .map(|(p, o)| {
            let (outcome, duration) = o.unwrap_or((HookOutcome::NotStarted, Duration::ZERO));
            HookReport { name: p.name.into(), outcome, duration }
        })
        .collect()
}

/// The sync form: the sync hooks in the same order, inline; async hooks are skipped (a warn
/// event names each).
pub(crate) fn run_sync_hooks(plan: Vec<Planned>) {
    let n = plan.len();
    let mut order = Order::of(&plan);
    let mut done = vec![false; n];
    while let Some(i) = (0..n)
        .filter(|&i| !done[i] && order.waiting[i] == 0)
        .max_by_key(|&i| plan[i].seq)
        .or_else(|| (0..n).filter(|&i| !done[i]).max_by_key(|&i| plan[i].seq))
    {
        done[i] = true;
        match &plan[i].hook {
            Some((Hook::Sync(hook), instance)) => {
                run_sync(*hook, instance, &plan[i].name);
            }
            Some((Hook::Async(_), _)) => tracing::warn!(
                singleton = &*plan[i].name,
                "on_shutdown hook is async: skipped by the sync shutdown(); use shutdown_async"
            ),
            None => {}
        }
        order.ended(i);
    }
}
