use singleton_kit::{manager, singleton};

#[singleton(factory = CacheManager::new)]
pub struct CacheManager {
    entries: usize,
}

impl CacheManager {
    fn new() -> Self {
        Self { entries: 3 }
    }
}

#[singleton]
#[derive(Default, Debug)]
pub struct Config {
    debug: bool,
}

#[derive(Debug)]
struct LoadError;
impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("bad")
    }
}
impl std::error::Error for LoadError {}

#[singleton(try_factory = SecurityValidator::load, name = "validator", eager)]
pub struct SecurityValidator {
    rules: Vec<String>,
}

impl SecurityValidator {
    fn load() -> Result<Self, LoadError> {
        Ok(Self { rules: vec!["no-root".into()] })
    }
}

fn main() {
    print!("{}", singleton_kit::report());
    println!("{}", singleton_kit::init_eager().expect("eager"));
    let c = CacheManager::instance();
    println!("{} {:?} {}", c.entries, Config::instance().debug, SecurityValidator::instance().rules.len());
    let c2 = manager().get::<CacheManager>("cache_manager").unwrap().unwrap();
    assert!(singleton_kit::Instance::ptr_eq(&c, &c2));
    print!("{}", singleton_kit::report());
    println!("{:?}", manager().stats().unwrap());
}
