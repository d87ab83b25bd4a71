//! Syslog over UDP (one message per datagram, RFC 5426) and TCP (RFC 6587:
//! octet counting or LF framing, detected per connection from its first
//! byte), each on its own port, off unless `--syslog-udp` /
//! `--syslog-tcp` names an address. When the server has TLS
//! (`--tls-cert`), the TCP listener speaks it too, with the same
//! certificate (RFC 5425, syslog over TLS): a sender that does not start
//! a TLS handshake is closed, so nothing crosses the network in clear text
//! by mistake. UDP stays plain (DTLS is not offered).
//!
//! Syslog is not HTTP, so this protocol has no `ROUTES` table: its
//! listeners are outside the HTTP router and its access rules (tokens,
//! origins). Bind them to an address only trusted senders reach.
//!
//! What a message becomes is the ingest crate's ([`logtap_ingest::syslog`]).
//! Every listener feeds one task that owns the one [`Batcher`]: a batch is
//! stored through [`ingest::append`] when full or 200 ms after its first
//! entry, so lines arrive promptly. Syslog has no acknowledgement: a
//! message is stored once its batch is durable, but the sender is never
//! told, and a batch the store refuses (a full disk, an entry over the
//! backend's limits) is logged and lost, as a relay would lose it.
//!
//! Bad input costs only itself: a datagram or frame that does not decode
//! (no `<PRI>`, a malformed RFC 5424 header) is dropped and logged, at most
//! one line per interval ([`LogThrottle`]), and the connection goes on.
//! Every message dropped is counted in
//! `logtap_ingest_refusals_total{protocol="syslog"}`, by reason. A
//! frame longer than `max_message_bytes`, or an octet count that is not a
//! number, closes the TCP connection, since where its next frame starts is
//! unknown; the frames before it are kept. TCP connections count against
//! `max_connections` with the HTTP ones. Shutdown stops the listeners and
//! connections, then the batcher stores what it holds before the store is
//! synced.

use crate::config::ServerConfig;
use crate::error::{ServeError, ServerError};
use crate::ingest::{self, now_nanos, Batcher, Protocol};
use crate::net::tls;
use crate::ops::log_throttle::LogThrottle;
use crate::stream::state::Shared;
use logtap_core::NewEntry;
use logtap_ingest::syslog::{self, Framing};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;

/// How long an entry waits for its batch to fill, as the HTTP push's
/// trickle flush: long enough to batch a burst, short enough to follow.
const FLUSH_AFTER: Duration = Duration::from_millis(200);

/// Entries in flight between the listeners and the batcher; a full queue
/// makes the readers wait, so a flood is slowed rather than buffered.
const QUEUE: usize = 8192;

/// The largest UDP payload.
const MAX_DATAGRAM: usize = 65_535;

/// The interval between two log lines about bad input.
const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Messages that did not decode.
static BAD_MESSAGES: LogThrottle = LogThrottle::new(LOG_INTERVAL);
/// Connections closed for a bad frame.
static BAD_FRAMES: LogThrottle = LogThrottle::new(LOG_INTERVAL);
/// Batches the store refused.
static REFUSED: LogThrottle = LogThrottle::new(LOG_INTERVAL);

/// The bound syslog sockets, before the server runs.
#[derive(Debug, Default)]
pub(crate) struct Listeners {
    /// UDP, when `--syslog-udp` was given.
    udp: Option<UdpSocket>,
    /// TCP, when `--syslog-tcp` was given.
    tcp: Option<TcpListener>,
}

/// The addresses the syslog listeners are bound to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyslogAddrs {
    /// The UDP listener's, when on.
    pub udp: Option<SocketAddr>,
    /// The TCP listener's, when on.
    pub tcp: Option<SocketAddr>,
}

/// Binds the listeners the configuration asks for.
pub(crate) async fn bind(config: &ServerConfig) -> Result<Listeners, ServerError> {
    let udp = match config.syslog_udp {
        Some(addr) => Some(
            UdpSocket::bind(addr)
                .await
                .map_err(|source| ServerError::Bind { addr, source })?,
        ),
        None => None,
    };
    let tcp = match config.syslog_tcp {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|source| ServerError::Bind { addr, source })?,
        ),
        None => None,
    };
    let listeners = Listeners { udp, tcp };
    let addrs = listeners.addrs();
    if addrs.udp.is_some() || addrs.tcp.is_some() {
        tracing::info!(udp = ?addrs.udp, tcp = ?addrs.tcp, "Listening for syslog.");
    }
    Ok(listeners)
}

impl Listeners {
    /// Where they are bound.
    pub(crate) fn addrs(&self) -> SyslogAddrs {
        SyslogAddrs {
            udp: self.udp.as_ref().and_then(|s| s.local_addr().ok()),
            tcp: self.tcp.as_ref().and_then(|s| s.local_addr().ok()),
        }
    }

    /// Starts the listeners and the batcher on `tracker`; they stop when
    /// `shared.shutdown` is cancelled, the batcher last, once it has stored
    /// what the others handed it.
    pub(crate) fn spawn(
        self,
        shared: &Shared,
        config: &ServerConfig,
        max_connections: &Arc<AtomicUsize>,
        tls: Option<TlsAcceptor>,
        tracker: &TaskTracker,
    ) {
        if self.udp.is_none() && self.tcp.is_none() {
            return;
        }
        let (sender, receiver) = mpsc::channel(QUEUE);
        tracker.spawn(store_batches(shared.clone(), receiver));
        let limit = config.max_message_bytes;
        if let Some(udp) = self.udp {
            tracker.spawn(serve_udp(udp, shared.clone(), sender.clone(), limit));
        }
        if let Some(tcp) = self.tcp {
            tracker.spawn(serve_tcp(
                tcp,
                shared.clone(),
                sender,
                limit,
                Arc::clone(max_connections),
                tls,
                tracker.clone(),
            ));
        }
    }
}

/// Decodes one message and queues it; a bad one is logged and dropped.
async fn queue(message: &[u8], peer: SocketAddr, shared: &Shared, sender: &mpsc::Sender<NewEntry>) {
    if message.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    match syslog::decode(message, now_nanos()) {
        // The batcher ends only after every sender is gone.
        Ok(entry) => drop(sender.send(entry).await),
        Err(error) => {
            shared
                .metrics
                .ingest_refused(Protocol::Syslog, "bad_input", 1);
            if let Some(suppressed) = BAD_MESSAGES.allow() {
                tracing::warn!(
                    peer = %peer,
                    error = %error,
                    dropped_since_last_line = suppressed,
                    "Dropped a syslog message that does not decode."
                );
            }
        }
    }
}

/// One message per datagram, until shutdown.
async fn serve_udp(udp: UdpSocket, shared: Shared, sender: mpsc::Sender<NewEntry>, limit: usize) {
    let mut buffer = vec![0; MAX_DATAGRAM.min(limit.saturating_add(1))];
    loop {
        let received = tokio::select! {
            () = shared.shutdown.cancelled() => return,
            received = udp.recv_from(&mut buffer) => received,
        };
        match received {
            Ok((length, peer)) if length > limit => {
                shared
                    .metrics
                    .ingest_refused(Protocol::Syslog, "too_large", 1);
                if let Some(suppressed) = BAD_MESSAGES.allow() {
                    tracing::warn!(peer = %peer, max_message_bytes = limit, dropped_since_last_line = suppressed, "Dropped a syslog datagram over max_message_bytes.");
                }
            }
            Ok((length, peer)) => queue(&buffer[..length], peer, &shared, &sender).await,
            // ICMP errors from earlier sends and the like: the socket goes on.
            Err(error) => tracing::debug!(error = %error, "A syslog UDP receive failed."),
        }
    }
}

/// Accepts TCP connections until shutdown.
async fn serve_tcp(
    listener: TcpListener,
    shared: Shared,
    sender: mpsc::Sender<NewEntry>,
    limit: usize,
    max_connections: Arc<AtomicUsize>,
    tls: Option<TlsAcceptor>,
    tracker: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            () = shared.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((tcp, peer)) => {
                let Some(counted) = shared
                    .metrics
                    .open_connection(max_connections.load(Ordering::Relaxed))
                else {
                    drop(tcp);
                    continue;
                };
                let shared = shared.clone();
                let sender = sender.clone();
                let tls = tls.clone();
                tracker.spawn(async move {
                    let _counted = counted;
                    let serve = async {
                        match tls {
                            None => serve_connection(tcp, peer, &shared, &sender, limit).await,
                            // The handshake runs here, bounded, so a slow
                            // sender never holds up accepting.
                            Some(acceptor) => {
                                if let Some(stream) = tls::accept(&acceptor, tcp).await {
                                    serve_connection(stream, peer, &shared, &sender, limit).await;
                                }
                            }
                        }
                    };
                    tokio::select! {
                        () = shared.shutdown.cancelled() => {}
                        () = serve => {}
                    }
                });
            }
            Err(error) => {
                tracing::warn!(error = %error, "Could not accept a syslog connection; retrying.");
                tokio::select! {
                    () = shared.shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        }
    }
}

/// Reads frames from one connection until it ends or breaks its framing.
async fn serve_connection(
    mut tcp: impl AsyncRead + Unpin,
    peer: SocketAddr,
    shared: &Shared,
    sender: &mpsc::Sender<NewEntry>,
    limit: usize,
) {
    let mut buffer = Vec::new();
    let mut framing = None;
    let mut chunk = vec![0; 64 << 10];
    loop {
        let read = match tcp.read(&mut chunk).await {
            Ok(read) => read,
            Err(error) => {
                tracing::debug!(peer = %peer, error = %error, "A syslog connection failed.");
                return;
            }
        };
        if read == 0 {
            // A sender may close without ending its last LF-framed message.
            if framing == Some(Framing::NonTransparent) && !buffer.is_empty() {
                queue(&buffer, peer, shared, sender).await;
            }
            return;
        }
        buffer.extend_from_slice(&chunk[..read]);
        let framing = *framing.get_or_insert_with(|| Framing::detect(buffer[0]));
        loop {
            match syslog::next_frame(&mut buffer, framing, limit) {
                Ok(Some(frame)) => queue(&frame, peer, shared, sender).await,
                Ok(None) => break,
                Err(error) => {
                    shared
                        .metrics
                        .ingest_refused(Protocol::Syslog, "bad_input", 1);
                    if let Some(suppressed) = BAD_FRAMES.allow() {
                        tracing::warn!(
                            peer = %peer,
                            error = %error,
                            closed_since_last_line = suppressed,
                            "Closed a syslog connection: its framing cannot be followed."
                        );
                    }
                    return;
                }
            }
        }
    }
}

/// Owns the one batcher: stores a batch when it is full, or
/// [`FLUSH_AFTER`] after its first entry; ends once every listener has.
async fn store_batches(shared: Shared, mut receiver: mpsc::Receiver<NewEntry>) {
    let mut batch = Batcher::new(shared.store.limits());
    let mut deadline = None;
    loop {
        let received = match deadline {
            Some(at) => tokio::select! {
                received = receiver.recv() => received,
                () = tokio::time::sleep_until(at) => {
                    flush(&shared, &mut batch).await;
                    deadline = None;
                    continue;
                }
            },
            None => receiver.recv().await,
        };
        let Some(entry) = received else {
            flush(&shared, &mut batch).await;
            return;
        };
        if let Err(error) = batch.add(entry) {
            let error = ServeError::Store(error);
            ingest::refused(&shared, Protocol::Syslog, &error, 1);
            if let Some(suppressed) = REFUSED.allow() {
                tracing::warn!(error = %error, refused_since_last_line = suppressed, "Dropped a syslog message the store cannot keep.");
            }
            continue;
        }
        if batch.is_full() {
            flush(&shared, &mut batch).await;
            deadline = None;
        } else if deadline.is_none() {
            deadline = Some(tokio::time::Instant::now() + FLUSH_AFTER);
        }
    }
}

/// Stores what the batch holds; a refusal is logged, and the batch lost.
async fn flush(shared: &Shared, batch: &mut Batcher) {
    if batch.is_empty() {
        return;
    }
    let entries = batch.take();
    let count = entries.len();
    if let Err(error) = ingest::append(shared, Protocol::Syslog, entries).await {
        ingest::refused(shared, Protocol::Syslog, &error, count as u64);
        if let Some(suppressed) = REFUSED.allow() {
            tracing::warn!(error = %error, entries = count, refused_since_last_line = suppressed, "The store refused a batch of syslog messages; they are lost.");
        }
    }
}
