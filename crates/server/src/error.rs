//! Every error the server can meet, and the one place that decides what a
//! client sees for each: a gRPC code (for the gRPC and gRPC-Web services) or
//! an HTTP status (for the plain HTTP routes).

use http::StatusCode;
use logtap_core::{StoreError, UnknownLevel};
use logtap_ingest::journald::JournaldError;
use logtap_ingest::loki::LokiError;
use logtap_query::QueryError;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use tonic::metadata::MetadataMap;
use tonic::{Code, Status};

/// Why [`crate::Server::bind`] or [`crate::Server::run`] failed. These stop
/// the whole server, so they carry what an operator needs to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The store could not be opened (permissions, a bad directory, ...).
    #[error("could not open the store in {dir}: {source}")]
    OpenStore {
        /// The data directory.
        dir: PathBuf,
        /// What the store said.
        #[source]
        source: StoreError,
    },
    /// The node could not join its NATS JetStream cluster (`--nats`).
    #[error("could not join the NATS JetStream cluster")]
    Cluster(#[from] logtap_cluster::ClusterError),
    /// The listening socket could not be bound (address in use, ...).
    #[error("could not listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The final fsync at shutdown failed: what was acknowledged under a lazy
    /// sync policy may not be on disk.
    #[error("could not sync the store at shutdown: {0}")]
    Sync(#[source] StoreError),
    /// A blocking task the server relies on panicked or was cancelled.
    #[error("internal error: {0}")]
    Internal(String),
    /// `--tls-cert` / `--tls-key` cannot be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The token file cannot be read or has a malformed line.
    #[error(transparent)]
    Tokens(#[from] TokenFileError),
    /// A `--cors-origin` is not an origin.
    #[error(transparent)]
    Cors(#[from] CorsError),
    /// A non-loopback address without tokens that was not named explicitly.
    #[error(transparent)]
    Exposed(#[from] ExposureError),
}

/// Why TLS could not be set up. Every message names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    // The system's error is in the message and not a `source`: callers
    // print the whole chain, and it would show twice.
    #[error("could not read the TLS {what} file {}: {error}", path.display())]
    Read {
        /// "certificate" or "key".
        what: &'static str,
        /// The file as given.
        path: PathBuf,
        /// What the system said.
        error: io::Error,
    },
    /// The certificate file holds no usable PEM certificate.
    #[error("the TLS certificate file {} holds no PEM certificate (-----BEGIN CERTIFICATE-----){detail}", path.display())]
    NoCertificate {
        /// The file as given.
        path: PathBuf,
        /// What the PEM parser said, if anything, prefixed with ": ".
        detail: String,
    },
    /// The key file holds no usable PEM private key.
    #[error("the TLS key file {} holds no PEM private key (PKCS#8, RSA or EC){detail}", path.display())]
    NoKey {
        /// The file as given.
        path: PathBuf,
        /// What the PEM parser said, if anything, prefixed with ": ".
        detail: String,
    },
    /// rustls refused the pair: a key that does not match the certificate,
    /// an unsupported key type, a malformed certificate.
    #[error("the TLS key {} and certificate {} cannot be used together: {reason}", key.display(), cert.display())]
    Rejected {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        reason: String,
    },
}

/// Why the token file cannot be used. Messages name the file and line and
/// never repeat the line's text, which may hold a token.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    /// The file could not be read.
    // The system's error is in the message and not a `source`: callers
    // print the whole chain, and it would show twice.
    #[error("could not read the token file {}: {error}", path.display())]
    Read {
        /// The file as given.
        path: PathBuf,
        /// What the system said.
        error: std::io::Error,
    },
    /// A line is not `TOKEN SCOPE`.
    #[error("the token file {}, line {line}: {reason}", path.display())]
    Line {
        /// The file as given.
        path: PathBuf,
        /// The line number, from 1.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// Nothing but comments and blank lines: every request would be refused.
    #[error("the token file {} holds no token: add lines `TOKEN read`, `TOKEN write` or `TOKEN read,write`", path.display())]
    Empty {
        /// The file as given.
        path: PathBuf,
    },
}

/// A `--cors-origin` that is not an origin.
#[derive(Debug, thiserror::Error)]
#[error("--cors-origin {origin:?} is not an origin: {reason} (write scheme://host[:port], such as https://logs.example.com, or *)")]
pub struct CorsError {
    /// What was given.
    pub origin: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// A non-loopback address without tokens that the operator did not name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refusing to listen on {addr} without --auth-token-file: anyone who can reach it could read and push logs; pass --listen {addr} explicitly to accept that, or set up tokens")]
pub struct ExposureError {
    /// The address that would have been exposed.
    pub addr: SocketAddr,
}

/// Why one request failed. Each variant maps to one gRPC code in
/// [`ServeError::code`] and one HTTP status in [`ServeError::http_status`].
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The request's filters do not make sense (bad level, bad time range,
    /// bad pattern, ...).
    #[error(transparent)]
    Query(#[from] QueryError),
    /// An entry pushed with a level nobody knows.
    #[error("entry {index} of the batch: {source}")]
    UnknownLevel {
        /// The entry's position in its batch, from 0.
        index: usize,
        /// The level as sent.
        #[source]
        source: UnknownLevel,
    },
    /// The store refused or failed.
    #[error("{}", store_message(.0))]
    Store(#[from] StoreError),
    /// A message from the client could not be read (too large, malformed,
    /// or the client went away mid-request).
    #[error("{}", inbound_message(.0))]
    Inbound(Status),
    /// A Push failed part-way; earlier batches stayed stored.
    #[error("{cause}; {stored} entries were stored before this batch (last cursor {last_cursor}) and nothing of this batch")]
    PushFailed {
        /// Entries stored by the earlier batches of the same Push.
        stored: u64,
        /// The cursor of the last entry stored (0 when nothing was).
        last_cursor: u64,
        /// What went wrong with the failing batch.
        cause: Box<ServeError>,
    },
    /// An HTTP push body over `max_push_body_bytes`.
    #[error("the body is over the limit of {limit} bytes; split it into several pushes")]
    BodyTooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// One line of an HTTP push longer than the largest entry accepted.
    #[error("line {line} is over {limit} bytes, the longest line accepted")]
    LineTooLong {
        /// The line's number in the body, from 1.
        line: u64,
        /// The limit, in bytes.
        limit: usize,
    },
    /// One line of an HTTP push whose entry the backend cannot keep (a
    /// label over its limits): the lines before it are stored, it and the
    /// rest are not.
    #[error("line {line}: {source}")]
    LineRefused {
        /// The line's number in the body, from 1.
        line: u64,
        /// Why the backend refuses the entry.
        source: StoreError,
    },
    /// An HTTP push body in a content coding the server does not decode;
    /// storing it as text would store the compressed bytes.
    #[error("the body is {0}-encoded; send it uncompressed (no Content-Encoding, or identity)")]
    UnsupportedEncoding(String),
    /// An HTTP push body of a media type that is not JSON or NDJSON: the
    /// types a browser may send to another origin without asking first
    /// (form, multipart, text/plain) are how a web page writes into a
    /// server it should not.
    #[error("a push body is NDJSON: send Content-Type: application/x-ndjson (or application/json), not {0:?}")]
    UnsupportedContentType(String),
    /// A Loki push body of a media type it does not come in.
    #[error("a Loki push body is application/json or application/x-protobuf (snappy-compressed), not {0:?}")]
    UnsupportedLokiContentType(String),
    /// A Loki push body that cannot be decoded (malformed JSON, protobuf,
    /// snappy, gzip or deflate, invalid UTF-8, a time out of range), or
    /// that decompresses to more than the push body limit.
    #[error(transparent)]
    LokiBody(#[from] logtap_ingest::loki::LokiError),
    /// An OTLP logs body of a media type it does not come in.
    #[error("an OTLP logs body is application/x-protobuf or application/json, not {0:?}")]
    UnsupportedOtlpContentType(String),
    /// An OTLP logs body that cannot be decoded (malformed protobuf or
    /// JSON, invalid UTF-8, an id that is not hex).
    #[error(transparent)]
    OtlpBody(#[from] logtap_ingest::otlp::OtlpError),
    /// A journald upload of a media type other than the export format's.
    #[error("a journald upload is Content-Type: application/vnd.fdo.journal (the Journal Export Format, as systemd-journal-upload sends it), not {0:?}")]
    UnsupportedJournaldContentType(String),
    /// A journald upload whose body is not the export format (a line that
    /// is no field, a binary field cut short or with a wrong length, a bad
    /// `__REALTIME_TIMESTAMP`), or with an entry over the entry limit.
    #[error(transparent)]
    JournaldBody(#[from] logtap_ingest::journald::JournaldError),
    /// An Elasticsearch bulk body of a media type it does not come in.
    #[error("a bulk body is NDJSON: send Content-Type: application/x-ndjson (or application/json), not {0:?}")]
    UnsupportedBulkContentType(String),
    /// An Elasticsearch bulk body whose action lines cannot be read (a
    /// malformed or unknown action, no action at all): nothing of it is
    /// stored. A bad document fails only its own item, and is no error.
    #[error(transparent)]
    BulkBody(#[from] logtap_ingest::elasticsearch::BulkError),
    /// An entry of a push the backend cannot keep (a label over its
    /// limits): nothing of the push is stored.
    #[error("entry {entry} of the push: {source}")]
    EntryRefused {
        /// The entry's position in the push, from 0.
        entry: usize,
        /// Why the backend refuses it.
        source: StoreError,
    },
    /// An HTTP request body could not be read (the client went away, or
    /// its framing is broken).
    #[error("could not read the request body: {0}")]
    BadBody(String),
    /// A stream's text filter looked at more message bytes than
    /// `max_query_scan_bytes` allows before catching up.
    #[error("the query scanned {scanned} bytes of messages, over the limit of {limit} (max_query_scan_bytes); narrow it with a level, a time range or a cursor, or grep for a plain literal")]
    QueryTooCostly {
        /// Bytes the text filter looked at.
        scanned: u64,
        /// The limit, in bytes.
        limit: u64,
    },
    /// The server is shutting down and takes no new work.
    #[error("the server is shutting down; retry against another instance or once it is back")]
    ShuttingDown,
    /// The limit on reading streams open at once is reached.
    #[error("too many streams open (the limit is {limit}); retry later")]
    TooManyStreams {
        /// The limit, in streams.
        limit: usize,
    },
    /// The limit on streams open at once over one connection is reached.
    #[error("too many streams open on this connection (the limit is {limit} per connection); open more over another connection, or retry later")]
    TooManyStreamsOnConnection {
        /// The limit, in streams per connection.
        limit: usize,
    },
    /// The limit on streams open at once from one client address is reached.
    #[error("too many streams open from this client address (the limit is {limit} per address); retry later")]
    TooManyStreamsFromPeer {
        /// The limit, in streams per address.
        limit: usize,
    },
    /// Unfinished request messages (a gRPC message, an HTTP push line not
    /// yet complete) hold the whole budget of the server or of this
    /// connection: the request is cut and its bytes freed.
    #[error("the server holds too many unfinished request bytes ({scope} limit of {limit} bytes); retry later, or send smaller messages")]
    RequestBufferFull {
        /// Which budget is full: "the server's" or "this connection's".
        scope: &'static str,
        /// That budget, in bytes.
        limit: usize,
    },
    /// A request sent no bytes for the stall timeout while one of its
    /// messages was unfinished: it is cut, so it holds no memory forever.
    #[error("no bytes of an unfinished request message arrived for {}s; the request was cut", .after.as_secs_f64())]
    RequestStalled {
        /// The stall timeout.
        after: std::time::Duration,
    },
    /// A blocking task panicked or was cancelled; a bug, not the client's fault.
    #[error("internal error: {0}")]
    Internal(String),
}

/// A request body cut by the server (see `net::request_body`), as the
/// body's error: the reader of the body learns why. Its source is the
/// gRPC status the error maps to, which is what tonic looks for in a body
/// error's source chain; the HTTP routes take [`BodyCut::error`] back.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct BodyCut {
    /// Why the body was cut.
    pub error: ServeError,
    /// `error` as the gRPC status a client sees.
    #[source]
    status: Status,
}

impl BodyCut {
    /// The body error for `error`.
    pub fn new(error: ServeError) -> BodyCut {
        let status = error.to_status();
        BodyCut { error, status }
    }

    /// The server's own reason, when a body read failed because the server
    /// cut the body: `error` is what the body stream returned.
    pub fn from_body_error(error: axum::Error) -> Result<ServeError, axum::Error> {
        let inner = error.into_inner();
        match inner.downcast::<BodyCut>() {
            Ok(cut) => Ok(cut.error),
            Err(other) => Err(axum::Error::new(other)),
        }
    }
}

/// tonic reports an over-large message as OUT_OF_RANGE with this text; the
/// product contract says RESOURCE_EXHAUSTED, like every other gRPC server.
pub(crate) fn is_message_too_large(status: &Status) -> bool {
    status.code() == Code::OutOfRange && status.message().contains("message length too large")
}

fn inbound_message(status: &Status) -> String {
    if is_message_too_large(status) {
        format!("message too large: {}", status.message())
    } else {
        status.message().to_string()
    }
}

/// Rewrites tonic's OUT_OF_RANGE for an over-large request message into
/// RESOURCE_EXHAUSTED, and returns whether it did.
///
/// tonic checks `max_decoding_message_size` while decoding the request of a
/// unary or server-streaming call, before any handler runs, and answers
/// with a trailers-only response (the status in the headers). Push maps the
/// same error itself (see [`ServeError::code`]); this catches the others, so
/// every over-large message gets the contract's code.
pub fn remap_message_too_large<B>(response: &mut http::Response<B>) -> bool {
    let headers = response.headers_mut();
    let out_of_range = headers
        .get("grpc-status")
        .is_some_and(|code| code.as_bytes() == b"11");
    // grpc-message is percent-encoded, spaces included.
    let message = headers
        .get("grpc-message")
        .and_then(|message| message.to_str().ok())
        .filter(|message| message.contains("message%20length%20too%20large"))
        .map(str::to_string);
    let Some(message) = message.filter(|_| out_of_range) else {
        return false;
    };
    headers.insert("grpc-status", http::HeaderValue::from_static("8"));
    if let Ok(value) = http::HeaderValue::from_str(&format!("message%20too%20large:%20{message}")) {
        headers.insert("grpc-message", value);
    }
    true
}

/// The longest status message sent, in bytes.
const MAX_STATUS_MESSAGE: usize = 1024;

/// Cuts `text` to [`MAX_STATUS_MESSAGE`] bytes (on a character boundary),
/// saying how much was cut.
///
/// Messages quote what the client sent, and a gRPC status message travels
/// in an HTTP/2 header: a long pattern echoed back whole makes a header
/// that clients refuse (h2 resets the connection after too many
/// CONTINUATION frames; grpc-go's default header list limit is 16 KiB), so
/// the client would never learn why it was refused.
pub fn clip_message(mut text: String) -> String {
    if text.len() <= MAX_STATUS_MESSAGE {
        return text;
    }
    let mut cut = MAX_STATUS_MESSAGE;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let more = text.len() - cut;
    text.truncate(cut);
    text.push_str(&format!("... ({more} more bytes)"));
    text
}

/// The gRPC code for a store error.
pub fn store_error_code(error: &StoreError) -> Code {
    match error {
        // A resume point older than retention: the client lost entries and
        // must decide what to do; the message names the oldest cursor held.
        StoreError::CursorDeleted { .. } => Code::DataLoss,
        StoreError::Corrupt { .. } => Code::DataLoss,
        // A full disk clears once space returns, so the client may retry.
        error if error.is_disk_full() => Code::ResourceExhausted,
        // An entry the record format cannot hold will never be stored,
        // however often it is sent.
        StoreError::EntryTooLarge(_) => Code::InvalidArgument,
        StoreError::Io { .. } | StoreError::Poisoned(_) => Code::Internal,
        // Only at open, which a server turns into a startup error; a
        // backend handing it to a request is an operator's matter.
        StoreError::Locked { .. } => Code::Unavailable,
        // A replicated log that lost its quorum or leader for a moment: a
        // retried push is stored once (message ids), so retrying is safe.
        StoreError::Unavailable(_) => Code::Unavailable,
        // Only a bug in applying a replicated log could ask for it.
        StoreError::CursorBehind { .. } => Code::Internal,
        StoreError::Format { .. } => Code::FailedPrecondition,
    }
}

/// What a client is told of a store error. Damage found while reading
/// (a record that no longer checks, a file cut short under the server)
/// says that entries were lost, and not which file: the path is the
/// operator's, in the server's log (`error_status` and the stream's end log
/// the error's whole form).
fn store_message(error: &StoreError) -> String {
    match error {
        StoreError::Corrupt { reason, .. } => format!(
            "entries were lost: stored data became unreadable under the running server ({reason}); the server's log names the file"
        ),
        error => error.to_string(),
    }
}

/// The HTTP status that corresponds to a gRPC code, for the HTTP fallbacks.
pub fn http_status_for_code(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        // The entries the client asked for are gone for good.
        Code::DataLoss => StatusCode::GONE,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::Cancelled => StatusCode::REQUEST_TIMEOUT,
        Code::Unknown | Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl ServeError {
    /// The gRPC code a client sees.
    pub fn code(&self) -> Code {
        match self {
            ServeError::Query(_)
            | ServeError::UnknownLevel { .. }
            | ServeError::BadBody(_)
            | ServeError::UnsupportedEncoding(_)
            | ServeError::UnsupportedContentType(_)
            | ServeError::UnsupportedLokiContentType(_)
            | ServeError::UnsupportedOtlpContentType(_)
            | ServeError::UnsupportedJournaldContentType(_)
            | ServeError::UnsupportedBulkContentType(_)
            | ServeError::BulkBody(_)
            | ServeError::OtlpBody(_) => Code::InvalidArgument,
            ServeError::BodyTooLarge { .. }
            | ServeError::LineTooLong { .. }
            | ServeError::LokiBody(LokiError::TooLarge { .. })
            | ServeError::JournaldBody(
                JournaldError::TooLarge { .. } | JournaldError::TooManyFields { .. },
            ) => Code::ResourceExhausted,
            // Bytes that do not decode will not decode when sent again.
            ServeError::LokiBody(_) | ServeError::JournaldBody(_) => Code::InvalidArgument,
            ServeError::Store(error)
            | ServeError::LineRefused { source: error, .. }
            | ServeError::EntryRefused { source: error, .. } => store_error_code(error),
            ServeError::Inbound(status) if is_message_too_large(status) => Code::ResourceExhausted,
            ServeError::Inbound(status) => status.code(),
            ServeError::PushFailed { cause, .. } => cause.code(),
            ServeError::ShuttingDown => Code::Unavailable,
            ServeError::TooManyStreams { .. }
            | ServeError::QueryTooCostly { .. }
            | ServeError::TooManyStreamsOnConnection { .. }
            | ServeError::TooManyStreamsFromPeer { .. }
            | ServeError::RequestBufferFull { .. } => Code::ResourceExhausted,
            // Time ran out on the request. Not CANCELLED, which tonic
            // reads on a request body as the end of the stream, so the
            // handler would take a cut stream for a finished one.
            ServeError::RequestStalled { .. } => Code::DeadlineExceeded,
            ServeError::Internal(_) => Code::Internal,
        }
    }

    /// The HTTP status a plain-HTTP client sees. Finer than the gRPC code
    /// where HTTP has a better word: a full disk is 507, a too-large body 413.
    pub fn http_status(&self) -> StatusCode {
        match self {
            ServeError::Store(error) if error.is_disk_full() => StatusCode::INSUFFICIENT_STORAGE,
            ServeError::Inbound(status) if is_message_too_large(status) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            // A decompression bomb is as large as what it decompresses to.
            ServeError::BodyTooLarge { .. }
            | ServeError::LineTooLong { .. }
            | ServeError::LokiBody(LokiError::TooLarge { .. })
            | ServeError::JournaldBody(
                JournaldError::TooLarge { .. } | JournaldError::TooManyFields { .. },
            ) => StatusCode::PAYLOAD_TOO_LARGE,
            // The budget is the server's state, not this request's size or
            // this client's rate: the same request passes once others finish.
            ServeError::RequestBufferFull { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ServeError::RequestStalled { .. } => StatusCode::REQUEST_TIMEOUT,
            // RFC 7694: the answer to a content coding the server cannot
            // decode.
            ServeError::UnsupportedEncoding(_)
            | ServeError::UnsupportedContentType(_)
            | ServeError::UnsupportedLokiContentType(_)
            | ServeError::UnsupportedOtlpContentType(_)
            | ServeError::UnsupportedJournaldContentType(_)
            | ServeError::UnsupportedBulkContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ServeError::PushFailed { cause, .. } => cause.http_status(),
            error => http_status_for_code(error.code()),
        }
    }

    /// Why a push was refused, as the `reason` label of
    /// `logtap_ingest_refusals_total`: `bad_input` (it will not pass when
    /// sent again), `too_large`, `disk_full`, `unavailable` (the server's
    /// state: shutdown, the request budget), `limit` (another limit),
    /// `cut` (the client stopped sending) or `internal`.
    pub fn refusal_reason(&self) -> &'static str {
        match self {
            ServeError::Store(error)
            | ServeError::LineRefused { source: error, .. }
            | ServeError::EntryRefused { source: error, .. }
                if error.is_disk_full() =>
            {
                "disk_full"
            }
            ServeError::PushFailed { cause, .. } => cause.refusal_reason(),
            error if error.http_status() == StatusCode::PAYLOAD_TOO_LARGE => "too_large",
            error => match error.code() {
                Code::InvalidArgument | Code::OutOfRange | Code::FailedPrecondition => "bad_input",
                Code::Unavailable => "unavailable",
                Code::ResourceExhausted => "limit",
                Code::Cancelled | Code::DeadlineExceeded => "cut",
                _ => "internal",
            },
        }
    }

    /// The gRPC code an OTLP exporter sees: what the server may accept
    /// once it has room (a full disk, a shutdown, the request budget) is
    /// UNAVAILABLE, the code OTLP exporters retry; RESOURCE_EXHAUSTED they
    /// retry only with a retry hint, which a full disk does not send.
    pub fn otlp_code(&self) -> Code {
        match self {
            ServeError::Store(error) if error.is_disk_full() => Code::Unavailable,
            ServeError::RequestBufferFull { .. } | ServeError::ShuttingDown => Code::Unavailable,
            ServeError::PushFailed { cause, .. } => cause.otlp_code(),
            error => error.code(),
        }
    }

    /// The HTTP status an OTLP/HTTP exporter sees: 503 for what it should
    /// retry (see [`ServeError::otlp_code`]), where other HTTP routes
    /// answer a full disk with 507, which OTLP exporters drop.
    pub fn otlp_http_status(&self) -> StatusCode {
        match self.otlp_code() {
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => self.http_status(),
        }
    }

    /// The HTTP status `systemd-journal-upload` sees: 503 (with
    /// `Retry-After`) for what the server may accept once it has room, as
    /// OTLP/HTTP exporters see it ([`ServeError::otlp_http_status`]), since
    /// the uploader's service starts again from its saved cursor after any
    /// failure, and 503 is what says "later".
    pub fn journald_http_status(&self) -> StatusCode {
        self.otlp_http_status()
    }

    /// The HTTP status an Elasticsearch shipper sees for a whole bulk
    /// request: a full disk is 429, which Filebeat, Logstash, Vector, Fluent
    /// Bit and the Elasticsearch clients retry (507 some of them drop);
    /// a shutdown and the request budget stay 503, which they retry too.
    pub fn bulk_http_status(&self) -> StatusCode {
        match self {
            ServeError::Store(error) if error.is_disk_full() => StatusCode::TOO_MANY_REQUESTS,
            error => error.http_status(),
        }
    }

    /// The gRPC status an OTLP exporter sees, message included.
    pub fn to_otlp_status(&self) -> Status {
        Status::new(self.otlp_code(), clip_message(self.to_string()))
    }

    /// The gRPC status a client sees, message included (clipped, see
    /// `clip_message`).
    pub fn to_status(&self) -> Status {
        Status::new(self.code(), clip_message(self.to_string()))
    }

    /// Wraps a task join failure (a panic or a cancelled blocking task).
    pub(crate) fn join(error: tokio::task::JoinError) -> ServeError {
        ServeError::Internal(format!("a blocking task failed: {error}"))
    }
}

impl From<ServeError> for Status {
    fn from(error: ServeError) -> Status {
        error.to_status()
    }
}

/// The answer for a path no route serves, or one no protocol declared:
/// UNIMPLEMENTED for gRPC clients (as every gRPC server answers an unknown
/// method), 404 for everyone else; under `/loki/` with Loki's own body,
/// which Grafana's Loki data source takes as "not served here" and falls
/// back from (`detected_fields`, `patterns`, `v2alpha/tail`, ...).
pub(crate) fn unknown_route(headers: &http::HeaderMap, path: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    let is_grpc = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/grpc"));
    if is_grpc {
        let status = Status::unimplemented(format!(
            "unknown method {path}: this server serves logtap.v1.LogService and example.LogService"
        ));
        status.into_http::<axum::body::Body>()
    } else if path.starts_with("/loki/") {
        (StatusCode::NOT_FOUND, "404 page not found\n").into_response()
    } else {
        (StatusCode::NOT_FOUND, "not found").into_response()
    }
}

/// The final status of a server-streaming gRPC response, carrying the
/// stream's trailer metadata: OK, or the error's code and message. The
/// message is the error's whole text, not clipped as `to_status` clips it;
/// a message that cannot be a header value goes out as
/// [`without_message`].
pub(crate) fn stream_end_status(error: Option<&ServeError>, trailers: MetadataMap) -> Status {
    match error {
        None => Status::with_metadata(Code::Ok, "", trailers),
        Some(error) => Status::with_metadata(error.code(), error.to_string(), trailers),
    }
}

/// `status` without its message, for a message that cannot be a header
/// value: the code and metadata still go out.
pub(crate) fn without_message(status: &Status) -> Status {
    Status::with_metadata(status.code(), "", status.metadata().clone())
}

/// The answer to an unknown method of a service this server serves.
pub(crate) fn no_such_method(path: &str) -> Status {
    Status::unimplemented(format!("no such method: {path}"))
}

/// Why a request from a browser (or for a name the server does not go by)
/// was refused on a server without tokens, before any handler ran; see
/// `security/browser.rs`. PERMISSION_DENIED for gRPC and gRPC-Web, HTTP 403
/// for everyone else, with the message saying which option allows it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BrowserRefused {
    /// A `Host` (or `:authority`) that is not a loopback name nor an
    /// `--allowed-host`: what a page whose name was pointed at 127.0.0.1
    /// (DNS rebinding) sends.
    #[error("this server does not answer for the host name {host:?}: without tokens a loopback listener answers only localhost, 127.0.0.1 and [::1]; name others with --allowed-host")]
    Host {
        /// The name asked for, clipped.
        host: String,
    },
    /// A write from a page of another origin: a cross-site form or `fetch`.
    #[error("a push from the web page at {origin:?} is refused: without tokens only this server's own pages and --cors-origin origins may write")]
    CrossSite {
        /// The page's origin (or the `Sec-Fetch-Site` value), clipped.
        origin: String,
    },
}

impl BrowserRefused {
    /// A refusal for `host`, clipped to what is worth quoting back.
    pub(crate) fn host(host: &str) -> BrowserRefused {
        BrowserRefused::Host {
            host: clip_client_text(host),
        }
    }

    /// A refusal for a write from `origin`, clipped likewise.
    pub(crate) fn cross_site(origin: &str) -> BrowserRefused {
        BrowserRefused::CrossSite {
            origin: clip_client_text(origin),
        }
    }

    /// The answer: PERMISSION_DENIED for gRPC (`grpc`), else 403 with
    /// `{"error": ...}`.
    pub(crate) fn to_response(&self, grpc: bool) -> axum::response::Response {
        use axum::response::IntoResponse;
        if grpc {
            return Status::permission_denied(self.to_string()).into_http::<axum::body::Body>();
        }
        let mut body = String::from("{\"error\":");
        logtap_core::json::write_string(&mut body, &self.to_string());
        body.push_str("}\n");
        (
            StatusCode::FORBIDDEN,
            [(http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }
}

/// A client's own text quoted in an answer: at most ~100 bytes of it, cut
/// on a character boundary.
fn clip_client_text(text: &str) -> String {
    const MAX: usize = 100;
    if text.len() <= MAX {
        return text.to_string();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

/// Why the token check refused a request, before any handler ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// No valid token: UNAUTHENTICATED, HTTP 401.
    Unauthenticated,
    /// A valid token without the scope the route needs: PERMISSION_DENIED,
    /// HTTP 403.
    PermissionDenied,
}

impl Refused {
    /// The gRPC code.
    pub(crate) fn code(self) -> Code {
        match self {
            Refused::Unauthenticated => Code::Unauthenticated,
            Refused::PermissionDenied => Code::PermissionDenied,
        }
    }

    /// The HTTP status.
    pub(crate) fn http_status(self) -> StatusCode {
        match self {
            Refused::Unauthenticated => StatusCode::UNAUTHORIZED,
            Refused::PermissionDenied => StatusCode::FORBIDDEN,
        }
    }

    /// The gRPC status, with `message`.
    pub(crate) fn to_status(self, message: String) -> Status {
        Status::new(self.code(), message)
    }

    /// The HTTP answer: the status, the `WWW-Authenticate` challenge and a
    /// JSON body `{"error": ...}` whose string is `json_message`, already
    /// escaped.
    pub(crate) fn to_http(
        self,
        challenge: &'static str,
        json_message: &str,
    ) -> axum::response::Response {
        use axum::response::IntoResponse;
        use http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
        use http::HeaderValue;
        let body = format!("{{\"error\":{json_message}}}\n");
        (
            self.http_status(),
            [
                (WWW_AUTHENTICATE, HeaderValue::from_static(challenge)),
                (CONTENT_TYPE, HeaderValue::from_static("application/json")),
            ],
            body,
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn refusals_map_to_one_code_and_one_status() {
        assert_eq!(Refused::Unauthenticated.code(), Code::Unauthenticated);
        assert_eq!(
            Refused::Unauthenticated.http_status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(Refused::PermissionDenied.code(), Code::PermissionDenied);
        assert_eq!(
            Refused::PermissionDenied.http_status(),
            StatusCode::FORBIDDEN
        );
        let response = Refused::PermissionDenied.to_http("Bearer realm=\"logtap\"", "\"no\"");
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            response.headers()["www-authenticate"],
            "Bearer realm=\"logtap\""
        );
        assert_eq!(response.headers()["content-type"], "application/json");
    }

    use super::*;
    use std::io;

    fn io_error(kind: io::ErrorKind) -> StoreError {
        StoreError::Io {
            context: "appending",
            path: PathBuf::from("/data/00000000000000000001.seg"),
            source: io::Error::from(kind),
        }
    }

    #[test]
    fn store_errors_map_to_the_contract_codes_and_http_statuses() {
        let full = ServeError::Store(io_error(io::ErrorKind::StorageFull));
        assert_eq!(full.code(), Code::ResourceExhausted);
        assert_eq!(full.http_status(), StatusCode::INSUFFICIENT_STORAGE);

        let deleted = ServeError::Store(StoreError::CursorDeleted {
            requested: 3,
            oldest: 40,
        });
        assert_eq!(deleted.code(), Code::DataLoss);
        assert_eq!(deleted.http_status(), StatusCode::GONE);
        assert!(deleted.to_status().message().contains("40"));

        let other = ServeError::Store(io_error(io::ErrorKind::PermissionDenied));
        assert_eq!(other.code(), Code::Internal);
        assert_eq!(other.http_status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn a_failed_push_keeps_the_code_of_its_cause_and_says_what_was_stored() {
        let error = ServeError::PushFailed {
            stored: 5,
            last_cursor: 12,
            cause: Box::new(ServeError::Store(io_error(io::ErrorKind::StorageFull))),
        };
        assert_eq!(error.code(), Code::ResourceExhausted);
        assert_eq!(error.http_status(), StatusCode::INSUFFICIENT_STORAGE);
        assert!(error.to_string().contains("5 entries were stored"));
    }

    #[test]
    fn an_over_large_request_refused_by_tonic_becomes_resource_exhausted() {
        let status = Status::out_of_range(
            "Error, decoded message length too large: found 9 bytes, the limit is: 4 bytes",
        );
        let mut response = status.into_http::<()>();
        assert!(remap_message_too_large(&mut response));
        let back = Status::from_header_map(response.headers()).expect("a status");
        assert_eq!(back.code(), Code::ResourceExhausted);
        assert!(
            back.message().starts_with("message too large: Error"),
            "{back:?}"
        );
        // Anything else is left alone.
        let mut other = Status::out_of_range("past the end").into_http::<()>();
        assert!(!remap_message_too_large(&mut other));
    }

    #[test]
    fn status_messages_are_clipped_to_fit_in_a_header() {
        let error = ServeError::Internal("é".repeat(3000));
        let message = error.to_status().message().to_string();
        assert!(message.len() < 1100, "{}", message.len());
        assert!(message.ends_with("more bytes)"), "{message}");
        let short = ServeError::Internal("short".into());
        assert_eq!(short.to_status().message(), "internal error: short");
    }

    #[test]
    fn an_over_large_message_is_resource_exhausted() {
        let status = Status::out_of_range(
            "Error, decoded message length too large: found 9 bytes, the limit is: 4 bytes",
        );
        let error = ServeError::Inbound(status);
        assert_eq!(error.code(), Code::ResourceExhausted);
        assert_eq!(error.http_status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(error.to_string().starts_with("message too large"));
        assert_eq!(ServeError::ShuttingDown.code(), Code::Unavailable);
        assert_eq!(
            http_status_for_code(Code::Unimplemented),
            StatusCode::NOT_IMPLEMENTED
        );
    }
}
