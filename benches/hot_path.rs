//! The accessors, each group with its baselines in the same run:
//!
//! - `instance/1_thread`, `instance/2_threads`: the typed `T::instance()` (handle dropped each
//!   iteration) against a `LazyLock` deref, a `LazyLock` plus one shared `AtomicU64` counter, an
//!   `Arc` clone of a global, arc-swap `load` / `load_full`, and the crates.io crate
//!   singleton-registry's typed `get`;
//! - `get_by_name/..`: `manager().get::<T>(name)` with the rate limit off, against a
//!   `RwLock<HashMap<String, Arc<dyn Any>>>` lookup + downcast holding as many names;
//! - `limiter/..`: `has(name)` on a core with no limit and on one with an exact sliding window
//!   (the difference is the limiter's admission check), against a `Mutex<VecDeque<Instant>>`
//!   sliding-window check (the Python design's limiter).
//!
//! The 2-thread cases run a fixed number of operations on each of two threads that start
//! together (a `Barrier`); the time reported is the slower thread's, per operation: the cost of
//! one operation as each thread sees it while the other does the same. Perfect scaling keeps it
//! equal to the 1-thread figure; a cache line written by both threads makes it grow. On a busy
//! machine the two threads may take turns on one core instead of running at once, which hides
//! contention: a run in which they did not both hold a CPU for 90% of an overlapping span is
//! repeated (up to 4 times).
//!
//! `cargo bench --bench hot_path`; `cargo run --release --example bench` prints the same
//! comparisons as one table of medians and ratios.

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, LazyLock, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use criterion::{criterion_group, criterion_main, Criterion};
use singleton_kit::{manager, singleton, RateLimit, SingletonCore};

/// The singleton under test.
#[singleton]
#[derive(Default)]
pub struct Hot {
    value: u64,
}

/// How many other names the core and the `HashMap` baseline hold next to `hot`.
const FILLER_NAMES: usize = 1000;

static LAZY: LazyLock<Hot> = LazyLock::new(Hot::default);
static SHARED_COUNTER: AtomicU64 = AtomicU64::new(0);
static ARC: LazyLock<Arc<Hot>> = LazyLock::new(|| Arc::new(Hot::default()));
static SWAP: LazyLock<ArcSwap<Hot>> = LazyLock::new(|| ArcSwap::from_pointee(Hot::default()));
type AnyMap = HashMap<String, Arc<dyn Any + Send + Sync>>;
static MAP: LazyLock<RwLock<AnyMap>> = LazyLock::new(|| {
    let mut map: AnyMap = HashMap::new();
    map.insert(Hot::SINGLETON_NAME.to_owned(), Arc::new(Hot::default()));
    for i in 0..FILLER_NAMES {
        map.insert(format!("filler_{i}"), Arc::new(i as u64));
    }
    RwLock::new(map)
});

singleton_registry::define_registry!(baseline_registry);

/// The seed design's limiter: a deque of admission times under a mutex.
struct SlidingWindow {
    max_ops: usize,
    window: Duration,
    times: VecDeque<Instant>,
}

impl SlidingWindow {
    fn new(limit: RateLimit) -> Mutex<Self> {
        Mutex::new(Self {
            max_ops: limit.max_ops().map_or(usize::MAX, |m| m as usize),
            window: limit.window(),
            times: VecDeque::new(),
        })
    }
}

fn sliding_window_check(w: &Mutex<SlidingWindow>) -> bool {
    let mut w = w.lock().unwrap_or_else(PoisonError::into_inner);
    let now = Instant::now();
    while let Some(&oldest) = w.times.front() {
        if now.duration_since(oldest) >= w.window {
            w.times.pop_front();
        } else {
            break;
        }
    }
    if w.times.len() < w.max_ops {
        w.times.push_back(now);
        true
    } else {
        false
    }
}

/// A limit whose every check is admitted at benchmark speed (a million checks take far more than a
/// millisecond plus the clock's tick), so the measured path is the steady state of an exact window that is full and
/// slides: read the oldest time, compare, replace it.
fn sliding_limit() -> RateLimit {
    RateLimit::new(1_000_000, Duration::from_millis(1))
}

/// How long the calling thread has been on a CPU, where the platform says.
#[cfg(target_os = "linux")]
fn thread_cpu_time() -> Option<Duration> {
    use std::ffi::{c_int, c_long};
    #[repr(C)]
    struct Timespec {
        tv_sec: c_long,
        tv_nsec: c_long,
    }
    extern "C" {
        fn clock_gettime(clock: c_int, tp: *mut Timespec) -> c_int;
    }
    const CLOCK_THREAD_CPUTIME_ID: c_int = 3;
    let mut ts = Timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid `struct timespec` to write to.
    let ok = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) } == 0;
    ok.then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

#[cfg(not(target_os = "linux"))]
fn thread_cpu_time() -> Option<Duration> {
    None
}

/// A run is clean when its threads were each on a CPU at least this share of their time, and
/// overlapped by that much (on a busy machine they may otherwise run one after the other).
const CLEAN_SHARE: f64 = 0.9;

/// Runs `op` `iters` times on each of `threads` threads released together; returns the slowest
/// thread's time. A run that was not clean is tried again, up to 4 times in all.
fn on_threads(threads: usize, iters: u64, op: impl Fn() + Sync) -> Duration {
    let mut wall = Duration::ZERO;
    for _ in 0..4 {
        let (w, clean) = run_once(threads, iters, &op);
        wall = w;
        if clean {
            break;
        }
    }
    wall
}

fn run_once(threads: usize, iters: u64, op: &(impl Fn() + Sync)) -> (Duration, bool) {
    let barrier = Barrier::new(threads);
    let spans: Vec<(Instant, Instant, f64)> = std::thread::scope(|s| {
        let running: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    let cpu = thread_cpu_time();
                    let start = Instant::now();
                    for _ in 0..iters {
                        op();
                    }
                    let end = Instant::now();
                    let share = match (cpu, thread_cpu_time()) {
                        (Some(a), Some(b)) => {
                            b.saturating_sub(a).as_secs_f64() / (end - start).as_secs_f64().max(1e-9)
                        }
                        _ => 1.0,
                    };
                    (start, end, share)
                })
            })
            .collect();
        running.into_iter().map(|t| t.join().expect("benchmark thread")).collect()
    });
    let wall = spans.iter().map(|&(start, end, _)| end - start).max().unwrap_or_default();
    let first_end = spans.iter().map(|s| s.1).min().expect("a thread");
    let last_start = spans.iter().map(|s| s.0).max().expect("a thread");
    let overlap =
        first_end.saturating_duration_since(last_start).as_secs_f64() / wall.as_secs_f64().max(1e-9);
    let share = spans.iter().map(|s| s.2).fold(1.0, f64::min);
    (wall, share >= CLEAN_SHARE && overlap >= CLEAN_SHARE)
}

fn setup() {
    manager().set_rate_limit(RateLimit::unlimited());
    for i in 0..FILLER_NAMES {
        manager().set(&format!("filler_{i}"), i as u64).expect("unlimited");
    }
    baseline_registry::register(Hot::default());
    LazyLock::force(&LAZY);
    LazyLock::force(&ARC);
    LazyLock::force(&SWAP);
    LazyLock::force(&MAP);
    drop(Hot::instance());
}

macro_rules! cases {
    ($c:expr, $group:expr, $threads:expr, { $($name:literal => $op:expr,)* }) => {{
        let mut g = $c.benchmark_group($group);
        $(
            g.bench_function($name, |b| b.iter_custom(|iters| on_threads($threads, iters, || {
                black_box($op);
            })));
        )*
        g.finish();
    }};
}

fn instance(c: &mut Criterion) {
    setup();
    for (group, threads) in [("instance/1_thread", 1), ("instance/2_threads", 2)] {
        cases!(c, group, threads, {
            "instance" => black_box(Hot::instance().value),
            "lazylock_deref" => black_box(black_box(&LAZY).value),
            "lazylock_shared_atomic" => {
                black_box(&SHARED_COUNTER).fetch_add(1, Ordering::Relaxed);
                black_box(black_box(&LAZY).value)
            },
            "arc_clone" => black_box(Arc::clone(black_box(&*ARC)).value),
            "arc_swap_load" => black_box(black_box(&*SWAP).load().value),
            "arc_swap_load_full" => black_box(black_box(&*SWAP).load_full().value),
            "singleton_registry_get" => black_box(baseline_registry::get::<Hot>().expect("registered").value),
        });
    }
}

fn get_by_name(c: &mut Criterion) {
    setup();
    let name = Hot::SINGLETON_NAME;
    for (group, threads) in [("get_by_name/1_thread", 1), ("get_by_name/2_threads", 2)] {
        cases!(c, group, threads, {
            "manager_get" => {
                let h = manager().get::<Hot>(black_box(name)).expect("unlimited").expect("registered");
                black_box(h.value)
            },
            "rwlock_hashmap_downcast" => {
                let map = MAP.read().unwrap_or_else(PoisonError::into_inner);
                let any = map.get(black_box(name)).cloned();
                drop(map);
                let h = any.expect("inserted").downcast::<Hot>().expect("a Hot");
                black_box(h.value)
            },
        });
    }
}

fn limiter(c: &mut Criterion) {
    let unlimited = SingletonCore::with_rate_limit(RateLimit::unlimited());
    let limited = SingletonCore::with_rate_limit(sliding_limit());
    unlimited.set("probe", 0_u8).expect("unlimited");
    limited.set("probe", 0_u8).expect("first operation");
    let window = SlidingWindow::new(sliding_limit());
    for (group, threads) in [("limiter/1_thread", 1), ("limiter/2_threads", 2)] {
        cases!(c, group, threads, {
            "has_unlimited" => black_box(unlimited.has(black_box("probe"))),
            "has_sliding_window" => black_box(limited.has(black_box("probe"))),
            "mutex_vecdeque_check" => black_box(sliding_window_check(black_box(&window))),
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = instance, get_by_name, limiter
}
criterion_main!(benches);
