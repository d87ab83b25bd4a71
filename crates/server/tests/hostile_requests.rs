//! Clients that hold the server's memory or stream slots with requests:
//! unfinished messages (HTTP/2 Push streams, an HTTP/1.1 push line that
//! never ends), requests that stop mid-message, and one client opening
//! every stream it can. Each is written for the test, byte by byte where
//! a library would not misbehave (the `h2` crate for HTTP/2, raw TCP for
//! HTTP/1.1). Nothing here measures memory or speed: the assertions are on
//! statuses, on `/metrics` counters and gauges, and on what other clients
//! still get.

mod common;

use bytes::Bytes;
use common::*;
use logtap_proto::v1::LogRequest;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;

fn rejections(limit: &str) -> String {
    format!(r#"logtap_limit_rejections_total{{limit="{limit}"}}"#)
}

const BUFFERED: &str = "logtap_request_buffered_bytes";

/// What a stream of the hostile client was answered.
#[derive(Debug)]
struct Answer {
    grpc_status: Option<i32>,
    grpc_message: String,
}

/// An HTTP/2 connection of the hostile client.
struct Hostile {
    client: h2::client::SendRequest<Bytes>,
    /// Kept so the streams stay open until the test drops the client.
    streams: Vec<h2::SendStream<Bytes>>,
    connection: tokio::task::JoinHandle<()>,
    addr: SocketAddr,
}

impl Hostile {
    async fn connect(addr: SocketAddr) -> Hostile {
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (client, connection) = h2::client::handshake(tcp).await.expect("handshake");
        let connection = tokio::spawn(async move {
            let _ = connection.await;
        });
        Hostile {
            client,
            streams: Vec::new(),
            connection,
            addr,
        }
    }

    /// Opens `path` (gRPC) and sends `body` without ending the request.
    async fn open(&mut self, path: &str, body: Vec<u8>) -> h2::client::ResponseFuture {
        let request = http::Request::builder()
            .method("POST")
            .uri(format!("http://{}{path}", self.addr))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .expect("request");
        let mut client = self.client.clone().ready().await.expect("ready");
        let (response, mut send) = client.send_request(request, false).expect("send request");
        send.send_data(Bytes::from(body), false).expect("send body");
        self.streams.push(send);
        response
    }

    /// Closes the connection, as a client that goes away does.
    fn close(self) {
        drop(self.streams);
        drop(self.client);
        self.connection.abort();
    }
}

/// The start of a gRPC message that declares `declared` bytes: its prefix
/// and `sent` bytes of it.
fn unfinished(declared: usize, sent: usize) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(&(declared as u32).to_be_bytes());
    out.extend(std::iter::repeat_n(0x0a, sent));
    out
}

/// The status a stream was answered with, headers-only or in trailers.
async fn answer(response: h2::client::ResponseFuture) -> Answer {
    let response = tokio::time::timeout(DEADLINE, response)
        .await
        .expect("an answer within the deadline")
        .expect("a response, not a reset");
    let (parts, mut body) = response.into_parts();
    let header = |map: &http::HeaderMap, name: &str| {
        map.get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let mut grpc_status = header(&parts.headers, "grpc-status");
    let mut grpc_message = header(&parts.headers, "grpc-message");
    if grpc_status.is_none() {
        while let Some(chunk) = tokio::time::timeout(DEADLINE, body.data())
            .await
            .expect("body in time")
        {
            let chunk = chunk.expect("body chunk");
            let _ = body.flow_control().release_capacity(chunk.len());
        }
        if let Ok(Some(trailers)) = body.trailers().await {
            grpc_status = header(&trailers, "grpc-status");
            grpc_message = header(&trailers, "grpc-message");
        }
    }
    Answer {
        grpc_status: grpc_status.and_then(|s| s.parse().ok()),
        grpc_message: grpc_message.map(|m| percent_decode(&m)).unwrap_or_default(),
    }
}

const PUSH: &str = "/logtap.v1.LogService/Push";

/// Each hostile stream holds this much of a message not yet whole.
const HELD: usize = 5 + (512 << 10);

/// Many Push streams, each with half of a 1 MiB message that never
/// completes: each connection is cut at its share, the server at its
/// budget, the gauge never reads over either, another client still pushes
/// and reads, and everything comes back when the hostile client goes.
#[tokio::test]
async fn unfinished_push_messages_are_cut_at_the_connection_share_and_the_server_budget() {
    let server = TestServer::start_with(|config| {
        config.max_buffered_request_bytes = 6 << 20;
        config.max_buffered_request_bytes_per_connection = 4 << 20;
    })
    .await;
    // Streams are opened one at a time, each once the last is charged in
    // full, so which one meets a limit does not depend on scheduling:
    // 7 × HELD fit in the 4 MiB share, the 8th does not.
    let mut first = Hostile::connect(server.addr).await;
    let mut pending = Vec::new();
    for held in 1..=7 {
        pending.push(first.open(PUSH, unfinished(1 << 20, 512 << 10)).await);
        server
            .wait_for_metric(BUFFERED, |bytes| bytes == (held * HELD) as u64)
            .await;
    }
    let refused = answer(first.open(PUSH, unfinished(1 << 20, 512 << 10)).await).await;
    assert_eq!(
        refused.grpc_status,
        Some(Code::ResourceExhausted as i32),
        "{refused:?}"
    );
    assert!(
        refused
            .grpc_message
            .contains("this connection's limit of 4194304 bytes"),
        "{refused:?}"
    );
    assert_eq!(
        server.metric(BUFFERED).await,
        (7 * HELD) as u64,
        "the cut stream's bytes are freed"
    );
    // A second connection has a share of its own, but the server's budget
    // (6 MiB) holds 11 × HELD and not 12.
    let mut second = Hostile::connect(server.addr).await;
    for held in 8..=11 {
        pending.push(second.open(PUSH, unfinished(1 << 20, 512 << 10)).await);
        server
            .wait_for_metric(BUFFERED, |bytes| bytes == (held * HELD) as u64)
            .await;
    }
    let refused = answer(second.open(PUSH, unfinished(1 << 20, 512 << 10)).await).await;
    assert_eq!(
        refused.grpc_status,
        Some(Code::ResourceExhausted as i32),
        "{refused:?}"
    );
    assert!(
        refused
            .grpc_message
            .contains("the server's limit of 6291456 bytes"),
        "{refused:?}"
    );
    let buffered = server.metric(BUFFERED).await;
    assert_eq!(buffered, (11 * HELD) as u64);
    assert!(buffered <= 6 << 20);
    assert_eq!(server.metric(&rejections("request_buffer")).await, 2);
    // The request streams count as streams while they are open (not as
    // reading streams).
    assert_eq!(server.metric("logtap_request_streams").await, 11);
    assert_eq!(server.metric("logtap_active_streams").await, 0);
    // A well-behaved client on its own connection still pushes (its small
    // message fits in what is left) and reads.
    let mut client = server.client().await;
    push(&mut client, vec![vec![entry("info", "still served", 1)]]).await;
    let (entries, _, _) = get_all(&mut client, LogRequest::default()).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].message, "still served");
    // None of the unfinished streams was answered meanwhile.
    for response in &mut pending {
        assert!(futures::poll!(&mut *response).is_pending());
    }
    // The hostile client goes away: its bytes and slots come back.
    drop(pending);
    first.close();
    second.close();
    server.wait_for_metric(BUFFERED, |bytes| bytes == 0).await;
    server
        .wait_for_metric("logtap_request_streams", |n| n == 0)
        .await;
}

/// Unfinished GetLogs requests count as streams: at `max_streams` they
/// hold every slot, and a reader is refused until they go.
#[tokio::test]
async fn unfinished_requests_hold_stream_slots() {
    let server = TestServer::start_with(|config| config.max_streams = 2).await;
    let mut hostile = Hostile::connect(server.addr).await;
    let mut pending = Vec::new();
    for _ in 0..2 {
        pending.push(
            hostile
                .open("/logtap.v1.LogService/GetLogs", unfinished(100, 10))
                .await,
        );
    }
    server
        .wait_for_metric("logtap_request_streams", |n| n == 2)
        .await;
    let mut client = server.client().await;
    let refused = client
        .get_logs(LogRequest::default())
        .await
        .expect_err("no slot left");
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(
        refused.message().contains("too many streams"),
        "{refused:?}"
    );
    drop(pending);
    hostile.close();
    server
        .wait_for_metric("logtap_request_streams", |n| n == 0)
        .await;
    client
        .get_logs(LogRequest::default())
        .await
        .expect("a slot once the hostile client is gone");
}

/// A request that stops sending in the middle of a message is cut after
/// the stall timeout (DEADLINE_EXCEEDED, counted) and its bytes freed; a Push
/// stream that is quiet between whole messages is left alone.
#[tokio::test]
async fn a_request_stalled_mid_message_is_cut_and_one_quiet_between_messages_is_not() {
    let server = TestServer::start_with(|config| {
        config.request_stall_timeout = Duration::from_millis(300);
    })
    .await;
    let mut hostile = Hostile::connect(server.addr).await;
    // An empty PushRequest is a whole message of length 0.
    let quiet = hostile.open(PUSH, unfinished(0, 0)).await;
    let stalled = hostile.open(PUSH, unfinished(1000, 100)).await;
    let cut = answer(stalled).await;
    assert_eq!(
        cut.grpc_status,
        Some(Code::DeadlineExceeded as i32),
        "{cut:?}"
    );
    assert!(
        cut.grpc_message
            .contains("no bytes of an unfinished request message arrived"),
        "{cut:?}"
    );
    assert_eq!(server.metric(&rejections("request_stall")).await, 1);
    server.wait_for_metric(BUFFERED, |bytes| bytes == 0).await;
    // Well past the stall timeout, the quiet stream ends normally.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut send = hostile.streams.remove(0);
    send.send_data(Bytes::new(), true)
        .expect("end the quiet push");
    let ok = answer(quiet).await;
    assert_eq!(ok.grpc_status, Some(0), "{ok:?}");
    assert_eq!(server.metric(&rejections("request_stall")).await, 1);
    hostile.close();
}

/// An HTTP/1.1 push whose one line never ends is cut at the budget (503,
/// counted) long before the line limit, and its bytes are freed.
#[tokio::test]
async fn an_http_push_line_that_never_ends_is_cut_at_the_budget() {
    let server = TestServer::start_with(|config| {
        config.max_buffered_request_bytes = 1 << 20;
    })
    .await;
    let mut tcp = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    let head = format!(
        "POST /api/v1/push HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\n\r\n",
        server.addr,
        100 << 20
    );
    tcp.write_all(head.as_bytes()).await.expect("head");
    // One byte over the budget, in pieces, with no newline; then nothing,
    // so the server has read all of it when it answers.
    let piece = vec![b'x'; 16 << 10];
    for _ in 0..64 {
        tcp.write_all(&piece).await.expect("a piece of the line");
    }
    tcp.write_all(b"x").await.expect("the byte over");
    let mut raw = Vec::new();
    let read = tokio::time::timeout(DEADLINE, async {
        let mut buffer = [0u8; 4096];
        loop {
            match tcp.read(&mut buffer).await {
                Ok(0) => break,
                Ok(n) => raw.extend_from_slice(&buffer[..n]),
                // The server may close with bytes of ours unread.
                Err(_) if !raw.is_empty() => break,
                Err(error) => panic!("reading the answer: {error}"),
            }
            if raw.windows(4).any(|w| w == b"\r\n\r\n") && raw.ends_with(b"}\n") {
                break;
            }
        }
    })
    .await;
    assert!(read.is_ok(), "an answer within the deadline");
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("unfinished request bytes"), "{text}");
    assert_eq!(server.metric(&rejections("request_buffer")).await, 1);
    server.wait_for_metric(BUFFERED, |bytes| bytes == 0).await;
}

/// `GET /api/v1/logs?follow=true` from `source`: the status, and the
/// socket, which holds the stream open while it lives.
async fn follow_from(server: &TestServer, source: &str) -> (u16, String, tokio::net::TcpStream) {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(format!("{source}:0").parse().unwrap())
        .expect("bind the source address");
    let mut tcp = socket.connect(server.addr).await.expect("connect");
    let request = format!(
        "GET /api/v1/logs?follow=true HTTP/1.1\r\nHost: {}\r\n\r\n",
        server.addr
    );
    tcp.write_all(request.as_bytes()).await.expect("request");
    let mut raw = Vec::new();
    let mut buffer = [0u8; 4096];
    tokio::time::timeout(DEADLINE, async {
        while !raw.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = tcp.read(&mut buffer).await.expect("read");
            assert!(n > 0, "closed before the head");
            raw.extend_from_slice(&buffer[..n]);
        }
        // A refusal's body comes with its head; give it a moment to.
        if !raw.starts_with(b"HTTP/1.1 200") {
            if let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_millis(200), tcp.read(&mut buffer)).await
            {
                raw.extend_from_slice(&buffer[..n]);
            }
        }
    })
    .await
    .expect("an answer within the deadline");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text[9..12].parse().expect("a status");
    (status, text, tcp)
}

/// Per connection and per client address, the N+1th stream is refused
/// with a message naming the limit (counted), while another address
/// still gets one.
#[tokio::test]
async fn stream_caps_per_connection_and_per_address_leave_room_for_others() {
    let server = TestServer::start_with(|config| {
        config.max_streams_per_connection = 2;
        config.max_streams_per_peer = 3;
    })
    .await;
    // One connection, two live tails, a third refused.
    let mut client = server.client().await;
    let one = client
        .stream_logs(LogRequest::default())
        .await
        .expect("first");
    let two = client
        .stream_logs(LogRequest::default())
        .await
        .expect("second");
    let refused = client
        .stream_logs(LogRequest::default())
        .await
        .expect_err("third on one connection");
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(
        refused.message().contains("on this connection") && refused.message().contains('2'),
        "{refused:?}"
    );
    // The same address over another connection: one more, then refused.
    let (status, text, _three) = follow_from(&server, "127.0.0.1").await;
    assert_eq!(status, 200, "{text}");
    let (status, text, _) = follow_from(&server, "127.0.0.1").await;
    assert_eq!(status, 429, "{text}");
    assert!(text.contains("from this client address"), "{text}");
    assert_eq!(
        server.metric(&rejections("streams_per_connection")).await,
        1
    );
    assert_eq!(server.metric(&rejections("streams_per_peer")).await, 1);
    assert_eq!(server.metric(&rejections("streams")).await, 0);
    // Another address is not held back by the first one's streams.
    let (status, text, _other) = follow_from(&server, "127.0.0.2").await;
    assert_eq!(status, 200, "a second source address: {text}");
    server
        .wait_for_metric("logtap_active_streams", |n| n == 4)
        .await;
    drop((one, two));
}
