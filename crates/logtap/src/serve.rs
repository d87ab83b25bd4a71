//! `logtap serve`: the server library behind command-line options, until
//! SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use logtap_server::config::{NatsConfig, Retention, SyncPolicy};
use logtap_server::tls::TlsFiles;
use logtap_server::{Server, ServerConfig};

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The data directory; created if missing.
    #[arg(long, default_value = "./logtap-data", value_name = "DIR")]
    pub data: PathBuf,

    /// The address to listen on [default: 127.0.0.1:50051] (port 0 picks a
    /// free port; the address taken is logged). Without
    /// --auth-token-file, an address beyond loopback (0.0.0.0, a LAN
    /// address) is served only when named here, with a warning that anyone
    /// who reaches it can read and push logs.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    /// When stored entries are forced to disk: `batch` (every push batch;
    /// nothing acknowledged is lost on power failure), `interval:MS` (at
    /// most every MS milliseconds), or `never` (the OS decides).
    #[arg(long, default_value = "batch", value_name = "POLICY")]
    pub sync: Sync,

    /// Start a new segment file once one reaches this many MiB. A full
    /// segment is sealed (compressed, indexed); the newest is searched and
    /// opened whole, so smaller segments make both quicker.
    #[arg(long, default_value_t = 16, value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub segment_mb: u64,

    /// How long a full segment stays as written before it is sealed
    /// (compressed, with search filters), in the background: live readers
    /// catching up after a burst read it as written meanwhile. `never`
    /// keeps every segment as written (no compression, no filters; more
    /// disk, searches read everything).
    #[arg(long, default_value = "5s", value_name = "DURATION|never", value_parser = parse_seal_after)]
    pub seal_after: SealAfter,

    /// Delete the oldest segments to keep the data at or below this many MiB.
    #[arg(long, value_name = "MIB")]
    pub retention_mb: Option<u64>,

    /// Delete segments whose newest entry is older than this (7d, 12h, ...).
    #[arg(long, value_name = "AGE", value_parser = parse_age)]
    pub retention_age: Option<Duration>,

    /// Serve TLS (https://, gRPC over TLS) with this PEM certificate chain:
    /// the server's certificate first, then intermediates.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The PEM private key of --tls-cert (PKCS#8, RSA or EC).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Require bearer tokens listed in FILE, one a line as `TOKEN SCOPE`
    /// (SCOPE: read, write, or read,write; `#` comments and blank lines
    /// allowed). `read` reads logs and /metrics; `write` pushes only.
    /// /healthz, gRPC health and reflection, and the viewer's page stay
    /// open. Clients send `authorization: Bearer TOKEN` (logtap: --token).
    #[arg(long, value_name = "FILE")]
    pub auth_token_file: Option<PathBuf>,

    /// Serve /metrics without a token even when --auth-token-file is on.
    #[arg(long)]
    pub metrics_public: bool,

    /// Let pages from ORIGIN (scheme://host[:port], or * for any) call the
    /// API from a browser (CORS: gRPC-Web and the HTTP API); repeat for
    /// several. Without it, only the viewer this server serves can.
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    pub cors_origins: Vec<String>,

    /// The most message bytes one query's text filter (--grep, plain or
    /// regex) may look at before it catches up with the newest entries; a
    /// query that needs more ends with RESOURCE_EXHAUSTED. 0: no limit.
    /// Default 68719476736 (64 GiB).
    #[arg(long, value_name = "BYTES")]
    pub max_query_scan_bytes: Option<u64>,

    /// Threads that run regular-expression matching, away from the threads
    /// serving connections. Default: half the cores, at least one.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub match_threads: Option<u64>,
    /// Close a connection that has not said what it is (HTTP/2 preface, or
    /// an HTTP/1.1 request head) within this long (10s, 500ms, ...); an
    /// HTTP/1.1 connection left idle this long between requests is closed
    /// too.
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = parse_timeout)]
    pub header_read_timeout: Duration,

    /// The most client connections open at once; one more is closed as soon
    /// as it is accepted (counted in /metrics as
    /// logtap_limit_rejections_total{limit="connections"}).
    #[arg(long, default_value_t = 10_000, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: u64,

    /// Without --auth-token-file, a loopback listener answers only requests
    /// for its own names (localhost, *.localhost, 127.0.0.1, [::1]), so a
    /// web page cannot reach it by pointing its own name at 127.0.0.1 (DNS
    /// rebinding). Serve NAME too (no port; * for any); repeat for several.
    #[arg(long = "allowed-host", value_name = "NAME")]
    pub allowed_hosts: Vec<String>,
    /// The most streams (reading streams and requests in progress) one
    /// connection may hold; one more is refused with RESOURCE_EXHAUSTED
    /// (HTTP 429).
    #[arg(long, default_value_t = 1_000, value_name = "N")]
    pub max_streams_per_connection: usize,

    /// The most streams one client address (an IPv6 /64) may hold over all
    /// its connections, so that one client cannot take every slot.
    #[arg(long, default_value_t = 2_500, value_name = "N")]
    pub max_streams_per_peer: usize,

    /// The most bytes all requests together may hold in messages not yet
    /// whole (gRPC messages, HTTP push lines); a request that would go over
    /// is cut with RESOURCE_EXHAUSTED (HTTP 503).
    #[arg(long, default_value_t = 256 << 20, value_name = "BYTES")]
    pub max_buffered_request_bytes: usize,

    /// The share of --max-buffered-request-bytes one connection may hold.
    #[arg(long, default_value_t = 64 << 20, value_name = "BYTES")]
    pub max_buffered_request_bytes_per_connection: usize,

    /// Cut a request that sends nothing for this long in the middle of a
    /// message (30s, 2m, ...): DEADLINE_EXCEEDED (HTTP 408).
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_age)]
    pub request_stall_timeout: Duration,

    /// Receive syslog (RFC 5424 or RFC 3164, one message per datagram) over
    /// UDP on ADDR (e.g. 127.0.0.1:5514). Off unless given. Syslog has no
    /// tokens and no acknowledgement: bind it where only trusted senders
    /// reach it.
    #[arg(long, value_name = "ADDR")]
    pub syslog_udp: Option<SocketAddr>,

    /// Receive syslog over TCP on ADDR, octet-counted or LF-framed
    /// (RFC 6587). Off unless given.
    #[arg(long, value_name = "ADDR")]
    pub syslog_tcp: Option<SocketAddr>,

    /// Serve OTLP's gRPC log service (LogsService/Export) on ADDR too, e.g.
    /// 0.0.0.0:4317, the port OpenTelemetry exporters send to by default.
    /// Only that service and gRPC health are answered there, with the main
    /// port's TLS and tokens. Off unless given.
    #[arg(long, value_name = "ADDR")]
    pub otlp_grpc_listen: Option<SocketAddr>,

    /// Run as one node of a cluster on NATS JetStream: the log of record is
    /// a JetStream stream shared with the other nodes, and the data
    /// directory holds this node's copy of it. URL[,URL...] are NATS
    /// servers (nats://host:4222, tls://host:4222). Without it, logtap is a
    /// single node.
    #[arg(long, value_name = "URL[,URL...]", value_delimiter = ',')]
    pub nats: Vec<String>,

    /// The JetStream stream the nodes share (created if missing).
    #[arg(long, default_value = "logtap", value_name = "NAME", requires = "nats")]
    pub nats_stream: String,

    /// The stream's replicas when this node creates it: 3 in production.
    #[arg(long, default_value_t = 1, value_name = "N", requires = "nats",
          value_parser = clap::value_parser!(u64).range(1..=5))]
    pub nats_replicas: u64,

    /// A NATS credentials file (user JWT and NKey seed).
    #[arg(long, value_name = "FILE", requires = "nats")]
    pub nats_creds: Option<PathBuf>,

    /// CA certificates (PEM) to trust for the NATS servers' TLS; turns TLS on.
    #[arg(long, value_name = "FILE", requires = "nats")]
    pub nats_tls_ca: Option<PathBuf>,

    /// A client certificate (PEM) for NATS servers that verify clients.
    #[arg(long, value_name = "FILE", requires_all = ["nats", "nats_tls_key"])]
    pub nats_tls_cert: Option<PathBuf>,

    /// The key (PEM) of --nats-tls-cert.
    #[arg(long, value_name = "FILE", requires = "nats_tls_cert")]
    pub nats_tls_key: Option<PathBuf>,
}

/// Where the server listens when --listen is not given: loopback only.
const DEFAULT_LISTEN: &str = "127.0.0.1:50051";

/// The `--sync` policy as typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sync(pub SyncPolicy);

impl FromStr for Sync {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let policy = match text.trim().to_ascii_lowercase().as_str() {
            "batch" => SyncPolicy::EveryBatch,
            "never" => SyncPolicy::Never,
            other => match other.strip_prefix("interval:").map(str::parse::<u64>) {
                Some(Ok(ms)) if ms > 0 => SyncPolicy::Interval(Duration::from_millis(ms)),
                _ => {
                    return Err(format!(
                        "{text:?} is not a sync policy: use batch, interval:MS (such as interval:100) or never"
                    ))
                }
            },
        };
        Ok(Sync(policy))
    }
}

/// When full segments are sealed: after a delay, or never.
#[derive(Debug, Clone, Copy)]
pub struct SealAfter(Option<Duration>);

fn parse_seal_after(text: &str) -> Result<SealAfter, String> {
    if text.trim() == "never" {
        return Ok(SealAfter(None));
    }
    parse_age(text).map(|delay| SealAfter(Some(delay)))
}

fn parse_age(text: &str) -> Result<Duration, String> {
    logtap_ingest::parse_duration(text).map_err(|error| error.to_string())
}

fn parse_timeout(text: &str) -> Result<Duration, String> {
    match parse_age(text)? {
        duration if duration.is_zero() => Err("the timeout must be above zero".to_string()),
        duration => Ok(duration),
    }
}

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let listen = match args.listen {
        Some(listen) => listen,
        None => DEFAULT_LISTEN.parse().context("the default address")?,
    };
    let mut config = ServerConfig::new(listen, args.data.clone());
    config.listen_explicit = args.listen.is_some();
    config.tls = match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
        _ => None,
    };
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    config.auth_token_file = args.auth_token_file;
    config.metrics_public = args.metrics_public;
    config.cors_origins = args.cors_origins;
    if let Some(limit) = args.max_query_scan_bytes {
        config.max_query_scan_bytes = limit;
    }
    if let Some(threads) = args.match_threads {
        config.match_threads = usize::try_from(threads).context("--match-threads")?;
    }
    config.header_read_timeout = args.header_read_timeout;
    config.max_connections = usize::try_from(args.max_connections).unwrap_or(usize::MAX);
    config.allowed_hosts = args.allowed_hosts;
    config.max_streams_per_connection = args.max_streams_per_connection;
    config.max_streams_per_peer = args.max_streams_per_peer;
    config.max_buffered_request_bytes = args.max_buffered_request_bytes;
    config.max_buffered_request_bytes_per_connection =
        args.max_buffered_request_bytes_per_connection;
    config.request_stall_timeout = args.request_stall_timeout;
    config.syslog_udp = args.syslog_udp;
    config.syslog_tcp = args.syslog_tcp;
    config.otlp_grpc_listen = args.otlp_grpc_listen;
    config.store.sync = args.sync.0;
    config.store.segment_bytes = args.segment_mb << 20;
    match args.seal_after.0 {
        Some(delay) => config.store.seal_delay = delay,
        None => config.store.seal_in_background = false,
    }
    config.store.retention = Retention {
        max_bytes: args.retention_mb.map(|mb| mb << 20),
        max_age: args.retention_age,
    };

    if !args.nats.is_empty() {
        let mut nats = NatsConfig::new(args.nats);
        nats.stream = args.nats_stream;
        nats.replicas = usize::try_from(args.nats_replicas).context("--nats-replicas")?;
        nats.creds = args.nats_creds;
        nats.tls_ca = args.nats_tls_ca;
        nats.tls_client = args.nats_tls_cert.zip(args.nats_tls_key);
        config.nats = Some(nats);
    }

    let server = Server::bind(config).await.with_context(|| {
        format!(
            "could not start the server on {} with data in {}",
            listen,
            args.data.display()
        )
    })?;
    tracing::info!("logtap is listening on {scheme}://{}", server.local_addr());
    let syslog = server.syslog_addrs();
    if let Some(addr) = syslog.udp {
        tracing::info!("logtap is receiving syslog on udp://{addr}");
    }
    if let Some(addr) = syslog.tcp {
        tracing::info!("logtap is receiving syslog on tcp://{addr}");
    }
    if let Some(addr) = server.otlp_grpc_addr() {
        tracing::info!("logtap is receiving OTLP gRPC on {scheme}://{addr}");
    }
    server
        .run(shutdown_signal())
        .await
        .context("the server stopped with an error")?;
    tracing::info!("logtap has shut down");
    Ok(ExitCode::SUCCESS)
}

/// Resolves on the first SIGINT or SIGTERM, which starts a clean shutdown.
/// A second signal during the shutdown ends the process at once, for when
/// a client holds it up.
async fn shutdown_signal() {
    let name = wait_for_signal().await;
    tracing::info!("{name} received: shutting down (send it again to stop at once)");
    tokio::spawn(async {
        let name = wait_for_signal().await;
        tracing::warn!("{name} received again: stopping now");
        std::process::exit(130);
    });
}

#[cfg(unix)]
async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => tokio::select! {
            _ = tokio::signal::ctrl_c() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        },
        Err(error) => {
            tracing::warn!("cannot listen for SIGTERM ({error}); only Ctrl-C stops the server");
            let _ = tokio::signal::ctrl_c().await;
            "SIGINT"
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> &'static str {
    let _ = tokio::signal::ctrl_c().await;
    "Ctrl-C"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_policies() {
        assert_eq!("batch".parse(), Ok(Sync(SyncPolicy::EveryBatch)));
        assert_eq!("Never".parse(), Ok(Sync(SyncPolicy::Never)));
        assert_eq!(
            "interval:250".parse(),
            Ok(Sync(SyncPolicy::Interval(Duration::from_millis(250))))
        );
        for bad in ["", "always", "interval:", "interval:0", "interval:x"] {
            let error = bad.parse::<Sync>().unwrap_err();
            assert!(error.contains("interval:MS"), "{error}");
        }
    }
}
