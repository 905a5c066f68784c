//! `T::with_instance(f)`: a counted borrow of the instance with no handle kept, sound against a
//! `delete` of the same singleton from inside `f` or from another thread.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::thread;

use singleton_kit::{manager, singleton};

static DROPPED: AtomicUsize = AtomicUsize::new(0);

#[singleton(name = "borrowed", factory = || Borrowed { alive: true })]
pub struct Borrowed {
    alive: bool,
}

impl Drop for Borrowed {
    fn drop(&mut self) {
        self.alive = false;
        DROPPED.fetch_add(1, SeqCst);
    }
}

#[test]
fn a_delete_inside_the_borrow_drops_the_instance_after_it() {
    // Another test here deletes in a loop: no window of the default limit may refuse this one.
    manager().set_rate_limit(singleton_kit::RateLimit::unlimited());
    // Made first, so that the borrow below is the handle-free one, not the creating call.
    drop(Borrowed::instance());
    let dropped_before = DROPPED.load(SeqCst);
    let seen = Borrowed::with_instance(|b| {
        assert!(manager().delete("borrowed"), "f may delete its own singleton");
        // Released by the core, but not dropped while the borrow runs.
        assert_eq!(DROPPED.load(SeqCst), dropped_before);
        b.alive
    });
    assert!(seen);
    assert_eq!(DROPPED.load(SeqCst), dropped_before + 1, "dropped once the borrow ended");
    // The next call makes a fresh one.
    assert!(Borrowed::with_instance(|b| b.alive)); // made, with a handle
    assert!(Borrowed::with_instance(|b| b.alive)); // borrowed
    assert_eq!(manager().stats().unwrap().access_counts["borrowed"], 2);
}

#[singleton(name = "borrow_counted", factory = || BorrowCounted)]
pub struct BorrowCounted;

#[test]
fn every_borrow_counts_one_access_from_any_number_of_threads() {
    let threads: Vec<_> = (0..4)
        .map(|_| thread::spawn(|| (0..1_000).for_each(|_| BorrowCounted::with_instance(|_| ()))))
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(manager().stats().unwrap().access_counts["borrow_counted"], 4_000);
}

static CHURN_MADE: AtomicUsize = AtomicUsize::new(0);
static CHURN_DROPPED: AtomicUsize = AtomicUsize::new(0);

#[singleton(name = "borrow_churn", factory = BorrowChurn::new)]
pub struct BorrowChurn(Vec<u8>);

impl BorrowChurn {
    fn new() -> Self {
        CHURN_MADE.fetch_add(1, SeqCst);
        BorrowChurn(vec![7; 64])
    }
}

impl Drop for BorrowChurn {
    fn drop(&mut self) {
        // A borrow that outlived the value would read zeros, not sevens.
        self.0.fill(0);
        CHURN_DROPPED.fetch_add(1, SeqCst);
    }
}

#[test]
fn borrows_race_deletes_and_sets_from_another_thread_and_every_value_is_dropped_once() {
    manager().set_rate_limit(singleton_kit::RateLimit::unlimited());
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let (mut deleted, mut replaced) = (0, 0);
            while !stop.load(SeqCst) {
                deleted += usize::from(manager().delete("borrow_churn"));
                thread::yield_now();
                manager().set("borrow_churn", BorrowChurn::new()).unwrap();
                replaced += 1;
                thread::yield_now();
            }
            (deleted, replaced)
        })
    };
    for _ in 0..20_000 {
        let sum: u32 = BorrowChurn::with_instance(|c| c.0.iter().map(|&b| u32::from(b)).sum());
        assert_eq!(sum, 7 * 64);
    }
    stop.store(true, SeqCst);
    let (deleted, replaced) = writer.join().unwrap();
    assert!(deleted > 0 && replaced > 0, "the writer raced the borrows");
    manager().delete("borrow_churn");
    // Every value made, by the factory or for `set`, is dropped once: none is kept alive by a
    // borrow that ended, none twice.
    assert_eq!(CHURN_DROPPED.load(SeqCst), CHURN_MADE.load(SeqCst));
}

static HELD_DROPPED: AtomicUsize = AtomicUsize::new(0);

#[singleton(name = "borrow_held", factory = || Held(vec![1, 2, 3]))]
pub struct Held(Vec<u8>);

impl Drop for Held {
    fn drop(&mut self) {
        HELD_DROPPED.fetch_add(1, SeqCst);
    }
}

#[test]
fn a_delete_from_another_thread_waits_for_nothing_and_the_value_outlives_the_borrow() {
    use std::sync::mpsc;
    manager().set_rate_limit(singleton_kit::RateLimit::unlimited());
    let (inside_tx, inside_rx) = mpsc::channel();
    let (deleted_tx, deleted_rx) = mpsc::channel::<()>();
    drop(Held::instance()); // made first: the borrow below is the handle-free one
    let borrower = thread::spawn(move || {
        Held::with_instance(|h| {
            inside_tx.send(()).unwrap();
            deleted_rx.recv().unwrap();
            // Deleted and released by the core while this borrow runs: still intact.
            assert_eq!(HELD_DROPPED.load(SeqCst), 0);
            h.0.iter().map(|&b| u32::from(b)).sum::<u32>()
        })
    });
    inside_rx.recv().unwrap();
    // The writer does not wait for the borrow to end.
    assert!(manager().delete("borrow_held"));
    assert_eq!(HELD_DROPPED.load(SeqCst), 0, "not dropped while borrowed");
    deleted_tx.send(()).unwrap();
    assert_eq!(borrower.join().unwrap(), 6);
    assert_eq!(HELD_DROPPED.load(SeqCst), 1, "dropped when the borrow ended, by its thread");
}

static PANICKY_DROPPED: AtomicUsize = AtomicUsize::new(0);

#[singleton(name = "borrow_panicky", factory = || Panicky)]
pub struct Panicky;

impl Drop for Panicky {
    fn drop(&mut self) {
        PANICKY_DROPPED.fetch_add(1, SeqCst);
    }
}

#[test]
fn a_panic_in_f_ends_the_borrow() {
    manager().set_rate_limit(singleton_kit::RateLimit::unlimited());
    drop(Panicky::instance());
    let caught = std::panic::catch_unwind(|| Panicky::with_instance(|_| panic!("inside the borrow")));
    assert!(caught.is_err());
    // No mark is left behind: a delete now drops the value at once.
    assert!(manager().delete("borrow_panicky"));
    assert_eq!(PANICKY_DROPPED.load(SeqCst), 1);
    // And the thread's borrows still work, nested too.
    let depth = Panicky::with_instance(|_| Panicky::with_instance(|_| 2));
    assert_eq!(depth, 2);
}

#[singleton(name = "borrow_nested", factory = || Nested)]
pub struct Nested;

fn nest(depth: u32) -> u32 {
    if depth == 0 {
        return 0;
    }
    Nested::with_instance(|_| 1 + nest(depth - 1))
}

#[test]
fn borrows_nest_deeper_than_the_marks_and_each_counts_once() {
    assert_eq!(nest(12), 12);
    assert_eq!(manager().stats().unwrap().access_counts["borrow_nested"], 12);
}

#[singleton(name = "borrow_reset", factory = || Resettable(1))]
pub struct Resettable(u32);

#[test]
fn a_set_starts_the_count_again_and_borrows_see_the_new_value() {
    manager().set_rate_limit(singleton_kit::RateLimit::unlimited());
    for _ in 0..5 {
        assert_eq!(Resettable::with_instance(|r| r.0), 1);
    }
    assert_eq!(manager().stats().unwrap().access_counts["borrow_reset"], 5);
    manager().set("borrow_reset", Resettable(2)).unwrap();
    assert_eq!(manager().stats().unwrap().access_counts["borrow_reset"], 0);
    for _ in 0..3 {
        assert_eq!(Resettable::with_instance(|r| r.0), 2);
    }
    assert_eq!(manager().stats().unwrap().access_counts["borrow_reset"], 3);
}

#[singleton(name = "borrow_threads", factory = || ShortLived)]
pub struct ShortLived;

#[test]
fn the_counts_of_threads_that_have_exited_are_kept() {
    for _ in 0..8 {
        thread::spawn(|| (0..100).for_each(|_| ShortLived::with_instance(|_| ()))).join().unwrap();
    }
    assert_eq!(manager().stats().unwrap().access_counts["borrow_threads"], 800);
}

static LOUD_DROPS: AtomicUsize = AtomicUsize::new(0);

#[singleton(name = "borrow_loud_drop", factory = || LoudDrop)]
pub struct LoudDrop;

impl Drop for LoudDrop {
    fn drop(&mut self) {
        LOUD_DROPS.fetch_add(1, SeqCst);
        panic!("LoudDrop refuses to go quietly");
    }
}

#[test]
fn a_panicking_drop_of_an_instance_released_during_a_borrow_is_caught_when_the_borrow_ends() {
    manager().set_rate_limit(singleton_kit::RateLimit::unlimited());
    drop(LoudDrop::instance());
    let out = LoudDrop::with_instance(|_| {
        assert!(manager().delete("borrow_loud_drop"));
        "returned"
    });
    assert_eq!(out, "returned", "the borrow ends normally");
    assert_eq!(LOUD_DROPS.load(SeqCst), 1, "dropped when the borrow ended");
}

#[singleton(name = "wi_config", factory = || WiConfig(7))]
pub struct WiConfig(u32);

#[singleton(name = "wi_client", factory = || WiClient(WiConfig::with_instance(|c| c.0)))]
pub struct WiClient(u32);

#[test]
fn a_borrow_in_a_factory_is_a_dependency_and_a_borrow_in_a_scope_sees_its_replacement() {
    // The thread borrows first, so that it has a record of its own (the handle-free path) when
    // the factory and the scope run.
    assert_eq!(WiConfig::with_instance(|c| c.0), 7);
    assert_eq!(WiClient::with_instance(|c| c.0), 7);
    let graph = manager().graph();
    assert!(
        graph.edges.iter().any(|e| e.from == "wi_client" && e.to == "wi_config"),
        "the factory's borrow is recorded: {:?}",
        graph.edges
    );
    let scope = singleton_kit::testing::Scope::new();
    scope.replace(WiConfig(8));
    scope.run(|| assert_eq!(WiConfig::with_instance(|c| c.0), 8, "the scope's replacement"));
    assert_eq!(WiConfig::with_instance(|c| c.0), 7, "the global one again");
}

/// A descriptor made by hand (not through the attribute) whose factory makes another type than
/// the one it registers: the creation refuses the value, so no borrow ever reads it as the
/// registered type.
mod hand_made {
    use singleton_kit::__private::{
        inventory, BoxError, Descriptor, Factory, Registration, SingletonType, SingletonValue,
        TypedDescriptor,
    };
    use singleton_kit::SingletonError;

    pub struct Wanted(pub u64);

    impl SingletonType for Wanted {
        fn descriptor() -> &'static Descriptor {
            WANTED.descriptor()
        }
    }

    fn make() -> Result<SingletonValue, BoxError> {
        Ok(SingletonValue::new(String::from("not a Wanted")))
    }

    static WANTED: TypedDescriptor<Wanted> = Descriptor::new::<Wanted>(
        "hand_made_wanted",
        module_path!(),
        file!(),
        line!(),
        false,
        Factory::Sync(make),
    );
    inventory::submit!(Registration::new(WANTED.descriptor()));

    #[test]
    fn a_factory_value_of_another_type_is_refused_at_creation() {
        match WANTED.try_instance() {
            Err(SingletonError::TypeMismatch { name, .. }) => assert_eq!(name, "hand_made_wanted"),
            other => panic!("expected a type mismatch, got {:?}", other.map(|w| w.0)),
        }
        // Nothing was stored: every later call tries the factory again and fails the same way
        // (a stored value would be read here as a `Wanted` by the handle-free path).
        for _ in 0..3 {
            let borrowed = std::panic::catch_unwind(|| WANTED.with_instance(|w| w.0));
            assert!(borrowed.is_err(), "with_instance fails as instance() does, and reads nothing");
        }
    }
}
