use std::rc::Rc;

use singleton_kit::singleton;

#[singleton(factory = || Pool, health = Pool::ping)]
pub struct Pool;

async fn tick() {}

impl Pool {
    async fn ping(&self) -> Result<(), String> {
        let local = Rc::new(1);
        tick().await;
        drop(local);
        Ok(())
    }
}

fn main() {}
