use singleton_kit::singleton;

#[singleton]
#[derive(Default)]
pub struct Greeting<'a> {
    text: &'a str,
}

fn main() {
    let _ = Greeting { text: "hi" }.text;
    let _ = Greeting::instance();
}
