//! Layer 1, memory: where an instance lives and how it is shared and freed. The only `unsafe`
//! code of the crate is here. It knows nothing of names, creation or the registry.
//!
//! - `node`: an instance's node, its striped handle and access counts, the slot that publishes
//!   it, and (`node/borrow`) the counted borrows of `with_instance`.
//! - `instance`: `Instance<T>` and `AnyInstance`, the handles users hold.
//! - `sync`: the atomics and fences (std's, or loom's in the models) and thread numbering.

pub(crate) mod instance;
pub(crate) mod node;
pub(crate) mod sync;
