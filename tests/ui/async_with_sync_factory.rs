use singleton_kit::singleton;

#[singleton(factory = Db::connect, async)]
pub struct Db;

impl Db {
    fn connect() -> Db {
        Db
    }
}

fn main() {}
