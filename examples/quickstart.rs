//! The main job: three singletons listed at startup, warmed, used, and reported, with the
//! dependency graph written as Graphviz DOT.
//!
//! Run with `cargo run --example quickstart`.

use std::collections::HashMap;
use std::sync::Mutex;

use singleton_kit::testing::Scope;
use singleton_kit::{manager, singleton, SingletonCore};

/// A cache, made by its factory on first use.
#[singleton(factory = CacheManager::new)]
pub struct CacheManager {
    entries: Mutex<HashMap<String, String>>,
}

impl CacheManager {
    fn new() -> Self {
        // Asking for another singleton in a factory records the dependency.
        let mut entries = HashMap::new();
        entries.insert("region".to_owned(), Config::instance().region.clone());
        Self { entries: Mutex::new(entries) }
    }

    fn put(&self, key: &str, value: &str) {
        self.entries.lock().unwrap().insert(key.to_owned(), value.to_owned());
    }

    fn get(&self, key: &str) -> Option<String> {
        self.entries.lock().unwrap().get(key).cloned()
    }
}

/// Configuration, made by `Default`.
#[singleton]
#[derive(Debug, Default)]
pub struct Config {
    debug: bool,
    region: String,
}

/// A validator whose rules load at startup (`eager`), with a factory that can fail, a health
/// check and a close hook.
#[singleton(
    try_factory = SecurityValidator::load,
    name = "validator",
    eager,
    health = SecurityValidator::check,
    on_shutdown = SecurityValidator::close
)]
pub struct SecurityValidator {
    blocked: Vec<String>,
}

impl SecurityValidator {
    fn load() -> Result<Self, std::num::ParseIntError> {
        let max_rules: usize = "2".parse()?;
        Ok(Self {
            blocked: ["DROP TABLE", "<script>"].into_iter().take(max_rules).map(String::from).collect(),
        })
    }

    fn allows(&self, input: &str) -> bool {
        !self.blocked.iter().any(|b| input.contains(b.as_str()))
    }

    /// Healthy while it has rules to apply.
    fn check(&self) -> Result<(), String> {
        if self.blocked.is_empty() {
            return Err("no rules loaded".into());
        }
        Ok(())
    }

    /// What a real validator would flush or close before the process goes.
    async fn close(&self) {
        println!("validator closed ({} rules)", self.blocked.len());
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 1. Startup: list every singleton linked into the binary, check the names, warm the eager ones.
    singleton_kit::validate()?;
    println!("== at startup ==\n{}", singleton_kit::report());
    let warmed = singleton_kit::init_eager()?;
    println!("{warmed}");

    // 2. Lazy factory: the first instance() creates, every later one reuses.
    let cache = CacheManager::instance();
    cache.put("user:1", "ada");
    assert_eq!(CacheManager::instance().get("user:1").as_deref(), Some("ada"));
    let config = Config::instance();
    println!("config: debug = {}, region = {:?}", config.debug, config.region);
    println!("validator allows 'hello': {}", SecurityValidator::instance().allows("hello"));

    // 3. The typed and the name-keyed paths are one registry.
    let by_name = manager().get::<CacheManager>("cache_manager")?.expect("registered");
    assert!(singleton_kit::Instance::ptr_eq(&cache, &by_name));

    // 4. Explicit registration of a value that no #[singleton] type describes.
    manager().set("feature_flags", vec!["new-checkout".to_owned()])?;

    // 5. Conditional creation: only create if nobody did yet.
    if !manager().has("db_pool") {
        let pool = manager().get_or_create("db_pool", || vec![0_u8; 16])?;
        println!("created db_pool with {} connections", pool.len());
    }

    // 6. Test isolation: a scope replaces `Config` for the code it runs, and builds its own
    //    `CacheManager` from the replacement; the global instances never see it. (The name-keyed
    //    operations are tested on an isolated core, which shares nothing with the global one.)
    let scope = Scope::new();
    scope.replace(Config { debug: true, region: "test-region".into() });
    let scoped_region = scope.run(|| CacheManager::instance().get("region"));
    assert_eq!(scoped_region.as_deref(), Some("test-region"));
    assert_eq!(CacheManager::instance().get("region").as_deref(), Some(""));
    println!("in a test scope: {:?} (created there: {:?})", scoped_region, scope.created());
    let isolated = SingletonCore::new();
    isolated.set("feature_flags", Vec::<String>::new())?;
    assert!(manager().get::<Vec<String>>("feature_flags")?.is_some_and(|f| f.len() == 1));

    // 7. Access monitoring: the report and the stats.
    println!("\n== after use ==\n{}", singleton_kit::report());
    let stats = manager().stats()?;
    println!("{}", serde_json::to_string_pretty(&stats)?);

    // 8. The dependency graph, for Graphviz.
    let dir = std::path::PathBuf::from(std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()));
    std::fs::create_dir_all(&dir)?;
    let dot = dir.join("singletons.dot");
    std::fs::write(&dot, singleton_kit::graph().to_dot())?;
    println!(
        "\ndependency graph: {} (render it: dot -Tsvg {} -o singletons.svg)",
        dot.display(),
        dot.display()
    );

    // 9. Health, then a graceful shutdown: hooks dependents first, within a deadline.
    let health = futures::executor::block_on(singleton_kit::health());
    println!("\nhealth: {}", serde_json::to_string(&health)?);
    let report =
        futures::executor::block_on(singleton_kit::shutdown_async(std::time::Duration::from_millis(400)));
    println!("shutdown: {}", serde_json::to_string(&report)?);
    Ok(())
}
