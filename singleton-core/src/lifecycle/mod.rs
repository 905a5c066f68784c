//! Layer 2, lifecycle: how one entry's instance comes and goes, with no knowledge of the core's
//! map of names or of any outside surface.
//!
//! - `entry`: a name's entry (its slot and dependencies), the value a `set` stores, and the static
//!   `Descriptor` that `#[singleton]` writes.
//! - `creation`: exactly-once creation, sync and async, with cycle detection.
//! - `context`: what runs on this thread (the factories, the test scope), for cycles and the
//!   dependency graph.
//! - `scope`: what a test scope holds.
//! - `teardown`: the order in which instances are let go.
//! - `shutdown`: the `on_shutdown` hooks, dependents first, within a deadline.
//! - `hooks`: what `health = path` and `on_shutdown = path` become.
//! - `events`: what is reported to the `metrics` facade as it happens, and the labels.
//! - `join`: waiting for several futures with no runtime.

pub(crate) mod context;
pub(crate) mod creation;
pub(crate) mod entry;
pub(crate) mod events;
pub(crate) mod hooks;
pub(crate) mod join;
pub(crate) mod scope;
pub(crate) mod shutdown;
pub(crate) mod teardown;
