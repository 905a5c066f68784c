//! Async singletons: `#[singleton(factory = .., async)]`, `instance().await`, one shared creation
//! that survives cancellation, cycles as errors, and the name-keyed async operations, under
//! tokio's multi-thread and current-thread runtimes and `futures::executor::block_on`.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use singleton_kit::{manager, singleton, Instance, SingletonCore, SingletonError};

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// A future that is pending `n` times (waking itself) before it is ready: work that yields,
/// without a runtime's timer, so it runs under any executor.
async fn yield_times(n: usize) {
    let mut left = n;
    std::future::poll_fn(move |cx| {
        if left == 0 {
            return std::task::Poll::Ready(());
        }
        left -= 1;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    })
    .await;
}

fn assert_send<T: Send + 'static>(_: &T) {}

// -------------------------------------------------------------------------------------------------
// Exactly once, under each executor
// -------------------------------------------------------------------------------------------------

macro_rules! counted_singleton {
    ($ty:ident, $calls:ident, $name:literal) => {
        static $calls: AtomicUsize = AtomicUsize::new(0);

        #[singleton(name = $name, factory = $ty::connect, async)]
        #[derive(Debug)]
        pub struct $ty {
            id: usize,
        }

        impl $ty {
            async fn connect() -> Self {
                let id = $calls.fetch_add(1, SeqCst);
                yield_times(20).await;
                $ty { id }
            }
        }
    };
}

counted_singleton!(MtDb, MT_CALLS, "mt_db");
counted_singleton!(CtDb, CT_CALLS, "ct_db");
counted_singleton!(BoDb, BO_CALLS, "bo_db");

#[test]
fn exactly_once_with_64_tasks_on_tokio_multi_thread() {
    let rt = multi_thread();
    let handles: Vec<_> = (0..64).map(|_| rt.spawn(async { MtDb::instance().await })).collect();
    let all: Vec<Instance<MtDb>> = rt.block_on(async {
        let mut all = Vec::new();
        for h in handles {
            all.push(h.await.unwrap());
        }
        all
    });
    assert_eq!(MT_CALLS.load(SeqCst), 1);
    assert!(all.iter().all(|i| Instance::ptr_eq(i, &all[0]) && i.id == 0));
    let stats = manager().stats().unwrap();
    assert_eq!(stats.access_counts["mt_db"], 64);
}

#[test]
fn exactly_once_with_64_tasks_on_tokio_current_thread() {
    let rt = current_thread();
    let all = rt.block_on(async {
        let handles: Vec<_> = (0..64).map(|_| tokio::spawn(CtDb::instance())).collect();
        let mut all = Vec::new();
        for h in handles {
            all.push(h.await.unwrap());
        }
        all
    });
    assert_eq!(CT_CALLS.load(SeqCst), 1);
    assert!(all.iter().all(|i| Instance::ptr_eq(i, &all[0]) && i.id == 0));
}

#[test]
fn exactly_once_with_64_futures_under_block_on() {
    let all = futures::executor::block_on(futures::future::join_all((0..64).map(|_| BoDb::instance())));
    assert_eq!(BO_CALLS.load(SeqCst), 1);
    assert_eq!(all.len(), 64);
    assert!(all.iter().all(|i| Instance::ptr_eq(i, &all[0]) && i.id == 0));
}

#[test]
fn the_futures_are_send_and_static() {
    let instance = MtDb::instance();
    let try_instance = MtDb::try_instance();
    assert_send(&instance);
    assert_send(&try_instance);
    let core = SingletonCore::new();
    let by_name = async move { core.get_or_create_async("x", || async { 1_u8 }).await.map(|_| ()) };
    assert_send(&by_name);
}

// -------------------------------------------------------------------------------------------------
// A thousand tasks waiting for one slow creation, on two workers
// -------------------------------------------------------------------------------------------------

static SLOW_CALLS: AtomicUsize = AtomicUsize::new(0);

#[singleton(factory = Slow::connect, async)]
pub struct Slow;

impl Slow {
    async fn connect() -> Self {
        SLOW_CALLS.fetch_add(1, SeqCst);
        tokio::time::sleep(Duration::from_millis(300)).await;
        Slow
    }
}

#[test]
fn a_thousand_tasks_await_one_slow_creation_on_two_workers() {
    let rt = multi_thread();
    rt.block_on(async {
        let handles: Vec<_> = (0..1000).map(|_| tokio::spawn(Slow::instance())).collect();
        let done = tokio::time::timeout(Duration::from_secs(20), async {
            for h in handles {
                h.await.unwrap();
            }
        })
        .await;
        assert!(done.is_ok(), "the waiting tasks did not all complete");
    });
    assert_eq!(SLOW_CALLS.load(SeqCst), 1);
}

// -------------------------------------------------------------------------------------------------
// Cancellation: the creation is driven on, the factory is called once
// -------------------------------------------------------------------------------------------------

static GATE_CALLS: AtomicUsize = AtomicUsize::new(0);
static GATE_POLLS_AFTER_OPEN: AtomicUsize = AtomicUsize::new(0);
static GATE_OPEN: AtomicBool = AtomicBool::new(false);

/// Pending until `GATE_OPEN`, waking itself every time: a creation that only another poll finishes.
async fn until(gate: &'static AtomicBool, polls: &'static AtomicUsize) {
    std::future::poll_fn(move |cx| {
        if gate.load(SeqCst) {
            polls.fetch_add(1, SeqCst);
            return std::task::Poll::Ready(());
        }
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    })
    .await;
}

#[singleton(factory = Gated::connect, async)]
pub struct Gated(usize);

impl Gated {
    async fn connect() -> Self {
        let n = GATE_CALLS.fetch_add(1, SeqCst);
        until(&GATE_OPEN, &GATE_POLLS_AFTER_OPEN).await;
        Gated(n)
    }
}

#[test]
fn a_cancelled_creation_is_finished_by_the_next_caller_with_one_factory_call() {
    let rt = current_thread();
    rt.block_on(async {
        // The first caller starts the creation and is dropped by its timeout.
        let first = tokio::time::timeout(Duration::from_millis(50), Gated::instance()).await;
        assert!(first.is_err(), "the gate is closed: the first caller times out");
        assert_eq!(GATE_CALLS.load(SeqCst), 1);
        assert!(!manager().has("gated"));
        GATE_OPEN.store(true, SeqCst);
        // The next caller drives the same creation on.
        let gated = tokio::time::timeout(Duration::from_secs(5), Gated::instance()).await.expect("finished");
        assert_eq!(gated.0, 0);
    });
    assert_eq!(GATE_CALLS.load(SeqCst), 1, "the factory ran once");
    assert_eq!(GATE_POLLS_AFTER_OPEN.load(SeqCst), 1);
}

static HANDOVER_CALLS: AtomicUsize = AtomicUsize::new(0);
static HANDOVER_OPEN: AtomicBool = AtomicBool::new(false);
static HANDOVER_POLLS: AtomicUsize = AtomicUsize::new(0);

#[singleton(factory = Handover::connect, async)]
#[derive(Debug)]
pub struct Handover;

impl Handover {
    async fn connect() -> Self {
        HANDOVER_CALLS.fetch_add(1, SeqCst);
        until(&HANDOVER_OPEN, &HANDOVER_POLLS).await;
        Handover
    }
}

#[test]
fn an_aborted_driving_task_hands_the_creation_to_a_waiting_one() {
    let rt = multi_thread();
    rt.block_on(async {
        let driver = tokio::spawn(Handover::instance());
        while HANDOVER_CALLS.load(SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        let waiter = tokio::spawn(Handover::instance());
        tokio::time::sleep(Duration::from_millis(20)).await;
        driver.abort();
        assert!(driver.await.unwrap_err().is_cancelled());
        HANDOVER_OPEN.store(true, SeqCst);
        tokio::time::timeout(Duration::from_secs(5), waiter).await.expect("the waiter finished it").unwrap();
    });
    assert_eq!(HANDOVER_CALLS.load(SeqCst), 1);
}

// -------------------------------------------------------------------------------------------------
// Failures and panics leave nothing; the next caller starts afresh
// -------------------------------------------------------------------------------------------------

static FLAKY_CALLS: AtomicUsize = AtomicUsize::new(0);

#[singleton(try_factory = FlakyClient::connect, async)]
#[derive(Debug)]
pub struct FlakyClient(usize);

impl FlakyClient {
    async fn connect() -> Result<Self, std::io::Error> {
        let n = FLAKY_CALLS.fetch_add(1, SeqCst);
        yield_times(3).await;
        match n {
            0 => Err(std::io::Error::other("connection refused")),
            1 => panic!("driver crashed"),
            _ => Ok(FlakyClient(n)),
        }
    }
}

#[test]
fn failing_and_panicking_async_factories_are_retried() {
    let rt = multi_thread();
    rt.block_on(async {
        let err = FlakyClient::try_instance().await.unwrap_err();
        assert!(matches!(&err, SingletonError::Factory { name, .. } if name == "flaky_client"), "{err}");
        assert!(err.to_string().contains("connection refused"));
        assert!(!manager().has("flaky_client"));
        let panicked = tokio::spawn(FlakyClient::try_instance()).await;
        assert!(panicked.unwrap_err().is_panic());
        assert!(!manager().has("flaky_client"));
        let ok = FlakyClient::try_instance().await.expect("third time");
        assert_eq!(ok.0, 2);
    });
    assert_eq!(FLAKY_CALLS.load(SeqCst), 3);
}

static SHARED_FAIL_CALLS: AtomicUsize = AtomicUsize::new(0);

#[singleton(try_factory = SharedFail::connect, async)]
#[derive(Debug)]
pub struct SharedFail;

impl SharedFail {
    async fn connect() -> Result<Self, std::io::Error> {
        SHARED_FAIL_CALLS.fetch_add(1, SeqCst);
        yield_times(50).await;
        Err(std::io::Error::other("down"))
    }
}

#[test]
fn every_caller_of_a_failed_shared_creation_gets_an_error_and_none_hangs() {
    let rt = multi_thread();
    rt.block_on(async {
        let handles: Vec<_> = (0..16).map(|_| tokio::spawn(SharedFail::try_instance())).collect();
        for h in handles {
            let result = tokio::time::timeout(Duration::from_secs(10), h).await.expect("no hang").unwrap();
            assert!(matches!(result, Err(SingletonError::Factory { .. })), "{result:?}");
        }
    });
    assert!(!manager().has("shared_fail"));
    // Waiters of a failed creation start afresh, as in the sync path: at least one call, at most
    // one per caller.
    let calls = SHARED_FAIL_CALLS.load(SeqCst);
    assert!((1..=16).contains(&calls), "{calls}");
}

// -------------------------------------------------------------------------------------------------
// Cycles through async factories
// -------------------------------------------------------------------------------------------------

#[singleton(name = "async_a", try_factory = AsyncA::connect, async)]
#[derive(Debug)]
pub struct AsyncA;
#[singleton(name = "async_b", try_factory = AsyncB::connect, async)]
#[derive(Debug)]
pub struct AsyncB;

impl AsyncA {
    async fn connect() -> Result<Self, SingletonError> {
        yield_times(2).await;
        AsyncB::try_instance().await?;
        Ok(AsyncA)
    }
}
impl AsyncB {
    async fn connect() -> Result<Self, SingletonError> {
        yield_times(2).await;
        AsyncA::try_instance().await?;
        Ok(AsyncB)
    }
}

#[singleton(name = "async_x", factory = AsyncX::connect, async)]
#[derive(Debug)]
pub struct AsyncX;
#[singleton(name = "async_y", factory = AsyncY::connect, async)]
pub struct AsyncY;

impl AsyncX {
    async fn connect() -> Self {
        let _ = AsyncY::instance().await;
        AsyncX
    }
}
impl AsyncY {
    async fn connect() -> Self {
        let _ = AsyncX::instance().await;
        AsyncY
    }
}

#[test]
fn an_async_cycle_is_an_error_within_a_timeout() {
    let rt = multi_thread();
    rt.block_on(async {
        let result =
            tokio::time::timeout(Duration::from_secs(5), AsyncA::try_instance()).await.expect("no hang");
        match result {
            Err(SingletonError::Cycle { path }) => assert_eq!(path, ["async_a", "async_b", "async_a"]),
            other => panic!("expected a cycle, got {other:?}"),
        }
        // From two tasks at once: each gets the cycle, none hangs.
        let a = tokio::spawn(AsyncA::try_instance());
        let b = tokio::spawn(AsyncB::try_instance());
        for h in [a.await.unwrap().map(|_| ()), b.await.unwrap().map(|_| ())] {
            let Err(SingletonError::Cycle { path }) = h else { panic!("expected a cycle, got {h:?}") };
            assert_eq!(path.len(), 3);
            assert_eq!(path.first(), path.last());
        }
    });
}

#[test]
fn an_async_cycle_panics_from_instance_naming_the_path() {
    let rt = current_thread();
    let panicked = rt.block_on(async {
        let task = tokio::spawn(AsyncX::instance());
        tokio::time::timeout(Duration::from_secs(5), task).await.expect("no hang").unwrap_err()
    });
    let payload = panicked.into_panic();
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(message.contains("async_x -> async_y -> async_x"), "{message}");
}

// -------------------------------------------------------------------------------------------------
// Name-keyed: NeedsAwait, get_async, get_or_create_async
// -------------------------------------------------------------------------------------------------

#[singleton(name = "token_cache", factory = TokenCache::load, async)]
#[derive(Debug)]
pub struct TokenCache(Vec<&'static str>);

impl TokenCache {
    async fn load() -> Self {
        yield_times(2).await;
        TokenCache(vec!["t1"])
    }
}

#[test]
fn get_of_an_async_singleton_needs_await_then_get_async_creates_it() {
    let err = manager().get::<TokenCache>("token_cache").unwrap_err();
    assert!(matches!(&err, SingletonError::NeedsAwait { name } if name == "token_cache"), "{err}");
    assert!(err.to_string().contains("token_cache"));
    assert!(!manager().has("token_cache"));
    let made =
        futures::executor::block_on(manager().get_async::<TokenCache>("token_cache")).unwrap().unwrap();
    assert_eq!(made.0, ["t1"]);
    let again = manager().get::<TokenCache>("token_cache").unwrap().expect("created");
    assert!(Instance::ptr_eq(&made, &again));
    let typed = futures::executor::block_on(TokenCache::instance());
    assert!(Instance::ptr_eq(&made, &typed));
    assert_eq!(manager().stats().unwrap().access_counts["token_cache"], 3);
    // A wrong type is refused before anything is created.
    let wrong = futures::executor::block_on(manager().get_async::<u32>("token_cache"));
    assert!(matches!(wrong, Err(SingletonError::TypeMismatch { .. })));
}

#[test]
fn get_or_create_async_shares_one_creation_and_counts_every_caller() {
    let core = Arc::new(SingletonCore::with_rate_limit(singleton_kit::RateLimit::unlimited()));
    let calls = Arc::new(AtomicUsize::new(0));
    let rt = multi_thread();
    let handles: Vec<_> = (0..32)
        .map(|_| {
            let (core, calls) = (Arc::clone(&core), Arc::clone(&calls));
            rt.spawn(async move {
                core.get_or_create_async("pool", || async move {
                    calls.fetch_add(1, SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    vec![1_u8, 2, 3]
                })
                .await
                .unwrap()
            })
        })
        .collect();
    rt.block_on(async {
        for h in handles {
            assert_eq!(*h.await.unwrap(), [1, 2, 3]);
        }
    });
    assert_eq!(calls.load(SeqCst), 1);
    assert_eq!(core.stats().unwrap().access_counts["pool"], 32);
}

#[test]
fn get_or_try_create_async_failure_is_not_cached_and_leaves_no_entry() {
    let core = SingletonCore::new();
    futures::executor::block_on(async {
        let failed =
            core.get_or_try_create_async::<u32, _, _, _>("port", || async { "x".parse::<u32>() }).await;
        assert!(matches!(failed, Err(SingletonError::Factory { ref name, .. }) if name == "port"));
        assert!(!core.has("port"));
        assert_eq!(core.stats().unwrap().total_singletons, 0);
        let port = core.get_or_try_create_async("port", || async { "8080".parse::<u32>() }).await.unwrap();
        assert_eq!(*port, 8080);
    });
}

#[test]
fn a_cancelled_get_or_create_async_is_finished_by_the_next_caller() {
    static OPEN: AtomicBool = AtomicBool::new(false);
    static POLLS: AtomicUsize = AtomicUsize::new(0);
    let core = SingletonCore::new();
    let calls = AtomicUsize::new(0);
    let rt = current_thread();
    rt.block_on(async {
        let first = core.get_or_create_async("slow_conn", || {
            calls.fetch_add(1, SeqCst);
            async {
                until(&OPEN, &POLLS).await;
                "first"
            }
        });
        let first = tokio::time::timeout(Duration::from_millis(30), first).await;
        assert!(first.is_err(), "{first:?}");
        OPEN.store(true, SeqCst);
        let second = core.get_or_create_async("slow_conn", || {
            calls.fetch_add(1, SeqCst);
            async { "second" }
        });
        assert_eq!(*second.await.unwrap(), "first");
    });
    assert_eq!(calls.load(SeqCst), 1);
}

#[test]
fn a_sync_singleton_can_be_awaited_by_name() {
    #[singleton(name = "plain_settings", factory = || PlainSettings(3))]
    struct PlainSettings(u8);
    let got =
        futures::executor::block_on(manager().get_async::<PlainSettings>("plain_settings")).unwrap().unwrap();
    assert_eq!(got.0, 3);
    assert!(Instance::ptr_eq(&got, &PlainSettings::instance()));
}

#[test]
fn async_factories_may_use_sync_and_async_singletons() {
    #[singleton(name = "region_cfg", factory = || RegionCfg("eu-west-1"))]
    struct RegionCfg(&'static str);
    #[singleton(name = "credentials", factory = Credentials::load, async)]
    struct Credentials(&'static str);
    impl Credentials {
        async fn load() -> Self {
            yield_times(2).await;
            Credentials("key")
        }
    }
    #[singleton(name = "s3_client", factory = S3Client::connect, async)]
    struct S3Client(String);
    impl S3Client {
        async fn connect() -> Self {
            let credentials = Credentials::instance().await;
            S3Client(format!("{}:{}", RegionCfg::instance().0, credentials.0))
        }
    }
    let client = futures::executor::block_on(S3Client::instance());
    assert_eq!(client.0, "eu-west-1:key");
    let r = singleton_kit::registered().into_iter().find(|r| r.name() == "s3_client").unwrap();
    assert!(r.is_async() && r.is_created() && r.init_duration().is_some());
}

/// A fast path check that needs no timing: a created singleton's future is ready on its first
/// poll, with a waker that must never be used.
#[test]
fn a_created_async_singleton_is_ready_on_the_first_poll() {
    let _ = futures::executor::block_on(BoDb::instance());
    let mut fut = std::pin::pin!(BoDb::instance());
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    assert!(fut.as_mut().poll(&mut cx).is_ready());
}
