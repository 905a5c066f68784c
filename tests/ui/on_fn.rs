use singleton_kit::singleton;

#[singleton]
fn config() -> u32 {
    1
}

fn main() {
    let _ = config();
}
