//! Web pages against a server without tokens: cross-site "simple" POSTs
//! (form, multipart, text/plain) to the push route, DNS rebinding (a
//! `Host` that is not the server's), and push bodies the server would store
//! as the wrong bytes (`Transfer-Encoding: gzip`). Each request is written
//! by hand, as a hostile page's browser would send it.

mod common;

use common::{http1, TestServer};
use logtap_proto::v1::LogRequest;
use tonic::transport::Endpoint;

/// `POST /api/v1/push` with these header lines (each ending in `\r\n`) and
/// `body`: the status and body of the answer.
async fn push_with(server: &TestServer, host: &str, headers: &str, body: &str) -> (u16, String) {
    let request = format!(
        "POST /api/v1/push HTTP/1.1\r\nHost: {host}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let (status, _, answer) = http1(server.addr, request.as_bytes()).await;
    (status, String::from_utf8_lossy(&answer).into_owned())
}

/// `GET path` with `Host: host`.
async fn get_for_host(server: &TestServer, host: &str, path: &str) -> (u16, String) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let (status, _, answer) = http1(server.addr, request.as_bytes()).await;
    (status, String::from_utf8_lossy(&answer).into_owned())
}

#[tokio::test]
async fn cross_site_writes_are_refused_and_nothing_is_stored() {
    let server = TestServer::start().await;
    let host = server.addr.to_string();
    let body = "{\"level\":\"error\",\"message\":\"from a web page\"}\n";
    let evil = "Origin: https://evil.example\r\n";
    for (what, headers) in [
        (
            "text/plain",
            format!("{evil}Content-Type: text/plain;charset=UTF-8\r\n"),
        ),
        (
            "a form",
            format!("{evil}Content-Type: application/x-www-form-urlencoded\r\n"),
        ),
        (
            "multipart",
            format!("{evil}Content-Type: multipart/form-data; boundary=x\r\n"),
        ),
        (
            "NDJSON from another origin",
            format!("{evil}Content-Type: application/x-ndjson\r\n"),
        ),
        (
            "a sandboxed frame",
            "Origin: null\r\nContent-Type: text/plain\r\n".to_string(),
        ),
        (
            "another port of this host",
            "Origin: http://127.0.0.1:1\r\nContent-Type: text/plain\r\n".to_string(),
        ),
        (
            "no Origin but Sec-Fetch-Site",
            "Sec-Fetch-Site: cross-site\r\nContent-Type: application/x-ndjson\r\n".to_string(),
        ),
    ] {
        let (status, answer) = push_with(&server, &host, &headers, body).await;
        assert_eq!(status, 403, "{what}: {answer}");
        assert!(answer.contains("--cors-origin"), "{what}: {answer}");
    }
    // A gRPC-Web push from another origin is refused the same way.
    let request = format!(
        "POST /logtap.v1.LogService/Push HTTP/1.1\r\nHost: {host}\r\nOrigin: https://evil.example\r\nContent-Type: application/grpc-web+proto\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let (status, headers, _) = http1(server.addr, request.as_bytes()).await;
    assert_eq!(status, 200);
    assert!(
        headers
            .iter()
            .any(|(name, value)| name == "grpc-status" && value == "7"),
        "{headers:?}"
    );
    assert_eq!(server.metric("logtap_entries_stored_total").await, 0);

    // Reading from another origin stays as it was (CORS decides what the
    // page may see).
    let (status, _) = get_for_host(&server, &host, "/api/v1/logs").await;
    assert_eq!(status, 200);

    // The server's own pages, and clients that are not browsers, push.
    let own = format!("Origin: http://{host}\r\nContent-Type: application/x-ndjson\r\n");
    let (status, answer) = push_with(&server, &host, &own, body).await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = push_with(&server, &host, "", body).await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = push_with(
        &server,
        &host,
        "Sec-Fetch-Site: same-origin\r\nContent-Type: application/json\r\n",
        body,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(server.metric("logtap_entries_stored_total").await, 3);
}

#[tokio::test]
async fn a_cors_origin_may_push() {
    let server = TestServer::start_with(|config| {
        config.cors_origins = vec!["https://app.example".into()];
    })
    .await;
    let host = server.addr.to_string();
    let body = "one line\n";
    let (status, answer) = push_with(
        &server,
        &host,
        "Origin: https://app.example\r\nContent-Type: application/x-ndjson\r\n",
        body,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = push_with(
        &server,
        &host,
        "Origin: https://evil.example\r\nContent-Type: application/x-ndjson\r\n",
        body,
    )
    .await;
    assert_eq!(status, 403, "{answer}");
}

#[tokio::test]
async fn a_push_body_must_be_json_or_ndjson_and_not_compressed() {
    let server = TestServer::start().await;
    let host = server.addr.to_string();
    let body = "a line\n";
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/octet-stream",
    ] {
        let headers = format!("Content-Type: {content_type}\r\n");
        let (status, answer) = push_with(&server, &host, &headers, body).await;
        assert_eq!(status, 415, "{content_type}: {answer}");
        assert!(answer.contains("application/x-ndjson"), "{answer}");
    }
    // gzip in a chunked body (the start of a gzip header, as far as a
    // string literal goes): hyper undoes the chunking only.
    let request = format!(
        "POST /api/v1/push HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n4\r\n\x1f\x0b\x08\x00\r\n0\r\n\r\n"
    );
    let (status, _, answer) = http1(server.addr, request.as_bytes()).await;
    let answer = String::from_utf8_lossy(&answer);
    assert_eq!(status, 415, "{answer}");
    assert!(answer.contains("gzip"), "{answer}");
    assert_eq!(server.metric("logtap_entries_stored_total").await, 0);

    for content_type in [
        "application/x-ndjson",
        "application/json; charset=utf-8",
        "application/jsonl",
        "application/vnd.logs+json",
    ] {
        let headers = format!("Content-Type: {content_type}\r\n");
        let (status, answer) = push_with(&server, &host, &headers, body).await;
        assert_eq!(status, 200, "{content_type}: {answer}");
    }
}

#[tokio::test]
async fn a_loopback_listener_answers_only_for_its_own_names() {
    let server = TestServer::start_with(|config| {
        config.allowed_hosts = vec!["logs.internal".into()];
    })
    .await;
    let port = server.addr.port();
    for host in [
        format!("evil.example:{port}"),
        "evil.example".to_string(),
        format!("localhost.evil.example:{port}"),
    ] {
        for path in ["/api/v1/logs", "/healthz", "/"] {
            let (status, answer) = get_for_host(&server, &host, path).await;
            assert_eq!(status, 403, "{host}{path}: {answer}");
            assert!(answer.contains("--allowed-host"), "{answer}");
        }
        let (status, answer) = push_with(&server, &host, "", "x\n").await;
        assert_eq!(status, 403, "{answer}");
    }
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        format!("LOGS.internal:{port}"),
    ] {
        let (status, answer) = get_for_host(&server, &host, "/api/v1/logs").await;
        assert_eq!(status, 200, "{host}: {answer}");
    }
    assert_eq!(server.metric("logtap_entries_stored_total").await, 0);

    // gRPC says the same with PERMISSION_DENIED, from its :authority.
    let channel = Endpoint::from_shared(server.url())
        .unwrap()
        .origin(format!("http://evil.example:{port}").parse().unwrap())
        .connect()
        .await
        .expect("connect");
    let mut client = logtap_proto::v1::log_service_client::LogServiceClient::new(channel);
    let status = client
        .get_logs(LogRequest::default())
        .await
        .expect_err("refused");
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("--allowed-host"), "{status:?}");
    let mut client = server.client().await;
    client
        .get_logs(LogRequest::default())
        .await
        .expect("its own name is served");
}
