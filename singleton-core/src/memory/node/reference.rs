//! A counted reference to a live node, and where it is counted.

use std::fmt;
use std::ptr::{self, NonNull};

use super::borrow::held::{self, Held};
use super::{Meta, Node, Stripe, ACCESSES, DEAD, HANDLE};
use crate::memory::sync::Ordering;

/// A counted reference to a live node: keeps its value alive.
///
/// It keeps where it is counted as an address, not as an index: dropping it is then one
/// `fetch_sub` on that address, where an index needed a look at the node's class and a bounds
/// check first (7 instructions of every `instance()`). The address is tagged: null for `central`,
/// a [`Stripe`] (aligned, low bit clear), or with the low bit set a [`Held`] cell of the thread
/// that took it without a read-modify-write (see `borrow::held`).
pub(crate) struct Ref {
    pub(super) node: NonNull<Node>,
    count: *const (),
}

/// Where a [`Ref`] is counted.
pub(super) enum Counted {
    Central,
    Stripe(&'static Stripe),
    Held(&'static Held),
}

// SAFETY: a `Ref` only reads the node's immutable `meta` and updates atomics.
unsafe impl Send for Ref {}
// SAFETY: as above.
unsafe impl Sync for Ref {}

impl Ref {
    /// A reference counted on `stripe`, a stripe of `node`.
    #[inline]
    pub(super) fn on_stripe(node: NonNull<Node>, stripe: &'static Stripe) -> Ref {
        Ref { node, count: ptr::from_ref(stripe).cast() }
    }

    /// A reference counted on `central`.
    fn on_central(node: NonNull<Node>) -> Ref {
        Ref { node, count: ptr::null() }
    }

    /// A reference counted in `held`, a cell of the thread that took it.
    #[inline]
    pub(crate) fn on_held(node: NonNull<Node>, held: &'static Held) -> Ref {
        Ref { node, count: ptr::from_ref(held).cast::<()>().map_addr(|a| a | 1) }
    }

    #[inline]
    pub(super) fn counted(&self) -> Counted {
        if self.count.addr() & 1 != 0 {
            // SAFETY: tagged by `on_held` from a `&'static Held`.
            Counted::Held(unsafe { &*self.count.map_addr(|a| a & !1).cast::<Held>() })
        } else if self.count.is_null() {
            Counted::Central
        } else {
            // SAFETY: set by `on_stripe` from a `&'static Stripe`.
            Counted::Stripe(unsafe { &*self.count.cast::<Stripe>() })
        }
    }

    fn node(&self) -> &Node {
        // SAFETY: nodes are never deallocated.
        unsafe { self.node.as_ref() }
    }

    /// The instance's metadata. Valid as long as this reference.
    #[inline]
    pub(crate) fn meta(&self) -> &Meta {
        // SAFETY: while a handle is counted the node is not freed, so `meta` is `Some` and is not
        // written.
        self.node().meta.with(|m| unsafe { (*m).as_ref().unwrap_unchecked() })
    }

    /// How often this instance was accessed.
    pub(crate) fn accesses(&self) -> u64 {
        // SAFETY: this handle keeps the node live.
        unsafe { Node::accesses(self.node) }
    }

    /// `true` when both refer to the same node.
    pub(crate) fn same_node(&self, other: &Ref) -> bool {
        self.node == other.node
    }

    fn release_central(&self) {
        if self.node().central.fetch_sub(1, Ordering::Release) == 1 {
            // SAFETY: this was the last handle of a retired node.
            unsafe { Node::free(self.node) }
        }
    }

    /// Releases a reference taken with an access that must not count after all (the slot no
    /// longer pointed at the node).
    pub(crate) fn release_uncounted(self) {
        let Counted::Stripe(stripe) = self.counted() else {
            // Counted centrally (a clone made after retirement): it carries no access. A held
            // reference is made only where the access stands (the typed path), never handed here.
            debug_assert!(
                matches!(self.counted(), Counted::Central),
                "an access of a held handle taken back"
            );
            return drop(self);
        };
        let this = std::mem::ManuallyDrop::new(self);
        let mut w = stripe.word.load(Ordering::Relaxed);
        loop {
            if w & DEAD != 0 {
                // Retired: its counts no longer matter; release as usual.
                stripe.word.fetch_sub(HANDLE, Ordering::Release);
                this.release_central();
                return;
            }
            let unaccess = u64::from(w & ACCESSES > 0);
            match stripe.word.compare_exchange(w, w - HANDLE - unaccess, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => {
                    if unaccess == 0 {
                        // The access went to `spilled` when the field overflowed.
                        stripe.spilled.fetch_sub(1, Ordering::Relaxed);
                    }
                    return;
                }
                Err(actual) => w = actual,
            }
        }
    }

    /// The class of this reference's node.
    fn striped(&self) -> bool {
        self.node().striped
    }

    /// Another reference to the same instance, with an access counted: for a caller that is
    /// handed an instance another call made. Once the node is retired, the clone is counted as
    /// [`clone`](Clone::clone) counts it and carries no access, like any access to an instance
    /// its core let go of.
    pub(crate) fn clone_counted(&self) -> Ref {
        Node::try_acquire(self.node, self.striped(), true).unwrap_or_else(|| self.clone())
    }
}

impl Clone for Ref {
    #[inline]
    fn clone(&self) -> Self {
        if let Counted::Held(held) = self.counted() {
            // Counted in the same cell, so that a node retired with held handles never has
            // `central` raised from zero again (see `borrow::held`).
            held::clone(held);
            return Ref::on_held(self.node, held);
        }
        Node::try_acquire(self.node, self.striped(), false).unwrap_or_else(|| {
            // Retired: count on `central`, which this handle already keeps above zero.
            self.node().central.fetch_add(1, Ordering::Relaxed);
            Ref::on_central(self.node)
        })
    }
}

impl Drop for Ref {
    #[inline]
    fn drop(&mut self) {
        match self.counted() {
            Counted::Stripe(stripe) => {
                if stripe.word.fetch_sub(HANDLE, Ordering::Release) & DEAD == 0 {
                    return;
                }
                self.release_central();
            }
            Counted::Central => self.release_central(),
            Counted::Held(held) => held::release(self.node, held),
        }
    }
}

impl fmt::Debug for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ref").field("type_name", &self.meta().type_name).finish_non_exhaustive()
    }
}
