//! Elasticsearch's bulk API, so Filebeat, Logstash, Fluent Bit, Vector and
//! the Elasticsearch clients can ship to logtap unchanged.
//!
//! | Route | Access | Answer |
//! | --- | --- | --- |
//! | `POST`/`PUT /_bulk`, `/{index}/_bulk` | write | 200 with one item per action once the stored ones are durable |
//! | `GET`/`HEAD /` (not asking for HTML) | open | the cluster's name and version, as Elasticsearch answers |
//! | `GET /_license`, `/_xpack` | write | an active basic license (Beats and Logstash check it) |
//! | `GET /_cluster/health` | write | green (Vector's health check) |
//! | `/_index_template/*`, `/_template/*`, `/_component_template/*`, `/_ilm/*`, `/_ingest/*`, `/_data_stream/*` | write | reads 404, writes 200 `{"acknowledged":true}`: templates, policies and pipelines are taken and not kept |
//! | `GET /_cat/*` | write | `[]` |
//!
//! `/` is the viewer's page too: a request whose `Accept` names
//! `text/html` (a browser's) gets the viewer, any other (the shippers send
//! `application/json` or nothing) the Elasticsearch answer
//! ([`share_root`]). Every answer here carries `X-Elastic-Product:
//! Elasticsearch`, which the Elasticsearch clients and Logstash check (the
//! token check's 401 and 403 come before these routes and carry none; the
//! clients look for it on success only); the
//! version is a 9.x above any release, since Beats refuse a server older
//! than themselves and every client takes a newer one of its major.
//!
//! What a bulk body becomes is the ingest crate's
//! ([`logtap_ingest::elasticsearch`]). The body is read whole (counted
//! against the request budget as it arrives, `net::request_body`), its
//! `Content-Encoding` undone (gzip, deflate, identity; any other is 415),
//! and both it and what it decompresses to are bounded by
//! `max_push_body_bytes` (413). Its `Content-Type` is NDJSON or JSON
//! (Elasticsearch's `vnd` forms included) or none; any other is 415, which
//! keeps a web page from posting a form into the server.
//!
//! Action lines that cannot be read refuse the whole body (400, in
//! Elasticsearch's error shape). Otherwise each item is answered alone: a
//! document that does not decode, a time out of range, an entry over the
//! backend's limits, `update` and `delete` each get status 400 and an
//! `error` in their item, and `errors: true`; the others go through the
//! one [`Batcher`] and one [`ingest::append`], and the answer (201
//! `created` each, `_id` the entry's cursor unless the action gave one)
//! comes once they are durable. A full disk (429), a shutdown or the
//! request budget (503) refuse the whole request with `Retry-After`: every
//! shipper retries those, where some drop items refused one by one.

use crate::config::ServerConfig;
use crate::error::ServeError;
use crate::ingest::{self, Batcher, Protocol};
use crate::ops::metrics::Limit;
use crate::security::access::{Access, Methods, Route};
use crate::stream::metadata::RequestId;
use crate::stream::state::Shared;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use logtap_ingest::elasticsearch::{self, Item};
use logtap_ingest::loki::{self, Encoding};
use serde_json::{json, Value};
use std::time::Instant;

/// What each route needs. `/` is declared by ops (the viewer's, open).
pub(crate) const ROUTES: [Route; 12] = [
    Route::exact("/_bulk", Methods::PostPut, Access::Write),
    Route::exact("/{index}/_bulk", Methods::PostPut, Access::Write),
    Route::exact("/_license", Methods::Get, Access::Write),
    Route::exact("/_xpack", Methods::Get, Access::Write),
    Route::exact("/_cluster/health", Methods::Get, Access::Write),
    Route::prefix("/_index_template/", Methods::Any, Access::Write),
    Route::prefix("/_template/", Methods::Any, Access::Write),
    Route::prefix("/_component_template/", Methods::Any, Access::Write),
    Route::prefix("/_ilm/", Methods::Any, Access::Write),
    Route::prefix("/_ingest/", Methods::Any, Access::Write),
    Route::prefix("/_data_stream/", Methods::Any, Access::Write),
    Route::prefix("/_cat/", Methods::Get, Access::Write),
];

/// The version answered: see the module's doc.
pub const VERSION: &str = "9.99.0";

/// The product header the Elasticsearch clients check on every answer.
const PRODUCT: (&str, &str) = ("x-elastic-product", "Elasticsearch");

/// What the bulk routes share.
#[derive(Debug, Clone)]
pub struct Elasticsearch {
    /// The store, shutdown signal and metrics.
    pub shared: Shared,
    /// The largest body accepted, in bytes, before and after decompression.
    pub max_push_body_bytes: u64,
}

/// The bulk routes and the probes shippers make at startup.
pub fn routes(shared: Shared, config: &ServerConfig) -> Router {
    let state = Elasticsearch {
        shared,
        max_push_body_bytes: config.max_push_body_bytes,
    };
    Router::new()
        .route("/_bulk", post(bulk_here).put(bulk_here))
        .route("/{index}/_bulk", post(bulk_into).put(bulk_into))
        .route("/_license", get(license))
        .route("/_xpack", get(xpack))
        .route("/_cluster/health", get(health))
        .route("/_index_template/{*name}", any(resource))
        .route("/_template/{*name}", any(resource))
        .route("/_component_template/{*name}", any(resource))
        .route("/_ilm/{*name}", any(resource))
        .route("/_ingest/{*name}", any(resource))
        .route("/_data_stream/{*name}", any(resource))
        .route("/_cat/{*name}", get(cat))
        .with_state(state)
        .layer(axum::middleware::map_response(with_product))
}

/// `router` (the viewer's) with `GET`/`HEAD /` answered as Elasticsearch
/// answers it for any request that does not ask for HTML.
pub(crate) fn share_root(router: Router) -> Router {
    router.layer(axum::middleware::from_fn(root))
}

/// Adds the product header to an answer.
async fn with_product(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(PRODUCT.0, HeaderValue::from_static(PRODUCT.1));
    response
}

/// A JSON answer with the product header.
fn answer(status: StatusCode, body: &Value) -> Response {
    answer_text(status, body.to_string())
}

/// An answer of JSON text with the product header.
fn answer_text(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::HeaderName::from_static(PRODUCT.0), PRODUCT.1),
        ],
        body,
    )
        .into_response()
}

/// `GET`/`HEAD /`: Elasticsearch's root for shippers, the viewer for
/// browsers.
async fn root(request: Request, next: Next) -> Response {
    let shipper = request.uri().path() == "/"
        && matches!(*request.method(), Method::GET | Method::HEAD)
        && !request
            .headers()
            .get_all(header::ACCEPT)
            .iter()
            .any(|value| String::from_utf8_lossy(value.as_bytes()).contains("text/html"));
    if !shipper {
        return next.run(request).await;
    }
    answer(
        StatusCode::OK,
        &json!({
            "name": "logtap",
            "cluster_name": "logtap",
            "cluster_uuid": "logtap-0000000000000000000000",
            "version": {
                "number": VERSION,
                "build_flavor": "default",
                "build_type": "logtap",
                "build_hash": env!("CARGO_PKG_VERSION"),
                "build_date": "2026-01-01T00:00:00.000Z",
                "build_snapshot": false,
                "lucene_version": "10.0.0",
                "minimum_wire_compatibility_version": "8.0.0",
                "minimum_index_compatibility_version": "8.0.0"
            },
            "tagline": "You Know, for Search"
        }),
    )
}

/// The license Beats and Logstash look for: basic and active.
fn license_body() -> Value {
    json!({
        "uid": "logtap-license",
        "type": "basic",
        "mode": "basic",
        "status": "active",
        "issue_date_in_millis": 0,
        "issued_to": "logtap",
        "issuer": "logtap",
        "max_nodes": 1000,
        "start_date_in_millis": -1
    })
}

/// `GET /_license`.
async fn license() -> Response {
    answer(StatusCode::OK, &json!({ "license": license_body() }))
}

/// `GET /_xpack`.
async fn xpack() -> Response {
    answer(
        StatusCode::OK,
        &json!({
            "build": {"hash": env!("CARGO_PKG_VERSION"), "date": "2026-01-01T00:00:00.000Z"},
            "license": license_body(),
            "features": {}
        }),
    )
}

/// `GET /_cluster/health`.
async fn health() -> Response {
    answer(
        StatusCode::OK,
        &json!({
            "cluster_name": "logtap",
            "status": "green",
            "timed_out": false,
            "number_of_nodes": 1,
            "number_of_data_nodes": 1,
            "active_primary_shards": 0,
            "active_shards": 0,
            "relocating_shards": 0,
            "initializing_shards": 0,
            "unassigned_shards": 0,
            "number_of_pending_tasks": 0,
            "active_shards_percent_as_number": 100.0
        }),
    )
}

/// Templates, lifecycle policies, pipelines, data streams: nothing is
/// kept, so a read finds none (a shipper then writes its own) and a write
/// is acknowledged.
async fn resource(request: Request) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        let reason = format!(
            "{} is not stored: logtap takes templates, policies and pipelines and does not keep them",
            crate::error::clip_message(request.uri().path().to_string())
        );
        return error_body(
            StatusCode::NOT_FOUND,
            "resource_not_found_exception",
            &reason,
        );
    }
    answer(StatusCode::OK, &json!({"acknowledged": true}))
}

/// `GET /_cat/*`: no indices, templates or nodes to list.
async fn cat() -> Response {
    answer(StatusCode::OK, &json!([]))
}

/// Elasticsearch's error shape: `{"error":{"root_cause":[..],"type":..,
/// "reason":..},"status":N}`.
fn error_body(status: StatusCode, kind: &str, reason: &str) -> Response {
    let cause = json!({"type": kind, "reason": reason});
    answer(
        status,
        &json!({
            "error": {"root_cause": [cause], "type": kind, "reason": reason},
            "status": status.as_u16()
        }),
    )
}

/// `POST /_bulk`.
async fn bulk_here(State(state): State<Elasticsearch>, headers: HeaderMap, body: Body) -> Response {
    bulk(state, None, headers, body).await
}

/// `POST /{index}/_bulk`.
async fn bulk_into(
    State(state): State<Elasticsearch>,
    Path(index): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    bulk(state, Some(index), headers, body).await
}

/// One bulk request: the per-item answer, or the whole request's refusal.
async fn bulk(
    state: Elasticsearch,
    index: Option<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let request_id = RequestId::from_headers(&headers);
    let mut response = match receive(&state, index, &headers, body).await {
        Ok(answered) => {
            tracing::debug!(
                request_id = %request_id,
                items = answered.count,
                errors = answered.errors,
                "An Elasticsearch bulk request was answered."
            );
            // Elasticsearch's order: Fluent Bit, given a body larger than
            // its buffer, looks for `"errors":false,"items":[` as text.
            let body = format!(
                "{{\"took\":{},\"errors\":{},\"items\":{}}}",
                started.elapsed().as_millis(),
                answered.errors,
                answered.items
            );
            answer_text(StatusCode::OK, body)
        }
        Err(error) => {
            if error.http_status() == StatusCode::PAYLOAD_TOO_LARGE {
                state.shared.metrics.limit_hit(Limit::MessageSize);
            }
            ingest::refused(&state.shared, Protocol::Elasticsearch, &error, 1);
            error_response(&request_id, &error)
        }
    };
    request_id.insert_into_headers(response.headers_mut());
    response
}

/// What a bulk request was answered.
struct Answered {
    /// The `items` array, as JSON text.
    items: String,
    /// How many items it holds.
    count: usize,
    /// Whether any was refused.
    errors: bool,
}

/// Reads, decodes and stores one bulk request: each item's answer, in the
/// request's order.
async fn receive(
    state: &Elasticsearch,
    index: Option<String>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Answered, ServeError> {
    check_content_type(headers)?;
    let encoding = ingest::content_encoding(headers)?;
    let limit = state.max_push_body_bytes;
    let raw = ingest::read_push_body(&state.shared, headers, body, limit).await?;
    let received = ingest::now_nanos();
    let items = tokio::task::spawn_blocking(move || decode(&raw, encoding, index, limit, received))
        .await
        .map_err(ServeError::join)??;

    let mut batch = Batcher::new(state.shared.store.limits());
    // Each item's answer; for a stored one, its place among the stored.
    let mut answers = Vec::with_capacity(items.len());
    let mut refused = 0;
    let mut stored = 0u64;
    for item in items {
        let Item {
            action,
            index,
            id,
            outcome,
        } = item;
        let kept = outcome
            .map_err(|error| (error.kind(), error.to_string()))
            .and_then(|entry| {
                batch
                    .add(entry)
                    .map_err(|error| ("document_parsing_exception", error.to_string()))
            });
        let place = match kept {
            Ok(()) => {
                stored += 1;
                Ok(stored - 1)
            }
            Err(error) => {
                refused += 1;
                Err(error)
            }
        };
        answers.push((action.name(), index, id, place));
    }
    if state.shared.shutdown.is_cancelled() {
        return Err(ServeError::ShuttingDown);
    }
    let receipt = ingest::append(&state.shared, Protocol::Elasticsearch, batch.take()).await?;
    // Counted once stored: a request refused whole counts one, not these.
    state
        .shared
        .metrics
        .ingest_refused(Protocol::Elasticsearch, "bad_input", refused);
    let count = answers.len();
    let mut items = String::with_capacity(count * 200);
    items.push('[');
    for (at, (name, index, id, place)) in answers.into_iter().enumerate() {
        if at > 0 {
            items.push(',');
        }
        write_item(
            &mut items,
            name,
            index.as_deref().unwrap_or(""),
            id.as_deref(),
            place.map(|place| receipt.first_cursor + place),
        );
    }
    items.push(']');
    Ok(Answered {
        items,
        count,
        errors: refused > 0,
    })
}

/// Writes one item of a bulk answer, as Elasticsearch writes it: for a
/// stored entry (`Ok` with its cursor, the `_id` when the action gave
/// none) `created` and 201, for a refused one 400 and the error. Written by
/// hand: serde_json's maps would cost more than the rest of the item.
fn write_item(
    out: &mut String,
    action: &str,
    index: &str,
    id: Option<&str>,
    outcome: Result<u64, (&str, String)>,
) {
    use logtap_core::json::write_string;
    use std::fmt::Write;
    out.push_str("{\"");
    out.push_str(action);
    out.push_str("\":{\"_index\":");
    write_string(out, index);
    out.push_str(",\"_id\":");
    match (&outcome, id) {
        (_, Some(id)) => write_string(out, id),
        (Ok(cursor), None) => {
            // Writing to a String cannot fail.
            let _ = write!(out, "\"{cursor}\"");
        }
        (Err(_), None) => out.push_str("null"),
    }
    match outcome {
        Ok(cursor) => {
            let _ = write!(
                out,
                ",\"_version\":1,\"result\":\"created\",\"_shards\":{{\"total\":1,\"successful\":1,\"failed\":0}},\"_seq_no\":{cursor},\"_primary_term\":1,\"status\":201}}}}"
            );
        }
        Err((kind, reason)) => {
            out.push_str(",\"status\":400,\"error\":{\"type\":");
            write_string(out, kind);
            out.push_str(",\"reason\":");
            write_string(out, &crate::error::clip_message(reason));
            out.push_str("}}}");
        }
    }
}

/// Undoes the coding and decodes the lines.
fn decode(
    raw: &[u8],
    encoding: Encoding,
    index: Option<String>,
    limit: u64,
    received: i64,
) -> Result<Vec<Item>, ServeError> {
    let body = loki::decompress(encoding, raw, limit)?;
    Ok(elasticsearch::decode(&body, index.as_deref(), received)?)
}

/// Refuses a `Content-Type` a bulk body does not come in: NDJSON and JSON
/// types (Elasticsearch's `application/vnd.elasticsearch+x-ndjson` too) or
/// none are taken.
fn check_content_type(headers: &HeaderMap) -> Result<(), ServeError> {
    let (essence, sent) = ingest::media_type(headers);
    let taken = essence.is_empty()
        || essence == "application/json"
        || essence == "application/x-ndjson"
        || (essence.starts_with("application/")
            && (essence.ends_with("+json") || essence.ends_with("+x-ndjson")));
    if taken {
        Ok(())
    } else {
        Err(ServeError::UnsupportedBulkContentType(sent))
    }
}

/// A refused request as Elasticsearch answers one, with `Retry-After` on
/// the statuses shippers retry.
fn error_response(request_id: &RequestId, error: &ServeError) -> Response {
    ingest::log_refusal(request_id, error, "An Elasticsearch bulk request");
    let status = error.bulk_http_status();
    let kind = match status {
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
            "es_rejected_execution_exception"
        }
        StatusCode::PAYLOAD_TOO_LARGE => "content_too_long_exception",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "content_type_header_exception",
        status if status.is_server_error() => "exception",
        _ => match error {
            ServeError::BulkBody(_) => "illegal_argument_exception",
            _ => "parse_exception",
        },
    };
    let mut response = error_body(status, kind, &crate::error::clip_message(error.to_string()));
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(content_type: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(content_type).unwrap(),
        );
        map
    }

    #[test]
    fn the_types_shippers_send_are_taken_and_forms_are_not() {
        assert!(check_content_type(&HeaderMap::new()).is_ok());
        for taken in [
            "application/x-ndjson",
            "application/json; charset=UTF-8",
            "application/vnd.elasticsearch+x-ndjson; compatible-with=9",
            "application/vnd.elasticsearch+json; compatible-with=8",
        ] {
            assert!(check_content_type(&headers(taken)).is_ok(), "{taken}");
        }
        for refused in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ] {
            let error = check_content_type(&headers(refused)).unwrap_err();
            assert_eq!(error.http_status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        }
    }
}
