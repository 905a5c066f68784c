use singleton_kit::singleton;

pub struct LoadError;

#[singleton(try_factory = Client::load)]
pub struct Client {
    url: String,
}

impl Client {
    fn load() -> Result<Self, LoadError> {
        Err(LoadError)
    }
}

fn main() {
    let _ = Client::instance().url.len();
}
