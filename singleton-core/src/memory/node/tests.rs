//! The node protocol: values dropped exactly once, never while a handle holds them, with exact
//! access counts. Run natively, under miri, and (the `loom_` tests) under loom, each for both
//! classes of node: one stripe (run-time names) and striped (`#[singleton]` types).

use super::*;

#[cfg(loom)]
use loom::sync::{atomic::AtomicUsize, Arc};
#[cfg(not(loom))]
use std::sync::{atomic::AtomicUsize, Arc};

/// A value that counts its drops.
struct Probe {
    drops: Arc<AtomicUsize>,
    id: usize,
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

fn probe(drops: &Arc<AtomicUsize>, id: usize) -> Meta {
    let value: Box<dyn Any + Send + Sync> = Box::new(Probe { drops: Arc::clone(drops), id });
    Meta {
        value: NonNull::from(Box::leak(value)),
        type_id: TypeId::of::<Probe>(),
        type_name: "Probe",
        size: std::mem::size_of::<Probe>(),
        created_at: SystemTime::now(),
        init_duration: None,
        seq: 0,
    }
}

/// A slot on the per-thread counter `counter` (of `counters` in all) whose node, a probe with id
/// 1, is published; and the probe's drop count.
fn published_slot(counters: usize, counter: u32) -> (Arc<Slot>, Arc<AtomicUsize>) {
    borrow::set_counters(counters);
    let drops = Arc::new(AtomicUsize::new(0));
    let slot = Arc::new(Slot::counted(counter));
    drop(slot.swap(Some(probe(&drops, 1))));
    (slot, drops)
}

/// Both classes of slot: one-stripe nodes, and striped ones.
const CLASSES: [bool; 2] = [false, true];

fn id_of(r: &Ref) -> usize {
    // SAFETY: every value in these tests is a `Probe`.
    unsafe { &*r.meta().data().cast::<Probe>() }.id
}

#[cfg(not(loom))]
mod native {
    use super::*;

    #[test]
    fn a_handle_keeps_the_value_after_the_slot_lets_go() {
        for striped in CLASSES {
            let drops = Arc::new(AtomicUsize::new(0));
            let slot = Slot::new(striped);
            drop(slot.fill(probe(&drops, 1)));
            let h = slot.get(true).unwrap();
            drop(slot.swap(None));
            assert_eq!(drops.load(Ordering::SeqCst), 0, "a handle is alive");
            assert_eq!(id_of(&h), 1);
            let h2 = h.clone(); // on a retired node: counted centrally
            drop(h);
            assert_eq!(drops.load(Ordering::SeqCst), 0);
            drop(h2);
            assert_eq!(drops.load(Ordering::SeqCst), 1);
            assert!(slot.get(true).is_none());
        }
    }

    #[test]
    fn the_value_is_dropped_when_retired_without_handles() {
        for striped in CLASSES {
            let drops = Arc::new(AtomicUsize::new(0));
            let slot = Slot::new(striped);
            slot.swap(Some(probe(&drops, 1)));
            let replaced = slot.swap(Some(probe(&drops, 2)));
            assert_eq!(drops.load(Ordering::SeqCst), 0, "not retired until the caller drops it");
            drop(replaced);
            assert_eq!(drops.load(Ordering::SeqCst), 1);
            drop(slot);
            assert_eq!(drops.load(Ordering::SeqCst), 2, "dropping the slot retires its node");
        }
    }

    #[test]
    fn accesses_are_counted_through_the_spill() {
        for striped in CLASSES {
            let drops = Arc::new(AtomicUsize::new(0));
            let slot = Slot::new(striped);
            slot.swap(Some(probe(&drops, 1)));
            // Far more than the test build's 3-bit access field holds.
            for _ in 0..1000 {
                drop(slot.get(true));
            }
            let r = slot.get(false).unwrap();
            assert_eq!(r.accesses(), 1000);
            let counted = slot.get(true).unwrap();
            counted.release_uncounted();
            assert_eq!(r.accesses(), 1000, "an uncounted release takes its access back");
        }
    }

    #[test]
    fn fill_keeps_a_value_that_was_set_first() {
        for striped in CLASSES {
            let drops = Arc::new(AtomicUsize::new(0));
            let slot = Slot::new(striped);
            slot.swap(Some(probe(&drops, 1)));
            let r = slot.fill(probe(&drops, 2));
            assert_eq!(id_of(&r), 1);
            assert_eq!(drops.load(Ordering::SeqCst), 1, "the losing value is dropped");
        }
    }

    #[test]
    fn threads_racing_replacements_drop_every_value_exactly_once() {
        for striped in CLASSES {
            let drops = Arc::new(AtomicUsize::new(0));
            let slot = Slot::new(striped);
            let made = AtomicUsize::new(0);
            std::thread::scope(|s| {
                for t in 0..3 {
                    let (slot, drops, made) = (&slot, &drops, &made);
                    s.spawn(move || {
                        let mut held = Vec::new();
                        for i in 0..2_000 {
                            if t == 0 && i % 7 == 0 {
                                made.fetch_add(1, Ordering::SeqCst);
                                drop(slot.swap(Some(probe(drops, i))));
                            } else if let Some(r) = slot.get(i % 2 == 0) {
                                let _ = id_of(&r);
                                if i % 5 == 0 {
                                    held.push(r.clone());
                                }
                                if held.len() > 16 {
                                    held.clear();
                                }
                            }
                        }
                    });
                }
            });
            drop(slot);
            assert_eq!(drops.load(Ordering::SeqCst), made.load(Ordering::SeqCst));
        }
    }

    fn probe_id(b: &Borrow) -> usize {
        // SAFETY: every value in these tests is a `Probe`.
        unsafe { &*b.meta().data().cast::<Probe>() }.id
    }

    #[test]
    fn a_borrow_keeps_a_replaced_value_until_it_ends() {
        let drops = Arc::new(AtomicUsize::new(0));
        let slot = Slot::new(true);
        drop(slot.swap(Some(probe(&drops, 1))));
        let b = Borrow::begin(&slot).expect("a live value");
        drop(slot.swap(None)); // no handle: freed now, were it not borrowed
        assert_eq!(drops.load(Ordering::SeqCst), 0, "dropped while borrowed");
        assert_eq!(probe_id(&b), 1);
        drop(b);
        assert_eq!(drops.load(Ordering::SeqCst), 1, "dropped when the borrow ended");
        assert!(Borrow::begin(&slot).is_none());
    }

    #[test]
    fn borrows_nest_up_to_the_marks_and_count_nothing_without_a_counter() {
        let drops = Arc::new(AtomicUsize::new(0));
        let slot = Slot::new(true);
        drop(slot.swap(Some(probe(&drops, 1))));
        let mut borrows: Vec<Borrow> = Vec::new();
        for _ in 0..borrow::MARKS {
            let b = Borrow::begin(&slot).expect("a mark is free");
            assert!(!b.count_here(&slot), "a slot without a counter: the caller takes a handle");
            borrows.push(b);
        }
        assert!(Borrow::begin(&slot).is_none(), "every mark is in use");
        while let Some(b) = borrows.pop() {
            drop(b); // innermost first, as nested calls end
        }
        let h = slot.get(false).expect("live");
        assert_eq!(h.accesses(), 0);
        assert!(Borrow::begin(&slot).is_some(), "the marks are free again");
        drop(h);
        drop(slot.swap(None));
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn borrows_race_replacements_and_every_value_is_dropped_once() {
        let rounds = if cfg!(miri) { 30 } else { 20_000 };
        let drops = Arc::new(AtomicUsize::new(0));
        let slot = Arc::new(Slot::new(true));
        drop(slot.swap(Some(probe(&drops, 0))));
        let reader = {
            let slot = Arc::clone(&slot);
            std::thread::spawn(move || {
                let mut seen = 0;
                for _ in 0..rounds {
                    if let Some(b) = Borrow::begin(&slot) {
                        // A use after free here is what miri would report.
                        assert!(probe_id(&b) <= rounds);
                        seen += 1;
                    }
                }
                seen
            })
        };
        for i in 1..=rounds {
            drop(slot.swap(Some(probe(&drops, i))));
        }
        assert!(reader.join().unwrap() > 0);
        assert_eq!(drops.load(Ordering::SeqCst), rounds, "every replaced value, once");
        drop(slot.swap(None));
        assert_eq!(drops.load(Ordering::SeqCst), rounds + 1);
    }
}

#[cfg(loom)]
mod loom_models {
    use super::*;
    use loom::thread;

    /// A borrow races a replacement: the borrowed value is never dropped while borrowed, and
    /// is dropped by the end, whoever of the two lets go last.
    #[test]
    fn loom_borrow_races_with_replace() {
        loom::model(|| {
            let first = Arc::new(AtomicUsize::new(0));
            let second = Arc::new(AtomicUsize::new(0));
            let slot = Arc::new(Slot::new(true));
            drop(slot.swap(Some(probe(&first, 1))));
            let reader = {
                let (slot, first, second) = (Arc::clone(&slot), Arc::clone(&first), Arc::clone(&second));
                thread::spawn(move || {
                    if let Some(b) = Borrow::begin(&slot) {
                        // SAFETY: every value in these tests is a `Probe`.
                        let id = unsafe { &*b.meta().data().cast::<Probe>() }.id;
                        let drops = if id == 1 { &first } else { &second };
                        assert_eq!(drops.load(Ordering::SeqCst), 0, "dropped while borrowed");
                    }
                })
            };
            drop(slot.swap(Some(probe(&second, 2))));
            reader.join().unwrap();
            assert_eq!(first.load(Ordering::SeqCst), 1, "the replaced value is dropped once");
            assert_eq!(second.load(Ordering::SeqCst), 0);
        });
    }

    /// A stale mark on a node that is freed from slot `a`, reused by slot `b` and freed again:
    /// the second free is deferred by the stale mark, and nobody may lose it.
    #[test]
    fn loom_a_stale_mark_on_a_node_reused_by_another_slot() {
        loom::model(|| {
            let drops = Arc::new(AtomicUsize::new(0));
            let drops2 = Arc::new(AtomicUsize::new(0));
            let a = Arc::new(Slot::new(true));
            let b = Arc::new(Slot::new(true));
            drop(a.swap(Some(probe(&drops, 1))));
            let reader = {
                let (a, drops) = (Arc::clone(&a), Arc::clone(&drops));
                thread::spawn(move || {
                    if let Some(bw) = Borrow::begin(&a) {
                        // SAFETY: every value in these tests is a `Probe`.
                        let id = unsafe { &*bw.meta().data().cast::<Probe>() }.id;
                        assert_eq!(id, 1, "slot a only ever held value 1");
                        assert_eq!(drops.load(Ordering::SeqCst), 0, "dropped while borrowed");
                    }
                })
            };
            drop(a.swap(None));
            drop(b.swap(Some(probe(&drops2, 2))));
            drop(b.swap(None));
            reader.join().unwrap();
            assert_eq!(drops.load(Ordering::SeqCst), 1, "a deferred node was never freed");
            assert_eq!(drops2.load(Ordering::SeqCst), 1, "a deferred node was never freed");
        });
    }

    /// Nested borrows of two slots while another thread deletes both.
    #[test]
    fn loom_nested_borrows_race_deletes() {
        loom::model(|| {
            let da = Arc::new(AtomicUsize::new(0));
            let db = Arc::new(AtomicUsize::new(0));
            let a = Arc::new(Slot::new(true));
            let b = Arc::new(Slot::new(true));
            drop(a.swap(Some(probe(&da, 1))));
            drop(b.swap(Some(probe(&db, 2))));
            let reader = {
                let (a, b, da, db) = (Arc::clone(&a), Arc::clone(&b), Arc::clone(&da), Arc::clone(&db));
                thread::spawn(move || {
                    if let Some(x) = Borrow::begin(&a) {
                        if let Some(y) = Borrow::begin(&b) {
                            assert_eq!(db.load(Ordering::SeqCst), 0, "inner dropped while borrowed");
                            drop(y);
                        }
                        assert_eq!(da.load(Ordering::SeqCst), 0, "outer dropped while borrowed");
                        drop(x);
                    }
                })
            };
            drop(b.swap(None));
            drop(a.swap(None));
            reader.join().unwrap();
            assert_eq!(da.load(Ordering::SeqCst), 1, "outer never freed");
            assert_eq!(db.load(Ordering::SeqCst), 1, "inner never freed");
        });
    }

    /// A borrow counted on a per-thread counter while its instance is replaced is counted on
    /// exactly one of the two instances.
    #[test]
    fn loom_a_borrow_racing_a_replacement_is_counted_once() {
        loom::model(|| {
            let (slot, drops) = published_slot(1, 0);
            let old = slot.get(false).unwrap();
            let reader = {
                let slot = Arc::clone(&slot);
                thread::spawn(move || {
                    let Some(b) = Borrow::begin(&slot) else { return 0 };
                    assert!(b.count_here(&slot));
                    1
                })
            };
            drop(slot.swap(Some(probe(&drops, 2))));
            let borrowed = reader.join().unwrap();
            let new = slot.get(false).unwrap();
            assert_eq!(old.accesses() + new.accesses(), borrowed, "counted once, on one instance");
            drop((old, new));
            drop(slot.swap(None));
        });
    }

    /// A borrow races two replacements, so that its node may be freed, pooled and published
    /// again in the same slot while the borrow validates it.
    #[test]
    fn loom_borrow_races_with_reuse_of_its_node() {
        loom::model(|| {
            let drops: Vec<_> = (0..3).map(|_| Arc::new(AtomicUsize::new(0))).collect();
            let slot = Arc::new(Slot::new(true));
            drop(slot.swap(Some(probe(&drops[0], 0))));
            let reader = {
                let (slot, drops) = (Arc::clone(&slot), drops.clone());
                thread::spawn(move || {
                    if let Some(b) = Borrow::begin(&slot) {
                        // SAFETY: every value in these tests is a `Probe`.
                        let id = unsafe { &*b.meta().data().cast::<Probe>() }.id;
                        assert_eq!(drops[id].load(Ordering::SeqCst), 0, "dropped while borrowed");
                    }
                })
            };
            drop(slot.swap(Some(probe(&drops[1], 1))));
            drop(slot.swap(Some(probe(&drops[2], 2))));
            reader.join().unwrap();
            let dropped: Vec<usize> = drops.iter().map(|d| d.load(Ordering::SeqCst)).collect();
            assert_eq!(dropped, [1, 1, 0]);
        });
    }

    #[test]
    fn loom_retire_races_with_get_and_drop() {
        for striped in CLASSES {
            loom::model(move || {
                let drops = Arc::new(AtomicUsize::new(0));
                let slot = Arc::new(Slot::new(striped));
                slot.swap(Some(probe(&drops, 1)));
                let reader = {
                    let slot = Arc::clone(&slot);
                    thread::spawn(move || {
                        if let Some(r) = slot.get(true) {
                            assert_eq!(id_of(&r), 1);
                        }
                    })
                };
                drop(slot.swap(None));
                reader.join().unwrap();
                assert_eq!(drops.load(Ordering::SeqCst), 1);
            });
        }
    }

    #[test]
    fn loom_clone_races_with_retire() {
        for striped in CLASSES {
            loom::model(move || {
                let drops = Arc::new(AtomicUsize::new(0));
                let slot = Arc::new(Slot::new(striped));
                slot.swap(Some(probe(&drops, 1)));
                let h = slot.get(false).unwrap();
                let cloner = thread::spawn(move || {
                    let h2 = h.clone();
                    drop(h);
                    assert_eq!(id_of(&h2), 1);
                });
                drop(slot.swap(None));
                cloner.join().unwrap();
                assert_eq!(drops.load(Ordering::SeqCst), 1);
            });
        }
    }

    /// A reader holds a stale pointer while its node is retired, freed, and reused for another
    /// slot: the reader must not hand out the other slot's value, nor leave an access on it.
    #[test]
    fn loom_a_reused_node_is_not_mistaken_for_the_old_one() {
        for striped in CLASSES {
            loom::model(move || {
                let drops = Arc::new(AtomicUsize::new(0));
                let a = Arc::new(Slot::new(striped));
                let b = Arc::new(Slot::new(striped));
                drop(a.swap(Some(probe(&drops, 1))));
                let reader = {
                    let a = Arc::clone(&a);
                    thread::spawn(move || {
                        if let Some(r) = a.get(true) {
                            assert_eq!(id_of(&r), 1, "slot a only ever held value 1");
                        }
                    })
                };
                // Retire a's node (no handle: freed, back to the pool), then reuse it for b.
                drop(a.swap(None));
                drop(b.swap(Some(probe(&drops, 2))));
                reader.join().unwrap();
                let live = b.get(false).unwrap();
                assert_eq!(id_of(&live), 2);
                assert_eq!(live.accesses(), 0, "a stale reader's access must not land on b");
                drop(live);
                drop(b.swap(None));
                assert_eq!(drops.load(Ordering::SeqCst), 2);
            });
        }
    }

    #[test]
    fn loom_fill_races_with_replace() {
        for striped in CLASSES {
            loom::model(move || {
                let drops = Arc::new(AtomicUsize::new(0));
                let slot = Arc::new(Slot::new(striped));
                let filler = {
                    let (slot, drops) = (Arc::clone(&slot), Arc::clone(&drops));
                    thread::spawn(move || {
                        let r = slot.fill(probe(&drops, 1));
                        let _ = id_of(&r);
                    })
                };
                drop(slot.swap(Some(probe(&drops, 2))));
                filler.join().unwrap();
                drop(slot.swap(None));
                assert_eq!(drops.load(Ordering::SeqCst), 2);
            });
        }
    }
}

#[cfg(not(loom))]
#[test]
fn a_compact_node_is_compact() {
    // The counters of a run-time name's node: two stripes of one line each, not eight pairs of
    // lines.
    assert_eq!(std::mem::size_of::<Compact>(), 128 + COMPACT_STRIPES * 64);
    assert_eq!(std::mem::offset_of!(Compact, stripes), 128);
    // A striped node: the header's cache lines, then one 128-byte stripe per thread stripe.
    assert_eq!(std::mem::size_of::<Striped>(), 128 + STRIPES * 128);
    assert_eq!(std::mem::offset_of!(Striped, stripes), 128);
}

mod held;
