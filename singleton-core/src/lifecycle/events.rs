//! What the lifecycle reports to the [`metrics`](https://docs.rs/metrics/0.24) facade as it
//! happens, and the bounded `singleton` labels (the export of the snapshot metrics is the
//! `metrics` module's). Metrics for a fleet: behind the
//! cargo feature `metrics`, off by default, so the default dependency tree does not grow. With
//! the feature off, the hooks below are empty inline functions and the per-core label set is a
//! zero-sized type.
//!
//! | metric | kind | labels | when |
//! |---|---|---|---|
//! | `singleton_creations_total` | counter | `singleton`, `outcome` = `ok`/`error`/`panic` | each creation attempt (a factory run) |
//! | `singleton_init_seconds` | histogram | `singleton` | each successful factory run |
//! | `singleton_rate_limited_total` | counter | `operation` | each refusal by the rate limit |
//! | `singleton_accesses_total` | counter (absolute) | `singleton` | `export_metrics()`: every access to that name since the core was made, its deleted and replaced instances included, so it never decreases |
//! | `singleton_live` | gauge | – | `export_metrics()` |
//!
//! Each is described with its unit before it is first emitted, and again by every
//! `export_metrics()`, so a recorder installed later still learns them.
//!
//! **Labels are bounded.** A `#[singleton]` type's label is its name (the binary has a fixed set
//! of them). A name made at run time (`set`, `get_or_create`) gets its own label only while fewer
//! than [`RUN_TIME_LABELS`] run-time names of the core have one; later names are counted under
//! `singleton="(other)"`. A name keeps the label it was first given, so its series stays stable
//! across `delete` and `set`.
//!
//! **The hot path never touches the recorder**: `T::instance()` of a created singleton emits
//! nothing; the hooks run on a creation and on a refusal only, and the access counts are read by
//! `export_metrics()`.

use std::time::Duration;

/// How many run-time names of one core get a `singleton` label of their own; the rest share
/// `"(other)"`.
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) const RUN_TIME_LABELS: usize = 100;

/// The label value shared by the run-time names past [`RUN_TIME_LABELS`].
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) const OTHER: &str = "(other)";

/// How a creation attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The factory returned an instance.
    Ok,
    /// The factory returned an error, or the creation found a cycle.
    Error,
    /// The factory panicked.
    Panic,
}

impl Outcome {
    /// The outcome of a factory run caught with `catch_unwind`; `cycle` when an unwind out of it
    /// reports a cycle (which the caller sees as an error, not a panic).
    #[inline]
    pub(crate) fn of<T, E, P>(run: &Result<Result<T, E>, P>, cycle: bool) -> Self {
        match run {
            Ok(Ok(_)) => Self::Ok,
            Ok(Err(_)) => Self::Error,
            Err(_) if cycle => Self::Error,
            Err(_) => Self::Panic,
        }
    }

    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Panic => "panic",
        }
    }
}

/// An entry's `singleton` label value.
#[cfg(feature = "metrics")]
pub(crate) type Label = metrics::SharedString;

/// An entry's `singleton` label value: nothing, with the feature off.
#[cfg(not(feature = "metrics"))]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Label;

/// The label of a `#[singleton]` type's entry (`Some(name)`), or the provisional label of a
/// run-time entry (`None`) until its core gives it one.
#[inline]
pub(crate) fn initial_label(registered: Option<&'static str>) -> Label {
    #[cfg(feature = "metrics")]
    {
        Label::const_str(registered.unwrap_or(OTHER))
    }
    #[cfg(not(feature = "metrics"))]
    {
        let _ = registered;
        Label
    }
}

/// One creation attempt ended: counted by outcome, and timed when it succeeded.
#[inline]
pub(crate) fn creation(label: &Label, outcome: Outcome, took: Duration) {
    #[cfg(feature = "metrics")]
    {
        describe_once();
        let label = label.clone();
        metrics::counter!("singleton_creations_total", "singleton" => label.clone(), "outcome" => outcome.as_str())
            .increment(1);
        if outcome == Outcome::Ok {
            metrics::histogram!("singleton_init_seconds", "singleton" => label).record(took.as_secs_f64());
        }
    }
    #[cfg(not(feature = "metrics"))]
    {
        let _ = (label, outcome, took);
    }
}

/// The rate limit refused `operation`.
#[inline]
pub(crate) fn refused(operation: crate::SingletonOperation) {
    #[cfg(feature = "metrics")]
    {
        describe_once();
        // A key made of static parts, one per operation: a refusal allocates nothing, recorder or
        // not (the `counter!` macro would build its label list on the heap each time).
        static LABELS: [[metrics::Label; 1]; 11] = {
            use crate::SingletonOperation as Op;
            const fn label(op: Op) -> [metrics::Label; 1] {
                [metrics::Label::from_static_parts("operation", Op::NAMES[op as usize])]
            }
            [
                label(Op::Get),
                label(Op::Set),
                label(Op::Has),
                label(Op::Delete),
                label(Op::Clear),
                label(Op::GetStats),
                label(Op::Reset),
                label(Op::ResetAll),
                label(Op::Exists),
                label(Op::List),
                label(Op::Health),
            ]
        };
        static METADATA: metrics::Metadata<'static> =
            metrics::Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));
        let key =
            metrics::Key::from_static_parts("singleton_rate_limited_total", &LABELS[operation as usize]);
        metrics::with_recorder(|recorder| recorder.register_counter(&key, &METADATA).increment(1));
    }
    #[cfg(not(feature = "metrics"))]
    {
        let _ = operation;
    }
}

/// The run-time names of one core that have a label of their own (at most [`RUN_TIME_LABELS`]).
#[derive(Debug, Default)]
pub(crate) struct CoreLabels {
    #[cfg(feature = "metrics")]
    own: std::sync::Mutex<Own>,
}

#[cfg(feature = "metrics")]
mod describing {
    use std::sync::Once;

    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};

    /// Describes the five metrics, with their units, to the recorder in force.
    pub(crate) fn describe() {
        describe_counter!(
            "singleton_creations_total",
            Unit::Count,
            "Creation attempts of a singleton (factory runs), by outcome: ok, error or panic"
        );
        describe_histogram!(
            "singleton_init_seconds",
            Unit::Seconds,
            "How long a singleton's factory ran, per successful creation"
        );
        describe_counter!(
            "singleton_rate_limited_total",
            Unit::Count,
            "Name-keyed operations refused by the rate limit, by operation"
        );
        describe_counter!(
            "singleton_accesses_total",
            Unit::Count,
            "Accesses to each singleton since the process started (its deleted and replaced instances included), as of the last export_metrics()"
        );
        describe_gauge!(
            "singleton_live",
            Unit::Count,
            "Live singleton instances, as of the last export_metrics()"
        );
    }

    static DESCRIBED: Once = Once::new();

    /// Describes the metrics once per process, before the first emission.
    #[inline]
    pub(crate) fn describe_once() {
        DESCRIBED.call_once(describe);
    }
}

#[cfg(feature = "metrics")]
pub(crate) use describing::{describe, describe_once};

#[cfg(feature = "metrics")]
#[derive(Debug, Default)]
struct Own {
    names: std::collections::HashSet<std::sync::Arc<str>>,
    /// Whether a name was ever counted under `"(other)"`.
    other: bool,
    /// Per label, the accesses of the instances the core let go of (deleted, replaced,
    /// cleared): exported with the live instance's, so that the counter never goes down.
    released: std::collections::HashMap<Label, u64>,
}

impl CoreLabels {
    /// The label of the run-time name `name`: its own while there is room, else `"(other)"`. A
    /// run-time name that is itself `"(other)"` is counted in that series from the start, so
    /// that no series of a single name can be taken for the overflow.
    #[inline]
    pub(crate) fn label(&self, name: &str) -> Label {
        #[cfg(feature = "metrics")]
        {
            let mut own = self.own.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(known) = own.names.get(name) {
                return Label::from(std::sync::Arc::clone(known));
            }
            if own.names.len() < RUN_TIME_LABELS && name != OTHER {
                let name: std::sync::Arc<str> = name.into();
                own.names.insert(std::sync::Arc::clone(&name));
                return Label::from(name);
            }
            own.other = true;
            Label::const_str(OTHER)
        }
        #[cfg(not(feature = "metrics"))]
        {
            let _ = name;
            Label
        }
    }

    /// Every label given out, with the accesses of the instances let go of under it: where an
    /// export of `singleton_accesses_total` starts.
    #[cfg(feature = "metrics")]
    pub(crate) fn totals(&self) -> std::collections::HashMap<Label, u64> {
        let own = self.own.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut totals: std::collections::HashMap<Label, u64> =
            own.names.iter().map(|name| (Label::from(std::sync::Arc::clone(name)), 0)).collect();
        if own.other {
            totals.insert(Label::const_str(OTHER), 0);
        }
        for (label, released) in &own.released {
            *totals.entry(label.clone()).or_default() += released;
        }
        totals
    }

    /// The core let go of an instance labelled `label`; `accesses` reads how often it was
    /// accessed (only with the feature on).
    #[inline]
    pub(crate) fn released(&self, label: &Label, accesses: impl FnOnce() -> u64) {
        #[cfg(feature = "metrics")]
        {
            let accesses = accesses();
            let mut own = self.own.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            *own.released.entry(label.clone()).or_default() += accesses;
        }
        #[cfg(not(feature = "metrics"))]
        {
            let _ = (label, accesses);
        }
    }
}
