//! A striped counter: exact when read, and cheap to bump from many threads at once.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// How many stripes a counter has. A power of two, about the core count of the machines a
/// singleton's accessor is hammered on; threads beyond that share stripes.
const STRIPES: usize = 8;

/// One stripe on its own cache line, so two threads bumping different stripes never write the
/// same line.
#[repr(align(128))]
#[derive(Default)]
struct Stripe(AtomicU64);

/// Counts accesses. Each thread adds to its own stripe (no cache line ping-pong between threads
/// as with one shared `AtomicU64`); [`get`](Self::get) sums the stripes. After the adding threads
/// are done (joined, or synchronised with the reader), the sum is exact.
#[derive(Default)]
pub(crate) struct StripedCounter {
    stripes: [Stripe; STRIPES],
}

impl StripedCounter {
    #[inline]
    pub(crate) fn add(&self, n: u64) {
        self.stripes[stripe_index()].0.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> u64 {
        self.stripes.iter().map(|s| s.0.load(Ordering::Relaxed)).sum()
    }
}

impl std::fmt::Debug for StripedCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("StripedCounter").field(&self.get()).finish()
    }
}

/// The stripe of the calling thread: threads are numbered in the order they first count.
#[inline]
fn stripe_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    INDEX.with(|i| {
        let mut v = i.get();
        if v == usize::MAX {
            v = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
            i.set(v);
        }
        v
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_across_threads_exactly() {
        let c = StripedCounter::default();
        std::thread::scope(|s| {
            for _ in 0..12 {
                s.spawn(|| (0..1000).for_each(|_| c.add(1)));
            }
        });
        assert_eq!(c.get(), 12_000);
    }
}
