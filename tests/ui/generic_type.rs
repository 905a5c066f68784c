use singleton_kit::singleton;

#[singleton]
#[derive(Default)]
pub struct Cache<T> {
    items: Vec<T>,
}

fn main() {
    let _ = Cache::<u8> { items: Vec::new() }.items;
    let _ = Cache::<u8>::instance();
}
