//! logtap's own gRPC service (`logtap.v1.LogService`), and what every gRPC
//! service here shares: turning a [`TailStream`] into a gRPC response with
//! headers up front and trailers at the end, and the routes that put the
//! services, health and reflection on the one port.

use crate::config::ServerConfig;
use crate::error::ServeError;
use crate::ingest::{self, now_nanos};
use crate::metadata::{self, RequestId};
use crate::query::{Kind, Query, QueryError};
use crate::state::Shared;
use crate::tail::{self, Item, TailStream};
use axum::Router;
use futures::{Stream, StreamExt};
use logtap_proto::v1::log_service_server::{LogService, LogServiceServer};
use logtap_proto::v1::{LogEntry, LogRequest, PushRequest, PushResponse};
use logtap_store::{EntryRef, Level, NewEntry};
use std::convert::Infallible;
use std::pin::Pin;
use tonic::server::NamedService;
use tonic::{Code, Request, Response, Status, Streaming};
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

/// The response stream of every server-streaming method.
pub type GrpcStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Opens a reading stream for a gRPC call: the response (headers included)
/// is returned at once, before the first entry is read, and the stream ends
/// with trailers.
pub(crate) async fn open_stream<T, F>(
    shared: &Shared,
    request_id: RequestId,
    query: Result<Query, QueryError>,
    map: F,
) -> Result<Response<GrpcStream<T>>, Status>
where
    T: Send + 'static,
    F: FnMut(&EntryRef<'_>) -> T + Send + 'static,
{
    let opened = match query {
        Ok(query) => tail::open(shared, request_id.clone(), query, map).await,
        Err(error) => Err(ServeError::Query(error)),
    };
    let opened = opened.map_err(|error| error_status(&request_id, &error))?;
    let headers = metadata::stream_headers(&request_id, opened.total_count);
    let stream = into_grpc_stream(opened.stream, request_id);
    let mut response = Response::new(stream);
    *response.metadata_mut() = headers;
    Ok(response)
}

/// Maps stream items to gRPC: entries as messages, the end as trailers.
///
/// tonic has no trailer API for streams, but it turns an `Err(status)` item
/// into the trailers (status code, message and the status' metadata) and
/// ends the stream; an OK status with metadata is a clean end with trailers.
fn into_grpc_stream<T: Send + 'static>(
    stream: TailStream<T>,
    request_id: RequestId,
) -> GrpcStream<T> {
    Box::pin(stream.map(move |item| match item {
        Item::Entry(entry) => Ok(entry),
        Item::End(end) => {
            let trailers = metadata::stream_trailers(&request_id, &end.summary);
            Err(match end.error {
                None => Status::with_metadata(Code::Ok, "", trailers),
                Some(error) => Status::with_metadata(error.code(), error.to_string(), trailers),
            })
        }
    }))
}

/// The status a client sees for `error`, with the request id attached, and
/// logged at a level that says whose problem it is.
pub(crate) fn error_status(request_id: &RequestId, error: &ServeError) -> Status {
    match error.code() {
        Code::Internal | Code::DataLoss | Code::Unknown => {
            tracing::error!(request_id = %request_id, error = %error, "A request failed.");
        }
        _ => tracing::debug!(request_id = %request_id, error = %error, "A request was refused."),
    }
    let mut status = error.to_status();
    request_id.insert_into(status.metadata_mut());
    status
}

/// logtap's own API.
#[derive(Debug, Clone)]
pub struct LogApi {
    /// The store, live notifications, shutdown signal and metrics.
    shared: Shared,
}

impl LogApi {
    /// The service over `shared`.
    pub fn new(shared: Shared) -> Self {
        LogApi { shared }
    }
}

/// An entry in logtap.v1's form.
pub fn v1_entry(entry: &EntryRef<'_>) -> LogEntry {
    LogEntry {
        message: entry.message.to_string(),
        timestamp: entry.timestamp,
        level: entry.level.as_str().to_string(),
        cursor: entry.cursor,
        labels: entry
            .labels()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect(),
    }
}

/// Turns one pushed batch into store entries: an empty level means info, a
/// zero timestamp means `received_at`. An unknown level refuses the whole
/// batch, so a batch is stored entirely or not at all.
pub fn batch_entries(
    entries: Vec<LogEntry>,
    received_at: i64,
) -> Result<Vec<NewEntry>, ServeError> {
    entries
        .into_iter()
        .enumerate()
        .map(|(index, entry)| {
            let level = if entry.level.trim().is_empty() {
                Level::Info
            } else {
                Level::parse(&entry.level)
                    .map_err(|source| ServeError::UnknownLevel { index, source })?
            };
            let mut labels: Vec<(String, String)> = entry.labels.into_iter().collect();
            // A protobuf map has no order; sorting keeps what is stored (and
            // read back) the same however the client's map iterated.
            labels.sort();
            Ok(NewEntry {
                timestamp: if entry.timestamp == 0 {
                    received_at
                } else {
                    entry.timestamp
                },
                level,
                message: entry.message,
                labels,
            })
        })
        .collect()
}

/// What a Push has stored so far; the reply, or the context of its error.
#[derive(Debug, Default, Clone, Copy)]
struct Pushed {
    /// Entries stored by the batches so far.
    stored: u64,
    /// The cursor of the last entry stored.
    last_cursor: u64,
}

impl Pushed {
    /// `cause` with what was stored before it, and the same in metadata so
    /// a program can resume without parsing the message.
    fn failed(self, request_id: &RequestId, cause: ServeError) -> Status {
        let error = ServeError::PushFailed {
            stored: self.stored,
            last_cursor: self.last_cursor,
            cause: Box::new(cause),
        };
        let mut status = error_status(request_id, &error);
        status
            .metadata_mut()
            .insert(metadata::STORED, self.stored.into());
        status
            .metadata_mut()
            .insert(metadata::LAST_CURSOR, self.last_cursor.into());
        status
    }
}

#[tonic::async_trait]
impl LogService for LogApi {
    type GetLogsStream = GrpcStream<LogEntry>;
    type StreamLogsStream = GrpcStream<LogEntry>;

    async fn get_logs(
        &self,
        request: Request<LogRequest>,
    ) -> Result<Response<Self::GetLogsStream>, Status> {
        let request_id = RequestId::from_metadata(request.metadata());
        let query = Query::parse(Kind::GetLogs, request.into_inner().into());
        open_stream(&self.shared, request_id, query, v1_entry).await
    }

    async fn stream_logs(
        &self,
        request: Request<LogRequest>,
    ) -> Result<Response<Self::StreamLogsStream>, Status> {
        let request_id = RequestId::from_metadata(request.metadata());
        let query = Query::parse(Kind::StreamLogs, request.into_inner().into());
        open_stream(&self.shared, request_id, query, v1_entry).await
    }

    async fn push(
        &self,
        request: Request<Streaming<PushRequest>>,
    ) -> Result<Response<PushResponse>, Status> {
        let request_id = RequestId::from_metadata(request.metadata());
        let mut batches = request.into_inner();
        let mut pushed = Pushed::default();
        loop {
            if self.shared.shutdown.is_cancelled() {
                return Err(pushed.failed(&request_id, ServeError::ShuttingDown));
            }
            let batch = tokio::select! {
                biased;
                () = self.shared.shutdown.cancelled() => {
                    return Err(pushed.failed(&request_id, ServeError::ShuttingDown));
                }
                batch = batches.message() => batch,
            };
            let batch = match batch {
                Ok(Some(batch)) => batch,
                Ok(None) => break,
                Err(status) => {
                    let error = ServeError::Inbound(status);
                    // An over-large batch is the message-size limit at work.
                    self.shared.metrics.count_refusal(&error);
                    return Err(pushed.failed(&request_id, error));
                }
            };
            let entries = batch_entries(batch.entries, now_nanos())
                .map_err(|error| pushed.failed(&request_id, error))?;
            let receipt = ingest::append(&self.shared, entries)
                .await
                .map_err(|error| pushed.failed(&request_id, error))?;
            if receipt.count > 0 {
                pushed.stored += receipt.count;
                pushed.last_cursor = receipt.last_cursor;
            }
        }
        tracing::debug!(
            request_id = %request_id,
            stored = pushed.stored,
            last_cursor = pushed.last_cursor,
            "A push was stored."
        );
        let mut response = Response::new(PushResponse {
            stored: pushed.stored,
            last_cursor: pushed.last_cursor,
        });
        request_id.insert_into(response.metadata_mut());
        Ok(response)
    }
}

/// The path prefix axum routes to a tonic service.
fn service_path<S: NamedService>() -> String {
    format!("/{}/{{*rest}}", S::NAME)
}

/// Routes one tonic service's methods.
fn route<S>(router: Router, service: S) -> Router
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

/// The gRPC services: logtap.v1, the seed's example service, health and
/// reflection. Returns the routes and the health reporter, which shutdown
/// uses to say NOT_SERVING.
pub async fn routes(shared: &Shared, config: &ServerConfig) -> (Router, HealthReporter) {
    let limit = config.max_message_bytes;
    let out_limit = config.max_encoded_message_bytes();
    let v1 = LogServiceServer::new(LogApi::new(shared.clone()))
        .max_decoding_message_size(limit)
        .max_encoding_message_size(out_limit);
    let seed = crate::seed::server(shared.clone())
        .max_decoding_message_size(limit)
        .max_encoding_message_size(out_limit);
    let (health, health_service) = tonic_health::server::health_reporter();
    for name in [
        <LogServiceServer<LogApi> as NamedService>::NAME,
        crate::seed::SERVICE_NAME,
    ] {
        health
            .set_service_status(name, ServingStatus::Serving)
            .await;
    }
    let mut router = Router::new();
    router = route(router, v1);
    router = route(router, seed);
    router = route(router, health_service);
    match reflection().build_v1() {
        Ok(service) => router = route(router, service),
        Err(error) => {
            tracing::warn!(error = %error, "Could not build the reflection service (v1); grpcurl will need the .proto files.")
        }
    }
    match reflection().build_v1alpha() {
        Ok(service) => router = route(router, service),
        Err(error) => {
            tracing::warn!(error = %error, "Could not build the reflection service (v1alpha); older grpcurl will need the .proto files.")
        }
    }
    let router = router.layer(axum::middleware::map_response_with_state(
        std::sync::Arc::clone(&shared.metrics),
        message_too_large,
    ));
    (router, health)
}

/// RESOURCE_EXHAUSTED, counted, for a request message tonic refused as too
/// large before any handler ran (see `error::remap_message_too_large`).
async fn message_too_large(
    axum::extract::State(metrics): axum::extract::State<std::sync::Arc<crate::metrics::Metrics>>,
    mut response: axum::response::Response,
) -> axum::response::Response {
    if crate::error::remap_message_too_large(&mut response) {
        metrics.limit_hit(crate::metrics::Limit::MessageSize);
    }
    response
}
