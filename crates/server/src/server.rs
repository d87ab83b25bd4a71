//! Binding, the accept loop, and shutdown.
//!
//! One port carries everything. hyper-util's `auto` builder reads the first
//! bytes of each connection and speaks HTTP/2 (gRPC, gRPC-Web) or HTTP/1.1
//! (gRPC-Web, plain routes) accordingly; one axum router holds the gRPC
//! services and the plain routes side by side, and requests whose content
//! type is gRPC-Web go through tonic-web's translation first.
//!
//! Shutdown happens in order: stop accepting; tell health checks NOT_SERVING;
//! cancel the shared token, so every reading stream ends at once with OK and
//! its trailers and new requests get UNAVAILABLE; let connections drain
//! (HTTP/2 GOAWAY, HTTP/1.1 closes after the response in flight) for up to
//! the drain timeout, then cut what is left; finally sync the store.

use crate::config::{Exposure, ServerConfig};
use crate::error::ServerError;
use crate::net::coalesce::{CoalescingIo, Unbuffered};
use crate::net::idle::StreamExecutor;
use crate::net::quota::{Peers, Quota};
use crate::net::request_body::RequestBudget;
use crate::net::sniff::SniffDeadline;
use crate::net::stream_table::StreamTable;
use crate::net::threads::ConnectionThreads;
use crate::net::tls;
use crate::ops::log_throttle::LogThrottle;
use crate::ops::metrics::Metrics;
use crate::protocols;
use crate::security::{auth, browser, cors};
use crate::stream::live::Live;
use crate::stream::matching::MatchThreads;
use crate::stream::state::Shared;
use axum::extract::ConnectInfo;
use axum::response::Response;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use logtap_core::Backend;
use logtap_store::Store;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;
use tower::{Layer, ServiceExt};

/// A bound server, ready to [`run`](Server::run).
pub struct Server {
    /// The bound socket; nothing is accepted before `run`.
    listener: TcpListener,
    /// The address actually bound (the port is known even for port 0).
    local_addr: SocketAddr,
    /// What every handler shares.
    shared: Shared,
    /// Every route: gRPC services and plain HTTP.
    router: Router,
    /// Turned to NOT_SERVING when shutdown begins.
    health: HealthReporter,
    /// Timeouts and limits.
    config: ServerConfig,
    /// The TLS handshake for every connection, when TLS is on.
    tls: Option<TlsAcceptor>,
    /// The streams each client address holds; each connection gets its
    /// share from it.
    peers: Arc<Peers>,
    /// The syslog listeners, when on.
    syslog: protocols::syslog::Listeners,
    /// The second port for OTLP's gRPC service (`--otlp-grpc-listen`),
    /// when on: exporters default to port 4317, and some cannot be told
    /// another one without reconfiguring every application.
    otlp_listener: Option<TcpListener>,
    /// What a configuration reload may change while the server runs.
    live: LiveSettings,
}

/// The settings a running server takes without a restart: the token table,
/// the retention limits, and the stream and connection caps. A clone of
/// it stays valid after [`Server::run`] has taken the server; the binary
/// applies a reloaded configuration file through it (`SIGHUP`).
#[derive(Clone)]
pub struct LiveSettings {
    /// The token table requests are checked against; `None` when the
    /// server started without tokens (turning them on changes every
    /// route's layers, so that takes a restart).
    tokens: Option<Arc<arc_swap::ArcSwap<auth::TokenSet>>>,
    /// The store, for its retention limits.
    store: Store,
    /// The per-connection and per-address stream caps.
    peers: Arc<Peers>,
    /// `max_connections`, read by every accept loop at each connection.
    max_connections: Arc<AtomicUsize>,
}

impl std::fmt::Debug for LiveSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveSettings")
            .field("tokens", &self.tokens.is_some())
            .finish_non_exhaustive()
    }
}

impl LiveSettings {
    /// Whether the server checks tokens (it started with a token file).
    pub fn tokens_on(&self) -> bool {
        self.tokens.is_some()
    }

    /// Reads the token file at `path` and, if it is valid, makes it the
    /// table every request from now on is checked against; returns how
    /// many tokens it holds. A bad file changes nothing. Fails too when
    /// the server runs without tokens.
    pub fn reload_tokens(&self, path: &std::path::Path) -> Result<usize, ServerError> {
        let Some(table) = &self.tokens else {
            return Err(ServerError::Internal(
                "the server started without tokens; turning them on takes a restart".into(),
            ));
        };
        let tokens = auth::TokenSet::load(path)?;
        let count = tokens.len();
        table.store(Arc::new(tokens));
        Ok(count)
    }

    /// Replaces the retention limits and applies them at once.
    pub fn set_retention(&self, retention: logtap_store::Retention) {
        self.store.set_retention(retention);
    }

    /// Replaces `max_streams_per_connection` and `max_streams_per_peer`
    /// for the streams opened from now on.
    pub fn set_stream_caps(&self, per_connection: usize, per_peer: usize) {
        self.peers.set_caps(per_connection, per_peer);
    }

    /// Replaces `max_connections` for the connections accepted from now on.
    pub fn set_max_connections(&self, max_connections: usize) {
        self.max_connections
            .store(max_connections, Ordering::Relaxed);
    }
}

impl Server {
    /// Opens the store (recovering it if the last run crashed) and binds the
    /// listening socket.
    pub async fn bind(config: ServerConfig) -> Result<Server, ServerError> {
        // Security settings first: a bad certificate, token file or origin,
        // or an address that would expose the logs, stops the server before
        // it creates or touches the data directory.
        let exposure = config.exposure()?;
        let tls = config.tls.as_ref().map(tls::acceptor).transpose()?;
        let guard = match &config.auth_token_file {
            Some(path) => Some(auth::Guard::new(
                auth::TokenSet::load(path)?,
                protocols::access(&config),
            )),
            None => None,
        };
        let tokens = guard.as_ref().map(auth::Guard::tokens);
        let cors_origins = cors::parse_origins(&config.cors_origins)?;
        warn_if_descriptors_are_short(&config);
        let store_config = config.store.clone();
        let store = tokio::task::spawn_blocking(move || Store::open(store_config))
            .await
            .map_err(|error| ServerError::Internal(format!("opening the store: {error}")))?
            .map_err(|source| ServerError::OpenStore {
                dir: config.store.dir.clone(),
                source,
            })?;
        let report = store.recovery_report();
        if !report.events.is_empty() {
            tracing::warn!(
                bytes_lost = report.bytes_lost(),
                events = ?report.events,
                "The store was not closed cleanly; recovery cut or skipped damaged records."
            );
        }
        let store_handle = store.clone();
        let store: Arc<dyn Backend> = match config.nats.clone() {
            None => Arc::new(store),
            Some(nats) => {
                let retention = config.store.retention;
                let backend = tokio::task::spawn_blocking(move || {
                    logtap_cluster::ClusterBackend::open(nats, store, retention)
                })
                .await
                .map_err(|error| {
                    ServerError::Internal(format!("joining the cluster: {error}"))
                })??;
                Arc::new(backend)
            }
        };
        let live = Live::attach(&*store);
        let shared = Shared {
            store,
            live,
            shutdown: CancellationToken::new(),
            metrics: Arc::new(Metrics::after_recovery(&report)),
            max_streams: config.max_streams,
            matching: MatchThreads::start(config.match_threads).map_err(|error| {
                ServerError::Internal(format!("could not start the matching threads: {error}"))
            })?,
            max_query_scan_bytes: config.max_query_scan_bytes,
        };
        let (grpc_routes, health) = protocols::grpc_routes(&shared, &config).await;
        // Without tokens, pages of other sites may not write and names
        // other than the server's own are not answered (DNS rebinding).
        let browser_guard = guard.is_none().then(|| {
            browser::BrowserGuard::new(
                protocols::access(&config),
                exposure == Exposure::Loopback,
                &config.allowed_hosts,
                cors_origins.clone(),
            )
        });
        // CORS outside the token check: preflights carry no token, and a
        // refusal must still carry CORS headers for the page to read it.
        // The browser rules outside CORS: a rebinding page's preflight is
        // refused too.
        let router = browser::protect(
            cors::apply(
                auth::protect(app(&shared, &config, grpc_routes), guard),
                cors_origins.as_ref(),
            ),
            browser_guard,
        );
        let router = count_request_bodies(
            router,
            RequestBudget::new(
                Arc::clone(&shared.metrics),
                config.max_streams,
                config.max_buffered_request_bytes,
                config.max_buffered_request_bytes_per_connection,
                config.request_stall_timeout,
            ),
        );
        let peers = Peers::new(
            config.max_streams_per_connection,
            config.max_streams_per_peer,
            Arc::clone(&shared.metrics),
        );
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServerError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;
        let syslog = protocols::syslog::bind(&config).await?;
        let otlp_listener = match config.otlp_grpc_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| ServerError::Bind { addr, source })?,
            ),
            None => None,
        };
        tracing::info!(
            address = %local_addr,
            data = %config.store.dir.display(),
            last_cursor = shared.store.last_cursor(),
            tls = tls.is_some(),
            tokens = config.auth_token_file.is_some(),
            "Listening for gRPC, gRPC-Web and HTTP on one port."
        );
        match exposure {
            Exposure::Open => tracing::warn!(
                address = %local_addr,
                "Listening beyond loopback without tokens: anyone who can reach this port can read and push logs. Use --auth-token-file to require tokens."
            ),
            Exposure::Tokens if tls.is_none() => tracing::warn!(
                address = %local_addr,
                "Tokens are on but TLS is off: tokens and logs cross the network in clear text. Use --tls-cert and --tls-key."
            ),
            _ => {}
        }
        let live = LiveSettings {
            tokens,
            store: store_handle,
            peers: Arc::clone(&peers),
            max_connections: Arc::new(AtomicUsize::new(config.max_connections)),
        };
        Ok(Server {
            listener,
            local_addr,
            shared,
            router,
            health,
            config,
            tls,
            peers,
            syslog,
            otlp_listener,
            live,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The addresses the syslog listeners are bound to (`None` for one
    /// that is off).
    pub fn syslog_addrs(&self) -> protocols::syslog::SyslogAddrs {
        self.syslog.addrs()
    }

    /// The address of the OTLP gRPC port (`--otlp-grpc-listen`), when on.
    pub fn otlp_grpc_addr(&self) -> Option<SocketAddr> {
        self.otlp_listener
            .as_ref()
            .and_then(|listener| listener.local_addr().ok())
    }

    /// The settings that change while the server runs; keep a clone to
    /// change them after [`Server::run`] has started.
    pub fn live_settings(&self) -> LiveSettings {
        self.live.clone()
    }

    /// What the handlers share, for callers that add their own routes or
    /// want to watch the store.
    pub fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Serves until `shutdown` resolves, then ends every stream cleanly (OK,
    /// with trailers), drains the connections and syncs the store.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let Server {
            listener,
            shared,
            router,
            health,
            config,
            tls,
            peers,
            syslog,
            otlp_listener,
            live,
            ..
        } = self;
        let max_connections = live.max_connections;
        let threads = ConnectionThreads::start(config.connection_threads).map_err(|error| {
            ServerError::Internal(format!("starting the connection threads: {error}"))
        })?;
        let tracker = TaskTracker::new();
        let force_close = CancellationToken::new();
        // Every connection task holds a token of this until it ends: the
        // drain waits for them.
        let connections = TaskTracker::new();
        let executor =
            StreamExecutor::new(config.idle_timeout, tracker.clone(), force_close.clone());
        // Always: a reload may set retention limits the start had none of.
        tracker.spawn(enforce_retention(shared.clone(), config.retention_interval));
        tracker.spawn(crate::net::memory::trim_after_bursts(
            Arc::clone(&shared.metrics),
            shared.shutdown.clone(),
            threads.handles(),
        ));
        syslog.spawn(&shared, &config, &max_connections, tls.clone(), &tracker);
        tokio::pin!(shutdown);
        let mut backoff = ACCEPT_BACKOFF_MIN;
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                (port, accepted) = accept(&listener, otlp_listener.as_ref()) => match accepted {
                    Ok((tcp, peer)) => {
                        backoff = ACCEPT_BACKOFF_MIN;
                        // Counted from here until the connection ends; one
                        // over the cap is closed at once (dropping the
                        // socket), before it costs a task or a buffer.
                        let max_connections = max_connections.load(Ordering::Relaxed);
                        let Some(counted) = shared.metrics.open_connection(max_connections) else {
                            drop(tcp);
                            if let Some(suppressed) = REFUSED_CONNECTIONS.allow() {
                                tracing::warn!(
                                    peer = %peer,
                                    max_connections,
                                    refused_since_last_line = suppressed,
                                    "Closed a new connection: max_connections are open."
                                );
                            }
                            continue;
                        };
                        configure_socket(&tcp, &config);
                        let unbuffered = Unbuffered::default();
                        let service = connection_service(router.clone(), port, peer, peers.connection(peer.ip()), unbuffered.clone());
                        // Taken now, before shutdown can begin, so a
                        // connection still in its TLS handshake is waited
                        // for and then told to drain like the others.
                        let draining = connections.token();
                        // The socket moves to the reactor of the thread that
                        // serves it (see `net/threads.rs`).
                        let tcp = match tcp.into_std() {
                            Ok(tcp) => tcp,
                            Err(error) => {
                                tracing::warn!(peer = %peer, error = %error, "Could not hand a connection to its thread; dropping it.");
                                continue;
                            }
                        };
                        let streams = Arc::new(StreamTable::default());
                        let builder = connection_builder(&config, executor.for_connection(Arc::clone(&streams)));
                        let tls = tls.clone();
                        let stopping = shared.shutdown.clone();
                        let first_bytes = config.header_read_timeout;
                        executor.spawn_on(async move {
                            // Held until the connection ends, however it ends.
                            let _counted = counted;
                            let _draining = draining;
                            let tcp = match TcpStream::from_std(tcp) {
                                Ok(tcp) => tcp,
                                Err(error) => {
                                    tracing::warn!(peer = %peer, error = %error, "Could not register a connection with its thread.");
                                    return;
                                }
                            };
                            match tls {
                                None => serve_io(&builder, TokioIo::new(CoalescingIo::with_switch(SniffDeadline::new(tcp, first_bytes), unbuffered)), service, &streams, &stopping, peer).await,
                                Some(acceptor) => {
                                    // The handshake runs in the connection's
                                    // task: a slow client never stalls
                                    // accepting. Shutdown abandons it rather
                                    // than wait for a client that may never
                                    // finish it.
                                    let stream = tokio::select! {
                                        stream = tls::accept(&acceptor, tcp) => stream,
                                        () = stopping.cancelled() => None,
                                    };
                                    if let Some(stream) = stream {
                                        serve_io(&builder, TokioIo::new(CoalescingIo::with_switch(SniffDeadline::new(stream, first_bytes), unbuffered)), service, &streams, &stopping, peer).await;
                                    }
                                }
                            }
                        }, threads.next());
                    }
                    Err(error) => {
                        // Usually out of descriptors (EMFILE, ENFILE) or
                        // buffers: the connection waits in the backlog and
                        // makes every accept fail at once, so back off
                        // (10 ms, doubling to 100 ms) instead of spinning,
                        // and say so at most once per interval. Connections
                        // already accepted live on their own threads and go
                        // on being served meanwhile.
                        if let Some(suppressed) = ACCEPT_FAILURES.allow() {
                            tracing::warn!(
                                error = %error,
                                open_connections = shared.metrics.open_connections.get(),
                                failures_since_last_line = suppressed,
                                "Could not accept a connection; backing off and retrying."
                            );
                        }
                        tokio::select! {
                            () = &mut shutdown => break,
                            () = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                    }
                },
            }
        }
        drop(listener);
        drop(otlp_listener);
        tracing::info!("Shutting down: ending every stream, then draining connections.");
        for name in std::iter::once("").chain(protocols::GRPC_SERVICES) {
            health
                .set_service_status(name, ServingStatus::NotServing)
                .await;
        }
        shared.shutdown.cancel();
        connections.close();
        if tokio::time::timeout(config.drain_timeout, connections.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                drain_timeout = ?config.drain_timeout,
                "Connections did not drain in time; closing them."
            );
        }
        force_close.cancel();
        tracker.close();
        if tokio::time::timeout(config.drain_timeout, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                tasks = tracker.len(),
                "Some connection tasks did not stop; syncing the store anyway."
            );
        }
        // Every connection has ended or been cut: the threads can go.
        // Dropping joins them, which blocks, so off the async worker.
        let _ = tokio::task::spawn_blocking(move || drop(threads)).await;
        drop(router);
        let store = shared.store.clone();
        drop(shared);
        tokio::task::spawn_blocking(move || store.sync())
            .await
            .map_err(|error| ServerError::Internal(format!("syncing the store: {error}")))?
            .map_err(ServerError::Sync)?;
        tracing::info!("Stopped; the store is synced.");
        Ok(())
    }
}

/// Which of the server's ports a connection came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Port {
    /// `--listen`: every protocol.
    Main,
    /// `--otlp-grpc-listen`: OTLP's gRPC service and gRPC health only, so
    /// opening the port exporters expect opens nothing else.
    OtlpGrpc,
}

impl Port {
    /// Whether this port serves a request for `path`.
    fn serves(self, path: &str) -> bool {
        let under = |service: &str| {
            path.strip_prefix('/')
                .and_then(|rest| rest.strip_prefix(service))
                .is_some_and(|rest| rest.starts_with('/'))
        };
        match self {
            Port::Main => true,
            Port::OtlpGrpc => {
                under(protocols::otlp::grpc::SERVICE_NAME) || under("grpc.health.v1.Health")
            }
        }
    }
}

/// The next connection on either port.
async fn accept(
    main: &TcpListener,
    otlp: Option<&TcpListener>,
) -> (Port, std::io::Result<(TcpStream, SocketAddr)>) {
    match otlp {
        None => (Port::Main, main.accept().await),
        Some(otlp) => tokio::select! {
            accepted = main.accept() => (Port::Main, accepted),
            accepted = otlp.accept() => (Port::OtlpGrpc, accepted),
        },
    }
}

/// Serves one connection (plain or TLS) until it ends. It is asked to go
/// away gracefully (HTTP/2 GOAWAY, or HTTP/1.1 closing after the response
/// in progress) when the server shuts down, and when its HTTP/2 stream table
/// has grown large and gone idle (`net/stream_table.rs`).
async fn serve_io<I, S>(
    builder: &auto::Builder<StreamExecutor>,
    io: I,
    service: S,
    streams: &StreamTable,
    stopping: &CancellationToken,
    peer: SocketAddr,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::Service<::http::Request<Incoming>, Response = Response> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    // With upgrades: Loki's live tail becomes a WebSocket.
    let connection = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(connection);
    let stop = stopping.cancelled();
    tokio::pin!(stop);
    let large_and_idle = streams.large_and_idle();
    tokio::pin!(large_and_idle);
    let mut going_away = false;
    loop {
        tokio::select! {
            ended = connection.as_mut() => {
                if let Err(error) = ended {
                    log_connection_error(&*error, peer);
                }
                return;
            }
            () = &mut stop, if !going_away => {
                going_away = true;
                connection.as_mut().graceful_shutdown();
            }
            () = &mut large_and_idle, if !going_away => {
                going_away = true;
                tracing::debug!(peer = %peer, "Asked an idle connection to go away, to free its large stream table.");
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

/// How long the accept loop waits after a failed accept, at first.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
/// The longest the accept loop waits after failed accepts in a row: a
/// client served late by at most this once descriptors are free again.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_millis(100);

/// The least time between two log lines of one kind that any client can
/// cause at will.
const FLOOD_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Failed accepts (out of descriptors), logged at most once per interval.
static ACCEPT_FAILURES: LogThrottle = LogThrottle::new(FLOOD_LOG_INTERVAL);

/// Connections closed over `max_connections`, logged at most once per
/// interval.
static REFUSED_CONNECTIONS: LogThrottle = LogThrottle::new(FLOOD_LOG_INTERVAL);

/// HTTP/2 peers sent away for misbehaving, logged at most once per interval.
static CALM_DOWN: LogThrottle = LogThrottle::new(FLOOD_LOG_INTERVAL);

/// Logs how a connection ended with an error. Most are a client's business
/// (debug). A peer h2 sent away with ENHANCE_YOUR_CALM (rapid resets, too
/// many small frames or locally reset streams) is worth an operator's
/// notice, but an attacker repeats it at will, so it is logged at most once
/// per interval, with a count; h2's own WARN lines for it are off in
/// `logtap serve`'s default filter (`h2=error`).
fn log_connection_error(error: &(dyn std::error::Error + 'static), peer: SocketAddr) {
    let calm = std::iter::successors(Some(error), |error| error.source())
        .filter_map(|error| error.downcast_ref::<h2::Error>())
        .find(|error| {
            error.is_go_away()
                && error.is_library()
                && error.reason() == Some(h2::Reason::ENHANCE_YOUR_CALM)
        });
    match calm {
        Some(reason) => {
            if let Some(suppressed) = CALM_DOWN.allow() {
                tracing::warn!(
                    peer = %peer,
                    error = %reason,
                    sent_away_since_last_line = suppressed,
                    "Sent an HTTP/2 client away for misbehaving (GOAWAY ENHANCE_YOUR_CALM)."
                );
            }
        }
        None => tracing::debug!(peer = %peer, error = %error, "A connection ended with an error."),
    }
}

/// Raises the open-file limit (once per process) and warns when it still
/// cannot hold `max_connections` and the store's own files.
fn warn_if_descriptors_are_short(config: &ServerConfig) {
    /// Descriptors kept for the store, the listener and the runtime.
    const RESERVE: u64 = 64;
    if let Some((soft, _hard)) = crate::net::descriptors::raise_open_file_limit() {
        let wanted = (config.max_connections as u64).saturating_add(RESERVE);
        if soft < wanted {
            tracing::warn!(
                open_file_limit = soft,
                max_connections = config.max_connections,
                "The open-file limit is below max_connections plus what the store needs; clients beyond it wait while accepting fails. Raise the hard limit (ulimit -Hn, LimitNOFILE=) or lower --max-connections."
            );
        }
    }
}

/// Applies the store's retention limits every `interval` until shutdown.
async fn enforce_retention(shared: Shared, interval: Duration) {
    loop {
        tokio::select! {
            () = shared.shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        let store = shared.store.clone();
        // Deleting segment files is blocking work.
        if let Err(error) = tokio::task::spawn_blocking(move || store.enforce_retention()).await {
            tracing::error!(error = %error, "Applying the retention limits failed.");
        }
    }
}

/// Every route of the one port: plain HTTP and gRPC side by side, and a
/// fallback that answers unknown gRPC methods with UNIMPLEMENTED and other
/// unknown paths with 404.
///
/// A protocol's routes come from `protocols/mod.rs`; ops' routes (health,
/// metrics, the viewer) are merged here, the viewer's `/` shared with
/// Elasticsearch's root, which shippers ask for the version.
pub(crate) fn app(shared: &Shared, config: &ServerConfig, grpc_routes: Router) -> Router {
    Router::new()
        .merge(crate::ops::health::routes(
            shared.store.clone(),
            Arc::clone(&shared.metrics),
            shared.shutdown.clone(),
        ))
        .merge(protocols::http_routes(shared, config))
        .merge(protocols::elasticsearch::share_root(
            crate::ops::viewer::routes(),
        ))
        .merge(grpc_routes)
        .fallback(fallback)
}

/// Every request body of `router` counted against `budget` (see
/// `net/request_body.rs`). Inside tonic-web's translation, which
/// `connection_service` applies, so a gRPC-Web body is seen as gRPC.
fn count_request_bodies(router: Router, budget: Arc<RequestBudget>) -> Router {
    router.layer(axum::middleware::map_request_with_state(
        budget,
        |axum::extract::State(budget): axum::extract::State<Arc<RequestBudget>>,
         request: axum::extract::Request| async move { budget.wrap(request) },
    ))
}

/// Whether a request speaks gRPC or gRPC-Web, by its content type.
fn content_type_starts_with(headers: &axum::http::HeaderMap, prefix: &str) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with(prefix))
}

/// Unknown paths: see [`crate::error::unknown_route`].
async fn fallback(request: axum::extract::Request) -> Response {
    crate::error::unknown_route(request.headers(), request.uri().path())
}

/// The hyper builder for every connection: HTTP/1.1 and HTTP/2 on the same
/// socket, HTTP/2 keep-alive pings so a peer that vanished is noticed even
/// on a quiet live tail, and HTTP/2 streams spawned through the watching
/// executor.
fn connection_builder(
    config: &ServerConfig,
    executor: StreamExecutor,
) -> auto::Builder<StreamExecutor> {
    let mut builder = auto::Builder::new(executor);
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(config.keepalive_interval))
        .keep_alive_timeout(config.keepalive_timeout)
        .max_concurrent_streams(config.max_concurrent_streams_per_connection)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .initial_stream_window_size(STREAM_WINDOW)
        .max_send_buf_size(SEND_BUFFER);
    builder
}

/// How many encoded bytes one response stream may queue in HTTP/2 before
/// its body is polled no more (hyper's default is ~400 KiB). This is what a
/// client that reads slowly costs the server beyond its reader's buffer,
/// multiplied by every lagging live tail, so it is far below the default; a
/// stream's output keeps flowing at full speed with far less, since the
/// connection writes as it goes. It is not smaller still because a smaller
/// buffer costs every fast reader more CPU per entry (more, smaller rounds
/// between the stream and its connection). (measured: bench/RESULTS.md,
/// "After this run" and "Third session")
const SEND_BUFFER: usize = 64 * 1024;

/// How much request data one HTTP/2 connection may send ahead of what its
/// handlers have read (hyper's default is 1 MiB).
///
/// h2 closes a connection (GOAWAY ENHANCE_YOUR_CALM "too_many_data_frames")
/// when small DATA frames waiting unread cost more than half this window
/// (~250 B of budget per frame), so with 1 MiB a client pushing one-entry
/// requests has only a few thousand frames of slack while Push waits for
/// an fsync. Push reads ahead while it writes (see `protocols/logtap/`);
/// the larger window is headroom for scheduling hiccups and for many
/// streams pushing on one connection. It is also the most one connection
/// can make the server hold unread, so it stays modest: 8 MiB per
/// connection.
const CONNECTION_WINDOW: u32 = 8 << 20;

/// How much request data one HTTP/2 stream may send ahead of its handler
/// (hyper's default is 1 MiB): 2 MiB, so a single Push can have a good
/// share of the connection's window in flight, while a few streams are
/// needed to fill the connection.
const STREAM_WINDOW: u32 = 2 << 20;

/// Socket options for an accepted connection.
fn configure_socket(tcp: &TcpStream, config: &ServerConfig) {
    // Entries are small and must go out as soon as they are found.
    if let Err(error) = tcp.set_nodelay(true) {
        tracing::debug!(error = %error, "Could not set TCP_NODELAY.");
    }
    // HTTP/1.1 has no pings: TCP keep-alive finds peers that vanished while
    // a stream waits for entries.
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(config.keepalive_interval)
        .with_interval(config.keepalive_interval);
    if let Err(error) = socket2::SockRef::from(tcp).set_tcp_keepalive(&keepalive) {
        tracing::debug!(error = %error, "Could not set TCP keep-alive.");
    }
}

/// The hyper service of one connection: records the peer's address (for
/// handlers that want it, via axum's `ConnectInfo`) and the connection's
/// [`Quota`] (its share of stream slots and request bytes) and its
/// [`Unbuffered`] switch (set by a handler that turns the connection into
/// a WebSocket), and sends gRPC-Web
/// requests through tonic-web's translation, everything else straight to
/// the router.
fn connection_service(
    router: Router,
    port: Port,
    peer: SocketAddr,
    quota: Quota,
    unbuffered: Unbuffered,
) -> impl hyper::service::Service<
    ::http::Request<Incoming>,
    Response = Response,
    Error = std::convert::Infallible,
    Future = futures::future::BoxFuture<'static, Result<Response, std::convert::Infallible>>,
> {
    hyper::service::service_fn(move |mut request: ::http::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        request.extensions_mut().insert(quota.clone());
        request.extensions_mut().insert(unbuffered.clone());
        let router = router.clone();
        Box::pin(async move {
            if !port.serves(request.uri().path()) {
                return Ok(crate::error::unknown_route(
                    request.headers(),
                    request.uri().path(),
                ));
            }
            if content_type_starts_with(request.headers(), "application/grpc-web") {
                let response = tonic_web::GrpcWebLayer::new()
                    .layer(router)
                    .oneshot(request)
                    .await?;
                Ok(response.map(axum::body::Body::new))
            } else {
                router.oneshot(request).await
            }
        }) as futures::future::BoxFuture<'static, _>
    })
}
