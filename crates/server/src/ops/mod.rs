//! What operators and browsers see of the server itself: the Prometheus
//! registry ([`metrics`]), `/metrics` and `/healthz` ([`health`]), and the
//! embedded viewer ([`viewer`]), and log lines a client could flood the log
//! with, throttled ([`log_throttle`]); the protocols entries arrive by, as
//! metric labels ([`protocol`]).
//!
//! No log data is read or written here; the viewer reads it like any other
//! client, through the protocols.

pub(crate) mod health;
pub(crate) mod log_throttle;
pub(crate) mod metrics;
pub(crate) mod protocol;
pub(crate) mod viewer;
