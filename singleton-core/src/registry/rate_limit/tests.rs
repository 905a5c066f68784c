//! The limiter's unit tests, on a `ManualClock`.

use std::sync::atomic::AtomicBool;

use super::limiter::*;
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
