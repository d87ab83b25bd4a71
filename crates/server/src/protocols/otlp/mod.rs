//! OTLP logs over HTTP (here) and gRPC ([`grpc`]), so OpenTelemetry SDKs
//! and Collectors can export to logtap unchanged.
//!
//! | Route | Access | Answer |
//! | --- | --- | --- |
//! | `POST /v1/logs` | write | 200 `ExportLogsServiceResponse` once durable |
//! | `POST /otlp/v1/logs` | write | the same, under the prefix some shippers add |
//!
//! What a request becomes is the ingest crate's ([`logtap_ingest::otlp`]).
//! The body is read whole (counted against the request budget as it
//! arrives, `net::request_body`), then, on the blocking pool:
//!
//! 1. its `Content-Encoding` is undone: gzip (what the exporters send),
//!    deflate, identity; any other coding is 415;
//! 2. it is decoded by its `Content-Type`: `application/x-protobuf` is
//!    protobuf, `application/json` is OTLP/JSON; any other type is 415,
//!    which also keeps a web page from posting a form into the server.
//!
//! The body, and what it decompresses to, are both bounded by
//! `max_push_body_bytes` (413). A body that does not decode is 400 and
//! nothing of it is stored. A record the store cannot keep (a time past
//! 2262, a label over the backend's limits) is left out and reported in
//! the answer's `partial_success`, the rest are stored: OTLP's own way to
//! say some records were refused, which exporters log and do not retry.
//! The records go through the one [`Batcher`] and one [`ingest::append`],
//! and the answer comes only once they are durable. A full disk, a
//! shutdown or the request budget answer 503 with `Retry-After`, which
//! OTLP exporters retry. Errors are a `google.rpc.Status` in the request's
//! form (protobuf or JSON), as the OTLP specification asks.

pub(crate) mod grpc;

use crate::config::ServerConfig;
use crate::error::ServeError;
use crate::ingest::{self, Batcher, Protocol};
use crate::ops::metrics::Limit;
use crate::security::access::{Access, Methods, Route};
use crate::stream::metadata::RequestId;
use crate::stream::state::Shared;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use logtap_ingest::loki::{self, Encoding};
use logtap_ingest::otlp::{self, Decoded, ExportLogsServiceResponse};

/// What each route needs.
pub(crate) const ROUTES: [Route; 2] = [
    Route::exact("/v1/logs", Methods::Post, Access::Write),
    Route::exact("/otlp/v1/logs", Methods::Post, Access::Write),
];

/// What the OTLP routes share.
#[derive(Debug, Clone)]
pub struct Otlp {
    /// The store, shutdown signal and metrics.
    pub shared: Shared,
    /// The largest body accepted, in bytes, before and after decompression.
    pub max_push_body_bytes: u64,
}

/// `POST /v1/logs` and `POST /otlp/v1/logs`.
pub fn routes(shared: Shared, config: &ServerConfig) -> Router {
    let state = Otlp {
        shared,
        max_push_body_bytes: config.max_push_body_bytes,
    };
    Router::new()
        .route("/v1/logs", post(export))
        .route("/otlp/v1/logs", post(export))
        .with_state(state)
}

/// The two forms of a request and its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json`: OTLP/JSON.
    Json,
}

/// `POST /v1/logs`.
async fn export(State(state): State<Otlp>, headers: HeaderMap, body: Body) -> Response {
    let request_id = RequestId::from_headers(&headers);
    // An unknown type still gets its error in protobuf, OTLP's default.
    let answer_form = form(&headers).unwrap_or(Form::Protobuf);
    match receive(&state, &headers, body).await {
        Ok((stored, decoded)) => {
            let answer = ExportLogsServiceResponse::for_decoded(&decoded);
            tracing::debug!(
                request_id = %request_id,
                stored,
                rejected = decoded.rejected,
                "An OTLP export was stored."
            );
            let (content_type, bytes) = match answer_form {
                Form::Protobuf => (
                    "application/x-protobuf",
                    prost::Message::encode_to_vec(&answer),
                ),
                Form::Json => ("application/json", answer.to_json().into_bytes()),
            };
            let mut response = (
                StatusCode::OK,
                [(header::CONTENT_TYPE, content_type)],
                bytes,
            )
                .into_response();
            request_id.insert_into_headers(response.headers_mut());
            response
        }
        Err(error) => {
            if error.http_status() == StatusCode::PAYLOAD_TOO_LARGE {
                state.shared.metrics.limit_hit(Limit::MessageSize);
            }
            ingest::refused(&state.shared, Protocol::Otlp, &error, 1);
            error_response(&request_id, answer_form, &error)
        }
    }
}

/// Reads, decodes and stores one export: how many entries were stored,
/// and what was decoded without them.
async fn receive(
    state: &Otlp,
    headers: &HeaderMap,
    body: Body,
) -> Result<(usize, Decoded), ServeError> {
    let form = form(headers)?;
    let encoding = ingest::content_encoding(headers)?;
    let limit = state.max_push_body_bytes;
    let raw = ingest::read_push_body(&state.shared, headers, body, limit).await?;
    let received = ingest::now_nanos();
    let decoded =
        tokio::task::spawn_blocking(move || decode(&raw, encoding, form, limit, received))
            .await
            .map_err(ServeError::join)??;
    store(&state.shared, decoded).await
}

/// Stores what a request decoded to, all through one batch; records the
/// backend refuses are left out and counted as rejected. Shared with the
/// gRPC service. Returns how many were stored, and what was decoded
/// without its entries, which went to the store.
pub(crate) async fn store(
    shared: &Shared,
    mut decoded: Decoded,
) -> Result<(usize, Decoded), ServeError> {
    let mut batch = Batcher::new(shared.store.limits());
    for (index, entry) in std::mem::take(&mut decoded.entries).into_iter().enumerate() {
        if let Err(error) = batch.add(entry) {
            decoded.rejected += 1;
            if decoded.error_message.is_empty() {
                decoded.error_message =
                    crate::error::clip_message(format!("record {index}: {error}"));
            }
        }
    }
    if shared.shutdown.is_cancelled() {
        return Err(ServeError::ShuttingDown);
    }
    let entries = batch.take();
    let stored = entries.len();
    ingest::append(shared, Protocol::Otlp, entries).await?;
    // Counted once stored: a request refused whole counts one, not these.
    shared
        .metrics
        .ingest_refused(Protocol::Otlp, "bad_input", decoded.rejected);
    Ok((stored, decoded))
}

/// Undoes the coding and decodes.
fn decode(
    raw: &[u8],
    encoding: Encoding,
    form: Form,
    limit: u64,
    received: i64,
) -> Result<Decoded, ServeError> {
    let body = loki::decompress(encoding, raw, limit)?;
    Ok(match form {
        Form::Protobuf => otlp::decode_protobuf(&body, received)?,
        Form::Json => otlp::decode_json(&body, received)?,
    })
}

/// The decoder a `Content-Type` asks for.
fn form(headers: &HeaderMap) -> Result<Form, ServeError> {
    let (essence, sent) = ingest::media_type(headers);
    match essence.as_str() {
        "application/x-protobuf" | "application/protobuf" => Ok(Form::Protobuf),
        "application/json" => Ok(Form::Json),
        _ => Err(ServeError::UnsupportedOtlpContentType(sent)),
    }
}

/// `google.rpc.Status`, the body of an OTLP/HTTP error.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    /// The gRPC code.
    #[prost(int32, tag = "1")]
    code: i32,
    /// What went wrong.
    #[prost(string, tag = "2")]
    message: String,
}

/// A refusal as OTLP/HTTP answers one: the status, a `google.rpc.Status`
/// in the request's form, `Retry-After` on the statuses exporters retry.
fn error_response(request_id: &RequestId, form: Form, error: &ServeError) -> Response {
    ingest::log_refusal(request_id, error, "An OTLP export");
    let status = error.otlp_http_status();
    let rpc = RpcStatus {
        code: error.otlp_code() as i32,
        message: crate::error::clip_message(error.to_string()),
    };
    let (content_type, bytes) = match form {
        Form::Protobuf => (
            "application/x-protobuf",
            prost::Message::encode_to_vec(&rpc),
        ),
        Form::Json => (
            "application/json",
            serde_json::json!({"code": rpc.code, "message": rpc.message})
                .to_string()
                .into_bytes(),
        ),
    };
    let mut response = (status, [(header::CONTENT_TYPE, content_type)], bytes).into_response();
    let headers = response.headers_mut();
    request_id.insert_into_headers(headers);
    if matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS
            | StatusCode::BAD_GATEWAY
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT
    ) {
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}
