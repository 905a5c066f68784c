//! Health checks and graceful shutdown: `health = path` and `on_shutdown = path`, sync and async,
//! under tokio's multi-thread and current-thread runtimes and `futures::executor::block_on`.
//!
//! Each test uses its own `#[singleton]` types on an isolated core, so tests running at once do
//! not see each other's hooks.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use singleton_kit::{singleton, AdminPolicy, CheckStatus, HealthStatus, HookOutcome, SingletonCore};

/// Held by the tests that shut the global core down, so that none shuts down another's instances.
static GLOBAL: Mutex<()> = Mutex::new(());

fn global() -> std::sync::MutexGuard<'static, ()> {
    GLOBAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// When each hook started and ended, by name.
static SPANS: Mutex<Vec<(&'static str, Instant, Instant)>> = Mutex::new(Vec::new());

fn span_of(name: &str) -> (Instant, Instant) {
    let spans = SPANS.lock().unwrap();
    let (_, start, end) = spans.iter().find(|(n, ..)| *n == name).unwrap_or_else(|| panic!("{name} ran"));
    (*start, *end)
}

async fn sleep(ms: u64) {
    futures_timer_sleep(Duration::from_millis(ms)).await;
}

/// A runtime-agnostic sleep for the hooks, so they run under any executor.
fn futures_timer_sleep(d: Duration) -> impl std::future::Future<Output = ()> {
    let (tx, rx) = futures::channel::oneshot::channel::<()>();
    std::thread::spawn(move || {
        std::thread::sleep(d);
        let _ = tx.send(());
    });
    async move {
        let _ = rx.await;
    }
}

macro_rules! hooked {
    ($ty:ident, $name:literal, deps = [$($dep:ident),*], ms = $ms:expr) => {
        #[singleton(name = $name, factory = $ty::make, on_shutdown = $ty::close)]
        pub struct $ty;
        impl $ty {
            fn make() -> Self {
                $(let _ = $dep::instance();)*
                $ty
            }
            async fn close(&self) {
                let start = Instant::now();
                sleep($ms).await;
                SPANS.lock().unwrap().push(($name, start, Instant::now()));
            }
        }
    };
}

// A chain c -> b -> a (c depends on b, b on a), and a diamond top -> {left, right} -> bottom.
hooked!(ChainA, "chain_a", deps = [], ms = 30);
hooked!(ChainB, "chain_b", deps = [ChainA], ms = 30);
hooked!(ChainC, "chain_c", deps = [ChainB], ms = 30);
hooked!(Bottom, "diamond_bottom", deps = [], ms = 20);
hooked!(Left, "diamond_left", deps = [Bottom], ms = 20);
hooked!(Right, "diamond_right", deps = [Bottom], ms = 20);
hooked!(Top, "diamond_top", deps = [Left, Right], ms = 20);
// Two independent 200 ms hooks.
hooked!(SlowOne, "slow_one", deps = [], ms = 200);
hooked!(SlowTwo, "slow_two", deps = [], ms = 200);

#[test]
fn hooks_run_dependents_first_on_a_chain_and_a_diamond() {
    let _global = global();
    let _ = ChainC::instance();
    let _ = Top::instance();
    // The global core holds them; shut down only these by running on the global core once.
    let report = futures::executor::block_on(singleton_kit::shutdown_async(Duration::from_secs(5)));
    for name in
        ["chain_a", "chain_b", "chain_c", "diamond_top", "diamond_left", "diamond_right", "diamond_bottom"]
    {
        let hook = report.hooks.iter().find(|h| h.name == name).unwrap();
        assert_eq!(hook.outcome, HookOutcome::Closed, "{name}");
    }
    let (c, b, a) = (span_of("chain_c"), span_of("chain_b"), span_of("chain_a"));
    assert!(c.1 <= b.0 && b.1 <= a.0, "c, then b, then a");
    let (top, left, right, bottom) = (
        span_of("diamond_top"),
        span_of("diamond_left"),
        span_of("diamond_right"),
        span_of("diamond_bottom"),
    );
    assert!(top.1 <= left.0 && top.1 <= right.0, "the top before its dependencies");
    assert!(left.1 <= bottom.0 && right.1 <= bottom.0, "the bottom last");
    assert!(left.0 < right.1 && right.0 < left.1, "left and right overlap");
    assert!(report.released >= 7);
}

#[test]
fn independent_hooks_run_concurrently() {
    let core = SingletonCore::new();
    core.get::<SlowOne>("slow_one").unwrap();
    core.get::<SlowTwo>("slow_two").unwrap();
    let started = Instant::now();
    let report = futures::executor::block_on(core.shutdown_async(Duration::from_secs(5)));
    let took = started.elapsed();
    assert!(took < Duration::from_millis(380), "two 200 ms hooks took {took:?}");
    assert!(report.hooks.iter().all(|h| h.outcome == HookOutcome::Closed), "{report:?}");
}

static STUCK_DROPS: AtomicUsize = AtomicUsize::new(0);
static QUICK_DROPS: AtomicUsize = AtomicUsize::new(0);

#[singleton(name = "stuck", factory = || Stuck, on_shutdown = Stuck::close)]
pub struct Stuck;
impl Stuck {
    async fn close(&self) {
        sleep(10_000).await;
    }
}
impl Drop for Stuck {
    fn drop(&mut self) {
        STUCK_DROPS.fetch_add(1, SeqCst);
    }
}

#[singleton(name = "stuck_too", factory = || StuckToo, on_shutdown = StuckToo::close)]
pub struct StuckToo;
impl StuckToo {
    async fn close(&self) {
        sleep(10_000).await;
    }
}

#[singleton(name = "quick", factory = || Quick, on_shutdown = Quick::close)]
pub struct Quick;
impl Quick {
    fn close(&self) {}
}
impl Drop for Quick {
    fn drop(&mut self) {
        QUICK_DROPS.fetch_add(1, SeqCst);
    }
}

#[test]
fn a_hook_past_the_deadline_is_abandoned_and_everything_is_still_released() {
    let core = SingletonCore::new();
    core.get::<Stuck>("stuck").unwrap();
    core.get::<Quick>("quick").unwrap();
    core.set("plain", 1_u8).unwrap();
    let started = Instant::now();
    let report = futures::executor::block_on(core.shutdown_async(Duration::from_millis(300)));
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    let outcome = |name: &str| report.hooks.iter().find(|h| h.name == name).unwrap().outcome;
    assert_eq!(outcome("stuck"), HookOutcome::TimedOut);
    assert_eq!(outcome("quick"), HookOutcome::Closed);
    assert_eq!(outcome("plain"), HookOutcome::NoHook);
    assert_eq!(report.released, 3);
    assert_eq!((STUCK_DROPS.load(SeqCst), QUICK_DROPS.load(SeqCst)), (1, 1), "each dropped once");
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["released"], 3);
    assert!(json["ms"].is_f64());
    assert_eq!(json["hooks"][0], json!({"name": "plain", "outcome": "no_hook", "ms": 0.0}));
    // A second call with nothing created since runs no hook and releases nothing.
    let again = futures::executor::block_on(core.shutdown_async(Duration::from_millis(300)));
    assert_eq!((again.released, again.hooks.len()), (0, 0));
}

#[singleton(name = "panicky", factory = || Panicky, on_shutdown = Panicky::close)]
pub struct Panicky;
impl Panicky {
    fn close(&self) {
        panic!("the exporter is gone");
    }
}

static HOOK_SAW_DEPENDENCY: AtomicUsize = AtomicUsize::new(0);

#[singleton(name = "needs_dep", factory = NeedsDep::make, on_shutdown = NeedsDep::close)]
pub struct NeedsDep;
impl NeedsDep {
    fn make() -> Self {
        let _ = TheDep::instance();
        NeedsDep
    }
    async fn close(&self) {
        // Its dependency is still alive: the hook may use it.
        if TheDep::instance().0 == 7 {
            HOOK_SAW_DEPENDENCY.fetch_add(1, SeqCst);
        }
    }
}

#[singleton(name = "the_dep", factory = || TheDep(7))]
pub struct TheDep(u8);

#[test]
fn a_panicking_hook_is_caught_and_a_hook_may_use_its_dependency() {
    let core = SingletonCore::new();
    core.get::<Panicky>("panicky").unwrap();
    let report = futures::executor::block_on(core.shutdown_async(Duration::from_millis(300)));
    assert_eq!(report.hooks[0].outcome, HookOutcome::Panicked);
    assert_eq!(report.released, 1);

    // On the global core, where TheDep::instance() resolves.
    let _global = global();
    let _ = NeedsDep::instance();
    let report = futures::executor::block_on(singleton_kit::shutdown_async(Duration::from_secs(2)));
    assert!(report.hooks.iter().any(|h| h.name == "needs_dep" && h.outcome == HookOutcome::Closed));
    assert!(HOOK_SAW_DEPENDENCY.load(SeqCst) >= 1);
}

static REENTERED: Mutex<Option<usize>> = Mutex::new(None);

#[singleton(name = "reentrant", factory = || Reentrant, on_shutdown = Reentrant::close)]
pub struct Reentrant;
impl Reentrant {
    async fn close(&self) {
        // A shutdown from inside a hook: no deadlock, no hook run twice.
        let inner = REENTRANT_CORE.get().unwrap().shutdown_async(Duration::from_millis(100)).await;
        *REENTERED.lock().unwrap() = Some(inner.released);
    }
}

static REENTRANT_CORE: std::sync::OnceLock<&'static SingletonCore> = std::sync::OnceLock::new();

#[test]
fn a_hook_that_calls_shutdown_again_does_not_deadlock() {
    let core: &'static SingletonCore = Box::leak(Box::new(SingletonCore::new()));
    REENTRANT_CORE.set(core).unwrap();
    core.get::<Reentrant>("reentrant").unwrap();
    let report = futures::executor::block_on(core.shutdown_async(Duration::from_secs(2)));
    assert_eq!(report.hooks[0].outcome, HookOutcome::Closed);
    assert_eq!(*REENTERED.lock().unwrap(), Some(0), "the inner call did nothing");
    assert_eq!(report.released, 1);
}

static SYNC_CLOSED: AtomicUsize = AtomicUsize::new(0);
static ASYNC_CLOSED: AtomicUsize = AtomicUsize::new(0);

#[singleton(name = "sync_closer", factory = || SyncCloser, on_shutdown = SyncCloser::close)]
pub struct SyncCloser;
impl SyncCloser {
    fn close(&self) {
        SYNC_CLOSED.fetch_add(1, SeqCst);
    }
}

#[singleton(name = "async_closer", factory = || AsyncCloser, on_shutdown = AsyncCloser::close)]
pub struct AsyncCloser;
impl AsyncCloser {
    async fn close(&self) {
        ASYNC_CLOSED.fetch_add(1, SeqCst);
    }
}

#[test]
fn the_sync_shutdown_runs_sync_hooks_and_skips_async_ones() {
    let core = SingletonCore::new();
    core.get::<SyncCloser>("sync_closer").unwrap();
    core.get::<AsyncCloser>("async_closer").unwrap();
    assert_eq!(core.shutdown(), 2);
    assert_eq!((SYNC_CLOSED.load(SeqCst), ASYNC_CLOSED.load(SeqCst)), (1, 0));
    // Hooks never run in clear, delete or set.
    core.get::<SyncCloser>("sync_closer").unwrap();
    assert_eq!(core.clear(), 1);
    core.get::<SyncCloser>("sync_closer").unwrap();
    assert!(core.delete("sync_closer"));
    assert_eq!(SYNC_CLOSED.load(SeqCst), 1);
}

#[singleton(name = "racing", factory = || Racing, on_shutdown = Racing::close)]
pub struct Racing;
impl Racing {
    async fn close(&self) {
        sleep(5).await;
    }
}

#[test]
fn shutdown_racing_instance_on_other_threads_leaves_working_instances() {
    let _global = global();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Both threads are calling `instance()` before the first shutdown starts.
    let running = std::sync::Arc::new(std::sync::Barrier::new(3));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (stop, running) = (stop.clone(), running.clone());
            std::thread::spawn(move || {
                let _ = Racing::instance();
                running.wait();
                while !stop.load(SeqCst) {
                    let _ = Racing::instance();
                }
            })
        })
        .collect();
    running.wait();
    for _ in 0..20 {
        let report = futures::executor::block_on(singleton_kit::shutdown_async(Duration::from_millis(200)));
        assert!(report.hooks.iter().all(|h| h.outcome != HookOutcome::TimedOut), "{report:?}");
    }
    stop.store(true, SeqCst);
    for t in threads {
        t.join().expect("instance() kept working through the shutdowns");
    }
    let _ = Racing::instance(); // shutdown is not final
}

// ---------------------------------------------------------------------------------------------
// Health
// ---------------------------------------------------------------------------------------------

#[singleton(name = "h_up", factory = || HUp, health = HUp::check)]
pub struct HUp;
impl HUp {
    fn check(&self) -> Result<(), std::io::Error> {
        Ok(())
    }
}

#[singleton(name = "h_down", factory = || HDown, health = HDown::check)]
pub struct HDown;
impl HDown {
    async fn check(&self) -> Result<(), String> {
        Err("db.internal:5432 refused the connection".into())
    }
}

#[singleton(name = "h_panics", factory = || HPanics, health = HPanics::check)]
pub struct HPanics;
impl HPanics {
    fn check(&self) -> Result<(), String> {
        panic!("checker bug")
    }
}

#[singleton(name = "h_slow", factory = || HSlow, health = HSlow::check)]
pub struct HSlow;
impl HSlow {
    async fn check(&self) -> Result<(), String> {
        sleep(2_000).await;
        Ok(())
    }
}

static PENDING_MADE: AtomicUsize = AtomicUsize::new(0);

#[singleton(name = "h_pending", factory = HPending::make, health = HPending::check)]
pub struct HPending;
impl HPending {
    fn make() -> Self {
        PENDING_MADE.fetch_add(1, SeqCst);
        HPending
    }
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

fn check_of(report: &singleton_kit::HealthReport, name: &str) -> singleton_kit::HealthCheck {
    report.checks.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("{name} checked")).clone()
}

#[test]
fn health_reports_up_down_panics_timeouts_and_pending_without_creating_or_counting() {
    let core = SingletonCore::new();
    core.get::<HUp>("h_up").unwrap();
    let report = futures::executor::block_on(core.health_within(Duration::from_millis(200)));
    assert_eq!(check_of(&report, "h_up").status, CheckStatus::Up);
    assert_eq!(check_of(&report, "h_pending").status, CheckStatus::NotCreated);
    assert_eq!(PENDING_MADE.load(SeqCst), 0, "the check created nothing");
    assert_eq!(core.stats().unwrap().access_counts["h_up"], 1, "and counted no access");

    core.get::<HDown>("h_down").unwrap();
    core.get::<HPanics>("h_panics").unwrap();
    core.get::<HSlow>("h_slow").unwrap();
    let started = Instant::now();
    let report = futures::executor::block_on(core.health_within(Duration::from_millis(200)));
    assert!(started.elapsed() < Duration::from_secs(1), "the slow check was cut short");
    assert_eq!(report.status, HealthStatus::Down);
    let down = check_of(&report, "h_down");
    assert_eq!(
        (down.status, down.error.as_deref()),
        (CheckStatus::Down, Some("db.internal:5432 refused the connection"))
    );
    let panics = check_of(&report, "h_panics");
    assert_eq!(panics.status, CheckStatus::Down);
    assert!(panics.error.unwrap().contains("checker bug"));
    assert_eq!(check_of(&report, "h_slow").status, CheckStatus::TimedOut);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["status"], "down");
    let names: Vec<&str> =
        json["checks"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted);
    let first = &json["checks"][0];
    for key in ["name", "status", "latency_ms", "error"] {
        assert!(first.get(key).is_some(), "{key} in {first}");
    }
}

#[test]
fn health_over_json_is_async_only_and_shows_errors_only_to_an_administrator() {
    let core = SingletonCore::new();
    core.get::<HDown>("h_down").unwrap();
    let sync: Value = serde_json::from_str(&core.execute_json(r#"{"operation": "health"}"#)).unwrap();
    assert_eq!(sync["error"]["kind"], "needs_await");
    let answer = |admin: &singleton_kit::Admin<'_>, request: &str| -> Value {
        serde_json::from_str(&futures::executor::block_on(admin.execute_json_async(request))).unwrap()
    };
    let down = |answer: &Value| {
        answer["result"]["checks"].as_array().unwrap().iter().find(|c| c["name"] == "h_down").unwrap().clone()
    };
    let public = core.admin(AdminPolicy::observe_only().require_token("t0k3n"));
    let anyone = answer(&public, r#"{"operation": "health"}"#);
    assert_eq!(anyone["result"]["status"], "down");
    assert!(!anyone.to_string().contains("db.internal"), "{anyone}");
    let admin = answer(&public, r#"{"operation": "health", "token": "t0k3n"}"#);
    assert!(down(&admin)["error"].as_str().unwrap().contains("db.internal"));
    let trusted = answer(&core.admin(AdminPolicy::all()), r#"{"operation": "health"}"#);
    assert!(down(&trusted)["error"].as_str().unwrap().contains("db.internal"));
}

#[test]
fn health_and_shutdown_run_under_tokio_runtimes_too() {
    for multi in [true, false] {
        let rt = if multi {
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
        } else {
            tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
        };
        let core = SingletonCore::new();
        core.get::<HUp>("h_up").unwrap();
        core.get::<StuckToo>("stuck_too").unwrap();
        let (health, report) = rt.block_on(async {
            (
                core.health_within(Duration::from_millis(100)).await,
                core.shutdown_async(Duration::from_millis(100)).await,
            )
        });
        assert_eq!(check_of(&health, "h_up").status, CheckStatus::Up);
        assert!(report.hooks.iter().any(|h| h.name == "stuck_too" && h.outcome == HookOutcome::TimedOut));
    }
}
