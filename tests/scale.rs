//! The registry at scale: adding a name costs about the same however many names there are
//! (amortized O(1)), and a million new names take seconds. Timing tests, so they are in the heavy
//! set, run in release by `.ci/run`: `cargo test --release --test scale -- --ignored heavy_`.

use std::time::{Duration, Instant};

use singleton_kit::{RateLimit, SingletonCore};

fn timed(f: impl FnOnce()) -> Duration {
    let started = Instant::now();
    f();
    started.elapsed()
}

#[test]
#[ignore = "heavy: timing; run with --release -- --ignored heavy_"]
fn heavy_the_last_new_names_cost_what_the_first_did() {
    const NAMES: usize = 200_000;
    const BATCH: usize = 20_000;
    let names: Vec<String> = (0..NAMES).map(|i| format!("scale_{i}")).collect();
    let core = SingletonCore::with_rate_limit(RateLimit::unlimited());
    let mut batches = Vec::new();
    for chunk in names.chunks(BATCH) {
        batches.push(timed(|| {
            for (i, name) in chunk.iter().enumerate() {
                core.set(name, i).unwrap();
            }
        }));
    }
    let (first, last) = (batches[0], batches[batches.len() - 1]);
    let ratio = last.as_secs_f64() / first.as_secs_f64();
    println!(
        "set of a new name: first {BATCH} {first:?}, last {BATCH} {last:?} (x{ratio:.2}); all {batches:?}"
    );
    assert!(ratio < 3.0, "the last {BATCH} new names cost {ratio:.2}x the first {BATCH}");
    assert_eq!(core.stats().unwrap().total_singletons, NAMES);

    // And through `get_or_create`, which makes the entry before running its factory.
    let other = SingletonCore::with_rate_limit(RateLimit::unlimited());
    let all = timed(|| {
        for (i, name) in names.iter().enumerate() {
            assert_eq!(*other.get_or_create(name, || i).unwrap(), i);
        }
    });
    println!("{NAMES} get_or_create of new names: {all:?}");
    assert!(all < Duration::from_secs(20), "{all:?}");
}

#[test]
#[ignore = "heavy: timing; run with --release -- --ignored heavy_"]
fn heavy_a_million_new_names_are_set_in_seconds() {
    const NAMES: usize = 1_000_000;
    let names: Vec<String> = (0..NAMES).map(|i| format!("million_{i}")).collect();
    let core = SingletonCore::with_rate_limit(RateLimit::unlimited());
    let mut first = Duration::ZERO;
    let mut last = Duration::ZERO;
    let all = timed(|| {
        for (n, chunk) in names.chunks(10_000).enumerate() {
            let took = timed(|| {
                for name in chunk {
                    core.set(name, 1_u8).unwrap();
                }
            });
            if n == 0 {
                first = took;
            }
            last = took;
        }
    });
    println!(
        "{NAMES} sets of new names: {all:?}; per name {:.0} ns for the first 10k, {:.0} ns for the last 10k",
        first.as_secs_f64() * 1e9 / 1e4,
        last.as_secs_f64() * 1e9 / 1e4
    );
    assert!(all < Duration::from_secs(10), "{all:?}");
    // The SPEC: a new name costs about the same at 10,000 and at 1,000,000 live names.
    let ratio = last.as_secs_f64() / first.as_secs_f64();
    // Measured 0.8–1.6x on a quiet machine; the bound leaves room for a busy one.
    assert!(ratio < 4.0, "the last 10,000 new names cost {ratio:.2}x the first 10,000");
    // Reads stay lock-free and find every name.
    assert!(core.has("million_0") && core.has("million_999999"));
}
