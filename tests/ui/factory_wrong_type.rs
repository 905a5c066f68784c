use singleton_kit::singleton;

#[singleton(factory = Client::url)]
pub struct Client {
    url: String,
}

impl Client {
    fn url() -> String {
        "http://localhost".to_owned()
    }
}

fn main() {
    let _ = Client::instance().url.len();
}
