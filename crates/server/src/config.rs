//! What the command line can change about a running server.

use logtap_store::StoreConfig;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything [`crate::Server::bind`] needs. Build it with
/// [`ServerConfig::new`] and change the fields you care about.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The one address that carries gRPC, gRPC-Web and plain HTTP.
    pub listen: SocketAddr,
    /// Where and how the embedded store keeps entries.
    pub store: StoreConfig,
    /// A response whose client accepts nothing (its flow-control window stays
    /// shut) for this long is reset, so a stuck client cannot pin a stream's
    /// memory and a reader forever. See [`crate::idle`].
    pub idle_timeout: Duration,
    /// How often an HTTP/2 connection is pinged, so a peer that vanished
    /// without closing its socket is noticed even on a quiet live tail.
    pub keepalive_interval: Duration,
    /// How long a keep-alive ping may go unanswered before the connection is
    /// closed.
    pub keepalive_timeout: Duration,
    /// After shutdown is asked for, how long connections may take to finish
    /// (streams end themselves at once; this bounds pushes in flight and
    /// clients that do not read their last bytes) before they are cut.
    pub drain_timeout: Duration,
    /// The most reading streams open at once across every transport; one more
    /// is refused with RESOURCE_EXHAUSTED instead of exhausting memory.
    pub max_streams: usize,
    /// The most concurrent HTTP/2 streams one connection may open; a single
    /// client tailing many filters at once needs more than hyper's default.
    pub max_concurrent_streams_per_connection: u32,
    /// The largest gRPC message accepted or sent, in bytes. A Push batch must
    /// fit in it; larger ones are refused with RESOURCE_EXHAUSTED.
    pub max_message_bytes: usize,
    /// How often retention limits are applied while no entries arrive (the
    /// store applies them on every append too), so an age limit holds on a
    /// quiet server.
    pub retention_interval: Duration,
}

impl ServerConfig {
    /// A server on `listen` with its data in `data_dir` and the defaults a
    /// newcomer should get: fsync every batch, 5-minute idle timeout, 30 s
    /// keep-alive pings.
    pub fn new(listen: SocketAddr, data_dir: impl Into<PathBuf>) -> Self {
        ServerConfig {
            listen,
            store: StoreConfig::new(data_dir),
            idle_timeout: Duration::from_secs(5 * 60),
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(20),
            drain_timeout: Duration::from_secs(10),
            max_streams: 10_000,
            max_concurrent_streams_per_connection: 1024,
            max_message_bytes: 4 << 20,
            retention_interval: Duration::from_secs(60),
        }
    }
}
