//! logtap's own gRPC service (`logtap.v1.LogService`): GetLogs and
//! StreamLogs over the shared stream, Push into the store, QueryMetrics
//! (LogQL metric queries, `stream/metric.rs`). What every gRPC
//! service shares (the response body, method wiring, health, reflection)
//! is in `grpc/`.

use crate::error::ServeError;
use crate::grpc::body::GrpcBody;
use crate::grpc::method::{Limits, Method, ServiceRoutes};
use crate::grpc::wire::V1Encoder;
use crate::grpc::{error_status, open_stream};
use crate::ingest::{self, now_nanos, Batcher, Protocol};
use crate::net::quota::Quota;
use crate::security::access::{Access, Methods, Route};
use crate::stream::metadata::{self, RequestId};
use crate::stream::metric;
use crate::stream::state::Shared;
use axum::Router;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use logtap_core::{AppendReceipt, Level, NewEntry};
use logtap_proto::v1::{
    LogEntry, LogRequest, MetricRequest, MetricSample, MetricStep, PushRequest, PushResponse,
};
use logtap_query::logql::{self, metric::Points};
use logtap_query::{Mode, Plan, QueryError, RawQuery};
use tonic::{Request, Response, Status, Streaming};

/// logtap.v1's service name, for routes and health checks.
pub const SERVICE_NAME: &str = "logtap.v1.LogService";

/// What each method needs. Any other path under the service needs write,
/// so a write method added later cannot slip through with a read token;
/// `ServiceRoutes` answers it UNIMPLEMENTED.
pub(crate) const ROUTES: [Route; 5] = [
    Route::exact("/logtap.v1.LogService/GetLogs", Methods::Any, Access::Read),
    Route::exact(
        "/logtap.v1.LogService/StreamLogs",
        Methods::Any,
        Access::Read,
    ),
    Route::exact("/logtap.v1.LogService/Push", Methods::Any, Access::Write),
    Route::exact(
        "/logtap.v1.LogService/QueryMetrics",
        Methods::Any,
        Access::Read,
    ),
    Route::prefix("/logtap.v1.LogService/", Methods::Any, Access::Write),
];

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
            // A protobuf map has no order; the batcher puts labels in the
            // one normal form, so what is stored (and read back) is the
            // same however the client's map iterated.
            let labels: Vec<(String, String)> = entry.labels.into_iter().collect();
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
    fn failed(self, shared: &Shared, request_id: &RequestId, cause: ServeError) -> Status {
        ingest::refused(shared, Protocol::Logtap, &cause, 1);
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

/// The PushRequests a Push has read and checked but not yet stored, as one
/// batch of the one batcher ([`Batcher`]): requests that arrive together
/// are stored with one append (one fsync), so a client sending many small
/// requests is read as fast as it sends and the backend is not asked for
/// one fsync per request.
struct Merged(Batcher);

impl Merged {
    /// Adds the next request of the stream (`None` at its end), if it is
    /// good. Returns why reading stops: `Some(None)` at the end,
    /// `Some(Some(error))` for a bad request or a failed read, which stores
    /// nothing of itself. Each request is checked alone, before it is
    /// merged, so one stays all or nothing and the ones before it are
    /// stored.
    fn take(
        &mut self,
        shared: &Shared,
        next: Option<Result<PushRequest, Status>>,
    ) -> Option<Option<ServeError>> {
        let request = match next {
            None => return Some(None),
            Some(Ok(request)) => request,
            Some(Err(status)) => {
                let error = ServeError::Inbound(status);
                // An over-large request is the message-size limit at work.
                shared.metrics.count_refusal(&error);
                return Some(Some(error));
            }
        };
        let entries = match batch_entries(request.entries, now_nanos()) {
            Ok(entries) => entries,
            Err(error) => return Some(Some(error)),
        };
        if let Err(error) = self.0.add_all(entries) {
            return Some(Some(ServeError::Store(error)));
        }
        None
    }
}

impl LogApi {
    /// GetLogs and StreamLogs: entries encoded straight from the store.
    async fn read(
        &self,
        mode: Mode,
        request: Request<LogRequest>,
    ) -> Result<Response<GrpcBody>, Status> {
        let request_id = RequestId::from_metadata(request.metadata());
        let quota = request.extensions().get::<Quota>().cloned();
        let query = Plan::parse(mode, raw_query(request.into_inner()));
        open_stream(
            &self.shared,
            quota.as_ref(),
            request_id,
            query,
            V1Encoder::default(),
        )
        .await
    }

    /// Push: stores each request's entries, all of a request or none.
    async fn push(
        &self,
        request: Request<Streaming<PushRequest>>,
    ) -> Result<Response<PushResponse>, Status> {
        let request_id = RequestId::from_metadata(request.metadata());
        let mut requests = request.into_inner();
        let shared = &self.shared;
        let mut pushed = Pushed::default();
        // The requests read but not yet handed to the store, as one batch.
        let mut merged = Merged(Batcher::new(shared.store.limits()));
        // The append in flight (at most one, so batches stay in order).
        let mut writing: Option<BoxFuture<'_, Result<AppendReceipt, ServeError>>> = None;
        // Why reading stopped: the client's end, or the error to answer
        // with once everything read before it is stored.
        let mut stop: Option<Option<ServeError>> = None;
        loop {
            let Some(append) = writing.as_mut() else {
                // Nothing is being written: take whatever else is already
                // here, then write it all as one batch, or wait for more.
                if stop.is_none() && shared.shutdown.is_cancelled() {
                    stop = Some(Some(ServeError::ShuttingDown));
                }
                while stop.is_none() && !merged.0.is_full() {
                    match requests.next().now_or_never() {
                        Some(next) => stop = merged.take(shared, next),
                        None => break,
                    }
                }
                if !merged.0.is_empty() {
                    writing = Some(Box::pin(ingest::append(
                        shared,
                        Protocol::Logtap,
                        merged.0.take(),
                    )));
                    continue;
                }
                match stop {
                    Some(None) => break,
                    Some(Some(error)) => return Err(pushed.failed(shared, &request_id, error)),
                    None => {}
                }
                tokio::select! {
                    biased;
                    () = shared.shutdown.cancelled() => stop = Some(Some(ServeError::ShuttingDown)),
                    next = requests.next() => stop = merged.take(shared, next),
                }
                continue;
            };
            // While a batch is written (and fsynced), keep reading the
            // next one, up to its bound, so the client's frames never wait
            // unread behind an fsync (h2 closes a connection on which too
            // many small frames wait: GOAWAY ENHANCE_YOUR_CALM).
            let reading = stop.is_none() && !merged.0.is_full();
            let written = tokio::select! {
                biased;
                written = append => written,
                () = shared.shutdown.cancelled(), if reading => {
                    stop = Some(Some(ServeError::ShuttingDown));
                    continue;
                }
                next = requests.next(), if reading => {
                    stop = merged.take(shared, next);
                    continue;
                }
            };
            writing = None;
            let receipt = written.map_err(|error| pushed.failed(shared, &request_id, error))?;
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

impl LogApi {
    /// QueryMetrics: the whole query evaluated, then one message a point.
    async fn query_metrics(
        &self,
        request: Request<MetricRequest>,
    ) -> Result<Response<BoxStream<'static, Result<MetricStep, Status>>>, Status> {
        let request_id = RequestId::from_metadata(request.metadata());
        let request = request.into_inner();
        let answer = async {
            let parsed = logql::parse_query(&request.query).map_err(QueryError::from)?;
            let expr = match parsed {
                logql::Query::Metric(expr) => expr,
                logql::Query::Log(_) => {
                    return Err(ServeError::Query(QueryError::BadParameter {
                        name: "query".into(),
                        reason: "a log query selects entries: ask GetLogs for them, or count them with e.g. count_over_time({...}[5m])".into(),
                    }))
                }
            };
            let points =
                Points::with_defaults(request.start, request.end, request.step, now_nanos())
                    .map_err(|reason| {
                        ServeError::Query(QueryError::BadParameter {
                            name: "start, end and step".into(),
                            reason,
                        })
                    })?;
            let value = metric::evaluate(&self.shared, std::sync::Arc::new(expr), points).await?;
            Ok(metric::by_point(value, points))
        };
        let steps = answer
            .await
            .map_err(|error: ServeError| error_status(&request_id, &error))?;
        let messages = steps.into_iter().map(|(timestamp, samples)| {
            Ok(MetricStep {
                timestamp,
                samples: samples
                    .into_iter()
                    .map(|(labels, value)| MetricSample {
                        labels: labels.into_iter().collect(),
                        value,
                    })
                    .collect(),
            })
        });
        let mut response = Response::new(futures::stream::iter(messages).boxed());
        request_id.insert_into(response.metadata_mut());
        Ok(response)
    }
}

/// logtap.v1's methods on their paths.
pub(crate) fn routes(router: Router, shared: &Shared, limits: Limits) -> Router {
    let api = LogApi::new(shared.clone());
    let reading = |mode: Mode| {
        let api = api.clone();
        Method::server_streaming(limits, move |request| {
            let api = api.clone();
            async move { api.read(mode, request).await }.boxed()
        })
    };
    let get_logs = reading(Mode::History);
    let stream_logs = reading(Mode::Tail);
    let push = Method::client_streaming(limits, {
        let api = api.clone();
        move |request| {
            let api = api.clone();
            async move { api.push(request).await }.boxed()
        }
    });
    let query_metrics = Method::server_streaming_messages(limits, move |request| {
        let api = api.clone();
        async move { api.query_metrics(request).await }.boxed()
    });
    ServiceRoutes::new(router, SERVICE_NAME)
        .method("GetLogs", get_logs)
        .method("StreamLogs", stream_logs)
        .method("Push", push)
        .method("QueryMetrics", query_metrics)
        .finish()
}

/// A `LogRequest`'s filters as the query planner takes them: the protocol,
/// not the planner, knows the wire form.
fn raw_query(request: LogRequest) -> RawQuery {
    RawQuery {
        level: request.level,
        since: request.since,
        until: request.until,
        grep: request.grep,
        regex: request.regex,
        ignore_case: request.ignore_case,
        query: request.query,
        labels: request.labels.into_iter().collect(),
        after_cursor: request.after_cursor,
        limit: request.limit,
        reverse: request.reverse,
        follow: request.follow,
    }
}
