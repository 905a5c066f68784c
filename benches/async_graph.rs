//! The async fast path and the dependency graph:
//!
//! - `async/instance_ready`: `Db::instance().await` of a created async singleton, polled once
//!   with a no-op waker, next to `sync/instance` (`T::instance()`) in the same run; target: the
//!   async one at most 1.5x the sync one;
//! - `sync/instance_scope_elsewhere`: `T::instance()` while another thread is inside a test
//!   scope (the watched path), to show what the one relaxed load saves when none is;
//! - `graph/graph_1000`: `graph()` of a core with 1,000 live singletons, each but the first made
//!   by a factory that asks for the one before it (target: at most 1 ms); `graph/to_dot_1000`
//!   writes that graph as DOT.
//!
//! `cargo bench --bench async_graph`.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use criterion::{criterion_group, Criterion};
use singleton_kit::{singleton, RateLimit, SingletonCore};

#[path = "support/mod.rs"]
mod support;

#[singleton(factory = || SyncHot(1))]
pub struct SyncHot(u64);

#[singleton(factory = AsyncHot::connect, async)]
pub struct AsyncHot(u64);

impl AsyncHot {
    async fn connect() -> Self {
        AsyncHot(1)
    }
}

/// One poll of a future that must be ready at once (the fast path).
#[inline(always)]
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("the singleton exists: its future is ready on the first poll"),
    }
}

fn hot_paths(c: &mut Criterion) {
    let _ = SyncHot::instance();
    let _ = futures::executor::block_on(AsyncHot::instance());
    let mut g = c.benchmark_group("fast_path");
    g.bench_function("sync/instance", |b| b.iter(|| black_box(SyncHot::instance().0)));
    g.bench_function("async/instance_ready", |b| b.iter(|| black_box(ready(AsyncHot::instance()).0)));
    // While another thread is inside a test scope, every thread takes the watched path (a look at
    // its own thread-local scope); with no scope anywhere, the rows above pay one relaxed load.
    let (entered, release) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
    let scoped = std::thread::spawn(move || {
        let scope = singleton_kit::testing::Scope::new();
        scope.run(|| {
            entered.0.send(()).expect("bench waits");
            release.1.recv().ok();
        });
    });
    entered.1.recv().expect("the scope is entered");
    g.bench_function("sync/instance_scope_elsewhere", |b| b.iter(|| black_box(SyncHot::instance().0)));
    release.0.send(()).expect("the scoped thread waits");
    scoped.join().expect("the scoped thread ends");
    g.finish();
}

fn graph(c: &mut Criterion) {
    let core = SingletonCore::with_rate_limit(RateLimit::unlimited());
    core.set("node_0", 0_u64).expect("unlimited");
    for i in 1..1000_u64 {
        core.get_or_create(&format!("node_{i}"), || {
            let before = core.get::<u64>(&format!("node_{}", i - 1)).expect("unlimited").expect("made");
            *before + 1
        })
        .expect("unlimited");
    }
    let made = core.graph();
    // The 1,000 live ones, and this file's two registered types.
    assert_eq!(made.nodes.len(), 1002);
    assert_eq!(made.edges.len(), 999);
    let mut g = c.benchmark_group("graph");
    g.bench_function("graph_1000", |b| b.iter(|| black_box(core.graph())));
    g.bench_function("to_dot_1000", |b| b.iter(|| black_box(made.to_dot())));
    g.finish();
}

criterion_group! {
    name = benches;
    config = support::criterion_config();
    targets = hot_paths, graph
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
