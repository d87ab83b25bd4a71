//! journald's upload (`POST /upload`, what `systemd-journal-upload`
//! sends) against a real server on 127.0.0.1:0: export-format bodies sent
//! chunked in odd pieces, binary fields included, read back through
//! GetLogs (message, level, time, labels); every PRIORITY's level; a table
//! of bad inputs, each with its status and what it keeps; a full disk
//! (503 with Retry-After, then stored once space returns); a read token
//! refused with 403.

mod common;

use common::{get_all, http1, TestServer};
use logtap_ingest::journald::write_binary_field;
use logtap_proto::v1::{LogEntry, LogRequest};
use std::collections::BTreeMap;

const EXPORT: &str = "Content-Type: application/vnd.fdo.journal";

/// A binary field in the export format's binary-safe form.
fn binary(name: &str, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    write_binary_field(&mut out, name, value);
    out
}

/// POSTs `pieces` to `/upload` as a chunked body, one HTTP chunk each,
/// with `headers` (`Name: value` lines) as `systemd-journal-upload` sends
/// them; the status, the headers and the body as text.
async fn upload(
    server: &TestServer,
    headers: &[&str],
    pieces: &[&[u8]],
) -> (u16, Vec<(String, String)>, String) {
    let mut request =
        b"POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nTransfer-Encoding: chunked\r\nAccept: text/plain\r\n"
            .to_vec();
    for header in headers {
        request.extend_from_slice(header.as_bytes());
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"\r\n");
    for piece in pieces.iter().filter(|piece| !piece.is_empty()) {
        request.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        request.extend_from_slice(piece);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let (status, headers, body) = http1(server.addr, &request).await;
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

/// `body` cut into pieces of 1, 2, 3, 5, 8, ... bytes.
fn odd_pieces(body: &[u8]) -> Vec<&[u8]> {
    let (mut a, mut b) = (1, 2);
    let mut pieces = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let take = a.min(rest.len());
        pieces.push(&rest[..take]);
        rest = &rest[take..];
        (a, b) = (b, a + b);
    }
    pieces
}

/// Every entry stored, oldest first.
async fn stored(server: &TestServer) -> Vec<LogEntry> {
    let mut client = server.client().await;
    get_all(&mut client, LogRequest::default()).await.0
}

fn messages(entries: &[LogEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.message.as_str()).collect()
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Two entries as `systemd-journal-upload` writes them: addresses first,
/// then the fields, binary ones where the value is not printable text.
fn two_entries() -> Vec<u8> {
    let mut body = b"__CURSOR=s=6e1f;i=1a;b=0f2c;m=1;t=5f;x=9\n\
__REALTIME_TIMESTAMP=1700000000123456\n__MONOTONIC_TIMESTAMP=5123456\n\
_BOOT_ID=0f2c5b7e8a2d4c6e9f1b3d5a7c9e1f20\nPRIORITY=3\n_HOSTNAME=web-1\n\
_SYSTEMD_UNIT=nginx.service\nSYSLOG_IDENTIFIER=nginx\n_PID=812\n\
MESSAGE=upstream timed out\n\n"
        .to_vec();
    body.extend_from_slice(
        b"__CURSOR=s=6e1f;i=1b\n__REALTIME_TIMESTAMP=1700000001000000\n\
__MONOTONIC_TIMESTAMP=6000000\n__SEQNUM=27\n__SEQNUM_ID=6e1f\nPRIORITY=6\n\
_HOSTNAME=web-1\n",
    );
    body.extend(binary("MESSAGE", b"first line\nsecond line"));
    body.extend(binary("COREDUMP_BLOB", &[0, 1, 2, 0xff, b'\n']));
    body.extend_from_slice(b"_PID=813\n\n");
    body
}

#[tokio::test]
async fn an_upload_chunked_in_odd_pieces_is_stored_with_binary_fields_levels_times_and_labels() {
    let server = TestServer::start().await;
    let body = two_entries();
    let (status, headers, text) = upload(&server, &[EXPORT], &odd_pieces(&body)).await;
    assert_eq!((status, text.as_str()), (202, "OK.\n"));
    assert_eq!(
        header(&headers, "content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert!(header(&headers, "x-request-id").is_some());
    let entries = stored(&server).await;
    assert_eq!(
        messages(&entries),
        ["upstream timed out", "first line\nsecond line"]
    );
    let first = &entries[0];
    assert_eq!(first.level, "error");
    assert_eq!(first.timestamp, 1_700_000_000_123_456_000);
    let labels: BTreeMap<&str, &str> = first
        .labels
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        labels,
        BTreeMap::from([
            ("SYSLOG_IDENTIFIER", "nginx"),
            ("_BOOT_ID", "0f2c5b7e8a2d4c6e9f1b3d5a7c9e1f20"),
            ("_HOSTNAME", "web-1"),
            ("_PID", "812"),
            ("_SYSTEMD_UNIT", "nginx.service"),
        ]),
        "addresses (__CURSOR, __MONOTONIC_TIMESTAMP) are dropped"
    );
    let second = &entries[1];
    assert_eq!(second.level, "info");
    assert_eq!(second.timestamp, 1_700_000_001_000_000_000);
    assert_eq!(second.labels["COREDUMP_BLOB"], "\0\u{1}\u{2}\u{fffd}\n");
    assert!(!second.labels.contains_key("__SEQNUM"));
    assert_eq!(
        server
            .metric("logtap_ingest_entries_total{protocol=\"journald\"}")
            .await,
        2
    );
    // The same body in one piece stores the same entries again.
    let (status, _, _) = upload(&server, &[EXPORT], &[&body]).await;
    assert_eq!(status, 202);
    let again = stored(&server).await;
    let fields = |e: &LogEntry| {
        (
            e.message.clone(),
            e.level.clone(),
            e.timestamp,
            e.labels.clone(),
        )
    };
    let twice: Vec<_> = again[2..].iter().map(fields).collect();
    let once: Vec<_> = entries.iter().map(fields).collect();
    assert_eq!(twice, once);
}

#[tokio::test]
async fn every_priority_has_its_level_and_none_is_info() {
    let server = TestServer::start().await;
    let mut body = Vec::new();
    for priority in 0..8 {
        body.extend_from_slice(format!("PRIORITY={priority}\nMESSAGE=p{priority}\n\n").as_bytes());
    }
    body.extend_from_slice(b"MESSAGE=none\n\nPRIORITY=notice\nMESSAGE=odd\n\n");
    let (status, _, text) = upload(&server, &[EXPORT], &[&body]).await;
    assert_eq!(status, 202, "{text}");
    let entries = stored(&server).await;
    let levels: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e.message.as_str(), e.level.as_str()))
        .collect();
    assert_eq!(
        levels,
        [
            ("p0", "fatal"),
            ("p1", "fatal"),
            ("p2", "fatal"),
            ("p3", "error"),
            ("p4", "warn"),
            ("p5", "info"),
            ("p6", "info"),
            ("p7", "debug"),
            ("none", "info"),
            ("odd", "info"),
        ]
    );
    // A PRIORITY that is no severity stays, as a label.
    assert_eq!(entries[9].labels["PRIORITY"], "notice");
    // No __REALTIME_TIMESTAMP: the receive time.
    let now = common::now_nanos();
    assert!((now - entries[8].timestamp).abs() < 60_000_000_000);
}

/// One bad input: what is sent, and what it gets.
struct Bad {
    /// What the row is.
    name: &'static str,
    /// The request's headers.
    headers: Vec<&'static str>,
    /// The body, sent in pieces of 7 bytes.
    body: Vec<u8>,
    /// The status expected.
    status: u16,
    /// Text the answer holds.
    says: &'static str,
    /// The messages stored by it (the entries before the bad one).
    keeps: Vec<&'static str>,
}

#[tokio::test]
async fn bad_inputs_get_their_status_as_text_and_keep_only_the_entries_before_them() {
    let good = b"MESSAGE=before\n\n".to_vec();
    let with_good = |rest: &[u8]| [&good[..], rest].concat();
    let mut truncated_length = b"MESSAGE=before\n\nDATA\n".to_vec();
    truncated_length.extend_from_slice(&[5, 0, 0]);
    let mut truncated_value = b"DATA\n".to_vec();
    truncated_value.extend_from_slice(&100u64.to_le_bytes());
    truncated_value.extend_from_slice(b"only a few bytes");
    let mut lying_length = b"MESSAGE\n".to_vec();
    lying_length.extend_from_slice(&3u64.to_le_bytes());
    lying_length.extend_from_slice(b"abcdef\n\n");
    let table = vec![
        Bad {
            name: "a JSON content type",
            headers: vec!["Content-Type: application/json"],
            body: good.clone(),
            status: 415,
            says: "application/vnd.fdo.journal",
            keeps: vec![],
        },
        Bad {
            name: "no content type",
            headers: vec![],
            body: good.clone(),
            status: 415,
            says: "application/vnd.fdo.journal",
            keeps: vec![],
        },
        Bad {
            name: "a gzip content encoding",
            headers: vec![EXPORT, "Content-Encoding: gzip"],
            body: good.clone(),
            status: 415,
            says: "gzip",
            keeps: vec![],
        },
        Bad {
            name: "a line without = that is no field name",
            headers: vec![EXPORT],
            body: with_good(b"MESSAGE=kept too?\nthis is a log line\n\n"),
            status: 400,
            says: "entry 1: the line \"this is a log line\" is neither NAME=value",
            keeps: vec!["before"],
        },
        Bad {
            name: "a binary length cut short",
            headers: vec![EXPORT],
            body: truncated_length,
            status: 400,
            says: "entry 1: the body ends inside the length of the binary field DATA",
            keeps: vec!["before"],
        },
        Bad {
            name: "a binary value cut short",
            headers: vec![EXPORT],
            body: with_good(&truncated_value),
            status: 400,
            says: "the body ends inside the value of the binary field DATA",
            keeps: vec!["before"],
        },
        Bad {
            name: "a binary length that lies",
            headers: vec![EXPORT],
            body: with_good(&lying_length),
            status: 400,
            says: "is not followed by a newline after its 3 bytes",
            keeps: vec!["before"],
        },
        Bad {
            name: "a realtime timestamp that is not a number",
            headers: vec![EXPORT],
            body: with_good(b"MESSAGE=x\n__REALTIME_TIMESTAMP=yesterday\n\n"),
            status: 400,
            says: "__REALTIME_TIMESTAMP=\"yesterday\" is not a time",
            keeps: vec!["before"],
        },
        Bad {
            name: "a realtime timestamp past 2262",
            headers: vec![EXPORT],
            body: with_good(b"MESSAGE=x\n__REALTIME_TIMESTAMP=9300000000000000\n\n"),
            status: 400,
            says: "is not a time",
            keeps: vec!["before"],
        },
        Bad {
            name: "more fields in one entry than journald allows",
            headers: vec![EXPORT],
            body: with_good(("A=\n".repeat(1025) + "\n").as_bytes()),
            status: 413,
            says: "entry 1 has more than 1024 fields",
            keeps: vec!["before"],
        },
        Bad {
            name: "a label over the backend's 64 KiB",
            headers: vec![EXPORT],
            body: with_good(format!("MESSAGE=x\nBIG={}\n\n", "v".repeat(70_000)).as_bytes()),
            status: 400,
            says: "entry 1 of the push",
            keeps: vec!["before"],
        },
    ];
    for bad in table {
        let server = TestServer::start().await;
        let pieces: Vec<&[u8]> = bad.body.chunks(7).collect();
        let (status, headers, text) = upload(&server, &bad.headers, &pieces).await;
        assert_eq!(status, bad.status, "{}: {text}", bad.name);
        assert!(text.contains(bad.says), "{}: {text}", bad.name);
        assert_eq!(
            header(&headers, "content-type"),
            Some("text/plain; charset=utf-8"),
            "{}",
            bad.name
        );
        assert_eq!(
            messages(&stored(&server).await),
            bad.keeps,
            "{}: what it keeps",
            bad.name
        );
    }
}

#[tokio::test]
async fn invalid_utf8_is_kept_with_replacement_characters() {
    let server = TestServer::start().await;
    let mut body = b"MESSAGE=caf\xe9 \xff\n_HOSTNAME=h\xc3\n\n".to_vec();
    body.extend(binary("MESSAGE", b"\xfe binary"));
    body.push(b'\n');
    let (status, _, text) = upload(&server, &[EXPORT], &[&body]).await;
    assert_eq!(status, 202, "{text}");
    let entries = stored(&server).await;
    assert_eq!(
        messages(&entries),
        ["caf\u{fffd} \u{fffd}", "\u{fffd} binary"]
    );
    assert_eq!(entries[0].labels["_HOSTNAME"], "h\u{fffd}");
}

#[tokio::test]
async fn name_value_lines_with_names_journald_refuses_are_skipped() {
    let server = TestServer::start().await;
    let body = b"MESSAGE=m\nlower=x\n9LIVES=y\n=empty\nOK_2=z\n\n";
    let (status, _, text) = upload(&server, &[EXPORT], &[body]).await;
    assert_eq!(status, 202, "{text}");
    let entries = stored(&server).await;
    assert_eq!(messages(&entries), ["m"]);
    let names: Vec<&str> = entries[0].labels.keys().map(String::as_str).collect();
    assert_eq!(names, ["OK_2"]);
}

#[tokio::test]
async fn an_entry_or_a_body_over_its_limit_is_413_and_the_entries_before_stay() {
    let server = TestServer::start_with(|config| {
        config.max_message_bytes = 1024;
        config.max_push_body_bytes = 8192;
    })
    .await;
    // One entry over max_message_bytes, as text and as a declared binary
    // length (refused before its bytes come).
    let long = format!("MESSAGE=before\n\nMESSAGE={}\n\n", "x".repeat(2000));
    let pieces: Vec<&[u8]> = long.as_bytes().chunks(100).collect();
    let (status, _, text) = upload(&server, &[EXPORT], &pieces).await;
    assert_eq!(status, 413, "{text}");
    assert!(
        text.contains("entry 1 is over 1024 bytes, the largest entry accepted"),
        "{text}"
    );
    let mut declared = b"DATA\n".to_vec();
    declared.extend_from_slice(&(1u64 << 40).to_le_bytes());
    let (status, _, text) = upload(&server, &[EXPORT], &[&declared]).await;
    assert_eq!(status, 413, "{text}");
    assert_eq!(messages(&stored(&server).await), ["before"]);
    // A body over max_push_body_bytes: as it streams, and as declared.
    let many = "MESSAGE=0123456789\n\n".repeat(500);
    let pieces: Vec<&[u8]> = many.as_bytes().chunks(1000).collect();
    let (status, _, text) = upload(&server, &[EXPORT], &pieces).await;
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("over the limit of 8192 bytes"), "{text}");
    let request = format!(
        "POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{EXPORT}\r\nContent-Length: 9000\r\n\r\n"
    );
    let (status, _, _) = http1(server.addr, request.as_bytes()).await;
    assert_eq!(status, 413);
    assert_eq!(
        server
            .metric("logtap_ingest_refusals_total{protocol=\"journald\",reason=\"too_large\"}")
            .await,
        4
    );
}

#[tokio::test]
async fn a_full_disk_gets_503_with_retry_after_and_the_upload_is_stored_once_space_returns() {
    use logtap_store::fault::{Fault, FaultyFs};
    let fs = std::sync::Arc::new(FaultyFs::new());
    let server = TestServer::start_with(|config| config.store.fs = fs.clone()).await;
    let body = b"MESSAGE=retried\nPRIORITY=4\n\n";
    fs.fail_writes_after_bytes(0, Fault::NoSpace);
    let (status, headers, text) = upload(&server, &[EXPORT], &[body]).await;
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("No space left"), "{text}");
    assert_eq!(header(&headers, "retry-after"), Some("1"));
    assert!(stored(&server).await.is_empty());
    assert_eq!(
        server
            .metric("logtap_ingest_refusals_total{protocol=\"journald\",reason=\"disk_full\"}")
            .await,
        1
    );
    fs.clear();
    let (status, _, text) = upload(&server, &[EXPORT], &[body]).await;
    assert_eq!(status, 202, "{text}");
    let entries = stored(&server).await;
    assert_eq!(messages(&entries), ["retried"]);
    assert_eq!(entries[0].level, "warn");
}

#[tokio::test]
async fn a_read_token_is_refused_with_403_and_a_write_token_uploads() {
    let tokens = tempfile::tempdir().expect("token dir");
    let path = tokens.path().join("tokens.txt");
    std::fs::write(
        &path,
        "reader-token-0123456789 read\nwriter-token-0123456789 write\n",
    )
    .expect("token file");
    let server = TestServer::start_with(|config| config.auth_token_file = Some(path)).await;
    let body = b"MESSAGE=with a token\n\n";
    let (status, _, _) = upload(&server, &[EXPORT], &[body]).await;
    assert_eq!(status, 401);
    let (status, _, text) = upload(
        &server,
        &[EXPORT, "Authorization: Bearer reader-token-0123456789"],
        &[body],
    )
    .await;
    assert_eq!(status, 403, "{text}");
    let (status, _, text) = upload(
        &server,
        &[EXPORT, "Authorization: Bearer writer-token-0123456789"],
        &[body],
    )
    .await;
    assert_eq!(status, 202, "{text}");
}
