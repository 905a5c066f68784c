//! The order in which a core (or a test scope) lets go of its instances: dependents before what
//! they depend on, unrelated ones newest first, one at a time, and a `Drop` that panics caught
//! and logged.
//!
//! # One at a time
//!
//! Teardown takes an instance out of its slot only when its turn comes, and drops it before it
//! takes the next: so when a value's `Drop` runs, everything it depends on is still in its slot,
//! and a client's `Drop` that asks for its config gets the live config (taking every instance out
//! first made that call create a second config, which then outlived the teardown).
//!
//! # What a `Drop` creates during teardown
//!
//! A `Drop` may still create or `set` something (an instance whose creation never recorded the
//! edge, say). Teardown does not leave it behind: once a round has let go of everything it found,
//! it looks again, and lets go of what is there now, in the same order, up to [`ROUNDS`] rounds
//! (instances whose `Drop`s keep making each other again would otherwise never end). Every
//! instance let go counts, so `clear()` returns how many it released, and a second call right
//! after returns `0`.

use std::collections::{BinaryHeap, HashMap};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

use crate::lifecycle::entry::Entry;
use crate::memory::node::Retired;

/// How many times teardown looks for instances that the `Drop`s of the previous round made.
pub(crate) const ROUNDS: usize = 8;

/// Takes the instance out of `entry`, with the edges its factory recorded (which go with it).
pub(crate) fn take(entry: &Entry) -> Option<Retired> {
    let retired = entry.slot.swap(None)?;
    entry.deps().clear();
    Some(retired)
}

/// Drops a released instance (its value is dropped here unless a handle still holds it),
/// catching a panic in its `Drop` and logging it at `error` with the singleton's name.
pub(crate) fn let_go(name: &str, retired: Retired) {
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(move || drop(retired))) {
        let message = crate::error::panic_message(payload.as_ref());
        tracing::error!(singleton = name, panic = %message, "dropping the singleton panicked");
    }
}

/// Lets go of the instances of `entries()` (called once per round: the entries that may hold
/// one now), in dependency order, one at a time, and returns how many. `released` is told of
/// each instance just before it is dropped.
///
/// The order: an instance goes before every instance it depends on (by the names its factory
/// asked for); among those free to go, the newest first. If what is left forms a cycle, the
/// newest of it goes first, which breaks it.
pub(crate) fn release(
    mut entries: impl FnMut() -> Vec<Arc<Entry>>,
    mut released: impl FnMut(&Entry, &Retired),
) -> usize {
    let mut count = 0;
    for _ in 0..ROUNDS {
        let live = order(entries());
        if live.is_empty() {
            return count;
        }
        for entry in live {
            // Gone already if a `Drop` of this round deleted it.
            if let Some(retired) = take(&entry) {
                released(&entry, &retired);
                let_go(&entry.name, retired);
                count += 1;
            }
        }
    }
    let left = entries().iter().filter(|e| e.slot.is_some()).count();
    if left > 0 {
        tracing::warn!(
            left,
            "singleton teardown stopped after {ROUNDS} rounds: the `Drop`s of the instances it let go \
             keep creating others"
        );
    }
    count
}

/// The entries of `all` that hold an instance, in the order [`release`] lets go of them.
fn order(all: Vec<Arc<Entry>>) -> Vec<Arc<Entry>> {
    // Each live entry with the creation order of its instance and the names it depends on.
    let live: Vec<(Arc<Entry>, u64, Vec<Box<str>>)> = all
        .into_iter()
        .filter_map(|entry| {
            let seq = entry.slot.get(false)?.meta().seq;
            let deps = entry.deps().clone();
            Some((entry, seq, deps))
        })
        .collect();
    let n = live.len();
    let index: HashMap<&str, usize> = live.iter().enumerate().map(|(i, (e, ..))| (&*e.name, i)).collect();
    // `needs[i]`: the instances that i depends on; `held[j]`: how many not yet released depend on j.
    let mut needs: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut held = vec![0_usize; n];
    for (i, (_, _, deps)) in live.iter().enumerate() {
        for dep in deps {
            if let Some(&j) = index.get(&**dep) {
                if j != i && !needs[i].contains(&j) {
                    needs[i].push(j);
                    held[j] += 1;
                }
            }
        }
    }
    let seq: Vec<u64> = live.iter().map(|(_, seq, _)| *seq).collect();
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
    let mut slots: Vec<Option<Arc<Entry>>> = live.into_iter().map(|(e, ..)| Some(e)).collect();
    order.into_iter().map(|i| slots[i].take().expect("each once")).collect()
}
