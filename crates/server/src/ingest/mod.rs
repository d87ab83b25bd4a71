//! Appending to the store from async code, for every protocol that takes
//! entries in (gRPC Push, the HTTP push route): the one [`batcher`] they
//! fill, [`append`], which hands a batch to the backend, and [`streamed`],
//! which reads a body of many entries as it arrives (NDJSON, journald).

pub(crate) mod batcher;
pub(crate) mod streamed;

/// Where the protocol labels of the ingest metrics are defined: `ops`, the
/// layer below, which counts them.
pub use crate::ops::protocol::Protocol;
pub(crate) use batcher::Batcher;

use crate::error::{BodyCut, ServeError};
use crate::stream::metadata::RequestId;
use crate::stream::state::Shared;
use axum::body::Body;
use futures::StreamExt;
use logtap_core::{AppendReceipt, NewEntry};
use std::time::{SystemTime, UNIX_EPOCH};

/// Now, as Unix epoch nanoseconds: the timestamp of an entry pushed without
/// one. Saturates far in the future; 0 for a clock set before 1970.
pub fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Counts `count` refusals of `protocol` for `error`'s reason (see
/// [`ServeError::refusal_reason`]). A request refused whole counts one
/// whatever it held (a body that does not decode holds no count); a record
/// refused alone while the rest is stored (OTLP's partial success, a bulk
/// item) counts one, as does a syslog message dropped.
pub fn refused(shared: &Shared, protocol: Protocol, error: &ServeError, count: u64) {
    shared
        .metrics
        .ingest_refused(protocol, error.refusal_reason(), count);
}

/// Appends one batch and returns once it is durable under the sync policy,
/// counting its entries under `protocol`.
///
/// The append writes and fsyncs, so it runs on tokio's blocking pool; the
/// store shares one fsync among concurrent batches, so many pushes at once
/// cost little more than one.
pub async fn append(
    shared: &Shared,
    protocol: Protocol,
    entries: Vec<NewEntry>,
) -> Result<AppendReceipt, ServeError> {
    if entries.is_empty() {
        return Ok(AppendReceipt {
            first_cursor: 0,
            last_cursor: 0,
            count: 0,
        });
    }
    let store = shared.store.clone();
    let receipt = tokio::task::spawn_blocking(move || store.append(&entries))
        .await
        .map_err(ServeError::join)?
        .map_err(|error| {
            // A full disk is a limit an operator must see in /metrics, not
            // only in the clients' errors.
            let error = ServeError::Store(error);
            shared.metrics.count_refusal(&error);
            error
        })?;
    shared.metrics.entries_stored.inc_by(receipt.count);
    shared.metrics.ingested(protocol, receipt.count);
    Ok(receipt)
}

/// A request body read whole, at most `limit` bytes of it: for protocols
/// whose body is one message decoded all or nothing (Loki, OTLP). Shutdown
/// ends the read; a body cut by the server (`net::request_body`) keeps its
/// reason.
pub(crate) async fn read_body(
    shared: &Shared,
    body: Body,
    limit: u64,
) -> Result<Vec<u8>, ServeError> {
    let mut chunks = body.into_data_stream();
    let mut raw = Vec::new();
    loop {
        let chunk = tokio::select! {
            biased;
            () = shared.shutdown.cancelled() => return Err(ServeError::ShuttingDown),
            chunk = chunks.next() => chunk,
        };
        match chunk {
            None => return Ok(raw),
            Some(Ok(chunk)) => {
                if (raw.len() + chunk.len()) as u64 > limit {
                    return Err(ServeError::BodyTooLarge { limit });
                }
                raw.extend_from_slice(&chunk);
            }
            Some(Err(error)) => {
                return Err(BodyCut::from_body_error(error)
                    .unwrap_or_else(|error| ServeError::BadBody(error.to_string())))
            }
        }
    }
}

/// A one-message push body read whole (see [`read_body`]), refused at once
/// when its `Content-Length` already says it is over `limit`.
pub(crate) async fn read_push_body(
    shared: &Shared,
    headers: &http::HeaderMap,
    body: Body,
    limit: u64,
) -> Result<Vec<u8>, ServeError> {
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(ServeError::BodyTooLarge { limit });
    }
    read_body(shared, body, limit).await
}

/// A request's `Content-Type`: its media type in lower case without
/// parameters (empty without the header), and the header as sent, clipped
/// to 100 characters, for an error that quotes it.
pub(crate) fn media_type(headers: &http::HeaderMap) -> (String, String) {
    let sent = headers
        .get(http::header::CONTENT_TYPE)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .unwrap_or_default();
    let essence = sent
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    (essence, sent.chars().take(100).collect())
}

/// Logs a push refused whole: an error when the server is at fault, at
/// debug level when the client is. `what` names the push ("A Loki push").
pub(crate) fn log_refusal(request_id: &RequestId, error: &ServeError, what: &str) {
    match error.code() {
        tonic::Code::Internal | tonic::Code::DataLoss | tonic::Code::Unknown => {
            tracing::error!(request_id = %request_id, error = %error, "{what} failed.");
        }
        _ => tracing::debug!(request_id = %request_id, error = %error, "{what} was refused."),
    }
}

/// The coding a request's `Content-Encoding` names, for the protocols that
/// decompress their one-message bodies (Loki, OTLP); one coding at most,
/// anything else is 415.
pub(crate) fn content_encoding(
    headers: &http::HeaderMap,
) -> Result<logtap_ingest::loki::Encoding, ServeError> {
    use logtap_ingest::loki::Encoding;
    let Some(value) = headers.get(http::header::CONTENT_ENCODING) else {
        return Ok(Encoding::Identity);
    };
    let text = String::from_utf8_lossy(value.as_bytes());
    match text.trim().to_ascii_lowercase().as_str() {
        "" | "identity" => Ok(Encoding::Identity),
        "gzip" | "x-gzip" => Ok(Encoding::Gzip),
        "deflate" => Ok(Encoding::Deflate),
        _ => Err(ServeError::UnsupportedEncoding(
            text.chars().take(100).collect(),
        )),
    }
}
