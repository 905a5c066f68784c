//! The sliding-window rate limit of the name-keyed operations, and the clock it reads.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
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
    /// times of the last `max_ops` admissions, 8 bytes each, so a limit of a million costs up to
    /// 8 MB once that many operations have been admitted.
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
/// The limiter reads [`now`](Clock::now) while it holds its lock (so that admissions are
/// recorded in time order): an implementation must not call into the core.
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

/// The limiter: an exact sliding window.
///
/// # Algorithm
///
/// The limiter remembers the times of the last `max_ops` admitted operations in a ring. An
/// operation at time `now` is admitted when fewer than `max_ops` were ever admitted, or when the
/// oldest remembered one is at least `window` old (`oldest + window <= now`); it then takes the
/// oldest one's place. So any `max_ops + 1` admitted operations span at least `window`, and no
/// window holds more than `max_ops`: the limit is exact, not approximated by buckets.
/// A refusal changes nothing but the refusal count.
///
/// With a coarse clock (one whose [`resolution`](Clock::resolution) is not zero) the window is
/// widened by that resolution: if a reading lags the true time by less than it, admissions that
/// far apart in readings are `window` apart in true time.
///
/// The clock is read inside the lock, so the ring is in time order under any number of threads.
/// Each check is O(1) (the seed's deque pops expired entries in a loop), and an unlimited limiter
/// is a single relaxed load with no lock.
pub(crate) struct Limiter {
    clock: Arc<dyn Clock>,
    /// The clock's resolution in ns, read once: the window is widened by it.
    margin: u64,
    unlimited: AtomicBool,
    refused: AtomicU64,
    state: Mutex<Window>,
}

struct Window {
    limit: RateLimit,
    /// Times (ns since the clock's origin) of the last admitted operations, oldest at `head`
    /// once the ring is full.
    ring: Vec<u64>,
    head: usize,
}

impl Limiter {
    pub(crate) fn new(limit: RateLimit, clock: Arc<dyn Clock>) -> Self {
        Self {
            margin: duration_nanos(clock.resolution()),
            clock,
            unlimited: AtomicBool::new(limit.max_ops.is_none()),
            refused: AtomicU64::new(0),
            state: Mutex::new(Window { limit, ring: Vec::new(), head: 0 }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Window> {
        // The window is consistent after every statement, so a panic elsewhere cannot have
        // left it half-changed.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits one operation, or says how long until a slot frees.
    #[inline]
    pub(crate) fn try_acquire(&self) -> Result<(), Duration> {
        if self.unlimited.load(Ordering::Relaxed) {
            return Ok(());
        }
        self.check()
    }

    fn check(&self) -> Result<(), Duration> {
        let mut w = self.lock();
        let Some(max) = w.limit.max_ops else { return Ok(()) };
        // A coarse clock lags by up to its resolution: widening the window by as much keeps any
        // `max_ops + 1` admissions at least `window` apart in true time.
        let window = duration_nanos(w.limit.window).saturating_add(self.margin);
        let now = duration_nanos(self.clock.now());
        let max = max as usize;
        let verdict = if w.ring.len() < max {
            w.ring.push(now);
            Ok(())
        } else if max == 0 {
            Err(w.limit.window)
        } else {
            let head = w.head;
            let oldest = w.ring[head];
            let frees_at = oldest.saturating_add(window);
            if frees_at <= now {
                w.ring[head] = now;
                w.head = (head + 1) % max;
                Ok(())
            } else {
                Err(Duration::from_nanos(frees_at - now))
            }
        };
        drop(w);
        if verdict.is_err() {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        verdict
    }

    /// Forgets every admitted operation and the refusal count.
    pub(crate) fn reset(&self) {
        let mut w = self.lock();
        w.ring.clear();
        w.head = 0;
        self.refused.store(0, Ordering::Relaxed);
    }

    pub(crate) fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    pub(crate) fn limit(&self) -> RateLimit {
        self.lock().limit
    }

    /// Changes the limit. The operations admitted so far keep counting against the new one.
    pub(crate) fn set_limit(&self, limit: RateLimit) {
        let mut w = self.lock();
        if let Some(max) = limit.max_ops {
            // Keep the newest `max` admissions, oldest first.
            let len = w.ring.len();
            let mut times: Vec<u64> = (0..len).map(|i| w.ring[(w.head + i) % len]).collect();
            let keep = times.len().saturating_sub(max as usize);
            times.drain(..keep);
            w.ring = times;
            w.head = 0;
        }
        w.limit = limit;
        self.unlimited.store(limit.max_ops.is_none(), Ordering::Relaxed);
    }
}

impl fmt::Debug for Limiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limiter")
            .field("limit", &self.limit())
            .field("refused", &self.refused())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(max: u32, window_ms: u64) -> (Limiter, ManualClock) {
        let clock = ManualClock::new();
        let limit = RateLimit::new(max, Duration::from_millis(window_ms));
        (Limiter::new(limit, Arc::new(clock.clone())), clock)
    }

    #[test]
    fn admits_exactly_max_ops_per_window() {
        let (l, _clock) = limiter(5, 1000);
        for _ in 0..5 {
            assert!(l.try_acquire().is_ok());
        }
        assert_eq!(l.try_acquire(), Err(Duration::from_millis(1000)));
        assert_eq!(l.refused(), 1);
    }

    #[test]
    fn window_boundary_is_exact() {
        let (l, clock) = limiter(2, 1000);
        assert!(l.try_acquire().is_ok()); // t = 0
        clock.advance(Duration::from_millis(400));
        assert!(l.try_acquire().is_ok()); // t = 400
        clock.advance(Duration::from_millis(599));
        // t = 999: the first is 1 ms short of leaving the window
        assert_eq!(l.try_acquire(), Err(Duration::from_millis(1)));
        clock.advance(Duration::from_millis(1));
        assert!(l.try_acquire().is_ok()); // t = 1000: the first left, this one takes its place
                                          // The second (t = 400) is still inside until t = 1400.
        assert_eq!(l.try_acquire(), Err(Duration::from_millis(400)));
        clock.advance(Duration::from_millis(400));
        assert!(l.try_acquire().is_ok());
        assert_eq!(l.refused(), 2);
    }

    #[test]
    fn refusals_take_no_slot() {
        let (l, clock) = limiter(1, 100);
        assert!(l.try_acquire().is_ok());
        for _ in 0..10 {
            clock.advance(Duration::from_millis(5));
            assert!(l.try_acquire().is_err());
        }
        clock.advance(Duration::from_millis(50)); // t = 100: only the admitted one counts
        assert!(l.try_acquire().is_ok());
    }

    #[test]
    fn zero_max_refuses_all_and_unlimited_admits_all() {
        let (l, _) = limiter(0, 100);
        assert!(l.try_acquire().is_err());
        l.set_limit(RateLimit::unlimited());
        for _ in 0..10_000 {
            assert!(l.try_acquire().is_ok());
        }
        assert_eq!(l.refused(), 1);
    }

    #[test]
    fn reset_clears_window_and_count() {
        let (l, _) = limiter(1, 1000);
        assert!(l.try_acquire().is_ok());
        assert!(l.try_acquire().is_err());
        l.reset();
        assert_eq!(l.refused(), 0);
        assert!(l.try_acquire().is_ok());
    }

    #[test]
    fn shrinking_the_limit_keeps_the_newest_admissions() {
        let (l, clock) = limiter(3, 1000);
        for _ in 0..3 {
            assert!(l.try_acquire().is_ok());
            clock.advance(Duration::from_millis(100));
        }
        // t = 300; admissions at 0, 100, 200.
        l.set_limit(RateLimit::new(1, Duration::from_millis(1000)));
        // Only the newest (t = 200) is kept: it frees at 1200.
        assert_eq!(l.try_acquire(), Err(Duration::from_millis(900)));
    }

    /// A clock that lags by up to 10 ms, like a coarse kernel clock.
    struct Coarse(ManualClock);

    impl Clock for Coarse {
        fn now(&self) -> Duration {
            self.0.now()
        }

        fn resolution(&self) -> Duration {
            Duration::from_millis(10)
        }
    }

    #[test]
    fn a_coarse_clock_widens_the_window_by_its_resolution() {
        let clock = ManualClock::new();
        let l = Limiter::new(RateLimit::new(1, Duration::from_millis(100)), Arc::new(Coarse(clock.clone())));
        assert!(l.try_acquire().is_ok());
        clock.advance(Duration::from_millis(100));
        // A reading 100 ms later may be only 90 ms later in truth: not yet.
        assert_eq!(l.try_acquire(), Err(Duration::from_millis(10)));
        clock.advance(Duration::from_millis(10));
        assert!(l.try_acquire().is_ok());
    }

    #[test]
    fn the_real_clock_moves_forward_with_no_lag() {
        let clock = MonotonicClock::new();
        let a = clock.now();
        std::thread::sleep(Duration::from_millis(5));
        assert!(clock.now() >= a + Duration::from_millis(5));
        assert_eq!(clock.resolution(), Duration::ZERO);
    }

    #[test]
    #[should_panic(expected = "window must be longer than zero")]
    fn zero_window_is_refused() {
        let _ = RateLimit::new(1, Duration::ZERO);
    }

    #[test]
    fn try_new_refuses_a_zero_window_and_accepts_the_rest() {
        assert_eq!(
            RateLimit::try_new(1, Duration::ZERO),
            Err(InvalidRateLimit { max_ops: 1, window: Duration::ZERO })
        );
        assert_eq!(RateLimit::try_new(0, Duration::from_nanos(1)).map(|l| l.max_ops()), Ok(Some(0)));
        const FROM_CONST: RateLimit = RateLimit::new(2, Duration::from_secs(1));
        assert_eq!(FROM_CONST.max_ops(), Some(2));
    }
}
