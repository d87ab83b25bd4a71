//! `GET /loki/api/v1/tail`: Loki's live tail, a WebSocket.
//!
//! Parameters: `query` (a log query), `start` (default an hour ago),
//! `limit` (the history sent first: the newest `limit` matches since
//! `start`, default 100), `delay_for` (seconds, at most 5, that each live
//! frame waits, as Loki waits for late entries). The history goes in one
//! frame, oldest first; then every batch of live entries found together is
//! one frame, `{"streams":[...],"dropped_entries":[]}`: logtap's tail
//! drops nothing (a slow client is sent less often, not sent less).
//!
//! The query is parsed and both streams opened before the upgrade, so a
//! bad query or a full server is an HTTP status, not a closed socket. The
//! live part starts after the newest entry the history could hold: no
//! gap, no duplicate at the hand-over. It ends when the client closes
//! the socket or goes away, or when the server shuts down (a close frame).
//!
//! The connection's writes stop being gathered (`net::coalesce`) before the
//! 101 leaves: a WebSocket flushes once per frame and does not come back.

use super::query::collect;
use super::{bad, query_error, streams_json, Loki, Params, Row};
use crate::error::ServeError;
use crate::ingest::now_nanos;
use crate::net::coalesce::Unbuffered;
use crate::net::quota::Quota;
use crate::stream::metadata::RequestId;
use crate::stream::tail::{self, Item, TailStream};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Extension, RawQuery, State};
use axum::http::{HeaderMap, Version};
use axum::response::Response;
use futures::StreamExt;
use logtap_query::{Mode, Plan, RawQuery as Filters};
use std::time::Duration;

/// The most live entries one frame carries.
const FRAME_ENTRIES: usize = 1024;

/// The longest `delay_for`, in seconds, as in Loki.
const MAX_DELAY_SECONDS: u64 = 5;

/// `GET /loki/api/v1/tail?query=...`.
pub(super) async fn tail(
    State(state): State<Loki>,
    quota: Option<Extension<Quota>>,
    unbuffered: Option<Extension<Unbuffered>>,
    version: Version,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    upgrade: WebSocketUpgrade,
) -> Response {
    let request_id = RequestId::from_headers(&headers);
    let params = Params::read(query.as_deref(), b"");
    let opened = open(&state, quota.as_deref(), &request_id, &params).await;
    let (history, live, delay) = match opened {
        Ok(opened) => opened,
        Err(error) => return query_error(&request_id, &error),
    };
    if version <= Version::HTTP_11 {
        if let Some(Extension(unbuffered)) = unbuffered {
            unbuffered.set();
        }
    }
    tracing::debug!(request_id = %request_id, history = history.len(), "A Loki live tail opened.");
    upgrade.on_upgrade(move |socket| run(socket, history, live, delay, request_id))
}

/// The history (oldest first), the live stream after it, and the delay.
async fn open(
    state: &Loki,
    quota: Option<&Quota>,
    request_id: &RequestId,
    params: &Params,
) -> Result<(Vec<Row>, TailStream<Row>, Duration), ServeError> {
    let text = params.query()?.to_string();
    let delay = match params.get("delay_for") {
        None => 0,
        Some(text) => text
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|seconds| *seconds <= MAX_DELAY_SECONDS)
            .ok_or_else(|| {
                bad(
                    "delay_for",
                    &format!(
                        "{text:?} is not a whole number of seconds from 0 to {MAX_DELAY_SECONDS}"
                    ),
                )
            })?,
    };
    let now = now_nanos();
    let start = params.time("start", now - 3600 * 1_000_000_000)?;
    let limit = params.limit()?;
    let shared = &state.shared;
    let before_history = shared.store.last_cursor();
    let history = Plan::parse(
        Mode::History,
        Filters {
            query: text.clone(),
            since: start,
            limit,
            reverse: true,
            ..Filters::default()
        },
    )?;
    let opened = tail::open(shared, quota, request_id.clone(), history, Row::of).await?;
    let mut rows = collect(opened.stream).await?;
    rows.reverse();
    // The history may have seen entries newer than the cursor taken before
    // it: the live part starts after the newest it sent.
    let after = rows
        .iter()
        .map(|row| row.cursor)
        .max()
        .unwrap_or(0)
        .max(before_history);
    let live = Plan::parse(
        Mode::Tail,
        Filters {
            query: text,
            after_cursor: Some(after),
            ..Filters::default()
        },
    )?;
    let live = tail::open(shared, quota, request_id.clone(), live, Row::of).await?;
    Ok((rows, live.stream, Duration::from_secs(delay)))
}

/// One frame: the rows as streams, nothing dropped.
fn frame(rows: Vec<Row>) -> Message {
    let body = serde_json::json!({"streams": streams_json(rows), "dropped_entries": []});
    Message::Text(body.to_string().into())
}

/// Sends the history, then live frames, until either side ends.
async fn run(
    mut socket: WebSocket,
    history: Vec<Row>,
    live: TailStream<Row>,
    delay: Duration,
    request_id: RequestId,
) {
    if !history.is_empty() && socket.send(frame(history)).await.is_err() {
        return;
    }
    let mut live = live.ready_chunks(FRAME_ENTRIES);
    loop {
        tokio::select! {
            incoming = socket.recv() => match incoming {
                // Pings are answered by the socket itself; a client says
                // nothing else that matters.
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
            batch = live.next() => {
                let Some(batch) = batch else { return };
                let mut rows = Vec::with_capacity(batch.len());
                let mut ended = None;
                for item in batch {
                    match item {
                        Item::Entry(row) | Item::Entries(row, _) => rows.push(row),
                        Item::End(end) => ended = Some(end),
                    }
                }
                if !rows.is_empty() {
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    if socket.send(frame(rows)).await.is_err() {
                        return;
                    }
                }
                if let Some(end) = ended {
                    if let Some(error) = &end.error {
                        tracing::warn!(request_id = %request_id, error = %error, "A Loki live tail failed.");
                    }
                    let _ = socket.send(Message::Close(None)).await;
                    return;
                }
            }
        }
    }
}
