//! A refusal by the rate limit allocates nothing in the methods that answer `false` or `0`
//! (`has`, `exists`, `delete`, `clear`, `reset_all`, `reset`): a flood of refused operations
//! costs no heap. Counted by a global allocator; this file holds only this test.
//!
//! Only the test's own thread is counted: the refused calls run there and start no work
//! elsewhere, while the test harness's main thread may still be allocating (its output, the test
//! thread's bookkeeping) when the test begins, which made one run in ten fail when every
//! thread was counted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use singleton_kit::{ManualClock, RateLimit, SingletonCore};

/// Counts allocation calls of the threads that say so.
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Whether this thread's allocations are counted. `const`, with no destructor: readable from
    /// the allocator at any time, without allocating.
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

fn count() {
    if COUNTED.with(Cell::get) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's obligations are the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[test]
fn refused_operations_allocate_nothing() {
    COUNTED.with(|c| c.set(true));
    let core = SingletonCore::with_clock(RateLimit::per_second(1), ManualClock::new());
    core.set("cache", 1_u8).expect("the one slot");
    // Warm up anything lazily made on first use (the tracing callsite registry, say).
    assert!(!core.has("cache") && !core.delete("cache") && core.clear() == 0 && !core.reset());
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..1_000 {
        assert!(!core.has("cache"));
        assert!(!core.exists("cache"));
        assert!(!core.delete("cache"));
        assert_eq!(core.clear(), 0);
        assert_eq!(core.reset_all(), 0);
        assert!(!core.reset());
    }
    let allocated = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert_eq!(allocated, 0, "6,000 refusals allocated {allocated} times");
    assert_eq!(core.stats().map(|_| ()).unwrap_err().kind(), "rate_limited");
}
