//! A budget for the request bytes the server holds before a message is
//! whole, and a watch for requests that stall mid-message.
//!
//! A decoder holds the bytes of a message until its last byte arrives:
//! tonic's `Streaming` gathers a gRPC message up to its declared length
//! (`max_message_bytes`, 4 MiB), and `POST /api/v1/push` gathers a line up
//! to its `\n`. h2 hands a request's bytes over as they are read, so its
//! windows bound what waits *unread*, not what a decoder has read and
//! holds: one connection opening 1,000 Push streams, each with 4 MiB − 1
//! bytes of a message that never completes, took the server from 9 MB to
//! 4.1 GB in 11 s.
//!
//! So every request body goes through a [`CountedBody`] (installed around
//! every route in `server.rs`, inside tonic-web's translation so gRPC-Web
//! is seen as gRPC). It follows the body's framing as the bytes pass
//! ([`Framing`]: gRPC's 5-byte length prefixes, or lines) and keeps
//! charged exactly the bytes of the message not yet whole: charged as a
//! frame arrives, released when the message's last byte passes (the
//! decoder takes the whole message then) or when the body ends or is
//! dropped. Charges come out of the connection's share
//! (`max_buffered_request_bytes_per_connection`) and the server's budget
//! (`max_buffered_request_bytes`, the `logtap_request_buffered_bytes`
//! gauge), by compare-and-swap, so neither is ever over its limit. A frame
//! that would go over cuts the request: the body ends with a [`BodyCut`]
//! error, which the reader answers (RESOURCE_EXHAUSTED, HTTP 503), and
//! dropping it frees what it held.
//!
//! A body with a message unfinished that receives nothing for
//! `request_stall_timeout` while its reader waits for it is cut too
//! (DEADLINE_EXCEEDED, HTTP 408): a client cannot hold its share forever by
//! stopping mid-message. A body between whole messages may wait as long
//! as it likes (a shipper's Push stream is quiet between batches).
//!
//! A body that is not over when first read holds a stream slot
//! (`quota::open_request_stream`, in `logtap_request_streams`) until it
//! ends, so request streams count against `max_streams` and the
//! per-connection and per-address caps like reading streams do.
//!
//! The work per frame is the frame's `\n` search (lines) or a walk over
//! its message prefixes (gRPC), and two atomic updates when the unfinished
//! count changes; nothing is allocated per frame.

use crate::error::{BodyCut, ServeError};
use crate::net::quota::{self, Quota, StreamSlot};
use crate::ops::metrics::{Limit, Metrics};
use axum::body::Body;
use bytes::Bytes;
use http_body::Frame;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// The server-wide settings and counters every [`CountedBody`] shares.
#[derive(Debug)]
pub struct RequestBudget {
    /// The gauge that is the server-wide budget in use, and the refusal
    /// counters.
    metrics: Arc<Metrics>,
    /// `max_streams`, which request streams count against.
    max_streams: usize,
    /// The most unfinished request bytes the server holds.
    max_bytes: usize,
    /// The most unfinished request bytes one connection holds.
    per_connection: usize,
    /// How long a body may receive nothing in the middle of a message.
    stall_timeout: Duration,
}

/// How a body's bytes split into messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// gRPC (gRPC-Web once translated): a 1-byte flag, a 4-byte big-endian
    /// length, then that many bytes.
    LengthPrefixed,
    /// Lines ending in `\n` (the HTTP push's NDJSON).
    Lines,
}

impl RequestBudget {
    /// The budget: `max_bytes` for the server, `per_connection` for each
    /// connection, bodies stalled mid-message for `stall_timeout` cut.
    pub fn new(
        metrics: Arc<Metrics>,
        max_streams: usize,
        max_bytes: usize,
        per_connection: usize,
        stall_timeout: Duration,
    ) -> Arc<RequestBudget> {
        Arc::new(RequestBudget {
            metrics,
            max_streams,
            max_bytes,
            per_connection,
            stall_timeout,
        })
    }

    /// `request` with its body counted: gRPC framing for a gRPC content
    /// type, lines for anything else; charged to the connection of the
    /// [`Quota`] the accept loop put in its extensions (the server's
    /// budget only, without one).
    pub fn wrap(self: &Arc<Self>, request: http::Request<Body>) -> http::Request<Body> {
        let framing = match request.headers().get(http::header::CONTENT_TYPE) {
            Some(value) if value.as_bytes().starts_with(b"application/grpc") => {
                Framing::LengthPrefixed
            }
            _ => Framing::Lines,
        };
        let quota = request.extensions().get::<Quota>().cloned();
        let budget = Arc::clone(self);
        request.map(|body| Body::new(CountedBody::new(body, framing, budget, quota)))
    }
}

/// Where a body is in its framing, and how many bytes of the current
/// message have passed.
#[derive(Debug)]
struct Framer {
    /// How the body is framed.
    framing: Framing,
    /// Bytes of the current gRPC prefix seen (0 to 5).
    prefix_seen: u8,
    /// The current gRPC message's length, as its prefix is read.
    length: u32,
    /// Bytes of the current gRPC message still to come.
    left: usize,
    /// Bytes of the current message (prefix included) that have passed.
    unfinished: usize,
}

impl Framer {
    /// A body at the start of its first message.
    fn new(framing: Framing) -> Framer {
        Framer {
            framing,
            prefix_seen: 0,
            length: 0,
            left: 0,
            unfinished: 0,
        }
    }

    /// Follows `data` and returns how many bytes of a message not yet
    /// whole have passed after it.
    fn feed(&mut self, data: &[u8]) -> usize {
        match self.framing {
            Framing::Lines => match memchr::memrchr(b'\n', data) {
                Some(at) => self.unfinished = data.len() - at - 1,
                None => self.unfinished += data.len(),
            },
            Framing::LengthPrefixed => {
                let mut rest = data;
                while let Some((&byte, after)) = rest.split_first() {
                    if self.prefix_seen < 5 {
                        // Byte 0 is the compression flag; 1 to 4 the length.
                        if self.prefix_seen > 0 {
                            self.length = self.length << 8 | u32::from(byte);
                        }
                        self.prefix_seen += 1;
                        self.unfinished += 1;
                        rest = after;
                        if self.prefix_seen == 5 {
                            self.left = self.length as usize;
                        }
                    } else {
                        let take = self.left.min(rest.len());
                        rest = &rest[take..];
                        self.left -= take;
                        self.unfinished += take;
                    }
                    if self.prefix_seen == 5 && self.left == 0 {
                        // The message is whole: the decoder takes it now.
                        self.prefix_seen = 0;
                        self.length = 0;
                        self.unfinished = 0;
                    }
                }
            }
        }
        self.unfinished
    }
}

/// A request body whose unfinished message is charged to the budget; see
/// the module's documentation.
pub struct CountedBody {
    /// The body as it came.
    inner: Body,
    /// Where the body is in its framing.
    framer: Framer,
    /// The server-wide budget and settings.
    budget: Arc<RequestBudget>,
    /// The connection's share, when the body came through the accept loop.
    quota: Option<Quota>,
    /// Bytes charged now: the current message's, as far as it has come.
    charged: usize,
    /// The body's stream slot, from its first read to its end.
    slot: Option<StreamSlot>,
    /// Whether the slot was taken already (it is taken once).
    opened: bool,
    /// Set once the body is cut: it yields nothing more.
    cut: bool,
    /// Since when the reader has waited for bytes with a message unfinished.
    waiting_since: Option<Instant>,
    /// Wakes the reader when the stall timeout is reached. Made on the
    /// first wait mid-message, so bodies that never wait mid-message never
    /// touch the timer.
    timer: Option<Pin<Box<Sleep>>>,
}

impl CountedBody {
    /// `inner`, counted.
    fn new(
        inner: Body,
        framing: Framing,
        budget: Arc<RequestBudget>,
        quota: Option<Quota>,
    ) -> CountedBody {
        CountedBody {
            inner,
            framer: Framer::new(framing),
            budget,
            quota,
            charged: 0,
            slot: None,
            opened: false,
            cut: false,
            waiting_since: None,
            timer: None,
        }
    }

    /// Charges or releases so that `unfinished` bytes are charged.
    fn recharge(&mut self, unfinished: usize) -> Result<(), ServeError> {
        if unfinished > self.charged {
            self.charge(unfinished - self.charged)?;
        } else if unfinished < self.charged {
            self.release(self.charged - unfinished);
        }
        Ok(())
    }

    /// Takes `more` bytes from the connection's share and the server's
    /// budget, or neither.
    fn charge(&mut self, more: usize) -> Result<(), ServeError> {
        let budget = &*self.budget;
        if let Some(quota) = &self.quota {
            let within =
                quota
                    .buffered()
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
                        held.checked_add(more)
                            .filter(|&total| total <= budget.per_connection)
                    });
            if within.is_err() {
                return Err(ServeError::RequestBufferFull {
                    scope: "this connection's",
                    limit: budget.per_connection,
                });
            }
        }
        let limit = i64::try_from(budget.max_bytes).unwrap_or(i64::MAX);
        let more_signed = i64::try_from(more).unwrap_or(i64::MAX);
        let within = budget.metrics.request_buffered_bytes.inner().fetch_update(
            Ordering::Relaxed,
            Ordering::Relaxed,
            |held| {
                held.checked_add(more_signed)
                    .filter(|&total| total <= limit)
            },
        );
        if within.is_err() {
            if let Some(quota) = &self.quota {
                quota.buffered().fetch_sub(more, Ordering::Relaxed);
            }
            return Err(ServeError::RequestBufferFull {
                scope: "the server's",
                limit: budget.max_bytes,
            });
        }
        self.charged += more;
        Ok(())
    }

    /// Gives `less` charged bytes back.
    fn release(&mut self, less: usize) {
        if less == 0 {
            return;
        }
        self.charged -= less;
        if let Some(quota) = &self.quota {
            quota.buffered().fetch_sub(less, Ordering::Relaxed);
        }
        self.budget
            .metrics
            .request_buffered_bytes
            .dec_by(i64::try_from(less).unwrap_or(i64::MAX));
    }

    /// The body is over: its bytes and its slot go back.
    fn finish(&mut self) {
        self.release(self.charged);
        self.slot = None;
        self.timer = None;
    }

    /// Cuts the body for `error`: counted under `limit`, everything it
    /// holds given back, and the error handed to the reader.
    fn cut(
        &mut self,
        limit: Option<Limit>,
        error: ServeError,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::BoxError>>> {
        if let Some(limit) = limit {
            self.budget.metrics.limit_hit(limit);
        }
        tracing::debug!(error = %error, "Cut a request body.");
        self.cut = true;
        self.finish();
        Poll::Ready(Some(Err(Box::new(BodyCut::new(error)))))
    }

    /// With a message unfinished and nothing arriving: whether the stall
    /// timeout has passed; if not, the timer is set to wake the reader
    /// when it does.
    fn stalled(&mut self, cx: &mut Context<'_>) -> bool {
        let now = Instant::now();
        let deadline = *self.waiting_since.get_or_insert(now) + self.budget.stall_timeout;
        if now >= deadline {
            return true;
        }
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        if timer.as_mut().poll(cx).is_ready() {
            cx.waker().wake_by_ref();
        }
        false
    }
}

impl http_body::Body for CountedBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if this.cut {
            return Poll::Ready(None);
        }
        if !this.opened {
            this.opened = true;
            if !this.inner.is_end_stream() {
                let budget = &*this.budget;
                match quota::open_request_stream(
                    &budget.metrics,
                    budget.max_streams,
                    this.quota.as_ref(),
                ) {
                    Ok(slot) => this.slot = Some(slot),
                    // Counted where the caps are checked.
                    Err(error) => return this.cut(None, error),
                }
            }
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.waiting_since = None;
                    let unfinished = this.framer.feed(data);
                    if let Err(error) = this.recharge(unfinished) {
                        return this.cut(Some(Limit::RequestBuffer), error);
                    }
                }
                if this.inner.is_end_stream() {
                    this.finish();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => {
                this.finish();
                Poll::Ready(Some(Err(error.into())))
            }
            Poll::Ready(None) => {
                this.finish();
                Poll::Ready(None)
            }
            Poll::Pending => {
                if this.charged > 0 && this.stalled(cx) {
                    let after = this.budget.stall_timeout;
                    return this.cut(
                        Some(Limit::RequestStall),
                        ServeError::RequestStalled { after },
                    );
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.cut || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for CountedBody {
    fn drop(&mut self) {
        self.release(self.charged);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A gRPC message: flag, length, bytes.
    fn message(len: usize) -> Vec<u8> {
        let mut out = vec![0];
        out.extend_from_slice(&(len as u32).to_be_bytes());
        out.extend(std::iter::repeat_n(7u8, len));
        out
    }

    #[test]
    fn grpc_framing_counts_only_the_message_not_yet_whole() {
        let mut framer = Framer::new(Framing::LengthPrefixed);
        let mut bytes = message(10);
        bytes.extend(message(0));
        bytes.extend(message(100));
        // Two whole messages and 3 + 5 bytes of the third.
        assert_eq!(framer.feed(&bytes[..15 + 5 + 8]), 8);
        // The prefix split across frames.
        let mut framer = Framer::new(Framing::LengthPrefixed);
        assert_eq!(framer.feed(&bytes[..2]), 2);
        assert_eq!(framer.feed(&bytes[2..14]), 14);
        assert_eq!(framer.feed(&bytes[14..21]), 1);
        assert_eq!(framer.feed(&bytes[21..]), 0);
    }

    #[test]
    fn line_framing_counts_the_bytes_after_the_last_newline() {
        let mut framer = Framer::new(Framing::Lines);
        assert_eq!(framer.feed(b"abc"), 3);
        assert_eq!(framer.feed(b"def"), 6);
        assert_eq!(framer.feed(b"g\nhi\nj"), 1);
        assert_eq!(framer.feed(b"\n"), 0);
    }
}
