use singleton_kit::singleton;

#[singleton(factory = Client::new, try_factory = Client::connect)]
pub struct Client;

impl Client {
    fn new() -> Self {
        Client
    }

    fn connect() -> Result<Self, std::io::Error> {
        Ok(Client)
    }
}

fn main() {
    let _ = Client::instance();
}
