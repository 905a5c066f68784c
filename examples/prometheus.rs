//! The Prometheus exposition of a running program: singleton-kit reports through the `metrics`
//! facade, and any exporter receives it; here `metrics-exporter-prometheus`, printing what a
//! scrape would read (no server needed).
//!
//! `cargo run --example prometheus --features metrics`

use std::time::Duration;

use metrics_exporter_prometheus::PrometheusBuilder;
use singleton_kit::{manager, singleton, RateLimit};

#[singleton(factory = Config::load)]
pub struct Config {
    pub region: String,
}

impl Config {
    fn load() -> Self {
        std::thread::sleep(Duration::from_millis(3)); // reading a file, say
        Self { region: "eu-west-1".into() }
    }
}

#[singleton(factory = HttpClient::new)]
pub struct HttpClient {
    pub base_url: String,
}

impl HttpClient {
    fn new() -> Self {
        Self { base_url: format!("https://api.{}.example.com", Config::instance().region) }
    }
}

#[singleton(try_factory = Secrets::fetch)]
pub struct Secrets;

impl Secrets {
    fn fetch() -> Result<Self, std::io::Error> {
        Err(std::io::Error::other("the secrets endpoint timed out"))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Install the exporter's recorder first, as a program does at startup.
    let handle = PrometheusBuilder::new().install_recorder()?;

    // The program runs: handlers use their singletons...
    for _ in 0..5 {
        let client = HttpClient::instance();
        assert!(client.base_url.contains("eu-west-1"));
    }
    // ...a factory fails (and will be retried by the next caller)...
    assert!(Secrets::try_instance().is_err());
    // ...a value is stored at run time...
    manager().set("feature_flags", vec!["beta"])?;
    // ...and an admin endpoint is hammered past the rate limit.
    manager().set_rate_limit(RateLimit::per_second(3));
    for _ in 0..5 {
        let _ = manager().has("config");
    }

    // On a timer, or at the end of each Lambda invocation: publish the snapshot metrics.
    singleton_kit::export_metrics();

    // What a scrape of `/metrics` would read.
    print!("{}", handle.render());
    Ok(())
}
