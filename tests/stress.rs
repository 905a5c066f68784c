//! The SPEC's "Behaviour under stress and faults", under threads: exact access counts,
//! exactly-once creation, the rate limit under contention, `delete` / `set` / `clear` racing with
//! `instance()` and `get` (every instance dropped exactly once), factories that fail, panic or
//! touch their own name, and cycles entered from several threads at once.
//!
//! Every test is bounded: at most about a second in a debug build on 2 cores. Waits that a bug
//! could turn into a hang run under [`within`], so a deadlock fails the test instead of hanging
//! it. The heavier variants are `#[ignore]`d and named `heavy_*`; `.ci/run` runs them with
//! `cargo test --release --test stress --test model -- --ignored heavy_`.
//!
//! The tests at the end are regressions for the library bugs these tests found (all fixed): three
//! in the first version of name-keyed creation (fixed in f6e8295), and two races left in that fix
//! (fixed in the commit that added this file). Each failed within about a second before its fix.
//!
//! Tests that use the global core take [`GLOBAL`]: shared by all of them, exclusively by the one
//! that calls `clear()` on it (which would reset every other test's instances). They also lift
//! the global core's rate limit, which is not what they are about.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{
    mpsc, Arc, Barrier, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard,
};
use std::thread;
use std::time::{Duration, Instant};

use singleton_kit::{
    manager, registered, singleton, Clock, Instance, ManualClock, RateLimit, SingletonCore, SingletonError,
};

// -------------------------------------------------------------------------------------------------
// Helpers
// -------------------------------------------------------------------------------------------------

/// How long a call that must not hang may take before the test calls it a hang.
const DEADLINE: Duration = Duration::from_secs(10);

static GLOBAL: RwLock<()> = RwLock::new(());

/// The global core, shared with the other tests that use it, with no rate limit.
fn global() -> RwLockReadGuard<'static, ()> {
    let guard = GLOBAL.read().unwrap_or_else(PoisonError::into_inner);
    manager().set_rate_limit(RateLimit::unlimited());
    guard
}

/// The global core, for a test that clears it.
fn global_exclusive() -> RwLockWriteGuard<'static, ()> {
    let guard = GLOBAL.write().unwrap_or_else(PoisonError::into_inner);
    manager().set_rate_limit(RateLimit::unlimited());
    guard
}

fn serial(lock: &'static Mutex<()>) -> MutexGuard<'static, ()> {
    lock.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs `f` on its own thread and returns what it returns (or goes on with its panic); fails
/// the test if it takes longer than [`DEADLINE`]. A hung thread is left behind: the test has
/// failed, and the process ends with the test run.
#[track_caller]
fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    within_for(DEADLINE, what, f)
}

/// [`within`] with another deadline, for the heavy variants.
#[track_caller]
fn within_for<T: Send + 'static>(
    deadline: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    let worker = thread::spawn(move || {
        let _ = tx.send(panic::catch_unwind(AssertUnwindSafe(f)));
    });
    match rx.recv_timeout(deadline) {
        Ok(Ok(value)) => {
            worker.join().expect("the worker sent its result");
            value
        }
        Ok(Err(payload)) => panic::resume_unwind(payload),
        Err(_) => panic!("{what}: no result within {deadline:?}: deadlock or livelock"),
    }
}

/// The deadline of a heavy variant (in release).
const HEAVY_DEADLINE: Duration = Duration::from_secs(120);

fn registered_access_count(name: &str) -> u64 {
    registered().into_iter().find(|r| r.name() == name).expect("registered").access_count()
}

fn is_created(name: &str) -> bool {
    registered().into_iter().find(|r| r.name() == name).expect("registered").is_created()
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

// -------------------------------------------------------------------------------------------------
// Access counts are exact
// -------------------------------------------------------------------------------------------------

/// `threads` threads, released together, each make `calls` calls of `call` (one `instance()`
/// of the `#[singleton]` type called `name`, reading a field); then the count is the total,
/// both in the startup listing and in `stats()`.
fn typed_access_counts(name: &str, threads: usize, calls: usize, call: fn() -> u64) {
    let _global = global();
    assert!(!is_created(name), "`{name}` is used by this test only");
    let barrier = Barrier::new(threads);
    thread::scope(|s| {
        for _ in 0..threads {
            let barrier = &barrier;
            s.spawn(move || {
                barrier.wait();
                for _ in 0..calls {
                    assert_eq!(call(), 7);
                }
            });
        }
    });
    let total = (threads * calls) as u64;
    assert_eq!(registered_access_count(name), total, "registered() access count of `{name}`");
    let stats = manager().stats().unwrap();
    assert_eq!(stats.access_counts[name], total, "stats() access count of `{name}`");
}

macro_rules! typed_access_count_tests {
    ($($(#[$attr:meta])* $test:ident: $ty:ident, $threads:expr, $calls:expr;)*) => {$(
        #[singleton(factory = || $ty(7))]
        struct $ty(u64);

        #[test]
        $(#[$attr])*
        fn $test() {
            within(stringify!($test), || {
                typed_access_counts($ty::SINGLETON_NAME, $threads, $calls, || $ty::instance().0)
            });
        }
    )*};
}

typed_access_count_tests! {
    typed_access_counts_are_exact_2_threads: Hits2, 2, 100_000;
    typed_access_counts_are_exact_4_threads: Hits4, 4, 100_000;
    typed_access_counts_are_exact_8_threads: Hits8, 8, 100_000;
    #[ignore = "heavy: 8 threads x 10^6 calls; `.ci/run` runs it with `--ignored` in release"]
    heavy_typed_access_counts_are_exact_8_threads_10_6: HeavyHits8, 8, 1_000_000;
}

/// The same through the name-keyed path of an isolated core: each thread's first call is a
/// `get_or_create` (so creation races too, and counts once), then `get` and `get_or_create`
/// alternate.
fn name_keyed_access_counts(threads: usize, calls: usize) {
    let core = SingletonCore::with_rate_limit(RateLimit::unlimited());
    let barrier = Barrier::new(threads);
    thread::scope(|s| {
        for _ in 0..threads {
            let (core, barrier) = (&core, &barrier);
            s.spawn(move || {
                barrier.wait();
                for i in 0..calls {
                    let h = if i % 2 == 0 {
                        core.get_or_create("hits", || 7_u64).unwrap()
                    } else {
                        core.get::<u64>("hits").unwrap().expect("created by this thread's first call")
                    };
                    assert_eq!(*h, 7);
                }
            });
        }
    });
    let stats = core.stats().unwrap();
    assert_eq!(stats.access_counts["hits"], (threads * calls) as u64);
    assert_eq!(stats.total_singletons, 1);
}

#[test]
fn name_keyed_access_counts_are_exact_2_threads() {
    within("name-keyed access counts", || name_keyed_access_counts(2, 100_000));
}

#[test]
fn name_keyed_access_counts_are_exact_4_threads() {
    within("name-keyed access counts", || name_keyed_access_counts(4, 100_000));
}

#[test]
#[ignore = "heavy: 8 threads x 10^6 calls; `.ci/run` runs it with `--ignored` in release"]
fn heavy_name_keyed_access_counts_are_exact_8_threads_10_6() {
    within_for(HEAVY_DEADLINE, "name-keyed access counts", || name_keyed_access_counts(8, 1_000_000));
}

#[test]
fn name_keyed_access_counts_are_exact_8_threads() {
    within("name-keyed access counts", || name_keyed_access_counts(8, 100_000));
}

// -------------------------------------------------------------------------------------------------
// Exactly once
// -------------------------------------------------------------------------------------------------

const RACERS: usize = 8;

/// Each round, 8 threads released by a barrier ask an isolated core for a fresh name; half
/// through `get_or_create`, half through `get_or_try_create`. The factory is slow on odd rounds
/// (everyone waits for the creator) and instant on even ones (creation races the fast path).
fn exactly_once_name_keyed(rounds: usize) {
    let core = SingletonCore::with_rate_limit(RateLimit::unlimited());
    let barrier = Barrier::new(RACERS);
    for round in 0..rounds {
        let name = format!("fresh-{round}");
        let runs = AtomicUsize::new(0);
        let make = || {
            runs.fetch_add(1, SeqCst);
            if round % 2 == 1 {
                thread::sleep(Duration::from_millis(1));
            }
            (round, String::from("made"))
        };
        let handles: Vec<Instance<(usize, String)>> = thread::scope(|s| {
            let racers: Vec<_> = (0..RACERS)
                .map(|t| {
                    let (core, barrier, name, make) = (&core, &barrier, &name, &make);
                    s.spawn(move || {
                        barrier.wait();
                        if t % 2 == 0 {
                            core.get_or_create(name, make).unwrap()
                        } else {
                            core.get_or_try_create(name, || Ok::<_, std::io::Error>(make())).unwrap()
                        }
                    })
                })
                .collect();
            racers.into_iter().map(|r| r.join().unwrap()).collect()
        });
        assert_eq!(runs.load(SeqCst), 1, "round {round}: the factory runs exactly once");
        assert!(handles.iter().all(|h| Instance::ptr_eq(h, &handles[0])), "round {round}: one instance");
        assert_eq!(handles[0].0, round);
        assert_eq!(core.stats().unwrap().access_counts[&name], RACERS as u64, "round {round}");
    }
}

#[test]
fn exactly_once_on_fresh_names_50_rounds() {
    within("exactly once, name-keyed", || exactly_once_name_keyed(50));
}

#[test]
#[ignore = "heavy: 2000 rounds; `.ci/run` runs it with `--ignored` in release"]
fn heavy_exactly_once_on_fresh_names_2000_rounds() {
    within_for(HEAVY_DEADLINE, "exactly once, name-keyed", || exactly_once_name_keyed(2000));
}

static FRESH_ROUND: AtomicUsize = AtomicUsize::new(0);
static FRESH_RUNS: AtomicUsize = AtomicUsize::new(0);
static FRESH_SERIAL: Mutex<()> = Mutex::new(());

#[singleton(factory = Fresh::new)]
struct Fresh {
    round: usize,
}

impl Fresh {
    fn new() -> Self {
        FRESH_RUNS.fetch_add(1, SeqCst);
        let round = FRESH_ROUND.load(SeqCst);
        if round % 2 == 1 {
            thread::sleep(Duration::from_millis(1));
        }
        Fresh { round }
    }
}

/// Each round, `delete` the `#[singleton]`, then 8 threads released by a barrier ask for it,
/// through `instance()` and through the global core's `get`: its factory runs once per round,
/// and everyone gets the round's new instance.
fn exactly_once_typed(rounds: usize) {
    let _global = global();
    let _serial = serial(&FRESH_SERIAL);
    let barrier = Arc::new(Barrier::new(RACERS));
    let mut previous: Option<Instance<Fresh>> = None;
    for round in 0..rounds {
        manager().delete(Fresh::SINGLETON_NAME);
        FRESH_ROUND.store(round, SeqCst);
        let before = FRESH_RUNS.load(SeqCst);
        let racers: Vec<_> = (0..RACERS)
            .map(|t| {
                let barrier = Arc::clone(&barrier);
                thread::spawn(move || {
                    barrier.wait();
                    if t % 3 == 0 {
                        manager().get::<Fresh>(Fresh::SINGLETON_NAME).unwrap().expect("registered")
                    } else {
                        Fresh::instance()
                    }
                })
            })
            .collect();
        let handles: Vec<Instance<Fresh>> = racers.into_iter().map(|r| r.join().unwrap()).collect();
        assert_eq!(FRESH_RUNS.load(SeqCst) - before, 1, "round {round}: the factory runs exactly once");
        assert!(handles.iter().all(|h| Instance::ptr_eq(h, &handles[0])), "round {round}: one instance");
        assert_eq!(handles[0].round, round);
        if let Some(previous) = &previous {
            assert!(!Instance::ptr_eq(previous, &handles[0]), "round {round}: delete made it fresh");
            assert_eq!(previous.round, round - 1, "the previous round's handle is still valid");
        }
        previous = Some(handles[0].clone());
    }
}

#[test]
fn exactly_once_typed_with_delete_between_50_rounds() {
    within("exactly once, typed", || exactly_once_typed(50));
}

#[test]
#[ignore = "heavy: 2000 rounds; `.ci/run` runs it with `--ignored` in release"]
fn heavy_exactly_once_typed_with_delete_between_2000_rounds() {
    within_for(HEAVY_DEADLINE, "exactly once, typed", || exactly_once_typed(2000));
}

// -------------------------------------------------------------------------------------------------
// The rate limit under contention
// -------------------------------------------------------------------------------------------------

/// Fails if some `max_ops + 1` of the admissions certainly fall in one window of length
/// `window`. Each admission is known only as an interval `[t0, t1]` of the clock the limiter
/// reads (read just before and just after the call; the limiter reads it in between), so a set
/// of admissions certainly lies within a span shorter than `window` when the latest `t1` minus
/// the earliest `t0` is shorter. Every such set has an earliest `t0`: for each admission's `t0`
/// as the start, count the admissions that begin at or after it and certainly end before
/// `start + window`.
fn assert_no_window_holds_more_than(admissions: &mut [(u64, u64)], max_ops: usize, window: u64) {
    admissions.sort_unstable();
    for (i, &(start, _)) in admissions.iter().enumerate() {
        let inside = admissions[i..]
            .iter()
            .take_while(|(t0, _)| *t0 < start + window)
            .filter(|(_, t1)| *t1 < start + window)
            .count();
        assert!(
            inside <= max_ops,
            "{inside} admissions in the window [{start}, {}) ns, at most {max_ops} allowed",
            start + window
        );
    }
}

/// One operation that takes a slot and says whether it was refused; any other error fails.
fn limited_op(core: &SingletonCore, i: usize) -> bool {
    let result = match i % 4 {
        0 => core.set("slot", i as u64),
        1 => core.get::<u64>("slot").map(drop),
        2 => core.get_or_create("slot", || 0_u64).map(drop),
        _ => core.stats().map(drop),
    };
    match result {
        Ok(()) => true,
        Err(SingletonError::RateLimited { .. }) => false,
        Err(other) => panic!("unexpected error: {other}"),
    }
}

/// Workers hammer a core limited to `MAX` per 20 ms of a [`ManualClock`], while this thread
/// moves the clock 1 ms at a time, each step only once `per_step` more attempts have been made:
/// every window sees far more attempts than `MAX`. Each worker records the clock just before
/// and just after each admitted call.
fn limiter_on_a_manual_clock(workers: usize, steps: u64, per_step: usize) {
    const MAX: usize = 50;
    const WINDOW: Duration = Duration::from_millis(20);
    const STEP: Duration = Duration::from_millis(1);
    let clock = ManualClock::new();
    let core = SingletonCore::with_clock(RateLimit::new(MAX as u32, WINDOW), clock.clone());
    let attempts = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap();
    let (mut admitted, refused) = thread::scope(|s| {
        let hammers: Vec<_> = (0..workers)
            .map(|w| {
                let (core, clock, attempts, stop) = (&core, &clock, &attempts, &stop);
                s.spawn(move || {
                    let (mut admitted, mut refused) = (Vec::new(), 0_u64);
                    let mut i = w;
                    while !stop.load(SeqCst) {
                        let t0 = nanos(clock.now());
                        let ok = limited_op(core, i);
                        let t1 = nanos(clock.now());
                        attempts.fetch_add(1, SeqCst);
                        if ok {
                            admitted.push((t0, t1));
                        } else {
                            refused += 1;
                        }
                        i += 1;
                    }
                    (admitted, refused)
                })
            })
            .collect();
        for _ in 0..steps {
            let base = attempts.load(SeqCst);
            while attempts.load(SeqCst) < base + per_step {
                thread::yield_now();
            }
            clock.advance(STEP);
        }
        stop.store(true, SeqCst);
        hammers.into_iter().map(|h| h.join().unwrap()).fold((Vec::new(), 0), |(mut a, r), (a2, r2)| {
            a.extend(a2);
            (a, r + r2)
        })
    });
    let attempts = attempts.load(SeqCst) as u64;
    assert_eq!(admitted.len() as u64 + refused, attempts);
    assert_no_window_holds_more_than(&mut admitted, MAX, nanos(WINDOW));
    // Certain whatever the interleaving: the first MAX attempts find the window empty; and
    // `steps * per_step` attempts were made within a time span that admits far fewer.
    let span_windows = (steps * nanos(STEP)).div_ceil(nanos(WINDOW)) + 1;
    assert!(admitted.len() >= MAX, "only {} admitted", admitted.len());
    assert!(admitted.len() as u64 <= MAX as u64 * span_windows, "{} admitted", admitted.len());
    assert!(refused > 0);
    // The core counted the same refusals (one window later, the stats call is admitted).
    clock.advance(WINDOW);
    assert_eq!(core.stats().unwrap().rate_limited_count, refused);
}

#[test]
fn the_limit_holds_under_contention_on_a_manual_clock() {
    // A longer deadline than the rest: the lock-free limiter's four workers never sleep, so on a
    // 2-core machine the thread that moves the clock gets a smaller share of it (5.8 s alone in
    // a debug build, where the mutex-based limiter took 3.4 s).
    within_for(Duration::from_secs(40), "the limiter on a manual clock", || {
        limiter_on_a_manual_clock(4, 400, 25)
    });
}

#[test]
#[ignore = "heavy: 8 workers, 5000 clock steps; `.ci/run` runs it with `--ignored` in release"]
fn heavy_the_limit_holds_under_contention_on_a_manual_clock() {
    within_for(HEAVY_DEADLINE, "the limiter on a manual clock", || limiter_on_a_manual_clock(8, 5000, 40));
}

/// The same on the real clock (50 per 20 ms), recording `Instant`s around each admitted call.
fn limiter_on_the_real_clock(workers: usize, run_for: Duration) {
    const MAX: usize = 50;
    const WINDOW: Duration = Duration::from_millis(20);
    let core = SingletonCore::with_rate_limit(RateLimit::new(MAX as u32, WINDOW));
    let origin = Instant::now();
    let since = |t: Instant| u64::try_from(t.duration_since(origin).as_nanos()).unwrap();
    let (mut admitted, refused) = thread::scope(|s| {
        let hammers: Vec<_> = (0..workers)
            .map(|w| {
                let core = &core;
                s.spawn(move || {
                    let (mut admitted, mut refused) = (Vec::new(), 0_u64);
                    let mut i = w;
                    while origin.elapsed() < run_for {
                        let t0 = Instant::now();
                        let ok = limited_op(core, i);
                        let t1 = Instant::now();
                        if ok {
                            admitted.push((since(t0), since(t1)));
                        } else {
                            refused += 1;
                        }
                        i += 1;
                    }
                    (admitted, refused)
                })
            })
            .collect();
        hammers.into_iter().map(|h| h.join().unwrap()).fold((Vec::new(), 0), |(mut a, r), (a2, r2)| {
            a.extend(a2);
            (a, r + r2)
        })
    });
    assert_no_window_holds_more_than(&mut admitted, MAX, u64::try_from(WINDOW.as_nanos()).unwrap());
    assert!(!admitted.is_empty());
    // Lift the limit to read the refusal count without taking a refused slot.
    core.set_rate_limit(RateLimit::unlimited());
    assert_eq!(core.stats().unwrap().rate_limited_count, refused);
}

#[test]
fn the_limit_holds_under_contention_on_the_real_clock() {
    within("the limiter on the real clock", || limiter_on_the_real_clock(4, Duration::from_millis(300)));
}

#[test]
#[ignore = "heavy: 8 workers for 5 s; `.ci/run` runs it with `--ignored` in release"]
fn heavy_the_limit_holds_under_contention_on_the_real_clock() {
    within_for(HEAVY_DEADLINE, "the limiter on the real clock", || {
        limiter_on_the_real_clock(8, Duration::from_secs(5))
    });
}

// -------------------------------------------------------------------------------------------------
// delete / set / clear racing with instance() and get
// -------------------------------------------------------------------------------------------------

/// Keeps a thread of a race going: at least `MIN_ITERATIONS` times (so that each thread does its
/// part, however the threads are scheduled), and until `until`.
fn going(i: usize, until: Instant) -> bool {
    const MIN_ITERATIONS: usize = 500;
    i < MIN_ITERATIONS || Instant::now() < until
}

const ALIVE: u64 = 0xA11C_E0F5_1A67_1E70;
const DEAD: u64 = 0xDEAD_DEAD_DEAD_DEAD;

/// Counts constructions and drops of one value type, and catches a second drop of one value.
struct Census {
    made: AtomicUsize,
    dropped: AtomicUsize,
    dropped_twice: AtomicUsize,
}

impl Census {
    const fn new() -> Self {
        Self { made: AtomicUsize::new(0), dropped: AtomicUsize::new(0), dropped_twice: AtomicUsize::new(0) }
    }

    #[track_caller]
    fn assert_balanced(&self, what: &str) {
        let (made, dropped) = (self.made.load(SeqCst), self.dropped.load(SeqCst));
        assert_eq!(self.dropped_twice.load(SeqCst), 0, "{what}: an instance was dropped twice");
        assert_eq!(made, dropped, "{what}: {made} instances made, {dropped} dropped");
    }
}

/// A value whose every read checks that it has not been dropped.
struct Canary {
    id: usize,
    check: u64,
    alive: AtomicU64,
    census: &'static Census,
}

impl Canary {
    fn new(census: &'static Census) -> Self {
        let id = census.made.fetch_add(1, SeqCst);
        Canary { id, check: Self::mix(id), alive: AtomicU64::new(ALIVE), census }
    }

    fn mix(id: usize) -> u64 {
        (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5555
    }

    /// Reads the value through a handle: it must be alive and intact.
    #[track_caller]
    fn read(&self) -> usize {
        assert_eq!(self.alive.load(SeqCst), ALIVE, "a handle reads a dropped instance");
        assert_eq!(self.check, Self::mix(self.id), "a handle reads a corrupted instance");
        self.id
    }
}

impl Drop for Canary {
    fn drop(&mut self) {
        if self.alive.swap(DEAD, SeqCst) != ALIVE {
            self.census.dropped_twice.fetch_add(1, SeqCst);
        }
        self.census.dropped.fetch_add(1, SeqCst);
    }
}

static CHURN: Census = Census::new();

#[singleton(factory = || Churn(Canary::new(&CHURN)))]
struct Churn(Canary);

/// Writers `delete`, `set` and `clear` the global core while readers take handles with
/// `instance()` and `get`, keeping the last few alive and reading them, and hand some to another
/// thread that clones, reads and drops them there. At the end the kept handles are cloned on yet
/// another thread (their instances mostly retired by then) and read; after a final `delete` and
/// with every handle gone, every instance made was dropped, once.
fn churn_typed(run_for: Duration) {
    let _global = global_exclusive();
    const READERS: usize = 3;
    const WRITERS: usize = 2;
    const KEEP: usize = 16;
    let start = Barrier::new(READERS + WRITERS);
    let until = Instant::now() + run_for;
    let held: Vec<Vec<Instance<Churn>>> = thread::scope(|s| {
        let (handoff, handed) = mpsc::channel::<Instance<Churn>>();
        s.spawn(move || {
            for h in handed {
                let clone = h.clone();
                drop(h);
                clone.0.read();
            }
        });
        for w in 0..WRITERS {
            let start = &start;
            s.spawn(move || {
                start.wait();
                let mut i = 0;
                while going(i, until) {
                    match (i + w) % 5 {
                        0 | 3 => drop(manager().delete(Churn::SINGLETON_NAME)),
                        1 | 4 => manager().set(Churn::SINGLETON_NAME, Churn(Canary::new(&CHURN))).unwrap(),
                        _ => drop(manager().clear()),
                    }
                    i += 1;
                }
            });
        }
        let readers: Vec<_> = (0..READERS)
            .map(|r| {
                let (start, handoff) = (&start, handoff.clone());
                s.spawn(move || {
                    start.wait();
                    let mut keep: Vec<Instance<Churn>> = Vec::with_capacity(KEEP);
                    let mut i = 0_usize;
                    while going(i, until) {
                        let h = if (i + r) % 2 == 0 {
                            Churn::instance()
                        } else {
                            manager().get::<Churn>(Churn::SINGLETON_NAME).unwrap().expect("registered")
                        };
                        h.0.read();
                        if i % 8 == 0 {
                            handoff.send(h.clone()).unwrap();
                        }
                        if keep.len() < KEEP {
                            keep.push(h);
                        } else {
                            keep[i % KEEP] = h;
                        }
                        for k in keep.iter().step_by(5) {
                            k.0.read();
                        }
                        i += 1;
                    }
                    keep
                })
            })
            .collect();
        drop(handoff);
        readers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let clones: Vec<Instance<Churn>> = held.iter().flatten().cloned().collect();
    drop(held);
    for h in &clones {
        h.0.read();
    }
    drop(clones);
    manager().delete(Churn::SINGLETON_NAME);
    CHURN.assert_balanced("delete/set/clear racing instance()/get");
}

#[test]
fn delete_set_clear_racing_instance_and_get_drop_every_instance_once() {
    within("churn on the global core", || churn_typed(Duration::from_secs(1)));
}

#[test]
#[ignore = "heavy: 15 s; `.ci/run` runs it with `--ignored` in release"]
fn heavy_delete_set_clear_racing_instance_and_get_drop_every_instance_once() {
    within_for(HEAVY_DEADLINE, "churn on the global core", || churn_typed(Duration::from_secs(15)));
}

static TRACKED: Census = Census::new();

/// The same on an isolated core, with names that no `#[singleton]` owns (so `delete` and
/// `clear` remove their entries, and `get_or_create` makes them again), a `set` of another type,
/// and factories that fail or panic now and then.
fn churn_name_keyed(run_for: Duration) {
    const NAMES: [&str; 3] = ["c0", "c1", "c2"];
    const READERS: usize = 3;
    const WRITERS: usize = 2;
    const KEEP: usize = 16;
    let core = SingletonCore::with_rate_limit(RateLimit::unlimited());
    let start = Barrier::new(READERS + WRITERS);
    let until = Instant::now() + run_for;
    let held: Vec<Vec<Instance<Canary>>> = thread::scope(|s| {
        for w in 0..WRITERS {
            let (core, start) = (&core, &start);
            s.spawn(move || {
                start.wait();
                let mut i = 0;
                while going(i, until) {
                    let name = NAMES[(i / 7 + w) % NAMES.len()];
                    match (i + w) % 7 {
                        0 | 4 => drop(core.delete(name)),
                        1 | 5 => core.set(name, Canary::new(&TRACKED)).unwrap(),
                        2 => drop(core.clear()),
                        3 => drop(core.reset_all()),
                        _ => core.set(name, i as u32).unwrap(), // another type: gets now mismatch
                    }
                    i += 1;
                }
            });
        }
        let readers: Vec<_> = (0..READERS)
            .map(|r| {
                let (core, start) = (&core, &start);
                s.spawn(move || {
                    start.wait();
                    let mut keep: Vec<Instance<Canary>> = Vec::with_capacity(KEEP);
                    let mut i = 0_usize;
                    while going(i, until) {
                        let name = NAMES[(i + r) % NAMES.len()];
                        let result = match i % 4 {
                            0 => core.get::<Canary>(name),
                            1 => core.get_or_create(name, || Canary::new(&TRACKED)).map(Some),
                            2 => core
                                .get_or_try_create(name, || {
                                    if i % 8 == 2 {
                                        Err("the factory fails")
                                    } else {
                                        Ok(Canary::new(&TRACKED))
                                    }
                                })
                                .map(Some),
                            _ if i % 64 == 3 => {
                                match panic::catch_unwind(AssertUnwindSafe(|| {
                                    core.get_or_create::<Canary, _>(name, || panic!("the factory panics"))
                                })) {
                                    Ok(result) => result.map(Some),
                                    Err(_) => Ok(None),
                                }
                            }
                            _ => core.get::<Canary>(name),
                        };
                        match result {
                            Ok(Some(h)) => {
                                h.read();
                                if keep.len() < KEEP {
                                    keep.push(h);
                                } else {
                                    keep[i % KEEP] = h;
                                }
                            }
                            Ok(None)
                            | Err(SingletonError::TypeMismatch { .. })
                            | Err(SingletonError::Factory { .. }) => {}
                            Err(other) => panic!("unexpected error: {other}"),
                        }
                        for k in keep.iter().step_by(5) {
                            k.read();
                        }
                        i += 1;
                    }
                    keep
                })
            })
            .collect();
        readers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    for h in held.iter().flatten() {
        h.read();
    }
    drop(held);
    core.clear();
    TRACKED.assert_balanced("name-keyed churn, after the final clear");
    assert_eq!(core.stats().unwrap().total_singletons, 0);
}

static TRACKED_SERIAL: Mutex<()> = Mutex::new(());

#[test]
fn name_keyed_churn_on_an_isolated_core_drops_every_instance_once() {
    let _serial = serial(&TRACKED_SERIAL);
    within("churn on an isolated core", || churn_name_keyed(Duration::from_secs(1)));
}

#[test]
#[ignore = "heavy: 15 s; `.ci/run` runs it with `--ignored` in release"]
fn heavy_name_keyed_churn_on_an_isolated_core_drops_every_instance_once() {
    let _serial = serial(&TRACKED_SERIAL);
    within_for(HEAVY_DEADLINE, "churn on an isolated core", || churn_name_keyed(Duration::from_secs(15)));
}

// -------------------------------------------------------------------------------------------------
// Factories that fail, panic, or touch their own name
// -------------------------------------------------------------------------------------------------

#[test]
fn a_factory_that_deletes_its_own_name_returns_and_its_instance_is_the_stored_one() {
    let core = Arc::new(SingletonCore::with_rate_limit(RateLimit::unlimited()));
    let (c, runs) = (Arc::clone(&core), Arc::new(AtomicUsize::new(0)));
    let r = Arc::clone(&runs);
    let (made, deleted) = within("a factory deleting its own name", move || {
        let mut deleted = None;
        let made = c
            .get_or_create("self-delete", || {
                r.fetch_add(1, SeqCst);
                deleted = Some(c.delete("self-delete"));
                11_u32
            })
            .unwrap();
        (made, deleted)
    });
    assert_eq!(deleted, Some(false), "nothing is stored while the factory runs");
    assert_eq!(*made, 11);
    assert!(core.has("self-delete"), "the instance made after the delete is stored");
    let again = core.get_or_create::<u32, _>("self-delete", || unreachable!("stored")).unwrap();
    assert!(Instance::ptr_eq(&made, &again));
    assert_eq!(runs.load(SeqCst), 1);
    assert!(core.delete("self-delete"));
}

static SELF_DELETING_RUNS: AtomicUsize = AtomicUsize::new(0);
static SELF_DELETE_SAW: AtomicUsize = AtomicUsize::new(0);

#[singleton(factory = SelfDeleting::new)]
struct SelfDeleting(u32);

impl SelfDeleting {
    fn new() -> Self {
        SELF_DELETING_RUNS.fetch_add(1, SeqCst);
        thread::sleep(Duration::from_millis(1));
        if manager().delete(Self::SINGLETON_NAME) {
            SELF_DELETE_SAW.fetch_add(1, SeqCst);
        }
        SelfDeleting(5)
    }
}

#[test]
fn a_singleton_whose_factory_deletes_its_own_name_is_made_once_by_racing_threads() {
    let _global = global();
    let results = within("racing a factory that deletes its own name", || {
        let barrier = Arc::new(Barrier::new(RACERS));
        let racers: Vec<_> = (0..RACERS)
            .map(|_| {
                let barrier = Arc::clone(&barrier);
                thread::spawn(move || {
                    barrier.wait();
                    SelfDeleting::try_instance()
                })
            })
            .collect();
        racers.into_iter().map(|r| r.join().unwrap()).collect::<Vec<_>>()
    });
    let handles: Vec<Instance<SelfDeleting>> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(SELF_DELETING_RUNS.load(SeqCst), 1);
    assert_eq!(SELF_DELETE_SAW.load(SeqCst), 0, "nothing was stored while the factory ran");
    assert!(handles.iter().all(|h| Instance::ptr_eq(h, &handles[0]) && h.0 == 5));
    assert!(is_created(SelfDeleting::SINGLETON_NAME));
    assert!(Instance::ptr_eq(&SelfDeleting::instance(), &handles[0]));
}

static SELF_SET: Census = Census::new();

#[test]
fn a_factory_that_sets_its_own_name_returns_the_stored_instance_and_drops_the_other_once() {
    let core = Arc::new(SingletonCore::with_rate_limit(RateLimit::unlimited()));
    let c = Arc::clone(&core);
    let made = within("a factory setting its own name", move || {
        c.get_or_create("self-set", || {
            c.set("self-set", Canary::new(&SELF_SET)).unwrap();
            Canary::new(&SELF_SET)
        })
        .unwrap()
    });
    made.read();
    let stored = core.get::<Canary>("self-set").unwrap().expect("stored");
    assert!(Instance::ptr_eq(&made, &stored), "the call returns the instance the core holds");
    assert_eq!(SELF_SET.made.load(SeqCst), 2);
    assert_eq!(SELF_SET.dropped.load(SeqCst), 1, "the instance not stored is dropped at once");
    drop((made, stored));
    assert!(core.delete("self-set"));
    SELF_SET.assert_balanced("a factory that sets its own name");
}

/// Each round, 8 threads released by a barrier ask for a fresh name whose first factory run
/// fails (an error on even rounds, a panic on odd ones) after the others have started waiting.
/// Exactly one call fails; one waiter retries, once; everyone else gets its instance.
///
/// On a loaded machine some threads arrive only after the failure: they must get the same
/// instance too (on 749f33d this test failed in 30 of 120 runs on a loaded 2-core machine, with
/// `runs == 3`; `a_failed_creation_with_waiters_and_late_arrivals_still_makes_one_instance`
/// shows it every time). The retry takes a few milliseconds, which keeps this test clear of the
/// race that `a_creation_racing_a_failed_creators_clean_up_is_stored` shows (an instant
/// retry lost its instance in 4 of 60 loaded runs on f6e8295).
fn a_failed_creation_with_waiters(rounds: usize) {
    let core = Arc::new(SingletonCore::with_rate_limit(RateLimit::unlimited()));
    for round in 0..rounds {
        let name = format!("retry-{round}");
        let runs = Arc::new(AtomicUsize::new(0));
        let (core2, runs2) = (Arc::clone(&core), Arc::clone(&runs));
        let outcomes = within("a failing creation with waiters", move || {
            let barrier = Arc::new(Barrier::new(RACERS));
            let racers: Vec<_> = (0..RACERS)
                .map(|_| {
                    let (core, runs, barrier, name) =
                        (Arc::clone(&core2), Arc::clone(&runs2), Arc::clone(&barrier), name.clone());
                    thread::spawn(move || {
                        barrier.wait();
                        panic::catch_unwind(AssertUnwindSafe(|| {
                            core.get_or_try_create(&name, || {
                                let run = runs.fetch_add(1, SeqCst);
                                thread::sleep(Duration::from_millis(if run == 0 { 2 } else { 5 }));
                                if run > 0 {
                                    return Ok(round);
                                }
                                if round % 2 == 0 {
                                    Err("the first attempt fails")
                                } else {
                                    panic!("the first attempt panics")
                                }
                            })
                        }))
                    })
                })
                .collect();
            racers.into_iter().map(|r| r.join().unwrap()).collect::<Vec<_>>()
        });
        let mut ok: Vec<Instance<usize>> = Vec::new();
        let (mut errors, mut panics) = (0, 0);
        for outcome in outcomes {
            match outcome {
                Ok(Ok(h)) => ok.push(h),
                Ok(Err(SingletonError::Factory { .. })) => errors += 1,
                Ok(Err(other)) => panic!("round {round}: unexpected error {other}"),
                Err(payload) => {
                    assert_eq!(panic_message(&*payload), "the first attempt panics");
                    panics += 1;
                }
            }
        }
        let expected = if round % 2 == 0 { (1, 0) } else { (0, 1) };
        assert_eq!((errors, panics), expected, "round {round}: only the failing call fails");
        assert_eq!(runs.load(SeqCst), 2, "round {round}: one failure, then one creation");
        assert_eq!(ok.len(), RACERS - 1);
        assert!(ok.iter().all(|h| Instance::ptr_eq(h, &ok[0]) && **h == round), "round {round}");
    }
    let stats = core.stats().unwrap();
    let missing: Vec<String> =
        (0..rounds).map(|r| format!("retry-{r}")).filter(|n| !stats.singleton_names.contains(n)).collect();
    assert!(missing.is_empty(), "every name holds the instance it handed out; missing {missing:?}");
    assert_eq!(stats.total_singletons, rounds, "one instance per name, nothing else");
}

#[test]
fn a_failed_or_panicked_creation_with_waiters_is_retried_once_20_rounds() {
    a_failed_creation_with_waiters(20);
}

#[test]
#[ignore = "heavy: 500 rounds; `.ci/run` runs it with `--ignored` in release"]
fn heavy_a_failed_or_panicked_creation_with_waiters_is_retried_once_500_rounds() {
    within_for(HEAVY_DEADLINE, "failed creations with waiters", || a_failed_creation_with_waiters(500));
}

static WOBBLY_RUNS: AtomicUsize = AtomicUsize::new(0);
/// The run of this round that fails (the first one), or `usize::MAX`.
static WOBBLY_FAILS_AT: AtomicUsize = AtomicUsize::new(usize::MAX);
static WOBBLY_PANICS: AtomicBool = AtomicBool::new(false);

#[singleton(try_factory = Wobbly::load)]
struct Wobbly(usize);

impl Wobbly {
    fn load() -> Result<Self, std::io::Error> {
        let run = WOBBLY_RUNS.fetch_add(1, SeqCst);
        if run != WOBBLY_FAILS_AT.load(SeqCst) {
            return Ok(Wobbly(run));
        }
        thread::sleep(Duration::from_millis(2));
        if WOBBLY_PANICS.load(SeqCst) {
            panic!("wobbly panics");
        }
        Err(std::io::Error::other("wobbly fails"))
    }
}

/// The typed path of the same: `delete` between rounds; a `try_factory` whose first run of the
/// round fails or panics while the other threads wait; `try_instance()` and `instance()`.
#[test]
fn a_failed_or_panicked_typed_creation_with_waiters_is_retried_once() {
    let _global = global();
    for round in 0..20 {
        manager().delete(Wobbly::SINGLETON_NAME);
        assert!(!is_created(Wobbly::SINGLETON_NAME));
        let before = WOBBLY_RUNS.load(SeqCst);
        WOBBLY_FAILS_AT.store(before, SeqCst);
        WOBBLY_PANICS.store(round % 2 == 1, SeqCst);
        let outcomes = within("a failing typed creation with waiters", move || {
            let barrier = Arc::new(Barrier::new(RACERS));
            let racers: Vec<_> = (0..RACERS)
                .map(|t| {
                    let barrier = Arc::clone(&barrier);
                    thread::spawn(move || {
                        barrier.wait();
                        panic::catch_unwind(|| {
                            if t % 2 == 0 {
                                Wobbly::try_instance()
                            } else {
                                Ok(Wobbly::instance())
                            }
                        })
                    })
                })
                .collect();
            racers.into_iter().map(|r| r.join().unwrap()).collect::<Vec<_>>()
        });
        let (ok, failed): (Vec<_>, Vec<_>) = outcomes.into_iter().partition(|o| matches!(o, Ok(Ok(_))));
        assert_eq!(failed.len(), 1, "round {round}: only the call that ran the failing factory fails");
        match &failed[0] {
            Ok(Err(SingletonError::Factory { name, .. })) => assert_eq!(name, "wobbly"),
            Ok(Err(other)) => panic!("round {round}: unexpected error {other}"),
            Err(payload) => {
                let message = panic_message(&**payload);
                assert!(message.contains("wobbly"), "round {round}: {message}");
            }
            Ok(Ok(_)) => unreachable!(),
        }
        assert_eq!(WOBBLY_RUNS.load(SeqCst) - before, 2, "round {round}: one failure, then one creation");
        let ok: Vec<Instance<Wobbly>> = ok.into_iter().map(|o| o.unwrap().unwrap()).collect();
        assert!(ok.iter().all(|h| Instance::ptr_eq(h, &ok[0]) && h.0 == before + 1), "round {round}");
    }
    WOBBLY_FAILS_AT.store(usize::MAX, SeqCst);
}

// -------------------------------------------------------------------------------------------------
// Cycles entered from several threads at once
// -------------------------------------------------------------------------------------------------

/// Slows the cycles' factories on odd rounds, so that every thread has claimed its entry
/// before any asks for the next (the cycle then spans threads).
static SLOW_CYCLES: AtomicBool = AtomicBool::new(false);
static CYCLE_SERIAL: Mutex<()> = Mutex::new(());

fn pause() {
    if SLOW_CYCLES.load(SeqCst) {
        thread::sleep(Duration::from_millis(2));
    }
}

#[singleton(name = "tri_a", try_factory = TriA::load)]
struct TriA;
#[singleton(name = "tri_b", try_factory = TriB::load)]
struct TriB;
#[singleton(name = "tri_c", try_factory = TriC::load)]
struct TriC;

impl TriA {
    fn load() -> Result<Self, SingletonError> {
        pause();
        TriB::try_instance()?;
        Ok(TriA)
    }
}
impl TriB {
    fn load() -> Result<Self, SingletonError> {
        pause();
        TriC::try_instance()?;
        Ok(TriB)
    }
}
impl TriC {
    fn load() -> Result<Self, SingletonError> {
        pause();
        // Through the name-keyed path of the global core: the same registry.
        manager().get::<TriA>("tri_a")?;
        Ok(TriC)
    }
}

#[singleton(name = "ring_a", factory = RingA::new)]
struct RingA;
#[singleton(name = "ring_b", factory = RingB::new)]
struct RingB;
#[singleton(name = "ring_c", factory = RingC::new)]
struct RingC;

impl RingA {
    fn new() -> Self {
        pause();
        let _ = RingB::instance();
        RingA
    }
}
impl RingB {
    fn new() -> Self {
        pause();
        let _ = RingC::instance();
        RingB
    }
}
impl RingC {
    fn new() -> Self {
        pause();
        let _ = RingA::instance();
        RingC
    }
}

#[singleton(name = "self_loop", factory = SelfLoop::new)]
struct SelfLoop;

impl SelfLoop {
    fn new() -> Self {
        pause();
        let _ = SelfLoop::instance();
        SelfLoop
    }
}

/// The result must be the cycle `ring` (names in dependency order), entered anywhere: one more
/// name than the ring, first and last the same, each name followed by the one its factory asks
/// for.
#[track_caller]
fn assert_cycle_of(result: &Result<(), SingletonError>, ring: &[&str]) {
    let Err(SingletonError::Cycle { path }) = result else {
        panic!("expected the cycle {ring:?}, got {result:?}")
    };
    assert_eq!(path.len(), ring.len() + 1, "{path:?}");
    assert_eq!(path.first(), path.last(), "{path:?}");
    for step in path.windows(2) {
        let at = ring.iter().position(|n| *n == step[0]).unwrap_or_else(|| panic!("{path:?}"));
        assert_eq!(step[1], ring[(at + 1) % ring.len()], "{path:?} does not follow {ring:?}");
    }
}

/// Runs `entries` (one per thread, released together) `rounds` times; each result must come
/// within [`DEADLINE`] and be the cycle `ring`; nothing may be left created.
fn cycle_rounds(
    rounds: usize,
    ring: &'static [&'static str],
    entries: &[fn() -> Result<(), SingletonError>],
) {
    let _global = global();
    let _serial = serial(&CYCLE_SERIAL);
    for round in 0..rounds {
        SLOW_CYCLES.store(round % 2 == 1, SeqCst);
        let (tx, rx) = mpsc::channel();
        let barrier = Arc::new(Barrier::new(entries.len()));
        for (i, &entry) in entries.iter().enumerate() {
            let (tx, barrier) = (tx.clone(), Arc::clone(&barrier));
            thread::spawn(move || {
                barrier.wait();
                let _ = tx.send((i, panic::catch_unwind(entry)));
            });
        }
        for _ in entries {
            match rx.recv_timeout(DEADLINE) {
                Ok((_, Ok(result))) => assert_cycle_of(&result, ring),
                Ok((i, Err(payload))) => {
                    panic!("round {round}, entry {i} panicked: {}", panic_message(&*payload))
                }
                Err(_) => panic!("round {round}: a call entering the cycle {ring:?} hangs"),
            }
        }
    }
    SLOW_CYCLES.store(false, SeqCst);
    for name in ring {
        assert!(!is_created(name), "a cycle leaves nothing behind: `{name}`");
    }
}

#[test]
fn a_three_cycle_entered_from_three_threads_at_once_never_hangs() {
    cycle_rounds(
        30,
        &["tri_a", "tri_b", "tri_c"],
        &[
            || TriA::try_instance().map(drop),
            || manager().get::<TriB>("tri_b").map(drop),
            || TriC::try_instance().map(drop),
        ],
    );
}

#[test]
fn an_infallible_three_cycle_entered_from_three_threads_at_once_never_hangs() {
    cycle_rounds(
        30,
        &["ring_a", "ring_b", "ring_c"],
        &[
            || RingA::try_instance().map(drop),
            || RingB::try_instance().map(drop),
            || manager().get::<RingC>("ring_c").map(drop),
            || RingA::try_instance().map(drop),
        ],
    );
}

#[test]
fn a_self_cycle_entered_from_four_threads_at_once_never_hangs() {
    cycle_rounds(
        30,
        &["self_loop"],
        &[
            || SelfLoop::try_instance().map(drop),
            || SelfLoop::try_instance().map(drop),
            || manager().get::<SelfLoop>("self_loop").map(drop),
            || SelfLoop::try_instance().map(drop),
        ],
    );
}

#[test]
#[ignore = "heavy: 1000 rounds of each cycle; `.ci/run` runs it with `--ignored` in release"]
fn heavy_cycles_entered_from_several_threads_never_hang() {
    cycle_rounds(
        1000,
        &["tri_a", "tri_b", "tri_c"],
        &[
            || TriA::try_instance().map(drop),
            || manager().get::<TriB>("tri_b").map(drop),
            || TriC::try_instance().map(drop),
        ],
    );
    cycle_rounds(
        1000,
        &["ring_a", "ring_b", "ring_c"],
        &[
            || RingA::try_instance().map(drop),
            || RingB::try_instance().map(drop),
            || RingC::try_instance().map(drop),
        ],
    );
}

/// A two-name cycle through the name-keyed path of an isolated core (factories that call
/// `get_or_try_create` and pass its error up with `?`), entered from both ends at once.
fn name_keyed_cycle_rounds(rounds: usize) {
    type Core = Arc<SingletonCore>;
    fn left(core: &Core) -> Result<Instance<u8>, SingletonError> {
        core.get_or_try_create("left", || {
            pause_local();
            right(core).map(|_| 1_u8)
        })
    }
    fn right(core: &Core) -> Result<Instance<u8>, SingletonError> {
        core.get_or_try_create("right", || {
            pause_local();
            left(core).map(|_| 2_u8)
        })
    }
    fn pause_local() {
        thread::sleep(Duration::from_micros(500));
    }
    let core: Core = Arc::new(SingletonCore::with_rate_limit(RateLimit::unlimited()));
    for round in 0..rounds {
        let (tx, rx) = mpsc::channel();
        let barrier = Arc::new(Barrier::new(2));
        for side in 0..2 {
            let (tx, barrier, core) = (tx.clone(), Arc::clone(&barrier), Arc::clone(&core));
            thread::spawn(move || {
                barrier.wait();
                let result = if side == 0 { left(&core) } else { right(&core) };
                let _ = tx.send(result.map(drop));
            });
        }
        for _ in 0..2 {
            let result = rx.recv_timeout(DEADLINE).unwrap_or_else(|_| panic!("round {round}: a call hangs"));
            assert_cycle_of(&result, &["left", "right"]);
        }
    }
    let stats = core.stats().unwrap();
    assert_eq!(stats.total_singletons, 0, "a cycle leaves nothing behind");
}

#[test]
fn a_name_keyed_cycle_entered_from_both_ends_at_once_never_hangs() {
    name_keyed_cycle_rounds(30);
}

#[test]
fn unrelated_work_goes_on_while_threads_sit_in_a_cycle() {
    // While two threads are inside a cycle's factories, other names are still served.
    let core = Arc::new(SingletonCore::with_rate_limit(RateLimit::unlimited()));
    let c = Arc::clone(&core);
    let served = within("other names while a cycle is being found", move || {
        let (in_factory_tx, in_factory_rx) = mpsc::channel::<()>();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let cc = Arc::clone(&c);
        let cycle = thread::spawn(move || {
            cc.get_or_try_create("outer", || {
                in_factory_tx.send(()).unwrap();
                let _ = go_rx.recv_timeout(DEADLINE);
                cc.get_or_try_create("outer", || Ok::<_, SingletonError>(0_u8)).map(|_| 1_u8)
            })
            .map(drop)
        });
        in_factory_rx.recv_timeout(DEADLINE).unwrap();
        let served = c.get_or_create("unrelated", || 9_u8).map(|h| *h);
        go_tx.send(()).unwrap();
        (served, cycle.join().unwrap())
    });
    assert_eq!(served.0.unwrap(), 9);
    assert_cycle_of(&served.1, &["outer"]);
    assert!(!core.has("outer"));
}

static REENTRANT: Census = Census::new();

/// A value whose `Drop` uses the core that holds it.
struct Reentrant {
    core: std::sync::Weak<SingletonCore>,
    name: &'static str,
    _canary: Canary,
}

impl Reentrant {
    fn new(core: &Arc<SingletonCore>, name: &'static str) -> Self {
        Reentrant { core: Arc::downgrade(core), name, _canary: Canary::new(&REENTRANT) }
    }
}

impl Drop for Reentrant {
    fn drop(&mut self) {
        if let Some(core) = self.core.upgrade() {
            let _ = core.has(self.name);
            let _ = core.get::<Reentrant>(self.name).map(|h| h.map(|h| h.name));
            core.set("dropped", self.name).unwrap();
            core.stats().unwrap();
            core.delete("dropped-too");
        }
    }
}

/// Every way the core lets go of a value (`set` over it, `delete`, `clear`, the last handle
/// after a `delete`, a creation that loses to a `set` from its own factory) runs the value's
/// `Drop` with no lock held: a `Drop` that uses the core does not deadlock.
#[test]
fn a_value_whose_drop_uses_the_core_is_let_go_of_without_deadlock() {
    within("drops that use the core", || {
        let core = Arc::new(SingletonCore::with_rate_limit(RateLimit::unlimited()));
        core.set("re", Reentrant::new(&core, "re")).unwrap();
        core.set("re", Reentrant::new(&core, "re")).unwrap(); // replaces: the first is dropped
        assert!(core.delete("re"));
        core.set("re", Reentrant::new(&core, "re")).unwrap();
        let held = core.get::<Reentrant>("re").unwrap().unwrap();
        core.get_or_create("re2", || Reentrant::new(&core, "re2")).unwrap();
        assert!(core.clear() >= 2);
        drop(held); // the last handle: dropped here
        let c = Arc::clone(&core);
        let made = core
            .get_or_create("re3", || {
                c.set("re3", Reentrant::new(&c, "re3")).unwrap();
                Reentrant::new(&c, "re3") // loses to the set: dropped inside the creation
            })
            .unwrap();
        assert_eq!(made.name, "re3");
        drop(made);
        core.clear();
        drop(core);
    });
    REENTRANT.assert_balanced("values whose Drop uses the core");
}

// -------------------------------------------------------------------------------------------------
// Regressions: library bugs these tests found on 749f33d, fixed in f6e8295
// -------------------------------------------------------------------------------------------------

/// How many names the core's map holds, as its `Debug` shows (`names: N`): the one public view
/// of an entry that holds no instance.
fn map_size(core: &SingletonCore) -> usize {
    let shown = format!("{core:?}");
    let at = shown.find("names: ").unwrap_or_else(|| panic!("no `names: ` in {shown}")) + "names: ".len();
    shown[at..].split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
}

#[test]
fn a_failing_factory_leaves_no_entry_behind() {
    let core = SingletonCore::with_rate_limit(RateLimit::unlimited());
    let before = map_size(&core);
    for i in 0..10 {
        let r = core.get_or_try_create::<u32, _, _>(&format!("fails-{i}"), || Err("no"));
        assert!(matches!(r, Err(SingletonError::Factory { .. })));
    }
    assert_eq!(map_size(&core), before, "a failed creation leaves no entry in the map");
}

/// Found on 749f33d: `get_or_try_create` removed the entry a failed creation leaves
/// (`forget_if_empty`) only when the factory returned `Err`; a panic unwound past that, so each
/// name whose factory panicked kept an empty entry forever (`delete` and `clear` skip entries
/// without an instance): the map grew with every new name whose factory panicked
/// (`left: 25, right: 15` below).
#[test]
fn a_panicking_factory_leaves_no_entry_behind() {
    let core = SingletonCore::with_rate_limit(RateLimit::unlimited());
    let before = map_size(&core);
    for i in 0..10 {
        let caught = panic::catch_unwind(AssertUnwindSafe(|| {
            core.get_or_create::<u32, _>(&format!("panics-{i}"), || panic!("the factory panics"))
        }));
        assert!(caught.is_err());
    }
    core.clear();
    assert_eq!(map_size(&core), before, "a panicked creation leaves no entry in the map");
}

/// Found on 749f33d: waiters of a failed creation retried in the entry they waited on, but the
/// failed creator then removed that entry from the map (`forget_if_empty`: it was still empty,
/// the retry was running). A caller arriving during the retry found no entry, made a second one
/// and ran the factory again, in parallel: two instances for one name, the waiters' one not
/// stored. Round 0 failed with `runs == 3`, values `[1, 1, 1, 2, 2, 2, 2]`.
fn a_failed_creation_with_waiters_and_late_arrivals(rounds: usize) {
    const EARLY: usize = 4;
    const LATE: usize = 4;
    let core = Arc::new(SingletonCore::with_rate_limit(RateLimit::unlimited()));
    for round in 0..rounds {
        let name = format!("late-{round}");
        let runs = Arc::new(AtomicUsize::new(0));
        let barrier = Arc::new(Barrier::new(EARLY + LATE));
        let (core2, runs2, name2) = (Arc::clone(&core), Arc::clone(&runs), name.clone());
        let results = within("a failed creation with waiters and late arrivals", move || {
            let callers: Vec<_> = (0..EARLY + LATE)
                .map(|t| {
                    let (core, runs, barrier, name) =
                        (Arc::clone(&core2), Arc::clone(&runs2), Arc::clone(&barrier), name2.clone());
                    thread::spawn(move || {
                        barrier.wait();
                        if t >= EARLY {
                            // Arrive while the retry runs (the first run failed, the second began).
                            while runs.load(SeqCst) < 2 {
                                thread::yield_now();
                            }
                            thread::sleep(Duration::from_millis(1));
                        }
                        core.get_or_try_create(&name, || {
                            let run = runs.fetch_add(1, SeqCst);
                            thread::sleep(Duration::from_millis(4));
                            if run == 0 {
                                Err("the first attempt fails")
                            } else {
                                Ok(run)
                            }
                        })
                    })
                })
                .collect();
            callers.into_iter().map(|c| c.join().unwrap()).collect::<Vec<_>>()
        });
        let ok: Vec<&Instance<usize>> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        let values: Vec<usize> = ok.iter().map(|h| ***h).collect();
        assert_eq!(ok.len(), EARLY + LATE - 1, "round {round}: only the first call fails");
        assert_eq!(runs.load(SeqCst), 2, "round {round}: one failure, then one creation; values {values:?}");
        assert!(ok.iter().all(|h| Instance::ptr_eq(h, ok[0])), "round {round}: one instance: {values:?}");
        let stored = core.get::<usize>(&name).unwrap().expect("stored");
        assert!(Instance::ptr_eq(&stored, ok[0]), "round {round}: the instance handed out is the stored one");
    }
}

#[test]
fn a_failed_creation_with_waiters_and_late_arrivals_still_makes_one_instance() {
    a_failed_creation_with_waiters_and_late_arrivals(5);
}

/// Found on 749f33d: `instance()` reports a cycle found under a factory by unwinding, and leaves
/// the cycle's path in a thread-local (`PENDING_CYCLE`) for the creation that catches the unwind.
/// A factory that caught that unwind itself (coping with an optional dependency) left the
/// thread-local set; the next factory on that thread that panicked for its own reason then had
/// its panic swallowed and turned into `Err(Cycle { path: ["self_loop", "self_loop"] })`.
#[test]
fn a_cycle_caught_inside_a_factory_does_not_turn_a_later_panic_into_a_cycle() {
    let _global = global();
    let _serial = serial(&CYCLE_SERIAL);
    within("a cycle caught inside a factory", || {
        let core = SingletonCore::with_rate_limit(RateLimit::unlimited());
        let tolerant = core.get_or_create("tolerant", || {
            let optional = panic::catch_unwind(|| drop(SelfLoop::instance()));
            assert!(optional.is_err(), "a cycle panics out of instance()");
            1_u8
        });
        assert_eq!(*tolerant.unwrap(), 1);
        // Later, on the same thread, an unrelated factory panics: the panic goes on to the caller.
        let later = panic::catch_unwind(AssertUnwindSafe(|| {
            core.get_or_create::<u8, _>("boom", || panic!("boom")).map(|h| *h)
        }));
        match later {
            Err(payload) => assert_eq!(panic_message(&*payload), "boom"),
            Ok(result) => panic!("the factory's panic was swallowed: the call returned {result:?}"),
        }
    });
}

// -------------------------------------------------------------------------------------------------
// Races left in f6e8295's fix (fixed: the entry's emptiness is checked under the creation lock)
// -------------------------------------------------------------------------------------------------

/// Found on f6e8295 (fixing the above): a failed creator's clean-up (`forget_if_empty`) checks that the entry is
/// empty, and only then takes the creation lock to see that nobody creates in it or waits for it
/// (`detach_if_idle`). In between, a waiter can claim the entry, create, store and finish; the
/// clean-up then finds the entry idle and removes it from the map, instance and all: the instance
/// everyone was handed is not stored (`get` says `None`, the next `get_or_create` runs the
/// factory again). Seen in about 1 to 2% of rounds whose first factory panics (the clean-up then
/// runs while unwinding) in a debug build (rarer in release): rounds run until the first such
/// one, for at most `budget`.
fn a_creation_racing_a_failed_creators_clean_up(
    budget: Duration,
    racers: usize,
    panics: bool,
) -> Vec<String> {
    let core = Arc::new(SingletonCore::with_rate_limit(RateLimit::unlimited()));
    let until = Instant::now() + budget;
    let mut lost = Vec::new();
    let mut round = 0;
    while lost.is_empty() && Instant::now() < until {
        round += 1;
        let name = format!("cleanup-{round}");
        let runs = Arc::new(AtomicUsize::new(0));
        let barrier = Arc::new(Barrier::new(racers));
        let callers: Vec<_> = (0..racers)
            .map(|_| {
                let (core, runs, barrier, name) =
                    (Arc::clone(&core), Arc::clone(&runs), Arc::clone(&barrier), name.clone());
                thread::spawn(move || {
                    barrier.wait();
                    panic::catch_unwind(AssertUnwindSafe(|| {
                        core.get_or_try_create(&name, || {
                            if runs.fetch_add(1, SeqCst) > 0 {
                                return Ok(round);
                            }
                            thread::sleep(Duration::from_millis(1));
                            if panics {
                                panic!("the first attempt panics");
                            }
                            Err("the first attempt fails")
                        })
                    }))
                    .ok()
                    .and_then(Result::ok)
                })
            })
            .collect();
        let handed: Vec<Instance<usize>> = callers.into_iter().filter_map(|r| r.join().unwrap()).collect();
        match core.get::<usize>(&name).unwrap() {
            Some(stored) if handed.iter().all(|h| Instance::ptr_eq(h, &stored)) => {}
            stored => lost.push(format!(
                "round {round}: {} callers were handed value {:?}, the core holds {:?} (factory runs: {})",
                handed.len(),
                handed.first().map(|h| **h),
                stored.map(|h| *h),
                runs.load(SeqCst)
            )),
        }
    }
    lost
}

/// Found on f6e8295: `delete` empties the entry's slot, and only then asks whether the entry is
/// idle (`detach_if_idle`) to remove it from the map. A caller that already holds the entry can
/// create in it in between (it is empty and still attached), store, and finish; `delete` then
/// finds it idle and removes it with the new instance: `stored None` although a creation came
/// after the delete, or a second creation (`factory runs 2`) by the next caller. About 1 round in
/// 6000 in a debug build (rarer in release): rounds run until the first such one, for at most
/// `budget` (8 s: some 45 000 rounds). (`clear` swaps and detaches the same way.)
fn a_creation_racing_a_delete(budget: Duration, racers: usize, calls: usize) -> Vec<String> {
    let until = Instant::now() + budget;
    let core = Arc::new(SingletonCore::with_rate_limit(RateLimit::unlimited()));
    let mut lost = Vec::new();
    // One name for every round (a new name per round would make each insert copy a growing map).
    let name = String::from("deleted");
    let mut round = 0;
    while lost.is_empty() && Instant::now() < until {
        round += 1;
        core.set(&name, usize::MAX).unwrap();
        let runs = Arc::new(AtomicUsize::new(0));
        let barrier = Arc::new(Barrier::new(racers + 1));
        let deleter = {
            let (core, barrier, name) = (Arc::clone(&core), Arc::clone(&barrier), name.clone());
            thread::spawn(move || {
                barrier.wait();
                assert!(core.delete(&name));
            })
        };
        let callers: Vec<_> = (0..racers)
            .map(|_| {
                let (core, runs, barrier, name) =
                    (Arc::clone(&core), Arc::clone(&runs), Arc::clone(&barrier), name.clone());
                thread::spawn(move || {
                    barrier.wait();
                    let mut last = None;
                    for _ in 0..calls {
                        last = Some(core.get_or_create(&name, || runs.fetch_add(1, SeqCst)).unwrap());
                    }
                    last.unwrap()
                })
            })
            .collect();
        deleter.join().unwrap();
        let last: Vec<Instance<usize>> = callers.into_iter().map(|c| c.join().unwrap()).collect();
        let stored = core.get::<usize>(&name).unwrap();
        let made = runs.load(SeqCst);
        // One delete: either every call came before it (nothing made, nothing stored), or exactly
        // one creation came after it, and that instance is stored and is what the later calls got.
        let ok = match (&stored, made) {
            (None, 0) => true,
            (Some(s), 1) => {
                **s == 0 && last.iter().filter(|h| ***h != usize::MAX).all(|h| Instance::ptr_eq(h, s))
            }
            _ => false,
        };
        if !ok {
            lost.push(format!(
                "round {round}: factory runs {made}, last values {:?}, stored {:?}",
                last.iter().map(|h| **h).collect::<Vec<_>>(),
                stored.map(|h| *h)
            ));
        }
    }
    lost
}

#[test]
fn a_creation_racing_a_failed_creators_clean_up_is_stored() {
    let lost = within("creations racing a failed creator's clean-up", || {
        a_creation_racing_a_failed_creators_clean_up(Duration::from_secs(2), RACERS, true)
    });
    assert!(lost.is_empty(), "a creation racing a failed creator's clean-up: {lost:?}");
}

#[test]
fn a_creation_racing_a_delete_is_stored_and_made_once() {
    let lost =
        within("creations racing a delete", || a_creation_racing_a_delete(Duration::from_secs(2), 1, 20));
    assert!(lost.is_empty(), "a creation racing a delete: {lost:?}");
}
