//! What every request handler shares, on every transport.

use crate::ops::metrics::Metrics;
use crate::stream::live::Live;
use crate::stream::matching::MatchThreads;
use logtap_core::Backend;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Handles on the server's shared parts; cheap to clone (every field is a
/// handle), so each route and service keeps its own copy.
#[derive(Clone)]
pub struct Shared {
    /// The backend every request reads from or appends to (the embedded
    /// store), behind the interface every backend implements.
    pub store: Arc<dyn Backend>,
    /// Commit notifications, so following streams wake without polling.
    pub live: Live,
    /// Cancelled once when the server starts shutting down: every stream
    /// selects on it and ends cleanly, with trailers; new requests are
    /// refused with UNAVAILABLE.
    pub shutdown: CancellationToken,
    /// The Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// The most reading streams open at once, across every transport.
    pub max_streams: usize,
    /// Where streams with a costly matcher (a regular expression) run
    /// their scan, so that it never holds a connection thread.
    pub matching: MatchThreads,
    /// The most message bytes one stream's text filter may look at before
    /// it catches up (see `ServerConfig::max_query_scan_bytes`); 0: no
    /// limit.
    pub max_query_scan_bytes: u64,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The store has no Debug form; what matters when debugging a handler
        // is where the live cursor is and whether shutdown has begun.
        f.debug_struct("Shared")
            .field("newest_cursor", &self.live.newest())
            .field("shutting_down", &self.shutdown.is_cancelled())
            .field("max_streams", &self.max_streams)
            .field("max_query_scan_bytes", &self.max_query_scan_bytes)
            .finish_non_exhaustive()
    }
}
