use std::cell::Cell;

use singleton_kit::singleton;

#[singleton]
#[derive(Default)]
pub struct Hits {
    hits: Cell<u64>,
}

fn main() {
    let _ = Hits::instance();
}
