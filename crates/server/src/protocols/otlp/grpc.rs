//! OTLP logs over gRPC: `opentelemetry.proto.collector.logs.v1.LogsService/
//! Export` on the main port, hand-wired like the other services
//! ([`crate::grpc::method`]), so an exporter pointed at the server with
//! `http://HOST:PORT` and no path reaches it.
//!
//! tonic's codec reads the request straight into entries
//! ([`logtap_ingest::otlp::ExportLogs`], the field-by-field reader of the
//! HTTP route; a malformed message is INTERNAL, as with every service
//! here, and nothing of it is stored); they are stored by
//! [`super::store`], as over HTTP. The answer comes once they are durable,
//! with `partial_success` for records refused; a full disk, a shutdown or
//! the request budget are UNAVAILABLE, which exporters retry.

use crate::grpc::method::{Limits, Method, ServiceRoutes};
use crate::security::access::{Access, Methods, Route};
use crate::stream::metadata::RequestId;
use crate::stream::state::Shared;
use axum::Router;
use futures::FutureExt;
use logtap_ingest::otlp::{ExportLogs, ExportLogsServiceResponse};
use tonic::{Request, Response, Status};

/// The service's full name.
pub const SERVICE_NAME: &str = "opentelemetry.proto.collector.logs.v1.LogsService";

/// What each method needs: Export writes, and so does any other path
/// under the service (answered UNIMPLEMENTED).
pub(crate) const ROUTES: [Route; 2] = [
    Route::exact(
        "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
        Methods::Any,
        Access::Write,
    ),
    Route::prefix(
        "/opentelemetry.proto.collector.logs.v1.LogsService/",
        Methods::Any,
        Access::Write,
    ),
];

/// Mounts the service on `router`.
pub(crate) fn routes(router: Router, shared: &Shared, limits: Limits) -> Router {
    let shared = shared.clone();
    let export = Method::unary(limits, move |request| {
        let shared = shared.clone();
        async move { export(&shared, request).await }.boxed()
    });
    ServiceRoutes::new(router, SERVICE_NAME)
        .method("Export", export)
        .finish()
}

/// One Export call.
async fn export(
    shared: &Shared,
    request: Request<ExportLogs>,
) -> Result<Response<ExportLogsServiceResponse>, Status> {
    let request_id = RequestId::from_metadata(request.metadata());
    let decoded = request.into_inner().into_decoded();
    match super::store(shared, decoded).await {
        Ok((stored, decoded)) => {
            tracing::debug!(
                request_id = %request_id,
                stored,
                rejected = decoded.rejected,
                "An OTLP gRPC export was stored."
            );
            Ok(Response::new(ExportLogsServiceResponse::for_decoded(
                &decoded,
            )))
        }
        Err(error) => {
            tracing::debug!(request_id = %request_id, error = %error, "An OTLP gRPC export was refused.");
            crate::ingest::refused(shared, crate::ingest::Protocol::Otlp, &error, 1);
            let mut status = error.to_otlp_status();
            request_id.insert_into(status.metadata_mut());
            Err(status)
        }
    }
}
