//! Handles taken with no read-modify-write: biased reference counting (Choi, Shull and
//! Torrellas, "Biased Reference Counting", PACT 2018), on the records the borrows already use.
//!
//! A thread that takes `T::instance()` counts the handle in its record's [`Held`] cell of that
//! type, memory only it writes: a load and a store, validated as a borrow's mark is (store, light
//! fence, read the slot again). A handle dropped on the thread that owns the cell takes it off the
//! same way; dropped (or cloned) on any other thread, it counts on the cell's shared `remote`
//! counter with an atomic add (or subtract). The cell's live handles are `owned - remote`.
//!
//! # The cell's node
//!
//! A cell counts the handles of one node at a time, the one in `node`. The owner moves it to
//! another node (a `set` or `delete` replaced the instance) only when `owned == remote`: every
//! handle of the old node is gone, and since a handle is needed to clone one, none can appear.
//! Otherwise the take goes the shared way (a compare-and-swap on the node's stripe). Nodes are
//! pooled and reused, so a cell may name a freed node, or one published again for another
//! instance: its count is then zero, which is right for the new one too.
//!
//! # Freeing
//!
//! A writer that would free a node (its `central` count reached zero: every shared handle gone)
//! looks at every record's cell of the node's type behind the heavy fence it already runs for
//! the marks, and defers the node while a cell names it with `owned != remote`, reading `owned`
//! first. Once the node is out of its slot, `owned` can only go down (a take fails its
//! validation and puts its `+1` back; clones count on `remote`), so a cell read as zero is zero.
//! The handle whose drop brings a cell to zero looks at the node's `deferred` flag (after the
//! light fence on the owner, a full fence elsewhere), as a borrow's end does, and frees what is
//! no longer held.
//!
//! A record given back by an exiting thread keeps its cells: the thread that claims it next
//! owns them (the claim orders it after the exit), and handles dropped meanwhile on other
//! threads count on `remote`.

use std::ptr::{self, NonNull};

use super::{barrier, claim_if_unclaimed, local, reclaim_if_deferred, Record};
use crate::memory::node::{Node, Ref, Slot};
use crate::memory::sync::{fence, AtomicPtr, AtomicU64, Ordering};

/// One thread's handles of one `#[singleton]` type's node.
pub(crate) struct Held {
    /// The node they are handles of; stale once `owned == remote`. Written by the owner only.
    pub(super) node: AtomicPtr<Node>,
    /// Handles taken here, less those dropped on the owning thread. Written by the owner only.
    pub(super) owned: AtomicU64,
    /// Handles dropped on other threads, less those cloned there (wrapping).
    pub(super) remote: AtomicU64,
    /// The record this cell is part of: whoever runs on it owns the cell.
    pub(super) record: *const Record,
}

// SAFETY: the counters are atomics; `record` is set before the cell is published and points at
// a record that is never freed.
unsafe impl Sync for Held {}
// SAFETY: as above.
unsafe impl Send for Held {}

impl Held {
    pub(super) fn new(record: *const Record) -> Self {
        Held {
            node: AtomicPtr::new(ptr::null_mut()),
            owned: AtomicU64::new(0),
            remote: AtomicU64::new(0),
            record,
        }
    }

    /// `true` when this cell holds a handle of `node`: for the writer, behind the heavy fence.
    pub(super) fn holds(&self, node: NonNull<Node>) -> bool {
        // `owned` first: see the module docs.
        self.node.load(Ordering::Acquire) == node.as_ptr()
            && self.owned.load(Ordering::Acquire) != self.remote.load(Ordering::Acquire)
    }
}

/// A handle of the node `slot` holds, counted in this thread's cell with no read-modify-write,
/// with an access counted; `None` when the slot is empty, the thread has no cell (a slot without
/// a counter, a thread in a factory or scope or exiting), its cell still holds handles of an
/// older node, or the slot moved on while it looked: the caller then takes a shared handle.
#[inline]
pub(crate) fn take(slot: &Slot) -> Option<Ref> {
    loop {
        let record = local::get();
        let counter = slot.counter as usize;
        let Some(held) = record.handles.get(counter) else {
            if claim_if_unclaimed(record) {
                continue;
            }
            return None;
        };
        let node = slot.ptr.load(Ordering::Relaxed);
        let n = NonNull::new(node)?;
        let owned = held.owned.load(Ordering::Relaxed);
        if held.node.load(Ordering::Relaxed) != node && !switch(held, node, owned) {
            return None;
        }
        held.owned.store(owned.wrapping_add(1), Ordering::Relaxed);
        barrier::light();
        // Acquire: see `meta` as the publisher wrote it.
        if slot.ptr.load(Ordering::Acquire) != node {
            return undo(held, owned, n);
        }
        // The access, on the thread's counter of the type, as a borrow's.
        if let Some(count) = record.counts.get(counter) {
            count.store(count.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
        }
        return Some(Ref::on_held(n, held));
    }
}

/// Points `held` at `node` if it holds no handle of the node it names; `false` otherwise.
#[cold]
#[inline(never)]
fn switch(held: &Held, node: *mut Node, owned: u64) -> bool {
    if owned != held.remote.load(Ordering::Acquire) {
        return false;
    }
    held.node.store(node, Ordering::Relaxed);
    true
}

/// The slot moved on after the take was counted: takes it back, and frees the node if a writer
/// deferred it meanwhile because of it.
#[cold]
#[inline(never)]
fn undo(held: &Held, owned: u64, node: NonNull<Node>) -> Option<Ref> {
    held.owned.store(owned, Ordering::Release);
    barrier::light();
    reclaim_if_deferred(node);
    None
}

/// Drops a handle counted in `held`: on the owning thread with a load and a store, elsewhere on
/// `remote`.
#[inline]
pub(crate) fn release(node: NonNull<Node>, held: &'static Held) {
    if !ptr::eq(held.record, local::get()) {
        return release_remote(node, held);
    }
    let owned = held.owned.load(Ordering::Relaxed);
    // Release: what the handle read of the value happens before whoever frees it.
    held.owned.store(owned.wrapping_sub(1), Ordering::Release);
    barrier::light();
    reclaim_if_deferred(node);
}

#[cold]
#[inline(never)]
fn release_remote(node: NonNull<Node>, held: &'static Held) {
    held.remote.fetch_add(1, Ordering::Release);
    // Orders the count before the look at `deferred`, against the writer's store of `deferred`
    // and its heavy fence before it reads the cell.
    fence(Ordering::SeqCst);
    reclaim_if_deferred(node);
}

/// Counts a clone of a handle counted in `held`, on any thread: on `remote`, so that `owned`
/// never grows once the node is out of its slot.
pub(crate) fn clone(held: &'static Held) {
    held.remote.fetch_sub(1, Ordering::Relaxed);
}
