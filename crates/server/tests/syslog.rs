//! Syslog over UDP and TCP against a real server on 127.0.0.1:0: messages
//! in RFC 5424 and RFC 3164, one per datagram and framed on TCP by octet
//! counting and by LF, read back through GetLogs (message, level, labels);
//! bad frames are dropped alone and the connection goes on; a frame over
//! `max_message_bytes` closes its connection, keeping the frames before
//! it; the listeners are off unless configured.

mod common;

use common::{get_all, TestServer, DEADLINE};
use logtap_proto::v1::{LogEntry, LogRequest};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

async fn syslog_server(max_message_bytes: usize) -> TestServer {
    TestServer::start_with(|config| {
        config.syslog_udp = Some("127.0.0.1:0".parse().unwrap());
        config.syslog_tcp = Some("127.0.0.1:0".parse().unwrap());
        config.max_message_bytes = max_message_bytes;
    })
    .await
}

/// The stored entries, once there are `count` (syslog has no ack).
async fn stored(server: &TestServer, count: usize) -> Vec<LogEntry> {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let mut client = server.client().await;
        let entries = get_all(&mut client, LogRequest::default()).await.0;
        if entries.len() >= count || tokio::time::Instant::now() > deadline {
            return entries;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn label<'a>(entry: &'a LogEntry, name: &str) -> Option<&'a str> {
    entry.labels.get(name).map(String::as_str)
}

#[tokio::test]
async fn udp_datagrams_in_both_formats_are_stored_with_level_and_labels() {
    let server = syslog_server(4 << 20).await;
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let to = server.syslog.udp.expect("udp on");
    for datagram in [
        &b"<165>1 2003-10-11T22:14:15.003Z host1 app1 77 ID47 [ex@1 k=\"a\\\"b\"] \xef\xbb\xbfhello 5424"[..],
        b"not syslog at all",
        b"<34>Oct  1 22:14:15 host2 su[123]: hello 3164\n",
    ] {
        udp.send_to(datagram, to).await.unwrap();
    }
    let entries = stored(&server, 2).await;
    assert_eq!(
        entries.len(),
        2,
        "the bad datagram alone is dropped: {entries:?}"
    );
    let first = &entries[0];
    assert_eq!(first.message, "hello 5424");
    assert_eq!(first.level, "info");
    assert_eq!(first.timestamp, 1_065_910_455_003_000_000);
    assert_eq!(label(first, "facility"), Some("local4"));
    assert_eq!(label(first, "hostname"), Some("host1"));
    assert_eq!(label(first, "app"), Some("app1"));
    assert_eq!(label(first, "procid"), Some("77"));
    assert_eq!(label(first, "msgid"), Some("ID47"));
    assert_eq!(label(first, "sd.ex@1.k"), Some("a\"b"));
    let second = &entries[1];
    assert_eq!(second.message, "hello 3164");
    assert_eq!(second.level, "fatal");
    assert_eq!(label(second, "facility"), Some("auth"));
    assert_eq!(label(second, "hostname"), Some("host2"));
    assert_eq!(label(second, "app"), Some("su"));
    assert_eq!(label(second, "procid"), Some("123"));
}

#[tokio::test]
async fn tcp_octet_counting_and_lf_framing_keep_good_frames_around_bad_ones() {
    let server = syslog_server(4 << 20).await;
    let to = server.syslog.tcp.expect("tcp on");
    let mut counted = TcpStream::connect(to).await.unwrap();
    let frames = [
        "<11>1 - h a - - - one",
        "garbage",
        "<15>1 - h a - - - two\nstill two",
    ];
    let mut bytes = Vec::new();
    for frame in frames {
        bytes.extend_from_slice(format!("{} {frame}", frame.len()).as_bytes());
    }
    counted.write_all(&bytes).await.unwrap();
    counted.shutdown().await.unwrap();
    let mut lines = TcpStream::connect(to).await.unwrap();
    lines
        .write_all(b"<12>Jan  2 03:04:05 h t: three\r\n<oops>\n<13>four without newline")
        .await
        .unwrap();
    lines.shutdown().await.unwrap();
    let entries = stored(&server, 4).await;
    let mut got: Vec<_> = entries
        .iter()
        .map(|e| (e.message.as_str(), e.level.as_str()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("four without newline", "info"),
            ("one", "error"),
            ("three", "warn"),
            ("two\nstill two", "debug"),
        ]
    );
    // "garbage" and "<oops>".
    assert_eq!(
        server
            .metric(r#"logtap_ingest_refusals_total{protocol="syslog",reason="bad_input"}"#)
            .await,
        2
    );
}

#[tokio::test]
async fn a_frame_over_the_limit_closes_its_connection_keeping_the_ones_before() {
    let server = syslog_server(64).await;
    let to = server.syslog.tcp.expect("tcp on");
    let mut tcp = TcpStream::connect(to).await.unwrap();
    let mut bytes = b"<13>kept\n".to_vec();
    bytes.extend(std::iter::repeat_n(b'x', 200));
    bytes.extend_from_slice(b"\n<13>after\n");
    tcp.write_all(&bytes).await.unwrap();
    // The server closes: reading ends (EOF or reset) instead of waiting.
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(DEADLINE, tcp.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the connection stays open");
    let entries = stored(&server, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let entries_later = stored(&server, 1).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries_later.len(), 1);
    assert_eq!(entries[0].message, "kept");
    // Octet counting over the limit too.
    let mut tcp = TcpStream::connect(to).await.unwrap();
    tcp.write_all(b"100 <13>").await.unwrap();
    let closed = tokio::time::timeout(DEADLINE, tcp.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the connection stays open");
}

#[tokio::test]
async fn the_listeners_are_off_unless_configured_and_shutdown_stores_what_waits() {
    let server = TestServer::start().await;
    assert_eq!(server.syslog, logtap_server::SyslogAddrs::default());
    let mut server = syslog_server(4 << 20).await;
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    udp.send_to(b"<13>1 - - - - - - last", server.syslog.udp.unwrap())
        .await
        .unwrap();
    // Give the datagram time to reach the batcher, not the 200 ms flush.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let dir = server.dir.clone();
    server.shutdown().await;
    let reopened = TestServer::start_in(&dir, |_| {}).await;
    let entries = stored(&reopened, 1).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].message, "last");
}
