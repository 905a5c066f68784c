//! The `#[singleton]` attribute through the facade: one registry for the typed and the
//! name-keyed paths, exactly-once creation, cycles, retries, and the startup listing.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use singleton_kit::{manager, singleton, Instance, SingletonError};

#[singleton(factory = Typed::new)]
#[derive(Debug)]
pub struct Typed {
    n: u32,
}

impl Typed {
    fn new() -> Self {
        Self { n: 41 }
    }
}

#[test]
fn typed_and_name_keyed_paths_share_one_instance() {
    assert_eq!(Typed::SINGLETON_NAME, "typed");
    let a = Typed::instance();
    let b = manager().get::<Typed>("typed").unwrap().expect("registered");
    assert!(Instance::ptr_eq(&a, &b));
    assert_eq!(a.n, 41);
}

#[singleton(factory = || Replaceable(0))]
pub struct Replaceable(u32);

#[test]
fn delete_makes_the_next_instance_fresh_and_set_replaces() {
    let first = Replaceable::instance();
    assert!(manager().delete("replaceable"));
    let second = Replaceable::instance();
    assert!(!Instance::ptr_eq(&first, &second), "delete must make instance() create anew");
    assert_eq!(first.0, 0, "the old handle stays valid");

    manager().set("replaceable", Replaceable(9)).unwrap();
    assert_eq!(Replaceable::instance().0, 9);
    assert_eq!(second.0, 0);

    let err = manager().set("replaceable", String::from("other type")).unwrap_err();
    assert!(matches!(&err, SingletonError::TypeMismatch { name, .. } if name == "replaceable"), "{err}");
    assert_eq!(Replaceable::instance().0, 9, "a refused set changes nothing");
    let err = manager().get::<String>("replaceable").unwrap_err();
    assert!(matches!(err, SingletonError::TypeMismatch { .. }), "{err}");
}

#[singleton]
#[derive(Default)]
pub struct MadeByName(u8);

#[test]
fn get_by_name_creates_a_registered_singleton() {
    let registered = singleton_kit::registered();
    let r = registered.iter().find(|r| r.name() == "made_by_name").unwrap();
    assert!(!r.is_created());
    let by_name = manager().get::<MadeByName>("made_by_name").unwrap().unwrap();
    assert_eq!(by_name.0, 0);
    assert!(r.is_created());
    assert!(Instance::ptr_eq(&by_name, &MadeByName::instance()));
    assert_eq!(r.access_count(), 2);
}

static RACED_RUNS: AtomicUsize = AtomicUsize::new(0);

#[singleton(factory = Raced::new)]
pub struct Raced;

impl Raced {
    fn new() -> Self {
        RACED_RUNS.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(20));
        Raced
    }
}

#[test]
fn racing_threads_run_the_factory_once() {
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                Raced::instance()
            })
        })
        .collect();
    let all: Vec<Instance<Raced>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(RACED_RUNS.load(Ordering::SeqCst), 1);
    assert!(all.iter().all(|h| Instance::ptr_eq(h, &all[0])));
}

#[singleton(factory = || Counted)]
pub struct Counted;

#[test]
fn access_counts_are_exact_across_threads() {
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..10_000 {
                    let _ = Counted::instance();
                }
            });
        }
    });
    let r = singleton_kit::registered().into_iter().find(|r| r.name() == "counted").unwrap();
    assert_eq!(r.access_count(), 40_000);
}

// A factory that calls other singletons: no lock is held while it runs.
#[singleton(factory = || Leaf(3))]
pub struct Leaf(u32);

#[singleton(factory = || Branch(Leaf::instance().0 + 1))]
pub struct Branch(u32);

#[test]
fn factories_may_use_other_singletons() {
    assert_eq!(Branch::instance().0, 4);
}

// Cycles: a -> b -> a through infallible factories, and through try_factories with `?`.
#[singleton(name = "cycle_a", factory = || CycleA(CycleB::instance().0))]
#[derive(Debug)]
pub struct CycleA(u32);

#[singleton(name = "cycle_b", factory = || CycleB(CycleA::instance().0))]
#[derive(Debug)]
pub struct CycleB(u32);

#[test]
fn a_cycle_is_an_error_from_try_instance() {
    let err = CycleA::try_instance().unwrap_err();
    let SingletonError::Cycle { path } = &err else { panic!("expected a cycle, got {err}") };
    assert_eq!(path, &["cycle_a", "cycle_b", "cycle_a"]);
    assert!(err.to_string().contains("cycle_a -> cycle_b -> cycle_a"), "{err}");
    // Nothing was left behind: both are still uncreated and fail the same way again.
    assert!(matches!(CycleB::try_instance(), Err(SingletonError::Cycle { .. })));
}

#[test]
fn a_cycle_panics_from_instance_naming_the_path() {
    let panic = std::panic::catch_unwind(|| drop(CycleB::instance())).unwrap_err();
    let message = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap();
    assert!(message.contains("cycle_b -> cycle_a -> cycle_b"), "{message}");
}

#[singleton(name = "try_a", try_factory = TryA::load)]
#[derive(Debug)]
pub struct TryA;
impl TryA {
    fn load() -> Result<Self, SingletonError> {
        TryB::try_instance()?;
        Ok(TryA)
    }
}

#[singleton(name = "try_b", try_factory = TryB::load)]
#[derive(Debug)]
pub struct TryB;
impl TryB {
    fn load() -> Result<Self, SingletonError> {
        TryC::try_instance()?;
        Ok(TryB)
    }
}

#[singleton(name = "try_c", try_factory = TryC::load)]
#[derive(Debug)]
pub struct TryC;
impl TryC {
    fn load() -> Result<Self, SingletonError> {
        TryA::try_instance()?;
        Ok(TryC)
    }
}

#[test]
fn a_cycle_propagated_with_question_mark_stays_a_cycle() {
    match TryA::try_instance() {
        Err(SingletonError::Cycle { path }) => assert_eq!(path, ["try_a", "try_b", "try_c", "try_a"]),
        Err(other) => panic!("expected a cycle, got {other}"),
        Ok(_) => panic!("a cycle cannot be created"),
    }
}

#[singleton(name = "self_ref", factory = || SelfRef(SelfRef::instance().0))]
#[derive(Debug)]
pub struct SelfRef(u32);

#[test]
fn a_singleton_that_needs_itself_is_a_cycle_of_one() {
    match SelfRef::try_instance() {
        Err(SingletonError::Cycle { path }) => assert_eq!(path, ["self_ref", "self_ref"]),
        Err(other) => panic!("expected a cycle, got {other}"),
        Ok(_) => panic!("a cycle cannot be created"),
    }
}

// Two threads enter a cycle from both ends at once: each call ends with the cycle, none hangs.
#[singleton(name = "x_left", factory = || { let _ = XRight::instance(); XLeft })]
#[derive(Debug)]
pub struct XLeft;

#[singleton(name = "x_right", factory = || { let _ = XLeft::instance(); XRight })]
#[derive(Debug)]
pub struct XRight;

#[test]
fn a_cycle_entered_from_two_threads_never_deadlocks() {
    for _ in 0..20 {
        let barrier = Arc::new(Barrier::new(2));
        let (b1, b2) = (Arc::clone(&barrier), barrier);
        let left = std::thread::spawn(move || {
            b1.wait();
            XLeft::try_instance().map(|_| ())
        });
        let right = std::thread::spawn(move || {
            b2.wait();
            XRight::try_instance().map(|_| ())
        });
        for result in [left.join().unwrap(), right.join().unwrap()] {
            match result {
                Err(SingletonError::Cycle { path }) => {
                    assert_eq!(path.first(), path.last());
                    assert_eq!(path.len(), 3, "{path:?}");
                }
                other => panic!("expected a cycle, got {other:?}"),
            }
        }
    }
}

static FLAKY_CALLS: AtomicUsize = AtomicUsize::new(0);

#[singleton(try_factory = Flaky::connect)]
#[derive(Debug)]
pub struct Flaky;

impl Flaky {
    fn connect() -> Result<Self, std::io::Error> {
        match FLAKY_CALLS.fetch_add(1, Ordering::SeqCst) {
            0 => Err(std::io::Error::other("connection refused")),
            1 => panic!("flaky factory panicked"),
            _ => Ok(Flaky),
        }
    }
}

#[test]
fn a_failing_or_panicking_factory_leaves_nothing_and_is_retried() {
    let err = Flaky::try_instance().unwrap_err();
    assert!(matches!(&err, SingletonError::Factory { name, .. } if name == "flaky"), "{err}");
    assert!(std::error::Error::source(&err).unwrap().to_string().contains("connection refused"));
    assert!(std::panic::catch_unwind(Flaky::try_instance).is_err());
    assert!(Flaky::try_instance().is_ok());
    assert_eq!(FLAKY_CALLS.load(Ordering::SeqCst), 3);
}

#[singleton(try_factory = || Err::<Broken, _>("no credentials"))]
#[derive(Debug)]
pub struct Broken;

#[test]
fn instance_panics_with_the_name_and_the_cause() {
    let panic = std::panic::catch_unwind(|| drop(Broken::instance())).unwrap_err();
    let message = panic.downcast_ref::<String>().unwrap();
    assert!(message.contains("`broken`") && message.contains("no credentials"), "{message}");
}

#[test]
fn singletons_of_other_crates_are_registered() {
    extra_singletons::link();
    let all = singleton_kit::registered();
    let names: Vec<&str> = all.iter().map(|r| r.name()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "registered() is sorted by name");
    let remote = all.iter().find(|r| r.name() == "remote_config").expect("from another crate");
    assert_eq!(remote.module_path(), "extra_singletons");
    assert!(remote.file().ends_with("lib.rs"));
    assert!(remote.line() > 0);
    assert!(!remote.is_eager());
    assert!(all.iter().any(|r| r.name() == "remote_client" && r.is_eager()));
    let typed = all.iter().find(|r| r.name() == "typed").unwrap();
    assert_eq!(typed.module_path(), "singletons");
    assert!(typed.file().ends_with("singletons.rs"));
    assert_eq!(extra_singletons::RemoteClient::instance().id, 7);
    assert_eq!(extra_singletons::RemoteConfig::SINGLETON_NAME, "remote_config");
}

// Two factories that each wait for the other to have started: they finish only if unrelated
// singletons are created in parallel (a creation lock held across factories would time out).
static PAR_STARTED: (AtomicUsize, AtomicUsize) = (AtomicUsize::new(0), AtomicUsize::new(0));

fn wait_for(flag: &AtomicUsize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while flag.load(Ordering::SeqCst) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the other factory never started: creations are serialised"
        );
        std::thread::yield_now();
    }
}

#[singleton(factory = || { PAR_STARTED.0.store(1, Ordering::SeqCst); wait_for(&PAR_STARTED.1); ParA })]
pub struct ParA;

#[singleton(factory = || { PAR_STARTED.1.store(1, Ordering::SeqCst); wait_for(&PAR_STARTED.0); ParB })]
pub struct ParB;

#[test]
fn unrelated_singletons_are_created_in_parallel() {
    let a = std::thread::spawn(|| drop(ParA::instance()));
    let b = std::thread::spawn(|| drop(ParB::instance()));
    a.join().unwrap();
    b.join().unwrap();
}

/// Factories are read as tokens up to the next top-level comma: generic arguments with commas,
/// qualified paths and closures with a return type all reach the generated code whole.
#[test]
fn factories_with_commas_in_generics_and_closures_with_arrows_are_read_whole() {
    pub struct Pair<A, B>(A, B);
    impl<A: Default, B: Default> Pair<A, B> {
        fn make() -> Self {
            Pair(A::default(), B::default())
        }
    }

    #[singleton(factory = || -> Turbofish { Turbofish(Pair::<u8, u16>::make()) }, name = "tokens_turbofish")]
    pub struct Turbofish(Pair<u8, u16>);

    #[singleton(factory = <Qualified as Default>::default, eager, name = "tokens_qualified")]
    #[derive(Default)]
    pub struct Qualified(u32);

    assert_eq!(Turbofish::instance().0 .1, 0);
    assert_eq!(Turbofish::SINGLETON_NAME, "tokens_turbofish");
    assert_eq!(Qualified::instance().0, 0);
    let registered = singleton_kit::registered();
    assert!(registered.iter().any(|r| r.name() == "tokens_qualified" && r.is_eager()));
}
