//! Admin operations over JSON, through the facade as an admin endpoint or a Lambda handler would
//! use them: `SingletonCore::execute_json` and `Request: Deserialize`.
//!
//! Every answer is parsed back with `serde_json` and checked field by field against the SPEC's
//! shapes. Bad requests are checked to change nothing and to take no rate-limit slot (a core with
//! a small limit on a [`ManualClock`] counts the slots). The fuzz-style properties at the end feed
//! arbitrary bytes and mutated valid requests; `JSON_FUZZ_CASES=n` runs each with `n` cases
//! instead of the default 4,096.

use std::time::Duration;

use proptest::prelude::*;
use serde_json::{json, Value};
use singleton_kit::{
    manager, singleton, ManualClock, RateLimit, Request, Response, SingletonCore, SingletonOperation,
    MAX_JSON_REQUEST_BYTES,
};

// ---------------------------------------------------------------------------------------------
// Singletons and helpers
// ---------------------------------------------------------------------------------------------

#[singleton(name = "json_typed", factory = || JsonTyped(5))]
#[derive(Debug)]
pub struct JsonTyped(pub u32);

#[singleton(name = "json_fails", try_factory = JsonFails::load)]
#[derive(Debug)]
pub struct JsonFails;

impl JsonFails {
    fn load() -> Result<Self, std::io::Error> {
        Err(std::io::Error::other("the config file is missing"))
    }
}

#[singleton(name = "json_panics", factory = JsonPanics::make)]
#[derive(Debug)]
pub struct JsonPanics;

impl JsonPanics {
    fn make() -> Self {
        panic!("the factory of json_panics gave up")
    }
}

#[singleton(name = "json_self", factory = || JsonSelf(JsonSelf::instance().0))]
#[derive(Debug)]
pub struct JsonSelf(u32);

#[singleton(name = "json_dup")]
#[derive(Debug, Default)]
pub struct JsonDupOne;

#[singleton(name = "json_dup")]
#[derive(Debug, Default)]
pub struct JsonDupTwo;

fn unlimited() -> SingletonCore {
    SingletonCore::with_clock(RateLimit::unlimited(), ManualClock::new())
}

fn manual(max_ops: u32) -> (SingletonCore, ManualClock) {
    let clock = ManualClock::new();
    (SingletonCore::with_clock(RateLimit::new(max_ops, Duration::from_secs(1)), clock.clone()), clock)
}

/// Runs one request and parses the answer, checking the parts every answer has.
#[track_caller]
fn run(core: &SingletonCore, request: &str) -> Value {
    let text = core.execute_json(request);
    let answer: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    check_envelope(&answer).unwrap_or_else(|e| panic!("{e}: {text}"));
    answer
}

fn run_value(core: &SingletonCore, request: Value) -> Value {
    run(core, &request.to_string())
}

/// Every answer: an object with `operation` (a string or null) and a boolean `ok`; `result` when
/// ok, else `error` with a string `kind` and `message`; `correlation_id` a string if present.
fn check_envelope(answer: &Value) -> Result<(), String> {
    let object = answer.as_object().ok_or("the answer is not an object")?;
    match object.get("operation") {
        Some(Value::String(_) | Value::Null) => {}
        other => return Err(format!("`operation` is {other:?}")),
    }
    let ok = object.get("ok").and_then(Value::as_bool).ok_or("`ok` is not a boolean")?;
    if ok {
        if !object.contains_key("result") || object.contains_key("error") {
            return Err("an ok answer has a `result` and no `error`".into());
        }
    } else {
        let error = object.get("error").and_then(Value::as_object).ok_or("a failed answer has an `error`")?;
        if object.contains_key("result") {
            return Err("a failed answer has no `result`".into());
        }
        error.get("kind").and_then(Value::as_str).ok_or("`error.kind` is a string")?;
        error.get("message").and_then(Value::as_str).ok_or("`error.message` is a string")?;
    }
    for key in object.keys() {
        if !["operation", "ok", "result", "error", "correlation_id"].contains(&key.as_str()) {
            return Err(format!("unexpected key `{key}`"));
        }
    }
    if let Some(id) = object.get("correlation_id") {
        id.as_str().ok_or("`correlation_id` is a string")?;
    }
    Ok(())
}

#[track_caller]
fn assert_error(answer: &Value, kind: &str) {
    assert_eq!(answer["ok"], false, "{answer}");
    assert_eq!(answer["error"]["kind"], kind, "{answer}");
}

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value.as_object().expect("an object").keys().map(String::as_str).collect();
    keys.sort_unstable();
    keys
}

fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
}

// ---------------------------------------------------------------------------------------------
// Each operation's answer
// ---------------------------------------------------------------------------------------------

#[test]
fn each_operation_answers_in_the_spec_shape() {
    let core = unlimited();
    let before = unix_now();

    let set =
        run(&core, r#"{"operation": "set", "name": "cfg", "value": {"region": "eu-west-1", "n": [1, 2]}}"#);
    assert_eq!(set, json!({"operation": "set", "ok": true, "result": true}));

    let get = run(&core, r#"{"operation": "get", "name": "cfg"}"#);
    assert_eq!(keys(&get), ["ok", "operation", "result"]);
    assert_eq!(get["operation"], "get");
    let result = &get["result"];
    assert_eq!(keys(result), ["access_count", "created_at", "name", "type", "value"]);
    assert_eq!(result["name"], "cfg");
    assert_eq!(result["type"], std::any::type_name::<Value>());
    assert_eq!(result["access_count"], 1, "the get itself is counted");
    let created = result["created_at"].as_f64().expect("Unix seconds");
    assert!(created >= before - 0.001 && created <= unix_now() + 0.001, "{created}");
    assert_eq!(result["value"], json!({"region": "eu-west-1", "n": [1, 2]}));
    assert_eq!(run(&core, r#"{"operation": "get", "name": "cfg"}"#)["result"]["access_count"], 2);

    let absent = run(&core, r#"{"operation": "get", "name": "nothing"}"#);
    assert_eq!(absent, json!({"operation": "get", "ok": true, "result": null}));

    for op in ["has", "exists"] {
        let yes = run_value(&core, json!({"operation": op, "name": "cfg"}));
        assert_eq!(yes, json!({"operation": op, "ok": true, "result": true}));
        let no = run_value(&core, json!({"operation": op, "name": "nothing"}));
        assert_eq!(no, json!({"operation": op, "ok": true, "result": false}));
    }

    for op in ["get_stats", "stats"] {
        let stats = run_value(&core, json!({"operation": op}));
        assert_eq!(stats["operation"], "get_stats", "the canonical name for {op}");
        assert_eq!(stats["ok"], true);
        let s = &stats["result"];
        assert_eq!(
            keys(s),
            [
                "access_counts",
                "creation_times",
                "estimated_memory_bytes",
                "estimated_memory_kb",
                "estimated_memory_mb",
                "init_durations_ms",
                "memory_note",
                "rate_limited_count",
                "singleton_names",
                "singleton_types",
                "timestamp",
                "total_singletons",
            ]
        );
        assert_eq!(s["total_singletons"], 1);
        assert_eq!(s["singleton_names"], json!(["cfg"]));
        assert_eq!(s["access_counts"]["cfg"], 2);
        // The same snapshot as the typed method gives.
        let typed = serde_json::to_value(core.stats().unwrap()).unwrap();
        assert_eq!(s["singleton_types"], typed["singleton_types"]);
    }

    assert_eq!(
        run(&core, r#"{"operation": "delete", "name": "cfg"}"#),
        json!({"operation": "delete", "ok": true, "result": true})
    );
    assert_eq!(
        run(&core, r#"{"operation": "delete", "name": "cfg"}"#),
        json!({"operation": "delete", "ok": true, "result": false})
    );

    for op in ["clear", "reset_all"] {
        for name in ["a", "b", "c"] {
            core.set(name, 1_u8).unwrap();
        }
        assert_eq!(
            run_value(&core, json!({"operation": op})),
            json!({"operation": op, "ok": true, "result": 3})
        );
        assert_eq!(
            run_value(&core, json!({"operation": op})),
            json!({"operation": op, "ok": true, "result": 0})
        );
    }

    assert_eq!(
        run(&core, r#"{"operation": "reset"}"#),
        json!({"operation": "reset", "ok": true, "result": true})
    );
}

#[test]
fn a_get_describes_the_instance_and_carries_the_value_only_when_it_is_json() {
    let core = unlimited();
    core.set("port", 8080_u16).unwrap();
    let result = &run(&core, r#"{"operation": "get", "name": "port"}"#)["result"];
    assert_eq!(keys(result), ["access_count", "created_at", "name", "type"]);
    assert_eq!(result["type"], "u16");

    // A `#[singleton]` type is created by its factory and described with its type.
    let result = &run(&core, r#"{"operation": "get", "name": "json_typed"}"#)["result"];
    assert_eq!(result["name"], "json_typed");
    assert!(result["type"].as_str().unwrap().ends_with("JsonTyped"), "{result}");
    assert_eq!(result["access_count"], 1);
    assert!(result.get("value").is_none());

    // Set then get: any JSON, null included, comes back as it was stored.
    for value in
        [json!(null), json!(0), json!("text"), json!([1, {"a": [true, null]}]), json!({"nested": {"k": 1.5}})]
    {
        let set = run_value(&core, json!({"operation": "set", "name": "v", "value": value}));
        assert_eq!(set["ok"], true, "{set}");
        let get = run(&core, r#"{"operation": "get", "name": "v"}"#);
        assert_eq!(get["result"]["value"], value);
        assert_eq!(get["result"]["access_count"], 1, "set restarts the count");
        // The typed path sees the same value.
        assert_eq!(*core.get::<Value>("v").unwrap().unwrap(), value);
    }
}

#[test]
fn request_deserializes_from_the_admin_shape() {
    let request: Request =
        serde_json::from_str(r#"{"operation": "stats", "correlation_id": "c", "unknown": [1]}"#).unwrap();
    assert_eq!(request.operation(), SingletonOperation::GetStats);
    let core = unlimited();
    assert!(matches!(core.execute(request).unwrap(), Response::Stats(_)));

    let set: Request = serde_json::from_str(r#"{"operation": "set", "name": "k", "value": [1, 2]}"#).unwrap();
    assert!(matches!(core.execute(set).unwrap(), Response::Stored));
    assert_eq!(*core.get::<Value>("k").unwrap().unwrap(), json!([1, 2]));

    for bad in [
        r#"{"operation": "frobnicate"}"#,
        r#"{"name": "k"}"#,
        r#"{"operation": 1}"#,
        r#"{"operation": "get", "name": 2}"#,
        r#"{"operation": "get", "name": "a", "name": "b"}"#,
        r#"["get", "k"]"#,
        "null",
    ] {
        assert!(serde_json::from_str::<Request>(bad).is_err(), "{bad}");
    }
    assert_eq!(serde_json::to_value(SingletonOperation::ResetAll).unwrap(), json!("reset_all"));
}

// ---------------------------------------------------------------------------------------------
// Correlation ids
// ---------------------------------------------------------------------------------------------

#[test]
fn the_correlation_id_is_echoed_on_success_and_on_every_error_where_it_could_be_read() {
    let (core, _clock) = manual(2);
    let ok = run(&core, r#"{"operation": "has", "name": "x", "correlation_id": "req-1"}"#);
    assert_eq!(ok, json!({"operation": "has", "ok": true, "result": false, "correlation_id": "req-1"}));

    let cases = [
        (r#"{"correlation_id": "req-2", "operation": "frobnicate"}"#, "bad_request"),
        (r#"{"operation": "frobnicate", "correlation_id": "req-2"}"#, "bad_request"),
        (r#"{"correlation_id": "req-2"}"#, "bad_request"),
        (r#"{"correlation_id": "req-2", "operation": 7}"#, "bad_request"),
        (r#"{"correlation_id": "req-2", "operation": "has"}"#, "bad_request"),
        (r#"{"correlation_id": "req-2", "operation": "has", "name": 3}"#, "bad_request"),
        (r#"{"correlation_id": "req-2", "operation": "has", "name": "x", "name": "y"}"#, "bad_request"),
        // Malformed after the id was read: still echoed.
        (r#"{"correlation_id": "req-2", "operation": "has", "name": "#, "bad_request"),
        (r#"{"correlation_id": "req-2", "operation": "has"} trailing"#, "bad_request"),
        (r#"{"operation": "get", "name": "", "correlation_id": "req-2"}"#, "invalid_name"),
    ];
    for (request, kind) in cases {
        let answer = run(&core, request);
        assert_error(&answer, kind);
        assert_eq!(answer["correlation_id"], "req-2", "{request} -> {answer}");
    }

    // The unknown operation's answer: operation null, and the valid ones listed.
    let answer = run(&core, r#"{"operation": "frobnicate", "correlation_id": "req-3"}"#);
    assert_eq!(
        answer,
        json!({
            "operation": null,
            "ok": false,
            "error": {
                "kind": "bad_request",
                "message": "unknown operation `frobnicate`; valid: get, set, has, delete, clear, get_stats, reset, reset_all, exists, list, health",
            },
            "correlation_id": "req-3",
        })
    );

    // A known operation is named even when the request fails.
    assert_eq!(run(&core, r#"{"operation": "stats", "correlation_id": 5}"#)["operation"], "get_stats");

    // An id that is not a string cannot be echoed (it is itself the bad field).
    let answer = run(&core, r#"{"operation": "has", "name": "x", "correlation_id": 17}"#);
    assert_error(&answer, "bad_request");
    assert!(answer.get("correlation_id").is_none(), "{answer}");

    // Refused by the rate limit (slot 1 was the first `has`; slot 2 now; then refused).
    assert_eq!(run(&core, r#"{"operation": "clear", "correlation_id": "req-4"}"#)["ok"], true);
    let refused = run(&core, r#"{"operation": "clear", "correlation_id": "req-5"}"#);
    assert_error(&refused, "rate_limited");
    assert_eq!(refused["correlation_id"], "req-5");
}

// ---------------------------------------------------------------------------------------------
// The rate limit
// ---------------------------------------------------------------------------------------------

#[test]
fn a_refusal_is_an_error_for_every_operation_with_retry_after_ms_rounded_up() {
    let (core, clock) = manual(1);
    core.set("kept", 1_u8).unwrap(); // the only slot, at t = 0
    clock.advance(Duration::from_micros(400_300)); // 599.7 ms left: answered as 600
    let requests = [
        ("get", json!({"operation": "get", "name": "kept"})),
        ("set", json!({"operation": "set", "name": "kept", "value": 2})),
        ("has", json!({"operation": "has", "name": "kept"})),
        ("exists", json!({"operation": "exists", "name": "kept"})),
        ("delete", json!({"operation": "delete", "name": "kept"})),
        ("clear", json!({"operation": "clear"})),
        ("reset_all", json!({"operation": "reset_all"})),
        ("get_stats", json!({"operation": "get_stats"})),
        ("get_stats", json!({"operation": "stats"})),
        ("reset", json!({"operation": "reset"})),
    ];
    for (op, request) in &requests {
        let answer = run_value(&core, request.clone());
        assert_eq!(answer["operation"], *op);
        assert_error(&answer, "rate_limited");
        assert_eq!(keys(&answer["error"]), ["kind", "message", "retry_after_ms"]);
        assert_eq!(answer["error"]["retry_after_ms"], 600, "{answer}");
        assert!(answer["error"]["message"].as_str().unwrap().contains(op), "{answer}");
    }
    clock.advance(Duration::from_secs(1));
    let stats = core.stats().unwrap();
    assert_eq!(stats.rate_limited_count, requests.len() as u64, "one refusal each, counted once");
    assert_eq!(stats.singleton_names, ["kept"], "nothing changed");
}

// ---------------------------------------------------------------------------------------------
// Bad requests
// ---------------------------------------------------------------------------------------------

/// Every class of request that cannot be read or run: `bad_request`, and nothing happens.
fn bad_requests() -> Vec<String> {
    let deep_value = format!(
        r#"{{"operation": "set", "name": "keep", "value": {}1{}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    let deep_garbage = "[".repeat(100_000);
    let huge = format!(
        r#"{{"operation": "delete", "name": "keep", "pad": "{}"}}"#,
        "x".repeat(MAX_JSON_REQUEST_BYTES)
    );
    let mut all: Vec<String> = [
        // Not JSON, or not complete.
        "",
        " ",
        "{",
        "}",
        "{\"operation\"",
        "{\"operation\": \"delete\", \"name\": \"keep\"",
        "not json",
        "\u{0}",
        "{'operation': 'delete'}",
        r#"{"operation": "delete", "name": "keep",}"#,
        // Not an object.
        "null",
        "true",
        "42",
        r#""delete""#,
        r#"["delete", "keep"]"#,
        "[]",
        // Missing or wrong-typed fields.
        "{}",
        r#"{"name": "keep"}"#,
        r#"{"operation": null}"#,
        r#"{"operation": 1}"#,
        r#"{"operation": ["delete"]}"#,
        r#"{"operation": {"op": "delete"}}"#,
        r#"{"operation": true}"#,
        r#"{"operation": "delete", "name": 1}"#,
        r#"{"operation": "delete", "name": ["keep"]}"#,
        r#"{"operation": "delete", "name": {"n": "keep"}}"#,
        r#"{"operation": "delete", "name": true}"#,
        r#"{"operation": "delete", "name": "keep", "correlation_id": 1}"#,
        r#"{"operation": "delete", "name": "keep", "correlation_id": {}}"#,
        // Missing arguments.
        r#"{"operation": "delete"}"#,
        r#"{"operation": "delete", "name": null}"#,
        r#"{"operation": "get"}"#,
        r#"{"operation": "has"}"#,
        r#"{"operation": "exists"}"#,
        r#"{"operation": "set", "name": "keep"}"#,
        r#"{"operation": "set", "value": 1}"#,
        // Unknown operations.
        r#"{"operation": "frobnicate"}"#,
        r#"{"operation": "DELETE", "name": "keep"}"#,
        r#"{"operation": "delete ", "name": "keep"}"#,
        r#"{"operation": "", "name": "keep"}"#,
        r#"{"operation": "drop_all"}"#,
        // Repeated fields and trailing input.
        r#"{"operation": "delete", "name": "keep", "name": "other"}"#,
        r#"{"operation": "has", "operation": "delete", "name": "keep"}"#,
        r#"{"operation": "delete", "name": "keep"} {"operation": "clear"}"#,
        r#"{"operation": "delete", "name": "keep"}x"#,
        // Invalid escapes and lone surrogates.
        r#"{"operation": "delete", "name": "\ud800"}"#,
        r#"{"operation": "del\x", "name": "keep"}"#,
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    all.push(format!(r#"{{"operation": "{}", "name": "keep"}}"#, "x".repeat(10_000)));
    all.extend([deep_value, deep_garbage, huge]);
    all
}

#[test]
fn every_bad_request_is_answered_bad_request_changes_nothing_and_takes_no_slot() {
    let (core, clock) = manual(3);
    core.set("keep", 1_u8).unwrap(); // slot 1
    let before = core.stats().unwrap(); // slot 2
    for request in bad_requests() {
        let answer = run(&core, &request);
        let shown: String = request.chars().take(80).collect();
        assert_error(&answer, "bad_request");
        assert!(!answer["error"]["message"].as_str().unwrap().is_empty(), "{shown}");
        assert!(answer["error"].get("retry_after_ms").is_none());
        assert!(answer.to_string().len() < 2_000, "the answer does not echo a huge input: {shown}");
    }
    let after = core.stats().unwrap(); // slot 3: every bad request took none
    assert_eq!(after.singleton_names, ["keep"]);
    assert_eq!(after.access_counts, before.access_counts);
    assert_eq!(after.creation_times, before.creation_times);
    assert_eq!(after.rate_limited_count, 0, "a bad request is not a refusal either");
    assert!(core.stats().is_err(), "the fourth admitted operation would be over the limit");
    clock.advance(Duration::from_secs(1));
    assert_eq!(*core.get::<u8>("keep").unwrap().unwrap(), 1);
}

#[test]
fn the_size_bound_and_the_nesting_bound_are_told() {
    let core = unlimited();
    let huge = format!(
        r#"{{"operation": "clear", "correlation_id": "big", "pad": "{}"}}"#,
        "x".repeat(MAX_JSON_REQUEST_BYTES)
    );
    let answer = run(&core, &huge);
    assert_error(&answer, "bad_request");
    assert!(answer["error"]["message"].as_str().unwrap().contains("1048576"), "{answer}");
    assert!(answer.get("correlation_id").is_none(), "input over the bound is not read at all");

    // Just under the bound is read.
    let fits = format!(
        r#"{{"operation": "has", "name": "x", "pad": "{}"}}"#,
        "x".repeat(MAX_JSON_REQUEST_BYTES - 100)
    );
    assert_eq!(run(&core, &fits)["ok"], true);

    let deep =
        format!(r#"{{"operation": "set", "name": "d", "value": {}{}}}"#, "[".repeat(500), "]".repeat(500));
    let answer = run(&core, &deep);
    assert_error(&answer, "bad_request");
    assert!(answer["error"]["message"].as_str().unwrap().contains("deeper than 128 levels"), "{answer}");
    assert!(!core.has("d"));

    // The bound is 128 levels in all, the request's own object being the first: a value may nest
    // 127 deep, not 128.
    let nest = |levels: usize| "[".repeat(levels) + &"]".repeat(levels);
    let at_bound = format!(r#"{{"operation": "set", "name": "d", "value": {}}}"#, nest(127));
    assert_eq!(run(&core, &at_bound)["ok"], true, "128 levels in all are read");
    assert!(core.delete("d"));
    let over = format!(r#"{{"operation": "set", "name": "d", "value": {}}}"#, nest(128));
    assert_error(&run(&core, &over), "bad_request");
    assert!(!core.has("d"));
    // Brackets inside strings are text, escaped quotes included.
    let text = format!(r#"{{"operation": "set", "name": "d", "value": "\"{}"}}"#, "[".repeat(500));
    assert_eq!(run(&core, &text)["ok"], true, "a string is not nesting");
    assert!(core.delete("d"));

    // Nesting well inside the bound is stored and given back.
    let ok =
        format!(r#"{{"operation": "set", "name": "d", "value": {}{}}}"#, "[".repeat(100), "]".repeat(100));
    assert_eq!(run(&core, &ok)["ok"], true);
    let value = run(&core, r#"{"operation": "get", "name": "d"}"#)["result"]["value"].clone();
    assert_eq!(value.to_string(), format!("{}{}", "[".repeat(100), "]".repeat(100)));
}

#[test]
fn unknown_fields_are_ignored_and_null_is_an_absent_name() {
    let core = unlimited();
    core.set("x", 1_u8).unwrap();
    let answer =
        run(&core, r#"{"operation": "has", "name": "x", "extra": {"deep": [1, 2, {"a": null}]}, "n": 1}"#);
    assert_eq!(answer["result"], true);
    // `value` is read only by `set`.
    assert_eq!(run(&core, r#"{"operation": "has", "name": "x", "value": 3}"#)["result"], true);
    // A name given to an operation on all singletons is not used.
    assert_eq!(
        run(&core, r#"{"operation": "clear", "name": "whatever", "correlation_id": null}"#)["result"],
        1
    );
}

// ---------------------------------------------------------------------------------------------
// Invalid names, type mismatches, failing factories
// ---------------------------------------------------------------------------------------------

#[test]
fn an_invalid_name_is_an_error_for_every_operation_that_takes_a_name() {
    let (core, _clock) = manual(2);
    core.set("keep", 1_u8).unwrap(); // slot 1
    let long = "n".repeat(257);
    let names = ["", " ", "  \t ", "a\nb", "nul\u{0}", "bell\u{7}", long.as_str()];
    for name in names {
        for op in ["get", "set", "has", "exists", "delete"] {
            let answer =
                run_value(&core, json!({"operation": op, "name": name, "value": 2, "correlation_id": "n"}));
            assert_eq!(answer["operation"], op);
            assert_error(&answer, "invalid_name");
            assert_eq!(answer["correlation_id"], "n");
        }
    }
    let stats = core.stats().unwrap(); // slot 2: no invalid name took one
    assert_eq!(stats.singleton_names, ["keep"]);
    assert_eq!(stats.access_counts["keep"], 0);
    assert_eq!(stats.rate_limited_count, 0);
}

#[test]
fn a_type_mismatch_is_answered_type_mismatch() {
    let core = unlimited();
    // `json_typed` belongs to a `#[singleton]` type: a JSON value cannot be stored under it.
    let answer = run(&core, r#"{"operation": "set", "name": "json_typed", "value": 1}"#);
    assert_eq!(answer["operation"], "set");
    assert_error(&answer, "type_mismatch");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("json_typed") && message.contains("JsonTyped"), "{message}");
    assert!(!core.has("json_typed"));
}

#[test]
fn failing_panicking_and_cyclic_factories_are_answered_with_their_kind() {
    let core = unlimited();
    let failed = run(&core, r#"{"operation": "get", "name": "json_fails", "correlation_id": "f"}"#);
    assert_error(&failed, "factory");
    assert!(failed["error"]["message"].as_str().unwrap().contains("the config file is missing"), "{failed}");
    assert_eq!(failed["correlation_id"], "f");

    let panicked = run(&core, r#"{"operation": "get", "name": "json_panics"}"#);
    assert_error(&panicked, "factory");
    let message = panicked["error"]["message"].as_str().unwrap();
    assert!(message.contains("json_panics") && message.contains("gave up"), "{message}");
    // Nothing was left behind; the next get tries again (and panics again).
    assert!(!core.has("json_panics"));
    assert_error(&run(&core, r#"{"operation": "get", "name": "json_panics"}"#), "factory");

    // On the global core, where `JsonSelf::instance()` inside its own factory is resolved.
    let cycle = run(manager(), r#"{"operation": "get", "name": "json_self"}"#);
    assert_error(&cycle, "cycle");
    assert!(cycle["error"]["message"].as_str().unwrap().contains("json_self -> json_self"), "{cycle}");

    let duplicate = run(&core, r#"{"operation": "get", "name": "json_dup"}"#);
    assert_error(&duplicate, "duplicate_name");
    for op in ["has", "delete"] {
        assert_error(&run_value(&core, json!({"operation": op, "name": "json_dup"})), "duplicate_name");
    }
}

// ---------------------------------------------------------------------------------------------
// Fuzzing: never a panic, always a JSON answer with a boolean `ok`
// ---------------------------------------------------------------------------------------------

fn fuzz_cases() -> u32 {
    std::env::var("JSON_FUZZ_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(4096)
}

fn fuzz_config() -> ProptestConfig {
    ProptestConfig { cases: fuzz_cases(), failure_persistence: None, ..ProptestConfig::default() }
}

/// A valid request, as JSON text.
fn valid_request() -> impl Strategy<Value = String> {
    let names: Vec<&'static str> = SingletonOperation::NAMES.iter().copied().chain(["stats"]).collect();
    let op = prop::sample::select(names);
    let name = prop::sample::select(vec!["a", "b", "json_typed", "json_fails", "json_dup", "", " x", "名前"]);
    let value = prop_oneof![
        Just(json!(null)),
        any::<i64>().prop_map(Value::from),
        ".{0,8}".prop_map(Value::from),
        Just(json!({"k": [1, 2, {"z": null}]})),
    ];
    (op, prop::option::of(name), prop::option::of("[a-z0-9-]{0,6}"), prop::option::of(value)).prop_map(
        |(op, name, id, value)| {
            let mut object = serde_json::Map::new();
            object.insert("operation".into(), op.into());
            if let Some(name) = name {
                object.insert("name".into(), name.into());
            }
            if let Some(id) = id {
                object.insert("correlation_id".into(), id.into());
            }
            if let Some(value) = value {
                object.insert("value".into(), value);
            }
            Value::Object(object).to_string()
        },
    )
}

/// A valid request with bytes cut out, replaced or spliced in.
fn mutated_request() -> impl Strategy<Value = String> {
    (valid_request(), prop::collection::vec((any::<prop::sample::Index>(), 0_u8..4, any::<u8>()), 1..6))
        .prop_map(|(request, edits)| {
            let mut bytes = request.into_bytes();
            for (at, how, byte) in edits {
                let i = at.index(bytes.len() + 1);
                match how {
                    0 if i < bytes.len() => {
                        bytes.remove(i);
                    }
                    1 if i < bytes.len() => bytes[i] = byte,
                    2 => bytes.insert(i, byte),
                    _ => bytes.truncate(i),
                }
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
}

fn check_answer(core: &SingletonCore, input: &str) -> Result<(), TestCaseError> {
    let text = core.execute_json(input);
    let answer: Value =
        serde_json::from_str(&text).map_err(|e| TestCaseError::fail(format!("not JSON ({e}): {text}")))?;
    check_envelope(&answer).map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
    Ok(())
}

proptest! {
    #![proptest_config(fuzz_config())]

    #[test]
    fn arbitrary_bytes_never_panic_and_are_answered_in_json(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let core = unlimited();
        check_answer(&core, &String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn mutated_valid_requests_never_panic_and_are_answered_in_json(input in mutated_request()) {
        let core = unlimited();
        core.set("a", 1_u8).unwrap();
        check_answer(&core, &input)?;
    }

    #[test]
    fn valid_requests_are_answered_in_json_on_a_tiny_limit(inputs in prop::collection::vec(valid_request(), 1..12)) {
        let (core, clock) = manual(3);
        for input in inputs {
            check_answer(&core, &input)?;
            clock.advance(Duration::from_millis(150));
        }
    }
}

#[test]
fn every_prefix_of_a_valid_request_is_answered_in_json() {
    let core = unlimited();
    let request = r#"{"operation": "set", "name": "名前", "correlation_id": "c-1", "value": {"a": [1, "\u00e9", null]}}"#;
    for end in (0..=request.len()).filter(|&i| request.is_char_boundary(i)) {
        check_answer(&core, &request[..end]).unwrap();
    }
}

/// Nesting deeper than 128 anywhere is refused, inside an unknown field too: it changes nothing
/// and takes no rate-limit slot. An unknown field once skipped 100,000 levels, and the `set`
/// ran.
#[test]
fn deep_nesting_inside_an_unknown_field_is_refused_and_takes_no_slot() {
    let core = SingletonCore::with_rate_limit(RateLimit::per_second(1));
    for deep in [200, 100_000] {
        let request = format!(
            r#"{{"operation": "set", "name": "b", "value": 1, "extra": {}{}}}"#,
            "[".repeat(deep),
            "]".repeat(deep)
        );
        let answer = run(&core, &request);
        assert_error(&answer, "bad_request");
        assert!(answer["error"]["message"].as_str().unwrap().contains("deeper than 128"), "{answer}");
    }
    assert_eq!(core.stats().unwrap().total_singletons, 0, "nothing stored, and the one slot was free");
}
