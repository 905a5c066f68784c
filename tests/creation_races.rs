//! Races and faults around the shared async creation and the creation record: a cancelled or
//! racing caller that started a creation, a parked creation whose core or scope is dropped, a
//! factory that panics in another caller's poll, and a value whose `Drop` panics while a
//! creation ends. Each of these once leaked a handle, counted a phantom access, left a stale
//! record behind or hung.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use singleton_kit::testing::Scope;
use singleton_kit::{singleton, Instance, SingletonCore};

fn poll_once<F: Future + ?Sized>(f: Pin<&mut F>) -> Poll<F::Output> {
    let mut cx = Context::from_waker(Waker::noop());
    f.poll(&mut cx)
}

/// Pending (waking itself) until `gate` is set.
async fn until(gate: Arc<AtomicBool>) {
    std::future::poll_fn(move |cx| {
        if gate.load(SeqCst) {
            return Poll::Ready(());
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await;
}

struct Tracked(Arc<AtomicUsize>);

/// The creation of "x" on `core`, which waits for `gate` and then makes a value that counts its
/// drops in `drops`.
fn gated<'c>(
    core: &'c SingletonCore,
    gate: &Arc<AtomicBool>,
    drops: &Arc<AtomicUsize>,
) -> Pin<Box<impl Future<Output = singleton_kit::Result<Instance<Tracked>>> + 'c>> {
    let (g, d) = (gate.clone(), drops.clone());
    Box::pin(core.get_or_create_async("x", move || async move {
        until(g).await;
        Tracked(d)
    }))
}

/// A call for "x" that must join the creation already under way.
fn joining(
    core: &SingletonCore,
) -> Pin<Box<impl Future<Output = singleton_kit::Result<Instance<Tracked>>> + '_>> {
    Box::pin(core.get_or_create_async::<Tracked, _, _>("x", || async { unreachable!("one creation") }))
}

/// The instance a call gives once the gate is open: it must be ready at once.
fn ready_now<F: Future<Output = singleton_kit::Result<Instance<Tracked>>> + ?Sized>(
    f: Pin<&mut F>,
) -> Instance<Tracked> {
    match poll_once(f) {
        Poll::Ready(r) => r.expect("created"),
        Poll::Pending => panic!("the gate is open"),
    }
}
impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

/// A cancelled starter whose creation is finished by another caller gets an outcome stored
/// in the global record that nobody ever takes: a leaked handle (the value is never dropped) and
/// an access counted for a call that was cancelled.
#[test]
fn a_cancelled_starter_leaves_no_outcome_behind() {
    let core = SingletonCore::new();
    let gate = Arc::new(AtomicBool::new(false));
    let drops = Arc::new(AtomicUsize::new(0));
    let mut starter = gated(&core, &gate, &drops);
    assert!(poll_once(starter.as_mut()).is_pending());
    drop(starter); // cancelled: the creation is parked in the record
    gate.store(true, SeqCst);
    let mut next = joining(&core);
    let got = ready_now(next.as_mut());
    drop(next);
    // One call returned the instance: the count must be 1 (SPEC: a cancelled call counts none).
    let accesses = core.stats().unwrap().access_counts["x"];
    drop(got);
    assert_eq!(core.clear(), 1);
    assert_eq!(drops.load(SeqCst), 1, "the value must be dropped once the core and the last handle let go");
    assert_eq!(accesses, 1, "access count after one successful call");
}

/// the same with the cancelled starter and a waiter that was already registered.
#[test]
fn a_cancelled_starter_with_a_waiter_counts_one_access_and_drops_once() {
    let core = SingletonCore::new();
    let gate = Arc::new(AtomicBool::new(false));
    let drops = Arc::new(AtomicUsize::new(0));
    let mut starter = gated(&core, &gate, &drops);
    assert!(poll_once(starter.as_mut()).is_pending());
    let mut waiter = joining(&core);
    assert!(poll_once(waiter.as_mut()).is_pending());
    drop(starter);
    gate.store(true, SeqCst);
    let got = ready_now(waiter.as_mut());
    drop(waiter);
    let accesses = core.stats().unwrap().access_counts["x"];
    drop(got);
    core.clear();
    assert_eq!((accesses, drops.load(SeqCst)), (1, 1), "(access count, drops)");
}

/// an async creation parked in the global record outlives its entry (an isolated core, or a
/// scope, that is dropped). The record is keyed by the entry's address, so a new entry at the
/// same address "is being created" by a stale async creation: sync creation gets NeedsAwait.
#[test]
fn a_parked_creation_ends_with_its_core() {
    for _ in 0..50 {
        let core = SingletonCore::new();
        let mut fut = Box::pin(core.get_or_create_async("p", std::future::pending::<u8>));
        assert!(poll_once(fut.as_mut()).is_pending());
        drop(fut);
        drop(core);
    }
    for i in 0..2000 {
        let core = SingletonCore::new();
        if let Err(e) = core.get_or_create(&format!("q{i}"), || 1_u32) {
            panic!("iteration {i}: a fresh core's get_or_create failed: {e}");
        }
    }
}

// --- the scope flavour of F2 -------------------------------------------------------------------

static PARKED_CALLS: AtomicUsize = AtomicUsize::new(0);

#[singleton(name = "review_parked", factory = ReviewParked::connect, async)]
pub struct ReviewParked;
impl ReviewParked {
    async fn connect() -> Self {
        PARKED_CALLS.fetch_add(1, SeqCst);
        std::future::pending::<()>().await;
        ReviewParked
    }
}

#[singleton(name = "review_plain", factory = || ReviewPlain(7))]
pub struct ReviewPlain(u32);

#[test]
fn a_parked_creation_ends_with_its_scope() {
    for _ in 0..50 {
        let scope = Scope::new();
        let mut fut = Box::pin(scope.run_async(async {
            let _ = ReviewParked::instance().await;
        }));
        assert!(poll_once(fut.as_mut()).is_pending());
        drop(fut);
        drop(scope);
    }
    for i in 0..2000 {
        let scope = Scope::new();
        let r = catch_unwind(AssertUnwindSafe(|| scope.run(|| ReviewPlain::instance().0)));
        assert!(matches!(r, Ok(7)), "iteration {i}: a sync singleton in a fresh scope panicked");
    }
}

/// the starter's factory panics while another caller drives it. The other caller panics
/// (fine), its ForgetIfEmpty detaches the empty entry, and the starter then hits an internal
/// `expect("put back on every retry")`.
#[test]
fn a_starter_whose_factory_panicked_in_another_callers_poll_gets_an_error() {
    let core = SingletonCore::new();
    let gate = Arc::new(AtomicBool::new(false));
    let g = gate.clone();
    let mut starter = Box::pin(core.get_or_create_async("x", move || async move {
        until(g).await;
        if true {
            panic!("boom");
        }
        0_u8
    }));
    assert!(poll_once(starter.as_mut()).is_pending());
    let mut waiter = Box::pin(core.get_or_create_async("x", || async { 1_u8 }));
    assert!(poll_once(waiter.as_mut()).is_pending());
    gate.store(true, SeqCst);
    // The caller whose poll ran the panicking factory sees the panic.
    let w = catch_unwind(AssertUnwindSafe(|| poll_once(waiter.as_mut())));
    assert!(w.is_err(), "the driving caller's poll panics");
    drop(waiter);
    // The caller that started it gets an error that says so, not a panic of its own.
    match catch_unwind(AssertUnwindSafe(|| poll_once(starter.as_mut()))) {
        Ok(Poll::Ready(Err(err))) => {
            assert_eq!(err.kind(), "factory", "{err}");
            assert!(err.to_string().contains("boom"), "{err}");
        }
        Ok(Poll::Ready(Ok(v))) => panic!("the factory panicked, yet the starter got {}", *v),
        Ok(Poll::Pending) => panic!("the starter is left pending"),
        Err(_) => panic!("the starter panicked"),
    }
    // Nothing was left behind: the next call creates.
    let made = futures::executor::block_on(core.get_or_create_async("x", || async { 2_u8 })).unwrap();
    assert_eq!(*made, 2);
}

/// a value dropped inside `Slot::fill` (the factory's own value, when a `set` won meanwhile)
/// panics before the creation is finished: the record keeps a creation that never ends, and the
/// next creation of that name (after a delete) waits for ever.
#[test]
fn a_panicking_drop_while_a_creation_ends_still_ends_it() {
    struct Bomb(bool);
    impl Drop for Bomb {
        fn drop(&mut self) {
            if self.0 {
                panic!("bomb");
            }
        }
    }
    let core: &'static SingletonCore = Box::leak(Box::new(SingletonCore::new()));
    let r = catch_unwind(AssertUnwindSafe(|| {
        core.get_or_create("x", || {
            core.set("x", Bomb(false)).unwrap(); // a set wins while the factory runs
            Bomb(true) // dropped by fill, and its Drop panics
        })
    }));
    assert!(r.is_err(), "the panic of the dropped value goes on");
    assert!(core.delete("x"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let got = core.get_or_create("x", || Bomb(false)).is_ok();
        let _ = tx.send(got);
    });
    let got = rx.recv_timeout(std::time::Duration::from_secs(3));
    assert!(matches!(got, Ok(true)), "a fresh creation of `x` hung: {got:?}");
}

/// the starter returns the instance from the slot in the window between another caller's
/// `fill` and its `outcomes.insert(starter, ..)`: the outcome is stored for a caller that already
/// returned. Busy-polling both sides from two threads.
#[test]
fn a_starter_racing_the_caller_that_ends_its_creation_leaks_nothing() {
    let mut leaked = 0;
    let rounds = 400;
    for _ in 0..rounds {
        let core = Arc::new(SingletonCore::new());
        let drops = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(AtomicBool::new(false));
        let started = Arc::new(AtomicBool::new(false));
        let s = {
            let (core, drops, gate, started) = (core.clone(), drops.clone(), gate.clone(), started.clone());
            std::thread::spawn(move || {
                let mut f = gated(&core, &gate, &drops);
                loop {
                    if let Poll::Ready(r) = poll_once(f.as_mut()) {
                        return r.is_ok();
                    }
                    started.store(true, SeqCst);
                }
            })
        };
        while !started.load(SeqCst) {
            std::hint::spin_loop();
        }
        let w = {
            let (core, gate) = (core.clone(), gate.clone());
            std::thread::spawn(move || {
                let mut f = joining(&core);
                let mut n = 0;
                loop {
                    if let Poll::Ready(r) = poll_once(f.as_mut()) {
                        return r.is_ok();
                    }
                    n += 1;
                    if n == 3 {
                        gate.store(true, SeqCst);
                    }
                }
            })
        };
        assert!(s.join().unwrap() && w.join().unwrap());
        let accesses = core.stats().unwrap().access_counts["x"];
        core.clear();
        if drops.load(SeqCst) != 1 || accesses != 2 {
            leaked += 1;
        }
    }
    assert_eq!(leaked, 0, "rounds (of {rounds}) with a leaked instance or a wrong count");
}

/// An async factory that asks for its own name through the sync path is a cycle, not a
/// `NeedsAwait`: waiting could never end.
#[test]
fn an_async_factory_asking_for_itself_by_name_is_a_cycle() {
    let core: &'static SingletonCore = Box::leak(Box::new(SingletonCore::new()));
    let made =
        futures::executor::block_on(core.get_or_try_create_async("me", move || async move {
            core.get_or_create("me", || 1_u8).map(|v| *v)
        }));
    match made {
        Err(singleton_kit::SingletonError::Cycle { path }) => assert_eq!(path, ["me", "me"]),
        other => panic!("expected a cycle, got {:?}", other.map(|v| *v)),
    }
}

/// A sync call never waits for an async creation, also once the call that started it is gone:
/// it once waited on a condition variable for as long as nobody polled the creation, for ever
/// here. The creation itself is then driven on by the next async caller.
#[test]
fn a_sync_call_does_not_wait_for_an_async_creation_whose_starter_is_gone() {
    let core = Arc::new(SingletonCore::new());
    let gate = Arc::new(AtomicBool::new(false));
    let drops = Arc::new(AtomicUsize::new(0));
    let mut starter = gated(&core, &gate, &drops);
    assert!(poll_once(starter.as_mut()).is_pending());
    drop(starter);

    // On its own thread, so that a hang fails the test instead of stopping the run.
    let (tx, rx) = std::sync::mpsc::channel();
    let sync_core = core.clone();
    std::thread::spawn(move || {
        let _ = tx.send(sync_core.get_or_create("x", || 9_u32).map(|v| *v));
    });
    match rx.recv_timeout(std::time::Duration::from_secs(10)) {
        Ok(Err(singleton_kit::SingletonError::NeedsAwait { name })) => assert_eq!(name, "x"),
        Ok(other) => panic!("expected NeedsAwait, got {other:?}"),
        Err(_) => panic!("the sync call waited for the async creation"),
    }

    gate.store(true, SeqCst);
    let mut next = joining(&core);
    let made = ready_now(next.as_mut());
    assert_eq!(core.stats().unwrap().access_counts["x"], 1);
    drop((made, next));
    core.clear();
    assert_eq!(drops.load(SeqCst), 1);
}

/// The realistic form of the case above on a current-thread runtime: the starter times out, a
/// spawned task drives the creation on, and a third task's sync call must answer at once
/// rather than park the runtime's only thread.
#[test]
fn a_sync_call_on_a_current_thread_runtime_does_not_park_it() {
    let core: &'static SingletonCore = Box::leak(Box::new(SingletonCore::new()));
    // On its own thread, so that a parked runtime fails the test instead of stopping the run.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let _ = tx.send(rt.block_on(async move {
            let slow = || async {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                7_u64
            };
            let timed_out = tokio::time::timeout(
                std::time::Duration::from_millis(20),
                core.get_or_create_async("p", slow),
            )
            .await;
            assert!(timed_out.is_err(), "the starter times out");
            let driver =
                tokio::spawn(core.get_or_create_async::<u64, _, _>("p", || async { unreachable!() }));
            tokio::task::yield_now().await;
            let sync = tokio::spawn(async move {
                let started = std::time::Instant::now();
                (core.get_or_create("p", || 9_u64).map(|v| *v), started.elapsed())
            });
            let in_time = tokio::time::timeout(std::time::Duration::from_secs(10), async {
                (sync.await.unwrap(), *driver.await.unwrap().unwrap())
            });
            in_time.await.expect("the runtime kept running")
        }));
    });
    let ((sync, waited), made) =
        rx.recv_timeout(std::time::Duration::from_secs(20)).expect("the sync call parked the runtime");
    assert!(
        matches!(sync, Err(singleton_kit::SingletonError::NeedsAwait { .. })),
        "expected NeedsAwait, got {sync:?}"
    );
    assert!(waited < std::time::Duration::from_millis(150), "the sync call waited {waited:?}");
    assert_eq!(made, 7);
}

/// Calls `call` in a loop on 12 tasks of a 2-worker runtime for 1.5 s while a thread runs
/// `delete` in a loop; returns how many calls were made and the messages of those that failed.
fn race_against_deletes<C, F>(delete: impl Fn() + Send + 'static, call: C) -> (u64, Vec<String>)
where
    C: Fn() -> F + Copy + Send + 'static,
    F: Future<Output = singleton_kit::Result<()>> + Send,
{
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let deleter = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(SeqCst) {
                delete();
                std::thread::yield_now();
            }
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(1500);
    let outcome = rt.block_on(async move {
        let tasks: Vec<_> = (0..12)
            .map(|_| {
                tokio::spawn(async move {
                    let (mut calls, mut failures) = (0_u64, Vec::new());
                    while std::time::Instant::now() < deadline {
                        calls += 1;
                        if let Err(err) = call().await {
                            failures.push(err.to_string());
                        }
                    }
                    (calls, failures)
                })
            })
            .collect();
        let mut all = (0, Vec::new());
        for task in tasks {
            let (calls, failures) = task.await.unwrap();
            all.0 += calls;
            all.1.extend(failures);
        }
        all
    });
    stop.store(true, SeqCst);
    deleter.join().unwrap();
    drop(rt);
    outcome
}

/// `delete` racing a shared async creation: a caller whose creation succeeded gets the
/// instance it made (a handle outlives a `delete`), never an error that blames the factory.
/// About one call in 1,400 once answered `Err(Factory)` here ("created, but deleted again...").
#[test]
fn a_delete_racing_a_shared_async_creation_is_never_a_factory_error() {
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    static DROPS: AtomicUsize = AtomicUsize::new(0);

    #[singleton(factory = Raced::connect, async)]
    pub struct Raced;

    impl Raced {
        async fn connect() -> Raced {
            CALLS.fetch_add(1, SeqCst);
            tokio::task::yield_now().await;
            Raced
        }
    }
    impl Drop for Raced {
        fn drop(&mut self) {
            DROPS.fetch_add(1, SeqCst);
        }
    }

    // The deleter must not be slowed, nor the last `delete` refused, by the global rate limit
    // (no other test of this binary uses the global core's name-keyed operations).
    singleton_kit::manager().set_rate_limit(singleton_kit::RateLimit::unlimited());
    let (calls, failures) = race_against_deletes(
        || {
            singleton_kit::manager().delete(Raced::SINGLETON_NAME);
        },
        || async { Raced::try_instance().await.map(drop) },
    );
    assert!(calls > 1000, "only {calls} calls");
    assert!(failures.is_empty(), "{} of {calls} calls failed, e.g. {}", failures.len(), failures[0]);
    assert!(
        singleton_kit::manager().delete(Raced::SINGLETON_NAME)
            || !singleton_kit::manager().has(Raced::SINGLETON_NAME)
    );
    assert_eq!(CALLS.load(SeqCst), DROPS.load(SeqCst), "every instance made is dropped once");
}

/// The name-keyed form of the race above on an isolated core.
#[test]
fn a_delete_racing_a_named_async_creation_is_never_a_factory_error() {
    let core: &'static SingletonCore =
        Box::leak(Box::new(SingletonCore::with_rate_limit(singleton_kit::RateLimit::unlimited())));
    let (_, failures) = race_against_deletes(
        move || {
            core.delete("named");
        },
        move || async move {
            let made = core.get_or_create_async("named", || async {
                tokio::task::yield_now().await;
                5_u32
            });
            made.await.map(drop)
        },
    );
    assert!(failures.is_empty(), "{} calls failed, e.g. {}", failures.len(), failures[0]);
}

/// The window of the race above, aimed at: the creation a starter began is ended by another
/// caller while a thread deletes the name as fast as it can. The starter must get the instance
/// its creation made; it once got `Err(Factory)` whenever the `delete` fell between the
/// instance's store and the other caller's hand-over to the starter.
#[test]
fn a_starter_gets_its_instance_even_if_deleted_as_another_caller_ends_its_creation() {
    let rounds = 3000;
    let mut failed = Vec::new();
    for _ in 0..rounds {
        let core = Arc::new(SingletonCore::with_rate_limit(singleton_kit::RateLimit::unlimited()));
        let gate = Arc::new(AtomicBool::new(false));
        let drops = Arc::new(AtomicUsize::new(0));
        let mut starter = gated(&core, &gate, &drops);
        assert!(poll_once(starter.as_mut()).is_pending());
        let stop = Arc::new(AtomicBool::new(false));
        let deleter = {
            let (core, stop) = (core.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(SeqCst) {
                    core.delete("x");
                }
            })
        };
        gate.store(true, SeqCst);
        let mut other = joining(&core);
        let joined = loop {
            if let Poll::Ready(r) = poll_once(other.as_mut()) {
                break r;
            }
        };
        let started = loop {
            if let Poll::Ready(r) = poll_once(starter.as_mut()) {
                break r;
            }
        };
        stop.store(true, SeqCst);
        deleter.join().unwrap();
        for made in [joined, started] {
            if let Err(err) = made {
                failed.push(err.to_string());
            }
        }
    }
    assert!(failed.is_empty(), "{} calls of {} failed, e.g. {}", failed.len(), 2 * rounds, failed[0]);
}
