//! The HTTP fallbacks and the viewer, over raw HTTP/1.1 like curl or a
//! browser: `/api/v1/logs` (NDJSON), `/api/v1/poll`, `/api/v1/sse`,
//! `POST /api/v1/push`, and `/` with its assets.

mod common;

use common::*;
use logtap_proto::v1::{LogEntry, LogRequest};
use serde_json::Value;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// 2024-05-01T12:00:00Z in Unix nanoseconds: times in the tests are real
/// ones, since query times are read with the magnitude rule of
/// `logtap_ingest::parse_time`.
const BASE: i64 = 1_714_564_800_000_000_000;
const SECOND: i64 = 1_000_000_000;

/// An entry at `BASE + seconds`, with labels.
fn labeled(level: &str, message: &str, seconds: i64, labels: &[(&str, &str)]) -> LogEntry {
    let mut entry = entry(level, message, BASE + seconds * SECOND);
    for (name, value) in labels {
        entry.labels.insert(name.to_string(), value.to_string());
    }
    entry
}

/// Six entries, one of each level, a second apart from BASE, labelled by
/// parity; the error one carries two labels.
async fn push_sample(server: &TestServer) {
    let mut client = server.client().await;
    let entries = ["trace", "debug", "info", "warn", "error", "fatal"]
        .iter()
        .enumerate()
        .map(|(i, level)| {
            let parity = if i % 2 == 0 { "even" } else { "odd" };
            let mut labels = vec![("parity", parity)];
            if *level == "error" {
                labels.push(("host", "a 1"));
            }
            labeled(level, &format!("{level} message {i}"), i as i64, &labels)
        })
        .collect();
    push(&mut client, vec![entries]).await;
}

/// `GET path` with extra header lines, read to the end.
async fn get(server: &TestServer, path: &str, extra: &str) -> (u16, Vec<(String, String)>, String) {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\n{extra}Connection: close\r\n\r\n",
        server.addr
    );
    let (status, headers, body) = http1(server.addr, request.as_bytes()).await;
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

/// `POST /api/v1/push` with `body`, read to the end.
async fn post_push(server: &TestServer, body: &[u8]) -> (u16, Vec<(String, String)>, Value) {
    let mut request = format!(
        "POST /api/v1/push HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        server.addr,
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    let (status, headers, body) = http1(server.addr, &request).await;
    let json = serde_json::from_slice(&body)
        .unwrap_or_else(|_| panic!("JSON answer: {}", String::from_utf8_lossy(&body)));
    (status, headers, json)
}

/// The NDJSON lines of a body, parsed.
fn ndjson(body: &str) -> Vec<Value> {
    body.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("JSON line: {line}")))
        .collect()
}

fn messages(entries: &[Value]) -> Vec<&str> {
    entries
        .iter()
        .map(|e| e["message"].as_str().expect("message"))
        .collect()
}

fn cursors(entries: &[Value]) -> Vec<u64> {
    entries
        .iter()
        .map(|e| e["cursor"].as_u64().expect("cursor"))
        .collect()
}

/// A response read as it arrives, over its own connection: for streams
/// that do not end by themselves.
struct Live {
    tcp: TcpStream,
    status: u16,
    headers: Vec<(String, String)>,
    /// Bytes after the head, still chunk-encoded.
    raw: Vec<u8>,
    /// The body decoded so far.
    body: Vec<u8>,
    /// Whether the final chunk arrived.
    ended: bool,
    /// Trailer fields after the final chunk (lower-case names).
    trailers: Vec<(String, String)>,
}

impl Live {
    /// Sends `GET path` (with extra header lines) and reads the head.
    async fn open(addr: SocketAddr, path: &str, extra: &str) -> Live {
        let mut tcp = TcpStream::connect(addr).await.expect("connect");
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}\r\n");
        tcp.write_all(request.as_bytes()).await.expect("write");
        let mut raw = Vec::new();
        let split = loop {
            if let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break split;
            }
            let mut buf = [0u8; 4096];
            let n = tokio::time::timeout(DEADLINE, tcp.read(&mut buf))
                .await
                .expect("head within the deadline")
                .expect("read");
            assert!(n > 0, "connection closed before the head");
            raw.extend_from_slice(&buf[..n]);
        };
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .and_then(|code| code.parse().ok())
            .expect("status line");
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect::<Vec<_>>();
        assert_eq!(
            header(&headers, "transfer-encoding"),
            "chunked",
            "{headers:?}"
        );
        let mut live = Live {
            tcp,
            status,
            headers,
            raw: raw[split + 4..].to_vec(),
            body: Vec::new(),
            ended: false,
            trailers: Vec::new(),
        };
        live.decode();
        live
    }

    fn header(&self, name: &str) -> &str {
        header(&self.headers, name)
    }

    /// Moves every complete chunk from `raw` to `body`.
    fn decode(&mut self) {
        while !self.ended {
            let Some(end) = self.raw.windows(2).position(|w| w == b"\r\n") else {
                return;
            };
            let size_text = String::from_utf8_lossy(&self.raw[..end]).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
                .expect("chunk size");
            if size == 0 {
                // Trailer fields, then an empty line.
                let rest = &self.raw[end + 2..];
                let Some(stop) = rest.windows(2).position(|w| w == b"\r\n") else {
                    return;
                };
                if stop == 0 {
                    self.ended = true;
                    return;
                }
                let Some(block_end) = rest.windows(4).position(|w| w == b"\r\n\r\n") else {
                    return;
                };
                let block = String::from_utf8_lossy(&rest[..block_end]).into_owned();
                self.trailers = block
                    .split("\r\n")
                    .filter_map(|line| line.split_once(':'))
                    .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
                    .collect();
                self.ended = true;
                return;
            }
            if self.raw.len() < end + 2 + size + 2 {
                return;
            }
            self.body
                .extend_from_slice(&self.raw[end + 2..end + 2 + size]);
            self.raw.drain(..end + 2 + size + 2);
        }
    }

    /// Reads until `done(body)` holds, failing at the deadline.
    async fn until(&mut self, done: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let text = String::from_utf8_lossy(&self.body).into_owned();
            if done(&text) {
                return text;
            }
            assert!(!self.ended, "the stream ended before; body so far:\n{text}");
            let mut buf = [0u8; 8192];
            let n = tokio::time::timeout_at(deadline, self.tcp.read(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("timed out; body so far:\n{text}"))
                .expect("read");
            if n == 0 {
                panic!("connection closed; body so far:\n{text}");
            }
            self.raw.extend_from_slice(&buf[..n]);
            self.decode();
        }
    }

    /// Reads until the final chunk.
    async fn read_to_end(&mut self) -> String {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while !self.ended {
            let mut buf = [0u8; 8192];
            let n = tokio::time::timeout_at(deadline, self.tcp.read(&mut buf))
                .await
                .expect("the end within the deadline")
                .expect("read");
            assert!(n > 0, "connection closed before the final chunk");
            self.raw.extend_from_slice(&buf[..n]);
            self.decode();
        }
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One Server-Sent Event: its fields (`id`, `event`, `data`), or a comment.
#[derive(Debug, Default, Clone, PartialEq)]
struct SseEvent {
    id: Option<String>,
    event: Option<String>,
    data: Option<String>,
    comment: Option<String>,
}

/// The complete events of an SSE body.
fn sse_events(body: &str) -> Vec<SseEvent> {
    let complete = match body.rfind("\n\n") {
        Some(end) => &body[..end],
        None => return Vec::new(),
    };
    complete
        .split("\n\n")
        .map(|block| {
            let mut event = SseEvent::default();
            for line in block.lines() {
                let (name, value) = line.split_once(':').unwrap_or((line, ""));
                let value = value.strip_prefix(' ').unwrap_or(value).to_string();
                match name {
                    "" => event.comment = Some(value),
                    "id" => event.id = Some(value),
                    "event" => event.event = Some(value),
                    "data" => event.data = Some(value),
                    other => panic!("unexpected field {other:?} in {block:?}"),
                }
            }
            event
        })
        .collect()
}

fn data_events(events: &[SseEvent]) -> Vec<&SseEvent> {
    events
        .iter()
        .filter(|e| e.event.is_none() && e.data.is_some())
        .collect()
}

#[tokio::test]
async fn ndjson_sends_entries_in_the_json_form_with_filters_and_headers() {
    let server = TestServer::start().await;
    push_sample(&server).await;

    let (status, headers, body) = get(&server, "/api/v1/logs", "x-request-id: nd-1\r\n").await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), "application/x-ndjson");
    assert_eq!(header(&headers, "x-request-id"), "nd-1");
    assert_eq!(header(&headers, "logtap-total-count"), "6");
    assert_eq!(header(&headers, "cache-control"), "no-cache");
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.len(), 6);
    // Byte for byte the form `logtap logs --output json` prints.
    assert_eq!(
        lines[4],
        format!(
            "{{\"cursor\":5,\"timestamp\":{},\"level\":\"error\",\"message\":\"error message 4\",\"labels\":{{\"host\":\"a 1\",\"parity\":\"even\"}}}}",
            BASE + 4 * SECOND
        )
    );

    let server = &server;
    let filtered = move |query: &'static str| async move {
        let (status, headers, body) = get(server, &format!("/api/v1/logs?{query}"), "").await;
        assert_eq!(status, 200, "{query}: {body}");
        (headers, ndjson(&body))
    };
    let (headers, entries) = filtered("level=warning").await;
    assert_eq!(
        messages(&entries),
        ["warn message 3", "error message 4", "fatal message 5"]
    );
    assert_eq!(header(&headers, "logtap-total-count"), "3");
    let (headers, entries) = filtered("grep=message%205&level=info").await;
    assert_eq!(messages(&entries), ["fatal message 5"]);
    // Text filters make the count unknowable up front.
    assert_eq!(header(&headers, "logtap-total-count"), "");
    let (_, entries) = filtered("grep=%5E(warn%7Cerror)&regex=true").await;
    assert_eq!(messages(&entries), ["warn message 3", "error message 4"]);
    let (_, entries) = filtered("label=parity%3Dodd&label=host=a%201").await;
    assert!(entries.is_empty());
    let (_, entries) = filtered("label=parity=even&label=host=a%201").await;
    assert_eq!(messages(&entries), ["error message 4"]);
    // Times as RFC 3339 and as nanoseconds; `until` is exclusive.
    let (_, entries) = filtered("since=2024-05-01T12:00:02Z&until=1714564804000000000").await;
    assert_eq!(cursors(&entries), [3, 4]);
    let (headers, entries) = filtered("after=2&limit=2&reverse=true").await;
    assert_eq!(cursors(&entries), [6, 5]);
    assert_eq!(header(&headers, "logtap-total-count"), "2");
    let (_, entries) = filtered("after=4").await;
    assert_eq!(cursors(&entries), [5, 6]);
}

#[tokio::test]
async fn ndjson_sends_the_grpc_trailers_as_http_trailers_when_asked() {
    let server = TestServer::start().await;
    push_sample(&server).await;
    let mut live = Live::open(server.addr, "/api/v1/logs?level=error", "TE: trailers\r\n").await;
    assert_eq!(live.status, 200);
    assert!(live.header("trailer").contains("logtap-crc32c"));
    let body = live.read_to_end().await;
    let entries = ndjson(&body);
    assert_eq!(messages(&entries), ["error message 4", "fatal message 5"]);
    let expected = expected_crc([
        (BASE + 4 * SECOND, "error message 4"),
        (BASE + 5 * SECOND, "fatal message 5"),
    ]);
    assert_eq!(header(&live.trailers, "logtap-sent"), "2");
    assert_eq!(header(&live.trailers, "logtap-next-cursor"), "6");
    assert_eq!(header(&live.trailers, "logtap-crc32c"), expected);
}

#[tokio::test]
async fn ndjson_follow_sends_headers_at_once_and_live_lines_as_they_come() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    // Nothing stored yet: the head must come anyway.
    let mut live = Live::open(server.addr, "/api/v1/logs?follow=true&level=warn", "").await;
    assert_eq!(live.status, 200);
    assert!(!live.header("x-request-id").is_empty());
    assert_eq!(live.header("x-accel-buffering"), "no");
    // A follow has no total count: it never ends by itself.
    assert_eq!(live.header("logtap-total-count"), "");
    for (i, level) in ["info", "error", "debug", "fatal"].iter().enumerate() {
        push(
            &mut client,
            vec![vec![labeled(level, &format!("live {i}"), i as i64, &[])]],
        )
        .await;
    }
    let body = live.until(|body| body.lines().count() >= 2).await;
    assert_eq!(messages(&ndjson(&body)), ["live 1", "live 3"]);
    // Another one arrives on the same open response.
    push(&mut client, vec![vec![labeled("warn", "live 4", 4, &[])]]).await;
    let body = live.until(|body| body.lines().count() >= 3).await;
    assert_eq!(cursors(&ndjson(&body)), [2, 4, 5]);
    assert!(!live.ended);
}

#[tokio::test]
async fn poll_answers_at_once_waits_for_new_entries_and_times_out_empty() {
    let server = TestServer::start().await;
    push_sample(&server).await;

    let (status, headers, body) = get(&server, "/api/v1/poll?level=warn", "").await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), "application/json");
    let answer: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        messages(answer["entries"].as_array().unwrap()),
        ["warn message 3", "error message 4", "fatal message 5"]
    );
    assert_eq!(answer["next_cursor"], 6);

    // Nothing after 6: waits out `wait`, then answers empty at the same point.
    let started = Instant::now();
    let (_, _, body) = get(&server, "/api/v1/poll?after=6&wait=300ms", "").await;
    assert!(started.elapsed() >= Duration::from_millis(290));
    assert_eq!(body, r#"{"entries":[],"next_cursor":6}"#);

    // A matching entry pushed while a poll waits answers it at once.
    let pusher = {
        let mut client = server.client().await;
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            push(
                &mut client,
                vec![vec![labeled("debug", "ignored", 10, &[])]],
            )
            .await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            push(
                &mut client,
                vec![vec![labeled("error", "awaited", 11, &[])]],
            )
            .await;
        })
    };
    let started = Instant::now();
    let (_, _, body) = get(&server, "/api/v1/poll?after=6&wait=20s&level=error", "").await;
    let elapsed = started.elapsed();
    pusher.await.expect("pusher");
    let answer: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(messages(answer["entries"].as_array().unwrap()), ["awaited"]);
    assert_eq!(answer["next_cursor"], 8);
    assert!(
        elapsed >= Duration::from_millis(350) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );

    // A filter that matches nothing still moves the cursor to the end, so
    // the next poll does not read the same entries again; `follow=false`
    // means no waiting.
    let started = Instant::now();
    let (_, _, body) = get(
        &server,
        "/api/v1/poll?after=0&grep=nowhere&follow=false",
        "",
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(body, r#"{"entries":[],"next_cursor":8}"#);

    // `limit` caps one answer; the next poll continues after it.
    let (_, _, body) = get(&server, "/api/v1/poll?limit=4&wait=0", "").await;
    let answer: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(cursors(answer["entries"].as_array().unwrap()), [1, 2, 3, 4]);
    assert_eq!(answer["next_cursor"], 4);
}

#[tokio::test]
async fn polls_have_no_gap_and_no_duplicate_while_pushes_go_on() {
    let server = TestServer::start().await;
    const BATCHES: i64 = 60;
    const PER_BATCH: i64 = 17;
    let pusher = {
        let mut client = server.client().await;
        tokio::spawn(async move {
            for batch in 0..BATCHES {
                let entries = (0..PER_BATCH)
                    .map(|i| {
                        let n = batch * PER_BATCH + i;
                        let level = ["info", "warn", "error", "debug"][(n % 4) as usize];
                        labeled(level, &format!("n{n}"), n, &[])
                    })
                    .collect();
                push(&mut client, vec![entries]).await;
                if batch % 5 == 0 {
                    tokio::time::sleep(Duration::from_millis(15)).await;
                }
            }
        })
    };
    // Small pages and short waits, so the polls interleave with the pushes
    // in every way: empty answers, full pages, partial ones.
    let expected = (0..BATCHES * PER_BATCH)
        .filter(|n| matches!(n % 4, 1 | 2))
        .count();
    let mut seen = Vec::new();
    let mut after = 0u64;
    let mut polls = 0;
    let deadline = Instant::now() + DEADLINE;
    while seen.len() < expected {
        assert!(
            Instant::now() < deadline,
            "only {} of {expected}",
            seen.len()
        );
        let path = format!("/api/v1/poll?after={after}&level=warn&limit=7&wait=50ms");
        let (status, _, body) = get(&server, &path, "").await;
        assert_eq!(status, 200, "{body}");
        let answer: Value = serde_json::from_str(&body).expect("json");
        let next = answer["next_cursor"].as_u64().expect("next_cursor");
        for entry in answer["entries"].as_array().unwrap() {
            let cursor = entry["cursor"].as_u64().unwrap();
            assert!(
                cursor > after && cursor <= next,
                "{cursor} outside ({after}, {next}]"
            );
            assert_ne!(entry["level"], "info");
            seen.push(cursor);
        }
        assert!(next >= after);
        after = next;
        polls += 1;
    }
    pusher.await.expect("pusher");
    assert!(polls > 10, "{polls} polls");
    // Exactly the warn-and-above entries, each once, in order.
    let mut client = server.client().await;
    let (all, _, _) = get_all(
        &mut client,
        LogRequest {
            level: "warn".into(),
            ..LogRequest::default()
        },
    )
    .await;
    let want: Vec<u64> = all.iter().map(|e| e.cursor).collect();
    assert_eq!(seen, want);
    let unique: HashSet<u64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len());
}

#[tokio::test]
async fn sse_events_carry_cursors_and_resume_exactly_after_last_event_id() {
    let server = TestServer::start().await;
    push_sample(&server).await;

    // History only: the entries, then an `end` event with the trailers.
    let (status, headers, body) = get(&server, "/api/v1/sse?follow=false&level=warn", "").await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), "text/event-stream");
    assert_eq!(header(&headers, "cache-control"), "no-cache");
    assert_eq!(header(&headers, "x-accel-buffering"), "no");
    assert_eq!(header(&headers, "content-encoding"), "");
    let events = sse_events(&body);
    let entries = data_events(&events);
    assert_eq!(
        entries
            .iter()
            .map(|e| e.id.as_deref().unwrap())
            .collect::<Vec<_>>(),
        ["4", "5", "6"]
    );
    let first: Value = serde_json::from_str(entries[0].data.as_deref().unwrap()).unwrap();
    assert_eq!(first["cursor"], 4);
    assert_eq!(first["message"], "warn message 3");
    assert_eq!(first["level"], "warn");
    let end = events.last().expect("end event");
    assert_eq!(end.event.as_deref(), Some("end"));
    assert_eq!(end.id.as_deref(), Some("6"));
    let summary: Value = serde_json::from_str(end.data.as_deref().unwrap()).unwrap();
    assert_eq!(summary["sent"], 3);
    assert_eq!(summary["next_cursor"], 6);
    assert_eq!(
        summary["crc32c"],
        expected_crc([
            (BASE + 3 * SECOND, "warn message 3"),
            (BASE + 4 * SECOND, "error message 4"),
            (BASE + 5 * SECOND, "fatal message 5"),
        ])
    );

    // A reconnecting EventSource: the header wins over the URL's `after`,
    // and the stream goes on live (the default).
    let mut live = Live::open(server.addr, "/api/v1/sse?after=1", "Last-Event-ID: 4\r\n").await;
    let body = live
        .until(|body| data_events(&sse_events(body)).len() >= 2)
        .await;
    let ids: Vec<String> = data_events(&sse_events(&body))
        .iter()
        .map(|e| e.id.clone().unwrap())
        .collect();
    assert_eq!(ids, ["5", "6"]);
    let mut client = server.client().await;
    push(&mut client, vec![vec![labeled("info", "live", 7, &[])]]).await;
    let body = live
        .until(|body| data_events(&sse_events(body)).len() >= 3)
        .await;
    let events = sse_events(&body);
    let last = data_events(&events)[2];
    assert_eq!(last.id.as_deref(), Some("7"));
    assert!(last
        .data
        .as_deref()
        .unwrap()
        .contains("\"message\":\"live\""));
    assert!(!live.ended);
}

#[tokio::test]
async fn sse_sends_heartbeats_and_a_resume_id_when_the_server_stops() {
    let mut server = TestServer::start_with(|config| {
        config.sse_heartbeat = Duration::from_millis(100);
    })
    .await;
    push_sample(&server).await;
    let mut live = Live::open(server.addr, "/api/v1/sse?level=fatal&after=6", "").await;
    let body = live
        .until(|body| {
            sse_events(body)
                .iter()
                .filter(|e| e.comment.as_deref() == Some("keepalive"))
                .count()
                >= 2
        })
        .await;
    assert!(body.contains(": keepalive\n\n"), "{body:?}");
    // Entries the filter skips still move the resume point: at shutdown
    // the stream ends with an id-only event, which a browser takes as its
    // Last-Event-ID without firing anything.
    let mut client = server.client().await;
    push(&mut client, vec![vec![labeled("info", "skipped", 9, &[])]]).await;
    drop(client);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let stop = tokio::spawn(async move {
        server.shutdown().await;
    });
    let body = live.read_to_end().await;
    stop.await.expect("shutdown");
    let last = sse_events(&body).pop().expect("an event");
    assert_eq!(
        last,
        SseEvent {
            id: Some("7".into()),
            ..SseEvent::default()
        }
    );
}

#[tokio::test]
async fn push_takes_the_logtap_push_line_format_and_entries_read_back() {
    let server = TestServer::start().await;
    let before = common::now_nanos();
    let mut body = Vec::new();
    body.extend_from_slice(
        b"{\"level\":\"error\",\"msg\":\"db down\",\"ts\":\"2024-05-01T12:00:00Z\",\"host\":\"a\",\"host\":\"b\"}\n",
    );
    body.extend_from_slice(b"[warn] disk at 91%\r\n");
    body.extend_from_slice(b"\n   \n");
    body.extend_from_slice(b"plain caf\xff line\n");
    // A timestamp that is not a time: kept, as plain text, like `logtap push`.
    body.extend_from_slice(b"{\"level\":\"fatal\",\"msg\":\"x\",\"ts\":\"yesterday\"}\n");
    body.extend_from_slice(b"level=debug no newline at the end");
    let (status, headers, answer) = post_push(&server, &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, serde_json::json!({"stored": 5, "last_cursor": 5}));
    assert_eq!(header(&headers, "logtap-stored-as-text"), "1");

    let mut client = server.client().await;
    let (entries, _, _) = get_all(&mut client, LogRequest::default()).await;
    let summary: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e.level.as_str(), e.message.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ("error", "db down"),
            ("warn", "[warn] disk at 91%"),
            ("info", "plain caf\u{fffd} line"),
            (
                "fatal",
                "{\"level\":\"fatal\",\"msg\":\"x\",\"ts\":\"yesterday\"}"
            ),
            ("debug", "level=debug no newline at the end"),
        ]
    );
    assert_eq!(entries[0].timestamp, BASE);
    // The last value of a repeated field wins, as through `logtap push`.
    assert_eq!(entries[0].labels.get("host").map(String::as_str), Some("b"));
    assert!(entries[1].timestamp >= before);

    // Many lines go in batches, all stored, cursors continuing.
    let many: String = (0..2500).map(|i| format!("line {i}\n")).collect();
    let (status, _, answer) = post_push(&server, many.as_bytes()).await;
    assert_eq!(status, 200);
    assert_eq!(
        answer,
        serde_json::json!({"stored": 2500, "last_cursor": 2505})
    );
    let (_, _, answer) = post_push(&server, b"").await;
    assert_eq!(answer, serde_json::json!({"stored": 0, "last_cursor": 0}));
    assert_eq!(server.metric("logtap_entries_stored_total").await, 2505);
}

#[tokio::test]
async fn push_bodies_over_the_limits_are_413_and_compressed_ones_415() {
    let server = TestServer::start_with(|config| {
        config.max_push_body_bytes = 4096;
        config.max_message_bytes = 1024;
    })
    .await;
    // Announced too large: refused before anything is read.
    let (status, _, answer) = post_push(&server, &vec![b'x'; 5000]).await;
    assert_eq!(status, 413);
    assert!(
        answer["error"].as_str().unwrap().contains("4096 bytes"),
        "{answer}"
    );

    // Chunked, so only reading finds out; what came before stays stored.
    let mut request = format!(
        "POST /api/v1/push HTTP/1.1\r\nHost: {}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        server.addr
    )
    .into_bytes();
    for _ in 0..10 {
        let chunk = "0123456789".repeat(50) + "\n";
        request.extend_from_slice(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes());
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let (status, headers, body) = http1(server.addr, &request).await;
    assert_eq!(status, 413);
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert!(answer["error"].as_str().unwrap().contains("over the limit"));
    assert_eq!(answer["stored"], 0);
    assert_eq!(header(&headers, "logtap-stored"), "0");

    // A compressed body is refused rather than stored as binary text.
    let request = format!(
        "POST /api/v1/push HTTP/1.1\r\nHost: {}\r\nContent-Encoding: gzip\r\nContent-Length: 2\r\nConnection: close\r\n\r\nxx",
        server.addr
    );
    let (status, _, body) = http1(server.addr, request.as_bytes()).await;
    assert_eq!(status, 415);
    assert!(String::from_utf8_lossy(&body).contains("gzip-encoded"));

    // One line longer than the largest entry, named by its number.
    let mut body = b"short\n".to_vec();
    body.extend_from_slice(&[b'y'; 2000]);
    body.push(b'\n');
    let (status, _, answer) = post_push(&server, &body).await;
    assert_eq!(status, 413);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("line 2 is over 1024 bytes"),
        "{answer}"
    );
}

#[tokio::test]
async fn a_line_the_store_cannot_keep_is_400_and_the_lines_before_it_are_stored() {
    let server = TestServer::start().await;
    let mut body = String::new();
    for n in 1..=999 {
        if n == 500 {
            // A label over the record format's 64 KiB.
            body.push_str(&format!(
                "{{\"msg\":\"big\",\"k\":\"{}\"}}\n",
                "v".repeat(70_000)
            ));
        } else {
            body.push_str(&format!("line {n}\n"));
        }
    }
    let (status, headers, answer) = post_push(&server, body.as_bytes()).await;
    assert_eq!(status, 400, "{answer}");
    let error = answer["error"].as_str().unwrap();
    assert!(error.contains("line 500: "), "{answer}");
    assert!(error.contains("64 KiB"), "{answer}");
    assert_eq!(answer["stored"], 499, "{answer}");
    assert_eq!(header(&headers, "logtap-stored"), "499");
    let mut client = server.client().await;
    let (entries, _, _) = get_all(&mut client, LogRequest::default()).await;
    assert_eq!(entries.len(), 499);
    assert_eq!(entries[498].message, "line 499");
}

#[tokio::test]
async fn ignore_case_on_every_reading_route() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    push(
        &mut client,
        vec![vec![
            labeled("error", "ERROR disk FULL", 1, &[]),
            labeled("info", "disk is full", 2, &[]),
        ]],
    )
    .await;
    let (status, _, body) = get(
        &server,
        "/api/v1/logs?grep=disk%20full&ignore_case=true",
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(messages(&ndjson(&body)), ["ERROR disk FULL"]);
    let (_, _, body) = get(&server, "/api/v1/logs?grep=disk%20full&ignore_case=0", "").await;
    assert!(ndjson(&body).is_empty(), "{body}");
    let (status, _, body) = get(
        &server,
        "/api/v1/poll?after=0&grep=DISK%20full&ignore_case=1&wait=0",
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(answer["entries"][0]["message"], "ERROR disk FULL");
    assert_eq!(answer["entries"].as_array().map(Vec::len), Some(1));
    let (status, _, body) = get(
        &server,
        "/api/v1/sse?follow=false&grep=Disk%20Full&ignore_case=true",
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("ERROR disk FULL"), "{body}");
    assert!(!body.contains("disk is full"), "{body}");
}

#[tokio::test]
async fn bad_parameters_are_400_with_a_message_that_says_what_to_change() {
    let server = TestServer::start().await;
    let cases = [
        ("level=loud", "trace, debug, info, warn, error, fatal"),
        ("since=yesterday", "RFC 3339"),
        ("until=2024-05-01T12:00:00", "offset"),
        ("grep=(&regex=true", "bad pattern"),
        ("after=abc", "not a cursor"),
        (
            "since=2024-05-02T00:00:00Z&until=2024-05-01T00:00:00Z",
            "must be before until",
        ),
        ("limit=-3", "whole number"),
        ("follow=perhaps", "true or false"),
        ("ignore_case=sometimes", "bad ignore_case"),
        ("levle=error", "unknown query parameter"),
    ];
    for endpoint in ["logs", "sse", "poll"] {
        for (query, expected) in cases {
            let path = format!("/api/v1/{endpoint}?{query}");
            let (status, headers, body) = get(&server, &path, "x-request-id: bad-1\r\n").await;
            assert_eq!(status, 400, "{path}: {body}");
            assert_eq!(header(&headers, "content-type"), "application/json");
            assert_eq!(header(&headers, "x-request-id"), "bad-1");
            let answer: Value = serde_json::from_str(&body).expect("json error");
            let message = answer["error"].as_str().expect("error message");
            assert!(message.contains(expected), "{path}: {message}");
        }
    }
    // Reverse cannot be live; SSE is live by default.
    let (status, _, body) = get(&server, "/api/v1/sse?reverse=true", "").await;
    assert_eq!(status, 400);
    assert!(
        body.contains("reverse cannot be combined with follow"),
        "{body}"
    );
    let (status, _, body) = get(&server, "/api/v1/sse", "Last-Event-ID: x7\r\n").await;
    assert_eq!(status, 400);
    assert!(body.contains("Last-Event-ID"), "{body}");
    // Wrong method.
    let (status, _, _) = get(&server, "/api/v1/push", "").await;
    assert_eq!(status, 405);
}

#[tokio::test]
async fn the_viewer_is_served_from_the_binary_and_nothing_else_is() {
    let server = TestServer::start().await;
    // A browser asks for HTML; without that, `/` is Elasticsearch's root
    // (tests/elasticsearch.rs).
    let (status, headers, body) = get(&server, "/", "Accept: text/html\r\n").await;
    assert_eq!(status, 200);
    assert!(header(&headers, "content-type").starts_with("text/html"));
    assert_eq!(header(&headers, "cache-control"), "no-cache");
    assert!(body.contains("assets/app.js"), "{body}");
    assert!(body.contains("show-errors"));

    let (status, headers, script) = get(&server, "/assets/app.js", "").await;
    assert_eq!(status, 200);
    assert!(
        header(&headers, "content-type").contains("javascript"),
        "{headers:?}"
    );
    assert!(!script.is_empty());
    let etag = header(&headers, "etag").to_string();
    assert!(etag.starts_with('"') && etag.len() > 10, "{etag}");
    let (status, _, body) = get(
        &server,
        "/assets/app.js",
        &format!("If-None-Match: {etag}\r\n"),
    )
    .await;
    assert_eq!(status, 304);
    assert!(body.is_empty());
    let (status, headers, _) = get(&server, "/assets/app.css", "").await;
    assert_eq!(status, 200);
    assert!(header(&headers, "content-type").starts_with("text/css"));

    for path in [
        "/../Cargo.toml",
        "/assets/../Cargo.toml",
        "/assets/../../Cargo.toml",
        "/assets/..%2f..%2fCargo.toml",
        "/assets/%2e%2e/%2e%2e/Cargo.toml",
        "/assets/..%5c..%5cCargo.toml",
        "/assets/",
        "/assets/nope.js",
        "/assets/.%2e/index.html",
        "/index.html/../../Cargo.toml",
        "/ui/dist/index.html",
        "/Cargo.toml",
    ] {
        let (status, _, body) = get(&server, path, "").await;
        assert_eq!(status, 404, "{path}");
        assert!(!body.contains("[package]"), "{path}");
    }
}

#[tokio::test]
async fn clients_that_go_away_end_their_streams_and_waits() {
    let server = TestServer::start().await;
    push_sample(&server).await;
    let ndjson = Live::open(server.addr, "/api/v1/logs?follow=1&level=fatal", "").await;
    let mut sse = Live::open(server.addr, "/api/v1/sse?level=fatal", "").await;
    sse.until(|body| body.contains("id: 6")).await;
    // A poll that waits, over a connection dropped without reading.
    let mut poll = TcpStream::connect(server.addr).await.expect("connect");
    let request = format!(
        "GET /api/v1/poll?after=6&wait=60s HTTP/1.1\r\nHost: {}\r\n\r\n",
        server.addr
    );
    poll.write_all(request.as_bytes()).await.expect("write");
    server
        .wait_for_metric("logtap_active_streams", |n| n == 3)
        .await;
    let cancelled = server.metric("logtap_streams_cancelled_total").await;
    drop(ndjson);
    drop(sse);
    drop(poll);
    server
        .wait_for_metric("logtap_active_streams", |n| n == 0)
        .await;
    let now = server.metric("logtap_streams_cancelled_total").await;
    assert!(now >= cancelled + 2, "{cancelled} → {now}");
}

/// The messages stored so far, oldest first.
async fn stored_messages(server: &TestServer) -> Vec<String> {
    let mut client = server.client().await;
    let (entries, _, _) = get_all(&mut client, LogRequest::default()).await;
    entries.into_iter().map(|entry| entry.message).collect()
}

#[tokio::test]
async fn trickled_push_lines_are_stored_soon_and_a_client_that_leaves_keeps_its_complete_lines() {
    let server = TestServer::start().await;
    let mut socket = TcpStream::connect(server.addr).await.unwrap();
    let head = "POST /api/v1/push HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n";
    socket.write_all(head.as_bytes()).await.unwrap();
    let chunk = |text: &str| format!("{:x}\r\n{text}\r\n", text.len());
    socket.write_all(chunk("first\n").as_bytes()).await.unwrap();
    // The body is still open, far from a full batch: the line is stored
    // anyway, soon.
    let deadline = Instant::now() + DEADLINE;
    loop {
        if stored_messages(&server).await == ["first"] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a trickled line was never stored"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // One more complete line, the start of another, and the client goes.
    socket
        .write_all(chunk("second\nunfinis").as_bytes())
        .await
        .unwrap();
    socket.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(socket);
    let deadline = Instant::now() + DEADLINE;
    loop {
        let messages = stored_messages(&server).await;
        if messages.len() == 2 {
            assert_eq!(
                messages,
                ["first", "second"],
                "the unfinished line is not stored"
            );
            break;
        }
        assert!(Instant::now() < deadline, "stored: {messages:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
