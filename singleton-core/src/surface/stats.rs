//! The statistics snapshot, in the seed design's JSON shape.

use crate::lifecycle::entry::Entry;
use crate::registry::names::Named;
use crate::Result;
use crate::SingletonOperation;
use std::collections::BTreeMap;

pub(crate) use crate::units::{millis, unix_seconds};
use std::time::{Duration, SystemTime};

/// What [`memory_note`](Stats::memory_note) says.
pub const MEMORY_NOTE: &str = "Shallow size of each live instance (std::mem::size_of, like \
Python's sys.getsizeof): heap data the instance owns (strings, vectors, maps) is not counted.";

/// A snapshot of a core: what [`SingletonCore::stats`](crate::SingletonCore::stats) returns.
///
/// It serializes to the seed design's JSON keys; `init_durations_ms` is new. The maps are keyed
/// by singleton name and cover exactly the live instances.
///
/// ```
/// use singleton_kit::SingletonCore;
///
/// let core = SingletonCore::new();
/// core.set("config", [0_u8; 64])?;
/// let stats = core.stats()?;
/// assert_eq!(stats.total_singletons, 1);
/// assert_eq!(stats.estimated_memory_bytes, 64);
/// let json = serde_json::to_value(&stats).unwrap();
/// assert_eq!(json["access_counts"]["config"], 0);
/// # Ok::<(), singleton_kit::SingletonError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Stats {
    /// How many instances are live.
    pub total_singletons: usize,
    /// Their names, sorted.
    pub singleton_names: Vec<String>,
    /// Name → type name.
    pub singleton_types: BTreeMap<String, String>,
    /// Name → when it was created or stored, in seconds since the Unix epoch.
    pub creation_times: BTreeMap<String, f64>,
    /// Name → how often the current instance was accessed.
    pub access_counts: BTreeMap<String, u64>,
    /// The sum of the instances' shallow sizes.
    pub estimated_memory_bytes: u64,
    /// The same in KiB, rounded to two decimals.
    pub estimated_memory_kb: f64,
    /// The same in MiB, rounded to two decimals.
    pub estimated_memory_mb: f64,
    /// What the memory estimate counts: [`MEMORY_NOTE`].
    pub memory_note: String,
    /// Operations the rate limit refused since the core was made or last [`reset`](crate::SingletonCore::reset).
    pub rate_limited_count: u64,
    /// When the snapshot was taken, in seconds since the Unix epoch.
    pub timestamp: f64,
    /// Name → how long the factory ran, in milliseconds rounded to the microsecond. A value
    /// stored with `set`, which no factory made, has no entry.
    pub init_durations_ms: BTreeMap<String, f64>,
}

crate::surface::ser::serialize_fields!(Stats {
    "total_singletons" => total_singletons,
    "singleton_names" => singleton_names,
    "singleton_types" => singleton_types,
    "creation_times" => creation_times,
    "access_counts" => access_counts,
    "estimated_memory_bytes" => estimated_memory_bytes,
    "estimated_memory_kb" => estimated_memory_kb,
    "estimated_memory_mb" => estimated_memory_mb,
    "memory_note" => memory_note,
    "rate_limited_count" => rate_limited_count,
    "timestamp" => timestamp,
    "init_durations_ms" => init_durations_ms,
});

crate::surface::ser::deserialize_fields!(Stats, "the statistics of a singleton core" {
    total_singletons,
    singleton_names,
    singleton_types,
    creation_times,
    access_counts,
    estimated_memory_bytes,
    estimated_memory_kb,
    estimated_memory_mb,
    memory_note,
    rate_limited_count,
    timestamp,
    init_durations_ms,
});

/// One live instance, as the core hands it to [`Stats::build`].
#[derive(Debug)]
pub(crate) struct Row {
    pub(crate) name: String,
    pub(crate) type_name: &'static str,
    pub(crate) created_at: SystemTime,
    pub(crate) accesses: u64,
    pub(crate) size: usize,
    pub(crate) init_duration: Option<Duration>,
}

impl Stats {
    pub(crate) fn build(mut rows: Vec<Row>, rate_limited_count: u64) -> Self {
        // Sorted once: each map is then bulk-built from sorted pairs, and the names move into the
        // list last, so each name is copied once per map the seed's shape has, and no more.
        crate::order::sort_by_name(&mut rows, |r| &r.name);
        let estimated_memory_bytes: u64 = rows.iter().map(|r| r.size as u64).sum();
        let bytes = estimated_memory_bytes as f64;
        Stats {
            total_singletons: rows.len(),
            singleton_types: rows.iter().map(|r| (r.name.clone(), r.type_name.to_owned())).collect(),
            creation_times: rows.iter().map(|r| (r.name.clone(), unix_seconds(r.created_at))).collect(),
            access_counts: rows.iter().map(|r| (r.name.clone(), r.accesses)).collect(),
            init_durations_ms: rows
                .iter()
                .filter_map(|r| Some((r.name.clone(), millis(r.init_duration?))))
                .collect(),
            singleton_names: rows.into_iter().map(|r| r.name).collect(),
            estimated_memory_bytes,
            estimated_memory_kb: round2(bytes / 1024.0),
            estimated_memory_mb: round2(bytes / (1024.0 * 1024.0)),
            memory_note: MEMORY_NOTE.to_owned(),
            rate_limited_count,
            timestamp: unix_seconds(SystemTime::now()),
        }
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

impl crate::SingletonCore {
    /// GET_STATS: a snapshot of every live instance, in the seed design's shape.
    ///
    /// ```
    /// use singleton_kit::SingletonCore;
    ///
    /// let core = SingletonCore::new();
    /// core.set("flags", [true; 4])?;
    /// let _ = core.get::<[bool; 4]>("flags")?;
    /// let stats = core.stats()?;
    /// assert_eq!(stats.singleton_names, ["flags"]);
    /// assert_eq!(stats.access_counts["flags"], 1);
    /// assert_eq!(stats.estimated_memory_bytes, 4);
    /// # Ok::<(), singleton_kit::SingletonError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// `RateLimited`.
    pub fn stats(&self) -> Result<Stats> {
        let op = SingletonOperation::GetStats;
        self.gate(op, None).map_err(|denied| denied.into_error(op, None))?;
        let mut rows = Vec::new();
        let mut add = |name: &str, named: &Named| match named {
            Named::One(entry) => rows.extend(row(name, entry)),
            Named::Ambiguous(all) => {
                // One name, several types: each row is told apart by its type.
                for entry in all {
                    let label = format!("{name} ({})", entry.registration.map_or("?", |r| (r.type_name)()));
                    rows.extend(row(&label, entry));
                }
            }
        };
        for (name, named) in self.names.fixed().iter() {
            add(name, named);
        }
        self.names.for_each_dynamic(&mut add);
        Ok(Stats::build(rows, self.limiter.refused()))
    }

    /// The live entries made at run time (`set`, `get_or_create`), with their dependencies.
    pub(crate) fn runtime_entries(&self) -> Vec<(Row, Vec<String>)> {
        let mut rows = Vec::new();
        self.for_each_entry(|name, entry| {
            if entry.registration.is_none() {
                if let Some(r) = row(name, entry) {
                    rows.push((r, entry.dependencies()));
                }
            }
        });
        crate::order::sort_by_name(&mut rows, |r| &r.0.name);
        rows
    }
}

/// The stats row of `entry`'s live instance, if it has one.
pub(crate) fn row(name: &str, entry: &Entry) -> Option<Row> {
    let live = entry.slot.get(false)?;
    let meta = live.meta();
    Some(Row {
        name: name.to_owned(),
        type_name: meta.type_name,
        created_at: meta.created_at,
        accesses: live.accesses(),
        size: meta.size,
        init_duration: meta.init_duration,
    })
}
