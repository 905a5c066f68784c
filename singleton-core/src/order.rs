//! Sorting, through one sort. Below every layer, as `units.rs` is.
//!
//! Every listing the core returns is sorted: by name (then type) for lists, stats, the graph,
//! health and shutdown reports, newest first for the order in which graceful shutdown starts
//! hooks. A `sort_by` at each of those places made the standard library's stable sort once per
//! element type and comparison, about 3,000 LLVM lines each in a user's debug build, about 15% of
//! the core's code (`cargo llvm-lines -p singleton-core`). The functions here sort `(key, index)`
//! pairs instead, so the sort exists once per key type (two: a pair of names, and a number), and
//! move the items into place by following the permutation's cycles, which is a few lines per
//! element type. Ties keep their order, as a stable sort's do, because the index breaks them.

/// Sorts `items` by a name, then a second name (a type name, say); equal keys keep their order.
///
/// Costs a `Vec` of `(key, index)` pairs and fewer swaps than there are items.
pub(crate) fn sort_by_names<T>(items: &mut [T], key: impl for<'a> Fn(&'a T) -> (&'a str, &'a str)) {
    let mut keys = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        keys.push((key(item), i));
    }
    let from = sorted_indices(keys);
    permute(items, from);
}

/// Sorts `items` by a name alone; equal names keep their order.
pub(crate) fn sort_by_name<T>(items: &mut [T], name: impl for<'a> Fn(&'a T) -> &'a str) {
    sort_by_names(items, |item| (name(item), ""));
}

/// Sorts `items` by a creation sequence number, the largest (newest) first; equal numbers keep
/// their order.
pub(crate) fn sort_newest_first<T>(items: &mut [T], seq: impl Fn(&T) -> u64) {
    let mut keys = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        keys.push((std::cmp::Reverse(seq(item)), i));
    }
    let from = sorted_indices(keys);
    permute(items, from);
}

/// The indices of `keys` in the order of their keys: the one sort, made once per key type.
fn sorted_indices<K: Ord>(mut keys: Vec<(K, usize)>) -> Vec<usize> {
    // The index breaks ties, so an unstable sort gives a stable sort's order.
    keys.sort_unstable();
    keys.into_iter().map(|(_, i)| i).collect()
}

/// Puts the item at `from[j]` at `j`, for every `j`, one cycle of the permutation at a time.
fn permute<T>(items: &mut [T], mut from: Vec<usize>) {
    for start in 0..items.len() {
        let mut j = start;
        loop {
            let k = std::mem::replace(&mut from[j], j);
            if k == start {
                break;
            }
            // `j` takes its item; the item that was at `j`, which the cycle needs at its last
            // place, moves on to `k`.
            items.swap(j, k);
            j = k;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The same order as the standard library's stable sort, equal keys included.
        #[test]
        fn sorts_as_a_stable_sort_does(keys in proptest::collection::vec(0u8..6, 0..80)) {
            let mut items: Vec<(u64, usize)> = keys.iter().map(|&k| u64::from(k)).zip(0..).collect();
            let mut expected = items.clone();
            expected.sort_by_key(|&(k, _)| std::cmp::Reverse(k));
            sort_newest_first(&mut items, |&(k, _)| k);
            prop_assert_eq!(&items, &expected);
            let mut named: Vec<(String, usize)> = keys.iter().map(|k| format!("n{k}")).zip(0..).collect();
            let mut expected = named.clone();
            expected.sort_by(|a, b| a.0.cmp(&b.0));
            sort_by_name(&mut named, |(n, _)| n);
            prop_assert_eq!(named, expected);
        }
    }

    #[test]
    fn sorts_by_name_then_type_and_keeps_ties_in_order() {
        let mut items = vec![("b", "T", 0), ("a", "U", 1), ("a", "T", 2), ("b", "T", 3), ("", "", 4)];
        sort_by_names(&mut items, |&(n, t, _)| (n, t));
        assert_eq!(items, [("", "", 4), ("a", "T", 2), ("a", "U", 1), ("b", "T", 0), ("b", "T", 3)]);
        let mut names = vec!["z".to_owned(), "m".to_owned(), "a".to_owned()];
        sort_by_name(&mut names, String::as_str);
        assert_eq!(names, ["a", "m", "z"]);
    }
}
