//! A refusal by the rate limit allocates nothing in the methods that answer `false` or `0`
//! (`has`, `exists`, `delete`, `clear`, `reset_all`, `reset`): a flood of refused operations
//! costs no heap. Counted by a global allocator; this file holds only this test.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use singleton_kit::{ManualClock, RateLimit, SingletonCore};

/// Counts allocation calls, from every thread.
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's obligations are the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[test]
fn refused_operations_allocate_nothing() {
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
