use singleton_kit::singleton;

#[singleton(crate = "singleton_kit")]
#[derive(Default)]
pub struct Config;

fn main() {
    let _ = Config::instance();
}
