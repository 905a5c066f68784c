#![allow(dead_code, unused_extern_crates)]

use singleton_kit::singleton;

#[singleton]
const LIMIT: u32 = 3;

#[singleton]
pub static NAME: &str = "cache";

#[singleton]
pub(crate) const fn limit() -> u32 {
    3
}

#[singleton]
extern crate core;

#[singleton]
#[allow(unused)]
pub type Alias = u32;

fn main() {}
