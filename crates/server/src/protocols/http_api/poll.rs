//! `GET /api/v1/poll?after=C&wait=25s`: long-polling, for clients that can
//! hold nothing open but one request at a time.
//!
//! Each answer is `{"entries":[...],"next_cursor":N}`: the entries after
//! `C` that match (at most `limit`, default 1,000, at most 10,000), and the
//! cursor to send as `after` next time. The answer comes at once when
//! something matches; otherwise the request waits for new entries, up to
//! `wait` (default 25 s, at most 60 s, so proxies with a one-minute timeout
//! let it through; `follow=false` means no wait), and then answers, maybe
//! with no entries.
//!
//! Every page is a history read of its own, a snapshot up to the newest
//! cursor when it starts, so `next_cursor` is exact: everything up to it
//! was sent or rejected by the filters. Consecutive polls therefore have no
//! gap and no duplicate, whatever is pushed meanwhile, and `next_cursor`
//! moves on even while nothing matches, so a filter that rejects a busy
//! stream never re-reads it. While a request waits it holds no reader: it
//! waits on the store's commit notifications and reads the new entries
//! when they are published. Reading or waiting, it counts as one reading
//! stream in `logtap_active_streams`, and a client that goes away stops it
//! at once.

use super::{error_response, json, parse_params, Endpoint, Fallback};
use crate::error::ServeError;
use crate::ingest::now_nanos;
use crate::net::quota::{self, Quota};
use crate::stream::metadata::{self, RequestId};
use crate::stream::state::Shared;
use crate::stream::tail::{self, Item};
use axum::extract::{Extension, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use logtap_query::{Mode, Plan, Start};
use std::time::Duration;
use tokio::time::Instant;

/// How long a poll waits for entries when the client does not say.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(25);
/// The longest wait granted; longer asks are shortened to it.
pub const MAX_WAIT: Duration = Duration::from_secs(60);
/// The most entries in one answer when the client does not say.
pub const DEFAULT_BATCH: u64 = 1_000;
/// The most entries in one answer, whatever the client says: an answer is
/// built whole before it is sent.
pub const MAX_BATCH: u64 = 10_000;

/// `GET /api/v1/poll?after=..&wait=..&level=..`.
pub async fn poll(
    State(state): State<Fallback>,
    quota: Option<Extension<Quota>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let request_id = RequestId::from_headers(&headers);
    let params = match parse_params(query.as_deref(), Endpoint::Poll, now_nanos()) {
        Ok(params) => params,
        Err(error) => return error_response(&request_id, &ServeError::Query(error)),
    };
    let wait = if params.raw.follow {
        params.wait.unwrap_or(DEFAULT_WAIT).min(MAX_WAIT)
    } else {
        Duration::ZERO
    };
    let mut raw = params.raw;
    raw.follow = false;
    raw.limit = match raw.limit {
        0 => DEFAULT_BATCH,
        limit => limit.min(MAX_BATCH),
    };
    let query = match Plan::parse(Mode::History, raw) {
        Ok(query) => query,
        Err(error) => return error_response(&request_id, &ServeError::Query(error)),
    };
    match wait_for_page(&state.shared, quota.as_deref(), &request_id, query, wait).await {
        Ok(page) => page.into_response(&request_id),
        Err(error) => error_response(&request_id, &error),
    }
}

/// One answer.
#[derive(Debug, Default)]
struct Page {
    /// Each entry's JSON text.
    entries: Vec<String>,
    /// The cursor to poll after next.
    next_cursor: u64,
}

impl Page {
    /// `{"entries":[...],"next_cursor":N}`, never cached.
    fn into_response(self, request_id: &RequestId) -> Response {
        let size = self
            .entries
            .iter()
            .map(|entry| entry.len() + 1)
            .sum::<usize>();
        let mut body = String::with_capacity(size + 48);
        body.push_str("{\"entries\":[");
        for (index, entry) in self.entries.iter().enumerate() {
            if index > 0 {
                body.push(',');
            }
            body.push_str(entry);
        }
        body.push_str("],\"next_cursor\":");
        body.push_str(&self.next_cursor.to_string());
        body.push('}');
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        super::set_header(&mut headers, metadata::REQUEST_ID, request_id.as_str());
        (headers, body).into_response()
    }
}

/// Reads a page after the query's cursor; while it is empty and time is
/// left, waits for the next commit and reads again from where the last
/// read stopped.
async fn wait_for_page(
    shared: &Shared,
    quota: Option<&Quota>,
    request_id: &RequestId,
    mut query: Plan,
    wait: Duration,
) -> Result<Page, ServeError> {
    let deadline = Instant::now() + wait;
    let mut commits = shared.live.subscribe();
    loop {
        // Marks every commit so far as seen before reading, so that one
        // landing after the read's snapshot wakes the wait below.
        commits.borrow_and_update();
        let page = read_page(shared, quota, request_id, query.clone()).await?;
        query.start = Start::After(page.next_cursor);
        if !page.entries.is_empty() || Instant::now() >= deadline {
            return Ok(page);
        }
        // Between reads no stream is open, so the wait holds its own place
        // in the gauge (and under the limit) until it ends.
        let _waiting = quota::open_stream(&shared.metrics, shared.max_streams, quota)?;
        tokio::select! {
            biased;
            // Shutting down: answer now with the resume point, as a gRPC
            // stream ends with OK and its trailers.
            () = shared.shutdown.cancelled() => return Ok(page),
            changed = commits.changed() => {
                if changed.is_err() {
                    return Ok(page);
                }
            }
            () = tokio::time::sleep_until(deadline) => return Ok(page),
        }
    }
}

/// Reads the matching entries after the query's cursor, up to its limit,
/// from a snapshot of the store.
async fn read_page(
    shared: &Shared,
    quota: Option<&Quota>,
    request_id: &RequestId,
    query: Plan,
) -> Result<Page, ServeError> {
    let opened = tail::open(shared, quota, request_id.clone(), query, json::entry).await?;
    let mut stream = opened.stream;
    let mut entries = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Item::Entry(entry) | Item::Entries(entry, _) => entries.push(entry),
            Item::End(end) => {
                if let Some(error) = end.error {
                    return Err(error);
                }
                return Ok(Page {
                    entries,
                    next_cursor: end.summary.next_cursor,
                });
            }
        }
    }
    Err(ServeError::Internal(
        "a reading stream ended without its summary".into(),
    ))
}
