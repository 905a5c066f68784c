//! CloudWatch embedded metric format (EMF) on stdout: feature `metrics`.
//!
//! The recorder is installed before the init phase, so the eager factories' creations and times
//! are recorded too. Each invocation ends with [`flush`]: singleton-kit's snapshot metrics are
//! published ([`singleton_kit::export_metrics`]) and everything recorded since the last flush is
//! written as EMF, one JSON line per set of dimensions, tagged with the request id. The
//! `lambda` feature of `metrics_cloudwatch_embedded` would flush after the handler by itself, but
//! it brings `lambda_http` along; a manual flush needs neither.

use std::io::Write;
use std::sync::OnceLock;

use metrics_cloudwatch_embedded::{Builder, Collector};

/// The CloudWatch namespace the metrics are published under.
pub const NAMESPACE: &str = "singleton-kit";

static COLLECTOR: OnceLock<&'static Collector> = OnceLock::new();

/// Installs the EMF recorder as the global `metrics` recorder, with the function's name as a
/// dimension. Logs and carries on without metrics if another recorder was installed first.
pub fn install() {
    let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default();
    match Builder::new().cloudwatch_namespace(NAMESPACE).with_dimension("function", function).init() {
        Ok(collector) => {
            let _ = COLLECTOR.set(collector);
        }
        Err(err) => tracing::error!("no EMF metrics: {err}"),
    }
}

/// Publishes the snapshot metrics and writes what was recorded since the last flush to stdout.
pub fn flush(request_id: &str, cold_start: bool) {
    let Some(collector) = COLLECTOR.get() else { return };
    singleton_kit::export_metrics();
    let mut stdout = std::io::stdout().lock();
    let written = collector
        .set_property("RequestId", request_id.to_owned())
        .set_property("ColdStart", cold_start)
        .flush(&mut stdout)
        .and_then(|()| stdout.flush());
    if let Err(err) = written {
        tracing::error!("could not write the EMF metrics: {err}");
    }
}
