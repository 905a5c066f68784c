//! Teardown lets go of one instance at a time, dependents first, so that each `Drop` runs while
//! what it depends on is still in its slot: a client's `Drop` can still use its config. This
//! binary holds the one test that shuts the global core down, so that no other test sees it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Mutex;

use singleton_kit::{singleton, RateLimit, SingletonCore};

static CONFIGS_MADE: AtomicUsize = AtomicUsize::new(0);
static SEEN_BY_CLIENT_DROP: Mutex<Vec<usize>> = Mutex::new(Vec::new());
static CLIENT_MAY_LOOK: AtomicBool = AtomicBool::new(true);

#[singleton(factory = TeardownConfig::load)]
pub struct TeardownConfig {
    generation: usize,
}

impl TeardownConfig {
    fn load() -> Self {
        Self { generation: CONFIGS_MADE.fetch_add(1, SeqCst) + 1 }
    }
}

#[singleton(factory = TeardownClient::connect)]
pub struct TeardownClient {
    config_generation: usize,
}

impl TeardownClient {
    fn connect() -> Self {
        Self { config_generation: TeardownConfig::instance().generation }
    }
}

impl Drop for TeardownClient {
    fn drop(&mut self) {
        if CLIENT_MAY_LOOK.load(SeqCst) {
            let config = TeardownConfig::instance();
            SEEN_BY_CLIENT_DROP.lock().unwrap().push(config.generation);
        }
    }
}

/// `shutdown()` and `clear()` on the global core: the client's `Drop` sees the config it was
/// made with, no second config is made, and a second `shutdown()` finds nothing. They once
/// emptied every slot first: the client's `Drop` made config #2, which outlived the shutdown
/// (the first call returned 2, the second 1).
#[test]
fn a_dependents_drop_sees_its_live_dependency_in_the_global_core() {
    let client = TeardownClient::instance();
    assert_eq!(client.config_generation, 1);
    drop(client);

    assert_eq!(singleton_kit::shutdown(), 2);
    assert_eq!(*SEEN_BY_CLIENT_DROP.lock().unwrap(), [1]);
    assert_eq!(CONFIGS_MADE.load(SeqCst), 1, "no config was made again during teardown");
    assert_eq!(singleton_kit::shutdown(), 0, "idempotent: nothing was left behind");
    assert!(!singleton_kit::manager().has(TeardownConfig::SINGLETON_NAME));

    // And `clear()` the same way, with instances made again after the shutdown.
    assert_eq!(TeardownClient::instance().config_generation, 2);
    assert_eq!(singleton_kit::manager().clear(), 2);
    assert_eq!(*SEEN_BY_CLIENT_DROP.lock().unwrap(), [1, 2]);
    assert_eq!(CONFIGS_MADE.load(SeqCst), 2);
    CLIENT_MAY_LOOK.store(false, SeqCst);
}

/// On an isolated core: a dependent's `Drop` that asks the core for its dependency by name gets
/// it (it once got `None`), whether the dependency is a `#[singleton]`, a `set` value or a
/// `get_or_create` value.
#[test]
fn a_dependents_drop_gets_its_dependency_by_name_from_an_isolated_core() {
    static SEEN: Mutex<Vec<(&str, bool)>> = Mutex::new(Vec::new());

    struct Uses(&'static SingletonCore, &'static str);
    impl Drop for Uses {
        fn drop(&mut self) {
            let there = self.0.get::<u32>(self.1).expect("a valid name").is_some();
            SEEN.lock().unwrap().push((self.1, there));
        }
    }

    let core: &'static SingletonCore =
        Box::leak(Box::new(SingletonCore::with_rate_limit(RateLimit::unlimited())));
    core.set("stored", 1_u32).unwrap();
    core.get_or_create("made", || 2_u32).unwrap();
    core.get_or_create("uses_stored", || {
        core.get::<u32>("stored").unwrap();
        Uses(core, "stored")
    })
    .unwrap();
    core.get_or_create("uses_made", || {
        core.get::<u32>("made").unwrap();
        Uses(core, "made")
    })
    .unwrap();

    assert_eq!(core.clear(), 4);
    let mut seen = SEEN.lock().unwrap().clone();
    seen.sort();
    assert_eq!(seen, [("made", true), ("stored", true)]);
    assert_eq!(core.clear(), 0);
    assert_eq!(core.stats().unwrap().total_singletons, 0);
}

/// A `Drop` that creates or `set`s something during teardown does not leave it behind: it is
/// let go in the same teardown (and counted), so the core ends empty and a second call finds
/// nothing.
#[test]
fn what_a_drop_makes_during_teardown_is_let_go_too() {
    static LEFT_BEHIND_DROPPED: AtomicUsize = AtomicUsize::new(0);

    struct LeftBehind;
    impl Drop for LeftBehind {
        fn drop(&mut self) {
            LEFT_BEHIND_DROPPED.fetch_add(1, SeqCst);
        }
    }
    struct Maker(&'static SingletonCore);
    impl Drop for Maker {
        fn drop(&mut self) {
            self.0.set("made_in_drop", LeftBehind).unwrap();
            self.0.get_or_create("created_in_drop", || LeftBehind).unwrap();
        }
    }

    let core: &'static SingletonCore =
        Box::leak(Box::new(SingletonCore::with_rate_limit(RateLimit::unlimited())));
    core.set("maker", Maker(core)).unwrap();
    assert_eq!(core.shutdown(), 3, "the maker, and the two its Drop made");
    assert_eq!(LEFT_BEHIND_DROPPED.load(SeqCst), 2);
    assert!(!core.has("made_in_drop") && !core.has("created_in_drop"));
    assert_eq!(core.shutdown(), 0);
}

/// `Drop`s that keep making each other again do not make teardown run for ever: it stops after
/// a bounded number of rounds.
#[test]
fn drops_that_keep_making_each_other_stop_after_a_bounded_number_of_rounds() {
    struct Again(&'static SingletonCore, u32);
    impl Drop for Again {
        fn drop(&mut self) {
            let _ = self.0.set("again", Again(self.0, self.1 + 1));
        }
    }

    let core: &'static SingletonCore =
        Box::leak(Box::new(SingletonCore::with_rate_limit(RateLimit::unlimited())));
    core.set("again", Again(core, 0)).unwrap();
    let released = core.shutdown();
    assert!(released > 1 && released <= 16, "released {released}");
    assert!(core.has("again"), "the last one made is left, with a warning");
    // Leak it rather than start the chain again when the test ends.
    std::mem::forget(core.get::<Again>("again").unwrap());
}
