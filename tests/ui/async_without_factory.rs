use singleton_kit::singleton;

#[singleton(async)]
#[derive(Default)]
pub struct Db;

fn main() {}
