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
    assert!(Borrowed::with_instance(|b| b.alive));
    assert_eq!(manager().stats().unwrap().access_counts["borrowed"], 1);
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

#[singleton(name = "borrow_churn", factory = || BorrowChurn(vec![7; 64]))]
pub struct BorrowChurn(Vec<u8>);

#[test]
fn borrows_race_deletes_from_another_thread_and_always_read_a_live_value() {
    manager().set_rate_limit(singleton_kit::RateLimit::unlimited());
    let stop = Arc::new(AtomicBool::new(false));
    let deleter = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let mut deleted = 0;
            while !stop.load(SeqCst) {
                deleted += usize::from(manager().delete("borrow_churn"));
                thread::yield_now();
            }
            deleted
        })
    };
    for _ in 0..20_000 {
        let sum: u32 = BorrowChurn::with_instance(|c| c.0.iter().map(|&b| u32::from(b)).sum());
        assert_eq!(sum, 7 * 64);
    }
    stop.store(true, SeqCst);
    let deleted = deleter.join().unwrap();
    assert!(deleted > 0, "the deleter raced the borrows");
}
