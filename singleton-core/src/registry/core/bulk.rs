//! The operations on every singleton at once: CLEAR/RESET_ALL, SHUTDOWN, and RESET of the limiter.

use std::sync::Arc;

use super::{Denied, SingletonCore};
use crate::lifecycle::creation;
use crate::lifecycle::teardown::{self};
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

    /// SHUTDOWN: lets go of every instance as [`clear`](Self::clear) does — dependents first,
    /// a panicking `Drop` caught and logged — but without the rate limit, for a server's graceful
    /// stop or a Lambda extension's shutdown event. Returns how many it let go; `0` when called
    /// again.
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
        tracing::debug!("singleton core shutdown");
        self.release_all()
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
