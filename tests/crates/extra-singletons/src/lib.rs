//! A second crate with `#[singleton]` types, linked into the facade's tests: it shows that
//! `registered()` sees singletons from every crate, and that `#[singleton(crate = ...)]` works
//! through a renamed dependency (this crate calls `singleton-kit` `kit`).

use kit::singleton;

/// A singleton from another crate, made by `Default`.
#[singleton(crate = kit)]
#[derive(Default, Debug)]
pub struct RemoteConfig {
    /// Some setting.
    pub region: String,
}

/// An eager singleton from another crate, with an explicit name.
#[singleton(crate = kit, name = "remote_client", eager, factory = || RemoteClient { id: 7 })]
#[derive(Debug)]
pub struct RemoteClient {
    /// Its id.
    pub id: u32,
}

/// Referencing this keeps the crate linked (see `singleton_kit::registered`).
pub fn link() {}
