//! OTLP logs over HTTP against a real server on 127.0.0.1:0: exports in
//! protobuf (plain and gzip) and OTLP/JSON, read back through GetLogs
//! (message, level, time, labels), answered with an
//! `ExportLogsServiceResponse` in the request's form whose
//! `partial_success` counts the records refused; bad inputs each get their
//! status and store nothing of their request; a full disk answers 503
//! with `Retry-After` and the export is stored once space returns. Over
//! gRPC, `LogsService/Export` on the main port stores the same way,
//! answers `partial_success`, and says UNAVAILABLE on a full disk;
//! malformed protobuf is INTERNAL and stores nothing.

mod common;

use common::{gzip, http1, http_request, sorted_labels, stored, TestServer};
use logtap_ingest::otlp::{
    AnyValue, ExportLogsServiceRequest, ExportLogsServiceResponse, KeyValue, LogRecord, Resource,
    ResourceLogs, ScopeLogs, Value,
};
use logtap_proto::v1::LogRequest;

/// A refused request: name, headers, body, status, a part of the answer.
type Case = (&'static str, Vec<&'static str>, Vec<u8>, u16, &'static str);

const PROTOBUF: &str = "Content-Type: application/x-protobuf";
const JSON: &str = "Content-Type: application/json";

/// POSTs `body` to `path` with `headers`; the status, headers and body.
async fn post(
    server: &TestServer,
    path: &str,
    headers: &[&str],
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    http_request(server.addr, "POST", path, headers, body).await
}

fn string(text: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(Value::StringValue(text.into())),
    })
}

fn pair(key: &str, value: Option<AnyValue>) -> KeyValue {
    KeyValue {
        key: key.into(),
        value,
    }
}

fn request(records: Vec<LogRecord>) -> Vec<u8> {
    prost::Message::encode_to_vec(&ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![pair("service.name", string("shop"))],
            }),
            scope_logs: vec![ScopeLogs {
                scope: None,
                log_records: records,
            }],
            schema_url: String::new(),
        }],
    })
}

fn response(body: &[u8]) -> ExportLogsServiceResponse {
    prost::Message::decode(body).expect("an ExportLogsServiceResponse")
}

#[tokio::test]
async fn a_protobuf_export_stores_records_with_levels_times_and_labels() {
    let server = TestServer::start().await;
    let body = request(vec![
        LogRecord {
            time_unix_nano: 1_700_000_000_000_000_001,
            severity_number: 13,
            body: string("slow"),
            attributes: vec![pair(
                "user",
                Some(AnyValue {
                    value: Some(Value::IntValue(7)),
                }),
            )],
            trace_id: vec![0xab; 16],
            span_id: vec![1, 2, 3, 4, 5, 6, 7, 8],
            ..LogRecord::default()
        },
        LogRecord {
            observed_time_unix_nano: 1_700_000_000_000_000_002,
            severity_text: "CRITICAL".into(),
            body: Some(AnyValue {
                value: Some(Value::BoolValue(true)),
            }),
            ..LogRecord::default()
        },
    ]);
    let (status, headers, reply) = post(&server, "/v1/logs", &[PROTOBUF], &body).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&reply));
    assert!(headers
        .iter()
        .any(|(n, v)| n == "content-type" && v == "application/x-protobuf"));
    assert_eq!(response(&reply).partial_success, None);
    // The other path, gzip-coded.
    let body = request(vec![LogRecord {
        time_unix_nano: 3,
        severity_number: 17,
        body: string("failed"),
        ..LogRecord::default()
    }]);
    let (status, _, reply) = post(
        &server,
        "/otlp/v1/logs",
        &[PROTOBUF, "Content-Encoding: gzip"],
        &gzip(&body),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&reply));
    let entries = stored(&server).await;
    let got: Vec<(&str, &str, i64)> = entries
        .iter()
        .map(|e| (e.message.as_str(), e.level.as_str(), e.timestamp))
        .collect();
    assert_eq!(
        got,
        [
            ("slow", "warn", 1_700_000_000_000_000_001),
            ("true", "fatal", 1_700_000_000_000_000_002),
            ("failed", "error", 3),
        ]
    );
    assert_eq!(
        sorted_labels(&entries[0]),
        [
            ("service", "shop"),
            ("service.name", "shop"),
            ("span_id", "0102030405060708"),
            ("trace_id", "abababababababababababababababab"),
            ("user", "7"),
        ]
    );
}

#[tokio::test]
async fn a_json_export_is_stored_and_answered_in_json() {
    let server = TestServer::start().await;
    let body = br#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"shop"}}]},
        "scopeLogs":[{"scope":{"name":"app"},"logRecords":[
          {"timeUnixNano":"1700000000000000001","severityNumber":9,"body":{"stringValue":"hello"},
           "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
           "attributes":[{"key":"n","value":{"intValue":"3"}}]},
          {"timeUnixNano":5,"severityNumber":5,"body":{"kvlistValue":{"values":[{"key":"a","value":{"doubleValue":1.5}}]}}},
          {"timeUnixNano":"18446744073709551615","body":{"stringValue":"too late"}}]}]}]}"#;
    let (status, headers, reply) = post(&server, "/v1/logs", &[JSON], body).await;
    let reply = String::from_utf8(reply).unwrap();
    assert_eq!(status, 200, "{reply}");
    assert!(headers
        .iter()
        .any(|(n, v)| n == "content-type" && v == "application/json"));
    let reply: serde_json::Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(reply["partialSuccess"]["rejectedLogRecords"], "1");
    assert!(reply["partialSuccess"]["errorMessage"]
        .as_str()
        .unwrap()
        .contains("2262"));
    let entries = stored(&server).await;
    assert_eq!(entries.len(), 2);
    assert_eq!(
        (
            entries[0].message.as_str(),
            entries[0].level.as_str(),
            entries[0].timestamp
        ),
        ("hello", "info", 1_700_000_000_000_000_001)
    );
    assert_eq!(
        sorted_labels(&entries[0]),
        [
            ("n", "3"),
            ("service", "shop"),
            ("service.name", "shop"),
            ("span_id", "eee19b7ec3c1b174"),
            ("trace_id", "5b8efff798038103d269b633813fc60c"),
        ]
    );
    assert_eq!(entries[1].message, r#"{"a":1.5}"#);
    assert_eq!(entries[1].level, "debug");
}

#[tokio::test]
async fn a_record_over_the_backends_limits_is_rejected_and_the_rest_stored() {
    let server = TestServer::start().await;
    let body = request(vec![
        LogRecord {
            body: string("kept"),
            ..LogRecord::default()
        },
        LogRecord {
            body: string("refused"),
            attributes: vec![pair("big", string(&"v".repeat(70_000)))],
            ..LogRecord::default()
        },
    ]);
    let (status, _, reply) = post(&server, "/v1/logs", &[PROTOBUF], &body).await;
    assert_eq!(status, 200);
    let partial = response(&reply).partial_success.expect("a partial success");
    assert_eq!(partial.rejected_log_records, 1);
    assert!(partial.error_message.contains("record 1"), "{partial:?}");
    let messages: Vec<String> = stored(&server)
        .await
        .into_iter()
        .map(|e| e.message)
        .collect();
    assert_eq!(messages, ["kept"]);
}

#[tokio::test]
async fn bad_inputs_get_their_status_and_store_nothing() {
    let limit = 1 << 20;
    let server = TestServer::start_with(|config| config.max_push_body_bytes = limit).await;
    let good = request(vec![LogRecord {
        body: string("kept"),
        ..LogRecord::default()
    }]);
    assert_eq!(post(&server, "/v1/logs", &[PROTOBUF], &good).await.0, 200);
    let valid = r#"{"body":{"stringValue":"not kept"}}"#;
    let json_with = |record: &str| {
        format!(r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{valid},{record}]}}]}}]}}"#)
            .into_bytes()
    };
    // resource_logs { scope_logs { log_records { severity_text: "\xff" } } }
    let bad_utf8 = b"\x0a\x07\x12\x05\x12\x03\x1a\x01\xff".to_vec();
    let cases: Vec<Case> = vec![
        (
            "bad protobuf",
            vec![PROTOBUF],
            b"\x0a\xff\xff\x01".to_vec(),
            400,
            "not a protobuf ExportLogsServiceRequest",
        ),
        (
            "invalid UTF-8 in severity_text",
            vec![PROTOBUF],
            bad_utf8,
            400,
            "protobuf",
        ),
        (
            "bad JSON",
            vec![JSON],
            br#"{"resourceLogs":[{"#.to_vec(),
            400,
            "not an OTLP/JSON",
        ),
        (
            "a trace id that is not hex",
            vec![JSON],
            json_with(r#"{"traceId":"zz"}"#),
            400,
            "traceId",
        ),
        (
            "a negative time",
            vec![JSON],
            json_with(r#"{"timeUnixNano":"-5"}"#),
            400,
            "timeUnixNano",
        ),
        (
            "bad gzip",
            vec![PROTOBUF, "Content-Encoding: gzip"],
            b"not gzip".to_vec(),
            400,
            "gzip",
        ),
        (
            "a gzip bomb",
            vec![PROTOBUF, "Content-Encoding: gzip"],
            gzip(&vec![0; limit as usize + 1]),
            413,
            "decompresses to more than",
        ),
        (
            "a body over the limit",
            vec![PROTOBUF],
            vec![0; limit as usize + 1],
            413,
            "over the limit",
        ),
        (
            "no content type",
            vec![],
            good.clone(),
            415,
            "application/x-protobuf",
        ),
        (
            "a form body",
            vec!["Content-Type: application/x-www-form-urlencoded"],
            good.clone(),
            415,
            "application/x-protobuf",
        ),
        (
            "brotli",
            vec![PROTOBUF, "Content-Encoding: br"],
            good.clone(),
            415,
            "br-encoded",
        ),
    ];
    for (name, headers, body, wanted, says) in cases {
        let (status, reply_headers, reply) = post(&server, "/v1/logs", &headers, &body).await;
        let text = String::from_utf8_lossy(&reply);
        println!("| {name} | {status} | {} |", text.trim());
        assert_eq!(status, wanted, "{name}: {text}");
        assert!(text.contains(says), "{name}: {text}");
        assert!(
            reply_headers.iter().any(|(n, _)| n == "x-request-id"),
            "{name}"
        );
    }
    let messages: Vec<String> = stored(&server)
        .await
        .into_iter()
        .map(|e| e.message)
        .collect();
    assert_eq!(messages, ["kept"], "nothing of a refused export is stored");
    let (status, _) = server.http_get("/healthz").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_full_disk_gets_503_with_retry_after_and_the_export_is_stored_once_space_returns() {
    use logtap_store::fault::{Fault, FaultyFs};
    let fs = std::sync::Arc::new(FaultyFs::new());
    let server = TestServer::start_with(|config| config.store.fs = fs.clone()).await;
    let body = request(vec![LogRecord {
        body: string("retried"),
        ..LogRecord::default()
    }]);
    fs.fail_writes_after_bytes(0, Fault::NoSpace);
    let (status, headers, reply) = post(&server, "/v1/logs", &[PROTOBUF], &body).await;
    let text = String::from_utf8_lossy(&reply);
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("No space left"), "{text}");
    assert!(
        headers.iter().any(|(name, _)| name == "retry-after"),
        "an exporter is told to retry: {headers:?}"
    );
    assert!(stored(&server).await.is_empty());
    fs.clear();
    let (status, _, _) = post(&server, "/v1/logs", &[PROTOBUF], &body).await;
    assert_eq!(status, 200);
    let messages: Vec<String> = stored(&server)
        .await
        .into_iter()
        .map(|e| e.message)
        .collect();
    assert_eq!(messages, ["retried"]);
}

const EXPORT: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

/// Calls Export over gRPC with a request of raw bytes (so malformed ones
/// can be sent too).
async fn grpc_export(
    server: &TestServer,
    body: Vec<u8>,
) -> Result<ExportLogsServiceResponse, tonic::Status> {
    grpc_export_to(server.channel().await, body).await
}

/// Calls Export over `channel`.
async fn grpc_export_to(
    channel: tonic::transport::Channel,
    body: Vec<u8>,
) -> Result<ExportLogsServiceResponse, tonic::Status> {
    /// The request's bytes as they are.
    #[derive(Clone, PartialEq, Default)]
    struct Raw(Vec<u8>);
    impl prost::Message for Raw {
        fn encode_raw(&self, buf: &mut impl prost::bytes::BufMut) {
            buf.put_slice(&self.0);
        }
        fn merge_field(
            &mut self,
            tag: u32,
            wire_type: prost::encoding::WireType,
            buf: &mut impl prost::bytes::Buf,
            ctx: prost::encoding::DecodeContext,
        ) -> Result<(), prost::DecodeError> {
            // Only ever sent; skipping keeps decoding well-defined.
            prost::encoding::skip_field(wire_type, tag, buf, ctx)
        }
        fn encoded_len(&self) -> usize {
            self.0.len()
        }
        fn clear(&mut self) {
            self.0.clear();
        }
    }
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("ready");
    let codec = tonic_prost::ProstCodec::<Raw, ExportLogsServiceResponse>::default();
    grpc.unary(
        tonic::Request::new(Raw(body)),
        tonic::codegen::http::uri::PathAndQuery::from_static(EXPORT),
        codec,
    )
    .await
    .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn grpc_export_stores_records_and_answers_partial_success() {
    let server = TestServer::start().await;
    let body = request(vec![
        LogRecord {
            time_unix_nano: 11,
            severity_number: 21,
            body: string("over grpc"),
            span_id: vec![0xff; 8],
            ..LogRecord::default()
        },
        LogRecord {
            time_unix_nano: u64::MAX,
            body: string("too late"),
            ..LogRecord::default()
        },
    ]);
    let answer = grpc_export(&server, body).await.expect("exported");
    let partial = answer.partial_success.expect("one record refused");
    assert_eq!(partial.rejected_log_records, 1);
    let entries = stored(&server).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(
        (
            entries[0].message.as_str(),
            entries[0].level.as_str(),
            entries[0].timestamp
        ),
        ("over grpc", "fatal", 11)
    );
    assert_eq!(
        sorted_labels(&entries[0]),
        [
            ("service", "shop"),
            ("service.name", "shop"),
            ("span_id", "ffffffffffffffff"),
        ]
    );
    let status = grpc_export(&server, b"\x0a\xff\xff\x01".to_vec())
        .await
        .expect_err("malformed");
    assert_eq!(status.code(), tonic::Code::Internal, "{status:?}");
    assert_eq!(stored(&server).await.len(), 1, "nothing of it stored");
    // The record refused alone counts one; the malformed message never
    // reached the service (tonic's decoder refused it).
    assert_eq!(
        server
            .metric(r#"logtap_ingest_refusals_total{protocol="otlp",reason="bad_input"}"#)
            .await,
        1
    );
    assert_eq!(
        server
            .metric(r#"logtap_ingest_entries_total{protocol="otlp"}"#)
            .await,
        1
    );
}

#[tokio::test]
async fn the_otlp_grpc_port_serves_export_and_health_and_nothing_else() {
    let server = TestServer::start_with(|config| {
        config.otlp_grpc_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let otlp = server.otlp_grpc.expect("the OTLP port is bound");
    assert_ne!(otlp, server.addr);
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{otlp}"))
        .unwrap()
        .connect()
        .await
        .expect("connect to the OTLP port");
    let body = request(vec![LogRecord {
        time_unix_nano: 7,
        severity_number: 17,
        body: string("on 4317"),
        ..LogRecord::default()
    }]);
    let answer = grpc_export_to(channel.clone(), body)
        .await
        .expect("exported");
    assert!(answer.partial_success.is_none());
    let entries = stored(&server).await;
    assert_eq!(
        entries
            .iter()
            .map(|e| (e.message.as_str(), e.level.as_str()))
            .collect::<Vec<_>>(),
        [("on 4317", "error")]
    );
    // Health answers there, for load balancers and the Collector's checks.
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let serving = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health");
    assert_eq!(serving.into_inner().status, 1, "SERVING");
    // Reading is not served on that port: gRPC gets UNIMPLEMENTED, HTTP 404.
    let mut logs = logtap_proto::v1::log_service_client::LogServiceClient::new(channel);
    let status = logs
        .get_logs(LogRequest::default())
        .await
        .expect_err("GetLogs is not on the OTLP port");
    assert_eq!(status.code(), tonic::Code::Unimplemented, "{status:?}");
    let (status, _, _) = http1(
        otlp,
        b"GET /api/v1/logs HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 404);
    let (status, _, _) = http1(
        otlp,
        b"POST /v1/logs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 404, "OTLP/HTTP stays on the main port");
}

#[tokio::test]
async fn grpc_export_on_a_full_disk_is_unavailable_and_stored_once_space_returns() {
    use logtap_store::fault::{Fault, FaultyFs};
    let fs = std::sync::Arc::new(FaultyFs::new());
    let server = TestServer::start_with(|config| config.store.fs = fs.clone()).await;
    let body = request(vec![LogRecord {
        body: string("retried"),
        ..LogRecord::default()
    }]);
    fs.fail_writes_after_bytes(0, Fault::NoSpace);
    let status = grpc_export(&server, body.clone())
        .await
        .expect_err("disk full");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(status.metadata().get("x-request-id").is_some());
    assert!(stored(&server).await.is_empty());
    fs.clear();
    grpc_export(&server, body).await.expect("stored");
    assert_eq!(stored(&server).await.len(), 1);
}
