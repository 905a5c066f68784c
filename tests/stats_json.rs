//! `Stats` as JSON: exactly the seed's keys plus `init_durations_ms`, with the seed's JSON types,
//! maps keyed by singleton name, and memory as the shallow size of each live instance.

use std::any::type_name;
use std::collections::BTreeSet;
use std::mem::size_of;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use singleton_kit::{ManualClock, RateLimit, SingletonCore, Stats, MEMORY_NOTE};

const KEYS: [&str; 12] = [
    "total_singletons",
    "singleton_names",
    "singleton_types",
    "creation_times",
    "access_counts",
    "estimated_memory_bytes",
    "estimated_memory_kb",
    "estimated_memory_mb",
    "memory_note",
    "rate_limited_count",
    "timestamp",
    "init_durations_ms",
];

/// The maps keyed by singleton name.
const NAME_MAPS: [&str; 4] = ["singleton_types", "creation_times", "access_counts", "init_durations_ms"];

#[allow(dead_code)] // only its size matters
struct Config {
    retries: u32,
    endpoint: String,
    ratios: [f64; 4],
}

fn unlimited() -> SingletonCore {
    SingletonCore::with_clock(RateLimit::unlimited(), ManualClock::new())
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

fn json(core: &SingletonCore) -> Value {
    serde_json::to_value(core.stats().unwrap()).unwrap()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().expect("an object").keys().cloned().collect()
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Three live instances of known types and sizes, one of them made by a factory that runs ≥ 2 ms.
fn populated() -> (SingletonCore, f64, f64) {
    let core = unlimited();
    let before = unix_now();
    core.set(
        "js-config",
        Config { retries: 3, endpoint: "https://example.test".repeat(100), ratios: [0.5; 4] },
    )
    .unwrap();
    core.set("js-buffer", [0_u8; 100]).unwrap();
    core.get_or_create("js-pool", || {
        thread::sleep(Duration::from_millis(2));
        vec![0_u64; 1000]
    })
    .unwrap();
    core.get::<[u8; 100]>("js-buffer").unwrap().unwrap();
    core.get::<[u8; 100]>("js-buffer").unwrap().unwrap();
    let after = unix_now();
    (core, before, after)
}

#[test]
fn exactly_the_seed_keys_plus_init_durations_ms() {
    let (core, _, _) = populated();
    let v = json(&core);
    assert_eq!(keys(&v), names(&KEYS));
    // Also for an empty core.
    assert_eq!(keys(&json(&unlimited())), names(&KEYS));
}

#[test]
fn counts_and_bytes_are_integers_and_the_rest_have_the_seed_types() {
    let (core, before, after) = populated();
    let v = json(&core);

    assert!(v["total_singletons"].is_u64(), "{}", v["total_singletons"]);
    assert_eq!(v["total_singletons"], 3);
    assert!(v["estimated_memory_bytes"].is_u64(), "{}", v["estimated_memory_bytes"]);
    assert!(v["rate_limited_count"].is_u64(), "{}", v["rate_limited_count"]);
    assert_eq!(v["rate_limited_count"], 0);
    assert!(v["estimated_memory_kb"].is_f64(), "{}", v["estimated_memory_kb"]);
    assert!(v["estimated_memory_mb"].is_f64(), "{}", v["estimated_memory_mb"]);
    assert!(v["memory_note"].is_string());

    let ts = v["timestamp"].as_f64().filter(|_| v["timestamp"].is_f64()).expect("timestamp is an f64");
    assert!(ts >= after - 0.001 && ts <= unix_now() + 0.001, "timestamp {ts} is now (unix seconds)");

    let listed: Vec<&str> = v["singleton_names"]
        .as_array()
        .expect("an array")
        .iter()
        .map(|n| n.as_str().expect("a string"))
        .collect();
    assert_eq!(
        listed.iter().copied().collect::<BTreeSet<_>>(),
        BTreeSet::from(["js-buffer", "js-config", "js-pool"])
    );
    assert_eq!(listed.len(), 3, "no name listed twice");

    // The maps are keyed by singleton name, exactly the live ones.
    for map in NAME_MAPS {
        // A value stored with `set` was made by no factory: it has no factory time.
        let live: &[&str] =
            if map == "init_durations_ms" { &["js-pool"] } else { &["js-buffer", "js-config", "js-pool"] };
        assert_eq!(keys(&v[map]), names(live), "{map}");
    }
    for name in ["js-buffer", "js-config", "js-pool"] {
        assert!(v["singleton_types"][name].is_string(), "singleton_types.{name}");
        let created = &v["creation_times"][name];
        assert!(created.is_f64(), "creation_times.{name} = {created}");
        let created = created.as_f64().unwrap();
        assert!(created >= before - 0.001 && created <= after + 0.001, "{before} <= {created} <= {after}");
        assert!(v["access_counts"][name].is_u64(), "access_counts.{name}");
    }
    assert_eq!(v["singleton_types"]["js-config"], type_name::<Config>());
    assert_eq!(v["singleton_types"]["js-buffer"], type_name::<[u8; 100]>());
    assert_eq!(v["singleton_types"]["js-pool"], type_name::<Vec<u64>>());
    assert_eq!(v["access_counts"]["js-config"], 0);
    assert_eq!(v["access_counts"]["js-buffer"], 2);
    assert_eq!(v["access_counts"]["js-pool"], 1);
    // A factory's time is measured; a value stored with `set` had none.
    assert!(v["init_durations_ms"]["js-pool"].as_f64().unwrap() >= 2.0, "{}", v["init_durations_ms"]);
    let init = &v["init_durations_ms"]["js-pool"];
    assert!(init.is_f64(), "init_durations_ms.js-pool = {init}");
    // Rounded to the microsecond: no float noise such as 0.0015600000000000002.
    let micros = init.as_f64().unwrap() * 1e3;
    assert!((micros - micros.round()).abs() < 1e-6, "{init} is not whole microseconds");
    assert!(init.to_string().split('.').nth(1).is_none_or(|frac| frac.len() <= 3), "{init}");
}

#[test]
fn memory_is_the_shallow_size_of_each_live_instance() {
    let (core, _, _) = populated();
    let v = json(&core);
    let expected = size_of::<Config>() + size_of::<[u8; 100]>() + size_of::<Vec<u64>>();
    assert_eq!(v["estimated_memory_bytes"].as_u64(), Some(expected as u64));
    // Not the heap: the Vec's 8000 bytes and the String's 2000 are not counted.
    assert!(expected < 1000);
    let kb = v["estimated_memory_kb"].as_f64().unwrap();
    assert!((kb - expected as f64 / 1024.0).abs() < 0.006, "{kb}");
    let mb = v["estimated_memory_mb"].as_f64().unwrap();
    assert!((mb - expected as f64 / (1024.0 * 1024.0)).abs() < 0.006, "{mb}");

    // Deleting one takes its size out.
    assert!(core.delete("js-buffer"));
    let v = json(&core);
    assert_eq!(v["estimated_memory_bytes"].as_u64(), Some((expected - 100) as u64));
    assert!(!v["singleton_types"].as_object().unwrap().contains_key("js-buffer"));

    // The KiB and MiB figures follow the bytes, rounded to two decimals.
    let core = unlimited();
    core.set("js-2k", [0_u8; 2048]).unwrap();
    core.set("js-3k", [0_u8; 3072]).unwrap();
    let v = json(&core);
    assert_eq!(v["estimated_memory_bytes"], 5120);
    assert_eq!(v["estimated_memory_kb"].as_f64(), Some(5.0));
    assert_eq!(v["estimated_memory_mb"].as_f64(), Some(0.0));
}

#[test]
fn memory_note_says_the_size_is_shallow() {
    let v = json(&unlimited());
    let note = v["memory_note"].as_str().unwrap();
    assert!(note.to_lowercase().contains("shallow"), "{note}");
    assert!(note.contains("size_of"), "{note}");
    assert_eq!(note, MEMORY_NOTE);
}

#[test]
fn an_empty_core_has_empty_maps_and_zero_counts() {
    let v = json(&unlimited());
    assert_eq!(v["total_singletons"], 0);
    assert_eq!(v["singleton_names"], serde_json::json!([]));
    for map in NAME_MAPS {
        assert_eq!(v[map], serde_json::json!({}), "{map}");
    }
    assert_eq!(v["estimated_memory_bytes"], 0);
    assert!(v["estimated_memory_bytes"].is_u64());
    assert_eq!(v["estimated_memory_kb"].as_f64(), Some(0.0));
    assert!(v["estimated_memory_kb"].is_f64());
}

#[test]
fn rate_limited_count_appears_as_an_integer() {
    let clock = ManualClock::new();
    let core = SingletonCore::with_clock(RateLimit::new(1, Duration::from_secs(1)), clock.clone());
    core.set("js-limited", 1_u8).unwrap();
    for _ in 0..4 {
        assert!(!core.has("js-limited"));
    }
    clock.advance(Duration::from_secs(1));
    let v = json(&core);
    assert!(v["rate_limited_count"].is_u64());
    assert_eq!(v["rate_limited_count"], 4);
}

#[test]
fn the_json_reads_back_into_the_same_stats() {
    let (core, _, _) = populated();
    let stats = core.stats().unwrap();
    // Through a `Value` (floats kept exactly; serde_json's text parser may round the last digit).
    let back: Stats = serde_json::from_value(serde_json::to_value(&stats).unwrap()).unwrap();
    assert_eq!(back, stats);
    // And through text, where only the floats may differ by rounding.
    let text = serde_json::to_string(&stats).unwrap();
    let back: Stats = serde_json::from_str(&text).unwrap();
    assert_eq!(back.singleton_names, stats.singleton_names);
    assert_eq!(back.access_counts, stats.access_counts);
    assert_eq!(back.estimated_memory_bytes, stats.estimated_memory_bytes);
}

/// Reading stats back is as strict as a derive: an unknown key is ignored, a missing or repeated
/// key is an error that names it.
#[test]
fn reading_stats_back_ignores_unknown_keys_and_names_a_missing_or_repeated_one() {
    let (core, _, _) = populated();
    let mut v = serde_json::to_value(core.stats().unwrap()).unwrap();
    v["from_a_newer_version"] = serde_json::json!([1, 2]);
    assert!(serde_json::from_value::<Stats>(v.clone()).is_ok());

    v.as_object_mut().unwrap().remove("memory_note");
    let err = serde_json::from_value::<Stats>(v).unwrap_err().to_string();
    assert!(err.contains("missing field `memory_note`"), "{err}");

    let text = serde_json::to_string(&core.stats().unwrap()).unwrap();
    let repeated = text.replacen('{', r#"{"timestamp": 1.0, "#, 1);
    let err = serde_json::from_str::<Stats>(&repeated).unwrap_err().to_string();
    assert!(err.contains("duplicate field `timestamp`"), "{err}");
}
