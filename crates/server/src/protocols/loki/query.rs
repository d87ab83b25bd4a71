//! `/loki/api/v1/query_range` and `/loki/api/v1/query`.
//!
//! A log query answers `streams`: the first `limit` matches in
//! `direction` within `[start, end)`, read by the same stream as `GetLogs`
//! (so the store skips blocks by the selector and the line filters), then
//! grouped by stream. A metric query answers `matrix` (range) or `vector`
//! (instant), or `scalar` for a plain number, evaluated as `QueryMetrics`
//! evaluates it: from the blocks' summaries where only the level and time
//! matter, which is what Grafana's volume histogram (`X-Query-Tags:
//! Source=logvolhist`, `sum by (level, detected_level)
//! (count_over_time({...} | drop __error__ [1m]))`) asks. An instant log
//! query is refused, as Loki refuses it.
//!
//! Every answer carries `stats.summary` in Loki's shape (Grafana shows it
//! in the query inspector): the entries returned, the bytes of their
//! lines, the time taken.

use super::{query_error, streams_json, success, Loki, Params, Row};
use crate::error::ServeError;
use crate::ingest::now_nanos;
use crate::net::quota::Quota;
use crate::stream::metadata::RequestId;
use crate::stream::metric;
use crate::stream::tail::{self, Item, TailStream};
use axum::body::Bytes;
use axum::extract::{Extension, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use futures::StreamExt;
use logtap_query::logql::metric::{LabelSet, Points, Value as MetricValue};
use logtap_query::logql::{self, Query};
use logtap_query::{Mode, Plan, QueryError, RawQuery as Filters};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Instant;

/// Which of the two routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `query_range`: `start`, `end`, `step`.
    Range,
    /// `query`: one `time`.
    Instant,
}

/// `/loki/api/v1/query_range`.
pub(super) async fn range(
    State(state): State<Loki>,
    quota: Option<Extension<Quota>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    form: Bytes,
) -> Response {
    answer(
        &state,
        quota.as_deref(),
        &headers,
        query,
        &form,
        Kind::Range,
    )
    .await
}

/// `/loki/api/v1/query`.
pub(super) async fn instant(
    State(state): State<Loki>,
    quota: Option<Extension<Quota>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    form: Bytes,
) -> Response {
    answer(
        &state,
        quota.as_deref(),
        &headers,
        query,
        &form,
        Kind::Instant,
    )
    .await
}

/// Either route's answer.
async fn answer(
    state: &Loki,
    quota: Option<&Quota>,
    headers: &HeaderMap,
    query: Option<String>,
    form: &[u8],
    kind: Kind,
) -> Response {
    let request_id = RequestId::from_headers(headers);
    let began = Instant::now();
    let params = Params::read(query.as_deref(), form);
    let source = headers
        .get("x-query-tags")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    tracing::debug!(request_id = %request_id, tags = source, "A Loki query came in.");
    match evaluate(state, quota, &request_id, &params, kind).await {
        Ok((result_type, result, returned, bytes)) => success(json!({
            "resultType": result_type,
            "result": result,
            "stats": stats(began.elapsed().as_secs_f64(), returned, bytes),
        })),
        Err(error) => query_error(&request_id, &error),
    }
}

/// The result's type, the result, and how many entries and line bytes it
/// carries.
type Answer = (&'static str, Value, u64, u64);

/// Parses and runs the query.
async fn evaluate(
    state: &Loki,
    quota: Option<&Quota>,
    request_id: &RequestId,
    params: &Params,
    kind: Kind,
) -> Result<Answer, ServeError> {
    let text = params.query()?;
    let parsed = logql::parse_query(text).map_err(QueryError::from)?;
    let now = now_nanos();
    match (parsed, kind) {
        (Query::Log(_), Kind::Instant) => Err(super::bad(
            "query",
            "log queries are not supported as an instant query type; ask query_range for entries",
        )),
        (Query::Log(_), Kind::Range) => {
            let (start, end) = params.range(now)?;
            let filters = Filters {
                query: text.to_string(),
                since: start,
                // `until` 0 leaves the range open; an end at 0 is 1 ns.
                until: end.max(1),
                limit: params.limit()?,
                reverse: params.backward()?,
                ..Filters::default()
            };
            let plan = Plan::parse(Mode::History, filters)?;
            let opened =
                tail::open(&state.shared, quota, request_id.clone(), plan, Row::of).await?;
            let rows = collect(opened.stream).await?;
            let returned = rows.len() as u64;
            let bytes = rows.iter().map(|row| row.line.len() as u64).sum();
            Ok(("streams", streams_json(rows), returned, bytes))
        }
        (Query::Metric(expr), kind) => {
            let points = match kind {
                Kind::Range => {
                    let (start, end) = params.range(now)?;
                    let step = match params.duration("step")? {
                        Some(step) => step,
                        // Loki's default: about 250 points, at least 1 s.
                        None => ((end - start) / 250 / 1_000_000_000).max(1) * 1_000_000_000,
                    };
                    if step <= 0 {
                        return Err(super::bad(
                            "step",
                            "zero or negative query resolution step widths are not accepted; give a positive duration",
                        ));
                    }
                    Points::new(start, end, step)
                }
                Kind::Instant => {
                    let time = params.time("time", now)?;
                    Points::new(time, time, 1_000_000_000)
                }
            }
            .map_err(|reason| super::bad("step", &reason))?;
            let value = metric::evaluate(&state.shared, Arc::new(expr), points).await?;
            Ok(match kind {
                Kind::Range => ("matrix", matrix(value, points), 0, 0),
                Kind::Instant => vector(value, points.start),
            })
        }
    }
}

/// Every row a history stream carries, or the error it ended with.
pub(super) async fn collect(mut stream: TailStream<Row>) -> Result<Vec<Row>, ServeError> {
    let mut rows = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Item::Entry(row) | Item::Entries(row, _) => rows.push(row),
            Item::End(end) => {
                if let Some(error) = end.error {
                    return Err(error);
                }
            }
        }
    }
    Ok(rows)
}

/// A time as Prometheus writes one in a result: seconds, a number.
fn seconds(ns: i64) -> Value {
    json!(ns as f64 / 1e9)
}

/// A sample's value as Prometheus writes one: a string.
fn sample(value: f64) -> Value {
    Value::String(if value.is_nan() {
        "NaN".into()
    } else if value == f64::INFINITY {
        "+Inf".into()
    } else if value == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        value.to_string()
    })
}

/// A label set as a JSON object.
fn metric_labels(labels: &LabelSet) -> Map<String, Value> {
    labels
        .iter()
        .map(|(name, value)| (name.clone(), Value::String(value.clone())))
        .collect()
}

/// A range query's value as a `matrix` (a number: one series without
/// labels, at every point).
fn matrix(value: MetricValue, points: Points) -> Value {
    let series = match value {
        MetricValue::Scalar(n) => vec![(
            LabelSet::new(),
            (0..points.count()).map(|k| (points.at(k), n)).collect(),
        )],
        MetricValue::Vector(series) => series
            .into_iter()
            .map(|one| (one.labels, one.points))
            .collect::<Vec<_>>(),
    };
    Value::Array(
        series
            .into_iter()
            .map(|(labels, points): (LabelSet, Vec<(i64, f64)>)| {
                let values: Vec<Value> = points
                    .into_iter()
                    .map(|(t, v)| json!([seconds(t), sample(v)]))
                    .collect();
                json!({"metric": metric_labels(&labels), "values": values})
            })
            .collect(),
    )
}

/// An instant query's value at `time`: a `vector`, or a `scalar`.
fn vector(value: MetricValue, time: i64) -> Answer {
    match value {
        MetricValue::Scalar(n) => ("scalar", json!([seconds(time), sample(n)]), 0, 0),
        MetricValue::Vector(series) => {
            let result = series
                .into_iter()
                .filter_map(|one| {
                    let (t, v) = one.points.into_iter().find(|(t, _)| *t == time)?;
                    Some(json!({"metric": metric_labels(&one.labels), "value": [seconds(t), sample(v)]}))
                })
                .collect();
            ("vector", Value::Array(result), 0, 0)
        }
    }
}

/// `stats` in Loki's shape: the summary Grafana reads, and the querier and
/// ingester parts it expects beside it (logtap has neither, so their
/// counts are 0).
fn stats(exec_seconds: f64, returned: u64, bytes: u64) -> Value {
    let per_second = |n: u64| {
        if exec_seconds > 0.0 {
            (n as f64 / exec_seconds) as u64
        } else {
            0
        }
    };
    let store = json!({
        "totalChunksRef": 0, "totalChunksDownloaded": 0, "chunksDownloadTime": 0,
        "queryReferencedStructuredMetadata": false,
        "chunk": {"headChunkBytes": 0, "headChunkLines": 0, "decompressedBytes": bytes,
                  "decompressedLines": returned, "compressedBytes": 0, "totalDuplicates": 0,
                  "postFilterLines": returned, "headChunkStructuredMetadataBytes": 0,
                  "decompressedStructuredMetadataBytes": 0}
    });
    json!({
        "summary": {
            "bytesProcessedPerSecond": per_second(bytes),
            "linesProcessedPerSecond": per_second(returned),
            "totalBytesProcessed": bytes,
            "totalLinesProcessed": returned,
            "execTime": exec_seconds,
            "queueTime": 0,
            "subqueries": 0,
            "totalEntriesReturned": returned,
            "splits": 0,
            "shards": 0,
            "totalPostFilterLines": returned,
            "totalStructuredMetadataBytesProcessed": 0,
        },
        "querier": {"store": store},
        "ingester": {"totalReached": 0, "totalChunksMatched": 0, "totalBatches": 0,
                     "totalLinesSent": 0, "store": store},
        "cache": {},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_written_as_prometheus_writes_them() {
        assert_eq!(sample(2.0), json!("2"));
        assert_eq!(sample(0.25), json!("0.25"));
        assert_eq!(sample(f64::NAN), json!("NaN"));
        assert_eq!(sample(f64::INFINITY), json!("+Inf"));
        assert_eq!(sample(f64::NEG_INFINITY), json!("-Inf"));
        assert_eq!(seconds(4_500_000_000), json!(4.5));
    }
}
