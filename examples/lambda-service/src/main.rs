//! An AWS Lambda function on the real `lambda_runtime`, whose long-lived objects are
//! singleton-kit singletons.
//!
//! - **Init phase** (once per process, before [`lambda_runtime::run`] asks for the first event):
//!   [`singleton_kit::init_eager_async`] warms the eager singletons — [`Config`] (sync) and
//!   [`SdkClient`] (async, standing in for an AWS SDK client built from `aws_config`) — and logs
//!   the startup report: each eager factory's time, then the table of every singleton. If an
//!   eager factory fails, the error is posted to the Runtime API's
//!   `/2018-06-01/runtime/init/error` and the process exits with status 1.
//! - **Invocations** reuse those instances. An event with an `"operation"` field is an admin
//!   operation, answered with the JSON object of an [`Admin`] under
//!   `AdminPolicy::from_env("LAMBDA_SERVICE_ADMIN_TOKEN")`: the observe operations (`get_stats`,
//!   `has`, `exists`, `list`) for every invoker, the rest only for an event whose `"token"` is
//!   that variable's value (a function behind a Function URL or API Gateway takes its events
//!   from the internet); any other
//!   `{"key": "k", "value": "v"}` event is put into the [`Cache`] singleton and answered with
//!   `{"cached": <entries>, "cold_start": <first invocation of this process>}`.
//! - With the feature `metrics`, each invocation ends with one flush of CloudWatch EMF
//!   documents on stdout, holding singleton-kit's metrics.
//!
//! Environment: what a Lambda sandbox sets (`AWS_LAMBDA_RUNTIME_API`,
//! `AWS_LAMBDA_FUNCTION_NAME`, ...), plus `LAMBDA_SERVICE_ADMIN_TOKEN` (the admin token; unset,
//! the admin operations are observe-only) and `LAMBDA_SERVICE_FAIL_INIT=1` to make the SDK
//! client's factory fail, to see the init error path.
//!
//! [`Admin`]: singleton_kit::Admin

use std::collections::HashMap;
use std::fmt;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::{json, Value};
use singleton_kit::{singleton, Admin, AdminPolicy};
use tracing::Instrument;

#[cfg(feature = "metrics")]
mod emf;
mod init_error;

/// The function's configuration, read once from the environment the sandbox sets: a sync
/// eager singleton.
#[singleton(eager, factory = Config::from_env, on_shutdown = Config::close)]
#[derive(Debug)]
pub struct Config {
    /// `AWS_LAMBDA_FUNCTION_NAME`.
    pub function_name: String,
    /// `AWS_LAMBDA_FUNCTION_VERSION`.
    pub function_version: String,
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, in MB (0 when unset or not a number).
    pub memory_mb: u32,
    /// `AWS_REGION`, else `AWS_DEFAULT_REGION`, else `us-east-1`.
    pub region: String,
}

impl Config {
    fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).unwrap_or_default();
        Self {
            function_name: var("AWS_LAMBDA_FUNCTION_NAME"),
            function_version: var("AWS_LAMBDA_FUNCTION_VERSION"),
            memory_mb: var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").parse().unwrap_or(0),
            region: std::env::var("AWS_REGION")
                .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
                .unwrap_or_else(|_| "us-east-1".to_owned()),
        }
    }

    /// Its shutdown hook: closed after the client that uses it.
    fn close(&self) {
        tracing::info!(function = %self.function_name, "config closed");
    }
}

/// A stand-in for an AWS SDK client (say `aws_sdk_dynamodb::Client`), the object a Lambda
/// function most wants to build once per container: an async eager singleton.
///
/// A real function would write
/// `Client::new(&aws_config::load_defaults(BehaviorVersion::latest()).await)`; this example
/// does what that load does without the network: it reads the region from [`Config`] (so the
/// graph shows the dependency), looks at which credentials the environment offers, and waits a
/// few milliseconds as the credential provider chain would. `LAMBDA_SERVICE_FAIL_INIT=1` makes
/// it fail, as a missing permission or an unreachable endpoint would.
#[singleton(
    eager,
    async,
    try_factory = SdkClient::connect,
    health = SdkClient::ping,
    on_shutdown = SdkClient::close
)]
#[derive(Debug)]
pub struct SdkClient {
    /// The region requests are signed for.
    pub region: String,
    /// The endpoint requests would go to.
    pub endpoint: String,
    /// Where the credentials came from.
    pub credentials: &'static str,
}

impl SdkClient {
    async fn connect() -> Result<Self, ConnectError> {
        if std::env::var("LAMBDA_SERVICE_FAIL_INIT").as_deref() == Ok("1") {
            return Err(ConnectError("no credentials: LAMBDA_SERVICE_FAIL_INIT=1".to_owned()));
        }
        let region = Config::instance().region.clone();
        tokio::time::sleep(Duration::from_millis(20)).await; // the credential provider chain
        let credentials = if std::env::var_os("AWS_ACCESS_KEY_ID").is_some() {
            "environment"
        } else if std::env::var_os("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some() {
            "container"
        } else {
            "none (local run)"
        };
        Ok(Self { endpoint: format!("https://dynamodb.{region}.amazonaws.com"), region, credentials })
    }

    /// Its health check: a real client would make a cheap call (`DescribeEndpoints`).
    async fn ping(&self) -> Result<(), ConnectError> {
        if self.endpoint.is_empty() {
            return Err(ConnectError("no endpoint".to_owned()));
        }
        Ok(())
    }

    /// Its shutdown hook: a real client flushes its buffered exporter and closes its
    /// connections, which a `Drop` cannot await. It uses the config, still open then.
    async fn close(&self) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        tracing::info!(region = %Config::instance().region, "sdk_client closed: exporter flushed, connections closed");
    }
}

/// Why [`SdkClient::connect`] failed.
#[derive(Debug)]
pub struct ConnectError(String);

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot build the SDK client: {}", self.0)
    }
}

impl std::error::Error for ConnectError {}

/// The container's cache: what `{"key", "value"}` events put, kept across warm invocations.
/// Made lazily, by the first event that needs it.
#[singleton]
#[derive(Debug, Default)]
pub struct Cache(Mutex<HashMap<String, String>>);

impl Cache {
    /// Stores `value` under `key` and returns how many entries the cache holds.
    pub fn put(&self, key: String, value: String) -> usize {
        let mut entries = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.insert(key, value);
        entries.len()
    }
}

/// Set once the first invocation of this process has started.
static WARM: AtomicBool = AtomicBool::new(false);

/// Why an invocation failed; the runtime posts it to `/invocation/{id}/error`.
#[derive(Debug)]
pub enum HandlerError {
    /// The event is neither an admin operation nor a `{"key", "value"}` put.
    InvalidEvent(String),
    /// The admin operation's answer could not be read back as JSON (a bug, never expected).
    Internal(String),
}

impl From<HandlerError> for Diagnostic {
    fn from(err: HandlerError) -> Self {
        let (error_type, error_message) = match err {
            HandlerError::InvalidEvent(message) => ("InvalidEvent", message),
            HandlerError::Internal(message) => ("InternalError", message),
        };
        Diagnostic { error_type: error_type.to_owned(), error_message }
    }
}

/// One invocation, in a span that carries the request id as its correlation id.
async fn handle(event: LambdaEvent<Value>) -> Result<Value, HandlerError> {
    let (payload, context) = event.into_parts();
    let cold_start = !WARM.swap(true, Ordering::Relaxed);
    let span = tracing::info_span!("invocation", correlation_id = %context.request_id, cold_start);
    async move {
        let answer = answer(payload, &context.request_id, cold_start).await;
        match &answer {
            Ok(_) => tracing::info!("answered"),
            Err(err) => tracing::warn!(?err, "failed"),
        }
        #[cfg(feature = "metrics")]
        emf::flush(&context.request_id, cold_start);
        answer
    }
    .instrument(span)
    .await
}

/// The admin operations of the global core under the function's policy, read once at init.
static ADMIN: LazyLock<Admin<'static>> =
    LazyLock::new(|| singleton_kit::admin(AdminPolicy::from_env("LAMBDA_SERVICE_ADMIN_TOKEN")));

async fn answer(payload: Value, request_id: &str, cold_start: bool) -> Result<Value, HandlerError> {
    // Every invocation goes through the warm client, as a real function's would.
    let client = SdkClient::instance().await;
    tracing::debug!(region = %client.region, endpoint = %client.endpoint, "client ready");
    match payload {
        Value::Object(mut request) if request.contains_key("operation") => {
            // Admin operation: an answer that can be matched to its invocation even when the
            // caller sent no correlation id of its own.
            request.entry("correlation_id").or_insert_with(|| Value::String(request_id.to_owned()));
            let answer = ADMIN.execute_json_async(&Value::Object(request).to_string()).await;
            serde_json::from_str(&answer).map_err(|err| HandlerError::Internal(format!("{err}: {answer}")))
        }
        Value::Object(put) => {
            let (Some(Value::String(key)), Some(Value::String(value))) = (put.get("key"), put.get("value"))
            else {
                return Err(invalid_event(&Value::Object(put)));
            };
            let cached = Cache::instance().put(key.clone(), value.clone());
            Ok(json!({ "cached": cached, "cold_start": cold_start }))
        }
        other => Err(invalid_event(&other)),
    }
}

fn invalid_event(event: &Value) -> HandlerError {
    let mut shown = event.to_string();
    if shown.len() > 200 {
        let cut = (0..=200).rev().find(|&i| shown.is_char_boundary(i)).unwrap_or(0);
        shown.truncate(cut);
        shown.push('…');
    }
    HandlerError::InvalidEvent(format!(
        "expected an admin operation {{\"operation\": \"get_stats\", ...}} or a cache put \
         {{\"key\": \"<string>\", \"value\": \"<string>\"}}; got {shown}"
    ))
}

/// On SIGTERM: the singletons' `on_shutdown` hooks (the client before the config it uses)
/// within 400 ms, a log line per singleton, and the last metrics; the helper then exits 0.
async fn graceful_shutdown() {
    let report = singleton_kit::shutdown_async(Duration::from_millis(400)).await;
    for hook in &report.hooks {
        tracing::info!(
            singleton = %hook.name,
            outcome = hook.outcome.as_str(),
            ms = hook.duration.as_secs_f64() * 1e3,
            "shutdown"
        );
    }
    tracing::info!(released = report.released, ms = report.duration.as_secs_f64() * 1e3, "shutdown complete");
    #[cfg(feature = "metrics")]
    emf::flush("shutdown", false);
}

#[tokio::main]
async fn main() -> ExitCode {
    lambda_runtime::tracing::init_default_subscriber();
    #[cfg(feature = "metrics")]
    emf::install();

    // Init phase: before the runtime's loop asks for its first event. The admin policy is read
    // here, once, from the environment (where a secret manager's value belongs), not in code.
    LazyLock::force(&ADMIN);
    match singleton_kit::init_eager_async().await {
        // What each eager factory took, then every singleton with its state and dependencies.
        Ok(report) => tracing::info!("cold start, init phase:\n{report}{}", singleton_kit::report()),
        Err(err) => {
            tracing::error!("init phase failed: {err}");
            init_error::post(&err).await;
            return ExitCode::FAILURE;
        }
    }

    // Lambda's shutdown phase: SIGTERM, with 500 ms to go once an (internal) extension is
    // registered, which the helper does. The hooks get 400 of them.
    lambda_runtime::spawn_graceful_shutdown_handler(graceful_shutdown).await;

    if let Err(err) = lambda_runtime::run(service_fn(handle)).await {
        tracing::error!("the runtime stopped: {err}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
