//! `execute_json` never panics, even when the `get` it answers holds the last handle to a value
//! that another thread replaced and whose `Drop` panics. (In a file of its own: it silences the
//! panic hook while it runs.)

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use singleton_kit::{RateLimit, SingletonCore};

struct Boom;

impl Drop for Boom {
    fn drop(&mut self) {
        panic!("boom in drop");
    }
}

#[test]
fn a_panicking_drop_of_a_replaced_value_is_answered_not_unwound() {
    panic::set_hook(Box::new(|_| {}));
    let core = SingletonCore::with_rate_limit(RateLimit::unlimited());
    core.set("x", Boom).unwrap();
    let stop = AtomicBool::new(false);
    let (escaped, answered_factory) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(3);
    std::thread::scope(|s| {
        s.spawn(|| {
            while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
                match panic::catch_unwind(AssertUnwindSafe(|| {
                    core.execute_json(r#"{"operation":"get","name":"x"}"#)
                })) {
                    Ok(answer) => {
                        let answer: serde_json::Value = serde_json::from_str(&answer).expect("JSON");
                        if answer["ok"] == false {
                            assert_eq!(answer["error"]["kind"], "factory", "{answer}");
                            answered_factory.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(_) => {
                        escaped.fetch_add(1, Ordering::Relaxed);
                        stop.store(true, Ordering::Relaxed);
                    }
                }
            }
            stop.store(true, Ordering::Relaxed);
        });
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let _ = panic::catch_unwind(AssertUnwindSafe(|| core.set("x", Boom)));
            }
        });
    });
    let _ = panic::take_hook();
    // The last `Boom` would panic when the core drops it.
    std::mem::forget(core);
    assert_eq!(escaped.load(Ordering::Relaxed), 0, "a panic escaped execute_json");
}
