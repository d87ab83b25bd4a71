//! `GET /api/v1/sse`: Server-Sent Events, for browsers (`EventSource`) and
//! proxies that pass nothing but plain HTTP/1.1.
//!
//! Each entry is one event, `id:` its cursor and `data:` its JSON form (one
//! line: JSON escapes every newline). The stream is live by default
//! (`follow=false` sends the history and ends). A browser that loses the
//! connection reconnects by itself with `Last-Event-ID`, and the stream
//! resumes exactly after it; the header wins over an `after` parameter,
//! because `EventSource` reconnects to the URL it was first given.
//!
//! How a stream ends:
//! - the history is sent (`follow=false`) or `limit` is reached: an `end`
//!   event whose `id` is the resume point and whose data is what gRPC puts
//!   in the trailers, `{"sent":N,"next_cursor":C,"crc32c":"xxxxxxxx"}`. A
//!   client should close on it; `EventSource` would otherwise reconnect;
//! - the server shuts down while following: an event with only an `id`,
//!   the resume point. Browsers take it as their `Last-Event-ID` without
//!   firing anything, so the reconnection that follows resumes past entries
//!   the filter skipped, not only past the last one sent;
//! - the store failed: an `error` event whose data is the message (and
//!   whose `id` is again the resume point).
//!
//! While nothing matches, a `: keepalive` comment goes out every
//! `sse_heartbeat` (15 s by default), so proxies that close quiet
//! connections keep this one open and a client that went away is noticed
//! at the next write. Responses say `Cache-Control: no-cache` and
//! `X-Accel-Buffering: no`; nothing on the server compresses them, which
//! would hold events back in the compressor.

use super::{error_response, json, parse_cursor, parse_params, stream_headers, Endpoint, Fallback};
use crate::error::ServeError;
use crate::ingest::now_nanos;
use crate::net::quota::Quota;
use crate::stream::metadata::RequestId;
use crate::stream::tail::{self, EndReason, Item};
use axum::extract::{Extension, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use logtap_query::{Mode, Plan};
use std::convert::Infallible;

/// The request header a reconnecting `EventSource` sends.
const LAST_EVENT_ID: &str = "last-event-id";

/// `GET /api/v1/sse?level=..&after=..`.
pub async fn sse(
    State(state): State<Fallback>,
    quota: Option<Extension<Quota>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let request_id = RequestId::from_headers(&headers);
    let params =
        parse_params(query.as_deref(), Endpoint::Sse, now_nanos()).and_then(|mut params| {
            if let Some(value) = headers.get(LAST_EVENT_ID) {
                let value = String::from_utf8_lossy(value.as_bytes());
                if let Some(cursor) = parse_cursor("Last-Event-ID", &value)? {
                    params.raw.after_cursor = Some(cursor);
                }
            }
            Ok(params)
        });
    let follow = params.as_ref().is_ok_and(|params| params.raw.follow);
    let query = match params.and_then(|params| Plan::parse(Mode::History, params.raw)) {
        Ok(query) => query,
        Err(error) => return error_response(&request_id, &ServeError::Query(error)),
    };
    let opened = match tail::open(
        &state.shared,
        quota.as_deref(),
        request_id.clone(),
        query,
        entry_event,
    )
    .await
    {
        Ok(opened) => opened,
        Err(error) => return error_response(&request_id, &error),
    };
    let events = opened.stream.filter_map(move |item| {
        let event = match item {
            Item::Entry(event) | Item::Entries(event, _) => Some(event),
            Item::End(end) => end_event(follow, end),
        };
        std::future::ready(event.map(Ok::<_, Infallible>))
    });
    let keep_alive = KeepAlive::new()
        .interval(state.sse_heartbeat)
        .text("keepalive");
    let mut response = Sse::new(events).keep_alive(keep_alive).into_response();
    stream_headers(response.headers_mut(), &request_id);
    response
}

/// One entry as an event.
fn entry_event(entry: &logtap_core::EntryRef<'_>) -> Event {
    Event::default()
        .id(entry.cursor.to_string())
        .data(json::entry(entry))
}

/// The last event of a stream, if it has one (see the module's docs).
fn end_event(follow: bool, end: tail::End) -> Option<Event> {
    let summary = end.summary;
    let resume = Event::default().id(summary.next_cursor.to_string());
    if let Some(error) = end.error {
        return Some(resume.event("error").data(error.to_string()));
    }
    if follow && end.reason == EndReason::Shutdown {
        return Some(resume);
    }
    Some(resume.event("end").data(format!(
        "{{\"sent\":{},\"next_cursor\":{},\"crc32c\":\"{}\"}}",
        summary.sent,
        summary.next_cursor,
        summary.crc.to_hex()
    )))
}
