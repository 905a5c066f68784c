//! Held handles (`borrow::held`): taken and dropped with no read-modify-write on the owning
//! thread, exact wherever they are dropped; natively, under miri, and (the `loom_` tests) under
//! loom.

/// Handles counted in a thread's own cell (`borrow::held`): taken and dropped with no
/// read-modify-write on that thread, exact wherever they are dropped.
#[cfg(not(loom))]
mod held_handles {
    use super::super::*;
    use crate::memory::node::borrow::held;
    use crate::memory::node::reference::Counted;
    use std::sync::mpsc;
    use std::thread;

    /// A slot with the per-thread counter `counter` whose node is published, and its drop
    /// counter. Each test has its own counter, so that a record given back by another test's
    /// thread with handles still out in its cell (which then takes shared handles, by design)
    /// does not meet this one's slot.
    fn counted_slot(counter: u32) -> (Arc<Slot>, Arc<AtomicUsize>) {
        published_slot(8, counter)
    }

    fn is_held(r: &Ref) -> bool {
        matches!(r.counted(), Counted::Held(_))
    }

    #[test]
    fn a_held_handle_keeps_a_replaced_value_until_it_is_dropped() {
        let (slot, drops) = counted_slot(1);
        thread::spawn(move || {
            let h = held::take(&slot).expect("a thread with a record takes a held handle");
            assert!(is_held(&h));
            drop(held::take(&slot).expect("and another"));
            drop(slot.swap(None));
            assert_eq!(drops.load(Ordering::SeqCst), 0, "dropped while a handle holds it");
            assert_eq!(id_of(&h), 1);
            drop(h);
            assert_eq!(drops.load(Ordering::SeqCst), 1, "dropped with the last handle");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_held_handle_dropped_and_cloned_on_other_threads_after_a_delete() {
        let (slot, drops) = counted_slot(2);
        let (tx, rx) = mpsc::channel::<Ref>();
        let taker = {
            let slot = Arc::clone(&slot);
            thread::spawn(move || {
                let h = held::take(&slot).expect("held");
                tx.send(h.clone()).unwrap(); // a clone, counted on the shared side
                tx.send(h).unwrap();
            })
        };
        taker.join().unwrap(); // the taking thread has exited: its record is given back
        drop(slot.swap(None));
        let (a, b) = (rx.recv().unwrap(), rx.recv().unwrap());
        let c = b.clone();
        drop((a, b));
        assert_eq!(drops.load(Ordering::SeqCst), 0, "a clone still holds it");
        assert_eq!(id_of(&c), 1);
        drop(c);
        assert_eq!(drops.load(Ordering::SeqCst), 1, "dropped once, with the last handle");
    }

    #[test]
    fn while_an_old_nodes_handles_are_out_the_owner_takes_shared_ones() {
        let (slot, drops) = counted_slot(3);
        thread::spawn(move || {
            let old = held::take(&slot).expect("held");
            let second = Arc::new(AtomicUsize::new(0));
            drop(slot.swap(Some(probe(&second, 2))));
            assert!(held::take(&slot).is_none(), "the cell still holds a handle of the old node");
            let shared = slot.get(true).expect("a shared handle instead");
            assert_eq!(id_of(&shared), 2);
            drop(old);
            assert_eq!(drops.load(Ordering::SeqCst), 1);
            let new = held::take(&slot).expect("the cell moves to the new node");
            assert_eq!(id_of(&new), 2);
            drop((shared, new));
            drop(slot.swap(None));
            assert_eq!(second.load(Ordering::SeqCst), 1);
        })
        .join()
        .unwrap();
    }

    /// Many threads take, clone, send and drop held handles while another replaces the value:
    /// every value is dropped exactly once, none while a handle holds it.
    #[test]
    fn held_handles_race_replacements() {
        let (slot, first) = counted_slot(4);
        let made = Arc::new(AtomicUsize::new(1));
        let drops: Arc<std::sync::Mutex<Vec<Arc<AtomicUsize>>>> =
            Arc::new(std::sync::Mutex::new(vec![first]));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (tx, rx) = mpsc::channel::<Ref>();
        let takers: Vec<_> = (0..3)
            .map(|_| {
                let (slot, stop, tx) = (Arc::clone(&slot), Arc::clone(&stop), tx.clone());
                thread::spawn(move || {
                    let mut i = 0_u32;
                    while !stop.load(Ordering::Relaxed) {
                        i += 1;
                        if let Some(h) = held::take(&slot).or_else(|| slot.get(true)) {
                            if i % 3 == 0 {
                                tx.send(h.clone()).unwrap();
                            }
                            if i % 5 == 0 {
                                tx.send(h).unwrap();
                            }
                        }
                    }
                })
            })
            .collect();
        drop(tx);
        let dropper = thread::spawn(move || rx.into_iter().count());
        for id in 2..300 {
            let d = Arc::new(AtomicUsize::new(0));
            drops.lock().unwrap().push(Arc::clone(&d));
            made.fetch_add(1, Ordering::SeqCst);
            drop(slot.swap(Some(probe(&d, id))));
        }
        stop.store(true, Ordering::Relaxed);
        for t in takers {
            t.join().unwrap();
        }
        dropper.join().unwrap();
        drop(slot.swap(None));
        let drops = drops.lock().unwrap();
        assert!(drops.iter().all(|d| d.load(Ordering::SeqCst) == 1), "each value dropped once");
        assert_eq!(drops.len(), made.load(Ordering::SeqCst));
    }
}

/// Held handles under loom: taken on one thread, dropped or cloned on another, while the node is
/// retired.
#[cfg(loom)]
mod loom_held {
    use super::super::*;
    use crate::memory::node::borrow::held;
    use loom::thread;

    #[test]
    fn loom_a_held_handle_taken_on_one_thread_and_dropped_on_another_while_retired() {
        loom::model(|| {
            let (slot, drops) = published_slot(1, 0);
            let taker = {
                let slot = Arc::clone(&slot);
                thread::spawn(move || held::take(&slot))
            };
            drop(slot.swap(None));
            let h = taker.join().unwrap();
            if let Some(h) = h {
                assert_eq!(drops.load(Ordering::SeqCst), 0, "dropped while a handle holds it");
                assert_eq!(id_of(&h), 1);
                drop(h); // on another thread than the one that took it
            }
            assert_eq!(drops.load(Ordering::SeqCst), 1, "dropped once");
        });
    }

    #[test]
    fn loom_a_held_handle_cloned_and_dropped_on_two_threads_while_retired() {
        loom::model(|| {
            let (slot, drops) = published_slot(1, 0);
            let h = held::take(&slot).expect("held");
            let other = {
                let c = h.clone();
                thread::spawn(move || {
                    assert_eq!(id_of(&c), 1);
                    drop(c);
                })
            };
            drop(slot.swap(None));
            drop(h);
            other.join().unwrap();
            assert_eq!(drops.load(Ordering::SeqCst), 1, "dropped once, after both");
        });
    }

    /// A thread exits with a held handle alive elsewhere; the next thread claims its record
    /// (and so owns the cell) and takes and drops handles of the same node, while the first
    /// handle is dropped on a third thread and the node is retired.
    #[test]
    fn loom_a_thread_exits_with_a_held_handle_alive_elsewhere() {
        loom::model(|| {
            let (slot, drops) = published_slot(1, 0);
            let first = {
                let slot = Arc::clone(&slot);
                thread::spawn(move || {
                    let h = held::take(&slot).expect("held");
                    borrow::give_back_for_tests();
                    h
                })
            };
            let h = first.join().unwrap();
            let next = {
                let slot = Arc::clone(&slot);
                thread::spawn(move || {
                    if let Some(h2) = held::take(&slot) {
                        assert_eq!(id_of(&h2), 1);
                    }
                })
            };
            drop(h); // on a third thread: the cell's owner is now the next thread, or nobody
            drop(slot.swap(None));
            next.join().unwrap();
            assert_eq!(drops.load(Ordering::SeqCst), 1, "dropped once, after every handle");
        });
    }

    /// A value stored by `set` is taken as a held handle and deleted again before the setting
    /// thread has recorded the slot's counter on the node: the writer that frees it must still
    /// find the cell (the node knows its cell from before it was published).
    #[test]
    fn loom_a_held_handle_of_a_value_deleted_as_soon_as_it_is_set() {
        loom::model(|| {
            borrow::set_counters(1);
            let drops = Arc::new(AtomicUsize::new(0));
            let slot = Arc::new(Slot::counted(0));
            let setter = {
                let (slot, drops) = (Arc::clone(&slot), Arc::clone(&drops));
                thread::spawn(move || drop(slot.swap(Some(probe(&drops, 1)))))
            };
            let taker = {
                let (slot, drops) = (Arc::clone(&slot), Arc::clone(&drops));
                thread::spawn(move || {
                    if let Some(h) = held::take(&slot) {
                        assert_eq!(drops.load(Ordering::SeqCst), 0, "dropped while a handle holds it");
                        assert_eq!(id_of(&h), 1);
                    }
                })
            };
            drop(slot.swap(None));
            setter.join().unwrap();
            taker.join().unwrap();
            drop(slot.swap(None));
            assert_eq!(drops.load(Ordering::SeqCst), 1, "dropped once");
        });
    }
}
