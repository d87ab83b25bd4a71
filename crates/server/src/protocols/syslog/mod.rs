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
//! Every listener feeds one task that owns the one [`Batcher`], handing it
//! the entries of a whole read at a time (a TCP read's frames, the
//! datagrams waiting on the UDP socket), so the queue costs per read, not
//! per message. A batch is stored through [`ingest::append`] when full or
//! 200 ms after its first entry, so lines arrive promptly; while one batch
//! is being stored the next one fills (past full, up to 8 MiB), so reading
//! goes on during the fsync and a flood is stored in batches as large as
//! one fsync's worth of arrivals. Syslog has no acknowledgement: a
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
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;

/// How long an entry waits for its batch to fill, as the HTTP push's
/// trickle flush: long enough to batch a burst, short enough to follow.
const FLUSH_AFTER: Duration = Duration::from_millis(200);

/// Reads in flight between the listeners and the batcher (each the
/// entries of one TCP read of at most [`READ_BYTES`], or of at most
/// [`DATAGRAMS_PER_READ`] datagrams); a full queue makes the readers wait,
/// so a flood is slowed rather than buffered.
const QUEUE: usize = 256;

/// How much the batcher holds while a batch is being stored before it
/// stops taking reads: the bound on a batch, which grows past full only
/// while the one before it is written and synced.
const HOLD_BYTES: usize = 8 << 20;

/// The most a TCP read takes from the socket.
const READ_BYTES: usize = 64 << 10;

/// The most datagrams handed to the batcher as one read.
const DATAGRAMS_PER_READ: usize = 64;

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

/// Decodes one message into `entries`; a bad one is logged and dropped.
fn decode_into(
    message: &[u8],
    received: i64,
    peer: SocketAddr,
    shared: &Shared,
    entries: &mut Vec<NewEntry>,
) {
    if message.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    match syslog::decode(message, received) {
        Ok(entry) => entries.push(entry),
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

/// Hands a read's entries to the batcher; nothing when there are none.
async fn queue(sender: &mpsc::Sender<Vec<NewEntry>>, entries: Vec<NewEntry>) {
    if !entries.is_empty() {
        // The batcher ends only after every sender is gone.
        drop(sender.send(entries).await);
    }
}

/// One message per datagram, until shutdown: after a datagram, those
/// already waiting are taken too, up to [`DATAGRAMS_PER_READ`], and queued
/// together.
async fn serve_udp(
    udp: UdpSocket,
    shared: Shared,
    sender: mpsc::Sender<Vec<NewEntry>>,
    limit: usize,
) {
    let mut buffer = vec![0; MAX_DATAGRAM.min(limit.saturating_add(1))];
    loop {
        let received = tokio::select! {
            () = shared.shutdown.cancelled() => return,
            received = udp.recv_from(&mut buffer) => received,
        };
        let mut entries = Vec::new();
        let mut received = Some(received);
        let mut taken = 0;
        while let Some(result) = received.take() {
            taken += 1;
            match result {
                Ok((length, peer)) if length > limit => {
                    shared
                        .metrics
                        .ingest_refused(Protocol::Syslog, "too_large", 1);
                    if let Some(suppressed) = BAD_MESSAGES.allow() {
                        tracing::warn!(peer = %peer, max_message_bytes = limit, dropped_since_last_line = suppressed, "Dropped a syslog datagram over max_message_bytes.");
                    }
                }
                Ok((length, peer)) => {
                    decode_into(&buffer[..length], now_nanos(), peer, &shared, &mut entries)
                }
                // ICMP errors from earlier sends and the like: the socket goes on.
                Err(error) => tracing::debug!(error = %error, "A syslog UDP receive failed."),
            }
            if taken < DATAGRAMS_PER_READ {
                received = match udp.try_recv_from(&mut buffer) {
                    Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => None,
                    other => Some(other),
                };
            }
        }
        queue(&sender, entries).await;
    }
}

/// Accepts TCP connections until shutdown.
async fn serve_tcp(
    listener: TcpListener,
    shared: Shared,
    sender: mpsc::Sender<Vec<NewEntry>>,
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
/// The frames of a read are decoded where they lie in the buffer, which
/// keeps only the unfinished frame at its end for the next read.
async fn serve_connection(
    mut tcp: impl AsyncRead + Unpin,
    peer: SocketAddr,
    shared: &Shared,
    sender: &mpsc::Sender<Vec<NewEntry>>,
    limit: usize,
) {
    let mut buffer = Vec::new();
    let mut framing = None;
    loop {
        buffer.reserve(READ_BYTES);
        let read = match (&mut tcp)
            .take(READ_BYTES as u64)
            .read_buf(&mut buffer)
            .await
        {
            Ok(read) => read,
            Err(error) => {
                tracing::debug!(peer = %peer, error = %error, "A syslog connection failed.");
                return;
            }
        };
        let received = now_nanos();
        let mut entries = Vec::new();
        if read == 0 {
            // A sender may close without ending its last LF-framed message.
            if framing == Some(Framing::NonTransparent) && !buffer.is_empty() {
                decode_into(&buffer, received, peer, shared, &mut entries);
                queue(sender, entries).await;
            }
            return;
        }
        let framing = *framing.get_or_insert_with(|| Framing::detect(buffer[0]));
        let mut at = 0;
        loop {
            match syslog::next_frame(&buffer[at..], framing, limit) {
                Ok(Some((frame, used))) => {
                    decode_into(frame, received, peer, shared, &mut entries);
                    at += used;
                }
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
                    queue(sender, entries).await;
                    return;
                }
            }
        }
        buffer.drain(..at);
        queue(sender, entries).await;
    }
}

/// Owns the one batcher: stores a batch when it is full, or
/// [`FLUSH_AFTER`] after its first entry; ends once every listener has.
/// One batch is stored at a time, so batches stay in order; while one is
/// being written and synced, the next keeps filling past full, up to
/// [`HOLD_BYTES`], and goes as soon as the first is durable: a batch grows
/// to what arrives during one fsync, so a flood is stored at the speed of
/// the disk's bandwidth, not of its fsync latency.
async fn store_batches(shared: Shared, mut receiver: mpsc::Receiver<Vec<NewEntry>>) {
    let mut batch = Batcher::new(shared.store.limits());
    let mut storing: Option<JoinHandle<()>> = None;
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            biased;
            // The task stores and reports by itself; only its end matters.
            _ = async { storing.as_mut().expect("the branch runs only while storing").await },
                if storing.is_some() =>
            {
                storing = None;
                if batch.is_full() {
                    store(&shared, &mut batch, &mut storing).await;
                    deadline = None;
                }
            }
            () = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)),
                if deadline.is_some() =>
            {
                store(&shared, &mut batch, &mut storing).await;
                deadline = None;
            }
            received = receiver.recv(), if batch.bytes() < HOLD_BYTES => {
                let Some(entries) = received else {
                    store(&shared, &mut batch, &mut storing).await;
                    if let Some(task) = storing.take() {
                        drop(task.await);
                    }
                    return;
                };
                for entry in entries {
                    if let Err(error) = batch.add(entry) {
                        let error = ServeError::Store(error);
                        ingest::refused(&shared, Protocol::Syslog, &error, 1);
                        if let Some(suppressed) = REFUSED.allow() {
                            tracing::warn!(error = %error, refused_since_last_line = suppressed, "Dropped a syslog message the store cannot keep.");
                        }
                    }
                }
                if batch.is_full() && storing.is_none() {
                    store(&shared, &mut batch, &mut storing).await;
                    deadline = None;
                }
                if deadline.is_none() && !batch.is_empty() {
                    deadline = Some(tokio::time::Instant::now() + FLUSH_AFTER);
                }
            }
        }
    }
}

/// Starts storing what the batch holds, once the batch stored before it
/// is durable, so batches are stored in order; a refusal is logged, and
/// the batch lost.
async fn store(shared: &Shared, batch: &mut Batcher, storing: &mut Option<JoinHandle<()>>) {
    if batch.is_empty() {
        return;
    }
    if let Some(task) = storing.take() {
        drop(task.await);
    }
    let entries = batch.take();
    let shared = shared.clone();
    *storing = Some(tokio::spawn(async move {
        let count = entries.len();
        if let Err(error) = ingest::append(&shared, Protocol::Syslog, entries).await {
            ingest::refused(&shared, Protocol::Syslog, &error, count as u64);
            if let Some(suppressed) = REFUSED.allow() {
                tracing::warn!(error = %error, entries = count, refused_since_last_line = suppressed, "The store refused a batch of syslog messages; they are lost.");
            }
        }
    }));
}
