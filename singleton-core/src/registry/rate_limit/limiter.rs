//! The limiter itself: a lock-free ticket ring over the clock.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use super::{duration_nanos, Clock, RateLimit};

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
