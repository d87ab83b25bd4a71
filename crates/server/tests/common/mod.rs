//! What the integration tests share: a real server on 127.0.0.1:0 over a
//! temporary data directory, real tonic clients, a tiny HTTP/1.1 client, and
//! an independent CRC-32C.
#![allow(dead_code)]

use logtap_proto::example::log_service_client::LogServiceClient as SeedClient;
use logtap_proto::v1::log_service_client::LogServiceClient;
use logtap_proto::v1::{LogEntry, LogRequest, PushRequest, PushResponse};
use logtap_server::{Server, ServerConfig};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::metadata::MetadataMap;
use tonic::transport::{Channel, Endpoint};
use tonic::Streaming;

/// How long any single wait in a test may take before it fails.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// A running server and the handles to stop it.
pub struct TestServer {
    pub addr: SocketAddr,
    /// The syslog listeners' addresses, when the configuration turned them on.
    pub syslog: logtap_server::SyslogAddrs,
    /// The OTLP gRPC port's address, when the configuration turned it on.
    pub otlp_grpc: Option<SocketAddr>,
    pub dir: PathBuf,
    /// Keeps the temporary directory alive (when the server made it).
    _temp: Option<tempfile::TempDir>,
    stop: Option<oneshot::Sender<()>>,
    run: Option<JoinHandle<Result<(), logtap_server::ServerError>>>,
}

impl TestServer {
    /// A server with default settings over a new temporary directory.
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    /// A server over a new temporary directory, with `adjust` applied to its
    /// configuration.
    pub async fn start_with(adjust: impl FnOnce(&mut ServerConfig)) -> TestServer {
        let temp = tempfile::tempdir().expect("temporary directory");
        let dir = temp.path().to_path_buf();
        let mut server = TestServer::start_in(&dir, adjust).await;
        server._temp = Some(temp);
        server
    }

    /// A server over `dir` (which outlives it).
    pub async fn start_in(dir: &Path, adjust: impl FnOnce(&mut ServerConfig)) -> TestServer {
        let mut config = ServerConfig::new("127.0.0.1:0".parse().expect("address"), dir);
        config.drain_timeout = Duration::from_secs(3);
        adjust(&mut config);
        let server = Server::bind(config).await.expect("bind");
        let addr = server.local_addr();
        let syslog = server.syslog_addrs();
        let otlp_grpc = server.otlp_grpc_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let run = tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            syslog,
            otlp_grpc,
            dir: dir.to_path_buf(),
            _temp: None,
            stop: Some(stop),
            run: Some(run),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn channel(&self) -> Channel {
        Endpoint::from_shared(self.url())
            .expect("endpoint")
            .connect()
            .await
            .expect("connect")
    }

    /// Stores `batches` × 64 entries of 4 KiB, then opens GetLogs over a
    /// connection whose HTTP/2 windows are 64 KiB and never reads from it:
    /// a client that accepts nothing until it reads, for backpressure, idle
    /// and slow-reader tests.
    pub async fn stalled_get_logs(&self, batches: usize) -> tonic::Response<Streaming<LogEntry>> {
        let mut client = self.client().await;
        let big = "x".repeat(4096);
        for _ in 0..batches {
            let batch = (0..64).map(|i| entry("info", &big, i + 1)).collect();
            push(&mut client, vec![batch]).await;
        }
        let channel = Endpoint::from_shared(self.url())
            .expect("endpoint")
            .initial_stream_window_size(65_535)
            .initial_connection_window_size(65_535)
            .connect()
            .await
            .expect("connect");
        LogServiceClient::new(channel)
            .get_logs(LogRequest::default())
            .await
            .expect("get_logs")
    }

    pub async fn client(&self) -> LogServiceClient<Channel> {
        LogServiceClient::new(self.channel().await)
    }

    pub async fn seed_client(&self) -> SeedClient<Channel> {
        SeedClient::new(self.channel().await)
    }

    /// Asks the server to shut down and waits until `run` has returned.
    pub async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(run) = self.run.take() {
            let result = tokio::time::timeout(DEADLINE, run)
                .await
                .expect("run returns within the deadline")
                .expect("run task");
            result.expect("run ends without error");
        }
    }

    /// `GET path` over a fresh HTTP/1.1 connection: the status and body.
    pub async fn http_get(&self, path: &str) -> (u16, String) {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        );
        let (status, _, body) = http1(self.addr, request.as_bytes()).await;
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// The value of a metric line `name value` in `/metrics`.
    pub async fn metric(&self, name: &str) -> u64 {
        let (status, body) = self.http_get("/metrics").await;
        assert_eq!(status, 200);
        metric_value(&body, name).unwrap_or_else(|| panic!("{name} missing from:\n{body}"))
    }

    /// Waits until metric `name` satisfies `check`, failing at the deadline.
    pub async fn wait_for_metric(&self, name: &str, check: impl Fn(u64) -> bool) -> u64 {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let value = self.metric(name).await;
            if check(value) {
                return value;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{name} stayed at {value} until the deadline"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The value of `name` in a Prometheus text exposition.
pub fn metric_value(body: &str, name: &str) -> Option<u64> {
    body.lines().find_map(|line| {
        let (metric, value) = line.split_once(' ')?;
        (metric == name).then(|| value.trim().parse::<f64>().ok().map(|v| v as u64))?
    })
}

/// Sends a raw HTTP/1.1 request and reads the response until the server
/// closes: status, headers (lower-case names), and the body, de-chunked.
pub async fn http1(addr: SocketAddr, request: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(request).await.expect("write request");
    let mut raw = Vec::new();
    tokio::time::timeout(DEADLINE, tcp.read_to_end(&mut raw))
        .await
        .expect("response within the deadline")
        .expect("read response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    if headers
        .iter()
        .any(|(name, value)| name == "transfer-encoding" && value.contains("chunked"))
    {
        body = dechunk(&body);
    }
    (status, headers, body)
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = raw.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&raw[..end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .expect("chunk size");
        if size == 0 {
            return out;
        }
        let data = &raw[end + 2..];
        out.extend_from_slice(&data[..size]);
        raw = &data[size + 2..];
    }
}

/// An entry to push.
pub fn entry(level: &str, message: &str, timestamp: i64) -> LogEntry {
    LogEntry {
        message: message.to_string(),
        timestamp,
        level: level.to_string(),
        cursor: 0,
        labels: Default::default(),
    }
}

/// Pushes `batches`, one PushRequest each.
pub async fn push(
    client: &mut LogServiceClient<Channel>,
    batches: Vec<Vec<LogEntry>>,
) -> PushResponse {
    try_push(client, batches).await.expect("push")
}

pub async fn try_push(
    client: &mut LogServiceClient<Channel>,
    batches: Vec<Vec<LogEntry>>,
) -> Result<PushResponse, tonic::Status> {
    let requests: Vec<PushRequest> = batches
        .into_iter()
        .map(|entries| PushRequest { entries })
        .collect();
    client
        .push(tokio_stream::iter(requests))
        .await
        .map(tonic::Response::into_inner)
}

/// Reads a stream to its end: the entries and the trailers.
pub async fn drain<T>(stream: &mut Streaming<T>) -> (Vec<T>, MetadataMap) {
    let mut entries = Vec::new();
    loop {
        let next = tokio::time::timeout(DEADLINE, stream.message())
            .await
            .expect("message within the deadline")
            .expect("stream ends with OK");
        match next {
            Some(entry) => entries.push(entry),
            None => break,
        }
    }
    let trailers = stream
        .trailers()
        .await
        .expect("trailers")
        .expect("trailers present");
    (entries, trailers)
}

/// The next message, failing if none comes within the deadline.
pub async fn next<T>(stream: &mut Streaming<T>) -> T {
    tokio::time::timeout(DEADLINE, stream.message())
        .await
        .expect("message within the deadline")
        .expect("no error")
        .expect("a message, not the end")
}

/// GetLogs with `request`, read to the end.
pub async fn get_all(
    client: &mut LogServiceClient<Channel>,
    request: LogRequest,
) -> (Vec<LogEntry>, MetadataMap, MetadataMap) {
    let response = client.get_logs(request).await.expect("get_logs");
    let headers = response.metadata().clone();
    let mut stream = response.into_inner();
    let (entries, trailers) = drain(&mut stream).await;
    (entries, headers, trailers)
}

/// A metadata value as text.
pub fn text<'a>(metadata: &'a MetadataMap, name: &str) -> &'a str {
    metadata
        .get(name)
        .unwrap_or_else(|| panic!("{name} missing from {metadata:?}"))
        .to_str()
        .expect("ascii")
}

/// A metadata value as a number.
pub fn number(metadata: &MetadataMap, name: &str) -> u64 {
    text(metadata, name).parse().expect("a number")
}

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), bit by bit: an
/// implementation independent of the server's.
pub fn crc32c_append(crc: u32, bytes: &[u8]) -> u32 {
    let mut crc = !crc;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The `logtap-crc32c` trailer a client expects for `entries`.
pub fn expected_crc<'a>(entries: impl IntoIterator<Item = (i64, &'a str)>) -> String {
    let crc = entries.into_iter().fold(0u32, |crc, (timestamp, message)| {
        let crc = crc32c_append(crc, &timestamp.to_le_bytes());
        crc32c_append(crc, message.as_bytes())
    });
    format!("{crc:08x}")
}

/// Now, as Unix epoch nanoseconds, as the server stamps an entry pushed
/// without a time.
pub fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_nanos() as i64
}

/// A `grpc-message` value as sent: percent-encoded (gRPC's HTTP/2
/// mapping), decoded for the tests that read raw HTTP/2 frames.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(byte) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every entry stored, oldest first, through GetLogs.
pub async fn stored(server: &TestServer) -> Vec<LogEntry> {
    let mut client = server.client().await;
    get_all(&mut client, LogRequest::default()).await.0
}

/// The message of every entry stored, oldest first.
pub async fn stored_messages(server: &TestServer) -> Vec<String> {
    stored(server)
        .await
        .into_iter()
        .map(|e| e.message)
        .collect()
}

/// An entry's labels as pairs, sorted.
pub fn sorted_labels(entry: &LogEntry) -> Vec<(&str, &str)> {
    let mut labels: Vec<_> = entry
        .labels
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    labels.sort();
    labels
}

/// `bytes` gzip-compressed, as shippers send a `Content-Encoding: gzip`
/// body.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip in memory");
    encoder.finish().expect("gzip in memory")
}

/// Sends `method path` over a fresh HTTP/1.1 connection with `headers`
/// (`Name: value` lines) and `body`: the status, headers and body, as
/// [`http1`] reads them.
pub async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[&str],
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    http1(addr, &bytes).await
}

/// A header's value (by lower-case name), or "" when absent.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}
