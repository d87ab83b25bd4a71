//! The Loki push API against a real server on 127.0.0.1:0: pushes in the
//! JSON and protobuf+snappy forms, plain and gzip/deflate-coded, read back
//! through GetLogs (message, level, time, labels); bad inputs each get
//! their status and store nothing of their request; `/ready` answers.

mod common;

use common::{gzip, http_request, sorted_labels, stored, TestServer};
use logtap_ingest::loki::{
    encode_protobuf, EntryAdapter, LabelPairAdapter, PushRequest, StreamAdapter, Timestamp,
};
use std::io::Write;

const PUSH: &str = "/loki/api/v1/push";

/// POSTs `body` to the push route with `headers` (`Name: value` lines);
/// the status and the body as text.
async fn post(
    server: &TestServer,
    headers: &[&str],
    body: &[u8],
) -> (u16, Vec<(String, String)>, String) {
    let (status, headers, body) = http_request(server.addr, "POST", PUSH, headers, body).await;
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn a_json_push_stores_lines_with_their_labels_levels_and_times() {
    let server = TestServer::start().await;
    let body = br#"{"streams":[
        {"stream":{"app":"web","level":"warning"},"values":[
            ["1700000000000000001","request slow"],
            ["1700000000000000002","request failed",{"trace_id":"abc123","detected_level":"critical"}]]},
        {"stream":{"app":"db"},"values":[
            ["1700000000000000003","ERROR disk full"],
            ["1700000000000000004","all good"],
            ["1700000000000000005","[debug] odd",{"lvl":"nonsense"}]]}]}"#;
    let (status, headers, text) = post(&server, &["Content-Type: application/json"], body).await;
    assert_eq!(status, 204, "{text}");
    assert!(headers.iter().any(|(name, _)| name == "x-request-id"));
    let entries = stored(&server).await;
    let got: Vec<(&str, &str, i64)> = entries
        .iter()
        .map(|e| (e.message.as_str(), e.level.as_str(), e.timestamp))
        .collect();
    assert_eq!(
        got,
        [
            ("request slow", "warn", 1_700_000_000_000_000_001),
            // `level` says warning, but `detected_level` comes second in
            // the order; `level` is tried first and is a level.
            ("request failed", "warn", 1_700_000_000_000_000_002),
            // No level label: the line says it, as `logtap push` reads it.
            ("ERROR disk full", "error", 1_700_000_000_000_000_003),
            ("all good", "info", 1_700_000_000_000_000_004),
            // A level label that is no level: the line decides.
            ("[debug] odd", "debug", 1_700_000_000_000_000_005),
        ]
    );
    assert_eq!(
        sorted_labels(&entries[0]),
        [("app", "web"), ("level", "warning")]
    );
    assert_eq!(
        sorted_labels(&entries[1]),
        [
            ("app", "web"),
            ("detected_level", "critical"),
            ("level", "warning"),
            ("trace_id", "abc123")
        ]
    );
    assert_eq!(sorted_labels(&entries[2]), [("app", "db")]);
    assert_eq!(
        sorted_labels(&entries[4]),
        [("app", "db"), ("lvl", "nonsense")]
    );
}

#[tokio::test]
async fn a_protobuf_snappy_push_is_stored_with_or_without_a_content_type() {
    let server = TestServer::start().await;
    let request = |line: &str, seconds: i64| PushRequest {
        streams: vec![StreamAdapter {
            labels: r#"{job="api", note="say \"hi\", \\ok"}"#.into(),
            entries: vec![EntryAdapter {
                timestamp: Some(Timestamp { seconds, nanos: 7 }),
                line: line.into(),
                structured_metadata: vec![LabelPairAdapter {
                    name: "severity".into(),
                    value: "err".into(),
                }],
            }],
        }],
    };
    let body = encode_protobuf(&request("first", 1_700_000_000));
    let (status, _, text) = post(&server, &["Content-Type: application/x-protobuf"], &body).await;
    assert_eq!(status, 204, "{text}");
    // Without a Content-Type, a body that is not JSON is protobuf.
    let body = encode_protobuf(&request("second", 1_700_000_001));
    let (status, _, text) = post(&server, &[], &body).await;
    assert_eq!(status, 204, "{text}");
    let entries = stored(&server).await;
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].message, "first");
    assert_eq!(entries[0].timestamp, 1_700_000_000_000_000_007);
    assert_eq!(entries[0].level, "error");
    assert_eq!(
        sorted_labels(&entries[0]),
        [
            ("job", "api"),
            ("note", "say \"hi\", \\ok"),
            ("severity", "err")
        ]
    );
    assert_eq!(entries[1].message, "second");
}

#[tokio::test]
async fn gzip_and_deflate_bodies_are_decoded() {
    let server = TestServer::start().await;
    let json = br#"{"streams":[{"stream":{"app":"z"},"values":[["5","zipped WARN"]]}]}"#;
    let (status, _, text) = post(
        &server,
        &["Content-Type: application/json", "Content-Encoding: gzip"],
        &gzip(json),
    )
    .await;
    assert_eq!(status, 204, "{text}");
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    zlib.write_all(&encode_protobuf(&PushRequest {
        streams: vec![StreamAdapter {
            labels: "{app=\"d\"}".into(),
            entries: vec![EntryAdapter {
                timestamp: Some(Timestamp {
                    seconds: 0,
                    nanos: 6,
                }),
                line: "deflated".into(),
                structured_metadata: vec![],
            }],
        }],
    }))
    .unwrap();
    let (status, _, text) = post(
        &server,
        &[
            "Content-Type: application/x-protobuf",
            "Content-Encoding: deflate",
        ],
        &zlib.finish().unwrap(),
    )
    .await;
    assert_eq!(status, 204, "{text}");
    let entries = stored(&server).await;
    let got: Vec<(&str, &str, i64)> = entries
        .iter()
        .map(|e| (e.message.as_str(), e.level.as_str(), e.timestamp))
        .collect();
    assert_eq!(got, [("zipped WARN", "warn", 5), ("deflated", "info", 6)]);
}

/// A bad input: its name, its headers, its body, the status it gets and
/// what the answer says.
type Case<'a> = (&'a str, Vec<&'a str>, Vec<u8>, u16, &'a str);

#[tokio::test]
async fn bad_inputs_get_their_status_and_store_nothing() {
    let limit = 1 << 20;
    let server = TestServer::start_with(|config| config.max_push_body_bytes = limit).await;
    // A good push first: what is stored stays stored.
    let good = br#"{"streams":[{"stream":{},"values":[["1","kept"]]}]}"#;
    assert_eq!(
        post(&server, &["Content-Type: application/json"], good)
            .await
            .0,
        204
    );
    // A valid value before each bad one: nothing of the request is stored.
    let valid = r#"["2","not kept"]"#;
    let bomb = gzip(&vec![b' '; limit as usize + 1]);
    let too_big = format!(
        r#"{{"streams":[{{"stream":{{}},"values":[{valid},["3","{}"]]}}]}}"#,
        "x".repeat(limit as usize)
    );
    let huge_label = format!(
        r#"{{"streams":[{{"stream":{{"k":"{}"}},"values":[{valid}]}}]}}"#,
        "v".repeat(70_000)
    );
    let json = "Content-Type: application/json";
    let protobuf = "Content-Type: application/x-protobuf";
    let cases: Vec<Case> = vec![
        (
            "bad JSON",
            vec![json],
            br#"{"streams":[{"values":[["2","x"]"#.to_vec(),
            400,
            "not a Loki JSON push",
        ),
        (
            "a value that is not [ts, line]",
            vec![json],
            format!(r#"{{"streams":[{{"values":[{valid},["3"]]}}]}}"#).into_bytes(),
            400,
            "stream 0, value 1",
        ),
        (
            "bad snappy",
            vec![protobuf],
            // Declares 16 bytes, then a copy from before the start.
            b"\x10\x02\xff\xff".to_vec(),
            400,
            "snappy",
        ),
        (
            "bad protobuf",
            vec![protobuf],
            snap::raw::Encoder::new()
                .compress_vec(b"\x0a\xff\xff\x01")
                .unwrap(),
            400,
            "protobuf",
        ),
        (
            "bad gzip",
            vec![json, "Content-Encoding: gzip"],
            b"not gzip at all".to_vec(),
            400,
            "gzip",
        ),
        (
            "a gzip bomb",
            vec![json, "Content-Encoding: gzip"],
            bomb,
            413,
            "decompresses to more than",
        ),
        (
            "a body over the limit",
            vec![json],
            too_big.into_bytes(),
            413,
            "over the limit",
        ),
        (
            "a time before 1970",
            vec![json],
            format!(r#"{{"streams":[{{"values":[{valid},["-5","x"]]}}]}}"#).into_bytes(),
            400,
            "out of range",
        ),
        (
            "a time past 2262",
            vec![json],
            format!(r#"{{"streams":[{{"values":[{valid},["9223372036854775808","x"]]}}]}}"#)
                .into_bytes(),
            400,
            "out of range",
        ),
        (
            "a protobuf time out of range",
            vec![protobuf],
            encode_protobuf(&PushRequest {
                streams: vec![StreamAdapter {
                    labels: "{}".into(),
                    entries: vec![
                        EntryAdapter {
                            timestamp: Some(Timestamp {
                                seconds: 2,
                                nanos: 0,
                            }),
                            line: "not kept".into(),
                            structured_metadata: vec![],
                        },
                        EntryAdapter {
                            timestamp: Some(Timestamp {
                                seconds: i64::MAX,
                                nanos: 0,
                            }),
                            line: "x".into(),
                            structured_metadata: vec![],
                        },
                    ],
                }],
            }),
            400,
            "out of range",
        ),
        (
            "invalid UTF-8 in JSON",
            vec![json],
            format!(r#"{{"streams":[{{"values":[{valid},["3","caf"#)
                .into_bytes()
                .into_iter()
                .chain(*b"\xff\"]]}]}")
                .collect(),
            400,
            "not a Loki JSON push",
        ),
        (
            "invalid UTF-8 in protobuf",
            vec![protobuf],
            // StreamAdapter{labels: "{}", entries: [{line: "\xff"}]}
            snap::raw::Encoder::new()
                .compress_vec(b"\x0a\x09\x0a\x02{}\x12\x03\x12\x01\xff")
                .unwrap(),
            400,
            "protobuf",
        ),
        (
            "a bad label selector",
            vec![protobuf],
            encode_protobuf(&PushRequest {
                streams: vec![StreamAdapter {
                    labels: "{app=web}".into(),
                    entries: vec![],
                }],
            }),
            400,
            "double-quoted",
        ),
        (
            "a label over the backend's limits",
            vec![json],
            huge_label.into_bytes(),
            400,
            "entry 0 of the push",
        ),
        (
            "a form body",
            vec!["Content-Type: application/x-www-form-urlencoded"],
            good.to_vec(),
            415,
            "application/json",
        ),
        (
            "brotli",
            vec![json, "Content-Encoding: br"],
            good.to_vec(),
            415,
            "br-encoded",
        ),
    ];
    let mut cases_by_status = Vec::new();
    for (name, headers, body, wanted, says) in cases {
        cases_by_status.push(wanted);
        let (status, reply_headers, text) = post(&server, &headers, &body).await;
        println!("| {name} | {status} | {} |", text.trim());
        assert_eq!(status, wanted, "{name}: {text}");
        assert!(text.contains(says), "{name}: {text}");
        assert!(
            reply_headers.iter().any(|(n, _)| n == "x-request-id"),
            "{name}"
        );
    }
    let entries = stored(&server).await;
    let messages: Vec<&str> = entries.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(messages, ["kept"], "nothing of a refused push is stored");
    // /metrics counts what each protocol stored and refused, by reason:
    // each refused push counts one, whatever it held.
    assert_eq!(
        server
            .metric(r#"logtap_ingest_entries_total{protocol="loki"}"#)
            .await,
        1
    );
    let (status, metrics) = server.http_get("/metrics").await;
    assert_eq!(status, 200);
    let refusals = |reason: &str| {
        common::metric_value(
            &metrics,
            &format!(r#"logtap_ingest_refusals_total{{protocol="loki",reason="{reason}"}}"#),
        )
        .unwrap_or(0)
    };
    let too_large = cases_by_status.iter().filter(|s| **s == 413).count() as u64;
    assert_eq!(refusals("too_large"), too_large, "{metrics}");
    assert_eq!(
        refusals("bad_input"),
        cases_by_status.len() as u64 - too_large,
        "{metrics}"
    );
    assert_eq!(
        server
            .metric(r#"logtap_ingest_entries_total{protocol="otlp"}"#)
            .await,
        0,
        "every protocol shows at 0 before its first entry"
    );
    let (status, _) = server.http_get("/healthz").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn ready_answers_200() {
    let server = TestServer::start().await;
    let (status, body) = server.http_get("/ready").await;
    assert_eq!((status, body.as_str()), (200, "ready"));
}

#[tokio::test]
async fn a_full_disk_gets_507_with_retry_after_and_the_push_is_stored_once_space_returns() {
    use logtap_store::fault::{Fault, FaultyFs};
    let fs = std::sync::Arc::new(FaultyFs::new());
    let server = TestServer::start_with(|config| config.store.fs = fs.clone()).await;
    let body = br#"{"streams":[{"stream":{"app":"w"},"values":[["1","retried"]]}]}"#;
    fs.fail_writes_after_bytes(0, Fault::NoSpace);
    let (status, headers, text) = post(&server, &["Content-Type: application/json"], body).await;
    assert_eq!(status, 507, "{text}");
    assert!(text.contains("No space left"), "{text}");
    assert!(
        headers.iter().any(|(name, _)| name == "retry-after"),
        "a shipper is told to retry: {headers:?}"
    );
    assert!(stored(&server).await.is_empty());
    assert_eq!(
        server
            .metric(r#"logtap_ingest_refusals_total{protocol="loki",reason="disk_full"}"#)
            .await,
        1
    );
    fs.clear();
    let (status, _, text) = post(&server, &["Content-Type: application/json"], body).await;
    assert_eq!(status, 204, "{text}");
    let messages: Vec<String> = stored(&server)
        .await
        .into_iter()
        .map(|e| e.message)
        .collect();
    assert_eq!(messages, ["retried"]);
}
