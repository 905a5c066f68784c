//! `init_eager_async` in a binary of its own, so that it sees exactly these eager singletons:
//! three async ones that each take 200 ms, one sync one, and one that fails.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use singleton_kit::{singleton, SingletonError};

macro_rules! slow_client {
    ($ty:ident, $name:literal) => {
        #[singleton(name = $name, factory = $ty::connect, async, eager)]
        pub struct $ty;

        impl $ty {
            async fn connect() -> Self {
                tokio::time::sleep(Duration::from_millis(200)).await;
                $ty
            }
        }
    };
}

slow_client!(S3, "s3");
slow_client!(Dynamo, "dynamo");
slow_client!(Sqs, "sqs");

#[singleton(name = "config", eager, factory = || Config(1))]
pub struct Config(u8);

static BROKEN_CALLS: AtomicUsize = AtomicUsize::new(0);

#[singleton(name = "broken", try_factory = Broken::open, async, eager)]
pub struct Broken;

impl Broken {
    async fn open() -> Result<Self, std::io::Error> {
        BROKEN_CALLS.fetch_add(1, SeqCst);
        Err(std::io::Error::other("no credentials"))
    }
}

#[test]
fn init_eager_skips_async_then_init_eager_async_runs_them_concurrently() {
    // The sync form makes the sync one and skips the async ones, without failing for them; only
    // the sync failures count (none here).
    let report = singleton_kit::init_eager().expect("skipped async singletons are not failures");
    let skipped: Vec<_> = report.outcomes().iter().filter(|o| o.is_skipped()).map(|o| o.name()).collect();
    assert_eq!(skipped, ["broken", "dynamo", "s3", "sqs"]);
    assert!(matches!(report.outcomes().iter().find(|o| o.name() == "config").unwrap().result(), Ok(Some(_))));
    assert_eq!(Config::instance().0, 1);
    assert!(report.to_string().contains("skipped"));
    assert_eq!(BROKEN_CALLS.load(SeqCst), 0);

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let started = Instant::now();
    let err = rt.block_on(singleton_kit::init_eager_async()).expect_err("`broken` fails");
    let took = started.elapsed();
    assert!(took < Duration::from_millis(500), "three 200 ms factories took {took:?}: not concurrent");
    assert!(err.report().total() <= took && err.report().total() < Duration::from_millis(500));
    let failed: Vec<_> = err.failures().map(|o| o.name()).collect();
    assert_eq!(failed, ["broken"]);
    assert!(matches!(
        err.failures().next().unwrap().result(),
        Err(SingletonError::Factory { name, .. }) if name == "broken"
    ));
    let report = err.report();
    for name in ["s3", "dynamo", "sqs"] {
        let o = report.outcomes().iter().find(|o| o.name() == name).unwrap();
        let made = o.result().expect("created").expect("created now");
        assert!(made >= Duration::from_millis(190), "{name} took {made:?}");
        assert!(o.registered().is_async() && o.registered().is_created());
        assert_eq!(o.registered().access_count(), 0, "init does not count as an access");
    }
    assert!(
        report.wall_time() < report.factories_time(),
        "concurrent: wall {:?} < sum {:?}",
        report.wall_time(),
        report.factories_time()
    );
    let text = report.to_string();
    assert!(text.contains("s3 (async)") && text.contains("FAILED"), "{text}");

    // Once created, the report shows them as async and created.
    let table = singleton_kit::report().to_string();
    let s3 = table.lines().find(|l| l.starts_with("s3 ")).unwrap();
    assert!(s3.contains("async") && s3.contains("created"), "{s3}");
}
