use std::rc::Rc;

use singleton_kit::singleton;

#[singleton]
#[derive(Default)]
pub struct Counter {
    count: Rc<u64>,
}

fn main() {
    let _ = Counter::instance();
}
