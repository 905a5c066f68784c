//! Every row of the SPEC's operation table through the facade, on isolated cores: the normal
//! results, the rate-limited results, the legacy aliases, invalid names, type mismatches, drop
//! order, handles that outlive the core's copy, racing and failing factories, access counts,
//! and `execute` with operations given as data.
//!
//! Every core here is isolated (`SingletonCore::new()` / `with_rate_limit` / `with_clock`), and
//! every stored name starts with `op-`, which no `#[singleton]` type can claim by default. A
//! [`ManualClock`] moves time, so nothing sleeps for the rate limit.

use std::any::type_name;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use singleton_kit::{
    Instance, ManualClock, RateLimit, Request, Response, SingletonCore, SingletonError, SingletonOperation,
    SingletonValue, MAX_NAME_LEN,
};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A core whose limiter reads a clock the test moves.
fn manual(max_ops: u32, window_ms: u64) -> (SingletonCore, ManualClock) {
    let clock = ManualClock::new();
    let core =
        SingletonCore::with_clock(RateLimit::new(max_ops, Duration::from_millis(window_ms)), clock.clone());
    (core, clock)
}

/// A core with no rate limit, for tests about something else.
fn unlimited() -> SingletonCore {
    SingletonCore::with_clock(RateLimit::unlimited(), ManualClock::new())
}

/// Records its label in a shared log when dropped.
struct Tracked {
    label: &'static str,
    log: Arc<Mutex<Vec<&'static str>>>,
}

impl Tracked {
    fn new(label: &'static str, log: &Arc<Mutex<Vec<&'static str>>>) -> Self {
        Self { label, log: Arc::clone(log) }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.log.lock().unwrap().push(self.label);
    }
}

fn drops(log: &Arc<Mutex<Vec<&'static str>>>) -> Vec<&'static str> {
    log.lock().unwrap().clone()
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

#[track_caller]
fn assert_rate_limited(err: SingletonError, operation: &str, name: &str, retry_after: Duration) {
    match &err {
        SingletonError::RateLimited { operation: op, name: n, retry_after: r } => {
            assert_eq!(*op, operation, "{err}");
            assert_eq!(n.as_deref(), Some(name), "{err}");
            assert_eq!(*r, retry_after, "{err}");
        }
        other => panic!("expected RateLimited for `{operation}` on `{name}`, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The operation table, normal results
// ---------------------------------------------------------------------------------------------

#[test]
fn get_returns_the_stored_instance_and_none_when_absent() {
    let core = unlimited();
    assert!(core.get::<u32>("op-absent").unwrap().is_none());
    core.set("op-get", 17_u32).unwrap();
    let a = core.get::<u32>("op-get").unwrap().expect("stored");
    let b = core.get::<u32>("op-get").unwrap().expect("stored");
    assert_eq!(*a, 17);
    assert!(Instance::ptr_eq(&a, &b), "two gets must return the same instance");
    // A get of an absent name stores nothing.
    assert!(!core.has("op-absent"));
    assert_eq!(core.stats().unwrap().total_singletons, 1);
}

#[test]
fn get_or_create_creates_once_and_returns_the_stored_instance_after() {
    let core = unlimited();
    let runs = AtomicUsize::new(0);
    let make = || {
        runs.fetch_add(1, Ordering::SeqCst);
        vec![1_u8, 2, 3]
    };
    let a = core.get_or_create("op-goc", make).unwrap();
    let b = core.get_or_create("op-goc", make).unwrap();
    let c = core.get_or_try_create("op-goc", || Ok::<_, std::io::Error>(make())).unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the factory runs once");
    assert!(Instance::ptr_eq(&a, &b) && Instance::ptr_eq(&a, &c));
    assert_eq!(*a, vec![1, 2, 3]);
    // Stored: visible to the other operations.
    assert!(core.has("op-goc"));
    let got = core.get::<Vec<u8>>("op-goc").unwrap().unwrap();
    assert!(Instance::ptr_eq(&a, &got));
    // get_or_create does not replace a value that set stored.
    core.set("op-goc-set", 5_i64).unwrap();
    let kept =
        core.get_or_create("op-goc-set", || -> i64 { panic!("must not run: a value is stored") }).unwrap();
    assert_eq!(*kept, 5);
}

#[test]
fn set_stores_overwrites_and_restarts_creation_time_and_access_count() {
    let core = unlimited();
    let before = unix_now();
    core.set("op-set", String::from("first")).unwrap();
    let after = unix_now();
    let stats = core.stats().unwrap();
    let created = stats.creation_times["op-set"];
    assert!(created >= before - 0.001 && created <= after + 0.001, "{before} <= {created} <= {after}");
    assert_eq!(stats.access_counts["op-set"], 0);

    for _ in 0..3 {
        core.get::<String>("op-set").unwrap().unwrap();
    }
    assert_eq!(core.stats().unwrap().access_counts["op-set"], 3);

    let old = core.get::<String>("op-set").unwrap().unwrap();
    core.set("op-set", String::from("second")).unwrap();
    let stats = core.stats().unwrap();
    assert_eq!(stats.access_counts["op-set"], 0, "set restarts the access count");
    assert!(stats.creation_times["op-set"] >= created, "set restarts the creation time");
    assert_eq!(stats.total_singletons, 1, "set overwrites, it does not add");
    let new = core.get::<String>("op-set").unwrap().unwrap();
    assert_eq!(*new, "second");
    assert_eq!(*old, "first", "the replaced instance's handle stays valid");
    assert!(!Instance::ptr_eq(&old, &new));
}

#[test]
fn has_and_its_legacy_alias_exists() {
    let core = unlimited();
    assert!(!core.has("op-has"));
    assert!(!core.exists("op-has"));
    core.set("op-has", 1_u8).unwrap();
    assert!(core.has("op-has"));
    assert!(core.exists("op-has"));
    assert!(core.delete("op-has"));
    assert!(!core.has("op-has"));
    assert!(!core.exists("op-has"));
    // Names are exact: no case folding or trimming.
    core.set("op-Case", 1_u8).unwrap();
    assert!(!core.has("op-case"));
    assert!(!core.has(" op-Case"));
}

#[test]
fn delete_removes_once() {
    let core = unlimited();
    assert!(!core.delete("op-del"), "nothing to delete");
    core.set("op-del", 3_u16).unwrap();
    core.set("op-other", 4_u16).unwrap();
    assert!(core.delete("op-del"));
    assert!(!core.delete("op-del"), "already deleted");
    assert!(core.get::<u16>("op-del").unwrap().is_none());
    assert_eq!(*core.get::<u16>("op-other").unwrap().unwrap(), 4, "delete touches only its name");
    // After a delete, get_or_create makes a fresh one.
    let fresh = core.get_or_create("op-del", || 30_u16).unwrap();
    assert_eq!(*fresh, 30);
}

#[test]
fn clear_and_its_legacy_alias_reset_all_return_how_many_were_removed() {
    let core = unlimited();
    assert_eq!(core.clear(), 0);
    assert_eq!(core.reset_all(), 0);
    core.set("op-c1", 1_u8).unwrap();
    core.set("op-c2", 2_u8).unwrap();
    core.get_or_create("op-c3", || 3_u8).unwrap();
    assert_eq!(core.clear(), 3);
    assert!(!core.has("op-c1") && !core.has("op-c2") && !core.has("op-c3"));
    assert_eq!(core.stats().unwrap().total_singletons, 0);
    assert_eq!(core.clear(), 0, "nothing left");

    core.set("op-r1", 1_u8).unwrap();
    core.set("op-r2", 2_u8).unwrap();
    assert_eq!(core.reset_all(), 2);
    assert!(!core.exists("op-r1") && !core.exists("op-r2"));
    assert_eq!(core.reset_all(), 0);
    // The core is usable after a clear.
    core.set("op-r1", 9_u8).unwrap();
    assert_eq!(*core.get::<u8>("op-r1").unwrap().unwrap(), 9);
}

#[test]
fn stats_describes_exactly_the_live_instances() {
    let core = unlimited();
    core.set("op-s1", 1_u64).unwrap();
    core.get_or_create("op-s2", || [0_u8; 10]).unwrap();
    core.set("op-gone", 0_u8).unwrap();
    assert!(core.delete("op-gone"));
    let stats = core.stats().unwrap();
    assert_eq!(stats.total_singletons, 2);
    let mut names = stats.singleton_names.clone();
    names.sort();
    assert_eq!(names, ["op-s1", "op-s2"]);
    assert_eq!(stats.singleton_types["op-s1"], type_name::<u64>());
    assert_eq!(stats.singleton_types["op-s2"], type_name::<[u8; 10]>());
    assert_eq!(stats.access_counts["op-s1"], 0);
    assert_eq!(stats.access_counts["op-s2"], 1, "get_or_create counts as an access");
    assert_eq!(stats.estimated_memory_bytes, 8 + 10);
    assert_eq!(stats.rate_limited_count, 0);
    assert!(!stats.creation_times.contains_key("op-gone"));
}

#[test]
fn reset_clears_the_window_and_the_refusal_count_and_keeps_instances() {
    let (core, clock) = manual(3, 1000);
    core.set("op-keep", 11_u32).unwrap(); // 1
    core.set("op-keep2", 12_u32).unwrap(); // 2
    assert!(core.reset(), "reset admitted as the 3rd operation"); // 3, then the window is empty
                                                                  // The window was cleared: three more operations fit at the same instant.
    assert!(core.has("op-keep"));
    assert!(core.has("op-keep2"));
    let stats = core.stats().unwrap();
    assert_eq!(stats.total_singletons, 2, "reset keeps instances");
    assert_eq!(stats.rate_limited_count, 0);
    // Now the window is full: refusals add up...
    assert!(!core.has("op-keep"));
    assert!(core.get::<u32>("op-keep").is_err());
    assert!(!core.reset(), "reset is itself refused when limited");
    clock.advance(Duration::from_millis(1000));
    assert_eq!(core.stats().unwrap().rate_limited_count, 3);
    // ... until a reset goes through: it clears them, and the window (three fit again at once).
    assert!(core.reset());
    assert!(core.has("op-keep"));
    assert_eq!(*core.get::<u32>("op-keep").unwrap().unwrap(), 11);
    let stats = core.stats().unwrap();
    assert_eq!(stats.rate_limited_count, 0, "reset clears rate_limited_count");
    assert_eq!(stats.singleton_names, ["op-keep", "op-keep2"], "reset keeps instances");
    assert!(!core.has("op-keep"), "the limit still applies after a reset");
}

// ---------------------------------------------------------------------------------------------
// The operation table, rate-limited results
// ---------------------------------------------------------------------------------------------

#[test]
fn every_operation_has_its_rate_limited_result() {
    let (core, clock) = manual(2, 1000);
    core.set("op-rl", 5_u32).unwrap(); // t = 0
    clock.advance(Duration::from_millis(300));
    assert!(core.has("op-rl")); // t = 300: the window is full
    clock.advance(Duration::from_millis(200)); // t = 500: the first slot frees at t = 1000
    let wait = Duration::from_millis(500);

    assert_rate_limited(core.get::<u32>("op-rl").unwrap_err(), "get", "op-rl", wait);
    let ran = AtomicUsize::new(0);
    let err = core
        .get_or_create("op-rl-new", || {
            ran.fetch_add(1, Ordering::SeqCst);
            1_u32
        })
        .unwrap_err();
    assert_rate_limited(err, "get", "op-rl-new", wait);
    let err = core
        .get_or_try_create("op-rl-new", || {
            ran.fetch_add(1, Ordering::SeqCst);
            Ok::<_, std::io::Error>(1_u32)
        })
        .unwrap_err();
    assert_rate_limited(err, "get", "op-rl-new", wait);
    assert_eq!(ran.load(Ordering::SeqCst), 0, "a refused get_or_create runs no factory");
    assert_rate_limited(core.set("op-rl", 6_u32).unwrap_err(), "set", "op-rl", wait);
    assert_rate_limited(core.set("op-rl-new", 6_u32).unwrap_err(), "set", "op-rl-new", wait);
    assert!(!core.has("op-rl"), "has -> false when limited, even though it exists");
    assert!(!core.exists("op-rl"), "exists -> false when limited, even though it exists");
    assert!(!core.delete("op-rl"), "delete -> false when limited");
    assert_eq!(core.clear(), 0, "clear -> 0 when limited");
    assert_eq!(core.reset_all(), 0, "reset_all -> 0 when limited");
    let err = core.stats().unwrap_err();
    assert!(
        matches!(err, SingletonError::RateLimited { operation: "get_stats", retry_after, .. } if retry_after == wait),
        "{err:?}"
    );
    assert!(!core.reset(), "reset -> false when limited");
    let refusals = 12;

    // The refused operations changed nothing, and each added one to rate_limited_count.
    clock.advance(Duration::from_millis(500)); // t = 1000: the slot of t = 0 frees
    let stats = core.stats().unwrap();
    assert_eq!(stats.rate_limited_count, refusals);
    assert_eq!(stats.singleton_names, ["op-rl"], "a refused set/get_or_create stores nothing");
    clock.advance(Duration::from_millis(300)); // t = 1300: the slot of t = 300 frees
    assert_eq!(*core.get::<u32>("op-rl").unwrap().unwrap(), 5, "a refused set/delete/clear changes nothing");
}

#[test]
fn rate_limit_errors_name_the_operation_and_the_singleton() {
    let (core, _clock) = manual(0, 1000);
    let msg = core.set("op-named", 1_u8).unwrap_err().to_string();
    assert!(msg.contains("op-named") && msg.contains("set"), "{msg}");
    let msg = core.get::<u8>("op-named").unwrap_err().to_string();
    assert!(msg.contains("op-named") && msg.contains("get"), "{msg}");
}

#[test]
fn five_per_second_sliding_window_is_exact_at_the_boundary() {
    let (core, clock) = manual(5, 1000);
    // Five operations at t = 0, 100, 200, 300, 400.
    for i in 0..5 {
        assert!(core.set("op-win", i as u32).is_ok(), "operation {i} fits");
        clock.advance(Duration::from_millis(100));
    }
    // t = 500: full.
    assert_rate_limited(core.set("op-win", 9_u32).unwrap_err(), "set", "op-win", Duration::from_millis(500));
    // t = 999.999999: still one nanosecond short of the first leaving.
    clock.advance(Duration::from_millis(500) - Duration::from_nanos(1));
    assert_rate_limited(core.get::<u32>("op-win").unwrap_err(), "get", "op-win", Duration::from_nanos(1));
    // t = 1000: exactly one window after the first, one slot is free.
    clock.advance(Duration::from_nanos(1));
    assert!(core.set("op-win", 10_u32).is_ok());
    assert_rate_limited(core.set("op-win", 11_u32).unwrap_err(), "set", "op-win", Duration::from_millis(100));
    // t = 1100: the second one leaves.
    clock.advance(Duration::from_millis(100));
    assert!(core.has("op-win"));
    assert!(!core.has("op-win"));
    // A long pause frees all five.
    clock.advance(Duration::from_secs(10));
    for _ in 0..5 {
        assert!(core.has("op-win"));
    }
    assert!(!core.has("op-win"));
}

#[test]
fn refusals_take_no_slot() {
    let (core, clock) = manual(3, 1000);
    for _ in 0..3 {
        core.set("op-slot", 1_u8).unwrap(); // t = 0
    }
    for _ in 0..50 {
        assert!(!core.has("op-slot")); // refused, t = 0
    }
    clock.advance(Duration::from_millis(999));
    for _ in 0..50 {
        assert!(core.set("op-slot", 2_u8).is_err()); // refused, t = 999
    }
    // Had any refusal taken a slot, the window would still be full at t = 1000.
    clock.advance(Duration::from_millis(1));
    for _ in 0..3 {
        assert!(core.has("op-slot"));
    }
    assert!(core.stats().is_err());
    clock.advance(Duration::from_millis(1000));
    assert_eq!(core.stats().unwrap().rate_limited_count, 101);
}

#[test]
fn the_limit_is_exact_under_threads() {
    const MAX: u32 = 50;
    const THREADS: usize = 8;
    const EACH: usize = 40;
    let (core, clock) = manual(MAX, 1000);
    let barrier = Barrier::new(THREADS);
    let admitted = AtomicUsize::new(0);
    thread::scope(|s| {
        for t in 0..THREADS {
            let (core, barrier, admitted) = (&core, &barrier, &admitted);
            s.spawn(move || {
                barrier.wait();
                for i in 0..EACH {
                    if core.set("op-threads", t * 1000 + i).is_ok() {
                        admitted.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
    });
    assert_eq!(admitted.load(Ordering::SeqCst), MAX as usize, "exactly max_ops admitted in one window");
    clock.advance(Duration::from_secs(1));
    assert_eq!(core.stats().unwrap().rate_limited_count, (THREADS * EACH) as u64 - u64::from(MAX));
}

#[test]
fn default_rate_limit_is_1000_per_second() {
    assert_eq!(RateLimit::default(), RateLimit::new(1000, Duration::from_millis(1000)));
    assert_eq!(SingletonCore::new().rate_limit(), RateLimit::default());
    let clock = ManualClock::new();
    let core = SingletonCore::with_clock(RateLimit::default(), clock.clone());
    for _ in 0..1000 {
        assert!(!core.has("op-default")); // admitted, absent
    }
    assert!(core.set("op-default", 1_u8).is_err(), "the 1001st operation in one second is refused");
    clock.advance(Duration::from_secs(1));
    assert!(core.set("op-default", 1_u8).is_ok());
}

#[test]
fn with_rate_limit_uses_the_given_limit() {
    let core = SingletonCore::with_rate_limit(RateLimit::new(2, Duration::from_secs(3600)));
    assert_eq!(core.rate_limit(), RateLimit::new(2, Duration::from_secs(3600)));
    core.set("op-wrl", 1_u8).unwrap();
    assert!(core.has("op-wrl"));
    assert!(!core.has("op-wrl"), "the third operation within an hour is refused");

    let core = SingletonCore::with_rate_limit(RateLimit::unlimited());
    for _ in 0..5000 {
        assert!(!core.has("op-wrl"));
    }
    assert_eq!(core.stats().unwrap().rate_limited_count, 0);
}

#[test]
fn set_rate_limit_on_a_live_core() {
    let (core, clock) = manual(5, 1000);
    core.set("op-live", 1_u8).unwrap();
    core.set("op-live", 2_u8).unwrap();
    core.set("op-live", 3_u8).unwrap();
    // Lowering the limit below what was admitted: the admitted operations count against it.
    core.set_rate_limit(RateLimit::new(2, Duration::from_millis(1000)));
    assert_eq!(core.rate_limit(), RateLimit::new(2, Duration::from_millis(1000)));
    assert!(!core.has("op-live"), "already 3 admitted in this window, the new limit is 2");
    // Raising it: room for the difference.
    core.set_rate_limit(RateLimit::new(4, Duration::from_millis(1000)));
    assert!(core.has("op-live"));
    assert!(core.has("op-live"));
    assert!(!core.has("op-live"), "4 in this window under a limit of 4");
    // Unlimited: everything is admitted.
    core.set_rate_limit(RateLimit::unlimited());
    assert_eq!(core.rate_limit().max_ops(), None);
    for _ in 0..100 {
        assert!(core.has("op-live"));
    }
    // Back to a limit: it applies again (with a fresh window later).
    core.set_rate_limit(RateLimit::new(1, Duration::from_millis(1000)));
    clock.advance(Duration::from_secs(5));
    assert!(core.has("op-live"));
    assert!(!core.has("op-live"));
    // Zero: a maintenance switch that refuses everything.
    clock.advance(Duration::from_secs(5));
    core.set_rate_limit(RateLimit::new(0, Duration::from_millis(1000)));
    assert!(core.set("op-live", 9_u8).is_err());
    assert!(!core.has("op-live"));
    core.set_rate_limit(RateLimit::unlimited());
    assert_eq!(*core.get::<u8>("op-live").unwrap().unwrap(), 3, "the refused set changed nothing");
    assert_eq!(core.stats().unwrap().rate_limited_count, 5);
}

// ---------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------

fn invalid_names() -> Vec<String> {
    vec![
        String::new(),
        " ".into(),
        "    ".into(),
        "\u{3000}".into(), // ideographic space: whitespace only
        "a".repeat(MAX_NAME_LEN + 1),
        format!("{}a", "é".repeat(128)), // 257 bytes
        "\0".into(),
        "\n".into(),
        "op-keep\n".into(),
        "a\nb".into(),
        "\t".into(),
        "tab\there".into(),
        "\r".into(),
        "bell\u{7}".into(),
        "\u{1b}[31mred".into(),
        "del\u{7f}".into(),
        "c1\u{85}".into(),
        "nul\0inside".into(),
    ]
}

#[test]
fn invalid_names_are_refused_take_no_slot_and_change_nothing() {
    let (core, _clock) = manual(3, 1000);
    core.set("op-keep", 7_u32).unwrap(); // slot 1
    let ran = AtomicUsize::new(0);
    for name in invalid_names() {
        let shown = name.escape_debug().to_string();
        let is_invalid = |r: Result<(), SingletonError>| match r {
            Err(SingletonError::InvalidName { name: n, reason }) => {
                assert!(!reason.is_empty());
                if name.len() <= 64 {
                    assert_eq!(n, name, "the error carries the name");
                }
                true
            }
            _ => false,
        };
        assert!(is_invalid(core.get::<u32>(&name).map(drop)), "get({shown:?})");
        assert!(
            is_invalid(
                core.get_or_create(&name, || {
                    ran.fetch_add(1, Ordering::SeqCst);
                    1_u32
                })
                .map(drop)
            ),
            "get_or_create({shown:?})"
        );
        assert!(
            is_invalid(
                core.get_or_try_create(&name, || {
                    ran.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, std::io::Error>(1_u32)
                })
                .map(drop)
            ),
            "get_or_try_create({shown:?})"
        );
        assert!(is_invalid(core.set(&name, 8_u32)), "set({shown:?})");
        assert!(is_invalid(core.set_value(&name, SingletonValue::new(8_u32))), "set_value({shown:?})");
        assert!(!core.has(&name), "has({shown:?})");
        assert!(!core.exists(&name), "exists({shown:?})");
        assert!(!core.delete(&name), "delete({shown:?})");
        assert!(singleton_kit::validate_name(&name).is_err(), "validate_name({shown:?})");
    }
    assert_eq!(ran.load(Ordering::SeqCst), 0, "no factory runs for an invalid name");
    // Only one slot was taken so far: two more fit, then the limit is in force.
    assert_eq!(*core.get::<u32>("op-keep").unwrap().unwrap(), 7, "nothing was replaced"); // slot 2
    let stats = core.stats().unwrap(); // slot 3
    assert_eq!(stats.singleton_names, ["op-keep"], "nothing was stored");
    assert_eq!(stats.rate_limited_count, 0, "an invalid name is not a refusal");
    assert_eq!(stats.access_counts["op-keep"], 1, "invalid-name gets counted no access");
    assert!(core.get::<u32>("op-keep").is_err(), "the fourth valid operation is refused");
}

#[test]
fn invalid_names_through_execute() {
    let core = unlimited();
    core.set("op-x", 1_u8).unwrap();
    for name in ["", "   ", "op-x\n"] {
        let err = core.execute(Request::parse("get").unwrap().name(name)).unwrap_err();
        assert!(matches!(err, SingletonError::InvalidName { .. }), "{err:?}");
        let err = core
            .execute(Request::parse("set").unwrap().name(name).value(SingletonValue::new(2_u8)))
            .unwrap_err();
        assert!(matches!(err, SingletonError::InvalidName { .. }), "{err:?}");
        // The methods answer `false`; as data, every operation says why.
        for op in ["has", "exists", "delete"] {
            let err = core.execute(Request::parse(op).unwrap().name(name)).unwrap_err();
            assert!(matches!(err, SingletonError::InvalidName { .. }), "{op}({name:?}) -> {err:?}");
        }
    }
    assert_eq!(*core.get::<u8>("op-x").unwrap().unwrap(), 1);
    assert_eq!(core.stats().unwrap().total_singletons, 1);
}

#[test]
fn invalid_name_error_message_names_it() {
    let core = unlimited();
    let err = core.set("", 1_u8).unwrap_err();
    assert_eq!(err.to_string(), "invalid singleton name \"\": the name is empty");
    let msg = core.get::<u8>("bad\nname").unwrap_err().to_string();
    assert!(msg.contains("bad\\nname"), "{msg}");
}

#[test]
fn non_ascii_and_boundary_length_names_are_valid() {
    let core = unlimited();
    let names = [
        "café".to_owned(),
        "名前".to_owned(),
        "🦀-crab".to_owned(),
        "with space".to_owned(),
        "a".repeat(MAX_NAME_LEN),
        "é".repeat(MAX_NAME_LEN / 2), // exactly 256 bytes
        "x".to_owned(),
    ];
    assert_eq!(MAX_NAME_LEN, 256);
    for (i, name) in names.iter().enumerate() {
        core.set(name, i).unwrap_or_else(|e| panic!("set({name:?}): {e}"));
        assert!(core.has(name), "{name:?}");
        assert!(core.exists(name), "{name:?}");
        assert_eq!(*core.get::<usize>(name).unwrap().unwrap(), i, "{name:?}");
    }
    let stats = core.stats().unwrap();
    assert_eq!(stats.total_singletons, names.len());
    for name in &names {
        assert!(stats.singleton_names.contains(name), "{name:?}");
        assert!(core.delete(name), "{name:?}");
    }
    assert_eq!(core.stats().unwrap().total_singletons, 0);
}

// ---------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------

#[test]
fn get_of_another_type_is_a_type_mismatch_naming_both_types() {
    let core = unlimited();
    core.set("op-typed", String::from("text")).unwrap();
    let err = core.get::<u64>("op-typed").unwrap_err();
    match &err {
        SingletonError::TypeMismatch { name, expected, found } => {
            assert_eq!(name, "op-typed");
            assert_eq!(*expected, type_name::<u64>());
            assert_eq!(*found, type_name::<String>());
        }
        other => panic!("expected TypeMismatch, got {other:?}"),
    }
    assert!(err.to_string().contains("op-typed"), "{err}");
    assert_eq!(err.singleton_name(), Some("op-typed"));
    // Nothing changed: the right type still gets it.
    assert_eq!(*core.get::<String>("op-typed").unwrap().unwrap(), "text");
}

#[test]
fn get_or_create_of_another_type_is_a_type_mismatch_and_runs_no_factory() {
    let core = unlimited();
    core.set("op-typed2", 1_i32).unwrap();
    let err = core
        .get_or_create("op-typed2", || -> u8 { panic!("must not run: the name holds an i32") })
        .unwrap_err();
    assert!(
        matches!(&err, SingletonError::TypeMismatch { name, expected, found }
            if name == "op-typed2" && *expected == type_name::<u8>() && *found == type_name::<i32>()),
        "{err:?}"
    );
    assert_eq!(*core.get::<i32>("op-typed2").unwrap().unwrap(), 1);
}

#[test]
fn set_of_another_type_overwrites_an_unregistered_name() {
    let core = unlimited();
    core.set("op-retype", 1_u32).unwrap();
    let old = core.get::<u32>("op-retype").unwrap().unwrap();
    core.set("op-retype", String::from("now a string")).unwrap();
    assert_eq!(*core.get::<String>("op-retype").unwrap().unwrap(), "now a string");
    assert!(matches!(core.get::<u32>("op-retype"), Err(SingletonError::TypeMismatch { .. })));
    assert_eq!(core.stats().unwrap().singleton_types["op-retype"], type_name::<String>());
    assert_eq!(*old, 1, "the old handle stays valid");
}

// ---------------------------------------------------------------------------------------------
// Drop order and handles
// ---------------------------------------------------------------------------------------------

#[test]
fn clear_drops_in_reverse_creation_order() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let core = unlimited();
    // Names chosen so that no name order (either way) equals the creation order.
    core.set("op-m", Tracked::new("m", &log)).unwrap();
    core.set("op-a", Tracked::new("a", &log)).unwrap();
    core.get_or_create("op-z", || Tracked::new("z", &log)).unwrap();
    core.set("op-c", Tracked::new("c", &log)).unwrap();
    core.get_or_create("op-b", || Tracked::new("b", &log)).unwrap();
    assert!(drops(&log).is_empty());
    assert_eq!(core.clear(), 5);
    assert_eq!(drops(&log), ["b", "c", "z", "a", "m"], "newest first");
}

#[test]
fn reset_all_drops_in_reverse_creation_order_and_a_replaced_value_counts_as_new() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let core = unlimited();
    core.set("op-first", Tracked::new("first", &log)).unwrap();
    core.set("op-second", Tracked::new("second", &log)).unwrap();
    core.set("op-third", Tracked::new("third", &log)).unwrap();
    // Replacing "op-first" drops the old value now; the new one is the newest.
    core.set("op-first", Tracked::new("first-again", &log)).unwrap();
    assert_eq!(drops(&log), ["first"]);
    assert_eq!(core.reset_all(), 3);
    assert_eq!(drops(&log), ["first", "first-again", "third", "second"]);
}

#[test]
fn a_handle_outlives_delete_and_t_drops_with_the_last_handle() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let core = unlimited();
    core.set("op-h", Tracked::new("h", &log)).unwrap();
    let h1 = core.get::<Tracked>("op-h").unwrap().unwrap();
    let h2 = h1.clone();
    assert!(core.delete("op-h"));
    assert!(!core.has("op-h"));
    assert!(drops(&log).is_empty(), "handles keep it alive after delete");
    assert_eq!(h1.label, "h");
    drop(h1);
    assert!(drops(&log).is_empty(), "one handle is left");
    assert_eq!(h2.label, "h");
    drop(h2);
    assert_eq!(drops(&log), ["h"], "dropped exactly when the last handle goes");
}

#[test]
fn with_no_handle_delete_drops_at_once() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let core = unlimited();
    core.get_or_create("op-now", || Tracked::new("now", &log)).unwrap();
    assert!(drops(&log).is_empty(), "the core holds it");
    assert!(core.delete("op-now"));
    assert_eq!(drops(&log), ["now"]);
}

#[test]
fn a_handle_outlives_set_and_clear() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let core = unlimited();
    core.set("op-hs", Tracked::new("old", &log)).unwrap();
    let old = core.get::<Tracked>("op-hs").unwrap().unwrap();
    core.set("op-hs", Tracked::new("new", &log)).unwrap();
    assert!(drops(&log).is_empty(), "the handle keeps the replaced value alive");
    assert_eq!(old.label, "old");
    assert_eq!(core.get::<Tracked>("op-hs").unwrap().unwrap().label, "new");

    let new = core.get::<Tracked>("op-hs").unwrap().unwrap();
    assert_eq!(core.clear(), 1);
    assert!(drops(&log).is_empty(), "handles keep both alive after clear");
    // Moving a handle to another thread keeps it valid there.
    let label = thread::spawn(move || new.label).join().unwrap();
    assert_eq!(label, "new");
    assert_eq!(drops(&log), ["new"], "the moved handle was the last");
    drop(old);
    assert_eq!(drops(&log), ["new", "old"]);
}

#[test]
fn dropping_the_core_drops_what_it_holds_unless_a_handle_remains() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let core = unlimited();
    core.set("op-held", Tracked::new("held", &log)).unwrap();
    core.set("op-free", Tracked::new("free", &log)).unwrap();
    let held = core.get::<Tracked>("op-held").unwrap().unwrap();
    drop(core);
    assert_eq!(drops(&log), ["free"]);
    drop(held);
    assert_eq!(drops(&log), ["free", "held"]);
}

// ---------------------------------------------------------------------------------------------
// Factories
// ---------------------------------------------------------------------------------------------

#[test]
fn racing_get_or_create_runs_the_factory_once() {
    const THREADS: usize = 8;
    let core = unlimited();
    let runs = AtomicUsize::new(0);
    let barrier = Barrier::new(THREADS);
    let handles: Vec<Instance<Vec<u64>>> = thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|i| {
                let (core, runs, barrier) = (&core, &runs, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    core.get_or_create("op-race", || {
                        runs.fetch_add(1, Ordering::SeqCst);
                        // Long enough for the others to arrive while it runs.
                        thread::sleep(Duration::from_millis(5));
                        vec![i as u64; 4]
                    })
                    .unwrap()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the factory runs exactly once");
    for h in &handles {
        assert!(Instance::ptr_eq(h, &handles[0]), "every thread gets the same instance");
    }
    assert_eq!(core.stats().unwrap().access_counts["op-race"], THREADS as u64);
}

#[test]
fn racing_get_or_try_create_runs_the_factory_once() {
    const THREADS: usize = 8;
    let core = unlimited();
    let runs = AtomicUsize::new(0);
    let barrier = Barrier::new(THREADS);
    let handles: Vec<Instance<String>> = thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|i| {
                let (core, runs, barrier) = (&core, &runs, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    core.get_or_try_create("op-race-try", || {
                        runs.fetch_add(1, Ordering::SeqCst);
                        thread::sleep(Duration::from_millis(5));
                        Ok::<_, std::io::Error>(format!("made by {i}"))
                    })
                    .unwrap()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(handles.iter().all(|h| Instance::ptr_eq(h, &handles[0])));
}

#[test]
fn no_lock_other_names_need_is_held_while_a_factory_runs() {
    let core = unlimited();
    let (go, wait) = mpsc::channel::<()>();
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let signalled = thread::scope(|s| {
        let core = &core;
        let slow = s.spawn(move || {
            let mut signalled = false;
            core.get_or_create("op-slow", || {
                started_tx.send(()).unwrap();
                // Wait (bounded) for the other thread to finish its operations on other names.
                signalled = wait.recv_timeout(Duration::from_secs(10)).is_ok();
                1_u8
            })
            .unwrap();
            signalled
        });
        started_rx.recv().unwrap();
        // While "op-slow"'s factory runs: every operation on other names completes.
        core.set("op-fast", 2_u8).unwrap();
        assert!(core.has("op-fast"));
        assert_eq!(*core.get_or_create("op-fast2", || 3_u8).unwrap(), 3);
        assert!(!core.has("op-slow"), "not stored until its factory returns");
        assert_eq!(core.stats().unwrap().total_singletons, 2);
        assert!(core.delete("op-fast2"));
        go.send(()).unwrap();
        slow.join().unwrap()
    });
    assert!(signalled, "the factory had to wait for its timeout: other operations were blocked");
    assert!(core.has("op-slow"));
}

#[test]
fn a_factory_may_use_the_core_for_other_names() {
    let core = unlimited();
    let outer = core
        .get_or_create("op-outer", || {
            let inner = core.get_or_create("op-inner", || 20_u32).unwrap();
            *inner + 1
        })
        .unwrap();
    assert_eq!(*outer, 21);
    assert_eq!(*core.get::<u32>("op-inner").unwrap().unwrap(), 20);
}

#[derive(Debug)]
struct LoadError(&'static str);

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "could not load: {}", self.0)
    }
}

impl std::error::Error for LoadError {}

#[test]
fn a_failing_factory_caches_nothing_and_is_retried() {
    let core = unlimited();
    let runs = AtomicUsize::new(0);
    let err = core
        .get_or_try_create::<u32, _, _>("op-fail", || {
            runs.fetch_add(1, Ordering::SeqCst);
            Err(LoadError("disk on fire"))
        })
        .unwrap_err();
    match &err {
        SingletonError::Factory { name, source } => {
            assert_eq!(name, "op-fail");
            assert_eq!(source.to_string(), "could not load: disk on fire");
        }
        other => panic!("expected Factory, got {other:?}"),
    }
    let source = std::error::Error::source(&err).expect("the factory's error is the source()");
    assert_eq!(source.to_string(), "could not load: disk on fire");
    assert!(source.downcast_ref::<LoadError>().is_some(), "source() is the factory's own error");
    let msg = err.to_string();
    assert!(msg.contains("op-fail") && msg.contains("disk on fire"), "{msg}");
    assert_eq!(err.singleton_name(), Some("op-fail"));

    // Nothing was stored.
    assert!(!core.has("op-fail"));
    assert!(core.get::<u32>("op-fail").unwrap().is_none());
    assert_eq!(core.stats().unwrap().total_singletons, 0);

    // The next call runs a factory again, and its success is stored.
    let ok = core
        .get_or_try_create("op-fail", || {
            runs.fetch_add(1, Ordering::SeqCst);
            "8080".parse::<u32>()
        })
        .unwrap();
    assert_eq!(*ok, 8080);
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert!(core.has("op-fail"));
    // And from then on no factory runs.
    let again = core.get_or_try_create::<u32, LoadError, _>("op-fail", || panic!("must not run")).unwrap();
    assert!(Instance::ptr_eq(&ok, &again));
}

#[test]
fn a_creation_retried_by_a_waiting_thread_is_stored() {
    let core = unlimited();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let runs = AtomicUsize::new(0);
    let made = thread::scope(|s| {
        let (core, runs) = (&core, &runs);
        // A: its factory runs until released, then fails.
        let a = s.spawn(move || {
            core.get_or_try_create::<u32, _, _>("op-waiter", || {
                started_tx.send(()).unwrap();
                let _ = release_rx.recv_timeout(Duration::from_secs(5));
                Err(LoadError("first attempt fails"))
            })
        });
        started_rx.recv().unwrap();
        // B: arrives while A's factory runs, so it waits for A, then (A failed) creates itself.
        let b = s.spawn(move || {
            core.get_or_try_create("op-waiter", || {
                runs.fetch_add(1, Ordering::SeqCst);
                Ok::<_, LoadError>(5_u32)
            })
        });
        thread::sleep(Duration::from_millis(5)); // let B start waiting for A
        release_tx.send(()).unwrap();
        assert!(matches!(a.join().unwrap(), Err(SingletonError::Factory { .. })));
        b.join().unwrap().unwrap()
    });
    assert_eq!(*made, 5);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    // B's successful creation is the singleton now: stored, and no factory runs again.
    assert!(core.has("op-waiter"), "the instance B created must be stored in the core");
    let again = core.get_or_create::<u32, _>("op-waiter", || panic!("must not run: B created it")).unwrap();
    assert!(Instance::ptr_eq(&made, &again));
}

#[test]
fn a_failing_factory_after_a_string_error_keeps_it_as_source() {
    let core = unlimited();
    let err = core.get_or_try_create::<u8, _, _>("op-fail-str", || Err("plain message")).unwrap_err();
    assert!(matches!(&err, SingletonError::Factory { name, .. } if name == "op-fail-str"), "{err:?}");
    let source = std::error::Error::source(&err).expect("source() present");
    assert_eq!(source.to_string(), "plain message");
    assert_eq!(*core.get_or_create("op-fail-str", || 4_u8).unwrap(), 4);
}

#[test]
fn a_panicking_factory_leaves_nothing_and_is_retried() {
    let core = unlimited();
    let caught = panic::catch_unwind(AssertUnwindSafe(|| {
        core.get_or_create::<u32, _>("op-panic", || panic!("factory exploded"))
    }));
    let payload = caught.expect_err("the factory's panic goes on to the caller");
    let msg = payload.downcast_ref::<&str>().copied().unwrap_or_default();
    assert_eq!(msg, "factory exploded");

    assert!(!core.has("op-panic"), "nothing stored");
    assert_eq!(core.stats().unwrap().total_singletons, 0);
    // The core is not poisoned and the next call retries.
    let v = core.get_or_create("op-panic", || 77_u32).unwrap();
    assert_eq!(*v, 77);
    assert!(core.has("op-panic"));
    // From another thread too (no stale claim on the name).
    let other =
        thread::scope(|s| s.spawn(|| core.get_or_create("op-panic", || 0_u32).unwrap()).join().unwrap());
    assert!(Instance::ptr_eq(&v, &other));
    // Other operations still work.
    core.set("op-after", 1_u8).unwrap();
    assert_eq!(core.clear(), 2);
}

// ---------------------------------------------------------------------------------------------
// Access counts
// ---------------------------------------------------------------------------------------------

#[test]
fn access_counts_count_gets_and_set_resets_them() {
    let core = unlimited();
    let count = |core: &SingletonCore| core.stats().unwrap().access_counts["op-count"];
    core.set("op-count", 0_u32).unwrap();
    assert_eq!(count(&core), 0);
    for k in 1..=5 {
        core.get::<u32>("op-count").unwrap().unwrap();
        assert_eq!(count(&core), k, "each get adds one");
    }
    core.get_or_create("op-count", || 1_u32).unwrap();
    assert_eq!(count(&core), 6, "get_or_create of a stored value adds one");
    // Operations that are not gets do not count.
    assert!(core.has("op-count"));
    assert!(core.exists("op-count"));
    core.stats().unwrap();
    assert_eq!(count(&core), 6);
    // execute's get counts.
    core.execute(Request::parse("get").unwrap().name("op-count")).unwrap();
    assert_eq!(count(&core), 7);
    // set starts over.
    core.set("op-count", 1_u32).unwrap();
    assert_eq!(count(&core), 0);
    core.get::<u32>("op-count").unwrap().unwrap();
    assert_eq!(count(&core), 1);
    // A fresh creation after delete starts at the access that created it.
    assert!(core.delete("op-count"));
    core.get_or_create("op-count", || 2_u32).unwrap();
    assert_eq!(count(&core), 1);
}

#[test]
fn access_counts_are_exact_across_threads() {
    const THREADS: usize = 8;
    const EACH: u64 = 250;
    let core = unlimited();
    core.set("op-count-mt", 5_u64).unwrap();
    let barrier = Barrier::new(THREADS);
    thread::scope(|s| {
        for _ in 0..THREADS {
            let (core, barrier) = (&core, &barrier);
            s.spawn(move || {
                barrier.wait();
                for _ in 0..EACH {
                    assert_eq!(*core.get::<u64>("op-count-mt").unwrap().unwrap(), 5);
                }
            });
        }
    });
    assert_eq!(core.stats().unwrap().access_counts["op-count-mt"], THREADS as u64 * EACH);
}

// ---------------------------------------------------------------------------------------------
// Operations as data
// ---------------------------------------------------------------------------------------------

#[test]
fn operations_parse_from_and_print_as_the_seed_names() {
    let table = [
        ("get", SingletonOperation::Get),
        ("set", SingletonOperation::Set),
        ("has", SingletonOperation::Has),
        ("delete", SingletonOperation::Delete),
        ("clear", SingletonOperation::Clear),
        ("get_stats", SingletonOperation::GetStats),
        ("reset", SingletonOperation::Reset),
        ("reset_all", SingletonOperation::ResetAll),
        ("exists", SingletonOperation::Exists),
        ("list", SingletonOperation::List),
        ("health", SingletonOperation::Health),
    ];
    for (s, op) in table {
        assert_eq!(s.parse::<SingletonOperation>().unwrap(), op, "{s}");
        assert_eq!(op.to_string(), s);
        assert_eq!(Request::parse(s).unwrap().operation(), op);
    }
    assert_eq!(SingletonOperation::ALL.len(), 11);
    assert_eq!("stats".parse::<SingletonOperation>().unwrap(), SingletonOperation::GetStats);
    assert_eq!(SingletonOperation::GetStats.to_string(), "get_stats", "\"stats\" is accepted, not printed");
}

#[test]
fn an_unknown_operation_is_an_error_listing_the_valid_names() {
    for bad in ["drop", "GET", "", "get ", "getstats", "stat"] {
        let err = bad.parse::<SingletonOperation>().unwrap_err();
        assert!(
            matches!(&err, SingletonError::UnknownOperation { operation } if operation == bad),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains(&format!("`{bad}`")), "the message names what was given: {msg}");
        for valid in ["get", "set", "has", "delete", "clear", "get_stats", "reset", "reset_all", "exists"] {
            assert!(msg.contains(valid), "the message lists `{valid}`: {msg}");
        }
        let err = Request::parse(bad).unwrap_err();
        assert!(matches!(err, SingletonError::UnknownOperation { .. }), "{err:?}");
    }
}

#[test]
fn execute_runs_all_nine_operations_by_name() {
    let core = unlimited();
    let run = |op: &str, name: Option<&str>, value: Option<SingletonValue>| {
        let mut request = Request::parse(op).unwrap();
        if let Some(name) = name {
            request = request.name(name);
        }
        if let Some(value) = value {
            request = request.value(value);
        }
        core.execute(request).unwrap_or_else(|e| panic!("{op}: {e}"))
    };

    let r = run("set", Some("op-ex"), Some(SingletonValue::new(42_u32)));
    assert!(matches!(r, Response::Stored), "{r:?}");
    let Response::Value(Some(v)) = run("get", Some("op-ex"), None) else { panic!("get: expected a value") };
    assert_eq!(v.type_name(), type_name::<u32>());
    assert!(v.is::<u32>());
    assert_eq!(*v.downcast::<u32>().unwrap(), 42);
    let typed = core.get::<u32>("op-ex").unwrap().unwrap();
    assert!(Instance::ptr_eq(&typed, &v.downcast::<u32>().unwrap()), "one registry for both paths");
    assert!(matches!(run("get", Some("op-absent"), None), Response::Value(None)));
    assert!(matches!(run("has", Some("op-ex"), None), Response::Bool(true)));
    assert!(matches!(run("exists", Some("op-ex"), None), Response::Bool(true)));
    assert!(matches!(run("has", Some("op-absent"), None), Response::Bool(false)));
    assert!(matches!(run("exists", Some("op-absent"), None), Response::Bool(false)));

    for op in ["get_stats", "stats"] {
        let Response::Stats(stats) = run(op, None, None) else { panic!("{op}: expected stats") };
        assert_eq!(stats.singleton_names, ["op-ex"], "{op}");
        assert_eq!(stats.access_counts["op-ex"], 2, "{op}: execute's get and the typed get");
    }

    assert!(matches!(run("delete", Some("op-ex"), None), Response::Bool(true)));
    assert!(matches!(run("delete", Some("op-ex"), None), Response::Bool(false)));
    assert!(!core.has("op-ex"));

    run("set", Some("op-e1"), Some(SingletonValue::new(1_u8)));
    run("set", Some("op-e2"), Some(SingletonValue::new("two")));
    assert!(matches!(run("clear", None, None), Response::Count(2)));
    assert!(matches!(run("clear", None, None), Response::Count(0)));
    run("set", Some("op-e3"), Some(SingletonValue::new(3_u8)));
    assert!(matches!(run("reset_all", None, None), Response::Count(1)));
    assert!(matches!(run("reset_all", None, None), Response::Count(0)));

    run("set", Some("op-e4"), Some(SingletonValue::new(4_u8)));
    assert!(matches!(run("reset", None, None), Response::Bool(true)));
    assert_eq!(*core.get::<u8>("op-e4").unwrap().unwrap(), 4, "reset keeps instances");

    // A correlation id changes nothing about the result.
    let r = core.execute(Request::parse("has").unwrap().name("op-e4").correlation_id("c-1")).unwrap();
    assert!(matches!(r, Response::Bool(true)));
}

#[test]
fn execute_gives_the_rate_limited_results() {
    let (core, clock) = manual(1, 1000);
    core.set("op-exl", 1_u8).unwrap();
    let req = |op: &str| Request::parse(op).unwrap().name("op-exl");
    let err = core.execute(req("get")).unwrap_err();
    assert!(matches!(err, SingletonError::RateLimited { operation: "get", .. }), "{err:?}");
    let err = core.execute(req("set").value(SingletonValue::new(2_u8))).unwrap_err();
    assert!(matches!(err, SingletonError::RateLimited { operation: "set", .. }), "{err:?}");
    // The methods answer `false` and `0` when refused; as data, every operation says so.
    for op in ["has", "exists", "delete", "reset", "clear", "reset_all"] {
        let err = core.execute(req(op)).unwrap_err();
        // The operations on one singleton name it; those on all of them name none.
        let subject = ["has", "exists", "delete"].contains(&op).then_some("op-exl");
        assert!(
            matches!(&err, SingletonError::RateLimited { operation, name, .. }
                if *operation == op && name.as_deref() == subject),
            "{op}: {err:?}"
        );
    }
    for op in ["get_stats", "stats"] {
        let err = core.execute(req(op)).unwrap_err();
        assert!(matches!(err, SingletonError::RateLimited { operation: "get_stats", .. }), "{op}: {err:?}");
    }
    clock.advance(Duration::from_secs(1));
    let stats = core.stats().unwrap();
    assert_eq!(stats.rate_limited_count, 10);
    assert_eq!(stats.singleton_names, ["op-exl"]);
}

#[test]
fn execute_without_a_name_or_a_value_is_a_missing_argument() {
    let core = unlimited();
    core.set("op-keep", 1_u8).unwrap();
    for op in ["get", "set", "has", "delete", "exists"] {
        let err = core.execute(Request::parse(op).unwrap()).unwrap_err();
        match &err {
            SingletonError::MissingArgument { operation, argument } => {
                assert_eq!(*operation, op);
                assert!(argument.contains("name"), "{err}");
            }
            other => panic!("{op} without a name: expected MissingArgument, got {other:?}"),
        }
        assert!(err.to_string().contains(op), "{err}");
    }
    let err = core.execute(Request::parse("set").unwrap().name("op-keep")).unwrap_err();
    assert!(
        matches!(&err, SingletonError::MissingArgument { operation: "set", argument } if argument.contains("value")),
        "{err:?}"
    );
    // The operations on all singletons need no name.
    for op in ["clear", "reset_all", "get_stats", "stats", "reset"] {
        assert!(core.execute(Request::parse(op).unwrap()).is_ok(), "{op}");
    }
    // A missing argument changed nothing (the clears above removed op-keep, so check before that).
    let core = unlimited();
    core.set("op-keep", 1_u8).unwrap();
    let _ = core.execute(Request::parse("set").unwrap().name("op-keep"));
    let _ = core.execute(Request::parse("delete").unwrap());
    assert_eq!(*core.get::<u8>("op-keep").unwrap().unwrap(), 1);
}
