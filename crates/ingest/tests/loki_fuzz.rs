//! Fuzzing the Loki push decoders: arbitrary bytes through the JSON,
//! protobuf, snappy, gzip and deflate paths and arbitrary selector text
//! never panic and answer the same twice; generated pushes round-trip
//! through both forms (JSON built with serde_json, protobuf with the
//! crate's own prost messages) to the entries they describe, labels,
//! levels and times included.
//!
//! Failures are saved in `fuzz/regressions/loki_*.txt` (see
//! `fuzz/harness.rs`); `LOGTAP_FUZZ_CASES` sets the new cases per target.

#[path = "../../../fuzz/harness.rs"]
mod harness;
use harness::{fuzz, Settings};
use logtap_core::{Level, NewEntry};
use logtap_ingest::loki::{
    decode_json, decode_protobuf, decode_push_request, decompress, encode_protobuf,
    format_selector, level_of, parse_selector, Encoding, EntryAdapter, LabelPairAdapter,
    PushRequest, StreamAdapter, Timestamp,
};
use logtap_ingest::plain::detect_level;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use std::collections::BTreeMap;

const LIMIT: u64 = 1 << 20;

/// One generated stream: its labels, and its entries as (time, line,
/// structured metadata).
type Stream = (
    BTreeMap<String, String>,
    Vec<(i64, String, BTreeMap<String, String>)>,
);

fn label_name() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => "[a-z_][a-z0-9_.]{0,8}",
        1 => prop::sample::select(vec!["level", "detected_level", "severity", "lvl", "app"])
            .prop_map(str::to_string),
    ]
}

fn label_value() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => any::<String>(),
        1 => prop::sample::select(vec!["warning", "critical", "err", "DEBUG", "nonsense", ""])
            .prop_map(str::to_string),
    ]
}

fn labels() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(label_name(), label_value(), 0..4)
}

fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        prop::sample::select(vec!["ERROR disk full", "[warn] slow", "level=debug x", ""])
            .prop_map(str::to_string),
    ]
}

fn streams() -> impl Strategy<Value = Vec<Stream>> {
    prop::collection::vec(
        (
            labels(),
            prop::collection::vec((0..=i64::MAX, line(), labels()), 0..4),
        ),
        0..4,
    )
}

/// The entries a push of `streams` stands for.
fn expected(streams: &[Stream]) -> Vec<NewEntry> {
    let mut entries = Vec::new();
    for (labels, values) in streams {
        for (time, line, metadata) in values {
            let labels: Vec<(String, String)> = labels
                .iter()
                .chain(metadata)
                .map(|(n, v)| (n.clone(), v.clone()))
                .collect();
            let level = level_of(&labels)
                .or_else(|| detect_level(line))
                .unwrap_or(Level::Info);
            entries.push(NewEntry {
                timestamp: *time,
                level,
                message: line.clone(),
                labels,
            });
        }
    }
    entries
}

fn json_body(streams: &[Stream]) -> Vec<u8> {
    let streams: Vec<serde_json::Value> = streams
        .iter()
        .map(|(labels, values)| {
            let values: Vec<serde_json::Value> = values
                .iter()
                .map(|(time, line, metadata)| {
                    if metadata.is_empty() {
                        serde_json::json!([time.to_string(), line])
                    } else {
                        serde_json::json!([time.to_string(), line, metadata])
                    }
                })
                .collect();
            serde_json::json!({"stream": labels, "values": values})
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "streams": streams })).unwrap()
}

fn protobuf_body(streams: &[Stream]) -> Vec<u8> {
    let request = PushRequest {
        streams: streams
            .iter()
            .map(|(labels, values)| StreamAdapter {
                labels: format_selector(
                    &labels
                        .iter()
                        .map(|(n, v)| (n.clone(), v.clone()))
                        .collect::<Vec<_>>(),
                ),
                entries: values
                    .iter()
                    .map(|(time, line, metadata)| EntryAdapter {
                        timestamp: Some(Timestamp {
                            seconds: time / 1_000_000_000,
                            nanos: (time % 1_000_000_000) as i32,
                        }),
                        line: line.clone(),
                        structured_metadata: metadata
                            .iter()
                            .map(|(name, value)| LabelPairAdapter {
                                name: name.clone(),
                                value: value.clone(),
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect(),
    };
    encode_protobuf(&request)
}

/// Everything that must hold for any bytes: no panic, the same answer twice.
fn check_bytes(bytes: &[u8]) -> Result<(), TestCaseError> {
    prop_assert_eq!(decode_json(bytes), decode_json(bytes));
    prop_assert_eq!(decode_protobuf(bytes, LIMIT), decode_protobuf(bytes, LIMIT));
    prop_assert_eq!(decode_push_request(bytes), decode_push_request(bytes));
    for encoding in [Encoding::Identity, Encoding::Gzip, Encoding::Deflate] {
        if let Ok(out) = decompress(encoding, bytes, 64) {
            prop_assert!(out.len() <= 64);
        }
    }
    let text = String::from_utf8_lossy(bytes);
    prop_assert_eq!(parse_selector(&text), parse_selector(&text));
    Ok(())
}

#[test]
fn arbitrary_bytes_never_panic() {
    fuzz(
        "loki_bytes",
        Settings::default(),
        &prop::collection::vec(any::<u8>(), 0..400),
        |bytes| check_bytes(&bytes),
    );
    fuzz(
        "loki_selector",
        Settings::default(),
        &"\\{([a-z_.]{0,4} ?= ?\"([^\"\\\\]|\\\\.){0,6}\" ?,? ?){0,3}\\}?",
        |text| check_bytes(text.as_bytes()),
    );
}

#[test]
fn generated_pushes_round_trip_through_both_forms() {
    fuzz(
        "loki_round_trip",
        Settings::default(),
        &streams(),
        |streams| {
            let wanted = expected(&streams);
            prop_assert_eq!(decode_json(&json_body(&streams)), Ok(wanted.clone()));
            prop_assert_eq!(
                decode_protobuf(&protobuf_body(&streams), u64::MAX),
                Ok(wanted)
            );
            Ok(())
        },
    );
}

#[test]
fn mutated_pushes_never_panic() {
    let strategy = (
        streams(),
        any::<bool>(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    );
    fuzz(
        "loki_mutated",
        Settings::default(),
        &strategy,
        |(streams, json, edits)| {
            let mut body = if json {
                json_body(&streams)
            } else {
                protobuf_body(&streams)
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
