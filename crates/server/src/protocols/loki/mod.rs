//! Grafana Loki's HTTP API: the push API, so Promtail, Grafana Alloy,
//! Vector, Fluent Bit and Loki client libraries ship to logtap unchanged,
//! and the query API, so Grafana's Loki data source reads from it unchanged
//! (Explore, the volume histogram, the label browser, live tail).
//!
//! | Route | Module | Access | Answer |
//! | --- | --- | --- | --- |
//! | `POST /loki/api/v1/push` | [`push`] | write | 204 once the push is durable |
//! | `GET`/`POST /loki/api/v1/query`, `/query_range` | [`query`] | read | `streams`, `matrix`, `vector` or `scalar` results with `stats` |
//! | `GET /loki/api/v1/labels`, `/label/{name}/values`, `/series`, `/index/stats` | [`labels`] | read | the label browser's lists, the query size estimate |
//! | `GET /loki/api/v1/tail` | [`tail`] | read | a WebSocket of `{"streams":[...],"dropped_entries":[]}` frames |
//! | `GET /loki/api/v1/status/buildinfo` | here | read | the version Grafana reads |
//! | `GET /ready` | here | open | 200 `ready` (the shippers' health check) |
//!
//! What Grafana calls that logtap does not serve (`detected_fields`,
//! `detected_labels`, `patterns`, `v2alpha/tail`, ...) is 404 with Loki's
//! body, where Grafana falls back (`crate::error::unknown_route`).
//!
//! Queries are LogQL (`logtap_query::logql`), parsed and evaluated by the
//! same code as every other surface: a log query streams through
//! [`tail::open`](crate::stream::tail::open) like `GetLogs`, a metric query
//! is evaluated by `stream::metric` like `QueryMetrics`. A stream's labels
//! are the entry's stored labels and its `level` (unless a stored label is
//! named `level`): what `{level="error"}` selects.
//!
//! Parameters come from the query string or, on POST, a form body, and are
//! read as Loki reads them: times are Unix nanoseconds, seconds (10 digits
//! or fewer, or with a fraction) or RFC 3339; durations are `15s`, `1m30s`
//! or seconds. Parameters Loki takes that change nothing here (`interval`,
//! `shards`, ...) and unknown ones are ignored, as Loki ignores them.
//! Errors are plain text with the status from the one mapping in
//! [`crate::error`], as Loki answers them.

pub(crate) mod labels;
pub(crate) mod push;
pub(crate) mod query;
pub(crate) mod tail;

use crate::config::ServerConfig;
use crate::error::ServeError;
use crate::security::access::{Access, Methods, Route};
use crate::stream::metadata::RequestId;
use crate::stream::state::Shared;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use logtap_core::{EntryRef, Labels, Level};
use logtap_query::QueryError;
use serde_json::{Map, Value};

/// What each route needs.
pub(crate) const ROUTES: [Route; 10] = [
    Route::exact("/loki/api/v1/push", Methods::Post, Access::Write),
    Route::exact("/ready", Methods::Get, Access::Open),
    Route::exact("/loki/api/v1/query", Methods::GetPost, Access::Read),
    Route::exact("/loki/api/v1/query_range", Methods::GetPost, Access::Read),
    Route::exact("/loki/api/v1/labels", Methods::GetPost, Access::Read),
    Route::prefix("/loki/api/v1/label/", Methods::GetPost, Access::Read),
    Route::exact("/loki/api/v1/series", Methods::GetPost, Access::Read),
    Route::exact("/loki/api/v1/index/stats", Methods::GetPost, Access::Read),
    Route::exact("/loki/api/v1/tail", Methods::Get, Access::Read),
    Route::exact("/loki/api/v1/status/buildinfo", Methods::Get, Access::Read),
];

/// What the Loki routes share.
#[derive(Debug, Clone)]
pub struct Loki {
    /// The store, shutdown signal and metrics.
    pub shared: Shared,
    /// The largest body accepted, in bytes, before and after decompression.
    pub max_push_body_bytes: u64,
}

/// Every Loki route.
pub fn routes(shared: Shared, config: &ServerConfig) -> Router {
    let state = Loki {
        shared,
        max_push_body_bytes: config.max_push_body_bytes,
    };
    Router::new()
        .route("/loki/api/v1/push", post(push::push))
        .route("/ready", get(ready))
        .route(
            "/loki/api/v1/query",
            get(query::instant).post(query::instant),
        )
        .route(
            "/loki/api/v1/query_range",
            get(query::range).post(query::range),
        )
        .route(
            "/loki/api/v1/labels",
            get(labels::names).post(labels::names),
        )
        .route(
            "/loki/api/v1/label/{name}/values",
            get(labels::values).post(labels::values),
        )
        .route(
            "/loki/api/v1/series",
            get(labels::series).post(labels::series),
        )
        .route(
            "/loki/api/v1/index/stats",
            get(labels::stats).post(labels::stats),
        )
        .route("/loki/api/v1/tail", get(tail::tail))
        .route("/loki/api/v1/status/buildinfo", get(buildinfo))
        .with_state(state)
}

/// `GET /ready`: the server answers, so it is ready.
async fn ready() -> &'static str {
    "ready"
}

/// The Loki version whose API this one answers like: Grafana turns
/// features on by it.
const LOKI_VERSION: &str = "3.0.0";

/// `GET /loki/api/v1/status/buildinfo`: Loki's fields, logtap's revision.
async fn buildinfo() -> Json<Value> {
    Json(serde_json::json!({
        "version": LOKI_VERSION,
        "revision": concat!("logtap-", env!("CARGO_PKG_VERSION")),
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": "",
    }))
}

/// A refusal as Loki answers one: the status from the one mapping, the
/// message as plain text, the request id. Statuses a client retries on
/// (429, 5xx) carry `Retry-After`.
pub(crate) fn plain_error(request_id: &RequestId, error: &ServeError) -> Response {
    let status = error.http_status();
    let mut response = (
        status,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        format!("{}\n", crate::error::clip_message(error.to_string())),
    )
        .into_response();
    let headers = response.headers_mut();
    request_id.insert_into_headers(headers);
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// A refused query, logged, answered as Loki answers one.
pub(crate) fn query_error(request_id: &RequestId, error: &ServeError) -> Response {
    crate::ingest::log_refusal(request_id, error, "A Loki query");
    plain_error(request_id, error)
}

/// A success in Loki's envelope: `{"status":"success","data":...}`.
pub(crate) fn success(data: Value) -> Response {
    let mut response = Json(serde_json::json!({"status": "success", "data": data})).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A request's parameters: the query string's, then a POST's form body's.
#[derive(Debug, Default)]
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    /// Reads `query` (the URI's query string) and `form` (a POST body;
    /// empty otherwise).
    pub(crate) fn read(query: Option<&str>, form: &[u8]) -> Params {
        let pairs = form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .chain(form_urlencoded::parse(form))
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
        Params(pairs)
    }

    /// The first non-empty value of `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Every non-empty value of `name` (`match[]` is repeated).
    pub(crate) fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// A time parameter, as Loki reads one; `default` when absent.
    pub(crate) fn time(&self, name: &str, default: i64) -> Result<i64, ServeError> {
        match self.get(name) {
            None => Ok(default),
            Some(text) => parse_time(text).ok_or_else(|| {
                bad(
                    name,
                    &format!(
                        "{text:?} is not a time; use Unix epoch nanoseconds, seconds \
                         (1714564800 or 1714564800.5) or RFC 3339"
                    ),
                )
            }),
        }
    }

    /// A duration parameter (`15s`, `1m30s`, or seconds, `0.5`), in ns.
    pub(crate) fn duration(&self, name: &str) -> Result<Option<i64>, ServeError> {
        let Some(text) = self.get(name) else {
            return Ok(None);
        };
        parse_duration(text).map(Some).ok_or_else(|| {
            bad(
                name,
                &format!(
                    "{text:?} is not a duration; use 15s, 1m30s, 250ms or a number of seconds"
                ),
            )
        })
    }

    /// `start` and `end`: `end` defaults to `now`, `start` to `since`
    /// (default one hour) before `end`, as in Loki.
    pub(crate) fn range(&self, now: i64) -> Result<(i64, i64), ServeError> {
        const HOUR: i64 = 3600 * 1_000_000_000;
        let end = self.time("end", now)?;
        let since = self.duration("since")?.unwrap_or(HOUR);
        let start = self.time("start", end.saturating_sub(since))?;
        if end < start {
            return Err(bad(
                "end",
                "the end timestamp must not be before the start time",
            ));
        }
        Ok((start, end))
    }

    /// `limit`: how many entries at most, 1 to [`MAX_LIMIT`]; 100 when
    /// absent, as in Loki.
    pub(crate) fn limit(&self) -> Result<u64, ServeError> {
        let Some(text) = self.get("limit") else {
            return Ok(100);
        };
        match text.trim().parse::<u64>() {
            Ok(limit) if (1..=MAX_LIMIT).contains(&limit) => Ok(limit),
            _ => Err(bad(
                "limit",
                &format!("{text:?} is not a count from 1 to {MAX_LIMIT}"),
            )),
        }
    }

    /// `direction`: whether newest first (`backward`, the default).
    pub(crate) fn backward(&self) -> Result<bool, ServeError> {
        match self
            .get("direction")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("backward") => Ok(true),
            Some("forward") => Ok(false),
            Some(other) => Err(bad(
                "direction",
                &format!("{other:?} is neither forward nor backward"),
            )),
        }
    }

    /// `query`, which the route needs.
    pub(crate) fn query(&self) -> Result<&str, ServeError> {
        self.get("query").ok_or_else(|| {
            bad(
                "query",
                "missing: give a LogQL query, such as {service=\"api\"}",
            )
        })
    }
}

/// The most entries one answer carries: Loki's default
/// `max_entries_limit_per_query`, which bounds what an answer holds.
pub(crate) const MAX_LIMIT: u64 = 5000;

/// A bad parameter, as the one error type carries it.
pub(crate) fn bad(name: &str, reason: &str) -> ServeError {
    ServeError::Query(QueryError::BadParameter {
        name: name.to_string(),
        reason: reason.to_string(),
    })
}

/// A time as Loki reads one: with a `.`, float seconds; digits, seconds
/// when 10 or fewer, nanoseconds otherwise; else RFC 3339.
fn parse_time(text: &str) -> Option<i64> {
    let text = text.trim();
    if text.contains('.') {
        if let Ok(seconds) = text.parse::<f64>() {
            return (seconds.is_finite() && seconds.abs() < 9.2e9)
                .then(|| (seconds * 1e9).round() as i64);
        }
    }
    if let Ok(number) = text.parse::<i64>() {
        let digits = text.trim_start_matches('-').len();
        return if digits <= 10 {
            number.checked_mul(1_000_000_000)
        } else {
            Some(number)
        };
    }
    if text.contains('T') {
        return logtap_ingest::parse_time(text, 0).ok();
    }
    None
}

/// A duration as Loki reads one: units (`1m30s`, `250ms`) or float
/// seconds; in ns.
fn parse_duration(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        return (seconds.is_finite() && seconds.abs() < 9.2e9).then_some((seconds * 1e9) as i64);
    }
    let duration = logtap_ingest::parse_duration(text).ok()?;
    i64::try_from(duration.as_nanos()).ok()
}

/// One entry of an answer: what a Loki stream value needs, and the cursor
/// the live tail resumes after.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    /// The entry's cursor.
    pub cursor: u64,
    /// Unix epoch ns.
    pub timestamp: i64,
    /// The stream: the stored labels (compact form) and the level.
    pub stream: (Vec<u8>, Level),
    /// The line.
    pub line: String,
}

impl Row {
    /// The entry as a row (the encoder of the streams Loki reads).
    pub(crate) fn of(entry: &EntryRef<'_>) -> Row {
        Row {
            cursor: entry.cursor,
            timestamp: entry.timestamp,
            stream: (entry.labels().as_bytes().to_vec(), entry.level),
            line: entry.message.to_string(),
        }
    }
}

/// A stream's label set as Loki writes it: the stored labels and `level`.
pub(crate) fn stream_labels(labels: &[u8], level: Level) -> Map<String, Value> {
    let mut map = Map::new();
    for (name, value) in Labels::parse(labels).unwrap_or_else(|_| Labels::empty()) {
        map.insert(name.to_string(), Value::String(value.to_string()));
    }
    map.entry("level")
        .or_insert_with(|| Value::String(level.as_str().to_string()));
    map
}

/// Rows as Loki's `streams` result: one object per stream, in the order
/// streams first appear, each with its values in the rows' order.
pub(crate) fn streams_json(rows: Vec<Row>) -> Value {
    let mut order: Vec<(Vec<u8>, Level)> = Vec::new();
    let mut values: std::collections::HashMap<(Vec<u8>, Level), Vec<Value>> =
        std::collections::HashMap::new();
    for row in rows {
        let value = Value::Array(vec![
            Value::String(row.timestamp.to_string()),
            Value::String(row.line),
        ]);
        match values.get_mut(&row.stream) {
            Some(list) => list.push(value),
            None => {
                order.push(row.stream.clone());
                values.insert(row.stream, vec![value]);
            }
        }
    }
    Value::Array(
        order
            .into_iter()
            .map(|stream| {
                let list = values.remove(&stream).unwrap_or_default();
                serde_json::json!({
                    "stream": stream_labels(&stream.0, stream.1),
                    "values": list,
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_loki_reads_them() {
        const S: i64 = 1_000_000_000;
        assert_eq!(parse_time("1714564800"), Some(1_714_564_800 * S));
        assert_eq!(parse_time("4"), Some(4 * S));
        assert_eq!(parse_time("1714564800.5"), Some(1_714_564_800 * S + S / 2));
        assert_eq!(parse_time("1714564800000000000"), Some(1_714_564_800 * S));
        assert_eq!(parse_time("2024-05-01T12:00:00Z"), Some(1_714_564_800 * S));
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(parse_duration("15s"), Some(15 * S));
        assert_eq!(parse_duration("1000ms"), Some(S));
        assert_eq!(parse_duration("0.5"), Some(S / 2));
        assert_eq!(parse_duration("soon"), None);
    }

    #[test]
    fn parameters_take_loki_defaults_and_refuse_what_cannot_be_read() {
        let params = Params::read(Some("query=%7B%7D&limit=7"), b"direction=FORWARD");
        assert_eq!(params.query().unwrap(), "{}");
        assert_eq!(params.limit().unwrap(), 7);
        assert!(!params.backward().unwrap());
        let (start, end) = params.range(10_000_000_000_000).unwrap();
        assert_eq!(end - start, 3600 * 1_000_000_000);
        let bad_limit = Params::read(Some("limit=0"), b"");
        assert_eq!(
            bad_limit.limit().unwrap_err().http_status(),
            StatusCode::BAD_REQUEST
        );
        let backwards = Params::read(Some("start=20&end=10"), b"");
        assert!(backwards.range(0).is_err());
        assert!(Params::read(None, b"").query().is_err());
    }
}
