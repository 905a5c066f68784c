use singleton_kit::singleton;

#[singleton(lazy = true)]
#[derive(Default)]
pub struct Config;

fn main() {
    let _ = Config::instance();
}
