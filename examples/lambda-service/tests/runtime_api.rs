//! The built `lambda-service` binary against a local Runtime API emulator, with the environment
//! a Lambda sandbox sets: the init phase, warm invocations, admin operations, the error paths.
//! Only 127.0.0.1 is contacted; every wait is bounded by [`WAIT`].

mod support;

use serde_json::{json, Value};
use support::{Emulator, Function, Record, WAIT};

fn ok(outcome: Result<Value, Record>) -> Value {
    outcome.unwrap_or_else(|record| panic!("the invocation failed: {record:?}"))
}

#[tokio::test]
async fn warm_invocations_reuse_the_singletons_made_at_init() {
    let mut emulator = Emulator::start().await;
    let function = Function::start(&emulator, &[]);

    let (first, answer) = emulator.call(json!({"key": "user:1", "value": "ada"}), WAIT).await;
    assert_eq!(ok(answer), json!({"cached": 1, "cold_start": true}));
    let (_, answer) = emulator.call(json!({"key": "user:2", "value": "grace"}), WAIT).await;
    assert_eq!(ok(answer), json!({"cached": 2, "cold_start": false}));
    let (_, answer) = emulator.call(json!({"key": "user:1", "value": "ada lovelace"}), WAIT).await;
    assert_eq!(ok(answer), json!({"cached": 2, "cold_start": false}));

    let (_, stats) =
        emulator.call(json!({"operation": "get_stats", "correlation_id": "stats-1"}), WAIT).await;
    let stats = ok(stats);
    assert_eq!(stats["ok"], true, "{stats}");
    assert_eq!(stats["operation"], "get_stats");
    assert_eq!(stats["correlation_id"], "stats-1");
    let result = &stats["result"];
    // One access per invocation, this one included; the cache was used by the three puts.
    assert_eq!(result["access_counts"]["sdk_client"], 4, "{result}");
    assert_eq!(result["access_counts"]["cache"], 3, "{result}");
    assert!(result["singleton_names"].as_array().unwrap().contains(&json!("config")), "{result}");

    let (_, again) = emulator.call(json!({"operation": "stats", "correlation_id": "stats-2"}), WAIT).await;
    let again = ok(again);
    assert_eq!(again["correlation_id"], "stats-2");
    assert_eq!(again["result"]["access_counts"]["sdk_client"], 5);
    // Made once: the same creation time and factory time in both answers.
    for name in ["config", "sdk_client", "cache"] {
        assert_eq!(again["result"]["creation_times"][name], result["creation_times"][name], "{name}");
        assert_eq!(again["result"]["init_durations_ms"][name], result["init_durations_ms"][name], "{name}");
    }
    assert!(result["init_durations_ms"]["sdk_client"].as_f64().unwrap() >= 20.0, "{result}");

    // The init phase logged its report once, before the first event was asked for.
    function.wait_for_line(WAIT, |line| line.starts_with("eager singletons: 2 in")).await;
    let stdout = function.stdout();
    assert!(stdout.contains("cold start, init phase:\neager singletons: 2 in"), "{stdout}");
    assert_eq!(stdout.matches("eager singletons:").count(), 1, "{stdout}");
    assert!(stdout.contains("sdk_client (async)") && stdout.contains("created in"), "{stdout}");
    // Every invocation is logged in a span carrying its request id as the correlation id.
    assert!(stdout.contains(&format!("correlation_id={first} cold_start=true")), "{stdout}");
    let cold = format!("correlation_id={first} cold_start=true");
    assert!(stdout.lines().filter(|l| l.contains("cold_start=true")).all(|l| l.contains(&cold)), "{stdout}");
    assert_eq!(emulator.records().iter().filter(|r| **r == Record::Next).count(), 5);
    drop(function);
}

#[tokio::test]
async fn admin_operations_answer_with_the_json_object() {
    let mut emulator = Emulator::start().await;
    let _function = Function::start(&emulator, &[]);

    let (_, answer) = emulator.call(json!({"operation": "frobnicate", "correlation_id": "op-7"}), WAIT).await;
    let answer = ok(answer);
    assert!(answer.is_object(), "the answer is the JSON object, not a string holding it: {answer}");
    assert_eq!(answer["operation"], Value::Null, "{answer}");
    assert_eq!(answer["ok"], false);
    assert_eq!(answer["error"]["kind"], "bad_request", "{answer}");
    assert!(
        answer["error"]["message"].as_str().unwrap().starts_with("unknown operation `frobnicate`"),
        "{answer}"
    );
    assert_eq!(answer["correlation_id"], "op-7");

    // Without a correlation id of its own, the answer carries the Lambda request id.
    let (request_id, answer) = emulator.call(json!({"operation": "has", "name": "sdk_client"}), WAIT).await;
    assert_eq!(
        ok(answer),
        json!({"operation": "has", "ok": true, "result": true, "correlation_id": request_id})
    );

    // `list` is for anyone too, and creates nothing: the lazy cache stays pending.
    let (_, answer) = emulator.call(json!({"operation": "list"}), WAIT).await;
    let answer = ok(answer);
    let list = answer["result"].as_array().unwrap_or_else(|| panic!("{answer}"));
    let cache = list.iter().find(|l| l["name"] == "cache").unwrap();
    assert_eq!(cache["state"], "pending", "{answer}");
}

/// With no `LAMBDA_SERVICE_ADMIN_TOKEN`, the function's events are observe-only: anyone who can
/// invoke it can look, nobody can change or create.
#[tokio::test]
async fn admin_events_are_observe_only_without_a_token() {
    let mut emulator = Emulator::start().await;
    let _function = Function::start(&emulator, &[]);
    let (_, answer) = emulator.call(json!({"key": "user:1", "value": "ada"}), WAIT).await;
    assert_eq!(ok(answer)["cached"], 1);

    for event in [
        json!({"operation": "get_stats"}),
        json!({"operation": "has", "name": "cache"}),
        json!({"operation": "list"}),
    ] {
        let (_, answer) = emulator.call(event.clone(), WAIT).await;
        assert_eq!(ok(answer)["ok"], true, "{event}");
    }
    for event in [
        json!({"operation": "clear"}),
        json!({"operation": "delete", "name": "cache"}),
        json!({"operation": "set", "name": "cache", "value": 1}),
        json!({"operation": "reset"}),
        json!({"operation": "get", "name": "sdk_client"}),
        json!({"operation": "clear", "token": "a-guess"}),
    ] {
        let (_, answer) = emulator.call(event.clone(), WAIT).await;
        let answer = ok(answer);
        assert_eq!(answer["error"]["kind"], "forbidden", "{event} -> {answer}");
    }
    // The cache is intact: the next put finds the first entry.
    let (_, answer) = emulator.call(json!({"key": "user:2", "value": "grace"}), WAIT).await;
    assert_eq!(ok(answer)["cached"], 2);
}

/// With `LAMBDA_SERVICE_ADMIN_TOKEN` set, the same events carrying the token run; a wrong token
/// (of the same length, or another) is refused.
#[tokio::test]
async fn admin_events_with_the_token_run_and_a_wrong_token_is_refused() {
    const TOKEN: &str = "s3cret-from-secrets-manager";
    let mut emulator = Emulator::start().await;
    let function = Function::start(&emulator, &[("LAMBDA_SERVICE_ADMIN_TOKEN", TOKEN)]);
    let (_, answer) = emulator.call(json!({"key": "user:1", "value": "ada"}), WAIT).await;
    assert_eq!(ok(answer)["cached"], 1);

    for wrong in ["x".repeat(TOKEN.len()), "short".to_owned()] {
        let (_, answer) = emulator.call(json!({"operation": "clear", "token": wrong}), WAIT).await;
        assert_eq!(ok(answer)["error"]["kind"], "forbidden");
    }
    let (_, answer) =
        emulator.call(json!({"operation": "get", "name": "sdk_client", "token": TOKEN}), WAIT).await;
    assert_eq!(ok(answer)["result"]["name"], "sdk_client");
    let (_, answer) =
        emulator.call(json!({"operation": "set", "name": "flag", "value": true, "token": TOKEN}), WAIT).await;
    assert_eq!(ok(answer)["ok"], true);
    let (_, answer) =
        emulator.call(json!({"operation": "delete", "name": "flag", "token": TOKEN}), WAIT).await;
    assert_eq!(ok(answer)["result"], true);
    let (_, answer) = emulator.call(json!({"operation": "reset", "token": TOKEN}), WAIT).await;
    assert_eq!(ok(answer)["ok"], true);
    let (_, answer) = emulator.call(json!({"operation": "clear", "token": TOKEN}), WAIT).await;
    assert_eq!(ok(answer)["result"], 3, "cache, config and sdk_client");
    // The token is never logged.
    assert!(!function.stdout().contains(TOKEN));
}

#[tokio::test]
async fn a_malformed_event_is_an_invocation_error_and_the_function_stays_warm() {
    let mut emulator = Emulator::start().await;
    let _function = Function::start(&emulator, &[]);

    let (_, answer) = emulator.call(json!({"key": "user:1", "value": "ada"}), WAIT).await;
    assert_eq!(ok(answer)["cold_start"], true);

    for event in
        [json!({"key": "user:2"}), json!({"key": 1, "value": "x"}), json!(["key", "value"]), json!("hello")]
    {
        let (request_id, outcome) = emulator.call(event.clone(), WAIT).await;
        let Err(Record::Error { request_id: id, body, .. }) = outcome else {
            panic!("{event} should fail, got {outcome:?}");
        };
        assert_eq!(id, request_id);
        assert_eq!(body["errorType"], "InvalidEvent", "{body}");
        let message = body["errorMessage"].as_str().unwrap();
        assert!(message.contains(r#"{"key": "<string>", "value": "<string>"}"#), "{message}");
    }

    let (_, answer) = emulator.call(json!({"key": "user:3", "value": "x"}), WAIT).await;
    assert_eq!(ok(answer), json!({"cached": 2, "cold_start": false}));
}

#[tokio::test]
async fn an_init_failure_is_posted_to_init_error_and_the_process_exits() {
    let mut emulator = Emulator::start().await;
    let mut function = Function::start(&emulator, &[("LAMBDA_SERVICE_FAIL_INIT", "1")]);

    let (error_type, body) = emulator
        .wait_for(WAIT, |record| match record {
            Record::InitError { error_type, body } => Some((error_type.clone(), body.clone())),
            _ => None,
        })
        .await;
    assert_eq!(error_type.as_deref(), Some("Runtime.InitError"));
    assert_eq!(body["errorType"], "singleton_kit::EagerError", "{body}");
    let message = body["errorMessage"].as_str().unwrap();
    assert!(message.starts_with("eager singleton `sdk_client` failed"), "{message}");
    assert!(message.contains("LAMBDA_SERVICE_FAIL_INIT=1"), "{message}");

    let status = function.wait_exit(WAIT).await;
    assert!(!status.success(), "{status}");
    // Posted during init, once: the function never asked for an event.
    let records = emulator.drain();
    assert_eq!(records.len(), 1, "{records:?}");
    assert!(function.stdout().contains("init phase failed"), "{}", function.stdout());
}

/// With the feature `metrics`: each invocation ends with a flush of EMF documents tagged with
/// its request id.
#[cfg(feature = "metrics")]
#[tokio::test]
async fn each_invocation_flushes_emf_metrics() {
    let mut emulator = Emulator::start().await;
    let function = Function::start(&emulator, &[]);
    let mut ids = Vec::new();
    for i in 0..3 {
        let (request_id, answer) = emulator.call(json!({"key": format!("k{i}"), "value": "v"}), WAIT).await;
        ok(answer);
        ids.push(request_id);
    }
    for (i, id) in ids.iter().enumerate() {
        let live = function
            .wait_for_line(WAIT, |line| {
                line.starts_with(r#"{"_aws""#) && line.contains(id) && line.contains("singleton_live")
            })
            .await;
        let doc: Value = serde_json::from_str(&live).unwrap();
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Namespace"], "singleton-kit", "{doc}");
        assert_eq!(doc["function"], "lambda-service");
        assert_eq!(doc["RequestId"], id.as_str());
        assert_eq!(doc["ColdStart"], i == 0);
        assert_eq!(doc["singleton_live"], 3.0, "config, sdk_client and the cache: {doc}");
    }
    // The init phase's creations reach the first flush.
    let stdout = function.stdout();
    let first: Vec<&str> =
        stdout.lines().filter(|l| l.starts_with(r#"{"_aws""#) && l.contains(&ids[0])).collect();
    assert!(
        first.iter().any(|l| l.contains("singleton_init_seconds") && l.contains("sdk_client")),
        "{stdout}"
    );
}

/// Outside a sandbox (no `AWS_LAMBDA_RUNTIME_API`) an init failure is logged and the process
/// still exits non-zero, without panicking.
#[tokio::test]
async fn an_init_failure_outside_a_sandbox_still_exits_non_zero() {
    let emulator = Emulator::start().await;
    let mut function =
        Function::start(&emulator, &[("LAMBDA_SERVICE_FAIL_INIT", "1"), ("AWS_LAMBDA_RUNTIME_API", "")]);
    let status = function.wait_exit(WAIT).await;
    assert_eq!(status.code(), Some(1), "{status}");
    let stdout = function.stdout();
    assert!(stdout.contains("could not post the init error to /2018-06-01/runtime/init/error: AWS_LAMBDA_RUNTIME_API is not set"), "{stdout}");
    assert!(!function.stderr().contains("panicked"), "{}", function.stderr());
}

/// Lambda's shutdown phase: the graceful-shutdown helper registered its internal extension
/// during init; on SIGTERM the singletons' hooks run (the client, then the config it uses), one
/// line is logged per singleton, and the process exits 0 well within Lambda's 500 ms.
#[tokio::test]
async fn sigterm_runs_the_shutdown_hooks_dependents_first_and_exits_0() {
    let mut emulator = Emulator::start().await;
    let mut function = Function::start(&emulator, &[]);
    let (_, answer) = emulator.call(json!({"key": "user:1", "value": "ada"}), WAIT).await;
    assert_eq!(ok(answer)["cached"], 1);
    let registered = emulator.records().iter().find_map(|r| match r {
        Record::ExtensionRegister { name } => Some(name.clone()),
        _ => None,
    });
    assert_eq!(
        registered,
        Some(Some("_lambda-rust-runtime-no-op-graceful-shutdown-helper".to_owned())),
        "the helper registered its extension during init"
    );
    // The health check of the client, as a probe would ask for it.
    let (_, answer) = emulator.call(json!({"operation": "health"}), WAIT).await;
    let answer = ok(answer);
    assert_eq!(answer["result"]["status"], "up", "{answer}");

    let sent = std::time::Instant::now();
    function.terminate();
    let status = function.wait_exit(WAIT).await;
    let took = sent.elapsed();
    assert!(status.success(), "exit {status:?}; stderr:\n{}", function.stderr());
    assert!(took < std::time::Duration::from_secs(1), "exited {took:?} after SIGTERM");
    let stdout = function.stdout();
    let client = stdout.find("sdk_client closed").unwrap_or_else(|| panic!("{stdout}"));
    let config = stdout.find("config closed").unwrap_or_else(|| panic!("{stdout}"));
    assert!(client < config, "the client closes before the config it uses:\n{stdout}");
    for name in ["cache", "config", "sdk_client"] {
        assert!(
            stdout.lines().any(|l| l.contains("shutdown") && l.contains(&format!("singleton={name}"))),
            "a line for {name}:\n{stdout}"
        );
    }
    assert!(stdout.contains("shutdown complete") && stdout.contains("released=3"), "{stdout}");
}
