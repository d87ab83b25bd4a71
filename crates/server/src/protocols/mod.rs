//! One folder per wire protocol: logtap.v1 ([`logtap`]), the seed's
//! `example.LogService` ([`seed`]) and the plain HTTP API ([`http_api`]).
//!
//! Only `protocols/*` knows a wire format: a protocol turns its requests into
//! a `Query` or a batch of entries and its answers out of a `TailStream`,
//! using `grpc/`, `stream/` and `ingest/`, never another protocol. Adding a
//! protocol is one folder here and one line in the lists below.

pub(crate) mod http_api;
pub(crate) mod logtap;
pub(crate) mod seed;

use crate::config::ServerConfig;
use crate::grpc::method::Limits;
use crate::stream::state::Shared;
use axum::Router;
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

/// The gRPC services served here, by full name, for health checks.
pub(crate) const GRPC_SERVICES: [&str; 2] = [logtap::SERVICE_NAME, seed::SERVICE_NAME];

/// The gRPC services: logtap.v1, the seed's example service, health and
/// reflection. Returns the routes and the health reporter, which shutdown
/// uses to say NOT_SERVING.
pub(crate) async fn grpc_routes(
    shared: &Shared,
    config: &ServerConfig,
) -> (Router, HealthReporter) {
    let limits = Limits {
        decoding: config.max_message_bytes,
        encoding: config.max_encoded_message_bytes(),
    };
    let mut router = logtap::routes(Router::new(), shared, limits);
    router = seed::routes(router, shared, limits);
    let (router, health) = crate::grpc::health_and_reflection(router);
    for name in GRPC_SERVICES {
        health
            .set_service_status(name, ServingStatus::Serving)
            .await;
    }
    (crate::grpc::remap_message_too_large(router, shared), health)
}

/// The plain HTTP routes of every protocol.
pub(crate) fn http_routes(shared: &Shared, config: &ServerConfig) -> Router {
    http_api::routes(shared.clone(), config)
}
