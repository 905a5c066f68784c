use singleton_kit::singleton;

#[singleton(factory = || Pool, health = Pool::is_up)]
pub struct Pool;

impl Pool {
    fn is_up(&self) -> bool {
        true
    }
}

fn main() {}
