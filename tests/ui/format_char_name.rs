use singleton_kit::singleton;

#[singleton(name = "cache\u{200B}")]
#[derive(Default)]
pub struct Cache;

fn main() {
    let _ = Cache::instance();
}
