//! Who may do what: an `AdminPolicy` applied by an `Admin` to requests from outside, and the
//! `list` operation that looks without creating or counting anything.

use proptest::prelude::*;
use serde_json::{json, Value};
use singleton_kit::{
    admin, singleton, AdminPolicy, RateLimit, Request, SingletonCore, SingletonError,
    SingletonOperation as Op, Source,
};

#[singleton(name = "admin_pool", factory = || AdminPool { connections: 16 })]
pub struct AdminPool {
    pub connections: u32,
}

#[singleton(name = "admin_client", factory = AdminClient::connect)]
pub struct AdminClient;

impl AdminClient {
    fn connect() -> Self {
        let _ = AdminPool::instance();
        AdminClient
    }
}

#[singleton(name = "admin_never_made", eager)]
#[derive(Default)]
pub struct AdminNeverMade;

const SECRET: &str = "correct-horse-battery-staple";

fn answer(admin: &singleton_kit::Admin<'_>, request: Value) -> Value {
    serde_json::from_str(&admin.execute_json(&request.to_string())).expect("an answer in JSON")
}

fn kind(answer: &Value) -> &str {
    answer["error"]["kind"].as_str().unwrap_or("")
}

/// What a request could have changed: the live names with their access counts and creation
/// times, and the refusal count.
fn state(core: &SingletonCore) -> Value {
    let list = core.list().unwrap();
    let live: Vec<Value> = list
        .iter()
        .filter(|l| l.created)
        .map(|l| json!([l.name, l.access_count, l.created_at.map(|t| format!("{t:?}"))]))
        .collect();
    json!(live)
}

fn unlimited() -> SingletonCore {
    SingletonCore::with_rate_limit(RateLimit::unlimited())
}

#[test]
fn observe_only_answers_looking_and_refuses_the_rest_changing_nothing() {
    let core = unlimited();
    core.set("config", json!({"region": "eu"})).unwrap();
    let _ = core.get::<Value>("config").unwrap();
    let admin = core.admin(AdminPolicy::observe_only());
    let before = state(&core);

    for op in ["get_stats", "list"] {
        assert_eq!(answer(&admin, json!({"operation": op}))["ok"], true, "{op}");
    }
    for op in ["has", "exists"] {
        assert_eq!(answer(&admin, json!({"operation": op, "name": "config"}))["result"], true, "{op}");
    }
    for (request, message) in [
        (json!({"operation": "clear"}), "`clear` is not allowed here"),
        (json!({"operation": "reset_all"}), "`reset_all` is not allowed here"),
        (json!({"operation": "reset"}), "`reset` is not allowed here"),
        (json!({"operation": "delete", "name": "config"}), "`delete` is not allowed here"),
        (json!({"operation": "set", "name": "config", "value": 1}), "`set` is not allowed here"),
        (json!({"operation": "get", "name": "config"}), "`get` is not allowed here"),
        (json!({"operation": "get", "name": "admin_pool"}), "`get` is not allowed here"),
    ] {
        let got = answer(&admin, request.clone());
        assert_eq!((got["ok"].clone(), kind(&got)), (json!(false), "forbidden"), "{request}");
        assert!(got["error"]["message"].as_str().unwrap().contains(message), "{got}");
    }
    assert_eq!(state(&core), before, "nothing changed, no access counted");
    assert!(!core.list().unwrap().iter().any(|l| l.name == "admin_pool" && l.created), "no factory ran");
}

#[test]
fn a_refusal_takes_no_rate_limit_slot() {
    let core = SingletonCore::with_rate_limit(RateLimit::per_second(1));
    let admin = core.admin(AdminPolicy::observe_only());
    for _ in 0..5 {
        assert_eq!(kind(&answer(&admin, json!({"operation": "clear"}))), "forbidden");
    }
    // The one slot of the window is still free.
    assert_eq!(answer(&admin, json!({"operation": "get_stats"}))["ok"], true);
    assert_eq!(kind(&answer(&admin, json!({"operation": "get_stats"}))), "rate_limited");
}

#[test]
fn forbidden_wins_over_a_bad_name_and_nothing_about_the_name_is_evaluated() {
    let core = unlimited();
    let admin = core.admin(AdminPolicy::observe_only());
    for name in ["", " padded ", "bad\u{202e}name"] {
        let got = answer(&admin, json!({"operation": "delete", "name": name}));
        assert_eq!(kind(&got), "forbidden", "{got}");
    }
    // A request that cannot be read is still `bad_request`, before the policy is asked.
    assert_eq!(kind(&answer(&admin, json!({"operation": "clear", "token": 7}))), "bad_request");
    // With the operation allowed, the name is checked next.
    let open = core.admin(AdminPolicy::all());
    assert_eq!(kind(&answer(&open, json!({"operation": "delete", "name": ""}))), "invalid_name");
}

#[test]
fn with_a_token_the_rest_runs_for_the_token_only() {
    let core = unlimited();
    core.set("cache", 1_u32).unwrap();
    let admin = core.admin(AdminPolicy::observe_only().require_token(SECRET));
    let same_length = "x".repeat(SECRET.len());
    for (token, expect_ok) in [
        (None, false),
        (Some(json!("")), false),
        (Some(json!(same_length)), false),
        (Some(json!("short")), false),
        (Some(json!(format!("{SECRET}-and-more"))), false),
        (Some(json!("y".repeat(2048))), false),
        (Some(json!(SECRET)), true),
    ] {
        let mut request = json!({"operation": "get", "name": "cache", "correlation_id": "c-1"});
        if let Some(token) = &token {
            request["token"] = token.clone();
        }
        let got = answer(&admin, request);
        assert_eq!(got["ok"], expect_ok, "{token:?} -> {got}");
        if !expect_ok {
            assert_eq!(kind(&got), "forbidden");
            assert!(got["error"]["message"].as_str().unwrap().contains("`get` needs a token"), "{got}");
        }
        assert!(!got.to_string().contains(SECRET), "the answer shows no token");
    }
    // Every operation runs with it.
    for request in [
        json!({"operation": "set", "name": "cache", "value": 2, "token": SECRET}),
        json!({"operation": "delete", "name": "cache", "token": SECRET}),
        json!({"operation": "reset", "token": SECRET}),
        json!({"operation": "clear", "token": SECRET}),
        json!({"operation": "reset_all", "token": SECRET}),
    ] {
        assert_eq!(answer(&admin, request.clone())["ok"], true, "{request}");
    }
    // Observe needs none, and a wrong one is not even checked.
    assert_eq!(answer(&admin, json!({"operation": "list", "token": "wrong"}))["ok"], true);
}

#[test]
fn a_request_token_over_the_size_bound_is_a_clear_error_and_changes_nothing() {
    let core = unlimited();
    core.set("kept", 1_u8).unwrap();
    let admin = core.admin(AdminPolicy::observe_only().require_token(SECRET));
    let huge = json!({"operation": "clear", "token": "t".repeat(1 << 20)});
    assert_eq!(kind(&answer(&admin, huge)), "bad_request", "over the 1 MiB request bound");
    assert!(core.has("kept"));
}

#[test]
fn deny_closes_an_operation_to_everyone_and_the_last_rule_wins() {
    let policy = AdminPolicy::all().deny(Op::Clear).require_token(SECRET);
    assert!(policy.check(Op::Clear, Some(SECRET)).is_err());
    assert!(policy.check(Op::Delete, Some(SECRET)).is_ok());
    assert!(policy.check(Op::Delete, None).is_err(), "a token is required beyond observe");
    let policy = AdminPolicy::observe_only().deny(Op::List).allow(Op::List);
    assert!(policy.check(Op::List, None).is_ok());
    let policy = AdminPolicy::observe_only().allow(Op::Get).deny(Op::Get);
    assert!(policy.check(Op::Get, None).is_err());
    assert!(AdminPolicy::observe_only().deny(Op::GetStats).check(Op::GetStats, None).is_err());
    assert!(AdminPolicy::all().check(Op::Reset, None).is_ok());
}

#[test]
fn a_bad_secret_is_refused_without_showing_it() {
    let err = AdminPolicy::observe_only().try_require_token("").unwrap_err();
    assert!(matches!(err, SingletonError::InvalidToken { .. }));
    let long = "k".repeat(2000);
    let err = AdminPolicy::observe_only().try_require_token(&long).unwrap_err();
    assert!(!err.to_string().contains("kkkk"), "{err}");
    let panicked = std::panic::catch_unwind(|| AdminPolicy::observe_only().require_token(""));
    assert!(panicked.is_err(), "an empty secret panics in require_token");
}

#[test]
fn from_env_is_observe_only_unset_or_empty_and_every_operation_with_the_token_when_set() {
    // Each case its own variable: tests run as threads of one process.
    let unset = AdminPolicy::from_env("SINGLETON_KIT_TEST_ADMIN_TOKEN_UNSET");
    assert!(unset.check(Op::List, None).is_ok() && unset.check(Op::Clear, Some("")).is_err());
    std::env::set_var("SINGLETON_KIT_TEST_ADMIN_TOKEN_EMPTY", "");
    let empty = AdminPolicy::from_env("SINGLETON_KIT_TEST_ADMIN_TOKEN_EMPTY");
    assert!(empty.check(Op::Clear, Some("")).is_err());
    std::env::set_var("SINGLETON_KIT_TEST_ADMIN_TOKEN_SET", "from-the-environment");
    let set = AdminPolicy::from_env("SINGLETON_KIT_TEST_ADMIN_TOKEN_SET");
    for op in Op::ALL {
        assert!(set.check(op, Some("from-the-environment")).is_ok(), "{op}");
    }
    assert!(set.check(Op::Clear, Some("from-the-environmenT")).is_err());
}

#[test]
fn the_global_admin_and_the_async_path_apply_the_policy_too() {
    let refused = admin(AdminPolicy::observe_only()).execute(Request::parse("clear").unwrap()).unwrap_err();
    assert_eq!(refused.kind(), "forbidden");
    let core = unlimited();
    let admin = core.admin(AdminPolicy::observe_only());
    let got: Value = serde_json::from_str(&futures::executor::block_on(
        admin.execute_json_async(r#"{"operation": "get", "name": "admin_pool"}"#),
    ))
    .unwrap();
    assert_eq!(kind(&got), "forbidden");
    let open = core.admin(AdminPolicy::all());
    let got: Value = serde_json::from_str(&futures::executor::block_on(
        open.execute_json_async(r#"{"operation": "get", "name": "admin_pool"}"#),
    ))
    .unwrap();
    assert_eq!(got["result"]["name"], "admin_pool");
}

#[test]
fn list_shows_every_singleton_in_its_shape_and_creates_and_counts_nothing() {
    let core = unlimited();
    core.set("region", json!("eu-west-1")).unwrap();
    core.get_or_create("made", || 5_u8).unwrap();
    let _ = core.get::<AdminClient>("admin_client").unwrap(); // and so admin_pool
    core.set("admin_pool", AdminPool { connections: 1 }).unwrap(); // a #[singleton] replaced by set
    let before = core.stats().unwrap().access_counts;

    let admin = core.admin(AdminPolicy::observe_only());
    let list = answer(&admin, json!({"operation": "list"}))["result"].clone();
    let list = list.as_array().unwrap();
    let names: Vec<&str> = list.iter().map(|l| l["name"].as_str().unwrap()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "sorted by name");
    let item =
        |name: &str| list.iter().find(|l| l["name"] == name).unwrap_or_else(|| panic!("{name} listed"));
    let keys: Vec<&str> = item("made").as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys.len(),
        10,
        "{keys:?}: name, type, kind, source, eager, state, access_count, created_at, init_ms, dependencies"
    );
    assert_eq!(item("made")["source"], "get_or_create");
    assert!(item("made")["init_ms"].is_f64());
    assert_eq!(item("region")["source"], "set");
    assert_eq!(item("region")["init_ms"], Value::Null);
    assert_eq!(item("admin_pool")["source"], "set", "a #[singleton] replaced by set");
    assert_eq!(item("admin_client")["source"], "attribute");
    assert_eq!(item("admin_client")["dependencies"], json!(["admin_pool"]));
    assert_eq!(item("admin_client")["kind"], "sync");
    // Every #[singleton] of the binary is listed, created or not.
    for registered in singleton_kit::registered() {
        assert!(names.contains(&registered.name()), "{} listed", registered.name());
    }
    let pending = item("admin_never_made");
    assert_eq!(pending["state"], "pending");
    assert_eq!(pending["eager"], true);
    assert_eq!((pending["created_at"].clone(), pending["init_ms"].clone()), (Value::Null, Value::Null));

    // Listing created nothing and counted nothing.
    assert_eq!(core.stats().unwrap().access_counts, before);
    let listed = core.list().unwrap();
    let still_pending = listed.iter().find(|l| l.name == pending["name"]).unwrap();
    assert!(!still_pending.created);
    assert_eq!(listed.iter().find(|l| l.name == "made").unwrap().source, Source::GetOrCreate);
}

#[test]
fn registered_serializes_to_the_list_object() {
    let registered =
        singleton_kit::registered().into_iter().find(|r| r.name() == "admin_client").expect("registered");
    let json = serde_json::to_value(registered).unwrap();
    let from_list =
        singleton_kit::manager().list().unwrap().into_iter().find(|l| l.name == "admin_client").unwrap();
    assert_eq!(json, serde_json::to_value(&from_list).unwrap());
    assert_eq!(json["type"], std::any::type_name::<AdminClient>());
}

/// A request of any shape an outsider might send: known and unknown operations, good and bad
/// names, values, tokens of every kind.
fn outside_request() -> impl Strategy<Value = String> {
    // Every operation by its name, the `stats` alias, and one that does not exist.
    let names: Vec<&'static str> = Op::NAMES.iter().copied().chain(["stats", "nope"]).collect();
    let op = prop::sample::select(names);
    let name = prop::sample::select(vec!["cache", "admin_pool", "admin_client", "", "new-name", "名前"]);
    let token = prop_oneof![
        Just(Value::Null),
        Just(json!(SECRET)),
        ".{0,12}".prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
    ];
    (op, prop::option::of(name), prop::option::of(token), prop::option::of(any::<i32>())).prop_map(
        |(op, name, token, value)| {
            let mut object = serde_json::Map::new();
            object.insert("operation".into(), op.into());
            if let Some(name) = name {
                object.insert("name".into(), name.into());
            }
            if let Some(token) = token {
                object.insert("token".into(), token);
            }
            if let Some(value) = value {
                object.insert("value".into(), value.into());
            }
            Value::Object(object).to_string()
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Under `observe_only`, no sequence of requests changes any live instance or access count,
    /// even one that carries the token of another policy.
    #[test]
    fn observe_only_changes_nothing_whatever_is_sent(requests in prop::collection::vec(outside_request(), 1..16)) {
        let core = unlimited();
        core.set("cache", 1_u32).unwrap();
        let _ = core.get::<u32>("cache").unwrap();
        let before = state(&core);
        let admin = core.admin(AdminPolicy::observe_only());
        for request in &requests {
            let got: Value = serde_json::from_str(&admin.execute_json(request)).unwrap();
            prop_assert!(got["ok"].is_boolean());
        }
        prop_assert_eq!(state(&core), before);
    }
}
