//! `POST /loki/api/v1/push`: Grafana Loki's push API, so Promtail,
//! Grafana Alloy, Vector, Fluent Bit and Loki client libraries can ship to
//! logtap unchanged.
//!
//! What a push becomes is the ingest crate's ([`logtap_ingest::loki`]).
//! The body is read whole (it is one message, decoded all or nothing, and
//! counted against the request budget as it arrives, `net::request_body`),
//! then, on the blocking pool since a large body takes a while:
//!
//! 1. its `Content-Encoding` is undone: gzip, deflate (zlib or raw),
//!    identity; any other coding is 415;
//! 2. it is decoded by its `Content-Type`: `application/x-protobuf` (or
//!    `application/octet-stream`) is snappy-compressed protobuf, JSON types
//!    are JSON; without a `Content-Type`, a body whose first byte that is
//!    not white space is `{` is JSON and any other protobuf, as Loki
//!    itself guesses; other types (form, multipart, `text/plain`: what a
//!    web page can send to another origin without asking) are 415.
//!
//! The body, and what it decompresses to, are both bounded by
//! `max_push_body_bytes` (413), so a decompression bomb costs at most that
//! much memory. Anything that does not decode is 400 with the decoder's
//! reason, as is an entry the backend cannot keep; nothing of such a push
//! is stored. The entries go through the one [`Batcher`] and one
//! [`ingest::append`]: a push is stored entirely or not at all, and 204
//! comes only once it is durable. A full disk (507), a shutdown (503) or
//! the request budget (503) are answered with `Retry-After`, statuses
//! shippers retry. Errors are plain text, as Loki answers them.

use super::{plain_error, Loki};
use crate::error::ServeError;
use crate::ingest::{self, Batcher, Protocol};
use crate::ops::metrics::Limit;
use crate::stream::metadata::RequestId;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use logtap_core::NewEntry;
use logtap_ingest::loki::{self, Encoding};

/// Which decoder a body goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// `application/json` and friends.
    Json,
    /// `application/x-protobuf`: snappy-compressed `PushRequest`.
    Protobuf,
    /// No `Content-Type`: told from the body.
    Guess,
}

/// `POST /loki/api/v1/push`.
pub(super) async fn push(State(state): State<Loki>, headers: HeaderMap, body: Body) -> Response {
    let request_id = RequestId::from_headers(&headers);
    match receive(&state, &headers, body).await {
        Ok(stored) => {
            tracing::debug!(request_id = %request_id, stored, "A Loki push was stored.");
            let mut response = StatusCode::NO_CONTENT.into_response();
            request_id.insert_into_headers(response.headers_mut());
            response
        }
        Err(error) => {
            if matches!(
                error,
                ServeError::BodyTooLarge { .. }
                    | ServeError::LokiBody(loki::LokiError::TooLarge { .. })
            ) {
                state.shared.metrics.limit_hit(Limit::MessageSize);
            }
            ingest::refused(&state.shared, Protocol::Loki, &error, 1);
            error_response(&request_id, &error)
        }
    }
}

/// Reads, decodes and stores one push; the count of entries stored.
async fn receive(state: &Loki, headers: &HeaderMap, body: Body) -> Result<usize, ServeError> {
    let form = form(headers)?;
    let encoding = ingest::content_encoding(headers)?;
    let limit = state.max_push_body_bytes;
    let raw = ingest::read_push_body(&state.shared, headers, body, limit).await?;
    let entries = tokio::task::spawn_blocking(move || decode(&raw, encoding, form, limit))
        .await
        .map_err(ServeError::join)??;
    let mut batch = Batcher::new(state.shared.store.limits());
    let count = entries.len();
    for (index, entry) in entries.into_iter().enumerate() {
        batch
            .add(entry)
            .map_err(|source| ServeError::EntryRefused {
                entry: index,
                source,
            })?;
    }
    if state.shared.shutdown.is_cancelled() {
        return Err(ServeError::ShuttingDown);
    }
    ingest::append(&state.shared, Protocol::Loki, batch.take()).await?;
    Ok(count)
}

/// Undoes the coding and decodes: the entries, or why there are none.
fn decode(
    raw: &[u8],
    encoding: Encoding,
    form: Form,
    limit: u64,
) -> Result<Vec<NewEntry>, ServeError> {
    let body = loki::decompress(encoding, raw, limit)?;
    let json = match form {
        Form::Json => true,
        Form::Protobuf => false,
        // Loki's own rule: JSON is an object, anything else is protobuf.
        Form::Guess => body
            .iter()
            .find(|byte| !byte.is_ascii_whitespace())
            .is_some_and(|byte| *byte == b'{'),
    };
    Ok(if json {
        loki::decode_json(&body)?
    } else {
        loki::decode_protobuf(&body, limit)?
    })
}

/// The decoder a `Content-Type` asks for.
fn form(headers: &HeaderMap) -> Result<Form, ServeError> {
    let (essence, sent) = ingest::media_type(headers);
    match essence.as_str() {
        "application/x-protobuf" | "application/protobuf" | "application/octet-stream" => {
            Ok(Form::Protobuf)
        }
        "application/json" => Ok(Form::Json),
        "" => Ok(Form::Guess),
        other if other.starts_with("application/") && other.ends_with("+json") => Ok(Form::Json),
        _ => Err(ServeError::UnsupportedLokiContentType(sent)),
    }
}

/// A refusal as Loki answers one (see [`plain_error`]), logged as a
/// push's.
fn error_response(request_id: &RequestId, error: &ServeError) -> Response {
    ingest::log_refusal(request_id, error, "A Loki push");
    plain_error(request_id, error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::header;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                name.clone(),
                axum::http::HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn content_types_choose_the_decoder() {
        let form_of = |value: &str| form(&headers(&[(header::CONTENT_TYPE, value)]));
        assert_eq!(form(&HeaderMap::new()).unwrap(), Form::Guess);
        assert_eq!(form_of("application/x-protobuf").unwrap(), Form::Protobuf);
        assert_eq!(
            form_of("application/json; charset=utf-8").unwrap(),
            Form::Json
        );
        for refused in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ] {
            let error = form_of(refused).unwrap_err();
            assert_eq!(error.http_status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        }
    }

    #[test]
    fn an_unknown_coding_is_415_and_a_guess_reads_json_or_protobuf() {
        let error =
            ingest::content_encoding(&headers(&[(header::CONTENT_ENCODING, "br")])).unwrap_err();
        assert_eq!(error.http_status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let json = br#" {"streams":[{"stream":{},"values":[["1","x"]]}]}"#;
        assert_eq!(
            decode(json, Encoding::Identity, Form::Guess, 1 << 20)
                .unwrap()
                .len(),
            1
        );
        let error = decode(b"not json", Encoding::Identity, Form::Guess, 1 << 20).unwrap_err();
        assert_eq!(error.http_status(), StatusCode::BAD_REQUEST);
        assert!(error.to_string().contains("snappy"), "{error}");
    }
}
