//! The sliding-window rate limit of the name-keyed operations, and the clock it reads.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How many name-keyed operations a [`SingletonCore`](crate::SingletonCore) admits per window.
///
/// The default is the seed design's 1000 operations per 1000 ms.
///
/// ```
/// use std::time::Duration;
/// use singleton_kit::RateLimit;
///
/// assert_eq!(RateLimit::default(), RateLimit::new(1000, Duration::from_secs(1)));
/// assert_eq!(RateLimit::new(5, Duration::from_secs(1)).max_ops(), Some(5));
/// assert_eq!(RateLimit::unlimited().max_ops(), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RateLimit {
    max_ops: Option<u32>,
    window: Duration,
}

impl RateLimit {
    /// At most `max_ops` operations in any window of length `window`.
    ///
    /// `max_ops == 0` refuses every operation (a maintenance switch). The limiter remembers the
    /// times of the last `max_ops` admissions in a ring of 16-byte slots that grows by doubling
    /// as they are admitted, so a limit of a million costs up to 32 MB (the ring rounded up to a
    /// power of two, and the smaller rings it grew from) once that many have been admitted.
    ///
    /// For a limit written in the program; a limit read from configuration goes through
    /// [`try_new`](Self::try_new), which returns an error instead of panicking.
    ///
    /// ```
    /// use std::time::Duration;
    /// use singleton_kit::RateLimit;
    ///
    /// let limit = RateLimit::new(100, Duration::from_millis(250));
    /// assert_eq!((limit.max_ops(), limit.window()), (Some(100), Duration::from_millis(250)));
    /// ```
    ///
    /// # Panics
    ///
    /// If `window` is zero: a window of no length cannot hold any operation, so the limit
    /// would mean nothing. Use [`RateLimit::unlimited`] for no limit.
    ///
    /// ```should_panic
    /// use std::time::Duration;
    /// use singleton_kit::RateLimit;
    ///
    /// let _ = RateLimit::new(10, Duration::ZERO); // panics
    /// ```
    pub const fn new(max_ops: u32, window: Duration) -> Self {
        match Self::try_new(max_ops, window) {
            Ok(limit) => limit,
            Err(_) => panic!("RateLimit::new: the window must be longer than zero"),
        }
    }

    /// At most `max_ops` operations in any window of length `window`, or an error when the
    /// window is zero: for limits read from configuration or from a request.
    ///
    /// ```
    /// use std::time::Duration;
    /// use singleton_kit::{InvalidRateLimit, RateLimit};
    ///
    /// let from_config = |ops: u32, ms: u64| RateLimit::try_new(ops, Duration::from_millis(ms));
    /// assert_eq!(from_config(500, 1000), Ok(RateLimit::per_second(500)));
    /// let err: InvalidRateLimit = from_config(500, 0).unwrap_err();
    /// assert_eq!(err.to_string(), "invalid rate limit of 500 per 0ns: the window must be longer than zero");
    /// ```
    ///
    /// # Errors
    ///
    /// [`InvalidRateLimit`] when `window` is zero.
    pub const fn try_new(max_ops: u32, window: Duration) -> Result<Self, InvalidRateLimit> {
        if window.is_zero() {
            return Err(InvalidRateLimit { max_ops, window });
        }
        Ok(Self { max_ops: Some(max_ops), window })
    }

    /// At most `max_ops` operations in any window of one second.
    pub const fn per_second(max_ops: u32) -> Self {
        Self::new(max_ops, Duration::from_secs(1))
    }

    /// No limit: every operation is admitted.
    pub const fn unlimited() -> Self {
        Self { max_ops: None, window: Duration::from_secs(1) }
    }

    /// The most operations admitted per window; `None` when unlimited.
    pub const fn max_ops(&self) -> Option<u32> {
        self.max_ops
    }

    /// The window's length.
    pub const fn window(&self) -> Duration {
        self.window
    }
}

/// A rate limit that [`RateLimit::try_new`] refuses: its window is zero.
///
/// ```
/// use std::time::Duration;
/// use singleton_kit::RateLimit;
///
/// let err = RateLimit::try_new(3, Duration::ZERO).unwrap_err();
/// assert_eq!((err.max_ops(), err.window()), (3, Duration::ZERO));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[error("invalid rate limit of {max_ops} per {window:?}: the window must be longer than zero")]
pub struct InvalidRateLimit {
    max_ops: u32,
    window: Duration,
}

impl InvalidRateLimit {
    /// The operations per window that were asked for.
    ///
    /// ```
    /// use std::time::Duration;
    /// use singleton_kit::RateLimit;
    ///
    /// assert_eq!(RateLimit::try_new(7, Duration::ZERO).unwrap_err().max_ops(), 7);
    /// ```
    pub const fn max_ops(&self) -> u32 {
        self.max_ops
    }

    /// The window that was asked for.
    ///
    /// ```
    /// use std::time::Duration;
    /// use singleton_kit::RateLimit;
    ///
    /// assert!(RateLimit::try_new(7, Duration::ZERO).unwrap_err().window().is_zero());
    /// ```
    pub const fn window(&self) -> Duration {
        self.window
    }
}

impl Default for RateLimit {
    fn default() -> Self {
        Self::new(1000, Duration::from_millis(1000))
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.max_ops {
            Some(n) => write!(f, "{n} per {:?}", self.window),
            None => f.write_str("unlimited"),
        }
    }
}

/// A monotonic source of time for the rate limiter.
///
/// The real one is [`MonotonicClock`]; tests use [`ManualClock`] to step across window
/// boundaries without sleeping.
///
/// The limiter reads [`now`](Clock::now) on every limited operation, from any thread; readings
/// that happen one after the other must not go backwards, and an implementation must not call
/// into the core.
///
/// ```
/// use std::time::Duration;
/// use singleton_kit::{Clock, RateLimit, SingletonCore};
///
/// struct Frozen; // time stands still: a full window never frees
/// impl Clock for Frozen {
///     fn now(&self) -> Duration { Duration::ZERO }
/// }
/// let core = SingletonCore::with_clock(RateLimit::per_second(1), Frozen);
/// assert!(core.set("a", 1_u8).is_ok() && core.set("a", 2_u8).is_err());
/// assert_eq!(Frozen.resolution(), Duration::ZERO); // the default: an exact clock
/// ```
pub trait Clock: Send + Sync + 'static {
    /// Time elapsed since the clock's own origin. Never goes backwards.
    fn now(&self) -> Duration;

    /// How far [`now`](Self::now) may lag behind the true time: a coarse clock is read faster
    /// but moves in steps. The limiter widens its window by this much, so that it stays exact.
    /// Zero (the default) for a clock that is always exact.
    fn resolution(&self) -> Duration {
        Duration::ZERO
    }
}

/// The real clock: [`Instant`], which never goes backwards (unlike the wall clock).
///
/// Kernels also offer a coarse monotonic clock that is read six times faster (4 ns instead of
/// 24 ns on the VMs this was measured on), but its lag behind the true time is bounded only by
/// the delivery of timer ticks, which a busy VM can delay: a window widened by its nominal
/// resolution would not be exact. The limiter reads this one; a [`Clock`] that reports its
/// [`resolution`](Clock::resolution) can be plugged in with [`SingletonCore::with_clock`](crate::SingletonCore::with_clock).
///
/// ```
/// use std::time::Duration;
/// use singleton_kit::{Clock, MonotonicClock};
///
/// let clock = MonotonicClock::new();
/// let before = clock.now();
/// std::thread::sleep(Duration::from_millis(2));
/// assert!(clock.now() >= before + Duration::from_millis(2));
/// assert_eq!(clock.resolution(), Duration::ZERO);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct MonotonicClock {
    origin: Instant,
}

impl MonotonicClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        Self { origin: Instant::now() }
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MonotonicClock {
    #[inline]
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// A clock that moves only when told to, for deterministic tests.
///
/// Clones share the same time.
///
/// ```
/// use std::time::Duration;
/// use singleton_kit::{ManualClock, RateLimit, SingletonCore};
///
/// let clock = ManualClock::new();
/// let core = SingletonCore::with_clock(RateLimit::new(2, Duration::from_secs(1)), clock.clone());
/// assert!(core.set("a", 1_u8).is_ok());
/// assert!(core.set("a", 2_u8).is_ok());
/// assert!(core.set("a", 3_u8).is_err()); // third in the same second
/// clock.advance(Duration::from_secs(1));
/// assert!(core.set("a", 4_u8).is_ok()); // the first has left the window
/// ```
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock at time zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward by `by`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use singleton_kit::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// let shared = clock.clone();
    /// assert_eq!(clock.now(), Duration::ZERO);
    /// clock.advance(Duration::from_millis(250));
    /// assert_eq!(shared.now(), Duration::from_millis(250)); // clones share the time
    /// ```
    pub fn advance(&self, by: Duration) {
        self.nanos.fetch_add(duration_nanos(by), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }
}

fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

mod limiter;
pub(crate) use limiter::Limiter;

#[cfg(test)]
mod tests;
