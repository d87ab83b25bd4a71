//! Connections that cost the server without asking anything: clients that
//! connect and send nothing (or half a preface, or half a request head),
//! and more connections than `max_connections`. Each is a raw TCP client
//! against a real server on 127.0.0.1:0.

mod common;

use common::{metric_value, TestServer, DEADLINE};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the server closes the connection, failing at the deadline:
/// what the server sent before closing.
async fn closed_by_server(tcp: &mut TcpStream, what: &str) -> Vec<u8> {
    let mut seen = Vec::new();
    match tokio::time::timeout(DEADLINE, tcp.read_to_end(&mut seen)).await {
        Ok(_) => seen,
        Err(_) => panic!("{what}: the connection was still open at the deadline"),
    }
}

/// One request on a keep-alive connection: the status and body (the
/// answers here all carry a Content-Length).
async fn keep_alive_get(tcp: &mut TcpStream, path: &str) -> (u16, String) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length:"))
                    .map(|value| value.trim().parse().expect("length"))
                    .expect("a content-length");
                if raw.len() >= end + 4 + length {
                    let status = head[9..12].parse().expect("status");
                    let body = String::from_utf8_lossy(&raw[end + 4..end + 4 + length]);
                    return (status, body.into_owned());
                }
            }
            let n = tcp.read(&mut buf).await.expect("read");
            assert!(n > 0, "the server closed the keep-alive connection");
            raw.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(DEADLINE, read)
        .await
        .expect("an answer within the deadline")
}

#[tokio::test]
async fn connections_that_say_nothing_are_closed_after_the_header_read_timeout() {
    let server = TestServer::start_with(|config| {
        config.header_read_timeout = Duration::from_secs(1);
    })
    .await;
    let cases: [(&str, &[u8]); 3] = [
        ("nothing at all", b""),
        ("half the HTTP/2 preface", b"PRI * HTTP/2.0\r\n"),
        (
            "half an HTTP/1.1 request head",
            b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n",
        ),
    ];
    let mut connections = Vec::new();
    for (what, bytes) in cases {
        let mut tcp = TcpStream::connect(server.addr).await.expect("connect");
        tcp.write_all(bytes).await.expect("write");
        connections.push((what, tcp));
    }
    for (what, tcp) in &mut connections {
        let answer = closed_by_server(tcp, what).await;
        // Closed with nothing, or with hyper's 408 for a head cut short:
        // never a 200 for half a request.
        let answer = String::from_utf8_lossy(&answer);
        assert!(!answer.contains(" 200 "), "{what}: {answer}");
    }
    // Only the connection asking for /metrics is left.
    server
        .wait_for_metric("logtap_open_connections", |open| open == 1)
        .await;

    // A request that takes longer than the timeout to answer is not cut:
    // the deadline is on the first bytes only.
    let (status, body) = server.http_get("/api/v1/poll?wait=2s").await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = server.http_get("/healthz").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_connection_over_max_connections_is_closed_at_once_and_counted() {
    let server = TestServer::start_with(|config| {
        config.max_connections = 3;
        config.header_read_timeout = Duration::from_secs(60);
    })
    .await;
    let mut first = TcpStream::connect(server.addr).await.expect("connect");
    let (status, _) = keep_alive_get(&mut first, "/healthz").await;
    assert_eq!(status, 200);
    let second = TcpStream::connect(server.addr).await.expect("connect");
    let _third = TcpStream::connect(server.addr).await.expect("connect");
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let (_, metrics) = keep_alive_get(&mut first, "/metrics").await;
        if metric_value(&metrics, "logtap_open_connections") == Some(3) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The fourth is closed as soon as it is accepted, whatever it sends.
    let mut fourth = TcpStream::connect(server.addr).await.expect("connect");
    let _ = fourth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await;
    let mut seen = Vec::new();
    let closed = tokio::time::timeout(DEADLINE, fourth.read_to_end(&mut seen))
        .await
        .expect("closed within the deadline");
    // A reset is as good as a close; either way no answer.
    assert!(closed.is_err() || seen.is_empty(), "{seen:?}");

    // The connections already open are served as before.
    let (status, _) = keep_alive_get(&mut first, "/healthz").await;
    assert_eq!(status, 200);
    let (_, metrics) = keep_alive_get(&mut first, "/metrics").await;
    assert_eq!(
        metric_value(
            &metrics,
            r#"logtap_limit_rejections_total{limit="connections"}"#
        ),
        Some(1),
        "{metrics}"
    );
    assert_eq!(
        metric_value(&metrics, "logtap_open_connections"),
        Some(3),
        "{metrics}"
    );

    // One closes: a new one is served.
    drop(second);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let (_, metrics) = keep_alive_get(&mut first, "/metrics").await;
        if metric_value(&metrics, "logtap_open_connections") == Some(2) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, _) = server.http_get("/healthz").await;
    assert_eq!(status, 200);
}
