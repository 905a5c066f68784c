use singleton_kit::singleton;

#[singleton(factory = || Pool, on_shutdown = Pool::close)]
pub struct Pool;

impl Pool {
    fn close(self) {}
}

fn main() {}
