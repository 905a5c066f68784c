use singleton_kit::singleton;

#[singleton(eager = true)]
#[derive(Default)]
pub struct Config;

fn main() {
    let _ = Config::instance();
}
