//! Counted borrows without a handle: what `T::with_instance(f)` runs on.
//!
//! A handle ([`Ref`](super::Ref)) is counted on the node with an atomic read-modify-write, which
//! costs about 20 ns on the VMs this crate is measured on, thirty times a `LazyLock` deref. A
//! borrow that ends before its caller returns needs no count: it only has to keep the value from
//! being dropped while it runs. This module does that with hazard marks, and counts accesses in
//! per-thread counters: a borrow of a registered `#[singleton]` type's instance in the global
//! core writes only memory that no other thread writes. (Elsewhere, say a type `inventory` did
//! not collect, the caller takes a counted handle instead.)
//!
//! # The reader
//!
//! Each thread that borrows owns a [`Record`] (claimed once, given back when the thread exits,
//! never freed). To borrow the instance of a slot it:
//!
//! 1. loads the slot's node and stores it in its next free *mark*;
//! 2. runs the light half of an asymmetric fence ([`barrier::light`]);
//! 3. loads the slot again: if it still holds that node, the node cannot be freed until the mark
//!    is cleared (see the writer); otherwise it starts over with what it found;
//! 4. adds one to its own counter of the singleton (a load and a store: it is the only writer);
//! 5. runs `f`, then clears the mark, runs the light fence again, and if the node was deferred
//!    while it was marked (a flag on the node), frees what is no longer marked. A mark that
//!    step 3 overwrites is followed by the same look at the node it held.
//!
//! Marks nest up to [`MARKS`] deep (`f` may borrow other singletons); deeper borrows, borrows in
//! a test scope or inside a factory, and the first borrow of an instance that does not exist yet
//! take a handle instead.
//!
//! # The writer
//!
//! When a node's last handle goes and it is about to be freed ([`Node::free`](super::Node)), the
//! writer runs the heavy half of the fence and looks at every record's marks. A node that is
//! marked is not freed: it goes on a list of deferred nodes and its `deferred` flag is set; the
//! writer then looks again (the mark may have been cleared meanwhile), and every reader that
//! clears a mark on a deferred node looks too. Whoever finds it unmarked frees it, once (the
//! list is behind a lock). So the value is dropped after the last borrow of it ends, and a
//! writer never waits for a reader: `f` may `delete` its own singleton. It is dropped by the
//! thread that ends that borrow, or by any thread that looks at the deferred nodes at that
//! moment (a writer freeing another `#[singleton]` node, another borrow ending); a `Drop` that
//! panics there is caught and logged.
//!
//! Why it is sound: the reader's store of the mark and its second load of the slot, and the
//! writer's swap of the slot and its load of the marks, are separated by the two halves of the
//! fence. Like a pair of `SeqCst` fences, they forbid both sides missing each other's write:
//! either the reader sees the slot changed (and does not use the node), or the writer sees the
//! mark (and defers). The same pair orders the reader's clearing of a mark against its look at
//! the `deferred` flag. Node memory is never returned to the allocator, so a stale pointer is
//! always safe to compare and to mark.
//!
//! # What it costs the writer
//!
//! Every free of a `#[singleton]` type's node (a `delete`, `set`, `clear`, `reset_all` or
//! `shutdown` that lets go of it, once its last handle is gone) pays the heavy fence and a scan
//! of the records, once any thread has borrowed: on Linux the heavy fence is
//! `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`, which interrupts every CPU running a thread
//! of the process (a few microseconds; see the README's performance table), and elsewhere a
//! `SeqCst` fence, which the reader then also pays. Nodes of names stored at run time (`set`,
//! `get_or_create`) are never borrowed and pay nothing.
//!
//! # Access counts
//!
//! A borrow of a registered `#[singleton]` type's instance in the global core counts on the
//! borrowing thread's counter of that type ([`Record::counts`], indexed by the entry's
//! [`Slot`](super::Slot) counter). When a node enters its slot and when it leaves it, the slot
//! reads the sum of those counters once, just before the change, and the node keeps both
//! readings (read after, a borrow between the change and the reading counted on no node): its
//! accesses are its own stripes' plus how much the sum grew in between (or since it entered, while
//! it is in the slot). A replacement splits the sum at one reading, so a borrow that races it is
//! counted on one of the two instances, and every borrow is counted once. Counters are never
//! reset: a record given back by an exiting thread keeps its counts for the next thread that
//! claims it.

use std::cell::Cell;
use std::ptr::{self, NonNull};

use super::{Meta, Node, Slot};
use crate::memory::sync::{fence, AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

/// How deep borrows nest on one thread before the deeper ones take a handle instead.
pub(crate) const MARKS: usize = 4;

/// One thread's marks and counters. Records are linked into one list, never unlinked or freed.
///
/// Two more records are never linked: [`UNCLAIMED`], which a thread's record pointer starts at,
/// and [`SUSPENDED`], which it points at while the thread runs a factory or is in a test scope.
/// Both have every mark in use (`depth` is [`MARKS`]), so the reader's one check of its depth
/// sends it out of line in all three cases (no record yet, in a factory or scope, nested too
/// deep): the hot path has no separate check for a missing record or a watched thread.
#[repr(align(128))]
pub(crate) struct Record {
    /// The nodes this thread is borrowing, innermost last; null when free.
    marks: [AtomicPtr<Node>; MARKS],
    /// How many marks are in use. Written by the owning thread only.
    depth: AtomicUsize,
    /// Accesses counted by borrows, per registered `#[singleton]` type. Written by the owning
    /// thread only (a load and a store), read by anyone. Leaked with the record.
    counts: &'static [AtomicU64],
    /// Handles taken with no read-modify-write, per registered `#[singleton]` type (see
    /// [`held`]). Leaked with the record.
    handles: &'static [held::Held],
    /// `true` while a thread owns the record.
    in_use: AtomicBool,
    /// The next record in the list; set before the record is linked, never changed.
    next: *const Record,
}

// SAFETY: every field shared between threads is atomic; `next` is written before the record is
// published and never again, and points at a record that is never freed.
unsafe impl Sync for Record {}
// SAFETY: as above.
unsafe impl Send for Record {}

/// A live borrow: keeps its node from being freed until dropped.
pub(crate) struct Borrow {
    record: &'static Record,
    depth: usize,
    node: NonNull<Node>,
}

impl Borrow {
    /// Marks the node that `slot` holds, or returns `None` when it holds none, the thread's marks
    /// are all in use, the thread runs a factory or is in a scope ([`suspend`]), or it is exiting.
    ///
    /// The first try is inline and straight: the record, its depth, one store of the mark, the
    /// light fence, the slot read again. A record to claim, or a slot that moved between the two
    /// reads, goes out of line.
    ///
    /// The out-of-line parts return a flag or a pointer, never a `Borrow`: a `Borrow` returned
    /// through memory from any path made the compiler keep the inline one on the stack too.
    #[inline]
    pub(crate) fn begin(slot: &Slot) -> Option<Borrow> {
        loop {
            let record = local::get();
            let depth = record.depth.load(Ordering::Relaxed);
            let Some(mark) = record.marks.get(depth) else {
                if claim_if_unclaimed(record) {
                    continue;
                }
                return None;
            };
            let node = slot.ptr.load(Ordering::Relaxed);
            mark.store(node, Ordering::Relaxed);
            barrier::light();
            let mut n = NonNull::new(node)?;
            // Acquire: see `meta` as the publisher wrote it.
            if slot.ptr.load(Ordering::Acquire) != node {
                n = Self::begin_again(slot, record, depth, node)?;
            }
            record.depth.store(depth + 1, Ordering::Relaxed);
            return Some(Borrow { record, depth, node: n });
        }
    }

    /// The slot moved on after `dropped_mark` was marked: marks what it holds now, until a mark
    /// and the read after it agree.
    #[cold]
    #[inline(never)]
    fn begin_again(
        slot: &Slot,
        record: &'static Record,
        depth: usize,
        mut dropped_mark: *mut Node,
    ) -> Option<NonNull<Node>> {
        let mark = &record.marks[depth];
        let mut node = slot.ptr.load(Ordering::Relaxed);
        // Whether a node whose mark was overwritten was deferred: it is then freed once this
        // borrow is set up (not before, since freeing runs `Drop` code, which may borrow too and
        // needs the marks).
        let mut reclaim_after = false;
        loop {
            mark.store(node, Ordering::Relaxed);
            barrier::light();
            // A writer may have deferred the node whose mark was overwritten: look, as `drop`
            // does.
            // SAFETY: nodes are never deallocated.
            reclaim_after |= unsafe { &*dropped_mark }.deferred.load(Ordering::Relaxed);
            let Some(n) = NonNull::new(node) else {
                if reclaim_after {
                    reclaim();
                }
                return None;
            };
            // Acquire: see `meta` as the publisher wrote it.
            let again = slot.ptr.load(Ordering::Acquire);
            if again == node {
                record.depth.store(depth + 1, Ordering::Relaxed);
                if reclaim_after {
                    // With this borrow's mark counted in `depth`, so a `Drop` that borrows uses
                    // the next one; `reclaim` catches panics, so the mark cannot be left behind.
                    reclaim();
                }
                return Some(n);
            }
            dropped_mark = node;
            node = again;
        }
    }

    /// The borrowed instance's metadata; valid while the borrow lasts.
    #[inline]
    pub(crate) fn meta(&self) -> &Meta {
        // SAFETY: the node was in its slot after it was marked, so it is published (its `meta`
        // is set) and is not freed while the mark stays (see the module docs).
        unsafe { self.node.as_ref() }.meta.with(|m| unsafe { (*m).as_ref().unwrap_unchecked() })
    }

    /// Counts one access of the borrowed instance on this thread's counter of `slot`, the slot it
    /// came from; `false`, counting nothing, when the slot has no counter (or this thread's
    /// record has none for it). No call on the way, so that a borrow whose `f` cannot unwind
    /// needs no landing pad (which made the compiler keep the borrow on the stack).
    #[inline]
    pub(crate) fn count_here(&self, slot: &Slot) -> bool {
        match self.record.counts.get(slot.counter as usize) {
            Some(c) => {
                c.store(c.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
                true
            }
            None => false,
        }
    }
}

impl Drop for Borrow {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: `depth` is below `MARKS`: `begin` took the mark at that index.
        let mark = unsafe { self.record.marks.get_unchecked(self.depth) };
        // Release: what the borrow read of the value happens before whoever frees it.
        mark.store(ptr::null_mut(), Ordering::Release);
        self.record.depth.store(self.depth, Ordering::Relaxed);
        barrier::light();
        reclaim_if_deferred(self.node);
    }
}

/// The last step of a borrow's or a held handle's end, after its fence: frees what a writer
/// deferred meanwhile, if it deferred `node`.
#[inline(always)]
fn reclaim_if_deferred(node: NonNull<Node>) {
    // SAFETY: nodes are never deallocated.
    if unsafe { node.as_ref() }.deferred.load(Ordering::Relaxed) {
        reclaim();
    }
}

/// `true` when some borrow has `node` marked. Called by the writer about to free it, which then
/// defers it ([`defer`]).
pub(crate) fn is_marked(node: NonNull<Node>) -> bool {
    // Pairs with the fence a thread runs after linking its first record: if no record is seen
    // here, no borrow can have found the node still in its slot.
    fence(Ordering::SeqCst);
    if head().load(Ordering::Acquire).is_null() {
        return false;
    }
    barrier::heavy();
    marked(node)
}

/// Puts a marked node aside, to be freed by whoever finds it unmarked.
pub(crate) fn defer(node: NonNull<Node>) {
    // SAFETY: nodes are never deallocated.
    unsafe { node.as_ref() }.deferred.store(true, Ordering::Relaxed);
    pending::push(node);
    // The mark may have been cleared before the flag was set, by a reader that then saw no
    // flag: look again.
    reclaim();
}

/// Frees every deferred node that no borrow has marked any more.
#[cold]
#[inline(never)]
fn reclaim() {
    for node in pending::take_unmarked() {
        // SAFETY: nodes are never deallocated, and this one is not freed yet: `meta` is set.
        let type_name = unsafe { node.as_ref() }.meta.with(|m| unsafe { (*m).as_ref().map(|m| m.type_name) });
        // The value's `Drop` runs here, on the thread whose borrow ended: a panic in it is
        // caught and logged, as when the core lets go of an instance itself.
        let freed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // SAFETY: the node was deferred by `Node::free` (no handle exists, it is in no
            // slot), is no longer marked and can no longer be marked by a borrow that validates
            // it (it is in no slot), and `take_unmarked` gives it to one caller only.
            unsafe { Node::free_now(node) }
        }));
        if let Err(payload) = freed {
            // Caught too (a subscriber may panic), so that the rest of the nodes are freed.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let message = crate::error::panic_message(payload.as_ref());
                tracing::error!(
                    type_name = type_name.unwrap_or("?"),
                    panic = %message,
                    "dropping a singleton released during a borrow panicked"
                );
            }));
        }
    }
}

/// `true` when any record's mark holds `node`.
fn marked(node: NonNull<Node>) -> bool {
    // SAFETY: nodes are never deallocated.
    let counter = unsafe { node.as_ref() }.borrow_counter.load(Ordering::Relaxed) as usize;
    records().any(|r| {
        r.marks.iter().any(|m| m.load(Ordering::Acquire) == node.as_ptr())
            || r.handles.get(counter).is_some_and(|h| h.holds(node))
    })
}

/// The sum of every thread's counter `counter`.
pub(crate) fn counted(counter: u32) -> u64 {
    records()
        .filter_map(|r| r.counts.get(counter as usize))
        .fold(0_u64, |sum, c| sum.wrapping_add(c.load(Ordering::Relaxed)))
}

/// How many counters a record has: one per registered `#[singleton]` type of the global core.
/// Set when the global core is built, before any borrow can find an entry of it.
pub(crate) fn set_counters(n: usize) {
    // The largest wins: in production it is set once; in the crate's tests, by each model.
    counters().fetch_max(n, Ordering::Relaxed);
}

fn records() -> impl Iterator<Item = &'static Record> {
    let mut next = head().load(Ordering::Acquire).cast_const();
    std::iter::from_fn(move || {
        // SAFETY: records are linked fully built and never freed.
        let record = unsafe { next.as_ref() }?;
        next = record.next;
        Some(record)
    })
}

/// No mark free in `record`: claims a record if the thread has none yet (`true`: try again).
#[cold]
#[inline(never)]
fn claim_if_unclaimed(record: &'static Record) -> bool {
    ptr::eq(record, local::unclaimed()) && claim().is_some()
}

fn claim() -> Option<&'static Record> {
    if !barrier::readers_may_mark() {
        return None;
    }
    let n = counters().load(Ordering::Relaxed);
    // A record made before the counters were known (short of them) is left for good.
    let record = match records().find(|r| {
        r.counts.len() >= n
            && r.in_use.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_ok()
    }) {
        Some(record) => record,
        None => {
            let record: &'static mut Record = Box::leak(Box::new(Record {
                marks: std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
                depth: AtomicUsize::new(0),
                counts: Box::leak((0..n).map(|_| AtomicU64::new(0)).collect()),
                handles: &[],
                in_use: AtomicBool::new(true),
                next: ptr::null(),
            }));
            let at: *const Record = &*record;
            record.handles = Box::leak((0..n).map(|_| held::Held::new(at)).collect());
            let mut head_now = head().load(Ordering::Acquire);
            loop {
                record.next = head_now;
                match head().compare_exchange(head_now, record, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => break,
                    Err(actual) => head_now = actual,
                }
            }
            &*record
        }
    };
    // Pairs with the writer's fence in `is_marked`: a writer that saw no record has swapped
    // its node out before this, and every borrow of this record sees that.
    fence(Ordering::SeqCst);
    if !local::set(record) {
        // The thread is exiting: give the record back and take a handle instead.
        record.in_use.store(false, Ordering::Release);
        return None;
    }
    Some(record)
}

#[cfg(not(loom))]
fn head() -> &'static AtomicPtr<Record> {
    static HEAD: AtomicPtr<Record> = AtomicPtr::new(ptr::null_mut());
    &HEAD
}

#[cfg(not(loom))]
fn counters() -> &'static AtomicUsize {
    static COUNTERS: AtomicUsize = AtomicUsize::new(0);
    &COUNTERS
}

#[cfg(loom)]
loom::lazy_static! {
    static ref HEAD: AtomicPtr<Record> = AtomicPtr::new(ptr::null_mut());
    static ref COUNTERS: AtomicUsize = AtomicUsize::new(0);
}

#[cfg(loom)]
fn head() -> &'static AtomicPtr<Record> {
    &HEAD
}

#[cfg(loom)]
fn counters() -> &'static AtomicUsize {
    &COUNTERS
}

/// Sends this thread's borrows to the handle path until dropped: while a factory runs on it
/// (its dependencies are recorded there) or it is in a test scope (the scope's entries are found
/// there). The thread's record pointer is [`SUSPENDED`] meanwhile, whose marks are all in use.
pub(crate) struct Suspended {
    previous: *const Record,
}

/// Suspends this thread's borrows until the guard is dropped; nests.
pub(crate) fn suspend() -> Suspended {
    Suspended { previous: local::replace(local::suspended()) }
}

impl Drop for Suspended {
    fn drop(&mut self) {
        local::restore(self.previous);
    }
}

/// The calling thread's record pointer, in a thread-local without a destructor (so reading it
/// is one load, with no check of a lazy initialization), and a second thread-local whose
/// destructor gives the record back. Under loom, model threads get a record afresh in every
/// explored execution, and records are not given back (an execution is short).
mod local {
    use super::*;

    /// A record that is no thread's and is never linked: every mark in use.
    #[cfg(not(loom))]
    const fn full() -> Record {
        Record {
            marks: [const { AtomicPtr::new(ptr::null_mut()) }; MARKS],
            depth: AtomicUsize::new(MARKS),
            counts: &[],
            handles: &[],
            in_use: AtomicBool::new(true),
            next: ptr::null(),
        }
    }

    #[cfg(loom)]
    fn full() -> Record {
        Record {
            marks: std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
            depth: AtomicUsize::new(MARKS),
            counts: &[],
            handles: &[],
            in_use: AtomicBool::new(true),
            next: ptr::null(),
        }
    }

    /// Where a thread's record pointer starts: its first borrow claims a record.
    #[cfg(not(loom))]
    static UNCLAIMED: Record = full();
    /// Where it points while the thread's borrows are suspended, and after it gave its record
    /// back on exit.
    #[cfg(not(loom))]
    static SUSPENDED: Record = full();

    #[cfg(loom)]
    loom::lazy_static! {
        static ref UNCLAIMED: Record = full();
        static ref SUSPENDED: Record = full();
    }

    #[cfg(not(loom))]
    struct GiveBack(Cell<*const Record>);

    #[cfg(not(loom))]
    impl Drop for GiveBack {
        fn drop(&mut self) {
            RECORD.with(|r| r.set(suspended()));
            // SAFETY: records are never freed.
            if let Some(record) = unsafe { self.0.get().as_ref() } {
                // The thread exits with no borrow running: the record is free for another.
                debug_assert_eq!(record.depth.load(Ordering::Relaxed), 0);
                record.in_use.store(false, Ordering::Release);
            }
        }
    }

    #[cfg(not(loom))]
    thread_local! {
        static RECORD: Cell<*const Record> = const { Cell::new(&UNCLAIMED) };
        static GIVE_BACK: GiveBack = const { GiveBack(Cell::new(ptr::null())) };
    }

    #[cfg(loom)]
    loom::thread_local! {
        static RECORD: Cell<*const Record> = Cell::new(ptr::null());
    }

    #[inline(always)]
    pub(super) fn get() -> &'static Record {
        let record = RECORD.with(Cell::get);
        #[cfg(loom)]
        if record.is_null() {
            return unclaimed();
        }
        // SAFETY: the pointer is one of the two statics or a claimed record, never freed.
        unsafe { &*record }
    }

    pub(super) fn unclaimed() -> &'static Record {
        &UNCLAIMED
    }

    pub(super) fn suspended() -> &'static Record {
        &SUSPENDED
    }

    /// Points the thread at `record`; returns what it pointed at.
    pub(super) fn replace(record: &'static Record) -> *const Record {
        RECORD.with(|r| r.replace(record))
    }

    /// Points the thread back at `previous`, what [`replace`] returned, unless the thread has
    /// given its record back since (a guard dropped late in the thread's exit).
    pub(super) fn restore(previous: *const Record) {
        #[cfg(not(loom))]
        let previous = {
            let owned = GIVE_BACK.try_with(|g| g.0.get()).unwrap_or(ptr::null());
            let statics = ptr::eq(previous, unclaimed()) || ptr::eq(previous, suspended());
            if statics || ptr::eq(previous, owned) {
                previous
            } else {
                suspended()
            }
        };
        RECORD.with(|r| r.set(previous));
    }

    /// Makes `record` the thread's; `false` if the thread is too far into its exit for that.
    pub(super) fn set(record: &'static Record) -> bool {
        #[cfg(not(loom))]
        if GIVE_BACK.try_with(|g| g.0.set(record)).is_err() {
            return false;
        }
        RECORD.with(|r| r.set(record));
        true
    }

    /// Under loom, what a thread's exit does natively: gives its record back (for the models).
    #[cfg(all(loom, test))]
    pub(crate) fn give_back() {
        let record = RECORD.with(|r| r.replace(suspended()));
        // SAFETY: records are never freed.
        if let Some(record) = unsafe { record.as_ref() } {
            record.in_use.store(false, Ordering::Release);
        }
    }
}

/// Under loom, gives the calling thread's record back, as its exit does natively.
#[cfg(all(loom, test))]
pub(crate) fn give_back_for_tests() {
    local::give_back();
}

mod barrier;
pub(crate) mod held;
mod pending;
