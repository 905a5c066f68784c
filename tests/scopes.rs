//! Test scopes: parallel tests that replace singletons without touching each other, or the
//! global instances.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use singleton_kit::testing::Scope;
use singleton_kit::{manager, singleton, Instance};

#[singleton(name = "repo", factory = || Repo { kind: "postgres".into() })]
#[derive(Debug)]
pub struct Repo {
    kind: String,
}

#[singleton(name = "service", factory = Service::new)]
#[derive(Debug)]
pub struct Service {
    repo: String,
}

impl Service {
    fn new() -> Self {
        Service { repo: Repo::instance().kind.clone() }
    }
}

fn global_access(name: &str) -> u64 {
    manager().stats().unwrap().access_counts.get(name).copied().unwrap_or(0)
}

#[test]
fn a_replacement_is_seen_inside_run_and_the_global_one_outside() {
    #[singleton(name = "store", factory = || Store { kind: "s3" })]
    #[derive(Debug)]
    struct Store {
        kind: &'static str,
    }
    let global = Store::instance();
    let scope = Scope::new();
    scope.replace(Store { kind: "mock" });
    scope.run(|| {
        assert_eq!(Store::instance().kind, "mock");
        assert_eq!(Store::try_instance().unwrap().kind, "mock");
        assert_eq!(Store::with_instance(|r| r.kind), "mock");
    });
    let after = Store::instance();
    assert_eq!(after.kind, "s3");
    assert!(Instance::ptr_eq(&global, &after));
    // The three calls in the scope were not counted on the global instance; the two outside were.
    assert_eq!(global_access("store"), 2);
}

#[test]
fn two_threads_replace_the_same_type_at_once_and_each_sees_its_own() {
    for round in 0..50 {
        let barrier = Arc::new(Barrier::new(2));
        let handles: Vec<_> = ["left", "right"]
            .into_iter()
            .map(|side| {
                let barrier = Arc::clone(&barrier);
                thread::spawn(move || {
                    let scope = Scope::new();
                    scope.replace(Repo { kind: format!("{side}-{round}") });
                    barrier.wait();
                    scope.run(|| {
                        for _ in 0..20 {
                            assert_eq!(Repo::instance().kind, format!("{side}-{round}"));
                            assert_eq!(Service::instance().repo, format!("{side}-{round}"));
                            thread::yield_now();
                        }
                    });
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    }
    assert_eq!(Repo::instance().kind, "postgres");
}

#[test]
fn a_dependent_is_built_in_the_scope_from_the_fake_and_the_global_one_is_untouched() {
    #[singleton(name = "mailer", factory = || Mailer("smtp"))]
    #[derive(Debug)]
    struct Mailer(&'static str);
    #[singleton(name = "signup", factory = || Signup(Mailer::instance().0))]
    #[derive(Debug)]
    struct Signup(&'static str);

    let scope = Scope::new();
    scope.replace(Mailer("fake"));
    let scoped = scope.run(Signup::instance);
    assert_eq!(scoped.0, "fake");
    // The scope made nothing in the global core: the global dependent does not exist yet.
    assert!(!manager().has("signup"));
    assert!(!manager().has("mailer"));
    let global = Signup::instance();
    assert_eq!(global.0, "smtp");
    assert!(!Instance::ptr_eq(&scoped, &global));
    // And the scope's dependency was recorded in the scope, the global one globally.
    let registered = singleton_kit::registered();
    let signup = registered.iter().find(|r| r.name() == "signup").unwrap();
    assert_eq!(signup.dependencies(), ["mailer"]);
    assert_eq!(signup.access_count(), 1);
}

#[test]
fn run_async_keeps_the_scope_across_await_points_on_a_multi_thread_runtime() {
    #[singleton(name = "async_repo", factory = AsyncRepo::connect, async)]
    #[derive(Debug)]
    struct AsyncRepo(String);
    impl AsyncRepo {
        async fn connect() -> Self {
            tokio::task::yield_now().await;
            AsyncRepo("real".into())
        }
    }
    #[singleton(name = "async_service", factory = AsyncService::connect, async)]
    #[derive(Debug)]
    struct AsyncService(String);
    impl AsyncService {
        async fn connect() -> Self {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let repo = AsyncRepo::instance().await;
            AsyncService(format!("{}+{}", repo.0, Repo::instance().kind))
        }
    }

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let scope = Arc::new(Scope::new());
    scope.replace(AsyncRepo("fake".into()));
    scope.replace(Repo { kind: "mock".into() });
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let scope = Arc::clone(&scope);
            rt.spawn(async move {
                scope
                    .run_async(async {
                        for _ in 0..5 {
                            // Each await may resume on another worker thread.
                            tokio::time::sleep(Duration::from_millis(1)).await;
                            assert_eq!(AsyncRepo::instance().await.0, "fake");
                            assert_eq!(Repo::instance().kind, "mock");
                        }
                        AsyncService::instance().await.0.clone()
                    })
                    .await
            })
        })
        .collect();
    rt.block_on(async {
        for t in tasks {
            assert_eq!(t.await.unwrap(), "fake+mock");
        }
        // Outside the scope, on the same runtime: the real ones.
        assert_eq!(AsyncService::instance().await.0, "real+postgres");
    });
}

#[test]
fn dropping_the_scope_drops_what_was_made_in_it_dependents_first() {
    static ORDER: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    #[singleton(name = "drop_base", factory = || DropBase)]
    struct DropBase;
    impl Drop for DropBase {
        fn drop(&mut self) {
            ORDER.lock().unwrap().push("drop_base");
        }
    }
    #[singleton(name = "drop_top", factory = || { let _ = DropBase::instance(); DropTop })]
    struct DropTop;
    impl Drop for DropTop {
        fn drop(&mut self) {
            ORDER.lock().unwrap().push("drop_top");
        }
    }
    let scope = Scope::new();
    scope.run(|| drop(DropTop::instance()));
    assert_eq!(scope.created(), ["drop_base", "drop_top"]);
    assert!(ORDER.lock().unwrap().is_empty());
    drop(scope);
    assert_eq!(*ORDER.lock().unwrap(), ["drop_top", "drop_base"]);
    assert!(!manager().has("drop_top") && !manager().has("drop_base"));
}

#[test]
fn created_lists_each_name_once_in_the_order_first_made_or_replaced() {
    #[singleton(name = "c_one", factory = || COne)]
    struct COne;
    #[singleton(name = "c_two", factory = || { let _ = COne::instance(); CTwo })]
    struct CTwo;
    #[singleton(name = "c_three", factory = || CThree)]
    struct CThree;
    let scope = Scope::new();
    scope.replace(CThree);
    scope.run(|| {
        let _ = CTwo::instance();
        let _ = CTwo::instance();
        let _ = COne::instance();
    });
    scope.replace(CThree);
    assert_eq!(scope.created(), ["c_three", "c_one", "c_two"]);
}

#[test]
fn scope_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Scope>();
    let scope = Arc::new(Scope::new());
    scope.replace(Repo { kind: "shared".into() });
    let other = Arc::clone(&scope);
    let seen = thread::spawn(move || other.run(|| Repo::instance().kind.clone())).join().unwrap();
    assert_eq!(seen, "shared");
}

#[test]
fn replace_after_use_gives_new_calls_the_new_value_and_old_handles_keep_the_old() {
    #[singleton(name = "flags", factory = || Flags(1))]
    #[derive(Debug)]
    struct Flags(u8);
    let scope = Scope::new();
    let first = scope.run(Flags::instance);
    assert_eq!(first.0, 1);
    scope.replace(Flags(2));
    assert_eq!(scope.run(|| Flags::instance().0), 2);
    assert_eq!(first.0, 1);
    assert_eq!(Flags::instance().0, 1);
}

#[test]
fn name_keyed_operations_in_a_scope_reach_the_global_registry_without_its_fakes() {
    #[singleton(name = "audit_sink", factory = || AuditSink("file"))]
    #[derive(Debug)]
    struct AuditSink(&'static str);
    #[singleton(name = "auditor", factory = || Auditor(AuditSink::instance().0))]
    #[derive(Debug)]
    struct Auditor(&'static str);
    let scope = Scope::new();
    scope.replace(AuditSink("fake"));
    let by_name = scope.run(|| manager().get::<Auditor>("auditor").unwrap().unwrap());
    assert_eq!(by_name.0, "file", "a global singleton is never built from a scope's fake");
    assert!(Instance::ptr_eq(&by_name, &Auditor::instance()));
}

/// Scopes on several threads while other threads use the global instances: every count exact.
#[test]
fn scopes_and_global_use_at_once_keep_exact_counts() {
    #[singleton(name = "stress_counter", factory = || StressCounter(AtomicUsize::new(0)))]
    struct StressCounter(AtomicUsize);
    const THREADS: usize = 3;
    const CALLS: usize = 2_000;
    let _ = StressCounter::instance(); // created: the counts below start from 1
    let before = global_access("stress_counter");
    let start = Arc::new(Barrier::new(THREADS * 2));
    let mut handles = Vec::new();
    for _ in 0..THREADS {
        let global_start = Arc::clone(&start);
        handles.push(thread::spawn(move || {
            global_start.wait();
            for _ in 0..CALLS {
                StressCounter::with_instance(|c| c.0.fetch_add(1, SeqCst));
            }
            0
        }));
        let scoped_start = Arc::clone(&start);
        handles.push(thread::spawn(move || {
            let scope = Scope::new();
            scoped_start.wait();
            for _ in 0..CALLS {
                scope.run(|| StressCounter::instance().0.fetch_add(1, SeqCst));
            }
            scope.run(|| StressCounter::instance().0.load(SeqCst))
        }));
    }
    let scoped: Vec<usize> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    // Each scoped thread saw only its own instance; the global one only the global calls.
    assert_eq!(scoped.iter().filter(|&&n| n == CALLS).count(), THREADS);
    assert_eq!(StressCounter::instance().0.load(SeqCst), THREADS * CALLS);
    assert_eq!(global_access("stress_counter"), before + (THREADS * CALLS) as u64 + 1);
}

#[test]
fn a_factory_runs_once_per_scope_and_once_globally() {
    // A type of this test's own: other tests here make `Service` in scopes at the same time.
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    #[singleton(name = "once_per_scope", factory = || { CALLS.fetch_add(1, SeqCst); OncePerScope })]
    struct OncePerScope;
    for round in 1..=3 {
        let scope = Scope::new();
        scope.run(|| {
            let _ = OncePerScope::instance();
            let _ = OncePerScope::instance();
        });
        assert_eq!(CALLS.load(SeqCst), round, "once in each scope");
    }
    let _ = OncePerScope::instance();
    let _ = OncePerScope::instance();
    assert_eq!(CALLS.load(SeqCst), 4, "and once globally");
}

#[test]
fn a_run_async_future_that_outlives_its_scope_keeps_the_scope_until_it_is_dropped() {
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    #[singleton(name = "outlived", factory = || Outlived)]
    struct Outlived;
    impl Drop for Outlived {
        fn drop(&mut self) {
            DROPS.fetch_add(1, SeqCst);
        }
    }
    let scope = Scope::new();
    scope.replace(Repo { kind: "kept".into() });
    let mut future = Box::pin(scope.run_async(async {
        let kind = Repo::instance().kind.clone();
        let _ = Outlived::instance();
        kind
    }));
    drop(scope);
    // Still the scope's world while it is polled...
    let kind = futures::executor::block_on(future.as_mut());
    assert_eq!(kind, "kept");
    assert_eq!(DROPS.load(SeqCst), 0, "the future still holds the scope");
    // ...and its instances go when the future does.
    drop(future);
    assert_eq!(DROPS.load(SeqCst), 1);
    assert!(!manager().has("outlived"));
}
