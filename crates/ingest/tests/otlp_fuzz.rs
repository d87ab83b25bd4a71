//! Fuzzing the OTLP logs decoders: arbitrary and mutated bytes through the
//! protobuf and JSON paths never panic and answer the same twice;
//! generated requests round-trip through both forms (protobuf with the
//! crate's own prost messages, JSON built with serde_json in OTLP/JSON's
//! camelCase with hex ids and string integers) to the same entries, with
//! the levels, times and labels the mapping says.
//!
//! The protobuf decoder reads the common shape field by field and leaves
//! the rest to prost: every body here, generated, mutated or arbitrary,
//! must decode to what prost's messages map to, or fail where prost fails.
//!
//! Failures are saved in `fuzz/regressions/otlp_*.txt` (see
//! `fuzz/harness.rs`); `LOGTAP_FUZZ_CASES` sets the new cases per target.

#[path = "../../../fuzz/harness.rs"]
mod harness;
use harness::{fuzz, Settings};
use logtap_ingest::otlp::{
    decode_json, decode_protobuf, from_request, hex, level_of, AnyValue, Decoded, ExportLogs,
    ExportLogsServiceRequest, KeyValue, LogRecord, Resource, ResourceLogs, ScopeLogs, Value,
};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

const RECEIVED: i64 = 42;

/// One generated record: time, observed time, severity number and text,
/// body, attributes, trace id, span id.
type Record = (
    u64,
    u64,
    i32,
    String,
    String,
    Vec<(String, String)>,
    Vec<u8>,
    Vec<u8>,
);

/// One generated resource: its attributes and its records.
type ResourceRecords = (Vec<(String, String)>, Vec<Record>);

fn attributes() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(
        (
            prop_oneof!["[a-z_.]{1,8}", Just("service.name".to_string())],
            any::<String>(),
        ),
        0..3,
    )
}

fn record() -> impl Strategy<Value = Record> {
    (
        prop_oneof![Just(0u64), 0..=i64::MAX as u64, any::<u64>()],
        prop_oneof![Just(0u64), 0..=i64::MAX as u64],
        -2..30i32,
        prop::sample::select(vec!["", "WARN", "error", "nonsense"]).prop_map(str::to_string),
        any::<String>(),
        attributes(),
        prop_oneof![Just(vec![]), prop::collection::vec(any::<u8>(), 16)],
        prop_oneof![Just(vec![]), prop::collection::vec(any::<u8>(), 8)],
    )
}

fn requests() -> impl Strategy<Value = Vec<ResourceRecords>> {
    prop::collection::vec((attributes(), prop::collection::vec(record(), 0..4)), 0..3)
}

fn string(text: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(Value::StringValue(text.to_string())),
    })
}

fn pairs(list: &[(String, String)]) -> Vec<KeyValue> {
    list.iter()
        .map(|(key, value)| KeyValue {
            key: key.clone(),
            value: string(value),
        })
        .collect()
}

fn protobuf_body(request: &[ResourceRecords]) -> Vec<u8> {
    let request = ExportLogsServiceRequest {
        resource_logs: request
            .iter()
            .map(|(resource, records)| ResourceLogs {
                resource: Some(Resource {
                    attributes: pairs(resource),
                }),
                scope_logs: vec![ScopeLogs {
                    scope: None,
                    log_records: records
                        .iter()
                        .map(
                            |(time, observed, number, text, body, attrs, trace, span)| LogRecord {
                                time_unix_nano: *time,
                                observed_time_unix_nano: *observed,
                                severity_number: *number,
                                severity_text: text.clone(),
                                body: string(body),
                                attributes: pairs(attrs),
                                trace_id: trace.clone(),
                                span_id: span.clone(),
                                ..LogRecord::default()
                            },
                        )
                        .collect(),
                }],
                schema_url: String::new(),
            })
            .collect(),
    };
    prost::Message::encode_to_vec(&request)
}

fn json_pairs(list: &[(String, String)]) -> serde_json::Value {
    list.iter()
        .map(|(key, value)| serde_json::json!({"key": key, "value": {"stringValue": value}}))
        .collect()
}

fn json_body(request: &[ResourceRecords]) -> Vec<u8> {
    let resource_logs: Vec<serde_json::Value> = request
        .iter()
        .map(|(resource, records)| {
            let records: Vec<serde_json::Value> = records
                .iter()
                .map(|(time, observed, number, text, body, attrs, trace, span)| {
                    serde_json::json!({
                        "timeUnixNano": time.to_string(),
                        "observedTimeUnixNano": observed,
                        "severityNumber": number,
                        "severityText": text,
                        "body": {"stringValue": body},
                        "attributes": json_pairs(attrs),
                        "traceId": hex(trace),
                        "spanId": hex(span),
                    })
                })
                .collect();
            serde_json::json!({
                "resource": {"attributes": json_pairs(resource)},
                "scopeLogs": [{"scope": {"name": "fuzz"}, "logRecords": records}],
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "resourceLogs": resource_logs })).unwrap()
}

/// What prost makes of `bytes`: the reference `decode_protobuf` is held
/// to, whichever way it reads them.
fn by_prost(bytes: &[u8]) -> Option<Decoded> {
    let request = <ExportLogsServiceRequest as prost::Message>::decode(bytes).ok()?;
    Some(from_request(request, RECEIVED))
}

/// `ExportLogs`, the gRPC codec's reading, against prost's: the same
/// entries (a record without a time gets the time of reading, not
/// `RECEIVED`) or the same error, word for word.
fn check_grpc_reading(bytes: &[u8]) -> Result<(), TestCaseError> {
    let read = <ExportLogs as prost::Message>::decode(bytes).map(ExportLogs::into_decoded);
    let reference = <ExportLogsServiceRequest as prost::Message>::decode(bytes)
        .map(|request| from_request(request, RECEIVED));
    match (read, reference) {
        (Ok(mut read), Ok(reference)) => {
            prop_assert_eq!(read.entries.len(), reference.entries.len());
            for (entry, wanted) in read.entries.iter_mut().zip(&reference.entries) {
                if wanted.timestamp == RECEIVED {
                    prop_assert!(entry.timestamp > 1_700_000_000_000_000_000);
                    entry.timestamp = RECEIVED;
                }
            }
            prop_assert_eq!(read, reference);
        }
        (Err(read), Err(reference)) => prop_assert_eq!(read.to_string(), reference.to_string()),
        (read, reference) => prop_assert!(false, "ExportLogs read {read:?}, prost {reference:?}"),
    }
    Ok(())
}

fn check_bytes(bytes: &[u8]) -> Result<(), TestCaseError> {
    prop_assert_eq!(decode_json(bytes, RECEIVED), decode_json(bytes, RECEIVED));
    let decoded = decode_protobuf(bytes, RECEIVED);
    prop_assert_eq!(&decoded, &decode_protobuf(bytes, RECEIVED));
    prop_assert_eq!(decoded.ok(), by_prost(bytes));
    check_grpc_reading(bytes)
}

#[test]
fn arbitrary_bytes_never_panic() {
    fuzz(
        "otlp_bytes",
        Settings::default(),
        &prop::collection::vec(any::<u8>(), 0..400),
        |bytes| check_bytes(&bytes),
    );
}

#[test]
fn generated_requests_round_trip_through_both_forms() {
    fuzz(
        "otlp_round_trip",
        Settings::default(),
        &requests(),
        |request| {
            let protobuf = protobuf_body(&request);
            let from_protobuf = decode_protobuf(&protobuf, RECEIVED).unwrap();
            prop_assert_eq!(Some(from_protobuf.clone()), by_prost(&protobuf));
            check_grpc_reading(&protobuf)?;
            let from_json = decode_json(&json_body(&request), RECEIVED).unwrap();
            prop_assert_eq!(&from_protobuf, &from_json);
            let records: Vec<&Record> = request.iter().flat_map(|(_, records)| records).collect();
            let kept: Vec<&&Record> = records
                .iter()
                .filter(|(time, observed, ..)| {
                    i64::try_from(if *time != 0 { *time } else { *observed }).is_ok()
                })
                .collect();
            prop_assert_eq!(from_protobuf.rejected as usize, records.len() - kept.len());
            prop_assert_eq!(from_protobuf.entries.len(), kept.len());
            for (entry, (time, observed, number, text, body, attrs, trace, _)) in
                from_protobuf.entries.iter().zip(kept)
            {
                let wanted = match (*time, *observed) {
                    (0, 0) => RECEIVED,
                    (0, observed) => observed as i64,
                    (time, _) => time as i64,
                };
                prop_assert_eq!(entry.timestamp, wanted);
                prop_assert_eq!(entry.level, level_of(*number, text));
                prop_assert_eq!(&entry.message, body);
                for (key, value) in attrs {
                    prop_assert!(entry.labels.contains(&(key.clone(), value.clone())));
                    if key == "service.name" {
                        prop_assert!(entry.labels.contains(&("service".into(), value.clone())));
                    }
                }
                if !trace.is_empty() {
                    prop_assert!(entry.labels.contains(&("trace_id".into(), hex(trace))));
                }
            }
            Ok(())
        },
    );
}

#[test]
fn mutated_requests_never_panic() {
    let strategy = (
        requests(),
        any::<bool>(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    );
    fuzz(
        "otlp_mutated",
        Settings::default(),
        &strategy,
        |(request, json, edits)| {
            let mut body = if json {
                json_body(&request)
            } else {
                protobuf_body(&request)
            };
            for (at, byte) in edits {
                if body.is_empty() {
                    body.push(byte);
                } else {
                    let at = at.index(body.len());
                    body[at] = byte;
                }
            }
            check_bytes(&body)
        },
    );
}
