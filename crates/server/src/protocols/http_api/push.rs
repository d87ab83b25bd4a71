//! `POST /api/v1/push`: NDJSON in, in the line format of `logtap push`, and
//! `{"stored":N,"last_cursor":C}` out.
//!
//! The body is read as it arrives and split into lines ([`Lines`]), which
//! fill the one batcher ([`Batcher`]) through [`streamed::ingest_body`]: a
//! full batch is stored through [`ingest::append`], so a body of any size
//! takes the memory of one batch and one line, and a slow disk slows the
//! client down instead of piling the body up in memory. Complete lines
//! wait at most 200 ms for their batch to fill, so a client trickling
//! lines sees them stored as it goes; a client that goes away mid-body
//! keeps its complete lines, and the unfinished last one is logged as
//! dropped.
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
use crate::error::ServeError;
use crate::ingest::streamed::{self, Pushed, Splitter};
use crate::ingest::{self, now_nanos, Batcher, Protocol};
use crate::ops::metrics::Limit;
use crate::stream::metadata::{self, RequestId};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

/// The answer header that counts JSON lines stored as plain text.
pub const STORED_AS_TEXT: &str = "logtap-stored-as-text";

/// `POST /api/v1/push` with an NDJSON body.
pub async fn push(State(state): State<Fallback>, headers: HeaderMap, body: Body) -> Response {
    let request_id = RequestId::from_headers(&headers);
    if streamed::declared_over(&headers, state.max_push_body_bytes) {
        state.shared.metrics.limit_hit(Limit::MessageSize);
        let error = ServeError::BodyTooLarge {
            limit: state.max_push_body_bytes,
        };
        return refuse(&state, &request_id, &error);
    }
    if let Some(encoding) = streamed::body_coding(&headers) {
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
    let mut lines = Lines::new(state.max_line_bytes);
    let result = streamed::ingest_body(
        &state.shared,
        Protocol::Http,
        body,
        state.max_push_body_bytes,
        &mut lines,
        &mut pushed,
    )
    .await;
    if let Err(cause) = result {
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
        stored_as_text = lines.as_text,
        "An HTTP push was stored."
    );
    let mut response_headers = HeaderMap::new();
    response_headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response_headers.insert(STORED_AS_TEXT, HeaderValue::from(lines.as_text));
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

/// A push body's lines, each read as `logtap push` reads it.
#[derive(Debug)]
struct Lines {
    /// The start of a line whose end has not arrived yet.
    partial: Vec<u8>,
    /// Lines completed so far: the number of the last one.
    number: u64,
    /// The longest line accepted, in bytes.
    max_line_bytes: usize,
    /// JSON lines the parser rejected, stored as plain text: the answer's
    /// [`STORED_AS_TEXT`].
    as_text: u64,
}

impl Lines {
    /// At the start of a body.
    fn new(max_line_bytes: usize) -> Lines {
        Lines {
            partial: Vec::new(),
            number: 0,
            max_line_bytes,
            as_text: 0,
        }
    }

    /// The error for line `line` over the limit.
    fn too_long(&self, line: u64) -> ServeError {
        ServeError::LineTooLong {
            line,
            limit: self.max_line_bytes,
        }
    }

    /// Parses line `number` (without its `\n`) into the batch.
    fn add_line(
        &mut self,
        batch: &mut Batcher,
        line: &[u8],
        number: u64,
    ) -> Result<(), ServeError> {
        let text = String::from_utf8_lossy(line);
        let received = now_nanos();
        let entry = match logtap_ingest::parse_line(&text, received) {
            Ok(entry) => entry,
            Err(error) => {
                tracing::debug!(error = %error, "A pushed JSON line was stored as plain text.");
                self.as_text += 1;
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
}

impl Splitter for Lines {
    fn next(&mut self, input: &mut &[u8], batch: &mut Batcher) -> Result<bool, ServeError> {
        if input.is_empty() {
            return Ok(false);
        }
        let Some(end) = memchr::memchr(b'\n', input) else {
            if self.partial.len() + input.len() > self.max_line_bytes {
                return Err(self.too_long(self.number + 1));
            }
            self.partial.extend_from_slice(input);
            *input = &[];
            return Ok(false);
        };
        self.number += 1;
        let piece = &input[..end];
        *input = &input[end + 1..];
        if self.partial.len() + piece.len() > self.max_line_bytes {
            return Err(self.too_long(self.number));
        }
        if self.partial.is_empty() {
            self.add_line(batch, piece, self.number)?;
        } else {
            let mut line = std::mem::take(&mut self.partial);
            line.extend_from_slice(piece);
            self.add_line(batch, &line, self.number)?;
        }
        Ok(true)
    }

    fn finish(&mut self, batch: &mut Batcher) -> Result<(), ServeError> {
        // A last line without a newline is a line all the same.
        if self.partial.is_empty() {
            return Ok(());
        }
        let line = std::mem::take(&mut self.partial);
        self.add_line(batch, &line, self.number + 1)
    }

    fn unfinished_bytes(&self) -> usize {
        self.partial.len()
    }
}

/// A push refused, counted in /metrics.
fn refuse(state: &Fallback, request_id: &RequestId, error: &ServeError) -> Response {
    ingest::refused(&state.shared, Protocol::Http, error, 1);
    super::error_response(request_id, error)
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
        let mut lines = Lines::new(1 << 20);
        lines.add_line(&mut batch, b"ERROR disk full", 1).unwrap();
        lines.add_line(&mut batch, b"   ", 2).unwrap();
        lines
            .add_line(
                &mut batch,
                br#"{"level":"warn","msg":"slow","ts":"yesterday"}"#,
                3,
            )
            .unwrap();
        lines.add_line(&mut batch, b"caf\xff\r", 4).unwrap();
        let entries = batch.take();
        assert_eq!(entries.len(), 3);
        assert_eq!(lines.as_text, 1);
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
        let mut lines = Lines::new(1 << 20);
        lines.add_line(&mut batch, b"fine", 1).unwrap();
        let line = format!("{{\"msg\":\"x\",\"k\":\"{}\"}}", "v".repeat(70_000));
        let error = lines.add_line(&mut batch, line.as_bytes(), 2).unwrap_err();
        assert!(
            matches!(error, ServeError::LineRefused { line: 2, .. }),
            "{error:?}"
        );
        assert_eq!(error.http_status(), axum::http::StatusCode::BAD_REQUEST);
        assert!(error.to_string().starts_with("line 2: "), "{error}");
        assert_eq!(batch.take().len(), 1, "the line before it stays batched");
    }
}
