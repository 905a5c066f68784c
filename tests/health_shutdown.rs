//! Health checks and graceful shutdown: `health = path` and `on_shutdown = path`, sync and async.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use singleton_kit::{singleton, CheckStatus, HealthStatus, HookOutcome, SingletonCore};

static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn log(line: impl Into<String>) {
    LOG.lock().unwrap().push(line.into());
}

#[singleton(name = "hs_sync", factory = || HsSync, health = HsSync::check, on_shutdown = HsSync::close)]
pub struct HsSync;

impl HsSync {
    fn check(&self) -> Result<(), std::io::Error> {
        Ok(())
    }
    fn close(&self) {
        log("hs_sync closed");
    }
}

#[singleton(name = "hs_async", factory = || HsAsync, health = HsAsync::check, on_shutdown = HsAsync::close)]
pub struct HsAsync;

impl HsAsync {
    async fn check(&self) -> Result<(), String> {
        Err("pool exhausted".into())
    }
    async fn close(&self) {
        log("hs_async closed");
    }
}

#[test]
fn sync_and_async_hooks_are_told_apart_by_signature() {
    let core = SingletonCore::new();
    core.get::<HsSync>("hs_sync").unwrap();
    core.get::<HsAsync>("hs_async").unwrap();
    let report = futures::executor::block_on(core.health());
    let status = |name: &str| report.checks.iter().find(|c| c.name == name).unwrap().clone();
    assert_eq!(status("hs_sync").status, CheckStatus::Up);
    assert_eq!(status("hs_async").status, CheckStatus::Down);
    assert_eq!(status("hs_async").error.as_deref(), Some("pool exhausted"));
    assert_eq!(report.status, HealthStatus::Down);
    let report = futures::executor::block_on(core.shutdown_async(Duration::from_millis(300)));
    assert_eq!(report.released, 2);
    assert!(report.hooks.iter().all(|h| h.outcome == HookOutcome::Closed), "{report:?}");
    let _ = (AtomicUsize::new(0).load(SeqCst), Instant::now());
}
