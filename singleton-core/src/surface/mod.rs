//! Layer 4, surfaces: what the outside sees of a core, built on the layers below and never
//! named by them.
//!
//! - `admin`: who may do what (`AdminPolicy`, `Admin`), for every request from outside.
//! - `operation`: the operations as data (`Request`, `Response`, `execute`).
//! - `list`: the `list` operation (`Listed`).
//! - `json`: the same over JSON (feature `json`).
//! - `stats`, `graph`: snapshots of a core, as data and JSON.
//! - `health`: the singletons' own health checks.
//! - `http`: the admin routes for an axum server (feature `axum`).
//! - `metrics`: the snapshot metrics' export (feature `metrics`).
//! - `startup`: `registered()` at startup, eager creation, the report.
//! - `ser`: the serde impls of the snapshots.

pub(crate) mod admin;
pub(crate) mod graph;
pub(crate) mod health;
#[cfg(feature = "axum")]
pub mod http;
#[cfg(feature = "json")]
pub(crate) mod json;
pub(crate) mod list;
pub(crate) mod metrics;
pub(crate) mod operation;
pub(crate) mod ser;
pub(crate) mod startup;
pub(crate) mod stats;
