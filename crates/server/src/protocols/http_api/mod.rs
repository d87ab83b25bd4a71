//! The plain HTTP API (once called the fallbacks): the same streams as gRPC, for places where HTTP/2 or
//! gRPC cannot pass (proxies, old clients, curl, a browser without
//! gRPC-Web).
//!
//! | Route | Module | Body |
//! | --- | --- | --- |
//! | `GET /api/v1/logs` | [`ndjson`] | NDJSON, one entry a line, streamed as found |
//! | `GET /api/v1/poll` | [`poll`] | `{"entries":[...],"next_cursor":N}`, waiting up to `wait` |
//! | `GET /api/v1/sse` | [`sse`] | Server-Sent Events, `id:` the cursor, `data:` the entry |
//! | `POST /api/v1/push` | [`push`] | NDJSON in, `{"stored":N,"last_cursor":C}` out |
//!
//! Entries take one JSON form everywhere ([`json`]). The reading routes take
//! the query parameters parsed here, which mirror the gRPC `LogRequest`, and
//! go through the same [`Plan::parse`](logtap_query::Plan::parse) and
//! [`tail::open`](crate::stream::tail::open) as gRPC, so they accept and refuse the
//! same things and count in the same metrics. Errors answer with the status
//! from [`ServeError::http_status`] and a body `{"error":"..."}`.

pub(crate) mod json;
pub(crate) mod ndjson;
pub(crate) mod poll;
pub(crate) mod push;
pub(crate) mod sse;

use crate::config::ServerConfig;
use crate::error::ServeError;
use crate::security::access::{Access, Methods, Route};
use crate::stream::metadata::{self, RequestId};
use crate::stream::state::Shared;
use axum::http::header::IntoHeaderName;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use logtap_query::{QueryError, RawQuery};
use std::collections::HashSet;
use std::time::Duration;
use tonic::Code;

/// What the fallback routes share: the server's handles and the settings
/// that only HTTP has.
#[derive(Debug, Clone)]
pub struct Fallback {
    /// The store, live notifications, shutdown signal and metrics.
    pub shared: Shared,
    /// How often an idle SSE stream writes a keep-alive comment.
    pub sse_heartbeat: Duration,
    /// The largest push body accepted, in bytes.
    pub max_push_body_bytes: u64,
    /// The longest line a push accepts, in bytes: the same bound as a gRPC
    /// message, so no transport takes an entry another one would refuse.
    pub max_line_bytes: usize,
}

/// What each route needs. Only the reading routes a browser's
/// `EventSource` or a plain page poll reaches take `?access_token=`.
pub(crate) const ROUTES: [Route; 4] = [
    Route::exact("/api/v1/logs", Methods::Get, Access::Read),
    Route::exact("/api/v1/poll", Methods::Get, Access::Read).with_query_token(),
    Route::exact("/api/v1/sse", Methods::Get, Access::Read).with_query_token(),
    Route::exact("/api/v1/push", Methods::Post, Access::Write),
];

/// `/api/v1/logs`, `/api/v1/poll`, `/api/v1/sse` and `/api/v1/push`.
pub fn routes(shared: Shared, config: &ServerConfig) -> Router {
    let state = Fallback {
        shared,
        sse_heartbeat: config.sse_heartbeat,
        max_push_body_bytes: config.max_push_body_bytes,
        max_line_bytes: config.max_message_bytes,
    };
    Router::new()
        .route("/api/v1/logs", get(ndjson::logs))
        .route("/api/v1/poll", get(poll::poll))
        .route("/api/v1/sse", get(sse::sse))
        .route("/api/v1/push", post(push::push))
        .with_state(state)
}

/// Which reading route a query string is for: they take slightly different
/// parameters and defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET /api/v1/logs`: history, live with `follow`.
    Logs,
    /// `GET /api/v1/sse`: live by default.
    Sse,
    /// `GET /api/v1/poll`: pages after a cursor, waiting by default.
    Poll,
}

impl Endpoint {
    /// The parameters the endpoint takes, for the unknown-parameter message.
    fn known(self) -> &'static str {
        match self {
            Endpoint::Logs | Endpoint::Sse => {
                "query, level, grep, regex, ignore_case, label (name=value, repeatable), since, \
                 until, after, limit, reverse, follow"
            }
            Endpoint::Poll => {
                "query, level, grep, regex, ignore_case, label (name=value, repeatable), since, \
                 until, after, limit, wait, follow"
            }
        }
    }

    /// Whether the stream goes on live when the client does not say.
    fn default_follow(self) -> bool {
        match self {
            Endpoint::Logs => false,
            Endpoint::Sse | Endpoint::Poll => true,
        }
    }
}

/// A reading route's query string, checked for form but not yet for
/// meaning (that is [`Plan::parse`](logtap_query::Plan::parse)'s job).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    /// The filters, as the gRPC request would carry them.
    pub raw: RawQuery,
    /// `wait` (poll only): how long to wait for entries when none match yet.
    pub wait: Option<Duration>,
}

/// Reads a query string. Times (`since`, `until`) are
/// [`logtap_ingest::parse_time`] forms: RFC 3339, a date, Unix epoch numbers
/// (the unit told by magnitude, so nanoseconds from 1973 on read as
/// nanoseconds), a duration back from `now_ns`, or `now`. Parameters whose
/// name starts with `_` are ignored, so cache-busting (`_=1714564800`) works.
pub fn parse_params(
    query: Option<&str>,
    endpoint: Endpoint,
    now_ns: i64,
) -> Result<Params, QueryError> {
    let mut params = Params::default();
    params.raw.follow = endpoint.default_follow();
    let mut seen = HashSet::new();
    for (name, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let name = name.as_ref();
        if name.starts_with('_') || (name.is_empty() && value.is_empty()) {
            continue;
        }
        if name != "label" && !seen.insert(name.to_string()) {
            return Err(bad(name, "given more than once; give it once"));
        }
        let value = value.as_ref();
        match name {
            "query" => params.raw.query = value.to_string(),
            "level" => params.raw.level = value.to_string(),
            "grep" => params.raw.grep = value.to_string(),
            "regex" => params.raw.regex = parse_bool(name, value)?,
            "ignore_case" => params.raw.ignore_case = parse_bool(name, value)?,
            "label" => {
                let (label, wanted) = value
                    .split_once('=')
                    .filter(|(label, _)| !label.is_empty())
                    .ok_or_else(|| {
                        bad(name, &format!("{value:?} is not name=value (label=app=db)"))
                    })?;
                params
                    .raw
                    .labels
                    .push((label.to_string(), wanted.to_string()));
            }
            "since" => params.raw.since = parse_time(name, value, now_ns)?,
            "until" => params.raw.until = parse_time(name, value, now_ns)?,
            "after" => params.raw.after_cursor = parse_cursor(name, value)?,
            "limit" => {
                params.raw.limit = value.trim().parse().map_err(|_| {
                    bad(
                        name,
                        &format!("{value:?} is not a count; use a whole number, 0 for no limit"),
                    )
                })?
            }
            "reverse" if endpoint != Endpoint::Poll => {
                params.raw.reverse = parse_bool(name, value)?
            }
            "follow" => params.raw.follow = parse_bool(name, value)?,
            "wait" if endpoint == Endpoint::Poll => params.wait = Some(parse_wait(value)?),
            _ => {
                return Err(QueryError::UnknownParameter {
                    name: name.to_string(),
                    known: endpoint.known(),
                })
            }
        }
    }
    Ok(params)
}

/// A bad-parameter error.
fn bad(name: &str, reason: &str) -> QueryError {
    QueryError::BadParameter {
        name: name.to_string(),
        reason: reason.to_string(),
    }
}

/// A flag: `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`, or the name
/// alone (`?follow`) for true.
fn parse_bool(name: &str, value: &str) -> Result<bool, QueryError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "" | "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(bad(name, &format!("{value:?} is not true or false"))),
    }
}

/// A time, as Unix epoch nanoseconds; empty leaves that side open (0).
fn parse_time(name: &str, value: &str, now_ns: i64) -> Result<i64, QueryError> {
    if value.trim().is_empty() {
        return Ok(0);
    }
    logtap_ingest::parse_time(value, now_ns).map_err(|error| bad(name, &error.to_string()))
}

/// A cursor (`after`, `Last-Event-ID`); empty means none.
pub(crate) fn parse_cursor(name: &str, value: &str) -> Result<Option<u64>, QueryError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    value.parse().map(Some).map_err(|_| {
        bad(
            name,
            &format!(
                "{value:?} is not a cursor; use a whole number, such as an entry's \"cursor\" \
                 or a poll's \"next_cursor\""
            ),
        )
    })
}

/// `wait`: a duration (`25s`, `500ms`, `1m`) or a number of seconds.
fn parse_wait(value: &str) -> Result<Duration, QueryError> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    logtap_ingest::parse_duration(value).map_err(|_| {
        bad(
            "wait",
            &format!("{value:?} is not a duration; use a number of seconds or 25s, 500ms, 1m"),
        )
    })
}

/// Sets a header from text that may not be a valid header value (then it is
/// left out rather than failing the response).
pub(crate) fn set_header(headers: &mut HeaderMap, name: impl IntoHeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

/// The headers every streamed answer carries: never cached, never buffered
/// by a proxy (nginx honours `X-Accel-Buffering`), the request id echoed.
pub(crate) fn stream_headers(headers: &mut HeaderMap, request_id: &RequestId) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    set_header(headers, metadata::REQUEST_ID, request_id.as_str());
}

/// The answer to a failed request: the status from the one mapping in
/// [`crate::error`], `{"error":"..."}` with a message a person can act on,
/// and the request id. A push that failed part-way also says what it stored,
/// in the body and in the same headers as gRPC's.
pub(crate) fn error_response(request_id: &RequestId, error: &ServeError) -> Response {
    match error.code() {
        Code::Internal | Code::DataLoss | Code::Unknown => {
            tracing::error!(request_id = %request_id, error = %error, "An HTTP request failed.");
        }
        _ => {
            tracing::debug!(request_id = %request_id, error = %error, "An HTTP request was refused.")
        }
    }
    let mut body = serde_json::Map::new();
    body.insert("error".into(), error.to_string().into());
    let mut extra = HeaderMap::new();
    if let ServeError::PushFailed {
        stored,
        last_cursor,
        ..
    } = error
    {
        body.insert("stored".into(), (*stored).into());
        body.insert("last_cursor".into(), (*last_cursor).into());
        extra.insert(metadata::STORED, HeaderValue::from(*stored));
        extra.insert(metadata::LAST_CURSOR, HeaderValue::from(*last_cursor));
    }
    set_header(&mut extra, metadata::REQUEST_ID, request_id.as_str());
    extra.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let body = serde_json::Value::Object(body).to_string();
    (
        error.http_status(),
        extra,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_714_564_800_000_000_000;

    fn parse(query: &str, endpoint: Endpoint) -> Result<Params, QueryError> {
        parse_params(Some(query), endpoint, NOW)
    }

    #[test]
    fn every_parameter_reads_into_the_grpc_fields() {
        let params = parse(
            "level=error&grep=disk%20full&regex=1&ignore_case=true&label=app%3Ddb&label=host=a=b\
             &since=2024-05-01T12:00:00Z&until=1714564900000000000&after=7&limit=3\
             &reverse&follow=false&_=123",
            Endpoint::Logs,
        )
        .expect("valid");
        let raw = params.raw;
        assert_eq!(raw.level, "error");
        assert_eq!(raw.grep, "disk full");
        assert!(raw.regex && raw.ignore_case && raw.reverse && !raw.follow);
        assert_eq!(
            raw.labels,
            vec![("app".into(), "db".into()), ("host".into(), "a=b".into())]
        );
        assert_eq!(raw.since, 1_714_564_800_000_000_000);
        assert_eq!(raw.until, 1_714_564_900_000_000_000);
        assert_eq!(raw.after_cursor, Some(7));
        assert_eq!(raw.limit, 3);
    }

    #[test]
    fn defaults_differ_by_endpoint_and_durations_count_back_from_now() {
        assert!(!parse("", Endpoint::Logs).unwrap().raw.follow);
        assert!(parse("", Endpoint::Sse).unwrap().raw.follow);
        let poll = parse("wait=2&since=15m", Endpoint::Poll).unwrap();
        assert_eq!(poll.wait, Some(Duration::from_secs(2)));
        assert_eq!(poll.raw.since, NOW - 15 * 60 * 1_000_000_000);
        assert_eq!(
            parse("wait=500ms", Endpoint::Poll).unwrap().wait,
            Some(Duration::from_millis(500))
        );
        assert_eq!(parse("since=", Endpoint::Logs).unwrap().raw.since, 0);
        assert_eq!(
            parse("after=", Endpoint::Logs).unwrap().raw.after_cursor,
            None
        );
    }

    #[test]
    fn bad_values_and_unknown_names_say_what_to_write() {
        let message = |query: &str, endpoint| parse(query, endpoint).unwrap_err().to_string();
        assert!(message("since=yesterday", Endpoint::Logs).contains("RFC 3339"));
        assert!(message("after=-1", Endpoint::Logs).contains("not a cursor"));
        assert!(message("limit=many", Endpoint::Logs).contains("whole number"));
        assert!(message("follow=maybe", Endpoint::Logs).contains("true or false"));
        assert!(message("ignore_case=yup", Endpoint::Sse).contains("bad ignore_case"));
        assert!(
            !parse("ignore_case=0", Endpoint::Poll)
                .unwrap()
                .raw
                .ignore_case
        );
        assert!(
            parse("ignore_case=1", Endpoint::Poll)
                .unwrap()
                .raw
                .ignore_case
        );
        assert!(message("label=app", Endpoint::Logs).contains("name=value"));
        assert!(message("wait=soon", Endpoint::Poll).contains("duration"));
        assert!(message("level=a&level=b", Endpoint::Logs).contains("more than once"));
        let unknown = message("levle=error", Endpoint::Logs);
        assert!(unknown.contains("\"levle\"") && unknown.contains("level, grep"));
        assert!(unknown.contains("ignore_case"));
        assert!(message("ignorecase=1", Endpoint::Poll).contains("ignore_case"));
        // Each endpoint takes only what makes sense for it.
        assert!(message("wait=1s", Endpoint::Logs).contains("unknown"));
        assert!(message("reverse=1", Endpoint::Poll).contains("unknown"));
    }
}
