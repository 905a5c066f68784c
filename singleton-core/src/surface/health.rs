//! Health: ask the created singletons that have a `health = path` check whether they are well,
//! concurrently, each within a timeout, creating nothing and counting no access.

use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use serde::ser::{Serialize, SerializeStruct, Serializer};

use crate::lifecycle::hooks::Check;
use crate::lifecycle::join::{join_all, CatchUnwind};
use crate::memory::instance::AnyInstance;
use crate::surface::stats::millis;
use crate::{manager, BoxError, SingletonCore};

/// How long a check may take by default: 1 s, a Kubernetes probe's default timeout.
pub const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(1);

/// The overall status of a [`HealthReport`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HealthStatus {
    /// Every created singleton's check is up, and every eager singleton was created.
    Up,
    /// A created singleton's check is down or timed out, or an eager singleton is not created
    /// (its startup failed).
    Down,
}

/// How one singleton's check went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CheckStatus {
    /// The check returned `Ok`.
    Up,
    /// The check returned `Err`, or panicked.
    Down,
    /// The check did not end within the timeout (an async check is abandoned then).
    TimedOut,
    /// The singleton has no instance (or is being created right now): nothing was checked, and
    /// nothing was created.
    NotCreated,
}

impl CheckStatus {
    /// The name the JSON uses: `"up"`, `"down"`, `"timed_out"` or `"not_created"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Down => "down",
            Self::TimedOut => "timed_out",
            Self::NotCreated => "not_created",
        }
    }
}

/// One singleton's check in a [`HealthReport`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct HealthCheck {
    /// The singleton's name.
    pub name: String,
    /// How its check went.
    pub status: CheckStatus,
    /// How long its check took.
    pub latency: Duration,
    /// The check's error or panic message, when it is down.
    pub error: Option<String>,
}

/// What [`SingletonCore::health`] found.
///
/// It serializes as `{"status": "up"|"down", "checks": [{"name", "status":
/// "up"|"down"|"timed_out"|"not_created", "latency_ms", "error"}]}`, the checks sorted by name.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct HealthReport {
    /// `Down` when any created singleton's check is down or timed out, or an eager singleton is
    /// not created.
    pub status: HealthStatus,
    /// Each singleton with a check, and each eager one not created, sorted by name.
    pub checks: Vec<HealthCheck>,
}

impl HealthReport {
    /// The same report without the checks' error messages (which can name hosts): what an
    /// [`Admin`](crate::Admin) shows a request that could not change anything.
    pub(crate) fn redacted(mut self) -> Self {
        for check in &mut self.checks {
            if check.error.is_some() {
                check.error = Some("(hidden: the policy shows errors only to an administrator)".into());
            }
        }
        self
    }
}

impl Serialize for HealthCheck {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_struct("HealthCheck", 4)?;
        out.serialize_field("name", &self.name)?;
        out.serialize_field("status", self.status.as_str())?;
        out.serialize_field("latency_ms", &millis(self.latency))?;
        out.serialize_field("error", &self.error)?;
        out.end()
    }
}

impl Serialize for HealthReport {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_struct("HealthReport", 2)?;
        let status = match self.status {
            HealthStatus::Up => "up",
            HealthStatus::Down => "down",
        };
        out.serialize_field("status", status)?;
        out.serialize_field("checks", &self.checks)?;
        out.end()
    }
}

/// One check to run: a singleton's name, its check and a handle to its instance (`None`: not
/// created).
struct Planned {
    name: String,
    check: Option<(Check, AnyInstance)>,
}

type CheckFuture<'a> = Pin<Box<dyn Future<Output = HealthCheck> + Send + 'a>>;

/// Runs one check within `timeout`.
fn run(planned: Planned, timeout: Duration) -> CheckFuture<'static> {
    Box::pin(async move {
        let Planned { name, check } = planned;
        let started = Instant::now();
        let Some((check, instance)) = check else {
            return HealthCheck {
                name,
                status: CheckStatus::NotCreated,
                latency: Duration::ZERO,
                error: None,
            };
        };
        let outcome: Option<std::thread::Result<Result<(), BoxError>>> = match check {
            // Runs inline: it cannot be cut short.
            Check::Sync(check) => Some(panic::catch_unwind(AssertUnwindSafe(|| check.run(&instance)))),
            Check::Async(check) => match panic::catch_unwind(AssertUnwindSafe(|| check.start(instance))) {
                Err(payload) => Some(Err(payload)),
                Ok(future) => {
                    let mut future = Box::pin(CatchUnwind(future));
                    let mut timer = futures_timer::Delay::new(timeout);
                    std::future::poll_fn(|cx| {
                        if let Poll::Ready(out) = future.as_mut().poll(cx) {
                            return Poll::Ready(Some(out));
                        }
                        Pin::new(&mut timer).poll(cx).map(|()| None)
                    })
                    .await
                }
            },
        };
        let latency = started.elapsed();
        let (status, error) = match outcome {
            None => (CheckStatus::TimedOut, Some(format!("no answer within {timeout:?}"))),
            Some(Ok(Ok(()))) if latency > timeout => {
                (CheckStatus::TimedOut, Some(format!("answered after {latency:?}, over {timeout:?}")))
            }
            Some(Ok(Ok(()))) => (CheckStatus::Up, None),
            Some(Ok(Err(err))) => (CheckStatus::Down, Some(err.to_string())),
            Some(Err(payload)) => (
                CheckStatus::Down,
                Some(format!("panicked: {}", crate::error::panic_message(payload.as_ref()))),
            ),
        };
        HealthCheck { name, status, latency, error }
    })
}

impl SingletonCore {
    /// HEALTH: runs the `health = path` checks of this core's created singletons, concurrently
    /// (polled in the calling task, so a check may use the caller's runtime), each within 1 s
    /// ([`DEFAULT_HEALTH_TIMEOUT`]). See [`health_within`](Self::health_within).
    ///
    /// ```
    /// use singleton_kit::{HealthStatus, SingletonCore};
    ///
    /// let core = SingletonCore::new();
    /// let report = futures::executor::block_on(core.health());
    /// assert!(report.checks.iter().all(|c| c.name != "nothing here"));
    /// # let _ = report.status == HealthStatus::Up;
    /// ```
    pub async fn health(&self) -> HealthReport {
        self.health_within(DEFAULT_HEALTH_TIMEOUT).await
    }

    /// [`health`](Self::health) with `timeout` for each check. It creates nothing, waits for no
    /// creation in progress (`not_created`), and counts no access. A sync check runs inline and
    /// cannot be cut short (one that answers late is reported `timed_out`): keep it quick. A
    /// check that panics is `down` with the panic's message. A test scope's instances are not
    /// checked. Not rate-limited: it is for probes.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future abandons the async checks running then; nothing else happens.
    pub async fn health_within(&self, timeout: Duration) -> HealthReport {
        let mut plan = Vec::new();
        let mut eager_missing = false;
        self.for_each_entry(|name, entry| {
            let Some(registration) = entry.registration else { return };
            let live = entry.slot.get(false);
            eager_missing |= registration.eager && live.is_none();
            let check = match (registration.health.map(|check| check()), live) {
                (Some(check), Some(live)) => Some((check, AnyInstance::new(live, name))),
                (Some(_), None) => None,
                (None, None) if registration.eager => None,
                (None, _) => return,
            };
            plan.push(Planned { name: name.to_owned(), check });
        });
        let mut checks = join_all(plan.into_iter().map(|p| run(p, timeout)).collect()).await;
        crate::order::sort_by_name(&mut checks, |c| &c.name);
        let failing = checks.iter().any(|c| matches!(c.status, CheckStatus::Down | CheckStatus::TimedOut));
        let status = if failing || eager_missing { HealthStatus::Down } else { HealthStatus::Up };
        HealthReport { status, checks }
    }
}

/// The health of the global core: [`SingletonCore::health`] on [`manager()`].
///
/// ```
/// let report = futures::executor::block_on(singleton_kit::health());
/// let json = serde_json::to_value(&report).unwrap();
/// assert!(json["status"] == "up" || json["status"] == "down");
/// ```
pub async fn health() -> HealthReport {
    manager().health().await
}
