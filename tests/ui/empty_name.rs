use singleton_kit::singleton;

#[singleton(name = "")]
#[derive(Default)]
pub struct Config;

fn main() {
    let _ = Config::instance();
}
