//! The sliding-window rate limit of the name-keyed operations, and the clock it reads.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
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

/// The limiter: an exact sliding window.
///
/// # Algorithm
///
/// An operation at time `now` is admitted when fewer than `max_ops` admissions count, or when the
/// `max_ops`-th newest one is at least `window` old (`its time + window <= now`). So any
/// `max_ops + 1` admitted operations span at least `window`, and no window holds more than
/// `max_ops`: the limit is exact, not approximated by buckets. A refusal changes nothing but the
/// refusal count.
///
/// With a coarse clock (one whose [`resolution`](Clock::resolution) is not zero) the window is
/// widened by that resolution: if a reading lags the true time by less than it, admissions that
/// far apart in readings are `window` apart in true time.
///
/// # A ticket ring, with no lock
///
/// Admissions are numbered by `next`, a counter of tickets. The time of admission `k` is kept in
/// slot `k % cap` of a ring of `cap` slots (`cap`, a power of two, at least `max_ops` once that
/// many have been admitted), next to the sequence number `k + 1` saying which admission's time
/// the slot holds. An operation:
///
/// 1. loads `next` (ticket `k`), then reads the clock (`now`);
/// 2. if fewer than `max_ops` tickets count (`k < floor + max_ops`), takes the ticket; otherwise
///    reads slot `(k - max_ops) % cap`, waiting for its sequence number to say `k - max_ops` if
///    that admission's thread is between taking its ticket and writing its time, and takes the
///    ticket when `time + window <= now`, refuses otherwise;
/// 3. takes ticket `k` by a compare-and-swap of `next` from `k` to `k + 1`, then writes its
///    slot: time, then sequence number. A failed swap (another thread took `k`) starts over,
///    clock included.
///
/// Exactness: admission `k` read the clock after loading `next == k`, which it loaded after
/// admission `k - 1` swapped it, after reading its own clock; so times never decrease in ticket
/// order. Admission `k` saw `time(k - max_ops) + window <= time(k)`, so any `max_ops + 1`
/// admissions (tickets `i < j`, `j - i >= max_ops`) span at least `window`. A refusal only reads:
/// it saw `max_ops` admissions (`k - max_ops .. k`) in `(now - window, now]`. It checks that
/// `next` is still `k` after reading the slot, so the time it read is that of `k - max_ops` and
/// not of a later admission that reused the slot.
///
/// Why not a mutex: the seed's `Mutex<VecDeque<Instant>>` and a mutex around this ring pay two
/// atomic read-modify-writes per check (lock, unlock) and make a second thread wait for the
/// first's clock read; here an admission pays one (the swap), a refusal one (its count, below),
/// and two threads only meet on the cache lines of `next` and of the slots. The clock read
/// (about 20 ns on the machines this was measured on) and that one read-modify-write (about as
/// much) are the floor of a check; the rest is a few loads and two stores.
///
/// # Refusal count
///
/// Refusals are counted in a few counters on cache lines of their own, one picked per thread,
/// so that threads refused at the same time do not contend; the count is their sum, exact.
///
/// # Changing the limit
///
/// [`set_limit`](Self::set_limit), [`reset`](Self::reset) and the ring's growth are rare: they
/// take a mutex among themselves, close `next` (its top bit: every swap of a ticket loaded before
/// fails, and operations that load it wait), wait for the admissions that took their ticket to
/// write their slot, renumber the kept admissions (the newest `max_ops`, or none for a reset) past
/// every ticket handed out so far, and reopen `next` there. A ticket loaded before can never be
/// swapped again: `next` only grows. An operation that read part of the old configuration and part
/// of the new fails its swap, or its check of `next` before a refusal, and starts over.
///
/// The ring starts small and doubles (moving the admissions that count) when `max_ops`
/// admissions would not fit, so memory follows use: 16 bytes per slot, `cap < 2 * max_ops`.
/// A ring left behind by a growth may still be read by an operation that loaded it before (it
/// then fails its swap), so it is kept until the limiter drops, and is used again if the ring
/// grows to its size again: there is at most one ring per power of two, less than twice the
/// largest ring in all.
pub(crate) struct Limiter {
    unlimited: AtomicBool,
    clock: Arc<dyn Clock>,
    /// The clock's resolution in ns, read once: the window is widened by it.
    margin: u64,
    shared: Box<Shared>,
    /// The limit as set, and the lock of the changes of configuration.
    admin: Mutex<RateLimit>,
}

/// The top bit of `next`: the configuration is being changed.
const CLOSED: u64 = 1 << 63;
/// The ring's initial size, at most: 1 KiB.
const FIRST_RING: u32 = 64;
/// Counters of refusals.
const SHARDS: usize = 8;
/// Spins on a busy `next` or slot before yielding the CPU to the thread that makes it free.
const SPINS: u32 = 64;

/// An atomic counter on a cache line (and its neighbour, which the prefetcher pairs) of its own.
#[repr(align(128))]
#[derive(Default)]
struct Padded(AtomicU64);

struct Shared {
    /// The next ticket, with [`CLOSED`] while the configuration changes. Only grows.
    next: Padded,
    /// The configuration: written only while `next` is closed.
    config: Config,
    /// Rings by size, `rings[c]` of `1 << c` slots: made on first use, kept until drop.
    rings: [OnceLock<Box<[Slot]>>; 33],
    refused: [Padded; SHARDS],
}

#[derive(Default)]
struct Config {
    /// `max_ops`; 0 refuses everything.
    max: AtomicU64,
    /// The first ticket that counts: those before it were forgotten (reset) or dropped
    /// (the limit shrank).
    floor: AtomicU64,
    /// The window widened by the clock's resolution, ns.
    window: AtomicU64,
    /// The window as set, ns: the wait told when `max_ops` is 0.
    window_set: AtomicU64,
    /// Which ring holds the slots: `rings[ring]`.
    ring: AtomicU64,
}

/// The time of one admission and the sequence number (`ticket + 1`, 0 for none yet) saying which.
#[repr(align(16))]
#[derive(Default)]
struct Slot {
    seq: AtomicU64,
    time: AtomicU64,
}

impl Shared {
    fn ring(&self, class: u64) -> &[Slot] {
        let class = class as usize;
        self.rings[class].get_or_init(|| (0..1_usize << class).map(|_| Slot::default()).collect())
    }
}

/// This thread's counter of refusals.
fn shard() -> usize {
    crate::memory::sync::thread_index() % SHARDS
}

/// Spins, then yields: waits for another thread to finish a few instructions, and lets it run
/// if it was descheduled in between.
fn backoff(spins: &mut u32) {
    if *spins < SPINS {
        *spins += 1;
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

/// The smallest ring class whose ring holds `n` slots.
fn class_for(n: u32) -> u64 {
    u64::from(n.max(1).next_power_of_two().trailing_zeros())
}

impl Limiter {
    pub(crate) fn new(limit: RateLimit, clock: Arc<dyn Clock>) -> Self {
        let margin = duration_nanos(clock.resolution());
        let shared = Box::new(Shared {
            next: Padded::default(),
            config: Config::default(),
            rings: std::array::from_fn(|_| OnceLock::new()),
            refused: Default::default(),
        });
        let limiter =
            Self { unlimited: AtomicBool::new(true), clock, margin, shared, admin: Mutex::new(limit) };
        limiter
            .shared
            .config
            .ring
            .store(class_for(FIRST_RING.min(limit.max_ops.unwrap_or(1))), Ordering::Relaxed);
        let admin = limiter.lock();
        limiter.reconfigure(&admin, Some(limit), Keep::None, None);
        drop(admin);
        limiter.unlimited.store(limit.max_ops.is_none(), Ordering::Relaxed);
        limiter
    }

    fn lock(&self) -> MutexGuard<'_, RateLimit> {
        // The configuration is consistent after every change (a change cannot panic halfway).
        self.admin.lock().unwrap_or_else(PoisonError::into_inner)
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
        let shared = &*self.shared;
        let config = &shared.config;
        let mut spins = 0;
        'retry: loop {
            let k = shared.next.0.load(Ordering::Acquire);
            if k & CLOSED != 0 {
                backoff(&mut spins);
                continue;
            }
            let max = config.max.load(Ordering::Acquire);
            let floor = config.floor.load(Ordering::Acquire);
            let class = config.ring.load(Ordering::Acquire);
            let Some(ring) = shared.rings.get(class as usize).and_then(OnceLock::get) else { continue };
            let mask = ring.len() as u64 - 1;
            let now = duration_nanos(self.clock.now());
            let Some(counted) = k.checked_sub(floor) else { continue }; // a configuration half read
            if counted < max {
                if counted > mask {
                    // The ring is full of admissions that count: it grows first.
                    self.grow(k);
                    continue;
                }
            } else if max == 0 {
                let wait = config.window_set.load(Ordering::Acquire);
                if shared.next.0.load(Ordering::Relaxed) != k {
                    continue;
                }
                return Err(self.refuse(wait));
            } else {
                let oldest = k - max;
                let slot = &ring[(oldest & mask) as usize];
                let expect = oldest + 1;
                let mut seq = slot.seq.load(Ordering::Acquire);
                while seq < expect {
                    // Admission `oldest` took its ticket and is about to write its time.
                    backoff(&mut spins);
                    if shared.next.0.load(Ordering::Relaxed) != k {
                        continue 'retry;
                    }
                    seq = slot.seq.load(Ordering::Acquire);
                }
                if seq != expect {
                    continue; // the slot moved on: `k` is taken
                }
                let time = slot.time.load(Ordering::Acquire);
                let window = config.window.load(Ordering::Acquire);
                let frees_at = time.saturating_add(window);
                if frees_at > now {
                    // `time` is admission `oldest`'s only if no admission reused the slot since,
                    // that is if `k` is not taken yet.
                    if shared.next.0.load(Ordering::Relaxed) != k {
                        continue;
                    }
                    return Err(self.refuse(frees_at - now));
                }
            }
            if shared.next.0.compare_exchange(k, k + 1, Ordering::AcqRel, Ordering::Relaxed).is_err() {
                continue;
            }
            let slot = &ring[(k & mask) as usize];
            slot.time.store(now, Ordering::Release);
            slot.seq.store(k + 1, Ordering::Release);
            return Ok(());
        }
    }

    #[cold]
    fn refuse(&self, wait_ns: u64) -> Duration {
        self.shared.refused[shard()].0.fetch_add(1, Ordering::Relaxed);
        Duration::from_nanos(wait_ns)
    }

    /// Doubles the ring, which is full of admissions that count, if ticket `k` still finds it so.
    #[cold]
    fn grow(&self, k: u64) {
        let admin = self.lock();
        let config = &self.shared.config;
        let next = self.shared.next.0.load(Ordering::Acquire);
        let counted = next.wrapping_sub(config.floor.load(Ordering::Acquire));
        let cap = 1_u64 << config.ring.load(Ordering::Acquire);
        if next == k && counted >= cap && counted < config.max.load(Ordering::Acquire) {
            self.reconfigure(&admin, None, Keep::All, Some(config.ring.load(Ordering::Acquire) + 1));
        }
    }

    /// Closes `next`, waits for the admissions in flight, keeps `keep` of the admissions that
    /// count (moved to ring `class`, when given) and reopens `next` for `limit` (`None`: the
    /// limit in force; unlimited: refuse everything, for the ring is then not used).
    fn reconfigure(
        &self,
        _admin: &MutexGuard<'_, RateLimit>,
        limit: Option<RateLimit>,
        keep: Keep,
        class: Option<u64>,
    ) {
        let shared = &*self.shared;
        let config = &shared.config;
        let n = shared.next.0.fetch_or(CLOSED, Ordering::AcqRel);
        debug_assert_eq!(n & CLOSED, 0, "changes of configuration hold the lock");
        let old_max = config.max.load(Ordering::Acquire);
        let old_floor = config.floor.load(Ordering::Acquire);
        let old_class = config.ring.load(Ordering::Acquire);
        let old = shared.ring(old_class);
        let old_mask = old.len() as u64 - 1;
        // Admissions before `n - old_max` wrote their slot before admission `n` took its ticket
        // (it read that slot); the later ones may still be writing.
        let mut spins = 0;
        for t in old_floor.max(n.saturating_sub(old_max))..n {
            while old[(t & old_mask) as usize].seq.load(Ordering::Acquire) != t + 1 {
                backoff(&mut spins);
            }
        }
        let new_max = limit.map_or(old_max, |l| u64::from(l.max_ops.unwrap_or(0)));
        let counted = n - old_floor;
        let kept = match keep {
            Keep::None => 0,
            Keep::All => counted,
            Keep::Newest => counted.min(old_max).min(new_max),
        };
        let new_class = class.unwrap_or(old_class);
        let new = shared.ring(new_class);
        let new_mask = new.len() as u64 - 1;
        debug_assert!(kept <= new.len() as u64 && kept <= old.len() as u64);
        // Renumbered past every ticket handed out, by a multiple of the ring's size, so that in
        // the same ring the kept admissions stay in their slots.
        let start = n + new_mask + 1;
        for t in n - kept..n {
            let from = &old[(t & old_mask) as usize];
            let to = &new[((t + start - n) & new_mask) as usize];
            if !std::ptr::eq(from, to) {
                to.time.store(from.time.load(Ordering::Acquire), Ordering::Release);
            }
            to.seq.store(t + start - n + 1, Ordering::Release);
        }
        config.max.store(new_max, Ordering::Release);
        config.floor.store(start - kept, Ordering::Release);
        if let Some(limit) = limit {
            config.window.store(duration_nanos(limit.window).saturating_add(self.margin), Ordering::Release);
            config.window_set.store(duration_nanos(limit.window), Ordering::Release);
        }
        config.ring.store(new_class, Ordering::Release);
        shared.next.0.store(start, Ordering::Release);
    }

    /// Forgets every admitted operation and the refusal count.
    pub(crate) fn reset(&self) {
        let admin = self.lock();
        // Unlimited too: the window counted when a limit is set again is forgotten.
        self.reconfigure(&admin, None, Keep::None, None);
        for counter in &self.shared.refused {
            counter.0.store(0, Ordering::Relaxed);
        }
    }

    pub(crate) fn refused(&self) -> u64 {
        self.shared.refused.iter().map(|c| c.0.load(Ordering::Relaxed)).fold(0, u64::wrapping_add)
    }

    pub(crate) fn limit(&self) -> RateLimit {
        *self.lock()
    }

    /// Changes the limit. The newest admissions (as many as the new limit) keep counting against
    /// the new one.
    pub(crate) fn set_limit(&self, limit: RateLimit) {
        let mut admin = self.lock();
        if limit.max_ops.is_some() {
            self.reconfigure(&admin, Some(limit), Keep::Newest, None);
        }
        *admin = limit;
        self.unlimited.store(limit.max_ops.is_none(), Ordering::Relaxed);
    }
}

/// Which admissions a change of configuration keeps counting.
#[derive(Clone, Copy)]
enum Keep {
    None,
    All,
    Newest,
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

    /// `threads` threads each make `attempts` attempts at once, and the admitted count is returned.
    fn hammer(l: &Limiter, threads: usize, attempts: usize) -> usize {
        let admitted = std::sync::atomic::AtomicUsize::new(0);
        let start = std::sync::Barrier::new(threads);
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    start.wait();
                    let ok = (0..attempts).filter(|_| l.try_acquire().is_ok()).count();
                    admitted.fetch_add(ok, Ordering::Relaxed);
                });
            }
        });
        admitted.into_inner()
    }

    /// Threads race at frozen instants of a manual clock, which then jumps by uneven steps. At
    /// each instant the window frees a known number of slots (a sequential model says how many),
    /// and the threads together make more attempts than that: exactly that many are admitted,
    /// no more (the limit) and no fewer (no refusal without a full window), and the refusal count
    /// is exact. The threads live through all instants and spin between them, so that they race.
    #[test]
    fn threads_at_each_instant_get_exactly_the_free_slots() {
        const MAX: usize = 40;
        const WINDOW_MS: u64 = 20;
        const THREADS: u64 = 4;
        const ATTEMPTS: usize = 20;
        let (l, clock) = limiter(MAX as u32, WINDOW_MS);
        let (instant, done, admitted) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
        let mut model: Vec<u64> = Vec::new(); // admission times, ms
        let (mut now, mut mismatch) = (0_u64, None);
        std::thread::scope(|s| {
            for _ in 0..THREADS {
                s.spawn(|| {
                    let mut seen = 0;
                    loop {
                        let i = loop {
                            let i = instant.load(Ordering::Acquire);
                            if i != seen {
                                break i;
                            }
                            std::thread::yield_now();
                        };
                        if i == u64::MAX {
                            return;
                        }
                        seen = i;
                        let ok = (0..ATTEMPTS).filter(|_| l.try_acquire().is_ok()).count();
                        admitted.fetch_add(ok as u64, Ordering::Relaxed);
                        done.fetch_add(1, Ordering::Release);
                    }
                });
            }
            for step in 1..=300_u64 {
                let free = MAX - model.iter().filter(|&&t| t + WINDOW_MS > now).count();
                admitted.store(0, Ordering::Relaxed);
                instant.store(step, Ordering::Release);
                while done.load(Ordering::Acquire) < step * THREADS {
                    std::thread::yield_now();
                }
                let got = admitted.load(Ordering::Relaxed) as usize;
                if got != free {
                    mismatch = Some((now, got, free)); // told once the threads are stopped
                    break;
                }
                model.extend(std::iter::repeat_n(now, got));
                let by = [1, 3, 7, 0, 20, 2, 40][(step % 7) as usize];
                clock.advance(Duration::from_millis(by));
                now += by;
            }
            instant.store(u64::MAX, Ordering::Release);
        });
        assert_eq!(mismatch, None, "(at ms, admitted, free slots)");
        assert_eq!(l.refused(), 300 * THREADS * ATTEMPTS as u64 - model.len() as u64);
    }

    /// A limit larger than the ring the limiter starts with: the ring grows while threads race
    /// for its slots, and exactly the limit is admitted.
    #[test]
    fn the_ring_grows_under_threads_and_stays_exact() {
        let (l, clock) = limiter(1000, 1000);
        assert_eq!(hammer(&l, 4, 400), 1000);
        assert_eq!(l.refused(), 600);
        clock.advance(Duration::from_millis(999));
        assert_eq!(hammer(&l, 4, 100), 0);
        clock.advance(Duration::from_millis(1));
        assert_eq!(hammer(&l, 4, 400), 1000);
        assert_eq!(l.refused(), 600 + 400 + 600);
    }

    /// With several threads refusing at once, the count is exact and the refusals take no slot.
    #[test]
    fn refusals_under_threads_are_counted_and_take_no_slot() {
        let (l, clock) = limiter(3, 100);
        assert_eq!(hammer(&l, 4, 1000), 3);
        assert_eq!(l.refused(), 3997);
        clock.advance(Duration::from_millis(100)); // only the 3 admitted ones leave
        assert_eq!(hammer(&l, 4, 1000), 3);
        assert_eq!(l.refused(), 2 * 3997);
    }

    /// `set_limit` and `reset` race admissions: nothing panics or hangs, and once the changes stop
    /// the last limit holds exactly, counting the admissions it kept.
    #[test]
    fn changes_of_limit_racing_admissions_leave_an_exact_limit() {
        let (l, clock) = limiter(5, 100);
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    while !stop.load(Ordering::Relaxed) {
                        let _ = l.try_acquire();
                    }
                });
            }
            for i in 0..2_000_u32 {
                match i % 5 {
                    0 => l.reset(),
                    1 => l.set_limit(RateLimit::unlimited()),
                    2 => l.set_limit(RateLimit::new(200 + i % 300, Duration::from_millis(100))),
                    3 => clock.advance(Duration::from_millis(30)),
                    _ => l.set_limit(RateLimit::new(i % 7, Duration::from_millis(100))),
                }
            }
            stop.store(true, Ordering::Relaxed);
        });
        l.set_limit(RateLimit::new(5, Duration::from_millis(100)));
        // Whatever the new limit kept, no more than 5 in this frozen instant...
        let kept_free = hammer(&l, 4, 10);
        assert!(kept_free <= 5, "{kept_free} admitted");
        // ... and one window later exactly 5.
        clock.advance(Duration::from_millis(100));
        assert_eq!(hammer(&l, 4, 10), 5);
        clock.advance(Duration::from_millis(99));
        assert_eq!(hammer(&l, 4, 10), 0);
        l.reset();
        assert_eq!((hammer(&l, 4, 10), l.refused()), (5, 35));
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
