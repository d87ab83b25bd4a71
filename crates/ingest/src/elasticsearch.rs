//! Elasticsearch bulk bodies (`POST /_bulk`, `POST /{index}/_bulk`): NDJSON
//! lines, each action line followed by its document line, into entries.
//!
//! The actions:
//!
//! - `index` and `create` (the two that add a document) are each one entry;
//!   the action's `_index`, else the index of the path, is the entry's
//!   `index` label; the action's `_id` is only echoed in the answer;
//! - `update` (its document line is read and dropped) and `delete` (it has
//!   none) are answered, item by item, as not supported: logs are not
//!   edited in place;
//! - any other action, or an action line that is not a JSON object of one
//!   action holding an object, refuses the whole body ([`BulkError`]):
//!   after it, which line is an action and which a document is unknown, as
//!   Elasticsearch itself refuses such a body.
//!
//! Blank lines between items are skipped. A document line that is missing
//! (the body ends after an action) or that is not a JSON object fails its
//! own item and no other ([`ItemError`]).
//!
//! A document becomes an entry ([`document_entry`]):
//!
//! - **time**: `@timestamp`, as Elasticsearch's default date format reads
//!   it: an RFC 3339 / ISO 8601 string (a date and time without an offset is
//!   UTC, as Elasticsearch takes it; a date alone is its midnight UTC), or
//!   epoch milliseconds, a JSON number or a string of digits, with an
//!   optional fraction. Anything else, or a time outside 1677–2262, fails
//!   the item: guessing would file the entry where nobody looks for it.
//!   Missing or `null`: `timestamp` (the name Vector's events carry their
//!   time under) when it reads the same way, else it stays a label and the
//!   time is that of receipt.
//! - **message**: `message` (a string as it is, any other value as its
//!   JSON); missing or `null`: `log` when it is a string (Fluent Bit's and
//!   Docker's name for the line; ECS's `log` is an object, flattened as
//!   labels), else the document line as sent.
//! - **level**: `log.level` (ECS, nested `{"log":{"level":..}}` or the
//!   dotted name), else `level`, read as the Loki decoder reads its level
//!   labels ([`Level::parse`]: names and aliases such as `warning`, `err`,
//!   `critical`). A value that is no level stays a label, so nothing sent is
//!   lost. Without a level field that names one, the message's own level
//!   as `logtap push` and the Loki decoder recognise it in plain text
//!   ([`crate::plain::detect_level`]: `ERROR ...`, `[warn]`), else info.
//! - **labels**: every other field, nested objects flattened to dotted
//!   names (`{"host":{"name":"a"}}` is `host.name=a`); a string as it is, a
//!   number or boolean as its JSON text, an array as its JSON text
//!   (`tags=["a","b"]`: its members have no names to flatten to), an empty
//!   object as `{}`; `null` is no value and gives no label. Then `index`,
//!   the bulk index, which wins over a document field of that name.

use crate::loki::clip;
use logtap_core::{Level, NewEntry};
use serde_json::{Map, Value};

/// The field the time is read from.
pub const TIMESTAMP_FIELD: &str = "@timestamp";
/// The field the time is read from without [`TIMESTAMP_FIELD`], when it
/// holds a time: Vector's events carry their time under it.
pub const FALLBACK_TIMESTAMP_FIELD: &str = "timestamp";
/// The field the message is read from.
pub const MESSAGE_FIELD: &str = "message";
/// The field the message is read from without [`MESSAGE_FIELD`], when it
/// is a string: Fluent Bit and Docker put the line there.
pub const LINE_FIELD: &str = "log";
/// The fields the level is read from, in the order tried.
pub const LEVEL_FIELDS: [&str; 2] = ["log.level", "level"];
/// The label that holds the bulk index name.
pub const INDEX_LABEL: &str = "index";

/// What an action line asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Add a document (or replace one with the same `_id`).
    Index,
    /// Add a document (data streams take only this one).
    Create,
    /// Change a stored document: not supported.
    Update,
    /// Remove a stored document: not supported.
    Delete,
}

impl Action {
    /// The name it is written and answered under.
    pub fn name(self) -> &'static str {
        match self {
            Action::Index => "index",
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }

    /// The action a name stands for.
    fn from_name(name: &str) -> Option<Action> {
        Some(match name {
            "index" => Action::Index,
            "create" => Action::Create,
            "update" => Action::Update,
            "delete" => Action::Delete,
            _ => return None,
        })
    }
}

/// One action of a body and what it became.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// What was asked for, answered under its name.
    pub action: Action,
    /// The index: the action's `_index`, else the path's; `None` when
    /// neither names one.
    pub index: Option<String>,
    /// The action's `_id`, echoed in the answer (a number as its text).
    pub id: Option<String>,
    /// The entry to store, or why this item alone is refused.
    pub outcome: Result<NewEntry, ItemError>,
}

/// Why one item is refused while the others are stored. Each is answered
/// with status 400 in the item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ItemError {
    /// The action's document line is missing: the body ends after it.
    #[error("the {action} action on line {line} has no document line after it")]
    MissingDocument {
        /// The action's name.
        action: &'static str,
        /// The action's line, from 1.
        line: usize,
    },
    /// The document line is not a JSON object.
    #[error("the document on line {line} is not a JSON object: {reason}")]
    NotAnObject {
        /// The document's line, from 1.
        line: usize,
        /// What the JSON parser said, or what the value is instead.
        reason: String,
    },
    /// `@timestamp` holds something that is no time, or a time out of range.
    #[error("the document on line {line}: failed to parse field [@timestamp] of value {value}: give an RFC 3339 time (2024-05-01T12:00:00Z) or epoch milliseconds, from 1677 to 2262")]
    Timestamp {
        /// The document's line, from 1.
        line: usize,
        /// The value as JSON, clipped to about 100 bytes.
        value: String,
    },
    /// `update` and `delete`: logs are appended, never changed.
    #[error("the {action} action on line {line} is not supported: logtap stores log entries and does not change or remove them; send index or create")]
    Unsupported {
        /// The action's name.
        action: &'static str,
        /// The action's line, from 1.
        line: usize,
    },
}

impl ItemError {
    /// The Elasticsearch exception type an item's `error.type` names, which
    /// shippers log and some act on.
    pub fn kind(&self) -> &'static str {
        match self {
            ItemError::MissingDocument { .. } => "action_request_validation_exception",
            ItemError::NotAnObject { .. } | ItemError::Timestamp { .. } => {
                "document_parsing_exception"
            }
            ItemError::Unsupported { .. } => "illegal_argument_exception",
        }
    }
}

/// Why a whole body is refused (status 400): after a bad action line the
/// pairing of the lines that follow is unknown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BulkError {
    /// No action at all.
    #[error("the bulk body holds no action: send lines of {{\"index\":{{}}}} or {{\"create\":{{}}}}, each followed by its document, each ending in a newline")]
    Empty,
    /// An action line that is not `{"<action>":{...}}`.
    #[error("malformed action/metadata line [{line}], expected {{\"index\":{{...}}}} or {{\"create\":{{...}}}}: {reason}")]
    Action {
        /// The line, from 1.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// An action nobody knows.
    #[error("malformed action/metadata line [{line}], expected one of [create, delete, index, update] but found [{name}]")]
    UnknownAction {
        /// The line, from 1.
        line: usize,
        /// The action as sent, clipped.
        name: String,
    },
}

/// Decodes a bulk body: its items in order. `path_index` is the index of a
/// `/{index}/_bulk` path; `received_ns` the time of documents without one.
pub fn decode(
    body: &[u8],
    path_index: Option<&str>,
    received_ns: i64,
) -> Result<Vec<Item>, BulkError> {
    let mut lines = body
        .split(|byte| *byte == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .enumerate()
        .map(|(at, line)| (at + 1, line))
        .peekable();
    let mut items = Vec::new();
    while let Some((line, text)) = lines.next() {
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let (action, index, id) = parse_action(line, text)?;
        let index = index.or_else(|| path_index.map(str::to_string));
        let outcome = match action {
            Action::Delete => Err(ItemError::Unsupported {
                action: action.name(),
                line,
            }),
            Action::Index | Action::Create | Action::Update => {
                // The document line: the next line, blank or not, unless
                // the body ends (a trailing newline leaves one empty line).
                let document = lines.next().filter(|(at, document)| {
                    !(document.is_empty() && lines.peek().is_none() && *at > line)
                });
                match (action, document) {
                    (_, None) => Err(ItemError::MissingDocument {
                        action: action.name(),
                        line,
                    }),
                    (Action::Update, Some(_)) => Err(ItemError::Unsupported {
                        action: action.name(),
                        line,
                    }),
                    (_, Some((at, document))) => {
                        document_entry(document, at, index.as_deref(), received_ns)
                    }
                }
            }
        };
        items.push(Item {
            action,
            index,
            id,
            outcome,
        });
    }
    if items.is_empty() {
        return Err(BulkError::Empty);
    }
    Ok(items)
}

/// Reads an action line: the action, its `_index` and its `_id`.
fn parse_action(
    line: usize,
    text: &[u8],
) -> Result<(Action, Option<String>, Option<String>), BulkError> {
    let bad = |reason: String| BulkError::Action { line, reason };
    let object: Map<String, Value> =
        serde_json::from_slice(text).map_err(|error| bad(error.to_string()))?;
    let mut members = object.into_iter();
    let (Some((name, metadata)), None) = (members.next(), members.next()) else {
        return Err(bad(
            "an action line is an object of exactly one action".into()
        ));
    };
    let action = Action::from_name(&name).ok_or_else(|| BulkError::UnknownAction {
        line,
        name: clip(&name),
    })?;
    let Value::Object(metadata) = metadata else {
        return Err(bad(format!("the {name} action holds an object")));
    };
    let index = match metadata.get("_index") {
        None | Some(Value::Null) => None,
        Some(Value::String(index)) => Some(index.clone()),
        Some(_) => return Err(bad("_index is a string".into())),
    };
    let id = match metadata.get("_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(id.clone()),
        Some(Value::Number(id)) => Some(id.to_string()),
        Some(_) => return Err(bad("_id is a string".into())),
    };
    Ok((action, index, id))
}

/// One document line (line number `line`, for errors) as an entry, its
/// `index` label `index` when there is one.
pub fn document_entry(
    document: &[u8],
    line: usize,
    index: Option<&str>,
    received_ns: i64,
) -> Result<NewEntry, ItemError> {
    let not_an_object = |reason: String| ItemError::NotAnObject { line, reason };
    let value: Value =
        serde_json::from_slice(document).map_err(|error| not_an_object(error.to_string()))?;
    let Value::Object(mut fields) = value else {
        return Err(not_an_object(format!("it is {}", clip(&value.to_string()))));
    };
    // Taken whole before flattening: an object message is its JSON.
    let timestamp = match fields.remove(TIMESTAMP_FIELD) {
        None | Some(Value::Null) => {
            let fallback = fields
                .get(FALLBACK_TIMESTAMP_FIELD)
                .and_then(parse_timestamp);
            if fallback.is_some() {
                fields.remove(FALLBACK_TIMESTAMP_FIELD);
            }
            fallback.unwrap_or(received_ns)
        }
        Some(value) => parse_timestamp(&value).ok_or_else(|| ItemError::Timestamp {
            line,
            value: clip(&value.to_string()),
        })?,
    };
    let message = match fields.remove(MESSAGE_FIELD) {
        None | Some(Value::Null) => match fields.remove(LINE_FIELD) {
            Some(Value::String(line)) => line,
            other => {
                if let Some(other) = other {
                    fields.insert(LINE_FIELD.to_string(), other);
                }
                String::from_utf8_lossy(document).trim().to_string()
            }
        },
        Some(Value::String(text)) => text,
        Some(other) => other.to_string(),
    };
    let mut flat = Vec::with_capacity(fields.len());
    flatten("", fields, &mut flat);
    let level = LEVEL_FIELDS.iter().find_map(|name| {
        let at = flat.iter().position(|(field, _)| field == name)?;
        let Value::String(text) = &flat[at].1 else {
            return None;
        };
        let level = Level::parse(text).ok()?;
        flat.remove(at);
        Some(level)
    });
    let mut labels: Vec<(String, String)> = flat
        .into_iter()
        .map(|(name, value)| {
            let text = match value {
                Value::String(text) => text,
                other => other.to_string(),
            };
            (name, text)
        })
        .collect();
    if let Some(index) = index {
        labels.push((INDEX_LABEL.to_string(), index.to_string()));
    }
    let level = level
        .or_else(|| crate::plain::detect_level(&message))
        .unwrap_or(Level::Info);
    Ok(NewEntry {
        timestamp,
        level,
        message,
        labels,
    })
}

/// Every field of `object` under `prefix`, nested objects flattened to
/// dotted names; `null` gives nothing, an empty object itself.
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

/// `@timestamp` as Unix epoch nanoseconds: `None` when it is no time this
/// store can hold.
fn parse_timestamp(value: &Value) -> Option<i64> {
    match value {
        Value::Number(number) => match number.as_i64() {
            Some(millis) => millis.checked_mul(1_000_000),
            None => {
                let nanos = number.as_f64()? * 1e6;
                // `as` saturates; the bounds keep a saturated value out.
                (nanos.is_finite() && nanos.abs() < 9.2e18).then_some(nanos as i64)
            }
        },
        Value::String(text) => {
            let text = text.trim();
            if let Some(nanos) = millis_text(text) {
                return nanos;
            }
            match crate::time::parse_datetime(text) {
                Ok(nanos) => Some(nanos),
                // Elasticsearch reads a date and time without an offset as
                // UTC.
                Err(crate::TimeError::NoOffset { .. }) => {
                    crate::time::parse_datetime(&format!("{text}Z")).ok()
                }
                Err(_) => None,
            }
        }
        _ => None,
    }
}

/// A string of epoch milliseconds (`-?DIGITS(.DIGITS)?`) as nanoseconds:
/// `None` when it is not one, `Some(None)` when it is one out of range.
fn millis_text(text: &str) -> Option<Option<i64>> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) {
        return None;
    }
    let nanos = || -> Option<i64> {
        let whole: i64 = whole.parse().ok()?;
        // Nanoseconds are the sixth digit of a millisecond's fraction.
        let mut sub = 0i64;
        for (at, digit) in fraction.bytes().take(6).enumerate() {
            sub += i64::from(digit - b'0') * 10i64.pow(5 - at as u32);
        }
        let nanos = whole.checked_mul(1_000_000)?.checked_add(sub)?;
        Some(if negative { -nanos } else { nanos })
    };
    Some(nanos())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECEIVED: i64 = 42;
    const NOW: i64 = 1_714_564_800_000_000_000; // 2024-05-01T12:00:00Z

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    fn entry(document: &str) -> NewEntry {
        document_entry(document.as_bytes(), 1, Some("logs"), RECEIVED)
            .unwrap_or_else(|error| panic!("{document}: {error}"))
    }

    #[test]
    fn the_common_fields_and_flattened_labels() {
        let entry = entry(
            r#"{"@timestamp":"2024-05-01T12:00:00Z","message":"disk full","log":{"level":"ERROR","logger":"app"},
                "host":{"name":"a1","ip":["10.0.0.1"]},"n":3,"ok":true,"gone":null,"empty":{}}"#,
        );
        assert_eq!(entry.timestamp, NOW);
        assert_eq!(entry.message, "disk full");
        assert_eq!(entry.level, Level::Error);
        let mut labels = entry.labels;
        labels.sort();
        assert_eq!(
            labels,
            pairs(&[
                ("empty", "{}"),
                ("host.ip", r#"["10.0.0.1"]"#),
                ("host.name", "a1"),
                ("index", "logs"),
                ("log.logger", "app"),
                ("n", "3"),
                ("ok", "true"),
            ])
        );
    }

    #[test]
    fn levels_from_log_level_dotted_or_level() {
        assert_eq!(entry(r#"{"log.level":"warning"}"#).level, Level::Warn);
        assert_eq!(entry(r#"{"level":"crit"}"#).level, Level::Fatal);
        // log.level wins; level stays a label.
        let both = entry(r#"{"log.level":"debug","level":"error"}"#);
        assert_eq!(both.level, Level::Debug);
        assert!(both.labels.contains(&("level".into(), "error".into())));
        // Not a level: info, and the value is kept.
        let odd = entry(r#"{"level":"notice"}"#);
        assert_eq!(odd.level, Level::Info);
        assert!(odd.labels.contains(&("level".into(), "notice".into())));
        assert_eq!(entry(r#"{"level":40}"#).level, Level::Info);
        assert_eq!(entry("{}").level, Level::Info);
        // No level field: the message's own, as in plain text.
        assert_eq!(entry(r#"{"message":"ERROR boom"}"#).level, Level::Error);
        assert_eq!(
            entry(r#"{"message":"[warn] slow","level":"x"}"#).level,
            Level::Warn
        );
        assert_eq!(
            entry(r#"{"message":"ERROR boom","level":"debug"}"#).level,
            Level::Debug
        );
    }

    #[test]
    fn timestamps_as_elasticsearch_reads_them() {
        for stamp in [
            r#""2024-05-01T12:00:00Z""#,
            r#""2024-05-01T14:00:00+02:00""#,
            r#""2024-05-01T12:00:00""#,
            r#""2024-05-01T12:00:00.000""#,
            "1714564800000",
            r#""1714564800000""#,
            "1714564800000.0",
            "1.7145648e12",
        ] {
            let entry = entry(&format!(r#"{{"@timestamp":{stamp}}}"#));
            assert_eq!(entry.timestamp, NOW, "{stamp}");
        }
        assert_eq!(
            entry(r#"{"@timestamp":"1714564800000.000123"}"#).timestamp,
            NOW + 123
        );
        assert_eq!(
            entry(r#"{"@timestamp":"2024-05-01"}"#).timestamp,
            NOW - 43_200_000_000_000
        );
        assert_eq!(entry(r#"{"@timestamp":null}"#).timestamp, RECEIVED);
        assert_eq!(entry(r#"{"x":1}"#).timestamp, RECEIVED);
        // Vector's `timestamp`, when it is a time and `@timestamp` is not
        // there; otherwise a label like any other.
        let vector = entry(r#"{"timestamp":"2024-05-01T12:00:00Z","message":"m"}"#);
        assert_eq!((vector.timestamp, vector.labels.len()), (NOW, 1));
        let label = entry(r#"{"timestamp":"soon"}"#);
        assert_eq!(label.timestamp, RECEIVED);
        assert!(label.labels.contains(&("timestamp".into(), "soon".into())));
        let both = entry(r#"{"@timestamp":1714564800000,"timestamp":"x"}"#);
        assert_eq!(both.timestamp, NOW);
        assert!(both.labels.contains(&("timestamp".into(), "x".into())));
        for bad in [
            r#""yesterday""#,
            "true",
            "[1]",
            r#""3000-01-01T00:00:00Z""#,
            "99999999999999999",
            "1e300",
        ] {
            let error = document_entry(
                format!(r#"{{"@timestamp":{bad}}}"#).as_bytes(),
                4,
                None,
                RECEIVED,
            )
            .unwrap_err();
            assert!(
                matches!(error, ItemError::Timestamp { line: 4, .. }),
                "{bad}: {error}"
            );
            assert!(error.to_string().contains("@timestamp"), "{error}");
        }
    }

    #[test]
    fn a_missing_message_is_the_document_and_others_are_json() {
        let document = r#" {"a":"b"} "#;
        assert_eq!(entry(document).message, r#"{"a":"b"}"#);
        assert_eq!(entry(r#"{"message":{"k":1}}"#).message, r#"{"k":1}"#);
        assert_eq!(entry(r#"{"message":12}"#).message, "12");
        // Fluent Bit's and Docker's `log` line; ECS's `log` object is labels.
        let line = entry(r#"{"log":"WARN disk 91%","stream":"stderr"}"#);
        assert_eq!(
            (line.message.as_str(), line.level),
            ("WARN disk 91%", Level::Warn)
        );
        assert!(!line.labels.iter().any(|(name, _)| name == "log"));
        let ecs = entry(r#"{"log":{"logger":"db"}}"#);
        assert_eq!(ecs.message, r#"{"log":{"logger":"db"}}"#);
        assert!(ecs.labels.contains(&("log.logger".into(), "db".into())));
        let both = entry(r#"{"message":"m","log":"l"}"#);
        assert_eq!(both.message, "m");
        assert!(both.labels.contains(&("log".into(), "l".into())));
    }

    #[test]
    fn the_action_index_wins_over_the_path_and_a_field() {
        let body = b"{\"index\":{\"_index\":\"a\",\"_id\":\"x1\"}}\n{\"message\":\"one\",\"index\":\"mine\"}\n\
            {\"create\":{\"_id\":7}}\n{\"message\":\"two\"}\n";
        let items = decode(body, Some("path"), RECEIVED).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].index.as_deref(), Some("a"));
        assert_eq!(items[0].id.as_deref(), Some("x1"));
        let first = items[0].outcome.as_ref().unwrap();
        assert_eq!(first.labels.last().unwrap(), &("index".into(), "a".into()));
        assert_eq!(items[1].action, Action::Create);
        assert_eq!(items[1].index.as_deref(), Some("path"));
        assert_eq!(items[1].id.as_deref(), Some("7"));
        let items = decode(b"{\"index\":{}}\n{}\n", None, RECEIVED).unwrap();
        assert_eq!(items[0].index, None);
        assert!(items[0].outcome.as_ref().unwrap().labels.is_empty());
    }

    #[test]
    fn the_readme_example() {
        let body = br#"{"create":{"_index":"web"}}
{"@timestamp":"2024-05-01T12:00:00.250Z","message":"GET /cart 502","log":{"level":"error"},"http":{"status":502},"tags":["edge"],"trace":null}
"#;
        let items = decode(body, None, RECEIVED).unwrap();
        let entry = items[0].outcome.clone().unwrap();
        assert_eq!(entry.message, "GET /cart 502");
        assert_eq!(entry.level, Level::Error);
        assert_eq!(entry.timestamp, NOW + 250_000_000);
        let mut labels = entry.labels;
        labels.sort();
        assert_eq!(
            labels,
            pairs(&[
                ("http.status", "502"),
                ("index", "web"),
                ("tags", r#"["edge"]"#)
            ])
        );
    }

    #[test]
    fn bad_items_fail_alone() {
        let body = b"{\"index\":{}}\n{\"message\":\"ok\"}\n\
            {\"index\":{}}\nnot json\n\
            {\"delete\":{\"_id\":\"1\"}}\n\
            {\"update\":{\"_id\":\"1\"}}\n{\"doc\":{\"a\":1}}\n\
            \n\r\n\
            {\"create\":{}}\n[1,2]\n\
            {\"index\":{}}\n{\"message\":\"\xff\"}\n\
            {\"index\":{}}\n{\"@timestamp\":\"soon\"}\n\
            {\"create\":{}}\n{\"message\":\"last\"}\n\
            {\"index\":{}}\n";
        let items = decode(body, None, RECEIVED).unwrap();
        let outcomes: Vec<_> = items
            .iter()
            .map(|item| match &item.outcome {
                Ok(entry) => Ok(entry.message.clone()),
                Err(error) => Err(error.kind()),
            })
            .collect();
        assert_eq!(
            outcomes,
            vec![
                Ok("ok".to_string()),
                Err("document_parsing_exception"),
                Err("illegal_argument_exception"),
                Err("illegal_argument_exception"),
                Err("document_parsing_exception"),
                Err("document_parsing_exception"),
                Err("document_parsing_exception"),
                Ok("last".to_string()),
                Err("action_request_validation_exception"),
            ]
        );
        assert_eq!(
            items[8].outcome,
            Err(ItemError::MissingDocument {
                action: "index",
                line: 18
            })
        );
        // Without the final newline, the last document is still read.
        let items = decode(b"{\"index\":{}}\n{\"message\":\"x\"}", None, RECEIVED).unwrap();
        assert_eq!(items[0].outcome.as_ref().unwrap().message, "x");
        // An empty document line fails its item.
        let items = decode(b"{\"index\":{}}\n\n{\"index\":{}}\n{}\n", None, RECEIVED).unwrap();
        assert_eq!(items.len(), 2);
        assert!(items[0].outcome.is_err());
        assert!(items[1].outcome.is_ok());
    }

    #[test]
    fn bad_action_lines_refuse_the_body() {
        for (body, wanted) in [
            (&b""[..], "holds no action"),
            (b"\n\n", "holds no action"),
            (b"{\"index\":{}\n{}\n", "line [1]"),
            (b"{}\n{}\n{\"index\":{}}\n{}\n", "exactly one action"),
            (b"{\"index\":{},\"create\":{}}\n{}\n", "exactly one action"),
            (
                b"{\"index\":{}}\n{}\n{\"upsert\":{}}\n{}\n",
                "but found [upsert]",
            ),
            (b"{\"index\":[]}\n{}\n", "holds an object"),
            (b"{\"index\":{\"_index\":3}}\n{}\n", "_index is a string"),
            (b"[1]\n{}\n", "line [1]"),
            (b"{\"index\":{\"_index\":\"\xff\"}}\n{}\n", "line [1]"),
        ] {
            let error = decode(body, None, RECEIVED).unwrap_err().to_string();
            assert!(
                error.contains(wanted),
                "{:?}: {error}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
