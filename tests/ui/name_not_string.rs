use singleton_kit::singleton;

#[singleton(name = cache, eager)]
#[derive(Default)]
pub struct Config;

fn main() {
    let _ = Config::instance();
}
