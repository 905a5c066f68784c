//! The listings, over 1,000 singletons, and what a singleton costs in memory:
//!
//! - `registry/registered_1000`: `singleton_kit::registered()` over the 1,000 `#[singleton]`
//!   types this file stamps out (target: at most 1 ms);
//! - `registry/stats_1000_live`: `stats()` of an isolated, unlimited core holding 1,000 live
//!   instances stored with `set`;
//! - `registry/execute_json_get` and `registry/execute_json_bad_request`: one admin request over
//!   JSON on the same core, parsed, run and answered (a `get` of a live name; an unknown
//!   operation);
//! - `registry/export_metrics_1000_live` (with `--features metrics`): `export_metrics()` of that
//!   core into a Prometheus recorder (target: at most 1 ms). It publishes a series for each of
//!   the 1,000 `#[singleton]` types, the core's 100 labelled run-time names and `(other)`, and
//!   the live gauge;
//! - memory, printed before the timings: the static data each registered singleton adds to the
//!   binary, and the size of a handle.
//!
//! `cargo bench --bench registry [--features metrics]`; `cargo run --release --example bench` prints the same figures
//! (and the heap each instance takes, which it counts with an allocator).

use std::hint::black_box;

use criterion::{criterion_group, Criterion};
use singleton_kit::{registered, Instance, RateLimit, SingletonCore};

#[path = "support/mod.rs"]
mod support;

use support::StaticData;

support::thousand_singletons!();

/// The static data one `#[singleton]` adds (see `StaticData`), and the size of a handle.
fn print_memory() {
    let data = StaticData::of_a_singleton();
    println!("memory: static data per registered singleton = {} B ({data}), plus its code", data.total());
    println!(
        "memory: handle Instance<T> = {} B (Arc<T> = {} B); per live instance the core keeps a node: \
         8 stripes x 128 B + metadata for a #[singleton] type, one 16-byte stripe + metadata for a \
         name stored by set (see `cargo run --release --example bench` and `cargo test --test memory` \
         for the counted heap)",
        std::mem::size_of::<Instance<u64>>(),
        std::mem::size_of::<std::sync::Arc<u64>>()
    );
}

fn listings(c: &mut Criterion) {
    let count = registered().len();
    assert!(count >= 1000, "the 1,000 stamped singletons are registered ({count})");
    let core = SingletonCore::with_rate_limit(RateLimit::unlimited());
    for i in 0..1000_u64 {
        core.set(&format!("live_{i}"), i).expect("unlimited");
    }
    assert_eq!(core.stats().expect("unlimited").total_singletons, 1000);

    let mut g = c.benchmark_group("registry");
    g.bench_function("registered_1000", |b| b.iter(|| black_box(registered())));
    g.bench_function("stats_1000_live", |b| b.iter(|| black_box(core.stats().expect("unlimited"))));
    let get = r#"{"operation": "get", "name": "live_500", "correlation_id": "req-1"}"#;
    assert!(core.execute_json(get).contains(r#""ok":true"#));
    g.bench_function("execute_json_get", |b| b.iter(|| black_box(core.execute_json(black_box(get)))));
    let bad = r#"{"operation": "frobnicate", "correlation_id": "req-2"}"#;
    assert!(core.execute_json(bad).contains("bad_request"));
    g.bench_function("execute_json_bad_request", |b| b.iter(|| black_box(core.execute_json(black_box(bad)))));
    #[cfg(feature = "metrics")]
    {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            g.bench_function("export_metrics_1000_live", |b| b.iter(|| core.export_metrics()));
        });
        assert!(handle.render().contains(r#"singleton_accesses_total{singleton="(other)"}"#));
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = support::criterion_config();
    targets = listings
}

fn main() {
    print_memory();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
