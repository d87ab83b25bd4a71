//! The seed's contract (`example.LogService`), served unchanged by the same
//! core as logtap.v1: a seed client's `level` becomes the same query, and
//! entries go out as the seed's `{message, timestamp}`, with the same
//! headers and trailers.

use crate::grpc::body::GrpcBody;
use crate::grpc::method::{Limits, Method, ServiceRoutes};
use crate::grpc::open_stream;
use crate::grpc::wire::SeedEncoder;
use crate::net::quota::Quota;
use crate::security::access::{Access, Methods, Route};
use crate::stream::metadata::RequestId;
use crate::stream::state::Shared;
use axum::Router;
use futures::FutureExt;
use logtap_proto::example::LogRequest;
use logtap_query::{Mode, Plan};
use tonic::{Request, Response, Status};

/// The seed service's full name, for routes and health checks.
pub const SERVICE_NAME: &str = "example.LogService";

/// What each method needs: both read. Any other path under the service
/// needs write, as for logtap.v1; `ServiceRoutes` answers it UNIMPLEMENTED.
pub(crate) const ROUTES: [Route; 3] = [
    Route::exact("/example.LogService/GetLogs", Methods::Any, Access::Read),
    Route::exact("/example.LogService/StreamLogs", Methods::Any, Access::Read),
    Route::prefix("/example.LogService/", Methods::Any, Access::Write),
];

/// Both of the seed's methods: the request's level, entries in the seed's
/// form (encoded straight from the store).
async fn read(
    shared: Shared,
    mode: Mode,
    request: Request<LogRequest>,
) -> Result<Response<GrpcBody>, Status> {
    let request_id = RequestId::from_metadata(request.metadata());
    let quota = request.extensions().get::<Quota>();
    let query = Plan::from_level(mode, &request.get_ref().level);
    open_stream(&shared, quota, request_id, query, SeedEncoder::default()).await
}

/// The seed's methods on their paths.
pub fn routes(router: Router, shared: &Shared, limits: Limits) -> Router {
    let reading = |mode: Mode| {
        let shared = shared.clone();
        Method::server_streaming(limits, move |request| {
            read(shared.clone(), mode, request).boxed()
        })
    };
    ServiceRoutes::new(router, SERVICE_NAME)
        .method("GetLogs", reading(Mode::History))
        .method("StreamLogs", reading(Mode::Tail))
        .finish()
}
