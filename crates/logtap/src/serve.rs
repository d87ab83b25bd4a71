//! `logtap serve`: the server library behind command-line options (and
//! the configuration file, `config.rs`), until SIGINT or SIGTERM. SIGHUP
//! reloads the configuration file; under systemd the service manager hears
//! of readiness, reloads and shutdown (`notify.rs`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use logtap_server::config::{NatsConfig, Retention, SyncPolicy};
use logtap_server::tls::TlsFiles;
use logtap_server::{LiveSettings, Server, ServerConfig};

use crate::config::{Resolved, Sources};
use crate::logging::{LogControl, LogFormat};
use crate::notify::{self, Notifier};

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Read settings from this TOML file: every flag here is a key without
    /// its dashes (`segment-mb = 32`); a flag given on the command line wins
    /// over the file. SIGHUP reads the file again. See `logtap config
    /// example`.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

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

    /// With --nats: the JetStream stream the nodes share (created if
    /// missing).
    #[arg(long, default_value = "logtap", value_name = "NAME")]
    pub nats_stream: String,

    /// With --nats: the stream's replicas when this node creates it, 3 in
    /// production.
    #[arg(long, default_value_t = 1, value_name = "N",
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

    /// The form of the server's own log lines on standard error: `text`,
    /// or `json` (one object a line, every field its own key, for journald
    /// and log shippers).
    #[arg(long, value_enum, default_value = "text", value_name = "FORMAT")]
    pub log_format: LogFormat,

    /// The server's own log level: trace, debug, info, warn or error, or
    /// RUST_LOG directives (info,logtap_server=debug). Wins over RUST_LOG;
    /// without either, info. SIGHUP applies a new value from the file.
    #[arg(long, value_name = "LEVEL", value_parser = check_log_level)]
    pub log_level: Option<String>,
}

fn check_log_level(text: &str) -> Result<String, String> {
    crate::logging::parse_level(text).map(|_| text.to_string())
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

/// The server configuration of `args`.
fn server_config(args: ServeArgs) -> anyhow::Result<ServerConfig> {
    let listen = match args.listen {
        Some(listen) => listen,
        None => DEFAULT_LISTEN.parse().context("the default address")?,
    };
    let mut config = ServerConfig::new(listen, args.data.clone());
    config.listen_explicit = args.listen.is_some();
    config.store.retention = retention(&args);
    config.tls = match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
        _ => None,
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
    if !args.nats.is_empty() {
        let mut nats = NatsConfig::new(args.nats);
        nats.stream = args.nats_stream;
        nats.replicas = usize::try_from(args.nats_replicas).context("--nats-replicas")?;
        nats.creds = args.nats_creds;
        nats.tls_ca = args.nats_tls_ca;
        nats.tls_client = args.nats_tls_cert.zip(args.nats_tls_key);
        config.nats = Some(nats);
    }
    Ok(config)
}

/// The retention limits `args` set.
fn retention(args: &ServeArgs) -> Retention {
    Retention {
        max_bytes: args.retention_mb.map(|mb| mb << 20),
        max_age: args.retention_age,
    }
}

pub async fn run(
    resolved: Resolved,
    sources: Sources,
    log: LogControl,
) -> anyhow::Result<ExitCode> {
    if let Some(path) = &resolved.args.config {
        tracing::info!(file = %path.display(), "Read the configuration file.");
    }
    let stop_signals = StopSignals::listen()?;
    let hangups = listen_for_hangups()?;
    let data = resolved.args.data.clone();
    let config = server_config(resolved.args.clone())?;
    let listen = config.listen;
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let server = Server::bind(config).await.with_context(|| {
        format!(
            "could not start the server on {} with data in {}",
            listen,
            data.display()
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
    let notifier = Notifier::from_env().map(std::sync::Arc::new);
    // Listening and the store open: what `Type=notify` waits for.
    if let Some(notifier) = &notifier {
        notifier.send(&format!(
            "READY=1\nSTATUS=Listening on {scheme}://{}",
            server.local_addr()
        ));
    }
    let background = tokio_util::task::TaskTracker::new();
    let stop = tokio_util::sync::CancellationToken::new();
    if let (Some(notifier), Some(every)) = (&notifier, notify::watchdog_interval()) {
        tracing::info!(
            interval_ms = every.as_millis() as u64,
            "Pinging the systemd watchdog."
        );
        background.spawn(watchdog(
            std::sync::Arc::clone(notifier),
            every,
            stop.clone(),
        ));
    }
    background.spawn(reload_on_hangup(
        hangups,
        Reloader {
            current: resolved,
            sources,
            live: server.live_settings(),
            log,
            notifier: notifier.clone(),
        },
        stop.clone(),
    ));
    let result = server.run(shutdown_signal(stop_signals, notifier)).await;
    stop.cancel();
    background.close();
    background.wait().await;
    result.context("the server stopped with an error")?;
    tracing::info!("logtap has shut down");
    Ok(ExitCode::SUCCESS)
}

/// Sends `WATCHDOG=1` every `every` until `stop`. The pings come from the
/// runtime that accepts connections, so a runtime that stops making
/// progress stops them, and systemd restarts the server.
async fn watchdog(
    notifier: std::sync::Arc<Notifier>,
    every: Duration,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut ticks = tokio::time::interval(every);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticks.tick() => notifier.send("WATCHDOG=1"),
        }
    }
}

/// What a reload needs: the settings in force, where they came from, and
/// the handles that change a running server.
struct Reloader {
    current: Resolved,
    sources: Sources,
    live: LiveSettings,
    log: LogControl,
    notifier: Option<std::sync::Arc<Notifier>>,
}

/// The keys whose new values a running server takes; a change to any other
/// is logged as needing a restart.
const LIVE_KEYS: &[&str] = &[
    "auth-token-file",
    "retention-mb",
    "retention-age",
    "max-connections",
    "max-streams-per-connection",
    "max-streams-per-peer",
    "log-level",
];

impl Reloader {
    /// Reads the sources again and applies what can change live. A file
    /// with a problem, or a token file that does not load, changes
    /// nothing.
    fn reload(&mut self) {
        let new = match self.sources.resolve() {
            Ok(new) => new,
            Err(error) => {
                tracing::error!(%error, "The configuration has a problem; the running configuration is kept.");
                return;
            }
        };
        let changed: Vec<String> = new
            .words
            .iter()
            .filter(|(key, words)| self.current.words.get(*key) != Some(*words))
            .map(|(key, _)| key.clone())
            .collect();
        // Tokens swap while they are on; turning them on or off changes
        // every route's layers, which takes a restart.
        let tokens_swap = self.live.tokens_on() && new.args.auth_token_file.is_some();
        let (live, restart): (Vec<&String>, Vec<&String>) =
            changed.iter().partition(|key| match key.as_str() {
                "auth-token-file" => tokens_swap,
                key => LIVE_KEYS.contains(&key),
            });
        // The token file is read again even when its name is the same:
        // rotating tokens is editing that file.
        if let (true, Some(path)) = (tokens_swap, &new.args.auth_token_file) {
            match self.live.reload_tokens(path) {
                Ok(count) => {
                    tracing::info!(file = %path.display(), tokens = count, "Reloaded the token file.")
                }
                Err(error) => {
                    tracing::error!(file = %path.display(), %error, "The token file has a problem; the running configuration is kept.");
                    return;
                }
            }
        }
        if let Err(error) = self.log.set_level(new.args.log_level.as_deref()) {
            tracing::error!(%error, "Could not change the log level.");
        }
        self.live.set_retention(retention(&new.args));
        self.live.set_stream_caps(
            new.args.max_streams_per_connection,
            new.args.max_streams_per_peer,
        );
        self.live
            .set_max_connections(usize::try_from(new.args.max_connections).unwrap_or(usize::MAX));
        for key in &live {
            tracing::info!(
                key = key.as_str(),
                from = %show(self.current.words.get(*key)),
                to = %show(new.words.get(*key)),
                "A setting changed and is in force."
            );
        }
        if !restart.is_empty() {
            tracing::warn!(
                keys = %restart.iter().map(|key| key.as_str()).collect::<Vec<_>>().join(", "),
                "Some settings changed that take effect only after a restart; the server goes on with the old ones."
            );
        }
        tracing::info!(
            changed = changed.len(),
            needs_restart = restart.len(),
            "Reloaded the configuration."
        );
        // What needs a restart stays as it runs, so the next reload
        // reports it again.
        let mut kept = new;
        for key in restart {
            if let Some(words) = self.current.words.get(key) {
                kept.words.insert(key.clone(), words.clone());
            }
        }
        self.current = kept;
    }
}

/// A setting's words for a log line.
fn show(words: Option<&Vec<std::ffi::OsString>>) -> String {
    match words {
        Some(words) if !words.is_empty() => words
            .iter()
            .map(|word| word.to_string_lossy())
            .collect::<Vec<_>>()
            .join(","),
        _ => "(unset)".to_string(),
    }
}

/// Reloads on every SIGHUP until `stop`.
#[cfg(unix)]
async fn reload_on_hangup(
    mut hangups: Hangups,
    mut reloader: Reloader,
    stop: tokio_util::sync::CancellationToken,
) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = hangups.recv() => {}
        }
        tracing::info!("SIGHUP received: reloading the configuration.");
        if let Some(notifier) = &reloader.notifier {
            notifier.send(&notify::reloading_message());
        }
        // Reading files is blocking work, and quick.
        reloader = match tokio::task::spawn_blocking(move || {
            reloader.reload();
            reloader
        })
        .await
        {
            Ok(reloader) => reloader,
            Err(error) => {
                tracing::error!(%error, "The reload failed; SIGHUP is no longer handled.");
                return;
            }
        };
        if let Some(notifier) = &reloader.notifier {
            notifier.send("READY=1");
        }
    }
}

/// SIGHUP, listened for from before the server says it listens (its
/// default action ends the process).
#[cfg(unix)]
type Hangups = tokio::signal::unix::Signal;

#[cfg(unix)]
fn listen_for_hangups() -> anyhow::Result<Hangups> {
    use tokio::signal::unix::{signal, SignalKind};
    signal(SignalKind::hangup()).context("listening for SIGHUP")
}

#[cfg(not(unix))]
type Hangups = ();

#[cfg(not(unix))]
fn listen_for_hangups() -> anyhow::Result<Hangups> {
    Ok(())
}

#[cfg(not(unix))]
async fn reload_on_hangup(
    _hangups: Hangups,
    _reloader: Reloader,
    _stop: tokio_util::sync::CancellationToken,
) {
}

/// Resolves on the first SIGINT or SIGTERM, which starts a clean shutdown
/// (systemd hears `STOPPING=1`). A second signal during the shutdown ends
/// the process at once, for when a client holds it up.
async fn shutdown_signal(mut signals: StopSignals, notifier: Option<std::sync::Arc<Notifier>>) {
    let name = signals.next().await;
    if let Some(notifier) = &notifier {
        notifier.send("STOPPING=1");
    }
    tracing::info!("{name} received: shutting down (send it again to stop at once)");
    tokio::spawn(async move {
        let name = signals.next().await;
        tracing::warn!("{name} received again: stopping now");
        std::process::exit(130);
    });
}

/// SIGINT and SIGTERM, listened for from before the server says it
/// listens: a signal sent as soon as it is ready must start a clean
/// shutdown, not end the process the default way.
#[cfg(unix)]
struct StopSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl StopSignals {
    fn listen() -> anyhow::Result<StopSignals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(StopSignals {
            interrupt: signal(SignalKind::interrupt()).context("listening for SIGINT")?,
            terminate: signal(SignalKind::terminate()).context("listening for SIGTERM")?,
        })
    }

    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }
}

#[cfg(not(unix))]
struct StopSignals;

#[cfg(not(unix))]
impl StopSignals {
    fn listen() -> anyhow::Result<StopSignals> {
        Ok(StopSignals)
    }

    async fn next(&mut self) -> &'static str {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
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
