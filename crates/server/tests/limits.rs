//! Each limit, hit on purpose: it gives a clear status and shows in
//! /metrics as `logtap_limit_rejections_total{limit="..."}` (where the
//! server can see it at all; see the per-connection limit below).

mod common;

use common::*;
use logtap_proto::v1::LogRequest;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;

fn rejections(limit: &str) -> String {
    format!(r#"logtap_limit_rejections_total{{limit="{limit}"}}"#)
}

#[tokio::test]
async fn every_limit_shows_in_metrics_at_zero_before_it_is_hit() {
    let server = TestServer::start().await;
    for limit in ["streams", "message_size", "idle_timeout", "disk_full"] {
        assert_eq!(server.metric(&rejections(limit)).await, 0, "{limit}");
    }
}

#[tokio::test]
async fn the_stream_limit_across_every_transport_is_resource_exhausted_and_counted() {
    let server = TestServer::start_with(|config| config.max_streams = 2).await;
    let mut client = server.client().await;
    let first = client
        .stream_logs(LogRequest::default())
        .await
        .expect("first");
    let second = client
        .get_logs(LogRequest {
            follow: true,
            ..LogRequest::default()
        })
        .await
        .expect("second");
    let refused = client
        .stream_logs(LogRequest::default())
        .await
        .expect_err("third");
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(
        refused.message().contains("too many streams") && refused.message().contains('2'),
        "{refused:?}"
    );
    // The HTTP fallbacks count against the same limit.
    let (status, _) = server.http_get("/api/v1/logs").await;
    assert_eq!(status, 429, "NDJSON over the limit");
    assert_eq!(server.metric(&rejections("streams")).await, 2);
    drop((first, second));
    server
        .wait_for_metric("logtap_active_streams", |n| n == 0)
        .await;
    client
        .stream_logs(LogRequest::default())
        .await
        .expect("room again");
}

#[tokio::test]
async fn the_message_size_limit_is_resource_exhausted_and_counted() {
    let server = TestServer::start_with(|config| config.max_message_bytes = 4096).await;
    let mut client = server.client().await;
    let status = try_push(&mut client, vec![vec![entry("info", &"m".repeat(8192), 1)]])
        .await
        .expect_err("push too large");
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(status.message().contains("message too large"), "{status:?}");
    let status = client
        .get_logs(LogRequest {
            grep: "g".repeat(8192),
            ..LogRequest::default()
        })
        .await
        .expect_err("request too large");
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(status.message().contains("message too large"), "{status:?}");
    assert_eq!(server.metric(&rejections("message_size")).await, 2);
}

#[tokio::test]
async fn the_idle_timeout_resets_a_client_that_reads_nothing_and_is_counted() {
    let server = TestServer::start_with(|config| {
        config.idle_timeout = Duration::from_millis(300);
    })
    .await;
    let mut client = server.client().await;
    // About 1 MiB of history: far more than the 64 KiB window.
    let response = server.stalled_get_logs(4).await;
    server
        .wait_for_metric(&rejections("idle_timeout"), |n| n == 1)
        .await;
    // A client that cancels on its own is not counted as the idle limit.
    let cancelled = client
        .stream_logs(LogRequest::default())
        .await
        .expect("stream");
    drop(cancelled);
    server
        .wait_for_metric("logtap_streams_cancelled_total", |n| n == 2)
        .await;
    assert_eq!(server.metric(&rejections("idle_timeout")).await, 1);
    // What the stalled client sees once it reads: CANCELLED.
    let mut stream = response.into_inner();
    let error = loop {
        match tokio::time::timeout(DEADLINE, stream.message()).await {
            Ok(Ok(Some(_))) => {}
            Ok(Ok(None)) => panic!("the stalled stream ended cleanly"),
            Ok(Err(status)) => break status,
            Err(_) => panic!("no reset within the deadline"),
        }
    };
    assert_eq!(error.code(), Code::Cancelled, "{error:?}");
}

// ---------------------------------------------------------------------------
// HTTP/2 streams per connection, with hand-written frames
// ---------------------------------------------------------------------------

/// One HTTP/2 frame: type, flags, stream id, payload.
struct Frame {
    kind: u8,
    flags: u8,
    stream: u32,
    payload: Vec<u8>,
}

fn write_frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
}

/// HPACK "literal header field without indexing, new name", no Huffman:
/// the simplest encoding every decoder accepts (names and values < 127).
fn hpack_literal(out: &mut Vec<u8>, name: &str, value: &str) {
    out.push(0x00);
    out.push(name.len() as u8);
    out.extend_from_slice(name.as_bytes());
    out.push(value.len() as u8);
    out.extend_from_slice(value.as_bytes());
}

async fn read_frame(tcp: &mut tokio::net::TcpStream) -> Option<Frame> {
    let mut head = [0u8; 9];
    tcp.read_exact(&mut head).await.ok()?;
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let mut payload = vec![0; len];
    tcp.read_exact(&mut payload).await.ok()?;
    Some(Frame {
        kind: head[3],
        flags: head[4],
        stream: u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff,
        payload,
    })
}

/// A client that ignores the server's SETTINGS_MAX_CONCURRENT_STREAMS (no
/// well-behaved library would: h2 and grpc-go queue the extra streams
/// themselves) opens one stream more than allowed: that stream is refused
/// with RST_STREAM(REFUSED_STREAM), which gRPC clients see as UNAVAILABLE
/// and may retry; the streams within the limit go on.
///
/// Not in /metrics: h2 refuses the stream inside hyper before any code of
/// the server sees a request, and neither hyper nor h2 reports it.
#[tokio::test]
async fn streams_over_the_per_connection_limit_are_refused_by_http2() {
    let server = TestServer::start_with(|config| {
        config.max_concurrent_streams_per_connection = 2;
    })
    .await;
    let mut tcp = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    write_frame(&mut out, 0x4, 0, 0, &[]);
    tcp.write_all(&out).await.expect("preface");
    // Acknowledge the server's settings, and wait for it to acknowledge
    // ours, so its limit is in force on both sides.
    let mut advertised = None;
    let (mut acked, mut sent_ack) = (false, false);
    while !(acked && sent_ack) {
        let frame = tokio::time::timeout(DEADLINE, read_frame(&mut tcp))
            .await
            .expect("frames in time")
            .expect("a frame");
        if frame.kind == 0x4 && frame.flags & 1 == 0 {
            for setting in frame.payload.chunks(6) {
                if setting[..2] == [0, 3] {
                    advertised = Some(u32::from_be_bytes(setting[2..6].try_into().unwrap()));
                }
            }
            let mut ack = Vec::new();
            write_frame(&mut ack, 0x4, 1, 0, &[]);
            tcp.write_all(&ack).await.expect("ack");
            sent_ack = true;
        } else if frame.kind == 0x4 {
            acked = true;
        }
    }
    assert_eq!(advertised, Some(2), "SETTINGS_MAX_CONCURRENT_STREAMS");
    // Three live tails on one connection.
    let mut out = Vec::new();
    for stream in [1u32, 3, 5] {
        let mut block = Vec::new();
        for (name, value) in [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", "/logtap.v1.LogService/StreamLogs"),
            (":authority", "localhost"),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        ] {
            hpack_literal(&mut block, name, value);
        }
        write_frame(&mut out, 0x1, 0x4, stream, &block);
        write_frame(&mut out, 0x0, 0x1, stream, &[0, 0, 0, 0, 0]);
    }
    tcp.write_all(&out).await.expect("requests");
    let mut answered = Vec::new();
    let mut refused = None;
    while answered.len() < 2 || refused.is_none() {
        let frame = tokio::time::timeout(DEADLINE, read_frame(&mut tcp))
            .await
            .expect("answers in time")
            .expect("a frame");
        match frame.kind {
            0x1 => answered.push(frame.stream),
            // The first reset says why; the DATA frame that followed the
            // refused HEADERS may earn a second one (STREAM_CLOSED).
            0x3 if refused.is_none() => {
                let code = u32::from_be_bytes(frame.payload[..4].try_into().unwrap());
                refused = Some((frame.stream, code));
            }
            0x7 => panic!("GOAWAY: the whole connection was dropped"),
            _ => {}
        }
    }
    answered.sort_unstable();
    assert_eq!(
        answered,
        vec![1, 3],
        "the streams within the limit are served"
    );
    assert_eq!(
        refused,
        Some((5, 0x7)),
        "RST_STREAM(REFUSED_STREAM) on the third"
    );
    // Both tails are open and counted; the refused one never reached it.
    server
        .wait_for_metric("logtap_active_streams", |n| n == 2)
        .await;
    assert_eq!(server.metric(&rejections("streams")).await, 0);
}
