use singleton_kit::singleton;

#[singleton(name = "config", name = "settings")]
#[derive(Default)]
pub struct Config;

fn main() {
    let _ = Config::instance();
}
