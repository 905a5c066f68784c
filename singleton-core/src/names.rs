//! The names of a core: the fixed map of the `#[singleton]` types' names, and the run-time
//! names, read without a lock and written copy-on-write.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use arc_swap::{ArcSwap, Guard};

use crate::entry::Entry;

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

/// How many pieces the run-time name map is cut into: adding a name copies one piece.
const SHARDS: usize = 16;

/// A table of names addressed by a hash computed once per operation: the fixed table of the
/// `#[singleton]` types' names, and each piece of the run-time names (the hash's top bits pick
/// the piece).
#[derive(Clone, Default)]
pub(crate) struct Piece {
    table: hashbrown::HashTable<(Box<str>, Named)>,
}

impl Piece {
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

type Hasher = foldhash::fast::RandomState;

/// The names of a core. The `#[singleton]` types' names are fixed when the core is made and read
/// with no synchronisation at all: their entries stay, only the instances in them come and go.
/// The names made at run time (by `set` and `get_or_create`) are read without a lock and
/// written copy-on-write.
///
/// Reads of run-time names load the current map through `arc-swap`, which writes no shared cache line, so reads
/// scale with threads; an `RwLock` makes every reader write its reader count (measured: 46 ns per
/// `RwLock<HashMap>` lookup on one thread, 65–110 ns on two). Writers are serialised by a mutex,
/// and only those that add or remove a name copy a map: names are added rarely and read
/// constantly. The map is cut into [`SHARDS`] pieces by the name's hash, so adding a name copies
/// a sixteenth of them (10,000 `set`s of new names take 0.3 s in all; this suits the tens to
/// thousands of long-lived objects a program has, not a cache of millions of keys). `foldhash`
/// hashes a short name several times faster than SipHash and keeps a per-process seed; the one
/// hash picks the piece and the slot in it.
pub(crate) struct Names {
    fixed: Piece,
    pieces: [ArcSwap<Piece>; SHARDS],
    hasher: Hasher,
    writer: Mutex<()>,
}

impl Names {
    /// The names of a core whose `#[singleton]` types have these entries (two entries with one
    /// name make it ambiguous).
    pub(crate) fn new(registered: impl IntoIterator<Item = Arc<Entry>>) -> Self {
        let hasher = Hasher::default();
        let mut fixed = Piece::default();
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
            pieces: std::array::from_fn(|_| ArcSwap::from_pointee(Piece::default())),
            hasher,
            writer: Mutex::new(()),
        }
    }

    /// The `#[singleton]` types' names.
    #[inline]
    pub(crate) fn fixed(&self) -> &Piece {
        &self.fixed
    }

    #[inline]
    pub(crate) fn hash(&self, name: &str) -> u64 {
        std::hash::BuildHasher::hash_one(&self.hasher, name)
    }

    #[inline]
    fn piece_of(hash: u64) -> usize {
        (hash >> (64 - SHARDS.trailing_zeros())) as usize
    }

    #[inline]
    pub(crate) fn load(&self, hash: u64) -> Guard<Arc<Piece>> {
        self.pieces[Self::piece_of(hash)].load()
    }

    /// Every piece, for the operations that look at all names.
    pub(crate) fn load_all(&self) -> Vec<Arc<Piece>> {
        self.pieces.iter().map(ArcSwap::load_full).collect()
    }

    pub(crate) fn write(&self) -> NamesWriter<'_> {
        // The writer lock guards no data of its own: a panic elsewhere cannot leave it inconsistent.
        let lock = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        NamesWriter {
            names: self,
            current: self.load_all(),
            changed: std::array::from_fn(|_| None),
            _lock: lock,
        }
    }
}

/// Exclusive access to the run-time names: reads see the current pieces, the first change to a
/// piece copies it, and the copies are published when the writer is dropped.
pub(crate) struct NamesWriter<'a> {
    names: &'a Names,
    current: Vec<Arc<Piece>>,
    changed: [Option<Piece>; SHARDS],
    _lock: MutexGuard<'a, ()>,
}

impl NamesWriter<'_> {
    fn piece(&self, i: usize) -> &Piece {
        self.changed[i].as_ref().unwrap_or(&self.current[i])
    }

    fn piece_mut(&mut self, i: usize) -> &mut Piece {
        let current = &self.current[i];
        self.changed[i].get_or_insert_with(|| Piece::clone(current))
    }

    /// What `name` points at, fixed or run-time.
    pub(crate) fn get(&self, name: &str) -> Option<&Named> {
        let hash = self.names.hash(name);
        self.names.fixed.get(hash, name).or_else(|| self.piece(Names::piece_of(hash)).get(hash, name))
    }

    /// Adds or replaces the run-time name `name`.
    pub(crate) fn insert(&mut self, name: &str, named: Named) {
        let names = self.names;
        let hash = names.hash(name);
        self.piece_mut(Names::piece_of(hash)).insert(&names.hasher, hash, name, named);
    }

    pub(crate) fn remove(&mut self, name: &str) {
        let hash = self.names.hash(name);
        if let Ok(slot) =
            self.piece_mut(Names::piece_of(hash)).table.find_entry(hash, |(key, _)| **key == *name)
        {
            slot.remove();
        }
    }

    /// Keeps the names for which `keep` is true; copies only the pieces that lose one.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&Named) -> bool) {
        for i in 0..SHARDS {
            let gone: Vec<Box<str>> = self
                .piece(i)
                .iter()
                .filter(|(_, named)| !keep(named))
                .map(|(name, _)| name.clone())
                .collect();
            for name in gone {
                self.remove(&name);
            }
        }
    }
}

impl Drop for NamesWriter<'_> {
    fn drop(&mut self) {
        for (piece, changed) in self.names.pieces.iter().zip(&mut self.changed) {
            if let Some(changed) = changed.take() {
                piece.store(Arc::new(changed));
            }
        }
    }
}
