//! How times are shown in every output: Unix seconds (the seed's `creation_times`) and
//! milliseconds rounded to the microsecond. Below every layer, as `error.rs` is.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, as the seed design's JSON shows a time.
pub(crate) fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// A duration in milliseconds, rounded to the microsecond (`0.00156` ms, not
/// `0.0015600000000000002`): what the JSON outputs show of a factory's time.
pub(crate) fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}
