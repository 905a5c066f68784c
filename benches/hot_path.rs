//! The accessors, each group with its baselines in the same run:
//!
//! - `instance/1_thread`, `instance/2_threads`: the typed `T::with_instance(|t| ..)` (a borrow,
//!   no handle) and `T::instance()` (handle dropped each iteration) against a `LazyLock` deref, a `LazyLock` plus one shared `AtomicU64` counter, an
//!   `Arc` clone of a global, arc-swap `load` / `load_full`, and the crates.io crate
//!   singleton-registry's typed `get`;
//! - `get_by_name/..`: `manager().get::<T>(name)` with the rate limit off, for the `#[singleton]`
//!   type's name and for a name stored by `set` among 1,000 others, against a
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

use std::hint::black_box;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use singleton_kit::{manager, RateLimit};

#[path = "support/mod.rs"]
mod support;

use support::{limiter_subjects, sliding_window_check, ATTEMPTS};

/// How many other names the core and the `HashMap` baseline hold next to `hot`.
const FILLER_NAMES: usize = 1000;

support::hot_and_baselines!(map_names: (0..FILLER_NAMES).map(|i| (format!("filler_{i}"), i as u64)));

/// Runs `op` `iters` times on each of `threads` threads released together; returns the slowest
/// thread's time. A run that was not clean is tried again, up to `ATTEMPTS` times in all.
fn on_threads(threads: usize, iters: u64, op: impl Fn() + Sync) -> Duration {
    let mut wall = Duration::ZERO;
    for _ in 0..ATTEMPTS {
        let run = support::on_threads(threads, iters, &op);
        wall = run.wall;
        if run.clean {
            break;
        }
    }
    wall
}

fn setup() {
    manager().set_rate_limit(RateLimit::unlimited());
    for i in 0..FILLER_NAMES {
        manager().set(&format!("filler_{i}"), i as u64).expect("unlimited");
    }
    manager().set(SET_NAME, Hot::default()).expect("unlimited");
    prepare_baselines();
}

/// A name stored by `set`, read through the run-time names.
const SET_NAME: &str = "hot_set_by_name";

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
            "with_instance" => black_box(Hot::with_instance(|h| h.value)),
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
            "manager_get_set_name" => {
                let h = manager().get::<Hot>(black_box(SET_NAME)).expect("unlimited").expect("stored");
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
    let (unlimited, limited, window) = limiter_subjects();
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
    config = support::criterion_config();
    targets = instance, get_by_name, limiter
}
criterion_main!(benches);
