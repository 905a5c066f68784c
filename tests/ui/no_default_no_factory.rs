use singleton_kit::singleton;

#[singleton]
pub struct Client {
    url: String,
}

fn main() {
    let _ = Client::instance().url.len();
}
