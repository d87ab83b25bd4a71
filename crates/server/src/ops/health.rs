//! Plain HTTP/1.1 routes on the gRPC port: `/metrics` and `/healthz`.
//!
//! Other routes (the protocols, the viewer at `/`) live in their own
//! modules and are merged in [`crate::server::app`].

use crate::state::Shared;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// The content type of the OpenMetrics text format prometheus-client writes;
/// Prometheus scrapes it as is.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `/metrics` and `/healthz`.
pub fn routes(shared: Shared) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .with_state(shared)
}

/// The Prometheus exposition.
async fn metrics(State(shared): State<Shared>) -> Response {
    let stats = shared.store.stats();
    let body = shared.metrics.render(stats);
    ([(header::CONTENT_TYPE, OPENMETRICS)], body).into_response()
}

/// 200 while the store is open and the server takes requests; 503 once it
/// is shutting down, so a load balancer stops sending new work.
async fn healthz(State(shared): State<Shared>) -> Response {
    if shared.shutdown.is_cancelled() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response()
    } else {
        (StatusCode::OK, "ok").into_response()
    }
}
