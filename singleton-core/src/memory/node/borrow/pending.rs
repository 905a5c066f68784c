//! The nodes deferred because a borrow had them marked.

use std::ptr::NonNull;

use super::Node;

struct List(Vec<NonNull<Node>>);
// SAFETY: the list only moves pointers to `Sync` nodes between threads.
unsafe impl Send for List {}

#[cfg(not(loom))]
static PENDING: std::sync::Mutex<List> = std::sync::Mutex::new(List(Vec::new()));

#[cfg(loom)]
loom::lazy_static! {
    static ref PENDING: loom::sync::Mutex<List> = loom::sync::Mutex::new(List(Vec::new()));
}

fn lock() -> impl std::ops::DerefMut<Target = List> {
    #[cfg(not(loom))]
    return PENDING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    #[cfg(loom)]
    return PENDING.lock().unwrap();
}

pub(super) fn push(node: NonNull<Node>) {
    lock().0.push(node);
}

/// Takes the deferred nodes that no borrow has marked any more: under the lock, so each is
/// taken once.
pub(super) fn take_unmarked() -> Vec<NonNull<Node>> {
    let mut list = lock();
    if list.0.is_empty() {
        return Vec::new();
    }
    super::barrier::heavy();
    let mut taken = Vec::new();
    list.0.retain(|&node| {
        let free = !super::marked(node);
        if free {
            taken.push(node);
        }
        !free
    });
    taken
}
