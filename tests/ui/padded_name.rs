use singleton_kit::singleton;

#[singleton(name = "cache ")]
#[derive(Default)]
pub struct Cache;

fn main() {
    let _ = Cache::instance();
}
