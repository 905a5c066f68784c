//! `execute_json` and `execute_json_async` with async singletons: `needs_await`, then a `get`
//! that creates it, with the correlation id echoed.

use serde_json::{json, Value};
use singleton_kit::{singleton, SingletonCore};

#[singleton(name = "json_async_client", factory = Client::connect, async)]
#[derive(Debug)]
pub struct Client;

impl Client {
    async fn connect() -> Self {
        Client
    }
}

#[singleton(name = "json_async_broken", try_factory = Broken::connect, async)]
#[derive(Debug)]
pub struct Broken;

impl Broken {
    async fn connect() -> Result<Self, std::io::Error> {
        Err(std::io::Error::other("no route to host"))
    }
}

fn parse(answer: &str) -> Value {
    serde_json::from_str(answer).expect("the answer is JSON")
}

#[test]
fn needs_await_from_the_sync_path_then_the_async_path_creates_it() {
    let core = SingletonCore::new();
    let request =
        json!({"operation": "get", "name": "json_async_client", "correlation_id": "c-1"}).to_string();
    let sync = parse(&core.execute_json(&request));
    assert_eq!(sync["ok"], false);
    assert_eq!(sync["operation"], "get");
    assert_eq!(sync["error"]["kind"], "needs_await");
    assert!(sync["error"]["message"].as_str().unwrap().contains("json_async_client"));
    assert_eq!(sync["correlation_id"], "c-1");
    assert!(!core.has("json_async_client"), "the sync answer created nothing");

    let made = parse(&futures::executor::block_on(core.execute_json_async(&request)));
    assert_eq!(made["ok"], true, "{made}");
    assert_eq!(made["correlation_id"], "c-1");
    assert_eq!(made["result"]["name"], "json_async_client");
    assert_eq!(made["result"]["access_count"], 1);
    assert!(made["result"]["type"].as_str().unwrap().ends_with("Client"));

    // Now the sync path has it.
    let again = parse(&core.execute_json(&request));
    assert_eq!(again["ok"], true);
    assert_eq!(again["result"]["access_count"], 2);
}

#[test]
fn the_async_path_answers_every_other_operation_as_the_sync_one() {
    let core = SingletonCore::new();
    for request in [
        json!({"operation": "set", "name": "x", "value": [1, 2]}),
        json!({"operation": "has", "name": "x"}),
        json!({"operation": "stats"}),
        json!({"operation": "frobnicate", "correlation_id": "c-2"}),
        json!({"operation": "has", "name": "\u{200B}"}),
    ] {
        let text = request.to_string();
        let sync = parse(&core.execute_json(&text));
        let async_ = parse(&futures::executor::block_on(core.execute_json_async(&text)));
        let strip = |mut v: Value| {
            if let Some(result) = v.get_mut("result").and_then(Value::as_object_mut) {
                result.remove("timestamp");
            }
            v
        };
        assert_eq!(strip(sync), strip(async_), "{request}");
    }
    assert_eq!(parse(&core.execute_json("not json"))["error"]["kind"], "bad_request");
    assert_eq!(
        parse(&futures::executor::block_on(core.execute_json_async("not json")))["error"]["kind"],
        "bad_request"
    );
}

#[test]
fn a_failing_async_factory_is_a_factory_error_over_json() {
    let core = SingletonCore::new();
    let request = json!({"operation": "get", "name": "json_async_broken"}).to_string();
    let answer = parse(&futures::executor::block_on(core.execute_json_async(&request)));
    assert_eq!(answer["ok"], false);
    assert_eq!(answer["error"]["kind"], "factory");
    assert!(answer["error"]["message"].as_str().unwrap().contains("no route to host"));
}
