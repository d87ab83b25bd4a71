//! What Grafana's label browser and query size estimate ask:
//! `/loki/api/v1/labels`, `/label/{name}/values`, `/series` and
//! `/index/stats`.
//!
//! logtap keeps no separate index of label sets: each answer reads the
//! entries of `[start, end)` (default: the last hour) that the selector
//! picks (`query`, or `match[]`, repeatable, for `/series`), with the
//! selector's level and exact labels pushed down so the store skips
//! blocks, and gathers the distinct streams. The reading runs on the
//! blocking pool, bounded like a metric query by `max_query_scan_bytes`,
//! and stops when the server shuts down.

use super::{query_error, stream_labels, success, Loki, Params};
use crate::error::ServeError;
use crate::ingest::now_nanos;
use crate::stream::metadata::RequestId;
use crate::stream::state::Shared;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Json, Response};
use logtap_core::{Backend, Direction, Level, ReadOptions};
use logtap_query::{Mode, Plan, RawQuery as Filters};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};

/// How many entries are read between two looks at the shutdown signal.
const CHECK_EVERY: u32 = 4096;

/// A stream's stored labels (compact form) and level.
type StreamKey = (Vec<u8>, Level);

/// What was read of one stream: its entries and their line bytes.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    entries: u64,
    bytes: u64,
}

/// `/loki/api/v1/labels`: every label name of the streams in range.
pub(super) async fn names(
    State(state): State<Loki>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    form: Bytes,
) -> Response {
    respond(&state.shared, &headers, query, &form, |streams| {
        let mut names = BTreeSet::new();
        for key in streams.keys() {
            names.extend(
                stream_labels(&key.0, key.1)
                    .into_iter()
                    .map(|(name, _)| name),
            );
        }
        success(json!(names))
    })
    .await
}

/// `/loki/api/v1/label/{name}/values`: the values `name` takes.
pub(super) async fn values(
    State(state): State<Loki>,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    form: Bytes,
) -> Response {
    respond(&state.shared, &headers, query, &form, move |streams| {
        let mut values = BTreeSet::new();
        for key in streams.keys() {
            if let Some(Value::String(value)) = stream_labels(&key.0, key.1).remove(&name) {
                values.insert(value);
            }
        }
        success(json!(values))
    })
    .await
}

/// `/loki/api/v1/series`: every label set the `match[]` selectors pick.
pub(super) async fn series(
    State(state): State<Loki>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    form: Bytes,
) -> Response {
    respond(&state.shared, &headers, query, &form, |streams| {
        let mut sets: Vec<_> = streams
            .keys()
            .map(|key| stream_labels(&key.0, key.1))
            .collect();
        sets.sort_by_key(|set| serde_json::to_string(set).unwrap_or_default());
        success(json!(sets))
    })
    .await
}

/// `/loki/api/v1/index/stats`: how much the query would read. logtap
/// stores no chunks, so `chunks` counts the streams' runs as one each.
pub(super) async fn stats(
    State(state): State<Loki>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    form: Bytes,
) -> Response {
    respond(&state.shared, &headers, query, &form, |streams| {
        let entries: u64 = streams.values().map(|tally| tally.entries).sum();
        let bytes: u64 = streams.values().map(|tally| tally.bytes).sum();
        // Loki answers without its envelope here.
        Json(json!({
            "streams": streams.len(),
            "chunks": streams.len(),
            "entries": entries,
            "bytes": bytes,
        }))
        .into_response()
    })
    .await
}

/// Reads the parameters, gathers the streams, and answers with `build`.
async fn respond(
    shared: &Shared,
    headers: &HeaderMap,
    query: Option<String>,
    form: &[u8],
    build: impl FnOnce(HashMap<StreamKey, Tally>) -> Response,
) -> Response {
    let request_id = RequestId::from_headers(headers);
    let params = Params::read(query.as_deref(), form);
    match gather(shared, &params).await {
        Ok(streams) => build(streams),
        Err(error) => query_error(&request_id, &error),
    }
}

/// The streams in range that a selector picks: `match[]` (any of them)
/// or `query`, or every stream.
async fn gather(shared: &Shared, params: &Params) -> Result<HashMap<StreamKey, Tally>, ServeError> {
    let (start, end) = params.range(now_nanos())?;
    let mut selectors = params.all("match[]");
    if selectors.is_empty() {
        selectors.extend(params.get("query").map(str::to_string));
    }
    let plan = |query: String| {
        Plan::parse(
            Mode::History,
            Filters {
                query,
                since: start,
                until: end.max(1),
                ..Filters::default()
            },
        )
    };
    let plans = selectors
        .into_iter()
        .map(plan)
        .collect::<Result<Vec<_>, _>>()?;
    // One selector's pushdown narrows the read; several are read together.
    let (filter, search) = match plans.as_slice() {
        [one] => (one.filter, one.matcher.search()),
        _ => (plan(String::new())?.filter, None),
    };
    let store = std::sync::Arc::clone(&shared.store);
    let shutdown = shared.shutdown.clone();
    let limit = shared.max_query_scan_bytes;
    tokio::task::spawn_blocking(move || {
        let options = ReadOptions {
            after: None,
            before: store.last_cursor().checked_add(1),
            direction: Direction::Forward,
            filter,
            search,
        };
        read(&*store, options, &plans, limit, &shutdown)
    })
    .await
    .map_err(ServeError::join)?
}

/// Tallies the entries `options` reads that any of `plans` passes (every
/// entry, without plans).
fn read(
    store: &dyn Backend,
    options: ReadOptions,
    plans: &[Plan],
    limit: u64,
    shutdown: &tokio_util::sync::CancellationToken,
) -> Result<HashMap<StreamKey, Tally>, ServeError> {
    let mut reader = store.reader(options).map_err(ServeError::Store)?;
    let mut streams: HashMap<StreamKey, Tally> = HashMap::new();
    let mut scanned: u64 = 0;
    let mut since_check = 0;
    while let Some(entry) = reader.next_entry().map_err(ServeError::Store)? {
        scanned += entry.message.len() as u64;
        if limit != 0 && scanned > limit {
            return Err(ServeError::QueryTooCostly { scanned, limit });
        }
        since_check += 1;
        if since_check == CHECK_EVERY {
            since_check = 0;
            if shutdown.is_cancelled() {
                return Err(ServeError::ShuttingDown);
            }
        }
        let picked = plans.is_empty()
            || plans.iter().any(|plan| {
                // Several plans are read with the widest filter, so each
                // checks its own.
                plan.filter.passes(entry.level, entry.timestamp) && plan.matcher.matches(&entry)
            });
        if !picked {
            continue;
        }
        let tally = streams
            .entry((entry.labels().as_bytes().to_vec(), entry.level))
            .or_default();
        tally.entries += 1;
        tally.bytes += entry.message.len() as u64;
    }
    Ok(streams)
}
