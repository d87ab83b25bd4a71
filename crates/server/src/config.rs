//! What the command line can change about a running server.

pub use crate::error::ExposureError;
use crate::net::tls::TlsFiles;
/// How a node joins a NATS JetStream cluster (`--nats`), re-exported like
/// the store's configuration.
pub use logtap_cluster::NatsConfig;
/// How the embedded store is opened: part of the server's configuration,
/// re-exported so that the binary configures a server without depending on
/// the storage engine itself.
pub use logtap_store::{Retention, StoreConfig, SyncPolicy};
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
    /// When set, the log of record is this JetStream stream, shared with
    /// other nodes, and the store is this node's copy of it; when not, the
    /// store is the log of record (the single node).
    pub nats: Option<NatsConfig>,
    /// A response whose client accepts nothing (its flow-control window stays
    /// shut) for this long is reset, so a stuck client cannot pin a stream's
    /// memory and a reader forever. See `crate::net::idle`.
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
    /// The most streams (reading streams and request bodies in progress) one
    /// connection may hold; one more is refused with RESOURCE_EXHAUSTED
    /// (HTTP 429) naming this limit. Below h2's
    /// `max_concurrent_streams_per_connection` (1,024), so a client meets
    /// this clear refusal rather than h2's bare REFUSED_STREAM.
    pub max_streams_per_connection: usize,
    /// The most streams one client address (an IPv4 address, an IPv6 /64)
    /// may hold over all its connections, so that one client cannot take
    /// every slot of `max_streams`. A quarter of `max_streams` by default:
    /// at least four clients always find room, and a proxy or NAT that
    /// puts many users behind one address still gets a large share.
    pub max_streams_per_peer: usize,
    /// The most bytes every request together may hold in messages not yet
    /// whole (a gRPC message up to its declared length, an HTTP push line
    /// up to its newline); a request that would go over is cut with
    /// RESOURCE_EXHAUSTED (HTTP 503) and its bytes freed. See
    /// `crate::net::request_body`.
    pub max_buffered_request_bytes: usize,
    /// The share of `max_buffered_request_bytes` one connection may hold:
    /// a quarter by default, so one client cannot take the whole budget.
    pub max_buffered_request_bytes_per_connection: usize,
    /// A request that receives nothing for this long while one of its
    /// messages is unfinished is cut (DEADLINE_EXCEEDED, HTTP 408), so a client
    /// cannot hold its share of the budget by stopping mid-message.
    pub request_stall_timeout: Duration,
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
    /// Serve TLS with this certificate and key; plain TCP when `None`.
    /// See `crate::net::tls`.
    pub tls: Option<TlsFiles>,
    /// Require bearer tokens from this file; every request is open when
    /// `None`. See `crate::security::auth` for the format and what needs which scope.
    pub auth_token_file: Option<PathBuf>,
    /// Serve `/metrics` without a token even when tokens are on (for a
    /// scraper on a trusted network).
    pub metrics_public: bool,
    /// Browser origins allowed to call the API (CORS), as `scheme://host[:port]`
    /// or `*`; empty means same origin only (no CORS headers). See
    /// `crate::security::cors`.
    pub cors_origins: Vec<String>,
    /// Whether the operator named `listen` (`--listen`), rather than it
    /// coming from a default. Without tokens the server listens beyond
    /// loopback only when it was named; see [`ServerConfig::exposure`].
    pub listen_explicit: bool,
    /// How often a Server-Sent Events stream with nothing to send writes a
    /// `: keepalive` comment, so proxies that close quiet connections keep it
    /// open and a client that vanished is noticed at the next write.
    pub sse_heartbeat: Duration,
    /// The largest body `POST /api/v1/push` accepts, in bytes; a larger one
    /// is answered 413. The body is read line by line and stored in batches,
    /// so this bounds what one request may add, not the memory it takes.
    pub max_push_body_bytes: u64,
    /// Where to receive syslog over UDP (`--syslog-udp`); off when `None`.
    pub syslog_udp: Option<SocketAddr>,
    /// Where to receive syslog over TCP (`--syslog-tcp`); off when `None`.
    pub syslog_tcp: Option<SocketAddr>,
    /// A second port serving only OTLP's gRPC service (and gRPC health),
    /// with the main port's TLS and tokens (`--otlp-grpc-listen`, usually
    /// port 4317); off when `None`.
    pub otlp_grpc_listen: Option<SocketAddr>,
    /// How many threads serve connections; each connection stays on one
    /// (see `crate::net::threads`). One per core by default.
    pub connection_threads: usize,
    /// How many threads run costly text matching (regular expressions),
    /// off the connection threads (see `crate::stream::matching`). Half the
    /// cores by default, at least one: costly searches together then take
    /// at most that share of the CPU, and the rest stays with the clients.
    pub match_threads: usize,
    /// The most message bytes one stream's text filter (`grep`, plain or
    /// regular expression) may look at before the stream catches up with
    /// the newest entries; a query that needs more ends with
    /// RESOURCE_EXHAUSTED, saying how to narrow it. 0: no limit. A live
    /// tail starts counting again each time it catches up, so following
    /// with a filter for weeks is never cut; what is bounded is one pass
    /// over stored history. 64 GiB by default: more than a full grep of
    /// most stores (a minute of one core for a plain word or an ordinary
    /// pattern), while a pathological pattern, a few MB/s, is stopped
    /// before it has run for days.
    pub max_query_scan_bytes: u64,
    /// How long a new connection may take to say what it is: the bytes that
    /// tell HTTP/2 from HTTP/1.1, and on HTTP/1.1 each request's head (the
    /// clock runs from when the server starts waiting for it, so a
    /// keep-alive connection left idle this long is closed too). A client
    /// that connects and sends nothing is closed after this, instead of
    /// holding a descriptor forever. Default 10 s. See `crate::net::sniff`.
    pub header_read_timeout: Duration,
    /// The most client connections open at once (TLS handshakes included);
    /// one more is closed as soon as it is accepted and counted in
    /// `logtap_limit_rejections_total{limit="connections"}`. Default
    /// 10,000; the open-file limit must leave room for it (the server raises
    /// its soft limit to the hard one at start, and warns when that is
    /// still too low).
    pub max_connections: usize,
    /// Host names a loopback listener without tokens serves besides its own
    /// (`localhost`, `*.localhost`, 127.0.0.0/8 and `[::1]`, any port):
    /// a request for any other `Host` is refused (403), so a web page whose
    /// name was pointed at 127.0.0.1 (DNS rebinding) cannot read or push.
    /// Names, without a port (`logs.internal`); `*` allows any. See
    /// `crate::security::browser`.
    pub allowed_hosts: Vec<String>,
}

/// How many bytes an entry's LogEntry going out may exceed the PushRequest
/// that brought it in: a cursor (up to 11 bytes with its tag), a level name
/// where the push left it empty (up to 7), and a receive-time timestamp
/// where the push sent 0 (up to 11). Rounded up.
const ENCODING_HEADROOM: usize = 64;

impl ServerConfig {
    /// The largest gRPC message the server sends: a little over
    /// `max_message_bytes`, so that every entry a push could carry can be
    /// read back. With the same limit both ways, an entry pushed at the
    /// limit was stored but failed every read that reached it
    /// (OUT_OF_RANGE, "encoded message length too large").
    pub fn max_encoded_message_bytes(&self) -> usize {
        self.max_message_bytes.saturating_add(ENCODING_HEADROOM)
    }

    /// A server on `listen` with its data in `data_dir` and the defaults a
    /// newcomer should get: fsync every batch, 5-minute idle timeout, 30 s
    /// keep-alive pings.
    pub fn new(listen: SocketAddr, data_dir: impl Into<PathBuf>) -> Self {
        ServerConfig {
            listen,
            store: StoreConfig::new(data_dir),
            nats: None,
            idle_timeout: Duration::from_secs(5 * 60),
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(20),
            drain_timeout: Duration::from_secs(10),
            max_streams: 10_000,
            max_streams_per_connection: 1_000,
            max_streams_per_peer: 2_500,
            max_buffered_request_bytes: 256 << 20,
            max_buffered_request_bytes_per_connection: 64 << 20,
            request_stall_timeout: Duration::from_secs(30),
            max_concurrent_streams_per_connection: 1024,
            max_message_bytes: 4 << 20,
            retention_interval: Duration::from_secs(60),
            tls: None,
            auth_token_file: None,
            metrics_public: false,
            cors_origins: Vec::new(),
            // The caller named the address by passing it in; the command
            // line clears this when --listen was not given.
            listen_explicit: true,
            sse_heartbeat: Duration::from_secs(15),
            max_push_body_bytes: 256 << 20,
            syslog_udp: None,
            syslog_tcp: None,
            otlp_grpc_listen: None,
            connection_threads: crate::net::threads::ConnectionThreads::default_count(),
            match_threads: std::thread::available_parallelism()
                .map_or(1, |cores| (cores.get() / 2).max(1)),
            max_query_scan_bytes: 64 << 30,
            header_read_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            allowed_hosts: Vec::new(),
        }
    }
}

/// Who can reach the server without a token, as [`ServerConfig::exposure`]
/// decides at startup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exposure {
    /// Loopback only: processes on this machine.
    Loopback,
    /// Any address, but every request that touches logs needs a token.
    Tokens,
    /// Any address and no tokens: anyone who can reach the port can read and
    /// push. Allowed because the operator named the address; logged as a
    /// warning.
    Open,
}

impl ServerConfig {
    /// The loopback rule. Without a token file the server listens only on
    /// loopback (127.0.0.0/8, ::1, and ::ffff:127.0.0.0/104), unless the
    /// operator named the address (`listen_explicit`): then it is allowed,
    /// as [`Exposure::Open`], and `bind` logs a warning. With a token file
    /// any address is fine. The port plays no part.
    pub fn exposure(&self) -> Result<Exposure, ExposureError> {
        let loopback = |addr: SocketAddr| addr.ip().to_canonical().is_loopback();
        // The OTLP port is always named explicitly; when it reaches beyond
        // loopback, so does the server.
        let otlp_wide = self.otlp_grpc_listen.is_some_and(|addr| !loopback(addr));
        if loopback(self.listen) && !otlp_wide {
            Ok(Exposure::Loopback)
        } else if self.auth_token_file.is_some() {
            Ok(Exposure::Tokens)
        } else if self.listen_explicit || loopback(self.listen) {
            Ok(Exposure::Open)
        } else {
            Err(ExposureError { addr: self.listen })
        }
    }
}

#[cfg(test)]
mod exposure_tests {
    use super::*;

    fn config(listen: &str, tokens: bool, explicit: bool) -> ServerConfig {
        let mut config = ServerConfig::new(listen.parse().unwrap(), "/nowhere");
        config.auth_token_file = tokens.then(|| PathBuf::from("tokens.txt"));
        config.listen_explicit = explicit;
        config
    }

    #[test]
    fn loopback_is_always_fine() {
        for listen in [
            "127.0.0.1:50051",
            "127.9.9.9:1",
            "[::1]:0",
            "[::ffff:127.0.0.1]:80",
        ] {
            for (tokens, explicit) in [(false, false), (false, true), (true, false)] {
                assert_eq!(
                    config(listen, tokens, explicit).exposure(),
                    Ok(Exposure::Loopback),
                    "{listen}"
                );
            }
        }
    }

    #[test]
    fn beyond_loopback_needs_tokens_or_an_explicit_address() {
        for listen in [
            "0.0.0.0:50051",
            "[::]:50051",
            "192.0.2.7:1",
            "[::ffff:192.0.2.7]:1",
        ] {
            assert_eq!(config(listen, true, false).exposure(), Ok(Exposure::Tokens));
            assert_eq!(config(listen, false, true).exposure(), Ok(Exposure::Open));
            let error = config(listen, false, false).exposure().unwrap_err();
            let message = error.to_string();
            assert!(message.contains("--auth-token-file"), "{message}");
            assert!(message.contains("--listen"), "{message}");
        }
    }

    #[test]
    fn a_wide_otlp_port_makes_the_server_wide() {
        let with_otlp = |otlp: &str, tokens: bool| {
            let mut config = config("127.0.0.1:50051", tokens, false);
            config.otlp_grpc_listen = Some(otlp.parse().unwrap());
            config.exposure()
        };
        assert_eq!(with_otlp("127.0.0.1:4317", false), Ok(Exposure::Loopback));
        // Named on the command line, so taken as meant; the hosts beyond
        // loopback then pass the browser guard too.
        assert_eq!(with_otlp("0.0.0.0:4317", false), Ok(Exposure::Open));
        assert_eq!(with_otlp("0.0.0.0:4317", true), Ok(Exposure::Tokens));
    }
}
