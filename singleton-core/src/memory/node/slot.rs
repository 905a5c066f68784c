//! The slot that publishes an entry's current node, and a node taken out of it.

use std::ptr::NonNull;

use super::{borrow, Meta, Node, Ref};
use crate::memory::sync::{AtomicPtr, Ordering};

/// The current node of an entry, or none.
pub(crate) struct Slot {
    pub(super) ptr: AtomicPtr<Node>,
    /// The class of the nodes this slot publishes: striped for a `#[singleton]` type's entry.
    striped: bool,
    /// The per-thread counter that borrows of this slot's instances count on: set for the
    /// global core's `#[singleton]` entries (see the `borrow` module); [`Slot::NO_COUNTER`] for
    /// the others.
    pub(crate) counter: u32,
}

impl Slot {
    /// The `counter` of a slot without one: past the end of every record's counters.
    pub(crate) const NO_COUNTER: u32 = u32::MAX;

    /// An empty slot whose nodes have [`STRIPES`] stripes if `striped`, else one.
    pub(crate) fn new(striped: bool) -> Self {
        Self { ptr: AtomicPtr::new(std::ptr::null_mut()), striped, counter: Self::NO_COUNTER }
    }

    /// A striped slot whose borrows count on the per-thread counter `counter`.
    pub(crate) fn counted(counter: u32) -> Self {
        Self { ptr: AtomicPtr::new(std::ptr::null_mut()), striped: true, counter }
    }

    /// The sum of this slot's per-thread counter, read just before a node is put in the slot:
    /// where the new node's borrows count from and the old node's end. Read before, so that a
    /// borrow of the new node that comes before the writer's next step is counted on it (read
    /// after, a borrow right after a first creation was counted on no node).
    fn reading(&self) -> Option<u64> {
        (self.counter != Self::NO_COUNTER).then(|| borrow::counted(self.counter))
    }

    /// A counted reference to the current node; `access` also counts an access.
    #[inline]
    pub(crate) fn get(&self, access: bool) -> Option<Ref> {
        self.get_of(self.striped, access)
    }

    /// [`get`](Self::get) of a slot whose class the caller knows (a `#[singleton]` type's slot
    /// is striped), so that the code for the other class is left out.
    #[inline(always)]
    pub(crate) fn get_of(&self, striped: bool, access: bool) -> Option<Ref> {
        debug_assert_eq!(striped, self.striped);
        loop {
            let node = NonNull::new(self.ptr.load(Ordering::Acquire))?;
            let Some(r) = Node::try_acquire(node, striped, access) else {
                // Retired under us (the slot has moved on): look again.
                crate::memory::sync::spin();
                continue;
            };
            if self.ptr.load(Ordering::Acquire) == node.as_ptr() {
                return Some(r);
            }
            // The node was replaced, and maybe reused elsewhere, between the two loads.
            if access {
                r.release_uncounted();
            }
        }
    }

    /// `true` when the slot holds a node.
    pub(crate) fn is_some(&self) -> bool {
        !self.ptr.load(Ordering::Acquire).is_null()
    }

    /// Stores a new instance (or none), and returns the one it replaces, not yet retired: the
    /// caller drops it when no lock is held, in the order it chooses.
    pub(crate) fn swap(&self, meta: Option<Meta>) -> Option<Retired> {
        let at = self.reading();
        let new =
            meta.map_or(std::ptr::null_mut(), |m| Node::publish(m, self.striped, self.counter, at).as_ptr());
        let old = self.ptr.swap(new, Ordering::AcqRel);
        // SAFETY: nodes are never deallocated; the publisher's reference to `old` is ours until
        // it is retired, so it is not reused meanwhile.
        if let (Some(at), Some(old)) = (at, unsafe { old.as_ref() }) {
            old.borrow_end.store(at, Ordering::Relaxed);
        }
        NonNull::new(old).map(Retired)
    }

    /// Stores a new instance if the slot is empty, and returns a reference (with an access
    /// counted) to the instance the slot holds then: ours, or one that a `set` stored first.
    pub(crate) fn fill(&self, meta: Meta) -> Ref {
        let node = Node::publish(meta, self.striped, self.counter, self.reading());
        let mine = Node::try_acquire(node, self.striped, true).expect("a node just published is live");
        if self
            .ptr
            .compare_exchange(std::ptr::null_mut(), node.as_ptr(), Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            return mine;
        }
        // A `set` got there first, and wins. Ours was never in the slot, so no borrow counts on
        // it (its reading would count the winner's): retire it here.
        // SAFETY: nodes are never deallocated.
        unsafe { node.as_ref() }.entered.store(false, Ordering::Relaxed);
        let existing = self.get(true);
        // SAFETY: `node` never entered a slot; this is its one retirement.
        unsafe { Node::retire(node) };
        match existing {
            Some(existing) => {
                mine.release_uncounted();
                existing
            }
            // ...and was deleted again already: the caller still gets what it made.
            None => mine,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        drop(NonNull::new(self.ptr.swap(std::ptr::null_mut(), Ordering::AcqRel)).map(Retired));
    }
}

/// A node taken out of its slot and not yet retired.
pub(crate) struct Retired(NonNull<Node>);

impl Retired {
    /// How often the instance was accessed, all told: read before it is retired, so no access
    /// can be counted on it any more except by a reader that then finds the slot moved on and
    /// takes its access back.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn accesses(&self) -> u64 {
        // SAFETY: not yet retired: the publisher's reference keeps the node live.
        unsafe { Node::accesses(self.0) }
    }
}

impl Drop for Retired {
    fn drop(&mut self) {
        // SAFETY: a `Retired` is made once per swap out of a slot.
        unsafe { Node::retire(self.0) }
    }
}
