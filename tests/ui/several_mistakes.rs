// Every mistake is reported at once, each at its own token, and nothing else.
use singleton_kit::singleton;

#[singleton(lazy, name = "", name = "cache")]
#[derive(Default)]
pub struct Cache<T> {
    items: Vec<T>,
}

fn main() {
    let _ = Cache::<u8> { items: Vec::new() }.items;
}
