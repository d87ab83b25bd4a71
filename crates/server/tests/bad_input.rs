//! Hostile and broken input at the boundary: every bad request gets a
//! status a client can act on, and the server stays healthy after each one
//! (`/healthz` answers 200 and a normal GetLogs serves exactly what was
//! stored). Messages nobody's gRPC library would send go over a raw HTTP/2
//! connection (the `h2` crate), and raw bytes over plain TCP.
//!
//! Run with `--nocapture` to print each case as a table row
//! (input | status | message), the table in the test report.

mod common;

use bytes::Bytes;
use common::*;
use logtap_proto::v1::{LogEntry, LogRequest};
use prost::Message;
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;

/// The three entries every server here starts with; `healthy` checks that
/// exactly these (plus what a test stored on purpose) are served.
const BASELINE: [&str; 3] = ["first", "second", "third"];

/// Panics in this test process, server tasks included: tokio and hyper
/// would swallow a panicking handler task into a reset stream, so a
/// healthy-looking server could still have panicked. A hook records the
/// name of each panicking thread.
static PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current().name().unwrap_or("").to_string();
            PANICS
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(thread);
            previous(info);
        }));
    });
}

/// Panics that may be this test's server's: on this test's own thread (a
/// `#[tokio::test]` runs its server's tasks there) or on a blocking-pool
/// thread. A failed assertion in another test, on that test's thread, is
/// not counted against this one.
fn panics_here() -> usize {
    let me = std::thread::current().name().unwrap_or("").to_string();
    PANICS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|thread| **thread == me || thread.starts_with("tokio"))
        .count()
}

async fn start(adjust: impl FnOnce(&mut logtap_server::ServerConfig)) -> TestServer {
    count_panics();
    let server = TestServer::start_with(adjust).await;
    let mut client = server.client().await;
    let entries = BASELINE
        .iter()
        .enumerate()
        .map(|(i, m)| entry("info", m, i as i64 + 1))
        .collect();
    push(&mut client, vec![entries]).await;
    server
}

/// The server answers health checks and a normal read serves exactly the
/// baseline plus `extra` more entries: nothing half-stored, nothing lost.
async fn healthy(server: &TestServer, extra: usize) {
    assert_eq!(server.http_get("/healthz").await.0, 200, "healthz");
    let mut client = server.client().await;
    let (entries, _, trailers) = get_all(&mut client, LogRequest::default()).await;
    let messages: Vec<&str> = entries.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(&messages[..3], &BASELINE[..], "the baseline is intact");
    assert_eq!(entries.len(), 3 + extra, "no more and no less was stored");
    assert_eq!(number(&trailers, "logtap-sent"), (3 + extra) as u64);
    assert_eq!(panics_here(), 0, "something panicked");
}

/// Prints one row of the report's table.
fn row(input: &str, code: &str, message: &str) {
    let message: String = message.chars().take(140).collect();
    eprintln!("| {input} | {code} | {} |", message.replace('|', "\\|"));
}

fn row_status(input: &str, status: &tonic::Status) {
    row(input, &format!("{:?}", status.code()), status.message());
}

fn request(adjust: impl FnOnce(&mut LogRequest)) -> LogRequest {
    let mut request = LogRequest::default();
    adjust(&mut request);
    request
}

/// GetLogs that must be refused before any entry: the status.
async fn get_refused(server: &TestServer, request: LogRequest) -> tonic::Status {
    let mut client = server.client().await;
    match client.get_logs(request).await {
        Err(status) => status,
        Ok(response) => {
            // An error after the headers would come as the stream's status.
            let mut stream = response.into_inner();
            loop {
                match stream.message().await {
                    Ok(Some(_)) => {}
                    Ok(None) => panic!("the request was served"),
                    Err(status) => return status,
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Filters
// ---------------------------------------------------------------------------

#[tokio::test]
async fn filters_that_cannot_make_sense_are_invalid_argument() {
    let server = start(|_| {}).await;
    let cases: Vec<(&str, LogRequest)> = vec![
        (
            "GetLogs level=\"loud\"",
            request(|r| r.level = "loud".into()),
        ),
        (
            "GetLogs level=\"\\u{0}\" (NUL)",
            request(|r| r.level = "\0".into()),
        ),
        (
            "GetLogs since=10 until=5",
            request(|r| {
                r.since = 10;
                r.until = 5
            }),
        ),
        (
            "GetLogs since=until=7",
            request(|r| {
                r.since = 7;
                r.until = 7
            }),
        ),
        (
            "GetLogs since=i64::MAX until=i64::MIN",
            request(|r| {
                r.since = i64::MAX;
                r.until = i64::MIN
            }),
        ),
        (
            "GetLogs regex \"(\"",
            request(|r| {
                r.grep = "(".into();
                r.regex = true
            }),
        ),
        (
            "GetLogs regex \"[z-a]\"",
            request(|r| {
                r.grep = "[z-a]".into();
                r.regex = true
            }),
        ),
        (
            "GetLogs regex \"a{1000}{1000}\" (compiles to GBs)",
            request(|r| {
                r.grep = "a{1000}{1000}".into();
                r.regex = true
            }),
        ),
        (
            "GetLogs level of 1 MiB",
            request(|r| r.level = "v".repeat(1 << 20)),
        ),
        (
            "GetLogs regex of 1 MiB that does not parse",
            request(|r| {
                r.grep = format!("{}(", "p".repeat(1 << 20));
                r.regex = true
            }),
        ),
        (
            "GetLogs regex of 2 MiB of literal text",
            request(|r| {
                r.grep = "x".repeat(2 << 20);
                r.regex = true
            }),
        ),
        (
            "GetLogs regex \"\\\\w{1000}\" (Unicode classes blow up)",
            request(|r| {
                r.grep = r"\w{1000}".into();
                r.regex = true
            }),
        ),
        (
            "GetLogs reverse + follow",
            request(|r| {
                r.reverse = true;
                r.follow = true
            }),
        ),
    ];
    for (input, request) in cases {
        let started = Instant::now();
        let status = get_refused(&server, request).await;
        row_status(input, &status);
        assert_eq!(status.code(), Code::InvalidArgument, "{input}: {status:?}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{input}: refusing took {:?}",
            started.elapsed()
        );
        assert!(
            status.metadata().get("x-request-id").is_some(),
            "{input}: the error carries the request id"
        );
        // The message quotes the client's text only in part: it travels in
        // a header, and clients refuse huge ones.
        assert!(
            status.message().len() < 1200,
            "{input}: a message of {} bytes",
            status.message().len()
        );
    }
    // The level names are listed, so a person can fix the request.
    let status = get_refused(&server, request(|r| r.level = "loud".into())).await;
    assert!(status
        .message()
        .contains("trace, debug, info, warn, error, fatal"));
    // StreamLogs and the seed's service refuse the same way.
    let mut client = server.client().await;
    let status = client
        .stream_logs(request(|r| r.reverse = true))
        .await
        .expect_err("reverse on a live tail");
    row_status("StreamLogs reverse", &status);
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = client
        .stream_logs(request(|r| r.level = "verbose".into()))
        .await
        .expect_err("unknown level");
    row_status("StreamLogs level=\"verbose\"", &status);
    assert_eq!(status.code(), Code::InvalidArgument);
    let mut seed = server.seed_client().await;
    let status = seed
        .get_logs(logtap_proto::example::LogRequest {
            level: "loud".into(),
        })
        .await
        .expect_err("seed: unknown level");
    row_status("example.LogService/GetLogs level=\"loud\"", &status);
    assert_eq!(status.code(), Code::InvalidArgument);
    // A pushed entry with an unknown level: the batch is refused whole.
    let status = try_push(
        &mut client,
        vec![vec![entry("info", "ok", 1), entry("loud", "bad", 2)]],
    )
    .await
    .expect_err("unknown level");
    row_status("Push entry level=\"loud\"", &status);
    assert_eq!(status.code(), Code::InvalidArgument);
    healthy(&server, 0).await;
}

#[tokio::test]
async fn extreme_but_valid_filters_are_served() {
    let server = start(|_| {}).await;
    let mut client = server.client().await;
    let cases: Vec<(&str, LogRequest, usize)> = vec![
        (
            "after_cursor=u64::MAX",
            request(|r| r.after_cursor = Some(u64::MAX)),
            0,
        ),
        ("limit=u64::MAX", request(|r| r.limit = u64::MAX), 3),
        (
            "since=i64::MIN+1 until=i64::MAX",
            request(|r| {
                r.since = i64::MIN + 1;
                r.until = i64::MAX
            }),
            3,
        ),
        (
            "since=-5 until=-1 (before 1970)",
            request(|r| {
                r.since = -5;
                r.until = -1
            }),
            0,
        ),
        (
            "grep of 1 MiB plain text",
            request(|r| r.grep = "y".repeat(1 << 20)),
            0,
        ),
        (
            "grep \"(\" as plain text",
            request(|r| r.grep = "(".into()),
            0,
        ),
        (
            "100,000 label filters",
            request(|r| {
                r.labels = (0..100_000)
                    .map(|i| (format!("k{i}"), "v".into()))
                    .collect()
            }),
            0,
        ),
    ];
    for (input, request, expected) in cases {
        let started = Instant::now();
        let (entries, _, _) = get_all(&mut client, request).await;
        row(
            &format!("GetLogs {input}"),
            "Ok",
            &format!("{} entries in {:?}", entries.len(), started.elapsed()),
        );
        assert_eq!(entries.len(), expected, "{input}");
    }
    healthy(&server, 0).await;
}

/// Linear-time regex: `(a+)+$` on a line of n `a`s and a `!` backtracks
/// 2^n times in a backtracking engine; Rust's regex crate has none, so the
/// cost grows with the line, not exponentially.
#[tokio::test]
async fn a_pathological_regex_costs_time_linear_in_the_line() {
    let server = start(|_| {}).await;
    let mut client = server.client().await;
    let sizes = [100_000usize, 200_000, 400_000, 800_000];
    for (i, size) in sizes.iter().enumerate() {
        let mut line = entry("info", &format!("{}!", "a".repeat(*size)), 10 + i as i64);
        line.labels.insert("size".into(), size.to_string());
        push(&mut client, vec![vec![line]]).await;
    }
    let mut times = Vec::new();
    for size in sizes {
        let query = request(|r| {
            r.grep = "(a+)+$".into();
            r.regex = true;
            r.labels.insert("size".into(), size.to_string());
        });
        // Best of three, so one scheduling hiccup does not look like a
        // blow-up.
        let mut best = Duration::MAX;
        for _ in 0..3 {
            let started = Instant::now();
            let (entries, _, _) = get_all(&mut client, query.clone()).await;
            best = best.min(started.elapsed());
            assert!(entries.is_empty(), "(a+)+$ cannot match a line ending in !");
        }
        times.push(best);
    }
    row(
        "regex \"(a+)+$\" on lines of 100k/200k/400k/800k 'a' + '!'",
        "Ok",
        &format!("no match; best of 3: {times:?}"),
    );
    // 8x the line may cost 8x the time; allow 30x for noise on a shared
    // machine. Exponential backtracking would not finish at 100k.
    assert!(
        times[3] < times[0] * 30 + Duration::from_millis(50),
        "{times:?}"
    );
    assert!(times[3] < Duration::from_secs(5), "{times:?}");
    healthy(&server, 4).await;
}

// ---------------------------------------------------------------------------
// Sizes
// ---------------------------------------------------------------------------

#[tokio::test]
async fn oversized_messages_lines_and_batches_are_refused_with_resource_exhausted() {
    const LIMIT: usize = 64 << 10;
    let server = start(|config| config.max_message_bytes = LIMIT).await;
    let mut client = server.client().await;

    let status = try_push(
        &mut client,
        vec![vec![entry("info", &"l".repeat(100 << 10), 1)]],
    )
    .await
    .expect_err("a line over the limit");
    row_status("Push one 100 KiB line (limit 64 KiB)", &status);
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(status.message().contains("too large"), "{status:?}");

    let batch: Vec<LogEntry> = (0..2_000)
        .map(|i| entry("info", &format!("{i:0100}"), 1))
        .collect();
    let status = try_push(&mut client, vec![batch])
        .await
        .expect_err("a batch over the limit");
    row_status("Push a batch of 2,000 x 100 B (limit 64 KiB)", &status);
    assert_eq!(status.code(), Code::ResourceExhausted);

    // A good batch, then one too large: the first stays stored, and the
    // error says so (message and metadata), so the client can resume.
    let status = try_push(
        &mut client,
        vec![
            vec![entry("info", "kept", 1)],
            vec![entry("info", &"l".repeat(100 << 10), 2)],
        ],
    )
    .await
    .expect_err("second batch too large");
    row_status("Push a good batch, then a 100 KiB one", &status);
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(number(status.metadata(), "logtap-stored"), 1);
    assert_eq!(number(status.metadata(), "logtap-last-cursor"), 4);

    let status = get_refused(&server, request(|r| r.grep = "g".repeat(100 << 10))).await;
    row_status("GetLogs request of 100 KiB (limit 64 KiB)", &status);
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");

    let refused = server
        .metric(r#"logtap_limit_rejections_total{limit="message_size"}"#)
        .await;
    assert!(refused >= 4, "{refused} message-size refusals counted");

    // An entry as large as a push may carry is stored, so it must be
    // readable: its LogEntry going out carries a cursor and a level it did
    // not have coming in, a few bytes more than the push limit.
    let overhead = PushRequestOverhead::for_limit(LIMIT);
    let biggest = entry("", &"m".repeat(overhead.message_len), 5);
    let pushed = logtap_proto::v1::PushRequest {
        entries: vec![biggest.clone()],
    };
    assert_eq!(
        pushed.encoded_len(),
        LIMIT,
        "the push is exactly at the limit"
    );
    push(&mut client, vec![vec![biggest]]).await;
    let (entries, _, _) = get_all(&mut client, request(|r| r.after_cursor = Some(4))).await;
    assert_eq!(entries.len(), 1, "the largest pushable entry reads back");
    assert_eq!(entries[0].message.len(), overhead.message_len);
    row(
        "Push a message exactly at the limit, then GetLogs it",
        "Ok",
        "stored and read back",
    );
    healthy(&server, 2).await;
}

/// The message length that makes a one-entry PushRequest exactly `limit`
/// bytes (field tags and varint lengths included).
struct PushRequestOverhead {
    message_len: usize,
}

impl PushRequestOverhead {
    fn for_limit(limit: usize) -> PushRequestOverhead {
        let mut message_len = limit;
        loop {
            let request = logtap_proto::v1::PushRequest {
                entries: vec![entry("", &"m".repeat(message_len), 5)],
            };
            let len = request.encoded_len();
            if len == limit {
                return PushRequestOverhead { message_len };
            }
            message_len -= (len - limit).max(1);
        }
    }
}

#[tokio::test]
async fn what_the_record_format_cannot_hold_is_invalid_argument() {
    let server = start(|_| {}).await;
    let mut client = server.client().await;
    let mut long_label = entry("info", "long label", 1);
    long_label.labels.insert("k".into(), "v".repeat(70_000));
    let status = try_push(&mut client, vec![vec![long_label]])
        .await
        .expect_err("label over 64 KiB");
    row_status("Push a label value of 70,000 bytes", &status);
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("64 KiB"), "{status:?}");

    let mut many = entry("info", "many labels", 1);
    many.labels = (0..100_000)
        .map(|i| (format!("k{i}"), String::new()))
        .collect();
    let started = Instant::now();
    let status = try_push(&mut client, vec![vec![many]])
        .await
        .expect_err("100k labels");
    row_status("Push an entry with 100,000 labels", &status);
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("65,535 labels"), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(5));

    // The format's own bound is not an error: 65,535 labels round-trip.
    let mut most = entry("info", "most labels", 1);
    most.labels = (0..65_535).map(|i| (format!("k{i}"), "v".into())).collect();
    push(&mut client, vec![vec![most.clone()]]).await;
    let (entries, _, _) = get_all(&mut client, request(|r| r.grep = "most labels".into())).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].labels, most.labels);
    row(
        "Push an entry with 65,535 labels",
        "Ok",
        "stored, read back intact",
    );
    healthy(&server, 1).await;
}

// ---------------------------------------------------------------------------
// Malformed gRPC over a raw HTTP/2 connection
// ---------------------------------------------------------------------------

/// What a raw gRPC call got back.
#[derive(Debug)]
struct Raw {
    http: u16,
    grpc_status: Option<i32>,
    grpc_message: String,
    #[allow(dead_code)] // Shown in assertion messages.
    data: Vec<u8>,
}

/// One request over a fresh HTTP/2 connection, with `body` as the whole
/// request body, exactly as given.
async fn raw_call(
    server: &TestServer,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Raw {
    let tcp = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    let (client, connection) = h2::client::handshake(tcp).await.expect("handshake");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut client = client.ready().await.expect("ready");
    let mut builder = http::Request::builder()
        .method(method)
        .uri(format!("http://{}{path}", server.addr))
        .header("te", "trailers");
    if let Some(content_type) = content_type {
        builder = builder.header("content-type", content_type);
    }
    let (response, mut send) = client
        .send_request(builder.body(()).expect("request"), false)
        .expect("send request");
    send.send_data(Bytes::from(body), true).expect("send body");
    let response = tokio::time::timeout(DEADLINE, response)
        .await
        .expect("an answer in time")
        .expect("a response, not a reset");
    let (parts, mut body) = response.into_parts();
    let header = |map: &http::HeaderMap, name: &str| {
        map.get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let mut grpc_status = header(&parts.headers, "grpc-status");
    let mut grpc_message = header(&parts.headers, "grpc-message");
    let mut data = Vec::new();
    while let Some(chunk) = tokio::time::timeout(DEADLINE, body.data())
        .await
        .expect("body in time")
    {
        let chunk = chunk.expect("body chunk");
        let _ = body.flow_control().release_capacity(chunk.len());
        data.extend_from_slice(&chunk);
    }
    if let Ok(Some(trailers)) = body.trailers().await {
        grpc_status = grpc_status.or(header(&trailers, "grpc-status"));
        grpc_message = grpc_message.or(header(&trailers, "grpc-message"));
    }
    Raw {
        http: parts.status.as_u16(),
        grpc_status: grpc_status.and_then(|s| s.parse().ok()),
        grpc_message: grpc_message.map(|m| percent_decode(&m)).unwrap_or_default(),
        data,
    }
}

/// A gRPC length-prefixed message: flag, big-endian length, payload.
fn frame(compressed: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![compressed];
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

const GRPC: Option<&str> = Some("application/grpc");
const PUSH: &str = "/logtap.v1.LogService/Push";
const GET_LOGS: &str = "/logtap.v1.LogService/GetLogs";

fn code_name(code: Option<i32>) -> String {
    code.map_or("(none)".into(), |c| format!("{:?}", Code::from_i32(c)))
}

#[tokio::test]
async fn malformed_grpc_messages_and_frames_get_a_status_never_a_crash() {
    let server = start(|_| {}).await;
    // A LogEntry whose message field (1, a string) holds bytes that are not
    // UTF-8: valid protobuf wire format, invalid proto3 string.
    let bad_utf8_entry = [0x0a, 0x02, 0xff, 0xfe];
    let mut bad_utf8_push = vec![0x0a, bad_utf8_entry.len() as u8];
    bad_utf8_push.extend_from_slice(&bad_utf8_entry);
    let good_request = LogRequest::default().encode_to_vec();
    let mut length_lies = frame(0, &[0x0a, 0x00]);
    length_lies[4] = 200;
    let cases: Vec<(&str, &str, Vec<u8>, &[Code])> = vec![
        (
            "Push: garbage protobuf (16 x 0xff)",
            PUSH,
            frame(0, &[0xff; 16]),
            &[Code::Internal, Code::InvalidArgument],
        ),
        (
            "Push: LogEntry.message with invalid UTF-8",
            PUSH,
            frame(0, &bad_utf8_push),
            &[Code::Internal, Code::InvalidArgument],
        ),
        (
            "Push: truncated varint",
            PUSH,
            frame(0, &[0x08]),
            &[Code::Internal, Code::InvalidArgument],
        ),
        (
            "Push: compressed flag without grpc-encoding",
            PUSH,
            frame(1, &[0x0a, 0x00]),
            &[Code::Internal, Code::Unimplemented, Code::InvalidArgument],
        ),
        (
            "Push: frame flag 0x80",
            PUSH,
            frame(0x80, &[0x0a, 0x00]),
            &[Code::Internal, Code::InvalidArgument],
        ),
        (
            "Push: frame header says 200 bytes, body ends after 2",
            PUSH,
            length_lies.clone(),
            &[Code::Internal, Code::InvalidArgument],
        ),
        (
            "Push: 3 bytes, not even a frame header",
            PUSH,
            vec![0, 0, 0],
            &[Code::Internal, Code::InvalidArgument],
        ),
        (
            "Push: frame header says 4 GiB",
            PUSH,
            vec![0, 0xff, 0xff, 0xff, 0xff, 1, 2, 3],
            &[Code::ResourceExhausted, Code::OutOfRange],
        ),
        (
            "GetLogs: garbage protobuf",
            GET_LOGS,
            frame(0, &[0xff; 16]),
            &[Code::Internal, Code::InvalidArgument],
        ),
        (
            "GetLogs: LogRequest.level with invalid UTF-8",
            GET_LOGS,
            frame(0, &[0x0a, 0x02, 0xff, 0xfe]),
            &[Code::Internal, Code::InvalidArgument],
        ),
        (
            "GetLogs: empty body (no message)",
            GET_LOGS,
            Vec::new(),
            &[Code::Internal, Code::InvalidArgument, Code::Unimplemented],
        ),
        (
            "GetLogs: frame header says 200 bytes, body ends after 2",
            GET_LOGS,
            length_lies,
            &[Code::Internal, Code::InvalidArgument],
        ),
        (
            "GetLogs: two request messages in a unary request",
            GET_LOGS,
            [frame(0, &good_request), frame(0, &good_request)].concat(),
            &[Code::Ok, Code::Internal, Code::InvalidArgument],
        ),
        (
            "example.LogService/GetLogs: garbage protobuf",
            "/example.LogService/GetLogs",
            frame(0, &[0xff; 16]),
            &[Code::Internal, Code::InvalidArgument],
        ),
        (
            "unknown method /logtap.v1.LogService/Nope",
            "/logtap.v1.LogService/Nope",
            frame(0, &[]),
            &[Code::Unimplemented],
        ),
        (
            "unknown service /no.Such/Thing",
            "/no.Such/Thing",
            frame(0, &[]),
            &[Code::Unimplemented],
        ),
    ];
    for (input, path, body, expected) in cases {
        let raw = raw_call(&server, "POST", path, GRPC, body).await;
        row(input, &code_name(raw.grpc_status), &raw.grpc_message);
        let code = Code::from_i32(raw.grpc_status.unwrap_or(-1));
        assert!(
            raw.grpc_status.is_some() && expected.contains(&code),
            "{input}: {raw:?}"
        );
        assert_eq!(raw.http, 200, "gRPC errors travel in HTTP 200: {input}");
    }
    // The wrong content type or method on a gRPC path: tonic does not look
    // at the content type (a valid frame is served), and the router answers
    // a GET with 405. Neither hurts; recorded for the table.
    for (input, method, content_type) in [
        (
            "POST GetLogs with content-type application/json",
            "POST",
            Some("application/json"),
        ),
        ("POST GetLogs without a content-type", "POST", None),
        ("GET GetLogs", "GET", GRPC),
    ] {
        let raw = raw_call(&server, method, GET_LOGS, content_type, frame(0, &[])).await;
        row(
            input,
            &format!(
                "HTTP {} / grpc-status {}",
                raw.http,
                code_name(raw.grpc_status)
            ),
            &raw.grpc_message,
        );
        assert!(
            raw.http >= 400 || raw.grpc_status.is_some(),
            "{input}: {raw:?}"
        );
    }
    healthy(&server, 0).await;
}

/// Raw bytes that are not HTTP/2 (or not HTTP at all) on the one port.
#[tokio::test]
async fn garbage_on_the_wire_closes_that_connection_only() {
    let server = start(|_| {}).await;
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "HTTP/2 preface, then 64 bytes of 0xAB",
            [preface.clone(), vec![0xAB; 64]].concat(),
        ),
        (
            "HTTP/2 preface, then a frame of 16 MiB announced",
            [preface.clone(), vec![0xff, 0xff, 0xff, 0x04, 0, 0, 0, 0, 1]].concat(),
        ),
        (
            "HTTP/2 preface, SETTINGS, HEADERS on stream 0",
            [
                preface.clone(),
                vec![0, 0, 0, 4, 0, 0, 0, 0, 0],
                vec![0, 0, 1, 1, 4, 0, 0, 0, 0, 0x82],
            ]
            .concat(),
        ),
        (
            "256 random-looking bytes",
            (0..=255u8).map(|b| b.wrapping_mul(97)).collect(),
        ),
        (
            "an HTTP/1.1 request line of 100 KiB",
            format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(100 << 10)).into_bytes(),
        ),
        (
            "an HTTP/1.1 header of 100 KiB",
            format!(
                "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: {}\r\n\r\n",
                "b".repeat(100 << 10)
            )
            .into_bytes(),
        ),
        (
            "an HTTP/1.1 header of 1 MiB",
            format!(
                "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: {}\r\n\r\n",
                "b".repeat(1 << 20)
            )
            .into_bytes(),
        ),
        (
            "10,000 HTTP/1.1 headers",
            format!(
                "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{}\r\n",
                "X-A: 1\r\n".repeat(10_000)
            )
            .into_bytes(),
        ),
    ];
    for (input, bytes) in cases {
        let mut tcp = tokio::net::TcpStream::connect(server.addr)
            .await
            .expect("connect");
        // The server may close before reading everything; that is fine.
        let _ = tcp.write_all(&bytes).await;
        let mut answer = Vec::new();
        let read = tokio::time::timeout(DEADLINE, tcp.read_to_end(&mut answer)).await;
        assert!(read.is_ok(), "{input}: the server kept the connection open");
        let what = if answer.starts_with(b"HTTP/1.1") {
            String::from_utf8_lossy(&answer[..answer.len().min(30)])
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        } else if answer.len() >= 9 {
            // Find a GOAWAY frame (type 7) among the server's frames.
            let mut pos = 0;
            let mut found = String::from("closed");
            while pos + 9 <= answer.len() {
                let len =
                    u32::from_be_bytes([0, answer[pos], answer[pos + 1], answer[pos + 2]]) as usize;
                if answer[pos + 3] == 7 && pos + 9 + 8 <= answer.len() {
                    let code =
                        u32::from_be_bytes(answer[pos + 13..pos + 17].try_into().expect("4 bytes"));
                    found = format!("GOAWAY, error code {code:#x}");
                }
                pos += 9 + len;
            }
            found
        } else {
            "closed without an answer".into()
        };
        row(input, "connection closed", &what);
    }
    healthy(&server, 0).await;
}

// ---------------------------------------------------------------------------
// Plain HTTP
// ---------------------------------------------------------------------------

#[tokio::test]
async fn plain_http_endpoints_with_odd_parameters() {
    let server = start(|_| {}).await;
    for (path, expected) in [
        ("/metrics?x", 200),
        ("/metrics?%zz=%%", 200),
        ("/healthz?x=1&x=2", 200),
        ("/nope", 404),
        ("/metrics/../healthz", 200),
        ("/%ff%fe", 404),
    ] {
        let (status, body) = server.http_get(path).await;
        row(
            &format!("GET {path}"),
            &format!("HTTP {status}"),
            body.lines().next().unwrap_or(""),
        );
        if path.contains("..") {
            // Normalised or not, it must not fail.
            assert!(status == 200 || status == 404, "{path}: {status}");
        } else {
            assert_eq!(status, expected, "{path}: {body}");
        }
    }
    // The HTTP fallbacks: every bad parameter is 400 with a reason.
    let long_grep = format!("/api/v1/logs?grep={}", "g".repeat(200 << 10));
    for (path, expected) in [
        ("/api/v1/logs?level=loud", 400),
        ("/api/v1/logs?levle=error", 400),
        ("/api/v1/logs?level=error&level=warn", 400),
        ("/api/v1/logs?since=yesterday", 400),
        ("/api/v1/logs?since=10&until=5", 400),
        ("/api/v1/logs?grep=(&regex=true", 400),
        ("/api/v1/logs?grep=a%7B1000%7D%7B1000%7D&regex=true", 400),
        ("/api/v1/logs?regex=maybe", 400),
        ("/api/v1/logs?after=-1", 400),
        ("/api/v1/logs?after=18446744073709551616", 400),
        ("/api/v1/logs?limit=abc", 400),
        ("/api/v1/logs?label=novalue", 400),
        ("/api/v1/logs?reverse=true&follow=true", 400),
        ("/api/v1/logs?%zz=1", 400),
        ("/api/v1/poll?wait=forever", 400),
        ("/api/v1/poll?reverse=true", 400),
        ("/api/v1/sse?level=loud", 400),
        ("/api/v1/logs?limit=1&_=1714564800", 200),
        (long_grep.as_str(), 414),
    ] {
        let (status, body) = server.http_get(path).await;
        let shown: String = path.chars().take(70).collect();
        row(
            &format!("GET {shown}"),
            &format!("HTTP {status}"),
            body.lines().next().unwrap_or(""),
        );
        assert_eq!(status, expected, "{path}: {body}");
    }
    // A push body that is not UTF-8 is kept lossily, like `logtap push`;
    // one that is not NDJSON at all is plain text.
    let body = b"ok line\nbad \xff\xfe bytes\n";
    let request = [
        format!(
            "POST /api/v1/push HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes(),
        body.to_vec(),
    ]
    .concat();
    let (status, _, answer) = http1(server.addr, &request).await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    row(
        "POST /api/v1/push with bytes that are not UTF-8",
        &format!("HTTP {status}"),
        &answer,
    );
    assert_eq!(status, 200, "{answer}");
    healthy(&server, 2).await;
}
