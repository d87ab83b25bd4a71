//! The seed's contract (`example.LogService`), served unchanged by the same
//! core as logtap.v1: a seed client's `level` becomes the same query, and
//! entries go out as the seed's `{message, timestamp}`, with the same
//! headers and trailers.

use crate::grpc::{open_stream, GrpcStream};
use crate::metadata::RequestId;
use crate::query::{Kind, Query};
use crate::state::Shared;
use logtap_proto::example::log_service_server::{LogService, LogServiceServer};
use logtap_proto::example::{LogEntry, LogRequest};
use logtap_store::EntryRef;
use tonic::{Request, Response, Status};

/// The seed service's full name, for health checks.
pub const SERVICE_NAME: &str = "example.LogService";

/// The seed's service.
#[derive(Debug, Clone)]
pub struct SeedApi {
    /// The store, live notifications, shutdown signal and metrics.
    shared: Shared,
}

/// The tonic server for the seed's service over `shared`.
pub fn server(shared: Shared) -> LogServiceServer<SeedApi> {
    LogServiceServer::new(SeedApi { shared })
}

/// An entry in the seed's form: message and timestamp only.
fn seed_entry(entry: &EntryRef<'_>) -> LogEntry {
    LogEntry {
        message: entry.message.to_string(),
        timestamp: entry.timestamp,
    }
}

#[tonic::async_trait]
impl LogService for SeedApi {
    type GetLogsStream = GrpcStream<LogEntry>;
    type StreamLogsStream = GrpcStream<LogEntry>;

    async fn get_logs(
        &self,
        request: Request<LogRequest>,
    ) -> Result<Response<Self::GetLogsStream>, Status> {
        let request_id = RequestId::from_metadata(request.metadata());
        let query = Query::from_level(Kind::GetLogs, &request.get_ref().level);
        open_stream(&self.shared, request_id, query, seed_entry).await
    }

    async fn stream_logs(
        &self,
        request: Request<LogRequest>,
    ) -> Result<Response<Self::StreamLogsStream>, Status> {
        let request_id = RequestId::from_metadata(request.metadata());
        let query = Query::from_level(Kind::StreamLogs, &request.get_ref().level);
        open_stream(&self.shared, request_id, query, seed_entry).await
    }
}

#[cfg(test)]
mod tests {
    use tonic::server::NamedService;

    #[test]
    fn the_service_name_is_the_seeds() {
        assert_eq!(
            <super::LogServiceServer<super::SeedApi> as NamedService>::NAME,
            super::SERVICE_NAME
        );
    }
}
