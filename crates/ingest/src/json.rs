//! Lines that are JSON objects: what each field becomes.
//!
//! The rules, with the reasons for the ambiguous cases:
//! * **level**: the `level` field. A name or alias as in `Level::parse`
//!   (`"ERROR"`, `"warning"`, ...); the numbers pino and bunyan write (10
//!   trace, 20 debug, 30 info, 40 warn, 50 error, 60 fatal). An empty string,
//!   `null` or no field at all means info. Any other value (`"notice"`,
//!   `42`, `true`) also means info, and the value is kept as a label named
//!   `level`, so nothing the producer said is lost and it can still be
//!   searched for by label.
//! * **message**: the `message` field, else `msg`. A value that is not a
//!   string becomes its JSON text. With neither field (or both `null`), the
//!   message is the whole line, so the entry still reads as what was sent.
//! * **timestamp**: the `timestamp` field, else `time`, else `ts`: an RFC
//!   3339 string or date, or an epoch number or numeric string (unit by
//!   magnitude, see [`crate::time::parse_epoch`]). `null`, `""` or no field
//!   means the receive time. A value that is present but is not a time is an
//!   **error** ([`JsonLineError`]): guessing would file the entry under the
//!   wrong time, where nobody looks for it.
//! * **labels**: every other field, in the order given, string values as
//!   they are, other values as their JSON text (as written). Of two fields
//!   that could fill one role (`message` and `msg`), the one that does not
//!   is a label like any other.
//! * Two fields make the HTTP API's own JSON form (what `logtap logs
//!   --output json` prints) read back as the same entry: a `labels` field
//!   holding an object gives its members as labels, and a `cursor` field
//!   holding an integer is dropped (a cursor belongs to the store that gave
//!   it; a push gets new ones).
//! * A line that starts with `{` but is not valid JSON (or is too deeply
//!   nested for the parser) is plain text, not an error.

use std::fmt;

use logtap_core::{Level, NewEntry};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::time::{parse_datetime, parse_epoch, TimeError};

/// A JSON line that cannot be stored as it says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonLineError {
    #[error("the {field:?} field holds {value}, which is not a time: give an RFC 3339 time (2024-05-01T12:00:00Z) or Unix epoch seconds, milliseconds, microseconds or nanoseconds")]
    /// The time field holds something that is no time form.
    NotATime {
        /// The field's name as the line wrote it.
        field: String,
        /// The field's value, as JSON.
        value: String,
    },
    #[error("the {field:?} field holds {value}, which has no UTC offset: add Z for UTC or an offset such as +02:00")]
    /// The time has no UTC offset, so its instant is unknown.
    NoOffset {
        /// The field's name as the line wrote it.
        field: String,
        /// The field's value, as JSON.
        value: String,
    },
    #[error("the {field:?} field holds {value}, which is outside the range logtap can store (from 1677-09-21 to 2262-04-11 UTC)")]
    /// The time is outside what an i64 of nanoseconds holds.
    OutOfRange {
        /// The field's name as the line wrote it.
        field: String,
        /// The field's value, as JSON.
        value: String,
    },
}

/// The numeric levels of pino and bunyan, the common JSON loggers that
/// write numbers.
const NUMERIC_LEVELS: [(&str, Level); 6] = [
    ("10", Level::Trace),
    ("20", Level::Debug),
    ("30", Level::Info),
    ("40", Level::Warn),
    ("50", Level::Error),
    ("60", Level::Fatal),
];

/// Parses `line` as a JSON object if it is one. `Ok(None)` means it is not
/// (it is plain text); the line must already be stripped of its line end.
pub fn parse_json_line(line: &str, received_ns: i64) -> Result<Option<NewEntry>, JsonLineError> {
    let trimmed = line.trim();
    if !trimmed.starts_with('{') {
        return Ok(None);
    }
    let Ok(Fields(fields)) = serde_json::from_str::<Fields<'_>>(trimmed) else {
        return Ok(None);
    };

    // Which field fills each role: the first non-null one of the names, in
    // the order of preference.
    let pick = |names: &[&str]| {
        names.iter().find_map(|name| {
            fields
                .iter()
                .position(|(key, value)| key == name && value.get() != "null")
        })
    };
    let level_at = pick(&["level"]);
    let message_at = pick(&["message", "msg"]);
    let timestamp_at = pick(&["timestamp", "time", "ts"]);
    let role_names = ["level", "message", "msg", "timestamp", "time", "ts"];

    let mut labels = Vec::new();
    let level = match level_at {
        Some(i) => parse_level(fields[i].1).unwrap_or_else(|| {
            labels.push(("level".to_string(), text_of(fields[i].1)));
            Level::Info
        }),
        None => Level::Info,
    };
    let message = match message_at {
        Some(i) => text_of(fields[i].1),
        None => line.to_string(),
    };
    let timestamp = match timestamp_at {
        Some(i) => parse_timestamp(&fields[i].0, fields[i].1)?.unwrap_or(received_ns),
        None => received_ns,
    };

    for (i, (key, value)) in fields.iter().enumerate() {
        if Some(i) == level_at || Some(i) == message_at || Some(i) == timestamp_at {
            continue;
        }
        // A null in a role field is "not given", not a label called null.
        if value.get() == "null" && role_names.contains(&key.as_str()) {
            continue;
        }
        if key == "cursor" && value.get().parse::<u64>().is_ok() {
            continue;
        }
        if key == "labels" {
            if let Ok(Fields(members)) = serde_json::from_str::<Fields<'_>>(value.get()) {
                labels.extend(members.into_iter().map(|(k, v)| (k, text_of(v))));
                continue;
            }
        }
        labels.push((key.clone(), text_of(value)));
    }

    Ok(Some(NewEntry {
        timestamp,
        level,
        message,
        labels,
    }))
}

/// A level field's value as a level, or `None` when it names none (the
/// caller keeps it as a label). An empty string is info: the proto says an
/// empty level means info.
fn parse_level(value: &RawValue) -> Option<Level> {
    let raw = value.get();
    if raw.starts_with('"') {
        let name: String = serde_json::from_str(raw).ok()?;
        if name.trim().is_empty() {
            return Some(Level::Info);
        }
        return Level::parse(&name).ok();
    }
    NUMERIC_LEVELS
        .iter()
        .find(|(number, _)| *number == raw)
        .map(|(_, level)| *level)
}

/// A timestamp field's value as epoch nanoseconds; `Ok(None)` for an empty
/// string, which producers write when they have no time.
fn parse_timestamp(field: &str, value: &RawValue) -> Result<Option<i64>, JsonLineError> {
    let raw = value.get();
    let shown = || shorten(raw);
    let result = if raw.starts_with('"') {
        let text: String = serde_json::from_str(raw).map_err(|_| JsonLineError::NotATime {
            field: field.to_string(),
            value: shown(),
        })?;
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        parse_epoch(text).unwrap_or_else(|| parse_datetime(text))
    } else if raw.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        // JSON numbers may have an exponent, which `parse_epoch` does not
        // read; Rust prints an f64 without one, as the shortest decimal that
        // reads back the same.
        parse_epoch(raw).unwrap_or_else(|| match raw.parse::<f64>() {
            Ok(number) => parse_epoch(&format!("{number}")).unwrap_or(Err(TimeError::Invalid {
                text: raw.to_string(),
            })),
            Err(_) => Err(TimeError::Invalid {
                text: raw.to_string(),
            }),
        })
    } else {
        Err(TimeError::Invalid {
            text: raw.to_string(),
        })
    };
    result.map(Some).map_err(|error| match error {
        TimeError::Invalid { .. } => JsonLineError::NotATime {
            field: field.to_string(),
            value: shown(),
        },
        TimeError::NoOffset { .. } => JsonLineError::NoOffset {
            field: field.to_string(),
            value: shown(),
        },
        TimeError::OutOfRange { .. } => JsonLineError::OutOfRange {
            field: field.to_string(),
            value: shown(),
        },
    })
}

/// A value as label or message text: a string as itself, anything else as
/// its JSON text as written.
fn text_of(value: &RawValue) -> String {
    let raw = value.get();
    if raw.starts_with('"') {
        if let Ok(text) = serde_json::from_str::<String>(raw) {
            return text;
        }
    }
    raw.to_string()
}

/// Error messages quote the offending value; a huge one is cut short.
fn shorten(raw: &str) -> String {
    const MAX: usize = 80;
    if raw.len() <= MAX {
        return raw.to_string();
    }
    let mut end = MAX;
    while !raw.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &raw[..end])
}

/// A JSON object's members in the order written, duplicates kept, values
/// as their raw JSON text (serde_json's own map sorts keys and keeps only
/// the last of duplicates).
struct Fields<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Fields<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldsVisitor<'a>(std::marker::PhantomData<&'a ()>);

        impl<'de: 'a, 'a> Visitor<'de> for FieldsVisitor<'a> {
            type Value = Fields<'a>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(key) = map.next_key::<String>()? {
                    let value: &'de RawValue = map.next_value()?;
                    fields.push((key, value));
                }
                Ok(Fields(fields))
            }
        }

        deserializer.deserialize_map(FieldsVisitor(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECEIVED: i64 = 42;
    const NOW: i64 = 1_714_564_800_000_000_000; // 2024-05-01T12:00:00Z

    fn parse(line: &str) -> NewEntry {
        parse_json_line(line, RECEIVED)
            .unwrap_or_else(|e| panic!("{line}: {e}"))
            .unwrap_or_else(|| panic!("{line}: not taken as JSON"))
    }

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_common_fields() {
        let entry = parse(
            r#"{"level":"ERROR","message":"disk full","timestamp":"2024-05-01T12:00:00Z","host":"a1"}"#,
        );
        assert_eq!(entry.level, Level::Error);
        assert_eq!(entry.message, "disk full");
        assert_eq!(entry.timestamp, NOW);
        assert_eq!(entry.labels, labels(&[("host", "a1")]));
    }

    #[test]
    fn msg_time_and_ts_are_alternative_names() {
        let entry = parse(r#"{"msg":"hi","time":1714564800}"#);
        assert_eq!((entry.message.as_str(), entry.timestamp), ("hi", NOW));
        let entry = parse(r#"{"msg":"hi","ts":1714564800000}"#);
        assert_eq!(entry.timestamp, NOW);
        // The preferred name wins wherever it is; the other is a label.
        let entry = parse(r#"{"msg":"short","ts":1,"message":"long","timestamp":"1714564800"}"#);
        assert_eq!(entry.message, "long");
        assert_eq!(entry.timestamp, NOW);
        assert_eq!(entry.labels, labels(&[("msg", "short"), ("ts", "1")]));
    }

    #[test]
    fn labels_keep_their_order_and_json_text() {
        let entry = parse(r#"{"z":"1","a":2,"m":true,"n":null,"o":{"b":1, "a":[1,2]},"f":1.50}"#);
        assert_eq!(
            entry.labels,
            labels(&[
                ("z", "1"),
                ("a", "2"),
                ("m", "true"),
                ("n", "null"),
                ("o", r#"{"b":1, "a":[1,2]}"#),
                ("f", "1.50"),
            ])
        );
        assert_eq!(
            entry.message,
            r#"{"z":"1","a":2,"m":true,"n":null,"o":{"b":1, "a":[1,2]},"f":1.50}"#
        );
        let entry = parse(r#"{"msg":"x","k":"a","k":"b"}"#);
        assert_eq!(entry.labels, labels(&[("k", "a"), ("k", "b")]));
    }

    #[test]
    fn numeric_epochs_by_magnitude_and_exponent() {
        for ts in [
            "1714564800",
            "1714564800000",
            "1714564800000000",
            "1714564800000000000",
            "1.7145648e9",
            "1714564800.0",
            "\"1714564800\"",
            "\" 1714564800000 \"",
            "\"2024-05-01T14:00:00+02:00\"",
        ] {
            let entry = parse(&format!(r#"{{"msg":"x","ts":{ts}}}"#));
            assert_eq!(entry.timestamp, NOW, "{ts}");
        }
        let entry = parse(r#"{"msg":"x","ts":1714564800.123456}"#);
        assert_eq!(entry.timestamp, NOW + 123_456_000);
    }

    #[test]
    fn missing_or_empty_timestamps_take_the_receive_time() {
        for line in [
            r#"{"msg":"x"}"#,
            r#"{"msg":"x","ts":null}"#,
            r#"{"msg":"x","timestamp":""}"#,
        ] {
            let entry = parse(line);
            assert_eq!(entry.timestamp, RECEIVED, "{line}");
            assert!(entry.labels.is_empty(), "{line}: {:?}", entry.labels);
        }
    }

    #[test]
    fn bad_timestamps_are_errors_that_name_the_field() {
        let cases = [
            (r#"{"msg":"x","ts":"yesterday"}"#, "not a time"),
            (r#"{"msg":"x","ts":true}"#, "not a time"),
            (r#"{"msg":"x","time":[1]}"#, "not a time"),
            (r#"{"msg":"x","timestamp":{"s":1}}"#, "not a time"),
            (r#"{"msg":"x","ts":"2024-05-01T12:00:00"}"#, "no UTC offset"),
            (r#"{"msg":"x","ts":1e30}"#, "outside the range"),
            (
                r#"{"msg":"x","ts":"3000-01-01T00:00:00Z"}"#,
                "outside the range",
            ),
            (
                r#"{"msg":"x","ts":99999999999999999999999}"#,
                "outside the range",
            ),
        ];
        for (line, expected) in cases {
            let error = parse_json_line(line, RECEIVED).unwrap_err();
            let text = error.to_string();
            assert!(text.contains(expected), "{line}: {text}");
            assert!(text.contains("field"), "{line}: {text}");
        }
    }

    #[test]
    fn levels_names_aliases_numbers_and_unknowns() {
        let cases = [
            (r#"{"level":"warning"}"#, Level::Warn, None),
            (r#"{"level":"CRIT"}"#, Level::Fatal, None),
            (r#"{"level":" err "}"#, Level::Error, None),
            (r#"{"level":50}"#, Level::Error, None),
            (r#"{"level":10}"#, Level::Trace, None),
            (r#"{"level":60}"#, Level::Fatal, None),
            (r#"{"level":""}"#, Level::Info, None),
            (r#"{"level":null}"#, Level::Info, None),
            (r#"{}"#, Level::Info, None),
            (r#"{"level":"notice"}"#, Level::Info, Some("notice")),
            (r#"{"level":42}"#, Level::Info, Some("42")),
            (r#"{"level":50.0}"#, Level::Info, Some("50.0")),
            (r#"{"level":true}"#, Level::Info, Some("true")),
            (r#"{"level":["error"]}"#, Level::Info, Some(r#"["error"]"#)),
        ];
        for (line, level, label) in cases {
            let entry = parse(line);
            assert_eq!(entry.level, level, "{line}");
            let expected: Vec<_> = label
                .map(|v| ("level".to_string(), v.to_string()))
                .into_iter()
                .collect();
            assert_eq!(entry.labels, expected, "{line}");
        }
    }

    #[test]
    fn messages_that_are_not_strings_or_missing() {
        assert_eq!(parse(r#"{"msg":12}"#).message, "12");
        assert_eq!(parse(r#"{"msg":{"a":1}}"#).message, r#"{"a":1}"#);
        assert_eq!(parse(r#"{"msg":""}"#).message, "");
        let line = r#"  {"level":"error","code":7}"#;
        let entry = parse(line);
        assert_eq!(entry.message, line);
        assert_eq!(entry.level, Level::Error);
        assert_eq!(entry.labels, labels(&[("code", "7")]));
        let entry = parse(r#"{"message":null,"msg":"fallback"}"#);
        assert_eq!(entry.message, "fallback");
        assert!(entry.labels.is_empty());
    }

    #[test]
    fn the_http_api_form_reads_back_as_the_same_entry() {
        let entry = parse(
            r#"{"cursor":17,"timestamp":1714564800000000000,"level":"warn","message":"m","labels":{"b":"2","a":"1"}}"#,
        );
        assert_eq!(entry.timestamp, NOW);
        assert_eq!(entry.level, Level::Warn);
        assert_eq!(entry.message, "m");
        assert_eq!(entry.labels, labels(&[("b", "2"), ("a", "1")]));
        // Only an integer cursor and an object of labels are special.
        let entry = parse(r#"{"msg":"m","cursor":"abc","labels":"x"}"#);
        assert_eq!(entry.labels, labels(&[("cursor", "abc"), ("labels", "x")]));
    }

    #[test]
    fn lines_that_are_not_json_objects_are_left_to_plain_text() {
        for line in [
            "{not json}",
            "{\"a\":1",
            "{\"a\":1} trailing",
            "[1,2]",
            "\"string\"",
            "42",
            "plain",
            &format!("{}{}", "{\"a\":".repeat(200), "1"),
        ] {
            assert_eq!(parse_json_line(line, RECEIVED), Ok(None), "{line}");
        }
    }

    #[test]
    fn escapes_in_keys_and_values() {
        let entry = parse(r#"{"m\u0073g":"a\nb \u00e9","k\"ey":"\ud83d\ude00"}"#);
        assert_eq!(entry.message, "a\nb é");
        assert_eq!(entry.labels, labels(&[("k\"ey", "😀")]));
    }
}
