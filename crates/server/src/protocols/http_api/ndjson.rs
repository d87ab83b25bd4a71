//! `GET /api/v1/logs`: GetLogs as NDJSON, one entry a line.
//!
//! The body is the [`TailStream`](crate::stream::tail::TailStream) itself: each
//! entry becomes one chunk as soon as it is found, and hyper writes out
//! whatever it has whenever the stream has nothing ready, so `curl -N` shows
//! the first line at once and a follower sees live entries as they come.
//! The socket's write buffer is the backpressure: a client that reads
//! slowly is simply polled less often.
//!
//! The body holds entries only, so any NDJSON tool can read it. What gRPC
//! puts in trailers goes in HTTP trailers too (`logtap-sent`,
//! `logtap-next-cursor`, `logtap-crc32c`, `x-request-id`): always over
//! HTTP/2, and over HTTP/1.1 when the request says `TE: trailers`. A
//! stream that ends cleanly, the server's shutdown included, ends with the
//! final empty chunk; one that fails part-way (the store failed) is cut off
//! without it, so a client cannot take a truncated answer for a whole one.

use super::{error_response, json, parse_params, stream_headers, Endpoint, Fallback};
use crate::error::ServeError;
use crate::ingest::now_nanos;
use crate::net::quota::Quota;
use crate::stream::metadata::{self, RequestId};
use crate::stream::tail::{self, Item};
use axum::body::Body;
use axum::extract::{Extension, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use http_body::Frame;
use http_body_util::StreamBody;
use logtap_query::{Mode, Plan};

/// The error a body ends with when the stream failed part-way; hyper then
/// cuts the response off instead of ending it cleanly.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The trailers announced up front: HTTP/1.1 sends only the fields named in
/// the `Trailer` header.
const TRAILER_NAMES: &str = "x-request-id, logtap-sent, logtap-next-cursor, logtap-crc32c";

/// `GET /api/v1/logs?level=..&grep=..&follow=..`.
pub async fn logs(
    State(state): State<Fallback>,
    quota: Option<Extension<Quota>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let request_id = RequestId::from_headers(&headers);
    let query = parse_params(query.as_deref(), Endpoint::Logs, now_nanos())
        .and_then(|params| Plan::parse(Mode::History, params.raw));
    let query = match query {
        Ok(query) => query,
        Err(error) => return error_response(&request_id, &ServeError::Query(error)),
    };
    let opened = match tail::open(
        &state.shared,
        quota.as_deref(),
        request_id.clone(),
        query,
        json::line,
    )
    .await
    {
        Ok(opened) => opened,
        Err(error) => return error_response(&request_id, &error),
    };
    let trailer_id = request_id.clone();
    let frames = opened.stream.map(move |item| match item {
        Item::Entry(line) | Item::Entries(line, _) => Ok::<_, BoxError>(Frame::data(line)),
        Item::End(end) => match end.error {
            None => Ok(Frame::trailers(
                metadata::stream_trailers(&trailer_id, &end.summary).into_headers(),
            )),
            Some(error) => Err(Box::new(error) as BoxError),
        },
    });
    let mut response = Body::new(StreamBody::new(frames)).into_response();
    let response_headers = response.headers_mut();
    response_headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    stream_headers(response_headers, &request_id);
    if let Some(count) = opened.total_count {
        response_headers.insert(metadata::TOTAL_COUNT, HeaderValue::from(count));
    }
    response_headers.insert(header::TRAILER, HeaderValue::from_static(TRAILER_NAMES));
    response
}
