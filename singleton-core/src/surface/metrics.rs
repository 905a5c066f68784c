//! The snapshot metrics of a core, published on demand: `export_metrics()` (feature `metrics`).
//! What is recorded as it happens (creations, refusals) and the labels live in the lifecycle's
//! `events` module; this surface only reads a core and reports.

#[cfg(feature = "metrics")]
mod export {
    use std::collections::HashMap;

    use crate::lifecycle::events::{describe, Label};
    use crate::SingletonCore;

    /// Publishes the snapshot metrics of `core`.
    pub(crate) fn snapshot(core: &SingletonCore) {
        describe();
        // Every series ever given out is refreshed: to the accesses of the instances let go of
        // under it, plus (below) its live instance's.
        let mut accesses: HashMap<Label, u64> = core.metric_labels().totals();
        let mut live = 0_u64;
        core.for_each_entry(|_, entry| {
            let count = entry.slot.get(false).map(|instance| instance.accesses());
            live += u64::from(count.is_some());
            if count.is_some() || entry.registration.is_some() {
                *accesses.entry(entry.metric_label.clone()).or_default() += count.unwrap_or(0);
            }
        });
        for (label, count) in accesses {
            metrics::counter!("singleton_accesses_total", "singleton" => label).absolute(count);
        }
        metrics::gauge!("singleton_live").set(live as f64);
    }
}

#[cfg(feature = "metrics")]
impl crate::SingletonCore {
    /// Publishes this core's snapshot metrics through the `metrics` facade (feature `metrics`):
    /// `singleton_accesses_total{singleton}` as an absolute counter (every access to that name
    /// since the core was made: its live instance's and those of the instances it let go of by
    /// `delete`, `set`, `clear` or `shutdown`, so it never goes down; a name that is gone keeps
    /// its total) and the gauge `singleton_live`. It describes all five metrics first. Call it
    /// on a timer, or at the end of each Lambda invocation.
    ///
    /// The creation and refusal metrics need no call: they are emitted as they happen.
    ///
    /// ```
    /// use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    /// use singleton_kit::SingletonCore;
    ///
    /// let core = SingletonCore::new();
    /// core.set("pool", vec![1_u8, 2])?;
    /// let _ = core.get::<Vec<u8>>("pool")?;
    ///
    /// let recorder = DebuggingRecorder::new();
    /// let snapshotter = recorder.snapshotter();
    /// metrics::with_local_recorder(&recorder, || core.export_metrics());
    ///
    /// let snapshot = snapshotter.snapshot().into_vec();
    /// let live = snapshot.iter().find(|(key, ..)| key.key().name() == "singleton_live").unwrap();
    /// assert_eq!(live.3, DebugValue::Gauge(1.0.into()));
    /// let pool = snapshot.iter().find(|(key, ..)| {
    ///     key.key().name() == "singleton_accesses_total"
    ///         && key.key().labels().any(|l| l.key() == "singleton" && l.value() == "pool")
    /// });
    /// assert_eq!(pool.unwrap().3, DebugValue::Counter(1));
    /// # Ok::<(), singleton_kit::SingletonError>(())
    /// ```
    pub fn export_metrics(&self) {
        export::snapshot(self);
    }
}

/// Publishes the global core's snapshot metrics ([`SingletonCore::export_metrics`](crate::SingletonCore::export_metrics) of
/// [`manager()`](crate::manager)): feature `metrics`.
///
/// ```
/// use metrics_util::debugging::{DebugValue, DebuggingRecorder};
/// use singleton_kit::singleton;
///
/// #[singleton(name = "doc_export_metrics")]
/// #[derive(Default)]
/// struct Cache;
///
/// let _ = Cache::instance();
/// let recorder = DebuggingRecorder::new();
/// let snapshotter = recorder.snapshotter();
/// metrics::with_local_recorder(&recorder, singleton_kit::export_metrics);
///
/// let snapshot = snapshotter.snapshot().into_vec();
/// let cache = snapshot.iter().find(|(key, ..)| {
///     key.key().name() == "singleton_accesses_total"
///         && key.key().labels().any(|l| l.value() == "doc_export_metrics")
/// });
/// assert_eq!(cache.unwrap().3, DebugValue::Counter(1));
/// ```
#[cfg(feature = "metrics")]
pub fn export_metrics() {
    crate::manager().export_metrics();
}

#[cfg(all(test, feature = "metrics"))]
mod tests {
    use std::sync::{Arc, Mutex};

    use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};

    use crate::{RateLimit, SingletonCore};

    /// Logs the names it is told about, in order: `describe:<name>` and `emit:<name>`.
    #[derive(Clone, Default)]
    struct Log(Arc<Mutex<Vec<String>>>);

    impl Log {
        fn push(&self, what: &str, name: &str) {
            self.0.lock().unwrap().push(format!("{what}:{name}"));
        }
    }

    impl Recorder for Log {
        fn describe_counter(&self, key: KeyName, _: Option<Unit>, _: SharedString) {
            self.push("describe", key.as_str());
        }
        fn describe_gauge(&self, key: KeyName, _: Option<Unit>, _: SharedString) {
            self.push("describe", key.as_str());
        }
        fn describe_histogram(&self, key: KeyName, _: Option<Unit>, _: SharedString) {
            self.push("describe", key.as_str());
        }
        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            self.push("emit", key.name());
            Counter::noop()
        }
        fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
            self.push("emit", key.name());
            Gauge::noop()
        }
        fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
            self.push("emit", key.name());
            Histogram::noop()
        }
    }

    /// The only test of this crate's unit tests that emits metrics, so that its first emission
    /// is the process's first.
    #[test]
    fn the_first_emission_of_the_process_is_preceded_by_every_description() {
        let log = Log::default();
        let core = SingletonCore::with_rate_limit(RateLimit::per_second(0));
        metrics::with_local_recorder(&log, || {
            assert!(!core.has("x")); // refused: the first emission
            assert!(!core.has("x")); // described once only
        });
        let calls = log.0.lock().unwrap().clone();
        assert_eq!(
            calls,
            [
                "describe:singleton_creations_total",
                "describe:singleton_init_seconds",
                "describe:singleton_rate_limited_total",
                "describe:singleton_accesses_total",
                "describe:singleton_live",
                "emit:singleton_rate_limited_total",
                "emit:singleton_rate_limited_total",
            ]
        );
    }
}
