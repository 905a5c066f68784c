//! Names from outside: the ones that hide or spoof are refused and change nothing; every other
//! name, non-ASCII and `"*"` included, is an ordinary name.

use std::time::Duration;

use singleton_kit::{
    ManualClock, RateLimit, Request, Response, SingletonCore, SingletonError, SingletonValue,
};

/// Names that print as another name, or as nothing, in a log line or an admin answer.
const REFUSED: &[&str] = &[
    "\u{200B}",         // only a zero-width space
    "cache\u{200B}",    // prints as "cache"
    "ca\u{200B}che",    // prints as "cache"
    "admin\u{202E}txt", // right-to-left override: prints reversed
    "\u{2066}cache\u{2069}",
    "\u{FEFF}cache",  // byte-order mark
    "ca\u{00AD}che",  // soft hyphen: invisible
    "cache\u{2060}",  // word joiner
    "cache\u{E0041}", // a tag character
    "cache ",
    " cache",
    "\tcache",
    "cache\u{3000}",
    "cache\u{00A0}",
    "a\u{2028}b", // line separator
    "a\u{2029}b", // paragraph separator
    "",
    "   ",
    "a\nb",
];

const VALID: &[&str] = &["café", "キャッシュ", "cache manager", "*", "ключ", "a-b.c/d:e", "🦀"];

#[test]
fn hostile_names_are_refused_and_change_nothing() {
    let clock = ManualClock::new();
    // Room for exactly one operation: a refused name must not take it.
    let core = SingletonCore::with_clock(RateLimit::new(1, Duration::from_secs(1)), clock);
    for name in REFUSED {
        let err = core.set(name, 1_u32).unwrap_err();
        let SingletonError::InvalidName { name: shown, reason } = &err else { panic!("{name:?}: {err:?}") };
        assert_eq!(shown, name, "the error names the name");
        assert!(!reason.is_empty());
        assert!(err.to_string().contains(&format!("{name:?}")), "{err}");
        assert!(matches!(core.get::<u32>(name), Err(SingletonError::InvalidName { .. })), "{name:?}");
        assert!(matches!(core.get_or_create(name, || 1_u32), Err(SingletonError::InvalidName { .. })));
        assert!(!core.has(name) && !core.exists(name) && !core.delete(name), "{name:?}");
        let answer =
            core.execute(Request::parse("set").unwrap().name(*name).value(SingletonValue::new(1_u32)));
        assert!(matches!(answer, Err(SingletonError::InvalidName { .. })), "{name:?}");
    }
    // Nothing was stored, nothing was refused by the limit, and the one slot is still free.
    assert!(core.set("after", 1_u8).is_ok(), "a refused name took a rate-limit slot");
    assert!(matches!(core.set("after", 2_u8), Err(SingletonError::RateLimited { .. })));
    core.set_rate_limit(RateLimit::unlimited());
    let stats = core.stats().unwrap();
    assert_eq!(stats.singleton_names, ["after"]);
    assert_eq!(stats.rate_limited_count, 1);
}

#[test]
fn a_trailing_space_is_not_a_second_entry() {
    let core = SingletonCore::with_rate_limit(RateLimit::unlimited());
    core.set("cache", 1_u32).unwrap();
    assert!(core.set("cache ", 2_u32).is_err());
    assert_eq!(*core.get::<u32>("cache").unwrap().unwrap(), 1);
    assert_eq!(core.stats().unwrap().total_singletons, 1);
}

#[test]
fn other_unicode_names_are_ordinary_names() {
    let core = SingletonCore::with_rate_limit(RateLimit::unlimited());
    for (i, name) in VALID.iter().enumerate() {
        singleton_kit::validate_name(name).unwrap();
        core.set(name, i).unwrap();
        assert!(core.has(name), "{name:?}");
        assert_eq!(*core.get::<usize>(name).unwrap().expect("just set"), i);
    }
    let stats = core.stats().unwrap();
    assert_eq!(stats.total_singletons, VALID.len());
    for name in VALID {
        assert!(core.delete(name), "{name:?}");
        assert!(!core.has(name));
    }
}

#[test]
fn star_is_an_ordinary_name() {
    let core = SingletonCore::with_rate_limit(RateLimit::unlimited());
    core.set("other", 0_u8).unwrap();
    core.set("*", String::from("star")).unwrap();
    assert!(core.has("*") && core.exists("*"));
    assert_eq!(*core.get::<String>("*").unwrap().expect("just set"), "star");
    assert_eq!(*core.get_or_create("*", || String::from("not run")).unwrap(), "star");
    assert!(matches!(core.execute(Request::parse("has").unwrap().name("*")), Ok(Response::Bool(true))));
    assert!(core.delete("*"), "deletes the one named `*`");
    assert!(!core.has("*"));
    assert!(core.has("other"), "and nothing else");
    assert!(!core.delete("*"));
}

#[test]
fn refusals_of_the_operations_on_all_singletons_name_no_singleton() {
    let core = SingletonCore::with_rate_limit(RateLimit::per_second(0));
    let stats = core.stats().unwrap_err();
    let SingletonError::RateLimited { operation, name, .. } = &stats else { panic!("{stats:?}") };
    assert_eq!((*operation, name), ("get_stats", &None));
    assert_eq!(stats.singleton_name(), None);
    let message = stats.to_string();
    assert!(message.contains("on all singletons") && !message.contains('*'), "{message}");

    let err = core.execute(Request::parse("stats").unwrap()).unwrap_err();
    assert!(matches!(&err, SingletonError::RateLimited { name: None, .. }), "{err:?}");
    // `clear`, `reset_all` and `reset` keep the seed's `0` and `false`.
    assert_eq!((core.clear(), core.reset_all(), core.reset()), (0, 0, false));
    // A refusal on the singleton named `*` is told apart.
    let star = core.set("*", 1_u8).unwrap_err();
    assert!(matches!(&star, SingletonError::RateLimited { name: Some(n), .. } if n == "*"), "{star:?}");
    assert_eq!(star.singleton_name(), Some("*"));
    assert!(star.to_string().contains("singleton `*`"), "{star}");
}

#[test]
fn a_factory_that_sets_its_own_name_loses_to_the_set() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    struct Counted(&'static str, Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.1.fetch_add(1, Ordering::SeqCst);
        }
    }
    let core = SingletonCore::with_rate_limit(RateLimit::unlimited());
    let (made_drops, set_drops) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let got = core
        .get_or_create("self-set", || {
            core.set("self-set", Counted("set", Arc::clone(&set_drops))).unwrap();
            Counted("factory", Arc::clone(&made_drops))
        })
        .unwrap();
    assert_eq!(got.0, "set", "the caller gets what the set stored");
    assert_eq!(made_drops.load(Ordering::SeqCst), 1, "the factory's result is dropped at once");
    assert_eq!(core.get::<Counted>("self-set").unwrap().expect("stored").0, "set");
    assert_eq!(core.stats().unwrap().total_singletons, 1);
    drop(got);
    assert!(core.delete("self-set"));
    assert_eq!(set_drops.load(Ordering::SeqCst), 1);
}

/// A name asked for again and again is found from the thread's recent lookups: what it finds
/// follows every delete, re-set, clear and replacement, on this thread and on others, and a
/// name of one core is never found in another.
#[test]
fn names_asked_for_again_and_again_follow_every_change() {
    let core = SingletonCore::with_rate_limit(RateLimit::unlimited());
    let other = SingletonCore::with_rate_limit(RateLimit::unlimited());
    core.set("often", 1_u32).unwrap();
    other.set("often", 100_u32).unwrap();
    for _ in 0..4 {
        assert_eq!(*core.get::<u32>("often").unwrap().expect("set"), 1);
        assert_eq!(*other.get::<u32>("often").unwrap().expect("set"), 100);
        assert!(core.has("often"));
    }
    core.set("often", 2_u32).unwrap();
    assert_eq!(*core.get::<u32>("often").unwrap().expect("replaced"), 2);
    assert!(matches!(core.get::<u64>("often"), Err(SingletonError::TypeMismatch { .. })));

    assert!(core.delete("often"));
    assert!(core.get::<u32>("often").unwrap().is_none());
    assert!(!core.has("often"));
    core.set("often", 3_u32).unwrap();
    assert_eq!(*core.get::<u32>("often").unwrap().expect("set again"), 3);

    // Changed by another thread, seen here at once.
    std::thread::scope(|s| {
        s.spawn(|| {
            assert!(core.delete("often"));
            core.set("often", 4_u32).unwrap();
        });
    });
    assert_eq!(*core.get::<u32>("often").unwrap().expect("set by the other thread"), 4);
    std::thread::scope(|s| {
        s.spawn(|| assert_eq!(core.clear(), 1));
    });
    assert!(core.get::<u32>("often").unwrap().is_none());
    assert_eq!(*core.get_or_create("often", || 5_u32).unwrap(), 5);
    assert_eq!(*core.get::<u32>("often").unwrap().expect("created"), 5);
    assert_eq!(*other.get::<u32>("often").unwrap().expect("untouched"), 100);

    // Many names in turn, a few of them changed meanwhile.
    for i in 0..64_u32 {
        core.set(&format!("turn_{i}"), i).unwrap();
    }
    for round in 0..4_u32 {
        for i in 0..64_u32 {
            let name = format!("turn_{i}");
            assert_eq!(*core.get::<u32>(&name).unwrap().expect("set"), i + round * 1000, "{name}");
        }
        for i in (0..64_u32).step_by(7) {
            let name = format!("turn_{i}");
            assert!(core.delete(&name));
            core.set(&name, i + (round + 1) * 1000).unwrap();
        }
        for i in 0..64_u32 {
            if i % 7 != 0 {
                let name = format!("turn_{i}");
                core.set(&name, i + (round + 1) * 1000).unwrap();
            }
        }
    }
}
