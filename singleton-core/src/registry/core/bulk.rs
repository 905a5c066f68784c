//! The operations on every singleton at once: CLEAR/RESET_ALL, SHUTDOWN, and RESET of the limiter.

use std::sync::Arc;

use std::time::{Duration, Instant};

use super::{Denied, Shutting, SingletonCore};
use crate::lifecycle::creation;
use crate::lifecycle::shutdown::{self, Planned, ShutdownReport};
use crate::lifecycle::teardown::{self};
use crate::memory::instance::AnyInstance;
use crate::SingletonOperation;

impl SingletonCore {
    /// CLEAR: removes every instance, `#[singleton]` types' included, and returns how many. The
    /// core lets go of them dependents first: an instance is dropped before the ones its factory
    /// asked for, and among unrelated ones the newest first, so an instance is dropped before the
    /// ones created before it, which it may use. A `Drop` that panics is caught and logged, and
    /// still counts. `0` when rate-limited.
    ///
    /// ```
    /// use singleton_kit::SingletonCore;
    ///
    /// let core = SingletonCore::new();
    /// core.set("db", "postgres://localhost")?;
    /// core.set("cache", vec![1_u64, 2, 3])?;
    /// assert_eq!(core.clear(), 2);
    /// assert!(!core.has("db") && !core.has("cache"));
    /// assert_eq!(core.clear(), 0);
    /// # Ok::<(), singleton_kit::SingletonError>(())
    /// ```
    pub fn clear(&self) -> usize {
        self.clear_as(SingletonOperation::Clear)
    }

    /// RESET_ALL: the legacy name of [`clear`](Self::clear).
    ///
    /// ```
    /// use singleton_kit::SingletonCore;
    ///
    /// let core = SingletonCore::new();
    /// core.set("a", 1_u8)?;
    /// core.set("b", 2_u8)?;
    /// assert_eq!(core.reset_all(), 2);
    /// assert_eq!(core.stats()?.total_singletons, 0);
    /// # Ok::<(), singleton_kit::SingletonError>(())
    /// ```
    pub fn reset_all(&self) -> usize {
        self.clear_as(SingletonOperation::ResetAll)
    }

    fn clear_as(&self, operation: SingletonOperation) -> usize {
        self.try_clear(operation).unwrap_or(0)
    }

    /// CLEAR that says why it could not answer: what `execute` runs.
    pub(crate) fn try_clear(&self, operation: SingletonOperation) -> std::result::Result<usize, Denied> {
        self.gate(operation, None)?;
        Ok(self.release_all())
    }

    /// Lets go of every instance, one at a time: dependents before what they depend on,
    /// unrelated ones newest first, each dropped while what it depends on is still in its slot
    /// (see [`teardown`](crate::lifecycle::teardown)). Then the run-time names left empty leave the map.
    pub(super) fn release_all(&self) -> usize {
        let all = || {
            let mut all = Vec::new();
            self.for_each_entry(|_, entry| all.push(Arc::clone(entry)));
            all
        };
        let count = teardown::release(all, |entry, retired| self.released(entry, retired));
        // Keep the entries that hold an instance again, or are being created or waited for now.
        self.write().retain(|named| !named.entries().iter().all(creation::detach_if_idle));
        count
    }

    /// SHUTDOWN: runs the sync `on_shutdown` hooks of the live instances (dependents first;
    /// an async hook is skipped, with a warn event naming it: use
    /// [`shutdown_async`](Self::shutdown_async)), then lets go of every instance as
    /// [`clear`](Self::clear) does — dependents first, a panicking `Drop` caught and logged —
    /// but without the rate limit, for a server's graceful stop or a Lambda extension's shutdown
    /// event. Returns how many it let go; `0` when called again. Not final: a later
    /// `instance()` creates again. A call made while a shutdown of this core is running (from a
    /// hook, or another thread) does nothing and returns `0`.
    ///
    /// ```
    /// use singleton_kit::{RateLimit, SingletonCore};
    ///
    /// let core = SingletonCore::with_rate_limit(RateLimit::per_second(1));
    /// core.set("db", "postgres://localhost")?; // takes the one slot
    /// core.set_value("cache", singleton_kit::SingletonValue::new(0_u8)).unwrap_err(); // refused
    /// assert_eq!(core.clear(), 0); // refused too
    /// assert_eq!(core.shutdown(), 1); // not rate-limited
    /// assert_eq!(core.shutdown(), 0); // idempotent
    /// # Ok::<(), singleton_kit::SingletonError>(())
    /// ```
    pub fn shutdown(&self) -> usize {
        let Some(_running) = Shutting::begin(self) else { return 0 };
        tracing::debug!("singleton core shutdown");
        shutdown::run_sync_hooks(self.shutdown_plan());
        self.release_all()
    }

    /// GRACEFUL SHUTDOWN: runs the `on_shutdown` hooks of the live instances, sync and async,
    /// dependents first (a hook starts once the hooks of everything that depends on it have
    /// ended; independent ones run concurrently, polled in the calling task), all within
    /// `deadline`: an async hook still running then is abandoned and reported `timed_out`, one
    /// not started `not_started`; a panicking hook is caught and reported `panicked`. Then it lets
    /// go of every instance as [`shutdown`](Self::shutdown) does, without running hooks again.
    /// Hooks never run in [`clear`](Self::clear), `reset_all`, `delete` or `set`.
    ///
    /// It returns within `deadline` plus the sync hooks and the drops. A second call with
    /// nothing created since runs no hook and releases 0; a call made while one is running (from
    /// a hook, or another task) returns an empty report at once. The deadline is kept by a
    /// runtime-agnostic timer (see the `shutdown` module), so any executor can drive it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use singleton_kit::{HookOutcome, SingletonCore};
    ///
    /// let core = SingletonCore::new();
    /// core.set("cache", vec![1_u8])?;
    /// let report = futures::executor::block_on(core.shutdown_async(Duration::from_millis(400)));
    /// assert_eq!(report.released, 1);
    /// assert_eq!(report.hooks[0].outcome, HookOutcome::NoHook); // a run-time entry has none
    /// assert_eq!(futures::executor::block_on(core.shutdown_async(Duration::from_millis(400))).released, 0);
    /// # Ok::<(), singleton_kit::SingletonError>(())
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Dropping the future abandons the hooks running then (their futures are dropped) and lets
    /// go of nothing: the instances stay, and a later shutdown runs every hook again.
    pub async fn shutdown_async(&self, deadline: Duration) -> ShutdownReport {
        let Some(_running) = Shutting::begin(self) else { return ShutdownReport::default() };
        tracing::debug!(?deadline, "singleton core graceful shutdown");
        let started = Instant::now();
        let mut hooks = shutdown::run(self.shutdown_plan(), deadline).await;
        crate::order::sort_by_name(&mut hooks, |h| &h.name);
        let released = self.release_all();
        ShutdownReport { released, duration: started.elapsed(), hooks }
    }

    /// The live instances, each with its dependencies, creation order and hook.
    fn shutdown_plan(&self) -> Vec<Planned> {
        let mut plan = Vec::new();
        self.for_each_entry(|name, entry| {
            let Some(live) = entry.slot.get(false) else { return };
            let seq = live.meta().seq;
            let hook = entry.registration.and_then(|r| r.on_shutdown).map(|hook| hook());
            plan.push(Planned {
                name: name.into(),
                dependencies: entry.deps().clone(),
                seq,
                hook: hook.map(|hook| (hook, AnyInstance::new(live, name))),
            });
        });
        plan
    }

    /// RESET: clears the rate limiter's window and `rate_limited_count`; instances stay. `false`
    /// when rate-limited (the reset itself takes a slot first).
    ///
    /// ```
    /// use std::time::Duration;
    /// use singleton_kit::{ManualClock, RateLimit, SingletonCore};
    ///
    /// let clock = ManualClock::new();
    /// let core = SingletonCore::with_clock(RateLimit::per_second(1), clock.clone());
    /// core.set("a", 1_u8)?;
    /// assert!(core.set("a", 2_u8).is_err()); // refused, and counted
    /// clock.advance(Duration::from_secs(1));
    /// assert!(core.reset()); // takes the freed slot, then clears the window and the count
    /// assert_eq!(core.stats()?.rate_limited_count, 0);
    /// # Ok::<(), singleton_kit::SingletonError>(())
    /// ```
    pub fn reset(&self) -> bool {
        self.try_reset().is_ok()
    }

    /// RESET that says why it could not: what `execute` runs.
    pub(crate) fn try_reset(&self) -> std::result::Result<bool, Denied> {
        self.gate(SingletonOperation::Reset, None)?;
        self.limiter.reset();
        Ok(true)
    }
}
