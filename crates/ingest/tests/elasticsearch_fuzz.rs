//! The bulk document decoder, which reads a document borrowing from the
//! body, against a model that reads it whole into `serde_json::Value`:
//! generated documents (nested objects, names with escapes and dots,
//! names given twice, strings with escapes, numbers, booleans, arrays,
//! nulls, the time, message and level fields in their forms) give the
//! same entry, or the same refusal; arbitrary bytes never panic.

use logtap_core::{Level, NewEntry};
use logtap_ingest::elasticsearch::{document_entry, ItemError};
use proptest::prelude::*;
use serde_json::{Map, Value};

const RECEIVED: i64 = 42;

/// What an entry is compared by: level, message, labels (the bulk index
/// left out).
type Parts = (Level, String, Vec<(String, String)>);

/// The model: a document as the decoder maps it (see the module doc of
/// `logtap_ingest::elasticsearch`), read through `serde_json::Value`. The
/// time is compared as the decoder reads it (a refusal stays a refusal),
/// since how text becomes a time is not what the borrowing changes.
fn model(document: &[u8]) -> Option<Parts> {
    let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(document) else {
        return None;
    };
    // `timestamp` is the time only when `@timestamp` gives none and it
    // reads as one; whether it does is the decoder's own reading.
    if matches!(fields.remove("@timestamp"), None | Some(Value::Null)) {
        let is_time = fields.get("timestamp").is_some_and(|value| {
            let alone = format!("{{\"@timestamp\":{value}}}");
            document_entry(alone.as_bytes(), 1, None, RECEIVED).is_ok() && !value.is_null()
        });
        if is_time {
            fields.remove("timestamp");
        }
    }
    let message = match fields.remove("message") {
        None | Some(Value::Null) => match fields.remove("log") {
            Some(Value::String(line)) => line,
            other => {
                if let Some(other) = other {
                    fields.insert("log".into(), other);
                }
                String::from_utf8_lossy(document).trim().to_string()
            }
        },
        Some(Value::String(text)) => text,
        Some(other) => other.to_string(),
    };
    let mut flat = Vec::new();
    flatten("", fields, &mut flat);
    let level = ["log.level", "level"].iter().find_map(|name| {
        let at = flat.iter().position(|(field, _)| field == name)?;
        let Value::String(text) = &flat[at].1 else {
            return None;
        };
        let level = Level::parse(text).ok()?;
        flat.remove(at);
        Some(level)
    });
    let labels = flat
        .into_iter()
        .map(|(name, value)| match value {
            Value::String(text) => (name, text),
            other => (name, other.to_string()),
        })
        .collect();
    let level = level
        .or_else(|| logtap_ingest::plain::detect_level(&message))
        .unwrap_or(Level::Info);
    Some((level, message, labels))
}

fn flatten(prefix: &str, object: Map<String, Value>, out: &mut Vec<(String, Value)>) {
    for (name, value) in object {
        let name = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}.{name}")
        };
        match value {
            Value::Null => {}
            Value::Object(inner) if !inner.is_empty() => flatten(&name, inner, out),
            other => out.push((name, other)),
        }
    }
}

/// Names that collide with the fields the decoder reads, and with each
/// other once flattened.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("message".to_string()),
        Just("log".to_string()),
        Just("level".to_string()),
        Just("@timestamp".to_string()),
        Just("timestamp".to_string()),
        Just("a".to_string()),
        Just("a.b".to_string()),
        "[a-c.\"\\\\é\u{1}]{0,4}",
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        "[ -~é\"\\\\\n\u{7f}]{0,12}".prop_map(Value::String),
        prop_oneof![Just("warning"), Just("ERROR"), Just("crit"), Just("nope")]
            .prop_map(|level| Value::String(level.to_string())),
        Just(Value::String("2024-05-01T12:00:00Z".into())),
        Just(Value::String("1714564800000".into())),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            proptest::collection::vec((name(), inner), 0..4)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

/// A document's text: members written in the order generated, names
/// given twice included (a `Map` would keep one), with or without spaces.
fn document() -> impl Strategy<Value = String> {
    (
        proptest::collection::vec((name(), value()), 0..6),
        any::<bool>(),
    )
        .prop_map(|(pairs, spaced)| {
            let members: Vec<String> = pairs
                .iter()
                .map(|(name, value)| {
                    let name = serde_json::to_string(name).unwrap();
                    if spaced {
                        format!("{name} : {}", serde_json::to_string_pretty(value).unwrap())
                    } else {
                        format!("{name}:{value}")
                    }
                })
                .collect();
            format!("{{{}}}", members.join(if spaced { " , " } else { "," }))
        })
}

fn entry_parts(entry: NewEntry) -> Parts {
    let mut labels = entry.labels;
    labels.retain(|(name, _)| name != "index");
    (entry.level, entry.message, labels)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn documents_decode_as_the_value_model_reads_them(text in document()) {
        let decoded = document_entry(text.as_bytes(), 1, Some("logs"), RECEIVED);
        let expected = model(text.as_bytes());
        match (decoded, expected) {
            (Ok(entry), Some(expected)) => prop_assert_eq!(entry_parts(entry), expected),
            // A time that is no time refuses the item in both.
            (Err(ItemError::Timestamp { .. }), Some(_)) => {}
            (Err(ItemError::NotAnObject { .. }), None) => {}
            (got, want) => prop_assert!(false, "decoded {got:?}, the model {want:?}"),
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let first = document_entry(&bytes, 1, None, RECEIVED);
        prop_assert_eq!(format!("{first:?}"), format!("{:?}", document_entry(&bytes, 1, None, RECEIVED)));
        let mut object = b"{\"a\":".to_vec();
        object.extend_from_slice(&bytes);
        object.push(b'}');
        let _ = document_entry(&object, 1, None, RECEIVED);
    }
}
