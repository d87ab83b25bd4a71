//! A push body read as it arrives, for the protocols whose body is a
//! stream of entries rather than one message (NDJSON lines, journald's
//! export format): a [`Splitter`] turns the bytes into entries, which fill
//! the one [`Batcher`]; a full batch is stored through [`append`], so a
//! body of any size takes the memory of one batch and one unfinished
//! entry, and a slow disk slows the client down instead of piling the body
//! up in memory.
//!
//! Complete entries wait at most 200 ms for their batch to fill, so a
//! client trickling entries sees them stored as it goes. A body that ends
//! early (the client went away, or the server cut it) keeps its complete
//! entries, and the unfinished last one is logged as dropped. An entry
//! the splitter refuses stores the entries before it, then ends the
//! push; so does a body over its limit, or a shutdown.

use super::{append, Batcher, Protocol};
use crate::error::{BodyCut, ServeError};
use crate::ops::log_throttle::LogThrottle;
use crate::stream::state::Shared;
use axum::body::Body;
use axum::http::{header, HeaderMap};
use futures::StreamExt;
use std::time::Duration;
use tokio::time::Instant;

/// How long complete entries may wait in a batch that is not full: a
/// client that trickles entries (a shipper forwarding as it reads) sees
/// them stored, and readable, this soon rather than once a whole batch has
/// arrived.
const TRICKLE_FLUSH: Duration = Duration::from_millis(200);

/// Pushes that ended before their body did (the client went away), logged
/// at most once per interval with a count, since a flaky client can end
/// many a second.
static CUT_SHORT: LogThrottle = LogThrottle::new(Duration::from_secs(10));

/// A wire format read from a body as it arrives: bytes in, whole entries
/// out, an unfinished entry kept across chunks.
pub(crate) trait Splitter {
    /// Takes the bytes of the next entry from the front of `input` and
    /// adds the entry to `batch` (or skips it, a blank line); `false` once
    /// `input` is used up, its unfinished tail kept for the next chunk. An
    /// error refuses this entry and the rest of the body.
    fn next(&mut self, input: &mut &[u8], batch: &mut Batcher) -> Result<bool, ServeError>;

    /// At the end of the body: adds a last entry that lacks its
    /// terminator, or refuses an unfinished one.
    fn finish(&mut self, batch: &mut Batcher) -> Result<(), ServeError>;

    /// Bytes of an unfinished entry held: what is lost if the body ends
    /// here.
    fn unfinished_bytes(&self) -> usize;
}

/// What a streamed push has stored so far.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Pushed {
    /// Entries stored.
    pub(crate) stored: u64,
    /// The cursor of the last entry stored (0 while none is).
    pub(crate) last_cursor: u64,
}

/// The first coding of the body other than identity and `chunked` (which
/// hyper has undone), if any: a `Content-Encoding`, or a
/// `Transfer-Encoding` such as `gzip, chunked`, which still carries gzip
/// bytes. A streamed body is read as it comes, so a coded one would be
/// stored as its compressed bytes.
pub(crate) fn body_coding(headers: &HeaderMap) -> Option<String> {
    let content = headers
        .get(header::CONTENT_ENCODING)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).trim().to_string())
        .filter(|value| !value.is_empty() && !value.eq_ignore_ascii_case("identity"));
    content.or_else(|| {
        headers
            .get_all(header::TRANSFER_ENCODING)
            .iter()
            .flat_map(|value| value.as_bytes().split(|&byte| byte == b','))
            .map(|coding| String::from_utf8_lossy(coding).trim().to_string())
            .find(|coding| {
                !coding.is_empty()
                    && !coding.eq_ignore_ascii_case("chunked")
                    && !coding.eq_ignore_ascii_case("identity")
            })
    })
}

/// Whether the body's declared `Content-Length` is over `limit`, so it is
/// refused before anything is read.
pub(crate) fn declared_over(headers: &HeaderMap, limit: u64) -> bool {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .is_some_and(|length| length > limit)
}

/// Reads `body` through `splitter`, storing a batch whenever one is full
/// and what is left at the end, counted under `protocol`; at most
/// `max_body_bytes` of it. `pushed` says what was stored, also on error.
pub(crate) async fn ingest_body(
    shared: &Shared,
    protocol: Protocol,
    body: Body,
    max_body_bytes: u64,
    splitter: &mut impl Splitter,
    pushed: &mut Pushed,
) -> Result<(), ServeError> {
    let mut chunks = body.into_data_stream();
    let mut batch = Batcher::new(shared.store.limits());
    let mut total = 0u64;
    // When the oldest complete entry not yet stored arrived.
    let mut waiting_since: Option<Instant> = None;
    loop {
        let flush_at = waiting_since.map(|since| since + TRICKLE_FLUSH);
        let chunk = tokio::select! {
            biased;
            () = shared.shutdown.cancelled() => return Err(ServeError::ShuttingDown),
            chunk = chunks.next() => chunk,
            () = sleep_until(flush_at) => {
                store(shared, protocol, &mut batch, pushed).await?;
                waiting_since = None;
                continue;
            }
        };
        let chunk = match chunk {
            None => break,
            Some(Ok(chunk)) => chunk,
            Some(Err(error)) => {
                // The body ended early: the client went away, or the
                // server cut it (`net::request_body`, which keeps its
                // reason). The complete entries are kept, as gRPC Push
                // keeps the requests that arrived whole; an unfinished
                // last one cannot be, and the log says so.
                store(shared, protocol, &mut batch, pushed).await?;
                if let Some(left_out) = CUT_SHORT.allow() {
                    tracing::info!(
                        protocol = protocol.label(),
                        stored = pushed.stored,
                        unfinished_bytes = splitter.unfinished_bytes(),
                        left_out,
                        "A push ended before its body did; its complete entries are stored, an unfinished last one is dropped."
                    );
                }
                return Err(BodyCut::from_body_error(error)
                    .unwrap_or_else(|error| ServeError::BadBody(error.to_string())));
            }
        };
        total = total.saturating_add(chunk.len() as u64);
        if total > max_body_bytes {
            return Err(ServeError::BodyTooLarge {
                limit: max_body_bytes,
            });
        }
        let mut rest = &chunk[..];
        loop {
            match splitter.next(&mut rest, &mut batch) {
                Ok(false) => break,
                Ok(true) => {}
                Err(refused) => {
                    // The entries before a refused one are good: they are
                    // stored, as the requests before a refused one are in
                    // gRPC Push.
                    store(shared, protocol, &mut batch, pushed).await?;
                    return Err(refused);
                }
            }
            if batch.is_full() {
                store(shared, protocol, &mut batch, pushed).await?;
                waiting_since = None;
            } else if waiting_since.is_none() && !batch.is_empty() {
                waiting_since = Some(Instant::now());
            }
        }
    }
    if let Err(refused) = splitter.finish(&mut batch) {
        store(shared, protocol, &mut batch, pushed).await?;
        return Err(refused);
    }
    store(shared, protocol, &mut batch, pushed).await
}

/// Waits until `at`, or forever when there is nothing to wait for.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Stores the batch (if it holds anything) and counts it.
async fn store(
    shared: &Shared,
    protocol: Protocol,
    batch: &mut Batcher,
    pushed: &mut Pushed,
) -> Result<(), ServeError> {
    if batch.is_empty() {
        return Ok(());
    }
    let receipt = append(shared, protocol, batch.take()).await?;
    if receipt.count > 0 {
        pushed.stored += receipt.count;
        pushed.last_cursor = receipt.last_cursor;
    }
    Ok(())
}
