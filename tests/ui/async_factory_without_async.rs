use singleton_kit::singleton;

#[singleton(factory = Db::connect)]
pub struct Db;

impl Db {
    async fn connect() -> Db {
        Db
    }
}

fn main() {}
