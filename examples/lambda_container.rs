//! A simulated AWS Lambda container: an init phase that warms the eager singletons and prints
//! their cold-start cost, then several invocations that reuse the warm instances, each in a
//! `tracing` span with its own correlation id, and the stats at the end.
//!
//! Run with `cargo run --example lambda_container`.

use std::time::Duration;

use singleton_kit::{manager, singleton, Request, Response};
use tracing::info_span;

/// An HTTP client: expensive to build, so it is built once per container, at init.
#[singleton(eager, factory = HttpClient::connect)]
pub struct HttpClient {
    pool_size: usize,
}

impl HttpClient {
    fn connect() -> Self {
        std::thread::sleep(Duration::from_millis(30)); // TLS handshakes, DNS, ...
        Self { pool_size: 8 }
    }
}

/// Secrets from a parameter store: fetched once, eagerly; the fetch can fail.
#[singleton(eager, try_factory = Secrets::fetch)]
pub struct Secrets {
    api_key: String,
}

impl Secrets {
    fn fetch() -> Result<Self, std::env::VarError> {
        std::thread::sleep(Duration::from_millis(10));
        Ok(Self { api_key: std::env::var("API_KEY").unwrap_or_else(|_| "dev-key".to_owned()) })
    }
}

/// Per-container counters, created lazily on the first invocation that needs them.
#[singleton]
#[derive(Default)]
pub struct Metrics {
    invocations: std::sync::atomic::AtomicU64,
}

fn handler(event: &str) -> String {
    let client = HttpClient::instance();
    let secrets = Secrets::instance();
    let metrics = Metrics::instance();
    let n = metrics.invocations.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    tracing::info!(pool = client.pool_size, invocation = n, "handled");
    format!("{event}: ok (key {}…, invocation {n})", &secrets.api_key[..3])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_max_level(tracing::Level::DEBUG).with_target(false).without_time().init();

    // Init phase: runs once per container, before the first invocation.
    let init = singleton_kit::init_eager()?;
    println!("--- init phase (cold start) ---\n{init}");

    // Invocations: each with its own correlation id, reusing the warm instances.
    for (i, event) in ["GET /users", "POST /orders", "GET /health"].into_iter().enumerate() {
        let correlation_id = format!("req-{:04}", i + 1);
        let span = info_span!("invocation", correlation_id = %correlation_id);
        let _entered = span.enter();
        println!("{}", handler(event));
        // An admin-style operation arriving as data, tagged with the same correlation id.
        let request = Request::parse("has")?.name("metrics").correlation_id(&correlation_id);
        if let Response::Bool(present) = manager().execute(request)? {
            tracing::debug!(present, "metrics singleton present");
        }
    }

    println!("--- after the invocations ---\n{}", singleton_kit::report());
    println!("{}", serde_json::to_string_pretty(&manager().stats()?)?);
    Ok(())
}
