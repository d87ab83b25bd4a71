//! What every gRPC service here shares: methods wired by hand over tonic's
//! `Grpc` ([`method`]), the streaming response body ([`body`]), responses
//! encoded straight from the store ([`wire`]), turning a `TailStream` into a
//! response with headers up front and trailers at the end
//! ([`open_stream`]), and health, reflection and the message-size remap.
//!
//! Nothing here knows a service's messages: each protocol under
//! `protocols/` brings its own and uses these parts, never another protocol.

pub(crate) mod body;
pub(crate) mod method;
pub(crate) mod wire;

use crate::error::ServeError;
use crate::grpc::body::GrpcBody;
use crate::net::quota::Quota;
use crate::security::access::{Access, Methods, Route};
use crate::stream::metadata::{self, RequestId};
use crate::stream::state::Shared;
use crate::stream::tail::{self, Encode};
use axum::Router;
use bytes::Bytes;
use logtap_query::{Plan, QueryError};
use std::convert::Infallible;
use tonic::server::NamedService;
use tonic::{Code, Response, Status};
use tonic_health::server::HealthReporter;

/// Opens a reading stream for a gRPC call: the response (headers included)
/// is returned at once, before the first entry is read, and the body ends
/// with trailers. `quota` is the call's connection's (a request
/// extension), whose caps the stream counts against.
pub(crate) async fn open_stream<E>(
    shared: &Shared,
    quota: Option<&Quota>,
    request_id: RequestId,
    query: Result<Plan, QueryError>,
    encoder: E,
) -> Result<Response<GrpcBody>, Status>
where
    E: Encode<Out = Bytes>,
{
    let opened = match query {
        Ok(query) => tail::open(shared, quota, request_id.clone(), query, encoder).await,
        Err(error) => Err(ServeError::Query(error)),
    };
    let opened = opened.map_err(|error| error_status(&request_id, &error))?;
    let headers = metadata::stream_headers(&request_id, opened.total_count);
    let mut response = Response::new(GrpcBody::new(opened.stream, request_id));
    *response.metadata_mut() = headers;
    Ok(response)
}

/// The status a client sees for `error`, with the request id attached, and
/// logged at a level that says whose problem it is.
pub(crate) fn error_status(request_id: &RequestId, error: &ServeError) -> Status {
    match error.code() {
        Code::Internal | Code::DataLoss | Code::Unknown => {
            tracing::error!(request_id = %request_id, error = %error, detail = ?error, "A request failed.");
        }
        _ => tracing::debug!(request_id = %request_id, error = %error, "A request was refused."),
    }
    let mut status = error.to_status();
    request_id.insert_into(status.metadata_mut());
    status
}

/// The path prefix axum routes to a generated tonic service.
fn service_path<S: NamedService>() -> String {
    format!("/{}/{{*rest}}", S::NAME)
}

/// Routes one tonic service's methods.
pub(crate) fn route<S>(router: Router, service: S) -> Router
where
    S: tower::Service<
            http::Request<axum::body::Body>,
            Response = http::Response<tonic::body::Body>,
            Error = Infallible,
        > + NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    router.route_service(&service_path::<S>(), service)
}

/// The reflection builder, with every service served here, so grpcurl
/// works without .proto files.
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(logtap_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}

/// Health and reflection are open: they tell nothing about the logs.
pub(crate) const ROUTES: [Route; 3] = [
    Route::prefix("/grpc.health.v1.Health/", Methods::Any, Access::Open),
    Route::prefix(
        "/grpc.reflection.v1.ServerReflection/",
        Methods::Any,
        Access::Open,
    ),
    Route::prefix(
        "/grpc.reflection.v1alpha.ServerReflection/",
        Methods::Any,
        Access::Open,
    ),
];

/// gRPC health and reflection on their paths. Returns the health reporter,
/// which shutdown uses to say NOT_SERVING.
pub(crate) fn health_and_reflection(router: Router) -> (Router, HealthReporter) {
    let (router, health, _) = health_and_reflection_named(router);
    (router, health)
}

/// The full name of a tonic service.
fn service_name<S: NamedService>(_: &S) -> &'static str {
    S::NAME
}

/// [`health_and_reflection`], and the names of the services mounted, which
/// the route-access test holds against [`ROUTES`].
pub(crate) fn health_and_reflection_named(
    mut router: Router,
) -> (Router, HealthReporter, Vec<&'static str>) {
    let mut names = Vec::new();
    let (health, health_service) = tonic_health::server::health_reporter();
    names.push(service_name(&health_service));
    router = route(router, health_service);
    match reflection().build_v1() {
        Ok(service) => {
            names.push(service_name(&service));
            router = route(router, service);
        }
        Err(error) => {
            tracing::warn!(error = %error, "Could not build the reflection service (v1); grpcurl will need the .proto files.")
        }
    }
    match reflection().build_v1alpha() {
        Ok(service) => {
            names.push(service_name(&service));
            router = route(router, service);
        }
        Err(error) => {
            tracing::warn!(error = %error, "Could not build the reflection service (v1alpha); older grpcurl will need the .proto files.")
        }
    }
    (router, health, names)
}

/// Answers RESOURCE_EXHAUSTED, counted, for a request message tonic refused
/// as too large before any handler ran, on every gRPC route of `router`.
pub(crate) fn remap_message_too_large(router: Router, shared: &Shared) -> Router {
    router.layer(axum::middleware::map_response_with_state(
        std::sync::Arc::clone(&shared.metrics),
        message_too_large,
    ))
}

/// RESOURCE_EXHAUSTED, counted, for a request message tonic refused as too
/// large before any handler ran (see `error::remap_message_too_large`).
async fn message_too_large(
    axum::extract::State(metrics): axum::extract::State<
        std::sync::Arc<crate::ops::metrics::Metrics>,
    >,
    mut response: axum::response::Response,
) -> axum::response::Response {
    if crate::error::remap_message_too_large(&mut response) {
        metrics.limit_hit(crate::ops::metrics::Limit::MessageSize);
    }
    response
}
