//! What an `Admin` logs: a refusal at warn with its operation and (cut) correlation id, and never
//! a token. Its own test binary: `tracing` caches each call site's interest process-wide, and a
//! call site first reached by another test's thread while this test installs its subscriber can
//! miss it; alone in its process, the test sees every event.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::json;
use singleton_kit::{AdminPolicy, RateLimit, Request, SingletonCore, SingletonOperation as Op};

const SECRET: &str = "correct-horse-battery-staple";

fn unlimited() -> SingletonCore {
    SingletonCore::with_rate_limit(RateLimit::unlimited())
}

/// A `tracing` writer that keeps what was written.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn the_token_is_never_logged_echoed_or_shown_and_a_refusal_is_logged_with_its_operation() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let core = unlimited();
    let policy = AdminPolicy::observe_only().require_token(SECRET);
    let admin = core.admin(policy.clone());
    let long_id = "i".repeat(100);
    let answers = tracing::subscriber::with_default(subscriber, || {
        [
            admin.execute_json(
                &json!({"operation": "clear", "token": "wrong-token", "correlation_id": long_id}).to_string(),
            ),
            admin.execute_json(
                &json!({"operation": "clear", "token": SECRET, "correlation_id": "ok-1"}).to_string(),
            ),
            admin.execute_json(
                &json!({"operation": "set", "name": "s", "value": 1, "token": SECRET}).to_string(),
            ),
        ]
    });
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("singleton admin request refused") && log.contains("operation=\"clear\""), "{log}");
    assert!(log.contains(&"i".repeat(64)) && !log.contains(&"i".repeat(65)), "the id is cut to 64: {log}");
    for text in answers.iter().map(String::as_str).chain([log.as_str()]) {
        assert!(!text.contains(SECRET) && !text.contains("wrong-token"), "{text}");
    }
    let shown = [
        format!("{policy:?}"),
        format!("{admin:?}"),
        format!("{:?}", Request::parse("clear").unwrap().token(SECRET)),
        policy.check(Op::Clear, Some("wrong-token")).unwrap_err().to_string(),
    ];
    for text in shown {
        assert!(!text.contains(SECRET) && !text.contains("wrong-token"), "{text}");
    }
}
