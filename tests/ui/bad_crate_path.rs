use singleton_kit::singleton;

#[singleton(crate = ::no_such_crate)]
#[derive(Default)]
pub struct Config;

fn main() {
    let _ = Config::instance();
}
