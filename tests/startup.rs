//! Startup: `init_eager` warms the eager singletons and keeps going past failures, `validate`
//! reports names claimed twice, and the report is the table a person reads.
//!
//! This file is its own test binary: its singletons (two of which share a name on purpose) do
//! not exist in the other tests.

use std::sync::atomic::{AtomicUsize, Ordering};

use std::time::Duration;

use singleton_kit::{manager, singleton, Instance, RateLimit, SingletonError};

static WARM_RUNS: AtomicUsize = AtomicUsize::new(0);

#[singleton(eager, factory = Warm::new)]
pub struct Warm(pub u8);

impl Warm {
    fn new() -> Self {
        WARM_RUNS.fetch_add(1, Ordering::SeqCst);
        Warm(1)
    }
}

#[singleton(eager, try_factory = || Err::<ColdFail, _>("no credentials in the environment"))]
pub struct ColdFail;

#[singleton(eager, factory = || AlsoWarm(2))]
pub struct AlsoWarm(pub u8);

#[singleton(factory = || Lazy(3))]
pub struct Lazy(pub u8);

// Two types that claim one name.
#[singleton(name = "shared_name", factory = || First(1))]
#[derive(Debug)]
pub struct First(u8);

#[singleton(name = "shared_name", factory = || Second(2))]
pub struct Second(u8);

#[test]
fn startup_warms_validates_and_reports() {
    // Before: everything pending, and the table says so.
    let before = singleton_kit::report().to_string();
    assert!(before.starts_with("singletons: 6 registered"), "{before}");
    assert!(before.contains("pending (eager)"), "{before}");
    for header in ["NAME", "TYPE", "STATE", "ACCESSES", "CREATED AT", "INIT", "SIZE"] {
        assert!(before.contains(header), "{before}");
    }

    // init_eager creates every eager singleton, keeps going past the failing one, and reports all.
    let err = singleton_kit::init_eager().unwrap_err();
    let failures: Vec<&str> = err.failures().map(|o| o.name()).collect();
    assert_eq!(failures, ["cold_fail"]);
    let outcomes = err.report().outcomes();
    let names: Vec<&str> = outcomes.iter().map(|o| o.name()).collect();
    assert_eq!(names, ["also_warm", "cold_fail", "warm"], "eager ones only, in name order");
    let warm = outcomes.iter().find(|o| o.name() == "warm").unwrap();
    assert!(matches!(warm.result(), Ok(Some(_))), "created now, with its time");
    let cold = outcomes.iter().find(|o| o.name() == "cold_fail").unwrap();
    assert!(matches!(cold.result(), Err(SingletonError::Factory { .. })));
    let message = err.to_string();
    assert!(message.contains("cold_fail") && message.contains("no credentials"), "{message}");
    assert_eq!(WARM_RUNS.load(Ordering::SeqCst), 1);
    let registered = singleton_kit::registered();
    let state = |name: &str| registered.iter().find(|r| r.name() == name).unwrap().is_created();
    assert!(state("warm") && state("also_warm"));
    assert!(!state("cold_fail") && !state("lazy"), "failed and lazy ones stay uncreated");
    let warm = registered.iter().find(|r| r.name() == "warm").unwrap();
    assert!(warm.init_duration().is_some() && warm.created_at().is_some());
    assert_eq!(warm.access_count(), 0, "warming is not an access");

    // A second run finds the warm ones already made.
    let again = singleton_kit::init_eager().unwrap_err();
    let warm = again.report().outcomes().iter().find(|o| o.name() == "warm").unwrap();
    assert!(matches!(warm.result(), Ok(None)));
    assert_eq!(WARM_RUNS.load(Ordering::SeqCst), 1);

    // validate reports the shared name with both source locations.
    let err = singleton_kit::validate().unwrap_err();
    assert_eq!(err.duplicates().len(), 1);
    let claims = &err.duplicates()[0];
    assert_eq!(claims.len(), 2);
    let message = err.to_string();
    assert!(message.contains("shared_name"), "{message}");
    assert!(message.contains("startup.rs:"), "{message}");
    assert_ne!(claims[0].line(), claims[1].line());

    // The name-keyed path refuses the ambiguous name; each type's own instance() still works.
    let err = manager().get::<First>("shared_name").unwrap_err();
    assert!(matches!(err, SingletonError::DuplicateName { ref types, .. } if types.len() == 2), "{err}");
    assert_eq!(First::instance().0, 1);
    assert_eq!(Second::instance().0, 2);
    assert!(!manager().has("shared_name"));

    // After use: the table shows the state, accesses and sizes.
    let _ = Warm::instance();
    let _ = Warm::instance();
    let after = singleton_kit::report().to_string();
    let warm_line = after.lines().find(|l| l.starts_with("warm ")).unwrap();
    assert!(
        warm_line.contains("created") && warm_line.contains(" 2 ") && warm_line.contains("1 B"),
        "{after}"
    );
    // The creation time is a clock time a person reads: RFC 3339 in UTC, to the millisecond.
    assert!(after.contains("CREATED AT (UTC)"), "{after}");
    let created =
        warm_line.split_whitespace().find(|w| w.contains('T') && w.ends_with('Z')).expect(warm_line);
    let (date, time) = created.split_once('T').unwrap();
    let shape = |s: &str, digits: &[usize], sep: char| {
        s.split(sep).map(str::len).collect::<Vec<_>>() == digits
            && s.chars().all(|c| c.is_ascii_digit() || c == sep)
    };
    assert!(shape(date, &[4, 2, 2], '-'), "{created}");
    let (hms, millis) = time.trim_end_matches('Z').split_once('.').expect(created);
    assert!(shape(hms, &[2, 2, 2], ':') && shape(millis, &[3], ':'), "{created}");
    let year: u32 = date[..4].parse().unwrap();
    assert!((2024..2200).contains(&year), "{created}");
    let stats = manager().stats().unwrap();
    assert!(stats.singleton_names.iter().any(|n| n.starts_with("shared_name (")), "{stats:?}");
    assert!(Instance::ptr_eq(&Lazy::instance(), &manager().get::<Lazy>("lazy").unwrap().unwrap()));

    // The typed path is compiled code, not outside input: never rate-limited, always counted.
    manager().set_rate_limit(RateLimit::new(0, Duration::from_secs(60)));
    assert!(!manager().has("warm"), "the name-keyed path is refused");
    for _ in 0..10 {
        let _ = Warm::instance();
    }
    let warm = singleton_kit::registered().into_iter().find(|r| r.name() == "warm").unwrap();
    assert_eq!(warm.access_count(), 12);
    manager().set_rate_limit(RateLimit::default());
}
