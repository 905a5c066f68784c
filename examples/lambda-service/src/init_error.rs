//! Reporting an init-phase failure to the Runtime API ourselves.
//!
//! `lambda_runtime` posts to `/init/error` only for its own SnapStart hooks; it offers no public
//! way to report a failure of the function's own init code, and the Runtime API refuses an init
//! error once `/invocation/next` has been called. So the init phase runs before
//! `lambda_runtime::run`, and on failure this module sends the request the runtime would have
//! sent, through the same client crate (`lambda_runtime_api_client`, which reads
//! `AWS_LAMBDA_RUNTIME_API` as the runtime does).

use std::time::Duration;

use lambda_runtime::Diagnostic;
use lambda_runtime_api_client::{body::Body, build_request, Client};
use singleton_kit::EagerError;

/// The Runtime API's path for errors of the init phase.
pub const PATH: &str = "/2018-06-01/runtime/init/error";

/// The `Lambda-Runtime-Function-Error-Type` header value, the one `lambda_runtime` sends for its
/// own init failures.
pub const ERROR_TYPE_HEADER: &str = "Runtime.InitError";

/// The body's `errorType`.
pub const ERROR_TYPE: &str = "singleton_kit::EagerError";

/// The diagnostic posted for `err`: one line per eager singleton that failed.
pub fn diagnostic(err: &EagerError) -> Diagnostic {
    let failures: Vec<String> = err
        .failures()
        .map(|o| match o.result() {
            Err(cause) => format!("eager singleton `{}` failed: {cause}", o.name()),
            Ok(_) => format!("eager singleton `{}` failed", o.name()),
        })
        .collect();
    Diagnostic { error_type: ERROR_TYPE.to_owned(), error_message: failures.join("; ") }
}

/// Posts `err` to `/init/error`, waiting at most five seconds. A failure to post is logged: the
/// process exits non-zero either way, which Lambda also reports as an init failure.
pub async fn post(err: &EagerError) {
    match tokio::time::timeout(Duration::from_secs(5), send(&diagnostic(err))).await {
        Ok(Ok(())) => tracing::info!("init error posted to {PATH}"),
        Ok(Err(cause)) => tracing::error!("could not post the init error to {PATH}: {cause}"),
        Err(_) => tracing::error!("could not post the init error to {PATH}: no answer in 5 s"),
    }
}

async fn send(diagnostic: &Diagnostic) -> Result<(), lambda_runtime::Error> {
    // Read here rather than left to the client builder, which panics without it: run outside a
    // sandbox, the function should say why it did not post, and still exit 1.
    let api = std::env::var("AWS_LAMBDA_RUNTIME_API").map_err(|_| "AWS_LAMBDA_RUNTIME_API is not set")?;
    let client = Client::builder().with_endpoint(api.parse()?).build()?;
    let request = build_request()
        .method("POST")
        .uri(PATH)
        .header("Lambda-Runtime-Function-Error-Type", ERROR_TYPE_HEADER)
        .header("Content-Type", "application/json")
        .body(Body::from(serde_json::to_vec(diagnostic)?))?;
    let response = client.call(request).await?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("the Runtime API answered {status}").into());
    }
    Ok(())
}
