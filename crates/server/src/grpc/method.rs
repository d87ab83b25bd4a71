//! gRPC methods as tower services, wired by hand instead of generated.
//!
//! tonic's generated servers fix each method's response type to the prost
//! message, so every entry would be built as a `LogEntry` with owned
//! `String`s before being encoded, and framed one message per item. Here a
//! server-streaming method's responses are gRPC messages encoded and framed
//! straight from the store's records (see [`crate::grpc::wire`]), carried by a
//! [`GrpcBody`]; tonic's [`Grpc`] still decodes the request (and applies
//! its size limit), makes the response's head, and answers a failed call
//! with its status. [`ServiceRoutes`] puts each method on its path and
//! answers UNIMPLEMENTED for any other method of a service, as a generated
//! server would.

use crate::grpc::body::GrpcBody;
use axum::Router;
use futures::future::BoxFuture;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tonic::server::Grpc;
use tonic::{Request, Response, Status, Streaming};
use tonic_prost::ProstCodec;

/// The HTTP request every method receives from the router.
type HttpRequest = http::Request<axum::body::Body>;

/// The HTTP response every method answers with.
type HttpResponse = http::Response<tonic::body::Body>;

/// The message size limits of every method.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest request message accepted.
    pub decoding: usize,
    /// The largest response message sent.
    pub encoding: usize,
}

impl Limits {
    /// A tonic `Grpc` for `codec` with these limits.
    fn grpc<C: tonic::codec::Codec>(self, codec: C) -> Grpc<C> {
        Grpc::new(codec).apply_max_message_size_config(Some(self.decoding), Some(self.encoding))
    }
}

/// What a server-streaming handler returns.
type StreamingFuture = BoxFuture<'static, Result<Response<GrpcBody>, Status>>;

/// What a client-streaming handler returns.
type UnaryFuture<R> = BoxFuture<'static, Result<Response<R>, Status>>;

/// What a [`Method::server_streaming_messages`] handler returns.
pub type MessagesFuture<R> = BoxFuture<
    'static,
    Result<Response<futures::stream::BoxStream<'static, Result<R, Status>>>, Status>,
>;

/// One gRPC method as a tower service: an HTTP request in, the gRPC
/// response (status and trailers included) out.
#[derive(Clone)]
pub struct Method(Arc<dyn Fn(HttpRequest) -> BoxFuture<'static, HttpResponse> + Send + Sync>);

impl Method {
    /// A server-streaming method whose `handler` answers a decoded request
    /// with a body of messages it has encoded and framed already.
    ///
    /// tonic runs the call as usual, with an empty stream of responses;
    /// when the handler succeeded, its body replaces tonic's in the
    /// response tonic made. When the request could not be decoded or the
    /// handler failed, tonic's response (the status) goes out as it is.
    pub fn server_streaming<D>(
        limits: Limits,
        handler: impl Fn(Request<D>) -> StreamingFuture + Clone + Send + Sync + 'static,
    ) -> Method
    where
        D: prost::Message + Default + Send + 'static,
    {
        Method(Arc::new(move |request| {
            let mut grpc = limits.grpc(ProstCodec::<(), D>::default());
            let body = Arc::new(Mutex::new(None));
            let method = tower::service_fn({
                let handler = handler.clone();
                let body = Arc::clone(&body);
                move |request| {
                    let handler = handler.clone();
                    let body = Arc::clone(&body);
                    async move {
                        let (metadata, ours, extensions) = handler(request).await?.into_parts();
                        *body.lock().unwrap_or_else(|e| e.into_inner()) = Some(ours);
                        let none = futures::stream::empty::<Result<(), Status>>();
                        Ok(Response::from_parts(metadata, none, extensions))
                    }
                }
            });
            Box::pin(async move {
                let response = grpc.server_streaming(method, request).await;
                let ours = body.lock().unwrap_or_else(|e| e.into_inner()).take();
                match ours {
                    Some(ours) => {
                        let (head, _empty) = response.into_parts();
                        http::Response::from_parts(head, tonic::body::Body::new(ours))
                    }
                    None => response,
                }
            })
        }))
    }

    /// A client-streaming method: `handler` reads a stream of prost
    /// requests and answers once.
    pub fn client_streaming<D, R>(
        limits: Limits,
        handler: impl Fn(Request<Streaming<D>>) -> UnaryFuture<R> + Clone + Send + Sync + 'static,
    ) -> Method
    where
        D: prost::Message + Default + Send + 'static,
        R: prost::Message + Send + 'static,
    {
        Method(Arc::new(move |request| {
            let mut grpc = limits.grpc(ProstCodec::<R, D>::default());
            let method = tower::service_fn(handler.clone());
            Box::pin(async move { grpc.client_streaming(method, request).await })
        }))
    }
}

impl Method {
    /// A server-streaming method whose `handler` answers with a stream of
    /// prost messages, for answers computed before they are sent (a metric
    /// query), where the entry streams' pre-framed body buys nothing.
    pub fn server_streaming_messages<D, R>(
        limits: Limits,
        handler: impl Fn(Request<D>) -> MessagesFuture<R> + Clone + Send + Sync + 'static,
    ) -> Method
    where
        D: prost::Message + Default + Send + 'static,
        R: prost::Message + Send + 'static,
    {
        Method(Arc::new(move |request| {
            let mut grpc = limits.grpc(ProstCodec::<R, D>::default());
            let method = tower::service_fn(handler.clone());
            Box::pin(async move { grpc.server_streaming(method, request).await })
        }))
    }

    /// A unary method: `handler` answers one prost request with one
    /// response. Requests may come gzip-compressed, as OTLP exporters
    /// send them; the size limit applies to the message decompressed.
    pub fn unary<D, R>(
        limits: Limits,
        handler: impl Fn(Request<D>) -> UnaryFuture<R> + Clone + Send + Sync + 'static,
    ) -> Method
    where
        D: prost::Message + Default + Send + 'static,
        R: prost::Message + Send + 'static,
    {
        Method(Arc::new(move |request| {
            let mut grpc = limits
                .grpc(ProstCodec::<R, D>::default())
                .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
            let method = tower::service_fn(handler.clone());
            Box::pin(async move { grpc.unary(method, request).await })
        }))
    }
}

impl tower::Service<HttpRequest> for Method {
    type Response = HttpResponse;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<HttpResponse, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: HttpRequest) -> Self::Future {
        let response = (self.0)(request);
        Box::pin(async move { Ok(response.await) })
    }
}

/// The answer to a method the service does not have, as a generated tonic
/// server gives it: a headers-only response with UNIMPLEMENTED.
async fn unimplemented(request: HttpRequest) -> HttpResponse {
    crate::error::no_such_method(request.uri().path()).into_http()
}

/// The routes of one gRPC service: each of its methods on its path, and
/// UNIMPLEMENTED for any other path under the service.
pub struct ServiceRoutes {
    router: Router,
    /// The service's full name (`package.Service`).
    service: &'static str,
}

impl ServiceRoutes {
    /// Starts the routes of `service` on `router`.
    pub fn new(router: Router, service: &'static str) -> Self {
        ServiceRoutes { router, service }
    }

    /// Puts `method` on `/service/name`.
    pub fn method(mut self, name: &str, method: Method) -> Self {
        let path = format!("/{}/{name}", self.service);
        self.router = self.router.route_service(&path, method);
        self
    }

    /// The router with the service's methods, and UNIMPLEMENTED for the
    /// rest of its paths.
    pub fn finish(self) -> Router {
        let others = tower::service_fn(|request: HttpRequest| async move {
            Ok::<_, Infallible>(unimplemented(request).await)
        });
        self.router
            .route_service(&format!("/{}/{{*rest}}", self.service), others)
    }
}
