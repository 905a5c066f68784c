//! Metrics for a fleet, through the `metrics` facade (feature `metrics`): the five metrics with
//! their names, kinds, labels, descriptions and units, the bounded labels, and a hot path that
//! never touches the recorder.
//!
//! Each test installs its recorder for its own thread only (`metrics::with_local_recorder`), so
//! tests running at once do not see each other's metrics: `metrics-util`'s `DebuggingRecorder`
//! for values, and [`Log`], below, to see every call a recorder receives.

#![cfg(feature = "metrics")]

use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use singleton_kit::{singleton, ManualClock, RateLimit, SingletonCore};

// ---------------------------------------------------------------------------------------------
// Singletons and helpers
// ---------------------------------------------------------------------------------------------

#[singleton(name = "metrics_made", factory = || MetricsMade(1))]
#[derive(Debug)]
pub struct MetricsMade(u32);

#[singleton(name = "metrics_fails", try_factory = MetricsFails::load)]
#[derive(Debug)]
pub struct MetricsFails;

impl MetricsFails {
    fn load() -> Result<Self, std::io::Error> {
        Err(std::io::Error::other("no config"))
    }
}

#[singleton(name = "metrics_warm")]
#[derive(Debug, Default)]
pub struct MetricsWarm(u64);

#[singleton(name = "metrics_global")]
#[derive(Debug, Default)]
pub struct MetricsGlobal;

#[singleton(name = "metrics_never_made")]
#[derive(Debug, Default)]
pub struct MetricsNeverMade;

fn unlimited() -> SingletonCore {
    SingletonCore::with_clock(RateLimit::unlimited(), ManualClock::new())
}

/// Runs `f` with a fresh `DebuggingRecorder` as this thread's recorder; returns what it recorded.
fn recorded(f: impl FnOnce()) -> Recorded {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, f);
    Recorded::of(&snapshotter)
}

/// One series as the recorder saw it.
struct Series {
    name: String,
    /// Sorted by key.
    labels: Vec<(String, String)>,
    unit: Option<Unit>,
    description: Option<SharedString>,
    value: DebugValue,
}

/// Every series a `DebuggingRecorder` recorded.
struct Recorded(Vec<Series>);

impl Recorded {
    fn of(snapshotter: &Snapshotter) -> Self {
        Self(
            snapshotter
                .snapshot()
                .into_vec()
                .into_iter()
                .map(|(key, unit, description, value)| {
                    let mut labels: Vec<(String, String)> =
                        key.key().labels().map(|l| (l.key().to_owned(), l.value().to_owned())).collect();
                    labels.sort();
                    Series { name: key.key().name().to_owned(), labels, unit, description, value }
                })
                .collect(),
        )
    }

    /// The value of the series `name{labels}`, if it was emitted.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<&DebugValue> {
        let mut want: Vec<(String, String)> =
            labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        want.sort();
        self.0.iter().find(|s| s.name == name && s.labels == want).map(|s| &s.value)
    }

    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> Option<u64> {
        match self.get(name, labels)? {
            DebugValue::Counter(n) => Some(*n),
            other => panic!("{name} is not a counter: {other:?}"),
        }
    }

    /// Every series of `name`, as (labels, value).
    fn series(&self, name: &str) -> Vec<(&[(String, String)], &DebugValue)> {
        self.0.iter().filter(|s| s.name == name).map(|s| (s.labels.as_slice(), &s.value)).collect()
    }
}

/// A recorder that logs every call it receives.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<Call>>>);

#[derive(Clone, Debug, PartialEq)]
enum Call {
    Describe(&'static str, String, Option<Unit>, String),
    Register(&'static str, String),
}

impl Log {
    fn calls(&self) -> Vec<Call> {
        self.0.lock().unwrap().clone()
    }

    fn push(&self, call: Call) {
        self.0.lock().unwrap().push(call);
    }
}

impl Recorder for Log {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.push(Call::Describe("counter", key.as_str().to_owned(), unit, description.to_string()));
    }
    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.push(Call::Describe("gauge", key.as_str().to_owned(), unit, description.to_string()));
    }
    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.push(Call::Describe("histogram", key.as_str().to_owned(), unit, description.to_string()));
    }
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        self.push(Call::Register("counter", key.name().to_owned()));
        Counter::noop()
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        self.push(Call::Register("gauge", key.name().to_owned()));
        Gauge::noop()
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        self.push(Call::Register("histogram", key.name().to_owned()));
        Histogram::noop()
    }
}

// ---------------------------------------------------------------------------------------------
// Creations
// ---------------------------------------------------------------------------------------------

#[test]
fn a_successful_creation_is_counted_ok_and_timed() {
    let core = unlimited();
    let r = recorded(|| {
        core.get_or_create("m-made", || {
            std::thread::sleep(std::time::Duration::from_millis(2));
            7_u32
        })
        .unwrap();
        // Already made: no second attempt.
        core.get_or_create("m-made", || 8_u32).unwrap();
        // A `#[singleton]` type, created by name and then reached typed.
        assert_eq!(core.get::<MetricsMade>("metrics_made").unwrap().unwrap().0, 1);
    });
    assert_eq!(
        r.counter("singleton_creations_total", &[("singleton", "m-made"), ("outcome", "ok")]),
        Some(1)
    );
    assert_eq!(
        r.counter("singleton_creations_total", &[("singleton", "metrics_made"), ("outcome", "ok")]),
        Some(1)
    );
    let Some(DebugValue::Histogram(seconds)) = r.get("singleton_init_seconds", &[("singleton", "m-made")])
    else {
        panic!("no histogram for m-made")
    };
    assert_eq!(seconds.len(), 1, "one successful factory run");
    assert!(seconds[0].0 >= 0.002 && seconds[0].0 < 5.0, "in seconds: {seconds:?}");
    assert!(r
        .counter("singleton_creations_total", &[("singleton", "m-made"), ("outcome", "error")])
        .is_none());
}

#[test]
fn failing_and_panicking_factories_are_counted_by_outcome_and_not_timed() {
    let core = unlimited();
    let r = recorded(|| {
        for _ in 0..2 {
            let err = core.get_or_try_create::<u32, _, _>("m-fails", || "x".parse::<u32>());
            assert!(err.is_err());
        }
        let panicked = panic::catch_unwind(AssertUnwindSafe(|| {
            core.get_or_create::<u32, _>("m-panics", || panic!("the factory gave up"))
        }));
        assert!(panicked.is_err());
        assert!(core.get::<MetricsFails>("metrics_fails").is_err());
    });
    assert_eq!(
        r.counter("singleton_creations_total", &[("singleton", "m-fails"), ("outcome", "error")]),
        Some(2)
    );
    assert_eq!(
        r.counter("singleton_creations_total", &[("singleton", "m-panics"), ("outcome", "panic")]),
        Some(1)
    );
    assert_eq!(
        r.counter("singleton_creations_total", &[("singleton", "metrics_fails"), ("outcome", "error")]),
        Some(1)
    );
    assert!(r.series("singleton_init_seconds").is_empty(), "no successful run, nothing timed");
    assert!(r.counter("singleton_creations_total", &[("singleton", "m-fails"), ("outcome", "ok")]).is_none());
}

// ---------------------------------------------------------------------------------------------
// Refusals
// ---------------------------------------------------------------------------------------------

#[test]
fn each_refusal_is_counted_by_operation() {
    let core = SingletonCore::with_clock(RateLimit::per_second(0), ManualClock::new());
    let r = recorded(|| {
        assert!(core.set("x", 1_u8).is_err());
        assert!(core.set("x", 1_u8).is_err());
        assert!(!core.has("x"));
        assert!(!core.exists("x"));
        assert!(!core.delete("x"));
        assert_eq!(core.clear(), 0);
        assert_eq!(core.reset_all(), 0);
        assert!(core.stats().is_err());
        assert!(!core.reset());
        assert!(core.get::<u8>("x").is_err());
        // Not refusals: an invalid name is refused before the limiter.
        assert!(core.set("", 1_u8).is_err());
        // And through JSON, counted the same way.
        assert!(core.execute_json(r#"{"operation": "get", "name": "x"}"#).contains("rate_limited"));
    });
    for (op, n) in [
        ("set", 2),
        ("has", 1),
        ("exists", 1),
        ("delete", 1),
        ("clear", 1),
        ("reset_all", 1),
        ("get_stats", 1),
        ("reset", 1),
        ("get", 2),
    ] {
        assert_eq!(r.counter("singleton_rate_limited_total", &[("operation", op)]), Some(n), "{op}");
    }
    assert_eq!(r.series("singleton_rate_limited_total").len(), 9);
}

// ---------------------------------------------------------------------------------------------
// export_metrics
// ---------------------------------------------------------------------------------------------

#[test]
fn export_metrics_gives_absolute_access_counts_and_the_live_gauge() {
    let core = unlimited();
    core.set("a", 1_u8).unwrap();
    core.set("b", 2_u8).unwrap();
    for _ in 0..3 {
        core.get::<u8>("a").unwrap();
    }
    core.get::<MetricsMade>("metrics_made").unwrap();

    let r = recorded(|| {
        core.export_metrics();
        core.export_metrics(); // absolute: a second export does not add
    });
    assert_eq!(r.counter("singleton_accesses_total", &[("singleton", "a")]), Some(3));
    assert_eq!(r.counter("singleton_accesses_total", &[("singleton", "b")]), Some(0));
    assert_eq!(r.counter("singleton_accesses_total", &[("singleton", "metrics_made")]), Some(1));
    // Every `#[singleton]` type has its series, 0 when it has no instance in this core.
    assert_eq!(r.counter("singleton_accesses_total", &[("singleton", "metrics_never_made")]), Some(0));
    assert_eq!(r.get("singleton_live", &[]), Some(&DebugValue::Gauge(3.0.into())));

    // After a delete the series keeps its total (a counter never goes down) and the gauge goes
    // down.
    assert!(core.delete("a"));
    core.get::<u8>("b").unwrap();
    let r = recorded(|| core.export_metrics());
    assert_eq!(r.counter("singleton_accesses_total", &[("singleton", "a")]), Some(3));
    assert_eq!(r.counter("singleton_accesses_total", &[("singleton", "b")]), Some(1));
    assert_eq!(r.get("singleton_live", &[]), Some(&DebugValue::Gauge(2.0.into())));
}

#[test]
fn the_global_export_metrics_reports_the_global_core() {
    let _ = MetricsGlobal::instance();
    let _ = MetricsGlobal::instance();
    let r = recorded(singleton_kit::export_metrics);
    assert_eq!(r.counter("singleton_accesses_total", &[("singleton", "metrics_global")]), Some(2));
    assert!(matches!(r.get("singleton_live", &[]), Some(DebugValue::Gauge(n)) if n.0 >= 1.0));
}

#[test]
fn every_metric_is_described_with_its_unit_by_export_metrics() {
    let log = Log::default();
    metrics::with_local_recorder(&log, || unlimited().export_metrics());
    let calls = log.calls();
    let described: Vec<(&str, &str, Option<Unit>)> = calls
        .iter()
        .filter_map(|c| match c {
            Call::Describe(kind, name, unit, description) => {
                assert!(description.len() > 10, "{name} has a description: {description:?}");
                Some((*kind, name.as_str(), *unit))
            }
            Call::Register(..) => None,
        })
        .collect();
    assert_eq!(
        described,
        [
            ("counter", "singleton_creations_total", Some(Unit::Count)),
            ("histogram", "singleton_init_seconds", Some(Unit::Seconds)),
            ("counter", "singleton_rate_limited_total", Some(Unit::Count)),
            ("counter", "singleton_accesses_total", Some(Unit::Count)),
            ("gauge", "singleton_live", Some(Unit::Count)),
        ]
    );
    // Described before anything is emitted.
    let first_register = calls.iter().position(|c| matches!(c, Call::Register(..))).expect("emitted");
    assert!(calls[..first_register].len() == 5, "{calls:?}");

    // A recorder that learned them sees the units with the values.
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || unlimited().export_metrics());
    let r = Recorded::of(&snapshotter);
    let live = r.0.iter().find(|s| s.name == "singleton_live").expect("the gauge");
    assert_eq!(live.unit, Some(Unit::Count));
    assert!(live.description.is_some());
}

#[test]
fn run_time_names_past_100_are_summed_under_other() {
    let core = unlimited();
    for i in 0..150 {
        core.set(&format!("n{i:03}"), i).unwrap();
        core.get::<i32>(&format!("n{i:03}")).unwrap();
    }
    // Two more accesses for one of the names past the bound.
    core.get::<i32>("n120").unwrap();
    core.get::<i32>("n149").unwrap();
    let r = recorded(|| {
        core.export_metrics();
        // A creation under a name past the bound is labelled `(other)` too.
        core.get_or_create("m-late", || 1_u8).unwrap();
        // A `#[singleton]` type keeps its own label however many run-time names there are.
        core.get::<MetricsMade>("metrics_made").unwrap();
    });
    let accesses = r.series("singleton_accesses_total");
    let own: Vec<_> = accesses.iter().filter(|(labels, _)| labels[0].1.starts_with('n')).collect();
    assert_eq!(own.len(), 100, "the first 100 run-time names have their own series");
    assert_eq!(r.counter("singleton_accesses_total", &[("singleton", "n000")]), Some(1));
    assert_eq!(r.counter("singleton_accesses_total", &[("singleton", "n099")]), Some(1));
    assert_eq!(r.counter("singleton_accesses_total", &[("singleton", "n100")]), None);
    assert_eq!(
        r.counter("singleton_accesses_total", &[("singleton", "(other)")]),
        Some(52),
        "50 names, 52 accesses"
    );
    assert_eq!(
        r.counter("singleton_creations_total", &[("singleton", "(other)"), ("outcome", "ok")]),
        Some(1),
        "m-late is past the bound"
    );
    assert_eq!(
        r.counter("singleton_creations_total", &[("singleton", "metrics_made"), ("outcome", "ok")]),
        Some(1)
    );

    // The bound is per core: a fresh core labels its own first 100.
    let fresh = unlimited();
    fresh.set("n149", 1_u8).unwrap();
    let r = recorded(|| fresh.export_metrics());
    assert_eq!(r.counter("singleton_accesses_total", &[("singleton", "n149")]), Some(0));
    assert_eq!(r.counter("singleton_accesses_total", &[("singleton", "(other)")]), None);

    // A labelled name keeps its label, and its total, after it is deleted and stored again.
    assert!(core.delete("n005"));
    core.set("n005", 5_i32).unwrap();
    core.get::<i32>("n005").unwrap();
    let r = recorded(|| core.export_metrics());
    assert_eq!(r.counter("singleton_accesses_total", &[("singleton", "n005")]), Some(2));
}

// ---------------------------------------------------------------------------------------------
// The hot path
// ---------------------------------------------------------------------------------------------

#[test]
fn warm_instance_calls_never_touch_the_recorder() {
    let _ = MetricsWarm::instance(); // created before the recorder is in place
    let log = Log::default();
    let sum =
        metrics::with_local_recorder(&log, || (0..1000).map(|_| MetricsWarm::instance().0).sum::<u64>());
    assert_eq!(sum, 0);
    assert_eq!(log.calls(), [], "1,000 warm instance() calls emitted nothing");
    // The same recorder does see a creation, so the check above could have failed.
    metrics::with_local_recorder(&log, || unlimited().get_or_create("m-hot", || 1_u8).unwrap());
    assert!(log.calls().contains(&Call::Register("counter", "singleton_creations_total".into())));
}

#[singleton(name = "metrics_async_ok", factory = MetricsAsyncOk::connect, async)]
#[derive(Debug)]
pub struct MetricsAsyncOk;

impl MetricsAsyncOk {
    async fn connect() -> Self {
        MetricsAsyncOk
    }
}

#[singleton(name = "metrics_async_fails", try_factory = MetricsAsyncFails::connect, async)]
#[derive(Debug)]
pub struct MetricsAsyncFails;

impl MetricsAsyncFails {
    async fn connect() -> Result<Self, std::io::Error> {
        Err(std::io::Error::other("unreachable endpoint"))
    }
}

#[test]
fn async_creations_are_counted_by_outcome_too() {
    let recorded = recorded(|| {
        futures::executor::block_on(async {
            let _ = MetricsAsyncOk::instance().await;
            assert!(MetricsAsyncFails::try_instance().await.is_err());
        });
    });
    assert_eq!(
        recorded
            .counter("singleton_creations_total", &[("outcome", "ok"), ("singleton", "metrics_async_ok")]),
        Some(1)
    );
    assert_eq!(
        recorded.counter(
            "singleton_creations_total",
            &[("outcome", "error"), ("singleton", "metrics_async_fails")]
        ),
        Some(1)
    );
    let timed = recorded.series("singleton_init_seconds");
    assert!(timed.iter().any(|(labels, _)| labels.iter().any(|(_, v)| v == "metrics_async_ok")));
    assert!(!timed.iter().any(|(labels, _)| labels.iter().any(|(_, v)| v == "metrics_async_fails")));
}

#[test]
fn a_run_time_name_that_is_itself_other_takes_no_series_of_its_own() {
    let core = unlimited();
    core.set("(other)", 1_u8).unwrap();
    core.get::<u8>("(other)").unwrap();
    for i in 0..100 {
        core.set(&format!("own{i:03}"), i).unwrap();
    }
    let r = recorded(|| core.export_metrics());
    // The 100 own series all went to other names: the name `(other)` took none of them.
    let own =
        r.series("singleton_accesses_total").into_iter().filter(|(l, _)| l[0].1.starts_with("own")).count();
    assert_eq!(own, 100);
    assert_eq!(r.counter("singleton_accesses_total", &[("singleton", "(other)")]), Some(1));
}

// ---------------------------------------------------------------------------------------------
// A counter that never goes down
// ---------------------------------------------------------------------------------------------

/// Every export of `singleton_accesses_total` of every label, after gets, `delete`, a
/// re-creation, `set`, `clear` and `shutdown`, is at least the previous export and equals the
/// accesses to that name since the core was made. It once followed the current instance only:
/// 5, 0, 1, 0, 1 across those steps.
#[test]
fn singleton_accesses_total_never_goes_down_and_counts_every_access() {
    use std::collections::HashMap;

    let core = unlimited();
    // "cache" and 99 others take the 100 own labels; "late" and "later" share "(other)".
    core.set("cache", 0_u32).unwrap();
    for i in 0..99 {
        core.set(&format!("fill{i:03}"), i).unwrap();
    }
    let mut expected: HashMap<&str, u64> = HashMap::new();
    let mut last: HashMap<String, u64> = HashMap::new();
    let mut check = |core: &SingletonCore, expected: &HashMap<&str, u64>, step: &str| {
        let r = recorded(|| core.export_metrics());
        for (label, want) in expected {
            let got = r.counter("singleton_accesses_total", &[("singleton", label)]);
            assert_eq!(got, Some(*want), "{label} after {step}");
        }
        for (labels, value) in r.series("singleton_accesses_total") {
            let DebugValue::Counter(now) = value else { panic!("not a counter") };
            let before = last.insert(labels[0].1.clone(), *now).unwrap_or(0);
            assert!(*now >= before, "{} went down from {before} to {now} after {step}", labels[0].1);
        }
    };
    let get = |name: &str, times: u64, expected: &mut HashMap<&str, u64>, label: &'static str| {
        for _ in 0..times {
            assert!(core.get::<u32>(name).unwrap().is_some());
        }
        *expected.entry(label).or_default() += times;
    };

    core.set("late", 0_u32).unwrap();
    get("cache", 5, &mut expected, "cache");
    get("late", 2, &mut expected, "(other)");
    core.get::<MetricsMade>("metrics_made").unwrap();
    expected.insert("metrics_made", 1);
    check(&core, &expected, "the first gets");

    assert!(core.delete("cache"));
    check(&core, &expected, "delete");
    core.get_or_create("cache", || 1_u32).unwrap(); // the re-creation counts one access
    *expected.get_mut("cache").unwrap() += 1;
    check(&core, &expected, "re-creation");
    core.set("cache", 2_u32).unwrap();
    get("cache", 1, &mut expected, "cache");
    core.set("later", 0_u32).unwrap();
    get("later", 3, &mut expected, "(other)");
    core.set("late", 9_u32).unwrap();
    check(&core, &expected, "set");

    assert!(core.clear() > 100);
    check(&core, &expected, "clear");
    core.set("cache", 3_u32).unwrap();
    get("cache", 1, &mut expected, "cache");
    core.get::<MetricsMade>("metrics_made").unwrap();
    *expected.get_mut("metrics_made").unwrap() += 1;
    check(&core, &expected, "the gets after clear");
    core.shutdown();
    check(&core, &expected, "shutdown");
}

/// The same as a user reads it: `metrics-exporter-prometheus`'s rendering after a `clear`.
#[test]
fn the_prometheus_rendering_of_accesses_keeps_counting_after_clear() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let core = unlimited();
    let line = |handle: &metrics_exporter_prometheus::PrometheusHandle| {
        let rendered = handle.render();
        rendered
            .lines()
            .find(|l| l.starts_with(r#"singleton_accesses_total{singleton="cache"}"#))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
    };
    metrics::with_local_recorder(&recorder, || {
        core.set("cache", 1_u8).unwrap();
        for _ in 0..4 {
            core.get::<u8>("cache").unwrap();
        }
        core.export_metrics();
        assert_eq!(line(&handle), Some(4));
        assert_eq!(core.clear(), 1);
        core.set("cache", 1_u8).unwrap();
        core.get::<u8>("cache").unwrap();
        core.export_metrics();
        assert_eq!(line(&handle), Some(5), "4 before the clear, 1 after");
    });
}
