//! The core's `tracing` events, seen by a capturing subscriber: operations at debug with the
//! singleton's name, refusals at warn, creations at info with the factory's time, and the
//! `correlation_id` of the caller's span (or of `execute`'s request) on each of them.
//!
//! Every test installs its own subscriber with `tracing::subscriber::with_default`, so tests
//! running in parallel do not see each other's events.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use singleton_kit::{ManualClock, RateLimit, Request, SingletonCore, SingletonValue};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{Layer, Registry};

// ---------------------------------------------------------------------------------------------
// The capturing layer
// ---------------------------------------------------------------------------------------------

/// One event as the layer saw it.
#[derive(Clone, Debug)]
struct Captured {
    level: Level,
    message: String,
    fields: BTreeMap<String, FieldValue>,
    /// The `correlation_id` of the nearest enclosing span that has one.
    correlation_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
enum FieldValue {
    Str(String),
    F64(f64),
    I64(i64),
    U64(u64),
    Bool(bool),
}

impl Captured {
    fn str(&self, field: &str) -> Option<&str> {
        match self.fields.get(field)? {
            FieldValue::Str(s) => Some(s),
            _ => None,
        }
    }
}

#[derive(Default)]
struct Fields(BTreeMap<String, FieldValue>);

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), FieldValue::F64(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), FieldValue::I64(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), FieldValue::U64(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), FieldValue::Bool(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), FieldValue::Str(value.to_owned()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%x` values (and the message's `fmt::Arguments`) print without quotes through Debug.
        self.0.insert(field.name().to_owned(), FieldValue::Str(format!("{value:?}")));
    }
}

/// A span's fields, kept in its extensions.
struct SpanFields(BTreeMap<String, FieldValue>);

#[derive(Clone, Default)]
struct Capture {
    events: Arc<Mutex<Vec<Captured>>>,
}

impl Capture {
    fn events(&self) -> Vec<Captured> {
        self.events.lock().unwrap().clone()
    }
}

impl<S> Layer<S> for Capture
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(fields.0));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Fields::default();
        values.record(&mut fields);
        let mut ext = span.extensions_mut();
        if let Some(SpanFields(existing)) = ext.get_mut::<SpanFields>() {
            existing.extend(fields.0);
        } else {
            ext.insert(SpanFields(fields.0));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut fields = fields.0;
        let message = match fields.remove("message") {
            Some(FieldValue::Str(m)) => m,
            _ => String::new(),
        };
        let correlation_id = ctx.event_scope(event).and_then(|scope| {
            scope.into_iter().find_map(|span| {
                match span.extensions().get::<SpanFields>()?.0.get("correlation_id")? {
                    FieldValue::Str(id) => Some(id.clone()),
                    other => Some(format!("{other:?}")),
                }
            })
        });
        self.events.lock().unwrap().push(Captured {
            level: *event.metadata().level(),
            message,
            fields,
            correlation_id,
        });
    }
}

/// Runs `f` with a capturing subscriber as this thread's default, and returns what it saw.
fn capture(f: impl FnOnce()) -> Vec<Captured> {
    let layer = Capture::default();
    let subscriber = Registry::default().with(layer.clone());
    tracing::subscriber::with_default(subscriber, f);
    layer.events()
}

/// As [`capture`], with the subscriber filtered at `level` as a production subscriber would be.
fn capture_at(level: LevelFilter, f: impl FnOnce()) -> Vec<Captured> {
    let layer = Capture::default();
    let subscriber = Registry::default().with(layer.clone().with_filter(level));
    tracing::subscriber::with_default(subscriber, f);
    layer.events()
}

fn unlimited() -> SingletonCore {
    SingletonCore::with_clock(RateLimit::unlimited(), ManualClock::new())
}

fn about<'a>(events: &'a [Captured], name: &str) -> Vec<&'a Captured> {
    events.iter().filter(|e| e.str("singleton") == Some(name)).collect()
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn the_capturing_layer_sees_span_fields_and_event_fields() {
    // A check of the harness itself, so that a failure below is about the library.
    let events = capture(|| {
        let span = tracing::info_span!("request", correlation_id = "self-test");
        let _g = span.enter();
        tracing::debug!(singleton = "x", n = 3_u64, "hello");
    });
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].level, Level::DEBUG);
    assert_eq!(events[0].message, "hello");
    assert_eq!(events[0].str("singleton"), Some("x"));
    assert_eq!(events[0].fields.get("n"), Some(&FieldValue::U64(3)));
    assert_eq!(events[0].correlation_id.as_deref(), Some("self-test"));
}

#[test]
fn an_operation_in_the_callers_span_emits_a_debug_event_tagged_with_its_correlation_id() {
    let core = unlimited();
    let events = capture(|| {
        let span = tracing::info_span!("request", correlation_id = "abc");
        let _g = span.enter();
        core.set("tr-widget", 5_u32).unwrap();
    });
    let set = about(&events, "tr-widget");
    let debug: Vec<_> = set.iter().filter(|e| e.level == Level::DEBUG).collect();
    assert_eq!(debug.len(), 1, "one debug event for the set: {events:#?}");
    let e = debug[0];
    assert_eq!(e.correlation_id.as_deref(), Some("abc"), "{e:#?}");
    assert_eq!(e.str("operation"), Some("set"), "{e:#?}");
    assert!(!e.message.is_empty(), "{e:#?}");
}

#[test]
fn each_operation_emits_a_debug_event_naming_it_and_its_singleton() {
    let core = unlimited();
    core.set("tr-each", 1_u8).unwrap();
    let events = capture(|| {
        let span = tracing::info_span!("request", correlation_id = "each");
        let _g = span.enter();
        core.get::<u8>("tr-each").unwrap();
        core.set("tr-each", 2_u8).unwrap();
        core.has("tr-each");
        core.exists("tr-each");
        core.stats().unwrap();
        core.reset();
        core.delete("tr-each");
        core.clear();
        core.reset_all();
    });
    let debug: Vec<_> = events.iter().filter(|e| e.level == Level::DEBUG).collect();
    let ops: Vec<_> = debug.iter().filter_map(|e| e.str("operation")).collect();
    assert_eq!(
        ops,
        ["get", "set", "has", "exists", "get_stats", "reset", "delete", "clear", "reset_all"],
        "{events:#?}"
    );
    for e in &debug {
        assert_eq!(e.correlation_id.as_deref(), Some("each"), "{e:#?}");
    }
    for e in &debug[..4] {
        assert_eq!(e.str("singleton"), Some("tr-each"), "{e:#?}");
    }
    assert_eq!(debug[6].str("singleton"), Some("tr-each"), "delete names its singleton");
}

#[test]
fn a_refusal_is_a_warn_event_naming_the_singleton() {
    let core = SingletonCore::with_clock(RateLimit::new(1, Duration::from_secs(1)), ManualClock::new());
    core.set("tr-limited", 1_u8).unwrap();
    let events = capture(|| {
        let span = tracing::info_span!("request", correlation_id = "abc");
        let _g = span.enter();
        assert!(core.get::<u8>("tr-limited").is_err());
    });
    let warns: Vec<_> = events.iter().filter(|e| e.level == Level::WARN).collect();
    assert_eq!(warns.len(), 1, "{events:#?}");
    let w = warns[0];
    assert_eq!(w.str("singleton"), Some("tr-limited"), "{w:#?}");
    assert_eq!(w.str("operation"), Some("get"), "{w:#?}");
    assert_eq!(w.correlation_id.as_deref(), Some("abc"), "{w:#?}");
    assert!(w.message.contains("rate limit"), "{w:#?}");
    // A refused operation is not also logged as a performed one.
    assert!(events.iter().all(|e| e.level != Level::DEBUG), "{events:#?}");
}

#[test]
fn a_creation_is_an_info_event_with_the_factorys_duration() {
    let core = unlimited();
    let events = capture(|| {
        let span = tracing::info_span!("request", correlation_id = "abc");
        let _g = span.enter();
        core.get_or_create("tr-built", || {
            std::thread::sleep(Duration::from_millis(2));
            vec![1_u8]
        })
        .unwrap();
        // No second creation event for the stored instance.
        core.get_or_create("tr-built", || vec![2_u8]).unwrap();
    });
    let infos: Vec<_> = events.iter().filter(|e| e.level == Level::INFO).collect();
    assert_eq!(infos.len(), 1, "{events:#?}");
    let e = infos[0];
    assert_eq!(e.str("singleton"), Some("tr-built"), "{e:#?}");
    assert_eq!(e.correlation_id.as_deref(), Some("abc"), "{e:#?}");
    match e.fields.get("init_ms") {
        Some(FieldValue::F64(ms)) => assert!(*ms >= 2.0, "init_ms = {ms}"),
        Some(FieldValue::U64(ms)) => assert!(*ms >= 2, "init_ms = {ms}"),
        other => panic!("init_ms missing or not a number: {other:?} in {e:#?}"),
    }
    // A set is not a creation by a factory.
    let events = capture(|| core.set("tr-set", 1_u8).unwrap());
    assert!(events.iter().all(|e| e.level != Level::INFO), "{events:#?}");
}

#[test]
fn execute_tags_its_events_with_the_requests_correlation_id() {
    let core = unlimited();
    let events = capture(|| {
        core.execute(
            Request::parse("set")
                .unwrap()
                .name("tr-exec")
                .value(SingletonValue::new(1_u8))
                .correlation_id("xyz"),
        )
        .unwrap();
        core.execute(Request::parse("get").unwrap().name("tr-exec").correlation_id("xyz")).unwrap();
        core.execute(Request::parse("stats").unwrap().correlation_id("xyz")).unwrap();
        // Without a correlation id, and outside any span: untagged.
        core.execute(Request::parse("has").unwrap().name("tr-exec")).unwrap();
    });
    let ops: Vec<_> =
        events.iter().filter(|e| e.level == Level::DEBUG).filter_map(|e| e.str("operation")).collect();
    assert_eq!(ops, ["set", "get", "get_stats", "has"], "{events:#?}");
    for e in events.iter().filter(|e| e.str("operation") != Some("has")) {
        assert_eq!(e.correlation_id.as_deref(), Some("xyz"), "{e:#?}");
    }
    let has = events.iter().find(|e| e.str("operation") == Some("has")).unwrap();
    assert_eq!(has.correlation_id, None, "{has:#?}");
    assert_eq!(about(&events, "tr-exec").len(), 3);
}

#[test]
fn executes_correlation_id_tags_a_refusal_and_a_creation() {
    let core = SingletonCore::with_clock(RateLimit::new(1, Duration::from_secs(1)), ManualClock::new());
    let events = capture(|| {
        core.execute(Request::parse("has").unwrap().name("tr-x").correlation_id("xyz-1")).unwrap();
        let _ = core.execute(Request::parse("get").unwrap().name("tr-x").correlation_id("xyz-2"));
    });
    let warn = events.iter().find(|e| e.level == Level::WARN).expect("a refusal");
    assert_eq!(warn.correlation_id.as_deref(), Some("xyz-2"), "{warn:#?}");
    assert_eq!(warn.str("singleton"), Some("tr-x"));
}

#[test]
fn executes_correlation_id_tags_a_refusal_under_an_info_level_subscriber() {
    let core = SingletonCore::with_clock(RateLimit::new(0, Duration::from_secs(1)), ManualClock::new());
    let events = capture_at(LevelFilter::INFO, || {
        let _ = core.execute(Request::parse("get").unwrap().name("tr-prod").correlation_id("xyz"));
    });
    let warn =
        events.iter().find(|e| e.level == Level::WARN).expect("the refusal reaches an INFO subscriber");
    assert_eq!(warn.str("singleton"), Some("tr-prod"));
    assert_eq!(warn.correlation_id.as_deref(), Some("xyz"), "{warn:#?}");
}

#[test]
fn the_callers_span_tags_events_under_an_info_level_subscriber() {
    let core = SingletonCore::with_clock(RateLimit::new(0, Duration::from_secs(1)), ManualClock::new());
    let events = capture_at(LevelFilter::INFO, || {
        let span = tracing::info_span!("request", correlation_id = "abc");
        let _g = span.enter();
        assert!(!core.has("tr-prod"));
    });
    assert_eq!(events.len(), 1, "only the warn reaches an INFO subscriber: {events:#?}");
    assert_eq!(events[0].level, Level::WARN);
    assert_eq!(events[0].correlation_id.as_deref(), Some("abc"));
}
