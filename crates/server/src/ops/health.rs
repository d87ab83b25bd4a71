//! Plain HTTP/1.1 routes on the gRPC port: `/metrics` and `/healthz`.
//!
//! Other routes (the protocols, the viewer at `/`) live in their own
//! modules and are merged in [`crate::server::app`].

use crate::ops::metrics::Metrics;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use logtap_core::Backend;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The content type of the OpenMetrics text format prometheus-client writes;
/// Prometheus scrapes it as is.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What the two routes read: the handles they need of `Shared`, and no
/// more, so that ops stays below the stream in the layers.
#[derive(Clone)]
struct Handles {
    store: Arc<dyn Backend>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
}

/// `/metrics` and `/healthz`, over the store, the metrics and the shutdown
/// token the request handlers share.
pub(crate) fn routes(
    store: Arc<dyn Backend>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(healthz))
        .with_state(Handles {
            store,
            metrics,
            shutdown,
        })
}

/// The Prometheus exposition.
async fn metrics_text(State(handles): State<Handles>) -> Response {
    let stats = handles.store.stats();
    let body = handles.metrics.render(stats);
    ([(header::CONTENT_TYPE, OPENMETRICS)], body).into_response()
}

/// 200 while the store is open and the server takes requests; 503 once it
/// is shutting down, so a load balancer stops sending new work.
async fn healthz(State(handles): State<Handles>) -> Response {
    if handles.shutdown.is_cancelled() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response()
    } else {
        (StatusCode::OK, "ok").into_response()
    }
}
