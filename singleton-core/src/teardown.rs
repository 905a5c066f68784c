//! The order in which a core (or a test scope) lets go of its instances: dependents before what
//! they depend on, unrelated ones newest first, and a `Drop` that panics caught and logged.

use std::collections::{BinaryHeap, HashMap};
use std::panic::{self, AssertUnwindSafe};

use crate::entry::Entry;
use crate::node::Retired;

/// One instance taken out of its entry, with what its factory asked for.
pub(crate) struct Released {
    pub(crate) name: Box<str>,
    pub(crate) dependencies: Vec<Box<str>>,
    pub(crate) retired: Retired,
}

/// Takes the instance out of `entry`, with the edges its factory recorded (which go with it).
pub(crate) fn take(entry: &Entry) -> Option<Released> {
    let retired = entry.slot.swap(None)?;
    let dependencies = std::mem::take(&mut *entry.deps());
    Some(Released { name: entry.name.clone(), dependencies, retired })
}

/// Lets go of every instance (its value is dropped here unless a handle still holds it), in
/// dependency order, and returns how many. A panic in a value's `Drop` is caught and logged at
/// `error` with the singleton's name; the others are still let go, and it still counts.
///
/// The order: an instance goes before every instance it depends on (by the names its factory
/// asked for); among those free to go, the newest first. If what is left forms a cycle, the
/// newest of it goes first, which breaks it.
pub(crate) fn release(all: Vec<Released>) -> usize {
    let count = all.len();
    for released in order(all) {
        let Released { name, retired, .. } = released;
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(move || drop(retired))) {
            let message = crate::error::panic_message(payload.as_ref());
            tracing::error!(singleton = &*name, panic = %message, "dropping the singleton panicked");
        }
    }
    count
}

/// `all` in the order [`release`] lets go of them.
fn order(all: Vec<Released>) -> Vec<Released> {
    let n = all.len();
    let index: HashMap<&str, usize> = all.iter().enumerate().map(|(i, r)| (&*r.name, i)).collect();
    // `needs[i]`: the instances that i depends on; `held[j]`: how many not yet released depend on j.
    let mut needs: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut held = vec![0_usize; n];
    for (i, r) in all.iter().enumerate() {
        for dep in &r.dependencies {
            if let Some(&j) = index.get(&**dep) {
                if j != i && !needs[i].contains(&j) {
                    needs[i].push(j);
                    held[j] += 1;
                }
            }
        }
    }
    let seq: Vec<u64> = all.iter().map(|r| r.retired.seq()).collect();
    let mut free: BinaryHeap<(u64, usize)> = (0..n).filter(|&i| held[i] == 0).map(|i| (seq[i], i)).collect();
    let mut done = vec![false; n];
    let mut order = Vec::with_capacity(n);
    while order.len() < n {
        let i = match free.pop() {
            Some((_, i)) if !done[i] => i,
            Some(_) => continue,
            // Only cycles are left: the newest of them goes first.
            None => (0..n).filter(|&i| !done[i]).max_by_key(|&i| seq[i]).expect("some left"),
        };
        done[i] = true;
        order.push(i);
        for &j in &needs[i] {
            held[j] -= 1;
            if held[j] == 0 && !done[j] {
                free.push((seq[j], j));
            }
        }
    }
    let mut slots: Vec<Option<Released>> = all.into_iter().map(Some).collect();
    order.into_iter().map(|i| slots[i].take().expect("each once")).collect()
}
