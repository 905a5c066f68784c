//! The names of a core: the fixed table of the `#[singleton]` types' names, read with no
//! synchronisation, and the run-time names in a concurrent hash index with lock-free reads and
//! amortized O(1) inserts.
//!
//! # Why `scc::HashIndex`
//!
//! The run-time names used to be sixteen copy-on-write `hashbrown` tables behind `arc-swap`:
//! reads were lock-free, but adding a name copied a sixteenth of all names, so filling a core was
//! quadratic (2.9 µs per new name at 1,000 live names, 138 µs at 32,000; 200,000 new names did
//! not finish in 300 s), and a caller allowed to `set` new names could stall the process.
//!
//! Measured on the 2-core development VM (release, foldhash for all, names `runtime_name_{i}`,
//! a throw-away harness that inserts into and reads from each map alone, best of 5; the machine
//! was shared, so the figures move by about ±30%):
//!
//! | map | insert, first 10k | insert, last 10k of 1M | 1M inserts | get, one name | get, 1,000 names cycled (10k / 1M live) |
//! |---|---|---|---|---|---|
//! | 16 copy-on-write pieces (before) | 15–37 µs | (quadratic; not run) | – | 23–31 ns | 27–42 ns (32k live) |
//! | `papaya::HashMap` 0.2 | 0.24–0.75 µs | 1.0–2.6 µs | 0.76–1.26 s | 14–24 ns | 19–33 / 31–64 ns |
//! | `scc::HashIndex` 3.8 | 0.18–0.26 µs | 0.42–0.55 µs | 0.53–0.75 s | 15–30 ns | 19–32 / 36–65 ns |
//!
//! Both concurrent maps read without a lock, through epoch-based reclamation, and as fast as
//! each other within the noise; both are much faster than the copy-on-write pieces at adding a
//! name. `scc::HashIndex` keeps the cost of a new name flattest from 10,000 to 1,000,000 names
//! (1.7–2.6x, mostly the cache misses that any table of that size has; `papaya`'s incremental
//! resizing costs 3–8x there), so it is the one used. Through the core, a name-keyed `get` of a
//! name stored by `set` went from 1.59–1.69x to 1.36–1.50x the time of a `#[singleton]`'s name
//! (`cargo run --release --example bench`), and a million `set`s of new names take 1.7–5.4 s.
//!
//! `dashmap` was not a candidate: its reads take a shard's `RwLock`, which writes the lock word
//! on every read. `scc` adds two small crates to the runtime's tree (`sdd` for the epochs, `saa`
//! for the bucket locks), and replaces `arc-swap` there.
//!
//! # Recent lookups, per thread
//!
//! `scc`'s epoch guard costs one atomic read-modify-write per lookup (`sdd`'s `Guard::new` is a
//! `lock xchg` on the thread's own collector state, which is then released with a store), and
//! the hash index hashes the name a second time. A thread that asks for a run-time name twice in
//! a row in one of its eight slots keeps that name's entry (an `Arc`) and finds it again with
//! neither, for as long as the core's run-time names do not change: every insert, remove and
//! retain moves a version counter on by one before the writer lock is let go, and a kept lookup
//! counts only under the version that was read before the map was. Names that change or many
//! names used in turn go to the hash index as before, with no `Arc` cloned. Measured with
//! callgrind on `get::<T>` of a name stored by `set` among 10,000 others (release, one thread,
//! instructions per call, the name check's own change included): 450 before, 340 after, and one
//! atomic read-modify-write fewer; `get::<T>` of a `#[singleton]`'s name does not go through it.
//!
//! Writers (insert, remove) are still serialised by one mutex: the core's set/delete/forget
//! steps read a name and then change it, and must not interleave. Readers never take it.
//! `foldhash` hashes a short name several times faster than SipHash and keeps a per-process
//! seed, so names chosen from outside cannot be aimed at one bucket.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::lifecycle::entry::Entry;

/// What a name points at: one entry, or several `#[singleton]` types that claim the same name.
#[derive(Clone)]
pub(crate) enum Named {
    One(Arc<Entry>),
    Ambiguous(Vec<Arc<Entry>>),
}

impl Named {
    pub(crate) fn entries(&self) -> &[Arc<Entry>] {
        match self {
            Named::One(entry) => std::slice::from_ref(entry),
            Named::Ambiguous(all) => all,
        }
    }
}

type Hasher = foldhash::fast::RandomState;

/// The fixed table of the `#[singleton]` types' names, addressed by a hash computed once per
/// lookup. Never changed after the core is made, so read with no synchronisation.
#[derive(Default)]
pub(crate) struct Fixed {
    table: hashbrown::HashTable<(Box<str>, Named)>,
}

impl Fixed {
    #[inline]
    pub(crate) fn get(&self, hash: u64, name: &str) -> Option<&Named> {
        self.table.find(hash, |(key, _)| **key == *name).map(|(_, named)| named)
    }

    /// Adds or replaces `name`; `hasher` rehashes the names when the table grows.
    fn insert(&mut self, hasher: &Hasher, hash: u64, name: &str, named: Named) {
        let rehash = |(key, _): &(Box<str>, Named)| std::hash::BuildHasher::hash_one(hasher, &**key);
        match self.table.entry(hash, |(key, _)| **key == *name, rehash) {
            hashbrown::hash_table::Entry::Occupied(mut slot) => slot.get_mut().1 = named,
            hashbrown::hash_table::Entry::Vacant(slot) => {
                slot.insert((name.into(), named));
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&Box<str>, &Named)> {
        self.table.iter().map(|(key, named)| (key, named))
    }
}

/// The run-time names: read without a lock under an epoch guard.
type Dynamic = scc::HashIndex<Box<str>, Named, Hasher>;

/// An epoch guard: what a run-time name read under it stays valid for.
pub(crate) type Guard = scc::Guard;

/// The names of a core. The `#[singleton]` types' names are fixed when the core is made and read
/// with no synchronisation at all: their entries stay, only the instances in them come and go.
/// The names made at run time (by `set` and `get_or_create`) are read without a lock; see the
/// module docs.
pub(crate) struct Names {
    fixed: Fixed,
    dynamic: Dynamic,
    hasher: Hasher,
    /// Changes after every change of the run-time names, on a cache line of its own: what a
    /// thread's [`Recent`] lookups are checked against.
    version: Version,
    /// This core's, unlike any other's (an address can be reused after a core is dropped).
    id: u64,
    writer: Mutex<()>,
}

#[repr(align(128))]
struct Version(AtomicU64);

/// How many run-time names a thread keeps found, by hash.
const RECENT_SLOTS: usize = 8;

/// A run-time name found by this thread, kept while the run-time names of its core do not
/// change: then it is found again without the epoch guard and the hash index, whose guard alone
/// costs an atomic read-modify-write. A name is kept once asked for twice in a row in its slot,
/// so that a thread going through many names does not clone and drop an `Arc` per lookup.
///
/// A kept entry stays allocated until its slot is reused or the thread ends, but it is no longer
/// found once its name is removed: a name is removed only once its entry holds no instance.
#[derive(Default)]
struct Slot {
    named: Option<Named>,
    core: u64,
    version: u64,
    /// The hash of the last name not found here.
    missed: u64,
}

impl Slot {
    #[inline]
    fn holds(&self, core: u64, version: u64, name: &str) -> bool {
        matches!(&self.named, Some(Named::One(entry))
            if self.core == core && self.version == version && *entry.name == *name)
    }
}

thread_local! {
    static RECENT: RefCell<[Slot; RECENT_SLOTS]> = RefCell::new(Default::default());
}

impl Names {
    /// The names of a core whose `#[singleton]` types have these entries (two entries with one
    /// name make it ambiguous).
    pub(crate) fn new(registered: impl IntoIterator<Item = Arc<Entry>>) -> Self {
        static IDS: AtomicU64 = AtomicU64::new(0);
        let hasher = Hasher::default();
        let mut fixed = Fixed::default();
        for entry in registered {
            let hash = std::hash::BuildHasher::hash_one(&hasher, &*entry.name);
            let named = match fixed.get(hash, &entry.name) {
                None => Named::One(Arc::clone(&entry)),
                Some(other) => {
                    Named::Ambiguous(other.entries().iter().cloned().chain([Arc::clone(&entry)]).collect())
                }
            };
            fixed.insert(&hasher, hash, &entry.name, named);
        }
        Self {
            fixed,
            dynamic: Dynamic::with_hasher(hasher.clone()),
            hasher,
            version: Version(AtomicU64::new(0)),
            id: IDS.fetch_add(1, Ordering::Relaxed),
            writer: Mutex::new(()),
        }
    }

    /// Runs `f` on what `name` points at, fixed or run-time: the one lookup of a name-keyed
    /// operation. A run-time name asked for again and again on a thread is found in the thread's
    /// [`Recent`] lookups, with no epoch guard.
    #[inline]
    pub(crate) fn with<R>(&self, name: &str, f: impl FnOnce(Option<&Named>) -> R) -> R {
        let hash = self.hash(name);
        if let Some(named) = self.fixed.get(hash, name) {
            return f(Some(named));
        }
        // Loaded before the map is read: a change made after this load changes the version, so
        // what is read below is never kept under a version it might not hold for.
        let version = self.version.0.load(Ordering::Acquire);
        let mut f = Some(f);
        let mut evicted = None;
        let done = RECENT
            .try_with(|recent| {
                // Taken while `f` runs, so that a lookup from inside it reads the map instead.
                let mut recent = recent.try_borrow_mut().ok()?;
                let slot = &mut recent[hash as usize % RECENT_SLOTS];
                if slot.holds(self.id, version, name) {
                    return f.take().map(|f| f(slot.named.as_ref()));
                }
                let guard = Guard::new();
                let found = self.dynamic.peek(name, &guard);
                if let Some(named @ Named::One(_)) = found {
                    if slot.missed == hash {
                        // Asked for twice in a row: kept for the next lookups on this thread.
                        evicted = slot.named.replace(named.clone());
                        (slot.core, slot.version) = (self.id, version);
                    } else {
                        slot.missed = hash;
                    }
                }
                f.take().map(|f| f(found))
            })
            .ok()
            .flatten();
        // An entry let go by the thread's lookups is dropped with no borrow held.
        drop(evicted);
        match (done, f) {
            (Some(done), _) => done,
            (None, Some(f)) => f(self.dynamic.peek(name, &Guard::new())),
            (None, None) => unreachable!("`f` ran but gave nothing back"),
        }
    }

    /// The `#[singleton]` types' names.
    #[inline]
    pub(crate) fn fixed(&self) -> &Fixed {
        &self.fixed
    }

    #[inline]
    pub(crate) fn hash(&self, name: &str) -> u64 {
        std::hash::BuildHasher::hash_one(&self.hasher, name)
    }

    /// The run-time name `name`, read without a lock; valid as long as `guard`.
    #[inline]
    pub(crate) fn get_dynamic<'g>(&'g self, name: &str, guard: &'g Guard) -> Option<&'g Named> {
        self.dynamic.peek(name, guard)
    }

    /// Every run-time name, for the operations that look at all of them.
    pub(crate) fn for_each_dynamic(&self, f: &mut dyn FnMut(&str, &Named)) {
        self.dynamic.iter_sync(|name, named| {
            f(name, named);
            true
        });
    }

    /// How many names, fixed and run-time.
    pub(crate) fn len(&self) -> usize {
        self.fixed.len() + self.dynamic.len()
    }

    pub(crate) fn write(&self) -> NamesWriter<'_> {
        // The writer lock guards no data of its own: a panic elsewhere cannot leave it inconsistent.
        let lock = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        NamesWriter { names: self, guard: Guard::new(), _lock: lock }
    }
}

/// Exclusive write access to the run-time names. Readers go on reading meanwhile, and see each
/// change as soon as it is made.
pub(crate) struct NamesWriter<'a> {
    names: &'a Names,
    guard: Guard,
    _lock: MutexGuard<'a, ()>,
}

impl NamesWriter<'_> {
    /// What `name` points at, fixed or run-time.
    pub(crate) fn get(&self, name: &str) -> Option<&Named> {
        let names = self.names;
        names.fixed.get(names.hash(name), name).or_else(|| names.get_dynamic(name, &self.guard))
    }

    /// Adds the run-time name `name`, which is not there (the caller looked under this writer).
    pub(crate) fn insert(&mut self, name: &str, named: Named) {
        let added = self.names.dynamic.insert_sync(name.into(), named);
        debug_assert!(added.is_ok(), "a run-time name added twice");
        self.changed();
    }

    pub(crate) fn remove(&mut self, name: &str) {
        self.names.dynamic.remove_sync(name);
        self.changed();
    }

    /// Keeps the run-time names for which `keep` is true.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&Named) -> bool) {
        self.names.dynamic.retain_sync(|_, named| keep(named));
        self.changed();
    }

    /// After a change of the run-time names, before the writer lock is let go: no thread finds a
    /// name in its recent lookups any more unless it looks the name up again.
    fn changed(&self) {
        self.names.version.0.fetch_add(1, Ordering::Release);
    }
}
