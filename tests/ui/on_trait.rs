use singleton_kit::singleton;

#[singleton]
pub trait Service {
    fn call(&self);
}

struct Noop;

impl Service for Noop {
    fn call(&self) {}
}

fn main() {
    Noop.call();
}
