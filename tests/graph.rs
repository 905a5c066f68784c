//! The dependency graph recorded from factory calls, its JSON and DOT forms, and teardown in
//! dependency order that survives panicking drops.

use std::sync::{Arc, Mutex};

use singleton_kit::{manager, singleton, RateLimit, SingletonCore};

/// A value that writes its name into a shared log when dropped.
struct Tracked {
    name: &'static str,
    log: Arc<Mutex<Vec<&'static str>>>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.log.lock().unwrap().push(self.name);
    }
}

fn unlimited() -> SingletonCore {
    SingletonCore::with_rate_limit(RateLimit::unlimited())
}

// A typed chain: chain_a -> chain_b -> chain_c.
#[singleton(name = "chain_c", factory = || ChainC)]
pub struct ChainC;
#[singleton(name = "chain_b", factory = || { let _ = ChainC::instance(); ChainB })]
pub struct ChainB;
#[singleton(name = "chain_a", factory = || { let _ = ChainB::instance(); ChainA })]
pub struct ChainA;

#[test]
fn a_typed_chain_is_recorded_and_drawn() {
    let _ = ChainA::instance();
    let registered = singleton_kit::registered();
    let find = |name: &str| registered.iter().find(|r| r.name() == name).unwrap();
    assert_eq!(find("chain_a").dependencies(), ["chain_b"]);
    assert_eq!(find("chain_b").dependencies(), ["chain_c"]);
    assert!(find("chain_c").dependencies().is_empty());
    assert_eq!(find("chain_c").dependents(), ["chain_b"]);
    assert_eq!(find("chain_b").dependents(), ["chain_a"]);

    let graph = singleton_kit::graph();
    assert_eq!(graph.dependencies_of("chain_a"), ["chain_b"]);
    let json = serde_json::to_value(&graph).unwrap();
    let edges = json["edges"].as_array().unwrap();
    assert!(edges.contains(&serde_json::json!({"from": "chain_a", "to": "chain_b"})));
    assert!(edges.contains(&serde_json::json!({"from": "chain_b", "to": "chain_c"})));
    let node = json["nodes"].as_array().unwrap().iter().find(|n| n["name"] == "chain_a").unwrap();
    let keys: Vec<&str> = node.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 6, "{node}");
    for key in ["name", "type", "created", "eager", "async", "init_ms"] {
        assert!(keys.contains(&key), "{key} missing from {node}");
    }
    assert!(node["type"].as_str().unwrap().ends_with("ChainA"));
    assert_eq!(node["created"], true);
    assert_eq!(node["async"], false);
    assert!(node["init_ms"].as_f64().unwrap() >= 0.0);

    let dot = graph.to_dot();
    assert!(dot.starts_with("digraph singletons {") && dot.trim_end().ends_with('}'));
    assert_eq!(dot.lines().filter(|l| l.trim() == r#""chain_a" -> "chain_b";"#).count(), 1);
    assert_eq!(dot.lines().filter(|l| l.trim() == r#""chain_b" -> "chain_c";"#).count(), 1);

    // The startup report shows each singleton's dependencies.
    let table = singleton_kit::report().to_string();
    let line = table.lines().find(|l| l.starts_with("chain_a ")).unwrap();
    assert!(line.trim_end().ends_with("chain_b"), "{line}");
}

#[test]
fn uncreated_singletons_are_nodes_too() {
    #[singleton(name = "never_made", factory = || NeverMade)]
    struct NeverMade;
    let graph = singleton_kit::graph();
    let node = graph.nodes.iter().find(|n| n.name == "never_made").expect("a node");
    assert!(!node.created && node.init_ms.is_none());
    assert!(graph.to_dot().contains("style=dashed"));
    let _ = NeverMade::instance;
}

#[test]
fn by_name_edges_are_recorded_on_an_isolated_core() {
    let core = unlimited();
    core.get_or_create("api", || {
        let token = core.get_or_create("token", || 7_u32).unwrap();
        let _ = core.get::<u32>("token").unwrap();
        core.set("not_a_dependency", 1_u8).unwrap(); // a set is not a request
        *token
    })
    .unwrap();
    let graph = core.graph();
    assert_eq!(graph.dependencies_of("api"), ["token"]);
    assert_eq!(graph.dependents_of("token"), ["api"]);
    let names: Vec<&str> = graph.nodes.iter().map(|n| n.name.as_str()).collect();
    for name in ["api", "token", "not_a_dependency"] {
        assert!(names.contains(&name), "{names:?}");
    }
    // The global core knows nothing of it.
    assert!(singleton_kit::graph().dependencies_of("api").is_empty());
}

#[test]
fn an_edge_lasts_until_the_dependent_is_deleted_or_made_again() {
    let core = unlimited();
    core.get_or_try_create("svc", || core.get_or_create("db", || 1_u8).map(|d| *d)).unwrap();
    // A `set` that replaces the dependency keeps the edge.
    core.set("db", 2_u8).unwrap();
    assert_eq!(core.graph().dependencies_of("svc"), ["db"]);
    // Deleting the dependency keeps the dependent, its handles and its edge.
    let svc = core.get::<u8>("svc").unwrap().unwrap();
    assert!(core.delete("db"));
    assert!(core.has("svc"));
    assert_eq!(*svc, 1);
    assert_eq!(core.graph().dependencies_of("svc"), ["db"]);
    // Deleting the dependent removes it.
    assert!(core.delete("svc"));
    assert!(core.graph().dependencies_of("svc").is_empty());
    // Made again by a factory that asks for something else: the new edges only.
    core.get_or_try_create("svc", || core.get_or_create("cache", || 3_u8).map(|c| *c)).unwrap();
    assert_eq!(core.graph().dependencies_of("svc"), ["cache"]);
}

#[test]
fn clear_drops_dependents_first_even_when_made_before_their_dependencies() {
    let core = unlimited();
    let log = Arc::new(Mutex::new(Vec::new()));
    let tracked = |name| Tracked { name, log: Arc::clone(&log) };
    // `c` is made first, with no dependencies. Then `b` asks for `a`... and `app` asks for `b`
    // and `c`.
    core.get_or_create("c", || tracked("c")).unwrap();
    core.get_or_create("app", || {
        core.get_or_create("b", || {
            core.get_or_create("a", || tracked("a")).unwrap();
            tracked("b")
        })
        .unwrap();
        core.get::<Tracked>("c").unwrap();
        tracked("app")
    })
    .unwrap();
    // `a` is replaced by `set`, after its dependent `b` was made: it is now the newest, yet `b`
    // (and `app`) must still go first.
    core.set("a", tracked("a2")).unwrap();
    assert_eq!(*log.lock().unwrap(), ["a"]); // the replaced `a` was dropped by the set
    log.lock().unwrap().clear();
    assert_eq!(core.clear(), 4);
    assert_eq!(*log.lock().unwrap(), ["app", "b", "a2", "c"]);
}

#[test]
fn a_diamond_goes_top_first_and_bottom_last() {
    let core = unlimited();
    let log = Arc::new(Mutex::new(Vec::new()));
    let tracked = |name| Tracked { name, log: Arc::clone(&log) };
    core.get_or_create("top", || {
        core.get_or_create("left", || {
            core.get_or_create("bottom", || tracked("bottom")).unwrap();
            tracked("left")
        })
        .unwrap();
        core.get_or_create("right", || {
            core.get_or_create("bottom", || tracked("bottom2")).unwrap();
            tracked("right")
        })
        .unwrap();
        tracked("top")
    })
    .unwrap();
    assert_eq!(core.reset_all(), 4);
    let order = log.lock().unwrap().clone();
    assert_eq!(order.first(), Some(&"top"));
    assert_eq!(order.last(), Some(&"bottom"));
    // Unrelated ones newest first: `right` was made after `left`.
    assert_eq!(order, ["top", "right", "left", "bottom"]);
}

#[test]
fn unrelated_singletons_go_newest_first_and_a_cycle_left_by_sets_is_broken_newest_first() {
    let core = unlimited();
    let log = Arc::new(Mutex::new(Vec::new()));
    let tracked = |name| Tracked { name, log: Arc::clone(&log) };
    core.set("one", tracked("one")).unwrap();
    core.set("two", tracked("two")).unwrap();
    core.set("three", tracked("three")).unwrap();
    assert_eq!(core.clear(), 3);
    assert_eq!(*log.lock().unwrap(), ["three", "two", "one"]);
    log.lock().unwrap().clear();

    // x asks for y; then y is made again by a factory that asks for x: the edges form a cycle.
    core.get_or_create("x", || {
        core.get_or_create("y", || tracked("y")).unwrap();
        tracked("x")
    })
    .unwrap();
    assert!(core.delete("y"));
    log.lock().unwrap().clear();
    core.get_or_create("y", || {
        core.get::<Tracked>("x").unwrap();
        tracked("y2")
    })
    .unwrap();
    assert_eq!(core.graph().dependencies_of("x"), ["y"]);
    assert_eq!(core.graph().dependencies_of("y"), ["x"]);
    assert_eq!(core.clear(), 2);
    assert_eq!(*log.lock().unwrap(), ["y2", "x"], "the newest of the cycle first");
}

/// A value whose `Drop` panics.
struct Explodes(&'static str);

impl Drop for Explodes {
    fn drop(&mut self) {
        panic!("{} exploded while dropping", self.0);
    }
}

#[test]
fn a_panicking_drop_in_clear_is_caught_and_the_rest_are_still_dropped() {
    let core = unlimited();
    let log = Arc::new(Mutex::new(Vec::new()));
    core.set("first", Tracked { name: "first", log: Arc::clone(&log) }).unwrap();
    core.set("boom", Explodes("boom")).unwrap();
    core.set("last", Tracked { name: "last", log: Arc::clone(&log) }).unwrap();
    let cleared = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| core.clear()));
    assert_eq!(cleared.expect("clear does not unwind"), 3, "the panicking one counts");
    assert_eq!(*log.lock().unwrap(), ["last", "first"]);
    assert_eq!(core.stats().unwrap().total_singletons, 0);
    // The core still works.
    core.set("again", 1_u8).unwrap();
    assert!(core.has("again"));
}

#[test]
fn a_panicking_drop_in_delete_is_caught() {
    let core = unlimited();
    core.set("boom", Explodes("boom")).unwrap();
    let deleted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| core.delete("boom")));
    assert!(deleted.expect("delete does not unwind"));
    assert!(!core.has("boom"));
}

#[test]
fn deleting_a_dependency_leaves_the_dependent_and_its_handles_alone() {
    let core = unlimited();
    let log = Arc::new(Mutex::new(Vec::new()));
    let tracked = |name| Tracked { name, log: Arc::clone(&log) };
    let client = core
        .get_or_create("client", || {
            core.get_or_create("config", || tracked("config")).unwrap();
            tracked("client")
        })
        .unwrap();
    assert!(core.delete("config"));
    assert_eq!(*log.lock().unwrap(), ["config"]);
    assert!(core.has("client"));
    assert_eq!(client.name, "client");
}

#[test]
fn the_report_lists_run_time_entries_marked_as_such() {
    manager().set("graph_test_flag", true).unwrap();
    manager().get_or_create("graph_test_pool", || vec![1_u8]).unwrap();
    let report = singleton_kit::report();
    let runtime = report.runtime_names();
    assert!(runtime.contains(&"graph_test_flag") && runtime.contains(&"graph_test_pool"), "{runtime:?}");
    let table = report.to_string();
    let flag = table.lines().find(|l| l.starts_with("graph_test_flag")).unwrap();
    assert!(flag.contains(" set "), "{flag}");
    let pool = table.lines().find(|l| l.starts_with("graph_test_pool")).unwrap();
    assert!(pool.contains("get_or_create"), "{pool}");
    assert!(table.lines().next().unwrap().contains("made at run time"));
}

#[test]
fn shutdown_is_not_rate_limited_and_is_idempotent() {
    let core = SingletonCore::with_rate_limit(RateLimit::per_second(2));
    core.set("a", 1_u8).unwrap();
    core.set("b", 2_u8).unwrap();
    assert_eq!(core.clear(), 0, "refused: the window is full");
    assert_eq!(core.shutdown(), 2);
    assert_eq!(core.shutdown(), 0);
}

#[test]
fn async_factories_record_their_dependencies() {
    #[singleton(name = "graph_creds", factory = GraphCreds::load, async)]
    struct GraphCreds;
    impl GraphCreds {
        async fn load() -> Self {
            GraphCreds
        }
    }
    // A sync dependency of its own: `chain_c`'s dependents are checked by a test running at the
    // same time.
    #[singleton(name = "graph_base", factory = || GraphPlain)]
    struct GraphPlain;
    #[singleton(name = "graph_client", factory = GraphClient::connect, async)]
    struct GraphClient;
    impl GraphClient {
        async fn connect() -> Self {
            let _ = GraphCreds::instance().await;
            let _ = GraphPlain::instance();
            GraphClient
        }
    }
    let _ = futures::executor::block_on(GraphClient::instance());
    let graph = singleton_kit::graph();
    assert_eq!(graph.dependencies_of("graph_client"), ["graph_base", "graph_creds"]); // sorted
    let client = singleton_kit::registered().into_iter().find(|r| r.name() == "graph_client").unwrap();
    assert_eq!(client.dependencies(), ["graph_creds", "graph_base"]); // in the order asked
    let node = graph.nodes.iter().find(|n| n.name == "graph_client").unwrap();
    assert!(node.is_async && node.created);
}
