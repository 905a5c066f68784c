//! An axum server that mounts singleton-kit's HTTP admin next to its own routes.
//!
//! ```text
//! cargo run -p axum-admin
//! singleton admin: http://127.0.0.1:3000/singletons/ui
//! ```
//!
//! Its singletons: a sync `Config`, an async `Database` that depends on it and has a health
//! check, a `Repository` on top of the database (a dependency chain of three), an eager
//! `Metrics` made at startup, and a `Mailer` that nothing asks for, so that the page shows a
//! pending singleton beside the created ones.
//!
//! The admin policy comes from the environment: observe-only for anyone, and every operation
//! for a request whose bearer token is `AXUM_ADMIN_TOKEN` when that variable is set. The server
//! listens on 127.0.0.1 only, on `AXUM_ADMIN_PORT` (3000 when unset; 0 picks a free port), and
//! stops on Ctrl-C (or SIGTERM) after running the singletons' shutdown hooks.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use singleton_kit::{singleton, AdminPolicy};

/// The service's configuration.
#[singleton(factory = Config::load)]
pub struct Config {
    /// Where the database is.
    pub database_url: String,
}

impl Config {
    fn load() -> Self {
        Config { database_url: "postgres://127.0.0.1/app".to_owned() }
    }
}

/// A connection pool, opened asynchronously, with a health check.
#[singleton(factory = Database::connect, async, health = Database::ping, on_shutdown = Database::close)]
pub struct Database {
    url: String,
    queries: AtomicU64,
}

impl Database {
    async fn connect() -> Self {
        let url = Config::instance().database_url.clone();
        tokio::time::sleep(Duration::from_millis(20)).await; // the handshake
        Database { url, queries: AtomicU64::new(0) }
    }

    async fn ping(&self) -> Result<(), String> {
        tokio::time::sleep(Duration::from_millis(2)).await;
        if self.url.is_empty() {
            return Err("no database URL".to_owned());
        }
        Ok(())
    }

    async fn close(&self) {
        println!("database: closed after {} queries", self.queries.load(Ordering::Relaxed));
    }

    fn query(&self) -> u64 {
        self.queries.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// The application's data access, on top of the database: the end of a dependency chain.
#[singleton(name = "repository", try_factory = Repository::open, async)]
pub struct Repository {
    db: singleton_kit::Instance<Database>,
}

impl Repository {
    async fn open() -> Result<Self, std::io::Error> {
        Ok(Repository { db: Database::instance().await })
    }
}

/// Request counters, made at startup.
#[singleton(eager)]
#[derive(Default)]
pub struct Metrics {
    requests: AtomicU64,
}

/// An email client nothing has asked for yet: listed as pending.
#[singleton]
#[derive(Default)]
pub struct Mailer;

/// The service's own route: it uses the singletons as any handler would.
async fn hello() -> String {
    let repository = Repository::try_instance().await.expect("the repository opens");
    Metrics::instance().requests.fetch_add(1, Ordering::Relaxed);
    format!("hello: query {} on {}\n", repository.db.query(), repository.db.url)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    singleton_kit::init_eager_async().await?;
    let _ = Repository::try_instance().await?;

    let policy = AdminPolicy::from_env("AXUM_ADMIN_TOKEN");
    let app = Router::new().route("/", get(hello)).merge(singleton_kit::http::router(policy));

    let port = match std::env::var("AXUM_ADMIN_PORT") {
        Ok(port) => port.parse::<u16>().map_err(|err| format!("AXUM_ADMIN_PORT={port:?}: {err}"))?,
        Err(_) => 3000,
    };
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
    let address = listener.local_addr()?;
    println!("singleton admin: http://{address}/singletons/ui");

    axum::serve(listener, app).with_graceful_shutdown(stop_signal()).await?;
    let report = singleton_kit::shutdown_async(Duration::from_secs(2)).await;
    println!("released {} singletons in {:?}", report.released, report.duration);
    Ok(())
}

/// Ctrl-C, or SIGTERM on Unix.
async fn stop_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
