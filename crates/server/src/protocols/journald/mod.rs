//! journald's upload protocol, so `systemd-journal-upload
//! --url=http://HOST:PORT` ships a machine's journal to logtap as it
//! would to `systemd-journal-remote`.
//!
//! | Route | Access | Answer |
//! | --- | --- | --- |
//! | `POST /upload` | write | 202 `OK.` once every entry of the upload is durable |
//!
//! `systemd-journal-upload` sends one request per run of entries it has
//! (its whole backlog at first, then what arrives while it follows), with
//! `Content-Type: application/vnd.fdo.journal` and `Transfer-Encoding:
//! chunked`, and saves its cursor only after a 2xx answer; anything else
//! it logs as a failed upload and, run as a service, starts again from its
//! saved cursor. So the answer comes only once everything is stored, and a
//! refusal stores what came before it but is sent again: delivery is at
//! least once.
//!
//! What an entry becomes is the ingest crate's
//! ([`logtap_ingest::journald`]). The body is read as it arrives
//! ([`streamed::ingest_body`]): entries fill the one batcher and are stored
//! a batch at a time, so an upload of any length takes the memory of one
//! batch and one entry. Refusals, as plain text, with the statuses
//! `systemd-journal-remote` uses where it has one:
//!
//! - a `Content-Type` other than `application/vnd.fdo.journal` (or none):
//!   415, as `systemd-journal-remote` answers; a `Content-Encoding` (or a
//!   transfer coding other than chunked): 415, since the bytes would be
//!   read as the format;
//! - a body that is not the format, an unfinished binary field at its end,
//!   a bad `__REALTIME_TIMESTAMP`, an entry the backend cannot keep: 400;
//! - an entry over `max_message_bytes` (the largest gRPC message, so no
//!   transport takes an entry another refuses) or over 1,024 fields
//!   (journald's limit), a body over `max_push_body_bytes`: 413;
//! - a full disk, a shutdown, the request budget: 503 with `Retry-After`.
//!
//! The entries before a refused one are stored; the answer says how many.

use crate::config::ServerConfig;
use crate::error::ServeError;
use crate::ingest::streamed::{self, Pushed, Splitter};
use crate::ingest::{self, now_nanos, Batcher, Protocol};
use crate::ops::metrics::Limit;
use crate::security::access::{Access, Methods, Route};
use crate::stream::metadata::{RequestId, REQUEST_ID};
use crate::stream::state::Shared;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use logtap_ingest::journald::{Decoder, MEDIA_TYPE};
use tonic::Code;

/// What each route needs.
pub(crate) const ROUTES: [Route; 1] = [Route::exact("/upload", Methods::Post, Access::Write)];

/// What the upload route needs.
#[derive(Debug, Clone)]
pub struct Journald {
    /// The store, shutdown signal and metrics.
    pub shared: Shared,
    /// The largest body accepted, in bytes: what one upload may add.
    pub max_push_body_bytes: u64,
    /// The largest entry accepted, in bytes of the body.
    pub max_entry_bytes: usize,
}

/// `POST /upload`.
pub fn routes(shared: Shared, config: &ServerConfig) -> Router {
    let state = Journald {
        shared,
        max_push_body_bytes: config.max_push_body_bytes,
        max_entry_bytes: config.max_message_bytes,
    };
    Router::new()
        .route("/upload", post(upload))
        .with_state(state)
}

/// The export format read through the decoder, for [`streamed::ingest_body`].
struct Export {
    /// The decoder, holding an unfinished entry across chunks.
    decoder: Decoder,
}

impl Export {
    /// Adds a decoded entry to the batch, or refuses it with its number.
    fn add(&self, batch: &mut Batcher, entry: logtap_core::NewEntry) -> Result<(), ServeError> {
        // The decoder has counted the entry already.
        let number = self.decoder.entries().saturating_sub(1);
        batch.add(entry).map_err(|source| ServeError::EntryRefused {
            entry: usize::try_from(number).unwrap_or(usize::MAX),
            source,
        })
    }
}

impl Splitter for Export {
    fn next(&mut self, input: &mut &[u8], batch: &mut Batcher) -> Result<bool, ServeError> {
        match self.decoder.next_entry(input, now_nanos())? {
            Some(entry) => self.add(batch, entry).map(|()| true),
            None => Ok(false),
        }
    }

    fn finish(&mut self, batch: &mut Batcher) -> Result<(), ServeError> {
        match self.decoder.finish(now_nanos())? {
            Some(entry) => self.add(batch, entry),
            None => Ok(()),
        }
    }

    fn unfinished_bytes(&self) -> usize {
        self.decoder.unfinished_bytes()
    }
}

/// `POST /upload`: stores the upload's entries as they arrive, 202 once
/// all are durable.
async fn upload(State(state): State<Journald>, headers: HeaderMap, body: Body) -> Response {
    let request_id = RequestId::from_headers(&headers);
    let mut pushed = Pushed::default();
    match receive(&state, &headers, body, &mut pushed).await {
        Ok(()) => {
            tracing::debug!(
                request_id = %request_id,
                stored = pushed.stored,
                last_cursor = pushed.last_cursor,
                "A journald upload was stored."
            );
            answer(&request_id, StatusCode::ACCEPTED, "OK.\n".to_string())
        }
        Err(cause) => {
            if cause.http_status() == StatusCode::PAYLOAD_TOO_LARGE {
                state.shared.metrics.limit_hit(Limit::MessageSize);
            }
            let error = ServeError::PushFailed {
                stored: pushed.stored,
                last_cursor: pushed.last_cursor,
                cause: Box::new(cause),
            };
            ingest::refused(&state.shared, Protocol::Journald, &error, 1);
            refusal(&request_id, &error)
        }
    }
}

/// Checks the headers, then reads and stores the body.
async fn receive(
    state: &Journald,
    headers: &HeaderMap,
    body: Body,
    pushed: &mut Pushed,
) -> Result<(), ServeError> {
    if !is_export_format(headers) {
        let given = headers
            .get(header::CONTENT_TYPE)
            .map(|value| {
                String::from_utf8_lossy(value.as_bytes())
                    .chars()
                    .take(100)
                    .collect()
            })
            .unwrap_or_default();
        return Err(ServeError::UnsupportedJournaldContentType(given));
    }
    if let Some(coding) = streamed::body_coding(headers) {
        return Err(ServeError::UnsupportedEncoding(coding));
    }
    if streamed::declared_over(headers, state.max_push_body_bytes) {
        return Err(ServeError::BodyTooLarge {
            limit: state.max_push_body_bytes,
        });
    }
    let mut export = Export {
        decoder: Decoder::new(state.max_entry_bytes),
    };
    streamed::ingest_body(
        &state.shared,
        Protocol::Journald,
        body,
        state.max_push_body_bytes,
        &mut export,
        pushed,
    )
    .await
}

/// Whether the `Content-Type` is the export format's (parameters aside,
/// case-insensitive).
fn is_export_format(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).is_some_and(|value| {
        let text = String::from_utf8_lossy(value.as_bytes());
        text.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case(MEDIA_TYPE)
    })
}

/// A refusal as text, with the status `systemd-journal-upload` should see
/// ([`ServeError::journald_http_status`]); 503 carries `Retry-After`.
fn refusal(request_id: &RequestId, error: &ServeError) -> Response {
    if matches!(
        error.code(),
        Code::Internal | Code::DataLoss | Code::Unknown
    ) {
        tracing::error!(request_id = %request_id, error = %error, "A journald upload failed.");
    } else {
        tracing::debug!(request_id = %request_id, error = %error, "A journald upload was refused.");
    }
    let status = error.journald_http_status();
    let text = format!("{}\n", crate::error::clip_message(error.to_string()));
    let mut response = answer(request_id, status, text);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// A plain-text answer carrying the request id.
fn answer(request_id: &RequestId, status: StatusCode, text: String) -> Response {
    let mut response = (
        status,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        text,
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(request_id.as_str()) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_export_format_is_taken() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(value).unwrap());
            is_export_format(&headers)
        };
        assert!(with("application/vnd.fdo.journal"));
        assert!(with("Application/VND.fdo.Journal; charset=binary"));
        assert!(!with("application/json"));
        assert!(!with("text/plain"));
        assert!(!is_export_format(&HeaderMap::new()));
    }

    #[test]
    fn the_server_side_refusals_are_503_and_bad_input_is_400_or_413() {
        let io = |kind| logtap_core::StoreError::Io {
            context: "appending",
            path: "/data/x.seg".into(),
            source: std::io::Error::from(kind),
        };
        let full = ServeError::Store(io(std::io::ErrorKind::StorageFull));
        assert_eq!(full.journald_http_status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            ServeError::ShuttingDown.journald_http_status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        let bad = ServeError::JournaldBody(logtap_ingest::journald::JournaldError::NotAField {
            entry: 0,
            line: "x".into(),
        });
        assert_eq!(bad.journald_http_status(), StatusCode::BAD_REQUEST);
        let large = ServeError::JournaldBody(logtap_ingest::journald::JournaldError::TooLarge {
            entry: 0,
            limit: 1,
        });
        assert_eq!(large.journald_http_status(), StatusCode::PAYLOAD_TOO_LARGE);
        let response = refusal(&RequestId::from_headers(&HeaderMap::new()), &full);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }
}
