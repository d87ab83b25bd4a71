//! logtap on NATS JetStream: several nodes share one replicated log.
//!
//! JetStream is the log of record. [`ClusterBackend::append`] publishes each
//! entry as one JetStream message (pipelined, each with a message id so a
//! publish retried after a leader change is stored once) and answers only
//! once JetStream acknowledged all of them and this node's local store has
//! applied them, so a client reads its own writes on the node it pushed to.
//! An entry's cursor *is* its JetStream stream sequence: the same on every
//! node, strictly increasing.
//!
//! Every node runs one ordered consumer that applies the stream, in order,
//! into its own [`Store`] at the stream's sequence numbers
//! ([`Store::append_at`]). Reads, counts, histograms and live fan-out all
//! come from that local copy, unchanged from the single node; a follow read
//! on a node that is behind waits for the local apply like any live reader.
//! After a restart a node resumes after its last applied sequence; a node
//! whose last applied sequence is older than anything the stream still
//! holds refuses to start ([`ClusterError::FellBehind`]) rather than leave a
//! silent gap.
//!
//! The backend interface is synchronous; this crate runs the NATS client and
//! the apply loop on a small runtime of its own, and `append` (called where
//! blocking is allowed) waits on it.

#![deny(missing_docs)]

mod apply;
mod publish;

use async_nats::jetstream::context::CreateStreamErrorKind;
use async_nats::jetstream::{self, stream};
use logtap_core::{
    AppendReceipt, Backend, CommitHook, EntryLimits, Level, LogReader, NewEntry, ReadOptions,
    StoreError, StoreStats,
};
use logtap_store::{Retention, Store};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long JetStream remembers a message id: a batch retried within it
/// is stored once.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// How long an answer from JetStream is awaited before the request is
/// sent again.
const JETSTREAM_WAIT: Duration = Duration::from_secs(2);

/// Publishes awaiting their ack, over all appends of this node.
const MAX_IN_FLIGHT: usize = 65_536;

/// How long a starting node waits for a NATS server to answer.
const CONNECT_WAIT: Duration = Duration::from_secs(10);

/// How a node reaches the NATS cluster and which stream it shares.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    /// Server URLs (`nats://host:4222`, `tls://host:4222`); the client
    /// fails over between them.
    pub urls: Vec<String>,
    /// The JetStream stream every node of this logtap cluster shares.
    pub stream: String,
    /// The stream's replicas, when this node creates it (R3 in production).
    pub replicas: usize,
    /// A NATS credentials file (a user JWT and its NKey seed).
    pub creds: Option<PathBuf>,
    /// CA certificates (PEM) to trust for the servers' TLS.
    pub tls_ca: Option<PathBuf>,
    /// A client certificate and key (PEM) for servers that require one.
    pub tls_client: Option<(PathBuf, PathBuf)>,
    /// How long an append keeps retrying a publish JetStream did not
    /// acknowledge (no leader, no quorum) before it fails as unavailable.
    pub publish_timeout: Duration,
}

impl NatsConfig {
    /// The defaults for `urls`: stream `logtap`, one replica.
    pub fn new(urls: Vec<String>) -> NatsConfig {
        NatsConfig {
            urls,
            stream: "logtap".to_string(),
            replicas: 1,
            creds: None,
            tls_ca: None,
            tls_client: None,
            publish_timeout: Duration::from_secs(30),
        }
    }

    /// The subject entries are published on: one per stream.
    fn subject(&self) -> String {
        format!("logtap.{}", self.stream)
    }
}

/// Why a node could not join the cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No NATS server could be reached, or it refused the credentials.
    #[error("could not connect to NATS at {urls}: {reason}")]
    Connect {
        /// The URLs tried.
        urls: String,
        /// What failed.
        reason: String,
    },
    /// The stream could not be created, read or updated.
    #[error("JetStream stream {stream}: {reason}")]
    Stream {
        /// The stream's name.
        stream: String,
        /// What failed.
        reason: String,
    },
    /// This node's store ends before the oldest message the stream still
    /// holds: the entries between were dropped by the stream's retention
    /// while the node was away, and starting would leave a silent gap.
    #[error(
        "this node applied the stream up to sequence {applied}, but stream {stream} now starts at sequence {first}: \
         the entries between were dropped by its retention while the node was away; \
         start the node with an empty data directory to take the stream from {first}"
    )]
    FellBehind {
        /// The stream's name.
        stream: String,
        /// The last sequence this node applied.
        applied: u64,
        /// The oldest sequence the stream holds.
        first: u64,
    },
    /// This node's store holds sequences the stream never had: the data
    /// directory belongs to another stream (or the stream was recreated).
    #[error(
        "this node applied stream {stream} up to sequence {applied}, but the stream ends at {last}: \
         the data directory belongs to another stream, or the stream was deleted and made again"
    )]
    AheadOfStream {
        /// The stream's name.
        stream: String,
        /// The last sequence this node applied.
        applied: u64,
        /// The newest sequence the stream holds.
        last: u64,
    },
    /// The runtime for the NATS client could not be started.
    #[error("could not start the NATS client's runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

/// A logtap backend whose log of record is a JetStream stream, and whose
/// reads come from this node's local copy of it.
pub struct ClusterBackend {
    store: Store,
    publisher: publish::Publisher,
    /// Set when the apply loop stopped for good: appends then fail at once
    /// rather than wait for an apply that will not come.
    apply_failed: Arc<AtomicBool>,
    /// The store's limits, narrowed to what one NATS message carries.
    limits: EntryLimits,
    /// Owns the NATS client's tasks; shut down in the background on drop,
    /// which may happen inside another runtime.
    runtime: Option<tokio::runtime::Runtime>,
}

impl ClusterBackend {
    /// Connects to NATS, creates the stream if it is missing (and makes its
    /// age and size limits follow `retention`), checks that `store` can
    /// continue from where the stream is, and starts applying the stream
    /// into it. Blocks: call it where blocking is allowed.
    pub fn open(
        config: NatsConfig,
        store: Store,
        retention: Retention,
    ) -> Result<ClusterBackend, ClusterError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("logtap-nats")
            .enable_all()
            .build()?;
        let (context, from, max_payload) = runtime.block_on(connect(&config, &store, retention))?;
        let apply_failed = Arc::new(AtomicBool::new(false));
        runtime.spawn(apply::run(
            context.clone(),
            config.clone(),
            store.clone(),
            from,
            Arc::clone(&apply_failed),
        ));
        Ok(ClusterBackend {
            publisher: publish::Publisher::new(context, config, runtime.handle().clone()),
            limits: limits_within(Backend::limits(&store), max_payload),
            store,
            apply_failed,
            runtime: Some(runtime),
        })
    }

    /// The local copy the stream is applied into.
    pub fn store(&self) -> &Store {
        &self.store
    }
}

impl Drop for ClusterBackend {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Connects, makes sure the stream exists with the wanted limits, and
/// finds the sequence the apply loop starts at.
async fn connect(
    config: &NatsConfig,
    store: &Store,
    retention: Retention,
) -> Result<(jetstream::Context, u64, usize), ClusterError> {
    let urls = config.urls.join(",");
    let connect_error = |reason: String| ClusterError::Connect {
        urls: urls.clone(),
        reason,
    };
    let mut options = async_nats::ConnectOptions::new()
        .name("logtap")
        .connection_timeout(CONNECT_WAIT)
        // Every request (stream info, consumer creation) that has not been
        // answered this long went to a leader that is gone; asking again
        // reaches the new one sooner than the default 10 s wait.
        .request_timeout(Some(JETSTREAM_WAIT));
    if let Some(creds) = &config.creds {
        options = options
            .credentials_file(creds)
            .await
            .map_err(|e| connect_error(format!("reading {}: {e}", creds.display())))?;
    }
    if let Some(ca) = &config.tls_ca {
        options = options.add_root_certificates(ca.clone()).require_tls(true);
    }
    if let Some((cert, key)) = &config.tls_client {
        options = options
            .add_client_certificate(cert.clone(), key.clone())
            .require_tls(true);
    }
    let addrs = config
        .urls
        .iter()
        .map(|url| {
            url.parse::<async_nats::ServerAddr>()
                .map_err(|e| connect_error(format!("{url} is not a NATS URL: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let client = options
        .connect(addrs)
        .await
        .map_err(|e| connect_error(e.to_string()))?;
    let max_payload = client.server_info().max_payload;
    let context = jetstream::context::ContextBuilder::new()
        // The same for a publish's ack (the message id keeps a publish
        // sent again single); the default is 5 s.
        .timeout(JETSTREAM_WAIT)
        // A publish whose ack is not yet awaited holds one of these: an
        // append sends its whole batch before awaiting, so with waiting
        // on, concurrent appends could each hold some and wait for the
        // rest. Without it, a publish past the limit fails and is sent
        // again after the acks of the others came in.
        .max_ack_inflight(MAX_IN_FLIGHT)
        .backpressure_on_inflight(false)
        .build(client);
    let stream_error = |reason: String| ClusterError::Stream {
        stream: config.stream.clone(),
        reason,
    };
    let wanted = stream::Config {
        name: config.stream.clone(),
        subjects: vec![config.subject()],
        storage: stream::StorageType::File,
        num_replicas: config.replicas,
        max_age: retention.max_age.unwrap_or_default(),
        max_bytes: retention
            .max_bytes
            .map_or(-1, |b| i64::try_from(b).unwrap_or(i64::MAX)),
        // JetStream refuses a duplicate window longer than the stream's
        // age limit; two minutes is its default.
        duplicate_window: match retention.max_age {
            Some(age) if !age.is_zero() => age.min(DUPLICATE_WINDOW),
            _ => DUPLICATE_WINDOW,
        },
        ..Default::default()
    };
    // A NATS cluster that is starting answers once it has elected its
    // JetStream meta leader: a node started with it waits a little.
    let started = std::time::Instant::now();
    let mut handle = loop {
        match context.get_or_create_stream(wanted.clone()).await {
            Ok(handle) => break handle,
            // A name NATS refuses, or an answer from JetStream, will not
            // change by asking again; no answer (no meta leader yet) may.
            Err(error)
                if !matches!(
                    error.kind(),
                    CreateStreamErrorKind::EmptyStreamName
                        | CreateStreamErrorKind::InvalidStreamName
                        | CreateStreamErrorKind::JetStream(_)
                ) && started.elapsed() < CONNECT_WAIT =>
            {
                tracing::info!(%error, "JetStream is not ready yet; asking again.");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(error) => return Err(stream_error(error.to_string())),
        }
    };
    let info = handle
        .info()
        .await
        .map_err(|e| stream_error(e.to_string()))?
        .clone();
    if info.config.max_age != wanted.max_age || info.config.max_bytes != wanted.max_bytes {
        // Retention is logtap's flag: the stream follows the node started last.
        let mut config = info.config.clone();
        config.max_age = wanted.max_age;
        config.max_bytes = wanted.max_bytes;
        config.duplicate_window = wanted.duplicate_window;
        context
            .update_stream(config)
            .await
            .map_err(|e| stream_error(format!("updating its retention: {e}")))?;
    }
    let state = &info.state;
    let applied = store.last_cursor();
    if applied > state.last_sequence {
        return Err(ClusterError::AheadOfStream {
            stream: config.stream.clone(),
            applied,
            last: state.last_sequence,
        });
    }
    if applied > 0 && applied + 1 < state.first_sequence {
        return Err(ClusterError::FellBehind {
            stream: config.stream.clone(),
            applied,
            first: state.first_sequence,
        });
    }
    let from = (applied + 1).max(state.first_sequence);
    tracing::info!(
        stream = %config.stream,
        applied,
        first = state.first_sequence,
        last = state.last_sequence,
        "Joined the JetStream stream; applying it from sequence {from}."
    );
    Ok((context, from, max_payload))
}

/// `store`'s limits, narrowed so that an entry's record and its message
/// headers fit in one NATS message of `max_payload` bytes: an entry too
/// large for NATS is refused like one too large for the store, before
/// anything of its batch is published.
fn limits_within(store: EntryLimits, max_payload: usize) -> EntryLimits {
    // The record's framing and fixed fields, and the message id header.
    const OVERHEAD: usize = 256;
    let most = max_payload.saturating_sub(OVERHEAD);
    EntryLimits {
        max_message_bytes: store.max_message_bytes.min(most),
        max_entry_bytes: store.max_entry_bytes.min(most),
        ..store
    }
}

impl Backend for ClusterBackend {
    fn append(&self, entries: &[NewEntry]) -> Result<AppendReceipt, StoreError> {
        if entries.is_empty() {
            return Ok(AppendReceipt::default());
        }
        // All or nothing: an entry NATS cannot carry fails the batch before
        // any of it is published.
        for entry in entries {
            self.limits.check(entry)?;
        }
        let sequences = self.publisher.publish(entries)?;
        let first_cursor = sequences.iter().copied().min().unwrap_or(0);
        let last_cursor = sequences.iter().copied().max().unwrap_or(0);
        // Read-your-writes: answer once this node's copy holds the batch.
        let deadline = std::time::Instant::now() + self.publisher.timeout();
        while self.store.last_cursor() < last_cursor {
            if self.apply_failed.load(Ordering::Acquire) {
                return Err(StoreError::Unavailable(
                    "this node stopped applying the stream; its log says why".to_string(),
                ));
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(StoreError::Unavailable(format!(
                    "JetStream stored the batch (up to sequence {last_cursor}) but this node has applied only up to {} so far",
                    self.store.last_cursor()
                )));
            }
            self.store
                .wait_for(last_cursor - 1, left.min(Duration::from_millis(200)));
        }
        Ok(AppendReceipt {
            first_cursor,
            last_cursor,
            count: entries.len() as u64,
        })
    }

    fn reader(&self, options: ReadOptions) -> Result<Box<dyn LogReader>, StoreError> {
        Backend::reader(&self.store, options)
    }

    fn count(&self, options: &ReadOptions) -> Result<u64, StoreError> {
        Backend::count(&self.store, options)
    }

    fn histogram(
        &self,
        options: &ReadOptions,
        edges: &[i64],
    ) -> Result<Vec<[u64; Level::COUNT]>, StoreError> {
        Backend::histogram(&self.store, options, edges)
    }

    fn last_cursor(&self) -> u64 {
        self.store.last_cursor()
    }

    fn oldest_cursor(&self) -> u64 {
        self.store.oldest_cursor()
    }

    fn wait_for(&self, cursor: u64, timeout: Duration) -> u64 {
        self.store.wait_for(cursor, timeout)
    }

    fn on_commit(&self, hook: CommitHook) {
        Backend::on_commit(&self.store, hook)
    }

    fn sync(&self) -> Result<(), StoreError> {
        self.store.sync()
    }

    fn enforce_retention(&self) {
        self.store.enforce_retention()
    }

    fn stats(&self) -> StoreStats {
        self.store.stats()
    }

    fn limits(&self) -> EntryLimits {
        self.limits
    }
}
