//! Where a live instance is kept: a node with striped reference counts, so that handing out
//! handles from many threads at once writes no cache line that another thread also writes.
//!
//! Striping is paid where the contention is: a `#[singleton]` type's node (the typed hot path,
//! `T::instance()` on every request of every thread) has [`STRIPES`] stripes of two cache lines
//! each; a node of a name made at run time (`set`, `get_or_create`) has [`COMPACT_STRIPES`]
//! stripes of one line each. That keeps a run-time name within the SPEC's 512 bytes (427
//! measured, `tests/memory.rs`), and still lets two threads `get` one name without sharing a
//! counter: with one 16-byte stripe (315 bytes) a `get` of a `set` name cost 240 ns per
//! operation on each of two threads, and costs 64 ns with two (`examples/bench.rs`, the same as
//! a `#[singleton]` name's). The class is fixed per [`Slot`], so a node never changes class;
//! each class has its own pool.
//!
//! Both classes lay out the same [`Node`] header first and their stripes after it (`Striped`,
//! `Compact`). Taking a handle computes the stripe's address from the node's and the class its
//! slot gives; the handle keeps that address, so dropping it reads nothing else first.
//!
//! # Why not `Arc`
//!
//! `T::instance()` is called on every request of a program. With an `Arc<T>` per instance every
//! call bumps one shared reference count, and two threads calling at once bounce its cache line
//! between cores: on a 2-core machine an `Arc` clone costs 3.7 ns on one thread and 27.9 ns per
//! operation on two (see the README's performance table). A node instead keeps one counter word
//! per *stripe* (one cache line each); a thread counts on its own stripe, and the access count
//! rides in the same word, so one uncontended compare-and-swap both takes the handle and counts
//! the access.
//!
//! # The protocol
//!
//! Each stripe word holds `[DEAD:1 | handles:28 | accesses:35]`.
//!
//! A compact node runs the same protocol with its stripes; more threads than stripes share them
//! (still exact, just contended).
//!
//! - **Publish.** A node is filled while every stripe is `DEAD` (no handle can be taken), then
//!   `central` is set to `BIAS` and the stripes to zero (release): handles may be taken from here on.
//! - **Acquire** (from the entry's pointer, which may be stale): compare-and-swap the calling
//!   thread's stripe from a non-`DEAD` word `w` to `w + handle (+ access)`. Success means the
//!   handle was counted before any retirement froze that stripe. The caller then checks that the
//!   entry still points at this node (a node can be recycled for another entry; see [`Slot`]).
//! - **Clone**: the same on the cloning thread's stripe; on a `DEAD` stripe, count on `central`.
//! - **Retire** (once, by whoever swapped the node out of its entry): `fetch_or(DEAD)` on every
//!   stripe, which freezes it and yields the handles counted there; add them to `central`, then
//!   take away `BIAS`. `BIAS` keeps `central` far from zero while the stripes are being folded in.
//! - **Release**: `fetch_sub` a handle from its stripe; if the stripe was already `DEAD`, the
//!   handle was folded into `central`, so decrement that instead. Whoever takes `central` to zero
//!   drops the value.
//!
//! # Reclamation
//!
//! A node's memory is never given back to the allocator: a released node returns to a global
//! pool of its class and is reused by the next publish of that class. So a reader holding a stale
//! pointer always reads valid atomics, and finds the stripe `DEAD` (and retries) or finds the
//! node republished (its compare-and-swap then counts on the new contents, and the entry check
//! sends it back). Each pool holds at most as many nodes of its class as were ever live at once
//! (a striped node takes 1,152 bytes, a compact node 256), and keeps them; a `#[singleton]`
//! type's node whose free waits for a borrow to end (see `borrow`) counts as live until then. The
//! values themselves are dropped as soon as the core and the last handle let go.

use std::any::{Any, TypeId};
use std::ptr::NonNull;
use std::time::{Duration, SystemTime};

use crate::memory::sync::{fence, AtomicBool, AtomicU32, AtomicU64, Ordering, UnsafeCell};

mod borrow;
mod reference;
mod slot;
pub(crate) use borrow::held::take as take_held;
pub(crate) use borrow::{set_counters, suspend, Borrow, Suspended};
pub(crate) use reference::Ref;
pub(crate) use slot::{Retired, Slot};

/// How many counter stripes a node has: a power of two about the core count of the machines a
/// singleton's accessor is hammered on; more threads share stripes (still exact, just contended).
#[cfg(not(loom))]
pub(crate) const STRIPES: usize = 8;
/// Fewer under loom, to keep the explored interleavings in bounds.
#[cfg(loom)]
pub(crate) const STRIPES: usize = 2;

const DEAD: u64 = 1 << 63;
#[cfg(not(test))]
const HANDLE_SHIFT: u32 = 35;
/// A tiny access field in unit tests, so that they go through the spill path all the time.
#[cfg(test)]
const HANDLE_SHIFT: u32 = 3;
const HANDLE: u64 = 1 << HANDLE_SHIFT;
const HANDLES: u64 = ((1 << 28) - 1) << HANDLE_SHIFT;
const ACCESSES: u64 = (1 << HANDLE_SHIFT) - 1;
/// Keeps `central` away from zero while a retirement folds the stripes into it.
const BIAS: u64 = 1 << 62;
/// How many stripes a compact node has, each on a 64-byte line of its own.
const COMPACT_STRIPES: usize = 2;
/// The stripe index of a compact node's first stripe; the others follow it.
const COMPACT: u8 = u8::MAX - 1 - COMPACT_STRIPES as u8;

/// One counter word and its overflow.
struct Stripe {
    word: AtomicU64,
    /// Accesses moved out of `word` when its field would overflow.
    spilled: AtomicU64,
}

impl Stripe {
    fn dead() -> Self {
        Self { word: AtomicU64::new(DEAD), spilled: AtomicU64::new(0) }
    }
}

/// One stripe on its own cache line (two, for adjacent-line prefetchers).
#[repr(align(128))]
struct Padded(Stripe);

/// What the registry knows about one live instance. Written only while the node is unpublished.
pub(crate) struct Meta {
    /// The instance, owned: a `Box` turned into a raw pointer, so that handles may read it while
    /// the `Meta` moves (a `Box` asserts unique access when moved); dropped with the `Meta`.
    pub(crate) value: NonNull<dyn Any + Send + Sync>,
    pub(crate) type_id: TypeId,
    pub(crate) type_name: &'static str,
    pub(crate) size: usize,
    pub(crate) created_at: SystemTime,
    /// How long the factory ran; `None` for a value stored with `set`.
    pub(crate) init_duration: Option<Duration>,
    /// Creation order across every core: `clear` lets go of the newest first.
    pub(crate) seq: u64,
}

/// No per-thread counter: the node's borrows count on its stripes.
const NO_COUNTER: u32 = u32::MAX;
/// The `borrow_end` of a node still in its slot.
const LIVE: u64 = u64::MAX;

impl Meta {
    /// `value` without its vtable, for handles to read without a virtual call.
    #[inline]
    pub(crate) fn data(&self) -> *const () {
        self.value.as_ptr().cast_const().cast::<()>()
    }
}

impl Drop for Meta {
    fn drop(&mut self) {
        // SAFETY: `value` came from `Box::into_raw` (see `SingletonValue::into_meta`) and is
        // dropped only here, once.
        drop(unsafe { Box::from_raw(self.value.as_ptr()) });
    }
}

/// The header of a node; its stripes follow it in the same allocation (a `Striped` or a
/// `Compact`), and are reached from a pointer to the whole allocation, never from a `&Node`.
#[repr(C)]
pub(crate) struct Node {
    central: AtomicU64,
    meta: UnsafeCell<Option<Meta>>,
    /// The node's borrows counted on per-thread counters (see the `borrow` module) are those
    /// that moved the sum of counter `borrow_counter` from `borrow_base` (read when the node
    /// was published, just before it could enter its slot) to `borrow_end` (the same reading of
    /// the node that replaced it; [`LIVE`] until then): one split point between two instances,
    /// so a borrow is counted on one of them only.
    borrow_base: AtomicU64,
    borrow_end: AtomicU64,
    /// The per-thread counter of the slot the node is published for ([`NO_COUNTER`] if it has
    /// none), set before the node is published: it also says which cell of each record may hold
    /// its handles (`borrow::held`), which a writer that frees the node must find even when the
    /// node left its slot before `entered` was set.
    borrow_counter: AtomicU32,
    /// Whether the node's borrows are counted from `borrow_base`: set with it before the node
    /// is published, cleared for a node that never entered its slot.
    entered: AtomicBool,
    /// The class, fixed when the node is allocated: `Striped` or `Compact`.
    striped: bool,
    /// Set while the node waits, freed of every handle, for a borrow that has it marked to end.
    deferred: AtomicBool,
}

/// A node with [`STRIPES`] stripes, each on its own cache lines, after the header's.
#[repr(C)]
struct Striped {
    node: Node,
    stripes: [Padded; STRIPES],
}

/// One stripe on a 64-byte line of its own.
#[repr(align(64))]
struct Line(Stripe);

/// A node with [`COMPACT_STRIPES`] stripes of a line each, after the header.
#[repr(C)]
struct Compact {
    node: Node,
    stripes: [Line; COMPACT_STRIPES],
}

// SAFETY: the counters are atomics; `meta` is written only while no handle to the node can exist
// (see the module docs) and holds a `Send + Sync` value.
unsafe impl Send for Node {}
// SAFETY: as above.
unsafe impl Sync for Node {}

impl Node {
    /// Fills a node of the class `striped` (from its pool, or new) with `meta` and makes it
    /// live, for a slot with the per-thread counter `counter` whose sum read `base` just before
    /// (its borrows count from there). The returned pointer is the publisher's reference: store
    /// it in a [`Slot`], which retires it when it lets go.
    fn publish(meta: Meta, striped: bool, counter: u32, base: Option<u64>) -> NonNull<Node> {
        let node = pool::take(striped).unwrap_or_else(|| {
            // Made dead, so that it is published below exactly as a pooled node is. The pointer
            // is to the whole allocation (its provenance covers the stripes), cast to the header.
            let node = Node {
                central: AtomicU64::new(0),
                meta: UnsafeCell::new(None),
                borrow_base: AtomicU64::new(0),
                borrow_end: AtomicU64::new(LIVE),
                borrow_counter: AtomicU32::new(NO_COUNTER),
                entered: AtomicBool::new(false),
                striped,
                deferred: AtomicBool::new(false),
            };
            if striped {
                let stripes = std::array::from_fn(|_| Padded(Stripe::dead()));
                NonNull::from(Box::leak(Box::new(Striped { node, stripes }))).cast::<Node>()
            } else {
                let stripes = std::array::from_fn(|_| Line(Stripe::dead()));
                NonNull::from(Box::leak(Box::new(Compact { node, stripes }))).cast::<Node>()
            }
        });
        // SAFETY: a node from the pool, or made just now, has every stripe DEAD and no handle, so
        // no other thread reads `meta` until the stores below publish it.
        let n = unsafe { node.as_ref() };
        n.meta.with_mut(|m| unsafe { *m = Some(meta) });
        // Borrows counted from `base`, read before the node can be found (`Slot::reading`).
        n.borrow_counter.store(counter, Ordering::Relaxed);
        n.borrow_base.store(base.unwrap_or(0), Ordering::Relaxed);
        n.entered.store(base.is_some(), Ordering::Relaxed);
        n.borrow_end.store(LIVE, Ordering::Relaxed);
        n.central.store(BIAS, Ordering::Relaxed);
        for s in stripe_ids(striped) {
            // SAFETY: `node` is a node of the class `striped`, allocated by the code above.
            let stripe = unsafe { Node::stripe(node, s) };
            stripe.spilled.store(0, Ordering::Relaxed);
            stripe.word.store(0, Ordering::Release);
        }
        node
    }

    /// The stripe `s` of `node`: [`ONLY`] for a one-stripe node, an index below [`STRIPES`] for
    /// a striped one.
    ///
    /// # Safety
    ///
    /// `node` is a pointer to a whole node allocation (as [`Node::publish`] makes them) of the
    /// class that `s` names. Nodes are never deallocated, so the stripe lives for ever.
    #[inline]
    unsafe fn stripe(node: NonNull<Node>, s: u8) -> &'static Stripe {
        if s >= COMPACT {
            // SAFETY: the caller says `node` is a `Compact`, whose header is its first field
            // (`repr(C)`), and the pointer's provenance covers the whole `Compact`; `s` is below
            // `COMPACT + COMPACT_STRIPES` (an out-of-range index panics).
            unsafe { &(*node.cast::<Compact>().as_ptr()).stripes[usize::from(s - COMPACT)].0 }
        } else {
            // SAFETY: as above, for a `Striped`; `s < STRIPES` (an out-of-range index panics).
            unsafe { &(*node.cast::<Striped>().as_ptr()).stripes[usize::from(s)].0 }
        }
    }

    /// Counts a handle (and, if `access`, an access) on the calling thread's stripe, unless the
    /// node is retired (or not yet published). `striped` is the node's class.
    #[inline]
    fn try_acquire(node: NonNull<Node>, striped: bool, access: bool) -> Option<Ref> {
        let s = if striped { stripe_index() as u8 } else { compact_index() };
        // SAFETY: the caller gives the node's own class; nodes are never deallocated, so even a
        // stale pointer reads valid atomics.
        let stripe = unsafe { Node::stripe(node, s) };
        let mut w = stripe.word.load(Ordering::Relaxed);
        loop {
            if w & DEAD != 0 {
                return None;
            }
            assert!(w & HANDLES != HANDLES, "too many singleton handles alive on one thread");
            let mut next = w + HANDLE;
            let spill = access && w & ACCESSES == ACCESSES;
            if spill {
                next &= !ACCESSES;
            } else if access {
                next += 1;
            }
            // Acquire: see `meta` as the publisher wrote it.
            match stripe.word.compare_exchange(w, next, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => {
                    if spill {
                        stripe.spilled.fetch_add(ACCESSES + 1, Ordering::Relaxed);
                    }
                    return Some(Ref::on_stripe(node, stripe));
                }
                Err(actual) => w = actual,
            }
        }
    }

    /// The publisher's reference goes away: freeze every stripe, fold its handles into `central`.
    ///
    /// # Safety
    ///
    /// Called once per publish, by whoever removed the node from its slot.
    unsafe fn retire(node: NonNull<Node>) {
        // SAFETY: nodes are never deallocated.
        let n = unsafe { node.as_ref() };
        let mut handles = 0;
        for s in stripe_ids(n.striped) {
            // SAFETY: `n.striped` is the node's class, set when it was allocated.
            let stripe = unsafe { Node::stripe(node, s) };
            let w = stripe.word.fetch_or(DEAD, Ordering::AcqRel);
            debug_assert_eq!(w & DEAD, 0, "a node retired twice");
            handles += (w & HANDLES) >> HANDLE_SHIFT;
        }
        // Add the frozen handles and take away the bias, in one step.
        let unbias = BIAS - handles;
        if n.central.fetch_sub(unbias, Ordering::AcqRel) == unbias {
            // SAFETY: central reached zero: no handle is left and none can be taken.
            unsafe { Node::free(node) }
        }
    }

    /// Drops the value and returns the node to the pool.
    ///
    /// # Safety
    ///
    /// `central` has just reached zero after retirement: no handle exists, every stripe is DEAD.
    unsafe fn free(node: NonNull<Node>) {
        fence(Ordering::Acquire);
        // Only a `#[singleton]` type's node is ever borrowed.
        // SAFETY: nodes are never deallocated.
        if unsafe { node.as_ref() }.striped && borrow::is_marked(node) {
            return borrow::defer(node);
        }
        // SAFETY: as the caller says, and no borrow has the node marked.
        unsafe { Node::free_now(node) }
    }

    /// Drops the value and returns the node to the pool, now.
    ///
    /// # Safety
    ///
    /// As for [`free`](Self::free), and no borrow has the node marked.
    unsafe fn free_now(node: NonNull<Node>) {
        // SAFETY: nodes are never deallocated; nobody else can read `meta` (see above).
        let n = unsafe { node.as_ref() };
        n.deferred.store(false, Ordering::Relaxed);
        // SAFETY: as above: no handle exists, so nothing reads `meta` while it is taken.
        let meta = n.meta.with_mut(|m| unsafe { (*m).take() });
        // The node no longer refers to the value: it goes back to the pool first, so that a value
        // whose `Drop` panics loses no node.
        pool::give(node, n.striped);
        // The value's `Drop` runs here, with no lock held.
        drop(meta);
    }

    /// The accesses counted by borrows on the per-thread counter of the node's slot, if it has
    /// one: those between the node's entry into its slot and its exit (or now).
    fn borrowed(&self) -> u64 {
        if !self.entered.load(Ordering::Relaxed) {
            return 0;
        }
        let counter = self.borrow_counter.load(Ordering::Relaxed);
        if counter == NO_COUNTER {
            return 0;
        }
        let end = match self.borrow_end.load(Ordering::Relaxed) {
            LIVE => borrow::counted(counter),
            end => end,
        };
        // Saturating: two racing replacements may each read the sum before the other's split.
        end.saturating_sub(self.borrow_base.load(Ordering::Relaxed))
    }

    /// The accesses counted on every stripe of `node`, and by borrows on per-thread counters.
    ///
    /// # Safety
    ///
    /// `node` is live (a handle to it is held): its `meta` is set.
    unsafe fn accesses(node: NonNull<Node>) -> u64 {
        // SAFETY: nodes are never deallocated.
        let n = unsafe { node.as_ref() };
        // SAFETY: the caller holds a handle, so `meta` is set and not written.
        let borrowed = n.borrowed();
        let striped = n.striped;
        stripe_ids(striped)
            // SAFETY: `striped` is the node's class.
            .map(|s| unsafe { Node::stripe(node, s) })
            // Wrapping: a spill moves accesses between the two fields, and a reader may see one
            // side of the move; the sum is exact once the counting threads are done.
            .fold(borrowed, |sum, s| {
                sum.wrapping_add(s.word.load(Ordering::Relaxed) & ACCESSES)
                    .wrapping_add(s.spilled.load(Ordering::Relaxed))
            })
    }
}

/// The stripe indices of a node of the class `striped`.
fn stripe_ids(striped: bool) -> std::ops::Range<u8> {
    if striped {
        0..STRIPES as u8
    } else {
        COMPACT..COMPACT + COMPACT_STRIPES as u8
    }
}

/// The calling thread's stripe of a compact node.
#[inline]
fn compact_index() -> u8 {
    COMPACT + (stripe_index() % COMPACT_STRIPES) as u8
}

/// The calling thread's stripe.
#[cfg(not(loom))]
#[inline]
fn stripe_index() -> usize {
    crate::memory::sync::thread_index() % STRIPES
}

/// Under loom: model threads numbered afresh in every explored execution.
#[cfg(loom)]
fn stripe_index() -> usize {
    use loom::sync::atomic::AtomicUsize;
    loom::lazy_static! {
        static ref NEXT: AtomicUsize = AtomicUsize::new(0);
    }
    loom::thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
    }
    INDEX.with(|i| *i)
}

#[cfg(not(loom))]
mod pool {
    use std::ptr::NonNull;
    use std::sync::{Mutex, PoisonError};

    use super::Node;

    struct Free(Vec<NonNull<Node>>);
    // SAFETY: the pool only moves pointers to `Sync` nodes between threads.
    unsafe impl Send for Free {}

    /// The free nodes of each class: one stripe, and striped.
    static FREE: [Mutex<Free>; 2] = [Mutex::new(Free(Vec::new())), Mutex::new(Free(Vec::new()))];

    pub(super) fn take(striped: bool) -> Option<NonNull<Node>> {
        FREE[usize::from(striped)].lock().unwrap_or_else(PoisonError::into_inner).0.pop()
    }

    pub(super) fn give(node: NonNull<Node>, striped: bool) {
        FREE[usize::from(striped)].lock().unwrap_or_else(PoisonError::into_inner).0.push(node);
    }
}

/// Under loom, atomics cannot outlive one explored execution: the pool lives in a loom static,
/// made afresh for each execution, so that the models explore node reuse too.
#[cfg(loom)]
mod pool {
    use std::ptr::NonNull;

    use loom::sync::Mutex;

    use super::Node;

    struct Free(Vec<NonNull<Node>>);
    // SAFETY: as in the real pool.
    unsafe impl Send for Free {}

    loom::lazy_static! {
        static ref FREE: [Mutex<Free>; 2] = [Mutex::new(Free(Vec::new())), Mutex::new(Free(Vec::new()))];
    }

    pub(super) fn take(striped: bool) -> Option<NonNull<Node>> {
        FREE[usize::from(striped)].lock().unwrap().0.pop()
    }

    pub(super) fn give(node: NonNull<Node>, striped: bool) {
        FREE[usize::from(striped)].lock().unwrap().0.push(node);
    }
}

#[cfg(test)]
mod tests;
