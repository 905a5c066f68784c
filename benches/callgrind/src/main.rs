//! Instruction counts of singleton-kit's hot paths, for callgrind: `callgrind-bench <op> <N>`
//! runs one operation `N` times in a loop, with `black_box` around its inputs and outputs.
//!
//! Callgrind counts every instruction of the process, start-up and exit included, and the count
//! is deterministic. `.ci/callgrind` runs each op twice, with `N1` and `N2` iterations, and takes
//! `(Ir(N2) - Ir(N1)) / (N2 - N1)`: what the two runs share (process start, the warm-up below,
//! teardown) cancels, and what is left is the cost of one iteration. That includes the loop
//! itself (counter, compare, branch, the `black_box`es), which the op `empty` reports alone.
//!
//! Before its loop, each op warms what it measures (creates the instance, registers the names,
//! fills the limiter's window, makes one call), so the loop runs the steady-state path only.
//!
//! Ops: `empty`, `lazylock` (deref of a `static LazyLock<u64>`), `with_instance`
//! (`T::with_instance(|t| ..)` of a `#[singleton]`), `instance` (`T::instance()` taken and
//! dropped), `get_typed` (`manager().get::<T>(name)` of the `#[singleton]`'s name, limit off),
//! `get_set` (`manager().get::<T>(name)` of a name stored by `set`, limit off), `has_admitted`
//! (`has` on a core whose exact sliding window admits every call) and `has_refused` (`has` on a
//! core whose limit refuses every call after the first), and two baselines: `arc_clone` (an
//! `Arc` clone of a global, dropped) and `map_baseline` (a `RwLock<HashMap<String, Arc<dyn Any>>>`
//! lookup, clone and downcast, what `get` is compared with).
//!
//! Under valgrind the clock is read through a system call (no vDSO), whose kernel instructions
//! callgrind does not count: the `has_*` counts leave out most of the clock read's cost.

use std::any::Any;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, DefaultHasher};
use std::hint::black_box;
use std::process::ExitCode;
use std::sync::{Arc, LazyLock, RwLock};
use std::time::Duration;

use singleton_kit::{manager, singleton, RateLimit, SingletonCore};

/// The `#[singleton]` under test.
#[singleton]
#[derive(Default)]
pub struct Hot {
    value: u64,
}

/// The baseline: a plain lazily initialised static.
static LAZY: LazyLock<u64> = LazyLock::new(|| 42);

/// A name stored at run time by `set`, in the global core.
const SET_NAME: &str = "callgrind_set";

/// The name `has` asks the limited cores for.
const PROBE: &str = "probe";

/// How many admissions the `has_admitted` core's window holds. Its window is 1 ns, so the
/// oldest of them has always left it when the next call comes: every call is admitted, through
/// the full sliding-window check (once `ADMITTED_MAX_OPS` calls have filled the ring).
const ADMITTED_MAX_OPS: u32 = 64;

const OPS: &[&str] = &[
    "empty",
    "lazylock",
    "with_instance",
    "instance",
    "get_typed",
    "get_set",
    "has_admitted",
    "has_refused",
    "arc_clone",
    "map_baseline",
];

/// Runs `f` `n` times, its output through `black_box`.
#[inline(never)]
fn run<R>(n: u64, mut f: impl FnMut() -> R) {
    for _ in 0..black_box(n) {
        black_box(f());
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let usage = || {
        eprintln!("usage: callgrind-bench <op> <N>\nops: {}", OPS.join(" "));
        ExitCode::from(2)
    };
    let [_, op, n] = args.as_slice() else { return usage() };
    let Ok(n) = n.parse::<u64>() else { return usage() };

    match op.as_str() {
        "empty" => run(n, || black_box(())),
        "lazylock" => {
            assert_eq!(*LAZY, 42);
            run(n, || **black_box(&LAZY));
        }
        "with_instance" => {
            assert_eq!(Hot::with_instance(|h| h.value), 0);
            run(n, || Hot::with_instance(|h| black_box(h).value));
        }
        "instance" => {
            drop(Hot::instance());
            run(n, || drop(black_box(Hot::instance())));
        }
        "get_typed" => {
            manager().set_rate_limit(RateLimit::unlimited());
            drop(Hot::instance());
            let got = manager().get::<Hot>(Hot::SINGLETON_NAME).expect("limit off");
            assert!(got.is_some(), "`{}` is registered", Hot::SINGLETON_NAME);
            run(n, || manager().get::<Hot>(black_box(Hot::SINGLETON_NAME)));
        }
        "get_set" => {
            manager().set_rate_limit(RateLimit::unlimited());
            manager().set(SET_NAME, 7_u64).expect("limit off");
            let got = manager().get::<u64>(SET_NAME).expect("limit off");
            assert_eq!(got.as_deref(), Some(&7));
            run(n, || manager().get::<u64>(black_box(SET_NAME)));
        }
        "has_admitted" => {
            let core =
                SingletonCore::with_rate_limit(RateLimit::new(ADMITTED_MAX_OPS, Duration::from_nanos(1)));
            core.set(PROBE, 0_u8).expect("the first operation is admitted");
            for _ in 0..2 * ADMITTED_MAX_OPS {
                assert!(core.has(PROBE), "every call is admitted");
            }
            run(n, || core.has(black_box(PROBE)));
            assert!(core.has(PROBE), "still admitted after the loop");
        }
        "has_refused" => {
            let core = SingletonCore::with_rate_limit(RateLimit::new(1, Duration::from_secs(3600)));
            core.set(PROBE, 0_u8).expect("the first operation is admitted");
            assert!(!core.has(PROBE), "every call after the first is refused");
            run(n, || core.has(black_box(PROBE)));
        }
        "arc_clone" => {
            static ARC: LazyLock<Arc<u64>> = LazyLock::new(|| Arc::new(42));
            let arc: &Arc<u64> = &ARC;
            run(n, || Arc::clone(black_box(arc)));
        }
        "map_baseline" => {
            // std's SipHash with fixed keys: a `RandomState` changes the probe lengths, and so
            // the count, from one run to the next.
            type Fixed = BuildHasherDefault<DefaultHasher>;
            let map: RwLock<HashMap<String, Arc<dyn Any + Send + Sync>, Fixed>> = RwLock::default();
            map.write().unwrap().insert("hot".to_owned(), Arc::new(7_u64));
            let get = |name: &str| {
                let found = map.read().unwrap_or_else(|e| e.into_inner()).get(name).cloned();
                found.and_then(|v| v.downcast::<u64>().ok())
            };
            assert_eq!(get("hot").as_deref(), Some(&7));
            run(n, || get(black_box("hot")));
        }
        _ => return usage(),
    }
    ExitCode::SUCCESS
}
