//! What a live name stored by `set` costs in memory, counted by a global allocator, and that
//! memory stays flat under a long run of new names set and deleted (the soak test, in the heavy
//! set: `cargo test --release --test memory -- --ignored heavy_`).
//!
//! This file holds only these tests, and they take turns (`ALONE`): the allocator counts every
//! thread of the process.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::{Mutex, PoisonError};

use singleton_kit::{RateLimit, SingletonCore};

/// Counts the bytes held, by every thread.
struct Counting;

static HELD: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HELD.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's obligations are the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        HELD.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn held() -> isize {
    HELD.load(Ordering::Relaxed)
}

/// Held by each test while it counts, so that `--include-ignored` does not run them at once.
static ALONE: Mutex<()> = Mutex::new(());

const NAMES: usize = 100_000;

/// The SPEC's bound: a live name stored by `set` costs at most this, beyond its value and its
/// name.
const BUDGET: usize = 512;

#[test]
fn a_live_name_costs_at_most_512_bytes_beyond_its_value_and_name() {
    let _alone = ALONE.lock().unwrap_or_else(PoisonError::into_inner);
    let names: Vec<String> = (0..NAMES).map(|i| format!("name_{i:07}")).collect();
    let name_bytes: usize = names.iter().map(String::len).sum();
    let core = SingletonCore::with_rate_limit(RateLimit::unlimited());
    let before = held();
    for (i, name) in names.iter().enumerate() {
        core.set(name, i as u64).unwrap();
    }
    let after = held();
    // The value: a boxed `u64`, 8 bytes; the name, once.
    let beyond = (after - before) as usize - NAMES * 8 - name_bytes;
    let per_name = beyond / NAMES;
    println!(
        "{NAMES} live names stored by set: {} B each in all, {per_name} B beyond the 8-byte value and \
         the {}-byte name",
        (after - before) as usize / NAMES,
        name_bytes / NAMES
    );
    assert!(per_name <= BUDGET, "{per_name} B per live name, more than {BUDGET}");
    assert_eq!(core.stats().unwrap().total_singletons, NAMES);

    // Deleting them gives it back, but for the pooled nodes and the table's own capacity.
    for name in &names {
        assert!(core.delete(name));
    }
    let left = (held() - before) as usize / NAMES;
    println!("after deleting them all: {left} B per name still held (pooled nodes, table capacity)");
    assert!(left <= BUDGET, "{left}");
}

/// A million new names set and deleted, from two threads: memory stays flat, give or take what
/// the pools and the table keep for reuse.
#[test]
#[ignore = "heavy: a million operations; run with --release -- --ignored heavy_"]
fn heavy_soak_a_million_new_names_set_and_deleted_keeps_memory_flat() {
    let _alone = ALONE.lock().unwrap_or_else(PoisonError::into_inner);
    const PER_THREAD: usize = 500_000;
    const STEP: usize = PER_THREAD / 10;
    let core = SingletonCore::with_rate_limit(RateLimit::unlimited());
    let run = |thread: usize, range: std::ops::Range<usize>| {
        for i in range {
            let name = format!("soak_{thread}_{i}");
            core.set(&name, vec![i as u64; 4]).unwrap();
            assert!(core.delete(&name), "{name}");
        }
    };
    let mut marks = Vec::new();
    for step in 0..10 {
        std::thread::scope(|s| {
            for thread in 0..2 {
                let run = &run;
                s.spawn(move || run(thread, step * STEP..(step + 1) * STEP));
            }
        });
        marks.push(held());
    }
    assert_eq!(core.stats().unwrap().total_singletons, 0);
    let first = marks[0];
    let grown: Vec<isize> = marks.iter().map(|m| m - first).collect();
    println!("soak: {first} B held after the first 100,000 set/delete pairs; after each 100,000 more: {grown:+?} B");
    // The name table's buckets and the reclamation epochs' garbage swing by up to about 1 MB as
    // names come and go, with no trend. A leaked allocation per operation (8 bytes or more)
    // would add 7 MB or more over the 900,000 pairs after the first mark.
    let most = grown.iter().copied().max().unwrap_or(0);
    assert!(most < 2 * 1024 * 1024, "memory grew by up to {most} B: {grown:?}");
}
