use std::rc::Rc;

use singleton_kit::singleton;

#[singleton(factory = Db::connect, async)]
pub struct Db;

async fn tick() {}

impl Db {
    async fn connect() -> Db {
        let local = Rc::new(1);
        tick().await;
        drop(local);
        Db
    }
}

fn main() {}
