//! The body of a server-streaming gRPC response: messages framed already,
//! gathered into DATA frames, and the trailers last.
//!
//! tonic's own response body frames each message as it copies it: one
//! message per stream item. A live tail sends the newest entries as runs,
//! many messages framed once for every stream (see `crate::grpc::wire`), which
//! must go out as they are. So tonic decodes the request and makes the
//! response's head (see `crate::grpc::method`), and this body carries what the
//! [`TailStream`] yields.
//!
//! Backpressure is hyper's: the body is polled only when HTTP/2 flow
//! control lets the client take more, and it never reads ahead of that.

use crate::stream::metadata::{self, RequestId};
use crate::stream::tail::{End, Item, TailStream};
use bytes::{Bytes, BytesMut};
use futures::Stream;
use http::HeaderMap;
use http_body::{Body, Frame};
use std::pin::Pin;
use std::task::{Context, Poll};
use tonic::Status;

/// How many bytes of entries sent one by one are gathered into one DATA
/// frame before it goes out (tonic's own threshold): a stream reading
/// history sends its entries a frame at a time, not one by one.
const YIELD_BYTES: usize = 32 * 1024;

/// A server-streaming response body over a [`TailStream`] of framed
/// messages.
pub struct GrpcBody {
    /// The framed messages, then the end.
    stream: TailStream<Bytes>,
    /// For the trailers.
    request_id: RequestId,
    /// Messages sent one by one, gathered until the stream pauses or
    /// [`YIELD_BYTES`] are in.
    gathered: BytesMut,
    /// A run to send as it is, after what was gathered before it.
    run: Option<Bytes>,
    /// The trailers, once the stream has ended, to send after the rest.
    trailers: Option<HeaderMap>,
    /// Whether the trailers were sent: nothing follows.
    done: bool,
}

impl GrpcBody {
    /// The body carrying `stream`'s messages and trailers.
    pub fn new(stream: TailStream<Bytes>, request_id: RequestId) -> Self {
        GrpcBody {
            stream,
            request_id,
            gathered: BytesMut::new(),
            run: None,
            trailers: None,
            done: false,
        }
    }

    /// Hands over what was gathered.
    fn gathered_frame(&mut self) -> Frame<Bytes> {
        Frame::data(self.gathered.split().freeze())
    }
}

/// The trailers of a stream that ended: the status (OK, or the error's)
/// and logtap's trailer metadata.
fn trailers(request_id: &RequestId, end: End) -> HeaderMap {
    let metadata = metadata::stream_trailers(request_id, &end.summary);
    let status = crate::error::stream_end_status(end.error.as_ref(), metadata);
    let mut headers = HeaderMap::new();
    if let Err(error) = status.add_header(&mut headers) {
        // Only a status message that cannot be a header value gets here;
        // the code and metadata still go out.
        tracing::warn!(request_id = %request_id, error = %error, "A stream's status message could not be sent.");
        let status = crate::error::without_message(&status);
        headers.clear();
        let _ = status.add_header(&mut headers);
    }
    headers
}

impl Body for GrpcBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        loop {
            if let Some(run) = this.run.take() {
                return Poll::Ready(Some(Ok(Frame::data(run))));
            }
            if let Some(trailers) = this.trailers.take() {
                this.done = true;
                return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
            }
            if this.done {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.stream).poll_next(cx) {
                Poll::Ready(Some(Item::Entry(message))) => {
                    this.gathered.extend_from_slice(&message);
                    if this.gathered.len() >= YIELD_BYTES {
                        return Poll::Ready(Some(Ok(this.gathered_frame())));
                    }
                }
                Poll::Ready(Some(Item::Entries(run, _))) => {
                    if this.gathered.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(run))));
                    }
                    this.run = Some(run);
                    return Poll::Ready(Some(Ok(this.gathered_frame())));
                }
                Poll::Ready(Some(Item::End(end))) => {
                    this.trailers = Some(trailers(&this.request_id, end));
                    if !this.gathered.is_empty() {
                        return Poll::Ready(Some(Ok(this.gathered_frame())));
                    }
                }
                // A stream always ends with `Item::End`; if it did not, the
                // body ends without trailers and the client sees an error.
                Poll::Ready(None) => this.done = true,
                Poll::Pending => {
                    if this.gathered.is_empty() {
                        return Poll::Pending;
                    }
                    return Poll::Ready(Some(Ok(this.gathered_frame())));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.run.is_none() && self.trailers.is_none()
    }
}
