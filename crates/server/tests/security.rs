//! Security at the boundary a client touches: TLS (certificates made at test
//! time with rcgen), bearer tokens and scopes on every transport, the
//! loopback rule, and CORS.

mod common;

use common::*;
use logtap_proto::example;
use logtap_proto::v1::log_service_client::LogServiceClient;
use logtap_proto::v1::{LogRequest, PushRequest};
use logtap_server::{Server, ServerConfig, ServerError};
use prost::Message;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::rustls;
use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request};

// ---------------------------------------------------------------------------
// Test certificates and tokens
// ---------------------------------------------------------------------------

/// A test CA and a server certificate it signed, for 127.0.0.1 and
/// localhost, written as PEM files.
struct Pki {
    /// Keeps the files alive.
    _dir: tempfile::TempDir,
    /// The CA certificate clients trust.
    ca_pem: String,
    /// The server's certificate and key files.
    files: logtap_server::tls::TlsFiles,
}

impl Pki {
    fn new() -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "logtap test CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca_params, ca_key);

        let key = KeyPair::generate().expect("server key");
        let params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("server params");
        let cert = params.signed_by(&key, &issuer).expect("server certificate");

        let dir = tempfile::tempdir().expect("temporary directory");
        let cert_path = dir.path().join("server.crt");
        let key_path = dir.path().join("server.key");
        std::fs::write(&cert_path, cert.pem()).expect("write cert");
        std::fs::write(&key_path, key.serialize_pem()).expect("write key");
        Pki {
            _dir: dir,
            ca_pem: ca_cert.pem(),
            files: logtap_server::tls::TlsFiles {
                cert: cert_path,
                key: key_path,
            },
        }
    }
}

const READ: &str = "read-token-0123456789abcdef";
const WRITE: &str = "write-token-0123456789abcdef";
const BOTH: &str = "both-token-0123456789abcdef";

/// Writes a token file with a read, a write and a read,write token.
fn token_file(dir: &Path) -> PathBuf {
    let path = dir.join("tokens.txt");
    std::fs::write(
        &path,
        format!("# test tokens\n\n{READ} read\n{WRITE} write\n{BOTH} read,write\n"),
    )
    .expect("write token file");
    path
}

/// A server with tokens on, over a temporary directory (which also holds
/// the token file).
async fn server_with_tokens(
    adjust: impl FnOnce(&mut ServerConfig),
) -> (TestServer, tempfile::TempDir) {
    let tokens = tempfile::tempdir().expect("token dir");
    let path = token_file(tokens.path());
    let server = TestServer::start_with(|config| {
        config.auth_token_file = Some(path);
        adjust(config);
    })
    .await;
    (server, tokens)
}

/// `message` with `authorization: Bearer token`.
fn authorized<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    let value: MetadataValue<_> = format!("Bearer {token}").parse().expect("header value");
    request.metadata_mut().insert("authorization", value);
    request
}

fn push_request(messages: &[&str]) -> Vec<PushRequest> {
    vec![PushRequest {
        entries: messages
            .iter()
            .enumerate()
            .map(|(i, message)| entry("error", message, i as i64 + 1))
            .collect(),
    }]
}

// ---------------------------------------------------------------------------
// Small HTTP/1.1 client, over any stream (TCP or TLS)
// ---------------------------------------------------------------------------

/// A parsed HTTP/1.1 response.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A request (`Connection: close` is added) with these extra header lines.
fn request_bytes(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Plain HTTP/1.1 to the server.
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let (status, headers, body) = http1(addr, &request_bytes(method, path, headers, body)).await;
    Reply {
        status,
        headers,
        body,
    }
}

/// Sends `request` on `stream` and reads the response until the server
/// closes (no chunked bodies expected here beyond what `dechunk` handles).
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, request: &[u8]) -> Reply {
    stream.write_all(request).await.expect("write request");
    let mut raw = Vec::new();
    let read = tokio::time::timeout(DEADLINE, stream.read_to_end(&mut raw))
        .await
        .expect("response within the deadline");
    // rustls reports a peer that closed without close_notify as an error;
    // what arrived before it still counts.
    if let Err(error) = read {
        assert_eq!(error.kind(), std::io::ErrorKind::UnexpectedEof, "{error}");
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of head");
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
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = raw.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&raw[..end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .expect("chunk size");
        if size == 0 {
            break;
        }
        let data = &raw[end + 2..];
        out.extend_from_slice(&data[..size]);
        raw = &data[size + 2..];
    }
    out
}

/// A TLS connection trusting `ca_pem`, offering `alpn`.
async fn tls_connect(
    addr: SocketAddr,
    ca_pem: &str,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).expect("CA PEM"))
        .expect("add CA");
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("TLS handshake")
}

/// A gRPC-Web GetLogs request body (one frame).
fn grpc_web_frame(request: &LogRequest) -> Vec<u8> {
    let message = request.encode_to_vec();
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend_from_slice(&message);
    frame
}

/// The messages and the trailer block of a gRPC-Web response body.
fn grpc_web_decode(body: &[u8]) -> (Vec<String>, String) {
    let mut rest = body;
    let mut messages = Vec::new();
    let mut trailers = String::new();
    while rest.len() >= 5 {
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        let payload = &rest[5..5 + len];
        if rest[0] & 0x80 == 0 {
            messages.push(
                logtap_proto::v1::LogEntry::decode(payload)
                    .expect("entry")
                    .message,
            );
        } else {
            trailers = String::from_utf8_lossy(payload).to_lowercase();
        }
        rest = &rest[5 + len..];
    }
    (messages, trailers)
}

/// The gRPC status of a gRPC-Web response: from the headers (trailers-only
/// answers, as refusals are) or the trailer frame.
fn grpc_web_status(reply: &Reply) -> String {
    if let Some(status) = reply.header("grpc-status") {
        return status.to_string();
    }
    let (_, trailers) = grpc_web_decode(&reply.body);
    trailers
        .lines()
        .find_map(|line| line.trim().strip_prefix("grpc-status:"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------

async fn tls_server(pki: &Pki, adjust: impl FnOnce(&mut ServerConfig)) -> TestServer {
    let files = pki.files.clone();
    TestServer::start_with(|config| {
        config.tls = Some(files);
        adjust(config);
    })
    .await
}

async fn tls_channel(addr: SocketAddr, ca_pem: &str) -> Channel {
    Endpoint::from_shared(format!("https://{addr}"))
        .expect("endpoint")
        .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca_pem)))
        .expect("tls config")
        .connect()
        .await
        .expect("connect over TLS")
}

#[tokio::test]
async fn grpc_push_and_get_logs_work_over_tls() {
    let pki = Pki::new();
    let server = tls_server(&pki, |_| {}).await;
    let mut client = LogServiceClient::new(tls_channel(server.addr, &pki.ca_pem).await);
    let reply = client
        .push(tokio_stream::iter(push_request(&["over tls", "still tls"])))
        .await
        .expect("push over TLS")
        .into_inner();
    assert_eq!((reply.stored, reply.last_cursor), (2, 2));

    let response = client
        .get_logs(LogRequest::default())
        .await
        .expect("get_logs over TLS");
    assert_eq!(number(response.metadata(), "logtap-total-count"), 2);
    let mut stream = response.into_inner();
    let (entries, trailers) = drain(&mut stream).await;
    let messages: Vec<_> = entries.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(messages, ["over tls", "still tls"]);
    assert_eq!(number(&trailers, "logtap-sent"), 2);

    // The seed's service too, on the same TLS port.
    let mut seed = example::log_service_client::LogServiceClient::new(
        tls_channel(server.addr, &pki.ca_pem).await,
    );
    let mut stream = seed
        .get_logs(example::LogRequest {
            level: "error".into(),
        })
        .await
        .expect("seed get_logs over TLS")
        .into_inner();
    let (entries, _) = drain(&mut stream).await;
    assert_eq!(entries.len(), 2);
}

#[tokio::test]
async fn http1_routes_and_grpc_web_work_over_tls() {
    let pki = Pki::new();
    let server = tls_server(&pki, |_| {}).await;
    server_push(&server, &pki).await;

    let stream = tls_connect(server.addr, &pki.ca_pem, &[b"http/1.1"]).await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let reply = exchange(stream, &request_bytes("GET", "/healthz", &[], b"")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body_text(), "ok");

    // A client offering both gets h2 (what gRPC needs).
    let stream = tls_connect(server.addr, &pki.ca_pem, &[b"h2", b"http/1.1"]).await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    drop(stream);

    let stream = tls_connect(server.addr, &pki.ca_pem, &[b"http/1.1"]).await;
    let frame = grpc_web_frame(&LogRequest::default());
    let reply = exchange(
        stream,
        &request_bytes(
            "POST",
            "/logtap.v1.LogService/GetLogs",
            &[
                ("content-type", "application/grpc-web+proto"),
                ("x-grpc-web", "1"),
            ],
            &frame,
        ),
    )
    .await;
    assert_eq!(reply.status, 200);
    let (messages, trailers) = grpc_web_decode(&reply.body);
    assert_eq!(messages, ["pushed over tls"]);
    assert!(trailers.contains("grpc-status:0"), "{trailers}");
}

/// Pushes one entry over TLS.
async fn server_push(server: &TestServer, pki: &Pki) {
    let mut client = LogServiceClient::new(tls_channel(server.addr, &pki.ca_pem).await);
    client
        .push(tokio_stream::iter(push_request(&["pushed over tls"])))
        .await
        .expect("push");
}

#[tokio::test]
async fn plain_clients_on_the_tls_port_fail_cleanly_and_the_server_carries_on() {
    let pki = Pki::new();
    let server = tls_server(&pki, |_| {}).await;

    // gRPC over plain HTTP/2: an error, quickly, never a hang.
    let attempt = async {
        let channel = Endpoint::from_shared(server.url())
            .expect("endpoint")
            .connect()
            .await?;
        let result = LogServiceClient::new(channel)
            .get_logs(LogRequest::default())
            .await;
        Ok::<_, tonic::transport::Error>(result.map(|_| ()))
    };
    let outcome = tokio::time::timeout(DEADLINE, attempt)
        .await
        .expect("a plain gRPC client is answered within the deadline");
    assert!(
        !matches!(outcome, Ok(Ok(()))),
        "a plain gRPC call on the TLS port succeeded"
    );

    // curl http://: a 400 that says what to do.
    let reply = http(server.addr, "GET", "/healthz", &[], b"").await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.body_text().contains("https://"),
        "{}",
        reply.body_text()
    );

    // Garbage is dropped.
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(b"\x00\x01\x02 not tls at all").await.unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(DEADLINE, tcp.read_to_end(&mut rest))
        .await
        .expect("closed within the deadline");
    assert!(read.is_err() || rest.is_empty());

    // And TLS clients still get through.
    let stream = tls_connect(server.addr, &pki.ca_pem, &[b"http/1.1"]).await;
    let reply = exchange(stream, &request_bytes("GET", "/healthz", &[], b"")).await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn syslog_over_tcp_speaks_tls_when_the_server_does_and_refuses_clear_text() {
    let pki = Pki::new();
    let server = tls_server(&pki, |config| {
        config.syslog_tcp = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let syslog = server.syslog.tcp.expect("the syslog TCP listener");
    // Clear text on the TLS listener is closed without being stored.
    let mut plain = tokio::net::TcpStream::connect(syslog).await.unwrap();
    let clear = b"<11>1 2024-05-01T10:00:00Z host app - - - in clear text\n";
    plain.write_all(clear).await.unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(DEADLINE, plain.read_to_end(&mut rest))
        .await
        .expect("closed within the deadline");
    assert!(read.is_err() || rest.is_empty());
    // RFC 5425: octet-counted frames inside TLS, with no ALPN offered.
    let mut tls = tls_connect(syslog, &pki.ca_pem, &[]).await;
    for message in [
        "<11>1 2024-05-01T10:00:00Z web01 shop 42 - - over tls",
        "<14>1 2024-05-01T10:00:01Z web01 shop 42 - - and again",
    ] {
        let frame = format!("{} {message}", message.len());
        tls.write_all(frame.as_bytes()).await.unwrap();
    }
    tls.flush().await.unwrap();
    tls.shutdown().await.unwrap();
    let mut client = LogServiceClient::new(tls_channel(server.addr, &pki.ca_pem).await);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let messages = loop {
        let mut stream = client
            .get_logs(LogRequest::default())
            .await
            .expect("get_logs")
            .into_inner();
        let mut messages = Vec::new();
        while let Some(entry) = stream.message().await.expect("entry") {
            messages.push((entry.message, entry.level));
        }
        if messages.len() >= 2 || tokio::time::Instant::now() > deadline {
            break messages;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(
        messages,
        [
            ("over tls".to_string(), "error".to_string()),
            ("and again".to_string(), "info".to_string())
        ],
        "the clear-text message is not among them"
    );
}

/// The error `Server::bind` gives for `adjust`, as text.
async fn bind_error(dir: &Path, adjust: impl FnOnce(&mut ServerConfig)) -> String {
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), dir.join("data"));
    adjust(&mut config);
    match Server::bind(config).await {
        Ok(_) => panic!("the server started"),
        Err(error) => error.to_string(),
    }
}

#[tokio::test]
async fn unusable_certificate_or_key_files_stop_startup_naming_the_file() {
    let pki = Pki::new();
    let other = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let missing = dir.path().join("missing.pem");
    let tls = |cert: &Path, key: &Path| {
        let files = logtap_server::tls::TlsFiles {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
        };
        move |config: &mut ServerConfig| config.tls = Some(files)
    };

    let error = bind_error(dir.path(), tls(&missing, &pki.files.key)).await;
    assert!(
        error.contains("could not read the TLS certificate file"),
        "{error}"
    );
    assert!(error.contains("missing.pem"), "{error}");

    let error = bind_error(dir.path(), tls(&pki.files.cert, &missing)).await;
    assert!(error.contains("could not read the TLS key file"), "{error}");

    let error = bind_error(dir.path(), tls(&garbage, &pki.files.key)).await;
    assert!(error.contains("holds no PEM certificate"), "{error}");
    assert!(error.contains("garbage.pem"), "{error}");

    let error = bind_error(dir.path(), tls(&pki.files.cert, &pki.files.cert)).await;
    assert!(error.contains("holds no PEM private key"), "{error}");

    let error = bind_error(dir.path(), tls(&pki.files.cert, &other.files.key)).await;
    assert!(error.contains("cannot be used together"), "{error}");

    // Nothing was created: startup stopped before the store.
    assert!(!dir.path().join("data").exists());
}

// ---------------------------------------------------------------------------
// Tokens over gRPC
// ---------------------------------------------------------------------------

#[tokio::test]
async fn grpc_without_a_token_or_with_a_wrong_one_is_unauthenticated() {
    let (server, _tokens) = server_with_tokens(|_| {}).await;
    let mut client = server.client().await;
    let mut seed = server.seed_client().await;

    let status = client.get_logs(LogRequest::default()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(
        status.message().contains("requires a bearer token"),
        "{status:?}"
    );
    assert!(status.metadata().get("x-request-id").is_some());

    let status = client.stream_logs(LogRequest::default()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);

    let status = try_push(&mut client, vec![vec![entry("info", "sneaky", 1)]])
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);

    let status = seed
        .get_logs(example::LogRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);

    for wrong in [
        "read-token-0123456789abcdeX",
        "read-token-0123456789abcde",
        "read-token-0123456789abcdef0",
    ] {
        let status = client
            .get_logs(authorized(LogRequest::default(), wrong))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{wrong}");
        assert!(status.message().contains("not valid"), "{status:?}");
        assert!(!status.message().contains(wrong));
    }

    let mut request = Request::new(LogRequest::default());
    request
        .metadata_mut()
        .insert("authorization", format!("Basic {READ}").parse().unwrap());
    let status = client.get_logs(request).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);

    // Nothing got in.
    assert!(read_all(&mut client, READ).await.is_empty());
}

/// Every stored entry's message, read with `token`.
async fn read_all(client: &mut LogServiceClient<Channel>, token: &str) -> Vec<String> {
    let response = client
        .get_logs(authorized(LogRequest::default(), token))
        .await
        .expect("get_logs with a read token");
    let mut stream = response.into_inner();
    let (entries, _) = drain(&mut stream).await;
    entries.into_iter().map(|e| e.message).collect()
}

/// Push with `token`.
async fn push_with(
    client: &mut LogServiceClient<Channel>,
    token: &str,
    messages: &[&str],
) -> Result<logtap_proto::v1::PushResponse, tonic::Status> {
    client
        .push(authorized(
            tokio_stream::iter(push_request(messages)),
            token,
        ))
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn read_tokens_read_write_tokens_push_and_read_write_does_both() {
    let (server, _tokens) = server_with_tokens(|_| {}).await;
    let mut client = server.client().await;
    let mut seed = server.seed_client().await;

    let status = push_with(&mut client, READ, &["from a reader"])
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(status.message().contains("may not push"), "{status:?}");
    assert!(status.message().contains("scope write"), "{status:?}");

    let reply = push_with(&mut client, WRITE, &["from a writer"])
        .await
        .expect("a write token pushes");
    assert_eq!(reply.stored, 1);
    let reply = push_with(&mut client, BOTH, &["from both"])
        .await
        .expect("a read,write token pushes");
    assert_eq!(reply.stored, 1);

    // write does not imply read.
    let status = client
        .get_logs(authorized(LogRequest::default(), WRITE))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(status.message().contains("may not read"), "{status:?}");

    assert_eq!(
        read_all(&mut client, READ).await,
        ["from a writer", "from both"]
    );
    assert_eq!(
        read_all(&mut client, BOTH).await,
        ["from a writer", "from both"]
    );

    // The seed's service needs read too.
    let mut stream = seed
        .get_logs(authorized(example::LogRequest::default(), READ))
        .await
        .expect("seed get_logs with a read token")
        .into_inner();
    let (entries, _) = drain(&mut stream).await;
    assert_eq!(entries.len(), 2);
    let status = seed
        .get_logs(authorized(example::LogRequest::default(), WRITE))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);

    // StreamLogs is a read.
    let response = client
        .stream_logs(authorized(LogRequest::default(), READ))
        .await
        .expect("stream_logs with a read token");
    drop(response);
}

#[tokio::test]
async fn health_and_reflection_need_no_token() {
    let (server, _tokens) = server_with_tokens(|_| {}).await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel().await);
    let reply = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "logtap.v1.LogService".into(),
        })
        .await
        .expect("health check without a token")
        .into_inner();
    assert_eq!(
        reply.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    let mut reflection = ServerReflectionClient::new(server.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut replies = reflection
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .expect("reflection without a token")
        .into_inner();
    let reply = next(&mut replies).await;
    assert!(format!("{reply:?}").contains("logtap.v1.LogService"));
}

// ---------------------------------------------------------------------------
// Tokens over gRPC-Web and HTTP
// ---------------------------------------------------------------------------

#[tokio::test]
async fn grpc_web_needs_a_token_like_grpc() {
    let (server, _tokens) = server_with_tokens(|_| {}).await;
    let mut client = server.client().await;
    push_with(&mut client, WRITE, &["for the browser"])
        .await
        .unwrap();

    let frame = grpc_web_frame(&LogRequest::default());
    let web = |token: Option<&'static str>| {
        let frame = frame.clone();
        let addr = server.addr;
        async move {
            let bearer = token.map(|t| format!("Bearer {t}"));
            let mut headers = vec![
                ("content-type", "application/grpc-web+proto"),
                ("x-grpc-web", "1"),
            ];
            if let Some(bearer) = &bearer {
                headers.push(("authorization", bearer.as_str()));
            }
            http(
                addr,
                "POST",
                "/logtap.v1.LogService/GetLogs",
                &headers,
                &frame,
            )
            .await
        }
    };

    let reply = web(None).await;
    assert_eq!(reply.status, 200, "gRPC-Web reports errors in grpc-status");
    assert_eq!(grpc_web_status(&reply), "16"); // UNAUTHENTICATED
    assert!(reply.header("x-request-id").is_some());

    let reply = web(Some(WRITE)).await;
    assert_eq!(grpc_web_status(&reply), "7"); // PERMISSION_DENIED

    let reply = web(Some(READ)).await;
    assert_eq!(reply.status, 200);
    let (messages, trailers) = grpc_web_decode(&reply.body);
    assert_eq!(messages, ["for the browser"]);
    assert!(trailers.contains("grpc-status:0"), "{trailers}");
}

#[tokio::test]
async fn http_routes_need_the_scope_they_use_and_healthz_stays_open() {
    let (server, _tokens) = server_with_tokens(|_| {}).await;
    let addr = server.addr;
    let bearer = |token: &str| format!("Bearer {token}");

    let reply = http(addr, "GET", "/healthz", &[], b"").await;
    assert_eq!(reply.status, 200);

    // /metrics needs read by default.
    let reply = http(addr, "GET", "/metrics", &[], b"").await;
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.header("www-authenticate"),
        Some(r#"Bearer realm="logtap""#)
    );
    assert!(reply.header("x-request-id").is_some());
    assert!(
        reply.body_text().contains("\"error\""),
        "{}",
        reply.body_text()
    );
    let reply = http(
        addr,
        "GET",
        "/metrics",
        &[("authorization", &bearer(READ))],
        b"",
    )
    .await;
    assert_eq!(reply.status, 200);
    assert!(reply.body_text().contains("logtap_active_streams"));
    let reply = http(
        addr,
        "GET",
        "/metrics",
        &[("authorization", &bearer(WRITE))],
        b"",
    )
    .await;
    assert_eq!(reply.status, 403);
    assert!(
        reply
            .header("www-authenticate")
            .is_some_and(|v| v.contains("insufficient_scope")),
        "{:?}",
        reply.headers
    );
    let reply = http(
        addr,
        "GET",
        "/metrics",
        &[("authorization", "Bearer nope")],
        b"",
    )
    .await;
    assert_eq!(reply.status, 401);
    assert!(reply
        .header("www-authenticate")
        .is_some_and(|v| v.contains("invalid_token")));

    // The HTTP API: reads need read (unknown paths too: closed by default).
    for path in [
        "/api/v1/logs",
        "/api/v1/poll?after=0&wait=0s",
        "/api/v1/sse",
        "/api/v1/nothing-here",
    ] {
        let reply = http(addr, "GET", path, &[], b"").await;
        assert_eq!(reply.status, 401, "{path}");
    }
    let reply = http(
        addr,
        "GET",
        "/api/v1/logs",
        &[("authorization", &bearer(READ))],
        b"",
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body_text());

    // POST /api/v1/push needs write.
    let body = b"{\"level\":\"error\",\"message\":\"over http\"}\n";
    let reply = http(
        addr,
        "POST",
        "/api/v1/push",
        &[("content-type", "application/x-ndjson")],
        body,
    )
    .await;
    assert_eq!(reply.status, 401);
    let reply = http(
        addr,
        "POST",
        "/api/v1/push",
        &[
            ("authorization", &bearer(READ)),
            ("content-type", "application/x-ndjson"),
        ],
        body,
    )
    .await;
    assert_eq!(reply.status, 403);
    assert!(
        reply.body_text().contains("may not push"),
        "{}",
        reply.body_text()
    );
    let reply = http(
        addr,
        "POST",
        "/api/v1/push",
        &[
            ("authorization", &bearer(WRITE)),
            ("content-type", "application/x-ndjson"),
        ],
        body,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body_text());
    let mut client = server.client().await;
    assert_eq!(read_all(&mut client, READ).await, ["over http"]);
    let reply = http(
        addr,
        "GET",
        "/api/v1/logs",
        &[("authorization", &bearer(BOTH))],
        b"",
    )
    .await;
    assert!(
        reply.body_text().contains("over http"),
        "{}",
        reply.body_text()
    );

    // The viewer's page is open; its API calls are not.
    let reply = http(addr, "GET", "/", &[], b"").await;
    assert!(![401, 403].contains(&reply.status), "{}", reply.status);
}

#[tokio::test]
async fn event_source_routes_take_the_token_from_the_query_and_others_do_not() {
    let (server, _tokens) = server_with_tokens(|_| {}).await;
    let addr = server.addr;
    // poll answers at once with wait=0s; the token is honoured there.
    let reply = http(
        addr,
        "GET",
        &format!("/api/v1/poll?after=0&wait=0s&access_token={READ}"),
        &[],
        b"",
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body_text());
    // The token never reaches the handler: it would refuse an unknown
    // parameter or echo it; whatever it does, the token is not in the body.
    assert!(!reply.body_text().contains(READ));

    let poll = "/api/v1/poll?after=0&wait=0s&access_token=";
    let refused = [
        // A token the server does not know.
        (format!("{poll}wrong"), 401),
        // A write token cannot read.
        (format!("{poll}{WRITE}"), 403),
        // Not on NDJSON, not on /metrics: URLs end up in logs.
        (format!("/api/v1/logs?access_token={READ}"), 401),
        (format!("/metrics?access_token={READ}"), 401),
    ];
    for (path, status) in refused {
        let reply = http(addr, "GET", &path, &[], b"").await;
        assert_eq!(reply.status, status, "{path}");
    }
}

#[tokio::test]
async fn metrics_public_opens_metrics_and_nothing_else() {
    let (server, _tokens) = server_with_tokens(|config| config.metrics_public = true).await;
    let reply = http(server.addr, "GET", "/metrics", &[], b"").await;
    assert_eq!(reply.status, 200);
    let reply = http(server.addr, "GET", "/api/v1/logs", &[], b"").await;
    assert_eq!(reply.status, 401);
    let status = server
        .client()
        .await
        .get_logs(LogRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn without_a_token_file_everything_is_open_on_loopback() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    push(&mut client, vec![vec![entry("info", "open", 1)]]).await;
    let (entries, _, _) = get_all(&mut client, LogRequest::default()).await;
    assert_eq!(entries.len(), 1);
    let reply = http(server.addr, "GET", "/metrics", &[], b"").await;
    assert_eq!(reply.status, 200);
}

// ---------------------------------------------------------------------------
// Startup refusals
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_malformed_token_file_stops_startup_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.txt");
    std::fs::write(
        &path,
        "# comment\ngood-token-0123456789abcdef read\nsecret-token-0123456789 admin\n",
    )
    .unwrap();
    let file = path.clone();
    let error = bind_error(dir.path(), |config| config.auth_token_file = Some(file)).await;
    assert!(error.contains("tokens.txt, line 3"), "{error}");
    assert!(error.contains("read, write or read,write"), "{error}");
    assert!(!error.contains("secret-token"), "{error}");

    let missing = dir.path().join("missing.txt");
    let error = bind_error(dir.path(), |config| config.auth_token_file = Some(missing)).await;
    assert!(error.contains("could not read the token file"), "{error}");
    assert!(!dir.path().join("data").exists());
}

#[tokio::test]
async fn beyond_loopback_without_tokens_needs_an_explicit_address() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::new("0.0.0.0:0".parse().unwrap(), dir.path().join("data"));
    config.listen_explicit = false;
    match Server::bind(config).await {
        Err(ServerError::Exposed(error)) => {
            let message = error.to_string();
            assert!(message.contains("0.0.0.0:0"), "{message}");
            assert!(message.contains("--auth-token-file"), "{message}");
        }
        Err(other) => panic!("unexpected error: {other}"),
        Ok(_) => panic!("the server listened on 0.0.0.0 without tokens or an explicit address"),
    }
    assert!(!dir.path().join("data").exists());
}

// ---------------------------------------------------------------------------
// CORS
// ---------------------------------------------------------------------------

const ALLOWED: &str = "http://viewer.example:8080";

fn preflight(origin: &str) -> Vec<(&str, &str)> {
    vec![
        ("origin", origin),
        ("access-control-request-method", "POST"),
        (
            "access-control-request-headers",
            "x-grpc-web,content-type,authorization,x-user-agent,grpc-timeout",
        ),
    ]
}

#[tokio::test]
async fn cors_preflight_from_a_configured_origin_is_granted() {
    let (server, _tokens) = server_with_tokens(|config| {
        config.cors_origins = vec![ALLOWED.to_string(), "https://other.example".to_string()];
    })
    .await;
    let reply = http(
        server.addr,
        "OPTIONS",
        "/logtap.v1.LogService/GetLogs",
        &preflight(ALLOWED),
        b"",
    )
    .await;
    assert_eq!(
        reply.status, 200,
        "a preflight carries no token and is answered"
    );
    assert_eq!(reply.header("access-control-allow-origin"), Some(ALLOWED));
    let allowed = reply
        .header("access-control-allow-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    for name in [
        "x-grpc-web",
        "content-type",
        "authorization",
        "x-user-agent",
        "grpc-timeout",
    ] {
        assert!(allowed.contains(name), "{name} missing from {allowed}");
    }
    assert!(reply
        .header("access-control-allow-methods")
        .is_some_and(|m| m.contains("POST")));
    assert!(reply.header("access-control-allow-credentials").is_none());

    // The real call: the page may read the gRPC-Web status and trailers.
    let frame = grpc_web_frame(&LogRequest::default());
    let bearer = format!("Bearer {READ}");
    let reply = http(
        server.addr,
        "POST",
        "/logtap.v1.LogService/GetLogs",
        &[
            ("origin", ALLOWED),
            ("content-type", "application/grpc-web+proto"),
            ("x-grpc-web", "1"),
            ("authorization", &bearer),
        ],
        &frame,
    )
    .await;
    assert_eq!(grpc_web_status(&reply), "0");
    assert_eq!(reply.header("access-control-allow-origin"), Some(ALLOWED));
    let exposed = reply
        .header("access-control-expose-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    for name in [
        "grpc-status",
        "grpc-message",
        "x-request-id",
        "logtap-total-count",
        "logtap-sent",
        "logtap-next-cursor",
        "logtap-crc32c",
    ] {
        assert!(exposed.contains(name), "{name} missing from {exposed}");
    }

    // A refusal still carries CORS headers, so the page can tell why.
    let reply = http(
        server.addr,
        "GET",
        "/api/v1/logs",
        &[("origin", ALLOWED)],
        b"",
    )
    .await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.header("access-control-allow-origin"), Some(ALLOWED));
}

#[tokio::test]
async fn cors_preflight_from_another_origin_is_not_granted() {
    let (server, _tokens) = server_with_tokens(|config| {
        config.cors_origins = vec![ALLOWED.to_string()];
    })
    .await;
    for origin in [
        "http://evil.example",
        "http://viewer.example:8081",
        "https://viewer.example:8080",
    ] {
        let reply = http(
            server.addr,
            "OPTIONS",
            "/logtap.v1.LogService/GetLogs",
            &preflight(origin),
            b"",
        )
        .await;
        assert!(
            reply.header("access-control-allow-origin").is_none(),
            "{origin} was granted: {:?}",
            reply.headers
        );
        let reply = http(server.addr, "GET", "/healthz", &[("origin", origin)], b"").await;
        assert!(reply.header("access-control-allow-origin").is_none());
    }
}

#[tokio::test]
async fn without_cors_origins_there_are_no_cors_headers() {
    let server = TestServer::start().await;
    let reply = http(
        server.addr,
        "OPTIONS",
        "/logtap.v1.LogService/GetLogs",
        &preflight(ALLOWED),
        b"",
    )
    .await;
    assert!(
        reply
            .headers
            .iter()
            .all(|(name, _)| !name.starts_with("access-control-")),
        "{:?}",
        reply.headers
    );
    let reply = http(server.addr, "GET", "/healthz", &[("origin", ALLOWED)], b"").await;
    assert!(reply.header("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn a_bad_cors_origin_stops_startup() {
    let dir = tempfile::tempdir().unwrap();
    let error = bind_error(dir.path(), |config| {
        config.cors_origins = vec!["https://viewer.example/app".to_string()];
    })
    .await;
    assert!(error.contains("is not an origin"), "{error}");
}

#[tokio::test]
async fn shutdown_does_not_wait_for_clients_that_never_finish_the_handshake() {
    let pki = Pki::new();
    let mut server = tls_server(&pki, |config| {
        config.drain_timeout = std::time::Duration::from_secs(8);
    })
    .await;
    // One client that connects and says nothing, one half-way through.
    let _silent = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut partial = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    partial.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
    // And one finished TLS connection, idle.
    let _idle = tls_connect(server.addr, &pki.ca_pem, &[b"h2"]).await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    server.shutdown().await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(4),
        "shutdown took {:?}",
        started.elapsed()
    );
}
