//! `POST /api/v1/push`: NDJSON in, in the line format of `logtap push`, and
//! `{"stored":N,"last_cursor":C}` out.
//!
//! The body is read as it arrives and split into lines, which fill the one
//! batcher ([`Batcher`]); a full batch is stored through [`ingest::append`],
//! so a body of any size takes the memory of one batch and one line, and a
//! slow disk slows the client down instead of piling the body up in memory.
//! Complete lines wait at most 200 ms for their batch to fill, so a client
//! trickling lines sees them stored as it goes; a client that goes away
//! mid-body keeps its complete lines, and the unfinished last one is logged
//! as dropped.
//! Each line is read as `logtap push` reads it:
//!
//! - bytes that are not UTF-8 become U+FFFD (one stray byte never costs a
//!   line);
//! - a JSON object gives its fields, any other line is plain text with its
//!   level recognised ([`logtap_ingest::parse_line`]); blank lines are
//!   skipped; an entry without a time of its own gets the receive time;
//! - a JSON line the parser rejects (a timestamp that is not a time) is
//!   stored as plain text, the whole line as the message, as `logtap push`
//!   does, so no line is ever lost; the answer's `logtap-stored-as-text`
//!   header counts them;
//! - labels are sorted by name and a name given twice keeps its last value
//!   (the batcher's one normal form), which is what the same line pushed by
//!   `logtap push` (through gRPC's label map) becomes, so both ways store
//!   the same entry;
//! - an entry over the backend's limits (a label over 64 KiB) is refused
//!   with its line number (400) before it joins a batch: the lines before
//!   it are stored, it and the rest are not.
//!
//! A body with a `Content-Encoding` (gzip, ...), or a `Transfer-Encoding`
//! other than `chunked` (hyper undoes chunking but passes `gzip, chunked`
//! on as it came), is refused with 415 rather than stored as the
//! compressed bytes. So is a body whose `Content-Type` is not JSON or
//! NDJSON (`application/x-ndjson`, `application/json`, `application/jsonl`,
//! `*+json`, ...): form, multipart and `text/plain` bodies are what a web
//! page can send to another origin without the browser asking first, so
//! they are how a page would write into a server it should not. No
//! `Content-Type` at all is accepted (no browser sends a body without
//! one); curl's `--data-binary` says `application/x-www-form-urlencoded`
//! unless told `-H 'Content-Type: application/x-ndjson'`. Limits answer 413: a `Content-Length` over `max_push_body_bytes` before
//! anything is read, a body that grows past it while read, and a line
//! longer than `max_message_bytes` (the largest gRPC message, so no
//! transport takes an entry another would refuse). Batches stored before a
//! failure stay stored; the error says how many, as gRPC Push does, in the
//! body (`stored`, `last_cursor`) and in the `logtap-stored` /
//! `logtap-last-cursor` headers.

use super::Fallback;
use crate::error::{BodyCut, ServeError};
use crate::ingest::{self, now_nanos, Batcher, Protocol};
use crate::ops::log_throttle::LogThrottle;
use crate::ops::metrics::Limit;
use crate::stream::metadata::{self, RequestId};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use std::time::Duration;
use tokio::time::Instant;

/// The answer header that counts JSON lines stored as plain text.
pub const STORED_AS_TEXT: &str = "logtap-stored-as-text";

/// How long complete lines may wait in a batch that is not full: a client
/// that trickles lines (a shipper forwarding as it reads) sees them stored,
/// and readable, this soon rather than once a whole batch has arrived.
const TRICKLE_FLUSH: Duration = Duration::from_millis(200);

/// Pushes that ended before their body did (the client went away), logged
/// at most once per interval with a count, since a flaky client can end
/// many a second.
static CUT_SHORT: LogThrottle = LogThrottle::new(Duration::from_secs(10));

/// What a push has done so far.
#[derive(Debug, Default, Clone, Copy)]
struct Pushed {
    /// Entries stored.
    stored: u64,
    /// The cursor of the last entry stored (0 while none is).
    last_cursor: u64,
    /// JSON lines the parser rejected, stored as plain text.
    as_text: u64,
}

/// `POST /api/v1/push` with an NDJSON body.
pub async fn push(State(state): State<Fallback>, headers: HeaderMap, body: Body) -> Response {
    let request_id = RequestId::from_headers(&headers);
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > state.max_push_body_bytes) {
        state.shared.metrics.limit_hit(Limit::MessageSize);
        let error = ServeError::BodyTooLarge {
            limit: state.max_push_body_bytes,
        };
        return refuse(&state, &request_id, &error);
    }
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).trim().to_string())
        .filter(|value| !value.is_empty() && !value.eq_ignore_ascii_case("identity"));
    if let Some(encoding) = encoding.or_else(|| transfer_coding(&headers)) {
        return refuse(
            &state,
            &request_id,
            &ServeError::UnsupportedEncoding(encoding),
        );
    }
    if let Some(media_type) = headers.get(header::CONTENT_TYPE) {
        if !is_json_media_type(media_type.as_bytes()) {
            let media_type = String::from_utf8_lossy(media_type.as_bytes());
            let shown: String = media_type.chars().take(100).collect();
            return refuse(
                &state,
                &request_id,
                &ServeError::UnsupportedContentType(shown),
            );
        }
    }
    let mut pushed = Pushed::default();
    if let Err(cause) = ingest_body(&state, body, &mut pushed).await {
        if matches!(
            cause,
            ServeError::BodyTooLarge { .. } | ServeError::LineTooLong { .. }
        ) {
            state.shared.metrics.limit_hit(Limit::MessageSize);
        }
        let error = ServeError::PushFailed {
            stored: pushed.stored,
            last_cursor: pushed.last_cursor,
            cause: Box::new(cause),
        };
        return refuse(&state, &request_id, &error);
    }
    tracing::debug!(
        request_id = %request_id,
        stored = pushed.stored,
        last_cursor = pushed.last_cursor,
        stored_as_text = pushed.as_text,
        "An HTTP push was stored."
    );
    let mut response_headers = HeaderMap::new();
    response_headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response_headers.insert(STORED_AS_TEXT, HeaderValue::from(pushed.as_text));
    super::set_header(
        &mut response_headers,
        metadata::REQUEST_ID,
        request_id.as_str(),
    );
    let body = format!(
        "{{\"stored\":{},\"last_cursor\":{}}}",
        pushed.stored, pushed.last_cursor
    );
    (response_headers, body).into_response()
}

/// The first transfer coding of the request other than `chunked` (which
/// hyper has undone), if any: `Transfer-Encoding: gzip, chunked` still
/// carries gzip bytes.
fn transfer_coding(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .flat_map(|value| value.as_bytes().split(|&byte| byte == b','))
        .map(|coding| String::from_utf8_lossy(coding).trim().to_string())
        .find(|coding| {
            !coding.is_empty()
                && !coding.eq_ignore_ascii_case("chunked")
                && !coding.eq_ignore_ascii_case("identity")
        })
}

/// Whether a `Content-Type` names JSON or NDJSON (parameters such as
/// `charset` aside).
fn is_json_media_type(value: &[u8]) -> bool {
    let value = String::from_utf8_lossy(value);
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    matches!(
        essence.as_str(),
        "application/x-ndjson"
            | "application/ndjson"
            | "application/jsonl"
            | "application/x-jsonlines"
            | "application/jsonlines"
            | "application/json"
            | "application/json-seq"
    ) || essence
        .strip_prefix("application/")
        .is_some_and(|subtype| subtype.ends_with("+json"))
}

/// Reads the body line by line, storing a batch whenever one is full and
/// what is left at the end. `pushed` says what was stored, also on error.
async fn ingest_body(state: &Fallback, body: Body, pushed: &mut Pushed) -> Result<(), ServeError> {
    let shared = &state.shared;
    let mut chunks = body.into_data_stream();
    let mut batch = Batcher::new(shared.store.limits());
    // The start of a line whose end has not arrived yet.
    let mut partial: Vec<u8> = Vec::new();
    let mut line_number = 0u64;
    let mut total = 0u64;
    // When the oldest complete line not yet stored arrived.
    let mut waiting_since: Option<Instant> = None;
    loop {
        let flush_at = waiting_since.map(|since| since + TRICKLE_FLUSH);
        let chunk = tokio::select! {
            biased;
            () = shared.shutdown.cancelled() => return Err(ServeError::ShuttingDown),
            chunk = chunks.next() => chunk,
            () = sleep_until(flush_at) => {
                store(shared, &mut batch, pushed).await?;
                waiting_since = None;
                continue;
            }
        };
        let chunk = match chunk {
            None => break,
            Some(Ok(chunk)) => chunk,
            Some(Err(error)) => {
                // The body ended early: the client went away, or the
                // server cut it (`net::request_body`, which keeps its
                // reason). The complete lines are kept, as gRPC Push keeps
                // the requests that arrived whole; an unfinished last line
                // cannot be, and the log says so.
                store(shared, &mut batch, pushed).await?;
                if let Some(left_out) = CUT_SHORT.allow() {
                    tracing::info!(
                        stored = pushed.stored,
                        unfinished_line_bytes = partial.len(),
                        left_out,
                        "An HTTP push ended before its body did; its complete lines are stored, an unfinished last line is dropped."
                    );
                }
                return Err(BodyCut::from_body_error(error)
                    .unwrap_or_else(|error| ServeError::BadBody(error.to_string())));
            }
        };
        total = total.saturating_add(chunk.len() as u64);
        if total > state.max_push_body_bytes {
            return Err(ServeError::BodyTooLarge {
                limit: state.max_push_body_bytes,
            });
        }
        let mut rest = &chunk[..];
        while let Some(end) = memchr::memchr(b'\n', rest) {
            line_number += 1;
            let piece = &rest[..end];
            rest = &rest[end + 1..];
            if partial.len() + piece.len() > state.max_line_bytes {
                return Err(ServeError::LineTooLong {
                    line: line_number,
                    limit: state.max_line_bytes,
                });
            }
            let added = if partial.is_empty() {
                add_line(&mut batch, piece, line_number, pushed)
            } else {
                partial.extend_from_slice(piece);
                let added = add_line(&mut batch, &partial, line_number, pushed);
                partial.clear();
                added
            };
            if let Err(refused) = added {
                // The lines before a refused one are good: they are stored,
                // as the requests before a refused one are in gRPC Push.
                store(shared, &mut batch, pushed).await?;
                return Err(refused);
            }
            if batch.is_full() {
                store(shared, &mut batch, pushed).await?;
                waiting_since = None;
            } else if waiting_since.is_none() && !batch.is_empty() {
                waiting_since = Some(Instant::now());
            }
        }
        if partial.len() + rest.len() > state.max_line_bytes {
            return Err(ServeError::LineTooLong {
                line: line_number + 1,
                limit: state.max_line_bytes,
            });
        }
        partial.extend_from_slice(rest);
    }
    // A last line without a newline is a line all the same.
    if !partial.is_empty() {
        if let Err(refused) = add_line(&mut batch, &partial, line_number + 1, pushed) {
            store(shared, &mut batch, pushed).await?;
            return Err(refused);
        }
    }
    store(shared, &mut batch, pushed).await
}

/// Waits until `at`, or forever when there is nothing to wait for.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A push refused, counted in /metrics.
fn refuse(state: &Fallback, request_id: &RequestId, error: &ServeError) -> Response {
    ingest::refused(&state.shared, Protocol::Http, error, 1);
    super::error_response(request_id, error)
}

/// Parses line `number` (without its `\n`) into the batch.
fn add_line(
    batch: &mut Batcher,
    line: &[u8],
    number: u64,
    pushed: &mut Pushed,
) -> Result<(), ServeError> {
    let text = String::from_utf8_lossy(line);
    let received = now_nanos();
    let entry = match logtap_ingest::parse_line(&text, received) {
        Ok(entry) => entry,
        Err(error) => {
            tracing::debug!(error = %error, "A pushed JSON line was stored as plain text.");
            pushed.as_text += 1;
            logtap_ingest::parse_plain(&text, received)
        }
    };
    let Some(entry) = entry else {
        return Ok(());
    };
    batch.add(entry).map_err(|source| ServeError::LineRefused {
        line: number,
        source,
    })
}

/// Stores the batch (if it holds anything) and counts it.
async fn store(
    shared: &crate::stream::state::Shared,
    batch: &mut Batcher,
    pushed: &mut Pushed,
) -> Result<(), ServeError> {
    if batch.is_empty() {
        return Ok(());
    }
    let receipt = ingest::append(shared, Protocol::Http, batch.take()).await?;
    if receipt.count > 0 {
        pushed.stored += receipt.count;
        pushed.last_cursor = receipt.last_cursor;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use logtap_core::{EntryLimits, Level};

    /// The store's own limits, small where the test needs them.
    const LIMITS: EntryLimits = EntryLimits {
        max_message_bytes: u32::MAX as usize,
        max_labels: u16::MAX as usize,
        max_label_bytes: u16::MAX as usize,
        max_entry_bytes: 1 << 29,
    };

    #[test]
    fn lines_parse_like_logtap_push_and_rejected_json_is_kept_as_text() {
        let mut batch = Batcher::new(LIMITS);
        let mut pushed = Pushed::default();
        add_line(&mut batch, b"ERROR disk full", 1, &mut pushed).unwrap();
        add_line(&mut batch, b"   ", 2, &mut pushed).unwrap();
        add_line(
            &mut batch,
            br#"{"level":"warn","msg":"slow","ts":"yesterday"}"#,
            3,
            &mut pushed,
        )
        .unwrap();
        add_line(&mut batch, b"caf\xff\r", 4, &mut pushed).unwrap();
        let entries = batch.take();
        assert_eq!(entries.len(), 3);
        assert_eq!(pushed.as_text, 1);
        assert_eq!(entries[0].level, Level::Error);
        assert_eq!(
            entries[1].message,
            r#"{"level":"warn","msg":"slow","ts":"yesterday"}"#
        );
        assert_eq!(entries[2].message, "caf\u{fffd}");
    }

    #[test]
    fn a_line_the_backend_cannot_keep_is_refused_with_its_number() {
        let mut batch = Batcher::new(LIMITS);
        let mut pushed = Pushed::default();
        add_line(&mut batch, b"fine", 1, &mut pushed).unwrap();
        let line = format!("{{\"msg\":\"x\",\"k\":\"{}\"}}", "v".repeat(70_000));
        let error = add_line(&mut batch, line.as_bytes(), 2, &mut pushed).unwrap_err();
        assert!(
            matches!(error, ServeError::LineRefused { line: 2, .. }),
            "{error:?}"
        );
        assert_eq!(error.http_status(), axum::http::StatusCode::BAD_REQUEST);
        assert!(error.to_string().starts_with("line 2: "), "{error}");
        assert_eq!(batch.take().len(), 1, "the line before it stays batched");
    }
}
